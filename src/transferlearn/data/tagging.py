"""Tagged words as a run's splits: each row's ``text`` is its list of words, its ``label`` the tag of each word
(encoded by the token-tags label shape)."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..shapes import LabelShape
from .conll import TaggedSentences, hub_token_sentences, read_token_file, token_split_files
from .labels import resolve_labels
from .splits import LabelledData, finalise_splits, split_of_name

__all__ = ["hub_token_splits", "load_token_data", "token_split_files"]


def hub_token_splits(loaded, name: str, bio: str) -> dict[str, TaggedSentences] | None:
    """The train / validation / test splits of a loaded Hugging Face dataset with token and tag sequence columns;
    None when it has none (a table of texts)."""
    out = {}
    for split_name, dataset in loaded.items():
        split = split_of_name(split_name) or split_name
        if split not in ("train", "validation", "test"):
            continue
        sentences = hub_token_sentences(dataset, f"{name}[{split_name}]", bio)
        if sentences is None:
            return None
        out[split] = sentences
    return out or None


def load_token_data(source: dict, data: str, *, val_split: float, seed: int, max_train_samples: int | None,
                    sample_seed: int | None, max_eval_samples: int | None, on_bad_rows: str,
                    shape: LabelShape | None, problem: str, carve_validation: bool, bio: str) -> LabelledData:
    """``source``: split -> a token file's path, or sentences already read (a Hub dataset)."""
    sentences = {split: s if isinstance(s, TaggedSentences) else read_token_file(Path(s), bio)
                 for split, s in source.items()}
    if shape is not None and not shape.per_token:
        raise DataError(f"{data}: holds a tag per word, but this model predicts {shape.title}; score it on data of "
                        "its own kind")
    if shape is None and "train" not in sentences:
        raise DataError(f"{data}: no training split")
    notes = [f"{s.where}: {s.repaired} tag(s) I-X after O or another type read as B-X (--bio repair)"
             for s in sentences.values() if s.repaired]
    shape, encoded = resolve_labels({split: s.tags for split, s in sentences.items()}, shape,
                                    where={split: s.where for split, s in sentences.items()},
                                    on_bad_rows=on_bad_rows, notes=notes, columns=["tags"], problem=problem)
    return finalise_splits(
        {split: {"text": [sentences[split].tokens[i] for i in kept], "label": values}
         for split, (kept, values) in encoded.items()},
        shape, source=str(data), columns={"text": "tokens", "label": "tags"}, notes=notes, val_split=val_split,
        seed=seed, max_train_samples=max_train_samples, sample_seed=sample_seed, max_eval_samples=max_eval_samples,
        carve_validation=carve_validation,
    )
