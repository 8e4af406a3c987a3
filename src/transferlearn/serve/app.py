"""``tl serve``: a FastAPI app around one :class:`~transferlearn.deploy.predictor.Predictor`.

Endpoints: ``POST /predict``, ``GET /health`` (alive), ``GET /ready`` (model loaded and warmed up), ``GET /metadata``,
``GET /metrics`` (Prometheus), ``/docs`` (OpenAPI), ``/`` (the try-it page). Every input a client sends is checked
before it reaches the model; what is wrong with it comes back as a 4xx with a one-line ``detail``, never a 5xx.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import logging
import os
import threading
import time
from importlib import resources
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..deploy.source import ModelSource
from ..errors import DataError, TransferLearnError
from ..machine import current_threads, set_threads
from .batcher import MicroBatcher, QueueFull
from .config import ServeConfig

log = logging.getLogger(__name__)

PAIR_ITEM = {"type": "object", "required": ["text", "text_pair"], "additionalProperties": False,
             "properties": {"text": {"type": "string", "minLength": 1}, "text_pair": {"type": "string", "minLength": 1}}}


def predict_body(pair: bool) -> dict:
    """The request body in the OpenAPI schema (read by hand: one endpoint takes JSON and uploads); a sentence-pair
    model takes ``{"text": a, "text_pair": b}`` objects."""
    item = PAIR_ITEM if pair else {"type": "string"}
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"oneOf": [
                {"type": "array", "items": item, "minItems": 1,
                 "description": "Sentence pairs" if pair else "Texts; for image and audio models, base64-encoded files"},
                {"type": "object", "required": ["inputs"], "additionalProperties": False, "properties": {
                    "inputs": {"type": "array", "items": item, "minItems": 1},
                    "top_k": {"type": "integer", "minimum": 1}}},
            ]}},
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                "inputs": {"type": "array", "items": {"type": "string"}},
                "top_k": {"type": "integer", "minimum": 1}}}},
        },
    }


def predict_response(shape) -> dict:
    """POST /predict's 200 body in the OpenAPI schema: the label shape's prediction, one per input."""
    return {"type": "object", "required": ["predictions", "variant"], "properties": {
        "predictions": {"type": "array", "items": shape.result_schema()}, "variant": {"type": "string"}}}


class Metrics:
    """The server's Prometheus metrics, in a registry of its own (two apps in one process do not collide)."""

    def __init__(self, counted_labels: list[str], max_batch: int):
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("tl_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
                                registry=registry)
        self.latency = Histogram("tl_request_latency_seconds", "POST /predict latency, end to end", registry=registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.queue_wait = Histogram("tl_queue_wait_seconds", "Time a request waited for its batch", registry=registry,
                                    buckets=(.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5))
        sizes = sorted({1, 2, 4, 8, 16, 32, 64, 128, 256, max_batch})
        self.batch_size = Histogram("tl_batch_size", "Items per model batch", registry=registry,
                                    buckets=[s for s in sizes if s <= max_batch])
        self.queue_depth = Gauge("tl_queue_depth", "Items waiting for the model", registry=registry)
        self.rejected = Counter("tl_rejected", "Requests refused, by reason", ["reason"], registry=registry)
        self.errors = Counter("tl_errors", "Requests that failed on the server's side", ["kind"], registry=registry)
        self.predictions = Counter("tl_predictions", "Predicted labels (top-1; each tag over its threshold; "
                                   "column=label per label column)", ["label"], registry=registry)
        self.confidence = Histogram("tl_top1_confidence", "Top-1 probability of each prediction (the least sure "
                                    "column's for several label columns; its drift from the test split's is a first "
                                    "sign of data drift)", registry=registry,
                                    buckets=[round(0.1 * i, 1) for i in range(1, 11)])
        for name in counted_labels:
            self.predictions.labels(name)


class Service:
    """The loaded model, its batcher and the limits: what the endpoints share."""

    def __init__(self, source: ModelSource, config: ServeConfig):
        self.source, self.config = source, config
        self.shape = source.shape
        self.metrics = Metrics(self.shape.counted_names(), config.max_batch)
        self.predictor = None
        self.ready = threading.Event()
        self.load_error: str | None = None
        self.batcher = MicroBatcher(self._run_batch, max_batch=config.max_batch, max_queue=config.max_queue,
                                    on_batch=self._observe_batch)
        self.metrics.queue_depth.set_function(lambda: self.batcher.depth)

    # --- loading --------------------------------------------------------------------------------------------
    def backend(self) -> tuple[str, str | None]:
        if self.config.variant and self.config.variant not in self.source.onnx:
            raise TransferLearnError(f"{self.source.path}: no ONNX variant '{self.config.variant}' (have: "
                                     f"{', '.join(self.source.onnx) or 'none; run `tl export` first'})")
        if self.config.backend == "torch":
            return "torch", None
        if self.config.variant or self.source.chosen:
            return "onnx", self.config.variant
        if self.config.backend == "onnx":
            raise TransferLearnError(f"{self.source.path}: --backend onnx, but there is no ONNX model; run "
                                     f"`tl export {self.source.path}` first")
        return "torch", None

    def load(self) -> None:
        """Load and warm up (in a thread: /health answers meanwhile, /ready only after)."""

        from ..deploy.predictor import Predictor

        try:
            threads = self.config.threads or current_threads()  # torch's default: the physical cores
            backend, variant = self.backend()
            set_threads(threads)  # for the server's lifetime
            self.predictor = Predictor(self.source, backend, variant=variant, threads=threads)
            example = self.source.modality.example_input()
            if self.source.pair:  # a sentence-pair model warms up on a pair
                example = {"text": example, "text_pair": example}
            for _ in range(3):  # first calls allocate and pick kernels; a client should not pay for that
                self.predictor.predict([example] * min(4, self.config.max_batch))
            log.info("ready: %s (%s, %d threads)", self.source.path, self.predictor.variant, threads)
            self.ready.set()
        except Exception as exc:  # noqa: BLE001 — reported by /ready and the log; the process stays up to say so
            self.load_error = str(exc)
            log.error("the model could not be loaded: %s", exc)

    # --- the model --------------------------------------------------------------------------------------------
    def _run_batch(self, items: list) -> list[dict]:
        return self.predictor.predict(items, batch_size=self.config.max_batch,
                                      max_tokens=self.config.max_batch_tokens)

    def _observe_batch(self, size: int, waits: list[float]) -> None:
        self.metrics.batch_size.observe(size)
        for wait in waits:
            self.metrics.queue_wait.observe(wait)

    def record(self, results: list[dict]) -> None:
        for result in results:
            for label in self.shape.served_labels(result):
                self.metrics.predictions.labels(label).inc()
            confidence = self.shape.confidence(result)
            if confidence is not None:
                self.metrics.confidence.observe(confidence)

    # --- requests -------------------------------------------------------------------------------------------
    async def read_request(self, request: Request) -> tuple[list, int | None]:
        """(inputs, top_k) from a JSON or multipart body, every limit checked; 4xx for anything wrong."""
        body = await self._body(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/json" or (not content_type and body[:1] in (b"[", b"{")):
            items, top_k = self._from_json(body)
        elif content_type == "multipart/form-data":
            items, top_k = await self._from_form(request)
        else:
            raise HTTPException(415, f"Content-Type '{content_type or 'none'}' is not accepted: send application/json "
                                     "(a list of inputs, or {\"inputs\": [...], \"top_k\": k}) or multipart/form-data")
        if not items:
            raise HTTPException(422, "no inputs: send at least one")
        if len(items) > self.config.max_items:
            raise HTTPException(413, f"{len(items)} inputs in one request; the limit is {self.config.max_items} "
                                     "(--max-items)")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise HTTPException(422, f"top_k must be a whole number of at least 1 (got {top_k!r})")
        return [self._check_item(i, item) for i, item in enumerate(items)], top_k

    async def _body(self, request: Request) -> bytes:
        limit = int(self.config.max_body_mb * 2**20)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            self.metrics.rejected.labels("too_large").inc()
            raise HTTPException(413, f"the body is {int(declared):,} bytes; the limit is {limit:,} (--max-body-mb)")
        chunks, size = [], 0
        async for chunk in request.stream():  # a body without Content-Length is counted as it arrives
            size += len(chunk)
            if size > limit:
                self.metrics.rejected.labels("too_large").inc()
                raise HTTPException(413, f"the body is over {limit:,} bytes (--max-body-mb)")
            chunks.append(chunk)
        body = b"".join(chunks)
        request._body = body  # starlette's form parser reads it again from here
        return body

    def _from_json(self, body: bytes) -> tuple[list, int | None]:
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPException(400, f"the body is not valid JSON ({exc})") from None
        top_k = None
        if isinstance(payload, dict):
            unknown = set(payload) - {"inputs", "top_k"}
            if unknown:
                raise HTTPException(422, f"unknown key(s) {', '.join(sorted(map(str, unknown)))}: expected 'inputs' "
                                         "and optionally 'top_k'")
            if "inputs" not in payload:
                raise HTTPException(422, "missing 'inputs': a list of inputs")
            top_k, payload = payload.get("top_k"), payload["inputs"]
        if not isinstance(payload, list):
            raise HTTPException(422, f"inputs must be a list, got {type(payload).__name__}")
        if self.source.pair:
            bad = next((i for i, item in enumerate(payload) if not (
                isinstance(item, dict) and set(item) == {"text", "text_pair"}
                and all(isinstance(v, str) for v in item.values()))), None)
            if bad is not None:
                raise HTTPException(422, f"input {bad}: this model reads sentence pairs: give "
                                         "{\"text\": ..., \"text_pair\": ...} objects")
            return payload, top_k
        if any(not isinstance(item, str) for item in payload):
            raise HTTPException(422, "every input must be a string (text, or a base64-encoded file)")
        if not self.source.modality.file_inputs:
            return payload, top_k
        return [_base64(item, i) for i, item in enumerate(payload)], top_k

    async def _from_form(self, request: Request) -> tuple[list, int | None]:
        try:
            form = await request.form(max_files=self.config.max_items, max_fields=self.config.max_items + 1)
        except Exception as exc:  # noqa: BLE001 — starlette raises several kinds for broken multipart bodies
            raise HTTPException(400, f"cannot parse the multipart body ({exc})") from None
        top_k = form.get("top_k")
        try:
            top_k = int(top_k) if top_k is not None else None
        except ValueError:
            raise HTTPException(422, f"top_k must be a whole number (got {top_k!r})") from None
        if not self.source.modality.file_inputs:
            items = [v for v in form.getlist("inputs") if isinstance(v, str)]
            items += [(await f.read()).decode("utf-8", "replace") for f in form.getlist("files") if hasattr(f, "read")]
        else:  # uploads are read into memory: no file named by the client is ever created
            items = [await f.read() for f in form.getlist("files") if hasattr(f, "read")]
        await form.close()
        return items, top_k

    def _check_item(self, index: int, item):
        if isinstance(item, dict):  # a sentence pair: each side is a text
            return {key: self._check_item(index, value) for key, value in item.items()}
        if isinstance(item, str):
            if len(item) > self.config.max_chars:
                raise HTTPException(413, f"input {index}: {len(item):,} characters; the limit is "
                                         f"{self.config.max_chars:,} (--max-chars)")
            if not item.strip():
                raise HTTPException(422, f"input {index} is empty")
            return item
        if not item:
            raise HTTPException(422, f"input {index}: an empty file")
        try:
            amount, unit = self.source.modality.upload_size(item)
        except DataError as exc:
            raise HTTPException(400, f"input {index}: {exc}") from None
        limit = {"pixels": self.config.max_pixels, "seconds": self.config.max_audio_seconds}[unit]
        if amount > limit:
            raise HTTPException(413, f"input {index}: {amount:,.0f} {unit}; the limit is {limit:,g} "
                                     f"(--max-{'pixels' if unit == 'pixels' else 'audio-seconds'})")
        return item


def _base64(text: str, index: int) -> bytes:
    if text.startswith("data:") and "," in text:  # a data URL, as a browser's FileReader writes it
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(422, f"input {index} is not valid base64 (image and audio inputs in JSON are "
                                 "base64-encoded files)") from None


def create_app(path: str | Path, config: ServeConfig | None = None) -> FastAPI:
    config = config or ServeConfig()
    source = ModelSource.open(path)
    service = Service(source, config)
    service.backend()  # --backend onnx without an ONNX model: refused now, before a port is opened
    api_key = config.api_key or os.environ.get("TL_API_KEY") or None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        service.batcher.start()
        loading = asyncio.get_running_loop().run_in_executor(None, service.load)
        yield
        await loading
        await service.batcher.stop()

    app = FastAPI(title="transferlearn", version="1", lifespan=lifespan,
                  description=f"A {source.modality.name} model, {source.shape.describe()}, from {source.path.name}")
    app.state.service = service

    def authorized(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
            service.metrics.rejected.labels("unauthorized").inc()
            raise HTTPException(401, "missing or wrong API key: send 'Authorization: Bearer KEY'",
                                headers={"WWW-Authenticate": "Bearer"})

    app.add_middleware(_CountRequests, counter=service.metrics.requests)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/health", summary="Alive (the process answers)")
    async def health():
        return {"status": "alive"}

    @app.get("/ready", summary="200 once the model is loaded and warmed up, else 503")
    async def ready():
        if service.ready.is_set():
            return {"status": "ready", "variant": service.predictor.variant}
        detail = f"the model failed to load: {service.load_error}" if service.load_error else "loading"
        return JSONResponse({"status": "not ready", "detail": detail}, status_code=503)

    @app.get("/metadata", summary="Labels, model, variant and scores of the served run",
             dependencies=[Depends(authorized)])
    async def metadata():
        return {"modality": source.modality.name, "problem": source.shape.name, "title": source.shape.title,
                "labels": source.label_names, "model": source.model, "pair": source.pair,
                "source": source.path.name, "variant": service.predictor.variant if service.predictor else None,
                "metrics": source.metrics, "auth": api_key is not None,
                "limits": config.model_dump(include={"max_items", "max_chars", "max_pixels", "max_audio_seconds",
                                                     "max_body_mb", "max_batch"})}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics():
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/predict", summary=f"Predictions ({source.shape.title}), scores most likely first",
              dependencies=[Depends(authorized)], openapi_extra={"requestBody": predict_body(source.pair)},
              responses={200: {"description": f"One prediction per input ({source.shape.title})", "content": {
                             "application/json": {"schema": predict_response(source.shape)}}},
                         400: {"description": "An input cannot be read"}, 413: {"description": "Over a limit"},
                         415: {"description": "Unsupported body type"}, 422: {"description": "Malformed request"},
                         503: {"description": "Not ready, or the queue is full (see Retry-After)"},
                         504: {"description": "Not answered within --timeout-s"}})
    async def predict(request: Request):
        started = time.perf_counter()
        items, top_k = await service.read_request(request)
        if not service.ready.is_set():
            raise HTTPException(503, "the model is still loading; retry when GET /ready answers 200",
                                headers={"Retry-After": "1"})
        try:
            results = await asyncio.wait_for(service.batcher.submit(items), timeout=config.timeout_s)
        except QueueFull as exc:
            service.metrics.rejected.labels("queue_full").inc()
            raise HTTPException(503, f"busy: {exc}; retry shortly", headers={"Retry-After": "1"}) from None
        except asyncio.TimeoutError:
            service.metrics.rejected.labels("timeout").inc()
            raise HTTPException(504, f"not answered within {config.timeout_s:g} s (--timeout-s)") from None
        except DataError as exc:  # an input that passed the header checks but does not decode
            service.metrics.rejected.labels("bad_input").inc()
            raise HTTPException(400, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 — the server's own fault: counted, logged, a 500 without internals
            service.metrics.errors.labels(type(exc).__name__).inc()
            log.exception("prediction failed")
            raise HTTPException(500, "internal error while predicting (see the server log)") from None
        service.record(results)
        service.metrics.latency.observe(time.perf_counter() - started)
        if top_k is not None:
            results = [service.shape.keep_top(r, top_k) for r in results]
        # plain JSON types already: skip FastAPI's jsonable_encoder walk (a measurable share of a 10 ms request)
        return JSONResponse({"predictions": results, "variant": service.predictor.variant})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(resources.files("transferlearn.serve").joinpath("index.html").read_text("utf-8"))

    return app


_ENDPOINTS = {"/predict", "/health", "/ready", "/metadata", "/metrics", "/"}


class _CountRequests:
    """Counts responses by endpoint and status: a plain ASGI middleware (starlette's BaseHTTPMiddleware, behind
    ``@app.middleware``, costs a task and a stream copy per request)."""

    def __init__(self, app, counter):
        self.app, self.counter = app, counter

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        endpoint = scope["path"] if scope["path"] in _ENDPOINTS else "other"

        async def counted(message):
            if message["type"] == "http.response.start":
                self.counter.labels(endpoint, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counted)
