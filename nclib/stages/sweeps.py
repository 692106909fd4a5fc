"""Sweeps of the pitfalls pages: scores at other layers, on the validation split, on halves of the training data,
and HEV's terms. Each is a function of (profile, track) to a cached table, computed by :func:`nclib.pipeline.build`
before the notebooks run, so that the notebooks only read it.

Every result is one JSON file under ``profile.cache_dir / "sweeps"``, keyed by the sweep's settings, the arrays it
reads (:func:`nclib.cache.digest`) and this module's code digest.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from nclib import cache
from nclib.config import Profile
from nclib.models import build_audio, build_image
from nclib.models.names import SEPARATOR
from nclib.pitfalls import RESCORED, rescore_subsets
from nclib.scores import score_zoo
from nclib.scores.hev import hev_terms
from nclib.stages.data import METRIC, SPLITS, Track, labels, zoo
from nclib.stages.embeddings import embeddings, image_zoo
from nclib.stages.pretrain import audio_zoo, base_model
from nclib.stages.scores import zoo_scores
from nclib.train import train_linear

LAYERS: dict[str, tuple[str, ...]] = {"audio": ("features.0", "features.1")}  # swept besides the penultimate layer
SUBSETS: dict[str, Any] = {"n": 10, "fraction": 0.5, "seed": 0}  # random halves of the training data (subset_scores)


def _cached(profile: Profile, make: Callable[[], Any], **parts: Any) -> Any:
    path = profile.cache_dir / "sweeps" / f"{cache.key(**parts, code=cache.code_digest(__name__))}.json"
    value = cache.load_json(path)
    if value is None:
        value = make()
        cache.save_json(path, value)
    return value


def _has_layer(profile: Profile, track: str, model: str, layer: str) -> bool:
    if track == "image":
        return layer in dict(build_image(model, pretrained=False)[0].named_modules())
    net = build_audio(base_model(profile, model), 2)
    return layer in dict(net.named_modules())


def layer_sweep(
    profile: Profile, track: Track, layers: Sequence[str] | None = None, names: Sequence[str] = RESCORED
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores ``names`` and linear-head performance of embeddings taken at each of ``layers`` (module names, as
    ``model.named_modules()``; 4-D outputs global-average-pooled; default ``LAYERS[track]``) and at each model's
    penultimate layer ("penultimate").

    Models: the networks of the zoo that have every layer (checkpoints ``name@k`` left out: the same layers as
    their network, and the sweep's cost). Heads: ``nclib.train.train_linear`` with the profile's
    ``train`` settings, one per seed of ``profile.train.seeds``, test metric at the best validation epoch.
    Returns (scores: index (layer, model), one column per score; performance: index (layer, model), mean test
    metric over seeds).
    """
    layers = tuple(LAYERS.get(track, ()) if layers is None else layers)
    models = [m for m in zoo(profile, track) if SEPARATOR not in m
              and all(_has_layer(profile, track, m, layer) for layer in layers)]  # fmt: skip
    if len(models) < 2:
        raise ValueError(f"fewer than 2 models of the {track} zoo have every layer of {list(layers)}")
    y = {s: labels(profile, track, s) for s in SPLITS}
    t = profile.train
    scores, perf = {}, {}
    for layer in tqdm((*layers, None), desc=f"{track} layer sweep", leave=False, disable=None):
        name = layer or "penultimate"
        emb = {s: embeddings(profile, track, s, models, layer) for s in SPLITS}
        train = emb["train"]
        inputs = cache.digest([y["train"], *(a for m in models for a in (train[m].features, train[m].probs))])
        features, probs = {m: train[m].features for m in models}, {m: train[m].probs for m in models}
        values = _cached(profile, functools.partial(score_zoo, features, y["train"], probs, names=list(names)),
                         sweep="layer_scores", inputs=inputs, names=list(names))  # fmt: skip
        for m in models:
            data = [(emb[s][m].features, y[s]) for s in SPLITS]
            key = cache.digest([a for pair in data for a in pair])
            head = functools.partial(_head_metric, data, n_classes=int(y["train"].max()) + 1, epochs=t.epochs,
                                     lr=t.lr, batch_size=t.batch_size, patience=t.patience, metric=METRIC[track],
                                     device=profile.device)  # fmt: skip
            runs = [_cached(profile, functools.partial(head, seed=seed), sweep="layer_head", inputs=key,
                            train=dataclasses.asdict(t), seed=seed) for seed in t.seeds]  # fmt: skip
            scores[name, m] = {n: values[n].get(m, float("nan")) for n in names}
            perf[name, m] = float(np.mean(runs))
    index = pd.MultiIndex.from_tuples(list(scores), names=["layer", "model"])
    return (pd.DataFrame(list(scores.values()), index=index),
            pd.Series(list(perf.values()), index=index, name=f"test_{METRIC[track]}"))  # fmt: skip


def _head_metric(data: list, **kwargs: Any) -> float:
    return train_linear(*data, **kwargs)["test_metric"]


def split_scores(profile: Profile, track: Track, names: Sequence[str] = RESCORED) -> pd.DataFrame:
    """Scores ``names`` of the zoo on training and on validation embeddings (the scores stage, cached there):
    index (split, model), one column per score."""
    return pd.concat({s: zoo_scores(profile, track, s, names=list(names)) for s in ("train", "val")},
                     names=["split", "model"])  # fmt: skip


def subset_scores(profile: Profile, track: Track, names: Sequence[str] = RESCORED) -> pd.DataFrame:
    """:func:`nclib.pitfalls.rescore_subsets` of the zoo's training embeddings with the settings ``SUBSETS``:
    columns draw, model and one per score."""
    models = zoo(profile, track)
    emb = embeddings(profile, track, "train", models)
    y = labels(profile, track, "train")
    features, probs = {m: emb[m].features for m in models}, {m: emb[m].probs for m in models}
    inputs = cache.digest([y, *(a for m in models for a in (features[m], probs[m]))])
    records = _cached(profile, lambda: rescore_subsets(features, y, probs, names, **SUBSETS).to_dict(orient="list"),
                      sweep="subset_scores", models=list(models), inputs=inputs, names=list(names),
                      **SUBSETS)  # fmt: skip
    return pd.DataFrame(records)[["draw", "model", *names]]  # the JSON store sorts keys


def hev_table(profile: Profile, track: Track) -> pd.DataFrame:
    """HEV's terms per model (:func:`nclib.scores.hev.hev_terms`: e_train, e_val, size_penalty, in nats per sample)
    with the zoo's ``params`` and ``label_free_hev``: min(e_train, e_val) - size_penalty with k-means clusters (as
    many as the task has classes) in place of the labels. Index model."""
    models = zoo(profile, track)
    train, val = embeddings(profile, track, "train", models), embeddings(profile, track, "val", models)
    y_tr, y_val = labels(profile, track, "train"), labels(profile, track, "val")
    table = image_zoo(profile) if track == "image" else audio_zoo(profile)
    params = {m: int(p) for m, p in zip(table["model"], table["params"], strict=True)}

    def make() -> dict[str, dict[str, float]]:
        rows = {}
        for m in tqdm(models, desc=f"{track} HEV terms", leave=False, disable=None):
            rows[m] = hev_terms(train[m].features, y_tr, val[m].features, y_val, params[m])
            free = hev_terms(train[m].features, None, val[m].features, None, params[m], n_clusters=len(set(y_tr)))
            rows[m]["label_free_hev"] = min(free["e_train"], free["e_val"]) - free["size_penalty"]
            rows[m]["params"] = params[m]
        return rows

    inputs = cache.digest([y_tr, y_val, *(a for m in models for a in (train[m].features, val[m].features))])
    rows = _cached(profile, make, sweep="hev_terms", models=list(models), inputs=inputs, params=params)
    columns = ["e_train", "e_val", "size_penalty", "label_free_hev", "params"]
    return pd.DataFrame(rows).T.loc[list(models), columns].rename_axis("model")  # the JSON store sorts keys


def sweeps(profile: Profile) -> None:
    """Every sweep the pitfalls pages read, for :func:`nclib.pipeline.build`."""
    for track in ("image", "audio"):
        split_scores(profile, track)
        hev_table(profile, track)
    layer_sweep(profile, "audio")
    subset_scores(profile, "audio")
