"""The run folder — the contract every later stage (evaluate, predict, report, deploy) reads.

``runs/<name>/``: ``config.yaml``, ``data.json``, ``history.jsonl``, ``metrics.json``, ``model/``
(a Hugging Face folder with id2label), ``checkpoints/``, ``report.html``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from ..config import TrainConfig, load_config
from ..errors import ConfigError, TransferLearnError

RUN_MARKERS = ("config.yaml", "metrics.json", "model", "checkpoints")


def _slug(text: str) -> str:
    text = text.rstrip("/").split("/")[-1].split(":")[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:40] or "run"


def default_run_dir(config: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{_slug(config.model)}-{_slug(config.data)}-{stamp}"


def prepare_run_dir(run_dir: Path, *, overwrite: bool, resume: bool) -> None:
    """Never clobber an earlier run by accident: an existing run folder needs --overwrite or --resume."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--output {run_dir} is a file, not a folder")
    existing = [m for m in RUN_MARKERS if (run_dir / m).exists()]
    if existing and not (overwrite or resume):
        raise ConfigError(
            f"{run_dir} already holds a run ({', '.join(existing)}). Use --resume to continue it, "
            "--overwrite to replace it, or another --output."
        )
    if existing and overwrite and not resume:
        for marker in RUN_MARKERS + ("history.jsonl", "report.html", "data.json", "lr_find"):
            target = run_dir / marker
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)


class Run:
    """A finished (or evaluated) run folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / "config.yaml").exists():
            raise TransferLearnError(f"{self.path} is not a run folder (no config.yaml)")

    @classmethod
    def load(cls, path: str | Path) -> "Run":
        return cls(path)

    @cached_property
    def config(self) -> TrainConfig:
        return load_config(self.path / "config.yaml")

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def metrics(self) -> dict:
        path = self.path / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else {}

    @property
    def history(self) -> list[dict]:
        path = self.path / "history.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    @property
    def label_names(self) -> list[str]:
        return self.metrics.get("label_names") or json.loads((self.path / "data.json").read_text())["labels"]

    @property
    def modality(self):
        from ..modalities import modality_of

        return modality_of(self.metrics.get("modality", "text"))

    def __repr__(self) -> str:
        test = self.metrics.get("test", {})
        return f"Run({str(self.path)!r}, test_macro_f1={test.get('macro_f1')})"

    # ------------------------------------------------------------------ inference
    @cached_property
    def _predictor(self):
        return self.load_predictor()

    def load_predictor(self):
        """A freshly loaded (eval-mode model, processor) pair from ``model/`` (``tl bench`` times this)."""
        from transformers import AutoModelForSequenceClassification

        from ..models.heads import is_pooled_folder, load_pooled_classifier

        if not self.model_dir.exists():
            raise TransferLearnError(f"{self.path}: no model/ folder (did training finish?)")
        if self.modality.name == "image":
            from ..models.image import load_image_model_folder

            model, _ = load_image_model_folder(self.model_dir)
        elif self.modality.name == "audio":
            from ..models.audio import load_audio_model_folder

            model, _ = load_audio_model_folder(self.model_dir)
        elif is_pooled_folder(self.model_dir):
            model = load_pooled_classifier(self.model_dir)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(self.model_dir).eval()
        return model, self.load_processor()

    def load_processor(self):
        """The saved tokenizer / image processing / audio feature extractor, without the model."""
        if self.modality.name == "image":
            from ..data.augment import ImageSpec
            from ..models.image import ImageProcessing

            return ImageProcessing(ImageSpec.load(self.model_dir))
        if self.modality.name == "audio":
            from ..models.audio import AudioProcessing

            return AudioProcessing.load(self.model_dir)
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.model_dir)

    @cached_property
    def _onnx_predictor(self):
        """(onnxruntime session, processor, input names) for the variant ``tl bench`` chose (else fp32 ONNX)."""
        from ..deploy.bench import chosen_variant
        from ..deploy.export import FILES, FP32, deploy_dir, load_variants, session

        variant = chosen_variant(self)
        if variant is None:
            raise TransferLearnError(f"{self.path}: no ONNX model yet; run `tl export {self.path}` first")
        names = load_variants(self)[FP32]["inputs"]
        return session(deploy_dir(self) / FILES[variant]), self.load_processor(), names

    def predict_logits(self, inputs: list, batch_size: int = 32, onnx: bool = False) -> np.ndarray:
        if onnx:
            sess, processor, names = self._onnx_predictor
        else:
            model, processor = self._predictor
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(inputs), batch_size):
                batch = self.modality.read_inputs(processor, inputs[start : start + batch_size],
                                                  self.config.max_length)
                if onnx:
                    outputs.append(sess.run(["logits"], {n: batch[n].numpy() for n in names})[0])
                else:
                    outputs.append(model(**batch).logits.float().numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0, len(self.label_names)))

    def predict(self, inputs: list, top_k: int | None = None, onnx: bool = False) -> list[dict]:
        """Label and class probabilities for each input, most likely first (``onnx``: onnxruntime only)."""
        logits = self.predict_logits(inputs, onnx=onnx)
        probs = torch.softmax(torch.from_numpy(logits), dim=-1).numpy()
        names = self.label_names
        results = []
        for row in probs:
            order = np.argsort(-row)[: top_k or len(names)]
            results.append({"label": names[order[0]], "score": float(row[order[0]]),
                            "probabilities": {names[i]: float(row[i]) for i in order}})
        return results
