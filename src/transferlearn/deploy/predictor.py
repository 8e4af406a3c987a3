"""One predictor for every consumer (``tl predict``, ``tl evaluate``, ``tl bench``, the server): raw inputs ->
logits -> labels with probabilities, on a PyTorch or an onnxruntime backend of the same run."""

from __future__ import annotations

import contextlib
import copy
import logging
from typing import Literal

import numpy as np
import torch

from ..data.alignment import word_spans
from ..errors import ConfigError, DataError, TransferLearnError
from ..metrics import load_temperature
from ..shapes.token_tags import IGNORE
from .source import ModelSource
from .variants import TORCH_DYNAMIC, onnx_session

Backend = Literal["torch", "onnx"]
log = logging.getLogger(__name__)


class TorchBackend:
    def __init__(self, model: torch.nn.Module, names: list[str] | None = None):
        self.model, self.names = model.eval(), names

    @torch.inference_mode()
    def __call__(self, batch: dict) -> np.ndarray:
        inputs = {n: batch[n] for n in (self.names or batch) if n in batch}
        return self.model(**inputs).logits.float().numpy()


class OnnxBackend:
    def __init__(self, session, names: list[str]):
        self.session, self.names = session, names

    def __call__(self, batch: dict) -> np.ndarray:
        feeds = {n: batch[n].numpy() if hasattr(batch[n], "numpy") else batch[n] for n in self.names}
        return self.session.run(["logits"], feeds)[0]


def torch_dynamic_int8(model: torch.nn.Module) -> torch.nn.Module:

    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8).eval()


class Predictor:
    """``Predictor(run)`` (PyTorch from ``model/``) or ``Predictor(run, "onnx")`` (the variant ``tl bench`` chose,
    else fp32 ONNX). ``variant`` names one explicitly. ``source`` is a :class:`~transferlearn.run.Run` or a
    :class:`~transferlearn.deploy.source.ModelSource` (a run or a ``tl package`` folder)."""

    def __init__(self, source, backend: Backend = "torch", variant: str | None = None, threads: int | None = None):

        source = source if isinstance(source, ModelSource) else ModelSource.from_run(source)
        self.source, self.run = source, source.run
        self.modality, self.label_names = source.modality, source.label_names
        if backend not in ("torch", "onnx"):
            raise ConfigError(f"unknown backend '{backend}' (torch | onnx)")
        if not source.model_dir.exists():
            raise TransferLearnError(f"{source.path}: no model/ folder (did training finish?)")
        self.processor = self.modality.load_processor(source.model_dir)
        self.shape = source.shape  # what the outputs mean, and how they read
        self.temperature = load_temperature(source.model_dir)  # --calibrate: every backend's logits are divided by it
        if backend == "torch":
            self.model = self.modality.load_model_folder(source.model_dir)
            self.variant = "torch-fp32"
            if variant == TORCH_DYNAMIC:
                self.model, self.variant = torch_dynamic_int8(self.model), TORCH_DYNAMIC
            self.backend = TorchBackend(self.model)
        else:
            self.variant = variant or source.chosen
            if self.variant is None:
                raise TransferLearnError(f"{source.path}: no ONNX model yet; run `tl export {source.path}` first")
            if self.variant not in source.onnx:
                raise TransferLearnError(f"{source.path}: no ONNX variant '{self.variant}' (have: "
                                         f"{', '.join(source.onnx) or 'none'})")
            if not source.onnx_inputs:
                raise TransferLearnError(f"{source.path}: the ONNX inputs are not recorded; re-run "
                                         f"`tl export {source.path}`")
            self.backend = OnnxBackend(onnx_session(source.onnx[self.variant], threads), source.onnx_inputs)

    @contextlib.contextmanager
    def _decoding(self):
        try:
            yield
        except (OSError, ValueError, SyntaxError) as exc:  # a corrupt image, an unreadable clip (Pillow, soundfile)
            raise DataError(f"cannot read an input as {self.modality.name}: {exc}") from None

    def encode(self, items: list) -> dict:
        with self._decoding():
            return self.modality.read_inputs(self.processor, list(items), self.source.max_length)

    def inputs(self, items: list) -> list:
        """Inputs as the model reads them: a sentence-pair model takes pairs (``{"text": a, "text_pair": b}``,
        ``(a, b)``, or one line holding both sides separated by a tab); any other model refuses a pair."""
        items = list(items)
        if not self.source.pair:
            bad = next((n for n, item in enumerate(items, start=1)
                        if isinstance(item, tuple) or (isinstance(item, dict) and "text_pair" in item)), None)
            if bad is not None:
                raise DataError(f"input {bad}: a pair of texts, but this model reads one text per input")
            return items
        out = []
        for n, item in enumerate(items, start=1):
            if isinstance(item, str):
                if "\t" not in item:
                    raise DataError(f"input {n}: this model reads sentence pairs; give both sentences separated by a "
                                    "tab (or {\"text\": ..., \"text_pair\": ...} to the server)")
                item = tuple(item.split("\t", 1))
            out.append(item)
        return out

    def logits(self, items: list, batch_size: int = 32, max_tokens: int | None = None) -> np.ndarray:
        """Logits in the order of ``items``. The modality forms the batches: text groups similar lengths (padding a
        short sentence to a long one's length is wasted compute), up to ``max_tokens`` padded tokens a batch."""
        items = self.inputs(items)
        for warning in self.modality.check_inputs(items):
            log.warning(warning)
        if self.shape.per_token:
            return self.word_logits(self.words(items), batch_size)
        out = np.zeros((len(items), len(self.label_names)), dtype=np.float32)
        batches = self.modality.batches(self.processor, items, self.source.max_length, batch_size, max_tokens)
        while True:
            with self._decoding():  # the inputs' reading only: a model error is not the input's fault
                step = next(batches, None)
            if step is None:
                return out
            indices, batch = step
            out[indices] = self.backend(batch) if self.temperature is None else self.backend(batch) / self.temperature

    def predict(self, items: list, top_k: int | None = None, batch_size: int = 32,
                max_tokens: int | None = None) -> list[dict]:
        """Each input's prediction in its label shape's form: a label with class probabilities (most likely first),
        tags over their thresholds with scores, a label per column, or numbers (docs/label-shapes.md)."""
        if top_k is not None and top_k < 1:
            raise ConfigError(f"--top-k must be at least 1 (got {top_k})")
        if self.shape.per_token:  # entities with the character offsets of the words they span
            items = list(items)
            words = self.words(items)
            texts = [self.modality.row_value(item) for item in items]
            return self.shape.decode(self.word_logits(words, batch_size), top_k, words=words, texts=texts)
        return self.label(self.logits(items, batch_size, max_tokens), top_k)

    def words(self, items: list) -> list[list[tuple[str, int, int]]]:
        """(word, start, end) of each word of each input: a raw text split as CoNLL corpora split it (words and
        punctuation marks, data/alignment.py), or a list of words (offsets in the words joined by spaces)."""
        out = []
        for n, item in enumerate(items, start=1):
            if isinstance(item, list):
                spans, at = [], 0
                for word in map(str, item):
                    spans.append((word, at, at + len(word)))
                    at += len(word) + 1
            else:
                spans = word_spans(str(item))
            if not spans:
                raise DataError(f"input {n}: no words to tag")
            out.append(spans)
        return out

    def word_logits(self, words: list[list[tuple[str, int, int]]], batch_size: int = 32) -> np.ndarray:
        """A token tagger's word-level logits ``[inputs, words, tags]`` (zeros past an input's last word): every
        sentence's windows through the backend, each word read once from its most central window."""
        rows, labels, groups = [], [], []
        batches = self.modality.word_batches(self.processor, [[w for w, _, _ in ws] for ws in words],
                                             self.source.max_length, self.source.stride, batch_size)
        for sentences, positions, batch in batches:
            out = self.backend(batch)
            rows.extend(out if self.temperature is None else out / self.temperature)
            labels.extend(positions)
            groups.extend(sentences)
        width = max(len(r) for r in rows)
        logits = np.zeros((len(rows), width, len(self.label_names)), dtype=np.float32)
        marks = np.full((len(rows), width), IGNORE, dtype=np.int64)
        for i, (row, mark) in enumerate(zip(rows, labels, strict=True)):
            logits[i, :len(row)], marks[i, :len(mark)] = row, mark
        gathered, scored = self.shape.gather(logits, marks, groups)
        short = next((i for i, ws in enumerate(words) if int((scored[i] != IGNORE).sum()) != len(ws)), None)
        if short is not None:
            raise DataError(f"input {short + 1}: the tokenizer gives some of its words no token (characters it does "
                            "not know); remove them")
        return gathered

    def label(self, logits: np.ndarray, top_k: int | None = None) -> list[dict]:
        return self.shape.decode(np.asarray(logits, dtype=np.float32), top_k)
