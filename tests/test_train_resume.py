"""Resume within a run: ``transfer(..., resume_file=...)`` SIGKILLed mid-run and called again ends with exactly the
numbers of an uninterrupted run (``wall_time_s`` aside), having trained only the epochs the kill lost.

Every run is a child process forked from a server that has imported torch and nclib (multiprocessing's forkserver),
on one thread, so killed, resumed and uninterrupted runs share one process setup. A kill lands once the progress
file shows epoch k (polled, never timed); a gate in the child holds it in epoch k + 1 (or inside a write, or just
before the file is removed), so that the kill cannot land later whatever the machine's load.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nclib import cache
from nclib.train import replace_head, transfer

EPOCHS, BATCH, N_TRAIN, KILL_AT = 8, 16, 96, 3
STEPS = N_TRAIN // BATCH  # training batches per epoch
RUNS = {  # name -> transfer's settings
    "finetune": {"strategy": "finetune", "lr": 3e-3, "seed": 3, "save_embeddings_at": {0, 2, -1},
                 "save_states_at": {2, 5}},
    "linear": {"strategy": "linear", "lr": 0.05, "seed": 3},
    "patience": {"strategy": "linear", "lr": 0.3, "seed": 3, "patience": 2},  # stops before EPOCHS
}  # fmt: skip


class Net(nn.Module):
    """A tiny CNN with BatchNorm and dropout; ``fc`` its 5-class source head (the nclib.models contract)."""

    head_name = "fc"

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.body = nn.Sequential(
                nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Dropout(0.3),
                nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )  # fmt: skip
            self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """N x 1 x 8 x 8 random images: one of 3 class patterns plus noise; labels 0..2."""
    y = np.arange(n) % 3
    patterns = np.random.default_rng(99).normal(size=(3, 1, 8, 8))
    return (patterns[y] + 1.5 * np.random.default_rng(seed).normal(size=(n, 1, 8, 8))).astype(np.float32), y


def _job(spec: dict[str, Any], out: str) -> None:
    """One run in a child process: ``RUNS[spec["run"]]`` (with ``spec["change"]``), progress in ``spec["file"]``.

    ``spec["gate"]``: ("train", b) blocks the child in its b-th training batch, ("write", w) inside its w-th write of
    the progress file (the temp file half written, not yet renamed), ("unlink", 1) just before the finished run
    removes the file; it touches ``spec["blocked"]`` when it blocks. Saves to ``out``: the result, the model's
    state dict, how many training batches this process ran and the warnings it raised.
    """
    torch.set_num_threads(1)
    kind, at = spec.get("gate") or (None, 0)
    batches = 0

    def block() -> None:
        Path(spec["blocked"]).touch()
        signal.pause()  # until the parent's SIGKILL

    def count(x: torch.Tensor) -> torch.Tensor:  # the transform of every input batch: counts the training ones
        nonlocal batches
        if torch.is_grad_enabled():
            batches += 1
            if kind == "train" and batches == at:
                block()
        return x

    if kind == "write":  # this child only: os.replace is the rename that ends every atomic write
        real_replace, writes = os.replace, 0

        def replace(src: str, dst: str) -> None:
            nonlocal writes
            writes += str(dst) == spec["file"]
            if str(dst) == spec["file"] and writes == at:
                os.truncate(src, os.path.getsize(src) // 2)
                block()
            real_replace(src, dst)

        os.replace = replace  # type: ignore[assignment]
    if kind == "unlink":
        real_unlink = Path.unlink

        def unlink(path: Path, missing_ok: bool = False) -> None:
            if str(path) == spec["file"]:
                block()
            real_unlink(path, missing_ok=missing_ok)

        Path.unlink = unlink  # type: ignore[method-assign]
    net = replace_head(Net(), 3, RUNS[spec["run"]]["seed"])
    settings = RUNS[spec["run"]] | spec.get("change", {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = transfer(net, _split(N_TRAIN, 1), _split(48, 2), _split(48, 3), n_classes=3, epochs=EPOCHS,
                       batch_size=BATCH, transform=count, resume_file=spec["file"], **settings)  # fmt: skip
    torch.save({"result": res, "state": net.state_dict(), "batches": batches,
                "warnings": [str(w.message) for w in caught]}, out)  # fmt: skip


@pytest.fixture(scope="module")
def ctx():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "torch._dynamo", "nclib.train", __name__])  # Adam imports torch._dynamo
    return context


class Runs:
    """Start, kill and finish :func:`_job` children; one progress file per test."""

    def __init__(self, ctx: Any, tmp: Path) -> None:
        self.ctx, self.tmp, self.n = ctx, tmp, 0
        self.file = tmp / "run.ckpt.pt"

    def _start(self, spec: dict[str, Any]) -> tuple[Any, Path]:
        self.n += 1
        out = self.tmp / f"out{self.n}.pt"
        spec = {"file": str(self.file), "blocked": str(self.tmp / f"blocked{self.n}"), **spec}
        process = self.ctx.Process(target=_job, args=(spec, str(out)))
        process.start()
        return process, Path(spec["blocked"])

    def finish(self, **spec: Any) -> dict[str, Any]:
        """Run to the end; the child's output. The progress file is gone after it, and no temp file is left."""
        process, _ = self._start(spec)
        process.join(timeout=120)
        assert process.exitcode == 0, f"the run failed (exit code {process.exitcode})"
        assert not self.file.exists() and sorted(p.name for p in self.tmp.glob(".*")) == []
        return torch.load(self.tmp / f"out{self.n}.pt", weights_only=False)

    def kill(self, when: Callable[[Path], bool], **spec: Any) -> None:
        """Start a run, SIGKILL it as soon as ``when(blocked marker)`` holds (polled)."""
        process, blocked = self._start(spec)
        deadline = time.monotonic() + 120
        while not when(blocked):
            assert process.is_alive(), f"the run ended (exit code {process.exitcode}) before the kill"
            assert time.monotonic() < deadline, "the run made no progress towards the kill"
            time.sleep(0.005)  # a polling interval, not a guess at how long the run takes
        process.kill()
        process.join()
        assert process.exitcode == -signal.SIGKILL

    def shows(self, epoch: int) -> Callable[[Path], bool]:
        """Whether the progress file holds epoch ``epoch``."""
        return lambda _blocked: (saved := cache.load_torch(self.file)) is not None and saved["epoch"] == epoch


@pytest.fixture(scope="module")
def reference(ctx, tmp_path_factory) -> Callable[..., dict[str, Any]]:
    """``reference(run, change)``: the uninterrupted run's output, computed once (with a progress file of its own)."""
    done: dict[str, dict[str, Any]] = {}

    def get(run: str, change: dict[str, Any] | None = None) -> dict[str, Any]:
        name = f"{run}{change or ''}"
        if name not in done:
            done[name] = Runs(ctx, tmp_path_factory.mktemp("reference")).finish(run=run, change=change or {})
            assert done[name]["batches"] == STEPS * len(done[name]["result"]["history"]["epoch"])
        return done[name]

    return get


@pytest.fixture
def runs(ctx, tmp_path):
    return Runs(ctx, tmp_path)


def _assert_same_run(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """Identical histories (but wall time), best epoch, metrics, final state, embeddings and kept states."""
    a, b = got["result"], expected["result"]
    for key in ("epoch", "train_loss", "val_metric"):
        assert a["history"][key] == b["history"][key], key
    assert (a["best_epoch"], a["val_metric"], a["test_metric"]) == (b["best_epoch"], b["val_metric"], b["test_metric"])
    assert got["state"].keys() == expected["state"].keys()
    assert all(torch.equal(got["state"][k], v) for k, v in expected["state"].items())
    assert a.get("embeddings", {}).keys() == b.get("embeddings", {}).keys()
    for epoch, arrays in b.get("embeddings", {}).items():
        assert all(np.array_equal(a["embeddings"][epoch][k], v) for k, v in arrays.items()), epoch
    assert a.get("checkpoints", {}).keys() == b.get("checkpoints", {}).keys()
    for epoch, kept in b.get("checkpoints", {}).items():
        assert a["checkpoints"][epoch]["test_metric"] == kept["test_metric"]
        assert all(torch.equal(a["checkpoints"][epoch]["state"][k], v) for k, v in kept["state"].items())


@pytest.mark.parametrize("run", ["finetune", "linear"])
def test_killed_run_resumes_to_the_uninterrupted_numbers(runs, reference, run):
    expected = reference(run)
    assert len(set(expected["result"]["history"]["val_metric"])) > 1  # a run that learns: the resume is visible
    runs.kill(runs.shows(KILL_AT), run=run, gate=("train", KILL_AT * STEPS + STEPS // 2))  # in epoch KILL_AT + 1
    assert cache.load_torch(runs.file)["epoch"] == KILL_AT
    got = runs.finish(run=run)
    assert got["batches"] == (EPOCHS - KILL_AT) * STEPS  # resumed: only the lost epochs were trained again
    assert got["warnings"] == []
    _assert_same_run(got, expected)
    if run == "linear":  # the frozen network is the one it started as
        start = Net().body.state_dict()
        assert all(torch.equal(got["state"][f"body.{k}"], v) for k, v in start.items())


def test_kill_while_writing_leaves_the_previous_progress(runs, reference):
    expected = reference("finetune")
    runs.kill(Path.exists, run="finetune", gate=("write", KILL_AT + 1))  # the write of epoch KILL_AT + 1
    temps = list(runs.tmp.glob(f".{runs.file.name}.*.tmp"))
    assert len(temps) == 1 and temps[0].stat().st_size > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the progress file is whole: read without a warning
        assert cache.load_torch(runs.file)["epoch"] == KILL_AT
    assert cache.remove_stale_temps(runs.tmp) == 1
    got = runs.finish(run="finetune")
    assert got["batches"] == (EPOCHS - KILL_AT) * STEPS and got["warnings"] == []
    _assert_same_run(got, expected)


def test_corrupt_progress_is_warned_about_and_the_run_restarts(runs, reference):
    expected = reference("finetune")
    runs.kill(runs.shows(KILL_AT), run="finetune", gate=("train", KILL_AT * STEPS + 1))
    data = bytearray(runs.file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle
    runs.file.write_bytes(bytes(data))
    got = runs.finish(run="finetune")
    assert got["batches"] == EPOCHS * STEPS  # from epoch 0
    assert len(got["warnings"]) == 1 and f"ignoring unreadable cache file {runs.file}" in got["warnings"][0]
    assert "checksum" in got["warnings"][0]
    _assert_same_run(got, expected)


def test_progress_of_another_run_is_not_used(runs, reference):
    expected = reference("finetune")
    other = reference("finetune", {"lr": 1e-3})
    assert other["result"]["history"]["train_loss"] != expected["result"]["history"]["train_loss"]
    runs.kill(runs.shows(KILL_AT), run="finetune", change={"lr": 1e-3}, gate=("train", KILL_AT * STEPS + 1))
    got = runs.finish(run="finetune")
    assert got["batches"] == EPOCHS * STEPS
    assert got["warnings"] == [f"ignoring the progress file {runs.file}: it is another run's (it differs in lr); "
                               "this run starts from epoch 0 and replaces it"]  # fmt: skip
    _assert_same_run(got, expected)


def test_run_killed_after_its_last_epoch_trains_no_more(runs, reference):
    """Killed after its early-stopping epoch was saved, a run ends without another epoch."""
    expected = reference("patience")
    history = expected["result"]["history"]
    assert len(history["epoch"]) == expected["result"]["best_epoch"] + 2 < EPOCHS  # it stopped early
    runs.kill(Path.exists, run="patience", gate=("unlink", 1))
    assert cache.load_torch(runs.file)["epoch"] == len(history["epoch"])
    got = runs.finish(run="patience")
    assert got["batches"] == 0
    _assert_same_run(got, expected)
