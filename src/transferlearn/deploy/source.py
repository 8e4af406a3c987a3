"""What a predictor loads from: a run folder, or a folder written by ``tl package``. One object answers the same
questions for both (modality, labels, the model folder, the ONNX variants and which one to use), so the predictor
and the server never ask which kind of folder they were given."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..errors import TransferLearnError
from ..layout import ONNX_FILES
from ..modalities import Modality, modality_of
from ..run import Run
from ..shapes import LabelShape, load_shape
from .variants import FP32, chosen_variant

PACKAGE_INFO = "transferlearn.json"  # written by `tl package` beside the weights
INPUTS_FILE = "inputs.json"  # in model/: the data columns the model reads (a second text column: sentence pairs)


@dataclass
class ModelSource:
    path: Path
    modality: Modality
    label_names: list[str]
    model_dir: Path
    max_length: int
    model: str
    stride: int = 32  # token tagging: the overlap of a long sentence's windows  # the base model it was trained from
    onnx: dict[str, Path] = field(default_factory=dict)  # variant -> file
    onnx_inputs: list[str] | None = None
    chosen: str | None = None  # the variant `tl bench` chose (else fp32 ONNX), None without ONNX
    metrics: dict = field(default_factory=dict)  # test / validation scores, for /metadata
    run: Run | None = None

    @classmethod
    def open(cls, folder: str | Path) -> "ModelSource":
        """A run folder or a package folder, told apart by what they hold."""
        folder = Path(folder)
        if (folder / PACKAGE_INFO).is_file():
            return cls.from_package(folder)
        return cls.from_run(Run.load(folder))

    @classmethod
    def from_run(cls, run: Run) -> "ModelSource":
        onnx = {name: run.layout.onnx_file(name) for name in run.variants
                if name in ONNX_FILES and run.layout.onnx_file(name).exists()}
        metrics = {split: {k: run.metrics[split][k] for k in run.shape.shown_metrics if k in run.metrics[split]}
                   for split in ("validation", "test") if split in run.metrics}
        return cls(path=run.path, modality=run.modality, label_names=run.label_names, model_dir=run.model_dir,
                   max_length=run.config.max_length, stride=run.config.stride, onnx=onnx,
                   model=Path(run.config.model).name if Path(run.config.model).exists() else run.config.model,
                   onnx_inputs=run.variants.get(FP32, {}).get("inputs"), chosen=chosen_variant(run), metrics=metrics,
                   run=run)

    @classmethod
    def from_package(cls, folder: Path) -> "ModelSource":
        try:
            info = json.loads((folder / PACKAGE_INFO).read_text(encoding="utf-8"))
            modality = modality_of(info["modality"])
        except (OSError, ValueError, KeyError) as exc:
            raise TransferLearnError(f"{folder / PACKAGE_INFO}: unreadable ({exc}); write the package again with "
                                     "`tl package`") from None
        onnx_file, variant = folder / "onnx" / "model.onnx", info.get("onnx_variant")
        return cls(path=folder, modality=modality, label_names=list(info["label_names"]), model_dir=folder,
                   max_length=int(info.get("max_length") or 512), stride=int(info.get("stride", 32)),
                   model=info.get("model", ""),
                   onnx={variant: onnx_file} if variant and onnx_file.exists() else {},
                   onnx_inputs=info.get("onnx_inputs"), chosen=variant if onnx_file.exists() else None,
                   metrics=info.get("metrics", {}))

    @cached_property
    def shape(self) -> LabelShape:
        """What the model's outputs mean (model/label_shape.json; older folders: one class a row)."""
        return load_shape(self.model_dir, self.label_names)

    @cached_property
    def pair(self) -> bool:
        """The model reads sentence pairs (model/inputs.json names a second text column)."""
        path = self.model_dir / INPUTS_FILE
        try:
            return bool(json.loads(path.read_text(encoding="utf-8")).get("text_pair")) if path.is_file() else False
        except (OSError, ValueError, AttributeError) as exc:
            raise TransferLearnError(f"{path}: unreadable ({exc}); re-train the run or restore the file") from None

    def package_info(self) -> dict:
        """What ``tl package`` writes as transferlearn.json for this source."""
        return {"modality": self.modality.name, "label_names": self.label_names, "max_length": self.max_length,
                "stride": self.stride,
                "model": self.model, "onnx_variant": self.chosen, "onnx_inputs": self.onnx_inputs,
                "metrics": self.metrics}
