"""The transfer stage: the ground truth. Every candidate transferred to the downstream task, once per seed.

``linear`` trains a new head on the cached embeddings; ``finetune`` trains the whole network. Each (model, seed,
strategy) is one :mod:`nclib.grid` run (``transfer/<key>.json``), whose config carries every setting it depends on
and this module's code digest.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nclib import cache, grid
from nclib.config import Profile
from nclib.data.images import to_model_input
from nclib.models import build_image
from nclib.stages import runs
from nclib.stages.data import METRIC, SPLITS, Strategy, Track, image_data, labels, spectrograms, zoo
from nclib.stages.embeddings import embeddings, image_input, image_model
from nclib.stages.pretrain import audio_model, pretrain
from nclib.train import replace_head, train_linear, transfer


def transfer_configs(
    profile: Profile, track: str, strategy: str, models: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The run config of every (model, seed) of a track's ``strategy``, for ``models`` (default: the whole zoo)."""
    zoo_models = zoo(profile, track)
    if strategy not in ("linear", "finetune"):
        raise ValueError(f"strategy must be 'linear' or 'finetune', got {strategy!r}")
    models = list(zoo_models if models is None else models)
    unknown = sorted(set(models) - set(zoo_models))
    if unknown:
        raise ValueError(f"models {unknown} are not in the {track} zoo {zoo_models}")
    code = cache.code_digest(__name__)
    drop = (f"{track}.zoo", "train.seeds")
    return [runs.run_config(profile, (track, "train"), drop, track=track, model=m, strategy=strategy, seed=s,
                            code=code) for m in models for s in profile.train.seeds]  # fmt: skip


def transfer_runs(
    profile: Profile, track: str, strategy: str, executor: Executor | None = None, models: Sequence[str] | None = None
) -> list[tuple]:
    """(config, result) of every (model, seed) run of ``models`` (default: the zoo); prerequisites are computed
    here, once, before the grid."""
    configs = transfer_configs(profile, track, strategy, models)
    folder = profile.cache_dir / "transfer"
    if runs.missing(folder, configs):  # the workers then only read these from the cache
        needed = list(dict.fromkeys(c["model"] for c in configs))
        if strategy == "linear":
            for split in SPLITS:
                embeddings(profile, track, split, needed, executor=executor)
        elif track == "audio":
            pretrain(profile, needed, executor)
        else:  # the networks nclib pre-trains are trained here, once, not in each worker
            for m in needed:
                image_model(m, profile.cache_dir, profile.image.pretrained)
        labels(profile, track, "train")
    results = grid.run(configs, runs.runner(run_transfer, profile), folder, executor)
    return list(zip(configs, results, strict=True))


def run_transfer(config: dict[str, Any], *, data_root: str | None = None, cache_dir: str | None = None) -> dict:
    """One transfer run, a pure function of its plain-data ``config`` (the grid fn of :func:`transfer_results`).

    ``config``: ``profile`` (base profile name), ``overrides`` (every setting the run depends on), ``track``,
    ``model``, ``strategy``, ``seed``, ``code``. ``linear`` trains a new head on the cached embeddings
    (``train.epochs``); ``finetune`` trains the whole network for ``train.finetune_epochs`` on at most
    ``train.finetune_train`` training examples per class (a stratified subset seeded by ``profile.seed``): image
    models from their pre-trained weights, audio models from their source pre-training; a run killed midway
    resumes after its last finished epoch (:func:`progress_file`). Returns metric,
    test_metric, val_metric, best_epoch, history (per epoch: train_loss, val_metric, wall_time_s), device,
    wall_time_s.
    """
    start = time.perf_counter()
    profile = runs.load(config, data_root, cache_dir)
    track, name, strategy = config["track"], config["model"], config["strategy"]
    y = {s: labels(profile, track, s) for s in SPLITS}
    t = profile.train
    common = {"n_classes": int(y["train"].max()) + 1, "lr": t.lr, "batch_size": t.batch_size,
              "seed": config["seed"], "patience": t.patience, "metric": METRIC[track], "device": profile.device}
    with ThreadPoolExecutor(1) as here:  # what transfer_runs normally cached first is otherwise made in this process
        if strategy == "linear":
            data = [(embeddings(profile, track, s, [name], executor=here)[name].features, y[s]) for s in SPLITS]
            res = train_linear(*data, epochs=t.epochs, **common)
        else:
            x: dict[str, Any]
            if track == "image":
                model, prep = build_image(name, pretrained=profile.image.pretrained, cache_dir=profile.cache_dir)
                x = {s: v[0] for s, v in image_data(profile).items()}
                transform = functools.partial(to_model_input, **image_input(profile, prep))
            else:
                model = audio_model(profile, pretrain(profile, [name], here)[0])
                x = {s: v[0] for s, v in spectrograms(profile, "downstream")[0].items()}
                transform = None
            replace_head(model, common["n_classes"], config["seed"])  # a new linear head, also where there was none
            keep = finetune_subset(y["train"], t.finetune_train, profile.seed)
            res = transfer(model, (x["train"][keep], y["train"][keep]), (x["val"], y["val"]), (x["test"], y["test"]),
                           strategy="finetune", epochs=t.finetune_epochs, transform=transform,
                           resume_file=progress_file(profile, config), **common)  # fmt: skip
    return {"metric": METRIC[track], "test_metric": res["test_metric"], "val_metric": res["val_metric"],
            "best_epoch": res["best_epoch"], "history": res["history"], "device": res["device"],
            "wall_time_s": time.perf_counter() - start}  # fmt: skip


def progress_file(profile: Profile, config: dict[str, Any]) -> Path:
    """Where the ``finetune`` run ``config`` keeps its progress while it runs, to resume from after a kill
    (:func:`nclib.train.transfer`'s ``resume_file``): beside its result, named by its key; gone once it finishes."""
    return profile.cache_dir / "transfer" / f"{grid.key(config)}.ckpt.pt"


def finetune_subset(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
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
    for config, res in transfer_runs(profile, track, strategy, executor):
        rows.append({"model": config["model"], "seed": config["seed"], "strategy": strategy, "metric": res["metric"],
                     "test_metric": res["test_metric"], "val_metric": res["val_metric"],
                     "best_epoch": res["best_epoch"], "wall_time_s": res["wall_time_s"]})  # fmt: skip
    return pd.DataFrame(rows)


def performance(profile: Profile, track: Track, strategy: Strategy, executor: Executor | None = None) -> pd.Series:
    """model -> mean test metric over ``profile.train.seeds`` (higher is better), in zoo order."""
    table = transfer_results(profile, track, strategy, executor)
    mean = table.groupby("model")["test_metric"].mean()
    return mean.loc[list(zoo(profile, track))].rename(f"test_{METRIC[track]}")
