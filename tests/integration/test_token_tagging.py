"""Token tagging and sentence pairs through every stage on tiny models: train (auto becomes full for tags), metrics
and the per-word baseline, predict's spans at exact characters, windows over long sentences, evaluate, errors, the
report, ONNX export (logits within atol) and int8, ``/predict`` in ``tl serve`` with its schema, and ``model/`` in the
transformers token-classification pipeline; pairs encoded as pairs, predicted and served as pairs."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import jsonschema
import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import FILLER, write_conll_folder
from transferlearn import finetune, load_config
from transferlearn.run import Run

TEXT = "the food good great was very awful and the staff"


def _tl(*args):
    return subprocess.run([sys.executable, "-m", "transferlearn.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def tagged_folder(tmp_path_factory):
    return write_conll_folder(tmp_path_factory.mktemp("ner"))


@pytest.fixture(scope="module")
def tagger(tmp_path_factory, tagged_folder, tiny_text_model):
    out = tmp_path_factory.mktemp("runs") / "tagger"
    config = load_config(data=str(tagged_folder), model=str(tiny_text_model("bert")), epochs=12, lr=5e-3,
                         warmup_ratio=0.0, batch_size=16, output=str(out), progress=False, seed=0,
                         early_stopping_patience=0, max_length=12, stride=3)  # short windows: sentences are cut
    return finetune(config)


def test_auto_trains_a_full_fine_tune_and_scores_entities(tagger):
    plan = json.loads((tagger.path / "plan.json").read_text())
    assert plan["strategy"] == "full" and any("full instead of auto" in d for d in plan["decisions"])
    metrics = tagger.metrics
    assert metrics["problem"] == "token-tags" and metrics["metric"] == "entity_f1"
    test = metrics["test"]
    assert {"entity_f1", "entity_macro_f1", "entity_precision", "entity_recall", "token_accuracy"} <= set(test)
    assert set(test["per_type"]) == {"LOC", "PER"} and test["num_samples"] == 40
    assert test["entity_f1"] > 0.5  # two kinds of names among filler words: learnable
    assert set(metrics["baseline"]["test"]) >= {"entity_f1", "token_accuracy"}
    assert "per-word" in metrics["baseline"]["name"] or "per word" in metrics["baseline"]["name"]


def test_predictions_are_spans_at_exact_characters_and_every_word_is_tagged(tagger):
    text = "  " + TEXT + " , and the room was very bad sad " + " ".join(FILLER)  # longer than one window
    result = tagger.predict([text])[0]
    assert len(result["tokens"]) == len(text.split())  # windows with stride: every word tagged once
    assert result["entities"], "the tiny tagger should find a name here"
    for entity in result["entities"]:
        assert text[entity["start"]:entity["end"]] == entity["text"]
        assert entity["type"] in {"PER", "LOC"} and 0 <= entity["score"] <= 1


def test_evaluate_errors_and_report(tagger):
    evaluated = _tl("evaluate", tagger.path, "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    scores = json.loads(evaluated.stdout)
    assert scores["entity_f1"] == pytest.approx(tagger.metrics["test"]["entity_f1"], abs=1e-6)
    errors = _tl("errors", tagger.path, "--json")
    assert errors.returncode == 0, errors.stderr
    examples = json.loads(errors.stdout)["examples"]
    assert examples and all(("missed" in e["predicted"]) or ("spurious" in e["predicted"]) or
                            e["predicted"] == "every entity right" for e in examples)
    html = (tagger.path / "report.html").read_text()
    assert "Per-type entity scores" in html and "PER" in html


def test_onnx_export_int8_and_bench(tagger):
    exported = _tl("export", tagger.path)
    assert exported.returncode == 0, exported.stderr
    run = Run.load(tagger.path)
    check = run.variants["onnx-fp32"]["validation"]
    assert check["max_abs_diff"] <= 1e-3 and check["agreement"] == 1.0
    import onnx

    output = onnx.load(str(run.layout.onnx_file("onnx-fp32"))).graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in output[:2]] == ["batch", "sequence"]
    from transferlearn.deploy.predictor import Predictor

    torch_logits = Predictor(run).logits([TEXT])
    onnx_logits = Predictor(run, "onnx", variant="onnx-fp32").logits([TEXT])
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-3)
    quantized = _tl("quantize", tagger.path, "--method", "dynamic")
    assert quantized.returncode == 0, quantized.stderr
    assert "entity_f1" in quantized.stdout
    bench = _tl("bench", tagger.path, "--budget-s", "0.05")
    assert bench.returncode == 0, bench.stderr
    rows = json.loads(run.layout.bench_json.read_text())["variants"]
    assert {"torch-fp32", "onnx-fp32", "onnx-int8-dynamic"} <= set(rows)
    assert rows["torch-fp32"]["test_metrics"]["entity_f1"] == pytest.approx(tagger.metrics["test"]["entity_f1"],
                                                                            abs=0.05)


def test_serve_returns_spans_in_its_schema(tagger):
    from transferlearn.serve.app import create_app

    with TestClient(create_app(tagger.path)) as client:
        for _ in range(100):
            if client.get("/ready").status_code == 200:
                break
            time.sleep(0.1)
        response = client.post("/predict", json={"inputs": [TEXT]})
        assert response.status_code == 200, response.text
        schema = client.get("/openapi.json").json()["paths"]["/predict"]["post"]["responses"]["200"]
        body = response.json()
        jsonschema.validate(body, schema["content"]["application/json"]["schema"])
        prediction = body["predictions"][0]
        assert prediction == tagger.predict([TEXT])[0]
        assert all(TEXT[e["start"]:e["end"]] == e["text"] for e in prediction["entities"])


def test_model_folder_loads_in_the_token_classification_pipeline(tagger):
    from transformers import pipeline

    tag = pipeline("token-classification", model=str(tagger.path / "model"), aggregation_strategy="first")
    found = tag(TEXT)
    ours = tagger.predict([TEXT])[0]["entities"]
    assert [(e["entity_group"], e["start"], e["end"]) for e in found] == [(e["type"], e["start"], e["end"])
                                                                          for e in ours]


# ------------------------------------------------------------------------------------------ sentence pairs


@pytest.fixture(scope="module")
def pair_folder(tmp_path_factory):
    rng = random.Random(1)
    folder = tmp_path_factory.mktemp("pairs")
    for split, n in (("train", 160), ("valid", 40), ("test", 40)):
        rows = ["premise,hypothesis,label"]
        for _ in range(n):
            first = rng.sample(FILLER, 5)
            same = rng.random() < 0.5
            second = list(first) if same else rng.sample(FILLER, 5)
            rows.append(f"{' '.join(first)},{' '.join(second)},{'same' if same else 'different'}")
        (folder / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_pairs_are_encoded_as_pairs(tiny_text_model):
    import datasets
    from transformers import AutoTokenizer

    from transferlearn.modalities import modality_of
    from transferlearn.models.bundle import ModelBundle

    tokenizer = AutoTokenizer.from_pretrained(tiny_text_model("bert"))
    bundle = ModelBundle(None, tokenizer, None, None, "tiny", "text", {})
    long_side = " ".join(FILLER * 3)
    rows = datasets.Dataset.from_dict({"text": [long_side], "text_pair": ["good food"], "label": [0]})
    config = load_config(data=".", model="tiny", max_length=12)
    encoded = modality_of("text").encode(bundle, rows, config)[0]
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    assert tokens.count("[SEP]") == 2 and tokens[-3:] == ["good", "food", "[SEP]"]  # longest_first cut side a
    assert len(tokens) == 12 and encoded["input_ids"] == tokenizer(long_side, "good food", truncation="longest_first",
                                                                    max_length=12)["input_ids"]


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory, pair_folder, tiny_text_model):
    out = tmp_path_factory.mktemp("runs") / "pairs"
    config = load_config(data=str(pair_folder), model=str(tiny_text_model("bert")), strategy="full", epochs=3,
                         lr=1e-3, batch_size=16, output=str(out), progress=False, seed=0, early_stopping_patience=0)
    return finetune(config)


def test_a_pair_run_predicts_and_serves_pairs(pair_run):
    data = json.loads((pair_run.path / "model" / "inputs.json").read_text())
    assert data["text"] == "premise" and data["text_pair"] == "hypothesis"
    baseline = pair_run.metrics["baseline"]["test"]["macro_f1"]
    assert baseline > 0.8  # the pair features see which words the sides share
    by_tab = pair_run.predict(["the food was\tthe food was"])[0]
    by_dict = pair_run.predict([{"text": "the food was", "text_pair": "the food was"}])[0]
    assert by_tab == by_dict and by_tab["label"] in {"same", "different"}
    refused = _tl("predict", pair_run.path, "the food was")
    assert refused.returncode == 2 and "separated by a tab" in refused.stderr
    from transferlearn.serve.app import create_app

    with TestClient(create_app(pair_run.path)) as client:
        for _ in range(100):
            if client.get("/ready").status_code == 200:
                break
            time.sleep(0.1)
        ok = client.post("/predict", json={"inputs": [{"text": "the food was", "text_pair": "the food was"}]})
        assert ok.status_code == 200 and ok.json()["predictions"][0] == by_dict
        assert client.post("/predict", json={"inputs": ["the food was"]}).status_code == 422
        assert client.post("/predict", json={"inputs": [{"text": " ", "text_pair": "x"}]}).status_code == 422
        assert client.get("/metadata").json()["pair"] is True
