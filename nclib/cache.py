"""nclib's one store: stable keys, one code digest, atomic writes, corrupt files detected rather than trusted.

    k = key(model="lite0", weights=source, split="train", code=code_digest("nclib.features"))
    arrays = load_arrays(path)          # None when missing, partial or corrupt -> recompute
    if arrays is None:
        save_arrays(path, features=f)   # temp file in the same folder + os.replace
    save_torch(ckpt, state)             # tensors and training state, checksummed alike; load_torch(ckpt) reads it

A key holds an artifact's inputs and the :func:`code_digest` of the module that makes it: the code of that module and
of every nclib module it imports, directly or not, so editing any of them changes the key and nothing else does.
:func:`file_digest` is the one digest of a file's bytes (downloads, wheels).

A write either leaves the complete new file or, if it fails, the previous file untouched and no temp file; a
folder that cannot be written (read-only, full, not a folder) raises an ``OSError`` that names the file and the fix.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import functools
import hashlib
import io
import json
import os
import pickle
import shutil
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


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in blocks (``algorithm``: "md5" where a publisher lists only that)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.new(algorithm, usedforsecurity=False)).hexdigest()


PACKAGE = Path(__file__).resolve().parent


@functools.cache
def code_digest(*modules: str) -> str:
    """sha256 over the code of the nclib ``modules`` (dotted names) and of every nclib module they import at module
    level, at any depth. Imports inside functions (kept for checks and optional front ends that do not shape
    results, such as the profile's zoo-name check) and ``TYPE_CHECKING`` imports are not followed.

    Code means each file's syntax tree without docstrings: editing code changes the digest, editing comments,
    docstrings or layout does not. Put it in the key of every artifact a module makes.
    """
    h = hashlib.sha256()
    for name in sorted(_closure(modules)):
        path = _module_file(name)
        h.update(f"{name}\n{_code_only(path.read_text())}\n".encode())
    return h.hexdigest()


def _module_file(name: str) -> Path:
    parts = name.split(".")
    if parts[0] != PACKAGE.name:
        raise ValueError(f"{name!r} is not an nclib module")
    base = PACKAGE.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    raise ValueError(f"no module {name!r} in {PACKAGE}")


def _is_module(name: str) -> bool:
    try:
        _module_file(name)
    except ValueError:
        return False
    return True


def _closure(modules: Iterable[str]) -> set[str]:
    """The nclib modules ``modules`` import at module level, themselves included."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        todo += [m for m in _imports(ast.parse(path.read_text()), package) if m not in seen]
    return seen


def imports(source: str) -> list[str]:
    """The nclib modules that Python ``source`` (absolute imports only, e.g. a notebook cell) imports."""
    return _imports(ast.parse(source), PACKAGE.name)


def _imports(tree: ast.AST, package: str) -> list[str]:
    """The nclib modules a syntax tree imports (``from m import x`` names ``m.x`` where that is a module)."""
    found = []
    for node in _module_level(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append(base)
            found += [f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}")]
    return [m for m in found if m.split(".")[0] == PACKAGE.name and _is_module(m)]


def _module_level(tree: ast.AST) -> Iterator[ast.stmt]:
    """The statements run at import: the module body, into ``if`` / ``try`` / ``with`` blocks, not into functions,
    classes or ``if TYPE_CHECKING:``."""
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _module_level(ast.Module(body=node.orelse, type_ignores=[]))
        elif isinstance(node, ast.If | ast.Try | ast.With):
            yield from _module_level(node)
            for block in ("orelse", "finalbody", "handlers"):
                for inner in getattr(node, block, []):
                    yield from _module_level(inner) if isinstance(inner, ast.ExceptHandler) else [inner]
        else:
            yield node


def _code_only(source: str) -> str:
    """The syntax tree of ``source`` without docstrings, as text (comments and layout are not in the tree)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0].value if node.body and isinstance(node.body[0], ast.Expr) else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree)


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


def _write_error(path: Path, exc: OSError) -> OSError:
    """``exc`` (same errno, hence the same class) with a message naming ``path`` and what to do."""
    reason = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else exc.strerror or str(exc)
    message = (f"cannot write {path} ({reason}); free some space or fix the permissions of {path.parent}, or set "
               f"NCLIB_CACHE to a writable folder with free space")
    return OSError(exc.errno, message) if exc.errno is not None else OSError(message)


@contextlib.contextmanager
def _atomic(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Open a temp file next to ``path``; on success fsync and rename it over ``path``, else delete it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _write_error(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # held until renamed: remove_stale_temps leaves a live write alone
            yield f
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from exc
        raise


def remove_stale_temps(folder: str | os.PathLike) -> int:
    """Delete the temp files that writes killed midway (SIGKILL, power loss) left under ``folder``; return how many.

    A write in progress holds a lock on its temp file (see :func:`_atomic`), so it is left alone: this is safe
    while other processes write the same cache.
    """
    removed = 0
    for tmp in Path(folder).rglob(".*.tmp"):
        if not tmp.is_file():
            continue
        try:
            with open(tmp, "rb") as f:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(f.fileno()).st_ino == os.stat(tmp).st_ino:  # still that file, not a new one
                    os.unlink(tmp)
                    removed += 1
        except (BlockingIOError, FileNotFoundError):  # a live write, or gone already
            continue
    return removed


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temp folder next to ``path`` to fill; on success it replaces ``path``, else it is deleted.

    Write errors are reported as by :func:`save_arrays`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    except OSError as exc:
        raise _write_error(path, exc) from exc
    try:
        yield tmp
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from exc
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
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:  # closed even when not a zip
            arrays = {name: z[name] for name in z.files}
        stored = str(arrays.pop(CHECKSUM))
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        _warn_corrupt(path, repr(exc))
        return None
    if stored != _digest(arrays):
        _warn_corrupt(path, "checksum mismatch: its bytes changed after it was written")
        return None
    return arrays


def save_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (NaN and inf are refused)."""
    save_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False))


def save_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) atomically."""
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
        _warn_corrupt(path, repr(exc))
        return None


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` (tensors, numbers, strings, and lists, tuples and dicts of them) with ``torch.save``
    atomically, followed by the sha256 (64 hex digits) of the bytes before it."""
    import torch  # here, not at module level: reading and writing the rest of the cache needs no torch

    with _atomic(path) as f:
        writer = _HashingWriter(f)
        torch.save(obj, writer)  # type: ignore[arg-type]  # torch calls only write and flush; streamed, no copy
        f.write(writer.sha256.hexdigest().encode())


class _HashingWriter:
    """A binary file's ``write`` that also feeds a sha256 of what it writes."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.sha256 = f, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def load_torch(path: str | os.PathLike) -> Any | None:
    """Read a file written by :func:`save_torch`, its tensors on the CPU; ``None`` if it is missing, unreadable or
    fails its checksum. Only plain data is unpickled (``weights_only``): a file cannot run code."""
    import torch

    path = Path(path)
    if not path.exists():
        return None
    try:
        data = memoryview(path.read_bytes())
        payload, stored = data[:-64], data[-64:]
        if bytes(stored) != hashlib.sha256(payload).hexdigest().encode():
            _warn_corrupt(path, "checksum mismatch: it is truncated, or its bytes changed after it was written")
            return None
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        _warn_corrupt(path, repr(exc))
        return None


def _warn_corrupt(path: Path, reason: str) -> None:
    """The warning for a cache file that is not used: where, what is wrong with it, and that it is recomputed."""
    warnings.warn(f"ignoring unreadable cache file {path} ({reason}); recomputing it: the recomputed result "
                  f"replaces the file", stacklevel=3)
