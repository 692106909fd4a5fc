"""The collapse stage: Figure 1's trajectory run, a network trained from scratch on a source task into the terminal
phase of training, where its penultimate embeddings collapse to their class means (Papyan, Han & Donoho, PNAS 2020).

Unlike the zoo's pre-training (:mod:`nclib.stages.pretrain`: a few epochs, the checkpoint best on validation), this
run trains ``profile.collapse.model`` for ``collapse.epochs`` epochs on ``collapse.per_class`` training clips per
class of ``collapse.task`` (Adam, cross-entropy, no early stopping) and records NC1-NC4
(:func:`nclib.collapse.diagnostics`), the training loss and the training and validation accuracy after every epoch.
Neural collapse is a property of the training set: every diagnostic is computed on the clips trained on.

It is cached under ``cache_dir/collapse/``: one JSON (settings, classes, the table per epoch) and one ``.npz``
(the first and the last epochs' embeddings), keyed by :func:`collapse_config`; a warm call reads them and runs no
model.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from nclib import cache
from nclib.collapse import diagnostics
from nclib.data.splits import stratified_split
from nclib.models.audio import build_audio
from nclib.stages.data import spectrograms
from nclib.train import replace_head, transfer

if TYPE_CHECKING:  # not imported: the key holds every setting the run reads, so config.py stays out of its digest
    from nclib.config import Profile


def collapse_config(profile: Profile) -> dict[str, Any]:
    """Every setting the trajectory run depends on: the ``collapse`` section, the source data's settings, the
    seed (model, head, subset and shuffling), the device, and this module's code digest."""
    c, a = profile.collapse, profile.audio
    return {"collapse": dataclasses.asdict(c), "source": a.sources[c.task], "sample_rate": a.sample_rate,
            "n_mels": a.n_mels, "frame_ms": a.frame_ms[c.task], "synth_per_class": a.synth_per_class,
            "seed": profile.seed, "device": profile.device, "code": cache.code_digest(__name__)}  # fmt: skip


def collapse_files(profile: Profile, config: dict[str, Any]) -> tuple[Path, Path]:
    """(result JSON, embeddings ``.npz``) of the trajectory run with ``config``."""
    stem = profile.cache_dir / "collapse" / cache.key(**config)
    return stem.with_suffix(".json"), stem.with_suffix(".npz")


def progress_file(profile: Profile, config: dict[str, Any]) -> Path:
    """Where the trajectory run with ``config`` keeps its progress while it runs, to resume from after a kill
    (:func:`nclib.train.transfer`'s ``resume_file``): beside its result files; gone once it finishes."""
    return profile.cache_dir / "collapse" / f"{cache.key(**config)}.ckpt.pt"


def training_subset(labels: np.ndarray, per_class: int | None, seed: int, classes: tuple[str, ...]) -> np.ndarray:
    """Sorted indices of ``per_class`` training clips of every class, a seeded stratified subset (all if None)."""
    if per_class is None:
        return np.arange(len(labels))
    counts = np.bincount(labels, minlength=len(classes))
    if per_class > counts.min():
        raise ValueError(f"collapse.per_class is {per_class}, but class {classes[counts.argmin()]!r} has only "
                         f"{counts.min()} training clips: lower collapse.per_class (null takes every clip)")
    return stratified_split(labels, {"train": per_class}, seed)["train"]


def collapse_run(profile: Profile) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Train the trajectory run (uncached): its JSON-ready summary and the first and last epochs' arrays.

    Summary: ``model``, ``task``, ``source``, ``classes``, ``n_train``, ``diagnostics`` (one row per epoch: epoch,
    nc1, nc2_equinorm, nc2_equiangularity, nc2_angle_gap, nc3, nc4, train_loss, train_accuracy, val_accuracy),
    ``columns`` (their order: JSON keys are saved sorted), ``wall_time_s``. Training accuracy is the network's
    accuracy on the training clips in eval mode after the epoch, from the same forward pass as the embeddings (the
    loss is the mean over the epoch's batches, in train mode). Killed midway, it resumes after its last finished
    epoch (:func:`progress_file`).
    """
    start = time.perf_counter()
    c = profile.collapse
    data, classes = spectrograms(profile, c.task)
    x, y = data["train"]
    keep = training_subset(y, c.per_class, profile.seed, classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(profile.seed)
        model = build_audio(c.model, len(classes))
    replace_head(model, len(classes), profile.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same float reductions on every machine: 30 epochs amplify any difference
    try:
        res = transfer(model, (x[keep], y[keep]), data["val"], strategy="finetune", n_classes=len(classes),
                       epochs=c.epochs, lr=c.lr, batch_size=c.batch_size, seed=profile.seed, metric="accuracy",
                       device=profile.device, save_embeddings_at=range(1, c.epochs + 1),
                       resume_file=progress_file(profile, collapse_config(profile)))  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    emb, history = res["embeddings"], res["history"]
    rows = []
    for e in tqdm(sorted(emb), desc="NC diagnostics", leave=False, disable=None):
        s = emb[e]
        rows.append({"epoch": e, **diagnostics(s["features"], s["labels"], s["weights"], s["predictions"]),
                     "train_loss": history["train_loss"][e - 1],
                     "train_accuracy": float(np.mean(s["predictions"] == s["labels"])),
                     "val_accuracy": history["val_metric"][e - 1]})  # fmt: skip
    first, last = emb[min(emb)], emb[max(emb)]
    arrays = {"first_features": first["features"], "first_labels": first["labels"],
              "last_features": last["features"], "last_labels": last["labels"],
              "last_predictions": last["predictions"]}  # fmt: skip
    summary = {"model": c.model, "task": c.task, "source": profile.audio.sources[c.task], "classes": list(classes),
               "n_train": len(keep), "diagnostics": rows, "columns": list(rows[0]),
               "wall_time_s": time.perf_counter() - start}  # fmt: skip
    return summary, arrays


def collapse_trajectory(profile: Profile) -> dict[str, Any]:
    """Figure 1: neural collapse of ``profile.collapse.model`` trained from scratch on ``profile.collapse.task``.

    Returns ``first`` and ``last``: (features N x D, labels N) of the training clips after the first and the last
    epoch; ``last_predictions``: the network's N predictions after the last epoch; ``diagnostics``: DataFrame per
    epoch (see :func:`collapse_run`); ``classes``: the source class names; ``model``, ``source`` (the dataset),
    ``n_train``, ``settings`` (the ``collapse`` section as a dict) and ``wall_time_s`` of the run. Cached: a
    missing or corrupt JSON or ``.npz`` runs it again.
    """
    config = collapse_config(profile)
    json_path, npz_path = collapse_files(profile, config)
    summary, arrays = cache.load_json(json_path), cache.load_arrays(npz_path)
    if summary is None or arrays is None:
        summary, arrays = collapse_run(profile)
        cache.save_arrays(npz_path, **arrays)
        cache.save_json(json_path, summary)  # last: a JSON beside its arrays marks a finished run
    return {"first": (arrays["first_features"], arrays["first_labels"]),
            "last": (arrays["last_features"], arrays["last_labels"]), "last_predictions": arrays["last_predictions"],
            "diagnostics": pd.DataFrame(summary["diagnostics"])[summary["columns"]],
            "classes": tuple(summary["classes"]), "model": summary["model"], "source": summary["source"],
            "n_train": summary["n_train"],
            "settings": config["collapse"], "wall_time_s": summary["wall_time_s"]}  # fmt: skip
