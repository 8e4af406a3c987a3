"""ONNX export and int8 quantization of a run's model, each checked against PyTorch on real samples.

Variants live in ``RUN/deploy/``: ``model.onnx`` (fp32), ``model.int8-dynamic.onnx``,
``model.int8-static.onnx``, and ``variants.json`` describing each (torch's dynamic int8 is recorded there as
a recipe and rebuilt at load time: a quantized torch module would have to be pickled to be stored).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import TransferLearnError
from ..io import atomic_write_json
from ..train.run import Run

log = logging.getLogger(__name__)

FP32, DYNAMIC, STATIC, TORCH_DYNAMIC = "onnx-fp32", "onnx-int8-dynamic", "onnx-int8-static", "torch-int8-dynamic"
FILES = {FP32: "model.onnx", DYNAMIC: "model.int8-dynamic.onnx", STATIC: "model.int8-static.onnx"}
INPUT_NAMES = {"text": ("input_ids", "attention_mask", "token_type_ids"), "image": ("pixel_values",),
               "audio": ("input_values", "attention_mask", "input_features")}
ROW_KEY = {"text": "text", "image": "image", "audio": "audio"}


class DeployError(TransferLearnError):
    """An export or quantization that cannot be done, or whose result does not match the model."""


def deploy_dir(run: Run) -> Path:
    return run.path / "deploy"


def load_variants(run: Run) -> dict:
    path = deploy_dir(run) / "variants.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _record(run: Run, name: str, info: dict) -> None:
    variants = load_variants(run)
    variants[name] = info
    atomic_write_json(deploy_dir(run) / "variants.json", variants)


class _Logits(nn.Module):
    """Positional inputs in a fixed order -> logits (what the ONNX graph computes)."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs):
        return self.model(**dict(zip(self.names, inputs))).logits


def sample_inputs(run: Run, n: int, split: str = "test") -> tuple[dict, np.ndarray]:
    """``n`` real rows of the run's data through its preprocessing: (batch of tensors, labels)."""
    data = run.modality.load_data(run.config)
    splits = data.splits
    rows = splits.get(split) or splits.get("validation") or splits["train"]
    rows = rows.select(range(min(n, len(rows))))
    return encode_rows(run, rows), np.asarray(rows["label"])


def encode_rows(run: Run, rows) -> dict:
    _, processor = run._predictor
    return run.modality.read_inputs(processor, list(rows[ROW_KEY[run.modality.name]]), run.config.max_length)


def input_names(run: Run, batch: dict) -> list[str]:
    model, _ = run._predictor
    import inspect

    accepted = set(inspect.signature(model.forward).parameters)
    return [n for n in INPUT_NAMES[run.modality.name] if n in batch and n in accepted]


def export_onnx(run: Run, *, opset: int = 17, dynamic_axes: bool = True, samples: int = 32,
                atol: float = 1e-3) -> dict:
    """Export fp32 ONNX (legacy TorchScript exporter: fast, dynamic axes) and validate with onnxruntime."""
    model, _ = run._predictor
    batch, labels = sample_inputs(run, samples)
    names = input_names(run, batch)
    wrapper = _Logits(model, names).eval()  # eval: the exporter keeps the wrapper's training flag
    axes = {}
    if dynamic_axes:
        for name in names:  # token and raw-waveform inputs have a variable length; images and mel frames do not
            axes[name] = {0: "batch", 1: "sequence"} if name in ("input_ids", "attention_mask", "token_type_ids",
                                                                  "input_values") else {0: "batch"}
        axes["logits"] = {0: "batch"}
    out = deploy_dir(run)
    out.mkdir(parents=True, exist_ok=True)
    path = out / FILES[FP32]
    tmp = path.with_suffix(".onnx.tmp")
    start = time.time()
    with torch.no_grad():
        torch.onnx.export(wrapper, tuple(batch[n] for n in names), str(tmp), input_names=names,
                          output_names=["logits"], dynamic_axes=axes or None, opset_version=opset, dynamo=False)
    tmp.replace(path)
    check = compare(run, path, batch, names)
    if check["max_abs_diff"] > atol or check["argmax_agreement"] < 1.0:
        raise DeployError(f"{path}: onnxruntime differs from PyTorch on {len(labels)} real samples (max abs diff "
                          f"{check['max_abs_diff']:.2e} > {atol:g}, argmax agreement {check['argmax_agreement']:.3f})")
    info = {"file": path.name, "method": "torch.onnx.export", "opset": opset, "inputs": names,
            "dynamic_axes": dynamic_axes, "seconds": round(time.time() - start, 2), "validation": check}
    _record(run, FP32, info)
    log.info("exported %s: max abs diff %.2e vs PyTorch on %d samples", path, check["max_abs_diff"], len(labels))
    return info


def session(path: Path, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_session(sess, batch: dict, names: list[str]) -> np.ndarray:
    feeds = {n: batch[n].numpy() if hasattr(batch[n], "numpy") else batch[n] for n in names}
    return sess.run(["logits"], feeds)[0]


@torch.no_grad()
def compare(run: Run, path: Path, batch: dict, names: list[str]) -> dict:
    model, _ = run._predictor
    expected = model(**{n: batch[n] for n in names}).logits.float().numpy()
    got = run_session(session(path), batch, names)
    return {"samples": int(len(expected)), "max_abs_diff": float(np.abs(got - expected).max()),
            "argmax_agreement": float((got.argmax(-1) == expected.argmax(-1)).mean())}


def _require_fp32(run: Run) -> Path:
    path = deploy_dir(run) / FILES[FP32]
    if not path.exists():
        log.info("no ONNX export yet: exporting first")
        export_onnx(run)
    return path


def quantize(run: Run, method: str, *, calibration_samples: int = 100, force: bool = False) -> dict:
    """``dynamic`` / ``static`` (onnxruntime int8) or ``torch-dynamic`` (torch.ao on Linear layers)."""
    modality = run.modality.name
    if method == "dynamic" and modality == "image" and not force:
        raise DeployError("dynamic int8 quantization does not suit convolutional image models (measured: "
                          "EfficientNet logits off by 0.73); use --method static, which calibrates activations "
                          "on training images (or --force)")
    if method == "torch-dynamic" and modality == "image" and not force:
        raise DeployError("torch dynamic quantization only converts Linear layers; an image model's compute is in "
                          "its convolutions, so it would gain nothing. Use --method static (or --force)")
    start = time.time()
    batch, labels = sample_inputs(run, 64)
    names = input_names(run, batch)
    if method == "torch-dynamic":
        model = torch_dynamic_model(run)
        with torch.no_grad():
            got = model(**{n: batch[n] for n in names}).logits.numpy()
        info = {"file": None, "method": "torch.ao.quantization.quantize_dynamic(nn.Linear, qint8)",
                "seconds": round(time.time() - start, 2), "validation": _agreement(run, got, batch, names, labels)}
        _record(run, TORCH_DYNAMIC, info)
        return info
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    source = _require_fp32(run)
    name = DYNAMIC if method == "dynamic" else STATIC
    target = deploy_dir(run) / FILES[name]
    tmp = target.with_suffix(".onnx.tmp")
    if method == "dynamic":
        import onnx

        fused = _fuse_transformer(run, source)
        # 7-bit weights where the CPU lacks VNNI: its u8 x s8 multiply-add saturates 16-bit sums at full range
        # (onnxruntime's advice for non-VNNI machines)
        reduce_range = not _has_vnni()
        try:
            # per-channel: measured far closer to fp32 than per-tensor on MiniLM (cosine 0.992 vs 0.959).
            # Word embeddings (Gather) stay fp32: int8 embeddings cost e5-small 2.3 pt of SmSA macro-F1 for no
            # speed (a lookup is not compute); without them and with 7-bit weights the drop was 0.2 pt.
            quantize_dynamic(str(fused or source), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=reduce_range,
                             op_types_to_quantize=["MatMul", "Gemm", "Attention"] if modality == "text"
                             else ["MatMul"],
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fused ops' outputs
        finally:
            if fused:
                fused.unlink(missing_ok=True)
        details = {"weights": "int8 per-channel" + (" (7-bit range: no VNNI here)" if reduce_range else ""),
                   "activations": "dynamic (per batch)",
                   "graph": "onnxruntime transformer fusions (attention, layer norm, GELU)" if fused else "as exported"}
    elif method == "static":
        reader = _CalibrationReader(run, names, calibration_samples)
        quantize_static(str(source), str(tmp), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        details = {"weights": "int8 per-channel", "activations": "uint8, calibrated",
                   "calibration_samples": reader.count}
    else:
        raise DeployError(f"unknown quantization method '{method}' (dynamic | static | torch-dynamic)")
    tmp.replace(target)
    got = run_session(session(target), batch, names)
    info = {"file": target.name, "method": f"onnxruntime quantize_{method}", **details,
            "seconds": round(time.time() - start, 2), "validation": _agreement(run, got, batch, names, labels)}
    _record(run, name, info)
    return info


def _has_vnni() -> bool:
    from .bench import cpu_info

    return any("vnni" in flag or flag == "amx_tile" for flag in cpu_info()["isa_flags"])


def _fuse_transformer(run: Run, source: Path) -> Path | None:
    """onnxruntime's transformer optimizer (fused attention / skip-layer-norm / GELU) for BERT-family text
    encoders: fewer, larger kernels, which int8 then speeds up further. None where it does not apply."""
    model, _ = run._predictor
    config = getattr(model, "config", None)
    family = getattr(config, "model_type", "")
    if run.modality.name != "text" or family not in ("bert", "roberta", "xlm-roberta", "distilbert", "electra"):
        return None
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(source), model_type="bert", num_heads=config.num_attention_heads,
                               hidden_size=config.hidden_size, opt_level=1)
    target = source.with_name("model.fused.onnx")
    optimized.save_model_to_file(str(target))
    return target


@torch.no_grad()
def _agreement(run: Run, got: np.ndarray, batch: dict, names: list[str], labels: np.ndarray) -> dict:
    model, _ = run._predictor
    expected = model(**{n: batch[n] for n in names}).logits.float().numpy()
    return {"samples": int(len(labels)), "argmax_agreement_with_fp32": float((got.argmax(-1) == expected.argmax(-1)).mean()),
            "accuracy": float((got.argmax(-1) == labels).mean()),
            "accuracy_fp32": float((expected.argmax(-1) == labels).mean())}


class _CalibrationReader:
    """onnxruntime's CalibrationDataReader over training rows, one at a time (any sequence length)."""

    def __init__(self, run: Run, names: list[str], n: int):
        data = run.modality.load_data(run.config)
        train = data.splits["train"].shuffle(seed=0).select(range(min(n, len(data.splits["train"]))))
        self.batches = [encode_rows(run, train.select([i])) for i in range(len(train))]
        self.names, self.count, self._iter = names, len(self.batches), None

    def get_next(self):
        if self._iter is None:
            self._iter = iter(self.batches)
        batch = next(self._iter, None)
        return None if batch is None else {n: batch[n].numpy() for n in self.names}

    def rewind(self):
        self._iter = None


def torch_dynamic_model(run: Run) -> nn.Module:
    import copy

    model, _ = run._predictor
    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8).eval()
