"""Text: tables or Hub datasets of strings; transformers sequence classifiers and their tokenizers."""

from __future__ import annotations

from pathlib import Path

from ..config import TrainConfig
from ..data.splits import LabelledData
from .base import Modality, label_request, register

# BERT-family encoders onnxruntime's transformer optimizer fuses (attention, skip-layer-norm, GELU)
FUSABLE_FAMILIES = ("bert", "roberta", "xlm-roberta", "distilbert", "electra")


# One model call costs about as much as this many padded tokens more. Measured on SmSA with e5-small, onnxruntime
# int8, 2 threads, groups of 32 random sentences as a server receives them: 0 -> 6.47 ms a sentence, 16 -> 5.76,
# 32 -> 5.59, 64 -> 5.67; one batch padded to its longest: 11.28; one sentence at a time: 7.56.
BATCH_OVERHEAD_TOKENS = 32


def length_partition(lengths: list[int], batch_size: int, max_tokens: int | None = None,
                     overhead: int = BATCH_OVERHEAD_TOKENS) -> list[tuple[int, int]]:
    """Cut ascending ``lengths`` into consecutive batches minimising the padded tokens computed plus ``overhead``
    per batch (dynamic programming, O(n x batch_size)). A batch of random sentences padded to its longest wastes
    more than batching saves (see BATCH_OVERHEAD_TOKENS: 11.28 ms a sentence against 7.56 one at a time)."""
    n = len(lengths)
    best = [0.0] + [float("inf")] * n  # best[j]: cheapest cost of the first j rows
    cut = [0] * (n + 1)
    for stop in range(1, n + 1):
        for start in range(max(0, stop - batch_size), stop):
            size, longest = stop - start, lengths[stop - 1]
            if max_tokens and size > 1 and size * longest > max_tokens:
                continue
            cost = best[start] + overhead + size * longest
            if cost < best[stop]:
                best[stop], cut[stop] = cost, start
    spans, stop = [], n
    while stop > 0:
        spans.append((cut[stop], stop))
        stop = cut[stop]
    return spans[::-1]


def holds_words(dataset) -> bool:
    """Rows whose ``text`` is a list of words (token tagging) rather than a string."""
    feature = (getattr(dataset, "features", None) or {}).get("text")
    return feature is not None and type(feature).__name__ in ("Sequence", "List", "LargeList")


PAIR_KEYS = ("text", "text_pair")


def split_pairs(items: list) -> tuple[list[str], list[str] | None]:
    """(first texts, second texts or None): inputs are plain texts, or every one a pair — a ``{"text": a,
    "text_pair": b}`` object or an ``(a, b)`` tuple. A pair with an empty side is refused, named."""
    from ..errors import DataError

    if not any(isinstance(i, (dict, tuple)) for i in items):
        return [str(i) for i in items], None
    first, second = [], []
    for n, item in enumerate(items, start=1):
        if isinstance(item, dict) and set(item) >= set(PAIR_KEYS):
            a, b = item["text"], item["text_pair"]
        elif isinstance(item, tuple) and len(item) == 2:
            a, b = item
        else:
            raise DataError(f"input {n}: a sentence-pair model takes pairs ({{\"text\": ..., \"text_pair\": ...}}); "
                            f"got {str(item)[:60]!r}")
        empty = next((name for name, v in zip(PAIR_KEYS, (a, b), strict=True) if not str(v or "").strip()), None)
        if empty is not None:
            raise DataError(f"input {n}: the pair's {empty} is empty; both sentences of a pair need words")
        first.append(str(a))
        second.append(str(b))
    return first, second


class TagCollator:
    """Pads windows and their tags (transformers' DataCollatorForTokenClassification); the window's sentence index
    stays out of the model's inputs."""

    def __init__(self, tokenizer):
        from transformers import DataCollatorForTokenClassification

        self.inner = DataCollatorForTokenClassification(tokenizer)

    def __call__(self, features):
        return self.inner([{k: v for k, v in f.items() if k != "sentence"} for f in features])


@register
class Text(Modality):
    name = "text"
    row_column = "text"
    finetune_lr = 5e-5  # auto's fine-tunes start from a probed head at this rate
    pipeline_tag = "text-classification"
    onnx_inputs = ("input_ids", "attention_mask", "token_type_ids")
    sequence_inputs = ("input_ids", "attention_mask", "token_type_ids")
    token_lengths = True
    file_inputs = False
    streams = True

    def load_data(self, config: TrainConfig, shape=None, data=None) -> LabelledData:
        from ..data.text import load_text_data

        if config.streaming and data is None and shape is None:  # training; scoring new data reads it whole
            from ..data.text_stream import load_streaming_text

            return load_streaming_text(config.data, config.text_column, config.label_column,
                                       val_split=config.val_split, seed=config.carve_seed,
                                       max_train_samples=config.max_train_samples,
                                       max_eval_samples=config.max_eval_samples, data_config=config.data_config)

        return load_text_data(
            data or config.data, config.text_column, val_split=config.val_split,
            seed=config.carve_seed, sample_seed=config.seed,
            max_train_samples=config.max_train_samples if data is None else None,
            max_eval_samples=config.max_eval_samples, on_bad_rows=config.on_bad_rows,
            data_config=config.data_config, carve_validation=data is None, bio=config.bio,
            **label_request(config, shape),
        )

    def load_model(self, config: TrainConfig, shape):
        from ..models.text import load_text_classifier

        return load_text_classifier(
            config.model, shape.output_names, from_scratch=config.from_scratch, head_dropout=config.head_dropout,
            backbone_dropout=config.backbone_dropout, trust_remote_code=config.trust_remote_code,
            pooling=config.pooling, head=config.head, head_hidden=config.head_hidden, per_token=shape.per_token,
        )

    def settings_from_model(self, config: TrainConfig, bundle) -> dict:
        """``max_length`` no longer than the model's position table (a longer one fails inside the model)."""
        tokenizer_limit = getattr(bundle.processor, "model_max_length", None) or 0
        model_config = getattr(bundle.model, "config", None)
        positions = getattr(model_config, "max_position_embeddings", None) or 0
        family = getattr(model_config, "model_type", "") or ""
        if positions and ("roberta" in family or family in ("camembert", "longformer")):
            positions -= 2  # their positions start after the padding index
        limits = [v for v in (tokenizer_limit, positions) if 0 < v < 100_000]
        limit = min(limits) if limits else None
        if limit is not None and config.max_length > limit:
            return {"max_length": (limit, f"--max-length {config.max_length} is longer than the model accepts "
                                          f"({limit} tokens): texts are cut at {limit}")}
        return {}

    def load_model_folder(self, folder: Path):
        from ..models.text import load_text_model_folder

        return load_text_model_folder(folder)

    def load_processor(self, folder: Path):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(folder)

    def encode(self, bundle, dataset, config: TrainConfig, train: bool = False):
        """Token ids (and the label). Sentence pairs are encoded as pairs (``[CLS] a [SEP] b``, the longer side cut
        first); tagged words as windows with each word's tag on its first sub-token (data/alignment.py)."""
        import datasets

        tokenizer = bundle.processor
        columns = dataset.column_names or []
        streamed = isinstance(dataset, datasets.IterableDataset)
        if holds_words(dataset):
            from ..data.alignment import align_windows

            def tokenize(batch):
                return align_windows(tokenizer, batch["text"], batch["label"], max_length=config.max_length,
                                     stride=config.stride, every_window=train)

            return dataset.map(tokenize, batched=True, remove_columns=columns, desc="tokenizing and aligning tags")
        pair = "text_pair" in columns

        def tokenize(batch):
            if pair:
                from ..data.alignment import tokenize_pairs

                return tokenize_pairs(tokenizer, batch["text"], batch["text_pair"], max_length=config.max_length)
            return tokenizer(batch["text"], truncation=True, max_length=config.max_length)

        raw = ["text", "text_pair"] if pair else ["text"]
        if streamed:  # tokenized batch by batch as rows arrive
            return dataset.map(tokenize, batched=True, remove_columns=raw)
        return dataset.map(tokenize, batched=True, remove_columns=raw, desc="tokenizing")

    def collator(self, bundle, config: TrainConfig):
        if bundle.info.get("per_token"):
            return TagCollator(bundle.processor)
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(bundle.processor)

    def read_inputs(self, processor, items: list, max_length: int = 512) -> dict:
        """Texts, sentence pairs (``{"text": a, "text_pair": b}`` or ``(a, b)``), or lists of words (a token
        tagger's windows come from :meth:`word_batches`; here a list is cut at ``max_length``)."""
        items = list(items)
        if items and all(isinstance(i, list) for i in items):
            from ..data.alignment import words_tokenizer

            splitter, lead = words_tokenizer(processor)
            return splitter([lead + i for i in items], is_split_into_words=True, truncation=True,
                            max_length=max_length, padding=True, return_tensors="pt")
        first, second = split_pairs(items)
        if second is not None:
            from ..data.alignment import tokenize_pairs

            return tokenize_pairs(processor, first, second, max_length=max_length, padding=True, return_tensors="pt")
        return processor(first, truncation=True, max_length=max_length, padding=True, return_tensors="pt")

    def read_labelled(self, processor, items: list, labels, max_length: int, stride: int = 32):
        """Lists of words: every window of each sentence, each word's tag on its first sub-token in the window that
        scores it (the rest -100); a long sentence's windows score as sentences of their own here. Other rows as
        they are."""
        items = list(items)
        if not (items and isinstance(items[0], list)):
            return self.read_inputs(processor, items, max_length), labels
        import numpy as np

        from ..data.alignment import align_windows

        tags = [[int(t) for t in row if t != -100] for row in labels]
        aligned = align_windows(processor, items, tags, max_length=max_length, stride=stride, every_window=False)
        windows, _ = aligned.pop("labels"), aligned.pop("sentence")
        batch = processor.pad(aligned, return_tensors="pt")
        out = np.full(tuple(batch["input_ids"].shape), -100, dtype=np.int64)
        for row, window in enumerate(windows):
            out[row, :len(window)] = window
        return batch, out

    def batches(self, processor, items: list, max_length: int, batch_size: int, max_tokens: int | None = None):
        # tokenized once, sorted by length, then cut where padding would cost more than another call
        from ..data.alignment import tokenize_pairs

        first, second = split_pairs(list(items))
        encoded = (processor(first, truncation=True, max_length=max_length) if second is None
                   else tokenize_pairs(processor, first, second, max_length=max_length))
        lengths = [len(ids) for ids in encoded["input_ids"]]
        order = sorted(range(len(items)), key=lengths.__getitem__)
        for start, stop in length_partition([lengths[i] for i in order], batch_size, max_tokens):
            chunk = order[start:stop]
            yield chunk, processor.pad({k: [encoded[k][j] for j in chunk] for k in encoded}, return_tensors="pt")

    def word_batches(self, processor, words: list[list[str]], max_length: int, stride: int, batch_size: int):
        """A token tagger's input: ``(window rows, model batch)`` over every sentence's windows (each word scored
        once, in its most central window), and each window's sentence and scored positions."""
        from ..data.alignment import align_windows

        aligned = align_windows(processor, words, None, max_length=max_length, stride=stride, every_window=False)
        labels, sentence = aligned.pop("labels"), aligned.pop("sentence")
        for start in range(0, len(sentence), batch_size):
            rows = range(start, min(start + batch_size, len(sentence)))
            batch = processor.pad({k: [v[r] for r in rows] for k, v in aligned.items()}, return_tensors="pt")
            width = batch["input_ids"].shape[1]
            yield ([sentence[r] for r in rows], [labels[r] + [-100] * (width - len(labels[r])) for r in rows],
                   batch)

    def example_input(self):
        return "A short sentence to warm up on."

    def check_inputs(self, items: list) -> list[str]:
        """An empty text (or either side of a pair) is refused, named (a model asked about no words still answers a
        label); a path to a file is warned about (its own text would be classified)."""
        from pathlib import Path

        from ..errors import DataError

        split_pairs(items)  # a malformed or half-empty pair is one error line
        blank = [i for i, item in enumerate(items) if not self.row_value(item).strip()]
        if blank:
            rest = f" (and {len(blank) - 1} more)" if len(blank) > 1 else ""
            raise DataError(f"input {blank[0] + 1}{rest} is empty or only spaces: there are no words to classify. "
                            "Give the text itself (tl predict RUN \"a sentence\", or --file with one text per line).")

        def is_file(item) -> bool:
            try:
                return len(str(item)) < 4096 and "\n" not in str(item) and Path(str(item)).is_file()
            except (OSError, ValueError):
                return False

        files = [str(item) for item in items if is_file(item)]
        if not files:
            return []
        return [f"{files[0]!r}{f' (and {len(files) - 1} more)' if len(files) > 1 else ''} is a file path, but this is "
                "a text model: it is classified as the text of the path itself. To classify the lines of a file, use "
                "--file."]

    def preprocessing(self, bundle, config: TrainConfig) -> dict:
        # the token ids themselves are in the data fingerprint; this names the settings that produced them
        return {"modality": "text", "tokenizer": type(bundle.processor).__name__, "max_length": config.max_length}

    def lengths(self, items: list) -> list[int]:
        return [len(self.row_value(t)) for t in items]

    def row_inputs(self, dataset) -> list:
        """Texts, word lists, or a sentence pair's two sides as ``(a, b)``."""
        rows = dataset.with_format(None)
        if "text_pair" in rows.column_names:
            return list(zip(rows["text"], rows["text_pair"], strict=True))
        return list(rows["text"])

    def row_value(self, item) -> str:
        """A row as one line of text: a sentence, a pair joined by a tab, words joined by spaces."""
        if isinstance(item, list):
            return " ".join(map(str, item))
        first, second = split_pairs([item])
        return first[0] if second is None else f"{first[0]}\t{second[0]}"

    def encoded_lengths(self, dataset) -> list[int] | None:
        if "input_ids" not in getattr(dataset, "column_names", ()):  # cached features, or a stream
            return None
        return [len(ids) for ids in dataset.with_format(None)["input_ids"]]

    def fusable_family(self, model) -> bool:
        return getattr(getattr(model, "config", None), "model_type", "") in FUSABLE_FAMILIES

    def dynamic_int8_ops(self) -> list[str]:
        # word embeddings (Gather) stay fp32: int8 embeddings cost e5-small 2.3 pt of SmSA macro-F1 for no speed
        return ["MatMul", "Gemm", "Attention"]

    def describe_input(self, item) -> str:
        return repr(self.row_value(item)[:80])

    def inline_html(self, item) -> str:
        import html

        text = self.row_value(item)
        return html.escape(text[:300] + ("…" if len(text) > 300 else ""))

    def baseline(self):
        from ..data.baseline_features import PairOrText

        return "TF-IDF (words, 1-2 grams)", PairOrText()  # a pair: both sides, shared and differing words
