"""The pre-training stage: the audio zoo trained from scratch on its source tasks (Table 1).

Each model's run is one :mod:`nclib.grid` run (``pretrain/<key>.json``) whose checkpoint -- the state dict best on
the source validation split -- is a checksummed ``.npz`` beside it; the run of Figure 1's network also keeps its
first and last epochs' embeddings. The run config names everything the weights depend on, so it is the weights'
identity in every later key.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from nclib import cache, grid
from nclib.collapse import diagnostics
from nclib.config import Profile
from nclib.models.audio import ZOO_INFO as AUDIO_INFO
from nclib.models.audio import build_audio
from nclib.stages import runs
from nclib.stages.data import spectrograms
from nclib.train import replace_head, transfer

TRAJECTORY_MODEL = "crnn_music"  # Figure 1: a CRNN trained on music genres
SOURCE_TASK = {"acoustic scenes": "scenes", "music genres": "music", "speech commands": "speech"}  # -> audio.sources


def audio_zoo(profile: Profile, executor: Executor | None = None) -> pd.DataFrame:
    """Table 1: model, architecture, params, source_task, source_dataset, source_accuracy, epochs.

    Pre-trains (cached) every audio candidate from scratch on its source task (``profile.audio.sources``,
    ``profile.audio.pretrain``): Adam, cross-entropy, the checkpoint best on the source validation split;
    ``source_accuracy`` is the test accuracy at that checkpoint. Runs in ``executor`` (default: local processes).
    """
    rows = []
    for name, res in zip(profile.audio.zoo, pretrain(profile, profile.audio.zoo, executor), strict=True):
        rows.append({"model": name, "architecture": AUDIO_INFO[name]["architecture"], "params": res["params"],
                     "source_task": AUDIO_INFO[name]["source_task"], "source_dataset": res["source_dataset"],
                     "source_accuracy": res["source_accuracy"], "epochs": res["epochs"]})  # fmt: skip
    return pd.DataFrame(rows)


def source(name: str) -> str:
    """The source task (a key of ``profile.audio.sources``) audio model ``name`` is pre-trained on."""
    if name not in AUDIO_INFO:
        raise ValueError(f"unknown audio model {name!r}; choose one of {sorted(AUDIO_INFO)}")
    return SOURCE_TASK[AUDIO_INFO[name]["source_task"]]


def pretrain_config(profile: Profile, name: str, snapshots: bool) -> dict[str, Any]:
    """The run config of pre-training ``name`` (with NC snapshots every epoch or not)."""
    drop = ("audio.zoo", "audio.downstream", "audio.frame_ms.downstream")
    return runs.run_config(profile, ("audio",), drop, model=name, snapshots=snapshots, code=cache.code_digest(__name__))


def pretrain_files(profile: Profile, config: dict) -> tuple[Path, Path]:
    """(weights, trajectory) files of a pre-training run, next to its grid JSON."""
    stem = profile.cache_dir / "pretrain" / grid.key(config)
    return stem.with_suffix(".weights.npz"), stem.with_suffix(".trajectory.npz")


def pretrain(
    profile: Profile, names: Sequence[str], executor: Executor | None = None, snapshots: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Results of :func:`pretrain_run` for the audio models ``names``, running those not cached.

    The run of ``TRAJECTORY_MODEL`` (and of the models in ``snapshots``) records NC diagnostics at every epoch.
    """
    configs = [pretrain_config(profile, n, n == TRAJECTORY_MODEL or n in snapshots) for n in names]
    folder = profile.cache_dir / "pretrain"
    for c in configs:  # a result whose arrays are missing or corrupt is recomputed
        weights, trajectory = pretrain_files(profile, c)
        broken = [p for p, needed in ((weights, True), (trajectory, c["snapshots"]))
                  if needed and cache.load_arrays(p) is None]  # fmt: skip
        if broken:
            (folder / f"{grid.key(c)}.json").unlink(missing_ok=True)
        for path in broken:  # only these: a finished file stays (the rerun finds it equal and keeps it)
            path.unlink(missing_ok=True)
    if runs.missing(folder, configs):
        for task in dict.fromkeys(source(n) for n in names):
            spectrograms(profile, task)  # data problems surface here; synthetic audio is generated once, here
    return grid.run(configs, runs.runner(pretrain_run, profile), folder, executor)


def pretrain_run(config: dict[str, Any], *, data_root: str | None = None, cache_dir: str | None = None) -> dict:
    """Pre-train one audio model on its source task; a pure function of its plain-data ``config`` (grid fn).

    ``config``: ``profile``, ``overrides`` (see :func:`nclib.stages.runs.run_config`), ``model``, ``snapshots``
    (record NC1-NC4 on the training split after every epoch), ``code``. Writes the best checkpoint's state dict
    (and, with snapshots, the first and last epochs' embeddings) next to the run's JSON; returns the JSON-ready
    summary.
    """
    start = time.perf_counter()
    profile = runs.load(config, data_root, cache_dir)
    name, pre = config["model"], profile.audio.pretrain
    task = source(name)
    data, classes = spectrograms(profile, task)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(profile.seed)
        model = build_audio(name, len(classes))
    replace_head(model, len(classes), profile.seed)
    snapshot_epochs = range(1, pre.epochs + 1) if config["snapshots"] else ()
    res = transfer(model, data["train"], data["val"], data["test"], strategy="finetune", n_classes=len(classes),
                   epochs=pre.epochs, lr=pre.lr, batch_size=pre.batch_size, seed=profile.seed, metric="accuracy",
                   device=profile.device, save_embeddings_at=snapshot_epochs)  # fmt: skip
    weights, trajectory = pretrain_files(profile, config)
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


def audio_model(profile: Profile, result: dict[str, Any]) -> nn.Module:
    """The pre-trained audio model of a :func:`pretrain_run` result, with its source head, in eval mode."""
    name = result["model"]
    weights, _ = pretrain_files(profile, pretrain_config(profile, name, name == TRAJECTORY_MODEL))
    state = cache.load_arrays(weights)
    if state is None:
        raise ValueError(f"pre-trained weights of {name} are missing or corrupt at {weights}: call audio_zoo again")
    with torch.random.fork_rng(devices=[]):
        model = build_audio(name, len(result["classes"]))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return model.eval()
