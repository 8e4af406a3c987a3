"""The deploy report every deploy_<dataset>.py script runs: export, quantize, bench, one results file."""

from __future__ import annotations

from _common import write_result


def deploy_report(name: str, run, method: str, threads: int, goal: dict) -> dict:
    """tl export + tl quantize --method METHOD + tl bench --max-drop 1.0 on ``run``; returns the summary."""
    from transferlearn.deploy.bench import bench
    from transferlearn.deploy.export import export_onnx, quantize

    export_onnx(run)
    quantize(run, method)
    report = bench(run, batch_sizes=(1, 8, 32), threads=threads, max_drop=1.0)
    int8 = f"onnx-int8-{method}"
    torch_row, int8_row = report["variants"]["torch-fp32"], report["variants"][int8]
    ratio = torch_row["latency_ms"]["1"]["p50"] / int8_row["latency_ms"]["1"]["p50"]
    summary = {"dataset": name, "model": run.config.model, "run": str(run.path), "threads": threads,
               "quantization": method, "batch1_tokens": report.get("batch1_tokens"), "test_rows": report["test_rows"],
               "variants": report["variants"], "chosen": report.get("chosen"),
               "speedup_b1_int8_vs_torch": round(ratio, 2), "macro_f1_drop_pt": int8_row["macro_f1_drop_pt"],
               "goal": goal}
    path = write_result(f"deploy_{name}", summary)
    print((run.path / "deploy" / "bench.md").read_text())
    print(f"results: {path}")
    print(f"macro-F1 drop: {int8_row['macro_f1_drop_pt']:.2f} pt (fp32 {torch_row['test_macro_f1']:.4f} -> int8 "
          f"{int8_row['test_macro_f1']:.4f})")
    print(f"ORT int8 ({method}) vs PyTorch fp32 eager, batch 1, {threads} threads: {ratio:.2f}x faster")
    return summary
