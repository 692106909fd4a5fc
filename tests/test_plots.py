"""Tests for nclib.plots: each figure draws the data it is given, states directions and the profile, and saves.

Expected values are computed here independently (numpy SVD for the PCA panels, pandas group means for the
training curves, the paper's Table 1 typed from its text), never read back from nclib.plots itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nclib import plots

MODELS = ["alpha", "beta", "gamma", "delta", "eps"]


def _zoo(seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    perf = pd.Series(rng.uniform(0.5, 0.9, len(MODELS)), index=MODELS)
    scores = pd.DataFrame({"nc": rng.uniform(0.1, 1, 5), "logme": rng.normal(size=5), "leep": rng.normal(size=5)},
                          index=MODELS)
    scores.loc["gamma", "leep"] = np.nan  # a model without a source head
    rows = []
    for i, score in enumerate(scores.columns):
        for j, measure in enumerate(("abs_pearson", "pearson", "kendall", "weighted_kendall", "top1_regret")):
            value = round(0.1 * i + 0.01 * (j + 1), 4)
            rows.append({"score": score, "measure": measure, "value": value, "low": value - 0.5,
                         "high": value + 0.25, "n_models": 5})
    return scores, perf, pd.DataFrame(rows)


PAPER = pd.DataFrame({"score": ["nc", "logme"], "abs_pearson": [0.93, 0.76]})


def _panels(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.collections]


def test_score_vs_performance_draws_each_model_and_states_measures(tmp_path):
    scores, perf, measures = _zoo()
    path = tmp_path / "sub" / "fig.png"
    fig = plots.score_vs_performance(scores, perf, measures, metric="accuracy", profile="tiny-test",
                                     title="Figure X", paper=PAPER, path=path)
    panels = _panels(fig)
    assert len(panels) == 3
    assert "tiny-test" in fig.get_suptitle() and "Figure X" in fig.get_suptitle()
    for ax, score in zip(panels, ["nc", "logme", "leep"], strict=True):
        col = scores[score].dropna()
        xy = np.concatenate([c.get_offsets() for c in ax.collections])  # one marker per model
        np.testing.assert_allclose(xy[:, 0], col.to_numpy())
        np.testing.assert_allclose(xy[:, 1], perf.loc[col.index].to_numpy())
        assert sorted(t.get_text() for t in ax.texts) == sorted(col.index)
        title = ax.get_title()
        i = ["nc", "logme", "leep"].index(score)
        assert f"|r| = {0.1 * i + 0.01:.2f}" in title
        assert f"Kendall τ = {0.1 * i + 0.03:.2f}" in title and f"weighted τ = {0.1 * i + 0.04:.2f}" in title
        assert f"n = {len(col)}" in title  # the models this score rests on
        assert ax.get_xlabel().startswith(score.upper())
    assert "lower is better" in panels[0].get_title() and "(paper 0.93)" in panels[0].get_title()
    assert "higher is better" in panels[1].get_title() and "(paper 0.76)" in panels[1].get_title()
    assert "paper" not in panels[2].get_title()  # the paper gives no value for this score
    assert "accuracy" in panels[0].get_ylabel()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == MODELS  # one colour per model, shared by panels
    looks = {(tuple(h.get_markerfacecolor()), h.get_marker()) for h in fig.legends[0].legend_handles}
    assert len(looks) == len(MODELS)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 500


def test_score_vs_performance_draws_the_seed_spread():
    scores, perf, measures = _zoo()
    spread = pd.Series(0.02 * (1 + np.arange(len(perf))), index=perf.index)
    fig = plots.score_vs_performance(scores, perf, measures, metric="accuracy", profile="p", title="t", spread=spread)
    ax = _panels(fig)[0]
    bars = sorted(float(np.ptp(seg[:, 1])) for c in ax.collections if hasattr(c, "get_segments")
                  for seg in c.get_segments())  # fmt: skip
    col = scores["nc"].dropna()
    np.testing.assert_allclose(bars, sorted(2 * spread.loc[col.index]))  # +- 1 sd around each model's mean


def test_score_vs_performance_wraps_panels_and_hides_the_rest():
    scores, perf, measures = _zoo()
    fig = plots.score_vs_performance(scores, perf, measures, metric="auroc", profile="p", title="t", ncols=2)
    assert len(fig.axes) == 4 and len(_panels(fig)) == 3  # 2 x 2 grid, the fourth axes hidden
    assert "AUROC" in _panels(fig)[0].get_ylabel()


def test_score_vs_performance_marks_a_score_left_out_of_the_measures():
    scores, perf, measures = _zoo()
    scores["nc"] = 0.5  # constant over the zoo: the notebooks leave it out of correlation_table
    fig = plots.score_vs_performance(scores, perf, measures[measures.score != "nc"], metric="accuracy",
                                     profile="p", title="t", paper=PAPER)
    title = _panels(fig)[0].get_title()
    assert "no correlation (paper 0.93)" in title and "constant over the zoo" in title and "|r|" not in title


def test_score_vs_performance_rejects_an_empty_table():
    scores, perf, measures = _zoo()
    with pytest.raises(ValueError, match="no score"):
        plots.score_vs_performance(scores * np.nan, perf, measures, metric="accuracy", profile="p", title="t")


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
    np.testing.assert_allclose(a.collections[0].get_offsets(), np.c_[params, perf])
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
