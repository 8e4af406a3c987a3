"""What clients send that is wrong: each malformed request gets its own 4xx and a message, never a 5xx; a
schemathesis fuzz of the server's own OpenAPI schema finds no 5xx either. And /ready waits for the warm-up."""

from __future__ import annotations

import base64
import io
import threading
import wave

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from transferlearn.serve import ServeConfig, create_app


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def _wav(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(np.zeros(int(seconds * rate), dtype="<i2").tobytes())
    return buffer.getvalue()


def _client(path, **limits):
    client = TestClient(create_app(path, ServeConfig(backend="torch", **limits)), raise_server_exceptions=False)
    client.__enter__()  # runs the lifespan: the batcher starts, the model loads in the background
    app = client.app
    assert app.state.service.ready.wait(120), app.state.service.load_error
    return client


@pytest.fixture(scope="module")
def text(trained_tiny_run):
    client = _client(trained_tiny_run.path, max_items=4, max_chars=50, max_body_mb=0.01)
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def image(trained_image_run):
    client = _client(trained_image_run.path, max_pixels=200 * 200)
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def audio(trained_audio_run):
    client = _client(trained_audio_run.path, max_audio_seconds=2)
    yield client
    client.__exit__(None, None, None)


B64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
def _noise_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


TRUNCATED_PNG = _noise_png()[:2000]  # a valid header, then the pixel data stops

MALFORMED = [  # (client, method, path, request kwargs, status, message)
    ("text", "post", "/predict", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 400,
     "not valid JSON"),
    ("text", "post", "/predict", {"json": {"text": ["a"]}}, 422, "unknown key(s) text"),
    ("text", "post", "/predict", {"json": {"top_k": 1}}, 422, "missing 'inputs'"),
    ("text", "post", "/predict", {"json": {"inputs": "good"}}, 422, "inputs must be a list, got str"),
    ("text", "post", "/predict", {"json": [1, 2]}, 422, "every input must be a string"),
    ("text", "post", "/predict", {"json": [["nested"]]}, 422, "every input must be a string"),
    ("text", "post", "/predict", {"json": []}, 422, "no inputs"),
    ("text", "post", "/predict", {"content": b"null", "headers": {"content-type": "application/json"}}, 422,
     "inputs must be a list, got NoneType"),
    ("text", "post", "/predict", {}, 415, "Content-Type 'none' is not accepted"),
    ("text", "post", "/predict", {"json": {"inputs": ["a"], "top_k": 0}}, 422, "top_k must be a whole number"),
    ("text", "post", "/predict", {"json": {"inputs": ["a"], "top_k": "two"}}, 422, "top_k must be a whole number"),
    ("text", "post", "/predict", {"json": {"inputs": ["a"], "top_k": True}}, 422, "top_k must be a whole number"),
    ("text", "post", "/predict", {"json": ["a"] * 5}, 413, "5 inputs in one request; the limit is 4"),
    ("text", "post", "/predict", {"json": ["x" * 51]}, 413, "51 characters; the limit is 50"),
    ("text", "post", "/predict", {"json": ["   "]}, 422, "input 0 is empty"),
    ("text", "post", "/predict", {"json": ["y" * 20000]}, 413, "the limit is 10,485 (--max-body-mb)"),
    ("text", "post", "/predict", {"content": b"good food", "headers": {"content-type": "text/plain"}}, 415,
     "Content-Type 'text/plain' is not accepted"),
    ("text", "get", "/predict", {}, 405, "Method Not Allowed"),
    ("text", "post", "/predict", {"content": b"\xff\xfe[", "headers": {"content-type": "application/json"}}, 400,
     "not valid JSON"),
    ("text", "post", "/predict", {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data; "
                                                                              "boundary=x"}}, 422, "no inputs"),
    ("image", "post", "/predict", {"json": ["not base64!"]}, 422, "not valid base64"),
    ("image", "post", "/predict", {"json": [B64(b"hello, not an image")]}, 400, "input 0: not an image Pillow can read"),
    ("image", "post", "/predict", {"files": [("files", ("a.png", b"plain text"))]}, 400, "not an image Pillow"),
    ("image", "post", "/predict", {"files": [("files", ("a.png", b""))]}, 422, "an empty file"),
    ("image", "post", "/predict", {"files": [("files", ("big.png", _png(300, 300)))]}, 413,
     "90,000 pixels; the limit is 40,000 (--max-pixels)"),
    ("image", "post", "/predict", {"json": [B64(TRUNCATED_PNG)]}, 400, "cannot read"),
    ("image", "post", "/predict", {"data": {"top_k": "x"}, "files": [("files", ("a.png", _png(8, 8)))]}, 422,
     "top_k must be a whole number"),
    ("audio", "post", "/predict", {"files": [("files", ("a.wav", b"RIFF....WAVEjunk"))]}, 400,
     "not audio soundfile can read"),
    ("audio", "post", "/predict", {"files": [("files", ("long.wav", _wav(3.0)))]}, 413,
     "3 seconds; the limit is 2 (--max-audio-seconds)"),
    ("audio", "post", "/predict", {"json": [B64(_wav(0.0))]}, 400, "no samples"),
]


@pytest.mark.parametrize("which, method, path, kwargs, status, message", MALFORMED,
                         ids=[f"{m[0]}-{m[4]}-{i}" for i, m in enumerate(MALFORMED)])
def test_each_malformed_request_gets_its_4xx(which, method, path, kwargs, status, message, request):
    client = request.getfixturevalue(which)
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"], response.json()
    assert len(MALFORMED) >= 20


def test_well_formed_uploads_of_each_kind_work(text, image, audio):
    assert text.post("/predict", json=["good food"]).status_code == 200
    multipart = image.post("/predict", files=[("files", ("x.png", _png(32, 32)))], data={"top_k": "1"})
    assert multipart.status_code == 200 and len(multipart.json()["predictions"][0]["probabilities"]) == 1
    data_url = "data:image/png;base64," + B64(_png(16, 16))  # what a browser's FileReader gives
    assert image.post("/predict", json={"inputs": [data_url]}).status_code == 200
    assert audio.post("/predict", files=[("files", ("a.wav", _wav(0.5)))]).status_code == 200


def test_ready_only_after_the_model_is_loaded_and_warm(trained_tiny_run, monkeypatch):
    from transferlearn.serve.app import Service

    gate = threading.Event()
    real_load = Service.load
    monkeypatch.setattr(Service, "load", lambda self: (gate.wait(30), real_load(self)))
    with TestClient(create_app(trained_tiny_run.path, ServeConfig(backend="torch"))) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 503
        loading = client.post("/predict", json=["good"])
        assert loading.status_code == 503 and loading.headers["retry-after"] == "1"
        gate.set()
        assert client.app.state.service.ready.wait(60)
        assert client.get("/ready").json()["status"] == "ready"
        assert client.post("/predict", json=["good"]).status_code == 200


# --- schemathesis: the server's own OpenAPI schema, fuzzed -------------------------------------------------------------


@pytest.fixture(scope="module")
def live_text_server(trained_tiny_run):
    from conftest import RunningServer

    server = RunningServer(trained_tiny_run.path, "--backend", "torch", "--max-items", "8")
    server.wait_ready()
    yield server
    server.stop()


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzzed_requests_never_get_a_5xx(live_text_server, mode):
    """Requests drawn from the server's own OpenAPI schema (valid ones, and ones that break it on purpose).
    (schemathesis's pytest plugin does not run under pytest 9, so its strategy is driven by hypothesis directly.)"""
    from hypothesis import given
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{live_text_server.url}/openapi.json")
    seen = []

    @given(case=schema.as_strategy(GenerationMode(mode)))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        response = case.call(timeout=30)
        seen.append((case.method, case.path, response.status_code))
        assert response.status_code < 500, (case.method, case.path, case.body, response.text[:300])

    check()
    assert {path for _, path, _ in seen} >= {"/predict"} and len(seen) >= 20
