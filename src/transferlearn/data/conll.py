"""A tag per word: CoNLL-style files (``token<TAB>tag``, optional middle columns, a blank line between sentences,
``-DOCSTART-`` skipped), JSONL rows ``{"tokens": [...], "tags": [...]}``, a folder of ``train.*`` / ``valid.*`` /
``test.*`` of either, or a Hugging Face dataset with a token and a tag sequence column.

A sentence is a list of words and a list of tags of the same length. Bad input stops with one line naming the file
and line: a word without a tag, tokens and tags of unequal length, and (``--bio error``) an ``I-X`` that continues
no ``X`` entity; with ``--bio repair`` (the default) that tag starts an entity, as conlleval reads it, and the count
goes to the data notes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from ..shapes.token_tags import repair_bio
from .splits import split_of_name
from .tables import read_text_strict

CONLL_SUFFIXES = (".conll", ".conllu", ".txt", ".iob", ".bio", ".tsv", ".tab")
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
TOKEN_KEYS = ("tokens", "words", "token")
TAG_KEYS = ("tags", "ner_tags", "labels", "ner", "pos_tags", "tag")
TAG_LIKE = re.compile(r"^(O|[BIES]-.+|[A-Z][A-Z0-9$_.:-]*)$")  # BIO tags, or POS-style upper-case tags


@dataclass
class TaggedSentences:
    where: str
    tokens: list[list[str]] = field(default_factory=list)
    tags: list[list[str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # 1-based line where each sentence starts
    repaired: int = 0


def _conll_lines(path: Path, sample: int | None = None) -> list[str]:
    text = read_text_strict(path)
    lines = text.splitlines()
    return lines[:sample] if sample else lines


def looks_like_conll(path: Path) -> bool:
    """Most non-blank lines of the first few hundred are ``word<whitespace>tag`` with a tag-like last field, and
    blank lines separate sentences (or the file is one sentence)."""
    if path.suffix.lower() not in CONLL_SUFFIXES or not path.is_file():
        return False
    try:
        lines = _conll_lines(path, 400)
    except DataError:
        return False
    filled = [line for line in lines if line.strip() and not line.startswith("-DOCSTART-")]
    if not filled:
        return False
    fields = [line.split("\t") if "\t" in line else line.split() for line in filled]
    tagged = sum(1 for f in fields if 2 <= len(f) <= 12 and TAG_LIKE.match(f[-1].strip()))
    return tagged >= 0.9 * len(fields) and any(" " not in f[0].strip() for f in fields)


def looks_like_token_jsonl(path: Path) -> bool:
    if path.suffix.lower() not in JSON_SUFFIXES or not path.is_file():
        return False
    try:
        first = next((line for line in read_text_strict(path).splitlines() if line.strip()), "")
        row = json.loads(first)
    except (ValueError, DataError):
        return False
    return isinstance(row, dict) and any(isinstance(row.get(k), list) for k in TOKEN_KEYS) and \
        any(isinstance(row.get(k), list) for k in TAG_KEYS)


def is_token_file(path: Path) -> bool:
    return looks_like_conll(path) or looks_like_token_jsonl(path)


def token_split_files(data: str) -> dict[str, Path] | None:
    """The split files of tagged words at ``data`` (a file: the training split), or None when it holds none."""
    path = Path(data).expanduser()
    if path.is_file():
        return {"train": path} if is_token_file(path) else None
    if not path.is_dir():
        return None
    found: dict[str, Path] = {}
    for candidate in sorted(p for p in path.iterdir() if p.is_file()):
        split = split_of_name(candidate.stem)
        if split is None or not is_token_file(candidate):
            continue
        if split in found:
            raise DataError(f"{path}: two files for the {split} split: {found[split].name} and {candidate.name}")
        found[split] = candidate
    if found and "train" not in found:
        raise DataError(f"{path}: token files for {', '.join(found)} but no training file (train.conll, train.txt, "
                        "train.jsonl ...)")
    return found or None


def _check_bio(tags: list[str], where: str, lines: list[int], bio: str) -> tuple[list[str], int]:
    repaired, changed = repair_bio(tags)
    if changed and bio == "error":
        i = changed[0]
        before = tags[i - 1] if i else "the sentence start"
        raise DataError(f"{where}, line {lines[i]}: tag {tags[i]!r} continues no entity of its type (after {before!r}); "
                        "fix the tag, or pass --bio repair to read it as the start of one (as conlleval does)")
    return repaired, len(changed)


def read_conll(path: Path, bio: str = "repair") -> TaggedSentences:
    """Sentences of a CoNLL-style file: the first field is the word, the last the tag."""
    out = TaggedSentences(str(path))
    words: list[str] = []
    tags: list[str] = []
    numbers: list[int] = []

    def close():
        if words:
            fixed, count = _check_bio(tags, str(path), numbers, bio)
            out.tokens.append(list(words))
            out.tags.append(fixed)
            out.lines.append(numbers[0])
            out.repaired += count
        words.clear()
        tags.clear()
        numbers.clear()

    for number, line in enumerate(_conll_lines(path), start=1):
        stripped = line.strip()
        if not stripped:
            close()
            continue
        if stripped.startswith("-DOCSTART-"):
            close()
            continue
        parts = [p.strip() for p in line.split("\t")] if "\t" in line else stripped.split()
        parts = [p for p in parts if p != ""] if "\t" not in line else parts
        if len(parts) < 2 or not parts[-1]:
            raise DataError(f"{path}, line {number}: {parts[0][:40]!r} has no tag; each line is token<TAB>tag (a blank line "
                            "ends a sentence)")
        if not parts[0]:
            raise DataError(f"{path}, line {number}: an empty token before the tag {parts[-1]!r}")
        words.append(parts[0])
        tags.append(parts[-1])
        numbers.append(number)
    close()
    return out


def _sequence(row: dict, keys: tuple[str, ...]):
    return next(((k, row[k]) for k in keys if isinstance(row.get(k), list)), (None, None))


def read_token_jsonl(path: Path, bio: str = "repair") -> TaggedSentences:
    out = TaggedSentences(str(path))
    text = read_text_strict(path)
    stripped = text.lstrip()
    if stripped.startswith("["):  # one JSON array of rows
        try:
            rows = [(i + 1, r) for i, r in enumerate(json.loads(stripped))]
        except ValueError as exc:
            raise DataError(f"{path}: not valid JSON ({exc})") from None
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except ValueError as exc:
                    raise DataError(f"{path}, line {number}: not valid JSON ({exc})") from None
    for number, row in rows:
        if not isinstance(row, dict):
            raise DataError(f"{path}, line {number}: expected an object with tokens and tags")
        token_key, tokens = _sequence(row, TOKEN_KEYS)
        tag_key, tags = _sequence(row, TAG_KEYS)
        if tokens is None or tag_key is None:
            raise DataError(f"{path}, line {number}: no token list ({' / '.join(TOKEN_KEYS)}) or tag list "
                            f"({' / '.join(TAG_KEYS)})")
        if len(tokens) != len(tags):
            raise DataError(f"{path}, line {number}: {len(tokens)} tokens but {len(tags)} tags in '{tag_key}'; each token "
                            "needs exactly one tag")
        if not tokens:
            continue
        blank = next((i for i, t in enumerate(tokens) if not str(t).strip()), None)
        if blank is not None:
            raise DataError(f"{path}, line {number}: token {blank + 1} is empty")
        fixed, count = _check_bio([str(t) for t in tags], str(path), [number] * len(tags), bio)
        out.tokens.append([str(t) for t in tokens])
        out.tags.append(fixed)
        out.lines.append(number)
        out.repaired += count
    return out


def read_token_file(path: Path, bio: str = "repair") -> TaggedSentences:
    reader = read_token_jsonl if path.suffix.lower() in JSON_SUFFIXES else read_conll
    sentences = reader(path, bio)
    if not sentences.tokens:
        raise DataError(f"{path}: no sentences (token<TAB>tag lines, or JSONL rows with tokens and tags)")
    return sentences


def hub_token_sentences(dataset, where: str, bio: str = "repair") -> TaggedSentences | None:
    """A Hugging Face split with a token sequence column and a tag sequence column (ClassLabel ids become names);
    None when it has no such pair."""
    features = dataset.features
    token_key = next((k for k in TOKEN_KEYS if k in features), None)
    tag_key = next((k for k in TAG_KEYS if k in features), None)
    if token_key is None or tag_key is None:
        return None
    feature = features[tag_key]
    inner = getattr(feature, "feature", None)
    names = inner.names if inner is not None and hasattr(inner, "names") else None
    out = TaggedSentences(where)
    for i, row in enumerate(dataset):
        tokens, tags = list(row[token_key]), list(row[tag_key])
        if len(tokens) != len(tags):
            raise DataError(f"{where}: row {i + 1}: {len(tokens)} tokens but {len(tags)} tags")
        if not tokens:
            continue
        tags = [names[t] if names is not None else str(t) for t in tags]
        fixed, count = _check_bio(tags, where, [i + 1] * len(tags), bio)
        out.tokens.append([str(t) for t in tokens])
        out.tags.append(fixed)
        out.lines.append(i + 1)
        out.repaired += count
    return out
