"""Second moments shared by the Gram-based scores (LogME, H-score, TransRate, GBC, HEV), and their top eigenpairs.

The Gram is formed over blocks of rows, each block's products in ``dtype`` (float64 by default:
a float32 Gram, even of centred rows in 256-row blocks, moves LogME, H-score and TransRate by 1e-7 to 5e-6
relative on ReLU features, whose many equal entries make float32 rounding errors add up instead of
cancel), and the blocks are summed in float64. An optional ``shift`` (a rough mean) is subtracted from every row first,
so that centred moments do not lose digits to a large mean. On CPU each block's product is one BLAS
``syrk`` call (half the flops of torch's gemm, which has no symmetric product) into a reused buffer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import scipy.linalg
import torch
from scipy.linalg.blas import get_blas_funcs

_CHUNK = 1 << 21  # elements per block (16 MiB of float64): the block stays in cache between its uses
_CHUNK_LOW = 1 << 23  # elements per block of lower-precision products (fewer D x D float64 sums)


def blocks(
    x: torch.Tensor,
    rows: torch.Tensor | None = None,
    shift: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float64,
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield ``(s, x[rows][s] - shift)`` in ``dtype`` over consecutive slices ``s`` of the selected rows.

    Each block is written into one reused buffer: it is valid until the next one is yielded.
    """
    n = x.shape[0] if rows is None else rows.numel()
    step = max(_CHUNK // x.shape[1], 1)
    buf = torch.empty(min(step, n), x.shape[1], dtype=dtype, device=x.device)
    shift = None if shift is None else shift.to(dtype)
    for start in range(0, n, step):
        s = slice(start, start + step)
        src = x[s] if rows is None else x[rows[s]]
        b = buf[: src.shape[0]]
        if shift is None:
            b.copy_(src)
        else:
            torch.sub(src, shift, out=b)
        yield s, b


def gram(b: torch.Tensor) -> torch.Tensor:
    """``b^T b`` in ``b``'s dtype: BLAS syrk on CPU, torch's matmul elsewhere."""
    if b.device.type != "cpu":
        return b.T @ b
    return _symmetric(_syrk(b.numpy()))


def _syrk(b: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
    """Upper triangle of ``c + b^T b`` (Fortran order; ``c`` is updated in place when given)."""
    a = b.T  # D x n in Fortran order when b is C-contiguous: no copy
    syrk = get_blas_funcs("syrk", (a,))
    if c is None:
        return syrk(1.0, a, trans=0, lower=0)
    return syrk(1.0, a, beta=1.0, c=c, trans=0, lower=0, overwrite_c=1)


def _symmetric(upper: np.ndarray) -> torch.Tensor:
    """The full symmetric matrix from its upper triangle (overwriting ``upper``'s lower triangle)."""
    u = torch.from_numpy(upper).triu_()
    return u.add_(u.triu(1).T)


def gram_sum(bs: Iterable[torch.Tensor]) -> torch.Tensor:
    """sum_b b^T b over the float64 blocks ``bs`` (D x D); on CPU accumulated in place by BLAS syrk."""
    g: torch.Tensor | None = None  # off CPU
    upper: np.ndarray | None = None  # on CPU: the upper triangle, updated in place
    for b in bs:
        if b.device.type != "cpu":
            g = b.T @ b if g is None else g.addmm_(b.T, b)
        else:
            upper = _syrk(b.numpy(), np.zeros((b.shape[1], b.shape[1]), order="F") if upper is None else upper)
    if upper is not None:
        return _symmetric(upper)
    if g is None:
        raise ValueError("gram_sum needs at least one block")
    return g


def moments(
    x: torch.Tensor,
    labels: torch.Tensor | None = None,
    n_classes: int = 1,
    rows: torch.Tensor | None = None,
    shift: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over ``z_i = x_i - shift`` (``i`` in ``rows``, default all): per-class sums (C x D, one
    row when ``labels`` is None; ``labels`` holds all N rows' classes) and the Gram sum_i z_i z_i^T (D x D),
    both float64.

    On CPU each block is written, followed by its C one-hot label columns, into one buffer whose syrk
    then holds both: [Z H]^T [Z H] has Z^T Z and the class sums Z^T H. The loop makes only numpy and
    BLAS calls (a torch op between two BLAS calls would wait on BLAS threads that are still spinning).
    """
    if x.device.type != "cpu":
        return _moments_torch(x, labels, n_classes, rows, shift, dtype)
    n, d = x.shape[0] if rows is None else rows.numel(), x.shape[1]
    xn, np_dtype = x.numpy(), torch.empty(0, dtype=dtype).numpy().dtype
    shift_n = None if shift is None else shift.to(dtype).numpy()
    rows_n = None if rows is None else rows.numpy()
    y = np.zeros(n, dtype=np.int64) if labels is None else labels.numpy()
    y = y if rows_n is None or labels is None else y[rows_n]
    step = max((_CHUNK if dtype == torch.float64 else _CHUNK_LOW) // d, 1)
    buf = np.empty((min(step, n), d + n_classes), dtype=np_dtype)
    g = np.zeros((d + n_classes, d + n_classes), dtype=np.float64, order="F")
    for start in range(0, n, step):
        b = buf[: min(step, n - start)]
        src = xn[start : start + step] if rows_n is None else xn[rows_n[start : start + step]]
        if shift_n is None:
            b[:, :d] = src
        else:
            np.subtract(src, shift_n, out=b[:, :d])
        b[:, d:] = 0
        b[np.arange(b.shape[0]), d + y[start : start + step]] = 1
        if np_dtype == np.float64:
            g = _syrk(b, g)  # accumulated by BLAS in place
        else:
            g += _syrk(b)  # the block's products in ``dtype``, summed in float64
    return torch.from_numpy(g[:d, d:].T.copy()), _symmetric(g[:d, :d])


def _moments_torch(
    x: torch.Tensor,
    labels: torch.Tensor | None,
    n_classes: int,
    rows: torch.Tensor | None,
    shift: torch.Tensor | None,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``moments`` with torch ops (GPU)."""
    sums = torch.zeros(n_classes, x.shape[1], dtype=torch.float64, device=x.device)
    g = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
    labels = labels if rows is None or labels is None else labels[rows]
    for s, b in blocks(x, rows, shift, dtype):
        g += (b.T @ b).to(torch.float64)
        b = b.to(torch.float64)
        if labels is None:
            sums[0] += b.sum(0)
        else:
            sums.index_add_(0, labels[s], b)
    return sums, g


def top_eigh(a: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest eigenvalues (descending) and their eigenvectors of the symmetric matrix ``a`` (in its dtype).

    On CPU, when k is at most an eighth of the size, only those k are computed (LAPACK syevr: 0.22 s instead of
    0.35 s for 64 of 2,048 in float32); below that, and on GPU, torch's full eigh is as fast or faster.
    """
    if a.device.type != "cpu" or 8 * k > a.shape[0]:
        evals, evecs = torch.linalg.eigh(a)
        return evals.flip(0)[:k], evecs.flip(1)[:, :k]
    m = a.shape[0]
    evals, evecs = scipy.linalg.eigh(a.numpy(), subset_by_index=[m - k, m - 1], driver="evr")
    return torch.from_numpy(evals[::-1].copy()), torch.from_numpy(evecs[:, ::-1].copy())
