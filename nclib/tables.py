"""Tables in the book: the part a reader needs first, with the whole table one click away.

    show(ledger, "The claims ledger", name="claims", columns=["claim", "verdict"], rows=ledger.head(8))

returns a pandas Styler of the chosen rows and columns, each number column rounded to a few significant digits,
whose caption says what is left out and links the whole ``frame`` as ``name.csv``. The CSV travels inside the
link (a base64 ``data:`` address), so it downloads offline, from the executed .ipynb as well as from the site.
The table has the classes ``dataframe`` (the theme's table colours, light and dark) and ``nclib-table``
(book/_static/nclib.css: compact, wrapping).
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def csv_link(frame: pd.DataFrame, name: str) -> str:
    """An ``<a download>`` link whose address holds ``frame`` as CSV (its index too, unless it is the default
    0, 1, 2, ...), saved as ``name.csv``."""
    text = frame.to_csv(index=not _default_index(frame))
    data = base64.b64encode(text.encode()).decode()
    return f'<a download="{name}.csv" href="data:text/csv;charset=utf-8;base64,{data}">{name}.csv</a>'


def show(
    frame: pd.DataFrame,
    caption: str,
    *,
    name: str,
    columns: Sequence | Mapping | None = None,
    rows: pd.DataFrame | None = None,
    digits: int = 3,
) -> Styler:
    """``frame`` as a book table: the ``columns`` of ``rows``, with ``caption`` and a link to all of ``frame``.

    ``columns``: the columns to show, in order; a mapping also renames them for display (the CSV keeps the frame's
    names). None shows every column. ``rows``: the rows to show when ``frame`` is long or wide: some of its rows
    (``frame.head(5)``, a filter), which the caption counts ("5 of 57 rows"), or a frame computed from it, which
    the caption calls ``frame`` condensed (the same index: intervals as text, say) or a summary (an aggregate).
    None shows every row. ``digits``: significant digits of the median magnitude of each number column; its
    other numbers get as many decimals. The index is shown unless it is the default 0, 1, 2, ...
    """
    if not NAME.fullmatch(name):
        raise ValueError(f"name must be a file name without extension (letters, digits, '_', '.', '-'), got {name!r}")
    if frame.empty:
        raise ValueError(f"table {name!r} is empty ({frame.shape[0]} rows, {frame.shape[1]} columns): there is "
                         "nothing to show; check the step that built it")
    if digits < 1:
        raise ValueError(f"digits must be at least 1, got {digits}")
    part = frame if rows is None else rows
    if part.empty:
        raise ValueError(f"the rows given for table {name!r} are empty; pass rows=None to show every row")
    if isinstance(columns, str):
        raise TypeError(f"columns must be a list or a mapping of column names, got the string {columns!r}")
    labels = dict(columns) if isinstance(columns, Mapping) else {c: c for c in (part.columns if columns is None
                                                                                 else columns)}
    missing = [c for c in labels if c not in part.columns]
    if missing:
        raise KeyError(f"table {name!r} has no column {', '.join(map(repr, missing))}; its columns are "
                       f"{list(part.columns)}")
    shown = part[list(labels)]
    note = _left_out(frame, part, shown, rows is not None)
    caption = f"{html.escape(caption)}. {note + '; the full table: ' if note else 'As CSV: '}{csv_link(frame, name)}"
    styler = (shown.set_axis(pd.Index(list(labels.values())), axis=1).style
              .set_uuid(name).set_table_attributes('class="dataframe nclib-table"').set_caption(caption)
              .format({labels[c]: _formatter(shown[c], digits) for c in labels}, na_rep="n/a", escape="html")
              .format_index(escape="html", axis=0).format_index(escape="html", axis=1))
    return styler.hide(axis="index") if _default_index(shown) else styler


def spaced(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` rows of ``frame`` evenly spaced from its first to its last (all of them when it has no more): the
    ``rows`` of :func:`show` for a long series such as one row per epoch."""
    if n < 2:
        raise ValueError(f"n must be at least 2 (the first and the last row), got {n}")
    return frame.iloc[np.unique(np.linspace(0, len(frame) - 1, min(n, len(frame))).round().astype(int))]


def _default_index(frame: pd.DataFrame) -> bool:
    index = frame.index
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None


def _left_out(frame: pd.DataFrame, part: pd.DataFrame, shown: pd.DataFrame, chosen: bool) -> str:
    """What the caption says is not shown: rows and columns counted; or, when ``part`` is not some of ``frame``'s
    rows, that it is ``frame`` condensed (the same rows) or a summary of it (other rows)."""
    if chosen and not _selection(frame, part):
        condensed = part.index.equals(frame.index)
        return f"Shown: its {len(frame)} rows, condensed" if condensed else f"Shown: a summary of its {len(frame)} rows"
    said = []
    if len(shown) < len(frame):
        said.append(f"{len(shown)} of {len(frame)} rows")
    if shown.shape[1] < frame.shape[1]:
        said.append(f"{shown.shape[1]} of {frame.shape[1]} columns")
    return f"Shown: {' and '.join(said)}" if said else ""


def _selection(frame: pd.DataFrame, part: pd.DataFrame) -> bool:
    """Whether ``part`` is some of ``frame``'s rows and columns, unchanged (not a summary computed from it)."""
    if not (frame.index.is_unique and frame.columns.is_unique and part.index.dtype == frame.index.dtype):
        return False
    return frame.reindex(index=part.index, columns=part.columns).equals(part)


def _formatter(column: pd.Series, digits: int) -> str | None:
    """A format string for a number column: the same decimals for all its numbers, as many as give its median
    magnitude ``digits`` significant digits; whole numbers (integers, or floats without fractions) with thousands
    separators and no decimals; None for other columns."""
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        return None
    if pd.api.types.is_integer_dtype(column):
        return "{:,}"
    size = np.abs(column.to_numpy(dtype=float))
    size = size[np.isfinite(size)]
    if np.all(size == np.round(size)):  # whole numbers stored as floats (ranks, counts with gaps)
        return "{:,.0f}"
    typical = float(np.median(size[size > 0]))
    return f"{{:,.{max(0, digits - 1 - math.floor(math.log10(typical)))}f}}"
