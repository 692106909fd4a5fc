"""Course assignments: solution notebooks written once, student versions and book pages generated from them.

A solution source is a MyST notebook ``nclib/course/a<k>_<name>.md``, package data installed with nclib. Each
exercise is a gated sphinx-exercise block, and its solution a gated block right after it::

    ```{exercise-start} Implement the NC score
    :label: a1-nc
    ```
    Instructions...
    ```{exercise-end}
    ```

    ```{solution-start} a1-nc
    :class: dropdown
    ```
    (code cells tagged ``solution``, holding only imports and function definitions; or a model answer in prose)
    ```{solution-end}
    ```

The student version keeps everything else, turns each exercise heading into plain Markdown, replaces the body of
every function of a ``solution`` cell by ``raise NotImplementedError`` (its signature and docstring, the
instructions, are kept) and a prose answer by an empty "your answer" line. The book page is the solution source
itself, unexecuted, with a link to download the student version; sphinx-togglebutton shows the solutions collapsed.

    python -m nclib.assignments bundle DIR   # student notebooks + README for the class, into DIR
    python -m nclib.assignments book         # book pages into ./book/generated/assignments/ (git-ignored)

Never edit a generated file: edit the source and generate again.
Both need jupytext (the ``course`` extra); run ``book`` at the repository root, as ``make book`` does.
"""

from __future__ import annotations

import ast
import copy
import re
import sys
from collections.abc import Collection
from pathlib import Path

try:
    import jupytext
    import nbformat
except ImportError as exc:
    raise ImportError('nclib.assignments needs jupytext: install nclib with its "course" extra, e.g. '
                      'pip install -e ".[course]" in a clone of the repository') from exc

SOURCES = Path(__file__).resolve().parent / "course"
BOOK_PAGES = Path("book", "generated", "assignments")  # relative to the repository root
SOLUTION_TAG = "solution"
_DIRECTIVE = re.compile(r"^```\{(exercise|solution)-(start|end)\}[ \t]*(.*)$")
_OPTION = re.compile(r"^:([\w-]+):[ \t]*(.*)$")


def sources(folder: Path = SOURCES) -> list[Path]:
    """The solution sources ``a<k>_<name>.md`` of ``folder``, in assignment order."""
    return sorted(folder.glob("a[0-9]*_*.md"))


def read(path: Path) -> nbformat.NotebookNode:
    """A solution source (MyST notebook) as a notebook."""
    return jupytext.read(path)


def _segments(text: str, where: str) -> list[tuple[str, str, str, dict[str, str]] | str]:
    """Split Markdown into plain text and gated directives (kind, start/end, argument, options)."""
    out: list = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        options, i = {}, i + 1
        while i < len(lines) and (opt := _OPTION.match(lines[i])):
            options[opt.group(1)] = opt.group(2).strip()
            i += 1
        if i == len(lines) or lines[i].strip() != "```":
            raise ValueError(f"{where}: the {match.group(1)}-{match.group(2)} directive is not closed by ``` ")
        out.append((match.group(1), match.group(2), match.group(3).strip(), options))
        i += 1
    return out


def exercises(nb: nbformat.NotebookNode, where: str = "notebook") -> dict[str, dict]:
    """Exercise label -> {"title", "functions" (defined by its solution cells), "prose" (a written answer)}.

    Checks the structure: solution blocks follow their exercise, code cells are tagged ``solution`` exactly when
    they sit in a solution block, and solution cells hold only imports and function definitions.
    """
    found: dict[str, dict] = {}
    exercise = solution = None
    for index, cell in enumerate(nb.cells):
        here = f"{where}, cell {index}"
        tagged = SOLUTION_TAG in cell.metadata.get("tags", [])
        if cell.cell_type == "code":
            if tagged != (solution is not None):
                raise ValueError(f"{here}: a code cell is tagged {SOLUTION_TAG!r} iff it is inside a solution block")
            if solution is not None:
                found[solution]["functions"] += _functions(cell.source, here)
            continue
        for seg in _segments(cell.source, here):
            if isinstance(seg, str):
                if solution is not None and seg.strip():
                    found[solution]["prose"] = True
                continue
            kind, edge, arg, options = seg
            if (kind, edge) == ("exercise", "start"):
                if exercise or solution:
                    raise ValueError(f"{here}: exercise-start inside another block")
                exercise = options.get("label") or ""
                if not exercise or exercise in found:
                    raise ValueError(f"{here}: every exercise needs a unique :label:, got {exercise!r}")
                found[exercise] = {"title": arg, "functions": [], "prose": False}
            elif (kind, edge) == ("exercise", "end"):
                if not exercise:
                    raise ValueError(f"{here}: exercise-end without exercise-start")
                exercise = None
            elif edge == "start":
                if exercise or solution or arg not in found:
                    raise ValueError(f"{here}: solution-start must follow a closed exercise and name its label")
                solution = arg
            else:
                if solution is None:
                    raise ValueError(f"{here}: solution-end without solution-start")
                solution = None
    if exercise or solution:
        raise ValueError(f"{where}: a gated block is not closed")
    return found


def _functions(source: str, where: str) -> list[str]:
    """Names of the functions a solution cell defines; anything but imports and definitions is an error."""
    names = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            names.append(node.name)
        elif not isinstance(node, ast.Import | ast.ImportFrom):
            raise ValueError(f"{where}: a solution cell may hold only imports and function definitions")
    return names


def stub(source: str) -> str:
    """A solution cell with every function body replaced by ``raise NotImplementedError``.

    Imports, decorators, signatures and docstrings are kept verbatim; comments inside bodies are dropped.
    """
    lines = source.split("\n")
    out = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            out += lines[node.lineno - 1 : node.end_lineno]
            continue
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            raise ValueError(f"line {node.lineno}: a solution cell holds only imports and definitions")
        first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        body = node.body[0]
        has_doc = isinstance(body, ast.Expr) and isinstance(body.value, ast.Constant) and isinstance(
            body.value.value, str)
        keep = body.end_lineno if has_doc else body.lineno - 1
        indent = lines[body.lineno - 1][: len(lines[body.lineno - 1]) - len(lines[body.lineno - 1].lstrip())]
        out += ["", ""] if out else []
        out += lines[first - 1 : keep]
        out.append(f'{indent}raise NotImplementedError("{node.name}: replace this line by your code")')
    return "\n".join(out)


def student_version(
    nb: nbformat.NotebookNode, assignment: str, stubbed: Collection[str] | None = None
) -> nbformat.NotebookNode:
    """The student notebook of a solution source (see the module docstring).

    ``stubbed``: the exercise labels whose solutions are removed (default: all). The tests stub one exercise at a
    time to show that its checks, and only those, fail.
    """
    found = exercises(nb, assignment)
    stubbed = set(found) if stubbed is None else set(stubbed)
    unknown = stubbed - set(found)
    if unknown:
        raise ValueError(f"{assignment}: no exercise labelled {sorted(unknown)}")
    out = copy.deepcopy(nb)
    out.metadata.pop("jupytext", None)
    out.metadata["nclib"] = {"assignment": assignment, "version": "student"}
    header = nbformat.v4.new_markdown_cell(
        f"*Student version of assignment `{assignment}`, generated by `python -m nclib.assignments`. Replace every "
        "`raise NotImplementedError` by your code, keeping the function names and signatures: they are graded "
        "automatically. Answers in prose are read by your teacher.*"
    )
    cells, solution, number = [header], None, 0
    for cell in out.cells:
        if cell.cell_type == "code":
            if solution is not None and solution in stubbed:
                cell.source = stub(cell.source)
            cell.metadata["tags"] = [t for t in cell.metadata.get("tags", []) if t != SOLUTION_TAG]
            if not cell.metadata["tags"]:
                del cell.metadata["tags"]
            cells.append(cell)
            continue
        text: list[str] = []
        for seg in _segments(cell.source, assignment):
            if isinstance(seg, str):
                if solution is None or solution not in stubbed:
                    text.append(seg)
                continue
            kind, edge, arg, options = seg
            if (kind, edge) == ("exercise", "start"):
                number += 1
                text.append(f"### Exercise {number}" + (f": {arg}" if arg else ""))
            elif (kind, edge) == ("solution", "start"):
                solution = arg
                if found[arg]["prose"] and arg in stubbed:
                    text.append("**Your answer** (not graded automatically):\n\n...")
            elif (kind, edge) == ("solution", "end"):
                solution = None
        body = "\n".join(text).strip("\n")
        if body:
            cell.source = re.sub(r"\n{3,}", "\n\n", body)
            cells.append(cell)
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i}"
    out.cells = cells
    return out


def book_page(nb: nbformat.NotebookNode, assignment: str) -> nbformat.NotebookNode:
    """The book page of a solution source: the source unexecuted, with a link to its student version."""
    exercises(nb, assignment)  # checks the structure
    out = copy.deepcopy(nb)
    out.metadata.pop("jupytext", None)
    out.metadata["nclib"] = {"assignment": assignment, "version": "solution"}
    title = next(i for i, c in enumerate(out.cells) if c.cell_type == "markdown")
    note = nbformat.v4.new_markdown_cell(
        f"```{{note}}\nStudents work in the {{download}}`student version <student/{assignment}.ipynb>` of this "
        "page, where every solution is replaced by a stub; the teacher's page says how to hand it out and grade "
        "it. Solutions below are collapsed: click one to open it.\n```"
    )
    out.cells.insert(title + 1, note)
    for i, cell in enumerate(out.cells):
        cell.id = f"cell-{i}"
    return out


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    """Write a generated notebook (deterministic bytes) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb) + "\n")
    return path


def bundle(folder: Path, source: Path = SOURCES) -> list[Path]:
    """The student bundle: ``<assignment>.ipynb`` for every source, and a README for the students."""
    paths = [write(student_version(read(p), p.stem), folder / f"{p.stem}.ipynb") for p in sources(source)]
    readme = folder / "README.md"
    readme.write_text(
        "# nclib assignments\n\n"
        "Each notebook is one assignment. Install nclib (`pip install -e '.[book]'` in a clone of its repository, "
        "or run the notebook's first cell in Colab), open the notebook in Jupyter and fill in every function that "
        "raises `NotImplementedError`; do not rename the functions or change their arguments. Each notebook runs "
        "in a few minutes on a laptop CPU. Hand in the notebook file: functions are graded automatically, with "
        "hidden checks on fresh random data; answers in prose are read by your teacher.\n"
    )
    return [*paths, readme]


def book(folder: Path = BOOK_PAGES, source: Path = SOURCES) -> list[Path]:
    """The book pages ``<assignment>.ipynb`` and their student versions under ``student/``."""
    out = []
    for p in sources(source):
        nb = read(p)
        out.append(write(book_page(nb, p.stem), folder / f"{p.stem}.ipynb"))
        out.append(write(student_version(nb, p.stem), folder / "student" / f"{p.stem}.ipynb"))
    return out


def main(argv: list[str]) -> None:
    """``python -m nclib.assignments bundle DIR`` or ``python -m nclib.assignments book``."""
    if argv[:1] == ["bundle"] and len(argv) == 2:
        written = bundle(Path(argv[1]))
    elif argv == ["book"]:
        written = book()
    else:
        raise SystemExit("usage: python -m nclib.assignments bundle DIR | book")
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
