"""One predictor for every consumer (``tl predict``, ``tl evaluate``, ``tl bench``, the server): raw inputs ->
logits -> labels with probabilities, on a PyTorch or an onnxruntime backend of the same run."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import torch

from ..errors import ConfigError, DataError, TransferLearnError
from ..run import Run
from .variants import FP32, TORCH_DYNAMIC, chosen_variant, onnx_session

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
    import copy

    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8).eval()


class Predictor:
    """``Predictor(run)`` (PyTorch from ``model/``) or ``Predictor(run, "onnx")`` (the variant ``tl bench`` chose,
    else fp32 ONNX). ``variant`` names one explicitly."""

    def __init__(self, run: Run, backend: Backend = "torch", variant: str | None = None, threads: int | None = None):
        self.run, self.modality, self.label_names = run, run.modality, run.label_names
        if backend not in ("torch", "onnx"):
            raise ConfigError(f"unknown backend '{backend}' (torch | onnx)")
        if not run.model_dir.exists():
            raise TransferLearnError(f"{run.path}: no model/ folder (did training finish?)")
        self.processor = self.modality.load_processor(run.model_dir)
        if backend == "torch":
            self.model = self.modality.load_model_folder(run.model_dir)
            self.variant = "torch-fp32"
            if variant == TORCH_DYNAMIC:
                self.model, self.variant = torch_dynamic_int8(self.model), TORCH_DYNAMIC
            self.backend = TorchBackend(self.model)
        else:
            self.variant = variant or chosen_variant(run)
            if self.variant is None:
                raise TransferLearnError(f"{run.path}: no ONNX model yet; run `tl export {run.path}` first")
            names = run.variants.get(FP32, {}).get("inputs")
            if not names:
                raise TransferLearnError(f"{run.path}: deploy/variants.json does not list the ONNX inputs; "
                                         f"re-run `tl export {run.path}`")
            self.backend = OnnxBackend(onnx_session(run.layout.onnx_file(self.variant), threads), names)

    def encode(self, items: list) -> dict:
        try:
            return self.modality.read_inputs(self.processor, list(items), self.run.config.max_length)
        except (OSError, ValueError, SyntaxError) as exc:  # a corrupt image, an unreadable clip (Pillow, soundfile)
            raise DataError(f"cannot read an input as {self.modality.name}: {exc}") from None

    def logits(self, items: list, batch_size: int = 32) -> np.ndarray:
        items = list(items)
        for warning in self.modality.check_inputs(items):
            log.warning(warning)
        outputs = [self.backend(self.encode(items[start : start + batch_size]))
                   for start in range(0, len(items), batch_size)]
        return np.concatenate(outputs) if outputs else np.zeros((0, len(self.label_names)), dtype=np.float32)

    def predict(self, items: list, top_k: int | None = None, batch_size: int = 32) -> list[dict]:
        """Label and class probabilities for each input, most likely first."""
        if top_k is not None and top_k < 1:
            raise ConfigError(f"--top-k must be at least 1 (got {top_k})")
        return self.label(self.logits(items, batch_size), top_k)

    def label(self, logits: np.ndarray, top_k: int | None = None) -> list[dict]:
        probs = torch.softmax(torch.from_numpy(np.asarray(logits, dtype=np.float32)), dim=-1).numpy()
        names = self.label_names
        results = []
        for row in probs:
            order = np.argsort(-row)[: top_k or len(names)]
            results.append({"label": names[order[0]], "score": float(row[order[0]]),
                            "probabilities": {names[i]: float(row[i]) for i in order}})
        return results
