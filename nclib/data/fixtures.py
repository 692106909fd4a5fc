"""Fixture data in the real on-disk formats of the ``paper`` profile's five datasets, for the dry run.

    python -m nclib.data fixtures ROOT        # then NCLIB_DATA_ROOT=ROOT with params/paper-dryrun.yaml

:func:`write_fixtures` writes under ``ROOT`` exactly the layouts the loaders read (:mod:`nclib.data.images`,
:mod:`nclib.data.audio`): ``cifar-10-batches-py/`` (the pickled batches), ``coswara/`` (``combined_data.csv`` and
``Extracted_data/<date>/<id>/cough-*.wav``), ``gtzan/genres/``, ``speech_commands/`` and ``dcase2018_task1a/``, each
at its dataset's real sample rate (COSWARA and DCASE 48 kHz, GTZAN 22,050 Hz, Speech Commands 16 kHz) and class
list, a few items per class (``SIZES``). Clips are short where the loader pads them to its fixed length anyway
(``nclib.data.audio.SECONDS``); Speech Commands clips have their real 1 s. Everything is seeded: the same call
writes the same bytes.

The classes are learnable: every image class has its own colour and stripe orientation, every audio class its
own harmonic tone (COVID-19 positive coughs a higher one than negative), under noise and per-item jitter, so
transfer results and scores are not all at chance. The numbers they give mean nothing about the real datasets.

Each dataset folder holds ``FIXTURE_MARKER``. CIFAR-10's loader checks every batch against the official md5s;
in a folder with the marker it checks them against the md5s the marker lists instead (the fixture batches are
still verified, and real CIFAR-10 batches, which come without a marker, still must be the originals).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from nclib.data import audio, images

FIXTURE_MARKER = images.FIXTURE_MARKER
SEED = 0
# Items per class of each fixture. COSWARA: participants (two coughs each) selected as positive and negative,
# and participants the selection leaves out (no RT-PCR result, recovered, awaiting a result).
SIZES = {
    "cifar10": {"train_per_batch": 3, "test": 10},  # 5 training batches: 15 per class; the test batch: 10
    "coswara": {"positive": 100, "negative": 45, "left_out": 4},  # 200 / 90 recordings: the paper's 2.2 ratio, and
    # 203 training recordings, well above NCTI's 64 PCA dimensions (with fewer its LDA fits every model perfectly)
    "gtzan": {"clips": 7},  # the fewest whose 80 / 10 / 10 split leaves each genre in every split (5 / 1 / 1)
    "speech_commands": {"train": 3, "val": 1, "test": 1},
    "dcase2018_task1a": {"train": 8, "test": 3},
}
RATES = {"coswara": 48_000, "gtzan": 22_050, "speech_commands": 16_000, "dcase2018_task1a": 48_000}
CLIP_SECONDS = {"coswara": 0.5, "gtzan": 2.0, "speech_commands": 1.0, "dcase2018_task1a": 1.0}
# Pitch jitter in octaves (0.07: +-5 %). COSWARA's two classes lie 1.5 octaves apart: +-1 octave makes them overlap,
# so that COVID-19 detection is learnable but not perfect, as for the real coughs.
SPREAD = {"coswara": 1.0}
FOLDERS = {"cifar10": images.DATASETS["cifar10"]["folder"]} | {name: name for name in audio.LOADERS}

SPEECH_WORDS = ("backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go",
                "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven",
                "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero")  # v0.02's 35
DCASE_SCENES = ("airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall",
                "street_pedestrian", "street_traffic", "tram")
DCASE_CITIES = ("barcelona", "helsinki", "london", "paris", "stockholm", "vienna")
COSWARA_COLUMNS = ("id", "a", "covid_status", "record_date", "g", "l_c", "testType", "test_date", "test_status")
# (covid_status, testType, test_status) of each kind of participant
COSWARA_KINDS = {
    "positive": ("positive_mild", "rtpcr", "p"),
    "negative": ("healthy", "rtpcr", "n"),
    "left_out": ("recovered_full", "rat", "p"),
}


def write_fixtures(root: str | Path) -> dict[str, Path]:
    """Write every fixture dataset under ``root``; return dataset name -> its folder.

    A dataset folder that exists already is replaced if it holds ``FIXTURE_MARKER`` (an earlier fixture); any other
    existing folder raises ``FileExistsError`` before anything is written, so real data is never overwritten.
    """
    root = Path(root)
    folders = {name: root / folder for name, folder in FOLDERS.items()}
    real = [str(f) for f in folders.values() if f.exists() and not (f / FIXTURE_MARKER).is_file()]
    if real:
        raise FileExistsError(f"{', '.join(real)} exist and are not nclib fixtures (no {FIXTURE_MARKER}): choose a "
                              "ROOT without real datasets in it, e.g. an empty folder")
    writers = {"cifar10": write_cifar10, "coswara": write_coswara, "gtzan": write_gtzan,
               "speech_commands": write_speech_commands, "dcase2018_task1a": write_dcase2018_task1a}
    for name, folder in folders.items():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        writers[name](folder, np.random.default_rng([SEED, list(FOLDERS).index(name)]))
    return folders


def _mark(folder: Path, **facts: object) -> None:
    text = json.dumps({"written_by": "nclib.data.fixtures", "seed": SEED, **facts}, indent=1, sort_keys=True)
    (folder / FIXTURE_MARKER).write_text(text + "\n")


# ------------------------------------------------------------------------------------------------------ images
def class_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 images N x 32 x 32 x 3: class ``c`` has its own colour and stripes at angle ``c * 18`` degrees,
    under per-image brightness and phase jitter and pixel noise (sd 20 grey levels)."""
    hue = labels[:, None] / 10
    colour = 128 + 90 * np.cos(2 * np.pi * (hue + np.array([0.0, 1 / 3, 2 / 3])))  # N x 3, one hue per class
    angle = np.pi * labels / 10
    y, x = np.mgrid[:32, :32] / 32
    phase = rng.uniform(0, 2 * np.pi, len(labels))
    along = np.cos(angle)[:, None, None] * x + np.sin(angle)[:, None, None] * y
    stripes = np.sin(2 * np.pi * 4 * along + phase[:, None, None])  # N x 32 x 32
    brightness = rng.uniform(0.8, 1.2, (len(labels), 1, 1, 1))
    noise = rng.normal(0, 20, (len(labels), 32, 32, 3))
    pixels = brightness * (colour[:, None, None, :] + 40 * stripes[..., None]) + noise
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def write_cifar10(folder: Path, rng: np.random.Generator) -> None:
    """``cifar-10-batches-py``: ``data_batch_1..5`` and ``test_batch``, pickled as the originals (protocol 2, bytes
    keys ``batch_label``, ``labels``, ``data`` N x 3072 in RGB planes, ``filenames``), and ``batches.meta``."""
    md5 = {}
    for name in images.CIFAR10_MD5:
        per_class = SIZES["cifar10"]["test" if name == "test_batch" else "train_per_batch"]
        labels = rng.permutation(np.repeat(np.arange(10), per_class))
        data = class_images(labels, rng).transpose(0, 3, 1, 2).reshape(len(labels), 3072)
        batch = {b"batch_label": f"fixture {name}".encode(), b"labels": [int(v) for v in labels], b"data": data,
                 b"filenames": [f"fixture_{name}_{i:05d}.png".encode() for i in range(len(labels))]}
        blob = pickle.dumps(batch, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        (folder / name).write_bytes(blob)
        md5[name] = hashlib.md5(blob).hexdigest()
    per_batch = 10 * SIZES["cifar10"]["train_per_batch"]
    meta = {b"label_names": [c.encode() for c in images.CIFAR10_CLASSES], b"num_cases_per_batch": per_batch,
            b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    _mark(folder, dataset="cifar10", md5=md5)


# ------------------------------------------------------------------------------------------------------- audio
def class_tone(label: int, n_classes: int, rate: int, seconds: float, spread: float, rng: np.random.Generator
               ) -> np.ndarray:  # fmt: skip
    """A float32 clip of class ``label``: a three-harmonic tone at ``250 * 2 ** (3 * label / n_classes + u)`` Hz,
    ``u`` uniform in +-``spread`` octaves (the classes share three octaves), amplitude-modulated, under white noise."""
    t = np.arange(round(rate * seconds)) / rate
    pitch = 250 * 2 ** (3 * label / n_classes + rng.uniform(-spread, spread))
    phases = rng.uniform(0, 2 * np.pi, 3)
    tone = sum(np.sin(2 * np.pi * k * pitch * t + phases[k - 1]) / k for k in (1, 2, 3))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(1, 4) * t + rng.uniform(0, 2 * np.pi))
    wave = rng.uniform(0.15, 0.3) * envelope * tone + 0.05 * rng.normal(size=t.size)
    return np.clip(wave, -1, 1).astype(np.float32)


def _wav(path: Path, label: int, n_classes: int, dataset: str, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = RATES[dataset]
    wave = class_tone(label, n_classes, rate, CLIP_SECONDS[dataset], SPREAD.get(dataset, 0.07), rng)
    sf.write(path, wave, rate, subtype="PCM_16")


def write_coswara(folder: Path, rng: np.random.Generator) -> None:
    """``combined_data.csv`` and ``Extracted_data/<YYYYMMDD>/<id>/{cough-heavy, cough-shallow, counting-normal}.wav``
    (48 kHz): ``SIZES["coswara"]`` participants of each kind of ``COSWARA_KINDS``; positive coughs (RT-PCR
    positive) have the higher tone."""
    rows = []
    kinds = [kind for kind, n in SIZES["coswara"].items() for _ in range(n)]
    for i, kind in enumerate(kinds):
        pid, date = f"fixture{i:03d}", f"2021{1 + i % 12:02d}{1 + i % 28:02d}"
        status, test_type, test_status = COSWARA_KINDS[kind]
        rows.append((pid, str(20 + i % 50), status, f"{date[:4]}-{date[4:6]}-{date[6:]}", "female" if i % 2 else
                     "male", "India", test_type, f"{date[:4]}-{date[4:6]}-{date[6:]}", test_status))
        for sound in (*audio.COSWARA_COUGHS, "counting-normal"):
            _wav(folder / "Extracted_data" / date / pid / f"{sound}.wav", int(kind == "positive"), 2, "coswara", rng)
    lines = [",".join(COSWARA_COLUMNS), *(",".join(row) for row in rows)]
    (folder / "combined_data.csv").write_text("\n".join(lines) + "\n")
    _mark(folder, dataset="coswara", recordings={"positive": 2 * SIZES["coswara"]["positive"],
                                                 "negative": 2 * SIZES["coswara"]["negative"]})


def write_gtzan(folder: Path, rng: np.random.Generator) -> None:
    """``genres/<genre>/<genre>.000NN.wav`` (22,050 Hz, 2 s; the loader pads to 30 s)."""
    genres = audio.GTZAN_GENRES
    for label, genre in enumerate(genres):
        for k in range(SIZES["gtzan"]["clips"]):
            _wav(folder / "genres" / genre / f"{genre}.{k:05d}.wav", label, len(genres), "gtzan", rng)
    _mark(folder, dataset="gtzan")


def write_speech_commands(folder: Path, rng: np.random.Generator) -> None:
    """``<word>/<speaker>_nohash_0.wav`` for the 35 words of v0.02 (16 kHz, 1 s), ``_background_noise_/``, and the
    official lists ``validation_list.txt`` and ``testing_list.txt`` naming each word's val and test speakers."""
    sizes = SIZES["speech_commands"]
    lists: dict[str, list[str]] = {"val": [], "test": []}
    for label, word in enumerate(SPEECH_WORDS):
        for split, n in sizes.items():
            for k in range(n):
                name = f"{word}/{hashlib.md5(f'{word}{split}{k}'.encode()).hexdigest()[:8]}_nohash_0.wav"
                _wav(folder / name, label, len(SPEECH_WORDS), "speech_commands", rng)
                if split in lists:
                    lists[split].append(name)
    noise = folder / "_background_noise_" / "white_noise.wav"
    noise.parent.mkdir()
    sf.write(noise, (0.1 * rng.normal(size=16_000)).astype(np.float32), 16_000, subtype="PCM_16")
    (folder / "validation_list.txt").write_text("\n".join(lists["val"]) + "\n")
    (folder / "testing_list.txt").write_text("\n".join(lists["test"]) + "\n")
    _mark(folder, dataset="speech_commands")


def write_dcase2018_task1a(folder: Path, rng: np.random.Generator) -> None:
    """``meta.csv``, ``audio/<scene>-<city>-<id>-<segment>-a.wav`` (48 kHz, 1 s; the loader pads to 10 s) and
    ``evaluation_setup/fold1_train.txt``, ``fold1_evaluate.txt``: per scene, ``SIZES`` recordings in each list,
    the cities of the two lists disjoint as in the official fold."""
    meta = ["filename\tscene_label\tidentifier\tsource_label"]
    lists: dict[str, list[str]] = {"train": [], "test": []}
    for label, scene in enumerate(DCASE_SCENES):
        for split, n in SIZES["dcase2018_task1a"].items():
            cities = DCASE_CITIES[:4] if split == "train" else DCASE_CITIES[4:]
            for k in range(n):
                city = cities[k % len(cities)]
                name = f"audio/{scene}-{city}-{100 * label + k}-{k}-a.wav"
                _wav(folder / name, label, len(DCASE_SCENES), "dcase2018_task1a", rng)
                meta.append(f"{name}\t{scene}\t{city}-{100 * label + k}\ta")
                lists[split].append(f"{name}\t{scene}")
    (folder / "meta.csv").write_text("\n".join(meta) + "\n")
    (folder / "evaluation_setup").mkdir()
    for split, stem in audio.DCASE_FOLD1.items():
        (folder / "evaluation_setup" / f"{stem}.txt").write_text("\n".join(lists[split]) + "\n")
    _mark(folder, dataset="dcase2018_task1a")
