"""The data stage: every split the other stages read, built once per process and kept in memory.

Images are ``image_splits(profile)`` (uint8 N x H x W x C, int64 labels); audio tasks are ``audio_splits(profile,
task)`` (synthetic audio itself is cached on disk by :func:`nclib.data.synth.load_synth`), with log-mel
spectrograms computed only when a stage needs the inputs, not for labels alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import torch

from nclib import cache
from nclib.data.audio import audio_splits, log_mel
from nclib.data.images import image_splits

if TYPE_CHECKING:  # not imported: the data stage does not depend on the model code the profile checks use
    from nclib.config import Profile

Track = Literal["image", "audio"]
Strategy = Literal["linear", "finetune"]
SPLITS = ("train", "val", "test")
METRIC = {"image": "accuracy", "audio": "auroc"}  # Section 4.3

T = TypeVar("T")
_MEMORY: dict[str, Any] = {}


def _memo(key: str, make: Callable[[], T]) -> T:
    if key not in _MEMORY:
        if len(_MEMORY) >= 8:
            _MEMORY.pop(next(iter(_MEMORY)))
        _MEMORY[key] = make()
    return _MEMORY[key]


def inputs(profile: Profile, track: str) -> dict[str, Any]:
    """The settings that decide a track's downstream inputs (dataset, sizes, seed, front end): plain data for keys."""
    if track == "image":
        i = profile.image
        return {"dataset": i.dataset, "split": i.split, "input_size": i.input_size, "seed": profile.seed}
    a = profile.audio
    return {"downstream": dataclasses.asdict(a.downstream), "sample_rate": a.sample_rate, "n_mels": a.n_mels,
            "frame_ms": a.frame_ms["downstream"], "seed": profile.seed}  # fmt: skip


def image_data(profile: Profile) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``image_splits(profile)``: uint8 images N x H x W x C and int64 labels per split."""
    k = cache.key(kind="image", root=str(profile.data_root), **inputs(profile, "image"))
    return _memo(k, lambda: image_splits(profile))


def _audio(profile: Profile, task: str) -> dict[str, Any]:
    k = cache.key(kind="audio", task=task, audio=dataclasses.asdict(profile.audio), root=str(profile.data_root),
                  cache=str(profile.cache_dir), seed=profile.seed)  # fmt: skip
    return _memo(k, lambda: audio_splits(profile, task))


def spectrograms(profile: Profile, task: str) -> tuple[dict[str, tuple[torch.Tensor, np.ndarray]], tuple[str, ...]]:
    """Log-mel spectrograms (N x 1 x n_mels x frames) and labels of every split of an audio task, and its classes."""
    a = profile.audio
    k = cache.key(kind="spectrograms", task=task, audio=dataclasses.asdict(a), root=str(profile.data_root),
                  cache=str(profile.cache_dir), seed=profile.seed)  # fmt: skip

    def make():
        splits = _audio(profile, task)
        out = {}
        for name, ds in splits.items():
            loader = torch.utils.data.DataLoader(ds, batch_size=64)
            specs = [log_mel(w, a.sample_rate, a.frame_ms[task], a.n_mels) for w, _ in loader]
            out[name] = (torch.cat(specs)[:, None].contiguous(), np.asarray(ds.labels, dtype=np.int64))
        return out, tuple(splits["train"].class_names)

    return _memo(k, make)


def image_labels(profile: Profile, split: str) -> np.ndarray:
    """Integer labels (int64) of an image split (``train``, ``val`` or ``test``)."""
    return image_data(profile)[check_split(split)][1]


def audio_labels(profile: Profile, split: str) -> np.ndarray:
    """Labels (int64; 1 = positive) of a split of the downstream audio task (no spectrogram is computed)."""
    return np.asarray(_audio(profile, "downstream")[check_split(split)].labels, dtype=np.int64)


def labels(profile: Profile, track: str, split: str) -> np.ndarray:
    """Labels of a split of a track's downstream task."""
    return image_labels(profile, split) if track == "image" else audio_labels(profile, split)


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def zoo(profile: Profile, track: str) -> tuple[str, ...]:
    """The candidate models of a track."""
    if track not in METRIC:
        raise ValueError(f"track must be 'image' or 'audio', got {track!r}")
    return profile.image.zoo if track == "image" else profile.audio.zoo
