"""The site builds from the tiny executions of the notebooks, and its HTML holds together.

The notebooks are executed once per session by the ``tiny_book`` fixture (tests/conftest.py), shared with
test_notebooks.py. The build runs `jupyter-book build -W -n --keep-going` (warnings and broken references fail it)
in that temporary copy; tests/test_browser.py opens every page of it in headless Chromium.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml
from bs4 import BeautifulSoup
from conftest import NOTEBOOKS, ROOT, TinyBook

ERROR_TEXT = re.compile(r"Traceback|\b[A-Z]\w*Error\b")


def _toc_files(toc: dict) -> list[str]:
    files = [toc["root"]]
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        for chapter in part["chapters"]:
            files.append(chapter["file"])
            files += [s["file"] for s in chapter.get("sections", [])]
    return files


TOC = _toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))
ASSIGNMENT_PAGES = [f for f in TOC if f.startswith("book/generated/assignments/")]  # teacher edition: executed
FIGURE_PAGES = [f for f in TOC if f.startswith("book/generated/") and f not in ASSIGNMENT_PAGES]


@functools.cache
def built_site(tiny_book: TinyBook) -> Path:
    """_build/html of the book built from the tiny executions, built once per session (test_browser.py too)."""
    tiny_book.execute_all([nb.stem for nb in NOTEBOOKS])
    for nb in NOTEBOOKS:
        try:
            tiny_book.execute(nb.stem)
        except Exception as exc:
            pytest.fail(f"notebook {nb.name} failed on params/tiny.yaml (see test_notebooks.py): {exc!s:.300}")
    build = subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", ".", "-W", "-n",
                            "--keep-going"], cwd=tiny_book.root, capture_output=True, text=True)  # fmt: skip
    assert build.returncode == 0, f"jupyter-book build failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}"
    return tiny_book.root / "_build" / "html"


@pytest.fixture(scope="module")
def site(tiny_book) -> Path:
    return built_site(tiny_book)


def test_every_notebook_is_a_chapter():
    assert sorted(FIGURE_PAGES) == sorted(f"book/generated/{nb.stem}" for nb in NOTEBOOKS)


def test_every_toc_page_exists(site):
    assert (site / "index.html").is_file()
    missing = [f for f in TOC if not (site / f"{f}.html").is_file()]
    assert not missing, f"pages of _toc.yml missing from the site: {missing}"


def _pages(site: Path) -> list[Path]:
    return [p for p in site.rglob("*.html") if "_static" not in p.parts]


def test_every_image_points_at_a_file(site):
    broken = []
    for page in _pages(site):
        for img in BeautifulSoup(page.read_text(), "html.parser").find_all("img"):
            src = urlparse(img.get("src", ""))
            if src.scheme in ("http", "https", "data"):
                continue
            if not (page.parent / unquote(src.path)).resolve().is_file():
                broken.append(f"{page.relative_to(site)}: {img.get('src')}")
    assert not broken, f"<img> pointing at no file: {broken}"


def test_figure_pages_show_figures_and_no_errors(site):
    for page in FIGURE_PAGES:
        soup = BeautifulSoup((site / f"{page}.html").read_text(), "html.parser")
        cell_outputs = soup.select("div.cell_output")
        assert cell_outputs, f"{page} shows no cell output"
        assert soup.select("div.cell_output img"), f"{page} shows no figure"
        text = " ".join(o.get_text(" ") for o in cell_outputs)
        assert not ERROR_TEXT.search(text), f"{page} shows an error: {ERROR_TEXT.search(text).group()}"
        assert not soup.select(".traceback, .output.error"), f"{page} shows a traceback"
        code = " ".join(c.get_text(" ") for c in soup.select("div.cell_input"))
        assert "# Parameters" not in code and 'profile = "' not in code, f"{page} shows its parameters cell"


def test_assignment_pages_show_exercises_with_collapsed_solutions(site):
    assert ASSIGNMENT_PAGES, "the assignments part is missing from _toc.yml"
    for page in ASSIGNMENT_PAGES:
        soup = BeautifulSoup((site / f"{page}.html").read_text(), "html.parser")
        exercises, solutions = soup.select("div.exercise"), soup.select("div.solution")
        counts = f"{len(exercises)} exercises, {len(solutions)} solutions"
        assert exercises and len(solutions) == len(exercises), f"{page}: {counts}"
        assert all("dropdown" in s.get("class", []) for s in solutions), f"{page}: a solution is not collapsed"


def test_figure_pages_offer_their_notebook_for_download_and_no_colab_button_without_an_address(site):
    """_config.yml's repository.url is empty (tests/test_site.py): a Colab button would open no repository."""
    for page in FIGURE_PAGES:
        html = (site / f"{page}.html").read_text()
        assert (site / "_sources" / f"{page}.ipynb").is_file(), f"{page}.ipynb is not published with the site"
        assert f"_sources/{page}.ipynb" in html, f"{page} has no download link to its notebook"
        assert "colab.research.google.com" not in html, f"{page} shows a Colab button, but no address is set"

