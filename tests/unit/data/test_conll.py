"""Reading a tag per word: CoNLL files, JSONL rows, a folder of split files, Hub-style datasets; bad lines named."""

from __future__ import annotations

import json

import pytest

from conftest import shared_data
from transferlearn.data.conll import hub_token_sentences, looks_like_conll, read_conll, read_token_jsonl, token_split_files
from transferlearn.data.text import load_text_data
from transferlearn.errors import DataError

CONLL = """-DOCSTART- -X- O O

Joko NNP B-NP B-PER
Widodo NNP I-NP I-PER
tinggal VB B-VP O
di IN B-PP O
Jakarta NNP B-NP B-LOC
. . O O

Budi\tB-PER
pergi\tO

"""


def test_conll_sentences_tokens_and_the_last_column_as_tag(tmp_path):
    path = tmp_path / "train.conll"
    path.write_text(CONLL)
    read = read_conll(path)
    assert len(read.tokens) == 2  # -DOCSTART- skipped, the trailing blank lines end nothing more
    assert read.tokens[0] == ["Joko", "Widodo", "tinggal", "di", "Jakarta", "."]
    assert read.tags[0] == ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]
    assert read.tags[1] == ["B-PER", "O"] and read.lines == [3, 10]
    assert looks_like_conll(path)


def test_a_word_without_a_tag_is_named_by_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("a\tO\nb\tB-PER\nc\n\n")
    with pytest.raises(DataError, match=r"train\.txt, line 3: 'c' has no tag"):
        read_conll(path)


def test_bio_repair_or_refuse(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("a\tO\nb\tI-PER\nc\tI-PER\nd\tI-LOC\n\n")
    repaired = read_conll(path, "repair")
    assert repaired.tags[0] == ["O", "B-PER", "I-PER", "B-LOC"] and repaired.repaired == 2
    with pytest.raises(DataError, match=r"line 2: tag 'I-PER' continues no entity of its type \(after 'O'\)"):
        read_conll(path, "error")


def test_jsonl_tokens_and_tags(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [{"tokens": ["Ani", "makan"], "ner_tags": ["B-PER", "O"]}, {"tokens": ["di", "Bali"], "tags": ["O", "B-LOC"]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    read = read_token_jsonl(path)
    assert read.tokens == [["Ani", "makan"], ["di", "Bali"]] and read.tags == [["B-PER", "O"], ["O", "B-LOC"]]
    path.write_text(json.dumps({"tokens": ["a", "b", "c"], "tags": ["O", "O"]}) + "\n")
    with pytest.raises(DataError, match=r"line 1: 3 tokens but 2 tags in 'tags'"):
        read_token_jsonl(path)


def test_a_folder_of_split_files(tmp_path):
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.conll").write_text("a\tB-PER\nb\tO\n\nc\tO\nd\tB-LOC\n\n")
    (tmp_path / "notes.txt").write_text("just some notes here\n")
    assert set(token_split_files(str(tmp_path))) == {"train", "validation", "test"}
    data = load_text_data(str(tmp_path))
    assert data.shape.name == "token-tags" and data.shape.tags == ["O", "B-LOC", "B-PER"]
    assert data.splits["train"][0] == {"text": ["a", "b"], "label": [2, 0]}


def test_a_table_of_texts_is_not_token_data(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\nthe food,good\n")
    assert token_split_files(str(tmp_path)) is None


def test_hub_style_dataset_with_classlabel_tags():
    import datasets

    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER"]))})
    ds = datasets.Dataset.from_dict({"tokens": [["Ani", "Sari", "makan"]], "ner_tags": [[1, 2, 0]]}, features=features)
    read = hub_token_sentences(ds, "hub[train]")
    assert read.tags == [["B-PER", "I-PER", "O"]]


def test_nergrit_sentence_and_token_counts():
    data = load_text_data(str(shared_data("nergrit")))
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 1672, "validation": 209, "test": 209}
    assert data.shape.types == ["ORGANISATION", "PERSON", "PLACE"]
    assert sum(len(t) for t in data.splits["train"]["text"]) == 56210
