"""Figure 1's trajectory run (nclib.stages.collapse) on the tiny settings of params/tiny.yaml: what it records every
epoch, its cache (a warm call runs no model; a corrupt or missing array file runs it again) and its profile section.

One module-scoped cold run (a few seconds) in a fresh cache feeds every test.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import nclib.stages.collapse as stage
from nclib import cache, collapse, plots
from nclib.config import load_profile
from nclib.data import synth

pytestmark = pytest.mark.skipif(bool(synth.missing_packages("synth_music")),
                                reason="the mini music source needs the Debian packages fluidsynth, fluid-soundfont-gm")

PARAMS = yaml.safe_load((Path(__file__).resolve().parents[1] / "params" / "tiny.yaml").read_text())
COLUMNS = ["epoch", "nc1", "nc2_equinorm", "nc2_equiangularity", "nc2_angle_gap", "nc3", "nc4", "train_loss",
           "train_accuracy", "val_accuracy"]  # fmt: skip


def _tiny(cache_dir: Path, **overrides):
    return load_profile(PARAMS["profile"], **PARAMS["overrides"], cache_dir=str(cache_dir), **overrides)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    profile = _tiny(tmp_path_factory.mktemp("collapse-cache"))
    return profile, stage.collapse_trajectory(profile)


def _same(a: dict, b: dict) -> None:
    pd.testing.assert_frame_equal(a["diagnostics"], b["diagnostics"])
    for part in ("first", "last"):
        for x, y in zip(a[part], b[part], strict=True):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a["last_predictions"], b["last_predictions"])


def test_every_epoch_is_recorded_on_the_training_subset(run):
    profile, traj = run
    c = profile.collapse
    diag = traj["diagnostics"]
    assert list(diag.columns) == COLUMNS
    assert diag["epoch"].tolist() == list(range(1, c.epochs + 1))
    (f1, y1), (f2, y2) = traj["first"], traj["last"]
    n = c.per_class * len(traj["classes"])
    assert f1.shape == f2.shape == (n, 128) and traj["n_train"] == n  # the CRNN's 128-d embedding
    np.testing.assert_array_equal(y1, y2)
    assert np.bincount(y1).tolist() == [c.per_class] * len(traj["classes"])
    assert not np.array_equal(f1, f2)
    assert traj["model"] == "crnn_music" and traj["source"] == "synth_music"
    assert traj["settings"] == dataclasses.asdict(c)
    assert diag[["train_accuracy", "val_accuracy"]].apply(lambda s: s.between(0, 1)).all().all()


def test_train_accuracy_and_diagnostics_agree_with_the_saved_arrays(run):
    _, traj = run
    diag = traj["diagnostics"]
    (f1, y1), (f2, y2) = traj["first"], traj["last"]
    predictions = traj["last_predictions"]
    accuracy = sum(int(p == y) for p, y in zip(predictions.tolist(), y2.tolist(), strict=True)) / len(y2)
    assert diag["train_accuracy"].iloc[-1] == accuracy
    last = collapse.diagnostics(f2, y2, predictions=predictions)
    assert diag["nc1"].iloc[-1] == pytest.approx(last["nc1"], rel=1e-9)
    assert diag["nc4"].iloc[-1] == pytest.approx(last["nc4"], rel=1e-12)
    assert diag["nc1"].iloc[0] == pytest.approx(collapse.diagnostics(f1, y1)["nc1"], rel=1e-9)


def test_a_warm_call_runs_no_model(run, monkeypatch):
    profile, traj = run

    def forbidden(*args, **kwargs):
        raise AssertionError("a warm call must not train, build a model or compute spectrograms")

    for name in ("transfer", "build_audio", "spectrograms"):
        monkeypatch.setattr(stage, name, forbidden)
    _same(stage.collapse_trajectory(profile), traj)


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_corrupt_or_missing_array_file_runs_it_again(run, monkeypatch, damage):
    profile, traj = run
    _, npz = stage.collapse_files(profile, stage.collapse_config(profile))
    if damage == "corrupt":
        npz.write_bytes(npz.read_bytes()[:-100] + b"x" * 100)
    else:
        npz.unlink()
    calls = []
    train = stage.transfer
    monkeypatch.setattr(stage, "transfer", lambda *a, **k: calls.append(1) or train(*a, **k))
    if damage == "corrupt":
        with pytest.warns(UserWarning, match="ignoring unreadable cache file"):
            again = stage.collapse_trajectory(profile)
    else:
        again = stage.collapse_trajectory(profile)
    assert calls == [1]
    _same(again, traj)  # the run is deterministic on CPU
    assert cache.load_arrays(npz) is not None


def test_the_key_holds_every_setting(run):
    profile, _ = run
    base = stage.collapse_files(profile, stage.collapse_config(profile))
    for change in ({"seed": 1}, {"collapse__epochs": 4}, {"collapse__lr": 1.0e-3}, {"audio__n_mels": 32}):
        other = _tiny(profile.cache_dir, **change)
        assert stage.collapse_files(other, stage.collapse_config(other)) != base, change


def test_per_class_beyond_the_training_split_is_a_clear_error(run):
    profile, _ = run
    with pytest.raises(ValueError, match=r"collapse.per_class is 100, but class 'piano' has only 16 training clips"):
        stage.collapse_trajectory(_tiny(profile.cache_dir, collapse__per_class=100))


def test_collapse_curves_mark_the_nc1_target(run):
    _, traj = run
    diag = traj["diagnostics"]
    fig = plots.collapse_curves(diag, profile="tiny", nc1_target=0.1 * diag["nc1"].iloc[0])
    nc1 = fig.axes[0]
    np.testing.assert_allclose(nc1.lines[0].get_ydata(), diag["nc1"])
    np.testing.assert_allclose(nc1.lines[1].get_ydata(), [0.1 * diag["nc1"].iloc[0]] * 2)
    assert nc1.lines[1].get_linestyle() == "--" and len(fig.axes[1].lines) == 3  # NC2 has no target line


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"collapse__momentum": 0.9}, "unknown profile key 'collapse.momentum' (value 0.9); allowed in collapse: "
                                      "['batch_size', 'epochs', 'lr', 'model', 'per_class', 'task']"),
        ({"collapse": {"epoch": 3}}, "unknown profile key 'collapse.epoch' (value 3); allowed in collapse: "
                                     "['batch_size', 'epochs', 'lr', 'model', 'per_class', 'task']; did you mean "
                                     "'epochs'?"),
        ({"collapse__task": "musik"}, "collapse.task must be a source task, a key of audio.sources ['music', "
                                      "'scenes', 'speech'], got 'musik'; did you mean 'music'?"),
        ({"collapse__model": "crnn"}, "unknown audio model 'crnn' in profile key 'collapse.model'"),
        ({"collapse__epochs": 0}, "collapse needs epochs, batch_size and per_class (or null) >= 1 and lr > 0; got "
                                  "epochs=0"),
        ({"collapse__lr": 0}, "collapse needs epochs"),
    ],
)
def test_the_collapse_section_rejects_unknown_keys_and_bad_values(overrides, message):
    with pytest.raises(ValueError) as info:
        load_profile("mini", **overrides)
    assert str(info.value).startswith(message)


def test_the_run_does_not_depend_on_the_callers_thread_count(run, tmp_path):
    """The training runs on one thread whatever the caller set: the same numbers on every machine."""
    _, first = run
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        again = stage.collapse_trajectory(_tiny(tmp_path))
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads
    _same(first, again)
