"""The project's own promises: one dependency set for pip and conda, the README's commands, CI, a package that
works installed (not only from its clone), optional dependencies that stay optional."""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pysoundfile": "soundfile"}  # conda-forge name -> PyPI name


def _split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pyproject() -> dict[str, str]:
    """Every requirement, extras included (but not an extra's other extras, ``nclib[...]``)."""
    reqs = list(PROJECT["dependencies"])
    for extra in PROJECT["optional-dependencies"].values():
        reqs += extra
    out: dict[str, str] = {}
    for name, spec in map(_split, reqs):
        if name != PROJECT["name"]:
            assert out.setdefault(name, spec) == spec, f"{name}: two version ranges in pyproject.toml"
    return out


def _conda() -> dict[str, str]:
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    out = {}
    for dep in deps:
        for req in dep["pip"] if isinstance(dep, dict) else [dep]:
            name, spec = _split(req)
            if name not in ("python", "pip"):
                out[CONDA_NAMES.get(name, name)] = spec
    return out


def test_environment_yml_matches_pyproject():
    pip, conda = _pyproject(), _conda()
    assert sorted(pip) == sorted(conda), (
        f"only in pyproject: {set(pip) - set(conda)}; only in environment.yml: {set(conda) - set(pip)}"
    )
    differing = {name: (pip[name], conda[name]) for name in pip if pip[name] != conda[name]}
    assert not differing, f"version ranges differ (pyproject, environment.yml): {differing}"


def test_readme_quick_start_and_ci_use_the_make_targets():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^book:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_a_non_editable_install_carries_the_assignments(tmp_path):
    """What ``pip install git+...`` (the notebooks' Colab cell) installs: the package alone, used from elsewhere."""
    src, site, work = tmp_path / "src", tmp_path / "site", tmp_path / "work"
    shutil.copytree(ROOT / "nclib", src / "nclib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):  # a copy: pip builds in the source tree
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site)]
    subprocess.run([*pip, str(src)], check=True, capture_output=True)
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}

    def python(*args: str) -> str:
        return subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True, text=True,
                              check=True).stdout  # fmt: skip

    found = json.loads(python("-c", (
        "import json, nclib\n"
        "from nclib import assignments, grading\n"
        "print(json.dumps([nclib.__file__, [str(p) for p in assignments.sources()],"
        " sorted(str(p) for p in grading.CHECKS.glob('check_*.py'))]))"
    )))  # fmt: skip
    installed, solutions, checks = Path(found[0]), [Path(p) for p in found[1]], [Path(p) for p in found[2]]
    stems = ["a1_scores", "a2_zoo", "a3_collapse", "a4_claims"]
    assert installed == site / "nclib" / "__init__.py"
    assert solutions == [site / "nclib" / "course" / f"{s}.md" for s in stems]
    assert checks == [site / "nclib" / "course" / "checks" / f"check_{s}.py" for s in stems]
    python("-m", "nclib.assignments", "bundle", "handout")
    assert sorted(p.name for p in (work / "handout").iterdir()) == ["README.md", *(f"{s}.ipynb" for s in stems)]
    report = python("-m", "nclib.grading", "handout/a4_claims.ipynb", "--seed", "1")
    assert "assignment a4_claims: handout/a4_claims.ipynb (checks seed 1)" in report
    assert "total                               0.00 / 2" in report, "the student version: every check fails"


def test_distributed_is_an_extra_that_no_nclib_module_imports():
    assert "distributed" not in {_split(r)[0] for r in PROJECT["dependencies"]}
    assert "distributed" in {_split(r)[0] for r in PROJECT["optional-dependencies"]["dask"]}
    imported = json.loads(subprocess.run([sys.executable, "-c", (
        "import importlib, json, pkgutil, sys, nclib\n"
        "names = [m.name for m in pkgutil.walk_packages(nclib.__path__, 'nclib.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps([names, 'distributed' in sys.modules]))"
    )], capture_output=True, text=True, check=True).stdout)  # fmt: skip
    assert {"nclib.grid", "nclib.pipeline", "nclib.grading", "nclib.scores.nc"} <= set(imported[0])
    assert imported[1] is False, "importing nclib's modules imported distributed"
