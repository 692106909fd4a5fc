"""Image datasets of the image track (Figure 2), their seeded splits and the model-input transform.

- ``mini``: Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (gzipped IDX files).
- ``paper``: CIFAR-10 in torchvision's ``cifar-10-batches-py`` layout (Section 4.1).

Both return uint8 images N x H x W x C and int64 labels.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from nclib import cache
from nclib.data import safe_extract
from nclib.data.splits import stratified_split

if TYPE_CHECKING:
    from nclib.config import Profile

Pools = dict[str, tuple[np.ndarray, np.ndarray]]

FIXTURE_MARKER = "nclib-fixture.json"  # in a folder of fixture data written by nclib.data.fixtures
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # files of the Debian package dataset-fashion-mnist
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_TGZ_MD5 = "c58f30108f718f92721af3b95e74349a"
# md5 of each batch file, as listed by torchvision/datasets/cifar.py (torchvision 0.24.1).
CIFAR10_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# What each loader reads and where to get it, told by its error messages and by ``python -m nclib.data check``.
# folder: under data_root; layout: its files (<root> = that folder); download_mb: load_image_pools downloads that
# much when the files are missing.
DATASETS: dict[str, dict[str, Any]] = {
    "fashion_mnist": {
        "title": "Fashion-MNIST",
        "folder": "FashionMNIST/raw",
        "layout": "<root>/" + ", ".join(f"{n}.gz" for names in FASHION_MNIST_FILES.values() for n in names[:2])
                  + "   (or uncompressed)",
        "source": f"`apt-get install dataset-fashion-mnist` (files in {FASHION_MNIST_DIR}), or put the files from "
                  f"{FASHION_MNIST_URL} in <data_root>/FashionMNIST/raw",
        "download_mb": 30,
    },
    "cifar10": {
        "title": "CIFAR-10",
        "folder": "cifar-10-batches-py",
        "layout": "<root>/" + ", ".join(CIFAR10_MD5) + "   (torchvision's layout)",
        "source": f"download {CIFAR10_URL} and extract it in <data_root>",
        "download_mb": 170,
    },
}  # fmt: skip


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped or not), checking its ``magic`` number and size.

    IDX: two zero bytes, type 0x08 (uint8), number of dimensions, big-endian int32 sizes, data.
    Magic numbers: 2049 (0x0801) for 1-D label files, 2051 (0x0803) for 3-D image files.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path} is not a valid gzip file ({exc}); delete it and get it again") from exc
    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if found != magic:
        raise ValueError(f"{path} is not an IDX file of the expected kind: magic number {found}, expected {magic}")
    ndim = magic & 0xFF
    shape = tuple(int(d) for d in np.frombuffer(raw, ">i4", count=ndim, offset=4)) if len(raw) >= 4 + 4 * ndim else ()
    data = raw[4 + 4 * ndim :]
    if len(shape) != ndim or len(data) != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated or corrupt: header says shape {shape}, found {len(data)} data bytes")
    return np.frombuffer(data, np.uint8).reshape(shape).copy()


def fashion_mnist(data_root: str | Path | None = None) -> Pools:
    """Fashion-MNIST (Xiao et al. 2017): ``{"train": (x, y), "test": (x, y)}``, x uint8 N x 28 x 28 x 1.

    Read from the Debian package ``dataset-fashion-mnist``; else from torchvision's layout
    ``<data_root>/FashionMNIST/raw``; else downloaded there by ``torchvision.datasets.FashionMNIST``.
    """
    folders, folder = locate("fashion_mnist", data_root)
    if folder is None and data_root is not None:
        import torchvision

        try:
            torchvision.datasets.FashionMNIST(data_root, train=True, download=True)
        except Exception as exc:  # any network or server failure: explain where the data can come from
            raise FileNotFoundError(_fashion_missing(folders, f"the download failed: {exc!r}")) from exc
        folder = folders[-1]
    if folder is None or (files := _fashion_files(folder)) is None:
        raise FileNotFoundError(_fashion_missing(folders, "pass data_root=... to allow a download"))
    out = {}
    for split, (images, labels, n) in FASHION_MNIST_FILES.items():
        x = read_idx(files[images], 2051)
        y = read_idx(files[labels], 2049)
        if x.shape != (n, 28, 28) or y.shape != (n,) or y.max() > 9:
            raise ValueError(f"Fashion-MNIST {split} files in {folder} are not the real ones: images {x.shape}, "
                             f"labels {y.shape} with maximum {y.max()}; expected {n} images of 28 x 28, labels 0..9")
        out[split] = (x[..., None], y.astype(np.int64))
    return out


def _fashion_files(folder: Path) -> dict[str, Path] | None:
    """Paths of the four IDX files in ``folder`` (``.gz`` or uncompressed), or None if one is missing."""
    files = {}
    for names in FASHION_MNIST_FILES.values():
        for name in names[:2]:
            found = [p for p in (folder / f"{name}.gz", folder / name) if p.is_file()]
            if not found:
                return None
            files[name] = found[0]
    return files


def _fashion_missing(folders: Sequence[Path], why: str) -> str:
    facts = DATASETS["fashion_mnist"]
    return (f"{facts['title']} not found in {', '.join(map(str, folders))}; {why}. Expected layout: "
            f"{facts['layout']}. Install it with {facts['source']}.")


def cifar10(root: str | Path, *, download: bool = False, verify: bool = True) -> Pools:
    """CIFAR-10 (Krizhevsky 2009): ``{"train": (x, y), "test": (x, y)}``, x uint8 N x 32 x 32 x 3.

    Reads ``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch}``. ``download=True`` fetches
    the archive when files are missing (md5-checked, extracted by :func:`safe_extract`).

    The batches are Python pickles, and unpickling can run code. Two safeguards: with
    ``verify=True`` (the default) each file must match torchvision's published md5 before it is
    opened, so only the real CIFAR-10 files are read (or, in a folder that nclib's fixture writer marked, the
    fixture files it wrote: :func:`cifar10_checksums`); and every file, verified or not, goes
    through an unpickler that can build nothing but numpy arrays, so even ``verify=False`` (meant
    for test fixtures and re-packed copies) cannot execute code.
    """
    facts = DATASETS["cifar10"]
    folder = Path(root) / facts["folder"]
    missing = _cifar_missing(folder)
    if missing and download:
        from torchvision.datasets.utils import download_url

        try:
            download_url(CIFAR10_URL, str(root), "cifar-10-python.tar.gz", md5=CIFAR10_TGZ_MD5)
        except OSError as exc:  # urllib's URLError and HTTPError are OSErrors: explain where the data can come from
            raise FileNotFoundError(f"{facts['title']} not found in {folder} and the download failed ({exc!r}). "
                                    f"How to get it: {_cifar_source(root)} (or pass another data_root=...).") from exc
        safe_extract(Path(root) / "cifar-10-python.tar.gz", root)
        missing = _cifar_missing(folder)
    if missing:
        raise FileNotFoundError(
            f"{facts['title']} not found: {folder} lacks {', '.join(missing)}. Expected layout: {facts['layout']}. "
            f"How to get it: {_cifar_source(root)}, or pass download=True (or another data_root=...)."
        )
    batches = {}
    for name, md5 in cifar10_checksums(folder).items():
        if verify and (digest := cache.file_digest(folder / name, "md5")) != md5:
            raise ValueError(f"{folder / name} is not the original CIFAR-10 file (md5 {digest}, expected {md5}); "
                             f"delete it and download {CIFAR10_URL} again")
        batches[name] = _cifar_batch(folder / name, (folder / name).read_bytes())
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    return {
        "train": (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
        "test": batches["test_batch"],
    }


def cifar10_checksums(folder: Path) -> dict[str, str]:
    """The md5 each batch file in ``folder`` must have: torchvision's list of the originals, or, in a folder of
    nclib's fixture data (it holds ``nclib.data.fixtures.FIXTURE_MARKER``), the md5s that marker lists."""
    marker = folder / FIXTURE_MARKER
    if not marker.is_file():
        return CIFAR10_MD5
    try:
        listed = json.loads(marker.read_text())["md5"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{marker} is not an nclib fixture marker ({exc!r}): delete the folder, then download "
                         f"{CIFAR10_URL} or write the fixtures again (python -m nclib.data fixtures ROOT)") from exc
    if not isinstance(listed, dict) or set(listed) != set(CIFAR10_MD5):
        raise ValueError(f"{marker} must list the md5 of each of {sorted(CIFAR10_MD5)}, got {listed!r}")
    return {name: str(listed[name]) for name in CIFAR10_MD5}


def _cifar_missing(folder: Path) -> list[str]:
    """The CIFAR-10 batch files that ``folder`` lacks."""
    return [name for name in CIFAR10_MD5 if not (folder / name).is_file()]


def _cifar_source(root: str | Path) -> str:
    return DATASETS["cifar10"]["source"].replace("<data_root>", str(root))


class _ArraysOnly(pickle.Unpickler):
    """Unpickler that can build numpy arrays, dicts, lists, strings and numbers, and nothing else."""

    _reconstruct = np.zeros(1).__reduce__()[0]  # numpy's array-rebuilding function, whatever its module
    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
               ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: CIFAR-10 batches hold only arrays")
        if name == "_reconstruct":
            return self._reconstruct
        return super().find_class(module, name)


def _cifar_batch(path: Path, raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Decode one CIFAR-10 batch pickle: b'data' uint8 N x 3072 (RGB planes), b'labels' N ints."""
    try:
        d = _ArraysOnly(io.BytesIO(raw), encoding="bytes").load()
        data, labels = np.asarray(d[b"data"]), np.asarray(d[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is not a CIFAR-10 batch ({exc})") from exc
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (len(data),):
        raise ValueError(f"{path} is not a CIFAR-10 batch: data {data.dtype} {data.shape}, labels {labels.shape}")
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path} has labels outside 0..9")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def locate(dataset: str, data_root: str | Path | None) -> tuple[list[Path], Path | None]:
    """The folders the loader of ``dataset`` reads, in order, and the first that holds all its files (None if
    none does; file tests only). Fashion-MNIST's first folder is the Debian package's, then data_root's."""
    if dataset == "fashion_mnist":
        folders = [FASHION_MNIST_DIR] + ([] if data_root is None else [Path(data_root) / DATASETS[dataset]["folder"]])
        return folders, next((f for f in folders if _fashion_files(f) is not None), None)
    if dataset == "cifar10":
        folder = Path(data_root or ".") / DATASETS[dataset]["folder"]
        return [folder], None if _cifar_missing(folder) else folder
    raise ValueError(f"unknown image dataset {dataset!r}; expected one of {sorted(DATASETS)}")


def load_image_pools(dataset: str, data_root: str | Path) -> Pools:
    """The official train and test sets of ``dataset`` (``fashion_mnist`` or ``cifar10``)."""
    if dataset == "fashion_mnist":
        return fashion_mnist(data_root)
    if dataset == "cifar10":
        return cifar10(data_root, download=True)
    raise ValueError(f"unknown image dataset {dataset!r}; expected one of {sorted(DATASETS)}")


def image_splits(profile: Profile) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Stratified, seeded ``train``/``val``/``test`` splits of the profile's image dataset.

    Per class, ``train`` and ``val`` are drawn from the official training set and ``test`` from the
    official test set (paper: 4,000 / 1,000 / 1,000 per class = 40k / 10k / 10k, Section 4.3).
    """
    pools = load_image_pools(profile.image.dataset, profile.data_root)
    sizes = profile.image.split
    idx = stratified_split(pools["train"][1], {"train": sizes["train"], "val": sizes["val"]}, profile.seed)
    idx |= stratified_split(pools["test"][1], {"test": sizes["test"]}, profile.seed)
    out = {}
    for split, i in idx.items():
        x, y = pools["test" if split == "test" else "train"]
        out[split] = (x[i], y[i])
    return out


def to_model_input(
    x: np.ndarray | torch.Tensor, size: int, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """uint8 images N x H x W x C (C = 1 or 3) or N x H x W -> float32 N x 3 x size x size, normalised.

    Scales to [0, 1], resizes (bilinear, antialiased), repeats a gray channel three times and
    normalises ``(x - mean) / std`` per channel. Runs on the device of ``x``.
    """
    t = torch.as_tensor(x)
    if t.dtype != torch.uint8:
        raise ValueError(f"images must be uint8, got {t.dtype}")
    if t.ndim == 3:
        t = t[..., None]
    if t.ndim != 4 or t.shape[-1] not in (1, 3):
        raise ValueError(f"images must be N x H x W x C with C in (1, 3), got shape {tuple(t.shape)}")
    t = t.permute(0, 3, 1, 2).float().div_(255)
    if t.shape[-2:] != (size, size):
        t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    mean_t = torch.as_tensor(mean, dtype=t.dtype, device=t.device).view(1, 3, 1, 1)
    std_t = torch.as_tensor(std, dtype=t.dtype, device=t.device).view(1, 3, 1, 1)
    return (t.expand(-1, 3, -1, -1) - mean_t) / std_t
