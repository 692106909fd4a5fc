"""Published model-selection tables, recomputed from their own numbers (the book's "published tables" pitfall).

Two ground truths ship in ``nclib/published/`` (see its README): the thuml Transfer-Learning-Library (TLlib)
table of 10 ImageNet models on 8 datasets, with fine-tuned accuracy and the H-score, LEEP, LogME and NCE of each
model, and the fine-tuned accuracies of SFDA's benchmark (11 models, 11 datasets). This module

* recomputes every Pearson r and weighted tau that TLlib prints under its table from the table's own per-model
  numbers (:func:`recompute_printed`), and says which printed values follow from them;
* sets the two ground truths side by side on the models and datasets they share (:func:`ground_truths`), ranks
  the models by each (:func:`ground_truth_agreement`) and asks which published score looks best under each
  (:func:`score_winners`).
"""

from __future__ import annotations

import importlib.resources
import os

import numpy as np
import pandas as pd

from nclib.evaluate import kendall, pearson, weighted_kendall
from nclib.plots import PALETTE, _figure, _save, _styled, place_labels

SCORES = ("hscore", "leep", "logme", "nce")  # TLlib's columns; every one is "higher is better"
SCORE_NAMES = {"hscore": "H-score", "leep": "LEEP", "logme": "LogME", "nce": "NCE"}
MEASURES = {"pearson": pearson, "weighted_kendall": weighted_kendall}

# The "Pearson Corr" and "Weighted Tau" rows printed under each dataset's table, (H-score, LEEP, LogME, NCE), copied
# from thuml/Transfer-Learning-Library, examples/model_selection/README.md (commit 56ccfd74); the per-model numbers
# above them are nclib/published/published_tllib_model_selection.csv.
PRINTED = {
    "Aircraft": ((0.688, 0.127, 0.582, 0.173), (0.664, -0.264, 0.595, 0.002)),
    "Caltech101": ((0.748, 0.324, 0.794, 0.843), (0.721, 0.127, 0.697, 0.810)),
    "CIFAR10": ((0.839, 0.604, 0.733, 0.786), (0.800, 0.638, 0.785, 0.714)),
    "CIFAR100": ((0.815, 0.513, 0.698, 0.705), (0.775, 0.659, 0.790, 0.654)),
    "DTD": ((0.532, 0.217, 0.617, 0.471), (0.416, -0.004, 0.550, 0.083)),
    "OxfordIIITPets": ((0.427, -0.127, 0.589, 0.501), (0.425, -0.143, 0.502, 0.119)),
    "StanfordCars": ((0.503, 0.433, 0.274, 0.695), (0.638, 0.703, 0.654, 0.750)),
    "SUN397": ((0.913, 0.428, 0.824, 0.782), (0.918, 0.581, 0.748, 0.873)),
}
PRINTED_DECIMALS = 3

# TLlib's names -> SFDA's (torchvision's) names, for the models and datasets both tables hold.
TLLIB_TO_SFDA_MODEL = {
    "GoogleNet": "googlenet", "Inception V3": "inception_v3", "ResNet50": "resnet50", "ResNet101": "resnet101",
    "ResNet152": "resnet152", "DenseNet121": "densenet121", "DenseNet169": "densenet169",
    "Densenet201": "densenet201", "MobileNet V2": "mobilenet_v2", "MNasNet": "mnasnet1_0",
}  # fmt: skip
TLLIB_TO_SFDA_DATASET = {
    "Aircraft": "aircraft", "Caltech101": "caltech101", "CIFAR10": "cifar10", "CIFAR100": "cifar100", "DTD": "dtd",
    "OxfordIIITPets": "pets", "StanfordCars": "cars", "SUN397": "sun397",
}  # fmt: skip


def load(name: str, as_text: bool = False) -> pd.DataFrame:
    """``nclib/published/<name>.csv``; ``as_text`` keeps every cell as printed (e.g. "-4.310"), for its decimals."""
    with importlib.resources.files("nclib").joinpath(f"published/{name}.csv").open() as f:
        return pd.read_csv(f, dtype=str if as_text else None)


def _half_unit(text: pd.Series) -> np.ndarray:
    """Half a unit of the last printed digit of each number ("-4.310" -> 0.0005, "28.37" -> 0.005)."""
    decimals = text.str.partition(".")[2].str.len().to_numpy()
    return 0.5 * 10.0 ** -decimals.astype(float)


def recompute_printed(n_draws: int = 300, seed: int = 0) -> pd.DataFrame:
    """Every printed correlation of TLlib's table beside the value its own per-model numbers give.

    For each dataset, score and measure (Pearson r; weighted tau, ``scipy.stats.weightedtau``) over the 10 models:
    ``printed``, ``recomputed`` (from the numbers as printed), ``difference`` = recomputed - printed, and
    ``low`` / ``high``: the range of the measure over ``n_draws`` redraws of every per-model number (accuracy and
    score) uniformly within half a unit of its last printed digit, i.e. what rounding the inputs can explain.
    ``verdict``: "reproduces" if |difference| <= half a unit of the printed correlation, "within input rounding"
    if the printed value lies in [low, high] widened by that half unit, else "does not follow".
    """
    text = load("published_tllib_model_selection", as_text=True)
    rng = np.random.default_rng(seed)
    half = 0.5 * 10.0**-PRINTED_DECIMALS + 1e-12
    rows = []
    for dataset, printed in PRINTED.items():
        part = text[text["dataset"] == dataset]
        acc = part["finetuned_acc"].astype(float).to_numpy()
        acc_draws = acc + rng.uniform(-1, 1, (n_draws, acc.size)) * _half_unit(part["finetuned_acc"])
        for i, score in enumerate(SCORES):
            s = part[score].astype(float).to_numpy()
            s_draws = s + rng.uniform(-1, 1, (n_draws, s.size)) * _half_unit(part[score])
            for (measure, fn), value in zip(MEASURES.items(), (printed[0][i], printed[1][i]), strict=True):
                ours = fn(s, acc)
                spread = [fn(a, b) for a, b in zip(s_draws, acc_draws, strict=True)]
                low, high = min(spread), max(spread)
                verdict = ("reproduces" if abs(ours - value) <= half
                           else "within input rounding" if low - half <= value <= high + half else "does not follow")
                rows.append({"dataset": dataset, "score": score, "measure": measure, "printed": value,
                             "recomputed": ours, "difference": ours - value, "low": low, "high": high,
                             "verdict": verdict})  # fmt: skip
    return pd.DataFrame(rows)


def duplicated_columns() -> pd.DataFrame:
    """(dataset, score, same_as) for every TLlib score column that repeats another column of the same dataset."""
    table = load("published_tllib_model_selection")
    rows = []
    for dataset, part in table.groupby("dataset", sort=False):
        for j, b in enumerate(SCORES):
            rows += [{"dataset": dataset, "score": b, "same_as": a} for a in SCORES[:j] if part[a].equals(part[b])]
    return pd.DataFrame(rows, columns=["dataset", "score", "same_as"])


def ground_truths() -> pd.DataFrame:
    """One row per (dataset, model) in both tables: dataset, model (TLlib's names), tllib_acc, sfda_acc, the
    published scores (TLlib's), in TLlib's order."""
    tllib = load("published_tllib_model_selection")
    sfda = load("published_sfda_finetune_acc").rename(columns={"finetuned_acc": "sfda_acc"})
    keyed = tllib.assign(sfda_dataset=tllib["dataset"].map(TLLIB_TO_SFDA_DATASET),
                         sfda_model=tllib["model"].map(TLLIB_TO_SFDA_MODEL))  # fmt: skip
    both = keyed.merge(sfda, left_on=["sfda_dataset", "sfda_model"], right_on=["dataset", "model"],
                       suffixes=("", "_sfda"), validate="one_to_one")  # fmt: skip
    return both.rename(columns={"finetuned_acc": "tllib_acc"})[["dataset", "model", "tllib_acc", "sfda_acc", *SCORES]]


def ground_truth_agreement() -> pd.DataFrame:
    """Per shared dataset: n_models, Kendall tau-b and weighted tau between the two accuracy columns, the largest
    |difference| in accuracy (points), and the best model under each ground truth (``best_changes`` if they differ).
    """
    rows = []
    for dataset, part in ground_truths().groupby("dataset", sort=False):
        a, b = part.set_index("model")["tllib_acc"], part.set_index("model")["sfda_acc"]
        rows.append({"dataset": dataset, "n_models": len(part), "kendall": kendall(a, b),
                     "weighted_kendall": weighted_kendall(a, b), "max_abs_diff": float((a - b).abs().max()),
                     "best_tllib": a.idxmax(), "best_sfda": b.idxmax(), "best_changes": a.idxmax() != b.idxmax()})
    return pd.DataFrame(rows)


def score_winners() -> pd.DataFrame:
    """One row per shared dataset and measure (Pearson r, weighted tau): ``<score>_tllib`` and ``<score>_sfda``,
    each published score's value against each ground truth; ``winner_tllib`` and ``winner_sfda``, the score that
    comes out best under each; ``winner_changes`` if they differ."""
    table = ground_truths()
    rows = []
    for dataset, part in table.groupby("dataset", sort=False):
        for measure, fn in MEASURES.items():
            values = {truth: {s: fn(part[s].to_numpy(), part[truth].to_numpy()) for s in SCORES}
                      for truth in ("tllib_acc", "sfda_acc")}  # fmt: skip
            winners = {truth: max(v, key=v.__getitem__) for truth, v in values.items()}
            rows.append({"dataset": dataset, "measure": measure,
                         **{f"{s}_{t.split('_')[0]}": values[t][s] for t in values for s in SCORES},
                         "winner_tllib": winners["tllib_acc"], "winner_sfda": winners["sfda_acc"],
                         "winner_changes": winners["tllib_acc"] != winners["sfda_acc"]})  # fmt: skip
    return pd.DataFrame(rows)


def plot_recomputed(table: pd.DataFrame, path: str | os.PathLike | None = None):
    """Printed (x) against recomputed (y) correlation, one panel per measure; bars: the range that rounding the
    per-model inputs allows; marker: the verdict of :func:`recompute_printed`."""
    with _styled():
        fig, axes = _figure(1, 2, 3.6)
        palette = dict(zip(("reproduces", "within input rounding", "does not follow"), PALETTE[:3], strict=True))
        for ax, (measure, part) in zip(axes, table.groupby("measure", sort=False), strict=True):
            ax.axline((0, 0), slope=1, color="grey", linewidth=0.8, linestyle="--")
            for verdict, rows in part.groupby("verdict", sort=False):
                ax.errorbar(rows["printed"], rows["recomputed"],
                            yerr=[rows["recomputed"] - rows["low"], rows["high"] - rows["recomputed"]],
                            fmt="o", markersize=5, color=palette[verdict], label=verdict, capsize=2)  # fmt: skip
            ax.set_title({"pearson": "Pearson r", "weighted_kendall": "weighted τ"}[measure])
            ax.set_xlabel("printed under the table")
            ax.set_ylabel("recomputed from its numbers" if ax is axes[0] else "")
            ax.legend(loc="upper left")
        fig.suptitle("TLlib model-selection table: printed vs recomputed correlations\n(published numbers; no profile)")
    return _save(fig, path)


def plot_ground_truths(path: str | os.PathLike | None = None):
    """Fine-tuned accuracy of each shared model under TLlib's (x) and SFDA's (y) ground truth, one panel per
    dataset; the dashed line is agreement."""
    table = ground_truths()
    datasets = list(dict.fromkeys(table["dataset"]))
    ncols = 2
    with _styled():
        fig, axes = _figure(-(-len(datasets) // ncols), ncols, 3.0)
        labels = []
        for ax, dataset in zip(axes, datasets, strict=False):
            part = table[table["dataset"] == dataset]
            ax.axline((part["tllib_acc"].mean(),) * 2, slope=1, color="grey", linewidth=0.8, linestyle="--")
            ax.scatter(part["tllib_acc"], part["sfda_acc"], s=25, color=PALETTE[1], edgecolor="black", linewidth=0.5)
            labels.append((ax, list(part["tllib_acc"]), list(part["sfda_acc"]), list(part["model"])))
            ax.set_title(dataset)
            ax.set_xlabel("TLlib accuracy (%)")
            ax.set_ylabel("SFDA accuracy (%)")
        for ax in axes[len(datasets):]:
            ax.set_visible(False)
        fig.suptitle("Two published ground truths for the same models and datasets\n(published numbers; no profile)")
        place_labels(fig, labels)
    return _save(fig, path)
