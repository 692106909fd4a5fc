"""Profiles: one YAML file per experimental setup, loaded into frozen dataclasses.

``mini`` (the default) runs offline on a 2-core CPU in minutes; ``paper`` is the setup of
Sections 4.1-4.3 of the paper. Both go through the same code; only this configuration differs.

    profile = load_profile()                                  # $NCLIB_PROFILE or "mini"
    profile = load_profile("paper", image__input_size=32)     # "__" reaches into a section
    profile = load_profile("my.yaml", train={"epochs": 5})    # a path; a dict merges into a section

Unknown or missing keys, values of the wrong type, unknown profiles and unknown zoo models raise one ``ValueError``
naming the key, the value and the valid choices.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROFILE_DIR = Path(__file__).parent / "profiles"
DEFAULT_DATA_ROOT = Path("~/.cache/nclib/data")
DEFAULT_CACHE_DIR = Path(".cache/nclib")
IMAGE_WEIGHTS = ("pretrained", "random")  # the values of image.weights
DRY_RUN = "paper-dryrun"  # the name of params/paper-dryrun.yaml's profile: the paper's code path on fixture data


@dataclass(frozen=True)
class ImageConfig:
    """Image track (Figure 2): target dataset, its stratified split, and the candidate zoo."""

    dataset: str
    split: dict[str, int]
    input_size: int | None
    batch_size: int
    zoo: tuple[str, ...]
    weights: str  # "pretrained": each model's published or nclib-trained weights; "random": seeded random ones

    @property
    def pretrained(self) -> bool:
        """Whether the zoo's models get their pre-trained weights (``weights: pretrained``)."""
        return self.weights == "pretrained"


@dataclass(frozen=True)
class DownstreamConfig:
    """The audio target task (COVID-19 detection from coughs in the paper)."""

    dataset: str
    n_positive: int
    n_negative: int
    split: tuple[float, float, float]


@dataclass(frozen=True)
class PretrainConfig:
    """Source-task pre-training of the audio zoo."""

    epochs: int
    batch_size: int
    lr: float
    checkpoints: tuple[int, ...]  # epochs after which each run also keeps its state: the zoo's ``name@k``


@dataclass(frozen=True)
class AudioConfig:
    """Audio track (Figures 1, 3, 4 and Table 1)."""

    sample_rate: int
    n_mels: int
    downstream: DownstreamConfig
    sources: dict[str, str]
    frame_ms: dict[str, float]
    zoo: tuple[str, ...]
    pretrain: PretrainConfig
    synth_per_class: int  # clips per class of each synthetic source task (mini's sources; real datasets: unused)


@dataclass(frozen=True)
class TrainConfig:
    """Transfer to the target task (Section 4.3)."""

    optimizer: str
    lr: float
    batch_size: int
    epochs: int  # of the ``linear`` strategy
    patience: int | None
    seeds: tuple[int, ...]
    finetune_epochs: int  # of the ``finetune`` strategy (the whole network: far dearer per epoch)
    finetune_train: int | None  # at most this many training examples per class for ``finetune`` (None: all)
    dynamics_epochs: int  # Figure 4: ``finetune`` epochs of the two audio models NC ranks first, no early stopping


@dataclass(frozen=True)
class CollapseConfig:
    """Figure 1's trajectory run: an audio model trained from scratch on a source task into neural collapse."""

    model: str  # a registered audio model (nclib.models.audio.ZOO_INFO)
    task: str  # its source task, a key of audio.sources
    per_class: int | None  # training clips per class, a seeded stratified subset (None: every clip)
    epochs: int  # no early stopping: every epoch is trained and recorded
    lr: float  # Adam learning rate
    batch_size: int


@dataclass(frozen=True)
class Profile:
    """A complete experimental setup; ``data_root`` and ``cache_dir`` are absolute paths."""

    name: str
    seed: int
    device: str
    data_root: Path
    cache_dir: Path
    image: ImageConfig
    audio: AudioConfig
    train: TrainConfig
    collapse: CollapseConfig


def available_profiles() -> list[str]:
    """Names of the profiles shipped with nclib."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str | os.PathLike | None = None, **overrides: Any) -> Profile:
    """Load a profile by name (``mini``, ``paper``) or YAML path, then apply ``overrides``.

    ``None`` reads ``$NCLIB_PROFILE`` and falls back to ``mini``. An override ``a__b=v`` sets key
    ``b`` of section ``a``; a dict value is merged into the section. ``data_root`` and
    ``cache_dir`` resolve, first match wins: override, ``$NCLIB_DATA_ROOT`` / ``$NCLIB_CACHE``,
    the YAML value, ``~/.cache/nclib/data`` / ``./.cache/nclib``.
    """
    if name_or_path is None:
        name_or_path = os.environ.get("NCLIB_PROFILE") or "mini"
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILE_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            known = available_profiles()
            raise ValueError(f"unknown profile {str(name_or_path)!r}; available: {known} or a path to a .yaml file"
                             f"{did_you_mean(name_or_path, known)}")
    elif not path.is_file():
        raise ValueError(f"profile file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"profile {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"profile {path} must be a YAML mapping, got {type(data).__name__}")
    env = {"data_root": os.environ.get("NCLIB_DATA_ROOT"), "cache_dir": os.environ.get("NCLIB_CACHE")}
    for key, value in env.items():
        if value:
            data[key] = value
    for key, value in overrides.items():
        _set(data, key.split("__"), value)
    data["data_root"] = Path(data.get("data_root") or DEFAULT_DATA_ROOT).expanduser().resolve()
    data["cache_dir"] = Path(data.get("cache_dir") or DEFAULT_CACHE_DIR).expanduser().resolve()
    profile = _build(Profile, data, "")
    _check(profile)
    return profile


def _set(data: dict, keys: list[str], value: Any) -> None:
    """Set ``data[k0][k1]... = value``; a dict value is merged into an existing section."""
    for i, key in enumerate(keys[:-1]):
        if not isinstance(data.get(key), dict):
            where, override = ".".join(keys[: i + 1]), f"{'__'.join(keys)}={value!r}"
            if key in data:
                raise ValueError(f"profile key {where!r} (value {data[key]!r}) is not a section; override {override}")
            sections = sorted(k for k, v in data.items() if isinstance(v, dict))
            raise ValueError(f"unknown profile section {where!r} in override {override}; sections there: {sections}"
                             f"{did_you_mean(key, sections)}")
        data = data[key]
    last = keys[-1]
    if isinstance(value, dict) and isinstance(data.get(last), dict):
        for sub, subvalue in value.items():
            _set(data[last], [sub], subvalue)
    else:
        data[last] = value


def _build(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a dict, checking keys and value types recursively."""
    name = where or "profile"
    if not isinstance(data, dict):
        raise ValueError(f"{f'profile key {where!r}' if where else 'a profile'} must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        bad = unknown[0]
        raise ValueError(f"unknown profile key {_dot(where, bad)!r} (value {data[bad]!r}); allowed in {name}: "
                         f"{sorted(fields)}{did_you_mean(bad, fields)}")
    missing = sorted(set(fields) - set(data))
    if missing:
        raise ValueError(f"missing profile key {_dot(where, missing[0])!r}")
    return cls(**{key: _coerce(hints[key], data[key], _dot(where, key)) for key in fields})


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Check ``value`` against the type hint ``tp``; lists become tuples, ints may become floats."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        return _coerce(next(a for a in args if a is not type(None)), value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple) or (args[-1] is not Ellipsis and len(value) != len(args)):
            raise ValueError(f"profile key {where!r} must be a list, got {value!r}")
        item_types = [args[0]] * len(value) if args[-1] is Ellipsis else args
        return tuple(_coerce(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(item_types, value, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"profile key {where!r} must be a mapping, got {value!r}")
        return {str(k): _coerce(args[1], v, _dot(where, k)) for k, v in value.items()}
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is Path:
        return Path(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        hint = " (YAML reads 1e-4 as text: write 1.0e-4)" if tp is float and isinstance(value, str) else ""
        raise ValueError(f"profile key {where!r} must be {tp.__name__}, got {value!r}{hint}")
    return value


def _dot(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def did_you_mean(name: Any, choices: typing.Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` to ``name``, or ``""``."""
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check(p: Profile) -> None:
    """Cross-key rules that types alone cannot express."""
    _check_collapse(p)
    if set(p.image.split) != {"train", "val", "test"} or min(p.image.split.values()) < 1:
        raise ValueError(f"image.split needs positive per-class counts for train, val and test, got {p.image.split}")
    counts = {"train.epochs": p.train.epochs, "train.finetune_epochs": p.train.finetune_epochs,
              "train.dynamics_epochs": p.train.dynamics_epochs,
              "train.finetune_train": 1 if p.train.finetune_train is None else p.train.finetune_train,
              "audio.synth_per_class": p.audio.synth_per_class}
    if min(counts.values()) < 1:
        raise ValueError(f"these profile keys must be >= 1: {counts}")
    if abs(sum(p.audio.downstream.split) - 1) > 1e-9 or min(p.audio.downstream.split) <= 0:
        raise ValueError(f"audio.downstream.split must be three positive fractions summing to 1, got "
                         f"{p.audio.downstream.split}")
    frames = set(p.audio.sources) | {"downstream"}
    if set(p.audio.frame_ms) != frames:
        raise ValueError(f"audio.frame_ms must have exactly the keys {sorted(frames)}, got {sorted(p.audio.frame_ms)}")
    if p.image.weights not in IMAGE_WEIGHTS:
        raise ValueError(f"image.weights must be one of {list(IMAGE_WEIGHTS)}, got {p.image.weights!r}"
                         f"{did_you_mean(p.image.weights, IMAGE_WEIGHTS)}")
    if p.train.optimizer != "adam":
        raise ValueError(f"train.optimizer must be 'adam' (the paper's), got {p.train.optimizer!r}")
    if not p.train.seeds:
        raise ValueError("train.seeds must list at least one seed")
    pre = p.audio.pretrain
    if not set(pre.checkpoints) <= set(range(1, pre.epochs)) or len(set(pre.checkpoints)) < len(pre.checkpoints):
        raise ValueError(f"audio.pretrain.checkpoints must be distinct epochs from 1 to {pre.epochs - 1} (the last "
                         f"epoch is the run itself), got {list(pre.checkpoints)}")
    if p.device.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {p.device!r}")
    from nclib.models.audio import ZOO_INFO as AUDIO  # here, not at the top: the model modules import torch
    from nclib.models.image import PRETRAIN_EPOCHS as IMAGE_EPOCHS
    from nclib.models.image import ZOO_INFO as IMAGE
    from nclib.models.names import SEPARATOR, checkpoint

    epochs: dict[str, typing.Mapping[str, int | None]] = {  # of the pre-training that makes each network
        "image": IMAGE_EPOCHS, "audio": dict.fromkeys(AUDIO, p.audio.pretrain.epochs)}
    for track, zoo, known in (("image", p.image.zoo, IMAGE), ("audio", p.audio.zoo, AUDIO)):
        for i, model in enumerate(zoo):
            where = f"profile key '{track}.zoo[{i}]'"
            if SEPARATOR in model:  # a checkpoint name@k: say what is wrong with it
                try:
                    checkpoint(model, epochs[track])
                except ValueError as exc:
                    raise ValueError(f"bad {track} checkpoint in {where}: {exc}") from None
                if track == "audio":
                    k = int(model.rpartition(SEPARATOR)[2])
                    if k not in p.audio.pretrain.checkpoints:
                        raise ValueError(f"audio checkpoint {model!r} in {where}: epoch {k} is not in "
                                         f"audio.pretrain.checkpoints {list(p.audio.pretrain.checkpoints)}; add it "
                                         "there (every pre-training run then keeps its state after that epoch)")
                    continue
            if model not in known:
                raise ValueError(f"unknown {track} model {model!r} in {where}; registered {track} models: "
                                 f"{sorted(known)}{did_you_mean(model, known)}")
            if model in zoo[:i]:
                raise ValueError(f"{track} model {model!r} is listed twice in {track}.zoo ({where}): list it once")


def _check_collapse(p: Profile) -> None:
    """Rules of the ``collapse`` section."""
    c = p.collapse
    if min(c.epochs, c.batch_size, 1 if c.per_class is None else c.per_class) < 1 or not c.lr > 0:
        raise ValueError(f"collapse needs epochs, batch_size and per_class (or null) >= 1 and lr > 0; got epochs="
                         f"{c.epochs}, batch_size={c.batch_size}, per_class={c.per_class}, lr={c.lr}")
    if c.task not in p.audio.sources:
        raise ValueError(f"collapse.task must be a source task, a key of audio.sources {sorted(p.audio.sources)}, "
                         f"got {c.task!r}{did_you_mean(c.task, p.audio.sources)}")
    from nclib.models.audio import ZOO_INFO  # here, not at the top: the model modules import torch

    if c.model not in ZOO_INFO:
        raise ValueError(f"unknown audio model {c.model!r} in profile key 'collapse.model'; registered audio models: "
                         f"{sorted(ZOO_INFO)}{did_you_mean(c.model, ZOO_INFO)}")
