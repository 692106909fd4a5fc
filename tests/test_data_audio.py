"""Audio front end, file reading, the paper's loaders on generated fixtures, and the split entry point."""

import functools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from nclib.config import load_profile
from nclib.data import audio, synth
from nclib.data.audio import (
    AudioFileDataset,
    WaveDataset,
    audio_splits,
    load_coswara,
    load_dcase2018_task1a,
    load_gtzan,
    load_speech_commands,
    log_mel,
    read_audio,
)


def _wav(path: Path, seconds: float = 0.05, rate: int = 16000, channels: int = 1, freq: float = 440.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(round(seconds * rate)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    sf.write(path, np.stack([x * (c + 1) / channels for c in range(channels)], 1), rate, subtype="FLOAT")
    return path


def _slaney_hz_to_mel(f):
    f = np.asarray(f, dtype=float)
    return np.where(f < 1000, f / (200 / 3), 15 + np.log(np.maximum(f, 1e-9) / 1000) / (np.log(6.4) / 27))


def _slaney_mel_to_hz(m):
    return np.where(m < 15, m * 200 / 3, 1000 * np.exp((m - 15) * np.log(6.4) / 27))


# ---------------------------------------------------------------------------------------------------- front end
@pytest.mark.parametrize(
    ("rate", "frame_ms", "frames"),
    # hand-worked: n = rate * frame_ms / 1000 samples, hop = n // 2, frames = 1 + T // hop for T = 1 s
    [(16000, 30, 1 + 16000 // 240), (16000, 40, 1 + 16000 // 320), (16000, 100, 1 + 16000 // 800),
     (48000, 30, 1 + 48000 // 720), (48000, 40, 1 + 48000 // 960), (48000, 100, 1 + 48000 // 2400)],
)  # fmt: skip
def test_log_mel_shapes_for_the_papers_frames(rate, frame_ms, frames):
    x = torch.randn(3, rate, generator=torch.Generator().manual_seed(0)) * 0.1
    batch = log_mel(x, rate, frame_ms)
    assert batch.shape == (3, 64, frames) and batch.dtype == torch.float32
    single = log_mel(x[1], rate, frame_ms)
    assert single.shape == (64, frames)
    torch.testing.assert_close(single, batch[1], rtol=1e-5, atol=1e-4)
    assert log_mel(x, rate, frame_ms, n_mels=40).shape == (3, 40, frames)


@pytest.mark.parametrize(("rate", "frame_ms"), [(16000, 30), (16000, 40), (16000, 100), (48000, 30), (48000, 100)])
def test_every_mel_band_is_non_empty(rate, frame_ms):
    noise = torch.randn(rate, generator=torch.Generator().manual_seed(1)) * 0.1
    floor = math.log(1e-6)
    assert (log_mel(noise, rate, frame_ms).mean(dim=1) > floor + 3).all()


def test_log_mel_peaks_in_the_band_of_a_pure_tone():
    rate, n_mels = 16000, 64
    t = torch.arange(rate) / rate
    edges = _slaney_mel_to_hz(np.linspace(0, _slaney_hz_to_mel(rate / 2), n_mels + 2))
    centres = edges[1:-1]
    for freq in (300.0, 1000.0, 3000.0):
        spec = log_mel(torch.sin(2 * math.pi * freq * t) * 0.5, rate, 100).mean(dim=1)
        assert int(spec.argmax()) == int(np.argmin(np.abs(centres - freq))), freq


def test_log_mel_gain_shifts_by_log_gain_squared():
    x = torch.randn(16000, generator=torch.Generator().manual_seed(2)) * 0.1
    diff = log_mel(3 * x, 16000, 40) - log_mel(x, 16000, 40)
    torch.testing.assert_close(diff, torch.full_like(diff, math.log(9)), rtol=0, atol=1e-3)


def test_log_mel_accepts_float64_and_rejects_bad_input():
    x = torch.randn(8000, dtype=torch.float64)
    assert log_mel(x, 16000, 30).dtype == torch.float32
    with pytest.raises(ValueError, match="floating point"):
        log_mel(torch.zeros(8000, dtype=torch.int16), 16000, 30)
    with pytest.raises(ValueError, match="T or B x T"):
        log_mel(torch.zeros(2, 3, 8000), 16000, 30)
    with pytest.raises(ValueError, match="torch.Tensor"):
        log_mel(np.zeros(8000), 16000, 30)
    with pytest.raises(ValueError, match="frame"):
        log_mel(torch.zeros(100), 16000, 100)


# ---------------------------------------------------------------------------------------------------- reading
def test_read_audio_mixes_to_mono_pads_and_crops(tmp_path):
    path = _wav(tmp_path / "a.wav", seconds=0.5, rate=16000, channels=2)
    raw, _ = sf.read(path, dtype="float32")
    wave = read_audio(path, 16000, 1.0)
    assert wave.shape == (16000,) and wave.dtype == torch.float32
    np.testing.assert_allclose(wave[:8000].numpy(), (raw[:, 0] + raw[:, 1]) / 2, rtol=0, atol=1e-7)
    assert (wave[8000:] == 0).all()
    np.testing.assert_array_equal(read_audio(path, 16000, 0.25).numpy(), wave[:4000].numpy())


def test_read_audio_resamples_to_the_target_rate(tmp_path):
    path = _wav(tmp_path / "b.wav", seconds=1.0, rate=22050, freq=1000.0)
    wave = read_audio(path, 16000, 1.0).numpy()
    spectrum = np.abs(np.fft.rfft(wave[1000:-1000] * np.hanning(14000)))
    assert abs(np.argmax(spectrum) * 16000 / 14000 - 1000) < 2  # the tone stays at 1 kHz
    assert abs(np.sqrt(np.mean(wave[1000:-1000] ** 2)) - 0.5 / math.sqrt(2)) < 0.01


# ---------------------------------------------------------------------------------------------------- COSWARA
COSWARA_HEADER = ("id,a,cold,record_date,covid_status,ctScan,dT,ep,fV,fever,g,l_c,l_l,l_s,others_resp,rU,smoker,"
                  "testType,test_date,test_status,um,vacc,cough,ftg,mp,st,diabetes,ht,bd,cld,diarrhoea,ctDate,"
                  "ctScore,asthma,loss_of_smell,others_preexist,ihd,pneumonia")  # fmt: skip
# (id, date folder, covid_status, testType, test_status, cough files present)
COSWARA_PEOPLE = [
    ("posA", "20210406", "positive_mild", "rtpcr", "p", ("cough-heavy", "cough-shallow")),
    ("negB", "20210406", "healthy", "rtpcr", "n", ("cough-heavy", "cough-shallow")),
    ("ratC", "20210406", "positive_moderate", "rat", "p", ("cough-heavy", "cough-shallow")),
    ("recD", "20220224", "recovered_full", "rtpcr", "p", ("cough-heavy", "cough-shallow")),
    ("utE", "20220224", "under_validation", "rtpcr", "ut", ("cough-heavy",)),
    ("naF", "20220224", "no_resp_illness_exposed", "", "na", ("cough-heavy",)),
    ("posG", "20220224", "positive_asymp", "rtpcr", "p", ("cough-heavy",)),  # cough-shallow missing
    ("negH", "20220224", "resp_illness_not_identified", "rtpcr", "n", ("cough-heavy", "cough-shallow")),
]


def _coswara(root: Path) -> Path:
    n_cols = len(COSWARA_HEADER.split(","))
    lines = [COSWARA_HEADER]
    for pid, date, status, test_type, test_status, coughs in COSWARA_PEOPLE:
        row = [""] * n_cols
        cols = COSWARA_HEADER.split(",")
        row[cols.index("id")], row[cols.index("covid_status")] = pid, status
        row[cols.index("testType")], row[cols.index("test_status")] = test_type, test_status
        row[cols.index("a")], row[cols.index("g")] = "30", "male"
        lines.append(",".join(row))
        for cough in coughs:
            _wav(root / "Extracted_data" / date / pid / f"{cough}.wav", rate=44100)
        _wav(root / "Extracted_data" / date / pid / "counting-normal.wav", rate=44100)
    (root / "combined_data.csv").write_text("\n".join(lines) + "\n")
    return root


def test_coswara_selects_rt_pcr_recordings(tmp_path):
    root = _coswara(tmp_path / "coswara")
    with pytest.warns(UserWarning, match="skipped 1"):
        files = load_coswara(root)
    got = sorted((p.parent.name, p.stem, int(y)) for p, y in zip(files.paths, files.labels, strict=True))
    want = sorted([("posA", "cough-heavy", 1), ("posA", "cough-shallow", 1), ("posG", "cough-heavy", 1),
                   ("negB", "cough-heavy", 0), ("negB", "cough-shallow", 0),
                   ("negH", "cough-heavy", 0), ("negH", "cough-shallow", 0)])  # fmt: skip
    assert got == want
    assert files.labels.dtype == np.int64 and files.class_names == ("negative", "positive")


def test_coswara_date_folders_directly_under_root(tmp_path):
    root = _coswara(tmp_path / "coswara")
    (root / "Extracted_data").rename(tmp_path / "moved")
    for date in (tmp_path / "moved").iterdir():
        date.rename(root / date.name)
    with pytest.warns(UserWarning):
        assert len(load_coswara(root).paths) == 7


def test_coswara_bad_metadata(tmp_path):
    root = tmp_path / "coswara"
    root.mkdir()
    (root / "combined_data.csv").write_text("id,covid_status\nx,healthy\n")
    with pytest.raises(ValueError, match="testType"):
        load_coswara(root)


# ---------------------------------------------------------------------------------------------------- GTZAN
def test_gtzan_layout_and_a_corrupt_file(tmp_path):
    root = tmp_path / "gtzan"
    for genre in audio.GTZAN_GENRES:
        for k in range(2):
            _wav(root / "genres" / genre / f"{genre}.{k:05d}.wav", rate=22050)
    (root / "genres" / "jazz" / "jazz.00054.wav").write_bytes(b"RIFF\x00\x00garbage")
    with pytest.warns(UserWarning, match="jazz.00054.wav"):
        files = load_gtzan(root)
    assert len(files.paths) == 20
    assert np.bincount(files.labels).tolist() == [2] * 10
    assert all(p.parent.name == files.class_names[y] for p, y in zip(files.paths, files.labels, strict=True))


# ---------------------------------------------------------------------------------------------------- Speech Commands
def _speech_commands(root: Path) -> Path:
    for word in ("yes", "no", "up"):
        for speaker in ("0a7c2a8d", "1b4c9b89", "3cfc6b3a"):
            _wav(root / word / f"{speaker}_nohash_0.wav", seconds=1.0)
    _wav(root / "_background_noise_" / "white_noise.wav")
    (root / "validation_list.txt").write_text("yes/1b4c9b89_nohash_0.wav\nno/1b4c9b89_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("yes/3cfc6b3a_nohash_0.wav\nup/3cfc6b3a_nohash_0.wav\n")
    return root


def test_speech_commands_official_splits(tmp_path):
    splits = load_speech_commands(_speech_commands(tmp_path / "speech_commands"))
    assert splits["train"].class_names == ("no", "up", "yes")
    names = {k: sorted(f"{p.parent.name}/{p.name}" for p in s.paths) for k, s in splits.items()}
    assert names["val"] == ["no/1b4c9b89_nohash_0.wav", "yes/1b4c9b89_nohash_0.wav"]
    assert names["test"] == ["up/3cfc6b3a_nohash_0.wav", "yes/3cfc6b3a_nohash_0.wav"]
    assert len(names["train"]) == 9 - 4 and not any("_background_noise_" in n for n in names["train"])
    for s in splits.values():
        assert all(p.parent.name == s.class_names[y] for p, y in zip(s.paths, s.labels, strict=True))


# ---------------------------------------------------------------------------------------------------- DCASE 2018
def _dcase(root: Path, ext: str = "txt", header: bool = False, segments: int = 1) -> Path:
    scenes, cities = ("airport", "bus", "park"), ("barcelona", "helsinki")
    meta, train, evaluate = ["filename\tscene_label\tidentifier\tsource_label"], [], []
    for scene in scenes:
        for k, city in enumerate(cities):
            for segment in range(segments):
                name = f"audio/{scene}-{city}-{k}-{segment}-a.wav"
                _wav(root / name, rate=48000)
                meta.append(f"{name}\t{scene}\t{city}-{k}\ta")
                (train if city == "barcelona" else evaluate).append(f"{name}\t{scene}")
    (root / "meta.csv").write_text("\n".join(meta) + "\n")
    (root / "evaluation_setup").mkdir()
    head = ["filename\tscene_label"] if header else []
    (root / "evaluation_setup" / f"fold1_train.{ext}").write_text("\n".join(head + train) + "\n")
    (root / "evaluation_setup" / f"fold1_evaluate.{ext}").write_text("\n".join(head + evaluate) + "\n")
    return root


@pytest.mark.parametrize(("ext", "header"), [("txt", False), ("csv", True)])
def test_dcase2018_fold1(tmp_path, ext, header):
    root = tmp_path / "dcase2018_task1a"
    splits = load_dcase2018_task1a(_dcase(root / "TUT-urban-acoustic-scenes-2018-development", ext, header))
    assert splits["train"].class_names == ("airport", "bus", "park")
    assert sorted(splits) == ["test", "train"]
    for split, city in (("train", "barcelona"), ("test", "helsinki")):
        files = splits[split]
        assert len(files.paths) == 3 and all(city in p.name for p in files.paths)
        assert [files.class_names[y] for y in files.labels] == [p.name.split("-")[0] for p in files.paths]
    assert len(load_dcase2018_task1a(root)["train"].paths) == 3  # the unpacked folder inside root is found


def test_dcase2018_missing_audio(tmp_path):
    root = _dcase(tmp_path / "d")
    (root / "audio" / "bus-barcelona-0-0-a.wav").unlink()
    with pytest.raises(FileNotFoundError, match="bus-barcelona-0-0-a.wav"):
        load_dcase2018_task1a(root)


# ---------------------------------------------------------------------------------------------------- missing data
@pytest.mark.parametrize(
    ("loader", "url"),
    [(load_coswara, "github.com/iiscleap/Coswara-Data"), (load_gtzan, "genres.tar.gz"),
     (load_speech_commands, "speech_commands_v0.02.tar.gz"), (load_dcase2018_task1a, "zenodo.org/record/1228142")],
)  # fmt: skip
def test_missing_dataset_says_where_what_and_how(tmp_path, loader, url):
    root = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        loader(root)
    message = str(err.value)
    assert str(root) in message and "Expected layout" in message and url in message
    assert f"extract it to {root}" in message


# ---------------------------------------------------------------------------------------------------- audio_splits
@pytest.mark.skipif(bool(synth.missing_packages("synth_voice_quality")), reason="needs Debian package espeak-ng")
def test_audio_splits_mini_downstream_is_stratified_and_cached(tmp_path, monkeypatch):
    profile = load_profile("mini", cache_dir=tmp_path, audio__downstream={"n_positive": 20, "n_negative": 9})
    splits = audio_splits(profile, "downstream")
    assert {k: len(v) for k, v in splits.items()} == {"train": 20, "val": 5, "test": 4}  # 70/15/15 of 20 and of 9
    assert {k: int(v.labels.sum()) for k, v in splits.items()} == {"train": 14, "val": 3, "test": 3}
    wave, label = splits["train"][0]
    assert isinstance(splits["train"], WaveDataset) and wave.shape == (32000,) and label in (0, 1)
    real = synth.SYNTH_TASKS["synth_voice_quality"]
    monkeypatch.setitem(synth.SYNTH_TASKS, "synth_voice_quality", functools.wraps(real)(lambda **kw: pytest.fail()))
    again = audio_splits(profile, "downstream")
    torch.testing.assert_close(again["test"].waves, splits["test"].waves, rtol=0, atol=0)


@pytest.mark.skipif(bool(synth.missing_packages("synth_speech")), reason="needs Debian package espeak-ng")
def test_audio_splits_mini_source(tmp_path):
    splits = audio_splits(load_profile("mini", cache_dir=tmp_path, audio__synth_per_class=10), "speech")
    assert [len(splits[k]) for k in ("train", "val", "test")] == [80, 10, 10]
    assert all(np.bincount(s.labels).tolist() == [n] * 10 for s, n in zip(splits.values(), (8, 1, 1), strict=True))


def test_audio_splits_paper_reads_files_lazily(tmp_path):
    _speech_commands(tmp_path / "speech_commands")
    _dcase(tmp_path / "dcase2018_task1a", segments=10)
    profile = load_profile("paper", data_root=tmp_path, cache_dir=tmp_path / "cache")
    speech = audio_splits(profile, "speech")
    assert isinstance(speech["val"], AudioFileDataset) and len(speech["val"]) == 2
    wave, label = speech["test"][0]
    assert wave.shape == (48000,) and speech["test"].class_names[label] in ("up", "yes")  # 16 kHz file -> 48 kHz
    scenes = audio_splits(profile, "scenes")
    assert [len(scenes[k]) for k in ("train", "val", "test")] == [27, 3, 30]  # fold 1; val = 10 % of train
    assert not set(scenes["train"].files.paths) & set(scenes["val"].files.paths)
    assert scenes["test"][0][0].shape == (480000,)  # 10 s at 48 kHz


def test_audio_splits_paper_coswara_warns_about_counts(tmp_path):
    _coswara(tmp_path / "coswara")
    profile = load_profile("paper", data_root=tmp_path, audio__downstream={"split": [0.5, 0.25, 0.25]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = audio_splits(profile, "downstream")
    assert any("3 positive / 4 negative" in str(w.message) for w in caught)
    assert sum(len(s) for s in splits.values()) == 7


def test_audio_splits_rejects_unknown_task_or_dataset(tmp_path):
    profile = load_profile("mini", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown audio task"):
        audio_splits(profile, "vision")
    with pytest.raises(ValueError, match="unknown audio dataset"):
        audio_splits(load_profile("mini", cache_dir=tmp_path, audio__sources={"music": "fma"}), "music")
