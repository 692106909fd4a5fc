"""Execute the book's MyST notebooks with papermill, for `make book` and the tests.

A notebook's source is ``notebooks/<name>.md`` (jupytext MyST). Its executed copy goes to
``book/generated/<name>.ipynb``, which the book renders with execution off.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import jupytext
import nbformat
import papermill
import yaml

from nclib import pipeline
from nclib.config import Profile, load_profile

KERNEL = "nclib"
HIDE_TAG = "remove-cell"  # myst-nb drops cells with this tag from the rendered page


def execute(source: Path, output: Path, parameters: dict | None = None, kernel: str = KERNEL) -> Path:
    """Execute one MyST notebook with papermill; write ``output`` atomically and return it.

    The injected-parameters cell is tagged so the rendered page hides it, and stderr output (progress bars,
    which the terminal shows) is dropped from the page. The notebook runs with the folder of ``source`` as
    working directory.
    """
    source, output = Path(source), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        unexecuted = Path(tmp) / f"{source.stem}.ipynb"
        nbformat.write(jupytext.read(source), unexecuted)
        executed = papermill.execute_notebook(
            str(unexecuted),
            None,
            parameters=parameters or {},
            kernel_name=kernel,
            cwd=str(source.parent),
            progress_bar=False,
        )
    for cell in executed.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and HIDE_TAG not in tags:
            cell.metadata["tags"] = [*tags, HIDE_TAG]
        if "outputs" in cell:
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    fd, tmp_path = tempfile.mkstemp(dir=output.parent, suffix=".ipynb.tmp")
    with os.fdopen(fd, "w") as fh:
        nbformat.write(executed, fh)
    os.replace(tmp_path, output)
    return output


def profile_of(parameters: dict) -> Profile:
    """The profile a notebook builds from its parameters (``profile``, ``overrides``, ``device``)."""
    overrides = dict(parameters.get("overrides") or {})
    if parameters.get("device"):
        overrides["device"] = parameters["device"]
    return load_profile(parameters.get("profile", "mini"), **overrides)


def _run(source: Path, parameters: dict) -> str:
    start = time.perf_counter()
    execute(source, Path("book/generated") / f"{source.stem}.ipynb", parameters)
    return f"executed {source} in {time.perf_counter() - start:.0f} s"


def main(argv: list[str]) -> None:
    """``python -m nclib.book [--jobs N] PARAMS.yaml NOTEBOOK.md...``: compute the pipeline's results once
    (:func:`nclib.pipeline.build`), then execute the notebooks into book/generated/, ``N`` at a time (default 2)."""
    jobs = 2
    if argv[:1] == ["--jobs"]:
        jobs, argv = int(argv[1]), argv[2:]
    params_file, *sources = argv
    parameters = yaml.safe_load(Path(params_file).read_text()) or {}
    if device := os.environ.get("NCLIB_DEVICE"):
        parameters["device"] = device
    start = time.perf_counter()
    pipeline.build(profile_of(parameters))
    print(f"pipeline ready in {time.perf_counter() - start:.0f} s; executing {len(sources)} notebooks with "
          f"{params_file}, {jobs} at a time", flush=True)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for done in pool.map(_run, map(Path, sources), [parameters] * len(sources)):
            print(done, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
