"""Streamed text: one counting pass, a carved validation split that never overlaps the training stream, and rows
read one at a time from the file (the TableStream reader) with read_table's header detection and errors."""

from __future__ import annotations

from collections import Counter

import datasets
import pytest

from transferlearn.data.tables import TableStream, read_table
from transferlearn.data.text_stream import load_streaming_text
from transferlearn.errors import DataError


def _headerless_tsv(path, n: int):
    path.write_text("".join(f"row {i} {'good' if i % 3 else 'bad'} words\t{'positive' if i % 3 else 'negative'}\n"
                            for i in range(n)))
    return path


def test_the_stream_reads_like_read_table(tmp_path):
    tsv = _headerless_tsv(tmp_path / "train.tsv", 50)
    stream, table = TableStream(tsv), read_table(tsv)
    assert stream.columns == table.columns == ["column_0", "column_1"] and not stream.has_header
    assert [row for _, row in stream] == table.rows
    assert [line for line, _ in stream] == table.lines  # every pass re-reads the file
    csv_file = tmp_path / "t.csv"
    csv_file.write_text('text,label\n"a, b",x\nc,y\n')
    assert [row for _, row in TableStream(csv_file)] == read_table(csv_file).rows
    ragged = tmp_path / "bad.csv"
    ragged.write_text("text,label\na,x\nb,y,z\n")
    with pytest.raises(DataError, match=r"bad.csv, line 3: 3 fields, expected 2"):
        list(TableStream(ragged))


def test_carved_validation_and_training_rows_partition_the_file(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    _headerless_tsv(folder / "train.tsv", 600)
    data = load_streaming_text(str(folder), val_split=0.2, seed=7)
    assert isinstance(data.splits["train"], datasets.IterableDataset)  # never materialised
    train = list(data.splits["train"])
    validation = data.splits["validation"]["text"]
    assert not set(validation) & {r["text"] for r in train}
    assert len(train) + len(validation) == 600 and 80 < len(validation) < 160  # ~20 % by a seeded hash
    assert Counter(data.label_names[r["label"]] for r in train) == dict(zip(data.label_names,
                                                                              data.stream_counts["train"].tolist(), strict=True))
    assert data.rows("train") == len(train) and data.summary()["splits"]["train"]["streamed"] is True
    again = load_streaming_text(str(folder), val_split=0.2, seed=7)
    assert again.splits["validation"]["text"] == validation  # repeatable
    assert load_streaming_text(str(folder), val_split=0.2, seed=8).splits["validation"]["text"] != validation
    assert sorted(r["text"] for r in train) != [r["text"] for r in train]  # shuffled through the buffer


def test_limits_and_bad_rows(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    _headerless_tsv(folder / "train.tsv", 300)
    _headerless_tsv(folder / "valid.tsv", 30)
    data = load_streaming_text(str(folder), max_train_samples=100)
    assert data.rows("train") == 100 == len(list(data.splits["train"]))
    assert len(data.splits["validation"]) == 30  # the folder's own validation split
    (folder / "valid.tsv").write_text("fine text\tpositive\nnew words\tneutral\n")
    with pytest.raises(DataError, match="label 'neutral' never occurs in the training rows"):
        load_streaming_text(str(folder))
    (folder / "valid.tsv").unlink()
    with (folder / "train.tsv").open("a") as f:
        f.write("\tpositive\n")
    with pytest.raises(DataError, match=r"train.tsv, line 301: empty text"):
        load_streaming_text(str(folder))
