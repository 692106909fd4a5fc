"""Every notebook of the book runs end to end on params/tiny.yaml (executed once, shared with test_book.py)."""

from __future__ import annotations

import nbformat
import pytest
from conftest import NOTEBOOKS, outputs


@pytest.mark.parametrize("stem", [nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_on_tiny(tiny_book, stem):
    executed = tiny_book.execute(stem)  # raises papermill's PapermillExecutionError, with the cell's traceback
    outs = outputs(executed)
    assert not [o for o in outs if o["output_type"] == "error"]
    assert not [o for o in outs if o.get("name") == "stderr"], "progress bars and warnings belong on the terminal"
    assert any("image/png" in o.get("data", {}) for o in outs), "the notebook displays no figure"
    figure = stem.split("_")[0]  # fig1, fig2, ...: the prefix of every file the notebook saves
    saved = sorted(p.name for p in tiny_book.figures.glob(f"{figure}*.png"))
    assert saved, f"{stem} saved no figure under {tiny_book.figures}"
    cells = nbformat.read(executed, as_version=4).cells
    injected = [c for c in cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0].metadata["tags"]  # hidden in the book
    assert "overrides = {" in injected[0].source and "finetune_epochs" in injected[0].source  # tiny's, not mini's


def test_notebooks_start_with_mini_defaults_and_call_nclib():
    for nb in NOTEBOOKS:
        text = nb.read_text()
        assert "name: nclib" in text.split("---")[1], f"{nb.name}: kernelspec must be 'nclib'"
        first = text.split("```{code-cell}")[1]
        assert ":tags: [parameters" in first, f"{nb.name}: the first code cell must be tagged 'parameters'"
        for default in ('profile = "mini"', "overrides = {}", "device = None"):
            assert default in first, f"{nb.name}: parameters cell lacks {default!r}"
        assert "prof, out = setup(profile, overrides, device, figures)" in text, f"{nb.name}: the shared setup call"


def test_profile_of_parameters_matches_what_a_notebook_loads(tmp_path):
    from nclib.book import profile_of
    from nclib.config import load_profile
    from nclib.notebook import setup

    params = {"profile": "mini", "overrides": {"train": {"epochs": 3}}, "device": "cpu"}
    assert profile_of(params) == load_profile("mini", train={"epochs": 3}, device="cpu")
    prof, out = setup(**params, figures=str(tmp_path / "figures" / "page"))  # what a notebook's setup cell loads
    assert prof == profile_of(params) and out.is_dir()
    assert profile_of({"profile": "paper", "device": None}).device == "cuda"  # None keeps the profile's device
