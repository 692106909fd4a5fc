"""The paper's dry run (params/paper-dryrun.yaml): fixture data in the real on-disk formats pass the data check and
load through every loader; the dry-run profile is ``paper`` with only sizes (and image.weights) changed; the paper's
image input is CIFAR-10's 32 px, its native-size variant params/paper-native.yaml. (The whole dry run is CI's
``make book PROFILE=paper-dryrun``: too slow for the test suite.)"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from nclib.book import profile_of
from nclib.config import DRY_RUN, Profile
from nclib.data import audio, fixtures, images
from nclib.data.__main__ import main
from nclib.notebook import DRY_RUN_NOTICE, setup

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {name: ROOT / "params" / f"{name}.yaml" for name in ("paper", "paper-dryrun", "paper-native")}
# What the dry run may change: sizes (of splits, zoo training, seeds and epochs), and its name, device and weights.
DRY_RUN_KEYS = {"name", "device", "image.split", "image.weights", "audio.downstream.n_positive",
                "audio.downstream.n_negative", "audio.pretrain.epochs", "train.epochs", "train.seeds",
                "train.finetune_epochs", "train.dynamics_epochs", "collapse.epochs"}  # fmt: skip
CLASSES = {"scenes": fixtures.DCASE_SCENES, "music": audio.GTZAN_GENRES, "speech": fixtures.SPEECH_WORDS,
           "downstream": ("negative", "positive")}  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("NCLIB_PROFILE", "NCLIB_DATA_ROOT", "NCLIB_CACHE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fixtures")
    assert main(["fixtures", str(root)]) == 0
    return root


def _profile(name: str, data_root: Path | None = None, tmp: Path | None = None) -> Profile:
    parameters = yaml.safe_load(PARAMS[name].read_text())
    overrides = parameters.get("overrides", {}) | ({} if data_root is None else {"data_root": str(data_root)})
    overrides |= {} if tmp is None else {"cache_dir": str(tmp)}
    return profile_of(parameters | {"overrides": overrides})


def _flat(section: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in section.items():
        if isinstance(value, dict) and key != "split":
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _differences(a: Profile, b: Profile) -> set[str]:
    fa, fb = _flat(dataclasses.asdict(a)), _flat(dataclasses.asdict(b))
    return {k for k in fa if fa[k] != fb[k]} - {"data_root", "cache_dir"}


def test_dry_run_differs_from_paper_only_in_sizes_and_weights():
    paper, dry = _profile("paper"), _profile("paper-dryrun")
    changed = _differences(paper, dry)
    assert changed <= DRY_RUN_KEYS, f"the dry run changes non-size keys {sorted(changed - DRY_RUN_KEYS)}"
    assert dry.name == DRY_RUN and dry.device == "cpu" and dry.image.weights == "random" and paper.image.pretrained
    small, full = _flat(dataclasses.asdict(dry)), _flat(dataclasses.asdict(paper))
    for key in ("train.epochs", "train.finetune_epochs", "train.dynamics_epochs", "audio.pretrain.epochs",
                "collapse.epochs", "audio.downstream.n_positive", "audio.downstream.n_negative"):  # fmt: skip
        assert small[key] < full[key], key
    assert set(dry.train.seeds) < set(paper.train.seeds)
    assert all(dry.image.split[k] < paper.image.split[k] for k in paper.image.split)
    assert dry.audio.sample_rate == 48_000 and dry.image.input_size == paper.image.input_size == 32


def test_paper_native_is_paper_at_each_models_own_input_size():
    paper, native = _profile("paper"), _profile("paper-native")
    assert _differences(paper, native) == {"name", "image.input_size"}
    assert (paper.image.input_size, native.image.input_size, native.name) == (32, None, "paper-native")


def test_fixtures_pass_the_data_check(data_root, monkeypatch, capsys):
    monkeypatch.setenv("NCLIB_DATA_ROOT", str(data_root))
    assert main(["check", str(PARAMS["paper-dryrun"])]) == 0
    out = capsys.readouterr().out
    assert out.count("found, nclib fixture data") == 5
    assert out.rstrip().endswith("All 5 datasets are here; cifar10, dcase2018_task1a, gtzan, speech_commands, coswara "
                                 "are nclib's fixture data (python -m nclib.data fixtures), not the real data: for the "
                                 "dry run only.")


def test_fixtures_load_through_every_loader(data_root, tmp_path):
    profile = _profile("paper-dryrun", data_root, tmp_path)
    splits = images.image_splits(profile)
    for split, n in profile.image.split.items():
        x, y = splits[split]
        assert x.shape == (10 * n, 32, 32, 3) and x.dtype == np.uint8 and np.bincount(y).tolist() == [n] * 10
    rate = profile.audio.sample_rate
    for task, classes in CLASSES.items():
        name = profile.audio.downstream.dataset if task == "downstream" else profile.audio.sources[task]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # COSWARA's counts match the profile's; nothing skipped
            parts = audio.audio_splits(profile, task)
        assert set(parts) == {"train", "val", "test"}
        for part in parts.values():
            assert part.class_names == classes and part.sample_rate == rate
            wave, label = part[0]
            assert wave.shape == (round(audio.SECONDS[name] * rate),) and 0 <= label < len(classes)
            assert sf.info(str(part.files.paths[0])).samplerate == fixtures.RATES[name]  # the dataset's own rate
        labels = np.concatenate([p.labels for p in parts.values()])
        if task == "downstream":
            assert (labels.sum(), (labels == 0).sum()) == (profile.audio.downstream.n_positive,
                                                           profile.audio.downstream.n_negative)  # fmt: skip
        else:
            assert set(labels) == set(range(len(classes)))


def test_fixture_classes_are_learnable(data_root, tmp_path):
    """A nearest-class-mean rule on the simplest features (mean colour; mean log-mel band energies) beats chance."""
    profile = _profile("paper-dryrun", data_root, tmp_path)
    splits = images.image_splits(profile)
    features = {k: x.reshape(len(x), -1, 3).mean(1) for k, (x, _) in splits.items()}
    assert _nearest_mean_accuracy(features["train"], splits["train"][1], features["test"], splits["test"][1]) > 0.5
    parts = audio.audio_splits(profile, "speech")  # 35 classes: chance is 3 %
    bands = {k: torch.stack([audio.log_mel(p[i][0], 48_000, 30).mean(-1) for i in range(len(p))]).numpy()
             for k, p in parts.items()}  # fmt: skip
    assert _nearest_mean_accuracy(bands["train"], parts["train"].labels, bands["test"], parts["test"].labels) > 0.5


def _nearest_mean_accuracy(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    means = np.stack([x[y == c].mean(0) for c in range(y.max() + 1)])
    guess = np.argmin(((x_test[:, None] - means[None]) ** 2).sum(-1), axis=1)
    return float(np.mean(guess == y_test))


def _digests(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_fixtures_are_deterministic_and_rewritten_in_place(data_root, tmp_path):
    again = tmp_path / "again"
    fixtures.write_fixtures(again)
    assert _digests(again) == _digests(data_root)
    (again / "gtzan" / "stray.wav").write_bytes(b"x")
    fixtures.write_fixtures(again)  # an earlier fixture is replaced as a whole
    assert _digests(again) == _digests(data_root)


def test_fixtures_never_overwrite_real_data(tmp_path, capsys):
    real = tmp_path / "gtzan" / "genres"
    real.mkdir(parents=True)
    with pytest.raises(SystemExit) as exit_:
        main(["fixtures", str(tmp_path)])
    assert exit_.value.code == 2 and "are not nclib fixtures" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gtzan"] and list(real.iterdir()) == []


def test_cifar10_fixture_is_verified_by_its_marker_and_only_by_it(data_root, tmp_path):
    pools = images.cifar10(data_root)  # verify=True: the marker's md5s
    assert pools["train"][0].shape == (150, 32, 32, 3) and pools["test"][0].shape == (100, 32, 32, 3)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    fixtures.write_cifar10(folder, np.random.default_rng(0))
    batch = folder / "data_batch_2"
    original = batch.read_bytes()
    batch.write_bytes(original[:-1] + b"\x00")
    with pytest.raises(ValueError, match="data_batch_2 is not the original"):
        images.cifar10(tmp_path)
    batch.write_bytes(original)
    images.cifar10(tmp_path)
    (folder / fixtures.FIXTURE_MARKER).unlink()  # no marker: the official md5s, which the fixture fails
    with pytest.raises(ValueError, match="expected c99cafc152244af753f735de768cd75f"):
        images.cifar10(tmp_path)


def test_every_dry_run_page_says_so(tmp_path, capsys):
    setup("paper", {"name": DRY_RUN, "device": "cpu"}, None, str(tmp_path / "a"))
    assert DRY_RUN_NOTICE in capsys.readouterr().out
    setup("paper", {}, "cpu", str(tmp_path / "b"))
    assert DRY_RUN_NOTICE not in capsys.readouterr().out
