"""Embedding extraction: hooks on any layer, pooling, source-head probabilities, and the disk cache."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nclib.data.images import to_model_input
from nclib.features import Embeddings, cached_extract, extract, weights_hash


class Net(nn.Module):
    """conv -> relu -> global pool -> linear source head; counts forward calls of the whole and of the head."""

    penultimate = "pool"
    has_source_head = True

    def __init__(self, seed=0, n_source=5):
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(8, n_source)
        self.calls = 0
        self.head_calls = 0
        self.head.register_forward_hook(lambda *_: setattr(self, "head_calls", self.head_calls + 1))

    def forward(self, x):
        self.calls += 1
        return self.head(self.pool(self.body(x)))


class Recurrent(nn.Module):
    """N x C x T input -> GRU (batch first); the GRU returns a tuple (N x T x H, h_n)."""

    penultimate = "gru"
    has_source_head = False

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.gru = nn.GRU(4, 6, batch_first=True)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        out, _ = self.gru(x.transpose(1, 2))
        return self.head(out[:, -1])


def _inputs(n=37, seed=0):
    return torch.randn(n, 3, 6, 6, generator=torch.Generator().manual_seed(seed))


def _manual(model, x):
    model.eval()
    with torch.no_grad():
        body = model.body(x)
        pooled = body.mean(dim=(2, 3))
        return body, pooled, torch.softmax(model.head(pooled), dim=1)


def test_penultimate_features_and_probs_match_a_manual_forward():
    model, x = Net(), _inputs()
    emb = extract(model, x, batch_size=8)
    _, pooled, probs = _manual(model, x)
    assert isinstance(emb, Embeddings)
    assert emb.features.dtype == np.float32 and emb.features.shape == (37, 8)
    np.testing.assert_allclose(emb.features, pooled.numpy(), atol=1e-5)
    np.testing.assert_allclose(emb.probs, probs.numpy(), atol=1e-5)
    np.testing.assert_allclose(emb.probs.sum(axis=1), 1, atol=1e-6)


def test_any_named_layer_is_spatially_averaged():
    model, x = Net(), _inputs()
    body, _, _ = _manual(model, x)
    emb = extract(model, x, layer="body.0")
    conv = model.body[0](x).mean(dim=(2, 3)).detach()
    np.testing.assert_allclose(emb.features, conv.numpy(), atol=1e-5)
    np.testing.assert_allclose(extract(model, x, layer="body").features, body.mean(dim=(2, 3)).numpy(), atol=1e-5)


def test_sequence_layer_is_averaged_over_time_and_no_head_means_no_probs():
    model = Recurrent()
    x = torch.randn(9, 4, 11, generator=torch.Generator().manual_seed(1))
    emb = extract(model, x, batch_size=4)
    with torch.no_grad():
        expected = model.gru(x.transpose(1, 2))[0].mean(dim=1)
    np.testing.assert_allclose(emb.features, expected.numpy(), atol=1e-5)
    assert emb.probs is None


def test_without_source_head_the_head_is_skipped():
    model, x = Net(), _inputs()
    model.has_source_head = False
    emb = extract(model, x, batch_size=10)
    assert emb.probs is None and model.head_calls == 0 and model.calls == 4
    np.testing.assert_allclose(emb.features, _manual(model, x)[1].numpy(), atol=1e-5)


def test_batch_size_loaders_and_transform_agree():
    model = Net()
    x8 = torch.randint(0, 256, (23, 6, 6, 1), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    ref = extract(model, to_model_input(x8, 6, mean, std), batch_size=64)
    by_3 = extract(model, to_model_input(x8, 6, mean, std), batch_size=3)
    np.testing.assert_allclose(by_3.features, ref.features, atol=1e-5)
    via_transform = extract(model, x8.numpy(), batch_size=5, transform=lambda b: to_model_input(b, 6, mean, std))
    np.testing.assert_allclose(via_transform.features, ref.features, atol=1e-5)
    loader = DataLoader(TensorDataset(to_model_input(x8, 6, mean, std), torch.zeros(23)), batch_size=4)
    np.testing.assert_allclose(extract(model, loader).features, ref.features, atol=1e-5)
    np.testing.assert_allclose(extract(model, loader).probs, ref.probs, atol=1e-5)


def test_training_mode_is_restored_and_batch_norm_untouched():
    model = Net()
    model.train()
    stats = model.body[1].running_mean.clone()
    extract(model, _inputs())
    assert model.training
    assert torch.equal(model.body[1].running_mean, stats)


def test_model_can_still_be_trained_afterwards():
    model, x = Net(), _inputs()
    extract(model, x)
    loss = model(x).logsumexp(dim=1).mean()
    loss.backward()  # parameters are not inference tensors
    assert model.body[0].weight.grad is not None


def test_errors_are_clear():
    x = _inputs()
    plain = nn.Sequential(nn.Conv2d(3, 2, 1), nn.Flatten())
    with pytest.raises(ValueError, match="penultimate"):
        extract(plain, x)
    assert extract(plain, x, layer="0").features.shape == (37, 2)
    with pytest.raises(ValueError, match="no layer 'blocks.3'.*body"):
        extract(Net(), x, layer="blocks.3")
    with pytest.raises(ValueError, match="empty"):
        extract(Net(), x[:0])
    model = Net()
    model.extra = nn.Linear(2, 2)  # registered but never run
    with pytest.raises(ValueError, match="did not run"):
        extract(model, x, layer="extra")


def test_weights_hash():
    a, b = Net(seed=0), Net(seed=0)
    assert weights_hash(a) == weights_hash(b)
    assert weights_hash(Net(seed=1)) != weights_hash(a)
    b.body[1].running_var.add_(1e-3)  # buffers count too
    assert weights_hash(b) != weights_hash(a)
    assert weights_hash(Net(seed=0).to(torch.bfloat16)) != weights_hash(a)  # any dtype hashes; dtype counts


PARTS = {"model": "net", "dataset": "fake", "split": "train", "seed": 0, "preprocessing": "none"}


def test_builders_are_called_only_on_a_miss_and_must_be_named(tmp_path):
    """A model and inputs given as builders are keyed by the identities key_parts gives them, not by their values:
    a hit builds nothing; a builder without its identity in key_parts is refused."""
    built = []

    def model():
        built.append("model")
        return Net()

    def inputs():
        built.append("inputs")
        return _inputs()

    parts = PARTS | {"weights": "net, seed 0", "inputs": "fake, 33 items"}
    first = cached_extract(model, inputs, tmp_path, parts, batch_size=8)
    assert built == ["model", "inputs"]
    again = cached_extract(model, inputs, tmp_path, parts, batch_size=8)
    assert built == ["model", "inputs"]  # nothing built on a hit
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(first.features, cached_extract(Net(), _inputs(), tmp_path / "b", PARTS).features)
    cached_extract(model, inputs, tmp_path, parts | {"weights": "net, seed 1"}, batch_size=8)
    assert built.count("model") == 2  # another identity, another entry
    with pytest.raises(ValueError, match="weights"):
        cached_extract(model, _inputs(), tmp_path, PARTS)
    with pytest.raises(ValueError, match="inputs"):
        cached_extract(Net(), inputs, tmp_path, PARTS)


def test_cache_hit_does_no_model_work(tmp_path):
    model, x = Net(), _inputs()
    first = cached_extract(model, x, tmp_path, PARTS, batch_size=8)
    assert model.calls == 5
    second = cached_extract(model, x, tmp_path, PARTS, batch_size=8)
    assert model.calls == 5  # no forward pass at all
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_array_equal(second.probs, first.probs)
    assert len(list((tmp_path / "embeddings").glob("*.npz"))) == 1


def test_cache_key_covers_what_changes_the_result(tmp_path):
    model, x = Net(), _inputs()
    cached_extract(model, x, tmp_path, PARTS)
    calls = model.calls
    cached_extract(model, x, tmp_path, {**PARTS, "split": "val"})  # a key part
    cached_extract(model, x, tmp_path, PARTS, layer="body.0")  # the layer
    cached_extract(model, x + 1, tmp_path, PARTS)  # the inputs themselves
    with torch.no_grad():
        model.head.bias.add_(1.0)  # the weights
    changed = cached_extract(model, x, tmp_path, PARTS)
    assert model.calls == calls + 4
    np.testing.assert_allclose(changed.probs, _manual(model, x)[2].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="layer"):
        cached_extract(model, x, tmp_path, {**PARTS, "layer": "pool"})


def test_cache_with_uint8_arrays_and_a_transform(tmp_path):
    model = Net()
    x8 = np.random.default_rng(3).integers(0, 256, size=(11, 6, 6, 1), dtype=np.uint8)
    prep = {"preprocessing": "6px, mean 0.5, std 0.25"}

    def transform(b):
        return to_model_input(b, 6, (0.5,) * 3, (0.25,) * 3)

    first = cached_extract(model, x8, tmp_path, PARTS | prep, transform=transform)
    second = cached_extract(model, x8, tmp_path, PARTS | prep, transform=transform)
    assert model.calls == 1
    np.testing.assert_array_equal(first.features, second.features)
    x8[0, 0, 0, 0] ^= 1  # one pixel of the inputs changes the key
    cached_extract(model, x8, tmp_path, PARTS | prep, transform=transform)
    assert model.calls == 2


def test_corrupt_cache_is_recomputed(tmp_path):
    model, x = Net(), _inputs()
    first = cached_extract(model, x, tmp_path, PARTS)
    (path,) = (tmp_path / "embeddings").glob("*.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a partial file, as after a crash without atomic writes
    calls = model.calls
    with pytest.warns(UserWarning, match="recomputed"):
        again = cached_extract(model, x, tmp_path, PARTS)
    assert model.calls > calls
    np.testing.assert_allclose(again.features, first.features, atol=1e-6)
    assert path.read_bytes() != data[: len(data) // 2]  # rewritten whole
    cached_extract(model, x, tmp_path, PARTS)
    assert model.calls == calls + 1  # and trusted again


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_autocast_matches_cpu():
    model, x = Net(), _inputs()
    cpu = extract(model, x)
    gpu = extract(model, x, device="cuda")
    np.testing.assert_allclose(gpu.features, cpu.features, rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(gpu.probs, cpu.probs, atol=1e-2)
