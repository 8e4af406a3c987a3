"""Words and their tags onto a tokenizer's sub-tokens: the first sub-token of each word carries its tag, the others
and the special tokens are ignored in the loss (``-100``); a sentence longer than ``max_length`` is cut into windows
overlapping by ``stride`` tokens (the tokenizer's own overflow windows), never truncated.

Training labels every word in every window it starts in. Scoring labels each word once, in the window where it
sits most central (the farthest from a window edge), so joining a sentence's windows gives each word exactly once.
"""

from __future__ import annotations

import copy
import json
import re

from tokenizers import Tokenizer

from ..errors import ConfigError

IGNORE = -100
# a word: letters / digits joined by inner hyphens, apostrophes or dots (sukarelawan-sukarelawan, 2.5, don't), or one
# punctuation mark — how CoNLL-style corpora split raw text into tokens
WORD = re.compile(r"\w+(?:[-'’.]\w+)*|[^\w\s]")


def word_spans(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) of each word of a raw text, by character offset."""
    return [(m.group(0), m.start(), m.end()) for m in WORD.finditer(text)]


def _first_positions(word_ids: list[int | None]) -> dict[int, int]:
    """word -> its first position in one window."""
    first: dict[int, int] = {}
    for position, word in enumerate(word_ids):
        if word is not None and word not in first:
            first[word] = position
    return first


def words_tokenizer(tokenizer):
    """(a tokenizer for lists of words, the words to put first). A normalizer that prepends text (e5's "query: ")
    would prepend it to every word of a pre-split sentence; the copy returned drops it, and the text comes back once
    as leading words whose sub-tokens belong to no word."""
    cached = getattr(tokenizer, "_transferlearn_words", None)
    if cached is not None:
        return cached
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    normalizer = state.get("normalizer") or {}
    parts = normalizer.get("normalizers", []) if normalizer.get("type") == "Sequence" else [normalizer]
    prefix = "".join(p.get("prepend", "") for p in parts if p.get("type") == "Prepend")
    result = (tokenizer, [])
    if prefix:
        kept = [p for p in parts if p.get("type") != "Prepend"]
        state["normalizer"] = {"type": "Sequence", "normalizers": kept} if kept else None
        words = copy.copy(tokenizer)
        words._tokenizer = Tokenizer.from_str(json.dumps(state))
        result = (words, prefix.split())
    tokenizer._transferlearn_words = result
    return result


def tokenize_pairs(tokenizer, first: list[str], second: list[str], **kwargs):
    """Sentence pairs through the tokenizer (``[CLS] a [SEP] b [SEP]``, cut ``longest_first``). A normalizer's
    prefix (e5's "query: ") marks an input once, before its first side, as it does a single text — not each side."""
    splitter, lead = words_tokenizer(tokenizer)
    prefix = " ".join(lead) + " " if lead else ""
    return splitter([prefix + a for a in first], list(second), truncation="longest_first", **kwargs)


def align_windows(tokenizer, words: list[list[str]], tags: list[list[int]] | None, *, max_length: int,
                  stride: int, every_window: bool, pairs=None) -> dict[str, list]:
    """Token windows of each sentence with their labels (``tags`` None: labels mark the positions scored, tag 0) and
    ``sentence``, the index of the sentence each window belongs to."""
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{type(tokenizer).__name__}: token tagging needs a fast tokenizer (it maps sub-tokens back "
                          "to words); use a model whose tokenizer has a tokenizer.json")
    specials = tokenizer.num_special_tokens_to_add(pair=False)
    if max_length - specials <= stride:
        raise ConfigError(f"--stride {stride} must be shorter than a window (--max-length {max_length} less "
                          f"{specials} special tokens)")
    splitter, lead = words_tokenizer(tokenizer)
    encoded = splitter([lead + list(w) for w in words], is_split_into_words=True, truncation=True,
                       max_length=max_length, stride=stride, return_overflowing_tokens=True)
    sample_of = encoded.pop("overflow_to_sample_mapping")
    windows = [[None if w is None or w < len(lead) else w - len(lead) for w in encoded.word_ids(i)]
               for i in range(len(sample_of))]
    owner: dict[tuple[int, int], tuple[int, int]] = {}  # (sentence, word) -> (centrality, window)
    if not every_window:
        for window, (sentence, ids) in enumerate(zip(sample_of, windows, strict=True)):
            content = [p for p, w in enumerate(ids) if w is not None]
            low, high = content[0], content[-1]
            for word, position in _first_positions(ids).items():
                centrality = min(position - low, high - position)
                key = (sentence, word)
                if key not in owner or centrality > owner[key][0]:
                    owner[key] = (centrality, window)
    labels = []
    for window, (sentence, ids) in enumerate(zip(sample_of, windows, strict=True)):
        row = [IGNORE] * len(ids)
        for word, position in _first_positions(ids).items():
            if every_window or owner[(sentence, word)][1] == window:
                row[position] = tags[sentence][word] if tags is not None else 0
        labels.append(row)
    out = {k: list(v) for k, v in encoded.items()}
    out["labels"] = labels
    out["sentence"] = list(sample_of)
    return out
