"""A small on-disk cache: stable keys, atomic writes, corrupt files detected rather than trusted.

    k = key(model="lite0", weights=digest, split="train", code=nclib.__version__)
    arrays = load_arrays(path)          # None when missing, partial or corrupt -> recompute
    if arrays is None:
        save_arrays(path, features=f)   # temp file in the same folder + os.replace

A write either leaves the complete new file or, if it fails, the previous file untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

CHECKSUM = "__sha256__"  # reserved array name: digest of every other array's name, dtype, shape and bytes


def key(**parts: Any) -> str:
    """Stable sha256 hex digest of ``parts`` (JSON-like values, paths, numpy scalars), order-independent.

    Put everything that changes the cached result in ``parts``, the code version included.
    """
    text = json.dumps(_canonical(parts), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def digest(arrays: Iterable[np.ndarray | None]) -> str:
    """SHA-256 of a sequence of arrays (dtype, shape and bytes of each; None counts as an empty array)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.zeros(0) if a is None else np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}|{a.shape}|".encode())
        h.update(a.data)
    return h.hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cache key part of type {type(value).__name__} is not supported: pass str, number, list or dict")


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.data)
    return h.hexdigest()


@contextlib.contextmanager
def _atomic(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Open a temp file next to ``path``; on success fsync and rename it over ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_arrays(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to an uncompressed ``.npz`` atomically, with a checksum entry."""
    if CHECKSUM in arrays:
        raise ValueError(f"array name {CHECKSUM!r} is reserved")
    arrays = {name: np.asarray(a) for name, a in arrays.items()}
    with _atomic(path) as f:
        np.savez(f, allow_pickle=False, **arrays, **{CHECKSUM: np.array(_digest(arrays))})


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """Read a file written by :func:`save_arrays`; ``None`` if it is missing, unreadable or fails its checksum."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        stored = str(arrays.pop(CHECKSUM))
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        warnings.warn(f"ignoring unreadable cache file {path} ({exc!r}); it will be recomputed", stacklevel=2)
        return None
    if stored != _digest(arrays):
        warnings.warn(f"ignoring cache file {path}: checksum mismatch; it will be recomputed", stacklevel=2)
        return None
    return arrays


def save_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (NaN and inf are refused)."""
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)
    with _atomic(path) as f:
        f.write(text.encode())


def load_json(path: str | os.PathLike) -> Any | None:
    """Read JSON written by :func:`save_json`; ``None`` if it is missing or not valid JSON."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        warnings.warn(f"ignoring unreadable cache file {path} ({exc!r}); it will be recomputed", stacklevel=2)
        return None
