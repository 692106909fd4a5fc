"""Studies built on the other stages: Figure 4's training dynamics."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import Executor

import pandas as pd

from nclib.config import Profile
from nclib.scores import REGISTRY
from nclib.stages.scores import zoo_scores
from nclib.stages.transfer import transfer_runs


def figure4_models(profile: Profile, score: str = "nc") -> list[str]:
    """The two audio candidates ``score`` ranks first and second (Figure 4 of the paper: DCASE-ASC and CNN-music,
    the first and second of NC and LogME)."""
    values = zoo_scores(profile, "audio", names=[score])[score].dropna()
    oriented = values if REGISTRY[score].higher_is_better else -values
    return list(oriented.sort_values(ascending=False, kind="stable").index[:2])


def dynamics_profile(profile: Profile) -> Profile:
    """``profile`` with Figure 4's fine-tuning: ``train.dynamics_epochs`` epochs, no early stopping."""
    t = profile.train
    return dataclasses.replace(profile, train=dataclasses.replace(t, finetune_epochs=t.dynamics_epochs, patience=None))


def training_dynamics(
    profile: Profile, models: Sequence[str] | None = None, executor: Executor | None = None
) -> pd.DataFrame:
    """Long table (model, seed, epoch, train_loss, val_metric, test_metric) of Figure 4: the audio ``finetune`` runs
    of ``models`` (default :func:`figure4_models`) for ``train.dynamics_epochs`` epochs without early stopping
    (:func:`dynamics_profile`), once per seed. ``test_metric`` is the run's test metric at its best validation
    epoch (the same on every row of a run)."""
    models = figure4_models(profile) if models is None else list(models)
    rows = []
    for config, res in transfer_runs(dynamics_profile(profile), "audio", "finetune", executor, models):
        h = res["history"]
        rows += [{"model": config["model"], "seed": config["seed"], "epoch": e, "train_loss": loss, "val_metric": val,
                  "test_metric": res["test_metric"]}
                 for e, loss, val in zip(h["epoch"], h["train_loss"], h["val_metric"], strict=True)]  # fmt: skip
    return pd.DataFrame(rows)
