"""tl audit on a small text dataset with planted leaks: every cross-split duplicate found; --fix-out writes a
cleaned copy and leaves the source untouched."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

from conftest import make_sentences, tree_digest


def test_audit_finds_planted_leaks_and_fixes_a_copy(tmp_path, tiny_text_model):
    data = tmp_path / "data"
    data.mkdir()
    train, test = make_sentences(80, 0), make_sentences(30, 2)
    planted = test[:4]  # test rows copied into train: a leak that inflates every test score
    for name, rows in (("train", train + planted), ("test", test)):
        (data / f"{name}.csv").write_text("text,label\n" + "\n".join(f"{t},{lab}" for t, lab in rows) + "\n")
    before = tree_digest(data)
    out, fixed = tmp_path / "audit", tmp_path / "fixed"
    result = subprocess.run([sys.executable, "-m", "transferlearn.cli", "audit", "--data", str(data), "--model",
                             str(tiny_text_model("bert")), "--output", str(out), "--fix-out", str(fixed)],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1",
                                                                              "TL_CACHE_DIR": str(tmp_path / "c")})
    assert result.returncode == 0, result.stderr[-3000:]
    audit = json.loads((out / "audit.json").read_text())
    across = [g for g in audit["exact_duplicates"] if g["across"]]
    planted_texts = {t for t, _ in planted}
    found = {r["input"] for g in across for r in g["rows"]}
    assert planted_texts <= found  # all planted duplicates
    assert audit["counts"]["cross_split_exact_duplicates"] >= 4
    assert isinstance(audit["label_issues"], list) and audit["rows"] > 100
    page = (out / "audit.html").read_text()
    assert "Likely label errors" in page and "Exact duplicates" in page and "http" not in page
    assert tree_digest(data) == before  # the source is untouched
    with (fixed / "train.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and set(rows[0]) == {"text", "label", "audit_flag"}
    assert not planted_texts & {r["text"] for r in rows}  # the leaked copies are gone from train...
    with (fixed / "test.csv").open() as f:
        assert planted_texts <= {r["text"] for r in csv.DictReader(f)}  # ...and stay in test


def test_fix_out_inside_the_data_is_refused(tmp_path, sentiment_folder, tiny_text_model):
    before = tree_digest(sentiment_folder)
    result = subprocess.run([sys.executable, "-m", "transferlearn.cli", "audit", "--data", str(sentiment_folder),
                             "--model", str(tiny_text_model("bert")), "--fix-out", str(sentiment_folder / "clean")],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2 and "the original is never written to" in result.stderr
    assert tree_digest(sentiment_folder) == before


def test_audit_of_several_label_columns_writes_them_back(tmp_path, shape_folder, tiny_text_model):
    from transferlearn import finetune, load_config

    data, out, fixed = shape_folder("multi-output"), tmp_path / "audit", tmp_path / "fixed"
    result = subprocess.run([sys.executable, "-m", "transferlearn.cli", "audit", "--data", str(data), "--model",
                             str(tiny_text_model("bert")), "--label-column", "praise,tone", "--output", str(out),
                             "--fix-out", str(fixed)], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "TL_CACHE_DIR": str(tmp_path / "c")})
    assert result.returncode == 0, result.stderr[-3000:]
    audit = json.loads((out / "audit.json").read_text())
    assert audit["problem"] == "multi-output" and audit["balance_title"] == "Label counts per column"
    assert set(audit["class_balance"]["counts"]["train"]) == {"praise=no", "praise=yes", "tone=harsh", "tone=mild"}
    assert all(i["column"] in ("praise", "tone") and "=" in i["given"] for i in audit["label_issues"])
    with (fixed / "train.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == {"text", "praise", "tone", "audit_flag"} and len(rows) == 96
    again = finetune(load_config(data=str(fixed), model=str(tiny_text_model("bert")), label_column="praise,tone",
                                 strategy="linear-probe", baseline=False, progress=False, output=str(tmp_path / "r")))
    assert again.shape.name == "multi-output"  # the cleaned copy reads back as the same shape
