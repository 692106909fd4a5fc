"""Every page of the built book, opened in headless Chromium through selenium, shows what it should.

Checked on each page, at a 1,300 px window: no table cut off behind a scroller, no maths left as raw LaTeX, no
placeholder repository address, no broken image, no figure shown at under half its pixel width, and nothing
loaded from another host (the site must work offline).

The site is the tiny book (the ``tiny_book`` fixture of conftest.py, built by test_book.py's :func:`built_site`),
or the built site folder named by the environment variable ``NCLIB_SITE`` (``NCLIB_SITE=_build/html`` after
`make book` checks the mini build). For a site named so, screenshots of every page, 1,300 and 420 px wide and the
page's full height, go to _build/screenshots/ for people to look at; the tiny book's numbers mean nothing, so its
pages are checked without screenshots (which would also replace those of the real build). Each check is shown to
fail on a small hand-made page. Without Debian's ``chromium`` and ``chromium-driver`` these tests skip.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import ROOT
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from test_book import TOC, built_site

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND"]  # no host name resolves: a request to another host fails at once
WIDE, NARROW = 1300, 420  # window widths (px): the checks run at WIDE; screenshots are taken at both
LOAD_TIMEOUT_S = 60
SCREENSHOTS = ROOT / "_build" / "screenshots"
PLACEHOLDER = "OWNER" + "/"  # split, so tests/test_site.py's search of tracked files for it does not find this one
# Every html page of a built site but index.html, which only redirects to the root page of _toc.yml.
PAGES = [*TOC, "genindex", "search"]

# True once the page has loaded, every image has loaded or failed, and MathJax (where the page has it) has typeset.
READY = r"""
if (document.readyState !== "complete" || !Array.from(document.images).every(i => i.complete)) return false;
const startup = window.MathJax && window.MathJax.startup;
if (!(startup && startup.promise)) return true;
if (!window.nclibTypeset) {
  window.nclibTypeset = "pending";
  startup.promise.then(() => { window.nclibTypeset = "done"; }, () => { window.nclibTypeset = "failed"; });
}
return window.nclibTypeset !== "pending";
"""


def open_page(driver: WebDriver, url: str, width: int = WIDE) -> None:
    """Load ``url`` in a ``width`` px window and wait for its images and maths; fails after LOAD_TIMEOUT_S.

    The page is loaded after the window is sized: a page resized once loaded is captured half laid out.
    """
    driver.set_window_size(width, 1000)
    driver.get_log("performance")  # drops the requests of the pages before: external_resources reads this page's
    driver.get(url)
    try:
        WebDriverWait(driver, LOAD_TIMEOUT_S).until(lambda d: d.execute_script(READY))
    except TimeoutException:
        pytest.fail(f"{url} did not finish loading (images, MathJax) within {LOAD_TIMEOUT_S} s")


def cut_off_tables(driver: WebDriver) -> list[str]:
    """Tables wider than their box: the nearest ancestor that clips or scrolls them (else their parent)."""
    return driver.execute_script(r"""
return Array.from(document.querySelectorAll("table")).flatMap(table => {
  let box = table.parentElement;
  while (box.parentElement && getComputedStyle(box).overflowX === "visible") box = box.parentElement;
  if (getComputedStyle(box).overflowX === "visible") box = table.parentElement;
  if (table.scrollWidth <= box.clientWidth + 1) return [];
  const name = [table.caption, ...table.querySelectorAll("th")].map(e => e ? e.textContent.trim() : "").find(Boolean);
  return [`table "${(name || "(no caption, no header)").replace(/\s+/g, " ").slice(0, 80)}" is ${table.scrollWidth} ` +
          `px wide in a ${box.clientWidth} px box: cut off`];
});""")


def raw_latex(driver: WebDriver) -> list[str]:
    """Maths that MathJax did not typeset: math elements without an mjx-container, LaTeX left in visible text."""
    return driver.execute_script(r"""
const problems = [];
const untypeset = Array.from(document.querySelectorAll("span.math, div.math"))
  .filter(m => !m.querySelector("mjx-container"));
if (untypeset.length) {
  const loaded = window.MathJax && window.MathJax.startup ? "" : " (MathJax did not load: is _static/mathjax there?)";
  problems.push(`${untypeset.length} maths not typeset${loaded}, the first: ${untypeset[0].textContent.trim()}`);
}
const latex = /\$[^$]+\$|\\(frac|sum|mathbf|left|right|begin)/;
const skip = "code, pre, script, style, textarea, noscript, mjx-container";
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const parent = node.parentElement, hit = latex.exec(node.data);
  if (hit && !parent.closest(skip) && parent.checkVisibility()) problems.push(`raw LaTeX in the text: "${hit[0]}"`);
}
return problems;""")


def placeholder_addresses(driver: WebDriver) -> list[str]:
    """The repository placeholder in the page's text or in any href or src."""
    return driver.execute_script(r"""
const placeholder = arguments[0], found = new Set();
for (const e of document.querySelectorAll("[href], [src]")) {
  for (const name of ["href", "src"]) {
    const value = e.getAttribute(name);
    if (value && value.includes(placeholder)) found.add(`<${e.tagName.toLowerCase()} ${name}="${value}">`);
  }
}
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const at = node.data.indexOf(placeholder);
  if (at >= 0 && !node.parentElement.closest("script, style")) {
    found.add(`text "${node.data.slice(Math.max(0, at - 30), at + 40).trim()}"`);
  }
}
return Array.from(found, f => `placeholder address: ${f}`);""", PLACEHOLDER)


def broken_images(driver: WebDriver) -> list[str]:
    """Images that did not load."""
    return driver.execute_script(r"""
return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))
  .map(i => `broken image: ${i.getAttribute("src")}`);""")


def shrunken_figures(driver: WebDriver) -> list[str]:
    """Images of cell outputs shown at under half their width in pixels."""
    return driver.execute_script(r"""
return Array.from(document.querySelectorAll(".cell_output img")).flatMap(i => {
  const shown = i.getBoundingClientRect().width;
  if (!i.naturalWidth || shown >= 0.5 * i.naturalWidth) return [];
  const src = i.getAttribute("src"), name = src.startsWith("data:") ? src.slice(0, 30) : src;
  return [`figure ${name} shown ${Math.round(shown)} px wide, ${Math.round(100 * shown / i.naturalWidth)} % ` +
          `of its ${i.naturalWidth} px`];
});""")


def external_resources(driver: WebDriver) -> list[str]:
    """Resources from another host: scripts, styles, images and frames of the page, and whatever else it requested.

    The requests (fonts and imports of style sheets, fetches of scripts) are those of Chromium's performance log
    since :func:`open_page` loaded the page.
    """
    declared = driver.execute_script(r"""
const navigation = new Set(["alternate", "author", "canonical", "first", "help", "index", "last", "license", "next",
                            "prev", "search", "up"]);  // <link rel> that the browser does not fetch
const urls = Array.from(document.querySelectorAll("script[src], img[src], iframe[src]"), e => e.src);
for (const e of document.querySelectorAll("link[href]")) {
  if (Array.from(e.relList).some(rel => !navigation.has(rel.toLowerCase()))) urls.push(e.href);
}
return urls;""")
    events = (json.loads(entry["message"])["message"] for entry in driver.get_log("performance"))
    requested = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    urls = dict.fromkeys(u for u in [*declared, *requested] if u.lower().startswith(("http:", "https:")))
    return [f"loaded from another host: {u}" for u in urls]


CHECKS: list[Callable[[WebDriver], list[str]]] = [cut_off_tables, raw_latex, placeholder_addresses, broken_images,
                                                   shrunken_figures, external_resources]


def screenshot(driver: WebDriver, path: Path) -> None:
    """Save the open page, its whole height at the window's width, as a PNG at ``path``."""
    width, height = driver.execute_script("return [innerWidth, document.documentElement.scrollHeight]")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})  # fmt: skip
    path.write_bytes(base64.b64decode(shot["data"]))


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One headless Chromium for every page of the module."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("headless Chromium and its driver are not installed (Debian: apt-get install chromium "
                    "chromium-driver): the site is not checked in a browser")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # the requests, for external_resources
    options.add_experimental_option("perfLoggingPrefs", {"enableNetwork": True, "enablePage": False})
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(LOAD_TIMEOUT_S)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def site(request) -> Path:
    """The built site named by $NCLIB_SITE, else the tiny book's."""
    if "NCLIB_SITE" not in os.environ:
        return built_site(request.getfixturevalue("tiny_book"))
    folder = Path(os.environ["NCLIB_SITE"]).resolve()
    if not (folder / "index.html").is_file():
        pytest.fail(f"NCLIB_SITE={os.environ['NCLIB_SITE']} is not a built site (no {folder / 'index.html'}): "
                    "build one with `make book` (into _build/html), or unset NCLIB_SITE to check the tiny book")
    return folder


def test_every_page_is_checked(site):
    built = {p.relative_to(site).with_suffix("").as_posix() for p in site.rglob("*.html")
             if p.relative_to(site).parts[0] not in ("_static", "_sources")} - {"index"}  # fmt: skip
    assert built == set(PAGES), f"pages built but not checked: {built - set(PAGES)}; missing: {set(PAGES) - built}"


@pytest.mark.parametrize("page", PAGES)
def test_page_in_the_browser(browser, site, page):
    path = site / f"{page}.html"
    assert path.is_file(), f"{page}.html is not in the site {site}"
    open_page(browser, path.as_uri())
    problems = [problem for check in CHECKS for problem in check(browser)]
    if "NCLIB_SITE" in os.environ:  # a real build: screenshots for people to look at
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        screenshot(browser, SCREENSHOTS / f"{Path(page).name}-{WIDE}.png")
        open_page(browser, path.as_uri(), NARROW)
        screenshot(browser, SCREENSHOTS / f"{Path(page).name}-{NARROW}.png")
    assert not problems, f"{page} at {WIDE} px:\n  " + "\n  ".join(problems)


# Hand-made pages: for each check, a page that must fail it and one that must pass it.
MATHJAX = ROOT / "book" / "_static" / "mathjax" / "tex-mml-chtml.js"
CASES = {
    "table": (cut_off_tables,
              '<div style="width: 300px; overflow-x: auto"><table><caption> </caption><tr><th></th><th>Too wide</th>'
              '</tr><tr><td>0</td><td style="min-width: 600px">x</td></tr></table></div>',
              '<div style="width: 300px; overflow-x: auto"><table><caption>Fits</caption>'
              '<tr><td style="min-width: 200px">x</td></tr></table></div>',
              ['table "Too wide" is', "in a 300 px box"]),
    "latex": (raw_latex,
              '<p>Raw: $x$.</p><span class="math">\\(y\\)</span>',
              f'<script src="{MATHJAX.as_uri()}"></script><p>Typeset: <span class="math">\\(x^2\\)</span></p>'
              '<div class="math">\\[\\frac{a}{b}\\]</div><pre>$ make book</pre>',
              ['raw LaTeX in the text: "$x$"', "1 maths not typeset (MathJax did not load", "the first: \\(y\\)"]),
    "placeholder": (placeholder_addresses,
                    f'<a href="https://github.com/{PLACEHOLDER}nclib">the code</a>',
                    '<a href="https://github.com/someone/nclib">the code</a>',
                    [f'<a href="https://github.com/{PLACEHOLDER}nclib">']),
    "broken image": (broken_images, '<img src="ok.svg"><img src="missing.png">', '<img src="ok.svg">',
                     ["broken image: missing.png"]),
    "small figure": (shrunken_figures,
                     '<div class="cell_output"><img src="wide.svg" style="width: 400px"></div>',
                     '<div class="cell_output"><img src="wide.svg" style="width: 600px"></div>'
                     '<img src="wide.svg" style="width: 100px">',  # not a cell output
                     ["figure wide.svg shown 400 px wide, 40 % of its 1000 px"]),
    "other host": (external_resources,
                   '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
                   '<link rel="stylesheet" href="fonts.css">',  # fonts.css imports a style sheet from another host
                   '<script src="local.js"></script><link rel="next" href="https://example.org/next">'
                   '<a href="https://example.org/">a link is fine</a>',
                   ["loaded from another host: https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js",
                    "loaded from another host: https://fonts.googleapis.com/css?family=Roboto"]),
}


@pytest.mark.parametrize("case", CASES)
def test_each_check_fails_a_bad_page_and_passes_a_good_one(browser, tmp_path, case):
    check, bad, good, expected = CASES[case]
    if case == "latex" and not MATHJAX.is_file():
        pytest.fail(f"MathJax is not in {MATHJAX.parent}: run `make mathjax`")
    (tmp_path / "ok.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')
    (tmp_path / "wide.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="20"/>')
    (tmp_path / "local.js").write_text("")
    (tmp_path / "fonts.css").write_text('@import url("https://fonts.googleapis.com/css?family=Roboto");')
    for name, body in (("bad", bad), ("good", good)):
        (tmp_path / f"{name}.html").write_text(f"<!DOCTYPE html><html><body>{body}</body></html>")
    open_page(browser, (tmp_path / "bad.html").as_uri())
    found = check(browser)
    assert all(any(e in problem for problem in found) for e in expected), f"expected {expected}, found {found}"
    open_page(browser, (tmp_path / "good.html").as_uri())
    assert check(browser) == []
