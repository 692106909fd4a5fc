"""Shared by tests/test_notebooks.py and tests/test_book.py: the book's notebooks executed on params/tiny.yaml.

Each notebook is executed at most once per test session (on first request; test_book.py's site asks for all of them
at once, and they run side by side as in `make book`), into a temporary copy of the book's sources, so the site
built from them never touches the repository's own book/generated/. Caches go where `make book` puts them
($NCLIB_CACHE, else .cache/nclib at the repository root), so a second session is warm.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import settings

# Property tests draw the same examples on every run and machine: no example database, no clock-based deadline.
settings.register_profile("nclib", derandomize=True, database=None, deadline=None, print_blob=True)
settings.load_profile("nclib")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.md"))
KERNEL = "nclib"


class TinyBook:
    """The book's sources copied to ``root``; :meth:`execute` runs a notebook into ``root/book/generated``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.generated = root / "book" / "generated"
        self.figures = self.generated / "figures"
        for name in ("_config.yml", "_toc.yml"):
            shutil.copy(ROOT / name, root / name)
        shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("generated"))
        from nclib.assignments import book as assignment_pages

        assignment_pages(self.generated / "assignments")
        self.parameters = yaml.safe_load((ROOT / "params" / "tiny.yaml").read_text()) | {"figures": str(self.figures)}
        self._done: dict[str, Path | BaseException] = {}
        self._built = False  # the tiny profile's pipeline (nclib.pipeline.build)

    def execute(self, stem: str) -> Path:
        """The executed copy of notebooks/<stem>.md; raises (every time) what its one execution raised."""
        self.execute_all([stem])
        done = self._done[stem]
        if isinstance(done, BaseException):
            raise done
        return done

    def execute_all(self, stems: list[str]) -> None:
        """Execute those of ``stems`` not executed yet as `make book` does: the pipeline's results computed first (in
        this process), then the notebooks side by side (nclib.book.notebook_pool), reading them. What an execution
        raises is kept, for :meth:`execute` to raise."""
        from nclib import pipeline
        from nclib.book import execute, notebook_pool, profile_of

        if not self._built:
            pipeline.build(profile_of(self.parameters))
            self._built = True
        with notebook_pool() as pool:
            running = {stem: pool.submit(execute, ROOT / "notebooks" / f"{stem}.md", self.generated / f"{stem}.ipynb",
                                         self.parameters, kernel=KERNEL)
                       for stem in stems if stem not in self._done}  # fmt: skip
            for stem, future in running.items():
                self._done[stem] = future.exception() or future.result()


def _ensure_kernel() -> None:
    """Register this interpreter as the ``nclib`` Jupyter kernel (as `make book` does) unless it already is."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec(KERNEL).argv
    except NoSuchKernel:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL,
                        "--display-name", KERNEL], check=True, capture_output=True)
        return
    if Path(argv[0]).resolve() != Path(sys.executable).resolve():
        pytest.fail(f"the Jupyter kernel {KERNEL!r} runs {argv[0]}, not this interpreter {sys.executable}: "
                    f"re-register it with `{sys.executable} -m ipykernel install --sys-prefix --name {KERNEL}`")


@pytest.fixture(scope="session")
def tiny_book(tmp_path_factory) -> TinyBook:
    _ensure_kernel()
    saved = os.environ.get("NCLIB_CACHE")
    os.environ["NCLIB_CACHE"] = saved or str(ROOT / ".cache" / "nclib")  # the kernels inherit it
    yield TinyBook(tmp_path_factory.mktemp("tiny_book"))
    if saved is None:
        del os.environ["NCLIB_CACHE"]


def outputs(notebook: Path) -> list[dict]:
    """Every output of every code cell of an executed .ipynb."""
    cells = json.loads(notebook.read_text())["cells"]
    return [out for cell in cells if cell["cell_type"] == "code" for out in cell.get("outputs", [])]
