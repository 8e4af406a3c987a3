"""The Trainer every run trains with (train/hf_trainer.py): a loss that becomes NaN stops the run before the bad step
touches the weights, and keeps the good checkpoints; evaluation batches of token sequences are length-sorted, and
``predict`` still returns rows in the dataset's order, with the logits each row gets alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from transferlearn import finetune, load_config
from transferlearn.errors import TrainingDiverged


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(sentiment_folder, tiny_text_model, tmp_path):
    out = tmp_path / "run"
    config = load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy="full", epochs=3,
                         lr=1e8, max_grad_norm=1e30, warmup_ratio=0.0, head_lr_multiplier=1.0, eval_steps=1,
                         baseline=False, progress=False, output=str(out))
    with pytest.raises(TrainingDiverged) as caught:
        finetune(config)
    message = str(caught.value)
    assert "the training loss became nan at step 2" in message
    assert "the last good checkpoint, checkpoint-1, is kept" in message and "Lower --lr (it is 1e+08)" in message
    weights = load_file(out / "checkpoints" / "checkpoint-1" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert not (out / "checkpoints" / "checkpoint-2").exists()  # nothing saved from the diverged step
    assert not (out / "model").exists() and not (out / "metrics.json").exists()


def test_length_sorted_prediction_comes_back_in_dataset_order(tiny_text_model, tmp_path):
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, TrainingArguments

    from transferlearn.modalities import modality_of
    from transferlearn.train.hf_trainer import length_order
    from transferlearn.train.trainer import trainer_class

    folder = tiny_text_model("bert")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2).eval()
    texts = ["good", "the food was very bad and the staff was awful really", "great place", "it was",
             "superb lovely happy place and the food was really good", "bad"] * 3
    rows = tokenizer(texts, truncation=True, max_length=32)
    dataset = datasets.Dataset.from_dict({**rows, "label": [i % 2 for i in range(len(texts))]})
    lengths_of = modality_of("text").encoded_lengths
    order = length_order(lengths_of(dataset))
    assert order != list(range(len(texts))) and len(dataset[order[0]]["input_ids"]) == max(map(len, rows["input_ids"]))

    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=4, use_cpu=True, report_to=[])
    trainer = trainer_class()(model=model, args=args, data_collator=DataCollatorWithPadding(tokenizer),
                              lengths_of=lengths_of)
    assert trainer._get_eval_sampler(dataset) == order
    output = trainer.predict(dataset)
    assert output.label_ids.tolist() == dataset["label"]  # the dataset's order, not the sampler's
    with torch.no_grad():
        alone = np.stack([model(**tokenizer(t, truncation=True, max_length=32, return_tensors="pt")).logits[0].numpy()
                          for t in texts])
    assert np.abs(output.predictions - alone).max() < 1e-5
