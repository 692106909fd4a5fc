"""The image networks nclib pre-trains itself, offline: small CNNs on sklearn's digits and on synthetic shapes.

One run per network records its state after every epoch, so every checkpoint of a network (``name@k``,
:mod:`nclib.models.names`) comes from the same run as the network itself. The run's states are cached in
``cache_dir/weights/<key>.npz`` with key = :func:`recipe` (network, source data, seed, epochs, library versions
and this module's code digest): a warm build reads them and trains nothing.

    states = pretrain("digits_cnn")                           # state dicts after epochs 1..6 of one run
    state = trained_state("digits_cnn", 2, profile.cache_dir)  # epoch 2 of that run, trained once, then read
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nclib import cache
from nclib.data.shapes import shapes

SEED = 0  # initialisation and shuffling of every network's pre-training run
# source task -> its images: input size (pixels), and for the synthetic shapes the training / test images per class
SOURCES: dict[str, dict[str, Any]] = {
    "digits": {"size": 16},  # sklearn's 8 x 8 digits, upsampled 2x
    "shapes": {"size": 32, "train_per_class": 300, "test_per_class": 50},
}
# network -> channels of its three convolutions, source task, epochs of its pre-training (Adam, cosine schedule)
NETWORKS: dict[str, dict[str, Any]] = {
    "digits_cnn": {"widths": (16, 32, 64), "source": "digits", "epochs": 6},
    "digits_cnn_narrow": {"widths": (8, 16, 64), "source": "digits", "epochs": 6},
    "shapes_cnn": {"widths": (16, 32, 64), "source": "shapes", "epochs": 6},
}


class SmallCnn(nn.Module):
    """Compact CNN for 3 x H x W images: 3 x [Conv3x3 (no bias) -> BN -> ReLU] with ``widths`` channels and a
    2 x 2 max-pool after the first two; global average pool (``pool``, the widths[-1]-d embedding); Linear
    (``fc``) to ``n_classes``. 24,346 parameters for widths (16, 32, 64) and 10 classes."""

    def __init__(self, widths: tuple[int, int, int], n_classes: int = 10) -> None:
        super().__init__()

        def block(i: int, o: int) -> list[nn.Module]:
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        a, b, c = widths
        self.features = nn.Sequential(*block(3, a), nn.MaxPool2d(2), *block(a, b), nn.MaxPool2d(2), *block(b, c))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)))


def _rgb(images: np.ndarray) -> torch.Tensor:
    """Grey images in [0, 1], N x H x W -> N x 3 x H x W normalised by mean 0.5, std 0.5."""
    return (torch.from_numpy(images.astype(np.float32))[:, None].repeat(1, 3, 1, 1) - 0.5) / 0.5


def source_split(source: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A source task's (x_train, y_train, x_test, y_test): normalised 3 x size x size images, int64 labels.

    ``digits``: sklearn's bundled digits, upsampled to 16 px (bilinear), a stratified 75 / 25 split with a fixed
    seed (1,347 / 450 images). ``shapes``: :func:`nclib.data.shapes.shapes` at 32 px, 300 training images per class
    (seed 0) and 50 test images per class (seed 1).
    """
    if source == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        x = F.interpolate(torch.from_numpy(digits.images / 16.0)[:, None].float(), size=SOURCES["digits"]["size"],
                          mode="bilinear", align_corners=False)[:, 0]  # fmt: skip
        y = torch.from_numpy(digits.target.astype(np.int64))
        train, test = train_test_split(np.arange(len(y)), test_size=0.25, stratify=digits.target, random_state=0)
        x = _rgb(x.numpy())
        return x[train], y[train], x[test], y[test]
    if source == "shapes":
        s = SOURCES["shapes"]
        x_train, y_train = shapes(s["train_per_class"], s["size"], seed=0)
        x_test, y_test = shapes(s["test_per_class"], s["size"], seed=1)
        return _rgb(x_train), torch.from_numpy(y_train), _rgb(x_test), torch.from_numpy(y_test)
    raise ValueError(f"unknown source task {source!r}; choose one of {sorted(SOURCES)}")


def pretrain(name: str, seed: int = SEED) -> list[dict[str, torch.Tensor]]:
    """Pre-train network ``name`` on its source task's training images; its state dict after each epoch, in order.

    Adam (lr 3e-3, cosine decay to 0 over the whole run), batch 32 (last partial batch dropped), cross-entropy;
    initialisation and shuffling depend only on ``seed`` (the global RNG state is left untouched); runs on one
    thread, so the result is the same on every machine. digits_cnn: about 0.2 s per epoch on one CPU core.
    """
    net = NETWORKS[name]
    x, y, _, _ = source_split(net["source"])
    batch, steps_per_epoch = 32, len(y) // 32
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same float reductions on every machine, and no thread contention for a tiny net
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = SmallCnn(net["widths"]).train()
        order = torch.Generator().manual_seed(seed)
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=net["epochs"] * steps_per_epoch)
        states = []
        for _ in range(net["epochs"]):
            perm = torch.randperm(len(y), generator=order)
            for i in range(steps_per_epoch):
                idx = perm[i * batch : (i + 1) * batch]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
            states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    finally:
        torch.set_num_threads(threads)
    return states


def recipe(name: str) -> dict[str, Any]:
    """The identity of network ``name``'s pre-training run, as plain data: what :func:`pretrain` depends on."""
    if name not in NETWORKS:
        raise ValueError(f"{name!r} is not a network nclib pre-trains; choose one of {sorted(NETWORKS)}")
    net = NETWORKS[name]
    data = {"source": net["source"], **SOURCES[net["source"]]}
    if net["source"] == "digits":
        data["sklearn"] = importlib.metadata.version("scikit-learn")
    return {"network": name, **net, "data": data, "seed": SEED, "torch": torch.__version__,
            "code": cache.code_digest(__name__)}  # fmt: skip


def weights_file(name: str, cache_dir: str | Path) -> Path:
    """Where the states of network ``name``'s pre-training run are cached: ``cache_dir/weights/<recipe key>.npz``."""
    return Path(cache_dir) / "weights" / f"{cache.key(**recipe(name))}.npz"


def trained_state(name: str, epoch: int, cache_dir: str | Path) -> dict[str, torch.Tensor]:
    """Network ``name``'s state dict after ``epoch`` epochs (1 .. its length) of its pre-training run.

    The run's states (array ``"<epoch>.<parameter>"`` per epoch) are read from :func:`weights_file`; where that is
    missing or corrupt, :func:`pretrain` runs once and stores them all. Reading builds no model and runs none.
    """
    path = weights_file(name, cache_dir)  # checks the name
    if not 1 <= epoch <= NETWORKS[name]["epochs"]:
        raise ValueError(f"epoch must be 1..{NETWORKS[name]['epochs']} for {name!r}, got {epoch}")
    arrays = cache.load_arrays(path)
    if arrays is None:
        states = pretrain(name)
        arrays = {f"{k}.{p}": t.numpy() for k, state in enumerate(states, 1) for p, t in state.items()}
        cache.save_arrays(path, **arrays)
    prefix = f"{epoch}."
    return {k[len(prefix) :]: torch.from_numpy(a) for k, a in arrays.items() if k.startswith(prefix)}
