"""The pipeline: from a profile to every table and figure of the book, computed once and cached on disk.

    profile = load_profile("mini")                       # or "paper"; one code path, only the configuration differs
    image_zoo(profile)                                   # the image candidates (Figure 2)
    audio_zoo(profile)                                   # Table 1: pre-trains the audio networks on their sources
    zoo_scores(profile, "audio")                         # every registered score of every model (Figure 3)
    performance(profile, "audio", "finetune")            # mean test AUROC over seeds after transfer
    collapse_trajectory(profile)                         # Figure 1: NC1-NC4 of a CRNN trained into collapse
    training_dynamics(profile)                           # Figure 4: fine-tuning histories
    layer_sweep(profile, "audio")                        # the pitfalls sweeps (nclib.stages.sweeps)
    build(profile)                                       # all of the above, once, before the notebooks run

The work is done by the stages of :mod:`nclib.stages`, one module each (data, pretrain, embeddings, transfer,
scores, collapse, studies, sweeps); this module runs them in order and gathers the functions the notebooks read.
Everything is cached under ``profile.cache_dir`` (:mod:`nclib.cache`): embeddings (``embeddings/``), pre-trained
audio models as checksummed ``.npz`` state dicts (``pretrain/``), the image networks nclib trains (``weights/``),
transfer runs as JSON through :func:`nclib.grid.run` (``transfer/``), scores as JSON (``scores/``), Figure 1's run
(``collapse/``), the pitfalls sweeps as JSON (``sweeps/``). A second call with nothing changed builds and runs no
model. Every key holds :func:`nclib.cache.code_digest` of the stage that made it, so editing a module re-runs the
stages that import it. Randomness comes from the profile: data splits and source pre-training from
``profile.seed``, the transfer runs from ``profile.train.seeds``.

Grids (source pre-training and transfer) run in any ``concurrent.futures.Executor`` -- by default a local
process pool -- through the module-level functions :func:`pretrain_run` and :func:`run_transfer`.
"""

from __future__ import annotations

import contextlib
import importlib.resources
from concurrent.futures import Executor

import pandas as pd

from nclib import cache, grid
from nclib.config import Profile
from nclib.stages.collapse import collapse_trajectory
from nclib.stages.data import METRIC, SPLITS, Strategy, Track, audio_labels, image_labels
from nclib.stages.embeddings import audio_embeddings, image_embeddings, image_zoo
from nclib.stages.pretrain import audio_zoo, pretrain_run
from nclib.stages.scores import zoo_scores
from nclib.stages.studies import figure4_models, training_dynamics
from nclib.stages.sweeps import hev_table, layer_sweep, split_scores, subset_scores, sweeps
from nclib.stages.transfer import performance, run_transfer, transfer_results

__all__ = ["METRIC", "SPLITS", "Strategy", "Track", "audio_embeddings", "audio_labels", "audio_zoo", "build",
           "collapse_trajectory", "figure4_models", "hev_table", "image_embeddings", "image_labels", "image_zoo",
           "layer_sweep", "paper_reported", "performance", "pretrain_run", "run_transfer", "split_scores",
           "subset_scores", "training_dynamics", "transfer_results", "zoo_scores"]  # fmt: skip


def build(profile: Profile, executor: Executor | None = None) -> None:
    """Compute, or find in the cache, every result the book's figures read, in dependency order.

    ``python -m nclib.book`` calls this once before it executes the notebooks side by side, so that they only
    read the cache instead of computing the same runs twice. Temp files that writes killed midway left in the
    cache are deleted first (:func:`nclib.cache.remove_stale_temps`). Every grid runs in ``executor``, by default
    one :func:`nclib.grid.default_pool` for the whole build, so that its workers start (import torch) once.
    """
    cache.remove_stale_temps(profile.cache_dir)
    with grid.default_pool() if executor is None else contextlib.nullcontext(executor) as pool:
        audio_zoo(profile, pool)
        for split in SPLITS:
            image_embeddings(profile, split)
            audio_embeddings(profile, split)
        for track in ("image", "audio"):
            for strategy in ("linear", "finetune"):
                transfer_results(profile, track, strategy, pool)
            zoo_scores(profile, track)
        collapse_trajectory(profile)
        training_dynamics(profile, executor=pool)
        sweeps(profile)


def paper_reported() -> pd.DataFrame:
    """The paper's reported |Pearson| per figure, downstream task, strategy and score (``nclib/published``)."""
    with importlib.resources.files("nclib").joinpath("published/paper_reported.csv").open() as f:
        return pd.read_csv(f)
