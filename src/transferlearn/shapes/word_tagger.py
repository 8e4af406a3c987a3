"""The token-tagging baseline: scikit-learn's logistic regression on each word's classical features — the word and
its lower case, prefixes and suffixes, its shape (capitals, digits, hyphens) and the same for its neighbours — the
per-token feature set of CoNLL-era taggers (a CRF without the transition scores)."""

from __future__ import annotations

import re

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression

IGNORE = -100


def _shape(word: str) -> str:
    shape = re.sub(r"[A-Z]", "X", word)
    shape = re.sub(r"[a-z]", "x", shape)
    shape = re.sub(r"\d", "d", shape)
    return re.sub(r"(.)\1+", r"\1\1", shape)  # runs shortened: Xxxxx -> Xxx


def _own(word: str, prefix: str) -> dict[str, float]:
    lower = word.lower()
    return {f"{prefix}w={lower}": 1.0, f"{prefix}shape={_shape(word)}": 1.0,
            f"{prefix}title": float(word.istitle()), f"{prefix}upper": float(word.isupper())}


def word_features(words: list[str], i: int) -> dict[str, float]:
    word = words[i]
    lower = word.lower()
    out = {"bias": 1.0, "word=" + word: 1.0, "digit": float(word.isdigit()), "hyphen": float("-" in word),
           "first": float(i == 0), "last": float(i == len(words) - 1), **_own(word, "")}
    for n in (2, 3, 4):
        out[f"pre{n}={lower[:n]}"] = 1.0
        out[f"suf{n}={lower[-n:]}"] = 1.0
    for offset in (-2, -1, 1, 2):
        j = i + offset
        if 0 <= j < len(words):
            out.update(_own(words[j], f"{offset:+d}:"))
        else:
            out[f"{offset:+d}:edge"] = 1.0
    return out


class WordTagger:
    """``fit(sentences, labels)`` on word lists and padded tag indices; ``word_logits(sentences)``: log-probabilities
    ``[sentences, words, tags]`` in the label shape's layout."""

    def __init__(self, c: float = 1.0, tags: int = 2):
        self.c, self.tags = c, tags

    def _rows(self, sentences) -> list[dict]:
        return [word_features(list(words), i) for words in sentences for i in range(len(words))]

    def fit(self, sentences, labels):
        labels = np.asarray(labels)
        y = np.concatenate([row[row != IGNORE] for row in labels]) if len(labels) else np.zeros(0, dtype=np.int64)
        self.vectorizer = DictVectorizer()
        x = self.vectorizer.fit_transform(self._rows(sentences))
        self.model = LogisticRegression(C=self.c, max_iter=300).fit(x, y)
        return self

    def word_logits(self, sentences) -> np.ndarray:
        sentences = [list(s) for s in sentences]
        width = max((len(s) for s in sentences), default=0)
        out = np.full((len(sentences), width, self.tags), np.log(1e-9), dtype=np.float32)
        if not sentences:
            return out
        log_probabilities = self.model.predict_log_proba(self.vectorizer.transform(self._rows(sentences)))
        at = 0
        for i, words in enumerate(sentences):
            out[i, :len(words)][:, self.model.classes_] = log_probabilities[at:at + len(words)]
            at += len(words)
        return out
