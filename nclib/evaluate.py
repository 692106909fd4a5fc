"""Compare a transferability score with downstream performance over a model zoo.

Every measure takes ``scores`` and ``performance``: 1-D arrays of equal length M >= 2 (one entry per
model), or two pandas Series / mappings keyed by model name (aligned on the keys, which must match).
``higher_is_better=False`` (e.g. NC) negates the score first, so a good score always correlates
positively with performance and ranks the best model first.

Correlations: higher is better (1 is perfect). ``top1_regret``: lower is better (0 is perfect).
``relative_topk``: higher is better (1 is perfect).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

MEASURES_DEFAULT = ("abs_pearson", "pearson", "kendall", "weighted_kendall", "top1_regret")
LOWER_IS_BETTER = frozenset({"top1_regret"})  # every other measure: higher is better


def _as_pair(scores, performance) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(scores, performance)`` as float64 arrays of equal length M >= 2, aligned by model name."""
    keyed = [isinstance(x, pd.Series | Mapping) for x in (scores, performance)]
    if keyed[0] != keyed[1]:
        raise ValueError("pass scores and performance both as arrays or both keyed by model name (Series/mapping)")
    if keyed[0]:
        s, p = pd.Series(scores, dtype=float), pd.Series(performance, dtype=float)
        for name, x in (("scores", s), ("performance", p)):
            if x.index.has_duplicates:
                raise ValueError(f"{name} has duplicate model names: {sorted(set(x.index[x.index.duplicated()]))}")
        if set(s.index) != set(p.index):
            raise ValueError(
                f"scores and performance name different models: only in scores {sorted(set(s.index) - set(p.index))}, "
                f"only in performance {sorted(set(p.index) - set(s.index))}"
            )
        s, p = s.to_numpy(), p.loc[s.index].to_numpy()
    else:
        s, p = np.asarray(scores, dtype=np.float64), np.asarray(performance, dtype=np.float64)
    if s.ndim != 1 or p.ndim != 1:
        raise ValueError(f"scores and performance must be 1-D (one value per model), got shapes {s.shape}, {p.shape}")
    if s.shape != p.shape:
        raise ValueError(f"scores has {s.size} models but performance has {p.size}; lengths must match")
    if s.size < 2:
        raise ValueError(f"need at least 2 models, got {s.size}")
    for name, x in (("scores", s), ("performance", p)):
        if not np.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or inf for {int((~np.isfinite(x)).sum())} model(s)")
    return s, p


def _prepare(scores, performance, higher_is_better: bool) -> tuple[np.ndarray, np.ndarray]:
    s, p = _as_pair(scores, performance)
    return (s if higher_is_better else -s), p


def _scalar(batched: np.ndarray, measure: str) -> float:
    out = float(batched[0])
    if not np.isfinite(out):
        raise ValueError(f"{measure} is undefined here: scores or performance are constant across models")
    return out


# Batched cores: s, p are B x M (score already oriented so higher is better); NaN marks an undefined row.


def _constant(x: np.ndarray) -> np.ndarray:
    return np.ptp(x, axis=1) == 0


def _pearson_b(s: np.ndarray, p: np.ndarray) -> np.ndarray:
    sc, pc = s - s.mean(axis=1, keepdims=True), p - p.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (sc * pc).sum(axis=1) / np.sqrt((sc**2).sum(axis=1) * (pc**2).sum(axis=1))
    r = np.clip(r, -1.0, 1.0)
    r[_constant(s) | _constant(p)] = np.nan
    return r


def _spearman_b(s: np.ndarray, p: np.ndarray) -> np.ndarray:
    return _pearson_b(stats.rankdata(s, axis=1), stats.rankdata(p, axis=1))


def _kendall_b(s: np.ndarray, p: np.ndarray) -> np.ndarray:
    out = np.empty(len(s))
    step = max(1, 2**22 // s.shape[1] ** 2)  # rows per chunk: B x M x M sign tensors stay small
    for i in range(0, len(s), step):
        a, b = s[i : i + step], p[i : i + step]
        ds = np.sign(a[:, :, None] - a[:, None, :])  # each pair counted twice, which cancels in the ratio
        dp = np.sign(b[:, :, None] - b[:, None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[i : i + step] = (ds * dp).sum(axis=(1, 2)) / np.sqrt(
                (ds != 0).sum(axis=(1, 2)) * (dp != 0).sum(axis=(1, 2))
            )
    return out


def _ranked_tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Vigna's weighted tau of each row, additive hyperbolic weights 1 / (r + 1) of the rank r by x (best first, ties
    by y), as scipy's ``_weightedrankedtau``: sum_ij w_ij sgn(dx) sgn(dy) / sqrt(sum_ij w_ij [dx != 0] sum_ij w_ij
    [dy != 0]), each pair counted twice, which cancels."""
    n, m = x.shape
    rank = np.empty((n, m), dtype=np.intp)
    np.put_along_axis(rank, np.lexsort((y, x), axis=1)[:, ::-1], np.broadcast_to(np.arange(m), (n, m)), axis=1)
    w = 1.0 / (rank + 1.0)
    pair = w[:, :, None] + w[:, None, :]
    dx, dy = np.sign(x[:, :, None] - x[:, None, :]), np.sign(y[:, :, None] - y[:, None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pair * dx * dy).sum(axis=(1, 2)) / np.sqrt(
            (pair * (dx != 0)).sum(axis=(1, 2)) * (pair * (dy != 0)).sum(axis=(1, 2))
        )


def _weighted_kendall_b(s: np.ndarray, p: np.ndarray) -> np.ndarray:
    out = np.empty(len(s))
    step = max(1, 2**21 // s.shape[1] ** 2)  # rows per chunk: B x M x M tensors stay small
    for i in range(0, len(s), step):
        a, b = s[i : i + step], p[i : i + step]
        out[i : i + step] = (_ranked_tau_b(a, b) + _ranked_tau_b(b, a)) / 2  # scipy's rank=True: both rankings
    out[_constant(s) | _constant(p)] = np.nan
    return out


def _top1_regret_b(s: np.ndarray, p: np.ndarray) -> np.ndarray:
    first = s == s.max(axis=1, keepdims=True)  # every model tied for the top score
    return p.max(axis=1) - np.where(first, p, np.inf).min(axis=1)


def _relative_topk_b(s: np.ndarray, p: np.ndarray, k: int = 1) -> np.ndarray:
    order = np.lexsort((p, -s), axis=1)  # by score descending; ties broken towards the worse model
    return np.take_along_axis(p, order[:, :k], axis=1).max(axis=1) / p.max(axis=1)


def pearson(scores, performance, higher_is_better: bool = True) -> float:
    """Pearson correlation r = cov(s, y) / (std(s) std(y)) between score s and performance y over M models.

    In [-1, 1]; higher is better. Raises ``ValueError`` if either input is constant.
    """
    s, p = _prepare(scores, performance, higher_is_better)
    return _scalar(_pearson_b(s[None], p[None]), "pearson")


def abs_pearson(scores, performance, higher_is_better: bool = True) -> float:
    """|Pearson r|, as reported in the paper (Suresh et al., Figures 2-3); blind to a score's sign.

    In [0, 1]; higher is better.
    """
    return abs(pearson(scores, performance, higher_is_better))


def spearman(scores, performance, higher_is_better: bool = True) -> float:
    """Spearman rank correlation: Pearson r of the (average-tie) ranks. In [-1, 1]; higher is better."""
    s, p = _prepare(scores, performance, higher_is_better)
    return _scalar(_spearman_b(s[None], p[None]), "spearman")


def kendall(scores, performance, higher_is_better: bool = True) -> float:
    """Kendall tau-b = (P - Q) / sqrt((P + Q + T_s)(P + Q + T_y)) over model pairs (``scipy.stats.kendalltau``).

    P, Q: concordant / discordant pairs; T_s, T_y: pairs tied only in the score / only in performance.
    In [-1, 1]; higher is better.
    """
    s, p = _prepare(scores, performance, higher_is_better)
    return _scalar(_kendall_b(s[None], p[None]), "kendall")


def weighted_kendall(scores, performance, higher_is_better: bool = True) -> float:
    """Weighted Kendall tau (Vigna, WWW 2015) as the field computes it: ``scipy.stats.weightedtau(s, y)``.

    scipy's defaults: hyperbolic weigher 1 / (r + 1), additive weights, and ``rank=True``, i.e. the
    tau averages the two weightings given by ranking models by s and by y (best first), so swaps among
    the top models cost more than swaps among the bottom ones. In [-1, 1]; higher is better.
    """
    s, p = _prepare(scores, performance, higher_is_better)
    return _scalar(_weighted_kendall_b(s[None], p[None]), "weighted_kendall")


def top1_regret(scores, performance, higher_is_better: bool = True) -> float:
    """max_m y_m - y_{m*}, m* the model the score ranks first; in the units of performance.

    If several models tie for the top score, m* is the worst of them (a conservative choice: the score
    cannot tell them apart). >= 0; lower is better (0 means the score picks the best model).
    """
    s, p = _prepare(scores, performance, higher_is_better)
    return float(_top1_regret_b(s[None], p[None])[0])


def relative_topk(scores, performance, k: int = 1, higher_is_better: bool = True) -> float:
    """rel@k = max_{m in top-k by score} y_m / max_m y_m (Shao et al., SFDA, ECCV 2022).

    Ties in the score at the k-th place are broken towards the worse model (conservative, as in
    ``top1_regret``). Performance must be non-negative (e.g. accuracy). In [0, 1]; higher is better.
    """
    s, p = _prepare(scores, performance, higher_is_better)
    if not 1 <= k <= s.size:
        raise ValueError(f"k must be in 1..{s.size} (the number of models), got {k}")
    if (p < 0).any() or p.max() == 0:
        raise ValueError("relative_topk needs non-negative performance with a positive maximum (e.g. accuracy)")
    return float(_relative_topk_b(s[None], p[None], k)[0])


MEASURES: dict[str, Callable[..., float]] = {
    "pearson": pearson,
    "abs_pearson": abs_pearson,
    "spearman": spearman,
    "kendall": kendall,
    "weighted_kendall": weighted_kendall,
    "top1_regret": top1_regret,
    "relative_topk": relative_topk,
}

_BATCHED = {
    pearson: _pearson_b,
    abs_pearson: lambda s, p: np.abs(_pearson_b(s, p)),
    spearman: _spearman_b,
    kendall: _kendall_b,
    weighted_kendall: _weighted_kendall_b,
    top1_regret: _top1_regret_b,
    relative_topk: _relative_topk_b,
}


def bootstrap_draws(metric: Callable[..., float], scores, performance, n: int = 2000, seed: int = 0,
                    **kwargs) -> np.ndarray:  # fmt: skip
    """``metric`` on each of ``n`` resamples of the M models with replacement: an array of ``n`` values.

    The resamples are the rows of ``numpy.random.default_rng(seed).integers(0, M, size=(n, M))``, so every score of
    a zoo resampled with the same seed over the same models sees the same draws (paired). A draw is undefined,
    and NaN, when it holds fewer than 2 distinct models or ``metric`` is undefined on it (a constant score or
    performance); summaries of the draws leave the NaN out. ``kwargs`` (e.g. ``higher_is_better``, ``k``) go to
    ``metric``.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of resamples, got {n}")
    s, p = _as_pair(scores, performance)
    idx = np.random.default_rng(seed).integers(0, s.size, size=(n, s.size))
    distinct = np.ptp(idx, axis=1) > 0
    values = np.full(n, np.nan)
    if metric in _BATCHED:
        rest = {key: v for key, v in kwargs.items() if key != "higher_is_better"}
        sign = 1.0 if kwargs.get("higher_is_better", True) else -1.0
        values[distinct] = _BATCHED[metric](sign * s[idx[distinct]], p[idx[distinct]], **rest)
    else:
        for i in np.flatnonzero(distinct):
            with contextlib.suppress(ValueError):  # undefined on this resample
                values[i] = metric(s[idx[i]], p[idx[i]], **kwargs)
    values[~np.isfinite(values)] = np.nan
    return values


def bootstrap_ci(
    metric: Callable[..., float],
    scores,
    performance,
    n: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    **kwargs,
) -> tuple[float, float, float]:
    """Percentile bootstrap over models: ``(metric(scores, performance), low, high)``.

    ``low`` and ``high`` are the (1 - level) / 2 and (1 + level) / 2 percentiles of the defined draws of
    :func:`bootstrap_draws` (undefined draws are left out); if more than half of the ``n`` draws are undefined,
    raises ``ValueError``. ``kwargs`` (e.g. ``higher_is_better``, ``k``) go to ``metric``.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    s, p = _as_pair(scores, performance)
    point = metric(s, p, **kwargs)
    values = bootstrap_draws(metric, s, p, n, seed, **kwargs)
    values = values[np.isfinite(values)]
    if values.size * 2 < n:
        raise ValueError(
            f"{getattr(metric, '__name__', 'metric')} is undefined in {n - values.size} of {n} resamples; "
            "too few models (or too many ties) to bootstrap"
        )
    low, high = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(point), float(low), float(high)


def drop_constant(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` (models x scores) without the scores that take fewer than 2 distinct values over the models
    they have a value for: such a score is constant over the zoo, and no correlation with performance is defined."""
    return scores.loc[:, scores.nunique() > 1]


def correlation_table(
    scores: Mapping[str, Mapping[str, float]] | pd.DataFrame,
    performance: Mapping[str, float] | pd.Series,
    measures: Sequence[str] = MEASURES_DEFAULT,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Tidy table of every measure for every score, with percentile bootstrap intervals.

    ``scores``: {score name: {model: value}}, or a DataFrame with one column per score and one row per
    model. A score's models are those with a value (NaN = not computed); each must have a performance.
    The direction of each score comes from ``nclib.scores.REGISTRY[name].higher_is_better``.
    Returns columns score, measure, value, low, high, n_models (one row per score and measure).
    """
    from nclib.scores import REGISTRY

    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise ValueError(f"unknown measure(s) {unknown}; choose from {sorted(MEASURES)}")
    table = scores if isinstance(scores, pd.DataFrame) else pd.DataFrame(scores)
    perf = pd.Series(performance, dtype=float)
    rows = []
    for name in table.columns:
        if name not in REGISTRY:
            raise ValueError(f"score {name!r} is not in nclib.scores.REGISTRY; its direction is unknown")
        col = table[name].dropna()
        missing = sorted(set(col.index) - set(perf.index))
        if missing:
            raise ValueError(f"no performance for model(s) {missing} scored by {name!r}")
        for measure in measures:
            value, low, high = bootstrap_ci(
                MEASURES[measure], col, perf.loc[col.index], n=n_boot, seed=seed,
                higher_is_better=REGISTRY[name].higher_is_better,
            )
            rows.append({"score": name, "measure": measure, "value": value, "low": low, "high": high,
                         "n_models": len(col)})
    return pd.DataFrame(rows, columns=["score", "measure", "value", "low", "high", "n_models"])
