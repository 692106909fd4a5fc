"""The pipeline: from a profile to every table and figure of the book, computed once and cached on disk.

    profile = load_profile("mini")                       # or "paper"; one code path, only the configuration differs
    image_zoo(profile)                                   # the image candidates (Figure 2)
    audio_zoo(profile)                                   # Table 1: pre-trains the five audio models on their sources
    zoo_scores(profile, "audio")                         # every registered score of every model (Figure 3)
    performance(profile, "audio", "finetune")            # mean test AUROC over seeds after transfer
    collapse_trajectory(profile)                         # Figure 1: NC1-NC4 of CRNN-music, epoch by epoch
    training_dynamics(profile)                           # Figure 4: fine-tuning histories
    build(profile)                                       # all of the above, once, before the notebooks run

Everything is cached under ``profile.cache_dir``: embeddings by :func:`nclib.features.cached_extract`
(``embeddings/``), pre-trained audio models as checksummed ``.npz`` state dicts (``pretrain/``), transfer runs as
JSON through :func:`nclib.grid.run` (``transfer/``), scores as JSON (``scores/``). A second call with nothing
changed does no model work. Every cache key holds :func:`code_version` of the nclib modules the result depends on,
so changing their code invalidates it. Randomness comes from the profile: data splits and source pre-training from
``profile.seed``, the transfer runs from ``profile.train.seeds``.

Grids (source pre-training and transfer) run in any ``concurrent.futures.Executor`` -- by default a local
process pool -- through the module-level functions :func:`pretrain_run` and :func:`run_transfer`. Their config is
plain data: a base profile name, ``overrides`` that carry every setting the run depends on (so a worker rebuilds
exactly the same profile with :func:`nclib.config.load_profile`), and the run's own fields.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import importlib.resources
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

import nclib
from nclib import cache, grid
from nclib.collapse import diagnostics
from nclib.config import Profile, available_profiles, load_profile
from nclib.data.audio import audio_splits, log_mel
from nclib.data.images import image_splits, to_model_input
from nclib.features import Embeddings, cached_extract
from nclib.models import build_audio, build_image, replace_head
from nclib.models.audio import ZOO_INFO as AUDIO_INFO
from nclib.models.image import ZOO_INFO as IMAGE_INFO
from nclib.scores import REGISTRY, score_zoo
from nclib.train import train_linear, transfer

Track = Literal["image", "audio"]
Strategy = Literal["linear", "finetune"]
SPLITS = ("train", "val", "test")
METRIC = {"image": "accuracy", "audio": "auroc"}  # Section 4.3
TRAJECTORY_MODEL = "crnn_music"  # Figure 1: a CRNN trained on music genres
SOURCE_TASK = {"acoustic scenes": "scenes", "music genres": "music", "speech commands": "speech"}  # -> audio.sources

# Source files (relative to the nclib package) whose code each cached result depends on; see code_version.
_IMAGE = ("data/__init__.py", "data/splits.py", "data/images.py", "models/__init__.py", "models/image.py",
          "features.py")  # fmt: skip
_PRETRAIN = ("data/__init__.py", "data/splits.py", "data/synth.py", "data/audio.py", "models/__init__.py",
             "models/audio.py", "train.py", "collapse.py", "_checks.py")  # fmt: skip
_CODE = {
    "image": _IMAGE,
    "pretrain": _PRETRAIN,
    "audio": (*_PRETRAIN, "features.py"),
    "image_transfer": (*_IMAGE, "train.py"),
    "audio_transfer": (*_PRETRAIN, "features.py"),
    "image_scores": (*_IMAGE, "_checks.py", "scores/*.py"),
    "audio_scores": (*_PRETRAIN, "features.py", "scores/*.py"),
}


# --------------------------------------------------------------------------------------------------------------
# Code version and run configs
# --------------------------------------------------------------------------------------------------------------
@functools.cache
def code_version(stage: str) -> str:
    """``"<nclib.__version__>+<digest>"``: sha256 over the code of the modules that results of ``stage`` depend on.

    Stages: ``image`` / ``audio`` (embeddings), ``pretrain`` (audio source models), ``image_transfer`` /
    ``audio_transfer``, ``image_scores`` / ``audio_scores``; ``nclib/pipeline.py`` counts for every stage. The digest
    covers each file's syntax tree without docstrings: editing code invalidates the cache, editing comments,
    docstrings or formatting does not.
    """
    if stage not in _CODE:
        raise ValueError(f"unknown stage {stage!r}; choose one of {sorted(_CODE)}")
    root = Path(nclib.__file__).parent
    h = hashlib.sha256()
    for pattern in (*_CODE[stage], "pipeline.py"):
        for path in sorted(root.glob(pattern)):
            h.update(f"{path.relative_to(root).as_posix()}\n{_code_only(path.read_text())}\n".encode())
    return f"{nclib.__version__}+{h.hexdigest()[:16]}"


def _code_only(source: str) -> str:
    """The syntax tree of ``source`` without docstrings, as text (comments and layout are not in the tree)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0].value if node.body and isinstance(node.body[0], ast.Expr) else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree)


def _run_config(profile: Profile, sections: Sequence[str], drop: Sequence[str] = (), **fields: Any) -> dict[str, Any]:
    """Plain-data config of one run: base profile name, ``overrides`` with every setting of ``sections`` except the
    dotted keys in ``drop`` (settings the run does not depend on), and ``fields``.

    Paths are left out too (they do not change results; the worker gets them separately), so a cache can move.
    """
    overrides = {"name": profile.name, "seed": profile.seed, "device": profile.device}
    overrides |= {s: dataclasses.asdict(getattr(profile, s)) for s in sections}
    for key in drop:
        *parents, last = key.split(".")
        functools.reduce(dict.__getitem__, parents, overrides).pop(last)
    base = profile.name if profile.name in available_profiles() else "mini"
    return {"profile": base, "overrides": overrides, **fields}


def _load(config: dict[str, Any], data_root: str | None, cache_dir: str | None) -> Profile:
    paths = {k: v for k, v in (("data_root", data_root), ("cache_dir", cache_dir)) if v is not None}
    return load_profile(config["profile"], **config["overrides"], **paths)


def _runner(fn, profile: Profile) -> functools.partial:
    """``fn`` with the profile's paths bound: picklable, so it runs in a spawned process or on Dask."""
    return functools.partial(fn, data_root=str(profile.data_root), cache_dir=str(profile.cache_dir))


def _missing(folder: Path, configs: Iterable[dict]) -> bool:
    return any(not (folder / f"{grid.key(c)}.json").exists() for c in configs)


# --------------------------------------------------------------------------------------------------------------
# Data (kept in memory for the process: several calls read the same splits)
# --------------------------------------------------------------------------------------------------------------
_MEMORY: dict[str, Any] = {}


def _memo(key: str, make):
    if key not in _MEMORY:
        if len(_MEMORY) >= 8:
            _MEMORY.pop(next(iter(_MEMORY)))
        _MEMORY[key] = make()
    return _MEMORY[key]


def _image_data(profile: Profile) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``image_splits(profile)``: uint8 images N x H x W x C and int64 labels per split."""
    k = cache.key(kind="image", dataset=profile.image.dataset, root=str(profile.data_root),
                  split=profile.image.split, seed=profile.seed)  # fmt: skip
    return _memo(k, lambda: image_splits(profile))


def _spectrograms(profile: Profile, task: str) -> tuple[dict[str, tuple[torch.Tensor, np.ndarray]], tuple[str, ...]]:
    """Log-mel spectrograms (N x 1 x n_mels x frames) and labels of every split of an audio task, and its classes."""
    a = profile.audio
    k = cache.key(kind="audio", task=task, audio=dataclasses.asdict(a), root=str(profile.data_root),
                  cache=str(profile.cache_dir), seed=profile.seed)  # fmt: skip

    def make():
        splits = audio_splits(profile, task)
        out = {}
        for name, ds in splits.items():
            loader = torch.utils.data.DataLoader(ds, batch_size=64)
            specs = [log_mel(w, a.sample_rate, a.frame_ms[task], a.n_mels) for w, _ in loader]
            out[name] = (torch.cat(specs)[:, None].contiguous(), np.asarray(ds.labels, dtype=np.int64))
        return out, tuple(splits["train"].class_names)

    return _memo(k, make)


def image_labels(profile: Profile, split: str) -> np.ndarray:
    """Integer labels (int64) of an image split (``train``, ``val`` or ``test``)."""
    return _image_data(profile)[_split(split)][1]


def audio_labels(profile: Profile, split: str) -> np.ndarray:
    """Labels (int64; 1 = positive) of a split of the downstream audio task."""
    return _spectrograms(profile, "downstream")[0][_split(split)][1]


def _labels(profile: Profile, track: str, split: str) -> np.ndarray:
    return image_labels(profile, split) if track == "image" else audio_labels(profile, split)


def _split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def _zoo(profile: Profile, track: str) -> tuple[str, ...]:
    if track not in METRIC:
        raise ValueError(f"track must be 'image' or 'audio', got {track!r}")
    return profile.image.zoo if track == "image" else profile.audio.zoo


# --------------------------------------------------------------------------------------------------------------
# Zoos
# --------------------------------------------------------------------------------------------------------------
def image_zoo(profile: Profile) -> pd.DataFrame:
    """One row per image candidate: model, architecture, params, pretraining (source data), embedding_dim."""
    rows = []
    for name in profile.image.zoo:
        info = IMAGE_INFO[name]
        rows.append({"model": name, "architecture": info["architecture"], "params": info["parameters"],
                     "pretraining": info["pretraining"], "embedding_dim": info["embedding_dim"]})  # fmt: skip
    return pd.DataFrame(rows)


@functools.cache
def _image_model(name: str) -> tuple[nn.Module, dict]:
    """``build_image(name)``, built once per process (used for embeddings only: never trained)."""
    return build_image(name)


def audio_zoo(profile: Profile, executor: Executor | None = None) -> pd.DataFrame:
    """Table 1: model, architecture, params, source_task, source_dataset, source_accuracy, epochs.

    Pre-trains (cached) every audio candidate from scratch on its source task (``profile.audio.sources``,
    ``profile.audio.pretrain``): Adam, cross-entropy, the checkpoint best on the source validation split;
    ``source_accuracy`` is the test accuracy at that checkpoint. Runs in ``executor`` (default: local processes).
    """
    rows = []
    for name, res in zip(profile.audio.zoo, _pretrain(profile, profile.audio.zoo, executor), strict=True):
        rows.append({"model": name, "architecture": AUDIO_INFO[name]["architecture"], "params": res["params"],
                     "source_task": AUDIO_INFO[name]["source_task"], "source_dataset": res["source_dataset"],
                     "source_accuracy": res["source_accuracy"], "epochs": res["epochs"]})  # fmt: skip
    return pd.DataFrame(rows)


def _source(name: str) -> str:
    if name not in AUDIO_INFO:
        raise ValueError(f"unknown audio model {name!r}; choose one of {sorted(AUDIO_INFO)}")
    return SOURCE_TASK[AUDIO_INFO[name]["source_task"]]


def _pretrain_config(profile: Profile, name: str, snapshots: bool) -> dict[str, Any]:
    drop = ("audio.zoo", "audio.downstream", "audio.frame_ms.downstream")
    return _run_config(profile, ("audio",), drop, model=name, snapshots=snapshots, code=code_version("pretrain"))


def _pretrain_files(profile: Profile, config: dict) -> tuple[Path, Path]:
    """(weights, trajectory) files of a pre-training run, next to its grid JSON."""
    stem = profile.cache_dir / "pretrain" / grid.key(config)
    return stem.with_suffix(".weights.npz"), stem.with_suffix(".trajectory.npz")


def _pretrain(
    profile: Profile, names: Sequence[str], executor: Executor | None = None, snapshots: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Results of :func:`pretrain_run` for the audio models ``names``, running those not cached.

    The run of ``TRAJECTORY_MODEL`` (and of the models in ``snapshots``) records NC diagnostics at every epoch.
    """
    configs = [_pretrain_config(profile, n, n == TRAJECTORY_MODEL or n in snapshots) for n in names]
    folder = profile.cache_dir / "pretrain"
    for c in configs:  # a result whose arrays are missing or corrupt is recomputed
        weights, trajectory = _pretrain_files(profile, c)
        if cache.load_arrays(weights) is None or (c["snapshots"] and cache.load_arrays(trajectory) is None):
            (folder / f"{grid.key(c)}.json").unlink(missing_ok=True)
    if _missing(folder, configs):
        for task in dict.fromkeys(_source(n) for n in names):
            _spectrograms(profile, task)  # data problems surface here; synthetic audio is generated once, here
    return grid.run(configs, _runner(pretrain_run, profile), folder, executor)


def pretrain_run(config: dict[str, Any], *, data_root: str | None = None, cache_dir: str | None = None) -> dict:
    """Pre-train one audio model on its source task; a pure function of its plain-data ``config`` (grid fn).

    ``config``: ``profile``, ``overrides`` (see :func:`_run_config`), ``model``, ``snapshots`` (record NC1-NC4 on
    the training split after every epoch), ``code``. Writes the best checkpoint's state dict (and, with snapshots,
    the first and last epochs' embeddings) next to the run's JSON; returns the JSON-ready summary.
    """
    start = time.perf_counter()
    profile = _load(config, data_root, cache_dir)
    name, pre = config["model"], profile.audio.pretrain
    task = _source(name)
    data, classes = _spectrograms(profile, task)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(profile.seed)
        model = build_audio(name, len(classes))
    snapshot_epochs = range(1, pre.epochs + 1) if config["snapshots"] else ()
    res = transfer(model, data["train"], data["val"], data["test"], strategy="finetune", n_classes=len(classes),
                   epochs=pre.epochs, lr=pre.lr, batch_size=pre.batch_size, seed=profile.seed, metric="accuracy",
                   device=profile.device, save_embeddings_at=snapshot_epochs)  # fmt: skip
    weights, trajectory = _pretrain_files(profile, config)
    _save_new(weights, **{k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
    out = {"model": name, "source_task": task, "source_dataset": profile.audio.sources[task], "classes": classes,
           "params": sum(p.numel() for p in model.parameters()), "source_accuracy": res["test_metric"],
           "val_accuracy": res["val_metric"], "best_epoch": res["best_epoch"], "epochs": len(res["history"]["epoch"]),
           "history": res["history"]}  # fmt: skip
    if config["snapshots"]:
        emb, h = res["embeddings"], res["history"]
        out["diagnostics"] = [
            {"epoch": e, **diagnostics(emb[e]["features"], emb[e]["labels"], emb[e]["weights"], emb[e]["predictions"]),
             "train_loss": h["train_loss"][e - 1], "val_accuracy": h["val_metric"][e - 1]}
            for e in sorted(emb)
        ]  # fmt: skip
        first, last = emb[min(emb)], emb[max(emb)]
        _save_new(trajectory, first_features=first["features"], first_labels=first["labels"],
                  last_features=last["features"], last_labels=last["labels"])  # fmt: skip
    return out | {"wall_time_s": time.perf_counter() - start}


def _save_new(path: Path, **arrays: np.ndarray) -> None:
    """``cache.save_arrays`` unless ``path`` already holds exactly these arrays.

    A run killed after writing its arrays but before the grid saved its JSON is run again; its identical arrays
    then stay as they are (a finished file is never rewritten), different ones replace them.
    """
    old = cache.load_arrays(path)
    same = (
        old is not None
        and sorted(old) == sorted(arrays)
        and all(cache.digest([old[k]]) == cache.digest([np.asarray(a)]) for k, a in arrays.items())
    )
    if not same:
        cache.save_arrays(path, **arrays)


def _audio_model(profile: Profile, result: dict[str, Any]) -> nn.Module:
    """The pre-trained audio model of a :func:`pretrain_run` result, with its source head, in eval mode."""
    name = result["model"]
    weights, _ = _pretrain_files(profile, _pretrain_config(profile, name, name == TRAJECTORY_MODEL))
    state = cache.load_arrays(weights)
    if state is None:
        raise ValueError(f"pre-trained weights of {name} are missing or corrupt at {weights}: call audio_zoo again")
    with torch.random.fork_rng(devices=[]):
        model = build_audio(name, len(result["classes"]))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return model.eval()


# --------------------------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------------------------
def _image_input(profile: Profile, prep: dict) -> dict[str, Any]:
    size = profile.image.input_size or prep["input_size"]
    return {"size": size, "mean": list(prep["mean"]), "std": list(prep["std"])}


def _embeddings(
    profile: Profile, track: str, split: str, models: Sequence[str], layer: str | None = None,
    executor: Executor | None = None,
) -> dict[str, Embeddings]:  # fmt: skip
    split, out = _split(split), {}
    if track == "image":
        x = _image_data(profile)[split][0]
        for name in tqdm(models, desc=f"image embeddings ({split})", leave=False, disable=None):
            model, prep = _image_model(name)
            norm = _image_input(profile, prep)
            parts = {"model": name, "dataset": profile.image.dataset, "split": split, "seed": profile.seed,
                     "preprocessing": norm, "source": code_version("image")}  # fmt: skip
            out[name] = cached_extract(model, x, profile.cache_dir, parts, layer=layer,
                                       batch_size=profile.image.batch_size, device=profile.device,
                                       transform=functools.partial(to_model_input, **norm))  # fmt: skip
        return out
    a = profile.audio
    x = _spectrograms(profile, "downstream")[0][split][0]
    results = _pretrain(profile, models, executor)
    for name, res in zip(tqdm(models, desc=f"audio embeddings ({split})", leave=False, disable=None), results,
                         strict=True):  # fmt: skip
        parts = {"model": name, "dataset": a.downstream.dataset, "split": split, "seed": profile.seed,
                 "preprocessing": {"sample_rate": a.sample_rate, "frame_ms": a.frame_ms["downstream"],
                                   "n_mels": a.n_mels}, "source": code_version("audio")}  # fmt: skip
        out[name] = cached_extract(_audio_model(profile, res), x, profile.cache_dir, parts, layer=layer,
                                   batch_size=a.pretrain.batch_size, device=profile.device)  # fmt: skip
    return out


def image_embeddings(profile: Profile, split: str = "train", layer: str | None = None) -> dict[str, Embeddings]:
    """model -> Embeddings of an image split: features N x D (``layer``, default each model's penultimate, pooled)
    and source-head probabilities N x Z (None for models without a source head). Cached."""
    return _embeddings(profile, "image", split, profile.image.zoo, layer)


def audio_embeddings(profile: Profile, split: str = "train", layer: str | None = None) -> dict[str, Embeddings]:
    """model -> Embeddings of a downstream audio split from the pre-trained audio zoo (pre-trains it if needed):
    features N x D and source-task probabilities N x Z. Cached."""
    return _embeddings(profile, "audio", split, profile.audio.zoo, layer)


# --------------------------------------------------------------------------------------------------------------
# Transfer
# --------------------------------------------------------------------------------------------------------------
def _transfer_configs(profile: Profile, track: str, strategy: str) -> list[dict[str, Any]]:
    zoo = _zoo(profile, track)
    if strategy not in ("linear", "finetune"):
        raise ValueError(f"strategy must be 'linear' or 'finetune', got {strategy!r}")
    code = code_version(f"{track}_transfer")
    drop = (f"{track}.zoo", "train.seeds")
    return [_run_config(profile, (track, "train"), drop, track=track, model=m, strategy=strategy, seed=s, code=code)
            for m in zoo for s in profile.train.seeds]  # fmt: skip


def _transfer_runs(profile: Profile, track: str, strategy: str, executor: Executor | None = None) -> list[tuple]:
    """(config, result) of every (model, seed) run; prerequisites are computed here, once, before the grid."""
    configs = _transfer_configs(profile, track, strategy)
    folder = profile.cache_dir / "transfer"
    if _missing(folder, configs):  # the workers then only read these from the cache
        zoo = _zoo(profile, track)
        if strategy == "linear":
            for split in SPLITS:
                _embeddings(profile, track, split, zoo, executor=executor)
        elif track == "audio":
            _pretrain(profile, zoo, executor)
            audio_labels(profile, "train")
        else:
            image_labels(profile, "train")
    results = grid.run(configs, _runner(run_transfer, profile), folder, executor)
    return list(zip(configs, results, strict=True))


def run_transfer(config: dict[str, Any], *, data_root: str | None = None, cache_dir: str | None = None) -> dict:
    """One transfer run, a pure function of its plain-data ``config`` (the grid fn of :func:`transfer_results`).

    ``config``: ``profile`` (base profile name), ``overrides`` (every setting the run depends on), ``track``,
    ``model``, ``strategy``, ``seed``, ``code``. ``linear`` trains a new head on the cached embeddings
    (``train.epochs``); ``finetune`` trains the whole network for ``train.finetune_epochs`` on at most
    ``train.finetune_train`` training examples per class (a stratified subset seeded by ``profile.seed``): image
    models from their pre-trained weights, audio models from their source pre-training. Returns metric,
    test_metric, val_metric, best_epoch, history (per epoch: train_loss, val_metric, wall_time_s), device,
    wall_time_s.
    """
    start = time.perf_counter()
    profile = _load(config, data_root, cache_dir)
    track, name, strategy = config["track"], config["model"], config["strategy"]
    labels = {s: _labels(profile, track, s) for s in SPLITS}
    t = profile.train
    common = {"n_classes": int(labels["train"].max()) + 1, "lr": t.lr, "batch_size": t.batch_size,
              "seed": config["seed"], "patience": t.patience, "metric": METRIC[track], "device": profile.device}
    with ThreadPoolExecutor(1) as here:  # what _transfer_runs normally cached first is otherwise made in this process
        if strategy == "linear":
            data = [(_embeddings(profile, track, s, [name], executor=here)[name].features, labels[s]) for s in SPLITS]
            res = train_linear(*data, epochs=t.epochs, **common)
        else:
            if track == "image":
                model, prep = build_image(name)
                replace_head(model, common["n_classes"], config["seed"])  # a linear head even where there was none
                data = {s: v[0] for s, v in _image_data(profile).items()}
                transform = functools.partial(to_model_input, **_image_input(profile, prep))
            else:
                model = _audio_model(profile, _pretrain(profile, [name], here)[0])
                data = {s: v[0] for s, v in _spectrograms(profile, "downstream")[0].items()}
                transform = None
            keep = _finetune_subset(labels["train"], t.finetune_train, profile.seed)
            res = transfer(model, (data["train"][keep], labels["train"][keep]), (data["val"], labels["val"]),
                           (data["test"], labels["test"]), strategy="finetune", epochs=t.finetune_epochs,
                           transform=transform, **common)  # fmt: skip
    return {"metric": METRIC[track], "test_metric": res["test_metric"], "val_metric": res["val_metric"],
            "best_epoch": res["best_epoch"], "history": res["history"], "device": res["device"],
            "wall_time_s": time.perf_counter() - start}  # fmt: skip


def _finetune_subset(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Sorted indices of at most ``per_class`` examples of each class (all where ``None``): a seeded random subset."""
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class]
                                   for c in np.unique(labels)]))  # fmt: skip


def transfer_results(
    profile: Profile, track: Track, strategy: Strategy, executor: Executor | None = None
) -> pd.DataFrame:
    """One row per (model, seed): model, seed, strategy, metric, test_metric, val_metric, best_epoch, wall_time_s.

    Metric: accuracy (image), AUROC (audio), at the epoch best on validation. Runs not cached are computed by
    :func:`nclib.grid.run` in ``executor`` (default: a local process pool; e.g. ``distributed.Client(...)
    .get_executor()`` for Dask); a grid stopped midway resumes where it stopped.
    """
    rows = []
    for config, res in _transfer_runs(profile, track, strategy, executor):
        rows.append({"model": config["model"], "seed": config["seed"], "strategy": strategy, "metric": res["metric"],
                     "test_metric": res["test_metric"], "val_metric": res["val_metric"],
                     "best_epoch": res["best_epoch"], "wall_time_s": res["wall_time_s"]})  # fmt: skip
    return pd.DataFrame(rows)


def performance(profile: Profile, track: Track, strategy: Strategy, executor: Executor | None = None) -> pd.Series:
    """model -> mean test metric over ``profile.train.seeds`` (higher is better), in zoo order."""
    table = transfer_results(profile, track, strategy, executor)
    mean = table.groupby("model")["test_metric"].mean()
    return mean.loc[list(_zoo(profile, track))].rename(f"test_{METRIC[track]}")


def training_dynamics(profile: Profile, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table (model, seed, epoch, train_loss, val_metric) of the audio ``finetune`` runs (Figure 4).

    Default ``models``: the model the NC score ranks first and the best-performing one after fine-tuning (if they
    coincide, the runner-up by performance as well).
    """
    runs = _transfer_runs(profile, "audio", "finetune")
    if models is None:
        nc = zoo_scores(profile, "audio", names=["nc"])["nc"]
        by_nc = nc.idxmax() if REGISTRY["nc"].higher_is_better else nc.idxmin()
        ranked = list(performance(profile, "audio", "finetune").sort_values(ascending=False).index)
        models = [by_nc, ranked[0]] if by_nc != ranked[0] else ranked[:2]
    unknown = sorted(set(models) - set(profile.audio.zoo))
    if unknown:
        raise ValueError(f"models {unknown} are not in the audio zoo {profile.audio.zoo}")
    rows = []
    for config, res in runs:
        if config["model"] in models:
            h = res["history"]
            rows += [{"model": config["model"], "seed": config["seed"], "epoch": e, "train_loss": loss,
                      "val_metric": val} for e, loss, val in zip(h["epoch"], h["train_loss"], h["val_metric"],
                                                                 strict=True)]  # fmt: skip
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------------------
# Scores and neural collapse
# --------------------------------------------------------------------------------------------------------------
def zoo_scores(
    profile: Profile, track: Track, split: str = "train", names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Index model, one column per registry score (or per name in ``names``), on the split's embeddings.

    Scores that need source probabilities (LEEP, NCE) are NaN for models without a source head; those that need
    validation data and parameter counts (HEV) get the val split and the zoo's ``params`` when ``split`` is
    "train", and are NaN otherwise. Each score's values are cached as JSON, keyed by the embeddings, the labels
    and the scores' code.
    """
    zoo = _zoo(profile, track)
    names = list(names or REGISTRY)
    unknown = sorted(set(names) - set(REGISTRY))
    if unknown:
        raise ValueError(f"unknown scores {unknown}; registered: {sorted(REGISTRY)}")
    emb = _embeddings(profile, track, split, zoo)
    labels = _labels(profile, track, split)
    inputs = cache.digest([labels, *(a for m in zoo for a in (emb[m].features, emb[m].probs))])
    held_out, n_params, held_inputs = None, None, ""
    if split == "train" and any(REGISTRY[n].needs == "train_val" for n in names):  # HEV: validation data and sizes
        val = _embeddings(profile, track, "val", zoo)
        held_out = ({m: val[m].features for m in zoo}, _labels(profile, track, "val"))
        zoo_table = image_zoo(profile) if track == "image" else audio_zoo(profile)
        n_params = {m: int(p) for m, p in zip(zoo_table["model"], zoo_table["params"], strict=True)}
        held_inputs = cache.digest([held_out[1], *held_out[0].values(), np.array([n_params[m] for m in zoo])])
    table = pd.DataFrame(index=pd.Index(zoo, name="model"), columns=names, dtype=float)
    code = code_version(f"{track}_scores")
    for name in tqdm(names, desc=f"{track} scores", leave=False, disable=None):
        held = held_inputs if REGISTRY[name].needs == "train_val" else ""
        key = cache.key(score=name, models=zoo, inputs=inputs + held, code=code)
        path = profile.cache_dir / "scores" / f"{key}.json"
        values = cache.load_json(path)
        if not isinstance(values, dict):
            features = {m: emb[m].features for m in zoo}
            probs = {m: emb[m].probs for m in zoo}
            values = score_zoo(features, labels, probs, names=[name], held_out=held_out, n_params=n_params)[name]
            cache.save_json(path, values)
        for model, value in values.items():
            table.loc[model, name] = value
    return table


def collapse_trajectory(profile: Profile, model: str = TRAJECTORY_MODEL) -> dict[str, Any]:
    """Figure 1: neural collapse of ``model`` trained from scratch on its source task (shares audio_zoo's run).

    Returns ``first`` and ``last``: (features N x D, labels N) of the training split after the first and the
    last epoch; ``diagnostics``: DataFrame per epoch with nc1, nc2_equinorm, nc2_equiangularity, nc2_angle_gap,
    nc3, nc4 (:func:`nclib.collapse.diagnostics`), train_loss, val_accuracy; ``classes``: source class names.
    """
    res = _pretrain(profile, [model], snapshots=[model])[0]
    _, path = _pretrain_files(profile, _pretrain_config(profile, model, True))
    arrays = cache.load_arrays(path)
    if arrays is None:
        raise ValueError(f"the trajectory of {model} at {path} is missing or corrupt: call collapse_trajectory again")
    return {"first": (arrays["first_features"], arrays["first_labels"]),
            "last": (arrays["last_features"], arrays["last_labels"]),
            "diagnostics": pd.DataFrame(res["diagnostics"]), "classes": tuple(res["classes"])}  # fmt: skip


def build(profile: Profile, executor: Executor | None = None) -> None:
    """Compute, or find in the cache, every result the book's figures read, in dependency order.

    ``python -m nclib.book`` calls this once before it executes the notebooks side by side, so that they only
    read the cache instead of computing the same runs twice. Temp files that writes killed midway left in the
    cache are deleted first (:func:`nclib.cache.remove_stale_temps`).
    """
    cache.remove_stale_temps(profile.cache_dir)
    audio_zoo(profile, executor)
    for split in SPLITS:
        image_embeddings(profile, split)
        audio_embeddings(profile, split)
    for track in ("image", "audio"):
        for strategy in ("linear", "finetune"):
            transfer_results(profile, track, strategy, executor)
        zoo_scores(profile, track)
    collapse_trajectory(profile)
    training_dynamics(profile)


def paper_reported() -> pd.DataFrame:
    """The paper's reported |Pearson| per figure, downstream task, strategy and score (``nclib/published``)."""
    with importlib.resources.files("nclib").joinpath("published/paper_reported.csv").open() as f:
        return pd.read_csv(f)
