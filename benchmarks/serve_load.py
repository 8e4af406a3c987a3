"""Serving throughput and latency on the SmSA e5-small run, loopback only, measured side by side in one run.

Arms: (a) ``tl serve`` with its int8 ONNX variant and micro-batching, (b) the same with ``--max-batch 1``, (c) what a
user would write: FastAPI calling a transformers ``pipeline`` per request, PyTorch fp32 (benchmarks/_pipeline_server.py).
Each arm serves one SmSA test sentence per request to an asyncio aiohttp client at concurrency 1, 8 and 32, for a
bounded number of requests and seconds. Beside them, the predictor's own batch-1 latency on the same sentences (what
``tl bench`` reports), for the "no added latency" check. The client shares the 2 CPUs with the server (every arm alike).

    python benchmarks/serve_load.py [--run runs/serve-smsa] [--seconds 15] [--threads 2]

Writes benchmarks/results/serve_load_smsa.json; prints the ratios last.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, write_result  # noqa: E402

CONCURRENCY = (1, 8, 32)


def sentences(limit: int = 2000) -> list[str]:
    with open(SHARED_DATA / "smsa" / "test_preprocess.tsv", encoding="utf-8") as handle:
        return [row[0] for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if row][:limit]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{command[:4]} exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{command[:4]} never became ready")


async def load(url: str, texts: list[str], concurrency: int, seconds: float, max_requests: int) -> dict:
    """``concurrency`` users, each sending its next request when the last is answered (closed loop), keep-alive.
    aiohttp, not httpx: its client costs a fraction of the CPU per request, and the client shares the 2 CPUs."""
    import aiohttp

    latencies, errors, sent = [], 0, 0
    stop_at = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as client:
        for text in texts[:concurrency]:  # warm the connections
            async with client.post(f"{url}/predict", json=[text]) as response:
                await response.read()

        async def user(offset: int):
            nonlocal errors, sent
            i = offset
            while time.perf_counter() < stop_at and sent < max_requests:
                sent += 1
                began = time.perf_counter()
                try:
                    async with client.post(f"{url}/predict", json=[texts[i % len(texts)]]) as response:
                        await response.read()
                        ok = response.status == 200
                except aiohttp.ClientError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - began)
                else:
                    errors += 1
                i += concurrency

        began = time.perf_counter()
        await asyncio.gather(*(user(k) for k in range(concurrency)))
        wall = time.perf_counter() - began
    ordered = sorted(latencies)
    pick = lambda q: round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else None  # noqa: E731
    return {"concurrency": concurrency, "requests": len(latencies), "errors": errors, "wall_s": round(wall, 2),
            "throughput_rps": round(len(latencies) / wall, 1), "p50_ms": pick(0.50), "p95_ms": pick(0.95),
            "p99_ms": pick(0.99)}


def batch1_latency_ms(run: Path, variant: str, texts: list[str], threads: int, n: int = 200) -> float:
    """The predictor alone, one sentence per call (what ``tl bench`` measures at batch 1)."""
    from transferlearn.deploy.predictor import Predictor
    from transferlearn.run import Run

    predictor = Predictor(Run.load(run), "onnx", variant=variant, threads=threads)
    for text in texts[:20]:
        predictor.logits([text])
    times = []
    for text in texts[:n]:
        began = time.perf_counter()
        predictor.logits([text])
        times.append(time.perf_counter() - began)
    return round(1000 * statistics.median(times), 2)


def batching_ceiling(run: Path, variant: str, texts: list[str], threads: int, group: int = 32) -> dict:
    """The most batching can give this model here: ms per sentence in groups of ``group`` random sentences (as a
    busy server receives them, length-grouped by the predictor) against one at a time. No server, no client."""
    from transferlearn.deploy.predictor import Predictor
    from transferlearn.run import Run

    predictor = Predictor(Run.load(run), "onnx", variant=variant, threads=threads)
    predictor.logits(texts[:64])
    per_item = {}
    for size in (1, group):
        began, n = time.perf_counter(), 0
        for start in range(0, 384, size):
            chunk = texts[start : start + size]
            predictor.logits(chunk, batch_size=group)
            n += len(chunk)
        per_item[size] = 1000 * (time.perf_counter() - began) / n
    return {"ms_per_sentence_alone": round(per_item[1], 2), f"ms_per_sentence_in_groups_of_{group}":
            round(per_item[group], 2), "ceiling": round(per_item[1] / per_item[group], 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default="runs/serve-smsa")
    parser.add_argument("--variant", default="onnx-int8-dynamic")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--max-requests", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    run = Path(args.run)
    texts = sentences()
    tl = [sys.executable, "-m", "transferlearn.cli", "serve", str(run), "--variant", args.variant, "--threads",
          str(args.threads)]
    arms = {
        "tl_serve": tl,
        "tl_serve_max_batch_1": [*tl, "--max-batch", "1"],
        "pipeline_baseline": [sys.executable, str(Path(__file__).with_name("_pipeline_server.py")), str(run / "model")],
    }
    results = {"batch1_predictor_ms": batch1_latency_ms(run, args.variant, texts, args.threads),
               "batching_ceiling": batching_ceiling(run, args.variant, texts, args.threads)}
    print(f"predictor alone, batch 1: p50 {results['batch1_predictor_ms']} ms; most batching can give: "
          f"{results['batching_ceiling']}", flush=True)
    for name, command in arms.items():
        port = free_port()
        command = [*command, "--port", str(port)] if name != "pipeline_baseline" else [*command, str(port),
                                                                                       str(args.threads)]
        proc = start(command, port)
        try:
            results[name] = [asyncio.run(load(f"http://127.0.0.1:{port}", texts, c, args.seconds, args.max_requests))
                             for c in CONCURRENCY]
        finally:
            proc.terminate()
            proc.wait(60)
        for row in results[name]:
            print(f"{name:22s} c={row['concurrency']:2d}: {row['throughput_rps']:7.1f} req/s  p50 {row['p50_ms']} "
                  f"p95 {row['p95_ms']} p99 {row['p99_ms']} ms  errors {row['errors']}", flush=True)

    at = lambda arm, c: next(r for r in results[arm] if r["concurrency"] == c)  # noqa: E731
    ratios = {
        "c1_p50_vs_batch1_predictor": round(at("tl_serve", 1)["p50_ms"] / results["batch1_predictor_ms"], 2),
        "c32_throughput_vs_pipeline": round(at("tl_serve", 32)["throughput_rps"]
                                            / at("pipeline_baseline", 32)["throughput_rps"], 2),
        "c32_throughput_vs_max_batch_1": round(at("tl_serve", 32)["throughput_rps"]
                                               / at("tl_serve_max_batch_1", 32)["throughput_rps"], 2),
        "errors_tl_serve": sum(r["errors"] for r in results["tl_serve"]),
    }
    results["ratios"] = ratios
    results["goals"] = {"c1_p50_vs_batch1_predictor": "<= 1.2", "c32_throughput_vs_pipeline": ">= 4",
                        "c32_throughput_vs_max_batch_1": ">= 1.5", "errors_tl_serve": "0"}
    results["setup"] = {"run": str(run), "variant": args.variant, "threads": args.threads, "seconds": args.seconds,
                        "max_requests": args.max_requests, "request": "one SmSA test sentence per request",
                        "client": "asyncio aiohttp, closed loop, keep-alive, on the same 2 CPUs"}
    write_result("serve_load_smsa", results)
    print(f"ratios: c1 p50 / predictor batch-1 = {ratios['c1_p50_vs_batch1_predictor']} (goal <= 1.2); "
          f"c32 throughput vs pipeline = {ratios['c32_throughput_vs_pipeline']}x (goal >= 4); "
          f"vs --max-batch 1 = {ratios['c32_throughput_vs_max_batch_1']}x (goal >= 1.5; the model's own batching "
          f"ceiling here {results['batching_ceiling']['ceiling']}x); "
          f"errors {ratios['errors_tl_serve']}")


if __name__ == "__main__":
    main()
