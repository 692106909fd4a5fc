"""Audio: the log-mel front end, file reading, the paper's four audio datasets, and the split entry point.

Front end (paper, Section 4.1): :func:`log_mel` -- a 64-band mel power spectrogram with an FFT window of
``frame_ms`` (100 ms downstream, 40 ms scenes and music, 30 ms speech) and 50 % overlap, then
``log(mel + 1e-6)``.

Files are read with ``soundfile``, mixed to mono, resampled with torchaudio when the rate differs, and
zero-padded or cropped (from the start) to a fixed duration per dataset, ``SECONDS``:

=====================  =======  ============================================================
dataset                seconds  why
=====================  =======  ============================================================
``coswara``            8        coughs are ~3-8 s (paper, 4.1); shorter ones are zero-padded
``gtzan``              30       GTZAN excerpts are 30 s
``speech_commands``    1        Speech Commands clips are at most 1 s
``dcase2018_task1a``   10       DCASE 2018 segments are 10 s
``synth_*``            1-2      see :mod:`nclib.data.synth`
=====================  =======  ============================================================

Paper loaders read the datasets from ``data_root/<dataset>`` (layouts and where to get them: ``DATASETS``,
checked by :func:`locate`; details in each loader's docstring): :func:`load_coswara`, :func:`load_gtzan`,
:func:`load_speech_commands`, :func:`load_dcase2018_task1a`. :func:`audio_splits` returns the train / val / test
splits of a profile's task, synthetic (``mini``) or real (``paper``), through one code path.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
import torchaudio

from nclib.data import synth
from nclib.data.splits import stratified_split

SECONDS = {"coswara": 8.0, "gtzan": 30.0, "speech_commands": 1.0, "dcase2018_task1a": 10.0} | synth.SECONDS
SOURCE_SPLIT = {"train": 0.8, "val": 0.1, "test": 0.1}  # source tasks without an official split
TASKS = ("scenes", "music", "speech", "downstream")

GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
COSWARA_COUGHS = ("cough-heavy", "cough-shallow")
COSWARA_POSITIVE = ("positive_mild", "positive_moderate", "positive_asymp")


# --------------------------------------------------------------------------------------------------------------
# Front end
# --------------------------------------------------------------------------------------------------------------
def log_mel(wave: torch.Tensor, sample_rate: int, frame_ms: float, n_mels: int = 64) -> torch.Tensor:
    """Log-mel spectrogram ``log(M |STFT(wave)|^2 + 1e-6)`` (natural log; the paper's front end, Section 4.1).

    ``wave``: float tensor ``T`` or ``B x T``, on any device. The STFT uses a Hann window of
    ``n = round(sample_rate * frame_ms / 1000)`` samples, ``n_fft = n`` and hop ``n // 2`` (50 % overlap),
    centred frames; ``M`` is a slaney-scale, slaney-normalised mel filterbank from 0 Hz to Nyquist (every
    band non-empty for the paper's frames at 16 and 48 kHz). Returns ``.. x n_mels x (1 + T // hop)``,
    float32, on ``wave``'s device. ``log`` rather than ``AmplitudeToDB``: no ``top_db`` clipping relative
    to a batch maximum, so a gain ``g`` shifts every value by ``log g^2`` (above the 1e-6 floor).
    """
    if not isinstance(wave, torch.Tensor):
        raise ValueError(f"wave must be a torch.Tensor, got {type(wave).__name__}")
    if wave.ndim not in (1, 2) or wave.shape[-1] == 0:
        raise ValueError(f"wave must be T or B x T samples, got shape {tuple(wave.shape)}")
    if not wave.is_floating_point():
        raise ValueError(f"wave must be floating point (samples in [-1, 1]), got dtype {wave.dtype}")
    n = round(sample_rate * frame_ms / 1000)
    if n < 4 or n > wave.shape[-1] * 2:
        raise ValueError(f"a {frame_ms} ms frame at {sample_rate} Hz is {n} samples; need 4 <= n <= 2 x length")
    mel = _mel_transform(int(sample_rate), n, int(n_mels), str(wave.device))
    return torch.log(mel(wave.to(torch.float32)) + 1e-6)


@lru_cache(maxsize=16)
def _mel_transform(sample_rate: int, n: int, n_mels: int, device: str) -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=n, win_length=n, hop_length=n // 2, n_mels=n_mels,
        power=2.0, norm="slaney", mel_scale="slaney",
    ).to(device)  # fmt: skip


def read_audio(path: str | Path, sample_rate: int, seconds: float) -> torch.Tensor:
    """Read an audio file with soundfile; mono mix, resample (torchaudio) to ``sample_rate``, zero-pad or
    crop from the start to ``round(seconds * sample_rate)`` samples. Returns a float32 tensor ``T``."""
    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    wave = torch.from_numpy(x.mean(axis=1))
    if rate != sample_rate:
        wave = _resampler(rate, sample_rate)(wave)
    n = round(seconds * sample_rate)
    return torch.nn.functional.pad(wave[:n], (0, max(0, n - wave.shape[0])))


@lru_cache(maxsize=8)
def _resampler(orig: int, new: int) -> torchaudio.transforms.Resample:
    return torchaudio.transforms.Resample(orig, new)  # computes the sinc kernel once


# --------------------------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AudioFiles:
    """Audio files and their classes: ``paths[i]`` has class ``class_names[labels[i]]``."""

    paths: tuple[Path, ...]
    labels: np.ndarray  # int64
    class_names: tuple[str, ...]

    def subset(self, index: np.ndarray) -> AudioFiles:
        return AudioFiles(tuple(self.paths[i] for i in index), self.labels[index], self.class_names)


class WaveDataset(torch.utils.data.Dataset):
    """Clips in memory: item ``i`` is ``(waves[i], labels[i])``, a float32 tensor ``T`` and an int."""

    def __init__(self, waves: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], sample_rate: int):
        self.waves = torch.as_tensor(waves, dtype=torch.float32)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = tuple(class_names)
        self.sample_rate = sample_rate

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.waves[i], int(self.labels[i])


class AudioFileDataset(torch.utils.data.Dataset):
    """Clips read lazily from files with :func:`read_audio`: item ``i`` is ``(wave float32 T, label)``."""

    def __init__(self, files: AudioFiles, sample_rate: int, seconds: float):
        self.files = files
        self.labels = files.labels
        self.class_names = files.class_names
        self.sample_rate = sample_rate
        self.seconds = seconds

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return read_audio(self.files.paths[i], self.sample_rate, self.seconds), int(self.labels[i])


def audio_splits(profile, task: str) -> dict[str, torch.utils.data.Dataset]:
    """Train / val / test datasets of ``task`` (``scenes``, ``music``, ``speech`` or ``downstream``) of a
    profile (:func:`nclib.config.load_profile`); items are ``(wave float32 T, label)`` at
    ``profile.audio.sample_rate``.

    Synthetic tasks (``mini``) are generated and cached (:func:`nclib.data.synth.load_synth`):
    ``audio.synth_per_class`` clips per class for sources, ``n_positive`` / ``n_negative`` downstream. Real
    datasets (``paper``) are read lazily from ``profile.data_root/<dataset>``. Splits: the official ones
    for Speech Commands; DCASE 2018's fold 1 (train / evaluate as test) with 10 % of train, stratified,
    as val; otherwise stratified and seeded by ``profile.seed`` -- downstream by
    ``profile.audio.downstream.split`` (70 / 15 / 15 in the paper), sources 80 / 10 / 10. Every task is
    resampled to the one profile rate, so source and downstream spectrograms cover the same mel bands.
    """
    if task not in TASKS:
        raise ValueError(f"unknown audio task {task!r}; choose one of {TASKS}")
    cfg = profile.audio
    name = cfg.downstream.dataset if task == "downstream" else cfg.sources[task]
    fractions = SOURCE_SPLIT
    if task == "downstream":
        fractions = dict(zip(("train", "val", "test"), map(float, cfg.downstream.split), strict=True))
    rate, seed = cfg.sample_rate, profile.seed
    if name in synth.SYNTH_TASKS:
        sizes = {"n_per_class": cfg.synth_per_class}
        if task == "downstream":
            sizes = {"n_positive": cfg.downstream.n_positive, "n_negative": cfg.downstream.n_negative}
        waves, labels, names = synth.load_synth(name, profile.cache_dir, sample_rate=rate, seed=seed, **sizes)
        parts = stratified_split(labels, fractions, seed)
        return {k: WaveDataset(waves[i], labels[i], names, rate) for k, i in parts.items()}
    if name not in LOADERS:
        raise ValueError(f"unknown audio dataset {name!r}; choose one of {sorted(LOADERS) + sorted(synth.SYNTH_TASKS)}")
    loaded = LOADERS[name](Path(profile.data_root) / name)
    if isinstance(loaded, AudioFiles):  # coswara, gtzan: no official split
        files = {k: loaded.subset(i) for k, i in stratified_split(loaded.labels, fractions, seed).items()}
        if name == "coswara":
            found = (int(loaded.labels.sum()), int((loaded.labels == 0).sum()))
            if found != (cfg.downstream.n_positive, cfg.downstream.n_negative):
                warnings.warn(f"COSWARA selection gave {found[0]} positive / {found[1]} negative recordings; "
                              f"the profile (paper) expects {cfg.downstream.n_positive} / "
                              f"{cfg.downstream.n_negative}", stacklevel=2)  # fmt: skip
    elif name == "dcase2018_task1a":
        inner = stratified_split(loaded["train"].labels, {"train": 0.9, "val": 0.1}, seed)
        files = {"train": loaded["train"].subset(inner["train"]), "val": loaded["train"].subset(inner["val"])}
        files["test"] = loaded["test"]
    else:  # speech_commands: the official split
        files = loaded
    return {k: AudioFileDataset(f, rate, SECONDS[name]) for k, f in files.items()}


# --------------------------------------------------------------------------------------------------------------
# Paper loaders
# --------------------------------------------------------------------------------------------------------------
# What each loader reads from data_root/<dataset> (<root>) and where to get it, told by its error messages and by
# ``python -m nclib.data check``.
DATASETS = {
    "coswara": {
        "title": "COSWARA",
        "layout": "  <root>/combined_data.csv                 (columns id, covid_status, testType, test_status, ...)\n"
                  "  <root>/Extracted_data/<YYYYMMDD>/<id>/cough-heavy.wav, cough-shallow.wav, ...\n"
                  "  (or the date folders directly under <root>)",
        "source": "`git clone https://github.com/iiscleap/Coswara-Data` (or download it from "
                  "https://github.com/iiscleap/Coswara-Data) and run its `python extract_data.py`, "
                  "then extract it to <root>",
    },
    "gtzan": {
        "title": "GTZAN",
        "layout": "  <root>/genres/<genre>/<genre>.000NN.wav   genres: " + ", ".join(GTZAN_GENRES),
        "source": "download genres.tar.gz (torchaudio.datasets.GTZAN's URL, "
                  "http://opihi.cs.uvic.ca/sound/genres.tar.gz, or the Kaggle copy "
                  "andradaolteanu/gtzan-dataset-music-genre-classification), then extract it to <root>",
    },
    "speech_commands": {
        "title": "Speech Commands v0.02",
        "layout": "  <root>/<word>/<speaker>_nohash_<n>.wav   (35 word folders, _background_noise_)\n"
                  "  <root>/validation_list.txt, <root>/testing_list.txt",
        "source": "download http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz, "
                  "then extract it to <root>",
    },
    "dcase2018_task1a": {
        "title": "DCASE 2018 task 1A",
        "layout": "  <root>/meta.csv   (tab-separated: filename, scene_label, identifier, source_label)\n"
                  "  <root>/audio/<scene>-<city>-<id>-<segment>-a.wav\n"
                  "  <root>/evaluation_setup/fold1_train.txt, fold1_evaluate.txt",
        "source": "download TUT-urban-acoustic-scenes-2018-development.meta.zip and .audio.1-13.zip from "
                  "https://zenodo.org/record/1228142, then extract it to <root>",
    },
}  # fmt: skip
DCASE_FOLD1 = {"train": "fold1_train", "test": "fold1_evaluate"}  # the official lists, evaluate returned as test


def locate(name: str, data_root: str | Path) -> tuple[list[Path], Path | None]:
    """The folder the loader of dataset ``name`` reads, ``data_root/<name>``, as a list, and that folder if its
    layout is in place (None if not). File tests only; the loader may still find files missing or unreadable."""
    root = Path(data_root) / name
    if name == "coswara":
        present = (root / "combined_data.csv").is_file() and bool(_coswara_folders(root))
    elif name == "gtzan":
        present = _gtzan_base(root) is not None
    elif name == "speech_commands":
        present = _speech_commands_base(root) is not None
    elif name == "dcase2018_task1a":
        base = _dcase_base(root)
        present = (base / "meta.csv").is_file() and all(_dcase_list(base, stem) for stem in DCASE_FOLD1.values())
    else:
        raise ValueError(f"unknown audio dataset {name!r}; choose one of {sorted(DATASETS)}")
    return [root], root if present else None


def _missing(name: str, root: Path, what: str) -> FileNotFoundError:
    facts = DATASETS[name]
    return FileNotFoundError(
        f"{facts['title']} not found: looked for {what} in {root}.\nExpected layout:\n{facts['layout']}\n"
        f"How to get it: {facts['source'].replace('<root>', str(root))} (or pass data_root=... / set "
        f"NCLIB_DATA_ROOT so that data_root/{root.name} holds it)."
    )


def load_coswara(root: str | Path) -> AudioFiles:
    """COSWARA cough recordings with an RT-PCR result (Bhattacharya et al. 2023); label 1 = COVID-19 positive.

    Our reading of the paper's "PCR test information available" (Section 4.1; the paper selected 960
    positive and 428 negative recordings and does not give its rule): participants whose ``testType`` is
    ``rtpcr`` and whose ``test_status`` is ``p`` with a current positive ``covid_status``
    (``COSWARA_POSITIVE``; recovered participants are left out) are positive, those with ``test_status``
    ``n`` negative; each participant contributes both cough recordings (``COSWARA_COUGHS``) that exist
    and are not empty. Layout: ``DATASETS["coswara"]`` (the repository's ``extract_data.py`` writes
    ``Extracted_data``). Missing or empty files are skipped with a warning.
    """
    root = Path(root)
    csv = root / "combined_data.csv"
    if not csv.is_file():
        raise _missing("coswara", root, "combined_data.csv")
    meta = pd.read_csv(csv, dtype=str, keep_default_na=False)
    needed = {"id", "covid_status", "testType", "test_status"}
    if not needed <= set(meta.columns):
        raise ValueError(f"{csv} lacks columns {sorted(needed - set(meta.columns))}; found {list(meta.columns)}. "
                         f"Is it the current combined_data.csv of iiscleap/Coswara-Data?")  # fmt: skip
    pcr = meta["testType"].str.lower().str.replace("-", "").str.strip() == "rtpcr"
    status = meta["test_status"].str.lower().str.strip()
    positive = pcr & (status == "p") & meta["covid_status"].isin(COSWARA_POSITIVE)
    negative = pcr & (status == "n")
    folders = _coswara_folders(root)
    if not folders:
        raise _missing("coswara", root, "date folders <YYYYMMDD>/<id>/ with the recordings")
    paths, labels, skipped = [], [], 0
    selected = positive | negative
    for pid, label in zip(meta["id"][selected], positive[selected].astype(int), strict=True):
        for cough in COSWARA_COUGHS:
            path = folders.get(pid, root / "missing") / f"{cough}.wav"
            if path.is_file() and path.stat().st_size > 44:  # 44 bytes: a WAV header without samples
                paths.append(path)
                labels.append(label)
            else:
                skipped += 1
    if not paths:
        raise ValueError(f"no COSWARA recording in {root} matches the selection (RT-PCR, test_status p/n)")
    if skipped:
        warnings.warn(f"COSWARA: skipped {skipped} selected cough recordings that are missing or empty", stacklevel=2)
    return AudioFiles(tuple(paths), np.asarray(labels, dtype=np.int64), ("negative", "positive"))


def _coswara_folders(root: Path) -> dict[str, Path]:
    """Participant id -> folder of its recordings, from the date folders in ``root/Extracted_data`` or ``root``."""
    folders = {}
    for base in (root / "Extracted_data", root):
        for date in sorted(base.glob("20*")):
            if date.is_dir():
                folders.update({p.name: p for p in date.iterdir() if p.is_dir()})
    return folders


def load_gtzan(root: str | Path) -> AudioFiles:
    """GTZAN music genres (Tzanetakis & Cook 2002): 10 genres x 100 clips, 30 s at 22,050 Hz.

    Layout (torchaudio's, or Kaggle's ``Data/genres_original``): ``<root>/genres/<genre>/<genre>.000NN.wav``.
    Files soundfile cannot open (the original ``jazz.00054.wav`` is corrupt) are skipped with a warning.
    """
    root = Path(root)
    base = _gtzan_base(root)
    if base is None:
        raise _missing("gtzan", root, "genres/<genre>/ folders for all 10 genres")
    paths, labels, bad = [], [], []
    for label, genre in enumerate(GTZAN_GENRES):
        for path in sorted((base / genre).glob(f"{genre}.*.wav")):
            try:
                sf.info(str(path))
            except RuntimeError:  # soundfile.LibsndfileError (older soundfile: RuntimeError)
                bad.append(path.name)
                continue
            paths.append(path)
            labels.append(label)
    if bad:
        warnings.warn(f"GTZAN: skipped {len(bad)} unreadable file(s): {', '.join(bad)}", stacklevel=2)
    return AudioFiles(tuple(paths), np.asarray(labels, dtype=np.int64), GTZAN_GENRES)


def _gtzan_base(root: Path) -> Path | None:
    """``root/genres`` (or Kaggle's ``root/Data/genres_original``) if it holds a folder per genre, else None."""
    base = next((b for b in (root / "genres", root / "Data" / "genres_original") if b.is_dir()), None)
    return base if base is not None and all((base / g).is_dir() for g in GTZAN_GENRES) else None


def load_speech_commands(root: str | Path) -> dict[str, AudioFiles]:
    """Speech Commands v0.02 (Warden 2018): 35 words, 1 s at 16 kHz, the official train / val / test split.

    Layout: ``<root>/<word>/<speaker>_nohash_<n>.wav``, ``<root>/validation_list.txt``,
    ``<root>/testing_list.txt`` (or torchaudio's ``<root>/SpeechCommands/speech_commands_v0.02/``).
    Classes are the word folders (``_background_noise_`` excluded); train is every clip in no list.
    """
    root = Path(root)
    base = _speech_commands_base(root)
    if base is None:
        raise _missing("speech_commands", root, "validation_list.txt and testing_list.txt")
    words = tuple(sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("_")))
    lists = {k: set((base / f).read_text().split()) for k, f in (("val", "validation_list.txt"),
                                                                ("test", "testing_list.txt"))}  # fmt: skip
    out: dict[str, tuple[list[Path], list[int]]] = {k: ([], []) for k in ("train", "val", "test")}
    for label, word in enumerate(words):
        for path in sorted((base / word).glob("*.wav")):
            rel = f"{word}/{path.name}"
            split = "val" if rel in lists["val"] else "test" if rel in lists["test"] else "train"
            out[split][0].append(path)
            out[split][1].append(label)
    return {k: AudioFiles(tuple(p), np.asarray(y, dtype=np.int64), words) for k, (p, y) in out.items()}


def _speech_commands_base(root: Path) -> Path | None:
    """``root`` (or torchaudio's folder in it) if it holds both split lists, else None."""
    base = next((b for b in (root, root / "SpeechCommands" / "speech_commands_v0.02")
                 if (b / "validation_list.txt").is_file()), None)  # fmt: skip
    return base if base is not None and (base / "testing_list.txt").is_file() else None


def load_dcase2018_task1a(root: str | Path) -> dict[str, AudioFiles]:
    """DCASE 2018 task 1A development set (TUT Urban Acoustic Scenes 2018): 10 scenes, 10 s at 48 kHz;
    fold 1's official ``train`` and ``evaluate`` (returned as ``test``) lists.

    Layout (``<root>`` or ``<root>/TUT-urban-acoustic-scenes-2018-development``): ``meta.csv``
    (tab-separated, header ``filename scene_label identifier source_label``), ``audio/<scene>-<city>-<id>-
    <segment>-a.wav``, ``evaluation_setup/fold1_train.txt`` and ``fold1_evaluate.txt`` (tab-separated
    ``audio/<file>.wav<TAB><scene>``; ``.csv`` names and a header line are accepted too).
    """
    root = Path(root)
    base = _dcase_base(root)
    lists = {}
    for split, stem in DCASE_FOLD1.items():
        found = _dcase_list(base, stem)
        if not (base / "meta.csv").is_file() or found is None:
            raise _missing("dcase2018_task1a", root, f"meta.csv and evaluation_setup/{stem}.txt")
        cells = [line.split("\t") for line in found.read_text().splitlines() if line.strip()]
        lists[split] = [(r[0].strip(), r[1].strip()) for r in cells if r[0].strip() != "filename"]
    meta = pd.read_csv(base / "meta.csv", sep="\t", dtype=str)
    if not {"filename", "scene_label"} <= set(meta.columns):
        raise ValueError(f"{base / 'meta.csv'} lacks filename / scene_label columns; found {list(meta.columns)}")
    scene_of = dict(zip(meta["filename"], meta["scene_label"], strict=True))
    scenes = tuple(sorted(set(scene_of.values()) | {s for rows in lists.values() for _, s in rows}))
    out = {}
    for split, rows in lists.items():
        paths = [base / f for f, _ in rows]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise _missing("dcase2018_task1a", root, f"{len(missing)} audio files such as {missing[0]}")
        labels = [scenes.index(scene_of.get(f, s)) for f, s in rows]
        out[split] = AudioFiles(tuple(paths), np.asarray(labels, dtype=np.int64), scenes)
    return out


def _dcase_base(root: Path) -> Path:
    """``root``, or the unpacked development folder in it, whichever holds ``meta.csv`` (``root`` if neither)."""
    return next((b for b in (root, root / "TUT-urban-acoustic-scenes-2018-development")
                 if (b / "meta.csv").is_file()), root)  # fmt: skip


def _dcase_list(base: Path, stem: str) -> Path | None:
    """``base/evaluation_setup/<stem>.txt`` (or ``.csv``), None if neither exists."""
    return next((f for f in (base / "evaluation_setup" / f"{stem}.{ext}" for ext in ("txt", "csv")) if f.is_file()),
                None)  # fmt: skip


LOADERS: dict[str, Callable[[str | Path], AudioFiles | dict[str, AudioFiles]]] = {
    "coswara": load_coswara,
    "gtzan": load_gtzan,
    "speech_commands": load_speech_commands,
    "dcase2018_task1a": load_dcase2018_task1a,
}
