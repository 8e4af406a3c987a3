"""Training and evaluation speed levers, before / after, side by side in one run, on real data and backbones:

- images: EfficientNet-Lite0 on hymenoptera at 224 px, batch 16 — training steps (forward, backward, AdamW) and
  evaluation, contiguous (NCHW, what training used before) vs channels_last (NHWC, now the default for CNNs);
- text: e5-small on SmSA validation — evaluation batches in file order (before) vs longest first (now).

Each figure is the median of repeated timings; the step's FLOPs (torch's FlopCounterMode) are given as a fraction of
the fp32 GEMM peak measured in the same run (2048^3 matmul). The machine is shared: medians, and say so.

    python benchmarks/train_throughput.py [--steps 6] [--threads 2]

Writes benchmarks/results/train_throughput_hymenoptera_smsa.json; prints the ratios last.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, write_result  # noqa: E402


def gemm_peak_gflops(n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(reps):
        began = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - began)
    return 2 * n**3 / min(times) / 1e9


def flops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def image_levers(steps: int) -> dict:
    from transferlearn import load_config
    from transferlearn.train.setup import Setup

    config = load_config(data=str(SHARED_DATA / "hymenoptera"), model="offline:efficientnet-lite0", strategy="full",
                         batch_size=16, augment="light", progress=False, device="cpu")
    setup = Setup.build(config)
    model = setup.bundle.model
    collate = setup.modality.collator(setup.bundle, config)
    train_rows = [setup.encoded["train"][i] for i in range(16 * steps)]
    batches = [collate(train_rows[i : i + 16]) for i in range(0, len(train_rows), 16)]
    eval_rows = [setup.encoded["validation"][i] for i in range(64)]
    eval_batches = [collate(eval_rows[i : i + 32]) for i in range(0, 64, 32)]
    out = {}
    arms = (("contiguous", torch.contiguous_format, False), ("channels_last", torch.channels_last, False),
            ("channels_last_bf16", torch.channels_last, True))
    for layout, memory_format, bf16 in arms:
        model.to(memory_format=memory_format)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
        model.train()

        def step(batch, optimizer=optimizer, memory_format=memory_format, bf16=bf16):
            optimizer.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # what the Trainer's bf16=True does
                loss = model(pixel_values=batch["pixel_values"].contiguous(memory_format=memory_format),
                             labels=batch["labels"]).loss
            loss.backward()
            optimizer.step()

        step(batches[0])  # warm-up: oneDNN picks its kernels
        times = []
        for batch in batches:
            began = time.perf_counter()
            step(batch)
            times.append(time.perf_counter() - began)
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(pixel_values=eval_batches[0]["pixel_values"].contiguous(memory_format=memory_format))
            passes = []
            for _ in range(5):
                began = time.perf_counter()
                for batch in eval_batches:
                    model(pixel_values=batch["pixel_values"].contiguous(memory_format=memory_format))
                passes.append(time.perf_counter() - began)
            eval_s = statistics.median(passes)
        step_flops = flops(lambda: step(batches[0]))
        out[layout] = {"train_step_s_median": round(statistics.median(times), 3),
                       "train_samples_per_s": round(16 / statistics.median(times), 2),
                       "eval_samples_per_s": round(64 / eval_s, 2), "step_gflop": round(step_flops / 1e9, 1)}
        print(f"image {layout:14s}: step {out[layout]['train_step_s_median']} s "
              f"({out[layout]['train_samples_per_s']} samples/s), eval {out[layout]['eval_samples_per_s']} samples/s",
              flush=True)
    return out


def text_train_steps(setup, config, steps: int = 4) -> dict:
    """Median training step (batch 32, length-grouped like training) of e5-small, fp32 vs bf16 autocast."""
    from transferlearn.train.sampling import length_bucketed_order

    model, collate = setup.bundle.model, setup.modality.collator(setup.bundle, config)
    rows = setup.encoded["train"]
    order = length_bucketed_order([len(ids) for ids in rows.with_format(None)["input_ids"]], 32, seed=0)
    batches = [collate([rows[i] for i in order[k : k + 32]]) for k in range(0, 32 * (steps + 1), 32)]
    out = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
        model.train()
        times = []
        for i, batch in enumerate(batches):
            began = time.perf_counter()
            optimizer.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(**{k: v for k, v in batch.items()}).loss
            loss.backward()
            optimizer.step()
            if i:  # the first is warm-up
                times.append(time.perf_counter() - began)
        out[name] = round(statistics.median(times), 3)
        print(f"text train step {name}: {out[name]} s (batch 32)", flush=True)
    return out


def text_eval_lever(repeats: int) -> dict:
    from transferlearn import load_config
    from transferlearn.train.setup import Setup
    from transferlearn.train.trainer import make_trainer, training_arguments

    config = load_config(data=str(SHARED_DATA / "smsa"), model="offline:e5-small-multilingual", strategy="full",
                         progress=False, device="cpu", eval_batch_size=64, lr=5e-5)
    setup = Setup.build(config)
    validation = setup.encoded["validation"]
    lengths = [len(ids) for ids in validation.with_format(None)["input_ids"]]
    out = {"rows": len(lengths), "tokens": sum(lengths), "train_step_s": text_train_steps(setup, config)}
    for order in ("file order", "longest first"):
        trainer = make_trainer(config, setup.bundle.model, training_arguments(config, Path("runs/throughput-tmp")),
                               setup.encoded["train"], validation, collator=setup.modality.collator(setup.bundle, config),
                               processor=setup.bundle.processor, param_groups=[
                                   {"params": [p for p in setup.bundle.model.parameters() if p.requires_grad]}],
                               num_labels=len(setup.data.label_names))
        if order == "file order":  # what evaluation did before: the Trainer's own sequential sampler
            trainer._get_eval_sampler = lambda dataset: torch.utils.data.SequentialSampler(dataset)
        times, padded = [], 0
        for _ in range(repeats):
            began = time.perf_counter()
            metrics = trainer.evaluate()
            times.append(time.perf_counter() - began)
        sampler = trainer._get_eval_sampler(validation)
        ordered = [lengths[i] for i in sampler]
        padded = sum(max(ordered[i : i + 64]) * len(ordered[i : i + 64]) for i in range(0, len(ordered), 64))
        out[order] = {"eval_s_median": round(statistics.median(times), 2),
                      "eval_samples_per_s": round(len(lengths) / statistics.median(times), 1),
                      "padded_tokens": padded, "padding_factor": round(padded / sum(lengths), 2),
                      "macro_f1": round(metrics["eval_macro_f1"], 4)}
        print(f"text eval {order:13s}: {out[order]['eval_s_median']} s ({out[order]['eval_samples_per_s']} rows/s), "
              f"padding x{out[order]['padding_factor']}, macro-F1 {out[order]['macro_f1']}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = gemm_peak_gflops()
    print(f"fp32 GEMM peak: {peak:.0f} GFLOP/s on {args.threads} threads", flush=True)
    image = image_levers(args.steps)
    for layout in image:
        image[layout]["fraction_of_gemm_peak"] = round(image[layout]["step_gflop"]
                                                       / image[layout]["train_step_s_median"] / peak, 3)
    text = text_eval_lever(args.repeats)
    ratios = {
        "image_train_channels_last_speedup": round(image["contiguous"]["train_step_s_median"]
                                                   / image["channels_last"]["train_step_s_median"], 2),
        "image_eval_channels_last_speedup": round(image["channels_last"]["eval_samples_per_s"]
                                                  / image["contiguous"]["eval_samples_per_s"], 2),
        "image_train_bf16_over_channels_last": round(image["channels_last"]["train_step_s_median"]
                                                     / image["channels_last_bf16"]["train_step_s_median"], 2),
        "text_train_bf16_speedup": round(text["train_step_s"]["fp32"] / text["train_step_s"]["bf16"], 2),
        "text_eval_length_sorted_speedup": round(text["file order"]["eval_s_median"]
                                                 / text["longest first"]["eval_s_median"], 2),
    }
    write_result("train_throughput_hymenoptera_smsa", {"gemm_peak_gflops": round(peak, 1), "image": image,
                                                       "text_eval": text, "ratios": ratios,
                                                       "goals": {"image_train": ">= 3x", "text_eval": ">= 2x"}})
    print(f"ratios: image training channels_last {ratios['image_train_channels_last_speedup']}x (goal >= 3x), image "
          f"eval {ratios['image_eval_channels_last_speedup']}x, SmSA validation length-sorted "
          f"{ratios['text_eval_length_sorted_speedup']}x (goal >= 2x); bf16 autocast (--precision bf16): image training "
          f"{ratios['image_train_bf16_over_channels_last']}x over channels_last fp32, text training "
          f"{ratios['text_train_bf16_speedup']}x")


if __name__ == "__main__":
    main()
