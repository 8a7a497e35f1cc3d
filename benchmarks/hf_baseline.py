"""The Hugging Face baseline of the speed benchmark (run by ``benchmarks/speed.py``, one process each).

``train``: ``Trainer`` + ``AutoModelForSequenceClassification``, prepared the way transformers'
``examples/pytorch/text-classification/run_classification.py`` does: ``datasets`` CSV loading,
tokenization in ``Dataset.map`` padded to ``max_length``, ``default_data_collator``.
``predict``: ``pipeline("text-classification")`` on a CSV column, in batches.

    python benchmarks/hf_baseline.py train --train T.csv --val V.csv --model DIR --out timing.json
    python benchmarks/hf_baseline.py predict --texts X.csv --model DIR --out timing.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import numpy as np
import torch

from step_timer import RecordingCollator, StepLog, peak_rss_mib, trainer_step_callback

TEXT, LABEL = "medical_abstract", "condition_label"


def autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16-mixed" else contextlib.nullcontext()


def train(args: argparse.Namespace) -> None:
    from datasets import load_dataset
    from torchmetrics.functional.classification import multiclass_f1_score
    from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, Trainer,
                              TrainingArguments, default_data_collator)

    log = StepLog(args.warmup_steps)
    raw = load_dataset("csv", data_files={"train": args.train, "validation": args.val})
    label_list = sorted(raw["train"].unique(LABEL))
    label_to_id = {v: i for i, v in enumerate(label_list)}
    config = AutoConfig.from_pretrained(args.model, num_labels=len(label_list), finetuning_task="text-classification")
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, config=config)

    def preprocess(examples):
        result = tokenizer(examples[TEXT], padding="max_length", max_length=args.max_length, truncation=True)
        result["label"] = [label_to_id[v] for v in examples[LABEL]]
        return result

    data = raw.map(preprocess, batched=True, remove_columns=raw["train"].column_names)

    def compute_metrics(prediction):
        preds = torch.as_tensor(np.argmax(prediction.predictions, axis=1))
        return {"macro_f1": float(multiclass_f1_score(preds, torch.as_tensor(prediction.label_ids),
                                                      len(label_list), average="macro"))}

    training_args = TrainingArguments(
        output_dir=args.output_dir, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size, learning_rate=args.learning_rate, weight_decay=0.01,
        warmup_steps=args.warmup_ratio,  # a float below 1 is a fraction of all steps (transformers v5)
        num_train_epochs=args.epochs, max_steps=args.max_steps or -1,
        seed=args.seed, bf16=args.precision == "bf16-mixed", use_cpu=True, eval_strategy="no",
        save_strategy="no", logging_steps=50, report_to="none", dataloader_num_workers=0,
        disable_tqdm=True)
    trainer = Trainer(model=model, args=training_args, train_dataset=data["train"], eval_dataset=data["validation"],
                      processing_class=tokenizer, compute_metrics=compute_metrics,
                      data_collator=RecordingCollator(default_data_collator, log),
                      callbacks=[trainer_step_callback(log)])
    trainer.train()
    if not args.max_steps:
        log.extra["val_macro_f1"] = trainer.evaluate()["eval_macro_f1"]
    log.write(args.out)


def predict(args: argparse.Namespace) -> None:
    import pandas as pd
    from transformers import AutoTokenizer, pipeline

    texts = pd.read_csv(args.texts)[TEXT].tolist()
    classify = pipeline("text-classification", model=args.model, tokenizer=AutoTokenizer.from_pretrained(args.model),
                        device=-1)
    log = StepLog(0)
    started = time.perf_counter()
    with autocast(args.precision):
        results = classify(texts, batch_size=args.batch_size, truncation=True, max_length=args.max_length)
    log.extra.update(predict_seconds=time.perf_counter() - started, predict_abstracts=len(texts),
                     labels=[r["label"] for r in results], peak_rss_mib=peak_rss_mib())
    with open(args.out, "w") as handle:
        json.dump({**log.summary(), **log.extra}, handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["train", "predict"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--train")
    parser.add_argument("--val")
    parser.add_argument("--texts")
    parser.add_argument("--out", required=True)
    parser.add_argument("--output-dir", default="hf_trainer_output")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--max-steps", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--warmup-ratio", type=float, default=0.06)
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    (train if args.mode == "train" else predict)(args)


if __name__ == "__main__":
    main()
