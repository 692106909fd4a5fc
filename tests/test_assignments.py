"""The course assignments are sound: every solution passes every hidden check; every generated student version
runs up to its stubs and fails the checks of the stubbed exercises, and only those; generation is deterministic;
the grader's report and command line work."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import jupytext
import pandas as pd
import pytest

from nclib import assignments, grading

SOURCES = assignments.sources()
STEMS = [p.stem for p in SOURCES]


def graded_functions(stem: str) -> set[str]:
    """The functions the checks file of ``stem`` grades, read from its @pytest.mark.grades markers."""
    tree = ast.parse((grading.CHECKS / f"check_{stem}.py").read_text())
    return {
        call.args[0].value
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "grades"
    }


def code_exercises(stem: str) -> dict[str, list[str]]:
    found = assignments.exercises(assignments.read(assignments.SOURCES / f"{stem}.md"), stem)
    return {label: e["functions"] for label, e in found.items() if e["functions"]}


def test_there_are_four_assignments_each_with_checks():
    assert STEMS == ["a1_scores", "a2_zoo", "a3_collapse", "a4_claims"]
    for stem in STEMS:
        assert (grading.CHECKS / f"check_{stem}.py").exists()


@pytest.mark.parametrize("stem", STEMS)
def test_every_check_grades_a_solution_function(stem):
    defined = {f for functions in code_exercises(stem).values() for f in functions}
    graded = graded_functions(stem)
    assert len(graded) >= 2, "each assignment has at least two automatically graded functions"
    assert graded <= defined, f"checks for functions no solution defines: {sorted(graded - defined)}"
    text = (assignments.SOURCES / f"{stem}.md").read_text()
    assert "name: nclib" in text.split("---")[1]
    assert ":tags: [parameters, remove-cell]" in text.split("```{code-cell}")[1], "first cell: the parameters"


def test_stub_keeps_imports_signatures_and_docstrings():
    source = (
        "import numpy as np\n\n\n"
        "def f(x, y=1):\n"
        '    """Add.\n\n    More.\n    """\n'
        "    z = x + y  # secret\n"
        "    return z\n\n\n"
        "@staticmethod\n"
        "def g(\n    a,\n):\n"
        "    return np.sum(a)\n"
    )
    assert assignments.stub(source) == (
        "import numpy as np\n\n\n"
        "def f(x, y=1):\n"
        '    """Add.\n\n    More.\n    """\n'
        '    raise NotImplementedError("f: replace this line by your code")\n\n\n'
        "@staticmethod\n"
        "def g(\n    a,\n):\n"
        '    raise NotImplementedError("g: replace this line by your code")'
    )


def test_solution_cells_hold_only_definitions():
    nb = jupytext.reads(
        "```{exercise-start}\n:label: x\n```\nDo it.\n```{exercise-end}\n```\n\n"
        "```{solution-start} x\n```\n\n```{code-cell} ipython3\n:tags: [solution]\n\nanswer = 42\n```\n\n"
        "```{solution-end}\n```\n",
        fmt="md:myst",
    )
    with pytest.raises(ValueError, match="only imports and function definitions"):
        assignments.exercises(nb)


def test_generated_files_are_deterministic(tmp_path):
    first, second = assignments.bundle(tmp_path / "a"), assignments.bundle(tmp_path / "b")
    assert [p.name for p in first] == [*(f"{s}.ipynb" for s in STEMS), "README.md"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    pages = assignments.book(tmp_path / "book")
    assert [p.read_bytes() for p in pages] == [p.read_bytes() for p in assignments.book(tmp_path / "again")]
    assert (tmp_path / "book" / "student" / "a1_scores.ipynb").read_bytes() == first[0].read_bytes()


@pytest.mark.parametrize("stem", STEMS)
def test_student_version_hides_every_solution(stem, tmp_path):
    source = assignments.read(assignments.SOURCES / f"{stem}.md")
    student = assignments.student_version(source, stem)
    text = "\n".join(c.source for c in student.cells)
    assert "solution-start" not in text and "exercise-start" not in text
    for cell in source.cells:
        if "solution" in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.FunctionDef):
                    body = ast.unparse(node.body[-1])
                    assert body not in text, f"{node.name}: the last line of the solution survives"
                    assert f'raise NotImplementedError("{node.name}:' in text
    prose = [c for c in student.cells if "**Your answer**" in c.source]
    assert len(prose) == sum(1 for e in assignments.exercises(source, stem).values() if e["prose"])


SEED = 902149690  # once lost a4's solution marks: a check's reference did not skip a resample of one model


@pytest.mark.parametrize("stem", STEMS)
def test_solution_passes_every_check_under_many_seeds(stem):
    reports = grading.sweep(assignments.SOURCES / f"{stem}.md", [SEED, *range(200)], stem)  # executed once
    failed = {}
    for report in reports:
        assert report.errors == [], f"the solution raised: {report.errors}"
        assert set(report.exercises) == graded_functions(stem)
        failed |= {(report.seed, e): c["failed"] for e, c in report.exercises.items() if c["failed"]}
    assert not failed, f"{len(failed)} (seed, function) lost marks: {failed}"


def test_sweep_runs_the_submission_once_and_gives_each_seed_the_report_of_grade(tmp_path, monkeypatch):
    (tmp_path / "check_toy.py").write_text(
        "import pytest\n\n\n"
        '@pytest.mark.grades("f")\n'
        '@pytest.mark.parametrize("case", range(2))\n'
        "def test_f_on_random_data(submission, rng, case):\n"
        '    assert submission.function("f")(rng.random()) < 0.5\n\n\n'
        '@pytest.mark.grades("g")\n'
        "def test_g_without_data(submission):\n"
        '    assert submission.function("g")() == 1\n'
    )
    path = tmp_path / "alice.py"
    path.write_text("def f(x):\n    return x\n\n\ndef g():\n    return 1\n")
    runs = []
    monkeypatch.setattr(grading, "execute", lambda *args, run=grading.execute: runs.append(args) or run(*args))
    swept = grading.sweep(path, range(8), "toy", checks=tmp_path)
    assert len(runs) == 1 and [r.seed for r in swept] == list(range(8))
    assert {len(r.exercises["f"]["passed"]) for r in swept} == {0, 1, 2}, "each seed draws its own data"
    assert all(r.exercises["g"] == {"passed": ["test_g_without_data"], "failed": []} for r in swept)
    for report in swept:
        assert report.exercises == grading.grade(path, "toy", report.seed, checks=tmp_path).exercises


CASES = [(stem, label) for stem in STEMS for label in [None, *code_exercises(stem)]]


@pytest.mark.parametrize(("stem", "label"), CASES, ids=[f"{s}-{label or 'all'}" for s, label in CASES])
def test_student_version_fails_exactly_the_stubbed_checks(stem, label, tmp_path):
    source = assignments.read(assignments.SOURCES / f"{stem}.md")
    stubbed = None if label is None else [label]
    path = assignments.write(assignments.student_version(source, stem, stubbed), tmp_path / f"{stem}.ipynb")
    report = grading.grade(path, seed=SEED)  # the assignment comes from the notebook's metadata
    assert report.assignment == stem
    assert report.errors and report.errors[0][1].startswith("NotImplementedError"), "runs up to its first stub"
    functions = code_exercises(stem)
    stubbed_functions = {f for lab, fs in functions.items() if label in (None, lab) for f in fs}
    for exercise, checks in report.exercises.items():
        if exercise in stubbed_functions:
            assert not checks["passed"], f"{exercise} is a stub but passed {checks['passed']}"
            assert all("NotImplementedError" in msg for _, msg in checks["failed"])
        else:
            assert not checks["failed"], f"seed {report.seed}: {exercise} is not stubbed but failed {checks['failed']}"


def test_report_format():
    report = grading.Report(
        "alice.ipynb", "a1_scores", 7,
        {"nc_score": {"passed": ["t1"], "failed": [("t2", "assert 1 == 2"), ("t3", "assert 1 == 2"), ("t4", "E")]},
         "h_score": {"passed": ["t"], "failed": []}},
        [(5, "NotImplementedError: nc_score")], 9, 1.25,
    )  # fmt: skip
    assert grading.format_report(report) == (
        "assignment a1_scores: alice.ipynb (checks seed 7)\n"
        "notebook: 9 code cells run in 1.2 s, 1 raised (first: cell 5, NotImplementedError: nc_score)\n"
        "exercise                  checks   score\n"
        "nc_score                   1/4      0.25\n"
        "h_score                    1/1      1.00\n"
        "total                               1.25 / 2\n"
        "failed checks:\n"
        "  nc_score: t2, t3: assert 1 == 2\n"
        "  nc_score: t4: E"
    )


def test_grading_a_folder_from_the_command_line(tmp_path):
    folder = tmp_path / "submissions"
    folder.mkdir()
    solution = "\n\n".join(
        c.source for c in assignments.read(assignments.SOURCES / "a4_claims.md").cells
        if "solution" in c.metadata.get("tags", [])
    )  # fmt: skip
    (folder / "alice.py").write_text("import numpy as np\nimport pandas as pd\n\n" + solution)
    (folder / "bob.py").write_text("def leave_one_out(metric, scores, performance):\n    return 42\n")
    csv = tmp_path / "grades.csv"
    run = subprocess.run(
        [sys.executable, "-m", "nclib.grading", str(folder), "--assignment", "a4_claims", "--seed", "3",
         "--csv", str(csv)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "alice.py (checks seed 3)" in run.stdout and "bob.py (checks seed 3)" in run.stdout
    grades = pd.read_csv(csv).set_index("submission")
    assert grades.loc["alice.py", "total"] == 2 and grades.loc["bob.py", "total"] == 0
    assert list(grades.columns) == ["leave_one_out", "paired_win_rate", "total"]


def test_metadata_names_the_assignment(tmp_path):
    student = assignments.student_version(assignments.read(SOURCES[0]), "a1_scores")
    path = assignments.write(student, tmp_path / "x.ipynb")
    assert grading.assignment_of(path) == "a1_scores"
    assert json.loads(path.read_text())["metadata"]["nclib"]["version"] == "student"
    with pytest.raises(ValueError, match="which assignment"):
        grading.grade(SOURCES[0])


@pytest.mark.parametrize(("missing", "module"), [("pytest", "nclib.grading"), ("jupytext", "nclib.assignments")])
def test_a_missing_course_extra_says_what_to_install(missing, module):
    run = subprocess.run(
        [sys.executable, "-c", f"import sys\nsys.modules[{missing!r}] = None  # as if not installed\nimport {module}"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode != 0
    assert f'ImportError: {module} needs {missing}: install nclib with its "course" extra' in run.stderr
