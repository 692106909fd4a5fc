"""The whole mini pipeline end to end on a reduced size: data, zoos, embeddings, transfer grids, scores, collapse.

One module-scoped run (about half a minute) feeds most tests: 7 / 3 / 3 images per class, two image candidates
at 32 px, 8 synthetic clips per class for each audio source task, 96 downstream clips, 2 epochs, one seed; grids
in a thread of this process, except one run in spawned processes.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import nclib
import nclib.stages.collapse
import nclib.stages.data
import nclib.stages.embeddings
import nclib.stages.pretrain
import nclib.stages.scores
import nclib.stages.sweeps
import nclib.stages.transfer
from nclib import cache, collapse, grid, pipeline, stages
from nclib.config import load_profile
from nclib.data import synth
from nclib.scores import REGISTRY
from nclib.stages.transfer import finetune_subset

pytestmark = pytest.mark.skipif(
    bool(synth.missing_packages("synth_scenes") + synth.missing_packages("synth_music")
         + synth.missing_packages("synth_speech")),
    reason="the mini audio needs the Debian packages espeak-ng, fluidsynth, fluid-soundfont-gm, sonic-pi-samples",
)  # fmt: skip

TABLE1 = {"DcaseBaseline": 4.31e6, "Cnn": 0.43e6, "Crnn": 0.53e6}  # parameters, Table 1 of the paper
OVERRIDES = {
    "image": {"split": {"train": 7, "val": 3, "test": 3}, "zoo": ["digits_cnn", "lite0_block4"], "input_size": 32},
    "audio": {"downstream": {"n_positive": 66, "n_negative": 30}, "pretrain": {"epochs": 2, "checkpoints": [1]},
              "zoo": ["dcase_asc", "cnn_music", "cnn_speech", "crnn_music", "crnn_speech", "cnn_music@1"],
              "synth_per_class": 8},  # the smallest size the 80/10/10 source splits allow
    "train": {"epochs": 2, "finetune_epochs": 2, "dynamics_epochs": 3, "seeds": [0], "finetune_train": 3},
    "collapse": {"per_class": 4, "epochs": 2},
}  # fmt: skip
STAGES = [("image", "linear"), ("image", "finetune"), ("audio", "linear"), ("audio", "finetune")]


def _profile(cache_dir):
    return load_profile("mini", cache_dir=str(cache_dir), **OVERRIDES)


def _everything(profile, executor=None) -> dict:
    out = {"image_zoo": pipeline.image_zoo(profile), "table1": pipeline.audio_zoo(profile, executor)}
    for split in pipeline.SPLITS:
        out["image", split] = pipeline.image_embeddings(profile, split)
        out["audio", split] = pipeline.audio_embeddings(profile, split)
    for track, strategy in STAGES:
        out[track, strategy] = pipeline.transfer_results(profile, track, strategy, executor)
    for track in ("image", "audio"):
        out[track, "scores"] = pipeline.zoo_scores(profile, track)
    out["trajectory"] = pipeline.collapse_trajectory(profile)
    out["dynamics"] = pipeline.training_dynamics(profile)
    out["layer_scores"], out["layer_performance"] = pipeline.layer_sweep(profile, "audio")
    out["subsets"] = pipeline.subset_scores(profile, "audio")
    for track in ("image", "audio"):
        out[track, "splits"] = pipeline.split_scores(profile, track)
        out[track, "hev"] = pipeline.hev_table(profile, track)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models; the same arithmetic as a grid worker (one thread each)
    profile = _profile(tmp_path_factory.mktemp("cache"))
    with ThreadPoolExecutor(1) as executor:
        yield profile, _everything(profile, executor)
    torch.set_num_threads(threads)


def test_embeddings_have_the_zoos_shapes(run):
    profile, out = run
    zoo = out["image_zoo"].set_index("model")
    assert list(zoo.index) == ["digits_cnn", "lite0_block4"]
    assert zoo.loc["lite0_block4", "params"] == 700_768 and zoo.loc["digits_cnn", "embedding_dim"] == 64
    for split, per_class in (("train", 7), ("val", 3), ("test", 3)):
        labels = pipeline.image_labels(profile, split)
        assert np.bincount(labels).tolist() == [per_class] * 10
        for model, emb in out["image", split].items():
            assert emb.features.shape == (10 * per_class, zoo.loc[model, "embedding_dim"])
            assert emb.features.dtype == np.float32 and np.isfinite(emb.features).all()
        assert out["image", split]["lite0_block4"].probs is None  # cut network: no source head
        probs = out["image", split]["digits_cnn"].probs
        assert probs.shape == (10 * per_class, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    n = {s: len(pipeline.audio_labels(profile, s)) for s in pipeline.SPLITS}
    assert sum(n.values()) == 96 and n["train"] == pytest.approx(0.7 * 96, abs=1)
    assert np.bincount(pipeline.audio_labels(profile, "train")).tolist() == [21, 46]  # 70 % of 30 and of 66
    dims = {"DcaseBaseline": 512, "Cnn": 128, "Crnn": 128}
    table1 = out["table1"].set_index("model")
    for model, emb in out["audio", "train"].items():
        assert emb.features.shape == (n["train"], dims[table1.loc[model, "architecture"]])
        classes = {"scenes": 6, "music": 8, "speech": 10}[stages.pretrain.SOURCE_TASK[table1.loc[model, "source_task"]]]
        assert emb.probs.shape == (n["train"], classes) and np.allclose(emb.probs.sum(axis=1), 1, atol=1e-5)


def test_table1_has_the_five_models_with_the_papers_sizes(run):
    profile, out = run
    table1 = out["table1"]
    assert list(table1["model"]) == ["dcase_asc", "cnn_music", "cnn_speech", "crnn_music", "crnn_speech", "cnn_music@1"]
    for row in table1.itertuples():
        assert abs(row.params / TABLE1[row.architecture] - 1) < 0.05
        assert row.paper_params == f"{TABLE1[row.architecture] / 1e6:.2f} M"  # Table 1 of the paper
        assert 0 <= row.source_accuracy <= 1 and row.epochs == (1 if row.model == "cnn_music@1" else 2)
    assert set(table1["source_dataset"]) == {"synth_scenes", "synth_music", "synth_speech"}
    assert table1.set_index("model").loc["cnn_music@1", "paper_params"] == "0.43 M"


def test_a_checkpoint_is_the_same_run_stopped_early(run):
    """cnn_music@1 is the state after epoch 1 of cnn_music's own run: one run, two weight files, two candidates."""
    profile, out = run
    configs = {n: stages.pretrain.pretrain_config(profile, n) for n in ("cnn_music", "cnn_speech")}
    assert all(stages.pretrain.checkpoint_file(profile, c, 1).exists() for c in configs.values())  # every run keeps it
    full, early = (stages.pretrain.audio_model(profile, r) for r in stages.pretrain.pretrain(
        profile, ["cnn_music", "cnn_music@1"]))
    assert not torch.equal(full.fc.weight, early.fc.weight)
    record = json.loads((profile.cache_dir / "pretrain" / f"{grid.key(configs['cnn_music'])}.json").read_text())
    history = record["result"]["history"]
    assert len(history["epoch"]) == 2  # the checkpoint cost no run of its own
    assert out["table1"].set_index("model").loc["cnn_music@1", "source_accuracy"] == pytest.approx(
        record["result"]["checkpoints"]["1"]["test_metric"])
    train = out["audio", "train"]
    assert not np.array_equal(train["cnn_music"].features, train["cnn_music@1"].features)
    with pytest.raises(ValueError, match="k in cnn_music@k must be an integer from 1 to 1"):
        load_profile("mini", audio={"zoo": ["cnn_music@2"], "pretrain": {"epochs": 2, "checkpoints": [1]}})
    with pytest.raises(ValueError, match=r"epoch 3 is not in audio.pretrain.checkpoints \[2\]; add it there"):
        load_profile("mini", audio={"zoo": ["cnn_music@3"]})
    with pytest.raises(ValueError, match="checkpoints must be distinct epochs from 1 to 5"):
        load_profile("mini", audio={"pretrain": {"checkpoints": [6]}})


def test_transfer_grids_cover_zoo_and_seeds(run):
    profile, out = run
    for track, strategy in STAGES:
        table = out[track, strategy]
        zoo = profile.image.zoo if track == "image" else profile.audio.zoo
        assert list(table["model"]) == list(zoo) and set(table["seed"]) == {0}
        assert (table["strategy"] == strategy).all()
        assert (table["metric"] == ("accuracy" if track == "image" else "auroc")).all()
        assert table["test_metric"].between(0, 1).all() and table["best_epoch"].between(1, 2).all()
        perf = pipeline.performance(profile, track, strategy)
        assert list(perf.index) == list(zoo)
        np.testing.assert_allclose(perf.to_numpy(), table.groupby("model")["test_metric"].mean().loc[list(zoo)])


def test_scores_table_has_every_registry_score(run):
    profile, out = run
    for track, zoo in (("image", profile.image.zoo), ("audio", profile.audio.zoo)):
        table = out[track, "scores"]
        assert list(table.columns) == list(REGISTRY) and list(table.index) == list(zoo)
        needs_head = [n for n, s in REGISTRY.items() if s.needs in ("source_probs", "source_labels")]
        others = [n for n in REGISTRY if n not in needs_head]
        assert np.isfinite(table[others].to_numpy(float)).all()
        if track == "image":
            assert table.loc["lite0_block4", needs_head].isna().all()
            assert np.isfinite(table.loc["digits_cnn", needs_head].to_numpy(float)).all()
        else:
            assert np.isfinite(table[needs_head].to_numpy(float)).all()
    nc = pipeline.zoo_scores(profile, "audio", names=["nc"])
    assert list(nc.columns) == ["nc"] and nc["nc"].equals(out["audio", "scores"]["nc"])


def test_collapse_trajectory_is_recorded_every_epoch(run):
    profile, out = run
    traj = out["trajectory"]
    diag = traj["diagnostics"]
    assert list(diag["epoch"]) == [1, 2] and traj["model"] == profile.collapse.model
    assert {"nc1", "nc2_equinorm", "nc2_equiangularity", "nc2_angle_gap", "nc3", "nc4", "train_loss",
            "train_accuracy", "val_accuracy"} <= set(diag.columns)  # fmt: skip
    (f1, y1), (f2, y2) = traj["first"], traj["last"]
    assert f1.shape == f2.shape == (len(y1), 128) and np.array_equal(y1, y2) and len(traj["classes"]) == 8
    assert len(y1) == 4 * 8  # collapse.per_class clips of each music class
    assert not np.array_equal(f1, f2)
    last = collapse.diagnostics(f2, y2)  # the stored arrays are those the last row was computed from
    assert diag.iloc[-1]["nc1"] == pytest.approx(last["nc1"], rel=1e-9)
    assert diag.iloc[0]["nc1"] == pytest.approx(collapse.diagnostics(f1, y1)["nc1"], rel=1e-9)


def test_training_dynamics_are_the_top_two_by_nc_trained_longer(run):
    profile, out = run
    dyn = out["dynamics"]
    assert list(dyn.columns) == ["model", "seed", "epoch", "train_loss", "val_metric", "test_metric"]
    models = list(dict.fromkeys(dyn["model"]))
    nc = out["audio", "scores"]["nc"].sort_values()  # NC: lower is better
    assert models == list(nc.index[:2]) == pipeline.figure4_models(profile)
    for model in models:  # dynamics_epochs, with no early stopping, in runs of their own
        assert dyn[dyn["model"] == model]["epoch"].tolist() == [1, 2, 3]
    finetune = out["audio", "finetune"]
    assert set(finetune[finetune["model"] == models[0]]["best_epoch"]) <= {1, 2}  # the zoo's runs: 2 epochs


def test_second_call_is_a_cache_hit_without_model_work(run, monkeypatch):
    profile, out = run

    def forbidden(*args, **kwargs):
        raise AssertionError("model work on a warm cache")

    monkeypatch.setattr(torch.nn.Module, "__call__", forbidden)  # no call of any network, layer or front end
    for module, name in ((stages.transfer, "transfer"), (stages.pretrain, "transfer"), (stages.collapse, "transfer"),
                         (stages.transfer, "train_linear"), (stages.scores, "score_zoo"),
                         (stages.embeddings, "build_image"), (stages.pretrain, "build_audio"),
                         (stages.sweeps, "train_linear"), (stages.sweeps, "score_zoo"),
                         (stages.sweeps, "hev_terms"), (stages.sweeps, "rescore_subsets")):  # no model work
        monkeypatch.setattr(module, name, forbidden)
    monkeypatch.setattr(synth, "_map", forbidden)  # no audio synthesis (every generator renders through _map)
    stages.data._MEMORY.clear()  # data are read again, from the caches
    stages.embeddings.image_model.cache_clear()
    again = _everything(profile)
    for k, v in out.items():
        if isinstance(v, pd.DataFrame):
            pd.testing.assert_frame_equal(again[k], v)
        elif isinstance(v, pd.Series):
            pd.testing.assert_series_equal(again[k], v)
        elif k == "trajectory":
            pd.testing.assert_frame_equal(again[k]["diagnostics"], v["diagnostics"])
            assert np.array_equal(again[k]["last"][0], v["last"][0])
        else:
            for model, emb in v.items():
                assert np.array_equal(again[k][model].features, emb.features)


def test_run_is_a_pure_function_of_its_plain_config(run, tmp_path):
    """A stored transfer run, recomputed from its JSON config alone with a fresh cache, gives the same result;
    and the linear grid run again in spawned worker processes gives the same table."""
    profile, out = run
    config = _profile(tmp_path).image  # the fresh profile differs only by its cache folder
    assert config == profile.image
    path = profile.cache_dir / "transfer"
    stored = [json.loads(p.read_text()) for p in sorted(path.glob("*.json"))]
    record = next(s for s in stored if s["config"]["model"] == "digits_cnn" and s["config"]["strategy"] == "linear")
    assert "cache_dir" not in json.dumps(record["config"]) and "data_root" not in json.dumps(record["config"])
    assert record["config"]["code"] == cache.code_digest("nclib.stages.transfer")
    fresh = pipeline.run_transfer(record["config"], cache_dir=str(tmp_path / "fresh"))
    expected = record["result"]
    for key in ("test_metric", "val_metric", "best_epoch", "metric"):
        assert fresh[key] == expected[key]
    for key in ("train_loss", "val_metric", "epoch"):
        assert fresh["history"][key] == expected["history"][key]
    assert list((tmp_path / "fresh" / "embeddings").glob("*.npz"))  # really recomputed, not read from the old cache
    spawned = pipeline.transfer_results(_profile(tmp_path / "spawned"), "image", "linear")  # default: process pool
    columns = ["model", "seed", "test_metric", "val_metric", "best_epoch"]
    pd.testing.assert_frame_equal(spawned[columns], out["image", "linear"][columns])
    assert grid.key(record["config"]) == next(p.stem for p in path.glob("*.json")
                                               if json.loads(p.read_text())["config"] == record["config"])


STAGE_MODULES = ("data", "pretrain", "embeddings", "transfer", "scores", "collapse", "studies", "sweeps")
EDITS = {  # edited module -> the stages whose cached results must be recomputed
    "models/audio.py": {"pretrain", "embeddings", "transfer", "scores", "collapse", "studies", "sweeps"},
    "models/image.py": {"embeddings", "transfer", "scores", "studies", "sweeps"},
    "data/synth.py": set(STAGE_MODULES),
    "train.py": {"pretrain", "embeddings", "transfer", "scores", "collapse", "studies", "sweeps"},
    "collapse.py": {"collapse"},
    "scores/nc.py": {"scores", "studies", "sweeps"},
    "stages/transfer.py": {"transfer", "studies"},
    "stages/sweeps.py": {"sweeps"},
    "plots.py": set(),
    "pitfalls.py": {"sweeps"},
}


@pytest.mark.parametrize("edited", list(EDITS))
def test_editing_a_module_reruns_exactly_the_stages_that_import_it(edited, tmp_path, monkeypatch, request):
    """Each stage's cache keys hold cache.code_digest of its module: a code edit changes the digests of the stages
    that import the edited module, directly or not, and no other; a comment or docstring changes none."""
    copy = tmp_path / "nclib"
    shutil.copytree(Path(nclib.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "PACKAGE", copy)
    request.addfinalizer(cache.code_digest.cache_clear)  # no digest of the copy outlives the test

    def digests():
        cache.code_digest.cache_clear()
        return {stage: cache.code_digest(f"nclib.stages.{stage}") for stage in STAGE_MODULES}

    before = digests()
    assert len(set(before.values())) == len(STAGE_MODULES)
    path = copy / edited
    path.write_text(path.read_text() + "\n# a comment\n")
    assert digests() == before
    path.write_text(path.read_text() + "\n_EDITED = 1\n")
    after = digests()
    assert {s for s in STAGE_MODULES if after[s] != before[s]} == EDITS[edited]


def test_paper_profile_says_where_the_data_is_missing(tmp_path):
    profile = load_profile("paper", data_root=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError) as info:
        pipeline.audio_labels(profile, "train")
    message = str(info.value)
    assert str(tmp_path / "data" / "coswara") in message
    assert "combined_data.csv" in message and "https://github.com/iiscleap/Coswara-Data" in message


def test_bad_arguments_are_named(run):
    profile, _ = run
    with pytest.raises(ValueError, match="track"):
        pipeline.transfer_results(profile, "video", "linear")
    with pytest.raises(ValueError, match="strategy"):
        pipeline.transfer_results(profile, "image", "both")
    with pytest.raises(ValueError, match="split"):
        pipeline.image_labels(profile, "dev")
    with pytest.raises(ValueError, match="not in the audio zoo"):
        pipeline.training_dynamics(profile, models=["resnet50"])
    with pytest.raises(ValueError, match="unknown scores"):
        pipeline.zoo_scores(profile, "image", names=["accuracy"])


def test_paper_reported_numbers():
    table = pipeline.paper_reported()
    assert list(table.columns) == ["figure", "downstream", "strategy", "score", "abs_pearson"]
    nc = table[(table["figure"] == "fig2") & (table["score"] == "nc")].set_index("strategy")["abs_pearson"]
    assert nc.to_dict() == {"linear_head": 0.93, "full_finetune": 0.91}


def test_finetune_subset_keeps_at_most_k_per_class_seeded():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 6)
    keep = finetune_subset(labels, 4, seed=0)
    assert np.bincount(labels[keep]).tolist() == [4, 3, 4] and np.all(np.diff(keep) > 0)
    np.testing.assert_array_equal(keep, finetune_subset(labels, 4, seed=0))
    assert any(not np.array_equal(keep, finetune_subset(labels, 4, seed=s)) for s in range(1, 5))
    np.testing.assert_array_equal(finetune_subset(labels, None, seed=0), np.arange(len(labels)))
