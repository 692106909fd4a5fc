"""The scores stage: every registered transferability score of every candidate, on a split's embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from nclib import cache
from nclib.config import Profile
from nclib.scores import REGISTRY, score_zoo
from nclib.stages.data import Track, labels, zoo
from nclib.stages.embeddings import embeddings, image_zoo
from nclib.stages.pretrain import audio_zoo


def zoo_scores(
    profile: Profile, track: Track, split: str = "train", names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Index model, one column per registry score (or per name in ``names``), on the split's embeddings.

    Scores that need source probabilities (LEEP, NCE) are NaN for models without a source head; those that need
    validation data and parameter counts (HEV) get the val split and the zoo's ``params`` when ``split`` is
    "train", and are NaN otherwise. Each score's values are cached as JSON, keyed by the embeddings, the labels
    and this module's code digest.
    """
    models = zoo(profile, track)
    names = list(names or REGISTRY)
    unknown = sorted(set(names) - set(REGISTRY))
    if unknown:
        raise ValueError(f"unknown scores {unknown}; registered: {sorted(REGISTRY)}")
    emb = embeddings(profile, track, split, models)
    y = labels(profile, track, split)
    inputs = cache.digest([y, *(a for m in models for a in (emb[m].features, emb[m].probs))])
    held_out, n_params, held_inputs = None, None, ""
    if split == "train" and any(REGISTRY[n].needs == "train_val" for n in names):  # HEV: validation data and sizes
        val = embeddings(profile, track, "val", models)
        held_out = ({m: val[m].features for m in models}, labels(profile, track, "val"))
        zoo_table = image_zoo(profile) if track == "image" else audio_zoo(profile)
        n_params = {m: int(p) for m, p in zip(zoo_table["model"], zoo_table["params"], strict=True)}
        held_inputs = cache.digest([held_out[1], *held_out[0].values(), np.array([n_params[m] for m in models])])
    table = pd.DataFrame(index=pd.Index(models, name="model"), columns=names, dtype=float)
    code = cache.code_digest(__name__)
    for name in tqdm(names, desc=f"{track} scores", leave=False, disable=None):
        held = held_inputs if REGISTRY[name].needs == "train_val" else ""
        key = cache.key(score=name, models=models, inputs=inputs + held, code=code)
        path = profile.cache_dir / "scores" / f"{key}.json"
        values = cache.load_json(path)
        if not isinstance(values, dict):
            features = {m: emb[m].features for m in models}
            probs = {m: emb[m].probs for m in models}
            values = score_zoo(features, y, probs, names=[name], held_out=held_out, n_params=n_params)[name]
            cache.save_json(path, values)
        for model, value in values.items():
            table.loc[model, name] = value
    return table
