"""Synthetic ``mini`` audio: offline stand-ins for the paper's audio tasks, generated from Debian packages.

The ``mini`` profile cannot download COSWARA, DCASE 2018, GTZAN or Speech Commands, so it *synthesises*
four tasks of the same kinds. They are synthetic audio, not recordings; say so wherever results are shown.

======================  ==================================  ===========================================
task                    stands in for                       made from (Debian package)
======================  ==================================  ===========================================
``synth_speech``        Speech Commands (keywords)          ``espeak-ng``: 10 keywords, 12 voice variants,
                                                            5 accents, varied speed and pitch
``synth_music``         GTZAN (music genres)                ``fluidsynth`` + ``fluid-soundfont-gm``: short
                                                            phrases of 8 General-MIDI instrument families
``synth_scenes``        DCASE 2018 task 1A (scenes)         ``sonic-pi-samples`` beds and events mixed with
                                                            coloured noise: 6 "scenes"
``synth_voice_quality`` COSWARA cough COVID-19 detection    ``espeak-ng`` with graded breathy/creaky voice
                        (binary, imbalanced, AUROC)         variants: positive = disordered voice quality
======================  ==================================  ===========================================

Every clip gets random gain and coloured noise (white/pink/brown/blue) at a random SNR so the tasks are
not trivial. ``synth_voice_quality`` is deliberately overlapping: both classes draw a voice-quality
*severity* from overlapping distributions, so a good linear probe reaches an AUROC of about 0.8-0.95, not 1.
Its texts (counting, greetings) are words no source task uses.

Generation is deterministic: item ``i`` of a task draws everything from ``numpy.random.default_rng((seed,
task, i))`` and the external renderers are deterministic, so the same arguments give identical arrays.
The espeak-ng and fluidsynth calls run in a small process pool (fork); resampling is polyphase
(``scipy.signal.resample_poly``). ``load_synth`` caches the result as a checksummed ``.npz`` under ``cache_dir/synth/``
(:mod:`nclib.cache`), keyed by every argument, this module's code (:func:`nclib.cache.code_digest`: editing
the generators regenerates the audio) and the tools' versions.

System packages: ``apt-get install -y espeak-ng fluidsynth fluid-soundfont-gm sonic-pi-samples``.
"""

from __future__ import annotations

import inspect
import io
import math
import multiprocessing
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly
from tqdm.auto import tqdm

from nclib import cache

SECONDS = {"synth_speech": 1.0, "synth_music": 2.0, "synth_scenes": 2.0, "synth_voice_quality": 2.0}
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SONIC_PI_SAMPLES = Path("/usr/share/sonic-pi/samples")
PACKAGES = {
    "synth_speech": ("espeak-ng",),
    "synth_music": ("fluidsynth", "fluid-soundfont-gm"),
    "synth_scenes": ("sonic-pi-samples",),
    "synth_voice_quality": ("espeak-ng",),
}

SPEECH_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")  # Speech Commands' core 10
SPEECH_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
SPEECH_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp")

# General-MIDI families: first program of each block of 8 (GM 1 numbering minus 1).
MUSIC_FAMILIES = {
    "piano": 0, "chromatic_percussion": 8, "organ": 16, "guitar": 24,
    "bass": 32, "strings": 40, "brass": 56, "reed": 64,
}  # fmt: skip

# Scene -> (bed samples, event samples, events per second, favoured noise colour exponent).
SCENES = {
    "ambient_hall": (
        ("ambi_drone", "ambi_glass_hum", "ambi_haunted_hum", "ambi_sauna", "ambi_lunar_land", "ambi_dark_woosh"),
        ("ambi_swoosh", "ambi_choir", "ambi_glass_rub", "ambi_soft_buzz", "ambi_piano"),
        0.8, 1.0,
    ),
    "club": (
        ("loop_amen", "loop_amen_full", "loop_breakbeat", "loop_electric", "loop_mehackit1", "loop_mehackit2"),
        ("bd_808", "bd_boom", "bd_fat", "bd_haus", "bd_klub", "bd_tek", "bass_hit_c", "bass_voxy_hit_c", "sn_dub"),
        3.0, 2.0,
    ),
    "workshop": (
        ("loop_3d_printer", "loop_industrial", "loop_compus", "loop_weirdo"),
        ("perc_impact1", "perc_impact2", "perc_door", "glitch_perc1", "glitch_perc2", "glitch_perc3",
         "drum_heavy_kick", "elec_wood"),
        1.5, 0.0,
    ),
    "office": (
        (),
        ("elec_beep", "elec_blip", "elec_blip2", "elec_ping", "elec_chime", "elec_bell", "elec_plip", "elec_tick",
         "mehackit_phone1", "mehackit_phone2", "mehackit_phone3", "mehackit_phone4", "perc_till", "perc_snap"),
        2.0, 1.0,
    ),
    "market": (
        ("loop_tabla", "loop_safari"),
        ("tabla_dhec", "tabla_ghe1", "tabla_ghe4", "tabla_na", "tabla_na_o", "tabla_re", "tabla_tas1", "tabla_te1",
         "tabla_tun1", "tabla_ke1"),
        2.5, 1.0,
    ),
    "rehearsal_room": (
        ("guit_em9", "guit_e_fifths", "guit_e_slide", "guit_harmonics"),
        ("drum_snare_hard", "drum_snare_soft", "drum_tom_hi_hard", "drum_tom_lo_hard", "drum_tom_mid_soft",
         "drum_cymbal_closed", "drum_cymbal_open", "drum_cowbell", "drum_splash_soft"),
        2.5, -1.0,
    ),
}  # fmt: skip
SCENE_DISTRACTORS = (
    "misc_crow", "vinyl_hiss", "vinyl_scratch", "perc_swoosh", "perc_swash", "misc_burp", "glitch_robot1",
    "mehackit_robot1", "vinyl_rewind", "elec_twang",
)  # fmt: skip

VQ_TEXTS = ("one two three", "four five six", "seven eight nine", "good morning", "thank you very much",
            "how are you", "hello there", "ah")  # fmt: skip
VQ_LEVELS = 8  # voice-quality severity levels 0 (modal voice) .. 7 (very breathy, creaky, wavering)
VQ_CLASSES = ("healthy_voice", "disordered_voice")

_TASK_ID = {"synth_speech": 1, "synth_music": 2, "synth_scenes": 3, "synth_voice_quality": 4}
_ESPEAK_RATE = 22050


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------
Synth = tuple[np.ndarray, np.ndarray, tuple[str, ...]]  # waves (N x T float32), labels (N int64), class names


def synth_speech(n_per_class: int, sample_rate: int = 16000, seed: int = 0, workers: int | None = None) -> Synth:
    """Keyword clips (1 s): ``SPEECH_WORDS`` spoken by espeak-ng with random voice variant, accent, speed,
    pitch, placement, gain and noise. Stand-in for Speech Commands; ``n_per_class`` clips per word."""
    _require("synth_speech")
    n_classes = len(SPEECH_WORDS)
    labels = np.arange(n_per_class * n_classes, dtype=np.int64) % n_classes
    rngs = _rngs("synth_speech", seed, len(labels))
    argvs = []
    for y, rng in zip(labels, rngs, strict=True):
        voice = f"{rng.choice(SPEECH_ACCENTS)}+{rng.choice(SPEECH_VARIANTS)}"
        argvs.append(["-v", voice, "-s", str(rng.integers(110, 221)), "-p", str(rng.integers(15, 86)),
                      SPEECH_WORDS[y]])  # fmt: skip
    finish = {"n": round(SECONDS["synth_speech"] * sample_rate), "sample_rate": sample_rate, "snr_db": (0.0, 30.0)}
    return _speak(argvs, rngs, finish, workers, "synth_speech"), labels, SPEECH_WORDS


def synth_music(n_per_class: int, sample_rate: int = 16000, seed: int = 0, workers: int | None = None) -> Synth:
    """Instrument-family clips (2 s): a short random phrase (single notes or chords, random tempo, register,
    velocity) played by a random program of one General-MIDI family, rendered by fluidsynth with the
    FluidR3 GM soundfont. Stand-in for GTZAN; classes are ``MUSIC_FAMILIES``."""
    _require("synth_music")
    names = tuple(MUSIC_FAMILIES)
    labels = np.arange(n_per_class * len(names), dtype=np.int64) % len(names)
    rngs = _rngs("synth_music", seed, len(labels))
    clip_s = SECONDS["synth_music"]
    phrases = [_phrase(rng, MUSIC_FAMILIES[names[y]], names[y], clip_s) for y, rng in zip(labels, rngs, strict=True)]
    chunk = 64  # fixed, so the output does not depend on the number of workers
    jobs = [(phrases[i : i + chunk], rngs[i : i + chunk], sample_rate, clip_s) for i in range(0, len(phrases), chunk)]
    return np.concatenate(_map(_render_midi, jobs, [len(j[0]) for j in jobs], workers, "synth_music")), labels, names


def synth_scenes(n_per_class: int, sample_rate: int = 16000, seed: int = 0, workers: int | None = None) -> Synth:
    """Acoustic-scene clips (2 s): a looped background bed and Poisson-timed foreground events drawn from
    scene-specific pools of sonic-pi samples (random rate change, gain, onset), shared distractor sounds,
    and coloured noise whose colour favours, but does not identify, the scene. Stand-in for DCASE 2018."""
    _require("synth_scenes")
    names = tuple(SCENES)
    labels = np.arange(n_per_class * len(names), dtype=np.int64) % len(names)
    _sonic_pi_pool(sample_rate)  # load once here; forked workers inherit it
    jobs = [(labels[i : i + 100], range(i, min(i + 100, len(labels))), seed, sample_rate)
            for i in range(0, len(labels), 100)]  # fmt: skip
    waves = np.concatenate(_map(_scene_chunk, jobs, [len(j[0]) for j in jobs], workers, "synth_scenes"))
    return waves, labels, names


def synth_voice_quality(
    n_positive: int, n_negative: int, sample_rate: int = 16000, seed: int = 0, workers: int | None = None
) -> Synth:
    """Binary voice-quality clips (2 s), the stand-in for cough-based COVID-19 detection (label 1 = positive).

    Counting and greetings (``VQ_TEXTS``) spoken by espeak-ng through custom voice variants of graded
    severity ``0 .. VQ_LEVELS-1`` (voicing down, breath noise, roughness and flutter up). Severity is drawn
    from overlapping distributions (positives ~ Binomial(7, 0.6), negatives ~ Binomial(7, 0.25)), and
    voice, pitch, speed, band-limiting, gain and noise vary in both classes, so the task is not separable.
    """
    _require("synth_voice_quality")
    n = n_positive + n_negative
    labels = np.random.default_rng((seed, _TASK_ID["synth_voice_quality"])).permutation(
        np.r_[np.ones(n_positive, np.int64), np.zeros(n_negative, np.int64)]
    )
    rngs = _rngs("synth_voice_quality", seed, n)
    argvs = []
    for y, rng in zip(labels, rngs, strict=True):
        level = rng.binomial(VQ_LEVELS - 1, 0.6 if y else 0.25)
        variant = f"nclib_{rng.choice(['m', 'f'])}{rng.integers(3)}_{level}"
        argvs.append(["-v", f"en-us+{variant}", "-s", str(rng.integers(120, 191)), "-p", str(rng.integers(20, 81)),
                      str(rng.choice(VQ_TEXTS))])  # fmt: skip
    finish = {"n": round(SECONDS["synth_voice_quality"] * sample_rate), "sample_rate": sample_rate,
              "snr_db": (5.0, 30.0), "lowpass_hz": (2500.0, sample_rate / 2)}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="nclib-espeak-") as data:
        _espeak_voice_quality_data(Path(data))
        waves = _speak(argvs, rngs, finish, workers, "synth_voice_quality", data_path=data)
    return waves, labels, VQ_CLASSES


SYNTH_TASKS: dict[str, Callable[..., Synth]] = {
    "synth_speech": synth_speech,
    "synth_music": synth_music,
    "synth_scenes": synth_scenes,
    "synth_voice_quality": synth_voice_quality,
}


def load_synth(name: str, cache_dir: str | os.PathLike | None, **kwargs) -> Synth:
    """Generate synthetic task ``name`` with ``kwargs`` (sizes, sample_rate, seed), cached under
    ``cache_dir/synth/``; a second call loads the ``.npz`` (allow_pickle=False) instead of regenerating.

    A corrupt or partial cache file is regenerated. ``workers`` is not part of the key (it does not change
    the result). ``cache_dir=None`` disables the cache.
    """
    if name not in SYNTH_TASKS:
        raise ValueError(f"unknown synthetic audio task {name!r}; choose one of {sorted(SYNTH_TASKS)}")
    if cache_dir is None:
        return SYNTH_TASKS[name](**kwargs)
    bound = inspect.signature(SYNTH_TASKS[name]).bind(**kwargs)
    bound.apply_defaults()  # the key holds every argument, given or default
    key = {k: v for k, v in bound.arguments.items() if k != "workers"}
    key |= {"name": name, "code": cache.code_digest(__name__), "tools": _tool_versions(name)}
    path = Path(cache_dir) / "synth" / f"{name}-{cache.key(**key)[:16]}.npz"
    stored = cache.load_arrays(path)  # None when missing, partial or corrupt (with a warning): regenerate
    if stored is not None:
        return _from_pcm16(stored["pcm16"]), stored["labels"].astype(np.int64), tuple(map(str, stored["class_names"]))
    waves, labels, names = SYNTH_TASKS[name](**kwargs)
    cache.save_arrays(path, pcm16=_to_pcm16(waves), labels=labels, class_names=np.array(names))
    return waves, labels, names


def missing_packages(name: str) -> list[str]:
    """Debian packages that ``name`` needs and that are not installed here (empty list: all present)."""
    present = {
        "espeak-ng": shutil.which("espeak-ng") is not None,
        "fluidsynth": shutil.which("fluidsynth") is not None,
        "fluid-soundfont-gm": SOUNDFONT.is_file(),
        "sonic-pi-samples": SONIC_PI_SAMPLES.is_dir(),
    }
    return [p for p in PACKAGES[name] if not present[p]]


# --------------------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------------------
def _require(name: str) -> None:
    missing = missing_packages(name)
    if missing:
        raise RuntimeError(
            f"{name} is generated from Debian packages that are missing here: {' '.join(missing)}. "
            f"Install them with `sudo apt-get install -y {' '.join(missing)}` (or `make system`)."
        )


def _rngs(name: str, seed: int, n: int) -> list[np.random.Generator]:
    """One independent generator per item, so item ``i`` does not depend on the order of generation."""
    return [np.random.default_rng((seed, _TASK_ID[name], i)) for i in range(n)]


def _map(fn: Callable, jobs: Sequence, sizes: Sequence[int], workers: int | None, desc: str) -> list:
    """``[fn(job) for job in jobs]`` in a small process pool (fork: workers inherit loaded samples), in order,
    with a tqdm bar counting items. ``workers``: default ``min(4, cpu_count)``; 1 runs in this process."""
    workers = min(len(jobs), workers if workers is not None else min(4, os.cpu_count() or 1))
    with tqdm(total=sum(sizes), desc=desc, unit="clip", leave=False) as bar:
        if workers <= 1:
            results = []
            for job, size in zip(jobs, sizes, strict=True):
                results.append(fn(job))
                bar.update(size)
            return results
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = []
            for result, size in zip(pool.map(fn, jobs), sizes, strict=True):
                results.append(result)
                bar.update(size)
            return results


def _resample(clips: list[np.ndarray], orig: int, new: int) -> list[np.ndarray]:
    """Resample 1-D clips by polyphase filtering, batched by zero-padding (``scipy.signal.resample_poly``:
    10-20x faster than torchaudio's sinc resampler for ratios such as 44100 -> 16000)."""
    if orig == new:
        return clips
    g = math.gcd(orig, new)
    out = []
    for start in range(0, len(clips), 256):
        batch = clips[start : start + 256]
        padded = np.zeros((len(batch), max(len(c) for c in batch)), np.float32)
        for i, c in enumerate(batch):
            padded[i, : len(c)] = c
        res = resample_poly(padded, new // g, orig // g, axis=1).astype(np.float32)
        out += [res[i, : math.ceil(len(c) * new / orig)] for i, c in enumerate(batch)]
    return out


def _coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Unit-RMS noise with power spectrum ~ 1/f^exponent (0 white, 1 pink, 2 brown, -1 blue)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    x = np.fft.irfft(spec * f ** (-exponent / 2), n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)) + 1e-12)


def _trim(x: np.ndarray, threshold: float = 1e-3) -> np.ndarray:
    loud = np.flatnonzero(np.abs(x) > threshold)
    return x[loud[0] : loud[-1] + 1] if len(loud) else x


def _finish(
    clips: list[np.ndarray],
    rngs: list[np.random.Generator],
    n: int,
    sample_rate: int,
    snr_db: tuple[float, float] | None = None,
    place: bool = True,
    lowpass_hz: tuple[float, float] | None = None,
) -> np.ndarray:
    """Per item: place the clip at a random offset in ``n`` samples (or crop/pad), band-limit it at a random
    cutoff in ``lowpass_hz``, add coloured noise at a random SNR in ``snr_db`` (dB), and set a random level
    (RMS -35 .. -15 dBFS, peak <= 0.99). Samples are on the 16-bit grid (the cache stores them as int16)."""
    out = np.zeros((len(clips), n), np.float32)
    for i, (clip, rng) in enumerate(zip(clips, rngs, strict=True)):
        x = np.asarray(clip, np.float64)
        if place:
            x = _trim(x)
            if len(x) > n:
                start = rng.integers(len(x) - n + 1)
                x = x[start : start + n]
            y = np.zeros(n)
            offset = rng.integers(n - len(x) + 1)
            y[offset : offset + len(x)] = x
            x = y
        else:
            x = np.pad(x[:n], (0, max(0, n - len(x))))
        if lowpass_hz is not None:  # 4th-order Butterworth-like magnitude, like different microphones
            f = np.fft.rfftfreq(n, d=1.0 / sample_rate)
            x = np.fft.irfft(np.fft.rfft(x) / np.sqrt(1 + (f / rng.uniform(*lowpass_hz)) ** 8), n)
        if snr_db is not None:
            colour = rng.choice([-1.0, 0.0, 1.0, 2.0])
            x = x + _coloured_noise(rng, n, colour) * _rms(x) * 10 ** (-rng.uniform(*snr_db) / 20)
        x = x * 10 ** (rng.uniform(-35, -15) / 20) / _rms(x)
        peak = np.abs(x).max()
        out[i] = x / peak * 0.99 if peak > 0.99 else x
    return _from_pcm16(_to_pcm16(out))


def _to_pcm16(waves: np.ndarray) -> np.ndarray:
    return np.round(waves * 32767).astype(np.int16)


def _from_pcm16(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / np.float32(32767)


def _run(cmd: list[str]) -> bytes:
    """Run an external renderer; return its stdout, or raise ``RuntimeError`` with its stderr."""
    done = subprocess.run(cmd, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return done.stdout


def _tool_versions(name: str) -> list[str]:
    tools = {"synth_speech": ["espeak-ng"], "synth_voice_quality": ["espeak-ng"], "synth_music": ["fluidsynth"]}
    out = []
    for tool in tools.get(name, []):
        try:
            text = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False).stdout
            out.append(text.splitlines()[0] if text else tool)
        except OSError:
            out.append(f"{tool} missing")
    return out


# --------------------------------------------------------------------------------------------------------------
# espeak-ng
# --------------------------------------------------------------------------------------------------------------
def _speak(
    argvs: list[list[str]],
    rngs: list[np.random.Generator],
    finish: dict,
    workers: int | None,
    desc: str,
    data_path: str | None = None,
) -> np.ndarray:
    """Run ``espeak-ng ARGV --stdout`` for every item, resample and ``_finish(**finish)`` them, in a pool."""
    prefix = ["espeak-ng"] + ([f"--path={data_path}"] if data_path else [])
    jobs = [([prefix + a for a in argvs[i : i + 50]], rngs[i : i + 50], finish) for i in range(0, len(argvs), 50)]
    return np.concatenate(_map(_espeak_chunk, jobs, [len(j[0]) for j in jobs], workers, desc))


def _espeak_chunk(job: tuple[list[list[str]], list[np.random.Generator], dict]) -> np.ndarray:
    commands, rngs, finish = job
    clips = []
    for cmd in commands:
        wav = _run([*cmd[:-1], "--stdout", cmd[-1]])
        x, rate = sf.read(io.BytesIO(wav), dtype="float32")
        if rate != _ESPEAK_RATE:
            raise RuntimeError(f"espeak-ng wrote {rate} Hz, expected {_ESPEAK_RATE} Hz")
        clips.append(x)
    return _finish(_resample(clips, _ESPEAK_RATE, finish["sample_rate"]), rngs, **finish)


def _espeak_data_path() -> Path:
    text = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True).stdout
    if "Data at:" not in text:
        raise RuntimeError(f"cannot find espeak-ng's data folder in `espeak-ng --version`: {text!r}")
    return Path(text.split("Data at:")[1].strip())


def _espeak_voice_quality_data(root: Path) -> None:
    """Make ``root/espeak-ng-data``: links to the system data plus graded voice-quality variants
    ``nclib_<m|f><timbre>_<level>`` (espeak-ng looks variants up only in its data folder)."""
    system = _espeak_data_path()
    data = root / "espeak-ng-data"
    variants = data / "voices" / "!v"
    variants.mkdir(parents=True)
    for entry in system.iterdir():
        if entry.name != "voices":
            (data / entry.name).symlink_to(entry)
    for entry in (system / "voices").iterdir():
        if entry.name != "!v":
            (data / "voices" / entry.name).symlink_to(entry)
    for entry in (system / "voices" / "!v").iterdir():
        (variants / entry.name).symlink_to(entry)
    for gender, pitch, formants in (("m", "75 120", (95, 100, 105)), ("f", "140 220", (108, 114, 120))):
        for timbre, scale in enumerate(formants):
            for level in range(VQ_LEVELS):
                s = level / (VQ_LEVELS - 1)
                breath = " ".join(str(round(s * b)) for b in (60, 60, 45, 35, 15, 10))
                lines = [
                    "language variant",
                    f"name nclib_{gender}{timbre}_{level}",
                    f"gender {'male' if gender == 'm' else 'female'}",
                    f"pitch {pitch}",
                    *(f"formant {k} {scale} 100 100" for k in range(1, 4)),
                    f"voicing {round(100 - 60 * s)}",
                    f"breath {breath}",
                    "breathw 150 150 200 200 400 400",
                    f"roughness {round(1 + 6 * s)}",
                    f"flutter {round(5 + 35 * s)}",
                ]
                (variants / f"nclib_{gender}{timbre}_{level}").write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------------------------
# fluidsynth
# --------------------------------------------------------------------------------------------------------------
_TICKS_PER_S = 960  # 480 ticks per quarter note at the default tempo of 120 bpm
_GAP_S = 0.5  # silence between clips in one rendering


def _phrase(rng: np.random.Generator, first_program: int, family: str, clip_s: float) -> tuple:
    """(program, [(onset_s, duration_s, midi_pitch, velocity), ...]) of a random phrase within ``clip_s``."""
    program = first_program + int(rng.integers(8))
    low, high = (28, 55) if family == "bass" else (45, 84)
    scale = np.array([0, 2, 4, 5, 7, 9, 11] if rng.random() < 0.5 else [0, 2, 3, 5, 7, 8, 10])
    root = int(rng.integers(low, high - 12))
    beat = 60.0 / rng.uniform(70, 180)
    notes, t, degree = [], 0.0, int(rng.integers(7))
    while t < clip_s - 0.25:
        duration = beat * rng.choice([0.5, 1.0, 1.0, 2.0])
        velocity = int(rng.integers(50, 128))
        chord = [0, 2, 4] if rng.random() < 0.3 else [0]
        for step in chord:
            d = degree + step
            pitch = root + 12 * (d // 7) + int(scale[d % 7])
            notes.append((t, min(duration * 0.9, clip_s - t), int(np.clip(pitch, low, high)), velocity))
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, 13))
        t += duration
    return program, notes


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    while n > 0x7F:
        n >>= 7
        out.append(0x80 | (n & 0x7F))
    return bytes(reversed(out))


def _midi_file(phrases: list[tuple], clip_s: float) -> bytes:
    """A format-0 standard MIDI file playing the phrases one per slot of ``clip_s + _GAP_S`` seconds on
    channel 0; "all sound off" at each clip's end cuts tails so the slots do not bleed into each other."""
    events = []
    for k, (program, notes) in enumerate(phrases):
        t0 = round(k * (clip_s + _GAP_S) * _TICKS_PER_S)
        events.append((t0, 0, bytes([0xC0, program])))
        for onset, duration, pitch, velocity in notes:
            on = t0 + round(onset * _TICKS_PER_S)
            events.append((on, 2, bytes([0x90, pitch, velocity])))
            events.append((on + max(1, round(duration * _TICKS_PER_S)), 1, bytes([0x80, pitch, 0])))
        events.append((t0 + round(clip_s * _TICKS_PER_S), 1, bytes([0xB0, 120, 0])))
    body, last = b"", 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        body += _vlq(tick - last) + message
        last = tick
    body += _vlq(round(_GAP_S * _TICKS_PER_S)) + b"\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(body)) + body


def _render_midi(job: tuple[list[tuple], list[np.random.Generator], int, float]) -> np.ndarray:
    """Render the phrases with fluidsynth (no reverb/chorus, float WAV, mono mix), one clip per phrase,
    then ``_finish`` them with the items' generators."""
    phrases, rngs, sample_rate, clip_s = job
    with tempfile.TemporaryDirectory(prefix="nclib-midi-") as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        mid.write_bytes(_midi_file(phrases, clip_s))
        cmd = ["fluidsynth", "-n", "-i", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(sample_rate),
               "-T", "wav", "-O", "float", "-F", str(wav), str(SOUNDFONT), str(mid)]  # fmt: skip
        _run(cmd)
        audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz, expected {sample_rate} Hz")
    audio = audio.mean(axis=1)
    n, slot = round(clip_s * sample_rate), (clip_s + _GAP_S) * sample_rate
    audio = np.pad(audio, (0, max(0, round(len(phrases) * slot) - len(audio))))
    clips = [audio[round(k * slot) : round(k * slot) + n] for k in range(len(phrases))]
    return _finish(clips, rngs, n, sample_rate, snr_db=(5.0, 30.0), place=False)


# --------------------------------------------------------------------------------------------------------------
# sonic-pi samples
# --------------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=2)
def _sonic_pi_pool(sample_rate: int) -> dict[str, np.ndarray]:
    """Every sample the scenes use, mono, resampled to ``sample_rate``, scaled to unit RMS over its loud part."""
    names = set(SCENE_DISTRACTORS)
    for bed, events, _, _ in SCENES.values():
        names |= set(bed) | set(events)
    pool = {}
    for name in sorted(names):
        x, rate = sf.read(SONIC_PI_SAMPLES / f"{name}.flac", dtype="float32", always_2d=True)
        x = _resample([x.mean(axis=1)], rate, sample_rate)[0]
        pool[name] = (x / _rms(_trim(x, 1e-3 * np.abs(x).max()))).astype(np.float32)
    return pool


def _scene_chunk(job: tuple[np.ndarray, range, int, int]) -> np.ndarray:
    """Scenes for labels ``job[0]`` and item indices ``job[1]``, gain set by ``_finish``."""
    labels, items, seed, sample_rate = job
    names, n, pool = tuple(SCENES), round(SECONDS["synth_scenes"] * sample_rate), _sonic_pi_pool(sample_rate)
    rngs = [np.random.default_rng((seed, _TASK_ID["synth_scenes"], i)) for i in items]
    scenes = [_scene(rng, names[y], pool, n, sample_rate) for y, rng in zip(labels, rngs, strict=True)]
    return _finish(scenes, rngs, n, sample_rate, place=False)


def _scene(rng: np.random.Generator, scene: str, pool: dict[str, np.ndarray], n: int, sample_rate: int) -> np.ndarray:
    bed, events, rate, colour = SCENES[scene]
    x = np.zeros(n)
    if bed:
        loop = pool[str(rng.choice(bed))]
        start = rng.integers(len(loop))
        x += np.resize(np.roll(loop, -start), n) * 10 ** (rng.uniform(-12, 0) / 20)
    for names, count in ((events, rng.poisson(rate * n / sample_rate)), (SCENE_DISTRACTORS, rng.binomial(2, 0.3))):
        for _ in range(count):
            event = pool[str(rng.choice(names))]
            speed = rng.uniform(0.8, 1.25)  # playback-rate change: pitch and duration
            event = np.interp(np.arange(0, len(event) - 1, speed), np.arange(len(event)), event)
            onset = int(rng.integers(-len(event) // 2, n))
            lo, hi = max(0, onset), min(n, onset + len(event))
            if hi > lo:
                x[lo:hi] += event[lo - onset : hi - onset] * 10 ** (rng.uniform(-12, 3) / 20)
    noise_colour = colour if rng.random() < 0.6 else rng.choice([-1.0, 0.0, 1.0, 2.0])
    return x + _coloured_noise(rng, n, noise_colour) * 10 ** (rng.uniform(-30, -6) / 20)
