"""Studies built on the other stages: Figure 1's collapse trajectory and Figure 4's training dynamics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from nclib import cache
from nclib.config import Profile
from nclib.scores import REGISTRY
from nclib.stages.pretrain import TRAJECTORY_MODEL, pretrain, pretrain_config, pretrain_files
from nclib.stages.scores import zoo_scores
from nclib.stages.transfer import performance, transfer_runs


def collapse_trajectory(profile: Profile, model: str = TRAJECTORY_MODEL) -> dict[str, Any]:
    """Figure 1: neural collapse of ``model`` trained from scratch on its source task (shares audio_zoo's run).

    Returns ``first`` and ``last``: (features N x D, labels N) of the training split after the first and the
    last epoch; ``diagnostics``: DataFrame per epoch with nc1, nc2_equinorm, nc2_equiangularity, nc2_angle_gap,
    nc3, nc4 (:func:`nclib.collapse.diagnostics`), train_loss, val_accuracy; ``classes``: source class names.
    """
    res = pretrain(profile, [model], snapshots=[model])[0]
    _, path = pretrain_files(profile, pretrain_config(profile, model, True))
    arrays = cache.load_arrays(path)
    if arrays is None:
        raise ValueError(f"the trajectory of {model} at {path} is missing or corrupt: call collapse_trajectory again")
    return {"first": (arrays["first_features"], arrays["first_labels"]),
            "last": (arrays["last_features"], arrays["last_labels"]),
            "diagnostics": pd.DataFrame(res["diagnostics"]), "classes": tuple(res["classes"])}  # fmt: skip


def training_dynamics(profile: Profile, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table (model, seed, epoch, train_loss, val_metric) of the audio ``finetune`` runs (Figure 4).

    Default ``models``: the model the NC score ranks first and the best-performing one after fine-tuning (if they
    coincide, the runner-up by performance as well).
    """
    runs = transfer_runs(profile, "audio", "finetune")
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
