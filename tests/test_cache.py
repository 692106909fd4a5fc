"""The on-disk cache: stable keys, atomic writes, and corrupt files detected instead of trusted."""

import errno
import hashlib
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nclib import cache


def test_key_is_sha256_of_canonical_json():
    # Independent construction of the documented format: sorted keys, no spaces.
    expected = hashlib.sha256(b'{"a":1,"b":[1,2.5,"x"],"c":{"d":null,"e":true}}').hexdigest()
    assert cache.key(c={"e": True, "d": None}, b=(1, 2.5, "x"), a=1) == expected


def test_key_is_stable_and_sensitive():
    parts = {"model": "lite0", "layer": "pool", "split": "train", "seed": 0, "code": "0.1.0"}
    k = cache.key(**parts)
    assert k == cache.key(**dict(reversed(list(parts.items()))))
    assert k == cache.key(**{**parts, "seed": np.int64(0)})
    for name, other in [("seed", 1), ("split", "val"), ("code", "0.1.1"), ("layer", None)]:
        assert cache.key(**{**parts, name: other}) != k
    assert cache.key(path=Path("a/b")) == cache.key(path="a/b")
    with pytest.raises(TypeError, match="not supported"):
        cache.key(x=object())
    with pytest.raises(ValueError):
        cache.key(x=float("nan"))


def test_arrays_round_trip(tmp_path):
    arrays = {
        "features": np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32),
        "labels": np.arange(5, dtype=np.int64),
        "scalar": np.float64(2.5),
        "names": np.array(["a", "bc"]),
    }
    path = tmp_path / "sub" / "e.npz"
    cache.save_arrays(path, **arrays)
    back = cache.load_arrays(path)
    assert set(back) == set(arrays)
    for name, a in arrays.items():
        np.testing.assert_array_equal(back[name], a)
        assert back[name].dtype == np.asarray(a).dtype
    assert os.listdir(path.parent) == ["e.npz"]


def test_missing_file_is_a_miss(tmp_path):
    assert cache.load_arrays(tmp_path / "none.npz") is None
    assert cache.load_json(tmp_path / "none.json") is None


def test_reserved_name_refused(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        cache.save_arrays(tmp_path / "x.npz", **{cache.CHECKSUM: np.zeros(1)})


def test_truncated_file_is_detected(tmp_path):
    path = tmp_path / "e.npz"
    cache.save_arrays(path, x=np.arange(1000.0))
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.warns(UserWarning, match="recomputed"):
            assert cache.load_arrays(path) is None


def test_flipped_data_byte_is_detected(tmp_path):
    path = tmp_path / "e.npz"
    cache.save_arrays(path, x=np.zeros(1000))
    data = bytearray(path.read_bytes())
    offset = data.index(b"\x00" * 64, 200)  # inside the array payload
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning):
        assert cache.load_arrays(path) is None


def test_checksum_is_checked_not_only_the_zip(tmp_path):
    # A well-formed npz whose arrays do not match the stored checksum, and one without a checksum.
    path = tmp_path / "e.npz"
    np.savez(path, x=np.arange(3.0), **{cache.CHECKSUM: np.array("0" * 64)})
    with pytest.warns(UserWarning, match="checksum"):
        assert cache.load_arrays(path) is None
    np.savez(path, x=np.arange(3.0))
    with pytest.warns(UserWarning):
        assert cache.load_arrays(path) is None
    assert zipfile.is_zipfile(path)


def test_pickled_arrays_are_not_loaded(tmp_path):
    path = tmp_path / "e.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.warns(UserWarning):
        assert cache.load_arrays(path) is None
    with pytest.raises(ValueError):
        cache.save_arrays(path, x=np.array([{"a": 1}], dtype=object))


FIX = "set NCLIB_CACHE to a writable folder with free space"


def test_full_disk_mid_write_keeps_old_file_and_leaves_no_partial(tmp_path, monkeypatch):
    path = tmp_path / "e.npz"
    cache.save_arrays(path, x=np.arange(3))
    real_savez = np.savez

    def half_then_fail(f, **arrays):
        real_savez(f, **arrays)
        f.truncate(f.tell() // 2)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", half_then_fail)
    with pytest.raises(OSError) as info:
        cache.save_arrays(path, x=np.arange(10))
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert f"cannot write {path} (No space left on device)" in str(info.value) and FIX in str(info.value)
    assert os.listdir(tmp_path) == ["e.npz"]
    np.testing.assert_array_equal(cache.load_arrays(path)["x"], np.arange(3))


def test_read_only_folder_is_named_and_left_clean(tmp_path, monkeypatch):
    # Tests run as root, which ignores permission bits: the refusal is simulated where it would happen.
    path = tmp_path / "r.json"
    cache.save_json(path, {"acc": 0.5})

    def refuse(*_, **__):
        raise PermissionError(errno.EACCES, "Permission denied")

    for where in (tempfile, os):  # creating the temp file, or renaming it over the old one
        monkeypatch.setattr(where, "mkstemp" if where is tempfile else "replace", refuse)
        with pytest.raises(PermissionError, match=re.escape(f"cannot write {path} (Permission denied)")) as info:
            cache.save_json(path, {"acc": 0.9})
        monkeypatch.undo()
        assert FIX in str(info.value)
        assert os.listdir(tmp_path) == ["r.json"]
        assert cache.load_json(path) == {"acc": 0.5}


def test_a_file_where_the_cache_folder_should_be(tmp_path):
    (tmp_path / "cache").write_text("not a folder")
    path = tmp_path / "cache" / "embeddings" / "e.npz"
    with pytest.raises(OSError, match=re.escape(f"cannot write {path} (")) as info:
        cache.save_arrays(path, x=np.arange(3))
    assert FIX in str(info.value) and str(tmp_path / "cache") in str(info.value)
    assert (tmp_path / "cache").read_text() == "not a folder"


def test_atomic_folder_replaces_whole_or_not_at_all(tmp_path):
    entry = tmp_path / "book" / "fig9"
    with cache.atomic_folder(entry) as tmp:
        (tmp / "a.txt").write_text("first")
    assert sorted(os.listdir(entry)) == ["a.txt"]
    full = re.escape(f"cannot write {entry} (No space left on device)")
    with pytest.raises(OSError, match=full) as info, cache.atomic_folder(entry) as tmp:
        (tmp / "b.txt").write_text("second")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.errno == errno.ENOSPC and FIX in str(info.value)
    assert os.listdir(tmp_path / "book") == ["fig9"] and (entry / "a.txt").read_text() == "first"
    with cache.atomic_folder(entry) as tmp:
        (tmp / "b.txt").write_text("second")
    assert os.listdir(tmp_path / "book") == ["fig9"] and sorted(os.listdir(entry)) == ["b.txt"]
    with pytest.raises(KeyboardInterrupt), cache.atomic_folder(entry) as tmp:
        (tmp / "c.txt").write_text("third")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path / "book") == ["fig9"] and sorted(os.listdir(entry)) == ["b.txt"]


def test_json_round_trip_and_corruption(tmp_path):
    path = tmp_path / "d" / "r.json"
    obj = {"model": "lite0", "acc": [0.5, 0.75], "n": 3, "ok": True, "none": None}
    cache.save_json(path, obj)
    assert cache.load_json(path) == obj
    assert json.loads(path.read_text()) == obj  # plain, readable JSON
    path.write_text(path.read_text()[:-5])
    with pytest.warns(UserWarning):
        assert cache.load_json(path) is None
    with pytest.raises(ValueError):
        cache.save_json(path, {"x": float("nan")})


def test_digest_sees_dtype_shape_and_bytes():
    import numpy as np

    a = np.arange(6, dtype=np.int64)
    assert cache.digest([a]) == cache.digest([a.copy()])
    assert len({cache.digest([a]), cache.digest([a.reshape(2, 3)]), cache.digest([a.astype(np.int32)]),
                cache.digest([a + 1]), cache.digest([a, None])}) == 5


def test_stale_temp_files_go_and_a_live_write_stays(tmp_path):
    """A temp file that a killed write left is deleted; one that a write in progress holds (locked) is not."""
    (tmp_path / "runs").mkdir()
    stale = tmp_path / "runs" / ".a.json.x1.tmp"
    stale.write_text('{"half": ')
    other = tmp_path / "b.json"  # not a temp file: kept
    other.write_text("{}")
    with cache._atomic(tmp_path / "runs" / "c.npz") as f:
        f.write(b"in progress")
        live = [p for p in (tmp_path / "runs").glob(".c.npz.*.tmp")]
        assert cache.remove_stale_temps(tmp_path) == 1
        assert not stale.exists() and live[0].exists() and other.exists()
    assert (tmp_path / "runs" / "c.npz").read_bytes() == b"in progress"
    assert cache.remove_stale_temps(tmp_path) == 0 and sorted(p.name for p in tmp_path.rglob("*")) == [
        "b.json", "c.npz", "runs"]


def test_file_digest_is_the_digest_of_the_bytes(tmp_path):
    data = np.random.default_rng(0).bytes(3_000_000)  # several read blocks
    (tmp_path / "f").write_bytes(data)
    assert cache.file_digest(tmp_path / "f") == hashlib.sha256(data).hexdigest()
    assert cache.file_digest(tmp_path / "f", "md5") == hashlib.md5(data).hexdigest()


def test_code_digest_follows_the_imports(tmp_path, monkeypatch, request):
    """A module's digest changes when its code or the code of an nclib module it imports at module level (directly,
    relatively, at any depth) changes; not for docstrings, comments, layout, imports inside functions or
    TYPE_CHECKING, or modules it does not import."""
    package = tmp_path / "nclib"
    files = {
        "__init__.py": "",
        "a.py": "from nclib import b\ntry:\n    from .sub import d  # relative\nexcept ImportError:\n    d = None\n\n"
                "def f():\n    from nclib import other  # lazy: a check, not followed\n",
        "b.py": '"""B."""\nimport nclib.c\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import nclib.e\n',
        "c.py": "X = 1\n",
        "e.py": "Y = 1\n",
        "sub/__init__.py": "",
        "sub/d.py": "Z = 1\n",
        "other.py": "W = 1\n",
    }
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    monkeypatch.setattr(cache, "PACKAGE", package)
    request.addfinalizer(cache.code_digest.cache_clear)  # no digest of the fake package outlives the test

    def digests():
        cache.code_digest.cache_clear()
        return {m: cache.code_digest(f"nclib.{m}") for m in ("a", "b", "c", "other")}

    assert sorted(cache._closure(["nclib.a"])) == ["nclib", "nclib.a", "nclib.b", "nclib.c", "nclib.sub",
                                                   "nclib.sub.d"]  # fmt: skip
    before = digests()
    (package / "c.py").write_text('"""Now documented."""\n\n# a comment\nX = (1)\n')
    assert digests() == before
    for name, changed in [("c.py", {"a", "b", "c"}), ("sub/d.py", {"a"}), ("e.py", set()), ("other.py", {"other"})]:
        old = digests()
        (package / name).write_text((package / name).read_text() + "V = 2\n")
        new = digests()
        assert {m for m in new if new[m] != old[m]} == changed, name
    with pytest.raises(ValueError, match="no module"):
        cache.code_digest("nclib.missing")


def test_torch_round_trip(tmp_path):
    import torch

    state = {"epoch": 3, "history": {"loss": [0.5, 0.25]}, "betas": (0.9, 0.999), "none": None,
             "weights": torch.randn(4, 3, generator=torch.Generator().manual_seed(0)),
             "rng": torch.Generator().manual_seed(1).get_state(), "labels": torch.arange(5)}  # fmt: skip
    path = tmp_path / "sub" / "run.ckpt.pt"
    cache.save_torch(path, state)
    back = cache.load_torch(path)
    assert back.keys() == state.keys() and os.listdir(path.parent) == ["run.ckpt.pt"]
    for k, v in state.items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(back[k], v) and back[k].dtype == v.dtype, k
        else:
            assert back[k] == v and type(back[k]) is type(v), k
    assert cache.load_torch(tmp_path / "none.pt") is None


def test_torch_file_corruption_is_detected(tmp_path):
    import torch

    path = tmp_path / "run.ckpt.pt"
    cache.save_torch(path, {"x": torch.zeros(1000)})
    data = path.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    for bad in (data[: len(data) // 2], data[:10], b"", bytes(flipped)):
        path.write_bytes(bad)
        with pytest.warns(UserWarning, match=f"ignoring unreadable cache file {re.escape(str(path))} .*checksum"):
            assert cache.load_torch(path) is None
    torch.save({"x": torch.zeros(3)}, path)  # a torch file, but not one save_torch wrote
    with pytest.warns(UserWarning, match="checksum"):
        assert cache.load_torch(path) is None


class _Loud:
    """An object whose unpickling would run code (writes a file)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_torch_file_runs_no_code(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "run.ckpt.pt"
    cache.save_torch(path, {"x": _Loud(str(marker))})  # checksummed, yet not plain data
    with pytest.warns(UserWarning, match="ignoring unreadable cache file"):
        assert cache.load_torch(path) is None
    assert not marker.exists()
