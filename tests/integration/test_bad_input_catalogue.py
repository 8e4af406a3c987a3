"""The bad-input catalogue: what a skeptical user throws at ``tl``, each with the outcome it must have.

Every case runs the real CLI entry point (``transferlearn.cli.main``, in this process so the 100+ cases share one
import of torch/transformers) and is one of:
- **error**: exit status 2 (or the case's own), one ``error:`` line saying what/where/what to do, no traceback;
- **handled**: exit 0 and a checked result (a warning said, a value clamped or scaled, a file read right).
An exception escaping ``main`` is a traceback and fails its case. Cases that touch an existing run or user file
also check that nothing there changed. The module prints its tally at the end (cases, clear errors, handled).
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import wave
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from conftest import tree_digest
from transferlearn.cli import main

TALLY: dict[str, int] = {"error": 0, "handled": 0}
OUTCOMES: list[dict] = []  # written to $TL_CATALOGUE_REPORT when set: the closing note's case-by-case table


@dataclass
class Result:
    code: int
    out: str
    err: str


def tl(*args) -> Result:
    """``tl ARGS`` in this process: its exit status, stdout and stderr (rich writes to whatever sys.* is now)."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["tl", *map(str, args)]
    code = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return Result(code, out.getvalue(), err.getvalue())


# ------------------------------------------------------------------------------------------------ inputs


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def sentences(n: int, labels=("negative", "positive")) -> list[tuple[str, str]]:
    from conftest import make_sentences

    return make_sentences(n, 0, labels)


def csv_file(path: Path, n: int = 40, header: str = "text,label", labels=("negative", "positive")) -> Path:
    return write(path, header + "\n" + "".join(f"{t},{lab}\n" for t, lab in sentences(n, labels)))


def png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def image_tree(root: Path, classes=("blue", "red"), per_class: int = 6) -> Path:
    from conftest import make_image

    for c in classes:
        for i in range(per_class):
            (root / c).mkdir(parents=True, exist_ok=True)
            make_image(c, i).save(root / c / f"{i}.png")
    return root


def wav(path: Path, samples: np.ndarray, rate: int = 8000, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())
    return path


def audio_tree(root: Path, classes=("low", "high"), per_class: int = 6) -> Path:
    from conftest import make_tone

    for c in classes:
        for i in range(per_class):
            wav(root / c / f"{c}_{i}.wav", make_tone(c, i))
    return root


class Ctx:
    """What a case may use: a fresh folder, tiny models, data, and finished runs (copied before any case writes)."""

    def __init__(self, tmp: Path, fx: dict):
        self.tmp, self.fx = tmp, fx

    def __getattr__(self, name):
        return self.fx[name]

    def run_copy(self, which: str = "text_run") -> Path:
        target = self.tmp / f"copy-{which}"
        if not target.exists():
            shutil.copytree(self.fx[which], target)
        return target


def train_args(ctx: Ctx, data, *extra, model=None, out=None) -> list:
    return ["train", "--data", data, "--model", model or ctx.text_model, "--output", out or ctx.tmp / "run",
            "--no-progress", "--no-baseline", "--strategy", "full", "--epochs", "1", *extra]


# ------------------------------------------------------------------------------------------------ the cases


@dataclass
class Case:
    name: str
    area: str
    make: Callable  # ctx -> argv
    message: str = ""  # regex the output must match (error: stderr's error line; handled: stderr + stdout)
    handled: bool = False
    check: Callable | None = None  # (ctx, result) -> None: asserts on the handled result or on what stayed intact
    code: int = 2


CASES: list[Case] = []


def error(name, area, make, message, check=None, code=2):
    CASES.append(Case(name, area, make, message, False, check, code))


def handled(name, area, make, message="", check=None):
    CASES.append(Case(name, area, make, message, True, check))


def ok_run(ctx, result):
    assert (ctx.tmp / "run" / "model" / "model.safetensors").exists()
    assert "test" in json.loads((ctx.tmp / "run" / "metrics.json").read_text()) or \
        "validation" in json.loads((ctx.tmp / "run" / "metrics.json").read_text())


def tampered_thresholds(ctx, intact: bool = False) -> Path:
    """A finished tag-set run whose saved thresholds were edited by hand (unless ``intact``)."""
    from transferlearn import finetune, load_config

    folder = write(ctx.tmp / "tags" / "train.csv", "text,tags\n" + "".join(
        f"{t},{('praise', 'complaint', 'praise|complaint')[i % 3]}\n" for i, (t, _) in enumerate(sentences(30)))).parent
    run = finetune(load_config(data=str(folder), model=str(ctx.text_model), strategy="linear-probe", progress=False,
                               baseline=False, output=str(ctx.tmp / "tags-run")))
    if not intact:
        path = run.model_dir / "label_shape.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "thresholds": [0.5, 7.0]}))
    return run.path


def nothing_written(ctx, result):
    assert not (ctx.tmp / "run").exists() or not any((ctx.tmp / "run").iterdir()), "a failed run left files"


# --- config and flags ----------------------------------------------------------------------------------------
error("unknown flag", "config", lambda c: ["train", "--data", "d", "--model", "m", "--learning-rate", "1"],
      r"No such option: --learning-rate")
error("unknown --set key", "config", lambda c: ["train", "--data", "d", "--model", "m", "--set", "warmup_steps=3"],
      r"unknown key 'warmup_steps'")
error("--set without =", "config", lambda c: ["train", "--data", "d", "--model", "m", "--set", "lr"],
      r"--set expects KEY=VALUE, got 'lr'")
error("--set lr=abc", "config", lambda c: ["train", "--data", "d", "--model", "m", "--set", "lr=abc"], r"lr")
error("negative lr", "config", lambda c: ["train", "--data", "d", "--model", "m", "--lr", "-1"], r"lr")
error("zero lr", "config", lambda c: ["train", "--data", "d", "--model", "m", "--lr", "0"], r"lr")
error("zero epochs", "config", lambda c: ["train", "--data", "d", "--model", "m", "--epochs", "0"], r"epochs")
error("zero batch size", "config", lambda c: ["train", "--data", "d", "--model", "m", "--batch-size", "0"], r"batch_size")
error("zero max length", "config", lambda c: ["train", "--data", "d", "--model", "m", "--max-length", "0"], r"max_length")
error("warmup ratio 2", "config", lambda c: ["train", "--data", "d", "--model", "m", "--warmup-ratio", "2"],
      r"warmup_ratio")
error("label smoothing 1.5", "config", lambda c: ["train", "--data", "d", "--model", "m", "--set", "label_smoothing=1.5"],
      r"label_smoothing")
error("val split 0", "config", lambda c: ["train", "--data", "d", "--model", "m", "--val-split", "0"], r"val_split")
error("bad metric", "config", lambda c: ["train", "--data", "d", "--model", "m", "--metric", "auc"], r"auc")
error("bad scheduler", "config", lambda c: ["train", "--data", "d", "--model", "m", "--scheduler", "zigzag"], r"zigzag")
error("bad augment", "config", lambda c: ["train", "--data", "d", "--model", "m", "--augment", "max"], r"max")
error("negative mixup", "config", lambda c: ["train", "--data", "d", "--model", "m", "--mixup", "-1"], r"mixup")
error("bad on-bad-rows", "config", lambda c: ["train", "--data", "d", "--model", "m", "--on-bad-rows", "ignore"],
      r"ignore")
error("unknown strategy", "config", lambda c: ["train", "--data", "d", "--model", "m", "--strategy", "magic"],
      r"unknown strategy 'magic'")
error("freeze without N", "config", lambda c: ["train", "--data", "d", "--model", "m", "--strategy", "freeze"],
      r"needs a number")
error("lora rank 0", "config", lambda c: ["train", "--data", "d", "--model", "m", "--strategy", "lora:0"],
      r"rank must be at least 1")
error("freeze:abc", "config", lambda c: ["train", "--data", "d", "--model", "m", "--strategy", "freeze:abc"], r"freeze")
error("time budget words", "config", lambda c: ["train", "--data", "d", "--model", "m", "--time-budget", "soon"],
      r"time.budget.*soon")
error("negative time budget", "config", lambda c: ["train", "--data", "d", "--model", "m", "--time-budget", "-5m"],
      r"time.budget")
error("zero eval steps", "config", lambda c: ["train", "--data", "d", "--model", "m", "--eval-steps", "0"], r"eval_steps")
error("zero grad accumulation", "config", lambda c: ["train", "--data", "d", "--model", "m", "--set",
                                                     "gradient_accumulation_steps=0"], r"gradient_accumulation_steps")
error("zero max train samples", "config", lambda c: ["train", "--data", "d", "--model", "m", "--set",
                                                     "max_train_samples=0"], r"max_train_samples")
error("config file missing", "config", lambda c: ["train", "-c", c.tmp / "nope.yaml"], r"config file not found")
error("config file not YAML", "config", lambda c: ["train", "-c", write(c.tmp / "c.yaml", "data: [unclosed\n")],
      r"not valid YAML")
error("config file a list", "config", lambda c: ["train", "-c", write(c.tmp / "c.yaml", "- a\n- b\n")],
      r"must hold a mapping")
error("config file unknown key", "config", lambda c: ["train", "-c", write(c.tmp / "c.yaml", "data: d\nmodel: m\nlr_max: 1\n")],
      r"lr_max")
error("config without data", "config", lambda c: ["train", "-c", write(c.tmp / "c.yaml", "model: m\n")], r"data")
error("trust_remote_code from config.yaml", "config",
      lambda c: ["train", "-c", write(c.tmp / "c.yaml", "data: d\nmodel: m\ntrust_remote_code: true\n")],
      r"trust_remote_code is switched on by .*c\.yaml.*--trust-remote-code flag")
error("trust_remote_code from --set", "config",
      lambda c: ["train", "--data", "d", "--model", "m", "--set", "trust_remote_code=true"],
      r"trust_remote_code is switched on by --set")
error("device cuda without a GPU", "config", lambda c: train_args(c, c.sentiment, "--device", "cuda"),
      r"no CUDA GPU is visible", check=nothing_written)
error("freeze:999 on a 2-layer model", "config", lambda c: train_args(c, c.sentiment, "--strategy", "freeze:999"),
      r"strategy freeze:999: the model has only 2 blocks", check=nothing_written)
error("lr-find unknown key", "config", lambda c: ["lr-find", "--data", "d", "--model", "m", "--set", "nope=1"],
      r"unknown key 'nope'")

# --- the output folder ---------------------------------------------------------------------------------------


def finished_run_in_output(ctx):
    shutil.copytree(ctx.text_run, ctx.tmp / "run")
    ctx.fx["digest"] = tree_digest(ctx.tmp / "run")
    return ctx.tmp / "run"


def run_unchanged(ctx, result):
    assert tree_digest(ctx.tmp / "run") == ctx.fx["digest"], "the earlier run was changed"


error("output holds a run", "output", lambda c: (finished_run_in_output(c), train_args(c, c.sentiment))[1],
      r"already holds a run.*--resume.*--overwrite", check=run_unchanged)
error("overwrite with a typo'd data path", "output",
      lambda c: (finished_run_in_output(c), train_args(c, c.tmp / "typo.csv", "--overwrite"))[1],
      r"typo\.csv: file or folder not found", check=run_unchanged)
error("overwrite with header-only data", "output",
      lambda c: (finished_run_in_output(c), train_args(c, write(c.tmp / "h.csv", "text,label\n"), "--overwrite"))[1],
      r"h\.csv: no data rows", check=run_unchanged)
error("overwrite with a missing model", "output",
      lambda c: (finished_run_in_output(c), train_args(c, c.sentiment, "--overwrite", model=c.tmp / "no-model"))[1],
      r"no-model", check=run_unchanged)


def user_folder(ctx):
    write(ctx.tmp / "run" / "model" / "important.txt", "keep me")
    return train_args(ctx, ctx.sentiment)


def user_file_kept(ctx, result):
    assert (ctx.tmp / "run" / "model" / "important.txt").read_text() == "keep me"


error("output is a user folder holding model/", "output", user_folder, r"is not a run folder.*--force",
      check=user_file_kept)
error("output is a file", "output", lambda c: train_args(c, c.sentiment, out=write(c.tmp / "f.txt", "x")),
      r"is a file, not a folder", check=lambda c, r: (c.tmp / "f.txt").read_text() == "x")
error("resume with no checkpoint", "output", lambda c: train_args(c, c.sentiment, "--resume"), r"no checkpoint")


def read_only_output(ctx):
    folder = ctx.tmp / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    return train_args(ctx, ctx.sentiment, out=folder / "run")


if __import__("os").geteuid() != 0:  # root writes into a 0500 folder; sysfs below refuses even root
    error("read-only output folder", "output", read_only_output, r"ro/run cannot be written to \(Permission denied\)")
error("output on a filesystem that refuses folders", "output",
      lambda c: train_args(c, c.sentiment, out=Path("/sys/transferlearn-run")),
      r"--output /sys/transferlearn-run cannot be written to \((Operation not permitted|Permission denied|Read-only)")
error("output below a file", "output", lambda c: train_args(c, c.sentiment, out=write(c.tmp / "f.txt", "x") / "run"),
      r"f\.txt/run cannot be written to \(Not a directory\)", check=lambda c, r: (c.tmp / "f.txt").read_text() == "x")

# --- text data -----------------------------------------------------------------------------------------------
error("data path missing", "text", lambda c: train_args(c, c.tmp / "missing.csv"), r"missing\.csv: file or folder not found",
      check=nothing_written)
error("empty file", "text", lambda c: train_args(c, write(c.tmp / "e.csv", "")), r"e\.csv.*(empty|no rows)")
error("header only", "text", lambda c: train_args(c, write(c.tmp / "h.csv", "text,label\n")), r"h\.csv: no data rows")
error("no label column", "text", lambda c: train_args(c, write(c.tmp / "n.csv", "text\n" + "a b\n" * 20)),
      r"n\.csv.*label")
error("named text column absent", "text", lambda c: train_args(c, csv_file(c.tmp / "d.csv"), "--text-column", "body"),
      r"body")
error("named label column absent", "text", lambda c: train_args(c, csv_file(c.tmp / "d.csv"), "--label-column", "y"),
      r"'y'")
error("one class only", "text", lambda c: train_args(c, csv_file(c.tmp / "one.csv", labels=("pos",))),
      r"only one label \('pos'\)")
handled("a numeric score as the label (80 rows, 1.0-5.0): regression, said", "text",
        lambda c: train_args(c, write(c.tmp / "score.csv", "text,score\n" + "".join(
            f"{t},{1 + (i * 37 % 17) / 4:.2f}\n" for i, (t, _) in enumerate(sentences(80)))), "--label-column", "score"),
        r"label shape: regression — column 'score' holds 17 distinct numbers from 1 to 5, with fractions",
        check=lambda c, r: json.loads((c.tmp / "run" / "metrics.json").read_text())["problem"] == "regression")
error("a numeric column forced into classes (--problem single-label)", "text",
      lambda c: train_args(c, write(c.tmp / "ids.csv", "text,rating\n" + "".join(
          f"{t},{i * 7 % 300}\n" for i, (t, _) in enumerate(sentences(200)))), "--label-column", "rating",
          "--problem", "single-label"),
      r"ids\.csv.*column 'rating' holds 200 distinct whole numbers from 0 to 29[0-9].* would become 200 classes .*"
      r"--problem regression", check=nothing_written)
handled("tag sets as the label (price|service): multi-label, said", "text",
        lambda c: train_args(c, write(c.tmp / "tags.csv", "text,label\n" + "".join(
            f"{t},{('price', 'service', 'price|service', 'fuel;price')[i % 4]}\n"
            for i, (t, _) in enumerate(sentences(40))))),
        r"label shape: multi-label — column 'label' holds sets of tags \('price\|service' in row 3 and 19 more\)",
        check=lambda c, r: json.loads((c.tmp / "run" / "metrics.json").read_text())["problem"] == "multi-label")
error("a tag cell with an empty tag (price||service)", "text",
      lambda c: train_args(c, write(c.tmp / "tags.csv", "text,label\n" + "".join(
          f"{t},{('price', 'service', 'price|service', 'price||service')[i % 4]}\n"
          for i, (t, _) in enumerate(sentences(40))))),
      r"tags\.csv.*row 4: tag set 'price\|\|service' has an empty tag .*10 row\(s\) like it", check=nothing_written)
error("a non-number in a regression column", "text",
      lambda c: train_args(c, write(c.tmp / "score.csv", "text,score\n" + "".join(
          f"{t},{'n/a' if i == 6 else f'{1 + i / 8:.2f}'}\n" for i, (t, _) in enumerate(sentences(40)))),
          "--label-column", "score", "--problem", "regression"),
      r"score\.csv.*row 7 holds 'n/a', not a number: --problem regression needs numeric label columns",
      check=nothing_written)
error("a non-number in a regression column of the validation file", "text",
      lambda c: train_args(c, (write(c.tmp / "d" / "train.csv", "text,score\n" + "".join(
          f"{t},{1 + i / 8:.2f}\n" for i, (t, _) in enumerate(sentences(40)))), write(
          c.tmp / "d" / "valid.csv", "text,score\ngood food,2.5\nbad food,high\n"))[0].parent),
      r"valid\.csv.*row 2: 'high' is not a number \(a regression column holds numbers only\)", check=nothing_written)
error("a label column missing in the validation file", "text",
      lambda c: train_args(c, (write(c.tmp / "d" / "train.csv", "text,fuel,price\n" + "".join(
          f"{t},{lab},{'neutral' if i % 3 else lab}\n" for i, (t, lab) in enumerate(sentences(40)))),
          write(c.tmp / "d" / "valid.csv", "text,fuel\ngood food,positive\n"))[0].parent, "--label-column", "fuel,price"),
      r"valid\.csv: no column 'price' \(columns: text, fuel\)", check=nothing_written)
error("two rows", "text", lambda c: train_args(c, write(c.tmp / "two.csv", "text,label\ngood food,pos\nbad food,neg\n")),
      r"one class only")
error("ragged CSV row", "text", lambda c: train_args(c, write(c.tmp / "r.csv", "text,label\na,pos\nb,neg,extra\n" +
                                                            "c,pos\n" * 10)), r"r\.csv, line 3: 3 fields, expected 2")
error("unterminated quote", "text", lambda c: train_args(c, write(c.tmp / "q.csv", 'text,label\n"open,pos\nx,neg\n')),
      r"q\.csv")
error("binary file as CSV", "text", lambda c: train_args(c, (c.tmp / "b.csv").write_bytes(bytes(range(256)) * 20) and
                                                          c.tmp / "b.csv"), r"b\.csv")
error("bad JSONL line", "text", lambda c: train_args(c, write(c.tmp / "j.jsonl", '{"text": "a", "label": "p"}\n{oops\n')),
      r"j\.jsonl.*line 2")
error("JSONL of lists", "text", lambda c: train_args(c, write(c.tmp / "l.jsonl", '["a", "p"]\n["b", "n"]\n')),
      r"l\.jsonl.*line 1")
error("unsupported file type", "text", lambda c: train_args(c, write(c.tmp / "d.xlsx", "x")), r"d\.xlsx")
error("folder without a train file", "text", lambda c: train_args(c, (csv_file(c.tmp / "f" / "valid.csv"),
                                                                      c.tmp / "f")[1]), r"train")
error("unknown label in validation", "text",
      lambda c: train_args(c, (csv_file(c.tmp / "f" / "train.csv"),
                               write(c.tmp / "f" / "valid.csv", "text,label\ngood,positive\nmeh,neutral\n"),
                               c.tmp / "f")[2]), r"valid\.csv.*row 2.*neutral")
error("empty label cells", "text", lambda c: train_args(c, write(c.tmp / "el.csv", "text,label\n" + "good food,\n" * 20)),
      r"el\.csv.*(label|empty)")
error("latin-1 file", "text", lambda c: train_args(c, (c.tmp / "l1.csv").write_bytes(
      "text,label\ncaf\xe9 good,pos\nbad,neg\n".encode("latin-1")) and c.tmp / "l1.csv"), r"l1\.csv.*UTF-8")
error("hub id offline", "text", lambda c: train_args(c, "someone/some-dataset"), r"some-dataset")
error("model folder missing", "text", lambda c: train_args(c, c.sentiment, model=c.tmp / "nomodel"), r"nomodel")
error("unknown offline model", "text", lambda c: train_args(c, c.sentiment, model="offline:nope"),
      r"unknown offline model 'offline:nope'")
error("model folder without weights", "text", lambda c: train_args(c, c.sentiment, model=(
      write(c.tmp / "m" / "config.json", "{}"), c.tmp / "m")[1]), r"m\b")
error("--task image on text data", "text", lambda c: train_args(c, c.sentiment, "--task", "image"), r"image")


def tsv_quotes(ctx):
    rows = [f'"{t.split()[0]}" {" ".join(t.split()[1:])}\t{lab}' for t, lab in sentences(40)]
    return train_args(ctx, write(ctx.tmp / "q.tsv", "text\tlabel\n" + "\n".join(rows) + "\n"))


def quotes_kept(ctx, result):
    from transferlearn.data.text import load_text_data

    data = load_text_data(str(ctx.tmp / "q.tsv"))
    texts = list(data.splits["train"]["text"]) + list(data.splits["validation"]["text"])
    assert all(t.startswith('"') and t.count('"') == 2 for t in texts), texts[:3]
    ok_run(ctx, result)


handled("TSV text with quotes keeps them", "text", tsv_quotes, check=quotes_kept)
handled("max length above the model's", "text", lambda c: train_args(c, c.sentiment, "--max-length", "1000"),
        r"--max-length 1000 is longer than the model accepts",
        check=lambda c, r: json.loads((c.tmp / "run" / "plan.json").read_text())["updates"]["max_length"] <= 66)
handled("warmup ratio 1", "text", lambda c: train_args(c, c.sentiment, "--warmup-ratio", "1"), check=ok_run)
handled("numeric labels", "text", lambda c: train_args(c, write(c.tmp / "n.csv", "text,label\n" + "".join(
    f"{t},{1 if lab == 'positive' else 0}\n" for t, lab in sentences(40)))),
    check=lambda c, r: json.loads((c.tmp / "run" / "metrics.json").read_text())["label_names"] == ["0", "1"])
handled("empty text rows skipped", "text", lambda c: train_args(c, write(c.tmp / "e.csv", "text,label\n" + "".join(
    f"{t},{lab}\n" for t, lab in sentences(40)) + " ,positive\n"), "--on-bad-rows", "skip"), check=ok_run)
handled("a class with one row", "text", lambda c: train_args(c, write(c.tmp / "rare.csv", "text,label\n" + "".join(
    f"{t},{lab}\n" for t, lab in sentences(40)) + "good food,rare\n")), r"single example|no training example",
    check=ok_run)
handled("BOM and CRLF", "text", lambda c: train_args(c, (c.tmp / "w.csv").write_bytes(
    ("\ufefftext,label\r\n" + "".join(f"{t},{lab}\r\n" for t, lab in sentences(40))).encode("utf-8")) and c.tmp / "w.csv"),
    check=lambda c, r: json.loads((c.tmp / "run" / "metrics.json").read_text())["label_names"] == ["negative", "positive"])


def full_disk(ctx):
    import shutil as sh

    real = sh.disk_usage
    ctx.fx["monkeypatch"].setattr(sh, "disk_usage", lambda p: real(p)._replace(free=1000))
    return train_args(ctx, ctx.sentiment)


error("a disk too full for the run", "output", full_disk, r"disk has 0 MiB free.*needs about", check=nothing_written)

# --- tagged words and sentence pairs ----------------------------------------------------------------------------
def conll(path: Path, n: int = 30, bad: str = "") -> Path:
    """A CoNLL file of ``n`` sentences, the first word of each a person; ``bad`` lines go into the second sentence."""
    blocks = []
    for i, (text, _) in enumerate(sentences(n)):
        words = text.split()
        lines = [f"{w}\t{'B-PER' if j == 0 else 'O'}" for j, w in enumerate(words)]
        if i == 1 and bad:
            lines.append(bad)
        blocks.append("\n".join(lines))
    return write(path, "\n\n".join(blocks) + "\n")


error("a CoNLL line with no tag", "text", lambda c: train_args(c, conll(c.tmp / "ner" / "train.conll", bad="alone")),
      r"train\.conll, line \d+: 'alone' has no tag; each line is token<TAB>tag", check=nothing_written)
error("I-X after O in a CoNLL file, --bio error", "text",
      lambda c: train_args(c, conll(c.tmp / "ner" / "train.conll", bad="lonely\tI-PER"), "--bio", "error"),
      r"train\.conll, line \d+: tag 'I-PER' continues no entity of its type \(after 'O'\).*--bio repair",
      check=nothing_written)
handled("I-X after O in a CoNLL file (--bio repair, the default): read as B-X, counted", "text",
        lambda c: train_args(c, conll(c.tmp / "ner" / "train.conll", bad="lonely\tI-PER")),
        r"1 tag\(s\) I-X after O or another type read as B-X",
        check=lambda c, r: json.loads((c.tmp / "run" / "metrics.json").read_text())["problem"] == "token-tags")
error("JSONL tokens and tags of unequal length", "text",
      lambda c: train_args(c, write(c.tmp / "t.jsonl", "".join(
          json.dumps({"tokens": t.split(), "tags": ["O"] * (len(t.split()) - (i == 3))}) + "\n"
          for i, (t, _) in enumerate(sentences(20))))),
      r"t\.jsonl, line 4: \d+ tokens but \d+ tags in 'tags'; each token needs exactly one tag", check=nothing_written)
error("--problem token-tags on a table of texts", "text",
      lambda c: train_args(c, csv_file(c.tmp / "d.csv"), "--problem", "token-tags"),
      r"--problem token-tags needs a tag per word: CoNLL files", check=nothing_written)
error("a sentence pair with one side empty", "text",
      lambda c: train_args(c, write(c.tmp / "pairs.csv", "sentence1,sentence2,label\n" + "".join(
          f"{t},{'' if i == 5 else t},{label}\n" for i, (t, label) in enumerate(sentences(30))))),
      r"pairs\.csv, line 7: empty text in column 'sentence2' \(one side of a sentence pair\)", check=nothing_written)
error("--text-column with three columns", "text",
      lambda c: train_args(c, csv_file(c.tmp / "d.csv"), "--text-column", "a,b,c"),
      r"--text-column 'a,b,c': one column, or two different ones for sentence pairs")

# --- images --------------------------------------------------------------------------------------------------


def image_args(ctx, data, *extra):
    return train_args(ctx, data, *extra, model=ctx.image_model)


def with_bad_image(ctx, name: str, content: bytes | None = None, array=None, skip=False):
    root = image_tree(ctx.tmp / "imgs")
    target = root / "red" / name
    if array is not None:
        png(target, array)
    else:
        target.write_bytes(content)
    return image_args(ctx, root, *(["--on-bad-rows", "skip"] if skip else []))


def bomb(ctx, skip=False):
    from PIL import Image

    root = image_tree(ctx.tmp / "imgs")
    Image.new("L", (20000, 20000)).save(root / "red" / "bomb.png")
    return image_args(ctx, root, *(["--on-bad-rows", "skip"] if skip else []))


error("corrupt image", "image", lambda c: with_bad_image(c, "bad.png", b"\x89PNG\r\n\x1a\nnot really"), r"bad\.png")
handled("corrupt image skipped", "image", lambda c: with_bad_image(c, "bad.png", b"\x89PNG\r\n\x1a\nnot", skip=True),
        r"bad\.png|skipped", check=ok_run)
error("zero-byte image", "image", lambda c: with_bad_image(c, "zero.jpg", b""), r"zero\.jpg.*empty file")
error("text file named .jpg", "image", lambda c: with_bad_image(c, "note.jpg", b"hello"), r"note\.jpg.*not an image")
error("decompression bomb", "image", bomb, r"bomb\.png.*too large to decode safely")
handled("decompression bomb skipped", "image", lambda c: bomb(c, skip=True), r"bomb\.png|skipped", check=ok_run)


def sixteen_bit(ctx):
    root = image_tree(ctx.tmp / "imgs")
    png(root / "red" / "deep.png", (np.linspace(0, 65535, 40 * 40).reshape(40, 40)).astype(np.uint16))
    return image_args(ctx, root)


def scaled_not_white(ctx, result):
    from transferlearn.data.augment import open_image

    pixels = np.asarray(open_image(ctx.tmp / "imgs" / "red" / "deep.png"))
    assert (pixels == 255).mean() < 0.01 and pixels.min() == 0  # spread over 0..255, not clipped white
    ok_run(ctx, result)


handled("16-bit grayscale PNG", "image", sixteen_bit, r"16-bit", check=scaled_not_white)
handled("RGBA, palette and grayscale images", "image", lambda c: (
    png(image_tree(c.tmp / "imgs") / "red" / "rgba.png", np.full((40, 40, 4), 200, np.uint8)),
    png(c.tmp / "imgs" / "blue" / "gray.png", np.full((40, 40), 50, np.uint8)),
    image_args(c, c.tmp / "imgs"))[2], check=ok_run)
handled("a 1x1 image", "image", lambda c: with_bad_image(c, "dot.png", array=np.zeros((1, 1, 3), np.uint8)),
        check=ok_run)
handled("non-image files beside the images", "image", lambda c: (
    write(image_tree(c.tmp / "imgs") / "red" / "notes.txt", "hi"), write(c.tmp / "imgs" / ".DS_Store", "x"),
    image_args(c, c.tmp / "imgs"))[2], check=ok_run)
error("an empty image folder", "image", lambda c: image_args(c, (c.tmp / "empty").mkdir() or c.tmp / "empty"),
      r"empty")
error("one class folder", "image", lambda c: image_args(c, image_tree(c.tmp / "one", classes=("red",))),
      r"only one label \(.red.\)")
error("image list with a missing file", "image", lambda c: image_args(c, write(c.tmp / "list.csv", "image,label\n" + "".join(
    f"{c.tmp / 'nowhere'}/{i}.png,{'red' if i % 2 else 'blue'}\n" for i in range(8)))), r"nowhere.*not found")
error("image list without a path column", "image", lambda c: image_args(c, write(c.tmp / "list.csv", "x,label\n" + "".join(
    f"{i},{'red' if i % 2 else 'blue'}\n" for i in range(8))), "--task", "image"), r"list\.csv: no image path column")
error("--image-size 0", "image", lambda c: image_args(c, c.images, "--image-size", "0"), r"image_size")
error("image data on a text model", "image", lambda c: train_args(c, image_tree(c.tmp / "imgs")), r"text model|image")

# --- audio ---------------------------------------------------------------------------------------------------


def audio_args(ctx, data, *extra):
    return train_args(ctx, data, *extra, model=ctx.audio_model)


def with_bad_clip(ctx, name: str, content: bytes | None = None, samples=None, rate=8000, channels=1, skip=False):
    root = audio_tree(ctx.tmp / "clips")
    target = root / "high" / name
    if samples is not None:
        wav(target, samples, rate, channels)
    else:
        target.write_bytes(content)
    return audio_args(ctx, root, *(["--on-bad-rows", "skip"] if skip else []))


error("corrupt clip", "audio", lambda c: with_bad_clip(c, "bad.wav", b"RIFF\x00\x00WAVEjunk"), r"bad\.wav")
handled("corrupt clip skipped", "audio", lambda c: with_bad_clip(c, "bad.wav", b"RIFFjunk", skip=True), r"bad\.wav|skipped",
        check=ok_run)
error("zero-byte clip", "audio", lambda c: with_bad_clip(c, "zero.wav", b""), r"zero\.wav")
error("a clip with no samples", "audio", lambda c: with_bad_clip(c, "none.wav", samples=np.zeros(0)), r"none\.wav")
handled("stereo clip", "audio", lambda c: with_bad_clip(c, "st.wav", samples=np.zeros(1600), channels=2), check=ok_run)
handled("44.1 kHz clip among 8 kHz ones", "audio", lambda c: with_bad_clip(c, "hi.wav", samples=np.zeros(44100 // 2),
                                                                          rate=44100), check=ok_run)
handled("silent clip", "audio", lambda c: with_bad_clip(c, "quiet.wav", samples=np.zeros(4000)), check=ok_run)
handled("a 1-sample clip", "audio", lambda c: with_bad_clip(c, "tick.wav", samples=np.zeros(1)), check=ok_run)
error("a folder without audio", "audio", lambda c: audio_args(c, (write(c.tmp / "a" / "x" / "readme.md", "hi"),
                                                                  c.tmp / "a")[1]), r"a\b|no .*files|audio")
error("audio list with a missing file", "audio", lambda c: audio_args(c, write(c.tmp / "list.csv", "audio,label\n" + "".join(
    f"{c.tmp}/gone/{i}.wav,{'low' if i % 2 else 'high'}\n" for i in range(8)))), r"gone.*not found")
error("--max-duration 0", "audio", lambda c: audio_args(c, c.audio, "--max-duration", "0"), r"max_duration")
error("one speaker group only", "audio", lambda c: audio_args(c, audio_tree(c.tmp / "clips"), "--set",
                                                               r"group_from_filename=^(zz)"), r"group_from_filename|zz")

# --- predict and evaluate ------------------------------------------------------------------------------------
error("predict: run missing", "predict", lambda c: ["predict", c.tmp / "nowhere", "hi"], r"nowhere")
error("predict: not a run", "predict", lambda c: ["predict", (c.tmp / "plain").mkdir() or c.tmp / "plain", "hi"],
      r"plain.*(not a run|config\.yaml)")
error("predict: no inputs", "predict", lambda c: ["predict", c.text_run], r"nothing to predict")
error("predict: --file missing", "predict", lambda c: ["predict", c.text_run, "--file", c.tmp / "in.txt"],
      r"in\.txt: file not found")
error("predict: empty --file", "predict", lambda c: ["predict", c.text_run, "--file", write(c.tmp / "in.txt", "\n\n")],
      r"nothing to predict")
error("predict: an empty text", "predict", lambda c: ["predict", c.text_run, ""], r"input 1 is empty or only spaces")
error("predict: tag-set thresholds tampered with", "predict",
      lambda c: ["predict", tampered_thresholds(c), "good food"],
      r"label_shape\.json: not a valid label-shape file .*thresholds must be 2 numbers between 0 and 1.*re-train",
      check=lambda c, r: json.loads((c.tmp / "tags-run" / "model" / "label_shape.json").read_text())["thresholds"]
      == [0.5, 7.0])
error("predict: an empty text to a tag-set model", "predict",
      lambda c: ["predict", tampered_thresholds(c, intact=True), " "], r"input 1 is empty or only spaces")
error("predict: only spaces among texts", "predict", lambda c: ["predict", c.text_run, "good", "   "],
      r"input 2 is empty or only spaces")
error("predict: --top-k 0", "predict", lambda c: ["predict", c.text_run, "hi", "--top-k", "0"], r"at least 1")
error("predict: --top-k -1", "predict", lambda c: ["predict", c.text_run, "hi", "--top-k", "-1"], r"at least 1")
handled("predict: --top-k above the classes", "predict", lambda c: ["predict", c.text_run, "good", "--top-k", "9", "--json"],
        check=lambda c, r: len(json.loads(r.out.splitlines()[0])["probabilities"]) == 2)
handled("predict: an image path on a text model", "predict",
        lambda c: ["predict", c.text_run, png(c.tmp / "cat.png", np.zeros((4, 4, 3), np.uint8))],
        r"cat\.png' is a file path, but this is a text model")
error("predict: text on an image model", "predict", lambda c: ["predict", c.image_run, "a red square"],
      r"'a red square': not a file.*image model")
error("predict: a corrupt image", "predict", lambda c: ["predict", c.image_run, write(c.tmp / "x.png", "nope")],
      r"x\.png")
error("predict: --onnx before export", "predict", lambda c: ["predict", c.run_copy(), "hi", "--onnx"],
      r"no ONNX model yet.*tl export")


def without_model(ctx):
    run = ctx.run_copy()
    shutil.rmtree(run / "model")
    return ["predict", run, "good"]


error("predict: a run without model/", "predict", without_model, r"no model/ folder")


def killed_before_metrics(ctx):
    run = ctx.run_copy()
    for name in ("metrics.json", "report.html"):
        (run / name).unlink()
    return ["predict", run, "good food", "--json"]


handled("predict: a run killed before metrics.json", "predict", killed_before_metrics,
        check=lambda c, r: json.loads(r.out.splitlines()[0])["label"] in ("negative", "positive"))
handled("predict: unicode and empty-ish text", "predict", lambda c: ["predict", c.text_run, "😀 ñ 中文", " x ", "--json"],
        check=lambda c, r: len(r.out.splitlines()) == 2)
error("evaluate: data with an unknown label", "predict",
      lambda c: ["evaluate", c.text_run, "--data", write(c.tmp / "e.csv", "text,label\ngood,positive\nmeh,neutral\n")],
      r"e\.csv.*neutral")
error("evaluate: no such split", "predict", lambda c: ["evaluate", c.text_run, "--split", "holdout"], r"holdout")
error("evaluate: data without a label column", "predict",
      lambda c: ["evaluate", c.text_run, "--data", write(c.tmp / "e.csv", "text\ngood food\nbad food\n")],
      r"e\.csv: cannot find a label column")
handled("evaluate: data of one class only", "predict",
        lambda c: ["evaluate", c.text_run, "--json", "--data", write(c.tmp / "e.csv", "text,label\ngood food,positive\n"
                                                                     "great place,positive\n")],
        check=lambda c, r: json.loads(r.out)["per_class"]["positive"]["support"] == 2)

# --- deploy --------------------------------------------------------------------------------------------------
error("export: run missing", "deploy", lambda c: ["export", c.tmp / "nowhere"], r"nowhere")
handled("quantize before export exports first", "deploy", lambda c: ["quantize", c.run_copy()],
        check=lambda c, r: (c.tmp / "copy-text_run" / "deploy" / "model.onnx").exists())
error("quantize: unknown method", "deploy", lambda c: ["quantize", c.run_copy(), "--method", "int3"], r"int3")
handled("bench before export exports first", "deploy", lambda c: ["bench", c.run_copy(), "--budget-s", "0.05",
                                                                   "--batch-sizes", "1"],
        check=lambda c, r: (c.tmp / "copy-text_run" / "deploy" / "bench.json").exists())
error("bench: bad batch sizes", "deploy", lambda c: ["bench", c.run_copy(), "--batch-sizes", "1,x"],
      r"--batch-sizes '1,x': expected positive whole numbers")
error("export: 0 check samples", "deploy", lambda c: ["export", c.run_copy(), "--samples", "0"],
      r"'--samples': Input should be greater than or equal to 1")
error("export: opset 5", "deploy", lambda c: ["export", c.run_copy(), "--opset", "5"],
      r"'--opset': Input should be greater than or equal to 7")
error("export: opset 9 the model needs more of", "deploy", lambda c: ["export", c.run_copy(), "--opset", "9"],
      r"torch.onnx.export failed at opset 9.*--opset 17",
      check=lambda c, r: not (c.tmp / "copy-text_run" / "deploy" / "model.onnx").exists())


def package_into_run(ctx):
    run = ctx.run_copy()
    ctx.fx["digest"] = tree_digest(run)
    return ["package", run, "--out", run, "--overwrite"]


def copy_unchanged(ctx, result):
    assert tree_digest(ctx.tmp / "copy-text_run") == ctx.fx["digest"]


error("package: --out is the run", "deploy", package_into_run, r"--out.*run folder", check=copy_unchanged)
error("package: --out inside the run", "deploy",
      lambda c: (package_into_run(c), ["package", c.tmp / "copy-text_run", "--out", c.tmp / "copy-text_run" / "pkg"])[1],
      r"--out.*run folder", check=copy_unchanged)
error("package: --out exists", "deploy",
      lambda c: ["package", c.run_copy(), "--out", write(c.tmp / "pkg" / "mine.txt", "x").parent], r"pkg.*--overwrite",
      check=lambda c, r: (c.tmp / "pkg" / "mine.txt").read_text() == "x")
error("push: offline", "deploy", lambda c: ["push", c.run_copy(), "--repo-id", "me/model"], r"offline.*nothing was uploaded")
error("push: bad repo id", "deploy", lambda c: ["push", c.run_copy(), "--repo-id", "justaname"], r"user/name")
error("package: run missing", "deploy", lambda c: ["package", c.tmp / "nowhere", "--out", c.tmp / "pkg"], r"nowhere")
error("serve: not a run", "deploy", lambda c: ["serve", c.tmp / "nowhere"], r"nowhere is not a run folder")
error("serve: --backend onnx before export", "deploy", lambda c: ["serve", c.run_copy(), "--backend", "onnx"],
      r"--backend onnx, but there is no ONNX model; run `tl export")
error("serve: unknown --variant", "deploy", lambda c: ["serve", c.run_copy(), "--variant", "int3"],
      r"no ONNX variant 'int3'")
error("serve: port out of range", "deploy", lambda c: ["serve", c.run_copy(), "--port", "99999"],
      r"tl serve: --port: Input should be less than or equal to 65535")
handled("package writes the dataset's name, not its path", "deploy",
        lambda c: ["package", c.run_copy(), "--out", c.tmp / "pkg"],
        check=lambda c, r: str(c.sentiment) not in (c.tmp / "pkg" / "README.md").read_text())


# ------------------------------------------------------------------------------------------------ the test


@pytest.fixture(scope="module")
def runs(tmp_path_factory, trained_tiny_run, tiny_image_model, image_folder):
    from transferlearn import finetune, load_config

    image_run = finetune(load_config(data=str(image_folder), model=str(tiny_image_model()), strategy="full", epochs=1,
                                     output=str(tmp_path_factory.mktemp("runs") / "image"), progress=False,
                                     baseline=False))
    return {"text_run": trained_tiny_run.path, "image_run": image_run.path}


@pytest.fixture
def ctx(tmp_path, runs, sentiment_folder, image_folder, audio_folder, tiny_text_model, tiny_image_model,
        tiny_audio_model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return Ctx(tmp_path, {**runs, "sentiment": sentiment_folder, "images": image_folder, "audio": audio_folder,
                          "text_model": tiny_text_model("bert"), "image_model": tiny_image_model(),
                          "audio_model": tiny_audio_model(), "monkeypatch": monkeypatch})


@pytest.mark.parametrize("case", CASES, ids=[f"{c.area}: {c.name}" for c in CASES])
def test_case(case: Case, ctx):
    argv = case.make(ctx)
    result = tl(*argv)
    said = result.err + result.out
    assert "Traceback" not in said, said[-3000:]
    if case.handled:
        assert result.code == 0, said[-3000:]
        if case.message:
            import re

            # rich wraps long lines (a long temporary path moves the break): spaces it put in are not the message's
            joined = " ".join(said.split())
            assert re.search(case.message, joined) or re.search(case.message, re.sub(r"(\S) (?=')", r"\1", joined)), \
                said[-3000:]
    else:
        import re

        assert result.code == case.code, said[-3000:]
        lines = [line for line in result.err.splitlines() if line.startswith("error:")] or [
            line for line in result.err.splitlines() if "Error" in line or "No such option" in line]
        assert lines, said[-3000:]
        assert re.search(case.message, " ".join(" ".join(result.err.split("error:", 1)[-1:]).split())), said[-3000:]
    if case.check is not None:
        case.check(ctx, result)
    TALLY["handled" if case.handled else "error"] += 1
    said_line = next((line for line in result.err.splitlines() if line.startswith("error:")), "") if not case.handled \
        else " ".join(line.strip() for line in result.err.splitlines() if "WARNING" in line or "skipped" in line)
    OUTCOMES.append({"area": case.area, "case": case.name, "outcome": "handled" if case.handled else "clear error",
                     "exit": result.code, "said": " ".join(said_line.split())[:300]})


def test_catalogue_is_large_enough():
    areas = {c.area for c in CASES}
    assert len(CASES) >= 100 and {"config", "text", "image", "audio", "predict", "deploy"} <= areas


def teardown_module(module):
    import os

    if os.environ.get("TL_CATALOGUE_REPORT"):
        Path(os.environ["TL_CATALOGUE_REPORT"]).write_text(json.dumps(OUTCOMES, indent=1, ensure_ascii=False))
    total = TALLY["error"] + TALLY["handled"]
    print(f"\nbad-input catalogue: {len(CASES)} cases, {total} passed: {TALLY['error']} clear errors, "
          f"{TALLY['handled']} handled; 0 tracebacks, 0 silent wrong results, 0 data losses among them")
