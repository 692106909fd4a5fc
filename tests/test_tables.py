"""Tests for nclib.tables.show: what a book table shows, what its caption says is left out, and that its CSV link
carries the whole table.

The link is decoded and read back with pandas here, independently of how nclib.tables writes it.
"""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest
from bs4 import BeautifulSoup

from nclib import tables


def _ledger(n: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "claim": [f"claim_{i}" for i in range(n)],
        "statement": [f"score {i} ranks the zoo, & <well>" for i in range(n)],
        "ours": rng.normal(size=n),
        "low": rng.normal(size=n) - 1,
        "n_models": rng.integers(3, 15, n),
        "reproduced": rng.random(n) > 0.5,
    })


def _soup(styler) -> BeautifulSoup:
    return BeautifulSoup(styler.to_html(), "html.parser")


def _header(soup: BeautifulSoup) -> list[str]:
    return [th.get_text() for th in soup.select("thead th.col_heading")]


def _body(soup: BeautifulSoup) -> list[list[str]]:
    return [[td.get_text() for td in tr.select("td")] for tr in soup.select("tbody tr")]


def _csv(soup: BeautifulSoup) -> tuple[str, bytes]:
    link = soup.select_one("caption a[download]")
    scheme, data = link["href"].split(",", 1)
    assert scheme == "data:text/csv;charset=utf-8;base64"
    return link["download"], base64.b64decode(data)


def test_shows_the_requested_columns_in_order_renamed():
    frame = _ledger()
    soup = _soup(tables.show(frame, "Ledger", name="ledger", columns={"ours": "r", "claim": "id"}))
    assert _header(soup) == ["r", "id"]
    assert [row[1] for row in _body(soup)] == frame["claim"].tolist()
    assert "Shown: 2 of 6 columns" in soup.caption.get_text()


def test_a_selection_of_rows_is_counted_in_the_caption():
    frame = _ledger()
    rows = frame.sort_values("ours", ascending=False).head(3)
    soup = _soup(tables.show(frame, "Best claims", name="best", columns=["claim", "ours"], rows=rows))
    assert [row[0] for row in _body(soup)] == rows["claim"].tolist()
    caption = soup.caption.get_text()
    assert caption.startswith("Best claims. Shown: 3 of 12 rows and 2 of 6 columns; the full table: best.csv")


def test_a_computed_frame_is_called_a_summary_or_condensed():
    frame = _ledger()
    summary = frame.groupby("reproduced")[["ours"]].mean()
    soup = _soup(tables.show(frame, "By verdict", name="verdicts", rows=summary))
    assert "Shown: a summary of its 12 rows" in soup.caption.get_text()
    assert len(_body(soup)) == 2
    condensed = frame.assign(ours=[f"{v:.1f}" for v in frame["ours"]])  # the same rows, numbers as text
    caption = _soup(tables.show(frame, "Ledger", name="ledger", rows=condensed)).caption.get_text()
    assert "Shown: its 12 rows, condensed" in caption


def test_nothing_left_out_says_so():
    caption = _soup(tables.show(_ledger(), "Ledger", name="ledger")).caption.get_text()
    assert caption == "Ledger. As CSV: ledger.csv"


@pytest.mark.parametrize("index", [None, ["claim"]])
def test_the_csv_link_decodes_to_the_full_table(index):
    frame = _ledger()
    frame = frame if index is None else frame.set_index(index)
    soup = _soup(tables.show(frame, "Ledger", name="claims", columns=frame.columns[:2].tolist(), rows=frame.head(2)))
    filename, data = _csv(soup)
    assert filename == "claims.csv"
    back = pd.read_csv(io.BytesIO(data), index_col=0 if index else None, float_precision="round_trip")
    pd.testing.assert_frame_equal(back, frame)


def test_numbers_are_rounded_per_column_and_missing_values_marked():
    frame = pd.DataFrame({"r": [0.91234, -0.0567, np.nan], "big": [3391.7, 12.25, 1.0], "tiny": [0.0012345, 0.0003, 0],
                          "count": [1200000, 3, 40], "rank": [1.0, np.nan, 3.0]},
                         index=pd.Index(["a", "b", "c"], name="model"))
    soup = _soup(tables.show(frame, "Numbers", name="numbers", digits=2))
    assert _body(soup) == [["0.91", "3,392", "0.00123", "1,200,000", "1"], ["-0.06", "12", "0.00030", "3", "n/a"],
                           ["n/a", "1", "0.00000", "40", "3"]]  # decimals from each column's median magnitude
    assert [th.get_text() for th in soup.select("tbody th")] == ["a", "b", "c"]  # a named index is shown


def test_text_is_escaped_and_the_default_index_hidden():
    frame = _ledger()
    soup = _soup(tables.show(frame, "Claims <all> & more", name="claims", columns=["statement"]))
    assert soup.select_one("tbody td").get_text() == "score 0 ranks the zoo, & <well>"
    assert soup.caption.get_text().startswith("Claims <all> & more.")
    assert not soup.select("tbody th")  # 0, 1, 2, ... is not shown
    assert "nclib-table" in soup.table["class"]


def test_multiindex_columns_can_be_picked_and_flattened():
    frame = pd.concat({"train": _ledger()[["ours", "low"]], "val": _ledger(seed=1)[["ours", "low"]]}, axis=1)
    soup = _soup(tables.show(frame, "Both splits", name="splits", columns={("train", "ours"): "train r",
                                                                           ("val", "ours"): "val r"}))
    assert _header(soup) == ["train r", "val r"]
    assert float(_body(soup)[0][1]) == pytest.approx(frame[("val", "ours")].iloc[0], abs=5e-3)


def test_a_missing_column_is_named_with_the_columns_there_are():
    with pytest.raises(KeyError, match=r"no column 'verdict'.*\['claim', 'statement'"):
        tables.show(_ledger(), "Ledger", name="ledger", columns=["claim", "verdict"])


def test_a_string_for_columns_is_refused():
    with pytest.raises(TypeError, match="list or a mapping"):
        tables.show(_ledger(), "Ledger", name="ledger", columns="claim")


def test_an_empty_table_is_refused():
    with pytest.raises(ValueError, match=re.escape("table 'ledger' is empty (0 rows, 6 columns)")):
        tables.show(_ledger().iloc[:0], "Ledger", name="ledger")
    with pytest.raises(ValueError, match="rows given for table 'ledger' are empty"):
        tables.show(_ledger(), "Ledger", name="ledger", rows=_ledger().iloc[:0])


@pytest.mark.parametrize("name", ["", "my table", "../claims", "claims.csv/"])
def test_a_name_that_is_not_a_file_name_is_refused(name):
    with pytest.raises(ValueError, match="file name without extension"):
        tables.show(_ledger(), "Ledger", name=name)
