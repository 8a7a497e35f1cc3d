"""Training and inference speed of medtext vs the Hugging Face Trainer / pipeline, same settings.

    pip install -e ".[bench]"
    python benchmarks/speed.py --data-dir ../shared/data/medical_abstracts

Same encoder (offline MiniLM), data, max length, batch size, precision and threads for both.
Training: ``python -m medtext fit`` (a config derived from configs/medical_abstracts/minilm_mlp.yaml
with the BERT sequence-classification head: [CLS] -> dense+tanh -> linear) vs
``benchmarks/hf_baseline.py train`` (Trainer, padded to max length as run_classification.py does),
one epoch each on the same stratified training subsample, A/B then B/A (``--repeats``), each in
its own process. Inference: ``medtext predict`` on the trained checkpoint vs
``pipeline("text-classification")`` on the same weights exported with ``medtext hf-export``, and
(issue 17) the same checkpoint exported with ``medtext export --export.format onnx --export.quantize
int8`` run by ``medtext predict --model_dir`` with ONNX Runtime in fp32 and in int8
(``benchmarks/onnx_timer.py``): four paths (five where bf16 is native: ``medtext_fp32`` too), same
abstracts, batch size and threads, interleaved A/B/C/D then D/C/B/A, one process each. More
``--predict-abstracts`` than the file has repeat its texts (issue 29's 20,000). Then the label check on the Medical Abstracts held-out file
(``benchmarks/speed_onnx.py``; its rows are left out of the training subsample). Prints Markdown
tables against the targets of issue 17 with the CPU flags; writes JSON to ``--out``.

The full run of issue 17 (21 minutes on 2 cores; needs ``pip install -e ".[bench,onnx]"``; where the
time goes inside the model: ``benchmarks/profile_split.py``):

    python benchmarks/holdout.py ../shared/data/medical_abstracts benchmarks/work/ma_holdout
    python benchmarks/speed.py --train-abstracts 800 --predict-abstracts 800

Inference only, on the checkpoint of an earlier run in ``--work-dir`` (or ``--ckpt``); a smoke run:

    python benchmarks/speed.py --skip-train --predict-abstracts 800
    nice -n 19 python benchmarks/speed.py --limit 32 --batch-size 4 --repeats 1 --no-ablation \\
        --work-dir /tmp/speed_smoke --out /tmp/speed_smoke/speed.json   # --limit: >= 5 training batches
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from flops import bf16_matmul_is_native, matmul_peaks, training_flops_per_abstract  # noqa: E402
from speed_onnx import ONNX_PATHS, export_onnx, holdout_check, limited_copy, onnx_predict_command  # noqa: E402
from speed_report import ABLATION, print_tables, summarise  # noqa: E402
from data_modules.sampling import stratified_split  # noqa: E402
from medtext.core.atomic_files import atomic_write_text  # noqa: E402
from medtext.core.encoders import resolve_encoder_path  # noqa: E402
from medtext.deploy.hf_export import export_checkpoint  # noqa: E402

ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
TEXT, LABEL = "medical_abstract", "condition_label"


def prepare_data(args, work: Path) -> dict[str, str]:
    """Validation split as medtext makes it (10%, seed 42); a stratified training subsample."""
    frame = pd.read_csv(args.data_dir / "medical_tc_train_partial.csv")
    train_rows, val_rows = stratified_split(frame[LABEL].to_numpy(), 0.1, seed=42)
    if args.holdout.is_file():  # the held-out abstracts of the label check are not trained on
        train_rows = train_rows[~frame[TEXT].iloc[train_rows].isin(set(pd.read_csv(args.holdout)[TEXT])).to_numpy()]
    if args.limit:  # a smoke run: a stratified few of each
        few = lambda rows: rows[stratified_split(frame[LABEL].to_numpy()[rows], args.limit / len(rows), seed=0)[1]]  # noqa: E731
        train_rows, val_rows = (few(rows) if args.limit < len(rows) else rows for rows in (train_rows, val_rows))
    if args.train_abstracts and args.train_abstracts < len(train_rows):
        keep = stratified_split(frame[LABEL].to_numpy()[train_rows], args.train_abstracts / len(train_rows), seed=0)[1]
        train_rows = train_rows[keep]
    rng, wanted = np.random.default_rng(0), min(args.limit or args.predict_abstracts, args.predict_abstracts)
    # more abstracts than the file has (issue 29's 20,000): its texts again, each shuffled round in turn
    predict_rows = np.concatenate([rng.permutation(len(frame)) for _ in range(-(-wanted // len(frame)))])[:wanted]
    predict_rows = np.sort(predict_rows) if wanted <= len(frame) else predict_rows
    files = {"train": work / "train.csv", "val": work / "val.csv", "predict": work / "predict.csv"}
    for name, rows in zip(files, (train_rows, val_rows, predict_rows)):
        frame.iloc[rows].to_csv(files[name], index=False)
    return {k: str(v) for k, v in files.items()} | {"labels": str(args.data_dir / "medical_tc_labels.csv")}


def medtext_config(args, files: dict, work: Path, hidden_size: int) -> Path:
    """configs/medical_abstracts/minilm_mlp.yaml (pulled in, with its shared fragment) with the BERT
    sequence-classification head and this benchmark's data, as dotted keys (configs/base/fit.yaml)."""
    task = ROOT / "configs/medical_abstracts/minilm_mlp.yaml"
    config = {
        "config": str(task), "test_after_fit": False, "trainer.precision": args.precision,
        "trainer.max_epochs": 1, "trainer.enable_progress_bar": False,
        "trainer.logger.init_args.save_dir": str(work / "runs"), "trainer.logger.init_args.name": "medtext",
        "model.init_args.head": {"class_path": "medtext.heads.MLPHead", "init_args": {
            "pooling": "cls", "hidden_dims": [hidden_size], "activation": "tanh", "dropout": 0.1}},
        "data": {"class_path": "data_modules.AbstractsDataModule", "init_args": {
            "train_file": files["train"], "val_file": files["val"], "text_column": TEXT, "label_column": LABEL,
            "labels_file": files["labels"], "max_length": args.max_length, "batch_size": args.batch_size,
            "eval_batch_size": args.batch_size, "bucket_by_length": True,
            "pad_to_multiple_of": yaml.safe_load(task.read_text())["data"]["init_args"]["pad_to_multiple_of"]}}}
    path = work / "medtext_speed.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run(command: list[str], env: dict, out: Path) -> dict:
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL if not os.environ.get("BENCH_VERBOSE") else None)
    result = json.loads(out.read_text())
    result["process_seconds"] = time.perf_counter() - started
    return result


def timer_callback(out: Path) -> str:
    return "--trainer.callbacks+=" + json.dumps({"class_path": "step_timer.LightningStepTimer", "init_args": {"out": str(out)}})


def medtext_predict_command(checkpoint: str, predict_file: str, predictions: Path, out: Path, batch_size: int,
                            precision: str) -> list[str]:
    """``python -m medtext predict --ckpt_path`` timed by ``step_timer.LightningStepTimer`` into ``out``."""
    return [sys.executable, "-m", "medtext", "predict", "--ckpt_path", checkpoint, timer_callback(out),
            "--data.init_args.predict_file", predict_file, "--predictions.output_file", str(predictions),
            "--predictions.overwrite", "true", "--data.init_args.eval_batch_size", str(batch_size),
            "--trainer.logger", "false", "--trainer.precision", precision, "--trainer.enable_progress_bar", "false"]


def interleaved(repeats: int, *systems: str):
    """(repeat, system) in A/B/C, C/B/A, A/B/C ... order, so drift of the machine cancels."""
    for repeat in range(repeats):
        for system in (systems if repeat % 2 == 0 else systems[::-1]):
            yield repeat, system


def train_runs(args, files, config, work, env) -> dict[str, list[dict]]:
    systems = ["medtext", *([ABLATION] if args.ablation else []), "hf_trainer"]
    results: dict[str, list[dict]] = {system: [] for system in systems}
    for repeat, system in interleaved(args.repeats, *systems):
        out = work / f"train_{system}_{repeat}.json"
        if system.startswith("medtext"):
            command = [sys.executable, "-m", "medtext", "fit", "--config", str(config), timer_callback(out),
                       "--trainer.logger.init_args.version", f"{system}_r{repeat}",
                       "--data.init_args.cache_dir", str(work / f"cache_{system}_{repeat}")]
            if system == ABLATION:  # the encoder's own attention dropout (0.1): no fused attention kernel
                command += ["--model.init_args.attention_dropout", "null"]
        else:
            command = [sys.executable, str(ROOT / "benchmarks/hf_baseline.py"), "train", "--model", args.model,
                       "--train", files["train"], "--val", files["val"], "--out", str(out),
                       "--output-dir", str(work / "hf_output"), "--max-length", str(args.max_length),
                       "--batch-size", str(args.batch_size), "--precision", args.precision]
        results[system].append(run(command, env, out))
    return results


def predict_runs(args, files, work, env, checkpoint: str, exported: Path, onnx_dir: Path) -> dict[str, list[dict]]:
    # where bf16 is native, medtext predict in fp32 too (issue 29): the checkpoint at both precisions
    systems = ["medtext", *(["medtext_fp32"] if args.precision == "bf16-mixed" else []), *ONNX_PATHS, "pipeline"]
    results: dict[str, list[dict]] = {system: [] for system in systems}
    for repeat, system in interleaved(args.repeats, *systems):
        out = work / f"predict_{system}_{repeat}.json"
        if system in ONNX_PATHS:
            predictions = work / f"predictions_{system}_{repeat}.csv"
            command = onnx_predict_command(onnx_dir, files["predict"], predictions, out, ONNX_PATHS[system],
                                           args.threads, args.batch_size)
            result = run(command, env, out)
            result["labels"] = pd.read_csv(predictions)["label"].tolist()
        elif system.startswith("medtext"):
            predictions = work / f"predictions_{system}_{repeat}.csv"
            precision = "32-true" if system == "medtext_fp32" else args.precision
            result = run(medtext_predict_command(checkpoint, files["predict"], predictions, out, args.batch_size,
                                                 precision), env, out)
            result["labels"] = pd.read_csv(predictions)["label"].tolist()
        else:
            command = [sys.executable, str(ROOT / "benchmarks/hf_baseline.py"), "predict", "--model", str(exported),
                       "--texts", files["predict"], "--out", str(out), "--max-length", str(args.max_length),
                       "--batch-size", str(args.batch_size), "--precision", args.precision]
            result = run(command, env, out)
        results[system].append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared/data/medical_abstracts")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "benchmarks/work")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/speed.json")
    parser.add_argument("--holdout", type=Path, default=ROOT / "benchmarks/work/ma_holdout/medical_tc_test.csv",
                        help="held-out file of the int8 / fp32 label check (benchmarks/holdout.py)")
    parser.add_argument("--train-abstracts", type=int, default=1200, help="stratified training subsample (0: all)")
    parser.add_argument("--predict-abstracts", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=0,
                        help="smoke run: at most N training, validation, inference and held-out abstracts")
    parser.add_argument("--skip-train", action="store_true",
                        help="inference only, on --ckpt (default: the best checkpoint of an earlier run in --work-dir)")
    parser.add_argument("--ckpt", type=Path, help="with --skip-train: the checkpoint (BERT-style MLPHead) to predict with")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--precision", default="auto", choices=["auto", "32-true", "bf16-mixed"],
                        help="auto: bf16-mixed where the CPU has native bf16 matmuls, else 32-true")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=2, help="A/B pairs; odd pairs run B first")
    parser.add_argument("--no-ablation", dest="ablation", action="store_false",
                        help="skip the third training run: medtext with the encoder's own attention dropout")
    parser.add_argument("--report", action="store_true", help="only print the tables of an earlier --out")
    args = parser.parse_args()
    if args.report:
        saved = json.loads(args.out.read_text())
        return print_tables(saved["summary"], saved["matmul_peak"], saved["settings"].get("cpu_flags", "not recorded"))
    from quality import cpu_flags

    if args.precision == "auto":
        args.precision = "bf16-mixed" if bf16_matmul_is_native() else "32-true"
    args.model = resolve_encoder_path(ENCODER)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "RAYON_NUM_THREADS": str(args.threads),
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks"), str(ROOT)])}
    peaks = matmul_peaks()
    a, b = training_flops_per_abstract(args.model)
    forward = training_flops_per_abstract(args.model, backward=False)
    files = prepare_data(args, args.work_dir)
    train = {}
    if args.skip_train:
        checkpoint = str(args.ckpt or next((args.work_dir / "runs/medtext/medtext_r0/checkpoints").glob("best*.ckpt")))
    else:
        hidden_size = json.loads((Path(args.model) / "config.json").read_text())["hidden_size"]
        config = medtext_config(args, files, args.work_dir, hidden_size)
        train = train_runs(args, files, config, args.work_dir, env)
        checkpoint = str(next((args.work_dir / "runs/medtext/medtext_r0/checkpoints").glob("best*.ckpt")))
    exported = export_checkpoint(checkpoint, str(args.work_dir / "exported_hf_model"), overwrite=True)
    onnx_dir = export_onnx(checkpoint, args.work_dir / "exported_onnx_model", env)
    predict = predict_runs(args, files, args.work_dir, env, checkpoint, exported, onnx_dir)
    after = matmul_peaks()  # measured once: each peak is seconds of matmuls
    peaks = {name: max(value, after[name]) for name, value in peaks.items()}  # best of before and after
    holdout = None
    if args.holdout.is_file():
        holdout_file = limited_copy(args.holdout, args.work_dir, args.limit)
        holdout = holdout_check(checkpoint, onnx_dir, holdout_file, args.batch_size, args.threads)
    else:
        print(f"no held-out file {args.holdout}: make it with python benchmarks/holdout.py; label check skipped")
    summary = summarise(train, predict, a, b, forward, peaks, holdout, args.precision)
    settings = {k: str(v) for k, v in vars(args).items()} | {
        "torch": torch.__version__, "flops_a": a, "flops_b": b, "forward_flops_a_b": forward, "cpu_flags": cpu_flags(),
        "checkpoint": checkpoint, "train_abstracts_used": 0 if args.skip_train else len(pd.read_csv(files["train"])),
        "predict_abstracts_used": len(pd.read_csv(files["predict"]))}
    atomic_write_text(args.out, json.dumps({"settings": settings, "matmul_peak": peaks, "summary": summary,
                                            "runs": {"train": train, "predict": predict}}, indent=1) + "\n")
    print_tables(summary, peaks, settings["cpu_flags"])


if __name__ == "__main__":
    main()
