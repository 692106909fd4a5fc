"""Regenerate tests/reference/pins.json: run the authors' reference implementations on the tests' own inputs.

    python tests/reference/regenerate.py [--source NAME=PATH ...] [--only NAME ...] [--dry-run]

Each source of SOURCES below is used at the commit stated there. By default it is cloned from its repository (git and
network needed; only the top-level files and the listed folders are checked out) into a temporary folder. With
``--source NAME=PATH`` it is taken from PATH instead: from a git repository (bare or not, a mirror say) the files at
the commit are extracted, so its own checkout does not matter; a plain folder is trusted to hold that commit.

The inputs are built by the test modules themselves (their case tables and seeded generators), so they cannot drift
from what the tests check. The script prints, per score, how far the new values are from the pinned ones, then
rewrites pins.json, keeping the entries of the sources that did not run (``--dry-run``: print only).

The interpreter needs what the test modules import (numpy, scipy, scikit-learn, torch, pytest, hypothesis; nclib is
imported from this checkout), and, for one source each:
    logme   numba        (LogME.py compiles with numba on import)
    gbc     tensorflow   (gbc.py computes in TensorFlow)
A source whose code cannot be had, or whose imports fail, is skipped with a message; the others still run. Versions
matter: pins.json records those each score was made with, and NCTI's reproduce with scikit-learn 1.8.0, not 1.9.1
(whose LinearDiscriminantAnalysis, solver "svd", gives other values).
`make test` does not run this script: the tests only read pins.json.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import types
from pathlib import Path

import numpy as np

# name: repository, commit, folders needed besides the top-level files
SOURCES = {
    "nc_demo": ("https://github.com/AnshThakur/NC_Scores_Demo", "bcf5473dd90d03b734c59b8b90578022f1ad6d01", []),
    "tllib": ("https://github.com/thuml/Transfer-Learning-Library", "c4aa59eb565650a552b809411601d0589efbbfe4",
              ["tllib/ranking"]),
    "logme": ("https://github.com/thuml/LogME", "56551ca94a3295bcc37e6a01b1291911af985f07", []),
    "gbc": ("https://github.com/google-research/google-research", "1d4d2f1aa6f2883a790d2ae46a6ee8ab150d8f31",
            ["stable_transfer/transferability"]),
    "sfda": ("https://github.com/TencentARC/SFDA", "3b7edf76bd682acb1eba4f4c5eb7ea7f3f7f6c59", ["models"]),
    "ncti": ("https://github.com/BUserName/NCTI", "b18d39514a3f2a7a949500b467a38b93de1428e4", ["models"]),
}

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS.parent), str(TESTS)]  # nclib from this checkout; the test modules and `reference`


# --- getting the code ------------------------------------------------------------------------------------------------
def git(*args: str | Path) -> str:
    return subprocess.run(["git", *map(str, args)], check=True, capture_output=True, text=True).stdout


def obtain(name: str, given: str | None, workdir: Path) -> Path:
    """A folder holding the files of source ``name`` at its commit."""
    repo, commit, folders = SOURCES[name]
    dest = workdir / name
    if given is None:
        git("clone", "--quiet", "--filter=blob:none", "--no-checkout", repo, dest)
        git("-C", dest, "sparse-checkout", "set", "--cone", *folders)
        git("-C", dest, "checkout", "--quiet", commit)
        return dest
    path = Path(given).resolve()
    try:
        git("-C", path, "rev-parse", "--git-dir")
    except subprocess.CalledProcessError:
        print(f"{name}: {path} is not a git repository; taken to hold commit {commit}")
        return path
    archive = workdir / f"{name}.tar"
    git("-C", path, "archive", "--output", archive, commit, "--", ":(glob)*", *folders)  # top-level files + folders
    dest.mkdir()
    with tarfile.open(archive) as tar:
        # links are left out: NCTI's commit has one to an absolute path (its data folder)
        tar.extractall(dest, filter=lambda member, to: None if member.issym() or member.islnk()
                       else tarfile.data_filter(member, to))  # fmt: skip
    return dest


def load(path: Path) -> types.ModuleType:
    """Import one file of a checkout as a module of its own."""
    spec = importlib.util.spec_from_file_location(f"reference_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def on_path(root: Path):
    """``root`` on sys.path; afterwards the modules imported from it are forgotten (SFDA and NCTI both have a
    ``metrics`` and a ``utils``)."""
    tops = {p.stem for p in root.iterdir()}
    before = set(sys.modules)
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))
        for module in set(sys.modules) - before:
            if module.split(".")[0] in tops:
                del sys.modules[module]


def quietly(f, *args):
    """f(*args) with its prints swallowed; returns (result, what it printed)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = f(*args)
    return result, out.getvalue()


def versions(*modules: str) -> dict[str, str]:
    return {m: importlib.import_module(m).__version__ for m in modules}


def entry(source: str, call: str, modules: list[str], values: dict) -> dict:
    repo, commit, _ = SOURCES[source]
    return {"repo": repo, "commit": commit, "call": call, "environment": versions(*modules), "values": values}


# --- running the references: source name -> {score: pins object} ----------------------------------------------------
def run_nc_demo(root: Path) -> dict:
    t = importlib.import_module("test_scores_nc")
    cells = json.loads((root / "Demo_NC_Scores.ipynb").read_text())["cells"]
    code = next(src for src in ("".join(c["source"]) for c in cells if c["cell_type"] == "code")
                if "def compute_neural_collapse_score" in src)  # fmt: skip
    namespace = {"np": np}
    exec(code, namespace)  # the notebook cell that defines the function, as it stands at the commit
    score = namespace["compute_neural_collapse_score"]
    values = {name: float(score(*t.blobs(*args))) for name, args in t.CASES.items()}
    call = ("compute_neural_collapse_score(x, y) of Demo_NC_Scores.ipynb; "
            "x, y = blobs(*CASES[name]) of tests/test_scores_nc.py")  # fmt: skip
    return {"nc_demo": entry("nc_demo", call, ["numpy"], values)}


def run_tllib(root: Path) -> dict:
    ranking = root / "tllib" / "ranking"  # file by file: tllib/__init__.py would import all of tllib
    leep, nce = load(ranking / "leep.py"), load(ranking / "nce.py")
    hscore, transrate = load(ranking / "hscore.py"), load(ranking / "transrate.py")
    t, g = importlib.import_module("test_scores_leep"), importlib.import_module("test_scores_gram")
    features = {name: (g.case(name)[0].astype(np.float64), g.case(name)[1]) for name in g.CASES}
    leep_values = {str(k): float(leep.log_expected_empirical_prediction(*t.softmax_probs(*k))) for k in t.LEEP_CASES}
    nce_values = {str(k): float(nce.negative_conditional_entropy(*t.pseudo_labels(*k))) for k in t.NCE_CASES}
    h_values = {name: [float(hscore.h_score(x, y)), float(hscore.regularized_h_score(x, y))]
                for name, (x, y) in features.items()}  # fmt: skip
    trr_values = {name: float(transrate.transrate(x, y)) for name, (x, y) in features.items()}
    return {
        "leep": entry("tllib", "tllib/ranking/leep.py::log_expected_empirical_prediction(p, y); p, y = "
                      "softmax_probs(*key) of tests/test_scores_leep.py, key in LEEP_CASES", ["numpy"], leep_values),
        "nce": entry("tllib", "tllib/ranking/nce.py::negative_conditional_entropy(z, y); z, y = pseudo_labels(*key) of "
                     "tests/test_scores_leep.py, key in NCE_CASES", ["numpy"], nce_values),
        "hscore": entry("tllib", "[h_score, regularized_h_score] of tllib/ranking/hscore.py on x.astype(float64), y = "
                        "case(name) of tests/test_scores_gram.py", ["numpy", "sklearn"], h_values),
        "transrate": entry("tllib", "tllib/ranking/transrate.py::transrate(x.astype(float64), y); x, y = case(name) of "
                           "tests/test_scores_gram.py", ["numpy"], trr_values),
    }


def run_logme(root: Path) -> dict:
    reference = load(root / "LogME.py")
    t = importlib.import_module("test_scores_logme")

    def fit(x, y, icml):
        model = reference.LogME()
        if icml:
            model._fit = model._fit_icml
        return float(model.fit(x.astype(np.float64), y))

    values = {name: [fit(*t.case(name), icml=False), fit(*t.case(name), icml=True)] for name in t.CASES}
    call = ("[fixed_point, icml]: LogME.py::LogME().fit(x.astype(float64), y), and the same with _fit = _fit_icml; "
            "x, y = case(name) of tests/test_scores_logme.py")  # fmt: skip
    return {"logme": entry("logme", call, ["numpy", "numba"], values)}


def run_gbc(root: Path) -> dict:
    # gbc.py imports transfer_experiment (datasets, networks, configs) only for its experiment driver, which is not
    # called here: a stub stands in for it.
    stub = types.ModuleType("stable_transfer.transferability.transfer_experiment")
    stub.load_or_compute = lambda func: func
    with on_path(root):
        sys.modules[stub.__name__] = stub
        gbc = importlib.import_module("stable_transfer.transferability.gbc")
        utils = importlib.import_module("stable_transfer.transferability.features_targets_utils")
        sys.modules.pop(stub.__name__)
    t = importlib.import_module("test_scores_gram")
    values = {}
    for name in t.CASES:
        x, y = t.case(name)
        x = x.astype(np.float64)
        ks = (min(64, x.shape[1], x.shape[0] - 1), 8)
        values[name] = [float(gbc.get_gbc_score(utils.pca_reduction(x, k), y, "spherical")) for k in ks]
    call = ("[k = min(64, D, N - 1), k = 8]: stable_transfer/transferability/gbc.py::get_gbc_score(pca_reduction(x, "
            "k), y, 'spherical'), pca_reduction of features_targets_utils.py; x.astype(float64), y = case(name) of "
            "tests/test_scores_gram.py")  # fmt: skip
    return {"gbc": entry("gbc", call, ["numpy", "sklearn", "tensorflow"], values)}


def run_sfda(root: Path) -> dict:
    with on_path(root):
        metrics = importlib.import_module("metrics")
    t = importlib.import_module("test_scores_ncti_sfda")
    values = {}
    for name, args in t.SFDA_CASES.items():
        x, y = t.blobs(*args)
        score, printed = quietly(metrics.SFDA_Score, x.copy(), y)  # SFDA_Score overwrites its x
        shrinkage = float(re.search(r"Shrinkage: (\S+)", printed).group(1))  # of the first of its two fits
        values[name] = [float(score), float(f"{shrinkage:.2g}")]
    call = ("[score, shrinkage]: metrics.py::SFDA_Score(x.copy(), y), and the shrinkage it prints first, to 2 "
            "significant digits; x, y = blobs(*SFDA_CASES[name]) of tests/test_scores_ncti_sfda.py")  # fmt: skip
    return {"sfda": entry("sfda", call, ["numpy", "scipy"], values)}


def run_ncti(root: Path) -> dict:
    with on_path(root):
        metrics = importlib.import_module("metrics")
    t = importlib.import_module("test_scores_ncti_sfda")
    scores, terms = {}, {}
    for name, args in t.NCTI_CASES.items():
        features, y = t.zoo(*args)
        terms[name] = {m: [float(v) for v in quietly(metrics.NCTI_Score, x, y)[0]] for m, x in features.items()}
        # evaluate_metric_group1_cpu.py: each of the three terms min-max normalised over the models, then
        # score = ncc~ + seli~ - vc~, with (seli, ncc, vc) = NCTI_Score(x, y)
        table = np.array(list(terms[name].values()))
        low, high = table.min(axis=0), table.max(axis=0)
        seli, ncc, vc = ((table - low) / (high - low)).T
        scores[name] = dict(zip(features, map(float, ncc + seli - vc), strict=True))
    where = "x_by_model, y = zoo(*NCTI_CASES[name]) of tests/test_scores_ncti_sfda.py"
    modules = ["numpy", "scipy", "sklearn"]
    return {
        "ncti": entry("ncti", "model: ncc~ + seli~ - vc~, the min-max normalisation over the models of "
                      f"evaluate_metric_group1_cpu.py applied to metrics.py::NCTI_Score(x, y) per model; {where}",
                      modules, scores),
        "ncti_terms": entry("ncti", "model: [all_lowfeat_nuc, sfda_score, log(class_pred_nuc)] = "
                            f"metrics.py::NCTI_Score(x, y); {where}", modules, terms),
    }


RUNNERS = {"nc_demo": run_nc_demo, "tllib": run_tllib, "logme": run_logme, "gbc": run_gbc, "sfda": run_sfda,
           "ncti": run_ncti}  # fmt: skip


# --- comparing and writing -------------------------------------------------------------------------------------------
def leaves(values, path=""):
    """(path, number) for every number in a pins object's values."""
    if isinstance(values, dict):
        for key, value in values.items():
            yield from leaves(value, f"{path}/{key}" if path else key)
    elif isinstance(values, list):
        for i, value in enumerate(values):
            yield from leaves(value, f"{path}[{i}]")
    else:
        yield path, values


def report(current: dict, new: dict) -> None:
    for score, pins in new.items():
        before = dict(leaves(current.get(score, {}).get("values", {})))
        after = dict(leaves(pins["values"]))
        common = [p for p in after if p in before]
        diffs = [abs(after[p] - before[p]) for p in common]
        rels = [d / abs(before[p]) if before[p] else d for p, d in zip(common, diffs, strict=True)]  # abs where 0
        same = sum(d == 0 for d in diffs)
        print(f"{score}: {len(after)} values, {same} identical, max abs diff {max(diffs, default=0):.3g}, "
              f"max rel diff {max(rels, default=0):.3g}")  # fmt: skip
        for p in after:
            if before.get(p) != after[p]:
                print(f"  {p}: {before.get(p, '(new)')} -> {after[p]}")
        for p in set(before) - set(after):
            print(f"  {p}: {before[p]} -> (gone)")
        for field in ("repo", "commit", "call", "environment"):
            if current.get(score, {}).get(field) != pins[field]:
                print(f"  {field}: {current.get(score, {}).get(field)} -> {pins[field]}")


def dumps(pins: dict) -> str:
    """JSON, one list of numbers a line."""
    text = json.dumps(pins, indent=2) + "\n"
    return re.sub(r"\[\s+([^\[\]{}\"]*?)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", action="append", default=[], metavar="NAME=PATH",
                        help=f"take source NAME ({', '.join(SOURCES)}) from PATH instead of cloning it")
    parser.add_argument("--only", action="append", choices=list(SOURCES), help="run only this source (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="print the differences, write nothing")
    args = parser.parse_args(argv)
    given = dict(s.split("=", 1) for s in args.source)
    if unknown := set(given) - set(SOURCES):
        parser.error(f"unknown source {sorted(unknown)}: the sources are {', '.join(SOURCES)}")

    import reference  # the tests' loader: lenient here, so that a case added to a test can be pinned

    reference.STRICT = False
    current = reference.load_pins() if reference.PINS_FILE.exists() else {}
    new = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or SOURCES:
            try:
                root = obtain(name, given.get(name), Path(tmp))
            except (subprocess.CalledProcessError, FileNotFoundError) as err:  # git failed, or no git
                why = err.stderr.strip() if isinstance(err, subprocess.CalledProcessError) else err
                print(f"{name}: skipped, could not get the code at {SOURCES[name][1]}: {why}")
                continue
            try:
                new.update(RUNNERS[name](root))
            except ImportError as err:
                print(f"{name}: skipped, cannot import {err.name or err}")
    report(current, new)
    if new and not args.dry_run:
        reference.PINS_FILE.write_text(dumps({**current, **new}))
        print(f"wrote {reference.PINS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
