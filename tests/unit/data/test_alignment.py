"""Word tags onto sub-tokens: the first sub-token of a word carries its tag, long sentences become overlapping windows
that score every word exactly once, and a normalizer's prefix (e5's "query: ") is added once, not per word."""

from __future__ import annotations

import pytest

from transferlearn.data.alignment import IGNORE, align_windows, tokenize_pairs, word_spans, words_tokenizer
from transferlearn.errors import ConfigError

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "joko", "wi", "##do", "di", "ja", "##kar", "##ta", "tinggal",
         "pergi", "ke", "query", ":"]


def wordpiece(prefix: str | None = None):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(VOCAB)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    steps = [normalizers.Lowercase()] + ([normalizers.Prepend(prefix)] if prefix else [])
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]")


def tokens(tokenizer, ids):
    return tokenizer.convert_ids_to_tokens(ids)


def test_first_sub_token_carries_the_tag_hand_checked():
    tok = wordpiece()
    words = ["Joko", "Widodo", "tinggal", "di", "Jakarta"]
    out = align_windows(tok, [words], [[1, 2, 0, 0, 3]], max_length=32, stride=4, every_window=True)
    # joko | wi ##do ##do | tinggal | di | ja ##kar ##ta
    assert tokens(tok, out["input_ids"][0]) == ["[CLS]", "joko", "wi", "##do", "##do", "tinggal", "di", "ja", "##kar",
                                                "##ta", "[SEP]"]
    assert out["labels"][0] == [IGNORE, 1, 2, IGNORE, IGNORE, 0, 0, 3, IGNORE, IGNORE, IGNORE]
    assert out["sentence"] == [0]


def _scored_words(out, n_words):
    """(sentence, word) pairs each scored position belongs to, across every window."""
    seen = []
    for labels in out["labels"]:
        seen += [tag for tag in labels if tag != IGNORE]
    return seen


def test_windows_with_stride_score_every_word_exactly_once():
    tok = wordpiece()
    words = ["Joko", "tinggal", "di", "Jakarta", "pergi", "ke", "Jakarta", "di"] * 5  # 40 words, 60 sub-tokens
    tags = list(range(len(words)))  # a distinct "tag" per word: which word each scored position is
    scoring = align_windows(tok, [words], [tags], max_length=16, stride=4, every_window=False)
    assert len(scoring["sentence"]) > 3 and set(scoring["sentence"]) == {0}
    assert sorted(_scored_words(scoring, len(words))) == tags  # every word once: none lost, none twice
    assert all(len(ids) <= 16 for ids in scoring["input_ids"])  # cut into windows, never truncated
    training = align_windows(tok, [words], [tags], max_length=16, stride=4, every_window=True)
    labelled = _scored_words(training, len(words))
    assert set(labelled) == set(tags) and len(labelled) > len(tags)  # the overlap is labelled in both windows


def test_the_scoring_window_is_the_most_central_one():
    tok = wordpiece()
    words = ["di"] * 30
    out = align_windows(tok, [words], [list(range(30))], max_length=12, stride=4, every_window=False)
    windows = out["labels"]
    assert len(windows) > 2
    for k, labels in enumerate(windows):
        first, last = 1, len(labels) - 2  # content between [CLS] and [SEP]
        # an edge word another window also holds (with context on both sides) is scored there, not here
        if k > 0:
            assert labels[first] == IGNORE
        if k < len(windows) - 1:
            assert labels[last] == IGNORE


def test_a_prefixing_normalizer_is_applied_once():
    tok = wordpiece(prefix="query: ")
    splitter, lead = words_tokenizer(tok)
    assert lead == ["query:"]
    out = align_windows(tok, [["Joko", "di", "Jakarta"]], [[1, 0, 3]], max_length=32, stride=4, every_window=True)
    assert tokens(tok, out["input_ids"][0]) == ["[CLS]", "query", ":", "joko", "di", "ja", "##kar", "##ta", "[SEP]"]
    assert out["labels"][0] == [IGNORE, IGNORE, IGNORE, 1, 0, 3, IGNORE, IGNORE, IGNORE]
    assert tokens(tok, tok("Joko di Jakarta")["input_ids"]) == tokens(tok, out["input_ids"][0])  # as raw text reads


def test_a_pair_gets_the_prefix_once_before_its_first_side():
    tok = wordpiece(prefix="query: ")
    encoded = tokenize_pairs(tok, ["Joko di Jakarta"], ["Joko pergi"], max_length=32)
    assert tokens(tok, encoded["input_ids"][0]) == ["[CLS]", "query", ":", "joko", "di", "ja", "##kar", "##ta", "[SEP]",
                                                    "joko", "pergi", "[SEP]"]
    cut = tokenize_pairs(tok, ["Joko di Jakarta pergi ke Jakarta"], ["di"], max_length=10)
    assert tokens(tok, cut["input_ids"][0])[-3:] == ["[SEP]", "di", "[SEP]"]  # longest_first cuts the long side


def test_a_stride_as_long_as_the_window_is_refused():
    with pytest.raises(ConfigError, match="--stride 20 must be shorter than a window"):
        align_windows(wordpiece(), [["di"]], [[0]], max_length=16, stride=20, every_window=True)


def test_word_spans_split_words_and_punctuation_with_offsets():
    text = "Joko Widodo tinggal di Jakarta, ibu-kota 2.5 juta."
    spans = word_spans(text)
    assert [w for w, _, _ in spans] == ["Joko", "Widodo", "tinggal", "di", "Jakarta", ",", "ibu-kota", "2.5", "juta",
                                        "."]
    assert all(text[start:end] == word for word, start, end in spans)
