"""Execute the book's MyST notebooks with papermill, for `make book` and the tests.

A notebook's source is ``notebooks/<name>.md`` (jupytext MyST). Its executed copy goes to
``book/generated/<name>.ipynb``, which the book renders with execution off.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import jupytext
import nbformat
import papermill
import yaml

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


def main(argv: list[str]) -> None:
    """``python -m nclib.book PARAMS.yaml NOTEBOOK.md...`` executes each notebook into book/generated/."""
    params_file, *sources = argv
    parameters = yaml.safe_load(Path(params_file).read_text()) or {}
    if device := os.environ.get("NCLIB_DEVICE"):
        parameters["device"] = device
    for source in map(Path, sources):
        print(f"executing {source} with {params_file}", flush=True)
        execute(source, Path("book/generated") / f"{source.stem}.ipynb", parameters)


if __name__ == "__main__":
    main(sys.argv[1:])
