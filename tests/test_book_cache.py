"""The executed-notebook cache of `make book` (nclib.book.execute_cached): a second run with nothing changed
copies the executed notebook and its saved files back; a change to the notebook, the parameters, nclib's
code or a result library's version executes it again. ``execute`` is replaced by a fake that records its
calls and writes what a notebook would (an .ipynb and a figure under its ``figures`` parameter)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nclib.book as book


@pytest.fixture
def fake(tmp_path, monkeypatch):
    calls = []

    def execute(source, output, parameters=None, kernel=book.KERNEL):
        calls.append(dict(parameters))
        figures = Path(source).parent / parameters["figures"]
        figures.mkdir(parents=True, exist_ok=True)
        (figures / "fig.png").write_text(f"figure {len(calls)}")
        Path(output).write_text(json.dumps({"run": len(calls), "parameters": parameters}))
        return Path(output)

    monkeypatch.setattr(book, "execute", execute)
    (tmp_path / "notebooks").mkdir()
    source = tmp_path / "notebooks" / "fig9.md"
    source.write_text("# a notebook\n")
    return calls, source, tmp_path / "book" / "generated", tmp_path / "cache"


def test_second_run_copies_the_cached_execution_back(fake):
    calls, source, generated, cache = fake
    assert book.execute_cached(source, generated, {"profile": "mini"}, cache) is True
    first = (generated / "fig9.ipynb").read_text()
    (generated / "fig9.ipynb").unlink()
    (generated / "figures" / "fig9" / "fig.png").unlink()
    assert book.execute_cached(source, generated, {"profile": "mini"}, cache) is False
    assert len(calls) == 1
    assert (generated / "fig9.ipynb").read_text() == first
    assert (generated / "figures" / "fig9" / "fig.png").read_text() == "figure 1"
    assert calls[0]["figures"] == "../book/generated/figures/fig9"


def test_a_change_executes_again_and_drops_stale_figures(fake, monkeypatch):
    calls, source, generated, cache = fake
    book.execute_cached(source, generated, {"profile": "mini"}, cache)
    (generated / "figures" / "fig9" / "stale.png").write_text("from an older notebook")
    book.execute_cached(source, generated, {"profile": "tiny"}, cache)  # parameters changed
    assert len(calls) == 2
    assert not (generated / "figures" / "fig9" / "stale.png").exists()
    source.write_text("# a notebook, edited\n")
    book.execute_cached(source, generated, {"profile": "tiny"}, cache)
    assert len(calls) == 3
    monkeypatch.setattr(book, "package_digest", lambda: "nclib code changed")
    book.execute_cached(source, generated, {"profile": "tiny"}, cache)
    assert len(calls) == 4
    version = book.importlib.metadata.version
    monkeypatch.setattr(book.importlib.metadata, "version", lambda lib: "0.0" if lib == "matplotlib" else version(lib))
    book.execute_cached(source, generated, {"profile": "tiny"}, cache)
    assert len(calls) == 5
    assert json.loads((generated / "fig9.ipynb").read_text())["run"] == 5


def test_an_interrupted_execution_leaves_no_cache_entry(fake, monkeypatch):
    calls, source, generated, cache = fake

    def broken(source, output, parameters=None, kernel=book.KERNEL):
        raise RuntimeError("kernel died")

    monkeypatch.setattr(book, "execute", broken)
    with pytest.raises(RuntimeError, match="kernel died"):
        book.execute_cached(source, generated, {"profile": "mini"}, cache)
    assert not list(cache.glob("book/fig9-*"))
    assert calls == []


def test_package_digest_follows_the_package_files(tmp_path, monkeypatch):
    pkg = tmp_path / "nclib"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "scores.py").write_text("a = 1\n")
    monkeypatch.setattr(book.nclib, "__file__", str(pkg / "__init__.py"))
    before = book.package_digest()
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "scores.cpython-311.pyc").write_bytes(b"\0")
    assert book.package_digest() == before
    (pkg / "scores.py").write_text("a = 2\n")
    assert book.package_digest() != before
