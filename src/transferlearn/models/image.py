"""Image classifiers: timm models (by name, ``timm/...`` Hub id, folder, or the offline zoo) and
transformers vision models (``AutoModelForImageClassification``), both behind the backbone contract.

A timm model is wrapped in :class:`TimmClassifier` so the HF Trainer can drive it (``pixel_values`` +
``labels`` in, loss + logits out). Its run folder is what timm loads by itself: ``config.json``
(architecture, classes, ``label_names``, ``pretrained_cfg``) and ``model.safetensors`` with timm's own keys:
``timm.create_model("local-dir:runs/x/model", pretrained=True)``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import timm
import torch
from safetensors.torch import save_file
from timm.data import resolve_data_config
from torch import nn
from transformers import AutoImageProcessor, AutoModelForImageClassification, PretrainedConfig
from transformers.modeling_outputs import ImageClassifierOutput

from ..data.augment import ImageSpec, eval_transform, open_image
from ..errors import DataError, ModelError
from . import small_cnn  # noqa: F401  (registers the from-scratch baseline as a timm model)
from .batchnorm_fold import fold_frozen_batchnorm
from .bundle import ModelBundle, hf_config_and_processor, hf_weights, resolve_model
from .contract import param_groups
from .features import FeatureSplit

log = logging.getLogger(__name__)

HEAD_FILE = "transferlearn.json"


def keras_head(in_features: int, num_labels: int, dropout: float) -> nn.Sequential:
    """The Keras transfer-learning recipe on a frozen base: Dense(128, relu) -> Dropout -> Dense(n)."""
    return nn.Sequential(nn.Linear(in_features, 128), nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, num_labels))


class TimmClassifier(nn.Module):
    base_model_prefix = "model"  # the backbone contract finds the timm model here

    def __init__(self, model: nn.Module, label_names: list[str], architecture: str, head: str = "linear",
                 dropout: float = 0.0):
        super().__init__()
        self.model = model
        self.architecture = architecture
        self.head_kind = head
        id2label = dict(enumerate(label_names))
        self.config = PretrainedConfig(id2label=id2label, label2id={v: k for k, v in id2label.items()})
        self.head = keras_head(model.num_features, len(label_names), dropout) if head == "keras" else None
        self.dropout = dropout

    def classifier_name(self) -> str:
        return self.model.pretrained_cfg.get("classifier", "classifier")

    def forward(self, pixel_values, labels=None):
        logits = self.model(pixel_values)
        if self.head is not None:
            logits = self.head(logits)  # the timm model was built without classifier: it returns pooled features
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)

    def feature_split(self) -> FeatureSplit:
        if self.head is not None:
            return FeatureSplit(lambda batch: self.model(batch["pixel_values"]), self.head, "timm-pooled")

        def features(batch):
            return self.model.forward_head(self.model.forward_features(batch["pixel_values"]), pre_logits=True)

        head = nn.Sequential(nn.Dropout(self.dropout), self.model.get_classifier())
        return FeatureSplit(features, head, "timm-pre-logits")

    def save_pretrained(self, folder: str | Path) -> None:

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.model.pretrained_cfg.items()
               if k in ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std", "first_conv",
                        "classifier", "pool_size")}
        labels = [self.config.id2label[i] for i in range(len(self.config.id2label))]
        config = {"architecture": self.architecture, "num_classes": len(labels), "label_names": labels,
                  "pretrained_cfg": {**cfg, "num_classes": len(labels)}}
        state = self.model.state_dict()
        if self.head is not None:  # not loadable by plain timm: transferlearn rebuilds the Keras head
            config["num_classes"] = 0
            state = {**{f"model.{k}": v for k, v in state.items()}, **{f"head.{k}": v for k, v in self.head.state_dict().items()}}
            (folder / HEAD_FILE).write_text(json.dumps({"architecture": "TimmClassifier", "head": "keras",
                                                         "dropout": self.dropout, "label_names": labels}, indent=2))
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))


def is_timm_folder(folder: Path) -> bool:
    config = folder / "config.json"
    return config.exists() and "architecture" in json.loads(config.read_text())


def is_timm_name(name: str) -> bool:

    return name.startswith(("timm/", "hf-hub:timm/")) or (not Path(name).exists() and bool(timm.list_models(name)))


def is_convolutional(model: nn.Module) -> bool:
    """A CNN (its compute is convolutions), not a ViT (whose one convolution is the patch embedding).
    channels_last pays off for the former: an EfficientNet-Lite0 training step at 224 px, batch 16, took 1.19 s
    contiguous and 0.78 s channels_last on a quiet 2-core CPU, 3.9-9.2 s against 0.85-2.0 s on a loaded one
    (benchmarks/train_throughput.py measures it)."""
    return sum(isinstance(m, nn.Conv2d) for m in model.modules()) >= 3


def _timm_model(source: str, label_names: list[str], *, from_scratch: bool, head: str, head_dropout: float,
                backbone_dropout: float | None) -> TimmClassifier:

    folder = Path(source)
    kwargs = {"num_classes": 0 if head == "keras" else len(label_names), "drop_rate": head_dropout}
    if backbone_dropout is not None:
        kwargs["drop_path_rate"] = backbone_dropout  # timm's in-backbone regulariser: stochastic depth
    if folder.is_dir():
        config = json.loads((folder / "config.json").read_text())
        architecture = config["architecture"]
        # num_classes as saved: a run folder's trained classifier loads; the zoo's 1000-class one is dropped
        overlay = {**config.get("pretrained_cfg", {}), "file": str(folder / "model.safetensors"),
                   "num_classes": config.get("num_classes", 1000)}
        try:
            model = timm.create_model(architecture, pretrained=not from_scratch, pretrained_cfg_overlay=overlay, **kwargs)
        except RuntimeError as exc:
            raise ModelError(f"{source}: the weights do not fit {architecture}: {exc}") from None
    else:
        architecture = source.split("/", 1)[1].split(".")[0] if source.startswith("timm/") else source
        name = f"hf-hub:{source}" if source.startswith("timm/") else source
        try:
            model = timm.create_model(name, pretrained=not from_scratch, **kwargs)
        except Exception as exc:  # noqa: BLE001 — offline, unknown name: one clear message
            raise ModelError(f"cannot load timm model '{source}': {exc}\nOffline? Use offline:efficientnet-lite0 "
                             "(`tl models`) or a local timm folder.") from None
    wrapped = TimmClassifier(model, label_names, architecture, head=head, dropout=head_dropout)
    if is_convolutional(model):
        wrapped.to(memory_format=torch.channels_last)  # NHWC: oneDNN's fast convolution layout on CPU (see below)
        fold_frozen_batchnorm(model)  # a frozen (eval-mode) BatchNorm costs no pass of its own
    if head == "linear" and not (folder.is_dir() and json.loads((folder / "config.json").read_text()).get(
            "label_names") == list(label_names)):
        # A new classifier: small weights, zero bias (as BiT and timm's ViT heads). timm's EfficientNet init
        # draws U(+-1/sqrt(num_classes)), which for 2 classes gives initial losses ~4 that a probe's few
        # steps at 1e-3 cannot undo.
        classifier = model.get_classifier()
        if isinstance(classifier, nn.Linear):
            nn.init.normal_(classifier.weight, std=0.01)
            nn.init.zeros_(classifier.bias)
    return wrapped


def _spec_from_timm(model: nn.Module, image_size: int | None) -> ImageSpec:

    cfg = resolve_data_config({}, model=model)
    return ImageSpec(size=image_size or cfg["input_size"][-1], mean=list(cfg["mean"]), std=list(cfg["std"]),
                     crop_pct=cfg.get("crop_pct", 0.875), interpolation=cfg.get("interpolation", "bicubic"))


def _spec_from_processor(processor, image_size: int | None) -> ImageSpec:
    size = processor.size if isinstance(processor.size, dict) else {"shortest_edge": processor.size}
    native = size.get("shortest_edge") or size.get("height") or 224
    crop = getattr(processor, "crop_size", None)
    crop_px = (crop.get("height") if isinstance(crop, dict) else crop) if getattr(processor, "do_center_crop", False) else None
    return ImageSpec(size=image_size or crop_px or native, mean=list(processor.image_mean), std=list(processor.image_std),
                     crop_pct=(crop_px / native) if crop_px else 1.0,
                     interpolation="bicubic" if int(getattr(processor, "resample", 2) or 2) == 3 else "bilinear")


class ImageProcessing:
    """The bundle's processor for images: the spec (always saved) and, for HF models, their own image
    processor (saved too, so ``transformers.pipeline("image-classification")`` loads the run's model)."""

    def __init__(self, spec: ImageSpec, hf_processor=None):
        self.spec, self.hf_processor = spec, hf_processor

    def save_pretrained(self, folder: str | Path) -> None:
        self.spec.save_pretrained(folder)
        if self.hf_processor is not None:
            self.hf_processor.save_pretrained(folder)
        config_file = Path(folder) / "config.json"
        config = json.loads(config_file.read_text()) if config_file.exists() else {}
        if "pretrained_cfg" in config:  # timm folder: its own data config matches what the model trained on
            spec = self.spec
            config["pretrained_cfg"].update({"input_size": [3, spec.size, spec.size], "mean": spec.mean,
                                             "std": spec.std, "crop_pct": spec.crop_pct,
                                             "interpolation": spec.interpolation})
            config_file.write_text(json.dumps(config, indent=2))


def load_image_classifier(name: str, label_names: list[str], *, from_scratch: bool = False, head: str = "linear",
                          head_dropout: float = 0.1, backbone_dropout: float | None = None,
                          image_size: int | None = None, trust_remote_code: bool = False) -> ModelBundle:
    source = resolve_model(name) if not is_timm_name(name) else name
    if head not in ("linear", "keras"):
        raise ModelError(f"head '{head}' is not available for images (use linear or keras)")
    if is_timm_name(source) or (Path(source).is_dir() and is_timm_folder(Path(source))):
        model = _timm_model(source, label_names, from_scratch=from_scratch, head=head, head_dropout=head_dropout,
                            backbone_dropout=backbone_dropout)
        processing = ImageProcessing(_spec_from_timm(model.model, image_size))
        head_names = () if head == "keras" else (f"model.{model.classifier_name()}.",)
        groups = param_groups(model, head_names=head_names)
        new = set(groups.head)
    else:
        model, processing, new = _hf_vision(source, name, label_names, from_scratch=from_scratch,
                                            head_dropout=head_dropout, backbone_dropout=backbone_dropout,
                                            image_size=image_size, trust_remote_code=trust_remote_code)
        if head == "keras":
            raise ModelError("--head keras is for timm backbones; transformers vision models keep their own head")
        groups = param_groups(model, new_parameters=new)
    info = {"from_scratch": from_scratch, "newly_initialised": sorted(new),
            "parameters": sum(p.numel() for p in model.parameters()), "image_size": processing.spec.size}
    return ModelBundle(model, processing, groups, source, name, "image", info)


def _hf_vision(source, name, label_names, *, from_scratch, head_dropout, backbone_dropout, image_size,
               trust_remote_code):

    config, processor = hf_config_and_processor(source, name, label_names, AutoImageProcessor,
                                                trust_remote_code=trust_remote_code,
                                                backbone_dropout=backbone_dropout, what="image model")
    if hasattr(config, "classifier_dropout"):
        config.classifier_dropout = head_dropout
    model, new = hf_weights(AutoModelForImageClassification, source, name, config, from_scratch=from_scratch,
                            trust_remote_code=trust_remote_code, resize_head=True, what="image model")
    return model, ImageProcessing(_spec_from_processor(processor, image_size), processor), new


def load_image_model_folder(folder: str | Path) -> tuple[nn.Module, ImageSpec]:
    """A run's ``model/`` folder (timm, timm + Keras head, or transformers) for prediction."""
    folder = Path(folder)
    spec = ImageSpec.load(folder)
    if (folder / HEAD_FILE).exists():
        from safetensors.torch import load_file

        meta = json.loads((folder / HEAD_FILE).read_text())
        config = json.loads((folder / "config.json").read_text())
        import timm

        backbone = timm.create_model(config["architecture"], pretrained=False, num_classes=0)
        model = TimmClassifier(backbone, meta["label_names"], config["architecture"], head="keras",
                               dropout=meta["dropout"])
        model.load_state_dict(load_file(folder / "model.safetensors"))
        return model.eval(), spec
    if is_timm_folder(folder):
        config = json.loads((folder / "config.json").read_text())
        model = _timm_model(str(folder), config["label_names"], from_scratch=False, head="linear", head_dropout=0.0,
                            backbone_dropout=None)
        return model.eval(), spec

    return AutoModelForImageClassification.from_pretrained(folder).eval(), spec


@torch.no_grad()
def image_batch(spec: ImageSpec, images: list) -> dict:

    transform = eval_transform(spec)
    tensors = []
    for image in images:
        try:
            tensors.append(transform(open_image(image)))
        except (OSError, ValueError) as exc:
            name = image if isinstance(image, (str, Path)) else "an input image"
            raise DataError(f"{name}: cannot read this image ({exc})") from None
    return {"pixel_values": torch.stack(tensors)}
