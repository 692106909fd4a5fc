"""Audio zoo of Table 1: parameter counts, variable-length forward passes, penultimate and head conventions."""

from __future__ import annotations

import pytest
import torch

from nclib.models.audio import ZOO_INFO, Cnn, Crnn, DcaseBaseline, build_audio
from nclib.train import embedding_dim, replace_head

TABLE1 = {DcaseBaseline: 4.31e6, Cnn: 0.43e6, Crnn: 0.53e6}  # Table 1 of the paper, parameters incl. the head


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def hand_count(arch: type, n_classes: int) -> int:
    """Parameter count from the layer list in each docstring, worked out by hand."""
    conv5 = lambda i, o: 25 * i * o + 2 * o  # 5x5 conv without bias, then batch norm (weight, bias)  # noqa: E731
    if arch is DcaseBaseline:
        return conv5(1, 64) + conv5(64, 128) + conv5(128, 256) + conv5(256, 512) + 513 * n_classes
    trunk = conv5(1, 48) + conv5(48, 96) + conv5(96, 128)
    gru = 3 * (128 * 128 + 128 * 128 + 2 * 128)  # update, reset, new gates: input and hidden weights, two biases
    return trunk + (gru if arch is Crnn else 0) + 129 * n_classes


@pytest.mark.parametrize("arch", [DcaseBaseline, Cnn, Crnn])
@pytest.mark.parametrize("n_classes", [10, 35])  # 10: DCASE 2018 Task 1A scenes, GTZAN genres; 35: Speech Commands
def test_parameter_counts_match_table1(arch: type, n_classes: int) -> None:
    count = n_params(arch(n_classes))
    assert count == hand_count(arch, n_classes)
    assert abs(count - TABLE1[arch]) / TABLE1[arch] < 0.05
    if n_classes == 10:
        assert round(count / 1e6, 2) == pytest.approx(TABLE1[arch] / 1e6, abs=0.011)


def test_dcase_baseline_is_kong_4_layer_cnn() -> None:
    # 4,309,450 for 10 classes; Kong et al.'s 8-layer VGG-like CNN would have 4,691,274 (9 % above Table 1).
    assert n_params(DcaseBaseline(10)) == 4_309_450


@pytest.mark.parametrize("name", sorted(ZOO_INFO))
@pytest.mark.parametrize("frames", [1, 37, 251])
def test_forward_variable_length(name: str, frames: int) -> None:
    torch.manual_seed(0)
    model = build_audio(name, 7).eval()
    x = torch.randn(3, 1, 64, frames)
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (3, 7)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", sorted(ZOO_INFO))
def test_penultimate_is_head_input(name: str) -> None:
    torch.manual_seed(0)
    model = build_audio(name, 5).eval()
    expected_dim = 512 if ZOO_INFO[name]["architecture"] == "DcaseBaseline" else 128
    seen: list[torch.Tensor] = []
    model.get_submodule(model.penultimate).register_forward_hook(lambda _m, _i, o: seen.append(o))
    x = torch.randn(2, 1, 64, 50)
    with torch.inference_mode():
        logits = model(x)
        head_of_embedding = model.get_submodule(model.head_name)(seen[0])
    (embedding,) = seen
    assert embedding.shape == (2, expected_dim)
    assert embedding_dim(model) == expected_dim
    assert model.has_source_head
    torch.testing.assert_close(head_of_embedding, logits)


def test_batch_items_are_independent_in_eval_mode() -> None:
    torch.manual_seed(0)
    model = build_audio("crnn_speech", 4).eval()
    x = torch.randn(4, 1, 64, 40)
    with torch.inference_mode():
        torch.testing.assert_close(model(x)[1:2], model(x[1:2]))


def test_construction_is_seeded_by_the_global_generator() -> None:
    torch.manual_seed(3)
    a = build_audio("cnn_music", 10)
    torch.manual_seed(3)
    b = build_audio("cnn_music", 10)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_replace_head_same_init_for_same_width() -> None:
    torch.manual_seed(0)
    cnn, crnn, dcase = build_audio("cnn_speech", 35), build_audio("crnn_music", 10), build_audio("dcase_asc", 10)
    for model in (cnn, crnn, dcase):
        assert replace_head(model, 2, seed=4) is model
        assert not model.has_source_head
    torch.testing.assert_close(cnn.fc.weight, crnn.fc.weight, rtol=0, atol=0)
    torch.testing.assert_close(cnn.fc.bias, crnn.fc.bias, rtol=0, atol=0)
    assert dcase.fc.weight.shape == (2, 512)
    assert (cnn.fc.weight.abs() <= 128**-0.5).all()
    assert not torch.equal(replace_head(build_audio("cnn_music", 10), 2, seed=5).fc.weight, cnn.fc.weight)
    with torch.inference_mode():
        assert cnn.eval()(torch.randn(2, 1, 64, 30)).shape == (2, 2)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown audio model"):
        build_audio("vggish", 10)
    with pytest.raises(ValueError, match="n_classes"):
        build_audio("cnn_music", 1)
    with pytest.raises(ValueError, match="n_classes"):
        replace_head(build_audio("cnn_music", 10), 1, seed=0)
