"""Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", 2017): one scalar T fitted on the
validation logits, so that softmax(logits / T) says how often the model is right. Argmax, hence accuracy and F1,
do not change. A few lines on the logits rather than a library: the well-kept calibration packages either wrap
scikit-learn estimators (sigmoid / isotonic, not temperature) or bring a deep-learning stack of their own.

The temperature is saved beside the weights (``model/calibration.json``); the Predictor divides logits by it, so
``tl predict``, the ONNX variants and ``tl serve`` apply it alike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_write_json

CALIBRATION_FILE = "calibration.json"


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the mean negative log-likelihood of ``logits / T`` (L-BFGS on log T)."""
    x = torch.from_numpy(np.asarray(logits, dtype=np.float64))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp().clamp(1e-2, 1e2))


def save_temperature(model_dir: Path, temperature: float, fitted_on: str, rows: int) -> None:
    atomic_write_json(Path(model_dir) / CALIBRATION_FILE, {"temperature": temperature, "method": "temperature scaling",
                                                           "fitted_on": fitted_on, "rows": rows})


def load_temperature(model_dir: Path) -> float | None:
    path = Path(model_dir) / CALIBRATION_FILE
    return float(json.loads(path.read_text())["temperature"]) if path.exists() else None
