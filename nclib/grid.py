"""Resumable grids of runs: each run is a pure function of a plain-data config, cached as one JSON file.

    results = grid.run(configs, fn, cache_dir)                     # local process pool
    client = distributed.Client(cluster)                           # Dask: many machines, or Slurm (dask-jobqueue)
    results = grid.run(configs, fn, cache_dir, executor=client.get_executor())
    NCLIB_GPUS=4 python ...                                        # the default pool: one worker per GPU

With ``NCLIB_GPUS=k`` in the environment, a grid given no executor runs on :func:`gpu_cluster` of the first k GPUs
(:func:`gpu_devices`): one single-threaded worker process per GPU whose default CUDA device is that GPU, so a run
on device ``cuda`` uses its worker's GPU (give runs ``cuda``, not ``cuda:1``). This is how ``make book
PROFILE=paper DEVICE=cuda GPUS=4`` spreads the pre-training and transfer grids over four GPUs.

A config (frozen dataclass or dict of JSON-like values) is keyed by the sha256 of its canonical JSON; its result is
written atomically to ``cache_dir/<key>.json`` as soon as the run finishes (by this process, so workers need no
shared disk). Finished runs are never recomputed; a grid killed in the middle loses at most the runs in flight,
and a run that checkpoints every epoch (nclib's fine-tuning and pre-training) only its epoch in flight.
Use one ``cache_dir`` per ``fn``: the key covers the config, not the code.

``fn(config) -> dict`` must be importable by the workers (a module-level function, not one defined in a notebook)
and return JSON-like data (numpy scalars and arrays are converted; NaN is refused). What ``run`` returns is what
the files hold, so a fresh and a cached result are identical. A result file that is not valid JSON or does not
hold its config's run is recomputed, with a warning; one that cannot be written stops the grid with an ``OSError``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from nclib import cache


def _plain(value: Any) -> Any:
    """``value`` as JSON-like data: dataclasses and mappings -> dicts, sequences and arrays -> lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError(f"{type(value).__name__} is not plain data: use numbers, strings, lists, dicts, dataclasses")


def key(config: Any) -> str:
    """sha256 hex digest of the canonical JSON of ``config`` (a dataclass or a mapping)."""
    plain = _plain(config)
    if not isinstance(plain, dict):
        raise ValueError(f"a config must be a dataclass or a mapping, got {type(config).__name__}")
    return cache.key(**plain)


def gpu_devices(n: int) -> list[str]:
    """The ``CUDA_VISIBLE_DEVICES`` values of the first ``n`` GPUs this process sees, in the order of its own
    ``CUDA_VISIBLE_DEVICES`` where that is set (``"2,3"`` -> ``["2", "3"]``), else ``["0", ..., str(n - 1)]``."""
    import torch

    available = torch.cuda.device_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not 1 <= n <= available:
        seen = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        raise ValueError(f"asked for {n} GPUs, but this process sees {available}{seen}: ask for 1 to {available}, "
                         f"or unset NCLIB_GPUS to run the grid in local CPU processes")
    ids = [v.strip() for v in visible.split(",")] if visible else [str(i) for i in range(available)]
    return ids[:n]


def gpu_cluster(devices: Sequence[str]) -> Any:
    """A local Dask cluster of one single-threaded worker process per entry of ``devices`` (``CUDA_VISIBLE_DEVICES``
    values, e.g. :func:`gpu_devices`; ``""``: a worker without GPU), each worker's default CUDA device being its own.

    dask-cuda's ``LocalCUDACluster`` (which also pins each worker to the CPUs near its GPU) where ``dask_cuda``
    imports and every entry names a GPU; else a ``distributed.SpecCluster`` of Nannies that each set
    ``CUDA_VISIBLE_DEVICES`` to their one entry. Each worker may hold 1 / ``len(devices)`` of the host's memory::

        with grid.gpu_cluster(grid.gpu_devices(4)) as cluster, distributed.Client(cluster) as client:
            results = grid.run(configs, fn, cache_dir, executor=client.get_executor())
    """
    if not devices:
        raise ValueError("devices is empty: give one CUDA_VISIBLE_DEVICES value per worker, e.g. ['0', '1']")
    distributed = _distributed()
    try:
        dask_cuda: ModuleType | None = importlib.import_module("dask_cuda")
    except ImportError:
        dask_cuda = None
    if dask_cuda is not None and all(devices):
        return dask_cuda.LocalCUDACluster(CUDA_VISIBLE_DEVICES=list(devices), threads_per_worker=1)
    options = {"nthreads": 1, "memory_limit": 1 / len(devices), "host": "127.0.0.1"}
    workers = {i: {"cls": distributed.Nanny, "options": options | {"env": {"CUDA_VISIBLE_DEVICES": d}}}
               for i, d in enumerate(devices)}  # fmt: skip
    scheduler = {"cls": distributed.Scheduler, "options": {"host": "127.0.0.1"}}
    return distributed.SpecCluster(workers=workers, scheduler=scheduler, silence_logs=logging.WARNING)


def _distributed() -> ModuleType:
    try:
        import distributed
    except ImportError:
        raise ImportError("a Dask cluster needs distributed: pip install 'nclib[dask]'") from None
    return distributed


@contextlib.contextmanager
def default_pool(max_workers: int | None = None) -> Iterator[Executor]:
    """The pool of a grid given no executor: :func:`gpu_cluster` where ``$NCLIB_GPUS`` is set, else local processes
    (see :func:`run`). Give one to several grids (as :func:`nclib.pipeline.build` does) to start its workers once."""
    gpus = os.environ.get("NCLIB_GPUS", "")
    if gpus:
        if not gpus.isdigit():
            raise ValueError(f"NCLIB_GPUS must be a number of GPUs, e.g. 4, got {gpus!r}")
        if max_workers is not None:
            raise ValueError(f"NCLIB_GPUS={gpus} sizes the default pool (one worker per GPU): leave max_workers out")
        with gpu_cluster(gpu_devices(int(gpus))) as cluster, _distributed().Client(cluster) as client:
            yield client.get_executor()
        return
    cpus = os.cpu_count() or 1
    workers = max_workers or min(2, cpus)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=(max(1, cpus // workers),))  # fmt: skip
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _init_worker(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by torch when a run first imports it
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def run(
    configs: Iterable[Any],
    fn: Callable[[Any], Mapping[str, Any]],
    cache_dir: str | os.PathLike,
    executor: Executor | None = None,
    max_workers: int | None = None,
) -> list[Any]:
    """``[fn(c) for c in configs]``, computing only the configs without a result file in ``cache_dir``.

    ``executor``: any ``concurrent.futures.Executor``; by default a local pool of ``max_workers`` processes
    (default ``min(2, cpu count)``, started with ``spawn``, each with cpu count / workers torch threads), or one
    worker per GPU where ``$NCLIB_GPUS`` is set (see the module docstring). Runs that raise are reported together
    in one ``RuntimeError`` after the others have finished and been saved.
    """
    if executor is not None and max_workers is not None:
        raise ValueError("max_workers sizes the default process pool; size your own executor yourself")
    cache_dir = Path(cache_dir)
    configs = list(configs)
    keys = [key(c) for c in configs]
    results: dict[str, Any] = {}
    todo: dict[str, Any] = {}
    for k, c in zip(keys, configs, strict=True):
        if k in results or k in todo:
            continue
        path = cache_dir / f"{k}.json"
        stored = cache.load_json(path)
        if isinstance(stored, dict) and "result" in stored and stored.get("config") == _plain(c):
            results[k] = stored["result"]
        else:
            if stored is not None:
                warnings.warn(f"ignoring cache file {path}: valid JSON, but not the result of this key's config; "
                              f"recomputing it", stacklevel=2)
            todo[k] = c
    if todo:
        failures: list[tuple[Any, BaseException]] = []
        bar = tqdm(total=len(results) + len(todo), initial=len(results), desc="grid")
        pool = default_pool(max_workers) if executor is None else contextlib.nullcontext(executor)
        with pool as running, contextlib.closing(bar):
            futures = {running.submit(fn, c): k for k, c in todo.items()}
            for future in as_completed(futures):
                k = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # reported below, once the other runs are saved
                    failures.append((todo[k], exc))
                else:  # a cache that cannot be written (an OSError) stops the grid here
                    try:
                        results[k] = _save(cache_dir / f"{k}.json", todo[k], result)
                    except ValueError as exc:  # not plain data, or NaN: a failed run too
                        failures.append((todo[k], exc))
                bar.update()
        if failures:
            raise RuntimeError(
                f"{len(failures)} of {len(todo)} runs failed (not cached; a rerun retries them); first failed "
                f"config: {_plain(failures[0][0])}"
            ) from failures[0][1]
    return [results[k] for k in keys]


def _save(path: Path, config: Any, result: Any) -> Any:
    cache.save_json(path, {"config": _plain(config), "result": _plain(result)})
    saved = cache.load_json(path)
    if saved is None:
        raise OSError(f"{path} was written but cannot be read back")
    return saved["result"]
