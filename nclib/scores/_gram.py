"""Second moments shared by the Gram-based scores (LogME, H-score, TransRate, GBC).

The Gram is formed over blocks of rows, each block's products in ``dtype`` (float64 by default:
a float32 Gram moves LogME, H-score and TransRate by up to 1e-3 relative on ill-conditioned
features, far more than their sensitivity to the input's own float32 rounding), and the blocks
are summed in float64. An optional ``shift`` (a rough mean) is subtracted from every row first,
so that centred moments do not lose digits to a large mean. On CPU each block's product goes through
numpy, whose ``b.T @ b`` calls BLAS syrk (half the flops of torch's gemm, which has no symmetric product).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

_CHUNK = 1 << 23  # elements per block (64 MiB of float64)


def blocks(
    x: torch.Tensor,
    rows: torch.Tensor | None = None,
    shift: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float64,
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield ``(s, x[rows][s] - shift)`` in ``dtype`` over consecutive slices ``s`` of the selected rows."""
    n = x.shape[0] if rows is None else rows.numel()
    step = max(_CHUNK // x.shape[1], 1)
    for start in range(0, n, step):
        s = slice(start, start + step)
        b = (x[s] if rows is None else x[rows[s]]).to(dtype)
        yield s, b if shift is None else b - shift.to(dtype)


def gram(b: torch.Tensor) -> torch.Tensor:
    """``b^T b`` in ``b``'s dtype: BLAS syrk through numpy on CPU, torch's matmul elsewhere."""
    if b.device.type != "cpu":
        return b.T @ b
    a = b.numpy()
    return torch.from_numpy(a.T @ a)


def moments(
    x: torch.Tensor,
    labels: torch.Tensor | None = None,
    n_classes: int = 1,
    rows: torch.Tensor | None = None,
    shift: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over ``z_i = x_i - shift`` (``i`` in ``rows``, default all): per-class sums (C x D, one
    row when ``labels`` is None) and the Gram sum_i z_i z_i^T (D x D), both float64."""
    sums = torch.zeros(n_classes, x.shape[1], dtype=torch.float64, device=x.device)
    g = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
    for s, b in blocks(x, rows, shift, dtype):
        g += gram(b).to(torch.float64)
        b = b.to(torch.float64)
        if labels is None:
            sums[0] += b.sum(0)
        else:
            sums.index_add_(0, labels[s], b)
    return sums, g
