"""Model zoos (audio: Table 1; image: Figure 2) and the two operations every candidate shares.

Every model built here sets ``model.penultimate`` (the name, in ``model.named_modules()``, of the module whose
output is the penultimate embedding: a 4-D output is global-average-pooled, a 3-D one averaged over time),
``model.has_source_head`` (``model(x)`` returns source-task logits usable by LEEP / NCE) and ``model.head_name``
(the module ``replace_head`` swaps).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nclib.models.audio import build_audio
from nclib.models.image import build_image

__all__ = ["build_audio", "build_image", "embedding_dim", "replace_head"]


def embedding_dim(model: nn.Module) -> int:
    """Dimension D of the embedding at ``model.penultimate``, found by one forward pass of a 64 x 64 zero input."""
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    parameter = next(model.parameters())
    x = torch.zeros(1, first_conv.in_channels, 64, 64, device=parameter.device, dtype=parameter.dtype)
    out: list[torch.Tensor] = []
    layer = model.get_submodule(_module_name(model, "penultimate"))
    handle = layer.register_forward_hook(lambda _m, _i, o: out.append(o))
    was_training = model.training
    try:
        with torch.inference_mode():
            model.eval()(x)
    finally:
        handle.remove()
        model.train(was_training)
    shape = out[0].shape
    return int(shape[1] if len(shape) in (2, 4) else shape[-1])  # B x D, B x D x H x W, or B x T x D


def replace_head(model: nn.Module, n_classes: int, seed: int) -> nn.Module:
    """Swap ``model.head_name`` for a new ``nn.Linear(D, n_classes)`` on the penultimate embedding (in place).

    The new layer's weights and bias are drawn from U(-1/sqrt(D), 1/sqrt(D)) (torch's default range) by a
    ``torch.Generator`` seeded with ``seed``, so they depend only on (seed, D, n_classes): every candidate with the
    same D starts from the same layer, as in the paper's protocol. Sets ``model.has_source_head = False``.
    """
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    d = embedding_dim(model)
    generator = torch.Generator().manual_seed(seed)
    bound = 1.0 / math.sqrt(d)
    head = nn.Linear(d, n_classes)
    with torch.no_grad():
        head.weight.copy_((torch.rand(n_classes, d, generator=generator) * 2 - 1) * bound)
        head.bias.copy_((torch.rand(n_classes, generator=generator) * 2 - 1) * bound)
    parameter = next(model.parameters())
    parent, _, child = _module_name(model, "head_name").rpartition(".")
    setattr(model.get_submodule(parent), child, head.to(device=parameter.device, dtype=parameter.dtype))
    model.has_source_head = False  # type: ignore[assignment]  # torch types Module attributes as Tensor | Module
    return model


def _module_name(model: nn.Module, attr: str) -> str:
    """``model.<attr>`` (``penultimate`` or ``head_name``): the name of one of its modules."""
    name = getattr(model, attr)
    if not isinstance(name, str):
        raise TypeError(f"{type(model).__name__}.{attr} must be a module name, got {type(name).__name__}")
    return name
