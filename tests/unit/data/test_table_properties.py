"""Property-based tests (hypothesis) of the CSV / TSV / JSONL readers: what a standard writer wrote comes back cell
for cell, and no byte string makes a reader fail with anything but a DataError."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from transferlearn.data.tables import read_table
from transferlearn.errors import DataError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# any text a user's cell can hold (no NUL: csv refuses it, as every spreadsheet does); at least one visible
# character per row, since rows of blanks only are skipped on purpose
cells = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30)
tsv_cells = st.text(st.characters(blacklist_characters="\x00\t\n\r", blacklist_categories=("Cs",)), max_size=30).filter(
    lambda c: not (len(c) >= 2 and c[0] == c[-1] == '"'))  # a cell quoted as a whole loses its quotes (CSV's rule)


def _rows(cell_strategy, width):
    row = st.lists(cell_strategy, min_size=width, max_size=width).filter(lambda r: any(c.strip() for c in r))
    return st.lists(row, min_size=1, max_size=8)


def _read(suffix: str, data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"t{suffix}"
        path.write_bytes(data)
        return read_table(path, header=True) if suffix != ".jsonl" else read_table(path)


@SETTINGS
@given(width=st.integers(1, 4), data=st.data())
@example(width=2, data=None)
def test_csv_round_trips_every_cell(width, data):
    rows = [["a\u2028b", 'say "hi", then\nleave']] if data is None else data.draw(_rows(cells, width))
    width = len(rows[0])
    header = [f"c{i}" for i in range(width)]
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows([header, *rows])
    table = _read(".csv", buffer.getvalue().encode("utf-8"))
    assert table.columns == header
    assert [[row[c] for c in header] for row in table.rows] == rows


@SETTINGS
@given(width=st.integers(1, 4), data=st.data())
@example(width=2, data=None)
def test_tsv_round_trips_every_cell_and_keeps_inner_quotes(width, data):
    rows = [['"great" movie', 'it said "no"']] if data is None else data.draw(_rows(tsv_cells, width))
    width = len(rows[0])
    header = [f"c{i}" for i in range(width)]
    text = "".join("\t".join(r) + "\n" for r in [header, *rows])
    table = _read(".tsv", text.encode("utf-8"))
    assert [[row[c] for c in header] for row in table.rows] == rows


@SETTINGS
@given(records=st.lists(st.fixed_dictionaries({"text": cells, "label": st.sampled_from(["a", "b", "ç"])}),
                        min_size=1, max_size=8))
def test_jsonl_round_trips_every_record(records):
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    table = _read(".jsonl", text.encode("utf-8"))
    assert table.rows == records and table.lines == list(range(1, len(records) + 1))


@SETTINGS
@given(raw=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_any_bytes_give_rows_or_one_data_error(raw, suffix):
    try:
        table = _read(suffix, raw)
    except DataError as exc:
        assert "t" + suffix in str(exc)  # names the file
        return
    # a header alone is a table without rows: the loaders turn that into "no data rows" (the catalogue checks it)
    assert all(isinstance(r, dict) for r in table.rows) and (table.rows or suffix != ".jsonl")
    if suffix != ".jsonl":
        assert all(list(r) == table.columns for r in table.rows)
