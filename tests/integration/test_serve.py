"""``tl serve`` as a real process on 127.0.0.1: the same answers as ``tl predict``, Prometheus metrics that count what
happened, auth, and a SIGTERM that lets the requests in flight finish."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import threading

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families


def _cli_predict(run_path, inputs) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "transferlearn.cli", "predict", str(run_path), *map(str, inputs),
                           "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _metrics(url) -> dict:
    samples = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _inputs(kind, runs, tmp_path):
    """Raw inputs for the CLI and the same inputs as the server takes them (texts, or files as uploads)."""
    if kind == "text":
        texts = ["good food and lovely staff", "awful place, terrible service", "the room was very bad", "superb"]
        return texts, {"json": {"inputs": texts}}
    folder = runs[f"{kind}_folder"] / "test"
    files = sorted(p for p in folder.rglob("*") if p.is_file())[:4]
    return files, {"files": [("files", (f"upload{i}", f.read_bytes())) for i, f in enumerate(files)]}


@pytest.fixture(scope="module")
def runs(trained_tiny_run, trained_image_run, trained_audio_run, image_folder, audio_folder):
    return {"text": trained_tiny_run.path, "image": trained_image_run.path, "audio": trained_audio_run.path,
            "image_folder": image_folder, "audio_folder": audio_folder}


@pytest.mark.parametrize("kind", ["text", "image", "audio"])
def test_predict_matches_tl_predict_and_metrics_count_it(kind, runs, serve_run, tmp_path):
    server = serve_run(runs[kind], "--backend", "torch")
    assert httpx.get(f"{server.url}/health").json() == {"status": "alive"}
    assert httpx.get(f"{server.url}/ready").json()["variant"] == "torch-fp32"
    raw, request = _inputs(kind, runs, tmp_path)
    expected = _cli_predict(runs[kind], raw)

    response = httpx.post(f"{server.url}/predict", timeout=60, **request)
    assert response.status_code == 200, response.text
    got = response.json()["predictions"]
    assert [g["label"] for g in got] == [e["label"] for e in expected]
    for g, e in zip(got, expected, strict=True):
        assert g["probabilities"].keys() == e["probabilities"].keys()
        assert all(abs(g["probabilities"][k] - e["probabilities"][k]) < 1e-5 for k in g["probabilities"])
    if kind != "text":  # the same files as base64 in JSON give the same answer
        encoded = [base64.b64encode(p.read_bytes()).decode() for p in raw]
        again = httpx.post(f"{server.url}/predict", json={"inputs": encoded, "top_k": 1}, timeout=60).json()
        assert [p["label"] for p in again["predictions"]] == [g["label"] for g in got]
        assert all(len(p["probabilities"]) == 1 for p in again["predictions"])

    metadata = httpx.get(f"{server.url}/metadata").json()
    from transferlearn.run import Run

    assert metadata["modality"] == kind and metadata["labels"] == Run.load(runs[kind]).label_names
    samples = _metrics(server.url)
    predicted = sum(v for (name, labels), v in samples.items() if name == "tl_predictions_total")
    assert predicted == len(raw) * (1 if kind == "text" else 2)
    assert samples[("tl_requests_total", (("endpoint", "/predict"), ("status", "200")))] == (1 if kind == "text" else 2)
    assert samples[("tl_batch_size_count", ())] >= 1 and samples[("tl_top1_confidence_count", ())] == predicted
    assert ("tl_queue_depth", ()) in samples and ("tl_request_latency_seconds_count", ()) in samples


def test_an_api_key_guards_predict_and_metadata(runs, serve_run):
    server = serve_run(runs["text"], env={"TL_API_KEY": "s3cret"})
    assert httpx.get(f"{server.url}/health").status_code == 200  # probes stay open
    anonymous = httpx.post(f"{server.url}/predict", json=["good"])
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server.url}/metadata").status_code == 401
    wrong = httpx.post(f"{server.url}/predict", json=["good"], headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = httpx.post(f"{server.url}/predict", json=["good"], headers={"Authorization": "Bearer s3cret"})
    assert right.status_code == 200 and right.json()["predictions"][0]["label"] in ("negative", "positive")
    samples = _metrics(server.url)
    assert samples[("tl_rejected_total", (("reason", "unauthorized"),))] == 3
    server.stop()
    assert "s3cret" not in server.proc.stderr.read() + server.proc.stdout.read()  # the key is never logged


def test_sigterm_finishes_the_requests_in_flight_then_exits_cleanly(runs, serve_run):
    server = serve_run(runs["text"], "--max-batch", "8", "--max-queue", "4096")
    texts = ["the food was very good and the staff lovely " * 6] * 64
    results: list[int] = []
    started = threading.Barrier(17)

    def client():
        started.wait()
        try:
            results.append(httpx.post(f"{server.url}/predict", json=texts, timeout=120).status_code)
        except httpx.HTTPError as exc:  # a refused or cut connection counts as a lost request
            results.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    started.wait()
    import time

    time.sleep(0.3)  # the requests are sent and queued behind each other (16 x 64 items, batches of 8)
    queued = _metrics(server.url)[("tl_queue_depth", ())]
    server.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(120)
    assert server.proc.wait(60) == 0
    assert queued > 0, "nothing was in flight when SIGTERM came"
    assert results == [200] * 16, results


def test_a_package_folder_serves_like_its_run_on_onnx_by_default(runs, serve_run, tmp_path):
    import shutil

    from transferlearn.deploy.export import export_onnx
    from transferlearn.deploy.package import package
    from transferlearn.run import Run

    run_copy = tmp_path / "run"
    shutil.copytree(runs["text"], run_copy)
    export_onnx(Run.load(run_copy))
    package(Run.load(run_copy), tmp_path / "pkg")
    assert (tmp_path / "pkg" / "transferlearn.json").exists() and (tmp_path / "pkg" / "onnx" / "model.onnx").exists()
    texts = ["good food and lovely staff", "awful place, terrible service"]
    expected = _cli_predict(run_copy, texts)

    server = serve_run(tmp_path / "pkg")  # default backend: the package's ONNX model
    assert httpx.get(f"{server.url}/ready").json()["variant"] == "onnx-fp32"
    got = httpx.post(f"{server.url}/predict", json=texts, timeout=60).json()["predictions"]
    assert [g["label"] for g in got] == [e["label"] for e in expected]
    for g, e in zip(got, expected, strict=True):  # onnxruntime vs PyTorch: within the export check's tolerance
        assert all(abs(g["probabilities"][k] - e["probabilities"][k]) < 1e-3 for k in g["probabilities"])
    assert httpx.get(f"{server.url}/metadata").json()["source"] == "pkg"
