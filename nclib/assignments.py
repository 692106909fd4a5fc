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
instructions, are kept) and a prose answer by an empty "your answer" line; when the book's repository address is
set (``repository.url`` in _config.yml, :func:`nclib.site.repository`), its first cell installs nclib from it.
Exercises are numbered from 1 in each assignment, and the book's pages number them the same way.

The book's assignment pages come in two editions (``EDITIONS``). The teacher's are the solution sources executed
on the mini profile (the notebooks' default parameters; cached as the figure notebooks are, by
:func:`nclib.book.execute_cached`), so that every expected output shows, with solutions collapsed by
sphinx-togglebutton and a link to download the student version. The student's are the student notebooks
themselves: the site, and the notebooks it publishes under _sources/, hold no solution.

    python -m nclib.assignments bundle DIR                         # student notebooks + README, into DIR
    python -m nclib.assignments book [--edition teacher|student]   # pages into ./book/generated/assignments/

Never edit a generated file: edit the source and generate again.
Both need jupytext (the ``course`` extra); ``book`` runs at the repository root, as ``make book`` does, and its
teacher edition needs the ``book`` extra and the ``nclib`` Jupyter kernel, which ``make book`` registers.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
import tempfile
from collections.abc import Collection
from pathlib import Path

from nclib import site

try:
    import jupytext
    import nbformat
except ImportError as exc:
    raise ImportError('nclib.assignments needs jupytext: install nclib with its "course" extra, e.g. '
                      'pip install -e ".[course]" in a clone of the repository') from exc

SOURCES = Path(__file__).resolve().parent / "course"
BOOK_PAGES = Path("book", "generated", "assignments")  # relative to the repository root
SOLUTION_TAG = "solution"
EDITIONS = ("teacher", "student")  # of the book's assignment pages; the first is the default
# The Debian package of the only data the assignments read: the mini profile's Fashion-MNIST (nclib.data.images).
DEBIAN_PACKAGES = ("dataset-fashion-mnist",)
# Seconds each notebook ran, executed twice by papermill on the mini profile: the table of book/assignments/teacher.md
RUN_SECONDS = {"a1_scores": (5, 5), "a2_zoo": (18, 26), "a3_collapse": (18, 17), "a4_claims": (4, 4)}
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


def exercise_label(number: int, title: str) -> str:
    """What exercise ``number`` (from 1 in each assignment) is called after the word "Exercise": ``1: Its title``.

    The student notebook's heading is "Exercise" and this label; the book's page, whose exercises sphinx-exercise
    would number across the whole book, shows it unnumbered with this label as its subtitle.
    """
    return f"{number}: {title}" if title else str(number)


def student_version(
    nb: nbformat.NotebookNode, assignment: str, stubbed: Collection[str] | None = None, url: str | None = None
) -> nbformat.NotebookNode:
    """The student notebook of a solution source (see the module docstring).

    ``stubbed``: the exercise labels whose solutions are removed (default: all). The tests stub one exercise at a
    time to show that its checks, and only those, fail. ``url``: the repository's address, from which the first
    cell installs nclib (:func:`nclib.site.with_install_cell`); None: no such cell.
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
    cells: list[nbformat.NotebookNode] = []
    solution, number = None, 0
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
                text.append(f"## Exercise {exercise_label(number, arg)}")
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
    title = next(i for i, c in enumerate(cells) if c.cell_type == "markdown")
    cells.insert(title + 1, header)
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i}"
    out.cells = cells
    return nbformat.from_dict(site.with_install_cell(out, url))


def book_page(nb: nbformat.NotebookNode, assignment: str) -> nbformat.NotebookNode:
    """The teacher's book page of a solution source (executed or not): its exercises numbered from 1 (see
    :func:`exercise_label`), with a link to its student version under ``student/``."""
    exercises(nb, assignment)  # checks the structure
    out = copy.deepcopy(nb)
    out.metadata.pop("jupytext", None)
    out.metadata["nclib"] = {"assignment": assignment, "version": "solution"}
    number = 0
    for cell in (c for c in out.cells if c.cell_type == "markdown"):
        lines = cell.source.split("\n")
        for i, line in enumerate(lines):
            match = _DIRECTIVE.match(line)
            if match and match.group(1, 2) == ("exercise", "start"):
                number += 1
                lines[i] = f"```{{exercise-start}} {exercise_label(number, match.group(3).strip())}\n:nonumber:"
        cell.source = "\n".join(lines)
    title = next(i for i, c in enumerate(out.cells) if c.cell_type == "markdown")
    note = nbformat.v4.new_markdown_cell(
        f"```{{note}}\nStudents work in the {{download}}`student version <student/{assignment}.ipynb>` of this "
        "page, where every solution is replaced by a stub; the teacher's page says how to hand it out and grade "
        "it. Solutions below are collapsed: click one to open it. The outputs are those of the solutions on the "
        "`mini` profile.\n```"
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


def address(config: Path = Path("_config.yml")) -> str | None:
    """The address students install nclib from: the book's (:func:`nclib.site.repository` of ``config``) when run at
    the root of a clone, where ``config`` is; elsewhere (nclib installed as a package) None: the teacher gives it."""
    return site.repository(config) if config.exists() else None


def bundle(folder: Path, source: Path = SOURCES) -> list[Path]:
    """The student bundle: ``<assignment>.ipynb`` for every source and the students' README (:func:`readme_text`),
    with the repository's :func:`address` when there is one."""
    url = address()
    notebooks = {p.stem: read(p) for p in sources(source)}
    paths = [write(student_version(nb, stem, url=url), folder / f"{stem}.ipynb") for stem, nb in notebooks.items()]
    titles = {stem: next(c.source for c in nb.cells if c.cell_type == "markdown").split("\n")[0].lstrip("# ")
              for stem, nb in notebooks.items()}  # fmt: skip
    readme = folder / "README.md"
    readme.write_text(readme_text(titles, url))
    return [*paths, readme]


def readme_text(titles: dict[str, str], url: str | None) -> str:
    """The students' README: how to install, run and hand back the notebooks ``titles`` (stem -> title).

    ``url``: the repository's address (None while the book sets none: the teacher gives it).
    """
    package = f'"nclib[book] @ git+{url}"' if url else '"nclib[book] @ git+ADDRESS"'
    where = "" if url else (", where ADDRESS is the address of nclib's repository, which your teacher gives you "
                            "(for a GitHub repository, its https address)")
    listing = "\n".join(f"- `{stem}.ipynb`: {title}" for stem, title in titles.items())
    seconds = "\n".join(f"| `{stem}.ipynb` | {max(RUN_SECONDS[stem])} s |" for stem in titles)
    return f"""# nclib assignments

Each notebook is one assignment:

{listing}

## Install (once)

On Debian or Ubuntu, with Python 3.11 or 3.12:

1. The data, which the notebooks read offline (Fashion-MNIST; without the package nclib downloads the same files,
   about 30 MB, the first time): `sudo apt-get install {" ".join(DEBIAN_PACKAGES)}`
2. nclib and JupyterLab, in a virtual environment of your own (`python3 -m venv nclib-env && . nclib-env/bin/activate`):
   `pip install {package} jupyterlab`{where}.
3. The Jupyter kernel `nclib`, which the notebooks ask for: `python -m ipykernel install --user --name nclib`

## Run

Open a notebook with `jupyter lab a1_scores.ipynb`, check that its kernel is `nclib`, and fill in every function
that raises `NotImplementedError`, keeping its name and arguments: the functions are graded automatically. Write
the answers in prose where the notebook says "Your answer"; your teacher reads them. To run a whole notebook from a
terminal and keep its outputs in the file:

    jupyter nbconvert --to notebook --execute --allow-errors --inplace a1_scores.ipynb

With its solutions filled in, each notebook ran in at most this time from start to end, on a machine with two
CPU cores shared with other jobs:

| notebook | run time |
| --- | --- |
{seconds}

## Hand back

Run the notebook from top to bottom, save it, name the file after your student id (for example `s1234567.ipynb`)
and put it in the folder your teacher names. Hand back the `.ipynb` file itself, not an export. The grader runs your
notebook again, then checks each function on fresh random data that you do not see, so a function that returns
numbers copied from your run does not pass.
"""


def book(folder: Path = BOOK_PAGES, edition: str = EDITIONS[0], source: Path = SOURCES) -> list[Path]:
    """The book's pages ``<assignment>.ipynb`` of ``edition`` (see the module docstring); the teacher's edition also
    writes the student versions, for download, under ``student/``. The teacher's pages execute
    :data:`nclib.book.JOBS` at a time."""
    if edition not in EDITIONS:
        raise ValueError(f"unknown edition {edition!r} of the assignment pages: choose one of {EDITIONS}")
    url, paths = site.repository(), sources(source)  # a bad address stops the build before any work
    if edition == "student":
        return [write(student_version(read(p), p.stem, url=url), folder / f"{p.stem}.ipynb") for p in paths]
    from nclib.book import notebook_pool

    with notebook_pool() as pool:
        executed = list(pool.map(_executed, paths))
    out = []
    for p, nb in zip(paths, executed, strict=True):
        page = site.with_install_cell(book_page(nb, p.stem), url)  # after the cache, as for the figures
        out.append(write(nbformat.from_dict(page), folder / f"{p.stem}.ipynb"))
        out.append(write(student_version(read(p), p.stem, url=url), folder / "student" / f"{p.stem}.ipynb"))
    return out


def _executed(source: Path) -> nbformat.NotebookNode:
    """The solution notebook ``source`` executed on its defaults (the mini profile, and its cache)."""
    from nclib.book import execute_cached, profile_of

    with tempfile.TemporaryDirectory() as tmp:
        execute_cached(source, Path(tmp), {}, profile_of({}).cache_dir)
        return nbformat.read(Path(tmp, f"{source.stem}.ipynb"), as_version=4)


def main(argv: list[str]) -> None:
    """``python -m nclib.assignments bundle DIR`` or ``python -m nclib.assignments book [--edition EDITION]``."""
    parser = argparse.ArgumentParser(prog="python -m nclib.assignments", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    handout = commands.add_parser("bundle", help="the student notebooks and their README, into DIR")
    handout.add_argument("folder", type=Path, metavar="DIR")
    pages = commands.add_parser("book", help=f"the book's assignment pages, into {BOOK_PAGES}/")
    pages.add_argument("--edition", choices=EDITIONS, default=EDITIONS[0],
                       help="teacher: executed, with solutions (collapsed); student: the student notebooks")
    args = parser.parse_args(argv)
    written = bundle(args.folder) if args.command == "bundle" else book(edition=args.edition)
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
