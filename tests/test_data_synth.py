"""Synthetic mini audio: deterministic, balanced as asked, cached atomically, and not trivially separable."""

import functools
import io

import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nclib import cache
from nclib.data import synth
from nclib.data.audio import log_mel


def _needs(name):
    missing = synth.missing_packages(name)
    return pytest.mark.skipif(bool(missing), reason=f"{name} needs Debian packages {missing} (apt-get install -y ...)")


# (task, seconds, classes, clips per class: enough for two chunks of work, so two workers share it)
SOURCES = [
    pytest.param("synth_speech", 1.0, 10, 6, marks=_needs("synth_speech")),
    pytest.param("synth_music", 2.0, 8, 9, marks=_needs("synth_music")),
    pytest.param("synth_scenes", 2.0, 6, 17, marks=_needs("synth_scenes")),
]


@pytest.mark.parametrize(("name", "seconds", "n_classes", "per_class"), SOURCES)
def test_source_tasks_are_deterministic_and_balanced(name, seconds, n_classes, per_class):
    make = synth.SYNTH_TASKS[name]
    waves, labels, names = make(n_per_class=per_class, sample_rate=8000, seed=3, workers=2)
    assert waves.shape == (per_class * n_classes, round(seconds * 8000)) and waves.dtype == np.float32
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [per_class] * n_classes
    assert len(names) == n_classes == len(set(names))
    assert np.isfinite(waves).all() and np.abs(waves).max() <= 0.99 + 1e-6
    assert (np.sqrt((waves**2).mean(axis=1)) > 1e-3).all()  # no silent clip
    again = make(n_per_class=per_class, sample_rate=8000, seed=3, workers=1)  # one worker: the same arrays
    np.testing.assert_array_equal(again[0], waves)
    np.testing.assert_array_equal(again[1], labels)
    other = make(n_per_class=1, sample_rate=8000, seed=4)
    assert not np.array_equal(other[0], waves[:n_classes])


@_needs("synth_voice_quality")
def test_voice_quality_is_deterministic_with_the_papers_imbalance():
    waves, labels, names = synth.synth_voice_quality(n_positive=24, n_negative=11, sample_rate=8000, seed=0)
    assert names == ("healthy_voice", "disordered_voice")
    assert waves.shape == (35, 16000) and np.bincount(labels).tolist() == [11, 24]  # about 960 : 428
    assert 0 < labels[:12].sum() < 12  # classes are interleaved, not sorted
    again = synth.synth_voice_quality(n_positive=24, n_negative=11, sample_rate=8000, seed=0)
    np.testing.assert_array_equal(again[0], waves)
    np.testing.assert_array_equal(again[1], labels)


@_needs("synth_voice_quality")
def test_voice_quality_variants_are_really_used(tmp_path):
    """espeak-ng silently ignores an unknown variant, so check that the graded variants change the voice."""
    synth._espeak_voice_quality_data(tmp_path)

    def speak(voice):
        wav = synth._run(["espeak-ng", f"--path={tmp_path}", "-v", voice, "--stdout", "one two three"])
        x = synth._trim(sf.read(io.BytesIO(wav))[0])
        return x, np.mean(np.abs(np.diff(np.sign(x))) > 0)  # zero-crossing rate: higher when breathier

    plain, _ = speak("en-us")
    for timbre in ("m1", "f2"):
        modal, zcr_modal = speak(f"en-us+nclib_{timbre}_0")
        _, zcr_mid = speak(f"en-us+nclib_{timbre}_3")
        _, zcr_severe = speak(f"en-us+nclib_{timbre}_7")
        assert len(modal) != len(plain) or not np.array_equal(modal, plain)
        assert zcr_modal < zcr_mid < zcr_severe


def test_downstream_texts_use_no_source_keyword():
    words = {w for text in synth.VQ_TEXTS for w in text.split()}
    assert not words & set(synth.SPEECH_WORDS)


@_needs("synth_voice_quality")
def test_voice_quality_is_learnable_but_not_trivial():
    waves, labels, _ = synth.synth_voice_quality(n_positive=90, n_negative=42, sample_rate=16000, seed=1)
    spec = log_mel(torch.from_numpy(waves), 16000, 100).numpy()
    features = np.concatenate([spec.mean(axis=2), spec.std(axis=2)], axis=1)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    scores = cross_val_predict(probe, features, labels, cv=cv, method="predict_proba")[:, 1]
    auroc = roc_auc_score(labels, scores)
    assert 0.65 < auroc < 0.98, auroc


@_needs("synth_voice_quality")
def test_load_synth_caches_atomically_and_recovers_from_corruption(tmp_path, monkeypatch):
    args = dict(n_positive=4, n_negative=2, sample_rate=8000, seed=0)
    first = synth.load_synth("synth_voice_quality", tmp_path, **args)
    files = list((tmp_path / "synth").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left behind
    real = synth.SYNTH_TASKS["synth_voice_quality"]

    @functools.wraps(real)  # same signature, so the same cache key
    def regenerate(**kwargs):
        pytest.fail("regenerated instead of reading the cache")

    monkeypatch.setitem(synth.SYNTH_TASKS, "synth_voice_quality", regenerate)
    hit = synth.load_synth("synth_voice_quality", tmp_path, workers=1, **args)
    np.testing.assert_array_equal(hit[0], first[0])
    np.testing.assert_array_equal(hit[1], first[1])
    assert hit[2] == first[2]
    files[0].write_bytes(files[0].read_bytes()[:100])  # a partial write
    monkeypatch.setitem(synth.SYNTH_TASKS, "synth_voice_quality", real)
    with pytest.warns(UserWarning, match="recomputing"):
        redone = synth.load_synth("synth_voice_quality", tmp_path, **args)
    np.testing.assert_array_equal(redone[0], first[0])
    other = synth.load_synth("synth_voice_quality", tmp_path, **(args | {"seed": 1}))
    assert len(list((tmp_path / "synth").iterdir())) == 2 and not np.array_equal(other[0], first[0])


@_needs("synth_voice_quality")
def test_editing_the_generators_regenerates_the_audio(tmp_path, monkeypatch):
    """The cache key holds the code digest of nclib.data.synth: other code, other file (no stale audio)."""
    args = dict(n_positive=2, n_negative=2, sample_rate=8000, seed=0)
    synth.load_synth("synth_voice_quality", tmp_path, **args)
    synth.load_synth("synth_voice_quality", tmp_path, **args)
    assert len(list((tmp_path / "synth").iterdir())) == 1
    real = cache.code_digest
    monkeypatch.setattr(cache, "code_digest", lambda *m: real(*m) if m != ("nclib.data.synth",) else "edited")
    synth.load_synth("synth_voice_quality", tmp_path, **args)
    assert len(list((tmp_path / "synth").iterdir())) == 2


def test_load_synth_rejects_unknown_task(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic audio task"):
        synth.load_synth("synth_birds", tmp_path, n_per_class=2)


def test_missing_packages_give_a_clear_error(monkeypatch):
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    assert synth.missing_packages("synth_speech") == ["espeak-ng"]
    with pytest.raises(RuntimeError, match="apt-get install -y espeak-ng"):
        synth.synth_speech(n_per_class=1)
