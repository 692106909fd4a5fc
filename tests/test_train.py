"""Tests for nclib.train on tiny models: determinism, the two `linear` routes, checkpointing, metrics, hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import TensorDataset

from nclib.collapse import diagnostics
from nclib.train import new_head, replace_head, train_linear, transfer


class TinyNet(nn.Module):
    """A small CNN with BatchNorm and dropout; ``fc`` is its 5-class source head (the nclib.models contract)."""

    head_name = "fc"

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.body = nn.Sequential(
                nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Dropout(0.2),
                nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )
            self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


def _images(n: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """N x 1 x 8 x 8 float32 images: a class-specific pattern plus noise; labels 0..C-1."""
    rng = np.random.default_rng(seed)
    patterns = np.random.default_rng(99).normal(size=(n_classes, 1, 8, 8))
    y = np.arange(n) % n_classes
    return (patterns[y] + 1.5 * rng.normal(size=(n, 1, 8, 8))).astype(np.float32), y


def _splits(n_classes: int = 3):
    return _images(90, n_classes, 1), _images(45, n_classes, 2), _images(45, n_classes, 3)


def _embed(model: TinyNet, x: np.ndarray) -> np.ndarray:
    """Cached embeddings, computed independently of nclib: the frozen body in eval mode, in float32."""
    model.eval()
    with torch.no_grad():
        return model.body(torch.from_numpy(x)).numpy()


KW = {"epochs": 6, "lr": 3e-3, "batch_size": 16, "seed": 3}


def _net(seed: int = 0, n_classes: int = 3) -> TinyNet:
    """A TinyNet with its new classification layer, drawn once by replace_head, as every caller of transfer does."""
    return replace_head(TinyNet(seed), n_classes, KW["seed"])


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread; two intra-op threads crawl on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_head_init_depends_only_on_seed_and_shape():
    torch.manual_seed(1)
    a = new_head(8, 3, seed=5)
    torch.manual_seed(2)
    _ = torch.rand(10)
    b = new_head(8, 3, seed=5)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert not torch.equal(a.weight, new_head(8, 3, seed=6).weight)
    assert float(a.weight.detach().abs().max()) <= 1 / np.sqrt(8)
    # two different networks with the same embedding size start from the same new layer
    r1 = transfer(_net(0), *_splits(), strategy="finetune", n_classes=3, save_embeddings_at={0}, **KW)
    r2 = transfer(_net(1), *_splits(), strategy="finetune", n_classes=3, save_embeddings_at={0}, **KW)
    assert np.array_equal(r1["embeddings"][0]["weights"], r2["embeddings"][0]["weights"])
    assert np.array_equal(r1["embeddings"][0]["weights"], new_head(8, 3, KW["seed"]).weight.detach().numpy())


def test_cached_embeddings_and_frozen_network_give_the_same_run():
    train, val, test = _splits()
    net = _net(0)
    cached = [(_embed(net, x), y) for x, y in (train, val, test)]
    before = {k: v.clone() for k, v in net.body.state_dict().items()}
    frozen = transfer(net, train, val, test, strategy="linear", n_classes=3, **KW)
    emb = train_linear(*cached, n_classes=3, **KW)
    assert frozen["history"]["val_metric"] == emb["history"]["val_metric"]
    np.testing.assert_allclose(frozen["history"]["train_loss"], emb["history"]["train_loss"], rtol=1e-5)
    assert (frozen["best_epoch"], frozen["val_metric"], frozen["test_metric"]) == (
        emb["best_epoch"], emb["val_metric"], emb["test_metric"])
    # the frozen layers really stayed frozen (BatchNorm statistics included) and are trainable again afterwards
    assert all(torch.equal(before[k], v) for k, v in net.body.state_dict().items())
    assert all(p.requires_grad for p in net.parameters())
    assert frozen["history"]["train_loss"][-1] < frozen["history"]["train_loss"][0]


@pytest.mark.parametrize("strategy", ["linear", "finetune"])
def test_same_config_twice_gives_identical_histories(strategy):
    rng_state = torch.random.get_rng_state()
    runs = [transfer(_net(0), *_splits(), strategy=strategy, n_classes=3, **KW) for _ in range(2)]
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # the caller's global RNG is left alone
    for r in runs:
        del r["history"]["wall_time_s"]
    assert runs[0] == runs[1]
    assert len(runs[0]["history"]["epoch"]) == KW["epochs"]
    a = train_linear(*[(_embed(TinyNet(0), x), y) for x, y in _splits()], n_classes=3, **KW)
    b = train_linear(*[(_embed(TinyNet(0), x), y) for x, y in _splits()], n_classes=3, **KW)
    assert a["history"]["train_loss"] == b["history"]["train_loss"] and a["test_metric"] == b["test_metric"]


def test_dataset_splits_match_tensor_splits():
    splits = _splits()
    datasets = [TensorDataset(torch.from_numpy(x), torch.from_numpy(y)) for x, y in splits]
    a = transfer(_net(0), *splits, strategy="finetune", n_classes=3, **KW)
    b = transfer(_net(0), *datasets, strategy="finetune", n_classes=3, **KW)
    assert a["history"]["train_loss"] == b["history"]["train_loss"]
    assert a["history"]["val_metric"] == b["history"]["val_metric"] and a["test_metric"] == b["test_metric"]


def test_best_checkpoint_and_its_test_metric():
    train, val, test = _splits()
    net = _net(0)
    res = transfer(net, train, val, test, strategy="finetune", n_classes=3, **{**KW, "epochs": 8})
    vals = res["history"]["val_metric"]
    assert res["best_epoch"] == 1 + int(np.argmax(vals)) and res["val_metric"] == max(vals)
    # the model is left at the best checkpoint: recompute both metrics from it, independently
    net.eval()
    with torch.no_grad():
        for (x, y), key in ((val, "val_metric"), (test, "test_metric")):
            acc = float((net(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
            assert acc == pytest.approx(res[key], abs=1e-12)
    # training for exactly best_epoch epochs reaches the same checkpoint
    short = transfer(_net(0), train, val, test, strategy="finetune", n_classes=3,
                     **{**KW, "epochs": res["best_epoch"]})
    assert short["test_metric"] == res["test_metric"]


def test_early_stopping_with_patience():
    rng = np.random.default_rng(0)
    y = np.arange(200) % 2
    x = (3 * (2 * y[:, None] - 1) + rng.normal(size=(200, 4))).astype(np.float32)  # separable: val saturates at 1
    res = train_linear((x[:100], y[:100]), (x[100:150], y[100:150]), (x[150:], y[150:]), n_classes=2, epochs=50,
                       lr=0.05, batch_size=16, patience=3)
    assert res["val_metric"] == 1.0
    assert len(res["history"]["epoch"]) == res["best_epoch"] + 3 < 50
    assert res["config"]["patience"] == 3 and res["device"] == "cpu"


def test_auroc_metric_for_binary_tasks():
    train, val, test = _splits(n_classes=2)
    net = _net(0, 2)
    res = transfer(net, train, val, test, strategy="finetune", n_classes=2, metric="auroc", **KW)
    net.eval()
    with torch.no_grad():
        p = net(torch.from_numpy(test[0])).softmax(1)[:, 1].numpy()
    assert res["test_metric"] == pytest.approx(roc_auc_score(test[1], p), abs=1e-12)
    assert 0.5 < res["val_metric"] <= 1


def test_embeddings_at_chosen_epochs():
    train, val, test = _splits()
    net = _net(0)
    res = transfer(net, train, val, test, strategy="finetune", n_classes=3, save_embeddings_at={0, 2, -1},
                   **{**KW, "epochs": 4})
    emb = res["embeddings"]
    assert sorted(emb) == [0, 2, 4]
    first = TinyNet(0)
    np.testing.assert_allclose(emb[0]["features"], _embed(first, train[0]), rtol=1e-5, atol=1e-6)
    assert emb[4]["features"].shape == (90, 8) and emb[4]["weights"].shape == (3, 8)
    np.testing.assert_array_equal(emb[4]["labels"], train[1])
    assert not np.allclose(emb[0]["features"], emb[4]["features"])  # fine-tuning moved the embeddings
    d = diagnostics(**emb[4])
    assert set(d) == {"nc1", "nc2_equinorm", "nc2_equiangularity", "nc2_angle_gap", "nc3", "nc4"}
    assert 0 <= d["nc4"] <= 1


def test_channels_last_for_image_inputs():
    net = _net(0)
    transfer(net, *_splits(), strategy="finetune", n_classes=3, **{**KW, "epochs": 1})
    assert net.body[0].weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_with_autocast_matches_cpu_roughly():
    cpu = transfer(_net(0), *_splits(), strategy="finetune", n_classes=3, device="cpu", **KW)
    gpu = transfer(_net(0), *_splits(), strategy="finetune", n_classes=3, device="cuda", **KW)
    assert gpu["device"].startswith("cuda")
    assert gpu["test_metric"] == pytest.approx(cpu["test_metric"], abs=0.15)


def test_bad_input():
    train, val, test = _splits()
    with pytest.raises(ValueError, match="binary"):
        transfer(_net(0), train, val, strategy="finetune", n_classes=3, metric="auroc", **KW)
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        transfer(_net(0, 2), train, val, strategy="finetune", n_classes=2, **KW)
    with pytest.raises(ValueError, match="strategy"):
        transfer(_net(0), train, val, strategy="full", n_classes=3, **KW)
    with pytest.raises(ValueError, match="head_name"):
        transfer(nn.Linear(3, 3), train, val, strategy="finetune", n_classes=3, **KW)
    with pytest.raises(ValueError, match="nn.Linear with 3 outputs .*replace_head"):
        transfer(TinyNet(0), train, val, strategy="finetune", n_classes=3, **KW)  # still its 5-class source head
    with pytest.raises(ValueError, match="save_embeddings_at"):
        transfer(_net(0), train, val, strategy="finetune", n_classes=3, save_embeddings_at={7}, **KW)
    with pytest.raises(ValueError, match="N x D"):
        train_linear(train, val, n_classes=3, **KW)
