"""The book's figures and tables, in seaborn / matplotlib, readable in print.

Every plotting function returns a ``matplotlib.figure.Figure``, already closed in pyplot (a notebook displays the
returned figure once, and nothing stays alive), and writes it to ``path`` (PNG, parent folders created) when
one is given.
Axis labels carry units, every score's direction is stated ("lower is better" for NC), and figure titles name
the profile that produced the numbers.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from nclib.evaluate import LOWER_IS_BETTER, drop_constant
from nclib.scores import REGISTRY

# What a score's value is measured in (see each score's docstring in nclib.scores).
SCORE_UNITS: dict[str, str] = {
    "nc": "dimensionless ratio",
    "nc_demo": "dimensionless ratio",
    "leep": "mean log-likelihood, nats",
    "nleep": "mean log-likelihood, nats",
    "nce": "negative conditional entropy, nats",
    "logme": "log evidence per sample, nats",
    "hscore": "dimensionless",
    "hscore_shrink": "dimensionless",
    "transrate": "coding-rate gain, nats",
    "gbc": "negative Bhattacharyya overlap, dimensionless",
    "sfda": "mean true-class posterior, probability",
    "ncti": "sum of zoo-normalised terms, dimensionless",
    "hev": "held-out log density per sample, nats",
}
METRIC_LABELS: dict[str, str] = {
    "accuracy": "test accuracy (fraction correct)",
    "auroc": "test AUROC (0.5 = chance, 1 = perfect)",
}
MEASURE_LABELS: dict[str, str] = {
    "abs_pearson": "|Pearson r|",
    "pearson": "Pearson r",
    "spearman": "Spearman rho",
    "kendall": "Kendall τ",
    "weighted_kendall": "weighted τ",
    "top1_regret": "top-1 regret",
    "relative_topk": "rel@1",
}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # with the colour, tells models apart in grey print too
_STYLE = {"style": "whitegrid", "context": "paper", "font_scale": 1.25, "palette": "colorblind"}
_DPI = 150


def direction(score: str) -> str:
    """'higher is better' or 'lower is better', from ``nclib.scores.REGISTRY``."""
    return "higher is better" if REGISTRY[score].higher_is_better else "lower is better"


def score_label(score: str) -> str:
    """Axis label of a score: its name, then its unit on a second line, e.g. 'NC score' / '(dimensionless ratio)'."""
    return f"{score.upper()} score\n({SCORE_UNITS.get(score, 'arbitrary units')})"


@contextlib.contextmanager
def _styled() -> Iterator[None]:
    """The book's seaborn style and plotting context (``_STYLE``), for the figure drawn inside."""
    with sns.axes_style(_STYLE["style"]), sns.plotting_context(_STYLE["context"], font_scale=_STYLE["font_scale"]):
        yield


def _figure(nrows: int, ncols: int, panel: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    fig = plt.figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    plt.close(fig)  # shown once, by the notebook's display of the returned figure
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    return fig, axes


def _save(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=_DPI)
    return fig


def _paper_values(paper: pd.DataFrame | None) -> dict[str, float]:
    """score -> the paper's |Pearson r| from rows with columns ``score`` and ``abs_pearson`` (or None)."""
    if paper is None or paper.empty:
        return {}
    return dict(zip(paper["score"], paper["abs_pearson"].astype(float), strict=True))


def _measure(measures: pd.DataFrame, score: str, measure: str) -> float:
    row = measures[(measures["score"] == score) & (measures["measure"] == measure)]
    return float(row["value"].iloc[0]) if len(row) else float("nan")


def score_vs_performance(
    scores: pd.DataFrame,
    performance: pd.Series,
    measures: pd.DataFrame,
    *,
    metric: str,
    profile: str,
    title: str,
    paper: pd.DataFrame | None = None,
    spread: pd.Series | None = None,
    ncols: int = 3,
    path: str | os.PathLike | None = None,
) -> Figure:
    """One panel per score: each model's score (x) against its downstream performance (y), models named.

    ``scores``: models x scores (NaN where a score does not apply to a model); ``performance``: model -> mean
    test metric; ``measures``: ``nclib.evaluate.correlation_table`` of the same (direction-aware, so a positive
    tau means the score ranks the models the right way round); ``metric``: 'accuracy' or 'auroc';
    ``paper``: rows of ``pipeline.paper_reported()`` for this figure and strategy (columns score, abs_pearson),
    shown beside our |Pearson r|; ``spread``: model -> standard deviation of the metric over transfer seeds, drawn
    as a vertical bar of +-1 sd. Each panel prints |Pearson r|, Kendall tau, weighted tau and the number of models
    the score has a value for; a score absent from ``measures`` (e.g. left out because it is constant over the
    zoo) is drawn with "no correlation".
    """
    names = [s for s in scores.columns if scores[s].notna().sum() > 0]
    if not names:
        raise ValueError("no score has a value for any model")
    reported = _paper_values(paper)
    constant = set(scores.columns) - set(drop_constant(scores).columns)
    nrows = -(-len(names) // ncols)
    with _styled():
        fig, axes = _figure(nrows, min(ncols, len(names)), (3.6, 3.3))
        palette = sns.color_palette(_STYLE["palette"], len(performance))
        style = {m: (palette[i], _MARKERS[i % len(_MARKERS)]) for i, m in enumerate(performance.index)}
        for ax, score in zip(axes, names, strict=False):
            col = scores[score].dropna()
            for model, xv in col.items():
                colour, marker = style[model]
                if spread is not None and np.isfinite(spread.get(model, np.nan)):
                    ax.errorbar([xv], [performance[model]], yerr=[spread[model]], color=colour, linewidth=1,
                                zorder=2)
                ax.scatter([xv], [performance[model]], s=60, color=colour, marker=marker, edgecolor="black",
                           linewidth=0.5, zorder=3)
                ax.annotate(str(model), (xv, performance[model]), xytext=(4, 4), textcoords="offset points",
                            fontsize="x-small")
            paper_r = f" (paper {reported[score]:.2f})" if score in reported else ""
            if (measures["score"] == score).any():
                ours = f"|r| = {_measure(measures, score, 'abs_pearson'):.2f}{paper_r}, n = {len(col)}"
                taus = (f"Kendall τ = {_measure(measures, score, 'kendall'):.2f}, "
                        f"weighted τ = {_measure(measures, score, 'weighted_kendall'):.2f}")
            else:  # left out of the measures, e.g. constant over the zoo: no correlation is defined
                ours = f"no correlation{paper_r}, n = {len(col)}"
                taus = "constant over the zoo" if score in constant else "not measured"
            ax.set_title(f"{score.upper()} ({direction(score)})\n{ours}\n{taus}", fontsize="small")
            ax.set_xlabel(score_label(score), fontsize="small")
            ax.set_ylabel(METRIC_LABELS[metric] if ax.get_subplotspec().is_first_col() else "", fontsize="small")
            ax.margins(x=0.15, y=0.12)
        for ax in axes[len(names):]:
            ax.set_visible(False)
        handles = [Line2D([], [], marker=mk, linestyle="", markersize=8, markerfacecolor=c, markeredgecolor="black",
                          markeredgewidth=0.5) for c, mk in style.values()]  # fmt: skip
        fig.legend(handles, list(style), loc="outside lower center", ncols=min(len(style), 6), title="model")
        fig.suptitle(f"{title} (profile '{profile}', {len(performance)} models)")
    return _save(fig, path)


def measures_table(measures: pd.DataFrame, paper: pd.DataFrame | None = None, digits: int = 2) -> pd.DataFrame:
    """Wide, printable form of ``correlation_table``: one row per score, one column per measure as
    'value [low, high]' (bootstrap interval), the score's direction ('better': lower or higher), and the
    paper's |Pearson r| beside ours where the paper reports it."""
    reported = _paper_values(paper)
    table = measures.assign(
        cell=[f"{v:.{digits}f} [{lo:.{digits}f},\u00a0{hi:.{digits}f}]"  # no-break space: wraps before "["
              for v, lo, hi in zip(measures["value"], measures["low"], measures["high"], strict=True)]
    ).pivot(index="score", columns="measure", values="cell")
    table = table.reindex(index=measures["score"].unique(), columns=measures["measure"].unique())
    table.columns = [MEASURE_LABELS.get(m, m) for m in table.columns]
    table.insert(0, "better", [direction(s).split()[0] for s in table.index])
    if "|Pearson r|" in table.columns:
        where = table.columns.get_loc("|Pearson r|") + 1
        table.insert(where, "paper |Pearson r|", [f"{reported[s]:.2f}" if s in reported else "" for s in table.index])
    table.index.name = "score"
    return table


def _project(features: np.ndarray, method: str, seed: int) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (len(x) - 1) / 3)
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")


def embedding_panels(
    first: np.ndarray,
    last: np.ndarray,
    labels: np.ndarray,
    method: str = "pca",
    *,
    profile: str,
    titles: tuple[str, str] = ("first epoch", "last epoch"),
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Figure 1 (a, b): two N x D embeddings of the same N samples (e.g. the first and the last epoch of
    training), each projected to 2-D on its own by the same ``method`` ('pca' or 'tsne'), coloured by class."""
    labels = np.asarray(labels)
    if len(first) != len(labels) or len(last) != len(labels):
        raise ValueError(f"first ({len(first)}), last ({len(last)}) and labels ({len(labels)}) must have equal length")
    classes = np.unique(labels)
    names = list(class_names) if class_names is not None else [str(c) for c in classes]
    if len(names) != len(classes):
        raise ValueError(f"{len(names)} class names for {len(classes)} classes")
    axis = {"pca": "principal component {} (embedding units)", "tsne": "t-SNE dimension {} (arbitrary units)"}
    with _styled():
        fig, axes = _figure(1, 2, (4.6, 4.2))
        palette = sns.color_palette(_STYLE["palette"], len(classes))
        for ax, feats, tag, title in zip(axes, (first, last), "ab", titles, strict=True):
            xy = _project(feats, method, seed)
            for colour, cls, name in zip(palette, classes, names, strict=True):
                pts = xy[labels == cls]
                ax.scatter(pts[:, 0], pts[:, 1], s=12, color=colour, label=name, alpha=0.8, linewidth=0)
            ax.set_title(f"({tag}) {title}")
            ax.set_xlabel(axis[method].format(1))
            ax.set_ylabel(axis[method].format(2))
        axes[1].legend(title="class", fontsize="x-small", loc="center left", bbox_to_anchor=(1.02, 0.5))
        fig.suptitle(f"Penultimate embeddings, {method.upper()} (profile '{profile}')")
    return _save(fig, path)


# NC1-NC4 panels: (title, columns, direction). Columns absent from the table are skipped.
_COLLAPSE_PANELS = (
    ("NC1: within-class variability", ("nc1",), "lower is better"),
    ("NC2: distance from a simplex ETF", ("nc2_equinorm", "nc2_equiangularity", "nc2_angle_gap"), "lower is better"),
    ("NC3: classifier vs class means", ("nc3",), "lower is better"),
    ("NC4: agreement with nearest class mean", ("nc4",), "higher is better"),
)


def collapse_curves(
    diagnostics: pd.DataFrame, *, profile: str, nc1_target: float | None = None, path: str | os.PathLike | None = None
) -> Figure:
    """Figure 1 (c): the neural-collapse diagnostics NC1-NC4 (``nclib.collapse.diagnostics``) over epochs.

    ``diagnostics``: one row per epoch, column ``epoch`` (or the index) and columns nc1, nc2_equinorm,
    nc2_equiangularity, nc2_angle_gap, nc3, nc4. NC1 is drawn on a log scale; ``nc1_target`` (e.g. 0.1 x the first
    epoch's NC1, a collapse criterion) is drawn on it as a dashed line.
    """
    table = diagnostics if "epoch" in diagnostics.columns else diagnostics.rename_axis("epoch").reset_index()
    panels = [(t, [c for c in cols if c in table.columns], d) for t, cols, d in _COLLAPSE_PANELS]
    panels = [p for p in panels if p[1]]
    if not panels:
        raise ValueError(f"no NC diagnostics among the columns {list(diagnostics.columns)}")
    with _styled():
        ncols = min(2, len(panels))
        fig, axes = _figure(-(-len(panels) // ncols), ncols, (4.4, 3.4))
        for ax, (title, cols, better) in zip(axes, panels, strict=False):
            for col, colour in zip(cols, sns.color_palette(_STYLE["palette"], len(cols)), strict=True):
                ax.plot(table["epoch"], table[col], marker="o", markersize=4, color=colour,
                        label=col.removeprefix("nc2_"))
            if cols == ["nc1"] and (table["nc1"] > 0).all():
                ax.set_yscale("log")
            if cols == ["nc1"] and nc1_target is not None:
                ax.axhline(nc1_target, color="0.4", linestyle="--", linewidth=1, label=f"target {nc1_target:.3g}")
                ax.legend(fontsize="x-small")
            if len(cols) > 1:
                ax.legend(fontsize="x-small")
            ax.set_title(f"{title}\n({better})", fontsize="small")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_ylabel("value (dimensionless)")
        fig.suptitle(f"Neural-collapse diagnostics during training (profile '{profile}')")
    return _save(fig, path)


def training_curves(
    history: pd.DataFrame,
    *,
    metric: str,
    profile: str,
    roles: Mapping[str, str] | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Figure 4: training loss and validation metric per epoch, one line per model (mean over seeds, with the
    min-max band of the seeds).

    ``history``: long table with columns model, seed, epoch, train_loss, val_metric; ``roles``: optional
    role -> model, named in the legend (e.g. {"NC's first choice": "dcase_asc"}; one model may have several).
    """
    missing = {"model", "seed", "epoch", "train_loss", "val_metric"} - set(history.columns)
    if missing:
        raise ValueError(f"history lacks column(s) {sorted(missing)}")
    tags: dict[str, list[str]] = {}
    for role, model in (roles or {}).items():
        tags.setdefault(model, []).append(role)
    data = history.assign(model=[f"{m} ({'; '.join(tags[m])})" if m in tags else m for m in history["model"]])
    val_label = {"accuracy": "validation accuracy (fraction correct)", "auroc": "validation AUROC"}[metric]
    with _styled():
        fig, axes = _figure(1, 2, (5.0, 3.8))
        for ax, col, ylabel in zip(axes, ("train_loss", "val_metric"),
                                   ("training loss (cross-entropy, nats)", val_label), strict=True):
            sns.lineplot(data=data, x="epoch", y=col, hue="model", style="model", markers=True, dashes=False,
                         errorbar=("pi", 100), palette=_STYLE["palette"], ax=ax)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
        axes[0].set_title("(a) training loss (lower is better)")
        axes[1].set_title(f"(b) {val_label.split(' (')[0]} (higher is better)")
        handles, names = axes[1].get_legend_handles_labels()
        for ax in axes:
            ax.get_legend().remove()
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 3), title="model")
        n_seeds = history["seed"].nunique()
        fig.suptitle(f"Fine-tuning on the downstream task, mean of {n_seeds} seed(s) (profile '{profile}')")
    return _save(fig, path)


# Figures of the chapter "Pitfalls, measured", drawn from the tables of nclib.pitfalls.


def plot_draws(draws: pd.DataFrame, *, profile: str, title: str, path: str | os.PathLike | None = None) -> Figure:
    """Box plots of each score's measures over bootstrap draws: one row of panels per ``source`` (what was
    resampled), one column per measure. ``draws``: columns source, score, measure, value."""
    sources, measures = list(dict.fromkeys(draws["source"])), list(dict.fromkeys(draws["measure"]))
    order = list(dict.fromkeys(draws["score"]))
    with _styled():
        fig, axes = _figure(len(sources), len(measures), (4.2, 0.32 * len(order) + 1.4))
        for ax, (src, m) in zip(axes, itertools.product(sources, measures), strict=True):
            data = draws[(draws["source"] == src) & (draws["measure"] == m)].dropna(subset=["value"])
            sns.boxplot(data=data, x="value", y="score", order=order, ax=ax, color="0.8", fliersize=2, width=0.6)
            better = "lower" if m in LOWER_IS_BETTER else "higher"
            ax.set_title(f"over {src}", fontsize="small")
            ax.set_xlabel(f"{m} ({better} is better)")
            ax.set_ylabel("")
            ax.axvline(0, color="0.4", linewidth=0.8)
        fig.suptitle(f"{title} (profile '{profile}')")
    return _save(fig, path)


def plot_min_models(grid: pd.DataFrame, *, claim: tuple[float, float], zoo_size: int, profile: str,
                    path: str | os.PathLike | None = None) -> Figure:  # fmt: skip
    """Zoo size needed (log scale) against the weaker correlation r2, one line per inter-score correlation r12
    (``min_models_grid``); the paper's ``claim`` (r1, r2) and our ``zoo_size`` are marked."""
    data = grid.assign(pairing=["independent zoos" if pd.isna(c) else f"one zoo, r12 = {c:g}" for c in grid["r12"]])
    with _styled():
        fig, axes = _figure(1, 1, (6.2, 4.2))
        ax = axes[0]
        sns.lineplot(data=data, x="r2", y="models", hue="pairing", style="pairing", ax=ax, palette=_STYLE["palette"])
        ax.set_yscale("log")
        ax.axvline(claim[1], color="0.3", linestyle=":", linewidth=1)
        ax.axhline(zoo_size, color="0.3", linestyle="--", linewidth=1)
        ax.annotate(f"our zoo: {zoo_size} models", (ax.get_xlim()[0], zoo_size), xytext=(4, 4),
                    textcoords="offset points", fontsize="small")  # fmt: skip
        ax.set_xlabel(f"weaker correlation r2 (r1 = {claim[0]:.2f}; dotted: r2 = {claim[1]:.2f})")
        ax.set_ylabel("models needed for p < 0.05 (log scale)")
        fig.suptitle(f"Zoo size before r1 - r2 is more than noise (profile '{profile}')")
    return _save(fig, path)


def plot_subsets(sweep: pd.DataFrame, measure: str, *, weak: Sequence[str], profile: str, title: str,
                 path: str | os.PathLike | None = None) -> Figure:  # fmt: skip
    """``measure`` of each score (one panel each) on every sub-zoo against the sub-zoo's performance spread;
    sub-zoos holding any of the ``weak`` models are drawn as crosses."""
    data = sweep[sweep["measure"] == measure].dropna(subset=["value"])
    data = data.assign(holds=np.where(data[list(weak)].any(axis=1), f"with {', '.join(weak)}",
                                      "without") if weak else "all")  # fmt: skip
    names = list(dict.fromkeys(data["score"]))
    ncols = min(4, len(names))
    with _styled():
        fig, axes = _figure(-(-len(names) // ncols), ncols, (3.2, 2.9))
        for ax, name in zip(axes, names, strict=False):
            sns.scatterplot(data=data[data["score"] == name], x="spread", y="value", hue="holds", style="holds",
                            markers={"without": "o", "all": "o", f"with {', '.join(weak)}": "X"}, ax=ax,
                            legend=False, s=30, palette=_STYLE["palette"])  # fmt: skip
            ax.set_title(f"{name.upper()} ({direction(name)})", fontsize="small")
            ax.set_xlabel("performance spread of the sub-zoo", fontsize="small")
            ax.set_ylabel(measure if ax.get_subplotspec().is_first_col() else "", fontsize="small")
            ax.axhline(0, color="0.4", linewidth=0.8)
        for ax in axes[len(names):]:
            ax.set_visible(False)
        note = f"crosses: sub-zoos with {', '.join(weak)}" if weak else "every sub-zoo"
        fig.suptitle(f"{title}\n{note} (profile '{profile}')")
    return _save(fig, path)


def plot_size(params: pd.Series, performance: pd.Series, table: pd.DataFrame, *, metric: str, profile: str,
              title: str, path: str | os.PathLike | None = None) -> Figure:  # fmt: skip
    """(a) performance against parameter count (log scale), models named; (b) each score's Kendall tau with
    size against its tau with performance (``size_table``)."""
    with _styled():
        fig, axes = _figure(1, 2, (4.8, 4.0))
        ax = axes[0]
        ax.scatter(params, performance.loc[params.index], s=50, edgecolor="black", zorder=3)
        for m in params.index:
            ax.annotate(m, (params[m], performance[m]), xytext=(4, 4), textcoords="offset points", fontsize="x-small")
        ax.set_xscale("log")
        ax.set_xlabel("parameters (log scale)")
        ax.set_ylabel(f"test {metric} (higher is better)")
        ax.set_title("(a) performance and size", fontsize="small")
        ax = axes[1]
        rows = table[table["score"] != "performance"]
        ax.scatter(rows["tau_size"], rows["tau_performance"], s=40, edgecolor="black", zorder=3)
        for _, r in rows.iterrows():
            ax.annotate(r["score"], (r["tau_size"], r["tau_performance"]), xytext=(3, 3), textcoords="offset points",
                        fontsize="x-small")  # fmt: skip
        ax.axhline(0, color="0.4", linewidth=0.8)
        ax.axvline(0, color="0.4", linewidth=0.8)
        ax.set_xlim(-1.1, 1.1)
        ax.set_ylim(-1.1, 1.1)
        ax.set_xlabel("Kendall τ of the score with size")
        ax.set_ylabel("Kendall τ of the score with performance")
        ax.set_title("(b) does a score track size or performance?", fontsize="small")
        fig.suptitle(f"{title} (profile '{profile}')")
    return _save(fig, path)


def plot_layers(performance: pd.Series, taus: pd.DataFrame, *, metric: str, profile: str, title: str,
                path: str | os.PathLike | None = None) -> Figure:  # fmt: skip
    """(a) linear-head performance of each model at each layer; (b) Kendall tau of each score within each layer
    and over all (layer, model) candidates (``per_layer``)."""
    with _styled():
        fig, axes = _figure(1, 2, (5.2, 4.4))
        data = performance.rename("value").reset_index()
        sns.pointplot(data=data, x="layer", y="value", hue="model", ax=axes[0], palette=_STYLE["palette"],
                      markersize=5, linewidth=1.2)  # fmt: skip
        axes[0].set_ylabel(f"test {metric} of a linear head (higher is better)")
        axes[0].set_xlabel("embedding layer")
        axes[0].set_title("(a) performance at each depth", fontsize="small")
        axes[0].legend(fontsize="x-small", title="model", title_fontsize="x-small")
        sns.barplot(data=taus, y="score", x="value", hue="layer", ax=axes[1], palette=_STYLE["palette"])
        axes[1].axvline(0, color="0.4", linewidth=0.8)
        axes[1].set_xlabel("Kendall τ with performance (higher is better)")
        axes[1].set_ylabel("")
        axes[1].set_title("(b) ranking models, per layer and over all", fontsize="small")
        axes[1].legend(fontsize="x-small", title="layer", title_fontsize="x-small")
        fig.suptitle(f"{title} (profile '{profile}')")
    return _save(fig, path)


def plot_splits(taus: pd.DataFrame, *, profile: str, title: str, path: str | os.PathLike | None = None) -> Figure:
    """Kendall tau of each score with test performance, scored on training (x) and validation (y) embeddings:
    one point per score, one panel per track / strategy (``taus``: columns panel, score, train, val)."""
    panels = list(dict.fromkeys(taus["panel"]))
    with _styled():
        ncols = min(2, len(panels))
        fig, axes = _figure(-(-len(panels) // ncols), ncols, (4.4, 4.4))
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        for ax, panel in zip(axes, panels, strict=False):
            rows = taus[taus["panel"] == panel]
            ax.plot([-1, 1], [-1, 1], color="0.5", linewidth=0.8, linestyle=":")
            ax.scatter(rows["train"], rows["val"], s=40, edgecolor="black", zorder=3)
            for _, r in rows.iterrows():
                ax.annotate(r["score"], (r["train"], r["val"]), xytext=(3, 3), textcoords="offset points",
                            fontsize="x-small")  # fmt: skip
            ax.set_xlim(-1.1, 1.1)
            ax.set_ylim(-1.1, 1.1)
            ax.set_xlabel("Kendall τ, scored on training data")
            ax.set_ylabel("Kendall τ, scored on validation data")
            ax.set_title(panel, fontsize="small")
        fig.suptitle(f"{title} (profile '{profile}')")
    return _save(fig, path)


def table1(zoo: pd.DataFrame) -> pd.DataFrame:
    """Table 1 of the paper beside ours: ``pipeline.audio_zoo`` with parameters in millions next to the paper's
    count (``paper_params``), the test accuracy on the source task (fraction correct) and the epochs
    of source pre-training."""
    return pd.DataFrame({
        "model": zoo["model"],
        "architecture": zoo["architecture"],
        "params (ours)": [f"{p / 1e6:.2f} M" for p in zoo["params"]],
        "params (paper)": zoo["paper_params"],
        "source task": zoo["source_task"],
        "source data": zoo["source_dataset"],
        "source accuracy": zoo["source_accuracy"].round(3),
        "epochs": zoo["epochs"],
    }).set_index("model")


# The claims ledger (nclib.claims): verdict colours from the Okabe-Ito palette.
VERDICT_COLOURS = {"reproduced": "#009E73", "not reproduced": "#D55E00", "inconclusive": "#777777",
                   "not testable": "#BBBBBB"}  # fmt: skip


def plot_claims(table: pd.DataFrame, *, profile: str, path: str | os.PathLike | None = None) -> Figure:
    """The ledger's correlations (left: our r against the paper's |r|) and differences of correlations (right:
    Δ|r| of the ordering claims, Δr of validation minus training scores), 95 % intervals coloured by verdict.
    ``table``: :func:`nclib.claims.ledger`."""
    panels = [("r", "r (oriented: higher is better)"), ("Δ", "Δ|r| (order_*), Δr validation − training (val_*)")]
    parts = [table[table["measure"] == "r"], table[table["measure"].str.startswith("Δ")]]
    height = max(3.0, 0.24 * max(len(p) for p in parts) + 1.4)
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.1):
        fig = plt.figure(figsize=(11, height), layout="constrained")
        plt.close(fig)
        for ax, part, (_, xlabel) in zip(fig.subplots(1, 2), parts, panels, strict=True):
            y = np.arange(len(part))[::-1]
            for yi, (_, r) in zip(y, part.iterrows(), strict=True):
                colour = VERDICT_COLOURS[r["verdict"]]
                ax.plot([r["low"], r["high"]], [yi, yi], color=colour, lw=2.5)
                ax.plot(r["ours"], yi, "o", color=colour, ms=5)
                if r["measure"] == "r":
                    ax.plot(float(r["paper"]), yi, "x", color="black", ms=6)
            ax.axvline(0, color="black", lw=0.8)
            ax.set_yticks(y, part["claim"], fontsize=8)
            ax.set_xlabel(xlabel)
        handles = [plt.Line2D([], [], color=VERDICT_COLOURS[v], lw=2.5, label=v) for v in list(VERDICT_COLOURS)[:3]]
        handles.append(plt.Line2D([], [], ls="", marker="x", color="black", label="paper's |r|"))
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
        fig.suptitle(f"Claims of the paper: our 95 % intervals (profile {profile})")
    return _save(fig, path)
