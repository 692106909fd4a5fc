"""Pitfalls of evaluating transferability scores, measured on our own zoos.

How stable a comparison of scores is (bootstrap over models, seeds and training data; Agostinelli et al., ECCV
2022), how many models a difference of two correlations needs (Fisher 1921; Steiger 1980), how the zoo's make-up,
the model size, the layer and the split that is scored change the verdict.

    draws = bootstrap_models(scores, performance)          # tidy: draw, score, measure, value
    win_frequency(draws, "kendall")                        # score -> share of draws it comes out best
    min_models(0.93, 0.76)                                 # models before |r1 - r2| is significant (independent zoos)
    subsets_sweep(scores, performance)                     # every sub-zoo of >= 3 models: spread and measures

Correlation measures (``pearson``, ``kendall``, ...) come from ``nclib.evaluate.MEASURES``, oriented by each
score's direction in ``nclib.scores.REGISTRY``: higher is better, except ``nclib.evaluate.LOWER_IS_BETTER``
(``top1_regret``). Everything returning a table returns a tidy ``pandas.DataFrame``; the figures of these tables are
in ``nclib.plots``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from nclib.evaluate import LOWER_IS_BETTER, MEASURES, bootstrap_ci, bootstrap_draws, weighted_kendall
from nclib.scores import REGISTRY, score_zoo

# Per-model scores too dear to recompute many times (on mini's 3,000 x 1,280 image embeddings, N-LEEP's Gaussian
# mixture takes minutes and GBC's per-class covariances several seconds; the others about a second or less).
# Zoo-level NCTI and HEV (which needs validation data and sizes) are not recomputed on subsets either.
EXPENSIVE = frozenset({"nleep", "gbc"})
RESCORED: tuple[str, ...] = tuple(
    name for name, s in REGISTRY.items() if s.needs in ("features", "source_probs", "source_labels")
    and name not in EXPENSIVE
)  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# Measures over draws
# --------------------------------------------------------------------------------------------------------------
def _orientation(names: Iterable[str], higher_is_better: Mapping[str, bool] | None) -> dict[str, bool]:
    out = {}
    for name in names:
        if higher_is_better and name in higher_is_better:
            out[name] = bool(higher_is_better[name])
        elif name in REGISTRY:
            out[name] = REGISTRY[name].higher_is_better
        else:
            raise ValueError(f"{name!r} is not in nclib.scores.REGISTRY: give its direction in higher_is_better")
    return out


def _value(measure: str, s: np.ndarray, p: np.ndarray, higher: bool) -> float:
    """``MEASURES[measure]`` of score s against performance p, NaN where undefined (e.g. a constant input)."""
    try:
        return MEASURES[measure](s, p, higher_is_better=higher)
    except ValueError:
        return float("nan")


def measure_values(
    scores: pd.DataFrame,
    performance: pd.Series,
    measures: Sequence[str] = ("pearson", "kendall"),
    higher_is_better: Mapping[str, bool] | None = None,
) -> pd.DataFrame:
    """One row per score (column of ``scores``, models as index), one column per measure against ``performance``.

    A score's models are those with a value; NaN where a measure is undefined (fewer than 2 models, a constant
    input). Directions from ``REGISTRY``, or ``higher_is_better`` for names outside it (e.g. a validation metric).
    """
    _check_measures(measures)
    perf = pd.Series(performance, dtype=float)
    missing = sorted(set(scores.index[scores.notna().any(axis=1)]) - set(perf.index))
    if missing:
        raise ValueError(f"no performance for model(s) {missing}")
    rows = _measure_rows(scores.to_numpy(float), perf.reindex(scores.index).to_numpy(), list(scores.columns),
                         measures, _orientation(scores.columns, higher_is_better))  # fmt: skip
    table = pd.DataFrame(rows, columns=["score", "measure", "value"])
    return table.pivot(index="score", columns="measure", values="value").reindex(
        index=list(scores.columns), columns=list(measures)).rename_axis("score").rename_axis(None, axis=1)


def _measure_rows(values: np.ndarray, perf: np.ndarray, names: Sequence[str], measures: Sequence[str],
                  orient: Mapping[str, bool]) -> list[tuple[str, str, float]]:  # fmt: skip
    """(score, measure, value) for every column of ``values`` (models x scores, NaN = no value) against ``perf``."""
    rows = []
    for j, name in enumerate(names):
        has = np.isfinite(values[:, j])
        s, p = values[has, j], perf[has]
        rows += [(name, m, _value(m, s, p, orient[name])) for m in measures]
    return rows


def _check_measures(measures: Sequence[str]) -> None:
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise ValueError(f"unknown measure(s) {unknown}; choose from {sorted(MEASURES)}")


def _tidy(draws: Iterable[tuple[pd.DataFrame, pd.Series]], measures: Sequence[str]) -> pd.DataFrame:
    """Columns draw, score, measure, value: :func:`measure_values` of each draw's (scores, performance)."""
    parts = [measure_values(t, p, measures).reset_index().melt(id_vars="score", var_name="measure").assign(draw=d)
             for d, (t, p) in enumerate(draws)]  # fmt: skip
    return pd.concat(parts, ignore_index=True)[["draw", "score", "measure", "value"]]


def bootstrap_models(
    scores: pd.DataFrame,
    performance: pd.Series,
    measures: Sequence[str] = ("pearson", "kendall"),
    n: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Measures of every score over ``n`` resamples of the models it has a value for, with replacement
    (``nclib.evaluate.bootstrap_draws``: scores of the same models see the same resamples, so they can be compared
    draw by draw; a model drawn twice counts twice). Returns columns draw, score, measure, value: NaN where the
    draw is undefined (fewer than 2 distinct models, or a constant score or performance in it)."""
    _check_measures(measures)
    perf = pd.Series(performance, dtype=float)
    missing = sorted(set(scores.index[scores.notna().any(axis=1)]) - set(perf.index))
    if missing:
        raise ValueError(f"no performance for model(s) {missing}")
    orient = _orientation(scores.columns, None)
    parts = []
    for name in scores.columns:
        col = scores[name].dropna()
        for m in measures:
            values = (bootstrap_draws(MEASURES[m], col, perf.loc[col.index], n, seed, higher_is_better=orient[name])
                      if len(col) > 1 else np.full(n, np.nan))  # fmt: skip
            parts.append(pd.DataFrame({"draw": np.arange(n), "score": name, "measure": m, "value": values}))
    return pd.concat(parts, ignore_index=True).sort_values("draw", kind="stable", ignore_index=True)


def bootstrap_seeds(
    scores: pd.DataFrame,
    runs: pd.DataFrame,
    measures: Sequence[str] = ("pearson", "kendall"),
    n: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Measures of every score when each model's performance is the mean over a resample (with replacement) of
    its own seeds. ``runs``: one row per (model, seed) with ``test_metric`` (``pipeline.transfer_results``).
    With one seed per model every draw is the same. Returns columns draw, score, measure, value (NaN where
    undefined, as in :func:`measure_values`)."""
    if n < 1:
        raise ValueError(f"n must be a positive number of resamples, got {n}")
    per_model = {m: g["test_metric"].to_numpy(float) for m, g in runs.groupby("model")}
    missing = sorted(set(scores.index) - set(per_model))
    if missing:
        raise ValueError(f"runs have no seed of model(s) {missing}")
    rng = np.random.default_rng(seed)
    perfs = [pd.Series([rng.choice(per_model[m], size=len(per_model[m])).mean() for m in scores.index],
                       index=scores.index) for _ in range(n)]  # fmt: skip
    return _tidy(((scores, p) for p in perfs), measures)


def stratified_half(labels: np.ndarray, rng: np.random.Generator, fraction: float = 0.5) -> np.ndarray:
    """Sorted indices of ``ceil(fraction * n_c)`` examples of each class c, drawn without replacement."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    labels = np.asarray(labels)
    keep = [rng.permutation(np.flatnonzero(labels == c))[: math.ceil(fraction * (labels == c).sum())]
            for c in np.unique(labels)]  # fmt: skip
    return np.sort(np.concatenate(keep))


def rescore_subsets(
    features: Mapping[str, np.ndarray],
    labels: np.ndarray,
    probs: Mapping[str, np.ndarray | None],
    names: Sequence[str] = RESCORED,
    n: int = 10,
    fraction: float = 0.5,
    seed: int = 0,
) -> pd.DataFrame:
    """The scores ``names`` recomputed (``score_zoo``) on ``n`` stratified random subsets of the target training
    data, ``fraction`` of each class drawn without replacement. ``features``: model -> N x D; ``probs``: model ->
    N x Z source probabilities or None. Returns columns draw, model and one per score (NaN where not defined)."""
    rng = np.random.default_rng(seed)
    parts = []
    for draw in range(n):
        keep = stratified_half(labels, rng, fraction)
        kept = {m: None if p is None else p[keep] for m, p in probs.items()}
        values = score_zoo({m: f[keep] for m, f in features.items()}, np.asarray(labels)[keep], kept, names=list(names))
        table = pd.DataFrame(values, columns=list(names)).reindex(list(features)).rename_axis("model")
        parts.append(table.reset_index().assign(draw=draw))
    return pd.concat(parts, ignore_index=True)[["draw", "model", *names]]


def bootstrap_data(
    rescored: pd.DataFrame, performance: pd.Series, measures: Sequence[str] = ("pearson", "kendall")
) -> pd.DataFrame:
    """Measures of every score of each draw of :func:`rescore_subsets` against ``performance``.
    Returns columns draw, score, measure, value (NaN where undefined, as in :func:`measure_values`)."""
    perf = pd.Series(performance, dtype=float)
    return _tidy(((g.set_index("model").drop(columns="draw"), perf) for _, g in rescored.groupby("draw", sort=True)),
                 measures)  # fmt: skip


def win_frequency(draws: pd.DataFrame, measure: str) -> pd.Series:
    """score -> share of draws in which the score has the best ``measure`` (ties share the win equally).

    Higher is better, except for ``LOWER_IS_BETTER`` measures. A score undefined in a draw does not win it; draws
    where no score is defined are left out. The shares sum to 1.
    """
    wide = draws[draws["measure"] == measure].pivot(index="draw", columns="score", values="value")
    if wide.empty:
        raise ValueError(f"no draws of measure {measure!r}")
    wide = wide.dropna(how="all")
    values = -wide if measure in LOWER_IS_BETTER else wide
    best = values.eq(values.max(axis=1), axis=0)
    return best.div(best.sum(axis=1), axis=0).mean().rename(f"wins ({measure})").sort_values(ascending=False)


def pairwise_wins(draws: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Score x score: share of draws in which the row score has a strictly better ``measure`` than the column
    score, over the draws where both are defined (NaN where none is)."""
    wide = draws[draws["measure"] == measure].pivot(index="draw", columns="score", values="value")
    values = -wide if measure in LOWER_IS_BETTER else wide
    names = list(dict.fromkeys(draws["score"]))
    out = pd.DataFrame(index=pd.Index(names, name="score"), columns=names, dtype=float)
    for a, b in itertools.permutations(names, 2):
        both = values[[a, b]].dropna()
        out.loc[a, b] = (both[a] > both[b]).mean() if len(both) else float("nan")
    return out


def interval(draws: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per score and measure: median, low and high percentiles (``level``) and the share of undefined draws."""
    g = draws.groupby(["score", "measure"])["value"]
    q = (1 - level) / 2
    return pd.DataFrame({"median": g.median(), "low": g.quantile(q), "high": g.quantile(1 - q),
                         "undefined": g.apply(lambda v: v.isna().mean())}).reset_index()  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# How many models, how many seeds
# --------------------------------------------------------------------------------------------------------------
def correlation_difference_z(r1: float, r2: float, n_models: int, r12: float | None = None) -> float:
    """z statistic of r1 - r2, two correlations with performance over ``n_models`` models each.

    Independent zoos (``r12`` None): Fisher (1921), z = (atanh r1 - atanh r2) / sqrt(2 / (n - 3)).
    One zoo, two scores correlated ``r12`` with each other: Steiger (1980, Eq. 14), z = (atanh r1 - atanh r2)
    sqrt(n - 3) / sqrt(2 - 2 c), c = psi / (1 - rbar^2)^2, psi = r12 (1 - 2 rbar^2) - rbar^2 (1 - 2 rbar^2 -
    r12^2) / 2, rbar = (r1 + r2) / 2. Compare |z| with the normal quantile.
    """
    for name, r in (("r1", r1), ("r2", r2), ("r12", r12)):
        if r is not None and not -1 < r < 1:
            raise ValueError(f"{name} must be a correlation strictly between -1 and 1, got {r}")
    if n_models < 4:
        raise ValueError(f"need at least 4 models for the z test, got {n_models}")
    if r12 is not None and 1 - r1**2 - r2**2 - r12**2 + 2 * r1 * r2 * r12 <= 0:
        raise ValueError(f"no three variables have correlations r1 = {r1}, r2 = {r2} and r12 = {r12}")
    diff = math.atanh(r1) - math.atanh(r2)
    if r12 is None:
        return diff / math.sqrt(2 / (n_models - 3))
    rbar = (r1 + r2) / 2
    psi = r12 * (1 - 2 * rbar**2) - 0.5 * rbar**2 * (1 - 2 * rbar**2 - r12**2)
    c = psi / (1 - rbar**2) ** 2
    return diff * math.sqrt(n_models - 3) / math.sqrt(2 - 2 * c)


def inter_score_r(scores: pd.DataFrame, a: str, b: str) -> float:
    """Pearson r between scores ``a`` and ``b`` over the models that have both, each oriented so that higher is
    better (``REGISTRY``): the r12 of :func:`correlation_difference_z` for one zoo."""
    both = scores[[a, b]].dropna()
    sign = [1.0 if REGISTRY[n].higher_is_better else -1.0 for n in (a, b)]
    return _value("pearson", sign[0] * both[a].to_numpy(float), sign[1] * both[b].to_numpy(float), True)


def min_models(r1: float, r2: float, r12: float | None = None, alpha: float = 0.05, limit: int = 100_000) -> int:
    """Smallest zoo size at which correlations ``r1`` and ``r2`` (as observed) differ significantly, two-sided at
    ``alpha``, by :func:`correlation_difference_z` (``r12`` None: two independent zoos). Raises ``ValueError``
    beyond ``limit`` models (e.g. r1 == r2)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    critical = stats.norm.ppf(1 - alpha / 2)
    lo, hi = 4, 4
    while abs(correlation_difference_z(r1, r2, hi, r12)) < critical:  # |z| grows with sqrt(n - 3)
        lo, hi = hi + 1, hi * 2
        if hi > limit:
            raise ValueError(f"{r1} and {r2} stay within noise up to {limit} models")
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if abs(correlation_difference_z(r1, r2, mid, r12)) < critical else (lo, mid)
    return lo


def min_models_grid(r1: float, r2: Sequence[float], r12: Sequence[float | None], alpha: float = 0.05) -> pd.DataFrame:
    """:func:`min_models` of ``r1`` against each of ``r2`` for each inter-score correlation ``r12`` (None:
    independent zoos). Columns r1, r2, r12, models (NaN beyond 100,000 models or where r1, r2 and r12 cannot
    be the correlations of three variables)."""
    rows = []
    for c, r in itertools.product(r12, r2):
        m: float
        try:
            m = min_models(r1, r, c, alpha)
        except ValueError:
            m = float("nan")
        rows.append({"r1": r1, "r2": r, "r12": c, "models": m})
    return pd.DataFrame(rows)


def min_seeds(runs: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Seeds needed to tell each model from the next one by mean performance.

    For models ranked by mean ``test_metric`` over their seeds, each neighbouring pair (a above b) gets
    gap = mean_a - mean_b, the seed standard deviations s_a, s_b (ddof 1) and the seeds n at which the gap is
    z_{1-alpha/2} standard errors, n = ceil(z^2 (s_a^2 + s_b^2) / gap^2). NaN with fewer than 2 seeds.
    """
    g = runs.groupby("model")["test_metric"]
    stat = pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "seeds": g.size()}).sort_values("mean", ascending=False)
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for (a, ra), (b, rb) in itertools.pairwise(stat.iterrows()):
        gap, var = ra["mean"] - rb["mean"], ra["sd"] ** 2 + rb["sd"] ** 2
        need = math.ceil(z**2 * var / gap**2) if gap > 0 and np.isfinite(var) else float("nan")
        rows.append({"better": a, "worse": b, "gap": gap, "sd_better": ra["sd"], "sd_worse": rb["sd"],
                     "seeds_run": int(min(ra["seeds"], rb["seeds"])), "seeds_needed": need})  # fmt: skip
    return pd.DataFrame(rows)


def seed_agreement(runs: pd.DataFrame, measure: str = "kendall") -> pd.DataFrame:
    """How well the ground truth agrees with itself: ``measure`` between the rankings of the models by test metric
    of every pair of transfer seeds (one row per pair: seed_a, seed_b, value, n_models). A score's agreement with
    the mean over seeds cannot be judged more finely than the seeds agree with each other. ``runs``: one row per
    (model, seed) with ``test_metric``; an empty table with fewer than 2 seeds."""
    _check_measures((measure,))
    table = runs.pivot(index="model", columns="seed", values="test_metric")
    rows = []
    for a, b in itertools.combinations(table.columns, 2):
        pair = table[[a, b]].dropna()
        rows.append({"seed_a": a, "seed_b": b, "value": _value(measure, pair[a].to_numpy(), pair[b].to_numpy(), True),
                     "n_models": len(pair)})  # fmt: skip
    return pd.DataFrame(rows, columns=["seed_a", "seed_b", "value", "n_models"])


# --------------------------------------------------------------------------------------------------------------
# Zoo composition and model size
# --------------------------------------------------------------------------------------------------------------
def subsets_sweep(
    scores: pd.DataFrame,
    performance: pd.Series,
    measures: Sequence[str] = ("pearson", "kendall"),
    min_size: int = 3,
    max_subsets: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Measures of every score on every sub-zoo of at least ``min_size`` models, or on ``max_subsets`` of them
    drawn uniformly without replacement (``numpy.random.default_rng(seed)``) where there are more (a zoo of 14
    has 16,278).

    Scores are those of the full zoo, not recomputed (zoo-level scores such as NCTI keep their full-zoo
    normalisation). Columns subset ('+'-joined models), size, spread (max - min performance in the subset),
    score, measure, value; plus one boolean column per model: whether the subset holds it.
    """
    perf = pd.Series(performance, dtype=float).loc[scores.index]
    if not 2 <= min_size <= len(perf):
        raise ValueError(f"min_size must be in 2..{len(perf)} (the zoo's size), got {min_size}")
    if max_subsets < 1:
        raise ValueError(f"max_subsets must be a positive number of sub-zoos, got {max_subsets}")
    subsets = [c for size in range(min_size, len(perf) + 1) for c in itertools.combinations(perf.index, size)]
    if len(subsets) > max_subsets:
        keep = np.sort(np.random.default_rng(seed).choice(len(subsets), size=max_subsets, replace=False))
        subsets = [subsets[i] for i in keep]
    parts = []
    for subset in subsets:
        table = measure_values(scores.loc[list(subset)], perf.loc[list(subset)], measures)
        long = table.reset_index().melt(id_vars="score", var_name="measure")
        parts.append(long.assign(subset="+".join(subset), size=len(subset), spread=np.ptp(perf.loc[list(subset)]),
                                 **{m: m in subset for m in perf.index}))  # fmt: skip
    out = pd.concat(parts, ignore_index=True)
    return out[["subset", "size", "spread", "score", "measure", "value", *perf.index]]


def spread_effect(sweep: pd.DataFrame, measure: str = "kendall") -> pd.Series:
    """score -> Spearman rho, over the sub-zoos of :func:`subsets_sweep`, between a sub-zoo's performance spread
    and the score's ``measure`` on it (> 0: the wider the zoo, the better the score looks)."""
    data = sweep[sweep["measure"] == measure].dropna(subset=["value"])
    out = {}
    for name, g in data.groupby("score", sort=False):
        out[name] = _value("spearman", g["spread"].to_numpy(), g["value"].to_numpy(), True) if len(g) > 1 else np.nan
    return pd.Series(out, name=f"rho(spread, {measure})", dtype=float).rename_axis("score")


def with_without(
    scores: pd.DataFrame,
    performance: pd.Series,
    models: Sequence[str],
    measures: Sequence[str] = ("pearson", "kendall"),
) -> pd.DataFrame:
    """Every score's measures on the full zoo and on the zoo without ``models``: columns score, measure, with,
    without, change (with - without)."""
    unknown = sorted(set(models) - set(scores.index))
    if unknown or not models:
        raise ValueError(f"models to leave out must be a non-empty subset of the zoo; unknown: {unknown}")
    rest = [m for m in scores.index if m not in models]
    full = measure_values(scores, performance.loc[scores.index], measures)
    part = measure_values(scores.loc[rest], performance.loc[rest], measures)
    out = pd.DataFrame({"with": full.stack(future_stack=True), "without": part.stack(future_stack=True)})
    out["change"] = out["with"] - out["without"]
    return out.rename_axis(["score", "measure"]).reset_index()


def size_table(params: pd.Series, scores: pd.DataFrame, performance: pd.Series) -> pd.DataFrame:
    """Rank correlations (Kendall tau-b) over the zoo of model size with performance and with each score.

    ``params``: model -> parameter count. Returns one row per score (the first row, ``performance``, is size
    against performance) with columns tau_size (the score, oriented so higher is better, against size) and
    tau_performance (the score against performance; NaN for the first row).
    """
    params = pd.Series(params, dtype=float)
    perf = pd.Series(performance, dtype=float).loc[params.index]
    rows = [{"score": "performance", "tau_size": _value("kendall", perf.to_numpy(), params.to_numpy(), True),
             "tau_performance": float("nan")}]  # fmt: skip
    for name in scores.columns:
        col = scores[name].dropna()
        higher = REGISTRY[name].higher_is_better
        rows.append({"score": name,
                     "tau_size": _value("kendall", col.to_numpy(float), params.loc[col.index].to_numpy(), higher),
                     "tau_performance": _value("kendall", col.to_numpy(float), perf.loc[col.index].to_numpy(),
                                               higher)})  # fmt: skip
    return pd.DataFrame(rows)


def size_pairs(params: pd.Series, scores: pd.DataFrame, performance: pd.Series, tolerance: float = 0.2) -> pd.DataFrame:
    """Pairs of models of different size that a score cannot tell apart, and which of the two performs better.

    For each score, a pair is *close* when the two scores differ by at most ``tolerance`` times the score's range
    over the zoo. Columns score, smaller, larger, score_gap (in units of that range, oriented: > 0 when the
    score prefers the smaller model), performance_gap (smaller minus larger; > 0: the smaller model wins).
    """
    if not 0 <= tolerance <= 1:
        raise ValueError(f"tolerance must be in [0, 1] (a fraction of the score's range), got {tolerance}")
    params = pd.Series(params, dtype=float)
    perf = pd.Series(performance, dtype=float)
    rows = []
    for name in scores.columns:
        col = scores[name].dropna()
        span = np.ptp(col.to_numpy(float)) if len(col) else 0.0
        sign = 1.0 if REGISTRY[name].higher_is_better else -1.0
        for a, b in itertools.combinations(col.index, 2):
            if params[a] == params[b] or span == 0:
                continue
            small, large = (a, b) if params[a] < params[b] else (b, a)
            gap = sign * (col[small] - col[large]) / span
            if abs(gap) <= tolerance:
                rows.append({"score": name, "smaller": small, "larger": large, "score_gap": gap,
                             "performance_gap": perf[small] - perf[large]})  # fmt: skip
    return pd.DataFrame(rows, columns=["score", "smaller", "larger", "score_gap", "performance_gap"])


def per_layer(scores: pd.DataFrame, performance: pd.Series, measure: str = "kendall") -> pd.DataFrame:
    """``measure`` of every score within each layer (models compared at the same depth) and over all (layer,
    model) candidates pooled (``layer`` "all"): columns layer, score, value."""
    rows = []
    groups = [(layer, g.droplevel("layer")) for layer, g in scores.groupby(level="layer", sort=False)]
    flat = scores.set_axis(["/".join(i) for i in scores.index], axis=0)
    flat_perf = performance.set_axis(flat.index, axis=0)
    for layer, table in [*groups, ("all", flat)]:
        perf = flat_perf if layer == "all" else performance.xs(layer, level="layer")
        values = measure_values(table, perf, (measure,))[measure]
        rows += [{"layer": layer, "score": s, "value": v} for s, v in values.items()]
    return pd.DataFrame(rows)


def separated(measures: pd.DataFrame, score: str, measure: str = "weighted_kendall") -> pd.DataFrame:
    """Per case (every value of the columns of ``measures`` other than score, measure, value, low, high, n_models:
    e.g. track and strategy), whether ``score`` has the best ``measure`` and whether its 95 % interval lies wholly
    above every other score's (``above``) or wholly below some other score's (``below``). ``measures``: tidy rows
    of :func:`nclib.evaluate.correlation_table` with the case columns added. Columns: the case columns, best,
    above, below."""
    rows = measures[measures["measure"] == measure]
    cases = [c for c in rows.columns if c not in ("score", "measure", "value", "low", "high", "n_models")]
    out = []
    for case, g in rows.groupby(cases, sort=False):
        g = g.set_index("score")
        if score not in g.index:
            continue
        own, others = g.loc[score], g.drop(index=score)
        out.append({**dict(zip(cases, case if isinstance(case, tuple) else (case,), strict=True)),
                    "best": bool(g["value"].idxmax() == score), "above": bool(own["low"] > others["high"].max()),
                    "below": bool(own["high"] < others["low"].max())})  # fmt: skip
    return pd.DataFrame(out, columns=[*cases, "best", "above", "below"])


def hev_parts(terms: pd.DataFrame, performance: pd.Series, n: int = 1000) -> pd.DataFrame:
    """Weighted tau (with a 95 % bootstrap interval over models, :func:`nclib.evaluate.bootstrap_ci`) against
    ``performance`` of HEV's parts: E_train, E_val, min(E_train, E_val) (HEV without its size prior) and the
    label-free HEV. ``terms``: :func:`nclib.stages.sweeps.hev_table`. Columns variant, value, low, high."""
    parts = {"E_train": terms["e_train"], "E_val": terms["e_val"],
             "HEV without size prior": terms[["e_train", "e_val"]].min(axis=1),
             "label-free HEV": terms["label_free_hev"]}  # fmt: skip
    rows = []
    for variant, values in parts.items():
        value, low, high = bootstrap_ci(weighted_kendall, values, performance.loc[values.index], n=n)
        rows.append({"variant": variant, "value": value, "low": low, "high": high})
    return pd.DataFrame(rows)


def head_validation(runs: pd.DataFrame) -> pd.Series:
    """model -> mean over seeds of the validation metric of the transferred model at its best epoch
    (``pipeline.transfer_results``): the reference that costs a full transfer per model."""
    return runs.groupby("model", sort=False)["val_metric"].mean().rename("head_val")


def split_taus(scores: pd.DataFrame, performance: Mapping[str, pd.Series], measure: str = "kendall") -> pd.DataFrame:
    """``measure`` of every score with each performance (``performance``: panel name -> model -> metric), scored
    on training and on validation embeddings (``scores``: :func:`split_scores`). Columns panel, score, train, val."""
    parts = []
    for panel, perf in performance.items():
        by_split = {s: measure_values(scores.xs(s, level="split"), perf, (measure,))[measure] for s in ("train", "val")}
        parts.append(pd.DataFrame(by_split).rename_axis("score").reset_index().assign(panel=panel))
    return pd.concat(parts, ignore_index=True)[["panel", "score", "train", "val"]]


def top_picks(scores: pd.DataFrame, performance: pd.Series) -> pd.DataFrame:
    """For every score: the model it ranks first, that model's rank by performance (1 = best) and the top-1
    regret (best performance minus the pick's). Ties in the score: the worse-performing model (conservative)."""
    perf = pd.Series(performance, dtype=float)
    rank = perf.rank(ascending=False, method="min")
    rows = []
    for name in scores.columns:
        col = scores[name].dropna()
        if col.empty:
            continue
        oriented = col if REGISTRY[name].higher_is_better else -col
        tied = oriented.index[oriented == oriented.max()]
        pick = perf.loc[tied].idxmin()
        rows.append({"score": name, "pick": pick, "pick_rank": int(rank[pick]), "regret": perf.max() - perf[pick]})
    return pd.DataFrame(rows)
