"""The book's repository address: the one setting behind its launch buttons and its notebooks' install cells.

The address is _config.yml's ``repository.url``. While it is empty, no page shows a Colab button (this module's
Sphinx hook drops them; sphinx-book-theme would otherwise point them at no repository) and no notebook carries an
install cell. Once it is set, every published notebook starts with :func:`install_cell`, so that it runs where
nclib is not installed (Colab), and the buttons of ``launch_buttons`` show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

INSTALL_TAG = "nclib-install"  # the install cell's tag: found and replaced, never duplicated
PLACEHOLDER = "OWNER" + "/"  # the template address's owner; spelt in two parts so a search for it finds none here


def repository(config: str | Path = "_config.yml") -> str | None:
    """The repository address set in the book's ``config`` (``repository.url``); None while it is empty."""
    try:
        settings = yaml.safe_load(Path(config).read_text()) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f"no book configuration at {Path(config).resolve()}: run from the book's root "
                                f"(the folder of _config.yml)") from None
    url = (settings.get("repository") or {}).get("url") or None
    if url is not None and (not isinstance(url, str) or PLACEHOLDER in url):
        raise ValueError(f"repository.url in {config} is {url!r}: give the repository's address "
                         f"(https://github.com/<owner>/<name>), or leave it empty")
    return url


def install_cell(url: str) -> str:
    """Code of a notebook cell that installs nclib from ``url`` (a git address) with the Debian packages and Python
    extras the mini profile needs, only where nclib is not importable yet (a fresh Colab runtime)."""
    return (
        "# Installs nclib from its repository where it is not installed yet (e.g. on Colab): the Debian packages of\n"
        "# the mini profile (`make system`, as root) and nclib with the book's extras. Does nothing elsewhere.\n"
        "import importlib.util\n"
        "\n"
        'if importlib.util.find_spec("nclib") is None:\n'
        f"    !git clone -q --depth 1 {url} nclib-src && make -C nclib-src system\n"
        '    %pip install -q "./nclib-src[book]"\n'
    )


def with_install_cell(notebook: dict[str, Any], url: str | None) -> dict[str, Any]:
    """``notebook`` (nbformat JSON) with :func:`install_cell` as its first cell when ``url`` is set, without one
    when it is not; hidden from the rendered page (it is for the downloaded notebook)."""
    cells = [c for c in notebook["cells"] if INSTALL_TAG not in c.get("metadata", {}).get("tags", [])]
    if url is not None:
        cell: dict[str, Any] = {"cell_type": "code", "execution_count": None, "outputs": [],
                                "metadata": {"tags": [INSTALL_TAG, "remove-cell"]}, "source": install_cell(url)}
        if (notebook.get("nbformat"), notebook.get("nbformat_minor", 0)) >= (4, 5):
            cell["id"] = "nclib-install"  # cell ids exist from nbformat 4.5 on
        cells = [cell, *cells]
    return {**notebook, "cells": cells}


def _drop_launch_buttons_without_address(app: Any, config: Any) -> None:
    options = config.html_theme_options
    if not options.get("repository_url"):
        options["launch_buttons"] = {}


def setup(app: Any) -> dict[str, Any]:
    """Sphinx extension entry point (_config.yml's ``sphinx.extra_extensions``)."""
    app.connect("config-inited", _drop_launch_buttons_without_address)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
