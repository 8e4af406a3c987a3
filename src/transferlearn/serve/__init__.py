"""``tl serve``: an HTTP server for a run or a ``tl package`` folder (FastAPI + uvicorn, adaptive micro-batching,
Prometheus metrics, a try-it page)."""

from .app import create_app
from .config import ServeConfig

__all__ = ["create_app", "ServeConfig"]
