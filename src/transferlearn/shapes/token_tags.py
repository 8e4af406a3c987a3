"""A tag per word (named entities, part-of-speech, terms): BIO tags over entity types, a token classifier's head
(one softmax per word), cross-entropy over each word's first sub-token, entity-level precision / recall / F1 with
``seqeval`` (the CoNLL metric).

Arrays a stage sees are word-level and padded: labels ``[rows, words]`` holding tag indices and ``IGNORE`` past a
sentence's end, logits ``[rows, words, tags]``. :meth:`TokenTags.gather` turns a token classifier's sub-token
outputs (one row per window of a long sentence) into them.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import DataError
from .base import BadLabel, LabelShape, register, softmax

IGNORE = -100  # a position that is not a word's first sub-token (transformers' ignore index)
BIO = re.compile(r"^([BIES])-(.+)$")


def entity_type(tag: str) -> str | None:
    match = BIO.match(tag)
    return match.group(2) if match else None


def repair_bio(tags: list[str]) -> tuple[list[str], list[int]]:
    """``I-X`` that does not continue an ``X`` entity starts one (``B-X``), as conlleval reads it; returns the
    repaired tags and the positions changed."""
    out, changed = list(tags), []
    for i, tag in enumerate(tags):
        match = BIO.match(tag)
        if match and match.group(1) == "I":
            before = out[i - 1] if i else "O"
            if entity_type(before) != match.group(2):
                out[i] = f"B-{match.group(2)}"
                changed.append(i)
    return out, changed


def tag_order(tags: set[str]) -> list[str]:
    """``O`` first, then each type's ``B-`` / ``I-`` (/ ``E-`` / ``S-``) together, types sorted."""
    prefix_rank = {"B": 0, "I": 1, "E": 2, "S": 3}

    def key(tag: str):
        match = BIO.match(tag)
        return (1, match.group(2), prefix_rank[match.group(1)]) if match else (0, tag, 0)

    return sorted(tags, key=key)


def entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, first word, last word) of each entity, read as seqeval reads BIO (its default, conlleval mode)."""
    from seqeval.metrics.sequence_labeling import get_entities

    return [(t, start, end) for t, start, end in get_entities(list(tags))]


@register
class TokenTags(LabelShape):
    name = "token-tags"
    title = "token tagging (a tag per word)"
    problem_type = None
    metric_choices = ("entity_f1", "entity_macro_f1", "token_accuracy")
    shown_metrics = ("entity_f1", "entity_macro_f1", "entity_precision", "entity_recall", "token_accuracy")
    detail_title = "Per-type entity scores"
    baseline_name = "logistic regression per word"
    model_loss = True  # the token classifier's own loss: cross-entropy over labelled sub-tokens
    value_dtype = "int64"
    per_token = True
    caches_features = False

    def __init__(self, columns: list[str]):
        super().__init__(columns)
        self.tags: list[str] = []

    # --- labels -------------------------------------------------------------------------------
    def fit(self, raw: list, where: str) -> None:
        self.tags = tag_order({t for row in raw for t in row} | {"O"})
        if not any(entity_type(t) for t in self.tags):
            raise DataError(f"{where}: no entity tags in the training data (only {', '.join(self.tags)}); token "
                            "tagging needs B-/I- tags over some type")
        self._index = {t: i for i, t in enumerate(self.tags)}

    def encode_row(self, raw) -> list[int]:
        index = getattr(self, "_index", None) or {t: i for i, t in enumerate(self.tags)}
        self._index = index
        unknown = next((t for t in raw if t not in index), None)
        if unknown is not None:
            raise BadLabel(f"tag {unknown!r} is not among the training tags ({', '.join(self.tags)})")
        return [index[t] for t in raw]

    @property
    def output_names(self) -> list[str]:
        return self.tags

    @property
    def types(self) -> list[str]:
        return sorted({entity_type(t) for t in self.tags} - {None})

    def dataset_feature(self):
        import datasets

        return datasets.Sequence(datasets.Value("int64"))

    def label_array(self, values) -> np.ndarray:
        rows = [list(v) for v in values]
        out = np.full((len(rows), max((len(r) for r in rows), default=0)), IGNORE, dtype=np.int64)
        for i, row in enumerate(rows):
            out[i, :len(row)] = row
        return out

    def sequences(self, labels: np.ndarray) -> list[list[str]]:
        return [[self.tags[t] for t in row if t != IGNORE] for row in np.asarray(labels)]

    def counts(self, labels: np.ndarray) -> dict:
        found: dict[str, int] = dict.fromkeys(self.types, 0)
        for seq in self.sequences(labels):
            for kind, _, _ in entities(seq):
                found[kind] = found.get(kind, 0) + 1
        words = int((np.asarray(labels) != IGNORE).sum())
        return {"entities_per_type": found, "words": words}

    def check_train(self, labels, where: str, held: str = "") -> None:
        if not any(entities(seq) for seq in self.sequences(labels)):
            raise DataError(f"{where}: the training split{held} holds no entity: nothing to learn to tag")

    # --- model --------------------------------------------------------------------------------
    def loss(self, logits, labels, weights=None):
        import torch.nn.functional as F

        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), weight=weights,
                               ignore_index=IGNORE)

    def gather(self, logits: np.ndarray, labels: np.ndarray, groups=None) -> tuple[np.ndarray, np.ndarray]:
        """Sub-token outputs ``[windows, tokens, tags]`` / ``[windows, tokens]`` -> word-level arrays: each window's
        labelled positions (a word's first sub-token), windows of one sentence (``groups``: its index per window,
        in order) joined. Arrays already word-level (``logits`` one axis more than ``labels``, same width) pass."""
        logits, labels = np.asarray(logits), np.asarray(labels)
        groups = list(range(len(labels))) if groups is None else list(groups)
        words: dict[int, list] = {}
        tags: dict[int, list] = {}
        for row, group in enumerate(groups):
            keep = labels[row] != IGNORE
            words.setdefault(group, []).append(logits[row][keep])
            tags.setdefault(group, []).append(labels[row][keep])
        order = list(dict.fromkeys(groups))
        joined = [np.concatenate(words[g]) for g in order]
        width = max((len(j) for j in joined), default=0)
        out_logits = np.zeros((len(order), width, logits.shape[-1]), dtype=np.float32)
        out_labels = np.full((len(order), width), IGNORE, dtype=np.int64)
        for i, g in enumerate(order):
            out_logits[i, :len(joined[i])] = joined[i]
            out_labels[i, :len(joined[i])] = np.concatenate(tags[g])
        return out_logits, out_labels

    def join(self, parts):
        """Batches of different widths: each batch word-level, padded to the widest."""
        gathered = [self.gather(logits, labels) for logits, labels in parts]
        width = max((g[1].shape[1] for g in gathered), default=0)
        logits = np.zeros((sum(len(g[1]) for g in gathered), width, len(self.tags)), dtype=np.float32)
        labels = np.full(logits.shape[:2], IGNORE, dtype=np.int64)
        at = 0
        for part_logits, part_labels in gathered:
            rows, words = part_labels.shape
            logits[at:at + rows, :words], labels[at:at + rows, :words] = part_logits, part_labels
            at += rows
        return logits, labels

    # --- evaluation ---------------------------------------------------------------------------
    def _paired(self, labels, logits) -> tuple[list[list[str]], list[list[str]]]:
        labels, logits = np.asarray(labels), np.asarray(logits)
        predicted = logits.argmax(-1) if len(logits) else np.zeros(labels.shape, dtype=np.int64)
        truth, guess = [], []
        for row_true, row_pred in zip(labels, predicted, strict=True):
            keep = row_true != IGNORE
            truth.append([self.tags[t] for t in row_true[keep]])
            guess.append([self.tags[t] for t in row_pred[keep]])
        return truth, guess

    def summary(self, labels, logits) -> dict[str, float]:
        from seqeval.metrics import f1_score, precision_score, recall_score

        truth, guess = self._paired(labels, logits)
        per_type = self._per_type(truth, guess)
        words = sum(len(t) for t in truth)
        right = sum(a == b for t, g in zip(truth, guess, strict=True) for a, b in zip(t, g, strict=True))
        return {"entity_f1": float(f1_score(truth, guess, zero_division=0)),
                "entity_macro_f1": float(np.mean([v["f1"] for v in per_type.values()])) if per_type else 0.0,
                "entity_precision": float(precision_score(truth, guess, zero_division=0)),
                "entity_recall": float(recall_score(truth, guess, zero_division=0)),
                "token_accuracy": right / words if words else 0.0}

    def _per_type(self, truth, guess) -> dict[str, dict]:
        from seqeval.metrics import classification_report

        report = classification_report(truth, guess, output_dict=True, zero_division=0)
        return {kind: {"precision": float(report[kind]["precision"]) if kind in report else 0.0,
                       "recall": float(report[kind]["recall"]) if kind in report else 0.0,
                       "f1": float(report[kind]["f1-score"]) if kind in report else 0.0,
                       "support": int(report[kind]["support"]) if kind in report else 0}
                for kind in self.types}

    def metrics(self, labels, logits) -> dict:
        truth, guess = self._paired(labels, logits)
        return {**self.summary(labels, logits), "per_type": self._per_type(truth, guess),
                "num_samples": int(len(labels)), "num_words": int(sum(len(t) for t in truth)), "problem": self.name}

    def row_losses(self, logits, labels) -> np.ndarray:
        labels, logits = np.asarray(labels), np.asarray(logits, dtype=np.float64)
        probabilities = softmax(logits)
        out = np.zeros(len(labels))
        for i, row in enumerate(labels):
            keep = row != IGNORE
            if keep.any():
                out[i] = -np.log(np.maximum(probabilities[i][keep, row[keep]], 1e-12)).mean()
        return out

    # --- prediction ---------------------------------------------------------------------------
    def decisions(self, logits) -> np.ndarray:
        return np.asarray(logits).argmax(-1)

    def decode(self, logits, top_k: int | None = None, words: list[list[tuple[str, int, int]]] | None = None,
               texts: list[str] | None = None) -> list[dict]:
        """Each row's entities (type, the words' text, character ``start`` / ``end`` in the input, score: the mean
        probability of the words' tags) and each word's tag. ``words``: (word, start, end) per word of each row,
        as the predictor split the input; without them, positions are word indices."""
        out = []
        for i, row in enumerate(np.asarray(logits)):
            row_words = words[i] if words is not None else [(str(j), j, j + 1) for j in range(len(row))]
            probabilities = softmax(np.asarray(row[:len(row_words)], dtype=np.float64))
            chosen = probabilities.argmax(-1)
            tags = [self.tags[t] for t in chosen]
            found = []
            for kind, first, last in entities(tags):
                start, end = row_words[first][1], row_words[last][2]
                text = texts[i][start:end] if texts is not None else " ".join(w for w, _, _ in row_words[first:last + 1])
                score = float(np.mean(probabilities[np.arange(first, last + 1), chosen[first:last + 1]]))
                found.append({"type": kind, "text": text, "start": int(start), "end": int(end),
                              "score": round(score, 4)})
            out.append({"entities": found,
                        "tokens": [{"text": w, "tag": t} for (w, _, _), t in zip(row_words, tags, strict=True)]})
        return out

    def result_schema(self) -> dict:
        entity = {"type": "object", "required": ["type", "text", "start", "end", "score"],
                  "properties": {"type": {"type": "string", "enum": self.types}, "text": {"type": "string"},
                                 "start": {"type": "integer", "minimum": 0}, "end": {"type": "integer", "minimum": 0},
                                 "score": {"type": "number", "minimum": 0, "maximum": 1}}}
        token = {"type": "object", "required": ["text", "tag"],
                 "properties": {"text": {"type": "string"}, "tag": {"type": "string", "enum": self.tags}}}
        return {"type": "object", "required": ["entities", "tokens"],
                "properties": {"entities": {"type": "array", "items": entity},
                               "tokens": {"type": "array", "items": token}}}

    def served_labels(self, result: dict) -> list[str]:
        return [e["type"] for e in result["entities"]]

    def counted_names(self) -> list[str]:
        return self.types

    def confidence(self, result: dict) -> float | None:
        scores = [e["score"] for e in result["entities"]]
        return min(scores) if scores else None

    def keep_top(self, result: dict, k: int) -> dict:
        return result  # every entity is the answer, not a ranking

    def detail_table(self, split_metrics: dict) -> tuple[list[str], list[list]]:
        rows = [[kind, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", v["support"]]
                for kind, v in split_metrics.get("per_type", {}).items()]
        return ["type", "precision", "recall", "F1", "entities"], rows

    def part_scores(self, split_metrics: dict) -> tuple[str, dict[str, float]]:
        return "entity type", {k: v["f1"] for k, v in split_metrics.get("per_type", {}).items()}

    def headline(self, result: dict) -> tuple[str, str]:
        found = result["entities"]
        shown = ", ".join(f"{e['type']} {e['text']!r}" for e in found) or "no entity"
        return f"{len(found)} entit{'y' if len(found) == 1 else 'ies'}", shown

    def describe_row(self, label) -> str:
        tags = [self.tags[t] for t in np.asarray(label) if t != IGNORE]
        found = entities(tags)
        return "; ".join(f"{kind} words {a + 1}-{b + 1}" for kind, a, b in found) or "no entity"

    def compare_row(self, label, logits, item: str | None = None) -> tuple[str, str]:
        """The true entities with their words, and what the model missed and added (spurious)."""
        label = np.asarray(label)
        keep = label != IGNORE
        truth = [self.tags[t] for t in label[keep]]
        guess = [self.tags[t] for t in np.asarray(logits)[keep].argmax(-1)]
        words = item.split(" ") if item and len(item.split(" ")) == len(truth) else [str(i + 1) for i in
                                                                                   range(len(truth))]

        def show(found) -> str:
            return ", ".join(f"{kind} {' '.join(words[a:b + 1])!r}" for kind, a, b in found)

        expected, got = set(entities(truth)), set(entities(guess))
        missed, spurious = sorted(expected - got, key=lambda e: e[1]), sorted(got - expected, key=lambda e: e[1])
        said = "; ".join(part for part in (f"missed {show(missed)}" if missed else "",
                                           f"spurious {show(spurious)}" if spurious else "") if part)
        return show(sorted(expected, key=lambda e: e[1])) or "no entity", said or "every entity right"

    def raw_cells(self, label) -> list[str]:
        return [" ".join(self.tags[t] for t in np.asarray(label) if t != IGNORE)]

    # --- baseline -----------------------------------------------------------------------------
    def baseline_model(self, c: float, class_weight: str | None):
        from .word_tagger import WordTagger

        return WordTagger(c=c, tags=len(self.tags))

    def baseline_logits(self, model, features) -> np.ndarray:
        return model.word_logits(features)

    # --- saved --------------------------------------------------------------------------------
    def state(self) -> dict:
        return {**super().state(), "tags": self.tags}

    def load_state(self, state: dict) -> None:
        tags = state["tags"]
        if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
            raise ValueError("tags: a list of tag names")
        self.tags = list(tags)
        self._index = {t: i for i, t in enumerate(self.tags)}

    def describe(self) -> str:
        return f"{self.title}: {', '.join(self.types)} ({len(self.tags)} tags)"
