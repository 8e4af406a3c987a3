"""Text too large to hold: the training split as a ``datasets.IterableDataset`` read row by row (``--set
streaming=true``), from a local CSV / TSV / JSONL file or a Hugging Face dataset id (``load_dataset(...,
streaming=True)``).

One pass over the training rows before training counts them and their labels: it gives the label set, the
class counts in data.json and the row count the Trainer's ``max_steps`` comes from (an iterable dataset has no
length). Its memory is one row plus the counts. The same pass keeps the validation rows when there is no
validation split: rows are picked by a seeded hash of their position, so the choice is unbiased, whatever the
file's order, and repeatable. Validation and test are small and held in memory, as always. Training rows then
arrive through a shuffle buffer of ``SHUFFLE_BUFFER`` rows, reshuffled each epoch.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections import Counter
from pathlib import Path

import datasets
import numpy as np

from ..errors import DataError
from ..shapes import SingleLabel, detect_shape
from .splits import LabelledData, label_order, split_of_name
from .tables import TableStream
from .text import COLUMN_SAMPLE_ROWS, LABEL_COLUMN_NAMES, TEXT_COLUMN_NAMES, detect_column, local_split_files

log = logging.getLogger(__name__)

SHUFFLE_BUFFER = 10_000
MAX_CARVED_VALIDATION = 5_000  # a carved validation split is held in memory: at most this many rows


def _held_out(position: int, seed: int, share: float) -> bool:
    digest = hashlib.blake2b(f"{seed}:{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < share


class _Source:
    """Fresh iterators of (text, label name) over one split, local file or Hub stream."""

    def __init__(self, data: str, split: str, text_column: str | None, label_column: str | None,
                 data_config: str | None, path: Path | None):
        self.data, self.split, self.path = data, split, path
        if path is not None:
            self.table = TableStream(path)
            columns, self.notes, self.where = self.table.columns, self.table.notes, str(path)
        else:
            import datasets

            try:
                self.hub = datasets.load_dataset(data, data_config, split=split, streaming=True)
            except Exception as exc:
                raise DataError(f"'{data}': not a file, folder or streamable Hugging Face dataset: {exc}") from None
            features = self.hub.features or {}
            columns, self.notes, self.where = list(features), [], f"{data}[{split}]"
            self.class_names = {c: f.names for c, f in features.items() if f.__class__.__name__ == "ClassLabel"}
        sample = [] if text_column and label_column else list(itertools.islice(self._sample_rows(),
                                                                               COLUMN_SAMPLE_ROWS))
        self.text_column = detect_column(columns, sample, self.where, text_column, TEXT_COLUMN_NAMES, "text", set())
        self.label_column = detect_column(columns, sample, self.where, label_column, LABEL_COLUMN_NAMES, "label",
                                          {self.text_column})

    def _sample_rows(self):
        return (row for _, row in self.table) if self.path is not None else iter(self.hub)

    def rows(self):
        """(position, where, text, label) for every row; a row with an empty text or label raises, naming it."""
        if self.path is not None:
            items = ((line, row) for line, row in self.table)
        else:
            items = enumerate(self.hub, start=1)
        for position, (line, row) in enumerate(items):
            text, label = row.get(self.text_column), row.get(self.label_column)
            if self.path is None and self.label_column in self.class_names and isinstance(label, int) and label >= 0:
                label = self.class_names[self.label_column][label]
            text, label = "" if text is None else str(text), "" if label is None else str(label).strip()
            if not text.strip() or not label:
                what = "text" if not text.strip() else "label"
                raise DataError(f"{self.where}, {'line' if self.path else 'row'} {line}: empty {what}; streaming "
                                "reads rows as they come, so clean the file first (or train without streaming, which "
                                "can --on-bad-rows skip)")
            yield position, text, label


def load_streaming_text(data: str, text_column: str | None = None, label_column: str | None = None, *,
                        val_split: float = 0.1, seed: int = 42, max_train_samples: int | None = None,
                        max_eval_samples: int | None = None, data_config: str | None = None) -> LabelledData:

    files = local_split_files(data)
    hub_splits = None
    if files is None:
        try:
            hub_splits = list(datasets.get_dataset_split_names(data, data_config))
        except Exception as exc:
            raise DataError(f"'{data}': not a file, folder or loadable Hugging Face dataset: {exc}") from None
        names = {split_of_name(s) or s: s for s in hub_splits}
        if "train" not in names:
            raise DataError(f"{data}: the dataset has no train split (splits: {', '.join(hub_splits)})")
    sources = {}
    for split in ("train", "validation", "test"):
        if files is not None and split in files:
            sources[split] = _Source(data, split, text_column, label_column, data_config, files[split])
        elif files is None and split in names:
            sources[split] = _Source(data, names[split], text_column, label_column, data_config, None)
    train = sources["train"]
    carve = "validation" not in sources
    counts, held, rows = Counter(), {"text": [], "label": []}, 0
    carved_until = 1 << 62  # rows held out for validation lie before this position (all of them, unless it filled)
    for position, text, label in train.rows():  # the one counting pass
        if carve and len(held["text"]) < MAX_CARVED_VALIDATION and _held_out(position, seed, val_split):
            held["text"].append(text)
            held["label"].append(label)
            if len(held["text"]) == MAX_CARVED_VALIDATION:
                carved_until = position + 1
            continue
        counts[label] += 1
        rows += 1
        if max_train_samples and rows >= max_train_samples:
            break
    if len(counts) < 2:
        raise DataError(f"{train.where}: column '{train.label_column}' has {len(counts)} label(s); need at least 2")
    shape_class, why = detect_shape(list(counts), [train.label_column], train.where)
    if shape_class is not SingleLabel:
        raise DataError(f"{train.where}: {why}; streaming trains one class per row only. Drop --set streaming=true to "
                        f"train {shape_class.name}.")
    label_names = label_order(list(counts))
    shape = SingleLabel.with_classes([train.label_column], label_names)
    index = {name: i for i, name in enumerate(label_names)}
    notes = list(train.notes)

    evaluation = {}
    for split, source in sources.items():
        if split == "train":
            continue
        texts, labels = [], []
        for _, text, label in source.rows():
            if label not in index:
                raise DataError(f"{source.where}: label {label!r} never occurs in the training rows "
                                f"({', '.join(label_names)})")
            texts.append(text)
            labels.append(index[label])
            if max_eval_samples and len(texts) >= max_eval_samples:
                break
        evaluation[split] = {"text": texts, "label": labels}
    if carve:
        evaluation["validation"] = {"text": held["text"], "label": [index[x] for x in held["label"]]}
        notes.append(f"no validation split: held out {len(held['text'])} training rows (a seeded hash of each row's "
                     f"position, share {val_split:g}, seed {seed})")
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=label_names)})
    splits = {name: datasets.Dataset.from_dict(cols, features=features) for name, cols in evaluation.items()}

    def generate(seed: int, carve: bool, share: float, limit: int | None):
        taken = 0
        for position, text, label in train.rows():
            if carve and position < carved_until and _held_out(position, seed, share):
                continue
            yield {"text": text, "label": index[label]}
            taken += 1
            if limit and taken >= limit:
                return

    stream = datasets.IterableDataset.from_generator(
        generate, features=features,
        gen_kwargs={"seed": seed, "carve": carve, "share": val_split, "limit": max_train_samples})
    splits["train"] = stream.shuffle(seed=seed, buffer_size=SHUFFLE_BUFFER)
    for note in notes:
        log.info(note)
    stream_counts = {"train": np.array([counts[name] for name in label_names], dtype=np.int64)}
    return LabelledData(splits=splits, shape=shape, source=str(data),
                        columns={"text": train.text_column, "label": train.label_column}, notes=notes,
                        stream_counts=stream_counts)

