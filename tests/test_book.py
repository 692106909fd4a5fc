"""The site builds from the tiny executions of the notebooks, and its HTML holds together.

The notebooks are executed once per session by the ``tiny_book`` fixture (tests/conftest.py), shared with
test_notebooks.py. The build runs `jupyter-book build -W -n --keep-going` (warnings and broken references fail it)
in that temporary copy. Headless Chromium (Debian package `chromium`; these tests skip without it) opens each
figure page, checks that every image loaded, and saves a screenshot under _build/screenshots/.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml
from bs4 import BeautifulSoup
from conftest import NOTEBOOKS, ROOT

SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]
ERROR_TEXT = re.compile(r"Traceback|\b[A-Z]\w*Error\b")
# Runs after the page has loaded: records the images that did not load, and the page's height.
IMAGE_CHECK = """<script>
window.addEventListener("load", () => {
  const broken = Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0));
  document.body.setAttribute("data-broken-images", JSON.stringify(broken.map(i => i.getAttribute("src"))));
  document.body.setAttribute("data-page-height", String(document.documentElement.scrollHeight));
});
</script>"""


def _toc_files(toc: dict) -> list[str]:
    files = [toc["root"]]
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        for chapter in part["chapters"]:
            files.append(chapter["file"])
            files += [s["file"] for s in chapter.get("sections", [])]
    return files


TOC = _toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))
ASSIGNMENT_PAGES = [f for f in TOC if f.startswith("book/generated/assignments/")]  # rendered, not executed
FIGURE_PAGES = [f for f in TOC if f.startswith("book/generated/") and f not in ASSIGNMENT_PAGES]


@pytest.fixture(scope="module")
def site(tiny_book) -> Path:
    """_build/html of the book built from the tiny executions."""
    for nb in NOTEBOOKS:
        try:
            tiny_book.execute(nb.stem)
        except Exception as exc:
            pytest.fail(f"notebook {nb.name} failed on params/tiny.yaml (see test_notebooks.py): {exc!s:.300}")
    build = subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", ".", "-W", "-n",
                            "--keep-going"], cwd=tiny_book.root, capture_output=True, text=True)  # fmt: skip
    assert build.returncode == 0, f"jupyter-book build failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}"
    return tiny_book.root / "_build" / "html"


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


def test_figure_pages_offer_the_notebook_for_download_and_on_colab(site):
    for page in FIGURE_PAGES:
        html = (site / f"{page}.html").read_text()
        assert (site / "_sources" / f"{page}.ipynb").is_file(), f"{page}.ipynb is not published with the site"
        assert f"_sources/{page}.ipynb" in html, f"{page} has no download link to its notebook"
        assert re.search(rf"https://colab\.research\.google\.com/github/[^\"]+/_sources/{page}\.ipynb", html), (
            f"{page} has no Colab button opening the published notebook"
        )


def _chromium(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip


def _load(page: Path) -> tuple[list[str], int]:
    """(src of every image that did not load, page height in px) of ``page`` opened in headless Chromium."""
    probe = page.with_name(f"{page.stem}.imagecheck.html")  # beside the page, so relative links resolve the same
    probe.write_text(page.read_text().replace("</body>", f"{IMAGE_CHECK}</body>"))
    try:
        dom = _chromium("--virtual-time-budget=15000", "--dump-dom", probe.as_uri()).stdout
    finally:
        probe.unlink()
    body = BeautifulSoup(dom, "html.parser").body
    if body is None or not body.has_attr("data-broken-images"):
        raise AssertionError(f"Chromium did not finish loading {page}:\n{dom[-2000:]}")
    return json.loads(body["data-broken-images"]), int(body["data-page-height"])


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed "
                                    "(Debian: apt-get install chromium): no screenshots, no broken-image check")


@needs_chromium
def test_the_image_check_sees_a_broken_image(tmp_path):
    page = tmp_path / "page.html"
    (tmp_path / "ok.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')
    page.write_text('<html><body><img src="ok.svg"><img src="missing.png"></body></html>')
    assert _load(page)[0] == ["missing.png"]


@needs_chromium
@pytest.mark.parametrize("page", FIGURE_PAGES)
def test_figure_page_in_chromium(site, page):
    broken, height = _load(site / f"{page}.html")
    assert not broken, f"{page} shows broken images: {broken}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{Path(page).name}.png"
    shot.unlink(missing_ok=True)
    _chromium(f"--window-size=1280,{min(max(height, 800), 16000)}", f"--screenshot={shot}", (site / f"{page}.html")
              .as_uri())  # fmt: skip
    assert shot.is_file() and shot.stat().st_size > 10_000, f"no screenshot of {page}"
