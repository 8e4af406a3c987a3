"""ONNX export and int8 quantization of a run's model, each checked against PyTorch on real samples.

Variants live in ``RUN/deploy/`` (file names: :mod:`transferlearn.layout`), each described in ``variants.json``;
torch's dynamic int8 is recorded there as a recipe and rebuilt at load time (a quantized torch module would have
to be pickled to be stored). A variant whose check fails leaves no file and no record behind.
"""

from __future__ import annotations

import inspect
import logging
import time
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..machine import has_vnni
from ..run import Run
from .predictor import OnnxBackend, Predictor, TorchBackend, torch_dynamic_int8
from .variants import DYNAMIC, FP32, STATIC, TORCH_DYNAMIC, DeployError, discard_variant, onnx_session, record_variant

log = logging.getLogger(__name__)


class _Logits(nn.Module):
    """Positional inputs in a fixed order -> logits (what the ONNX graph computes)."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs):
        return self.model(**dict(zip(self.names, inputs, strict=True))).logits


class Deployment:
    """A run being exported / quantized: its PyTorch model loaded once, real sample rows, the ONNX input names."""

    def __init__(self, run: Run):
        self.run, self.modality = run, run.modality
        self.torch = Predictor(run, "torch")

    @cached_property
    def data(self):
        return self.modality.load_data(self.run.config, shape=self.shape)

    @property
    def shape(self):
        return self.torch.shape

    def rows(self, n: int):
        rows = self.data.splits[self.scored_split]
        return rows.select(range(min(n, len(rows))))

    def encode_rows(self, rows) -> dict:
        return self.torch.encode(self.modality.row_inputs(rows))

    @property
    def scored_split(self) -> str:
        return next(s for s in ("test", "validation", "train") if s in self.data.splits)

    def sample(self, n: int) -> tuple[dict, np.ndarray]:
        """``n`` real rows of the scored split through the run's preprocessing: (batch of tensors, labels)."""
        return self.labelled_batch(self.rows(n))

    def labelled_batch(self, rows) -> tuple[dict, np.ndarray]:
        """Rows as (model batch, labels in the layout of its outputs: a tag per sub-token for a token tagger)."""
        return self.modality.read_labelled(self.torch.processor, self.modality.row_inputs(rows),
                                           self.shape.label_array(rows["label"]), self.run.config.max_length,
                                           self.run.config.stride)

    def input_names(self, batch: dict) -> list[str]:
        accepted = set(inspect.signature(self.torch.model.forward).parameters)
        return [n for n in self.modality.onnx_inputs if n in batch and n in accepted]

    def expected(self, batch: dict, names: list[str]) -> np.ndarray:
        return TorchBackend(self.torch.model, names)(batch)


def export_onnx(run: Run, *, opset: int = 17, dynamic_axes: bool = True, samples: int = 32,
                atol: float = 1e-3) -> dict:
    """Export fp32 ONNX (legacy TorchScript exporter: fast, dynamic axes) and validate with onnxruntime."""
    deployment = Deployment(run)
    batch, labels = deployment.sample(samples)
    names = deployment.input_names(batch)
    wrapper = _Logits(deployment.torch.model, names).eval()  # eval: the exporter keeps the wrapper's training flag
    axes = deployment.modality.dynamic_axes(names) if dynamic_axes else None
    if axes is not None and deployment.shape.per_token:  # a tag per sub-token: the output is as long as the input
        axes["logits"] = {0: "batch", 1: "sequence"}
    path = run.layout.onnx_file(FP32)
    path.parent.mkdir(parents=True, exist_ok=True)
    discard_variant(run, FP32)  # the old file must not outlive a failed export
    tmp = path.with_suffix(".onnx.tmp")
    start = time.time()
    try:
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings: the check below is what tells whether the graph is right
            torch.onnx.export(wrapper, tuple(batch[n] for n in names), str(tmp), input_names=names,
                              output_names=["logits"], dynamic_axes=axes, opset_version=opset, dynamo=False)
    except Exception as exc:  # an op this opset cannot express, a model the tracer cannot follow
        tmp.unlink(missing_ok=True)
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise DeployError(f"{run.path}: torch.onnx.export failed at opset {opset}: {reason}. Try the default "
                          "--opset 17 or a newer one (--verbose shows the traceback).") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        check = _compare(deployment.shape, deployment.expected(batch, names), OnnxBackend(onnx_session(tmp), names)(batch))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if check["max_abs_diff"] > atol or check["agreement"] < 1.0:
        tmp.unlink(missing_ok=True)
        raise DeployError(f"{path}: onnxruntime differs from PyTorch on {len(labels)} real samples (max abs diff "
                          f"{check['max_abs_diff']:.2e} > {atol:g}, agreement {check['agreement']:.3f}); "
                          "nothing was written")
    tmp.replace(path)
    info = {"file": path.name, "method": "torch.onnx.export", "opset": opset, "inputs": names,
            "dynamic_axes": dynamic_axes, "seconds": round(time.time() - start, 2), "validation": check}
    record_variant(run, FP32, info)
    log.info("exported %s: max abs diff %.2e vs PyTorch on %d samples", path, check["max_abs_diff"], len(labels))
    return info


def _compare(shape, expected: np.ndarray, got: np.ndarray) -> dict:
    """Raw logits within atol, and the same decision on every row (the label shape's: class, tags, numbers)."""
    return {"samples": int(len(expected)), "max_abs_diff": float(np.abs(got - expected).max()),
            "agreement": shape.agreement(expected, got)}


def _require_fp32(run: Run) -> Path:
    if FP32 not in run.variants or not run.layout.onnx_file(FP32).exists():
        log.info("no ONNX export yet: exporting first")
        export_onnx(run)
    return run.layout.onnx_file(FP32)


def quantize(run: Run, method: str, *, calibration_samples: int = 100, force: bool = False) -> dict:
    """``dynamic`` / ``static`` (onnxruntime int8) or ``torch-dynamic`` (torch.ao on Linear layers)."""
    if method not in ("dynamic", "static", "torch-dynamic"):
        raise DeployError(f"unknown quantization method '{method}' (dynamic | static | torch-dynamic)")
    misfit = run.modality.quantization_misfit(method)
    if misfit and not force:
        raise DeployError(f"{misfit} (or --force)")
    start = time.time()
    deployment = Deployment(run)
    batch, labels = deployment.sample(64)
    names = deployment.input_names(batch)
    if method == "torch-dynamic":
        got = TorchBackend(torch_dynamic_int8(deployment.torch.model), names)(batch)
        info = {"file": None, "method": "torch.ao.quantization.quantize_dynamic(nn.Linear, qint8)",
                "seconds": round(time.time() - start, 2),
                "validation": _agreement(deployment.shape, deployment.expected(batch, names), got, labels,
                                         deployment.scored_split)}
        record_variant(run, TORCH_DYNAMIC, info)
        return info
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    source = _require_fp32(run)
    name = DYNAMIC if method == "dynamic" else STATIC
    target = run.layout.onnx_file(name)
    discard_variant(run, name)
    tmp = target.with_suffix(".onnx.tmp")
    try:
        if method == "dynamic":
            details = _quantize_dynamic(deployment, source, tmp, quantize_dynamic, QuantType)
        else:
            reader = _CalibrationReader(deployment, names, calibration_samples)
            quantize_static(str(source), str(tmp), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
            details = {"weights": "int8 per-channel", "activations": "uint8, calibrated",
                       "calibration_samples": reader.count}
        got = OnnxBackend(onnx_session(tmp), names)(batch)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(target)
    info = {"file": target.name, "method": f"onnxruntime quantize_{method}", **details,
            "seconds": round(time.time() - start, 2),
            "validation": _agreement(deployment.shape, deployment.expected(batch, names), got, labels,
                                         deployment.scored_split)}
    record_variant(run, name, info)
    return info


def _quantize_dynamic(deployment: Deployment, source: Path, tmp: Path, quantize_dynamic, QuantType) -> dict:
    import onnx

    fused = _fuse_transformer(deployment, source)
    # 7-bit weights where the CPU lacks VNNI: its u8 x s8 multiply-add saturates 16-bit sums at full range
    # (onnxruntime's advice for non-VNNI machines)
    reduce_range = not has_vnni()
    try:
        # per-channel: measured far closer to fp32 than per-tensor on MiniLM (cosine 0.992 vs 0.959)
        quantize_dynamic(str(fused or source), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                         reduce_range=reduce_range, op_types_to_quantize=deployment.modality.dynamic_int8_ops(),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fused ops' outputs
    finally:
        if fused:
            fused.unlink(missing_ok=True)
    return {"weights": "int8 per-channel" + (" (7-bit range: no VNNI here)" if reduce_range else ""),
            "activations": "dynamic (per batch)",
            "graph": "onnxruntime transformer fusions (attention, layer norm, GELU)" if fused else "as exported"}


def _fuse_transformer(deployment: Deployment, source: Path) -> Path | None:
    """onnxruntime's transformer optimizer (fused attention / skip-layer-norm / GELU) where the modality says it
    applies: fewer, larger kernels, which int8 then speeds up further. None elsewhere."""
    model = deployment.torch.model
    if not deployment.modality.fusable_family(model):
        return None
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(source), model_type="bert", num_heads=model.config.num_attention_heads,
                               hidden_size=model.config.hidden_size, opt_level=1)
    target = source.with_name("model.fused.onnx")
    optimized.save_model_to_file(str(target))
    return target


def _agreement(shape, expected: np.ndarray, got: np.ndarray, labels: np.ndarray, split: str) -> dict:
    """The quantized model against fp32 on real rows: the shape's primary metric for both, and how often they
    decide the same."""
    metric = shape.primary_metric
    return {"samples": int(len(labels)), "split": split, "agreement_with_fp32": shape.agreement(expected, got),
            "metric": metric, "score": shape.score(metric, labels, got),
            "score_fp32": shape.score(metric, labels, expected)}


class _CalibrationReader:
    """onnxruntime's CalibrationDataReader over training rows, one at a time (any sequence length)."""

    def __init__(self, deployment: Deployment, names: list[str], n: int):
        train = deployment.data.splits["train"]
        train = train.shuffle(seed=0).select(range(min(n, len(train))))
        self.batches = [deployment.encode_rows(train.select([i])) for i in range(len(train))]
        self.names, self.count, self._iter = names, len(self.batches), None

    def get_next(self):
        if self._iter is None:
            self._iter = iter(self.batches)
        batch = next(self._iter, None)
        return None if batch is None else {n: batch[n].numpy() for n in self.names}

    def rewind(self):
        self._iter = None
