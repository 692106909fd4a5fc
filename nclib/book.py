"""Execute the book's MyST notebooks with papermill, for `make book` and the tests.

A notebook's source is ``notebooks/<name>.md`` (jupytext MyST). Its executed copy goes to
``book/generated/<name>.ipynb``, which the book renders with execution off, and the figures and tables it saves
to ``book/generated/figures/<name>/``. Both are kept in the profile's cache under a key of the notebook's source,
its parameters and every file of the nclib package, so a second ``make book`` with nothing changed copies them
back instead of executing the notebook again, and any change to the notebook, the parameters or nclib's code
executes it anew.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import jupytext
import nbformat
import papermill
import yaml

import nclib
from nclib import cache, pipeline
from nclib.config import Profile, load_profile

KERNEL = "nclib"
# Libraries whose version can change an executed notebook's numbers or figures: part of its cache key.
RESULT_LIBRARIES = ("numpy", "scipy", "scikit-learn", "pandas", "torch", "timm", "matplotlib", "seaborn")
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


def package_digest() -> str:
    """sha256 over every file of the nclib package (relative path and bytes; caches and bytecode excluded)."""
    h = hashlib.sha256()
    root = Path(nclib.__file__).parent
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(f"{path.relative_to(root).as_posix()}|{path.stat().st_size}|".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def execute_cached(source: Path, generated: Path, parameters: dict, cache_dir: Path) -> bool:
    """Execute ``source`` into ``generated/<stem>.ipynb``, its saved files into ``generated/figures/<stem>/``,
    unless the cache holds that execution; return whether it executed.

    The key covers the notebook's text, its parameters, the kernel, :func:`package_digest` and the versions of
    ``RESULT_LIBRARIES``. An entry is a
    folder renamed into place once complete, so an interrupted run leaves no partial entry.
    """
    source, generated = Path(source), Path(generated)
    stem = source.stem
    figures = generated / "figures" / stem
    parameters = {**parameters, "figures": os.path.relpath(figures, source.parent)}
    versions = {lib: importlib.metadata.version(lib) for lib in RESULT_LIBRARIES}
    k = cache.key(notebook=source.read_text(), parameters=parameters, kernel=KERNEL, code=package_digest(),
                  versions=versions)
    entry = Path(cache_dir) / "book" / f"{stem}-{k[:24]}"
    if not (entry / f"{stem}.ipynb").is_file():
        shutil.rmtree(figures, ignore_errors=True)  # a stale figure must not survive a new execution
        execute(source, generated / f"{stem}.ipynb", parameters)
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{stem}-"))
        shutil.copy2(generated / f"{stem}.ipynb", tmp / f"{stem}.ipynb")
        if figures.is_dir():
            shutil.copytree(figures, tmp / "figures")
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)
        return True
    generated.mkdir(parents=True, exist_ok=True)
    shutil.copy2(entry / f"{stem}.ipynb", generated / f".{stem}.ipynb.tmp")
    os.replace(generated / f".{stem}.ipynb.tmp", generated / f"{stem}.ipynb")
    shutil.rmtree(figures, ignore_errors=True)
    if (entry / "figures").is_dir():
        shutil.copytree(entry / "figures", figures)
    return False


def _run(source: Path, parameters: dict) -> str:
    start = time.perf_counter()
    executed = execute_cached(source, Path("book/generated"), parameters, profile_of(parameters).cache_dir)
    verb = "executed" if executed else "found executed in the cache:"
    return f"{verb} {source} in {time.perf_counter() - start:.0f} s"


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
    # Each notebook's kernel gets its share of the cores: two kernels with a thread per core each would fight over
    # every core, and OpenMP threads spinning at each barrier of a small op can make a notebook many times slower.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(max(1, (os.cpu_count() or 1) // jobs)))
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for done in pool.map(_run, map(Path, sources), [parameters] * len(sources)):
            print(done, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
