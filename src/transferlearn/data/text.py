"""Text classification data: files, folders of split files, or Hugging Face datasets."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import DataError
from ..shapes import LabelShape
from .labels import label_columns, raw_label, resolve_labels
from .splits import LabelledData, finalise_splits
from .tables import TABLE_SUFFIXES, Table, read_table

log = logging.getLogger(__name__)

TEXT_COLUMN_NAMES = ("text", "sentence", "review", "content", "document", "utterance", "tweet", "comment",
                     "body", "sentence1", "question", "input")
LABEL_COLUMN_NAMES = ("label", "labels", "class", "category", "sentiment", "target", "intent", "y", "tag", "tags",
                     "score")


def has_split_tables(folder: Path, suffixes=tuple(TABLE_SUFFIXES)) -> bool:
    """The folder holds a ``train.*`` (or ``valid.*`` / ``test.*``) table: lists of files and labels, which win over
    sub-folders (a list's pictures or clips often sit in one)."""
    from .splits import split_of_name

    return any(p.is_file() and p.suffix.lower() in suffixes and split_of_name(p.stem) for p in folder.iterdir())


def find_split_files(folder: Path, suffixes=tuple(TABLE_SUFFIXES)) -> dict[str, Path]:
    """``train.*`` / ``valid.*`` / ``test.*`` (also ``train_preprocess.tsv``, ``dev.csv``...) in a folder."""
    from .splits import split_of_name

    found: dict[str, Path] = {}
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    for path in candidates:
        split = split_of_name(path.stem)
        if split is None:
            continue
        if split in found:
            raise DataError(f"{folder}: two files for the {split} split: {found[split].name} and {path.name}")
        found[split] = path
    if not found:
        if len(candidates) == 1:
            return {"train": candidates[0]}
        names = ", ".join(p.name for p in candidates) or "none"
        raise DataError(
            f"{folder}: no train.* / valid.* / test.* files found (table files present: {names}). "
            "Name the files by split or pass one file with --data."
        )
    if "train" not in found:
        raise DataError(f"{folder}: no training file (train.csv, train.tsv, train.jsonl, train_*.tsv ...)")
    return found


def local_split_files(data: str) -> dict[str, Path] | None:
    """``--data`` as split files: a folder's train/valid/test files, or one file as the training split; None for a
    Hugging Face dataset id. A path-like name that does not exist is an error, not a Hub id."""
    path = Path(data).expanduser()
    if path.is_dir():
        return find_split_files(path)
    if path.is_file():
        return {"train": path}
    if path.suffix.lower() in TABLE_SUFFIXES or data.startswith((".", "/", "~")):
        raise DataError(f"{data}: file or folder not found")
    return None


def detect_column(columns: list[str], sample: list[dict], where: str, wanted: str | None, names: tuple[str, ...],
                  role: str, exclude: set[str]) -> str:
    """The text or label column: the asked one; else a conventional name; else, from a sample of rows, the column
    with the longest values (text) or the fewest distinct ones, ignoring constants (label). One rule for whole files
    and streams."""
    if wanted is not None:
        if wanted not in columns:
            raise DataError(f"{where}: no column '{wanted}' for the {role} (columns: {', '.join(columns)})")
        return wanted
    lowered = {c.lower(): c for c in columns if c not in exclude}
    for name in names:
        if name in lowered:
            return lowered[name]
    candidates = [c for c in columns if c not in exclude]
    if not candidates:
        raise DataError(f"{where}: cannot find a {role} column (columns: {', '.join(columns)}); name it with "
                        f"--{role}-column")
    if role == "text":
        return max(candidates, key=lambda c: sum(len(str(r.get(c) or "")) for r in sample))
    distinct = {c: len({str(r.get(c)) for r in sample}) for c in candidates}
    varying = [c for c in candidates if distinct[c] >= 2] or candidates
    return min(varying, key=lambda c: distinct[c])


COLUMN_SAMPLE_ROWS = 2000


PAIR_COLUMN_NAMES = (("sentence1", "sentence2"), ("sent_a", "sent_b"), ("sentence_a", "sentence_b"),
                     ("text_a", "text_b"), ("premise", "hypothesis"), ("question1", "question2"),
                     ("text", "text_pair"), ("query", "passage"))


def text_columns(columns: list[str], sample: list[dict], where: str, wanted: str | None) -> list[str]:
    """The text column, or the two columns of a sentence pair: ``--text-column a,b``, else a conventional pair of
    names (sentence1/sentence2, sent_A/sent_B, premise/hypothesis ...), else one detected column."""
    if wanted is not None and "," in wanted:
        names = [c.strip() for c in wanted.split(",")]
        if len(names) != 2 or not all(names) or names[0] == names[1]:
            raise DataError(f"--text-column {wanted!r}: one column, or two different ones for sentence pairs (a,b)")
        return [detect_column(columns, sample, where, c, TEXT_COLUMN_NAMES, "text", set()) for c in names]
    if wanted is None:
        lowered = {c.lower(): c for c in columns}
        pair = next((p for p in PAIR_COLUMN_NAMES if all(n in lowered for n in p)), None)
        if pair is not None:
            return [lowered[n] for n in pair]
    return [detect_column(columns, sample, where, wanted, TEXT_COLUMN_NAMES, "text", set())]


def _extract(table: Table, text_cols: list[str], label_cols: list[str], on_bad_rows: str
             ) -> tuple[list[list[str]], list, list[str]]:
    """(the texts of each text column, the raw labels, the problems of the rows left out)."""
    texts: list[list[str]] = [[] for _ in text_cols]
    labels, problems = [], []
    for i, row in enumerate(table.rows):
        missing = next((c for c in (*text_cols, *label_cols) if c not in row), None)
        if missing is not None:
            problem = f"{table.where(i)}: missing field '{missing}'"
        else:
            cells = ["" if row[c] is None else str(row[c]) for c in text_cols]
            label = raw_label(row, label_cols)
            empty = next((c for c, cell in zip(text_cols, cells, strict=True) if not cell.strip()), None)
            if empty is not None:
                side = " (one side of a sentence pair)" if len(text_cols) > 1 else ""
                problem = f"{table.where(i)}: empty text in column '{empty}'{side}"
            elif label == "":
                problem = f"{table.where(i)}: empty label in column '{label_cols[0]}'"
            else:
                for column, cell in zip(texts, cells, strict=True):
                    column.append(cell)
                labels.append(label)
                continue
        if on_bad_rows == "error":
            raise DataError(problem + " (use --on-bad-rows skip to drop such rows)")
        problems.append(problem)
    return texts, labels, problems


def load_hub_dataset(name: str, config_name: str | None):
    """A Hugging Face dataset (needs the network unless it is cached)."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a core dependency
        raise DataError("the 'datasets' package is needed for Hub datasets") from exc
    try:
        return datasets.load_dataset(name, config_name)
    except Exception as exc:
        raise DataError(
            f"'{name}' is neither an existing file/folder nor a loadable Hugging Face dataset: {exc}"
        ) from None


def _tables_from_hub(name: str, loaded) -> dict[str, Table]:
    """A loaded Hugging Face dataset's train / validation / test splits as Tables."""
    tables = {}
    from .splits import split_of_name

    for split_name, ds in loaded.items():
        split = split_of_name(split_name) or split_name
        if split not in ("train", "validation", "test"):
            continue
        rows = ds.to_list()
        features = ds.features
        for col, feature in features.items():  # ClassLabel ints -> names
            if feature.__class__.__name__ == "ClassLabel":
                for row in rows:
                    if row[col] is not None and row[col] >= 0:
                        row[col] = feature.int2str(row[col])
        tables[split] = Table(Path(f"{name}[{split_name}]"), list(features), rows, list(range(1, len(rows) + 1)))
    if "train" not in tables:
        raise DataError(f"{name}: the dataset has no train split (splits: {', '.join(loaded)})")
    return tables


def load_text_data(
    data: str,
    text_column: str | None = None,
    label_column: str | None = None,
    *,
    val_split: float = 0.1,
    seed: int = 42,
    max_train_samples: int | None = None,
    sample_seed: int | None = None,
    max_eval_samples: int | None = None,
    on_bad_rows: str = "error",
    data_config: str | None = None,
    shape: LabelShape | None = None,
    problem: str = "auto",
    regression_loss: str = "mse",
    carve_validation: bool = True,
    bio: str = "repair",
) -> LabelledData:
    """Load labelled text. ``label_column`` may name several columns (``a,b,c``); ``shape`` fixes the label shape
    (evaluating a trained run on new data)."""
    from .tagging import hub_token_splits, load_token_data, token_split_files

    request = dict(val_split=val_split, seed=seed, max_train_samples=max_train_samples, sample_seed=sample_seed,
                   max_eval_samples=max_eval_samples, on_bad_rows=on_bad_rows, shape=shape, problem=problem,
                   carve_validation=carve_validation, bio=bio)
    token_files = token_split_files(data)
    if token_files is not None:
        return load_token_data(token_files, data, **request)
    files = local_split_files(data)
    hub = load_hub_dataset(data, data_config) if files is None else None
    if hub is not None and (tagged := hub_token_splits(hub, data, bio)) is not None:
        return load_token_data(tagged, data, **request)
    tables = ({split: read_table(p) for split, p in files.items()} if files is not None
              else _tables_from_hub(data, hub))

    if "train" not in tables and shape is None:
        raise DataError(f"{data}: no training split (files: {', '.join(str(t.path) for t in tables.values())})")
    train = tables.get("train") or next(iter(tables.values()))  # scoring a trained run: any split names the columns
    sample, where = train.rows[:COLUMN_SAMPLE_ROWS], str(train.path)
    text_cols = text_columns(train.columns, sample, where, text_column)
    wanted = label_columns(label_column) or (shape.columns if shape is not None and len(shape.columns) > 1 else None)
    if wanted is not None and len(wanted) > 1:
        label_cols = [detect_column(train.columns, sample, where, c, LABEL_COLUMN_NAMES, "label", set(text_cols))
                      for c in wanted]
    else:
        label_cols = [detect_column(train.columns, sample, where, wanted[0] if wanted else None, LABEL_COLUMN_NAMES,
                                    "label", set(text_cols))]
    same = next((c for c in text_cols if c in label_cols), None)
    if same is not None:
        raise DataError(f"{train.path}: text and label column are the same ('{same}')")
    notes = [n for t in tables.values() for n in t.notes]

    raw: dict[str, tuple[list[list[str]], list]] = {}
    for split, table in tables.items():
        for col in (*text_cols, *label_cols):
            if col not in table.columns:
                raise DataError(f"{table.path}: no column '{col}' (columns: {', '.join(table.columns)})")
        texts, labels, problems = _extract(table, text_cols, label_cols, on_bad_rows)
        if problems:
            notes.append(f"{table.path}: skipped {len(problems)} bad rows, first: {problems[0]}")
        raw[split] = (texts, labels)
    if shape is None and not raw.get("train", ((), ()))[1]:
        raise DataError(f"{train.path}: no data rows (only a header?); the training file needs labelled rows")

    shape, encoded = resolve_labels({split: labels for split, (_, labels) in raw.items()}, shape,
                                    where={split: f"{t.path}: column{'s' if len(label_cols) > 1 else ''} "
                                           f"{', '.join(repr(c) for c in label_cols)}" for split, t in tables.items()},
                                    on_bad_rows=on_bad_rows, notes=notes, columns=label_cols, problem=problem,
                                    regression_loss=regression_loss)
    inputs = ("text", "text_pair")[:len(text_cols)]  # a sentence pair's second side is its own column
    columns = {**dict(zip(inputs, text_cols, strict=True)), "label": ",".join(label_cols)}
    return finalise_splits(
        {split: {**{name: [raw[split][0][j][i] for i in kept] for j, name in enumerate(inputs)}, "label": values}
         for split, (kept, values) in encoded.items()},
        shape,
        source=str(data),
        columns=columns,
        notes=notes,
        val_split=val_split,
        seed=seed,
        max_train_samples=max_train_samples, sample_seed=sample_seed,
        max_eval_samples=max_eval_samples,
        carve_validation=carve_validation,
    )
