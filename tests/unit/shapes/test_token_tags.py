"""The token-tags label shape on arrays whose answers are known: entity F1 by hand, windows joined into sentences,
spans at exact character offsets, the per-word baseline, the saved state."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest

from transferlearn.errors import DataError, ModelError
from transferlearn.shapes import TokenTags, choose_shape, load_shape
from transferlearn.shapes.base import BadLabel
from transferlearn.shapes.token_tags import IGNORE, repair_bio

RAW = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "O"]]


def fitted() -> TokenTags:
    shape, line = choose_shape("auto", RAW, ["tags"], "train.conll")
    shape.fit(RAW, "train.conll")
    assert line.startswith("label shape: token-tags — a tag per word (7 words in 2 sentences)")
    return shape


def one_hot(shape, rows: list[list[str]], width: int) -> np.ndarray:
    logits = np.zeros((len(rows), width, len(shape.tags)))
    for i, row in enumerate(rows):
        for j, tag in enumerate(row):
            logits[i, j, shape.tags.index(tag)] = 5.0
    return logits


def test_tags_are_ordered_o_first_then_by_type():
    shape = fitted()
    assert shape.tags == ["O", "B-LOC", "B-ORG", "B-PER", "I-PER"] and shape.types == ["LOC", "ORG", "PER"]
    assert shape.encode_row(["O", "B-PER"]) == [0, 3]
    with pytest.raises(BadLabel, match="tag 'B-MISC' is not among the training tags"):
        shape.encode_row(["B-MISC"])


def test_entity_f1_equals_the_hand_computed_value():
    shape = fitted()
    truth = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG", "O", "B-PER", "O", "O"]]
    # PER(0-1) right; LOC missed; ORG right; PER at 2 predicted as LOC (one spurious LOC, one missed PER)
    guess = [["B-PER", "I-PER", "O", "O", "O"], ["B-ORG", "O", "B-LOC", "O", "O"]]
    labels = shape.label_array([shape.encode_row(t) for t in truth])
    summary = shape.summary(labels, one_hot(shape, guess, 5))
    # true entities 4, predicted 3, correct 2: P = 2/3, R = 2/4, F1 = 2PR/(P+R) = 4/7
    assert summary["entity_precision"] == pytest.approx(2 / 3)
    assert summary["entity_recall"] == pytest.approx(0.5)
    assert summary["entity_f1"] == pytest.approx(4 / 7)
    # per type: PER P 1/1 R 1/2 F1 2/3; ORG 1; LOC P 0 R 0 F1 0 -> mean (2/3 + 1 + 0) / 3
    assert summary["entity_macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert summary["token_accuracy"] == pytest.approx(8 / 10)
    per_type = shape.metrics(labels, one_hot(shape, guess, 5))["per_type"]
    assert per_type["PER"]["support"] == 2 and per_type["LOC"]["f1"] == 0.0


def test_padding_past_a_sentence_is_not_scored():
    shape = fitted()
    labels = shape.label_array([[3, 4], [2]])
    assert labels.tolist() == [[3, 4], [2, IGNORE]]
    logits = one_hot(shape, [["B-PER", "I-PER"], ["B-ORG", "B-PER"]], 2)  # the second row's padding says B-PER
    assert shape.summary(labels, logits)["entity_f1"] == 1.0


def test_gather_joins_a_sentences_windows_in_order():
    shape = fitted()
    # sentence 0 in two windows (positions 1-2, then 1), sentence 1 in one; sub-token positions ignored
    labels = np.array([[IGNORE, 3, 4, IGNORE], [IGNORE, 0, IGNORE, IGNORE], [IGNORE, 2, IGNORE, IGNORE]])
    logits = np.random.default_rng(0).normal(size=(3, 4, len(shape.tags)))
    words, tags = shape.gather(logits, labels, groups=[0, 0, 1])
    assert tags.tolist() == [[3, 4, 0], [2, IGNORE, IGNORE]]
    np.testing.assert_allclose(words[0], np.stack([logits[0, 1], logits[0, 2], logits[1, 1]]).astype(np.float32))
    np.testing.assert_allclose(words[1, 0], logits[2, 1].astype(np.float32))


def test_decode_gives_spans_at_exact_character_offsets():
    shape = fitted()
    text = "Kemarin  Joko Widodo ke Bali."
    words = [("Kemarin", 0, 7), ("Joko", 9, 13), ("Widodo", 14, 20), ("ke", 21, 23), ("Bali", 24, 28), (".", 28, 29)]
    logits = one_hot(shape, [["O", "B-PER", "I-PER", "O", "B-LOC", "O"]], 6)
    result = shape.decode(logits, words=[words], texts=[text])[0]
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in result["entities"]] == [
        ("PER", "Joko Widodo", 9, 20), ("LOC", "Bali", 24, 28)]
    assert all(text[e["start"]:e["end"]] == e["text"] for e in result["entities"])
    assert [t["tag"] for t in result["tokens"]] == ["O", "B-PER", "I-PER", "O", "B-LOC", "O"]
    jsonschema.validate(result, shape.result_schema())
    assert shape.served_labels(result) == ["PER", "LOC"] and 0 < shape.confidence(result) <= 1


def test_the_error_view_names_missed_and_spurious_entities():
    shape = fitted()
    label = shape.label_array([shape.encode_row(["B-PER", "I-PER", "O", "B-LOC"])])[0]
    logits = one_hot(shape, [["B-PER", "I-PER", "B-ORG", "O"]], 4)[0]
    true, said = shape.compare_row(label, logits, "Joko Widodo di Bali")
    assert true == "PER 'Joko Widodo', LOC 'Bali'"
    assert said == "missed LOC 'Bali'; spurious ORG 'di'"


def test_repair_bio():
    assert repair_bio(["O", "I-PER", "I-PER", "B-LOC", "I-PER"]) == (["O", "B-PER", "I-PER", "B-LOC", "B-PER"], [1, 4])


def test_training_data_without_entities_is_refused():
    shape = TokenTags(["tags"])
    with pytest.raises(DataError, match="no entity tags"):
        shape.fit([["O", "O"]], "train.conll")


def test_asking_another_shape_of_tagged_words_is_refused():
    with pytest.raises(DataError, match="this data holds a tag per word"):
        choose_shape("single-label", RAW, ["tags"], "train.conll")
    with pytest.raises(DataError, match="--problem token-tags needs a tag per word"):
        choose_shape("token-tags", ["good", "bad"], ["label"], "train.csv")


def test_the_per_word_baseline_learns_capitalised_names():
    shape = fitted()
    sentences = [["kami", "bertemu", name, "kemarin"] for name in ("Joko", "Ani", "Budi", "Sari", "Tono")] * 4
    tags = [[0, 0, 3, 0]] * len(sentences)
    model = shape.baseline_model(1.0, None).fit(sentences, shape.label_array(tags))
    logits = shape.baseline_logits(model, [["kami", "bertemu", "Rudi", "kemarin"]])
    assert logits.shape == (1, 4, len(shape.tags)) and logits[0].argmax(-1).tolist() == [0, 0, 3, 0]


def test_saved_state_round_trips_and_tampering_is_refused(tmp_path):
    shape = fitted()
    shape.save(tmp_path)
    loaded = load_shape(tmp_path)
    assert isinstance(loaded, TokenTags) and loaded.tags == shape.tags
    state = json.loads((tmp_path / "label_shape.json").read_text())
    (tmp_path / "label_shape.json").write_text(json.dumps({**state, "tags": "O"}))
    with pytest.raises(ModelError, match="not a valid label-shape file"):
        load_shape(tmp_path)
