"""The book's figures and tables, in seaborn / matplotlib, readable on screen and in print.

Every plotting function returns a ``matplotlib.figure.Figure``, already closed in pyplot (a notebook displays the
returned figure once, and nothing stays alive), and writes it to ``path`` (PNG, parent folders created) when
one is given.
Axis labels carry units, every score's direction is stated ("lower is better" for NC), and figure titles name
the profile that produced the numbers.

One size rule holds for every figure: the book shows a figure scaled to its content column (``COLUMN_PX`` CSS px
wide in a 1,300 px window), so text of f points in a figure W inches wide shows at f * COLUMN_PX / (72 W) px
(:func:`displayed_px`). Every figure is ``WIDTH_IN`` wide (1 inch shows as 100 px) and no text is smaller than
``MIN_TEXT_PX`` there; at ``DPI`` its natural width is just under twice the column's, the size at which the
book's click-to-enlarge view (book/_static/figures.js) shows it. Models are coloured by family
(:func:`model_styles`) from a colour-blind-safe palette, and point labels are placed where they overlap nothing
(:func:`place_labels`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import textwrap
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal, NamedTuple, cast

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Annotation, Text
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Bbox

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
LEAD_SCORES = ("leep", "logme", "nc")  # the three scores of the paper's Figures 2 and 3, in its order

# The size rule (see the module docstring). Measured in headless Chromium at a 1,300 px window: the book's
# `article` column is 756 CSS px wide, and a cell's output image wider than 692 px is scaled down to 692 px.
COLUMN_PX = 692
MIN_TEXT_PX = 10.0
WIDTH_IN = 7.56  # every figure's width: 1 inch shows as 100 px, so 1 pt as 100 / 72 px
DPI = 175  # natural width with the notebook's padding ~1,360 px: over half its pixels show in the column, all enlarged
_FONT_PT = {"font.size": 8.5, "axes.titlesize": 8.5, "axes.labelsize": 8.5, "xtick.labelsize": 8.5,
            "ytick.labelsize": 8.5, "legend.fontsize": 8.5, "legend.title_fontsize": 8.5,
            "figure.titlesize": 9.5}  # fmt: skip  # 8.5 pt shows at 10.6 px (a 7.56 in figure, padded)

# Paul Tol's "muted" qualitative scheme: nine hues told apart with every common colour-vision deficiency
# (https://personal.sron.nl/~pault/). With the colour, the marker tells models apart in grey print too.
PALETTE = ("#cc6677", "#332288", "#ddcc77", "#117733", "#88ccee", "#882255", "#44aa99", "#999933", "#aa4499")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def displayed_px(fig: Figure, points: float) -> float:
    """CSS px at which text of ``points`` pt in ``fig`` shows in the book at a 1,300 px window.

    A notebook shows the figure's tight bounding box, padded by ``savefig.pad_inches`` on each side, at
    ``fig.dpi``; the page scales it down to ``COLUMN_PX`` when it is wider, and shows it at its natural size
    otherwise.
    """
    width_in = fig.get_tightbbox(_renderer(fig)).width + 2 * plt.rcParams["savefig.pad_inches"]
    return points * min(COLUMN_PX, width_in * fig.dpi) / (72 * width_in)


def _renderer(fig: Figure) -> RendererBase:
    """The renderer of ``fig``'s canvas, an Agg canvas (:func:`_figure`)."""
    return cast(FigureCanvasAgg, fig.canvas).get_renderer()


def family(model: str) -> str:
    """The network a zoo name belongs to: ``name`` for ``name@k`` (its checkpoints) and for ``name`` itself."""
    return model.partition("@")[0]


def model_styles(zoo: Sequence[str]) -> dict[str, tuple[str, str]]:
    """model -> (colour, marker) for every model of ``zoo``: one hue of ``PALETTE`` per family (:func:`family`),
    in the zoo's order, and one marker per member of a family (the name@k checkpoints of one network).

    Called with a track's whole zoo, every figure of the track gives a model the same look. A zoo of more than
    ``len(PALETTE)`` families reuses hues, and then continues the markers so that no two models look alike.
    """
    families = list(dict.fromkeys(family(m) for m in zoo))
    hue = {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(families)}
    used: Counter[str] = Counter()
    styles = {}
    for model in dict.fromkeys(zoo):
        colour = hue[family(model)]
        styles[model] = (colour, MARKERS[used[colour] % len(MARKERS)])
        used[colour] += 1
    return styles


def _track_styles(drawn: Sequence[str], zoo: Sequence[str] | None) -> dict[str, tuple[str, str]]:
    """:func:`model_styles` of ``zoo`` (default: the ``drawn`` models), which must hold every drawn model."""
    styles = model_styles(list(zoo) if zoo is not None else drawn)
    missing = [m for m in drawn if m not in styles]
    if missing:
        raise ValueError(f"model(s) {missing} are drawn but not in zoo {list(styles)}; pass the track's whole zoo")
    return styles


def _style_handles(styles: Mapping[str, tuple[str, str]]) -> list[Line2D]:
    return [Line2D([], [], marker=mk, linestyle="", markersize=7, markerfacecolor=c, markeredgecolor="black",
                   markeredgewidth=0.5) for c, mk in styles.values()]  # fmt: skip


def direction(score: str) -> str:
    """'higher is better' or 'lower is better', from ``nclib.scores.REGISTRY``."""
    return "higher is better" if REGISTRY[score].higher_is_better else "lower is better"


def score_label(score: str) -> str:
    """Axis label of a score: its name, then its unit on a second line, e.g. 'NC score' / '(dimensionless ratio)';
    a unit longer than a third of a figure's width wraps onto a third line."""
    return f"{score.upper()} score\n" + textwrap.fill(f"({SCORE_UNITS.get(score, 'arbitrary units')})", 32)


@contextlib.contextmanager
def _styled() -> Iterator[None]:
    """The book's seaborn style with the font sizes of the size rule (``_FONT_PT``), for the figure drawn inside."""
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", rc=_FONT_PT):
        yield


def _figure(nrows: int, ncols: int, height: float) -> tuple[Figure, np.ndarray]:
    """A ``WIDTH_IN`` wide figure of nrows x ncols axes, each ``height`` inches tall (plus the figure's titles)."""
    fig = plt.figure(figsize=(WIDTH_IN, height * nrows + 0.6), dpi=DPI, layout="constrained")
    plt.close(fig)  # shown once, by the notebook's display of the returned figure
    FigureCanvasAgg(fig)  # closing left a bare canvas; place_labels and displayed_px measure text on this one
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    return fig, axes


def _save(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path)
    return fig


# Label placement: offsets (pt) tried around a point, nearest first, in eight directions each; a label placed
# beyond the first ring is tied to its point by a leader line.
_RINGS_PT = (3.0, 9.0, 16.0, 25.0, 36.0)
_DIRECTIONS = ((1, 1), (-1, 1), (1, -1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
_ALIGN: dict[int, tuple[Literal["left", "center", "right"], Literal["bottom", "center", "top"]]] = {
    1: ("left", "bottom"), -1: ("right", "top"), 0: ("center", "center")}
_LEADER = {"arrowstyle": "-", "color": "0.4", "linewidth": 0.6, "shrinkA": 0, "shrinkB": 3}


def place_labels(fig: Figure, labels: Sequence[tuple[Axes, Sequence[float], Sequence[float], Sequence[str]]],
                 marker_pt: float = 8.0) -> list[Annotation]:  # fmt: skip
    """Label points so that no two labels overlap, none covers a marker and none leaves its axes.

    ``labels``: (axes, x, y, texts) in data coordinates. Draws ``fig`` once to settle its layout, then freezes
    it (the layout engine is removed, so the axes stay where the labels were measured). Each label, in the order
    given, takes the first free place among offsets at growing distances in eight directions around its point
    (``_RINGS_PT``), judged by its rendered bounding box; one placed away from its point gets a leader line, and one
    that finds no free place is left out (the figure's legend names every model). ``marker_pt``: the markers'
    width in points. Deterministic; returns the placed annotations.
    """
    fig.canvas.draw()
    fig.set_layout_engine("none")
    renderer = _renderer(fig)
    px = fig.dpi / 72
    placed: list[Annotation] = []
    for ax, xs, ys, texts in labels:
        frame = ax.get_window_extent(renderer).padded(-1)
        anchors = ax.transData.transform(np.column_stack([xs, ys]).astype(float))
        half = marker_pt * px / 2
        taken = [Bbox.from_extents(x - half, y - half, x + half, y + half) for x, y in anchors]
        for (x, y), (xd, yd), text in zip(anchors, np.column_stack([xs, ys]), texts, strict=True):
            if not frame.contains(x, y):
                continue
            probe = ax.annotate(text, (xd, yd), xytext=(0, 0), textcoords="offset points")
            spot = None
            for ring, (dx, dy) in itertools.product(_RINGS_PT, _DIRECTIONS):
                probe.set_position((ring * dx, ring * dy))
                probe.set_horizontalalignment(_ALIGN[dx][0])
                probe.set_verticalalignment(_ALIGN[dy][1])
                probe.update_positions(renderer)
                box = Text.get_window_extent(probe, renderer)
                if frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1) and \
                        not any(box.overlaps(t) for t in taken):  # fmt: skip
                    spot = (ring, dx, dy, box)
                    break
            probe.remove()
            if spot is None:
                continue
            ring, dx, dy, box = spot
            ann = ax.annotate(text, (xd, yd), xytext=(ring * dx, ring * dy), textcoords="offset points",
                              ha=_ALIGN[dx][0], va=_ALIGN[dy][1],
                              arrowprops=_LEADER if ring > _RINGS_PT[0] else None)  # fmt: skip
            taken.append(box)
            placed.append(ann)
    return placed


def _paper_values(paper: pd.DataFrame | None) -> dict[str, float]:
    """score -> the paper's |Pearson r| from rows with columns ``score`` and ``abs_pearson`` (or None)."""
    if paper is None or paper.empty:
        return {}
    return dict(zip(paper["score"], paper["abs_pearson"].astype(float), strict=True))


def _measure(measures: pd.DataFrame, score: str, measure: str) -> float:
    row = measures[(measures["score"] == score) & (measures["measure"] == measure)]
    return float(row["value"].iloc[0]) if len(row) else float("nan")


class Transfer(NamedTuple):
    """One transfer strategy's results, a row of :func:`score_vs_performance`.

    ``performance``: model -> mean test metric; ``measures``: ``nclib.evaluate.correlation_table`` of the scores
    against it (direction-aware, so a positive tau means the score ranks the models the right way round);
    ``spread``: model -> standard deviation of the metric over transfer seeds, drawn as a bar of +-1 sd;
    ``paper``: rows of ``pipeline.paper_reported()`` for this figure and strategy (columns score, abs_pearson),
    shown beside our |Pearson r|.
    """

    performance: pd.Series
    measures: pd.DataFrame
    spread: pd.Series | None = None
    paper: pd.DataFrame | None = None


def score_vs_performance(
    scores: pd.DataFrame,
    rows: Mapping[str, Transfer],
    *,
    names: Sequence[str],
    metric: str,
    profile: str,
    title: str,
    ncols: int = 3,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Each model's score (x) against its downstream performance (y): one column per score of ``names``, one row
    per transfer strategy of ``rows`` (label -> :class:`Transfer`); more than ``ncols`` scores wrap into further
    blocks of rows. Figures 2 and 3 of the paper are ``names=LEAD_SCORES`` with a linear head and fine-tuning.

    ``scores``: models x scores (NaN where a score does not apply to a model); ``metric``: 'accuracy' or 'auroc'.
    Each panel prints |Pearson r| (the paper's beside it), Kendall tau, weighted tau and the number of models the
    score has a value for; a score absent from the measures (e.g. left out because it is constant over the zoo)
    is drawn with "no correlation". Models keep one look (:func:`model_styles` of the first row's performance
    index, the zoo) in every panel, named in the legend and, where there is room, beside their points.
    """
    if not rows:
        raise ValueError("rows is empty: give at least one transfer strategy, e.g. {'linear head': Transfer(...)}")
    unknown = [s for s in names if s not in scores.columns]
    if unknown:
        raise ValueError(f"score(s) {unknown} are not columns of scores; it has {list(scores.columns)}")
    names = [s for s in names if scores[s].notna().sum() > 0]
    if not names:
        raise ValueError("no score of names has a value for any model")
    constant = set(scores.columns) - set(drop_constant(scores).columns)
    zoo = next(iter(rows.values())).performance.index
    styles = model_styles(list(zoo))
    blocks = [names[i:i + ncols] for i in range(0, len(names), ncols)]
    with _styled():
        fig, grid = _figure(len(blocks) * len(rows), min(ncols, len(names)), 2.75)
        axes = grid.reshape(len(blocks) * len(rows), -1)
        labels = []
        for (block, (strategy, transfer)), row_axes in zip(itertools.product(blocks, rows.items()), axes,
                                                           strict=True):  # fmt: skip
            reported = _paper_values(transfer.paper)
            perf, measures, spread = transfer.performance, transfer.measures, transfer.spread
            for ax in row_axes[len(block):]:
                ax.set_visible(False)
            for ax, score in zip(row_axes, block, strict=False):
                col = scores[score].dropna()
                for model, xv in col.items():
                    colour, marker = styles[model]
                    if spread is not None and np.isfinite(spread.get(model, np.nan)):
                        ax.errorbar([xv], [perf[model]], yerr=[spread[model]], color=colour, linewidth=1, zorder=2)
                    ax.scatter([xv], [perf[model]], s=40, color=colour, marker=marker, edgecolor="black",
                               linewidth=0.5, zorder=3)
                labels.append((ax, col.to_numpy(), perf.loc[col.index].to_numpy(), [str(m) for m in col.index]))
                paper_r = f" (paper {reported[score]:.2f})" if score in reported else ""
                if (measures["score"] == score).any():
                    ours = f"|r| = {_measure(measures, score, 'abs_pearson'):.2f}{paper_r}, n = {len(col)}"
                    taus = (f"Kendall τ = {_measure(measures, score, 'kendall'):.2f}, "
                            f"weighted τ = {_measure(measures, score, 'weighted_kendall'):.2f}")
                else:  # left out of the measures, e.g. constant over the zoo: no correlation is defined
                    ours = f"no correlation{paper_r}, n = {len(col)}"
                    taus = "constant over the zoo" if score in constant else "not measured"
                ax.set_title(f"{score.upper()} ({direction(score)})\n{ours}\n{taus}")
                ax.set_xlabel(score_label(score))
                ax.set_ylabel(f"{strategy}:\n{METRIC_LABELS[metric]}" if ax is row_axes[0] else "")
                ax.margins(x=0.12, y=0.12)
        fig.legend(_style_handles(styles), list(styles), loc="outside lower center", ncols=4, title="model")
        fig.suptitle(f"{title} (profile '{profile}', {len(zoo)} models)")
        place_labels(fig, labels)
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
        fig, axes = _figure(1, 2, 3.2)
        looks = model_styles(names)  # one hue per class (a name has no '@'); a tenth class reuses a hue, new marker
        for ax, feats, tag, title in zip(axes, (first, last), "ab", titles, strict=True):
            xy = _project(feats, method, seed)
            for cls, name in zip(classes, names, strict=True):
                pts = xy[labels == cls]
                colour, marker = looks[name]
                ax.scatter(pts[:, 0], pts[:, 1], s=12, color=colour, marker=marker, label=name, alpha=0.85,
                           linewidth=0)
            ax.set_title(f"({tag}) {title}")
            ax.set_xlabel(axis[method].format(1))
            ax.set_ylabel(axis[method].format(2))
        axes[1].legend(title="class", loc="center left",
                       bbox_to_anchor=(1.02, 0.5), markerscale=1.5)
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
        fig, axes = _figure(-(-len(panels) // ncols), ncols, 2.9)
        for ax, (title, cols, better) in zip(axes, panels, strict=False):
            for col, colour, marker in zip(cols, PALETTE, MARKERS, strict=False):
                ax.plot(table["epoch"], table[col], marker=marker, markersize=4, color=colour,
                        label=col.removeprefix("nc2_"))
            if cols == ["nc1"] and (table["nc1"] > 0).all():
                ax.set_yscale("log")
            if cols == ["nc1"] and nc1_target is not None:
                ax.axhline(nc1_target, color="0.4", linestyle="--", linewidth=1, label=f"target {nc1_target:.3g}")
                ax.legend()
            if len(cols) > 1:
                ax.legend()
            ax.set_title(f"{title}\n({better})")
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
    zoo: Sequence[str] | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Figure 4: training loss and validation metric per epoch, one line per model (mean over seeds, with the
    min-max band of the seeds).

    ``history``: long table with columns model, seed, epoch, train_loss, val_metric; ``roles``: optional
    role -> model, named in the legend (e.g. {"NC's first choice": "dcase_asc"}; one model may have several);
    ``zoo``: the track's whole zoo, whose :func:`model_styles` colour the models as in the track's other figures
    (default: the models drawn).
    """
    missing = {"model", "seed", "epoch", "train_loss", "val_metric"} - set(history.columns)
    if missing:
        raise ValueError(f"history lacks column(s) {sorted(missing)}")
    tags: dict[str, list[str]] = {}
    for role, model in (roles or {}).items():
        tags.setdefault(model, []).append(role)
    drawn = list(dict.fromkeys(history["model"]))
    styles = _track_styles(drawn, zoo)
    named = {m: f"{m} ({'; '.join(tags[m])})" if m in tags else m for m in drawn}
    data = history.assign(model=history["model"].map(named))
    val_label = {"accuracy": "validation accuracy (fraction correct)", "auroc": "validation AUROC"}[metric]
    with _styled():
        fig, axes = _figure(1, 2, 3.0)
        for ax, col, ylabel in zip(axes, ("train_loss", "val_metric"),
                                   ("training loss (cross-entropy, nats)", val_label), strict=True):
            sns.lineplot(data=data, x="epoch", y=col, hue="model", style="model", dashes=False,
                         markers={named[m]: styles[m][1] for m in drawn}, errorbar=("pi", 100),
                         palette={named[m]: styles[m][0] for m in drawn}, ax=ax)  # fmt: skip
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
        axes[0].set_title("(a) training loss (lower is better)")
        axes[1].set_title(f"(b) {val_label.split(' (')[0]} (higher is better)")
        handles, names = axes[1].get_legend_handles_labels()
        for ax in axes:
            ax.get_legend().remove()
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 2), title="model")
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
        fig, axes = _figure(len(sources), len(measures), 0.2 * len(order) + 1.1)
        for ax, (src, m) in zip(axes, itertools.product(sources, measures), strict=True):
            data = draws[(draws["source"] == src) & (draws["measure"] == m)].dropna(subset=["value"])
            sns.boxplot(data=data, x="value", y="score", order=order, ax=ax, color="0.8", fliersize=2, width=0.6)
            better = "lower" if m in LOWER_IS_BETTER else "higher"
            ax.set_title(f"over {src}")
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
        fig, axes = _figure(1, 1, 3.6)
        ax = axes[0]
        pairings = list(dict.fromkeys(data["pairing"]))
        sns.lineplot(data=data, x="r2", y="models", hue="pairing", style="pairing", ax=ax,
                     palette=dict(zip(pairings, itertools.cycle(PALETTE), strict=False)))
        ax.set_yscale("log")
        ax.axvline(claim[1], color="0.3", linestyle=":", linewidth=1)
        ax.axhline(zoo_size, color="0.3", linestyle="--", linewidth=1)
        ax.annotate(f"our zoo: {zoo_size} models", (ax.get_xlim()[0], zoo_size), xytext=(4, 4),
                    textcoords="offset points")
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
    ncols = min(3, len(names))
    holds = list(dict.fromkeys(data["holds"]))
    with _styled():
        fig, axes = _figure(-(-len(names) // ncols), ncols, 2.3)
        for ax, name in zip(axes, names, strict=False):
            sns.scatterplot(data=data[data["score"] == name], x="spread", y="value", hue="holds", style="holds",
                            markers={"without": "o", "all": "o", f"with {', '.join(weak)}": "X"}, ax=ax,
                            legend=False, s=22, palette=dict(zip(holds, PALETTE, strict=False)))  # fmt: skip
            ax.set_title(f"{name.upper()} ({direction(name)})")
            ax.set_xlabel("performance spread of the sub-zoo")
            ax.set_ylabel(measure if ax.get_subplotspec().is_first_col() else "")
            ax.axhline(0, color="0.4", linewidth=0.8)
        for ax in axes[len(names):]:
            ax.set_visible(False)
        note = f"crosses: sub-zoos with {', '.join(weak)}" if weak else "every sub-zoo"
        fig.suptitle(f"{title}\n{note} (profile '{profile}')")
    return _save(fig, path)


def plot_size(params: pd.Series, performance: pd.Series, table: pd.DataFrame, *, metric: str, profile: str,
              title: str, path: str | os.PathLike | None = None) -> Figure:  # fmt: skip
    """(a) performance against parameter count (log scale), one look per model (:func:`model_styles` of
    ``params.index``, the zoo), named in the legend and beside the points where there is room; (b) each score's
    Kendall tau with size against its tau with performance (``size_table``), scores named."""
    styles = model_styles(list(params.index))
    with _styled():
        fig, axes = _figure(1, 2, 3.4)
        ax = axes[0]
        for m in params.index:
            ax.scatter([params[m]], [performance[m]], s=40, color=styles[m][0], marker=styles[m][1],
                       edgecolor="black", linewidth=0.5, zorder=3)
        ax.set_xscale("log")
        ax.margins(x=0.1, y=0.1)
        ax.set_xlabel("parameters (log scale)")
        ax.set_ylabel(f"test {metric} (higher is better)")
        ax.set_title("(a) performance and size")
        ax = axes[1]
        rows = table[table["score"] != "performance"]
        ax.scatter(rows["tau_size"], rows["tau_performance"], s=30, color=PALETTE[1], edgecolor="black", zorder=3)
        ax.axhline(0, color="0.4", linewidth=0.8)
        ax.axvline(0, color="0.4", linewidth=0.8)
        ax.set_xlim(-1.1, 1.1)
        ax.set_ylim(-1.1, 1.1)
        ax.set_xlabel("Kendall τ of the score with size")
        ax.set_ylabel("Kendall τ of the score with performance")
        ax.set_title("(b) does a score track size or performance?")
        fig.legend(_style_handles(styles), list(styles), loc="outside lower center", ncols=4, title="model")
        fig.suptitle(f"{title} (profile '{profile}')")
        place_labels(fig, [(axes[0], params.to_numpy(), performance.loc[params.index].to_numpy(),
                            [str(m) for m in params.index]),
                           (ax, rows["tau_size"].to_numpy(), rows["tau_performance"].to_numpy(),
                            list(rows["score"]))])  # fmt: skip
    return _save(fig, path)


def plot_layers(performance: pd.Series, taus: pd.DataFrame, *, metric: str, profile: str, title: str,
                zoo: Sequence[str] | None = None, path: str | os.PathLike | None = None) -> Figure:  # fmt: skip
    """(a) linear-head performance of each model at each layer; (b) Kendall tau of each score within each layer
    and over all (layer, model) candidates (``per_layer``). ``zoo``: the track's whole zoo, whose
    :func:`model_styles` colour the models as in the track's other figures (default: the models drawn)."""
    data = performance.rename("value").reset_index()
    drawn = list(dict.fromkeys(data["model"]))
    styles = _track_styles(drawn, zoo)
    layers = list(dict.fromkeys(taus["layer"]))
    with _styled():
        fig, axes = _figure(1, 2, 3.6)
        sns.pointplot(data=data, x="layer", y="value", hue="model", ax=axes[0], markersize=4, linewidth=1.2,
                      palette={m: styles[m][0] for m in drawn}, markers=[styles[m][1] for m in drawn])  # fmt: skip
        axes[0].set_ylabel(f"test {metric} of a linear head (higher is better)")
        axes[0].set_xlabel("embedding layer")
        axes[0].set_title("(a) performance at each depth")
        axes[0].legend(title="model")
        sns.barplot(data=taus, y="score", x="value", hue="layer", ax=axes[1],
                    palette=dict(zip(layers, PALETTE, strict=False)))  # fmt: skip
        axes[1].axvline(0, color="0.4", linewidth=0.8)
        axes[1].set_xlabel("Kendall τ with performance (higher is better)")
        axes[1].set_ylabel("")
        axes[1].set_title("(b) ranking models, per layer and over all")
        axes[1].legend(title="layer")
        fig.suptitle(f"{title} (profile '{profile}')")
    return _save(fig, path)


def plot_splits(taus: pd.DataFrame, *, profile: str, title: str, path: str | os.PathLike | None = None) -> Figure:
    """Kendall tau of each score with test performance, scored on training (x) and validation (y) embeddings:
    one point per score, one panel per track / strategy (``taus``: columns panel, score, train, val)."""
    panels = list(dict.fromkeys(taus["panel"]))
    with _styled():
        ncols = min(2, len(panels))
        fig, axes = _figure(-(-len(panels) // ncols), ncols, 3.5)
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        labels = []
        for ax, panel in zip(axes, panels, strict=False):
            rows = taus[taus["panel"] == panel]
            ax.plot([-1, 1], [-1, 1], color="0.5", linewidth=0.8, linestyle=":")
            ax.scatter(rows["train"], rows["val"], s=30, color=PALETTE[1], edgecolor="black", zorder=3)
            labels.append((ax, rows["train"].to_numpy(), rows["val"].to_numpy(), list(rows["score"])))
            ax.set_xlim(-1.1, 1.1)
            ax.set_ylim(-1.1, 1.1)
            ax.set_xlabel("Kendall τ, scored on training data")
            ax.set_ylabel("Kendall τ, scored on validation data")
            ax.set_title(panel)
        fig.suptitle(f"{title} (profile '{profile}')")
        place_labels(fig, labels)
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
    height = max(1.4, 0.17 * max(len(p) for p in parts) + 0.5)
    with _styled():
        fig, axes = _figure(2, 1, height)
        for ax, part, (_, xlabel) in zip(axes, parts, panels, strict=True):
            y = np.arange(len(part))[::-1]
            for yi, (_, r) in zip(y, part.iterrows(), strict=True):
                colour = VERDICT_COLOURS[r["verdict"]]
                ax.plot([r["low"], r["high"]], [yi, yi], color=colour, lw=2.5)
                ax.plot(r["ours"], yi, "o", color=colour, ms=5)
                if r["measure"] == "r":
                    ax.plot(float(r["paper"]), yi, "x", color="black", ms=6)
            ax.axvline(0, color="black", lw=0.8)
            ax.set_yticks(y, part["claim"])
            ax.set_xlabel(xlabel)
        handles = [plt.Line2D([], [], color=VERDICT_COLOURS[v], lw=2.5, label=v) for v in list(VERDICT_COLOURS)[:3]]
        handles.append(plt.Line2D([], [], ls="", marker="x", color="black", label="paper's |r|"))
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
        fig.suptitle(f"Claims of the paper: our 95 % intervals (profile {profile})")
    return _save(fig, path)
