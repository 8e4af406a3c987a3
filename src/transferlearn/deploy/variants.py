"""The deployment variants of a run: which exist, how each was checked (``deploy/variants.json``), which one
``tl bench`` chose, and an onnxruntime session for a variant file. File names come from the run layout."""

from __future__ import annotations

from pathlib import Path

from ..errors import TransferLearnError
from ..io import atomic_write_json
from ..layout import DYNAMIC, FP32, ONNX_FILES, STATIC, TORCH_DYNAMIC
from ..machine import current_threads
from ..run import Run

__all__ = ["FP32", "DYNAMIC", "STATIC", "TORCH_DYNAMIC", "ONNX_FILES", "DeployError", "record_variant",
           "present_variants", "chosen_variant", "onnx_session", "discard_variant"]


class DeployError(TransferLearnError):
    """An export or quantization that cannot be done, or whose result does not match the model."""


def record_variant(run: Run, name: str, info: dict) -> None:
    variants = {**run.variants, name: info}
    atomic_write_json(run.layout.variants, variants)
    run.__dict__["variants"] = variants  # the cached read stays true


def discard_variant(run: Run, name: str) -> None:
    """Forget a variant and remove its file (a failed check must leave nothing a later stage would use)."""
    if name in ONNX_FILES:
        run.layout.onnx_file(name).unlink(missing_ok=True)
    if name in run.variants:
        variants = {k: v for k, v in run.variants.items() if k != name}
        atomic_write_json(run.layout.variants, variants)
        run.__dict__["variants"] = variants


def present_variants(run: Run) -> list[str]:
    """Recorded variants whose file exists (torch's dynamic int8 has none: it is rebuilt at load time)."""
    return [v for v in run.variants if v == TORCH_DYNAMIC or (v in ONNX_FILES and run.layout.onnx_file(v).exists())]


def chosen_variant(run: Run) -> str | None:
    """The ONNX variant ``tl bench --max-drop`` chose, else fp32 ONNX when exported, else None."""
    chosen = run.bench.get("chosen", {}).get("variant")
    if chosen in ONNX_FILES and run.layout.onnx_file(chosen).exists():
        return chosen
    return FP32 if run.layout.onnx_file(FP32).exists() and FP32 in run.variants else None


def onnx_session(path: Path, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its optimizer's notes are not the user's business
    options.intra_op_num_threads = threads or current_threads()  # the same count as torch (machine.thread_settings)
    options.inter_op_num_threads = 1
    if not path.exists():
        raise DeployError(f"{path}: no such ONNX file; run `tl export` first")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
