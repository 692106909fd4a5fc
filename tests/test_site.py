"""The repository address (nclib.site): one setting in _config.yml behind the launch buttons and the install cells."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import yaml

from nclib import site

ROOT = Path(__file__).resolve().parents[1]


def _config(tmp_path: Path, url) -> Path:
    settings = yaml.safe_load((ROOT / "_config.yml").read_text())
    settings["repository"]["url"] = url
    path = tmp_path / "_config.yml"
    path.write_text(yaml.safe_dump(settings))
    return path


def test_the_books_address_is_unset_and_no_placeholder_is_left():
    assert site.repository(ROOT / "_config.yml") is None
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    leaks = [f for f in tracked if f != "tests/test_site.py" and (ROOT / f).is_file()
             and site.PLACEHOLDER in (ROOT / f).read_text(errors="ignore")]
    assert not leaks, f"the placeholder address OWNER/ is still in {leaks}"


@pytest.mark.parametrize("url", ["", None])
def test_an_empty_address_is_none(tmp_path, url):
    assert site.repository(_config(tmp_path, url)) is None


def test_a_set_address_is_read(tmp_path):
    assert site.repository(_config(tmp_path, "https://github.com/someone/nclib")) == "https://github.com/someone/nclib"


@pytest.mark.parametrize("url", ["https://github.com/OWNER/nclib", 42])
def test_a_placeholder_or_non_text_address_is_refused(tmp_path, url):
    with pytest.raises(ValueError, match="repository.url"):
        site.repository(_config(tmp_path, url))


def test_a_missing_config_says_where_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="book's root"):
        site.repository(tmp_path / "_config.yml")


def _notebook() -> dict:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("x = 1")]
    return nbformat.from_dict(nb)


def test_the_install_cell_comes_first_once_and_goes_when_the_address_is_unset():
    nb = _notebook()
    once = site.with_install_cell(nb, "https://github.com/someone/nclib")
    twice = site.with_install_cell(once, "https://github.com/someone/nclib")
    assert twice == once and len(once["cells"]) == 3
    first = once["cells"][0]
    assert "https://github.com/someone/nclib" in first["source"] and "remove-cell" in first["metadata"]["tags"]
    nbformat.validate(nbformat.from_dict(copy.deepcopy(once)))
    assert site.with_install_cell(once, None)["cells"] == nb["cells"]


def test_the_install_cell_installs_only_where_nclib_is_missing():
    code = site.install_cell("file:///somewhere/nclib")
    guard, shell, pip = code.splitlines()[-3:]
    assert guard == 'if importlib.util.find_spec("nclib") is None:'
    assert shell == "    !git clone -q --depth 1 file:///somewhere/nclib nclib-src && make -C nclib-src system"
    assert pip == '    %pip install -q "./nclib-src[book]"'  # %pip: into the kernel's own environment


@pytest.mark.parametrize("url, kept", [("", False), ("https://github.com/someone/nclib", True)])
def test_launch_buttons_show_only_with_an_address(url, kept):
    buttons = {"colab_url": "https://colab.research.google.com"}
    config = SimpleNamespace(html_theme_options={"repository_url": url, "launch_buttons": dict(buttons)})
    site._drop_launch_buttons_without_address(None, config)
    assert config.html_theme_options["launch_buttons"] == (buttons if kept else {})


@pytest.mark.skipif(not os.environ.get("NCLIB_INSTALL_TEST"), reason="installs nclib and torch into a fresh venv "
                    "(7.5 GB, ~2.5 min with local wheels): set NCLIB_INSTALL_TEST=1 to run it")
def test_the_install_cell_installs_nclib_into_a_fresh_kernel(tmp_path):
    """A fresh venv with only a Jupyter kernel (what Colab starts with) runs a notebook whose first cell is the
    install cell for a clone of this repository, then scores with nclib in the same kernel."""
    from nbclient import NotebookClient

    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    subprocess.run([str(env / "bin" / "pip"), "install", "-q", "ipykernel"], check=True)
    subprocess.run([str(env / "bin" / "python"), "-m", "ipykernel", "install", "--prefix", str(env), "--name",
                    "fresh"], check=True, capture_output=True)  # fmt: skip
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import numpy as np\nimport nclib\nfrom nclib.scores import nc\n"
        "x = np.random.default_rng(0).normal(size=(60, 4)); print(nclib.__file__, nc(x, np.arange(60) % 3))")]
    nb = nbformat.from_dict(site.with_install_cell(nb, ROOT.as_uri()))
    kernels = os.environ.get("JUPYTER_PATH", "")
    os.environ["JUPYTER_PATH"] = f"{env / 'share' / 'jupyter'}:{kernels}"
    try:
        NotebookClient(nb, kernel_name="fresh", timeout=1800, resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        os.environ["JUPYTER_PATH"] = kernels
    printed = nb.cells[-1].outputs[0]["text"]
    assert printed.startswith(str(env)), f"nclib was imported from elsewhere: {printed}"
    assert float(printed.split()[-1]) > 0
