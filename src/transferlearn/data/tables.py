"""Read CSV / TSV / JSONL files into rows, with errors that name the file and the line.

The standard library's csv and json parsers do the parsing; this module adds what they do not:
strict UTF-8 with the offending line number, ragged-row detection, and header auto-detection for
headerless files such as IndoNLU's ``text<TAB>label`` TSVs.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".jsonl": None, ".json": None, ".ndjson": None}

_NAME_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_ .\-]{0,63}")


@dataclass
class Table:
    """Rows of one file. ``lines[i]`` is the 1-based line in the file where row ``i`` starts."""

    path: Path
    columns: list[str]
    rows: list[dict[str, object]]
    lines: list[int]
    has_header: bool = True
    notes: list[str] = field(default_factory=list)

    def where(self, index: int) -> str:
        return f"{self.path}, line {self.lines[index]}"


def read_text_strict(path: Path) -> str:
    """Decode ``path`` as UTF-8 (BOM allowed); undecodable bytes raise a DataError with the line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        bad = raw[exc.start : exc.start + 1].hex()
        raise DataError(
            f"{path}, line {line}: bytes that are not valid UTF-8 (0x{bad} at byte offset {exc.start}). "
            "Re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
        ) from None


def read_table(path: str | Path, header: bool | None = None) -> Table:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: unsupported file type '{suffix}' (expected one of {', '.join(TABLE_SUFFIXES)})")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    text = read_text_strict(path)
    if TABLE_SUFFIXES[suffix] is None:
        return _read_jsonl(path, text)
    return _read_delimited(path, text, TABLE_SUFFIXES[suffix], header)


def _read_jsonl(path: Path, text: str) -> Table:
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {exc.lineno}: invalid JSON ({exc.msg})") from None
        numbered = [(i + 1, r) for i, r in enumerate(records)]  # record number stands in for the line
    else:
        # JSON text may hold a raw \u2028: not a line end
        numbered = list(_json_lines(path, enumerate(text.split("\n"), start=1)))
    columns: list[str] = []
    rows, lines = [], []
    for lineno, record in numbered:
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {lineno}: expected a JSON object, got {type(record).__name__}")
        for key in record:
            if key not in columns:
                columns.append(key)
        rows.append(record)
        lines.append(lineno)
    if not rows:
        raise DataError(f"{path}: no rows")
    return Table(path, columns, rows, lines)


def _json_lines(path: Path, numbered_lines):
    """(line, parsed value) of every non-blank JSON line; an invalid one names its line and column."""
    for lineno, line in numbered_lines:
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None


def _delimited_records(path: Path, stream, delimiter: str):
    """(first line, cells) of every non-blank row of a CSV / TSV text stream opened with newline="" (rows end at
    \n / \r\n / \r only); a parse error names its line."""
    tsv = delimiter == "\t"
    reader = csv.reader(stream, delimiter=delimiter, **({"quoting": csv.QUOTE_NONE} if tsv else {}))
    start = 1
    try:
        for row in reader:
            if row and any(cell.strip() for cell in row):
                yield start, [_unquote_tsv(cell) for cell in row] if tsv else row
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: cannot parse ({exc})") from None


def _looks_like_header(first: list[str], body: list[list[str]]) -> bool:
    """A header row holds short names, and most of them do not reappear as a value in their column (one may: WReTE's
    test file has a row whose category is the word "category")."""
    if not all(_NAME_LIKE.fullmatch(cell.strip()) for cell in first):
        return False
    if len(set(first)) != len(first):
        return False
    repeated = sum(name in {row[col] for row in body[:2000] if col < len(row)} for col, name in enumerate(first))
    return repeated == 0 or (len(first) >= 3 and repeated <= len(first) // 3)


def _unquote_tsv(cell: str) -> str:
    """A TSV field in quotes as a whole (``"a, b"``) loses them, CSV-style; quotes inside text (``"great" movie``)
    are the text's own. (TSV has no quoting rule; csv's CSV quoting would eat the latter's quotes.)"""
    if len(cell) >= 2 and cell[0] == cell[-1] == '"' and '"' not in cell[1:-1].replace('""', ""):
        return cell[1:-1].replace('""', '"')
    return cell


def _read_delimited(path: Path, text: str, delimiter: str, header: bool | None) -> Table:
    # a stream with newline="" ends rows at \n / \r\n / \r only; str.splitlines would also cut at \x0c, \u2028 ...
    records = list(_delimited_records(path, io.StringIO(text, newline=""), delimiter))
    if not records:
        raise DataError(f"{path}: no rows")
    first = records[0][1]
    if header is None:
        header = _looks_like_header(first, [r for _, r in records[1:]])
    width = len(first)
    if header:
        columns = [c.strip() for c in first]
        body = records[1:]
    else:
        columns = [f"column_{i}" for i in range(width)]
        body = records
    rows, lines = [], []
    for lineno, row in body:
        if len(row) != width:
            raise DataError(
                f"{path}, line {lineno}: {len(row)} fields, expected {width} "
                f"({'like the header' if header else 'like the first row'}). "
                "A field holding the delimiter must be quoted."
            )
        rows.append(dict(zip(columns, row, strict=True)))
        lines.append(lineno)
    notes = [] if header else [f"{path.name}: no header row detected; columns named {', '.join(columns)}"]
    return Table(path, columns, rows, lines, has_header=header, notes=notes)


class TableStream:
    """The rows of a CSV / TSV / JSONL file read one at a time (``for line, row in stream``), for files too large
    to hold: memory stays that of one row. The header is detected on the first 2,000 rows as read_table does, and
    every pass re-opens the file, so the stream can be iterated once per epoch."""

    SAMPLE = 2000

    def __init__(self, path: str | Path, header: bool | None = None):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in TABLE_SUFFIXES:
            raise DataError(f"{self.path}: unsupported file type '{suffix}' (expected one of {', '.join(TABLE_SUFFIXES)})")
        if not self.path.is_file():
            raise DataError(f"{self.path}: file not found")
        if suffix == ".json":
            raise DataError(f"{self.path}: a .json array cannot be streamed; write one JSON object per line (.jsonl)")
        self.delimiter = TABLE_SUFFIXES[suffix]
        self.notes: list[str] = []
        sample = []
        for record in self._records():
            sample.append(record)
            if len(sample) > self.SAMPLE:
                break
        if not sample:
            raise DataError(f"{self.path}: no rows")
        if self.delimiter is None:
            self.columns = list(dict.fromkeys(k for _, r in sample for k in r))
            self.has_header = True
            return
        first = sample[0][1]
        self.has_header = _looks_like_header(first, [r for _, r in sample[1:]]) if header is None else header
        self.columns = [c.strip() for c in first] if self.has_header else [f"column_{i}" for i in range(len(first))]
        if not self.has_header:
            self.notes.append(f"{self.path.name}: no header row detected; columns named {', '.join(self.columns)}")

    def _records(self):
        """(line, list of cells) for delimited files, (line, dict) for JSON lines; errors name the line."""
        line = 0
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as f:
                if self.delimiter is None:
                    for line, record in _json_lines(self.path, enumerate(f, start=1)):
                        if not isinstance(record, dict):
                            raise DataError(f"{self.path}, line {line}: expected a JSON object, got "
                                            f"{type(record).__name__}")
                        yield line, record
                    return
                for line, cells in _delimited_records(self.path, f, self.delimiter):
                    yield line, cells
        except UnicodeDecodeError:
            raise DataError(f"{self.path}, after line {line}: bytes that are not valid UTF-8. Re-save the file as UTF-8 "
                            "(e.g. `iconv -f latin1 -t utf-8`).") from None

    def __iter__(self):
        records = self._records()
        if self.delimiter is None:
            yield from records
            return
        width = len(self.columns)
        if self.has_header:
            next(records, None)
        for line, row in records:
            if len(row) != width:
                raise DataError(f"{self.path}, line {line}: {len(row)} fields, expected {width}. A field holding the "
                                "delimiter must be quoted.")
            yield line, dict(zip(self.columns, row, strict=True))
