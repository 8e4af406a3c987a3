"""``tl bench``: size, load time, latency (p50/p95 per batch size), throughput and test accuracy of every
variant of a run — torch fp32, ORT fp32, ORT int8 dynamic/static, torch int8 — measured here, side by side.

Latency uses real test rows (text keeps their natural lengths), after warm-up, with the same thread count
for torch and onnxruntime. The CPU model and its instruction-set flags are recorded: int8 speed depends
on VNNI / AVX-512.
"""

from __future__ import annotations

import io
import time

import numpy as np
import torch

from ..io import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..machine import cpu_info, thread_settings
from ..plots import png_bytes, subplots
from ..run import Run
from .export import Deployment
from .predictor import OnnxBackend, TorchBackend, torch_dynamic_int8
from .variants import TORCH_DYNAMIC, onnx_session, present_variants


class _Variant:
    """One variant loaded afresh (its load time is part of the result), called on encoded batches."""

    def __init__(self, name: str, deployment: Deployment, names: list[str], threads: int):
        run = deployment.run
        self.name = name
        start = time.perf_counter()
        if name == "torch-fp32":
            self.model = run.modality.load_model_folder(run.model_dir)  # afresh: load time means reading model/
            self.size = sum(p.stat().st_size for p in run.model_dir.glob("*.safetensors"))
            self.call = TorchBackend(self.model, names)
        elif name == TORCH_DYNAMIC:
            self.model = torch_dynamic_int8(deployment.torch.model)
            buffer = io.BytesIO()
            torch.save(self.model.state_dict(), buffer)  # in memory only: the size it would take
            self.size = buffer.tell()
            self.call = TorchBackend(self.model, names)
        else:
            path = run.layout.onnx_file(name)
            self.call = OnnxBackend(onnx_session(path, threads), names)
            self.size = path.stat().st_size
        self.load_s = time.perf_counter() - start

    def __call__(self, batch: dict) -> np.ndarray:
        return self.call(batch)


def _latency(variant: _Variant, batch: dict, warmup: int, budget_s: float, min_reps: int) -> list[float]:
    for _ in range(warmup):
        variant(batch)
    times, start = [], time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < budget_s and len(times) < 500):
        t = time.perf_counter()
        variant(batch)
        times.append(time.perf_counter() - t)
    return times


def bench(run: Run, *, batch_sizes=(1, 8, 32), threads: int = 2, max_drop: float | None = None,
          warmup: int = 5, budget_s: float = 3.0, min_reps: int = 20, max_test: int | None = None) -> dict:
    with thread_settings(threads):
        return _bench(run, batch_sizes=batch_sizes, threads=threads, max_drop=max_drop, warmup=warmup,
                      budget_s=budget_s, min_reps=min_reps, max_test=max_test)


def _bench(run: Run, *, batch_sizes, threads, max_drop, warmup, budget_s, min_reps, max_test) -> dict:
    deployment = Deployment(run)
    splits = deployment.data.splits
    test_split = "test" if "test" in splits else "validation"
    test = splits[test_split]
    if max_test:
        test = test.select(range(min(max_test, len(test))))
    names = deployment.input_names(deployment.encode_rows(test.select(range(min(2, len(test))))))
    present = ["torch-fp32"] + present_variants(run)
    metric = deployment.shape.primary_metric  # what a variant may lose at most --max-drop points of
    # latency batches: random real test rows; batch 1 is the median-size row (a typical single request)
    rng = np.random.default_rng(0)
    latency_rows = {b: test.select(rng.choice(len(test), size=min(b, len(test)), replace=False).tolist())
                    for b in batch_sizes}
    lengths = run.modality.lengths(run.modality.row_inputs(test))
    if lengths is not None and 1 in latency_rows:
        latency_rows[1] = test.select([int(np.argsort(lengths)[len(lengths) // 2])])
    latency_batches = {b: deployment.encode_rows(rows) for b, rows in latency_rows.items()}
    results = {}
    for name in present:
        variant = _Variant(name, deployment, names, threads)
        parts = [deployment.labelled_batch(test.select(range(i, min(i + 32, len(test)))))
                 for i in range(0, len(test), 32)]
        logits, labels = deployment.shape.join([(variant(batch), batch_labels) for batch, batch_labels in parts])
        quality = deployment.shape.summary(labels, logits)  # the label shape's own metrics
        row = {"size_mb": round(variant.size / 2**20, 2), "load_s": round(variant.load_s, 3), "test_metrics": quality,
               "score": quality[metric], "latency_ms": {}}
        for b, batch in latency_batches.items():
            times = np.array(_latency(variant, batch, warmup, budget_s, min_reps if b == 1 else max(5, min_reps // 4)))
            row["latency_ms"][str(b)] = {"p50": round(float(np.median(times)) * 1e3, 2),
                                         "p95": round(float(np.percentile(times, 95)) * 1e3, 2),
                                         "reps": int(len(times)),
                                         "throughput_per_s": round(b / float(np.median(times)), 1)}
        results[name] = row
    baseline = results["torch-fp32"]
    for row in results.values():
        row["drop_pt"] = round(100 * (baseline["score"] - row["score"]), 2)
        row["speedup_b1"] = round(baseline["latency_ms"][str(batch_sizes[0])]["p50"] /
                                  row["latency_ms"][str(batch_sizes[0])]["p50"], 2)
    typical = next((v for k, v in latency_batches.get(1, {}).items() if k in run.modality.sequence_inputs), None)
    report = {"run": str(run.path), "modality": run.modality.name, "threads": threads, "batch_sizes": list(batch_sizes),
              "batch1_tokens": int(typical.shape[1]) if typical is not None else None,
              "scored_split": test_split, "test_rows": int(len(test)), "metric": metric, "machine": cpu_info(),
              "torch": torch.__version__, "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "variants": results}
    if max_drop is not None:
        allowed = [n for n, r in results.items() if r["drop_pt"] <= max_drop]
        chosen = min(allowed, key=lambda n: results[n]["latency_ms"][str(batch_sizes[0])]["p50"])
        report["chosen"] = {"variant": chosen, "max_drop_pt": max_drop,
                            "why": f"fastest at batch {batch_sizes[0]} with a {metric} drop <= {max_drop} pt"}
    layout = run.layout
    layout.deploy.mkdir(parents=True, exist_ok=True)
    atomic_write_json(layout.bench_json, report)
    atomic_write_text(layout.bench_md, bench_markdown(report))
    atomic_write_bytes(layout.bench_plot, _plot(report))
    run.__dict__["bench"] = report
    return report


def bench_markdown(report: dict) -> str:
    sizes, metric = report["batch_sizes"], report.get("metric", "macro_f1")
    head = ("| variant | size MB | load s | " + " | ".join(f"p50 / p95 ms @{b}" for b in sizes) +
            " | throughput @" + str(sizes[-1]) + f" /s | {metric} | drop pt | speed-up @" + str(sizes[0]) + " |")
    lines = [f"CPU: {report['machine']['cpu']} ({', '.join(report['machine']['isa_flags']) or 'no AVX2'}), "
             f"{report['threads']} threads, {report['test_rows']} {report.get('scored_split', 'test')} rows", "",
             head,
             "|" + "---|" * (head.count("|") - 1)]
    for name, r in report["variants"].items():
        lat = " | ".join(f"{r['latency_ms'][str(b)]['p50']} / {r['latency_ms'][str(b)]['p95']}" for b in sizes)
        lines.append(f"| {name} | {r['size_mb']} | {r['load_s']} | {lat} | "
                     f"{r['latency_ms'][str(sizes[-1])]['throughput_per_s']} | {r['score']:.4f} | {r['drop_pt']} | "
                     f"{r['speedup_b1']}x |")
    if "chosen" in report:
        lines += ["", f"Chosen: **{report['chosen']['variant']}** — {report['chosen']['why']}."]
    return "\n".join(lines) + "\n"


def _plot(report: dict) -> bytes:

    fig, ax = subplots(figsize=(6, 3.8))
    b = str(report["batch_sizes"][0])
    for name, r in report["variants"].items():
        ax.scatter(r["latency_ms"][b]["p50"], r["score"], s=30 + 4 * r["size_mb"], label=name)
    ax.set_xlabel(f"p50 latency at batch {b} (ms)"), ax.set_ylabel(f"{report['scored_split']} {report['metric']}")
    ax.set_title("variants: latency vs quality (marker size ~ file size)"), ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return png_bytes(fig)
