"""Training and evaluation speed levers, before / after, side by side in one run, on real data and backbones:

- images: EfficientNet-Lite0 on hymenoptera at 224 px, batch 16 — training steps (forward, backward, AdamW) and
  evaluation, contiguous (NCHW, what training used before) vs channels_last (NHWC, now the default for CNNs), with
  frozen BatchNorm statistics (the fine-tuning default) computed as a pass of their own or folded into the
  convolutions (now the default);
  whole epochs with data loading: decoding every file every epoch (before), in a worker process, or from the
  decoded-input cache; torch.compile; and a 3-epoch fine-tune as a user runs it, before vs now, with its accuracy;
- text: e5-small on SmSA validation — evaluation batches in file order (before) vs longest first (now);
- audio: Whisper tiny.en on FSDD — training steps fp32 vs bf16, evaluation, and epochs with and without the
  decoded-input cache.

Each figure is the median of repeated timings; the step's FLOPs (torch's FlopCounterMode) are given as a fraction of
the fp32 GEMM peak measured in the same run (2048^3 matmul). The machine is shared: medians, and say so.

    python benchmarks/train_throughput.py [--steps 6] [--threads 2] [--skip-run]

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
from transferlearn.models.batchnorm_fold import fold_frozen_batchnorm, unfold_batchnorm  # noqa: E402


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


def _train_with_frozen_batchnorm(model) -> None:
    """Train mode with BatchNorm statistics frozen: how ``tl train`` fine-tunes pretrained weights."""
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def image_levers(steps: int) -> dict:
    """Training steps (batch 16, 224 px, frozen BatchNorm statistics) and evaluation in each memory format, with
    and without the BatchNorm fold, fp32 and bf16 autocast."""
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
    arms = (("contiguous", torch.contiguous_format, False, False),
            ("channels_last", torch.channels_last, False, False),
            ("channels_last_bn_folded", torch.channels_last, True, False),
            ("channels_last_bn_folded_bf16", torch.channels_last, True, True))
    for layout, memory_format, folded, bf16 in arms:
        model.to(memory_format=memory_format)
        (fold_frozen_batchnorm if folded else unfold_batchnorm)(model)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
        _train_with_frozen_batchnorm(model)

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
        # 3x the forward's FLOPs (backward ~2x forward). Not the counter on a whole step: torch's FlopCounterMode
        # counts a grouped convolution's backward as a dense one (EfficientNet-Lite0, batch 1 at 224 px: forward
        # 0.77 GFLOP, its backward counted as 31.4), which put this step at 515 GFLOP, over the machine's peak.
        with torch.no_grad():
            pixels = batches[0]["pixel_values"].contiguous(memory_format=memory_format)
            step_flops = 3 * flops(lambda pixels=pixels: model(pixel_values=pixels))
        out[layout] = {"train_step_s_median": round(statistics.median(times), 3),
                       "train_samples_per_s": round(16 / statistics.median(times), 2),
                       "eval_samples_per_s": round(64 / eval_s, 2), "step_gflop": round(step_flops / 1e9, 1)}
        print(f"image {layout:14s}: step {out[layout]['train_step_s_median']} s "
              f"({out[layout]['train_samples_per_s']} samples/s), eval {out[layout]['eval_samples_per_s']} samples/s",
              flush=True)
    return out


def _epoch_seconds(model, dataset, collate, memory_format, num_workers: int = 0, folded: bool = True) -> float:
    """One training epoch as the Trainer runs it: a DataLoader over the encoded rows (decoding happens here),
    forward, backward and AdamW at batch 16."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=16, shuffle=True, collate_fn=collate,
                                         num_workers=num_workers, generator=torch.Generator().manual_seed(0))
    (fold_frozen_batchnorm if folded else unfold_batchnorm)(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
    _train_with_frozen_batchnorm(model)
    began = time.perf_counter()
    for batch in loader:
        optimizer.zero_grad()
        model(pixel_values=batch["pixel_values"].contiguous(memory_format=memory_format), labels=batch["labels"]).loss.backward()
        optimizer.step()
    return time.perf_counter() - began


def image_epoch_levers() -> dict:
    """Whole epochs over hymenoptera's training split (light augmentation), data loading included."""
    import shutil

    from transferlearn import load_config
    from transferlearn.train.setup import Setup

    config = load_config(data=str(SHARED_DATA / "hymenoptera"), model="offline:efficientnet-lite0", strategy="full",
                         batch_size=16, augment="light", progress=False, device="cpu", decoded_cache=False)
    setup = Setup.build(config)
    model, bundle, rows = setup.bundle.model, setup.bundle, setup.data.splits["train"]
    collate = setup.modality.collator(bundle, config)
    decoding = setup.modality.encode(bundle, rows, config, train=True)
    cached_config = config.model_copy(update={"decoded_cache": True})
    cached = setup.modality.encode(bundle, rows, cached_config, train=True)
    shutil.rmtree(cached.decoded_cache.folder)  # a cold cache: the first epoch fills it
    cached = setup.modality.encode(bundle, rows, cached_config, train=True)
    _epoch_seconds(model.to(memory_format=torch.channels_last), decoding, collate, torch.channels_last)  # warm-up
    out = {"rows": len(rows)}
    arms = (("before: contiguous, decoding every epoch", torch.contiguous_format, decoding, 0, False),
            ("channels_last, decoding every epoch", torch.channels_last, decoding, 0, False),
            ("channels_last, decoding in 1 worker process", torch.channels_last, decoding, 1, False),
            ("channels_last, cache epoch 1 (fills it)", torch.channels_last, cached, 0, False),
            ("channels_last, cache epoch 2", torch.channels_last, cached, 0, False),
            ("now: channels_last, BatchNorm folded, cache epoch 3", torch.channels_last, cached, 0, True))
    for name, memory_format, dataset, workers, folded in arms:
        model.to(memory_format=memory_format)
        seconds = _epoch_seconds(model, dataset, collate, memory_format, workers, folded)
        out[name] = {"epoch_s": round(seconds, 2), "train_samples_per_s": round(len(rows) / seconds, 2)}
        print(f"image epoch, {name}: {seconds:.1f} s ({len(rows) / seconds:.1f} samples/s)", flush=True)
    out["cache"] = {"hits": cached.decoded_cache.hits, "misses": cached.decoded_cache.misses}
    model.to(memory_format=torch.channels_last)
    out["compile"] = compile_lever(model, [collate([cached[i] for i in range(k, k + 16)]) for k in range(0, 96, 16)])
    return out


def compile_lever(model, batches) -> dict:
    """torch.compile (what --compile gives the Trainer) vs eager, channels_last training steps: the compile stall
    (the first step) and the median step after it."""
    def timed_steps(module) -> list[float]:
        optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4, fused=True)
        times = []
        for batch in batches:
            began = time.perf_counter()
            optimizer.zero_grad()
            module(pixel_values=batch["pixel_values"].contiguous(memory_format=torch.channels_last),
                   labels=batch["labels"]).loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - began)
        return times

    _train_with_frozen_batchnorm(model)
    eager = timed_steps(model)
    compiled = timed_steps(torch.compile(model))
    out = {"eager_step_s": round(statistics.median(eager[1:]), 3), "compiled_step_s": round(statistics.median(compiled[2:]), 3),
           "compile_stall_s": round(compiled[0] + compiled[1] - 2 * statistics.median(compiled[2:]), 1)}
    print(f"image step eager {out['eager_step_s']} s, compiled {out['compiled_step_s']} s (stall {out['compile_stall_s']} s)",
          flush=True)
    return out


def image_run_lever() -> dict:
    """A 3-epoch full fine-tune of hymenoptera as ``tl train`` runs it: before this work (contiguous, decoding
    every epoch) vs now (channels_last, decoded-input cache), same seed; wall time and validation accuracy."""
    import tempfile

    import transferlearn.models.image as image_models
    from transferlearn import finetune, load_config

    out = {}
    convolutional = image_models.is_convolutional
    for name, channels_last, cache, precision in (("before", False, False, "fp32"), ("now", True, True, "auto")):
        image_models.is_convolutional = convolutional if channels_last else (lambda model: False)
        with tempfile.TemporaryDirectory() as folder:
            config = load_config(data=str(SHARED_DATA / "hymenoptera"), model="offline:efficientnet-lite0",
                                 strategy="full", epochs=3, batch_size=16, progress=False, device="cpu",
                                 decoded_cache=cache, baseline=False, time_budget="none", precision=precision,
                                 output=folder + "/run")
            began = time.perf_counter()
            run = finetune(config)
            seconds = time.perf_counter() - began
            out[name] = {"wall_s": round(seconds, 1), "train_runtime_s": run.metrics["train"]["runtime_s"],
                         "validation_accuracy": round(run.metrics["validation"]["accuracy"], 4),
                         "precision": run.config.precision}
        print(f"image 3-epoch fine-tune {name}: {out[name]}", flush=True)
    image_models.is_convolutional = convolutional
    return out


def audio_levers(steps: int) -> dict:
    """Whisper tiny.en on FSDD (digits from file names): training steps fp32 vs bf16 at batch 16, evaluation, and
    whole epochs over 320 clips decoding every clip vs from the decoded-input cache."""
    import shutil

    from transferlearn import load_config
    from transferlearn.train.setup import Setup

    config = load_config(data=str(SHARED_DATA / "fsdd" / "recordings"), model="offline:whisper-tiny-en",
                         label_from_filename=r"^(\d)_", strategy="full", batch_size=16, progress=False, device="cpu",
                         max_duration=1.5, max_train_samples=320, decoded_cache=False)
    setup = Setup.build(config)
    model, bundle = setup.bundle.model, setup.bundle
    collate = setup.modality.collator(bundle, config)
    rows = setup.data.splits["train"]
    encoded = setup.modality.encode(bundle, rows, config, train=False)
    batches = [collate([encoded[i] for i in range(k, k + 16)]) for k in range(0, 16 * (steps + 1), 16)]
    out = {"rows": len(rows)}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
        model.train()
        times = []
        for i, batch in enumerate(batches):
            began = time.perf_counter()
            optimizer.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            if i:
                times.append(time.perf_counter() - began)
        out[f"train_step_{name}_s"] = round(statistics.median(times), 3)
        out[f"train_samples_per_s_{name}"] = round(16 / statistics.median(times), 2)
        print(f"audio train step {name}: {out[f'train_step_{name}_s']} s (batch 16)", flush=True)
    out["step_gflop"] = round(flops(lambda: model(**batches[0]).loss.backward()) / 1e9, 1)
    model.eval()
    with torch.no_grad():
        began = time.perf_counter()
        for batch in batches:
            model(**{k: v for k, v in batch.items() if k != "labels"})
        out["eval_samples_per_s"] = round(16 * len(batches) / (time.perf_counter() - began), 2)

    def read_epoch(dataset) -> float:  # decoding + features only: the part the cache changes
        began = time.perf_counter()
        for k in range(0, len(dataset), 16):
            collate([dataset[i] for i in range(k, min(k + 16, len(dataset)))])
        return time.perf_counter() - began

    cached_config = config.model_copy(update={"decoded_cache": True})
    cached = setup.modality.encode(bundle, rows, cached_config, train=False)
    shutil.rmtree(cached.decoded_cache.folder)
    cached = setup.modality.encode(bundle, rows, cached_config, train=False)
    out["read_epoch_s"] = {"decoding": round(read_epoch(encoded), 2), "cache epoch 1": round(read_epoch(cached), 2),
                           "cache epoch 2": round(read_epoch(cached), 2)}
    print(f"audio: eval {out['eval_samples_per_s']} samples/s; input reading per epoch {out['read_epoch_s']}", flush=True)
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
    out["step_gflop"] = round(flops(lambda: model(**batches[1]).loss.backward()) / 1e9, 1)  # all GEMMs: counted right
    model.zero_grad(set_to_none=True)
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
                               num_labels=len(setup.data.label_names), lengths_of=setup.modality.encoded_lengths)
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
    parser.add_argument("--skip-run", action="store_true", help="skip the two 3-epoch fine-tunes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = gemm_peak_gflops()
    print(f"fp32 GEMM peak: {peak:.0f} GFLOP/s on {args.threads} threads", flush=True)
    image = image_levers(args.steps)
    for layout in image:
        image[layout]["fraction_of_gemm_peak"] = round(image[layout]["step_gflop"]
                                                       / image[layout]["train_step_s_median"] / peak, 3)
    epochs = image_epoch_levers()
    run = None if args.skip_run else image_run_lever()
    audio = audio_levers(args.steps)
    audio["fraction_of_gemm_peak"] = round(audio["step_gflop"] / audio["train_step_fp32_s"] / peak, 3)
    text = text_eval_lever(args.repeats)
    text["train_step_s"]["fraction_of_gemm_peak"] = round(text["train_step_s"]["step_gflop"]
                                                          / text["train_step_s"]["fp32"] / peak, 3)
    ratios = {
        "image_train_channels_last_speedup": round(image["contiguous"]["train_step_s_median"]
                                                   / image["channels_last"]["train_step_s_median"], 2),
        "image_eval_channels_last_speedup": round(image["channels_last"]["eval_samples_per_s"]
                                                  / image["contiguous"]["eval_samples_per_s"], 2),
        "image_train_bn_fold_over_channels_last": round(image["channels_last"]["train_step_s_median"]
                                                        / image["channels_last_bn_folded"]["train_step_s_median"], 2),
        "image_eval_bn_fold_over_channels_last": round(image["channels_last_bn_folded"]["eval_samples_per_s"]
                                                       / image["channels_last"]["eval_samples_per_s"], 2),
        "image_train_bf16_over_fp32": round(image["channels_last_bn_folded"]["train_step_s_median"]
                                            / image["channels_last_bn_folded_bf16"]["train_step_s_median"], 2),
        "image_train_step_now_over_before": round(image["contiguous"]["train_step_s_median"] / min(
            image["channels_last_bn_folded"]["train_step_s_median"],
            image["channels_last_bn_folded_bf16"]["train_step_s_median"]), 2),
        "text_train_bf16_speedup": round(text["train_step_s"]["fp32"] / text["train_step_s"]["bf16"], 2),
        "text_eval_length_sorted_speedup": round(text["file order"]["eval_s_median"]
                                                 / text["longest first"]["eval_s_median"], 2),
        "image_epoch_now_over_before": round(epochs["before: contiguous, decoding every epoch"]["epoch_s"]
                                             / epochs["now: channels_last, BatchNorm folded, cache epoch 3"]["epoch_s"], 2),
        "image_epoch_cache_over_decoding": round(epochs["channels_last, decoding every epoch"]["epoch_s"]
                                                 / epochs["channels_last, cache epoch 2"]["epoch_s"], 2),
        "image_epoch_bn_fold_over_unfolded": round(epochs["channels_last, cache epoch 2"]["epoch_s"]
                                                   / epochs["now: channels_last, BatchNorm folded, cache epoch 3"]
                                                   ["epoch_s"], 2),
        "image_epoch_worker_over_in_process": round(epochs["channels_last, decoding every epoch"]["epoch_s"]
                                                    / epochs["channels_last, decoding in 1 worker process"]["epoch_s"], 2),
        "image_step_compiled_over_eager": round(epochs["compile"]["eager_step_s"] / epochs["compile"]["compiled_step_s"], 2),
        "audio_train_bf16_speedup": round(audio["train_step_fp32_s"] / audio["train_step_bf16_s"], 2),
        "audio_read_cache_speedup": round(audio["read_epoch_s"]["decoding"] / audio["read_epoch_s"]["cache epoch 2"], 2),
    }
    if run:
        ratios["image_3_epoch_run_now_over_before"] = round(run["before"]["wall_s"] / run["now"]["wall_s"], 2)
        ratios["image_3_epoch_validation_accuracy_change"] = round(run["now"]["validation_accuracy"]
                                                                  - run["before"]["validation_accuracy"], 4)
    write_result("train_throughput_hymenoptera_smsa", {"gemm_peak_gflops": round(peak, 1), "image": image,
                                                       "image_epochs": epochs, "image_3_epoch_run": run,
                                                       "audio_fsdd": audio, "text_eval": text, "ratios": ratios,
                                                       "goals": {"image_train": ">= 3x", "text_eval": ">= 2x"}})
    print(f"ratios: image training step now / before {ratios['image_train_step_now_over_before']}x (goal >= 3x; "
          f"channels_last {ratios['image_train_channels_last_speedup']}x, BatchNorm fold "
          f"{ratios['image_train_bn_fold_over_channels_last']}x more), image eval channels_last "
          f"{ratios['image_eval_channels_last_speedup']}x and BatchNorm fold {ratios['image_eval_bn_fold_over_channels_last']}"
          f"x more, SmSA validation length-sorted "
          f"{ratios['text_eval_length_sorted_speedup']}x (goal >= 2x); bf16 autocast (--precision bf16): image training "
          f"{ratios['image_train_bf16_over_fp32']}x over channels_last fp32, text training "
          f"{ratios['text_train_bf16_speedup']}x, audio training {ratios['audio_train_bf16_speedup']}x")
    print(f"image epoch with data loading, now / before: {ratios['image_epoch_now_over_before']}x (BatchNorm fold "
          f"{ratios['image_epoch_bn_fold_over_unfolded']}x, cache "
          f"{ratios['image_epoch_cache_over_decoding']}x, 1 worker {ratios['image_epoch_worker_over_in_process']}x, "
          f"compiled step {ratios['image_step_compiled_over_eager']}x); audio input reading from the cache "
          f"{ratios['audio_read_cache_speedup']}x" + (f"; 3-epoch fine-tune {ratios['image_3_epoch_run_now_over_before']}x, "
          f"validation accuracy {ratios['image_3_epoch_validation_accuracy_change']:+.4f}" if run else ""))


if __name__ == "__main__":
    main()
