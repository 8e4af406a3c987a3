"""The recipe a user would otherwise run: Hugging Face's ``examples/pytorch/text-classification/run_classification.py``
with its defaults, reproduced on the HF Trainer (no transferlearn code), for ``time_to_accuracy_smsa.py``.

What the example does by default and this keeps: every sequence padded to ``max_seq_length=128``
(``pad_to_max_length=True``), truncation, ``AutoModelForSequenceClassification`` with a fresh head, and
``TrainingArguments``' defaults: batch 8, AdamW at 5e-5, linear decay, no warmup, no weight decay, 3 epochs, seed 42,
no length grouping. The one addition is an evaluation every ``--eval-steps`` so the benchmark can see when a
validation score was first reached; each evaluation's own time is recorded so it can be left out of the recipe's
wall time (the example evaluates only at the end).

    python benchmarks/_hf_run_classification.py --model DIR --data DIR --out DIR [--eval-steps 125]

Writes ``DIR/timeline.json``: the process start, and per evaluation its wall time, step, macro-F1 and runtime.
"""

from __future__ import annotations

import time

STARTED = time.time()  # before the imports: a user's wall time includes them

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments  # noqa: E402


def read_tsv(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r[0] for r in rows], [r[1] for r in rows]


class Encoded:
    def __init__(self, tokenizer, texts, labels, label_ids):
        self.enc = tokenizer(texts, padding="max_length", max_length=128, truncation=True)
        self.labels = [label_ids[x] for x in labels]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {**{k: v[i] for k, v in self.enc.items()}, "labels": self.labels[i]}


class Timeline(TrainerCallback):
    def __init__(self):
        self.points = []

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.points.append({"wall_time": time.time(), "step": state.global_step, "epoch": state.epoch,
                            "macro_f1": metrics["eval_macro_f1"], "eval_runtime_s": metrics["eval_runtime"]})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--eval-steps", type=int, default=125)
    args = parser.parse_args()

    train_x, train_y = read_tsv(args.data / "train.tsv")
    valid_x, valid_y = read_tsv(args.data / "valid.tsv")
    names = sorted(set(train_y))
    label_ids = {n: i for i, n in enumerate(names)}
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=len(names))
    timeline = Timeline()

    def compute_metrics(prediction):
        return {"macro_f1": f1_score(prediction.label_ids, np.argmax(prediction.predictions, axis=-1), average="macro")}

    training_args = TrainingArguments(output_dir=str(args.out / "trainer"), seed=42, num_train_epochs=3,
                                      per_device_train_batch_size=8, per_device_eval_batch_size=8, learning_rate=5e-5,
                                      eval_strategy="steps", eval_steps=args.eval_steps, save_strategy="no",
                                      report_to=[], use_cpu=True, disable_tqdm=True, logging_steps=50)
    trainer = Trainer(model=model, args=training_args, train_dataset=Encoded(tokenizer, train_x, train_y, label_ids),
                      eval_dataset=Encoded(tokenizer, valid_x, valid_y, label_ids), compute_metrics=compute_metrics,
                      callbacks=[timeline])
    trainer.train()
    if not timeline.points or timeline.points[-1]["step"] != trainer.state.global_step:
        trainer.evaluate()  # the example's own final evaluation
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "timeline.json").write_text(json.dumps({"started_at": STARTED, "finished_at": time.time(),
                                                        "points": timeline.points}, indent=2))


if __name__ == "__main__":
    main()
