"""The pre-training stage: the audio zoo trained from scratch on its source tasks (Table 1).

Each network's run is one :mod:`nclib.grid` run (``pretrain/<key>.json``) whose checkpoint -- the state dict best on
the source validation split -- is a checksummed ``.npz`` beside it, as is the state after epoch k of every
epoch k of ``audio.pretrain.checkpoints``: the zoo's checkpoint ``name@k`` (:mod:`nclib.models.names`: the same
run, stopped early). The run config names everything the weights depend on, so it is the weights' identity in
every later key. (Figure 1's trajectory is a run of its own: :mod:`nclib.stages.collapse`.)
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
from nclib.config import Profile
from nclib.models.audio import ZOO_INFO as AUDIO_INFO
from nclib.models.audio import build_audio
from nclib.models.names import checkpoint
from nclib.stages import runs
from nclib.stages.data import spectrograms
from nclib.train import replace_head, transfer

SOURCE_TASK = {"acoustic scenes": "scenes", "music genres": "music", "speech commands": "speech"}  # -> audio.sources


def audio_zoo(profile: Profile, executor: Executor | None = None) -> pd.DataFrame:
    """Table 1: model, architecture, params, paper_params (Table 1 of the paper), source_task, source_dataset,
    source_accuracy, epochs.

    Pre-trains (cached) every audio candidate from scratch on its source task (``profile.audio.sources``,
    ``profile.audio.pretrain``): Adam, cross-entropy, the checkpoint best on the source validation split, or for
    ``name@k`` the state after epoch k; ``source_accuracy`` is the test accuracy of that state. Runs in
    ``executor`` (default: local processes).
    """
    rows = []
    for name, res in zip(profile.audio.zoo, pretrain(profile, profile.audio.zoo, executor), strict=True):
        info = AUDIO_INFO[base_model(profile, name)]
        rows.append({"model": name, "architecture": info["architecture"], "params": res["params"],
                     "paper_params": info["table1"], "source_task": info["source_task"],
                     "source_dataset": res["source_dataset"], "source_accuracy": res["source_accuracy"],
                     "epochs": res["epochs"]})  # fmt: skip
    return pd.DataFrame(rows)


def split_name(profile: Profile, name: str) -> tuple[str, int | None]:
    """(network, k) of audio zoo name ``network@k`` (the state after epoch k of its pre-training run), or
    (name, None) for the run's best checkpoint (:func:`nclib.models.names.checkpoint`)."""
    return checkpoint(name, dict.fromkeys(AUDIO_INFO, profile.audio.pretrain.epochs))


def base_model(profile: Profile, name: str) -> str:
    """The network of audio zoo name ``name`` (``name`` without its ``@k``)."""
    return split_name(profile, name)[0]


def source(name: str) -> str:
    """The source task (a key of ``profile.audio.sources``) audio network ``name`` is pre-trained on."""
    if name not in AUDIO_INFO:
        raise ValueError(f"unknown audio model {name!r}; choose one of {sorted(AUDIO_INFO)}")
    return SOURCE_TASK[AUDIO_INFO[name]["source_task"]]


def pretrain_config(profile: Profile, name: str) -> dict[str, Any]:
    """The run config of pre-training network ``name`` (its ``audio.pretrain.checkpoints`` included)."""
    drop = ("audio.zoo", "audio.downstream", "audio.frame_ms.downstream")
    return runs.run_config(profile, ("audio",), drop, model=name, code=cache.code_digest(__name__))


def weights_file(profile: Profile, config: dict) -> Path:
    """The best checkpoint's state of a pre-training run, next to its grid JSON."""
    return profile.cache_dir / "pretrain" / f"{grid.key(config)}.weights.npz"


def checkpoint_file(profile: Profile, config: dict, epoch: int) -> Path:
    """The state after ``epoch`` of a pre-training run, next to its grid JSON."""
    return profile.cache_dir / "pretrain" / f"{grid.key(config)}.epoch{epoch}.npz"


def progress_file(profile: Profile, config: dict) -> Path:
    """Where a pre-training run keeps its progress while it runs, to resume from after a kill
    (:func:`nclib.train.transfer`'s ``resume_file``): next to its grid JSON; gone once it finishes."""
    return profile.cache_dir / "pretrain" / f"{grid.key(config)}.ckpt.pt"


def weights_identity(profile: Profile, name: str) -> dict[str, Any]:
    """What audio zoo name ``name``'s weights are: the key of the pre-training run that made them, and the name."""
    return {"model": name, "pretrain": grid.key(pretrain_config(profile, base_model(profile, name)))}


def pretrain(profile: Profile, names: Sequence[str], executor: Executor | None = None) -> list[dict[str, Any]]:
    """Results of :func:`pretrain_run` for the audio zoo names ``names``, running those not cached: one run per
    network, whose result stands for ``name@k`` with ``model``, ``source_accuracy`` and ``epochs`` of epoch k."""
    split = [split_name(profile, n) for n in names]
    networks = list(dict.fromkeys(b for b, _ in split))
    configs = [pretrain_config(profile, n) for n in networks]
    folder = profile.cache_dir / "pretrain"
    for c in configs:  # a result whose arrays are missing or corrupt is recomputed
        kept = profile.audio.pretrain.checkpoints
        needed = [weights_file(profile, c), *(checkpoint_file(profile, c, k) for k in kept)]
        broken = [p for p in needed if cache.load_arrays(p) is None]
        if broken:
            (folder / f"{grid.key(c)}.json").unlink(missing_ok=True)
        for path in broken:  # only these: a finished file stays (the rerun finds it equal and keeps it)
            path.unlink(missing_ok=True)
    if runs.missing(folder, configs):
        for task in dict.fromkeys(source(n) for n in networks):
            spectrograms(profile, task)  # data problems surface here; synthetic audio is generated once, here
    results = dict(zip(networks, grid.run(configs, runs.runner(pretrain_run, profile), folder, executor), strict=True))
    out = []
    for name, (network, k) in zip(names, split, strict=True):
        res = results[network]
        if k is not None:
            res = res | {"model": name, "epochs": k, "source_accuracy": res["checkpoints"][str(k)]["test_metric"]}
        out.append(res)
    return out


def pretrain_run(config: dict[str, Any], *, data_root: str | None = None, cache_dir: str | None = None) -> dict:
    """Pre-train one audio model on its source task; a pure function of its plain-data ``config`` (grid fn).

    ``config``: ``profile``, ``overrides`` (see :func:`nclib.stages.runs.run_config`), ``model``, ``code``. Writes
    the best checkpoint's state dict, and the state after each epoch of ``audio.pretrain.checkpoints``, next to the
    run's JSON; returns the JSON-ready summary. A run killed midway resumes after its last finished epoch
    (:func:`progress_file`).
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
    res = transfer(model, data["train"], data["val"], data["test"], strategy="finetune", n_classes=len(classes),
                   epochs=pre.epochs, lr=pre.lr, batch_size=pre.batch_size, seed=profile.seed, metric="accuracy",
                   device=profile.device, save_states_at=pre.checkpoints,
                   resume_file=progress_file(profile, config))  # fmt: skip
    _save_new(weights_file(profile, config), **{k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
    for epoch, kept in res.get("checkpoints", {}).items():
        _save_new(checkpoint_file(profile, config, epoch), **{k: v.numpy() for k, v in kept["state"].items()})
    out = {"model": name, "source_task": task, "source_dataset": profile.audio.sources[task], "classes": classes,
           "params": sum(p.numel() for p in model.parameters()), "source_accuracy": res["test_metric"],
           "val_accuracy": res["val_metric"], "best_epoch": res["best_epoch"], "epochs": len(res["history"]["epoch"]),
           "history": res["history"],
           "checkpoints": {str(e): {"test_metric": c["test_metric"]} for e, c in res.get("checkpoints", {}).items()},
           }  # fmt: skip
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
    """The pre-trained audio model of a :func:`pretrain` result (``result["model"]``, a zoo name), with its source
    head, in eval mode."""
    network, k = split_name(profile, result["model"])
    config = pretrain_config(profile, network)
    path = weights_file(profile, config) if k is None else checkpoint_file(profile, config, k)
    state = cache.load_arrays(path)
    if state is None:
        raise ValueError(f"pre-trained weights of {result['model']} are missing or corrupt at {path}: call audio_zoo "
                         "again")
    with torch.random.fork_rng(devices=[]):
        model = build_audio(network, len(result["classes"]))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return model.eval()
