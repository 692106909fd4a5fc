"""Tests for nclib.grid: local pool = serial, resume after SIGKILL, a Dask cluster = local, caching and failures,
one Dask worker per GPU (on CPU: workers pinned to no GPU) and ``NCLIB_GPUS``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from nclib import grid
from nclib.config import load_profile
from nclib.stages import runs
from nclib.stages.transfer import run_transfer, transfer_runs
from nclib.train import train_linear


@dataclass(frozen=True)
class Run:
    seed: int
    lr: float
    strategy: str = "linear"


CONFIGS = [Run(seed, lr) for seed in (0, 1) for lr in (1e-2, 1e-3)]


def tiny_run(config: Run) -> dict:
    """A deterministic, cheap transfer run: train_linear on blobs drawn from the config's seed."""
    rng = np.random.default_rng(config.seed)
    means = rng.normal(size=(3, 5))
    y = np.arange(120) % 3
    x = (means[y] + rng.normal(size=(120, 5))).astype(np.float32)
    res = train_linear((x[:60], y[:60]), (x[60:90], y[60:90]), (x[90:], y[90:]), n_classes=3, epochs=3,
                       lr=config.lr, batch_size=16, seed=config.seed, device="cpu")
    return {"train_loss": res["history"]["train_loss"], "val": res["history"]["val_metric"],
            "best_epoch": res["best_epoch"], "test": res["test_metric"], "mean": np.float64(x.mean()), "n": np.int64(3)}


def explode(config):
    raise AssertionError(f"{config} should have come from the cache")


def fail_odd(config: dict) -> dict:
    if config["i"] % 2:
        raise ZeroDivisionError("odd")
    return {"i": config["i"]}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread; two intra-op threads crawl on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def serial() -> list[dict]:
    """The reference: the runs called one after the other in this process, as JSON."""
    return [json.loads(json.dumps(tiny_run(c), default=lambda v: v.item())) for c in CONFIGS]


def test_keys_are_canonical():
    assert grid.key(Run(0, 0.1)) == grid.key({"lr": 0.1, "strategy": "linear", "seed": 0})
    assert grid.key(Run(0, 0.1)) != grid.key(Run(0, 0.2))
    assert len({grid.key(c) for c in CONFIGS}) == len(CONFIGS)
    with pytest.raises(ValueError, match="not plain data"):
        grid.key({"model": object()})
    with pytest.raises(ValueError, match="dataclass or a mapping"):
        grid.key([1, 2])


def test_local_pool_equals_serial_and_reruns_come_from_the_cache(tmp_path, serial):
    got = grid.run(CONFIGS + CONFIGS[:1], tiny_run, tmp_path)  # a duplicate config runs once
    assert got == serial + serial[:1]
    files = sorted(p.name for p in tmp_path.glob("*.json"))
    assert files == sorted(f"{grid.key(c)}.json" for c in CONFIGS)
    stored = json.loads((tmp_path / files[0]).read_text())
    assert set(stored) == {"config", "result"}
    assert grid.run(CONFIGS, explode, tmp_path, executor=ThreadPoolExecutor(1)) == serial


def test_failures_are_reported_after_the_rest_is_saved(tmp_path):
    configs = [{"i": i} for i in range(4)]
    with ThreadPoolExecutor(2) as pool, pytest.raises(RuntimeError, match="2 of 4 runs failed") as info:
        grid.run(configs, fail_odd, tmp_path, executor=pool)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert len(list(tmp_path.glob("*.json"))) == 2
    with ThreadPoolExecutor(2) as pool:  # a corrupt result file is recomputed, not trusted
        (tmp_path / f"{grid.key(configs[0])}.json").write_text('{"config": {"i": 0}, "resu')
        with pytest.warns(UserWarning, match="unreadable"):
            assert grid.run(configs[::2], fail_odd, tmp_path, executor=pool) == [{"i": 0}, {"i": 2}]


def nan_result(config: dict) -> dict:
    return {"loss": float("nan")}


def test_a_nan_result_is_a_failed_run(tmp_path):
    with ThreadPoolExecutor(1) as pool, pytest.raises(RuntimeError, match="1 of 1 runs failed") as info:
        grid.run([{"i": 0}], nan_result, tmp_path, executor=pool)
    assert isinstance(info.value.__cause__, ValueError)
    assert os.listdir(tmp_path) == []


def test_corrupt_result_files_are_recomputed_with_a_warning(tmp_path, serial):
    with ThreadPoolExecutor(1) as pool:
        grid.run(CONFIGS, tiny_run, tmp_path, executor=pool)
    paths = [tmp_path / f"{grid.key(c)}.json" for c in CONFIGS]
    good = [p.read_bytes() for p in paths]
    paths[0].write_bytes(good[0][: len(good[0]) // 2])  # truncated
    flipped = bytearray(good[1])
    flipped[flipped.index(b'"result"') + 20] ^= 0xFF  # a byte of the result: no longer UTF-8
    paths[1].write_bytes(bytes(flipped))
    seed = good[2].index(b'"seed": 1')  # CONFIGS[2] has seed 1: 1 (0x31) -> 9 (0x39), still valid JSON
    paths[2].write_bytes(good[2][: seed + 8] + b"9" + good[2][seed + 9 :])
    calls = []

    def counted(config):
        calls.append(config)
        return tiny_run(config)

    with ThreadPoolExecutor(1) as pool, pytest.warns(UserWarning) as warned:
        assert grid.run(CONFIGS, counted, tmp_path, executor=pool) == serial
    messages = [str(w.message) for w in warned if "cache file" in str(w.message)]
    assert len(messages) == 3 and all("recomputing" in m for m in messages)
    for path, m in zip(paths[:3], messages, strict=True):
        assert str(path) in m
    assert "JSONDecodeError" in messages[0] and "UnicodeDecodeError" in messages[1]
    assert "not the result of this key's config" in messages[2]
    assert sorted(calls, key=CONFIGS.index) == CONFIGS[:3]
    assert [p.read_bytes() for p in paths] == good  # rewritten whole


def test_an_unwritable_cache_stops_the_grid_with_the_files_name(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    with ThreadPoolExecutor(1) as pool, pytest.raises(OSError) as info:
        grid.run([{"i": 0}, {"i": 2}], fail_odd, blocker, executor=pool)
    message = str(info.value)
    assert "cannot write " + str(blocker) in message and "set NCLIB_CACHE to a writable folder" in message
    assert blocker.read_text() == "a file where the cache folder should be"


SCRIPT = textwrap.dedent(
    """
    import sys, time
    from nclib import grid

    def slow(config):
        time.sleep(config["sleep"])
        with open(config["log"], "a") as f:
            f.write(f"{config['i']}\\n")
        return {"square": config["i"] ** 2}

    if __name__ == "__main__":
        configs = [{"i": i, "sleep": 0.25, "log": sys.argv[2]} for i in range(12)]
        print(grid.run(configs, slow, sys.argv[1]) == [{"square": i ** 2} for i in range(12)])
    """
)


def test_killed_grid_resumes_without_recomputing(tmp_path):
    script, cache_dir, log = tmp_path / "grid_script.py", tmp_path / "cache", tmp_path / "log.txt"
    script.write_text(SCRIPT)
    cmd = [sys.executable, str(script), str(cache_dir), str(log)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 600  # waits for progress, not for a time: only a hung grid hits this
    while len(list(cache_dir.glob("*.json"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the grid and its worker processes, mid-run
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "stderr.txt").read_text()[-2000:]
    done = {p.name for p in cache_dir.glob("*.json")}
    computed_before = log.read_text().split()
    assert 3 <= len(done) < 12
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0 and rerun.stdout.strip() == "True", rerun.stderr[-2000:]
    computed_again = log.read_text().split()[len(computed_before) :]
    keys = {i: f"{grid.key({'i': i, 'sleep': 0.25, 'log': str(log)})}.json" for i in range(12)}
    assert sorted(map(int, computed_again)) == sorted(i for i in range(12) if keys[i] not in done)
    assert {p.name for p in cache_dir.glob("*.json")} == set(keys.values())


def test_dask_cluster_equals_local(tmp_path, serial):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                                 host="127.0.0.1", dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        assert grid.run(CONFIGS, tiny_run, tmp_path, executor=client.get_executor()) == serial


def worker_view(config: dict) -> dict:
    """What a grid worker sees: its CUDA_VISIBLE_DEVICES and its torch threads."""
    return {"visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "threads": torch.get_num_threads()}


def untimed(result: dict) -> dict:
    """A transfer run's result without its wall times, the only fields that differ between two identical runs."""
    history = {k: v for k, v in result["history"].items() if k != "wall_time_s"}
    return {k: v for k, v in result.items() if k != "wall_time_s"} | {"history": history}


def test_gpu_devices_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert grid.gpu_devices(2) == ["0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3, 5,6,7")
    assert grid.gpu_devices(3) == ["3", "5", "6"]
    for n in (0, 5):
        with pytest.raises(ValueError, match=f"asked for {n} GPUs, but this process sees 4 \\(CUDA_VISIBLE_DEVICES="):
            grid.gpu_devices(n)
    with pytest.raises(ValueError, match="devices is empty"):
        grid.gpu_cluster([])


def test_gpu_cluster_is_dask_cudas_where_it_imports(monkeypatch):
    """With dask_cuda importable, GPU ids go to its LocalCUDACluster (one single-threaded worker per GPU)."""
    pytest.importorskip("distributed")
    made = []
    fake = types.ModuleType("dask_cuda")
    fake.LocalCUDACluster = lambda **kwargs: made.append(kwargs) or "cluster"
    monkeypatch.setitem(sys.modules, "dask_cuda", fake)
    assert grid.gpu_cluster(("2", "3")) == "cluster"
    assert made == [{"CUDA_VISIBLE_DEVICES": ["2", "3"], "threads_per_worker": 1}]


def test_bad_nclib_gpus_stops_the_grid_before_any_run(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    for value, message in (("two", "NCLIB_GPUS must be a number of GPUs, e.g. 4, got 'two'"),
                           ("1", "asked for 1 GPUs, but this process sees 0: ask for 1 to 0, or unset NCLIB_GPUS")):
        monkeypatch.setenv("NCLIB_GPUS", value)
        with pytest.raises(ValueError, match=message):
            grid.run([{"i": 0}], fail_odd, tmp_path)
    monkeypatch.setenv("NCLIB_GPUS", "2")
    with pytest.raises(ValueError, match="NCLIB_GPUS=2 sizes the default pool .* leave max_workers out"):
        grid.run([{"i": 0}], fail_odd, tmp_path, max_workers=2)
    assert os.listdir(tmp_path) == []


def test_nclib_gpus_runs_the_default_pool_one_worker_per_gpu(monkeypatch, tmp_path):
    pytest.importorskip("distributed")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # workers pinned to GPUs "0", "1": CPU runs ignore them
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("NCLIB_GPUS", "2")
    got = grid.run([{"i": i} for i in range(4)], worker_view, tmp_path)
    assert len(got) == 4 and all(g["visible"] in ("0", "1") and g["threads"] == 1 for g in got)
    assert len(list(tmp_path.glob("*.json"))) == 4


def test_gpu_cluster_of_two_cpu_workers_equals_one_local_process(tmp_path):
    """Real transfer runs (both strategies, two seeds) on two workers pinned to no GPU give exactly the results of
    the same runs in this process."""
    distributed = pytest.importorskip("distributed")
    profile = load_profile(
        "mini", cache_dir=str(tmp_path / "cache"),
        image={"split": {"train": 7, "val": 3, "test": 3}, "zoo": ["digits_cnn"], "input_size": 32},
        train={"epochs": 2, "finetune_epochs": 2, "seeds": [0, 1], "finetune_train": 3, "patience": None},
    )  # fmt: skip
    with ThreadPoolExecutor(1) as here:  # also caches what the runs read: the network and its embeddings
        local = transfer_runs(profile, "image", "linear", here) + transfer_runs(profile, "image", "finetune", here)
    configs = [config for config, _ in local]
    with grid.gpu_cluster(["", ""]) as cluster, distributed.Client(cluster) as client:
        views = client.run(worker_view, {})
        assert sorted(views.values(), key=str) == [{"visible": "", "threads": 1}] * 2
        got = grid.run(configs, runs.runner(run_transfer, profile), tmp_path / "dask", executor=client.get_executor())
    assert [untimed(g) for g in got] == [untimed(res) for _, res in local]
    assert {g["device"] for g in got} == {"cpu"} and len({json.dumps(untimed(g)) for g in got}) == len(configs)
