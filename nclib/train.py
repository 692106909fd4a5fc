"""Transfer learning as in "Pitfalls in Measuring Neural Transferability" (Sections 2.2, 4.2, 4.3).

The source head is dropped and a new linear layer is trained on the target task, in one of two strategies:
``linear`` (pre-trained layers frozen) or ``finetune`` (all layers trained). Protocol of the paper: Adam,
learning rate 1e-4, batch size 32, cross-entropy, 250 epochs, the checkpoint with the best validation metric,
the test metric at that checkpoint; accuracy for images, AUROC for the binary audio task. The new layer's
initialisation depends only on (seed, in_features, n_classes), so it is the same for every model within a seed.

    res = train_linear((x_tr, y_tr), (x_va, y_va), (x_te, y_te), n_classes=10, epochs=15, seed=0)
    res = transfer(replace_head(model, 10, seed=0), (imgs_tr, y_tr), (imgs_va, y_va), (imgs_te, y_te),
                   strategy="finetune", n_classes=10, epochs=15, seed=0, transform=to_input, save_embeddings_at={1, -1})
    res["test_metric"], res["best_epoch"], pd.DataFrame(res["history"])

``linear`` on frozen features is the same optimisation whether the frozen network runs in the loop
(``transfer(strategy="linear")``) or its embeddings were cached first (``train_linear``): same head
initialisation, same batches in the same order, no augmentation. ``train_linear`` is much faster.

Model contract for :func:`transfer` (set by ``nclib.models``): ``model(x)`` returns logits, and ``model.head_name``
names its last ``nn.Linear`` layer, whose input is the penultimate embedding. :func:`transfer` trains the head the
model has: the caller draws it, once, with :func:`new_head` (:func:`replace_head` installs it); after
training, the model holds the best checkpoint.

Every run returns a JSON-ready dict: ``config``, ``device``, ``history`` (per epoch: ``epoch``, ``train_loss``,
the mean cross-entropy over the epoch's batches, ``val_metric``, ``wall_time_s`` of the epoch), ``best_epoch``,
``val_metric`` and ``test_metric`` at that epoch (``None`` without a test split), and, when asked, ``embeddings``
(numpy arrays: save them with ``nclib.cache.save_arrays`` and drop them from what a grid caches as JSON).
Randomness is seeded (shuffling, head, dropout) without touching the caller's global RNG state: the same call
twice on CPU gives identical histories.

A long run resumes within itself: with ``resume_file``, :func:`transfer` writes, atomically after every epoch, all a
run needs to go on (the trained state, the optimizer's, every RNG state, history, best checkpoint, what was saved
at earlier epochs); killed, the same call resumes after the last finished epoch and ends with exactly the numbers
of an uninterrupted run (``wall_time_s`` aside); finished, it removes the file. A file of another run (other
settings, data sizes or starting weights) is ignored with a warning, as is a corrupt one: the run starts from
epoch 0 and replaces it. The file's name must be the run's own (the stages name it by the run's cache key).
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import time
import warnings
from collections.abc import Callable, Collection, Iterator, Sized
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from nclib import cache

Split = tuple[Any, Any] | Dataset  # (inputs, integer labels) as arrays / tensors, or a Dataset of (input, label)
Metric = Literal["accuracy", "auroc"]
Strategy = Literal["linear", "finetune"]


def new_head(in_features: int, n_classes: int, seed: int) -> nn.Linear:
    """The new classification layer: ``nn.Linear(in_features, n_classes)`` with PyTorch's default distribution
    (weight and bias ~ U(-1/sqrt(in_features), 1/sqrt(in_features))) drawn from ``torch.Generator`` seeded with
    ``seed``: the same layer for every model with the same embedding size, whatever the global RNG state."""
    g = torch.Generator().manual_seed(seed)
    head = nn.utils.skip_init(nn.Linear, in_features, n_classes)  # leaves the global RNG alone
    bound = 1 / math.sqrt(in_features)
    with torch.no_grad():
        head.weight.uniform_(-bound, bound, generator=g)
        head.bias.uniform_(-bound, bound, generator=g)
    return head


def embedding_dim(model: nn.Module) -> int:
    """Dimension D of the embedding at ``model.penultimate``, found by one forward pass of a 64 x 64 zero input."""
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    parameter = next(model.parameters())
    x = torch.zeros(1, first_conv.in_channels, 64, 64, device=parameter.device, dtype=parameter.dtype)
    out: list[torch.Tensor] = []
    layer = model.get_submodule(_module_name(model, "penultimate"))
    handle = layer.register_forward_hook(lambda _m, _i, o: out.append(o))
    was_training = model.training
    try:
        with torch.inference_mode():
            model.eval()(x)
    finally:
        handle.remove()
        model.train(was_training)
    shape = out[0].shape
    return int(shape[1] if len(shape) in (2, 4) else shape[-1])  # B x D, B x D x H x W, or B x T x D


def replace_head(model: nn.Module, n_classes: int, seed: int) -> nn.Module:
    """Swap ``model.head_name`` for :func:`new_head` ``(D, n_classes, seed)`` on the penultimate embedding
    (in place): the one place a network gets its new classification layer.

    D is the old head's ``in_features`` where it is an ``nn.Linear``, else :func:`embedding_dim` (a truncated network
    has no head). The layer depends only on (seed, D, n_classes), so every candidate with the same D starts from the
    same layer, as in the paper's protocol. Sets ``model.has_source_head = False``.
    """
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    name = _module_name(model, "head_name")
    old = model.get_submodule(name)
    d = old.in_features if isinstance(old, nn.Linear) else embedding_dim(model)
    parameter = next(model.parameters())
    parent, _, child = name.rpartition(".")
    head = new_head(d, n_classes, seed).to(device=parameter.device, dtype=parameter.dtype)
    setattr(model.get_submodule(parent), child, head)
    model.has_source_head = False  # type: ignore[assignment]  # torch types Module attributes as Tensor | Module
    return model


def _module_name(model: nn.Module, attr: str) -> str:
    """``model.<attr>`` (``penultimate`` or ``head_name``): the name of one of its modules."""
    name = getattr(model, attr)
    if not isinstance(name, str):
        raise TypeError(f"{type(model).__name__}.{attr} must be a module name, got {type(name).__name__}")
    return name


def train_linear(
    train: Split,
    val: Split,
    test: Split | None = None,
    *,
    n_classes: int,
    epochs: int,
    lr: float = 1e-4,
    batch_size: int = 32,
    seed: int = 0,
    patience: int | None = None,
    metric: Metric = "accuracy",
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """``linear`` strategy on cached embeddings: train ``new_head(D, n_classes, seed)`` on N x D features.

    ``train`` / ``val`` / ``test``: (N x D embeddings, N labels in 0..n_classes-1). See the module docstring
    for the protocol and the returned dict.
    """
    shape = np.shape(train[0])
    if len(shape) != 2:
        raise ValueError(f"train_linear needs N x D embeddings, got shape {tuple(shape)}")
    head = new_head(int(shape[1]), n_classes, seed)
    return _fit(
        head, head, train, val, test, strategy="linear", n_classes=n_classes, epochs=epochs, lr=lr,
        batch_size=batch_size, seed=seed, patience=patience, metric=metric, device=device,
    )


def transfer(
    model: nn.Module,
    train: Split,
    val: Split,
    test: Split | None = None,
    *,
    strategy: Strategy,
    n_classes: int,
    epochs: int,
    lr: float = 1e-4,
    batch_size: int = 32,
    seed: int = 0,
    patience: int | None = None,
    metric: Metric = "accuracy",
    device: str | torch.device | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    save_embeddings_at: Collection[int] = (),
    save_states_at: Collection[int] = (),
    num_workers: int = 0,
    resume_file: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Train ``model`` and its classification layer ``model.head_name`` (an ``nn.Linear`` with ``n_classes`` outputs,
    e.g. drawn by :func:`replace_head`), the network frozen (``strategy="linear"``, run in eval mode) or not
    (``"finetune"``). ``seed`` decides shuffling and dropout.

    ``transform`` is applied to every input batch on ``device`` (e.g. ``nclib.data.images.to_model_input``);
    ``num_workers`` are DataLoader workers for Dataset splits. ``save_embeddings_at``: epochs (0 = before training,
    -1 = the last epoch run) at which to record, on the training split in eval mode, the head's input
    (``features``, N x D), the head's ``predictions``, its ``weights`` (C x D) and the ``labels``, returned as
    ``result["embeddings"][epoch]`` -- the arguments of ``nclib.collapse.diagnostics`` (Figure 1).
    ``save_states_at``: epochs (1..epochs) after which to keep the whole model's state dict (CPU tensors) and its
    test metric, as ``result["checkpoints"][epoch] = {"state": ..., "test_metric": ...}`` (the checkpoints of a
    pre-training run; the model itself ends at the best epoch, as always). ``resume_file``: where the run keeps its
    progress after every epoch, to resume from after a kill (see the module docstring); ``None``: it keeps none.
    """
    name = getattr(model, "head_name", None)
    if not isinstance(name, str):
        raise ValueError(f"{type(model).__name__} has no `head_name` attribute naming its classification layer")
    head = model.get_submodule(name)
    if not isinstance(head, nn.Linear) or head.out_features != n_classes:
        raise ValueError(f"model.{name} must be an nn.Linear with {n_classes} outputs (draw it with "
                         f"nclib.train.replace_head), got {head}")
    return _fit(
        model, head, train, val, test, strategy=strategy, n_classes=n_classes, epochs=epochs, lr=lr,
        batch_size=batch_size, seed=seed, patience=patience, metric=metric, device=device, transform=transform,
        save_embeddings_at=save_embeddings_at, save_states_at=save_states_at, num_workers=num_workers,
        resume_file=resume_file,
    )


class _Data:
    """A split as batches on the device: in-memory tensors indexed directly, or a Dataset through a DataLoader."""

    def __init__(self, split: Split, n_classes: int, device: torch.device, num_workers: int, name: str) -> None:
        self.device, self.num_workers = device, num_workers
        self.dataset: Dataset | None = None
        if isinstance(split, Dataset):
            if not isinstance(split, Sized):
                raise TypeError(f"{name} Dataset must have a length (__len__)")
            self.dataset, self.n = split, len(split)
        else:
            if not (isinstance(split, tuple | list) and len(split) == 2):
                raise ValueError(f"{name} must be (inputs, labels) or a torch Dataset")
            x, y = (torch.as_tensor(np.asarray(a)) if not isinstance(a, torch.Tensor) else a for a in split)
            if y.ndim != 1 or y.is_floating_point() or len(y) != len(x):
                raise ValueError(f"{name} labels must be 1-D integers, one per input; got shape {tuple(y.shape)}")
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
                raise ValueError(f"{name} labels must lie in 0..{n_classes - 1} (n_classes={n_classes})")
            self.x = (x.float() if x.dtype == torch.float64 else x).to(device)
            self.y = y.long().to(device)
            self.n = len(y)
        if self.n == 0:
            raise ValueError(f"{name} split is empty")

    def batches(self, order: torch.Tensor, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.dataset is None:
            for idx in order.to(self.device).split(batch_size):
                yield self.x[idx], self.y[idx]
            return
        loader = DataLoader(
            self.dataset, batch_sampler=[b.tolist() for b in order.split(batch_size)],
            num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(0),  # keeps the loader off the global RNG (dropout draws)
        )
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), torch.as_tensor(y).long().to(self.device, non_blocking=True)


def _metric(name: Metric, logits: torch.Tensor, y: torch.Tensor) -> float:
    if name == "accuracy":
        return float((logits.argmax(dim=1) == y).double().mean())
    y_np = y.cpu().numpy()
    if len(np.unique(y_np)) < 2:
        raise ValueError("auroc needs both classes in every evaluated split")
    return float(roc_auc_score(y_np, logits.float().softmax(dim=1)[:, 1].cpu().numpy()))


def _fit(
    model: nn.Module,
    head: nn.Linear,
    train: Split,
    val: Split,
    test: Split | None,
    *,
    strategy: Strategy,
    n_classes: int,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    patience: int | None,
    metric: Metric,
    device: str | torch.device | None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    save_embeddings_at: Collection[int] = (),
    save_states_at: Collection[int] = (),
    num_workers: int = 0,
    resume_file: str | os.PathLike | None = None,
) -> dict[str, Any]:
    if strategy not in ("linear", "finetune"):
        raise ValueError(f"strategy must be 'linear' or 'finetune', got {strategy!r}")
    if metric not in ("accuracy", "auroc"):
        raise ValueError(f"metric must be 'accuracy' or 'auroc', got {metric!r}")
    if metric == "auroc" and n_classes != 2:
        raise ValueError(f"metric 'auroc' is for binary tasks; n_classes is {n_classes}")
    if epochs < 1 or batch_size < 1 or not lr > 0 or (patience is not None and patience < 1):
        raise ValueError(f"need epochs >= 1, batch_size >= 1, lr > 0, patience None or >= 1; got {epochs}, "
                         f"{batch_size}, {lr}, {patience}")
    save_at = set(save_embeddings_at)
    if not save_at <= {-1, *range(epochs + 1)}:
        raise ValueError(f"save_embeddings_at must hold epochs in 0..{epochs} or -1 (the last), got {sorted(save_at)}")
    keep_at = set(save_states_at)
    if not keep_at <= set(range(1, epochs + 1)) or (keep_at and test is None):
        raise ValueError(f"save_states_at must hold epochs in 1..{epochs} and needs a test split, got "
                         f"{sorted(keep_at)}")
    device = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    config = {"strategy": strategy, "n_classes": n_classes, "epochs": epochs, "lr": lr, "batch_size": batch_size,
              "seed": seed, "patience": patience, "metric": metric}
    data = {k: _Data(s, n_classes, device, num_workers, k) for k, s in (("train", train), ("val", val), ("test", test))
            if s is not None}
    model.to(device)
    trained = head if strategy == "linear" else model  # the part whose state the best checkpoint keeps
    trainable = [p for p in trained.parameters() if p.requires_grad]
    trainable_ids = {id(p) for p in trainable}
    frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in trainable_ids]
    autocast = device.type == "cuda"
    channels_last = False

    def forward(x: torch.Tensor) -> torch.Tensor:
        nonlocal channels_last
        x = transform(x) if transform is not None else x
        if x.ndim == 4:  # images or spectrograms: channels-last is 2-5x faster for convolutions on CPU
            if not channels_last:
                model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # missing from torch's overloads
                channels_last = True
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            return model(x)

    def predict(split: _Data, embeddings: bool = False) -> dict[str, torch.Tensor]:
        model.eval()
        feats: list[torch.Tensor] = []
        hook = head.register_forward_pre_hook(lambda _m, args: feats.append(args[0].float().cpu())) if embeddings \
            else None
        logits, labels = [], []
        try:
            with torch.no_grad():
                for x, y in split.batches(torch.arange(split.n), max(batch_size, 256)):
                    logits.append(forward(x).float().cpu())
                    labels.append(y.cpu())
        finally:
            if hook is not None:
                hook.remove()
        out = {"logits": torch.cat(logits), "labels": torch.cat(labels)}
        if embeddings:
            out["features"] = torch.cat(feats)
        return out

    def snapshot(epoch: int) -> None:
        p = predict(data["train"], embeddings=True)
        embeddings[epoch] = {"features": p["features"].numpy(), "labels": p["labels"].numpy(),
                             "predictions": p["logits"].argmax(dim=1).numpy(),
                             "weights": head.weight.detach().float().cpu().numpy().copy()}

    history: dict[str, list] = {"epoch": [], "train_loss": [], "val_metric": [], "wall_time_s": []}
    embeddings: dict[int, dict[str, np.ndarray]] = {}
    checkpoints: dict[int, dict[str, Any]] = {}
    best_metric, best_epoch, epoch = -math.inf, 0, 0
    best_state: dict[str, Any] | None = None
    shuffle = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(trainable, lr=lr)
    resume = Path(resume_file) if resume_file is not None else None
    run = {**config, "device": str(device), "save_embeddings_at": sorted(save_at), "save_states_at": sorted(keep_at),
           "sizes": {k: d.n for k, d in data.items()}, "start": _state_digest(model)} if resume is not None else {}
    saved = _saved_progress(resume, run) if resume is not None else None

    def save_progress(path: Path) -> None:
        """Everything the loop carries from one epoch to the next, to ``path``."""
        rng = {"shuffle": shuffle.get_state(), "torch": torch.get_rng_state()}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(device)
        cache.save_torch(path, {
            "run": run, "epoch": epoch, "trained": trained.state_dict(), "optimizer": optimizer.state_dict(),
            "rng": rng, "history": history, "best_metric": best_metric, "best_epoch": best_epoch,
            "best_state": best_state, "checkpoints": checkpoints,
            "embeddings": {e: {k: torch.from_numpy(a) for k, a in s.items()} for e, s in embeddings.items()},
        })  # fmt: skip

    for p in frozen:
        p.requires_grad_(False)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)  # dropout and any other randomness inside the model
            if saved is not None:  # go on after the last finished epoch
                trained.load_state_dict(saved["trained"])
                optimizer.load_state_dict(saved["optimizer"])
                shuffle.set_state(saved["rng"]["shuffle"])
                torch.set_rng_state(saved["rng"]["torch"])
                if device.type == "cuda":
                    torch.cuda.set_rng_state(saved["rng"]["cuda"], device)
                epoch, history, best_metric, best_epoch, best_state, checkpoints = (
                    saved[k] for k in ("epoch", "history", "best_metric", "best_epoch", "best_state", "checkpoints"))
                embeddings = {e: {k: t.numpy() for k, t in s.items()} for e, s in saved["embeddings"].items()}
            elif 0 in save_at:
                snapshot(0)
            bar = tqdm(total=epochs, initial=epoch, desc=f"{strategy} seed={seed}", leave=False)
            while epoch < epochs and not (patience is not None and epoch - best_epoch >= patience):
                epoch += 1
                start = time.perf_counter()
                model.train(strategy == "finetune")
                total = torch.zeros((), device=device)
                for x, y in data["train"].batches(torch.randperm(data["train"].n, generator=shuffle), batch_size):
                    loss = F.cross_entropy(forward(x).float(), y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += loss.detach() * len(y)
                pred = predict(data["val"])
                val_metric = _metric(metric, pred["logits"], pred["labels"])
                history["epoch"].append(epoch)
                history["train_loss"].append(float(total) / data["train"].n)
                history["val_metric"].append(val_metric)
                history["wall_time_s"].append(time.perf_counter() - start)
                bar.set_postfix(loss=f"{history['train_loss'][-1]:.4f}", val=f"{val_metric:.4f}")
                if val_metric > best_metric:
                    best_metric, best_epoch, best_state = val_metric, epoch, copy.deepcopy(trained.state_dict())
                if epoch in save_at:
                    snapshot(epoch)
                if epoch in keep_at:
                    pred = predict(data["test"])
                    checkpoints[epoch] = {"state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                                          "test_metric": _metric(metric, pred["logits"], pred["labels"])}
                bar.update()
                if resume is not None:
                    save_progress(resume)
            bar.close()
            if -1 in save_at and epoch not in embeddings:
                snapshot(epoch)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    assert best_state is not None  # the metric is finite, so epoch 1 beats -inf
    trained.load_state_dict(best_state)
    test_metric = None
    if "test" in data:
        pred = predict(data["test"])
        test_metric = _metric(metric, pred["logits"], pred["labels"])
    result: dict[str, Any] = {"config": config, "device": str(device), "history": history, "best_epoch": best_epoch,
                              "val_metric": best_metric, "test_metric": test_metric}
    if save_at:
        result["embeddings"] = embeddings
    if keep_at:
        result["checkpoints"] = checkpoints
    if resume is not None:
        resume.unlink(missing_ok=True)  # finished: what is left to keep is the result, which the caller caches
    return result


def _state_digest(module: nn.Module) -> str:
    """sha256 of ``module``'s state dict: names, dtypes, shapes and values, whatever their device or memory format."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.detach().cpu().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _saved_progress(path: Path, run: dict[str, Any]) -> dict[str, Any] | None:
    """The progress in ``path`` if the run ``run`` describes saved it; ``None`` if there is none, or (with a warning)
    if the file is corrupt or holds another run's progress: that run then starts from epoch 0 and replaces it."""
    saved = cache.load_torch(path)
    if saved is None:
        return None
    stored = saved.get("run") if isinstance(saved, dict) else None
    if stored != run:
        differ = sorted(k for k in {*run, *stored} if stored.get(k) != run.get(k)) if isinstance(stored, dict) else []
        what = f"another run's (it differs in {', '.join(differ)})" if differ else "not a training run's"
        warnings.warn(f"ignoring the progress file {path}: it is {what}; this run starts from epoch 0 and replaces it",
                      stacklevel=4)
        return None
    return saved
