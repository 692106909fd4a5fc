"""Execute the book's MyST notebooks with papermill, for `make book` and the tests.

A notebook's source is ``notebooks/<name>.md`` (jupytext MyST). Its executed copy goes to
``book/generated/<name>.ipynb``, which the book renders with execution off, and the figures and tables it saves
to ``book/generated/figures/<name>/``. Both are kept in the profile's cache under a key of the notebook's source,
its parameters and the code of the nclib modules it imports (:func:`notebook_code`), so a second ``make book``
with nothing changed copies them back instead of executing the notebook again, and any change to the notebook, the
parameters or that code executes it anew; a cached notebook that is no longer a valid notebook is executed anew
too, with a warning.

Parameters are checked before anything runs: each must be a name that the notebook's cell tagged ``parameters``
assigns (papermill would inject any other name silently), of the type of its default there, and the profile they
select must load (:func:`check_parameters`).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.metadata
import json
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import jupytext
import nbformat
import papermill
import yaml

from nclib import cache, site
from nclib.config import Profile, did_you_mean
from nclib.notebook import select_profile

KERNEL = "nclib"
# Libraries whose version can change an executed notebook's numbers or figures: part of its cache key.
RESULT_LIBRARIES = ("numpy", "scipy", "scikit-learn", "pandas", "torch", "timm", "matplotlib", "seaborn")
JOBS = 2  # notebooks executed at a time
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
HIDE_TAG = "remove-cell"  # myst-nb drops cells with this tag from the rendered page
_MAGIC = re.compile(r"^([ \t]*)[!%].*$", re.MULTILINE)  # IPython shell and magic lines


def execute(source: Path, output: Path, parameters: dict | None = None, kernel: str = KERNEL) -> Path:
    """Execute one MyST notebook with papermill; write ``output`` atomically and return it.

    The injected-parameters cell is tagged so the rendered page hides it, and stderr output (progress bars,
    which the terminal shows) is dropped from the page. The notebook runs with the folder of ``source`` as
    working directory. ``parameters`` are checked first (:func:`check_parameters`).
    """
    source, output = Path(source), Path(output)
    check_parameters(source, parameters or {})
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
    cache.save_text(output, nbformat.writes(executed) + "\n")
    return output


@contextlib.contextmanager
def shared_cores(jobs: int) -> Iterator[None]:
    """Inside, each kernel started gets its share of the cores, ``cpu_count // jobs`` threads (OpenMP, MKL,
    OpenBLAS), unless the caller's environment sets them; outside, the environment is as it was.

    ``jobs`` kernels with a thread per core each would fight over every core, and OpenMP threads spinning at each
    barrier of a small op can make a notebook many times slower.
    """
    saved = {var: os.environ.get(var) for var in THREAD_VARIABLES}
    for var in THREAD_VARIABLES:
        os.environ.setdefault(var, str(max(1, (os.cpu_count() or 1) // jobs)))
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


@contextlib.contextmanager
def notebook_pool(jobs: int = JOBS) -> Iterator[ProcessPoolExecutor]:
    """``jobs`` spawned processes to execute notebooks side by side, each kernel on its share of the cores
    (:func:`shared_cores`). Processes, not threads: papermill changes the working directory of its process while
    it executes a notebook."""
    with shared_cores(jobs), ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def notebook_parameters(source: Path) -> dict[str, Any]:
    """Name -> default of every name that the cell tagged ``parameters`` of ``source`` assigns.

    A default that is not a Python literal counts as None (any type). No such cell: no parameters.
    """
    defaults: dict[str, Any] = {}
    for cell in jupytext.read(source).cells:
        if cell.cell_type != "code" or "parameters" not in cell.metadata.get("tags", []):
            continue
        for node in ast.parse(cell.source).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in (t for t in targets if isinstance(t, ast.Name)):
                try:
                    defaults[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    defaults[target.id] = None
    return defaults


def check_parameters(source: Path, parameters: dict) -> None:
    """Raise ``ValueError`` unless every parameter is one that ``source``'s parameters cell defines, of the type of
    its default there (an int serves for a float; a default of None takes anything), and unless the profile they
    select loads (:func:`profile_of`, for a notebook with a ``profile`` parameter)."""
    accepted = notebook_parameters(source)
    for key, value in parameters.items():
        if key not in accepted:
            cell = f"its parameters cell defines {sorted(accepted)}" if accepted else "it has no parameters cell"
            raise ValueError(f"unknown parameter {key!r} (value {value!r}) for notebook {source}; {cell}"
                             f"{did_you_mean(key, accepted)}")
        default = accepted[key]
        if not _same_type(value, default):
            raise ValueError(f"parameter {key!r} of notebook {source} must be {type(default).__name__} (its default "
                             f"is {default!r}), got {value!r}")
    if "profile" in accepted:
        try:
            profile_of({**accepted, **parameters})
        except ValueError as exc:
            raise ValueError(f"parameters of notebook {source}: {exc}") from None


def _same_type(value: Any, default: Any) -> bool:
    if default is None:
        return True
    if isinstance(value, bool) != isinstance(default, bool):
        return False
    return isinstance(value, int | float) if isinstance(default, float) else isinstance(value, type(default))


def profile_of(parameters: dict) -> Profile:
    """The profile a notebook builds from its parameters (``profile``, ``overrides``, ``device``)."""
    return select_profile(parameters.get("profile", "mini"), dict(parameters.get("overrides") or {}),
                          parameters.get("device"))


def notebook_code(source: Path) -> str:
    """:func:`nclib.cache.code_digest` of the nclib modules the code cells of notebook ``source`` import."""
    modules = []
    for cell in jupytext.read(source).cells:
        if cell.cell_type == "code":
            modules += cache.imports(_MAGIC.sub(r"\1pass", cell.source))
    return cache.code_digest(*sorted(set(modules)))


def execute_cached(source: Path, generated: Path, parameters: dict, cache_dir: Path) -> bool:
    """Execute ``source`` into ``generated/<stem>.ipynb``, its saved files into ``generated/figures/<stem>/``,
    unless the cache holds that execution; return whether it executed.

    The key covers the notebook's text, its parameters, the kernel, :func:`notebook_code` and the versions of
    ``RESULT_LIBRARIES``. An entry is a folder renamed into place once complete (:func:`nclib.cache.atomic_folder`),
    so an interrupted run leaves no partial entry; an entry whose notebook is not a valid notebook is executed anew,
    with a warning. ``parameters`` are checked before anything else (:func:`check_parameters`).
    """
    source, generated = Path(source), Path(generated)
    stem = source.stem
    figures = generated / "figures" / stem
    if "figures" in parameters:
        raise ValueError(f"parameter 'figures' (value {parameters['figures']!r}) of notebook {source} is set here, to "
                         f"{figures}: leave it out")
    if "figures" in notebook_parameters(source):  # the book's notebooks save figures; the assignments do not
        parameters = {**parameters, "figures": os.path.relpath(figures, source.parent)}
    check_parameters(source, parameters)
    versions = {lib: importlib.metadata.version(lib) for lib in RESULT_LIBRARIES}
    k = cache.key(notebook=source.read_text(), parameters=parameters, kernel=KERNEL, code=notebook_code(source),
                  versions=versions)
    entry = Path(cache_dir) / "book" / f"{stem}-{k[:24]}"
    text = _cached_notebook(entry / f"{stem}.ipynb")
    if text is None:
        shutil.rmtree(figures, ignore_errors=True)  # a stale figure must not survive a new execution
        execute(source, generated / f"{stem}.ipynb", parameters)
        with cache.atomic_folder(entry) as tmp:
            shutil.copy2(generated / f"{stem}.ipynb", tmp / f"{stem}.ipynb")
            if figures.is_dir():
                shutil.copytree(figures, tmp / "figures")
        return True
    cache.save_text(generated / f"{stem}.ipynb", text)
    shutil.rmtree(figures, ignore_errors=True)
    if (entry / "figures").is_dir():
        shutil.copytree(entry / "figures", figures)
    return False


def _cached_notebook(path: Path) -> str | None:
    """The text of the cached notebook ``path``; None if there is none or (with a warning) it is not valid."""
    if not path.exists():
        return None
    try:
        text = path.read_text()
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not a notebook")
        nbformat.validate(data)
    except (OSError, ValueError, nbformat.ValidationError) as exc:
        first_line = str(exc).partition("\n")[0][:200]
        warnings.warn(f"ignoring broken executed notebook {path} in the cache ({type(exc).__name__}: {first_line}); "
                      f"recomputing it: the notebook is executed again", stacklevel=3)
        return None
    return text


def _run(source: Path, parameters: dict) -> str:
    start = time.perf_counter()
    executed = execute_cached(source, Path("book/generated"), parameters, profile_of(parameters).cache_dir)
    path = Path("book/generated") / f"{source.stem}.ipynb"  # the install cell follows the address, not the cache
    cache.save_text(path, json.dumps(site.with_install_cell(json.loads(path.read_text()), site.repository()),
                                     indent=1) + "\n")
    verb = "executed" if executed else "found executed in the cache:"
    return f"{verb} {source} in {time.perf_counter() - start:.0f} s"


def main(argv: list[str]) -> None:
    """``python -m nclib.book [--jobs N] PARAMS.yaml NOTEBOOK.md...``: check the parameters of every notebook, compute
    the pipeline's results once (:func:`nclib.pipeline.build`), then execute the notebooks into book/generated/,
    ``N`` at a time (default :data:`JOBS`), in a :func:`notebook_pool`.

    Each notebook gets the keys of PARAMS.yaml that its parameters cell defines; a key that none defines is an error,
    and so is ``figures`` (each notebook's is set here).
    """
    parser = argparse.ArgumentParser(prog="python -m nclib.book", description="Execute the book's notebooks.")
    parser.add_argument("--jobs", type=int, default=JOBS, help=f"notebooks executed at a time (default {JOBS})")
    parser.add_argument("params_file", type=Path, metavar="PARAMS.yaml")
    parser.add_argument("sources", type=Path, nargs="+", metavar="NOTEBOOK.md")
    args = parser.parse_args(argv)
    params_file, sources, jobs = args.params_file, args.sources, args.jobs
    parameters = _read_params(params_file)
    if device := os.environ.get("NCLIB_DEVICE"):
        parameters["device"] = device
    accepted = {source: notebook_parameters(source) for source in sources}
    known = set().union(*accepted.values()) - {"figures"}  # set by execute_cached
    for key, value in parameters.items():
        if key not in known:
            raise ValueError(f"unknown key {key!r} (value {value!r}) in {params_file}; for these notebooks it may set "
                             f"{sorted(known)}{did_you_mean(key, known)}")
    each = [{k: v for k, v in parameters.items() if k in accepted[source]} for source in sources]
    for source, params in zip(sources, each, strict=True):
        check_parameters(source, params)
    site.repository()  # a bad address stops the build before any work
    from nclib import claims, pipeline  # here, not at the top: the pool's workers need neither (nor torch)

    start = time.perf_counter()
    profile = profile_of(parameters)
    pipeline.build(profile)
    cache.save_text(Path("book/generated/claims.csv"), claims.ledger(profile).to_csv(index=False))
    print(f"pipeline ready in {time.perf_counter() - start:.0f} s; executing {len(sources)} notebooks with "
          f"{params_file}, {jobs} at a time", flush=True)
    with notebook_pool(jobs) as pool:
        for done in pool.map(_run, sources, each):
            print(done, flush=True)


def _read_params(path: Path) -> dict:
    """The mapping a params file holds (an empty file: no parameters)."""
    try:
        parameters = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"params file {path} is not valid YAML: {exc}") from None
    if not isinstance(parameters, dict | None):
        raise ValueError(f"params file {path} must be a YAML mapping of parameter names, got {parameters!r}")
    return parameters or {}


if __name__ == "__main__":
    main(sys.argv[1:])
