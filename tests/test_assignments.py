"""The course assignments are sound: every solution passes every hidden check; every generated student version
runs up to its stubs and fails the checks of the stubbed exercises, and only those; generation is deterministic;
the grader's report and command line work."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from nclib import assignments, grading, site

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
    pages = assignments.book(tmp_path / "book", "student")
    assert [p.read_bytes() for p in pages] == [p.read_bytes() for p in assignments.book(tmp_path / "again", "student")]
    assert [p.read_bytes() for p in pages] == [p.read_bytes() for p in first[:-1]], "the pages are the handout"


def solution_text(stem: str) -> list[str]:
    """Every line of the solutions of ``stem`` that appears nowhere else in it: function bodies and prose answers."""
    source = assignments.read(assignments.SOURCES / f"{stem}.md")
    hidden, solution = [], False
    for cell in source.cells:
        if "solution" in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.FunctionDef):
                    body = node.body[1:] if isinstance(node.body[0], ast.Expr) else node.body  # not the docstring
                    hidden += [line for stmt in body for line in ast.unparse(stmt).splitlines()]
        elif cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("```{solution-"):
                    solution = line.startswith("```{solution-start}")
                elif solution and not line.startswith(":"):
                    hidden.append(line)
    shown = "\n".join(c.source for c in source.cells if "solution" not in c.metadata.get("tags", []))
    shown = re.sub(r"```\{solution-start\}.*?```\{solution-end\}", "", shown, flags=re.S)
    return [line.strip() for line in hidden if len(line.strip()) > 12 and line.strip() not in shown]


def test_the_student_edition_holds_no_solution(tmp_path):
    pages = assignments.book(tmp_path, "student")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()) == [
        Path(f"{s}.ipynb") for s in STEMS], "the student edition writes its pages and nothing else"
    for stem, page in zip(STEMS, pages, strict=True):
        raw = page.read_text()
        nb = json.loads(raw)
        assert nb["metadata"]["nclib"] == {"assignment": stem, "version": "student"}
        text = "\n".join("".join(cell["source"]) for cell in nb["cells"])
        secrets = solution_text(stem)
        assert len(secrets) >= 5, f"{stem}: too few solution lines to look for: {secrets}"
        leaked = [line for line in secrets if line in text or json.dumps(line)[1:-1] in raw]
        assert not leaked, f"{stem}: the student page holds solution lines {leaked[:3]}"
        assert "solution-start" not in raw


def directive_labels(page: dict) -> list[str]:
    """The subtitles of the exercise-start directives of a book page (as JSON), each checked to be unnumbered."""
    labels = []
    for cell in page["cells"]:
        lines = "".join(cell["source"]).split("\n")
        for i, line in enumerate(lines):
            if line.startswith("```{exercise-start}"):
                assert lines[i + 1] == ":nonumber:", f"sphinx-exercise would number {line!r} across the book"
                labels.append(line.removeprefix("```{exercise-start}").strip())
    return labels


@pytest.mark.parametrize("stem", STEMS)
def test_exercise_numbers_restart_in_each_assignment_as_in_the_student_notebook(stem):
    source = assignments.read(assignments.SOURCES / f"{stem}.md")
    page = json.loads(nbformat.writes(assignments.book_page(source, stem)))
    student = assignments.student_version(source, stem)
    headings = [line.removeprefix("## Exercise ") for cell in student.cells if cell.cell_type == "markdown"
                for line in cell.source.split("\n") if line.startswith("## Exercise ")]  # fmt: skip
    titles = [e["title"] for e in assignments.exercises(source, stem).values()]
    assert directive_labels(page) == headings == [f"{n}: {t}" for n, t in enumerate(titles, 1)]


def test_teacher_pages_are_executed_and_cached(tiny_book, tmp_path, monkeypatch):
    folder = tiny_book.generated / "assignments"  # the teacher edition, as the book's build writes it
    for stem in STEMS:
        page = json.loads((folder / f"{stem}.ipynb").read_text())
        assert page["metadata"]["nclib"]["version"] == "solution"
        code = [c for c in page["cells"] if c["cell_type"] == "code" and site.INSTALL_TAG not in c["metadata"].get(
            "tags", [])]  # the install cell (with an address) is added after the execution
        assert all(c["execution_count"] for c in code), f"{stem}: a code cell was not executed"
        out = [o for c in code for o in c["outputs"]]
        assert not [o for o in out if o["output_type"] == "error"], f"{stem}: a cell raised"
        shown = [o for o in out if o["output_type"] in ("execute_result", "display_data")]
        assert len(shown) >= 2, f"{stem}: {len(shown)} outputs (tables, figures) on the page"
        assert directive_labels(page)[0].startswith("1: ")
        student = json.loads((folder / "student" / f"{stem}.ipynb").read_text())
        assert student["metadata"]["nclib"]["version"] == "student", "the page's download is the student version"
    import nclib.book

    monkeypatch.setattr(nclib.book, "execute", lambda *args, **kw: pytest.fail("executed again, not cached"))
    # in this process, where the patch above holds (a cached page runs no papermill, which would change its folder)
    monkeypatch.setattr(nclib.book, "notebook_pool", lambda: ThreadPoolExecutor(nclib.book.JOBS))
    again = assignments.book(tmp_path, "teacher")
    assert [p.read_bytes() for p in again] == [(folder / p.relative_to(tmp_path)).read_bytes() for p in again]


def test_an_unknown_edition_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"unknown edition 'solutions'.*\('teacher', 'student'\)"):
        assignments.book(tmp_path, "solutions")
    run = subprocess.run([sys.executable, "-m", "nclib.assignments", "book", "--edition", "solutions"],
                         capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 2 and "invalid choice: 'solutions'" in run.stderr
    assert not (tmp_path / "book").exists()


def teacher_table() -> dict[str, tuple[int, int]]:
    """Assignment stem -> (first, second) run time in seconds, read from the table of book/assignments/teacher.md."""
    text = (ROOT / "book" / "assignments" / "teacher.md").read_text().split("## Run time")[1].split("##")[0]
    rows = re.findall(r"^\| (\d)\. [^|]+\| (\d+) s \| (\d+) s \|$", text, flags=re.M)
    return {STEMS[int(k) - 1]: (int(a), int(b)) for k, a, b in rows}


def test_the_readme_says_how_to_install_run_and_hand_back(tmp_path):
    readme = assignments.bundle(tmp_path)[-1].read_text()
    for package in assignments.DEBIAN_PACKAGES:
        assert f"sudo apt-get install {package}" in readme
        assert re.search(rf"^APT_PACKAGES\s*:=.*\b{package}\b", (ROOT / "Makefile").read_text(), flags=re.M)
    assert "python -m ipykernel install --user --name nclib" in readme
    assert "which your teacher gives you" in readme, "no address is set: the teacher gives it"
    assert "jupyter nbconvert --to notebook --execute --allow-errors --inplace a1_scores.ipynb" in readme
    assert "student id" in readme and "folder your teacher names" in readme and ".ipynb" in readme
    assert teacher_table() == assignments.RUN_SECONDS, "the README's times are the teacher page's measured ones"
    for stem, seconds in assignments.RUN_SECONDS.items():
        assert f"| `{stem}.ipynb` | {max(seconds)} s |" in readme


def test_with_a_repository_address_the_notebooks_install_nclib_from_it(tmp_path, monkeypatch):
    url = "https://github.com/someone/nclib"
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["repository"]["url"] = url
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)  # the root of a clone whose book sets the address
    *notebooks, readme = assignments.bundle(tmp_path / "handout")
    assert f'pip install "nclib[book] @ git+{url}" jupyterlab' in readme.read_text()
    assert "your teacher gives you" not in readme.read_text()
    for path in notebooks:
        first, *cells = jupytext.read(path).cells
        assert first.source == site.install_cell(url) and "remove-cell" in first.metadata["tags"]
        assert cells[0].source.startswith("# Assignment"), "then the notebook as before"
    pages = assignments.book(tmp_path / "pages", "student")
    assert [p.read_bytes() for p in pages] == [p.read_bytes() for p in notebooks]
    monkeypatch.chdir(tmp_path / "handout")  # no _config.yml here (nclib installed as a package): no address
    assert assignments.address() is None
    first, *_, readme = assignments.bundle(tmp_path / "b")
    assert jupytext.read(first).cells[0].source.startswith("# Assignment")
    assert "your teacher gives you" in readme.read_text()


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
    (folder / "aaron.py").write_text("import os\n\nos._exit(3)\n")  # kills its grader: first, and not graded
    csv = tmp_path / "grades.csv"
    run = subprocess.run(
        [sys.executable, "-m", "nclib.grading", str(folder), "--assignment", "a4_claims", "--seed", "3",
         "--csv", str(csv)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "alice.py (checks seed 3)" in run.stdout and "bob.py (checks seed 3)" in run.stdout
    grades = pd.read_csv(csv).set_index("submission")
    assert grades.loc["alice.py", "total"] == 2 and grades.loc["bob.py", "total"] == 0
    assert "aaron.py: not graded" in run.stdout and grades.loc["aaron.py"].isna().all()
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
