"""Image data: real on-disk formats (gzipped IDX, cifar-10-batches-py pickles) generated as fixtures,
safe archive extraction, stratified splits and the model-input transform."""

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nclib.config import load_profile
from nclib.data import images, safe_extract
from nclib.data.splits import stratified_split

# ---------------------------------------------------------------- fixtures in the real formats


def write_idx(path, array, magic, compress=True):
    """IDX as documented by LeCun et al.: big-endian int32 magic, then sizes, then uint8 data."""
    raw = struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw, compresslevel=1) if compress else raw)


def fake_fashion(folder, compress=True):
    """Fashion-MNIST-shaped files: label i % 10; image i has pixel (1, 1) = label, (0, 0) and (0, 1) = i in base 256."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, (img_name, lab_name, n) in images.FASHION_MNIST_FILES.items():
        y = (np.arange(n) % 10).astype(np.uint8)
        x = np.zeros((n, 28, 28), np.uint8)
        x[:, 0, 0], x[:, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
        x[:, 1, 1] = y
        suffix = ".gz" if compress else ""
        write_idx(folder / f"{img_name}{suffix}", x, 2051, compress)
        write_idx(folder / f"{lab_name}{suffix}", y, 2049, compress)
        out[split] = (x, y)
    return out


def fake_cifar(root, n=20, py2_names=True):
    """cifar-10-batches-py with n images per batch; pickled like the originals (protocol 2, numpy.core names)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    out = {}
    for name in images.CIFAR10_MD5:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        blob = pickle.dumps({b"batch_label": b"fake", b"labels": labels, b"data": data}, protocol=2)
        if py2_names:
            blob = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        (folder / name).write_bytes(blob)
        out[name] = (data, labels)
    return out


@pytest.fixture(autouse=True)
def small_fashion(monkeypatch):
    """Fixtures with 5,000 + 1,000 images instead of 60,000 + 10,000, to keep the tests fast."""
    files = {k: (img, lab, n // 12 if k == "train" else n // 10)
             for k, (img, lab, n) in images.FASHION_MNIST_FILES.items()}
    monkeypatch.setattr(images, "FASHION_MNIST_FILES", files)


@pytest.fixture
def fashion_dir(tmp_path, monkeypatch):
    folder = tmp_path / "debian" / "fashion-mnist"
    arrays = fake_fashion(folder)
    monkeypatch.setattr(images, "FASHION_MNIST_DIR", folder)
    return arrays


# ---------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_reads_gzipped_idx(fashion_dir):
    pools = images.fashion_mnist()
    for split, (x, y) in fashion_dir.items():
        px, py = pools[split]
        assert px.shape == (len(x), 28, 28, 1) and px.dtype == np.uint8
        assert py.dtype == np.int64
        np.testing.assert_array_equal(px[..., 0], x)
        np.testing.assert_array_equal(py, y)


def test_fashion_mnist_torchvision_layout_uncompressed(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "FASHION_MNIST_DIR", tmp_path / "absent")
    arrays = fake_fashion(tmp_path / "root" / "FashionMNIST" / "raw", compress=False)
    pools = images.fashion_mnist(tmp_path / "root")
    np.testing.assert_array_equal(pools["test"][1], arrays["test"][1])


def test_fashion_mnist_missing_says_where_and_how(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr(images, "FASHION_MNIST_DIR", tmp_path / "absent")

    def no_network(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", no_network)
    with pytest.raises(FileNotFoundError) as err:
        images.fashion_mnist(tmp_path / "root")
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg and str(tmp_path / "absent") in msg
    assert str(tmp_path / "root" / "FashionMNIST" / "raw") in msg and "download failed" in msg
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist.*data_root"):
        images.fashion_mnist()


def test_idx_validation(tmp_path):
    path = tmp_path / "f"
    write_idx(path, np.zeros((3, 28, 28)), 2051)
    assert images.read_idx(path, 2051).shape == (3, 28, 28)
    with pytest.raises(ValueError, match="magic number 2051, expected 2049"):
        images.read_idx(path, 2049)
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(raw[:-1])
    with pytest.raises(ValueError, match="truncated"):
        images.read_idx(path, 2051)
    path.write_bytes(gzip.compress(raw)[:-10])
    with pytest.raises(ValueError, match="gzip"):
        images.read_idx(path, 2051)


def test_fashion_mnist_wrong_size_refused(tmp_path, monkeypatch):
    folder = tmp_path / "fm"
    fake_fashion(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(9999), 2049)
    monkeypatch.setattr(images, "FASHION_MNIST_DIR", folder)
    with pytest.raises(ValueError, match="not the real ones"):
        images.fashion_mnist()


@pytest.mark.skipif(not images.FASHION_MNIST_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_package(monkeypatch):
    monkeypatch.undo()  # the real sizes
    pools = images.fashion_mnist()
    x, y = pools["train"]
    assert x.shape == (60_000, 28, 28, 1) and pools["test"][0].shape == (10_000, 28, 28, 1)
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(pools["test"][1]).tolist() == [1000] * 10
    # The first training labels as shown in Zalando's fashion-mnist README: ankle boot, T-shirt, T-shirt, dress...
    assert y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]


# ---------------------------------------------------------------- CIFAR-10


def test_cifar10_layout_and_pixel_order(tmp_path):
    batches = fake_cifar(tmp_path)
    pools = images.cifar10(tmp_path, verify=False)
    x, y = pools["train"]
    assert x.shape == (100, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    assert pools["test"][0].shape == (20, 32, 32, 3)
    data, labels = batches["data_batch_2"]
    np.testing.assert_array_equal(y[20:40], labels)
    # Row layout of the originals: 1024 red, then 1024 green, then 1024 blue values, each row-major.
    for i, j, c in [(0, 0, 0), (5, 31, 1), (31, 7, 2)]:
        assert x[20 + 3, i, j, c] == data[3, c * 1024 + i * 32 + j]


def test_cifar10_checksums_are_verified(tmp_path, monkeypatch):
    fake_cifar(tmp_path)
    with pytest.raises(ValueError, match="not the original CIFAR-10 file.*md5"):
        images.cifar10(tmp_path)
    # The same files pass once their digests are the known ones.
    folder = tmp_path / "cifar-10-batches-py"
    known = {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in images.CIFAR10_MD5}
    monkeypatch.setattr(images, "CIFAR10_MD5", known)
    assert images.cifar10(tmp_path)["test"][0].shape == (20, 32, 32, 3)


def test_cifar10_pickles_cannot_run_code(tmp_path):
    fake_cifar(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(ValueError, match="refusing to load"):
        images.cifar10(tmp_path, verify=False)
    assert not marker.exists()


def test_cifar10_missing_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        images.cifar10(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "cifar-10-batches-py") in msg and images.CIFAR10_URL in msg and "download=True" in msg


def test_cifar10_download_extracts_safely(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    source = tmp_path / "source"
    fake_cifar(source)

    def fake_download(url, root, filename, md5):
        assert url == images.CIFAR10_URL and md5 == images.CIFAR10_TGZ_MD5
        with tarfile.open(os.path.join(root, filename), "w:gz") as t:
            t.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")

    monkeypatch.setattr(tv_utils, "download_url", fake_download)
    root = tmp_path / "root"
    root.mkdir()
    assert images.cifar10(root, download=True, verify=False)["train"][0].shape == (100, 32, 32, 3)


# ---------------------------------------------------------------- splits of a profile


def test_image_splits_mini(fashion_dir, tmp_path):
    profile = load_profile("mini", data_root=tmp_path)
    splits = images.image_splits(profile)
    per_class = profile.image.split
    for name, (x, y) in splits.items():
        assert x.shape[1:] == (28, 28, 1)
        assert np.bincount(y, minlength=10).tolist() == [per_class[name]] * 10
        np.testing.assert_array_equal(x[:, 1, 1, 0], y)  # images travel with their labels
    # train and val are disjoint draws from the training pool (pixels (0, 0) and (0, 1) identify an image).
    ids = {name: set((x[:, 0, 0, 0] + 256 * x[:, 0, 1, 0].astype(int)).tolist()) for name, (x, _) in splits.items()}
    assert len(ids["train"]) == 3000 and not ids["train"] & ids["val"]
    again = images.image_splits(profile)
    np.testing.assert_array_equal(again["train"][0], splits["train"][0])
    other = images.image_splits(load_profile("mini", data_root=tmp_path, seed=1))
    assert not np.array_equal(other["train"][0], splits["train"][0])


def test_image_splits_paper_layout(tmp_path, monkeypatch):
    fake_cifar(tmp_path, n=200)
    folder = tmp_path / "cifar-10-batches-py"
    monkeypatch.setattr(images, "CIFAR10_MD5", {n: hashlib.md5((folder / n).read_bytes()).hexdigest()
                                                for n in images.CIFAR10_MD5})
    profile = load_profile("paper", data_root=tmp_path, image__split={"train": 4, "val": 2, "test": 3})
    splits = images.image_splits(profile)
    assert {k: len(v[1]) for k, v in splits.items()} == {"train": 40, "val": 20, "test": 30}
    with pytest.raises(ValueError, match="too few"):
        images.image_splits(load_profile("paper", data_root=tmp_path))  # 4,000 per class from a tiny fixture


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown image dataset"):
        images.load_image_pools("mnist", "/nonexistent")


# ---------------------------------------------------------------- stratified_split


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(4, 40), min_size=2, max_size=6),  # >= the largest request, 2 + 1 + 1
    sizes=st.tuples(st.integers(1, 2), st.integers(1, 1), st.integers(0, 1)),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_counts_properties(counts, sizes, seed):
    labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)) * 7, counts))
    request = {"train": sizes[0], "val": sizes[1]} | ({"test": sizes[2]} if sizes[2] else {})
    out = stratified_split(labels, request, seed)
    assert list(out) == list(request)
    seen = np.concatenate(list(out.values()))
    assert len(np.unique(seen)) == len(seen)  # disjoint
    for name, idx in out.items():
        assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)
        assert np.unique(labels[idx], return_counts=True)[1].tolist() == [request[name]] * len(counts)
    again = stratified_split(labels, request, seed)
    assert all(np.array_equal(out[k], again[k]) for k in out)


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(10, 200), min_size=2, max_size=4), seed=st.integers(0, 1000))
def test_split_fractions_properties(counts, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    out = stratified_split(labels, {"train": 0.7, "val": 0.15, "test": 0.15}, seed)
    assert sorted(np.concatenate(list(out.values())).tolist()) == list(range(len(labels)))  # a partition
    for c, n in enumerate(counts):
        got = {k: int((labels[v] == c).sum()) for k, v in out.items()}
        for k, f in {"train": 0.7, "val": 0.15, "test": 0.15}.items():
            assert abs(got[k] - f * n) < 1  # largest remainder: within one of the exact share


def test_split_fraction_subset_and_seed_changes():
    labels = np.repeat([0, 1], [100, 50])
    out = stratified_split(labels, {"a": 0.5, "b": 0.2}, seed=0)
    assert [int((labels[out["a"]] == c).sum()) for c in (0, 1)] == [50, 25]
    assert [int((labels[out["b"]] == c).sum()) for c in (0, 1)] == [20, 10]
    assert not np.array_equal(out["a"], stratified_split(labels, {"a": 0.5, "b": 0.2}, seed=1)["a"])


def test_split_errors():
    labels = np.repeat([0, 1, 2], [10, 10, 3])
    with pytest.raises(ValueError, match="class 2 has 3 samples"):
        stratified_split(labels, {"train": 2, "val": 2}, 0)
    with pytest.raises(ValueError, match="class 2 has 3 samples"):  # its test share would be empty
        stratified_split(labels, {"train": 0.9, "test": 0.1}, 0)
    for bad in ({"train": 1, "val": 0.5}, {"train": 0.8, "val": 0.3}, {"train": 0}, {"train": True}, {}):
        with pytest.raises(ValueError):
            stratified_split(labels, bad, 0)
    with pytest.raises(ValueError, match="1-D"):
        stratified_split(np.zeros((2, 2)), {"train": 1}, 0)


# ---------------------------------------------------------------- safe_extract


def _tar(path, members):
    with tarfile.open(path, "w:gz") as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)


def _file(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name, target, kind):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


@pytest.mark.parametrize(
    "evil",
    [
        _file("../evil"),
        _file("ok/../../evil"),
        _file("/tmp/evil-absolute"),
        _link("ok/link", "../../outside", tarfile.SYMTYPE),
        _link("ok/link", "/etc/passwd", tarfile.SYMTYPE),
        _link("ok/hard", "../outside", tarfile.LNKTYPE),
        _link("dev", "", tarfile.CHRTYPE),
    ],
)
def test_safe_extract_refuses_escaping_tar_members(tmp_path, evil):
    archive = tmp_path / "a.tar.gz"
    _tar(archive, [_file("ok/first.txt"), evil])
    dest = tmp_path / "dest"
    with pytest.raises(ValueError, match="refusing to extract"):
        safe_extract(archive, dest)
    assert not dest.exists()  # nothing written, not even the harmless first member
    assert not (tmp_path / "evil").exists()


def test_safe_extract_refuses_escaping_zip_members(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ok.txt", "fine")
        z.writestr("../evil", "bad")
    with pytest.raises(ValueError, match="'../evil'"):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_safe_extract_extracts_good_archives(tmp_path):
    archive = tmp_path / "a.tar.gz"
    _tar(archive, [_file("d/a.txt", b"hello"), _link("d/l", "a.txt", tarfile.SYMTYPE)])
    out = safe_extract(archive, tmp_path / "dest")
    assert (out / "d" / "a.txt").read_bytes() == b"hello" and (out / "d" / "l").read_bytes() == b"hello"
    zarchive = tmp_path / "a.zip"
    with zipfile.ZipFile(zarchive, "w") as z:
        z.writestr("z/b.txt", "zip")
    assert (safe_extract(zarchive, tmp_path / "zdest") / "z" / "b.txt").read_text() == "zip"
    (tmp_path / "plain.txt").write_text("no archive")
    with pytest.raises(ValueError, match="neither a tar nor a zip"):
        safe_extract(tmp_path / "plain.txt", tmp_path / "x")


# ---------------------------------------------------------------- to_model_input

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_to_model_input_matches_formula():
    x = np.random.default_rng(0).integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8)
    out = images.to_model_input(x, 8, MEAN, STD)
    expected = (x.transpose(0, 3, 1, 2) / 255.0 - np.array(MEAN)[:, None, None]) / np.array(STD)[:, None, None]
    assert out.dtype == torch.float32 and out.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)


def test_to_model_input_gray_and_resize():
    x = np.full((3, 28, 28, 1), 128, np.uint8)
    x[1] = 0
    out = images.to_model_input(x, 64, MEAN, STD)
    assert out.shape == (3, 3, 64, 64)
    for c in range(3):  # constant images stay constant through resizing; gray copied to all channels
        np.testing.assert_allclose(out[0, c].numpy(), (128 / 255 - MEAN[c]) / STD[c], atol=1e-5)
        np.testing.assert_allclose(out[1, c].numpy(), -MEAN[c] / STD[c], atol=1e-5)
    assert images.to_model_input(torch.as_tensor(x[..., 0]), 14, MEAN, STD).shape == (3, 3, 14, 14)


def test_to_model_input_errors():
    with pytest.raises(ValueError, match="uint8"):
        images.to_model_input(np.zeros((1, 8, 8, 3), np.float32), 8, MEAN, STD)
    with pytest.raises(ValueError, match="N x H x W x C"):
        images.to_model_input(np.zeros((1, 8, 8, 4), np.uint8), 8, MEAN, STD)
