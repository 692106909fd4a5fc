"""Input validation shared by every score: one clear ``ValueError`` per kind of bad input.

Scores accept numpy arrays or torch tensors. They are converted to torch tensors on
the input's own device (a CUDA tensor is scored on the GPU), so one implementation
serves CPU and GPU.
"""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def as_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    """Return ``x`` as a torch tensor without copying when possible."""
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}") from exc


def check_features(x: ArrayLike, name: str = "features") -> torch.Tensor:
    """Validate an N x D embedding matrix; return a float tensor (float32 or float64).

    Raises ``ValueError`` for a wrong rank, an empty matrix, or non-finite values.
    """
    t = as_tensor(x, name)
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N samples x D dimensions), got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)}): is the split empty?")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    elif t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    # A finite sum proves every entry finite (NaN and inf propagate); only when the sum is
    # not finite (bad entries, or an overflow of large finite values) look at each entry.
    if not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).any(dim=1).sum())
        raise ValueError(f"{name} contains NaN or inf in {bad} row(s); drop or repair them first")
    return t


def check_labels(
    y: ArrayLike, n: int | None = None, name: str = "labels", device: torch.device | None = None
) -> tuple[torch.Tensor, int]:
    """Validate integer class labels; remap them to 0..C-1.

    Returns ``(labels, C)`` with ``labels`` an int64 tensor on ``device``.
    Raises ``ValueError`` for non-integer labels, a length that differs from ``n``,
    or fewer than two classes.
    """
    t = as_tensor(y, name)
    if t.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one integer class per sample), got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty: is the split empty?")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must be integers, got dtype {t.dtype}; cast with .astype(int) if they are classes")
    if n is not None and t.shape[0] != n:
        raise ValueError(f"{name} has {t.shape[0]} entries but there are {n} samples; lengths must match")
    classes, inverse = torch.unique(t, return_inverse=True)
    if classes.numel() < 2:
        raise ValueError(f"{name} must contain at least 2 classes, got {classes.numel()}")
    if device is not None:
        inverse = inverse.to(device)
    return inverse.to(torch.int64), int(classes.numel())


def check_min_per_class(
    labels: torch.Tensor, n_classes: int, minimum: int = 2, score: str = "this score"
) -> torch.Tensor:
    """Raise ``ValueError`` if a class has fewer than ``minimum`` samples; return class counts."""
    counts = torch.bincount(labels, minlength=n_classes)
    small = torch.nonzero(counts < minimum).flatten().tolist()
    if small:
        raise ValueError(
            f"{score} needs at least {minimum} samples per class; class(es) {small} (after remapping to "
            f"0..C-1) have {counts[small].tolist()}. Drop those classes or add samples."
        )
    return counts


def check_probs(p: ArrayLike, n: int | None = None, name: str = "source_probs", atol: float = 1e-3) -> torch.Tensor:
    """Validate an N x Z matrix of probabilities (rows on the simplex); return it as a float tensor (float32 or
    float64, not copied when it already is one)."""
    t = as_tensor(p, name)
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N samples x Z source classes), got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)}): is the split empty?")
    if n is not None and t.shape[0] != n:
        raise ValueError(f"{name} has {t.shape[0]} rows but there are {n} labels; lengths must match")
    if not t.is_floating_point() or t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float64)
    row_sums = t.sum(dim=1)  # one pass; a NaN or inf makes its row's sum non-finite (as may an overflow)
    if not bool(torch.isfinite(row_sums).all()) and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).any(dim=1).sum())
        raise ValueError(f"{name} contains NaN or inf in {bad} row(s); drop or repair them first")
    if bool(t.amin() < 0):
        raise ValueError(f"{name} has negative entries: pass softmax probabilities, not logits")
    err = (row_sums - 1).abs().max().item()
    if err > atol:
        raise ValueError(
            f"rows of {name} must sum to 1 (largest deviation {err:.3g}): pass softmax probabilities, not logits"
        )
    return t


def finite_float(value: torch.Tensor | float, score: str) -> float:
    """Return ``value`` as a Python float; raise ``ValueError`` rather than return NaN or inf."""
    out = float(value)
    if not np.isfinite(out):
        raise ValueError(f"{score} is not finite ({out}); the input is degenerate (e.g. constant features)")
    return out
