"""Automatic grading of the course assignments (see ``nclib.assignments``) with hidden pytest checks.

A submission (a student's ``.ipynb``, a MyST ``.md`` notebook or a plain ``.py`` module) is executed cell by
cell in one namespace: a cell that raises is recorded and the next cells still run, so one unfinished exercise
costs only its own checks. The checks of assignment ``<name>`` are ``nclib/course/checks/check_<name>.py``:
pytest tests marked ``@pytest.mark.grades("function")`` that call the student's function on fresh random data
(a new seed every run, printed so a run can be repeated) and compare it with nclib's reference, so a hard-coded
output does not pass. A module-level ``PARAMETERS`` dict in the checks file replaces the notebook's
``parameters`` cell values while grading, to keep the run short (the checks never look at the notebook's results).

    python -m nclib.grading alice.ipynb                       # one submission: a score per exercise
    python -m nclib.grading submissions/ --csv grades.csv     # every submission in a folder, one process each

An exercise scores the fraction of its checks that pass; the total is the sum over exercises. ``sweep`` grades one
submission under many seeds at once (it runs once), to show that a solution passes whatever the data.

Grading needs pytest and jupytext: install nclib with its ``course`` extra.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import secrets
import subprocess
import sys
import time
import traceback
import types
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import pytest
except ImportError as exc:
    raise ImportError('nclib.grading needs pytest: install nclib with its "course" extra, e.g. '
                      'pip install -e ".[course]" in a clone of the repository') from exc

from nclib.assignments import SOURCES

CHECKS = SOURCES / "checks"
SUFFIXES = (".ipynb", ".md", ".py")
_SHELL = re.compile(r"^([ \t]*)[!%].*$", re.MULTILINE)  # IPython shell and magic lines


@dataclass
class Submission:
    """A submission after execution: its namespace and the cells that raised (index, error)."""

    path: str
    namespace: dict[str, Any]
    errors: list[tuple[int, str]]
    n_cells: int
    seconds: float

    def function(self, name: str):
        """The student's function ``name``; fails the calling check if it is missing."""
        fn = self.namespace.get(name)
        if not callable(fn):
            pytest.fail(f"the submission defines no function {name!r}", pytrace=False)
        return fn


def cells(path: Path) -> list[tuple[str, list[str]]]:
    """(source, tags) of every code cell of a notebook, or one cell holding a ``.py`` module."""
    path = Path(path)
    if path.suffix == ".py":
        return [(path.read_text(), [])]
    if path.suffix not in SUFFIXES:
        raise ValueError(f"{path}: a submission must be one of {SUFFIXES}")
    import jupytext

    nb = jupytext.read(path)
    return [(c.source, list(c.metadata.get("tags", []))) for c in nb.cells if c.cell_type == "code"]


def execute(path: Path, parameters: dict[str, Any] | None = None) -> Submission:
    """Run the code cells of ``path`` in order in a fresh namespace, ``parameters`` set after the cell tagged
    ``parameters`` (before the first cell if none is). Shell and magic lines (``!cmd``, ``%magic``) are skipped;
    printed output is discarded; figures are drawn off screen and closed after each cell. torch runs on one
    thread: a run then takes the same time on a busy machine, and several submissions can be graded at once."""
    import matplotlib
    import torch

    torch.set_num_threads(1)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    code = cells(path)
    module = types.ModuleType("__submission__")  # a real module, so that e.g. dataclasses defined in cells work
    sys.modules[module.__name__] = module
    namespace = module.__dict__
    if not any("parameters" in tags for _, tags in code):
        namespace.update(parameters or {})
    errors, start = [], time.perf_counter()
    for index, (source, tags) in enumerate(code):
        try:
            compiled = compile(_SHELL.sub(r"\1pass", source), f"<{Path(path).name}, cell {index}>", "exec")
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(compiled, namespace)
        except Exception as exc:  # a student's error: recorded, and the next cells still run
            errors.append((index, f"{type(exc).__name__}: {exc}"))
        finally:
            plt.close("all")
        if "parameters" in tags:
            namespace.update(parameters or {})
    return Submission(str(path), namespace, errors, len(code), time.perf_counter() - start)


def assignment_of(path: Path) -> str | None:
    """The assignment a generated student notebook belongs to (its ``nclib`` metadata), else None."""
    if Path(path).suffix != ".ipynb":
        return None
    meta = json.loads(Path(path).read_text()).get("metadata", {})
    return meta.get("nclib", {}).get("assignment")


@dataclass
class Report:
    """The grade of one submission: per exercise (a graded function), the checks passed and failed."""

    submission: str
    assignment: str
    seed: int
    exercises: dict[str, dict[str, list]] = field(default_factory=dict)  # name -> {"passed": [check],
    #                                                                              "failed": [(check, message)]}
    errors: list[tuple[int, str]] = field(default_factory=list)
    n_cells: int = 0
    seconds: float = 0.0

    def score(self, exercise: str) -> float:
        checks = self.exercises[exercise]
        return len(checks["passed"]) / (len(checks["passed"]) + len(checks["failed"]))

    @property
    def total(self) -> float:
        return sum(self.score(e) for e in self.exercises)


class _Plugin:
    """pytest plugin: the ``submission``, ``seed`` and ``rng`` fixtures, and the outcome of every check."""

    def __init__(self, path: Path, seeds: list[int], parameters: dict[str, Any] | None) -> None:
        self.path, self.seeds, self.parameters = path, seeds, parameters
        self.outcomes: list[tuple[str, int | None, str, bool, str]] = []  # (exercise, seed, check, passed, message)
        self.executed: Submission | None = None
        self.checks: dict[str, tuple[str, int | None, str]] = {}  # check id -> (function graded, seed, name)

    def pytest_configure(self, config) -> None:
        config.addinivalue_line("markers", "grades(name): the check grades the student's function `name`")

    @pytest.hookimpl(trylast=True)  # after the checks' own parameters, so the seed's id ends the name: [...-seed7]
    def pytest_generate_tests(self, metafunc) -> None:
        if len(self.seeds) > 1 and "seed" in metafunc.fixturenames:  # every seeded check once per seed
            metafunc.parametrize("seed", self.seeds, ids=[f"seed{s}" for s in self.seeds])

    @pytest.fixture(scope="module")
    def submission(self, request) -> Submission:
        parameters = getattr(request.module, "PARAMETERS", {}) if self.parameters is None else self.parameters
        self.executed = execute(self.path, parameters)
        return self.executed

    @pytest.fixture
    def seed(self) -> int:
        """The seed of the checks' data; a sweep parametrizes it."""
        return self.seeds[0]

    @pytest.fixture
    def rng(self, request, seed) -> np.random.Generator:
        """Fresh data for every check: seeded by the seed and the check's name (its name in a one-seed run)."""
        _, _, name = self.checks[request.node.nodeid]
        return np.random.default_rng([seed, zlib.crc32(name.encode())])

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" or report.outcome == "failed":
            message = "" if report.passed else _last_line(report.longreprtext)
            self.outcomes.append((*self.checks[report.nodeid], report.passed, message))

    def pytest_collection_modifyitems(self, items) -> None:
        for item in items:
            marks = list(item.iter_markers("grades"))
            if len(marks) != 1:
                raise ValueError(f"{item.nodeid}: every check needs exactly one @pytest.mark.grades(name)")
            seed = item.callspec.params.get("seed") if hasattr(item, "callspec") else None  # None: the only seed
            name = item.name if seed is None else item.name.replace(f"-seed{seed}]", "]").replace(f"[seed{seed}]", "")
            self.checks[item.nodeid] = marks[0].args[0], seed, name


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E ")]
    return (errors[0][1:].strip() if errors else lines[-1] if lines else "")[:200]


def grade(
    path: str | os.PathLike,
    assignment: str | None = None,
    seed: int | None = None,
    parameters: dict[str, Any] | None = None,
    checks: Path = CHECKS,
) -> Report:
    """Grade one submission in this process (``python -m nclib.grading`` runs each in its own process).

    ``assignment``: defaults to the one recorded in a generated student notebook. ``seed``: of the checks' random
    data, fresh if None. ``parameters``: notebook parameters for the run (default: the checks file's PARAMETERS).
    """
    return sweep(path, [secrets.randbits(32) if seed is None else seed], assignment, parameters, checks)[0]


def sweep(
    path: str | os.PathLike,
    seeds: Iterable[int],
    assignment: str | None = None,
    parameters: dict[str, Any] | None = None,
    checks: Path = CHECKS,
) -> list[Report]:
    """Grade one submission under each of ``seeds``: the submission runs once, every check once per seed.

    Returns one Report per seed, the same as ``grade`` with that seed. Other arguments as for ``grade``.
    """
    path, seeds = Path(path), list(dict.fromkeys(seeds))
    assignment = assignment or assignment_of(path)
    if assignment is None:
        raise ValueError(f"{path}: say which assignment it is (--assignment); its metadata does not")
    check_file = checks / f"check_{assignment}.py"
    if not check_file.exists():
        raise ValueError(f"no checks for assignment {assignment!r}: {check_file} does not exist")
    plugin = _Plugin(path, seeds, parameters)
    args = [str(check_file), "-q", "-p", "no:cacheprovider", "--rootdir", str(checks), "-c", os.devnull,
            "-W", "ignore::DeprecationWarning"]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = pytest.main(args, plugins=[plugin])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        raise RuntimeError(f"the checks of {assignment} did not run (pytest exit code {code}):\n{out.getvalue()}")
    reports = {seed: Report(str(path), assignment, seed) for seed in seeds}
    for exercise, seed, check, passed, message in plugin.outcomes:
        for report in reports.values() if seed is None else [reports[seed]]:  # None: run once, for every seed
            slot = report.exercises.setdefault(exercise, {"passed": [], "failed": []})
            slot["passed" if passed else "failed"].append(check if passed else (check, message))
    if plugin.executed is not None:
        for report in reports.values():
            report.errors, report.n_cells = plugin.executed.errors, plugin.executed.n_cells
            report.seconds = plugin.executed.seconds
    return list(reports.values())


def format_report(report: Report) -> str:
    """The grade as text: one line per exercise, the total, then what failed."""
    lines = [
        f"assignment {report.assignment}: {report.submission} (checks seed {report.seed})",
        f"notebook: {report.n_cells} code cells run in {report.seconds:.1f} s, {len(report.errors)} raised"
        + (f" (first: cell {report.errors[0][0]}, {report.errors[0][1][:120]})" if report.errors else ""),
        f"{'exercise':<24}{'checks':>8}{'score':>8}",
    ]
    for name, checks in report.exercises.items():
        n = len(checks["passed"]) + len(checks["failed"])
        lines.append(f"{name:<24}{len(checks['passed']):>4}/{n:<3}{report.score(name):>8.2f}")
    lines.append(f"{'total':<24}{'':>8}{report.total:>8.2f} / {len(report.exercises)}")
    failed = []
    for name, checks in report.exercises.items():
        by_message: dict[str, list[str]] = {}
        for check, message in checks["failed"]:
            by_message.setdefault(message, []).append(check)
        failed += [f"  {name}: {', '.join(c)}: {message}" for message, c in by_message.items()]
    return "\n".join(lines + (["failed checks:", *failed] if failed else []))


def _submissions(paths: list[str]) -> list[Path]:
    out = []
    for p in map(Path, paths):
        out += sorted(f for f in p.iterdir() if f.suffix in SUFFIXES) if p.is_dir() else [p]
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m nclib.grading", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="submissions, or folders of submissions")
    parser.add_argument("--assignment", help="e.g. a1_scores (default: read from a generated student notebook)")
    parser.add_argument("--seed", type=int, help="seed of the checks' random data (default: fresh)")
    parser.add_argument("--csv", help="write one row per submission (score per exercise, total) to this file")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per submission")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one submission, for a worker
    args = parser.parse_args(argv)
    paths = _submissions(args.paths)
    if args.json:
        print(json.dumps(asdict(grade(paths[0], args.assignment, args.seed))))
        return 0
    seed = secrets.randbits(32) if args.seed is None else args.seed  # the same data for every submission
    rows = []
    for path in paths:
        cmd = [sys.executable, "-m", "nclib.grading", str(path), "--json", "--seed", str(seed)]
        cmd += ["--assignment", args.assignment] if args.assignment else []
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=True)
            report = Report(**json.loads(run.stdout.strip().splitlines()[-1]))
        except (subprocess.SubprocessError, ValueError, IndexError) as exc:
            detail = getattr(exc, "stderr", "") or traceback.format_exception_only(exc)[-1]
            print(f"{path}: not graded: {detail.strip().splitlines()[-1] if detail.strip() else exc}\n")
            rows.append({"submission": path.name, "total": float("nan")})
            continue
        print(format_report(report) + "\n")
        rows.append({"submission": path.name, **{e: report.score(e) for e in report.exercises},
                     "total": report.total})  # fmt: skip
    if args.csv:
        import pandas as pd

        exercises = dict.fromkeys(e for row in rows for e in row if e not in ("submission", "total"))
        pd.DataFrame(rows, columns=["submission", *exercises, "total"]).to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
