"""SmSA classifier: PyTorch fp32 eager vs onnxruntime int8 at batch 1, typical sentence, 2 threads.

    python benchmarks/deploy_smsa.py [--run RUN] [--model offline:minilm-en] [--threads 2]

Without --run, trains one first (full fine-tune, 2 epochs on 3,000 SmSA sentences). Then the same steps a
user runs: tl export, tl quantize --method dynamic (fused transformer graph + per-channel int8), tl bench.
Goal (issue 6): >= 3x faster at <= 1 pt macro-F1 drop on the full test split; the ratio is printed last.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, write_result  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default=None, help="an existing SmSA run folder")
    parser.add_argument("--model", default="offline:minilm-en")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default="runs/bench-deploy-smsa")
    args = parser.parse_args()

    from transferlearn import finetune, load_config
    from transferlearn.deploy.bench import bench
    from transferlearn.deploy.export import export_onnx, quantize
    from transferlearn.train.run import Run

    if args.run:
        run = Run.load(args.run)
    else:
        run = finetune(load_config(data=str(SHARED_DATA / "smsa"), model=args.model, strategy="full", epochs=2,
                                   max_train_samples=3000, class_weights="balanced", output=args.output,
                                   overwrite=True, progress=False))
    export_onnx(run)
    quantize(run, "dynamic")
    report = bench(run, batch_sizes=(1, 8, 32), threads=args.threads, max_drop=1.0)
    torch_row, int8_row = report["variants"]["torch-fp32"], report["variants"]["onnx-int8-dynamic"]
    ratio = torch_row["latency_ms"]["1"]["p50"] / int8_row["latency_ms"]["1"]["p50"]
    drop = int8_row["macro_f1_drop_pt"]
    path = write_result("deploy_smsa", {
        "dataset": "smsa", "model": run.config.model, "run": str(run.path), "threads": args.threads,
        "batch1_tokens": report["batch1_tokens"], "test_rows": report["test_rows"], "variants": report["variants"],
        "chosen": report.get("chosen"), "speedup_b1_int8_vs_torch": round(ratio, 2), "macro_f1_drop_pt": drop,
        "goal": {"speedup": 3.0, "max_drop_pt": 1.0},
    })
    print((run.path / "deploy" / "bench.md").read_text())
    print(f"results: {path}")
    print(f"macro-F1 drop: {drop:.2f} pt (fp32 {torch_row['test_macro_f1']:.4f} -> int8 {int8_row['test_macro_f1']:.4f})")
    print(f"ORT int8 vs PyTorch fp32 eager, batch 1, {report['batch1_tokens']} tokens, {args.threads} threads: "
          f"{ratio:.2f}x faster")


if __name__ == "__main__":
    main()
