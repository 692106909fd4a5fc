"""The data check (``python -m nclib.data check PROFILE``): every dataset of a profile in one report, found or
missing, with the folder, layout and source its loader's error message gives; the check agrees with the loaders."""

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from test_data_audio import _coswara, _dcase, _speech_commands, _wav
from test_data_images import fake_cifar

from nclib.config import load_profile
from nclib.data import audio, images, synth
from nclib.data.__main__ import main, resolve
from nclib.data.check import check, report

ROOT = Path(__file__).resolve().parents[1]
# The paper's datasets in the check's order: folder under data_root, and a piece of where to get it.
PAPER = {
    "cifar10": ("cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "dcase2018_task1a": ("dcase2018_task1a", "https://zenodo.org/record/1228142"),
    "gtzan": ("gtzan", "genres.tar.gz"),
    "speech_commands": ("speech_commands", "speech_commands_v0.02.tar.gz"),
    "coswara": ("coswara", "https://github.com/iiscleap/Coswara-Data"),
}
ROLES = ["image", "scenes", "music", "speech", "downstream"]


def _build(name: str, data_root: Path) -> None:
    """A small copy of paper dataset ``name`` in its loader's layout under ``data_root`` (the loaders' fixtures)."""
    if name == "cifar10":
        fake_cifar(data_root)
    elif name == "gtzan":
        for genre in audio.GTZAN_GENRES:
            _wav(data_root / "gtzan" / "genres" / genre / f"{genre}.00000.wav", rate=22050)
    else:
        {"dcase2018_task1a": _dcase, "speech_commands": _speech_commands, "coswara": _coswara}[name](data_root / name)


def _load(name: str, data_root: Path):
    """What the loader of ``name`` reads from ``data_root`` (CIFAR-10 fixtures have no original md5s)."""
    if name == "cifar10":
        return images.cifar10(data_root, verify=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the COSWARA fixture lacks a recording on purpose
        return audio.LOADERS[name](data_root / name)


def _blocks(text: str) -> dict[str, str]:
    """The report's lines of each dataset: its status line and the detail lines below it."""
    blocks: dict[str, str] = {}
    for line in text.splitlines()[1:-1]:
        if not line.startswith("      "):
            blocks[line.split()[1]] = ""
        blocks[next(reversed(blocks))] += line + "\n"
    return blocks


@pytest.fixture(scope="module")
def paper_data(tmp_path_factory) -> Path:
    data_root = tmp_path_factory.mktemp("data")
    for name in PAPER:
        _build(name, data_root)
    return data_root


def test_paper_without_data_reports_every_dataset_missing_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NCLIB_DATA_ROOT", str(tmp_path))
    assert main(["check", "paper"]) == 1
    out = capsys.readouterr().out
    findings = check(load_profile("paper", data_root=tmp_path))
    assert [(f.role, f.dataset) for f in findings] == list(zip(ROLES, PAPER, strict=True))
    assert not any(f.found for f in findings)
    assert [f.dataset for f in findings if not f.ok] == list(PAPER)[1:]  # CIFAR-10 is downloaded by its loader
    blocks = _blocks(out)
    assert list(blocks) == list(PAPER)
    for name, (folder, source) in PAPER.items():
        assert f"looked in: {tmp_path / folder}" in blocks[name] and source in blocks[name]
        assert "layout:" in blocks[name]
    assert "CIFAR-10: missing, will be downloaded (~170 MB)" in blocks["cifar10"]
    assert all("MISSING" in blocks[name] for name in list(PAPER)[1:])
    assert out.splitlines()[-1].startswith("4 of 5 datasets missing: dcase2018_task1a, gtzan, speech_commands, coswara")


def test_paper_with_the_data_in_place_is_all_found(paper_data, monkeypatch, capsys):
    findings = check(load_profile("paper", data_root=paper_data))
    assert all(f.found for f in findings)
    assert {f.dataset: f.where for f in findings} == {name: str(paper_data / folder) for name, (folder, _) in
                                                      PAPER.items()}  # fmt: skip
    for name in PAPER:
        _load(name, paper_data)  # and the loaders read what the check found
    monkeypatch.setenv("NCLIB_DATA_ROOT", str(paper_data))
    assert main(["check", "paper"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "All 5 datasets are here."


@pytest.mark.parametrize(
    ("name", "piece"),
    [("cifar10", "cifar-10-batches-py/test_batch"), ("dcase2018_task1a", "dcase2018_task1a/meta.csv"),
     ("dcase2018_task1a", "dcase2018_task1a/evaluation_setup/fold1_evaluate.txt"), ("gtzan", "gtzan/genres/rock"),
     ("speech_commands", "speech_commands/testing_list.txt"), ("coswara", "coswara/combined_data.csv"),
     ("coswara", "coswara/Extracted_data")],
)  # fmt: skip
def test_check_and_loader_agree_when_a_piece_is_missing(tmp_path, name, piece):
    _build(name, tmp_path)
    path = tmp_path / piece
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    finding = {f.dataset: f for f in check(load_profile("paper", data_root=tmp_path))}[name]
    assert not finding.found
    with pytest.raises(FileNotFoundError) as err:
        _load(name, tmp_path)
    assert finding.where in str(err.value) and PAPER[name][1] in str(err.value) and PAPER[name][1] in finding.source


def test_mini_on_this_machine_is_all_found(tmp_path, capsys):
    packages = sorted({p for name in synth.SYNTH_TASKS for p in synth.missing_packages(name)})
    if images.locate("fashion_mnist", None)[1] is None:
        packages.append("dataset-fashion-mnist")
    if packages:
        pytest.skip(f"mini's data comes from Debian packages missing here: {' '.join(packages)}")
    profile = load_profile("mini", data_root=tmp_path)
    findings = check(profile)
    assert [(f.role, f.dataset) for f in findings] == list(zip(ROLES, ("fashion_mnist", "synth_scenes", "synth_music",
                                                                       "synth_speech", "synth_voice_quality"),
                                                               strict=True))  # fmt: skip
    assert all(f.found for f in findings)
    assert findings[0].where == str(images.FASHION_MNIST_DIR)
    assert report(profile, findings).splitlines()[-1] == "All 5 datasets are here."


def test_mini_without_its_debian_packages_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(synth, "SONIC_PI_SAMPLES", tmp_path / "absent")
    monkeypatch.setattr(images, "FASHION_MNIST_DIR", tmp_path / "absent")
    findings = {f.dataset: f for f in check(load_profile("mini", data_root=tmp_path / "data"))}
    scenes, fashion = findings["synth_scenes"], findings["fashion_mnist"]
    assert not scenes.found and not scenes.ok and "sonic-pi-samples missing" in scenes.where
    assert scenes.source.startswith("sudo apt-get install -y sonic-pi-samples")
    assert not fashion.found and fashion.ok  # torchvision downloads it into data_root
    assert fashion.where == f"{tmp_path / 'absent'}, {tmp_path / 'data' / 'FashionMNIST' / 'raw'}"
    monkeypatch.setenv("NCLIB_DATA_ROOT", str(tmp_path / "data"))
    assert main(["check", "mini"]) == 1
    blocks = _blocks(capsys.readouterr().out)
    assert "Fashion-MNIST: missing, will be downloaded (~30 MB)" in blocks["fashion_mnist"]
    assert "apt-get install dataset-fashion-mnist" in blocks["fashion_mnist"]
    assert "synthetic audio: MISSING" in blocks["synth_scenes"]


def test_profile_names_profile_files_and_params_files():
    assert resolve("mini").name == "mini"
    assert resolve(str(ROOT / "nclib" / "profiles" / "paper.yaml")).name == "paper"
    tiny = resolve(str(ROOT / "params" / "tiny.yaml"))  # the book's parameters: a profile and its overrides
    assert (tiny.name, tiny.image.split["train"]) == ("tiny", 8)
    assert resolve(str(ROOT / "params" / "paper.yaml")).device == "cuda"
    with pytest.raises(SystemExit) as exit_:
        main(["check", "nope"])
    assert exit_.value.code == 2


@pytest.mark.parametrize(("present", "status"), [(False, 1), (True, 0)])
def test_command_line_exit_status_and_report(tmp_path, paper_data, present, status):
    data_root = paper_data if present else tmp_path
    env = os.environ | {"NCLIB_DATA_ROOT": str(data_root)}
    done = subprocess.run([sys.executable, "-m", "nclib.data", "check", "params/paper.yaml"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == status, done.stderr
    assert done.stdout.startswith(f"Datasets of profile paper (data_root {data_root}):")
    assert list(_blocks(done.stdout)) == list(PAPER)
    last = "All 5 datasets are here." if present else "4 of 5 datasets missing: dcase2018_task1a, gtzan, "
    assert done.stdout.splitlines()[-1].startswith(last)
