"""Profiles: the paper's numbers, overrides, environment variables, and errors naming the bad key."""

import dataclasses
import re

import pytest

from nclib.config import PROFILE_DIR, Profile, available_profiles, load_profile


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("NCLIB_PROFILE", "NCLIB_DATA_ROOT", "NCLIB_CACHE"):
        monkeypatch.delenv(var, raising=False)


def test_both_profiles_ship_and_load():
    assert {"mini", "paper"} <= set(available_profiles())
    for name in ("mini", "paper"):
        p = load_profile(name)
        assert isinstance(p, Profile) and p.name == name
        assert p.data_root.is_absolute() and p.cache_dir.is_absolute()
        assert len(p.image.zoo) >= 6 and isinstance(p.image.zoo, tuple)


def test_default_is_mini_and_offline():
    p = load_profile()
    assert p.name == "mini" and p.device == "cpu"
    assert p.image.dataset == "fashion_mnist"
    assert {"lite0", "lite1", "lite2"} <= set(p.image.zoo)


def test_paper_profile_is_the_papers_setup():
    """Numbers from Sections 4.1-4.3 of the paper."""
    p = load_profile("paper")
    assert p.device == "cuda"
    assert p.image.dataset == "cifar10"
    per_class = p.image.split
    assert {k: 10 * v for k, v in per_class.items()} == {"train": 40_000, "val": 10_000, "test": 10_000}
    assert set(p.image.zoo) == {"resnet50", "efficientnet_b0", "xception", "densenet121", "nasnet_mobile",
                                "mobilenet_v2"}
    assert p.image.input_size == 32  # CIFAR-10's own size, as the authors' demo feeds every model
    assert p.image.weights == "pretrained" and p.image.pretrained
    a = p.audio
    assert a.sample_rate == 48_000 and a.n_mels == 64
    assert (a.downstream.dataset, a.downstream.n_positive, a.downstream.n_negative) == ("coswara", 960, 428)
    assert a.downstream.split == (0.70, 0.15, 0.15)
    assert a.sources == {"scenes": "dcase2018_task1a", "music": "gtzan", "speech": "speech_commands"}
    assert a.frame_ms == {"scenes": 40, "music": 40, "speech": 30, "downstream": 100}
    assert a.zoo == ("dcase_asc", "cnn_music", "cnn_speech", "crnn_music", "crnn_speech")
    t = p.train
    assert (t.optimizer, t.lr, t.batch_size, t.epochs, t.finetune_epochs) == ("adam", 1e-4, 32, 250, 250)
    assert t.seeds == tuple(range(10)) and t.finetune_train is None  # fine-tuning on the whole training split


def test_image_weights_must_be_pretrained_or_random():
    assert not load_profile("mini", image__weights="random").image.pretrained
    with pytest.raises(ValueError, match=r"image.weights must be one of \['pretrained', 'random'\], got 'randm'; did "
                                         r"you mean 'random'\?"):
        load_profile("paper", image__weights="randm")


def test_mini_keeps_the_paper_class_ratio_and_frames():
    mini, paper = load_profile("mini"), load_profile("paper")
    d = mini.audio.downstream
    assert d.n_positive / d.n_negative == pytest.approx(960 / 428, rel=0.02)
    assert mini.audio.frame_ms == paper.audio.frame_ms and mini.audio.n_mels == paper.audio.n_mels


def test_every_value_in_the_yaml_is_documented():
    for path in PROFILE_DIR.glob("*.yaml"):
        for line in path.read_text().splitlines():
            m = re.match(r"^\s*[a-z_]+:\s*(\S.*)$", line)
            if m and not line.lstrip().startswith("#"):
                assert "#" in m.group(1), f"{path.name}: no comment on {line.strip()!r}"


def test_overrides_double_underscore_and_dict_merge():
    p = load_profile("mini", image__input_size=32, train={"epochs": 3}, seed=7)
    base = load_profile("mini")
    assert p.image.input_size == 32 and p.train.epochs == 3 and p.seed == 7
    assert p.train.lr == base.train.lr and p.image.zoo == base.image.zoo  # merged, not replaced
    p = load_profile("mini", audio__pretrain__epochs=3, audio__sources={"music": "x"})
    assert p.audio.pretrain.epochs == 3 and p.audio.sources["music"] == "x"
    assert p.audio.sources["speech"] == base.audio.sources["speech"]


def test_profiles_are_frozen():
    p = load_profile()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.seed = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.image.input_size = 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image__inpt_size": 3}, "unknown profile key 'image.inpt_size' (value 3); allowed in image: ['batch_size', "
                                  "'dataset', 'input_size', 'split', 'weights', 'zoo']; did you mean 'input_size'?"),
        ({"colour": 3}, "unknown profile key 'colour' (value 3); allowed in profile: ['audio', 'cache_dir', "
                        "'collapse', 'data_root', 'device', 'image', 'name', 'seed', 'train']"),
        ({"audio__pretrain__lr_decay": 0.1}, "unknown profile key 'audio.pretrain.lr_decay' (value 0.1); allowed in "
                                             "audio.pretrain: ['batch_size', 'checkpoints', 'epochs', 'lr']"),
        ({"train": {"epoch": 3}}, "unknown profile key 'train.epoch' (value 3); allowed in train: ['batch_size', "
                                  "'dynamics_epochs', 'epochs', 'finetune_epochs', 'finetune_train', 'lr', "
                                  "'optimizer', 'patience', 'seeds']; did you mean 'epochs'?"),
        ({"imag__input_size": 3}, "unknown profile section 'imag' in override imag__input_size=3; sections there: "
                                  "['audio', 'collapse', 'image', 'train']; did you mean 'image'?"),
        ({"seed__value": 3}, "profile key 'seed' (value 0) is not a section; override seed__value=3"),
        ({"train": 5}, "profile key 'train' must be a mapping, got 5"),
    ],
)
def test_unknown_keys_are_named_with_value_and_choices(overrides, message):
    with pytest.raises(ValueError) as info:
        load_profile("mini", **overrides)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image__zoo": ["lite0", "lite3"]}, r"unknown image model 'lite3' in profile key 'image\.zoo\[1\]'; "
                                             r"registered image models: \[.*'lite2'.*'resnet50'.*\]; did you mean"),
        ({"audio__zoo": ["cnn_musc"]}, r"unknown audio model 'cnn_musc' in profile key 'audio\.zoo\[0\]'; registered "
                                       r"audio models: \['cnn_music', 'cnn_speech', 'crnn_music', 'crnn_speech', "
                                       r"'dcase_asc'\]; did you mean 'cnn_music'\?"),
        ({"image__zoo": ["resnet"]}, r"unknown image model 'resnet'.*did you mean 'resnet50'\?"),
    ],
)
def test_unknown_zoo_models_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_profile("mini", **overrides)


def test_wrong_types_are_named():
    with pytest.raises(ValueError, match=r"'train\.lr'.*1\.0e-4"):
        load_profile("mini", train__lr="1e-4")
    with pytest.raises(ValueError, match=r"'image\.input_size'"):
        load_profile("mini", image__input_size=True)
    with pytest.raises(ValueError, match=r"'train\.seeds\[1\]'"):
        load_profile("mini", train__seeds=[0, "one"])
    with pytest.raises(ValueError, match=r"'audio\.downstream\.split'"):
        load_profile("mini", audio__downstream__split=[0.5, 0.5])


def test_cross_key_rules():
    with pytest.raises(ValueError, match="summing to 1"):
        load_profile("mini", audio__downstream__split=[0.5, 0.3, 0.3])
    with pytest.raises(ValueError, match="frame_ms"):
        load_profile("mini", audio__sources={"birds": "x"})
    with pytest.raises(ValueError, match="device"):
        load_profile("mini", device="tpu")
    with pytest.raises(ValueError, match="image.split"):
        load_profile("mini", image__split={"train": 0, "val": 1, "test": 1})
    for key in ("train__finetune_train", "train__finetune_epochs", "audio__synth_per_class"):
        with pytest.raises(ValueError, match=key.replace("__", ".")):
            load_profile("mini", **{key: 0})


def test_yaml_file_path_unknown_and_missing_keys(tmp_path):
    text = (PROFILE_DIR / "mini.yaml").read_text()
    good = tmp_path / "mine.yaml"
    good.write_text(text.replace("name: mini", "name: mine"))
    assert load_profile(good).name == "mine"
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("  n_mels: 64", "  n_mels: 64\n  hop_ms: 10"))
    with pytest.raises(ValueError, match="'audio.hop_ms'"):
        load_profile(bad)
    missing = tmp_path / "missing.yaml"
    missing.write_text(text.replace("  batch_size: 128", ""))
    with pytest.raises(ValueError, match="missing profile key 'image.batch_size'"):
        load_profile(missing)
    with pytest.raises(ValueError, match="unknown profile 'nope'.*mini"):
        load_profile("nope")
    with pytest.raises(ValueError, match=r"unknown profile 'mnii'; available: \['mini', 'paper'\] or a path to a "
                                         r"\.yaml file; did you mean 'mini'\?"):
        load_profile("mnii")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("  n_mels: 64", "  n_mels: [64"))
    with pytest.raises(ValueError, match=rf"profile {re.escape(str(broken))} is not valid YAML"):
        load_profile(broken)
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text(text.replace("zoo: [dcase_asc,", "zoo: [dcase,"))
    with pytest.raises(ValueError, match=r"unknown audio model 'dcase' in profile key 'audio\.zoo\[0\]'"):
        load_profile(zoo)
    with pytest.raises(ValueError, match="does not exist"):
        load_profile(tmp_path / "absent.yaml")


def test_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("NCLIB_PROFILE", "paper")
    monkeypatch.setenv("NCLIB_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("NCLIB_CACHE", str(tmp_path / "cache"))
    p = load_profile()
    assert p.name == "paper"
    assert p.data_root == tmp_path / "data" and p.cache_dir == tmp_path / "cache"
    assert load_profile("mini", data_root=tmp_path / "x").data_root == tmp_path / "x"  # explicit beats env


def test_default_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    p = load_profile("mini")
    assert p.data_root == tmp_path / ".cache" / "nclib" / "data"
    assert p.cache_dir == tmp_path / ".cache" / "nclib"
