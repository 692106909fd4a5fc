"""Input validation shared by every score: one clear ``ValueError`` per kind of bad input.

Scores accept numpy arrays, torch tensors, pandas DataFrames / Series and anything else ``np.asarray``
turns into a numeric array (nested lists). They are converted to torch tensors on the input's own device
(a CUDA tensor is scored on the GPU), so one implementation serves CPU and GPU. Inputs are never written to.

What every score does with
  * features: integer and boolean features are cast to float64, float16 / bfloat16 upcast to float32 (and
    scored as that float32 matrix); complex, string or object arrays, NaN, inf and magnitudes outside
    ``FEATURE_RANGE`` (whose powers some scores cannot hold) are refused;
  * labels: any integer codes (non-contiguous, negative, any integer dtype), remapped to 0..C-1 in sorted
    order; floating, boolean, complex and string labels are refused (encode class names first, e.g. with
    ``np.unique(names, return_inverse=True)[1]``).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor

# Largest magnitude |x|_max of accepted features, per working dtype; the smallest nonzero |x|_max accepted is its
# reciprocal. Some scores form fourth powers of the features (SFDA's power iteration, the Ledoit-Wolf moment of
# hscore_shrink, LogME's squared eigenvalues), which overflow float64 from |x| ~ 1e40 and underflow below ~1e-50;
# GBC's Gram and NC's distances are float32 for float32 features, which overflow from |x| ~ 1e18.
FEATURE_RANGE = {torch.float64: 1e30, torch.float32: 1e12}


def as_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    """Return ``x`` as a torch tensor without copying when possible; ``ValueError`` unless it is numeric."""
    if isinstance(x, torch.Tensor):
        return x.detach()
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as exc:  # e.g. ragged nested lists
        raise ValueError(f"{name} must be a numeric array (numpy, torch or pandas), got {type(x).__name__}") from exc
    if a.dtype.kind not in "biufc":
        raise ValueError(
            f"{name} must be numeric, got dtype {a.dtype}; encode class names as integer codes first, "
            "e.g. np.unique(names, return_inverse=True)[1]"
        )
    try:
        with warnings.catch_warnings():  # a read-only array (e.g. a memory map) is fine: scores never write inputs
            warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
            return torch.from_numpy(a if a.flags.c_contiguous else np.ascontiguousarray(a))
    except TypeError as exc:  # e.g. np.longdouble
        raise ValueError(f"{name} has dtype {a.dtype}, which torch does not support; cast it to float64") from exc


def check_features(x: ArrayLike, name: str = "features") -> torch.Tensor:
    """Validate an N x D embedding matrix; return a float tensor (float32 or float64), not copied when it is one.

    Integer and boolean features become float64, float16 / bfloat16 float32. Raises ``ValueError`` for a wrong
    rank, an empty matrix, complex values, NaN or inf, or a largest magnitude beyond ``FEATURE_RANGE`` (or nonzero
    below its reciprocal): rescale such features, e.g. to unit standard deviation.
    """
    t = as_tensor(x, name)
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N samples x D dimensions), got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)}): is the split empty?")
    if t.is_complex():
        raise ValueError(f"{name} must be real, got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    elif t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    lo, hi = torch.aminmax(t)  # one pass; NaN propagates to both, inf to one
    if not (bool(torch.isfinite(lo)) and bool(torch.isfinite(hi))):
        bad = int((~torch.isfinite(t)).any(dim=1).sum())
        raise ValueError(f"{name} contains NaN or inf in {bad} row(s); drop or repair them first")
    top, limit = max(-float(lo), float(hi)), FEATURE_RANGE[t.dtype]
    if top > limit or 0 < top < 1 / limit:
        raise ValueError(
            f"{name} has largest magnitude {top:.3g}, outside [{1 / limit:.0e}, {limit:.0e}] where its "
            f"{str(t.dtype).removeprefix('torch.')} second moments are representable; rescale the features "
            "(e.g. to unit standard deviation)"
        )
    return t


def is_constant(t: torch.Tensor) -> bool:
    """Whether every row of the N x D matrix ``t`` equals the first, exactly (one pass, no N x D temporary).

    Scores that centre the features test this first: the mean of equal values is not always that value in floating
    point, so centring constant features leaves rounding noise whose ratios would pass for a score.
    """
    lo, hi = torch.aminmax(t, dim=0)
    return bool(torch.equal(lo, hi))


def check_labels(
    y: ArrayLike, n: int | None = None, name: str = "labels", device: torch.device | None = None
) -> tuple[torch.Tensor, int]:
    """Validate integer class labels; remap them to 0..C-1.

    Labels may be any integer codes of any integer dtype (e.g. {3, 7, 42} or negative); they are remapped in
    sorted order, so the result does not depend on which codes name the classes.
    Returns ``(labels, C)`` with ``labels`` an int64 tensor on ``device``.
    Raises ``ValueError`` for non-integer labels (floating, boolean, complex, strings), a length that differs
    from ``n``, or fewer than two classes.
    """
    t = as_tensor(y, name)
    if t.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one integer class per sample), got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty: is the split empty?")
    t = check_integers(t, name)
    if n is not None and t.shape[0] != n:
        raise ValueError(f"{name} has {t.shape[0]} entries but there are {n} samples; lengths must match")
    classes, inverse = torch.unique(t, return_inverse=True)
    if classes.numel() < 2:
        raise ValueError(f"{name} must contain at least 2 classes, got {classes.numel()}")
    if device is not None:
        inverse = inverse.to(device)
    return inverse.to(torch.int64), int(classes.numel())


def check_integers(t: torch.Tensor, name: str) -> torch.Tensor:
    """``t`` as int64 (torch's unique and searchsorted lack unsigned kernels); ``ValueError`` for floating,
    complex or boolean ``t``."""
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must be integers, got dtype {t.dtype}; cast with .astype(int) if they are classes")
    return t.to(torch.int64)


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
    float64, not copied when it already is one; other dtypes, e.g. float16 or one-hot integers, become float64).

    Raises ``ValueError`` for a wrong rank or row count, an empty matrix, complex values, NaN or inf, negative
    entries or a row sum off 1 by more than ``atol`` (float16 rounding moves a sum by at most 4.9e-4).
    """
    t = as_tensor(p, name)
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N samples x Z source classes), got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)}): is the split empty?")
    if n is not None and t.shape[0] != n:
        raise ValueError(f"{name} has {t.shape[0]} rows but there are {n} labels; lengths must match")
    if t.is_complex():
        raise ValueError(f"{name} must be real, got dtype {t.dtype}")
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
