"""Tests for nclib.plots: each figure draws the data it is given, states directions and the profile, and saves.

Expected values are computed here independently (numpy SVD for the PCA panels, pandas group means for the
training curves, the paper's Table 1 typed from its text), never read back from nclib.plots itself.
"""

from __future__ import annotations

import io
import itertools

import numpy as np
import pandas as pd
import pytest
from IPython.core.pylabtools import print_figure
from matplotlib import colors as mcolors
from matplotlib.text import Text
from PIL import Image

from nclib import plots

MODELS = ["alpha", "beta", "gamma", "delta", "eps"]
# The mini image zoo's names: three near-equal Lites, variants of one, and three networks with two checkpoints.
ZOO = ["lite0", "lite1", "lite2", "lite0_block4", "lite0_random", "digits_cnn@1", "digits_cnn@2", "digits_cnn",
       "digits_cnn_narrow@1", "digits_cnn_narrow@2", "digits_cnn_narrow", "shapes_cnn@1", "shapes_cnn@2",
       "shapes_cnn"]  # fmt: skip


def _measures(scores: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for i, score in enumerate(scores.columns):
        for j, measure in enumerate(("abs_pearson", "pearson", "kendall", "weighted_kendall", "top1_regret")):
            value = round(0.1 * i + 0.01 * (j + 1), 4)
            rows.append({"score": score, "measure": measure, "value": value, "low": value - 0.5,
                         "high": value + 0.25, "n_models": len(scores)})
    return pd.DataFrame(rows)


def _zoo(seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    perf = pd.Series(rng.uniform(0.5, 0.9, len(MODELS)), index=MODELS)
    scores = pd.DataFrame({"nc": rng.uniform(0.1, 1, 5), "logme": rng.normal(size=5), "leep": rng.normal(size=5)},
                          index=MODELS)
    scores.loc["gamma", "leep"] = np.nan  # a model without a source head
    return scores, perf, _measures(scores)


def _crowded_zoo(seed: int = 5) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Every registered score on the 14 mini names, lite0/1/2 (and two checkpoints) nearly equal on both axes."""
    from nclib.scores import REGISTRY

    rng = np.random.default_rng(seed)
    perf = pd.Series(rng.uniform(0.6, 0.9, len(ZOO)), index=ZOO)
    perf[["lite0", "lite1", "lite2", "digits_cnn@2"]] = [0.8, 0.801, 0.802, 0.8005]
    scores = pd.DataFrame(rng.normal(size=(len(ZOO), len(REGISTRY))), index=ZOO, columns=list(REGISTRY))
    scores.loc[["lite0", "lite1", "lite2", "digits_cnn@2"]] = 0.5 + 0.001 * np.arange(4)[:, None]
    spread = pd.Series(rng.uniform(0.005, 0.03, len(ZOO)), index=ZOO)
    return scores, perf, spread


PAPER = pd.DataFrame({"score": ["nc", "logme"], "abs_pearson": [0.93, 0.76]})


def _panels(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.collections]


def _one_row(perf, measures, **kw):
    return {"linear head": plots.Transfer(perf, measures, **kw)}


def test_score_vs_performance_draws_each_model_and_states_measures(tmp_path):
    scores, perf, measures = _zoo()
    path = tmp_path / "sub" / "fig.png"
    fig = plots.score_vs_performance(scores, _one_row(perf, measures, paper=PAPER),
                                     names=["nc", "logme", "leep"], metric="accuracy", profile="tiny-test",
                                     title="Figure X", path=path)  # fmt: skip
    panels = _panels(fig)
    assert len(panels) == 3
    assert "tiny-test" in fig.get_suptitle() and "Figure X" in fig.get_suptitle()
    for ax, score in zip(panels, ["nc", "logme", "leep"], strict=True):
        col = scores[score].dropna()
        xy = np.concatenate([c.get_offsets() for c in ax.collections])  # one marker per model
        np.testing.assert_allclose(xy[:, 0], col.to_numpy())
        np.testing.assert_allclose(xy[:, 1], perf.loc[col.index].to_numpy())
        assert set(t.get_text() for t in ax.texts) <= set(col.index)  # labels name drawn models only
        title = ax.get_title()
        i = ["nc", "logme", "leep"].index(score)
        assert f"|r| = {0.1 * i + 0.01:.2f}" in title
        assert f"Kendall τ = {0.1 * i + 0.03:.2f}" in title and f"weighted τ = {0.1 * i + 0.04:.2f}" in title
        assert f"n = {len(col)}" in title  # the models this score rests on
        assert ax.get_xlabel().startswith(score.upper())
    assert sorted(t.get_text() for t in panels[0].texts) == sorted(MODELS)  # five points: room for every name
    assert "lower is better" in panels[0].get_title() and "(paper 0.93)" in panels[0].get_title()
    assert "higher is better" in panels[1].get_title() and "(paper 0.76)" in panels[1].get_title()
    assert "paper" not in panels[2].get_title()  # the paper gives no value for this score
    assert "accuracy" in panels[0].get_ylabel() and "linear head" in panels[0].get_ylabel()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == MODELS  # one colour per model, shared by panels
    looks = {(tuple(h.get_markerfacecolor()), h.get_marker()) for h in fig.legends[0].legend_handles}
    assert len(looks) == len(MODELS)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] == round(plots.WIDTH_IN * plots.DPI)


def test_score_vs_performance_leads_with_the_papers_layout_one_row_per_strategy():
    scores, perf, spread = _crowded_zoo()
    measures = _measures(scores)
    other = perf.iloc[::-1].set_axis(perf.index)  # a second strategy with other numbers
    rows = {"linear head": plots.Transfer(perf, measures, spread), "fine-tuning": plots.Transfer(other, measures)}
    fig = plots.score_vs_performance(scores, rows, names=plots.LEAD_SCORES, metric="accuracy", profile="p",
                                     title="t")
    panels = _panels(fig)
    assert len(panels) == 6  # 2 x 3: strategies down, LEEP, LogME and NC across
    assert [ax.get_title().split()[0] for ax in panels] == ["LEEP", "LOGME", "NC"] * 2
    assert ["linear head" in panels[0].get_ylabel(), "fine-tuning" in panels[3].get_ylabel()] == [True, True]
    np.testing.assert_allclose(np.concatenate([c.get_offsets() for c in panels[5].collections])[:, 1], other)
    rest = [s for s in scores.columns if s not in plots.LEAD_SCORES]
    fig = plots.score_vs_performance(scores, rows, names=rest, metric="accuracy", profile="p", title="t")
    titles = [ax.get_title().split()[0].lower() for ax in _panels(fig)]
    assert sorted(set(titles)) == sorted(rest) and len(titles) == 2 * len(rest)  # every other score, both rows


def test_score_vs_performance_draws_the_seed_spread():
    scores, perf, measures = _zoo()
    spread = pd.Series(0.02 * (1 + np.arange(len(perf))), index=perf.index)
    fig = plots.score_vs_performance(scores, _one_row(perf, measures, spread=spread), names=["nc"],
                                     metric="accuracy", profile="p", title="t")
    ax = _panels(fig)[0]
    bars = sorted(float(np.ptp(seg[:, 1])) for c in ax.collections if hasattr(c, "get_segments")
                  for seg in c.get_segments())  # fmt: skip
    col = scores["nc"].dropna()
    np.testing.assert_allclose(bars, sorted(2 * spread.loc[col.index]))  # +- 1 sd around each model's mean


def test_score_vs_performance_wraps_panels_and_hides_the_rest():
    scores, perf, measures = _zoo()
    fig = plots.score_vs_performance(scores, _one_row(perf, measures), names=["nc", "logme", "leep"],
                                     metric="auroc", profile="p", title="t", ncols=2)
    assert len(fig.axes) == 4 and len(_panels(fig)) == 3  # 2 x 2 grid, the fourth axes hidden
    assert "AUROC" in _panels(fig)[0].get_ylabel()


def test_score_vs_performance_marks_a_score_left_out_of_the_measures():
    scores, perf, measures = _zoo()
    scores["nc"] = 0.5  # constant over the zoo: the notebooks leave it out of correlation_table
    fig = plots.score_vs_performance(scores, _one_row(perf, measures[measures.score != "nc"], paper=PAPER),
                                     names=["nc"], metric="accuracy", profile="p", title="t")
    title = _panels(fig)[0].get_title()
    assert "no correlation (paper 0.93)" in title and "constant over the zoo" in title and "|r|" not in title


def test_score_vs_performance_rejects_bad_input():
    scores, perf, measures = _zoo()
    with pytest.raises(ValueError, match="no score"):
        plots.score_vs_performance(scores * np.nan, _one_row(perf, measures), names=["nc"],
                                   metric="accuracy", profile="p", title="t")
    with pytest.raises(ValueError, match="'hev'.*not columns"):
        plots.score_vs_performance(scores, _one_row(perf, measures), names=["nc", "hev"],
                                   metric="accuracy", profile="p", title="t")
    with pytest.raises(ValueError, match="rows is empty"):
        plots.score_vs_performance(scores, {}, names=["nc"], metric="accuracy", profile="p", title="t")


def test_measures_table_formats_intervals_direction_and_paper():
    _, _, measures = _zoo()
    table = plots.measures_table(measures, PAPER)
    assert list(table.index) == ["nc", "logme", "leep"]
    assert list(table.columns) == ["better", "|Pearson r|", "paper |Pearson r|", "Pearson r", "Kendall τ",
                                   "weighted τ", "top-1 regret"]
    assert list(table["better"]) == ["lower", "higher", "higher"]
    assert table.loc["logme", "|Pearson r|"] == "0.11 [-0.39,\u00a00.36]"
    assert list(table["paper |Pearson r|"]) == ["0.93", "0.76", ""]


def _pca_2d(x: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    return u[:, :2] * s[:2]


def test_embedding_panels_project_each_epoch_with_pca_and_colour_by_class(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.repeat([3, 7, 9], 20)
    first = rng.normal(size=(60, 16))
    last = np.eye(16)[labels] * 4 + 0.1 * rng.normal(size=(60, 16))
    fig = plots.embedding_panels(first, last, labels, profile="mini", class_names=["a", "b", "c"],
                                 path=tmp_path / "emb.png")
    axes = [ax for ax in fig.axes if ax.collections]
    assert len(axes) == 2 and "mini" in fig.get_suptitle() and "PCA" in fig.get_suptitle()
    for ax, feats in zip(axes, (first, last), strict=True):
        expected = _pca_2d(feats)
        for coll, cls in zip(ax.collections, (3, 7, 9), strict=True):
            got = coll.get_offsets()
            want = expected[labels == cls]
            signs = np.sign((got * want).sum(axis=0))  # PCA axes are defined up to sign
            np.testing.assert_allclose(got, want * signs, atol=1e-8)
        assert "principal component 1" in ax.get_xlabel()
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["a", "b", "c"]
    colours = [tuple(c.get_facecolor()[0]) for c in axes[0].collections]
    assert len(set(colours)) == 3
    assert (tmp_path / "emb.png").is_file()


def test_embedding_panels_tsne_and_bad_input():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1], 15)
    x = rng.normal(size=(30, 5)) + labels[:, None] * 5
    fig = plots.embedding_panels(x, x, labels, method="tsne", profile="p")
    assert "t-SNE" in fig.axes[0].get_xlabel()
    with pytest.raises(ValueError, match="method"):
        plots.embedding_panels(x, x, labels, method="umap", profile="p")
    with pytest.raises(ValueError, match="equal length"):
        plots.embedding_panels(x, x[:-1], labels, profile="p")
    with pytest.raises(ValueError, match="class names"):
        plots.embedding_panels(x, x, labels, profile="p", class_names=["only one"])


def _diagnostics(epochs: int = 6) -> pd.DataFrame:
    e = np.arange(1, epochs + 1)
    return pd.DataFrame({"epoch": e, "nc1": 5.0 / e, "nc2_equinorm": 0.4 / e, "nc2_equiangularity": 0.3 / e,
                         "nc2_angle_gap": 0.2 / e, "nc3": 1.0 / e, "nc4": 1 - 0.5 / e, "train_loss": 1.0 / e})


def test_collapse_curves_plot_each_diagnostic_with_its_direction(tmp_path):
    diag = _diagnostics()
    fig = plots.collapse_curves(diag, profile="mini", path=tmp_path / "nc.png")
    assert len(fig.axes) == 4 and "mini" in fig.get_suptitle()
    nc1, nc2, nc3, nc4 = fig.axes
    np.testing.assert_allclose(nc1.lines[0].get_ydata(), diag["nc1"])
    np.testing.assert_allclose(nc1.lines[0].get_xdata(), diag["epoch"])
    assert nc1.get_yscale() == "log"
    assert len(nc2.lines) == 3
    np.testing.assert_allclose(nc2.lines[2].get_ydata(), diag["nc2_angle_gap"])
    np.testing.assert_allclose(nc4.lines[0].get_ydata(), diag["nc4"])
    assert all("lower is better" in ax.get_title() for ax in (nc1, nc2, nc3))
    assert "higher is better" in nc4.get_title()
    assert (tmp_path / "nc.png").is_file()


def test_collapse_curves_skip_missing_diagnostics_and_read_the_index():
    diag = _diagnostics().drop(columns=["nc3", "nc4"]).set_index("epoch")
    fig = plots.collapse_curves(diag, profile="p")
    assert len(fig.axes) == 2
    np.testing.assert_allclose(fig.axes[0].lines[0].get_xdata(), np.arange(1, 7))
    with pytest.raises(ValueError, match="no NC diagnostics"):
        plots.collapse_curves(diag[["train_loss"]], profile="p")


def _history() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame([
        {"model": m, "seed": s, "epoch": e, "train_loss": 1 / e + rng.random(), "val_metric": rng.random()}
        for m in ("dcase_asc", "cnn_music") for s in (0, 1, 2) for e in range(1, 6)
    ])


def test_training_curves_show_the_seed_mean_per_model_and_roles(tmp_path):
    history = _history()
    fig = plots.training_curves(history, metric="auroc", profile="mini", path=tmp_path / "tc.png",
                                roles={"NC's first choice": "dcase_asc", "best test AUROC": "dcase_asc"})
    loss_ax, val_ax = fig.axes
    means = history.groupby(["model", "epoch"])[["train_loss", "val_metric"]].mean()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["dcase_asc (NC's first choice; best test AUROC)", "cnn_music"]
    for ax, col in ((loss_ax, "train_loss"), (val_ax, "val_metric")):
        drawn = [line for line in ax.lines if len(line.get_xdata()) == 5]
        for line, model in zip(drawn[:2], ("dcase_asc", "cnn_music"), strict=True):
            np.testing.assert_allclose(line.get_ydata(), means.loc[model, col].to_numpy())
    assert "AUROC" in val_ax.get_ylabel() and "nats" in loss_ax.get_ylabel()
    assert "3 seed(s)" in fig.get_suptitle() and "mini" in fig.get_suptitle()
    assert (tmp_path / "tc.png").is_file()


def test_training_curves_need_the_long_columns():
    with pytest.raises(ValueError, match="val_metric"):
        plots.training_curves(_history().drop(columns="val_metric"), metric="auroc", profile="p")


# ---------------------------------------------------------------- the figures of "Pitfalls, measured"


def _draws() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    rows = [{"source": src, "draw": d, "score": s, "measure": m, "value": rng.uniform(-1, 1)}
            for src in ("models", "seeds") for d in range(20) for s in ("nc", "logme", "leep")
            for m in ("kendall", "top1_regret")]  # fmt: skip
    rows[0]["value"] = np.nan  # an undefined draw
    return pd.DataFrame(rows)


def test_plot_draws_one_panel_per_source_and_measure_with_its_direction(tmp_path):
    draws = _draws()
    fig = plots.plot_draws(draws, profile="mini", title="Draws", path=tmp_path / "draws.png")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 4 and "Draws" in fig.get_suptitle() and "mini" in fig.get_suptitle()
    assert [ax.get_title() for ax in axes] == ["over models", "over models", "over seeds", "over seeds"]
    assert [ax.get_xlabel() for ax in axes[:2]] == ["kendall (higher is better)", "top1_regret (lower is better)"]
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["nc", "logme", "leep"]
    assert len(axes[0].patches) == 3  # one box per score
    assert (tmp_path / "draws.png").is_file()


def test_plot_min_models_one_line_per_pairing_on_a_log_scale():
    grid = pd.DataFrame({"r1": 0.93, "r2": [0.5, 0.7, 0.5, 0.7], "r12": [None, None, 0.5, 0.5],
                         "models": [10.0, 40.0, 6.0, 20.0]})  # fmt: skip
    fig = plots.plot_min_models(grid, claim=(0.93, 0.76), zoo_size=6, profile="mini")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and "mini" in fig.get_suptitle()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["independent zoos", "one zoo, r12 = 0.5"]
    curves = [line for line in ax.lines if len(line.get_xdata()) == 2]
    np.testing.assert_allclose(curves[0].get_ydata(), [10, 40])
    np.testing.assert_allclose(curves[1].get_ydata(), [6, 20])
    assert any(np.allclose(line.get_ydata(), 6) for line in ax.lines if len(line.get_xdata()) != 2)  # our zoo


def test_plot_subsets_one_panel_per_score_and_crosses_for_weak_models():
    sweep = pd.DataFrame({"subset": ["a+b+c", "a+b+d", "a+c+d"] * 2, "spread": [0.1, 0.2, 0.3] * 2,
                          "score": ["nc"] * 3 + ["logme"] * 3, "measure": "kendall",
                          "value": [0.5, -0.5, 1.0, 0.2, np.nan, 0.4], "d": [False, True, True] * 2})  # fmt: skip
    fig = plots.plot_subsets(sweep, "kendall", weak=["d"], profile="mini", title="Subsets")
    nc, logme = (ax for ax in fig.axes if ax.get_visible())
    np.testing.assert_allclose(np.sort(nc.collections[0].get_offsets(), axis=0), [[0.1, -0.5], [0.2, 0.5], [0.3, 1]])
    assert len(logme.collections[0].get_offsets()) == 2  # the undefined sub-zoo is left out
    assert nc.get_title() == "NC (lower is better)" and "crosses: sub-zoos with d" in fig.get_suptitle()


def test_plot_size_draws_performance_against_size_and_the_two_taus():
    params = pd.Series([1e6, 4e6, 2e6], index=["a", "b", "c"])
    perf = pd.Series([0.6, 0.9, 0.7], index=["a", "b", "c"])
    table = pd.DataFrame({"score": ["performance", "nc", "logme"], "tau_size": [1.0, -0.3, 0.8],
                          "tau_performance": [np.nan, 0.2, 0.6]})  # fmt: skip
    fig = plots.plot_size(params, perf, table, metric="accuracy", profile="mini", title="Size")
    a, b = fig.axes
    np.testing.assert_allclose(np.concatenate([c.get_offsets() for c in a.collections]), np.c_[params, perf])
    assert a.get_xscale() == "log" and sorted(t.get_text() for t in a.texts) == ["a", "b", "c"]
    np.testing.assert_allclose(b.collections[0].get_offsets(), [[-0.3, 0.2], [0.8, 0.6]])  # not the first row
    assert "accuracy" in a.get_ylabel() and "mini" in fig.get_suptitle()


def test_plot_layers_performance_per_depth_and_taus_per_layer():
    index = pd.MultiIndex.from_product([["early", "penultimate"], ["a", "b"]], names=["layer", "model"])
    perf = pd.Series([0.6, 0.7, 0.8, 0.75], index=index)
    taus = pd.DataFrame({"layer": ["early", "penultimate", "all"] * 2, "score": ["nc"] * 3 + ["logme"] * 3,
                         "value": [0.1, 0.2, 0.3, -0.4, 0.5, 0.6]})  # fmt: skip
    fig = plots.plot_layers(perf, taus, metric="AUROC", profile="mini", title="Layers")
    a, b = fig.axes
    assert [t.get_text() for t in a.get_legend().get_texts()] == ["a", "b"]
    assert sorted(round(bar.get_width(), 6) for bar in b.patches if bar.get_height() > 0 and bar.get_width() != 0) == \
        sorted(taus["value"])
    assert [t.get_text() for t in b.get_legend().get_texts()] == ["early", "penultimate", "all"]
    assert "AUROC" in a.get_ylabel() and "mini" in fig.get_suptitle()


def test_plot_splits_one_point_per_score_and_panel():
    taus = pd.DataFrame({"panel": ["image, linear"] * 2 + ["audio, linear"] * 2, "score": ["nc", "logme"] * 2,
                         "train": [0.1, 0.2, 0.3, 0.4], "val": [-0.1, 0.5, 0.6, 0.7]})  # fmt: skip
    fig = plots.plot_splits(taus, profile="mini", title="Splits")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["image, linear", "audio, linear"]
    np.testing.assert_allclose(panels[1].collections[0].get_offsets(), [[0.3, 0.6], [0.4, 0.7]])
    assert sorted(t.get_text() for t in panels[0].texts) == ["logme", "nc"] and "mini" in fig.get_suptitle()


def test_table1_puts_the_papers_parameter_counts_beside_ours():
    zoo = pd.DataFrame({
        "model": ["dcase_asc", "cnn_music", "crnn_speech"],
        "architecture": ["DcaseBaseline", "Cnn", "Crnn"],
        "params": [4_309_450, 425_434, 524_506],
        "paper_params": ["4.31 M", "0.43 M", "0.53 M"],  # pipeline.audio_zoo's, checked in test_pipeline
        "source_task": ["acoustic scenes", "music genres", "speech commands"],
        "source_dataset": ["synth_scenes", "synth_music", "synth_speech"],
        "source_accuracy": [0.81234, 0.5, 0.9],
        "epochs": [8, 8, 8],
    })
    table = plots.table1(zoo)
    # Table 1 of the paper: DCASE 2018 baseline 4.31 M, CNN 0.43 M, CRNN 0.53 M parameters.
    assert list(table["params (paper)"]) == ["4.31 M", "0.43 M", "0.53 M"]
    assert list(table["params (ours)"]) == ["4.31 M", "0.43 M", "0.52 M"]
    assert table.loc["dcase_asc", "source accuracy"] == 0.812


def test_every_registered_score_has_a_unit_and_a_direction():
    from nclib.scores import REGISTRY

    assert set(plots.SCORE_UNITS) == set(REGISTRY)
    assert plots.direction("nc") == "lower is better" and plots.direction("logme") == "higher is better"


# ---------------------------------------------------------------- legibility: size, labels, colours


def _every_figure() -> dict[str, object]:
    """One figure of every plotting function, on inputs as crowded as the mini book's (14 image models)."""
    scores, perf, spread = _crowded_zoo()
    measures = _measures(scores)
    rows = {"linear head": plots.Transfer(perf, measures, spread, PAPER),
            "fine-tuning": plots.Transfer(perf.iloc[::-1].set_axis(perf.index), measures, spread)}  # fmt: skip
    rng = np.random.default_rng(6)
    labels = np.repeat(np.arange(10), 12)
    first = rng.normal(size=(120, 8))
    index = pd.MultiIndex.from_product([["features.0", "features.1", "penultimate"], ZOO[5:]], names=["layer", "model"])
    taus = pd.DataFrame({"layer": np.repeat(["features.0", "penultimate", "all"], 13),
                         "score": list(scores.columns) * 3, "value": rng.uniform(-1, 1, 39)})  # fmt: skip
    size = pd.DataFrame({"score": ["performance", *scores.columns], "tau_size": rng.uniform(-0.1, 0.1, 14),
                         "tau_performance": rng.uniform(-0.1, 0.1, 14)})  # fmt: skip
    splits = pd.DataFrame({"panel": np.repeat(["image, linear", "image, finetune", "audio, linear"], 13),
                           "score": list(scores.columns) * 3, "train": rng.uniform(0.2, 0.3, 39),
                           "val": rng.uniform(0.2, 0.3, 39)})  # fmt: skip
    sweep = pd.DataFrame({"spread": rng.uniform(0, 0.3, 13 * 40), "score": np.repeat(scores.columns, 40),
                          "measure": "kendall", "value": rng.uniform(-1, 1, 13 * 40),
                          "lite0_random": rng.random(13 * 40) < 0.3})  # fmt: skip
    ledger = pd.DataFrame({"claim": [f"order_image_finetune_nc_over_logme_{i}" for i in range(16)],
                           "measure": ["r", "Δ|r|"] * 8, "ours": rng.uniform(-1, 1, 16), "paper": "0.5",
                           "low": -1.0, "high": 1.0, "verdict": ["reproduced", "not reproduced"] * 8})  # fmt: skip
    history = pd.DataFrame([{"model": m, "seed": s, "epoch": e, "train_loss": 1 / e, "val_metric": 0.5 + 0.01 * e}
                            for m in ("dcase_asc", "cnn_music") for s in (0, 1) for e in range(1, 21)])  # fmt: skip
    return {
        "score_vs_performance": plots.score_vs_performance(scores, rows, names=plots.LEAD_SCORES, metric="accuracy",
                                                           profile="mini", title="Figure 2"),
        "score_vs_performance (rest)": plots.score_vs_performance(
            scores, rows, names=[s for s in scores.columns if s not in plots.LEAD_SCORES], metric="accuracy",
            profile="mini", title="Figure 2, the other scores"),
        "embedding_panels": plots.embedding_panels(first, first[::-1], labels, profile="mini",
                                                   class_names=[f"genre {i}" for i in range(10)]),
        "collapse_curves": plots.collapse_curves(_diagnostics(30), profile="mini", nc1_target=0.5),
        "training_curves": plots.training_curves(history, metric="auroc", profile="mini",
                                                 roles={"NC's first choice": "dcase_asc"}),
        "plot_draws": plots.plot_draws(_draws(), profile="mini", title="Draws"),
        "plot_min_models": plots.plot_min_models(pd.DataFrame({"r2": [0.5, 0.7], "r12": [None, None],
                                                               "models": [10.0, 40.0]}),
                                                 claim=(0.93, 0.76), zoo_size=14, profile="mini"),  # fmt: skip
        "plot_subsets": plots.plot_subsets(sweep, "kendall", weak=["lite0_random"], profile="mini", title="Sub-zoos"),
        "plot_size": plots.plot_size(pd.Series(rng.uniform(1e5, 1e6, 14), index=ZOO), perf, size, metric="accuracy",
                                     profile="mini", title="Size"),
        "plot_layers": plots.plot_layers(pd.Series(rng.uniform(0.6, 0.61, len(index)), index=index), taus,
                                         metric="AUROC", profile="mini", title="Layers"),
        "plot_splits": plots.plot_splits(splits, profile="mini", title="Splits"),
        "plot_claims": plots.plot_claims(ledger, profile="mini"),
    }


@pytest.fixture(scope="module")
def every_figure():
    return _every_figure()


def _texts(fig):
    fig.canvas.draw()  # ticks and their labels exist once drawn
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _shown(fig) -> tuple[int, float]:
    """(natural width in px, CSS px per pt) of ``fig`` as a notebook shows it (IPython's inline PNG: the tight box
    at fig.dpi) in the book at a 1,300 px window, where a cell's image is scaled down to 692 px (measured)."""
    with Image.open(io.BytesIO(print_figure(fig, "png", bbox_inches="tight"))) as im:
        natural = im.size[0]
    return natural, min(692, natural) / natural * fig.dpi / 72


def test_every_figure_shows_its_text_at_10_css_px_or_more_in_the_book(every_figure):
    for name, fig in every_figure.items():
        natural, px_per_pt = _shown(fig)
        assert 692 <= natural <= 2 * 692, f"{name}: {natural} px wide"  # fills the column, not shown at under half
        texts = _texts(fig)
        assert len(texts) > 10 and fig.get_suptitle() in [t.get_text() for t in texts]  # every kind of text
        small = [(t.get_text()[:30], t.get_fontsize()) for t in texts if t.get_fontsize() * px_per_pt < 10]
        assert not small, f"{name}: text under 10 CSS px: {small[:5]}"
        assert plots.displayed_px(fig, 8.0) == pytest.approx(8.0 * px_per_pt, rel=0.01)


def test_displayed_px_follows_the_column_and_the_natural_width():
    scores, perf, measures = _zoo()
    fig = plots.score_vs_performance(scores, _one_row(perf, measures), names=["nc"], metric="accuracy",
                                     profile="p", title="t")
    assert plots.displayed_px(fig, 9.0) == pytest.approx(9.0 * _shown(fig)[1], rel=0.01)
    fig.set_dpi(50)  # narrower than the column: shown at its natural size, 1 pt = dpi / 72 px
    assert plots.displayed_px(fig, 9.0) == pytest.approx(9 * 50 / 72)


def test_point_labels_never_overlap_nor_leave_their_axes(every_figure):
    labelled = {"score_vs_performance", "score_vs_performance (rest)", "plot_size", "plot_splits"}
    for name in labelled:
        fig = every_figure[name]
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        boxes = [(ax, Text.get_window_extent(t, renderer)) for ax in fig.axes for t in ax.texts]
        assert len(boxes) >= 10, f"{name}: only {len(boxes)} labels placed"
        for ax, box in boxes:
            frame = ax.get_window_extent(renderer)
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, name
        for (ax1, b1), (ax2, b2) in itertools.combinations(boxes, 2):
            assert ax1 is not ax2 or not b1.overlaps(b2), f"{name}: labels overlap in {ax1.get_title()[:20]!r}"


def test_place_labels_spreads_near_equal_points_and_ties_far_labels_to_them():
    scores, perf, _ = _crowded_zoo()
    fig = plots.score_vs_performance(scores, {"linear head": plots.Transfer(perf, _measures(scores))}, names=["nc"],
                                     metric="accuracy", profile="p", title="t")
    ax = _panels(fig)[0]
    named = {t.get_text(): t for t in ax.texts}
    for model, label in named.items():  # each label is anchored at the point of the model it names
        assert label.xy == pytest.approx((scores.loc[model, "nc"], perf[model]))
    crowd = [m for m in ("lite0", "lite1", "lite2", "digits_cnn@2") if m in named]
    assert len(crowd) >= 3  # four points within 0.003 of each other: most still get their name
    assert any(named[m].arrow_patch is not None for m in crowd)  # moved away from its point, with a leader line


def test_models_of_a_family_share_a_hue_and_differ_by_marker():
    styles = plots.model_styles(ZOO)
    families: dict[str, set] = {}
    for model, (colour, _) in styles.items():
        families.setdefault(plots.family(model), set()).add(colour)
    assert all(len(c) == 1 for c in families.values())  # one hue per family
    hues = [next(iter(c)) for c in families.values()]
    assert len(set(hues)) == len(hues) == 8  # lite0, lite1, lite2, lite0_block4, lite0_random and three CNNs
    for fam in ("digits_cnn", "digits_cnn_narrow", "shapes_cnn"):
        assert len({styles[m][1] for m in ZOO if plots.family(m) == fam}) == 3  # name@1, name@2, name
    assert len(set(styles.values())) == len(ZOO)
    assert set(hues) <= set(plots.PALETTE)
    many = plots.model_styles([f"net{i}" for i in range(12)])  # more families than hues: looks stay distinct
    assert len(set(many.values())) == 12


def test_a_model_looks_the_same_in_every_figure_of_its_track(every_figure):
    fig = every_figure["score_vs_performance"]
    legend = {t.get_text(): (mcolors.to_hex(h.get_markerfacecolor()), h.get_marker())
              for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles, strict=True)}  # fmt: skip
    assert legend == plots.model_styles(ZOO)
    zoo = ["dcase_asc", "cnn_music", "cnn_speech", "dcase_asc@2", "cnn_music@2"]
    history = _history().replace({"dcase_asc": "cnn_speech", "cnn_music": "cnn_music@2"})  # a subset of the zoo
    curves = plots.training_curves(history, metric="auroc", profile="p", zoo=zoo)
    drawn = {t.get_text(): (mcolors.to_hex(h.get_color()), h.get_marker())
             for t, h in zip(curves.legends[0].get_texts(), curves.legends[0].legend_handles, strict=True)}  # fmt: skip
    assert drawn == {m: plots.model_styles(zoo)[m] for m in ("cnn_speech", "cnn_music@2")}
    with pytest.raises(ValueError, match="not in zoo"):
        plots.training_curves(history, metric="auroc", profile="p", zoo=zoo[:2])
