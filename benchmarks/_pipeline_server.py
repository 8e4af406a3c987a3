"""The server a user would write without transferlearn (serve_load.py's baseline): FastAPI calling a transformers
``pipeline`` per request, PyTorch fp32. ``python benchmarks/_pipeline_server.py MODEL_DIR PORT THREADS``"""

from __future__ import annotations

import sys

import torch
import uvicorn
from fastapi import FastAPI
from transformers import pipeline

model_dir, port, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
classify = pipeline("text-classification", model=model_dir, device="cpu", top_k=None)
app = FastAPI()


@app.get("/ready")
def ready():
    return {"status": "ready"}


@app.post("/predict")
def predict(texts: list[str]):  # a sync endpoint: FastAPI runs each request in its thread pool
    return {"predictions": classify(texts, truncation=True)}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
