"""``tl serve`` settings: one pydantic model, turned into the command's options (cli/options.py) as TrainConfig is."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address to bind (0.0.0.0 exposes the server to the network).")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port, printed at start).")
    backend: Literal["auto", "onnx", "torch"] = Field(
        "auto", description="auto: the ONNX variant `tl bench` chose, else fp32 ONNX, else PyTorch.")
    variant: str | None = Field(None, description="An ONNX variant by name (tl bench lists them).")
    threads: int | None = Field(None, ge=1, description="Threads the model may use (default: the physical cores).")
    max_batch: int = Field(32, ge=1, description="Most items in one model batch (1: no batching).")
    max_batch_tokens: int = Field(8192, ge=1, description="Text: most padded tokens in one model batch.")
    max_queue: int = Field(512, ge=1, description="Items allowed to wait; past it a request gets 503 + Retry-After.")
    timeout_s: float = Field(30.0, gt=0, description="A request not answered within this gets 504.")
    max_body_mb: float = Field(20.0, gt=0, description="Largest request body (413 beyond).")
    max_items: int = Field(64, ge=1, description="Most inputs in one request.")
    max_chars: int = Field(20000, ge=1, description="Text: longest text in characters.")
    max_pixels: int = Field(40_000_000, ge=1, description="Images: most pixels (width x height) of one image.")
    max_audio_seconds: float = Field(120.0, gt=0, description="Audio: longest clip in seconds.")
    api_key: str | None = Field(None, description="Require 'Authorization: Bearer KEY' (default: $TL_API_KEY; none: "
                                                  "no auth).", repr=False)
