"""Broken caches of the pipeline, end to end: an embeddings file and a pre-trained weights file damaged on disk are
detected, recomputed to the same values, and reported by a warning naming the file. (Run JSON: tests/test_grid.py;
executed notebooks: tests/test_book_cache.py; the cache's own files and write errors: tests/test_cache.py.)"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from torch import nn

from nclib import cache
from nclib.config import load_profile
from nclib.data import synth
from nclib.features import cached_extract
from nclib.stages import pretrain


def flip_payload_byte(path) -> None:
    """Invert one byte in the middle of ``path`` (inside an array's data for these files)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same arithmetic for the first and the recomputed run
    yield
    torch.set_num_threads(threads)


def test_a_damaged_embeddings_file_is_recomputed(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    calls = []
    model[0].register_forward_pre_hook(lambda *_: calls.append(1))  # one call per batch of 50
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    parts = {"model": "tiny", "dataset": "blobs", "split": "train", "seed": 0}
    first = cached_extract(model, x, tmp_path, parts, layer="1")
    (path,) = (tmp_path / "embeddings").glob("*.npz")
    flip_payload_byte(path)
    with pytest.warns(UserWarning, match=rf"{path} \(.*\); recomputing it"):
        again = cached_extract(model, x, tmp_path, parts, layer="1")
    assert len(calls) == 2
    np.testing.assert_array_equal(again.features, first.features)
    cached_extract(model, x, tmp_path, parts, layer="1")
    assert len(calls) == 2  # the rewritten file is trusted


@pytest.mark.skipif(bool(synth.missing_packages("synth_music")), reason="needs fluidsynth and fluid-soundfont-gm")
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_pretrained_weights_are_recomputed(tmp_path, monkeypatch, damage):
    profile = load_profile("mini", cache_dir=str(tmp_path),
                           audio={"zoo": ["cnn_music"], "pretrain": {"epochs": 1, "checkpoints": []},
                                  "synth_per_class": 8})
    runs = []
    real_run = pretrain.pretrain_run
    monkeypatch.setattr(pretrain, "pretrain_run", lambda config, **kw: runs.append(config) or real_run(config, **kw))
    with ThreadPoolExecutor(1) as here:
        (first,) = pretrain.pretrain(profile, ["cnn_music"], here)
        weights = pretrain.weights_file(profile, pretrain.pretrain_config(profile, "cnn_music"))
        state = cache.load_arrays(weights)
        if damage == "flip":
            flip_payload_byte(weights)
        else:
            weights.write_bytes(weights.read_bytes()[:1000])
        with pytest.warns(UserWarning, match=rf"{weights} \(.*\); recomputing it"):
            (again,) = pretrain.pretrain(profile, ["cnn_music"], here)
        assert len(runs) == 2
        for key in ("source_accuracy", "val_accuracy", "best_epoch", "params", "classes"):
            assert again[key] == first[key]
        assert again["history"]["train_loss"] == first["history"]["train_loss"]
        rewritten = cache.load_arrays(weights)
        assert set(rewritten) == set(state) and all(np.array_equal(rewritten[k], state[k]) for k in state)
        pretrain.pretrain(profile, ["cnn_music"], here)
        assert len(runs) == 2  # the rewritten files are trusted
