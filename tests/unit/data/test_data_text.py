"""Text data loading: formats, column detection, splits, and every bad input with its error text."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from conftest import make_sentences, shared_data
from transferlearn import DataError
from transferlearn.data.splits import split_of_name
from transferlearn.data.text import load_text_data


def _write(path, text: str | bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _csv(rows, header="text,label"):
    return "\n".join([header] + [f"{t},{lab}" for t, lab in rows]) + "\n"


def test_csv_with_header_and_stratified_validation_split(tmp_path):
    rows = make_sentences(100, labels=("neg", "neu", "pos"))
    data = load_text_data(str(_write(tmp_path / "reviews.csv", _csv(rows))), val_split=0.2, seed=3)
    assert data.label_names == ["neg", "neu", "pos"]
    assert len(data.splits["train"]) == 80 and len(data.splits["validation"]) == 20
    assert "test" not in data.splits
    val_counts = np.bincount(data.splits["validation"]["label"])
    assert val_counts.tolist() in ([7, 7, 6], [7, 6, 7], [6, 7, 7])  # stratified
    again = load_text_data(str(tmp_path / "reviews.csv"), val_split=0.2, seed=3)
    assert again.splits["validation"]["text"] == data.splits["validation"]["text"]  # seeded
    other = load_text_data(str(tmp_path / "reviews.csv"), val_split=0.2, seed=4)
    assert other.splits["validation"]["text"] != data.splits["validation"]["text"]


def test_headerless_tsv_like_indonlu(tmp_path):
    rows = make_sentences(30, labels=("negative", "neutral", "positive"))
    path = _write(tmp_path / "data.tsv", "".join(f"{t} , !\t{lab}\n" for t, lab in rows))
    data = load_text_data(str(path))
    assert data.columns == {"text": "column_0", "label": "column_1"}
    assert data.label_names == ["negative", "neutral", "positive"]
    assert any("no header row" in n for n in data.notes)


def test_jsonl_and_column_overrides(tmp_path):
    rows = make_sentences(40)
    lines = [json.dumps({"id": i, "review": t, "stars": lab, "lang": "en"}) for i, (t, lab) in enumerate(rows)]
    path = _write(tmp_path / "r.jsonl", "\n".join(lines))
    data = load_text_data(str(path))
    assert data.columns == {"text": "review", "label": "stars"}
    with pytest.raises(DataError, match=r"column 'lang': the training data has only one label \('en'\); need at least 2"):
        load_text_data(str(path), text_column="review", label_column="lang")


def test_folder_with_split_files_including_smsa_names(tmp_path):
    for split, seed in (("train_preprocess", 0), ("valid_preprocess", 1), ("test_preprocess", 2)):
        _write(tmp_path / f"{split}.tsv", "".join(f"{t}\t{lab}\n" for t, lab in make_sentences(20, seed)))
    _write(tmp_path / "MANIFEST.tsv", "path\tsize\nx\t1\n")  # ignored: not a split name
    data = load_text_data(str(tmp_path))
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 20, "validation": 20, "test": 20}


def test_split_names():
    assert split_of_name("train_preprocess") == "train"
    assert split_of_name("dev") == "validation" and split_of_name("validation") == "validation"
    assert split_of_name("test-2020") == "test" and split_of_name("MANIFEST") is None
    assert split_of_name("trainer") is None


def test_numeric_labels_sort_numerically(tmp_path):
    rows = [(f"text {i}", str(i % 11)) for i in range(44)]
    data = load_text_data(str(_write(tmp_path / "d.csv", _csv(rows))))
    assert data.label_names == [str(i) for i in range(11)]


def test_max_train_samples_is_stratified(tmp_path):
    rows = make_sentences(200, labels=("a", "b"))
    data = load_text_data(str(_write(tmp_path / "d.csv", _csv(rows))), max_train_samples=50)
    assert len(data.splits["train"]) == 50
    assert sorted(np.bincount(data.splits["train"]["label"]).tolist()) == [25, 25]


# ------------------------------------------------------------------ bad inputs, each with its message


def test_missing_column_names_file_and_columns(tmp_path):
    path = _write(tmp_path / "d.csv", _csv(make_sentences(10)))
    with pytest.raises(DataError, match=r"d\.csv: no column 'sentence' for the text \(columns: text, label\)"):
        load_text_data(str(path), text_column="sentence")


def test_empty_text_names_file_and_line(tmp_path):
    rows = make_sentences(10)
    rows[4] = ("  ", rows[4][1])
    path = _write(tmp_path / "d.csv", _csv(rows))
    with pytest.raises(DataError, match=r"d\.csv, line 6: empty text in column 'text'"):
        load_text_data(str(path))
    data = load_text_data(str(path), on_bad_rows="skip")
    assert len(data.splits["train"]) + len(data.splits["validation"]) == 9
    assert any("skipped 1 bad rows" in n for n in data.notes)


def test_empty_label_names_line(tmp_path):
    rows = make_sentences(10)
    rows[2] = (rows[2][0], "")
    with pytest.raises(DataError, match=r"line 4: empty label in column 'label'"):
        load_text_data(str(_write(tmp_path / "d.csv", _csv(rows))))


def test_unknown_label_in_validation(tmp_path):
    _write(tmp_path / "train.csv", _csv(make_sentences(10)))
    _write(tmp_path / "valid.csv", _csv(make_sentences(4) + [("so so", "neutral")]))
    with pytest.raises(DataError, match=r"valid\.csv: column 'label': row 5: label 'neutral' is not among the "
                                        r"training labels \(negative, positive\).*--on-bad-rows skip drops them"):
        load_text_data(str(tmp_path))


def test_unknown_label_in_test(tmp_path):
    _write(tmp_path / "train.csv", _csv(make_sentences(10)))
    _write(tmp_path / "test.csv", _csv([("meh", "mixed")]))
    with pytest.raises(DataError, match=r"test\.csv: column 'label': row 1: label 'mixed' is not among"):
        load_text_data(str(tmp_path))


def test_undecodable_bytes_name_the_line(tmp_path):
    text = _csv(make_sentences(6)).encode()
    lines = text.split(b"\n")
    lines[3] = b"caf\xe9 latte was good,positive"  # latin-1 byte
    path = _write(tmp_path / "d.csv", b"\n".join(lines))
    with pytest.raises(DataError, match=r"d\.csv, line 4: bytes that are not valid UTF-8 \(0xe9"):
        load_text_data(str(path))


def test_ragged_row_names_the_line(tmp_path):
    body = _csv(make_sentences(6)) + "one,two,three\n"
    with pytest.raises(DataError, match=r"d\.csv, line 8: 3 fields, expected 2"):
        load_text_data(str(_write(tmp_path / "d.csv", body)))


def test_invalid_jsonl_line(tmp_path):
    path = _write(tmp_path / "d.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", label: y}\n')
    with pytest.raises(DataError, match=r"d\.jsonl, line 2: invalid JSON"):
        load_text_data(str(path))


def test_single_label_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="only one label"):
        load_text_data(str(_write(tmp_path / "d.csv", _csv([("a b", "x"), ("c d", "x")]))))
    with pytest.raises(DataError, match="file or folder not found"):
        load_text_data(str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        from transferlearn.data.tables import read_table

        read_table(_write(tmp_path / "d.xlsx", "x"))


def test_user_files_are_never_modified(tmp_path):
    rows = make_sentences(10)
    rows[1] = ("", "positive")
    path = _write(tmp_path / "d.csv", _csv(rows))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DataError):
        load_text_data(str(path))
    load_text_data(str(path), on_bad_rows="skip")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


@pytest.mark.shared_data
def test_real_smsa_folder():
    data = load_text_data(str(shared_data("smsa")))
    summary = data.summary()["splits"]
    assert summary["train"]["rows"] == 11000 and summary["validation"]["rows"] == 1260
    assert summary["test"]["per_class"] == {"negative": 204, "neutral": 88, "positive": 208}


def test_hub_dataset_adapter_maps_classlabels_and_splits(monkeypatch):
    """The real `datasets.load_dataset` path, fed a local DatasetDict (the Hub is out of reach in CI)."""
    import datasets

    rows = make_sentences(40)
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})

    def split(n, seed):
        data = make_sentences(n, seed)
        return datasets.Dataset.from_dict({"sentence": [t for t, _ in data],
                                           "label": [int(lab == "positive") for _, lab in data]}, features=features)

    calls = []

    def fake_load_dataset(name, config_name=None):
        calls.append((name, config_name))
        return datasets.DatasetDict({"train": split(40, 0), "validation": split(10, 1), "test": split(12, 2),
                                     "unsupervised": split(4, 3)})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = load_text_data("someorg/sentiment", data_config="default")
    assert calls == [("someorg/sentiment", "default")]
    assert data.columns == {"text": "sentence", "label": "label"}
    assert data.label_names == ["negative", "positive"]
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 40, "validation": 10, "test": 12}
    assert rows[0][0] in data.splits["train"]["text"]


def test_unreachable_hub_dataset_says_so(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'x/y' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"'x/y' is neither an existing file/folder nor a loadable Hugging Face "
                                        r"dataset: Couldn't reach"):
        load_text_data("x/y")
