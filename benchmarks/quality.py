"""Test-set quality of a config over several seeds: mean, std and a bootstrap 95% interval.

    python benchmarks/holdout.py ../shared/data/medical_abstracts benchmarks/work/ma_holdout
    python benchmarks/quality.py --config configs/medical_abstracts/minilm_mlp.yaml \\
        --data-dir benchmarks/work/ma_holdout --test benchmarks/work/ma_holdout/medical_tc_test.csv \\
        --seeds 3 -- --trainer.max_epochs 1

For each seed: ``python -m medtext fit --config C --data.data_dir D --data.test_file T
--seed_everything S --test_after_fit true`` (arguments after ``--`` are passed on), then the best
checkpoint predicts the test file in this process. Reports macro-F1, micro-F1, accuracy (exact
match for multi-label) and per-class F1: mean and std over seeds, and a 95% interval from
resampling the test abstracts (the same resamples for every seed; the statistic is the seed mean).
The medtext test metrics of each run are checked against this process's own. Also recorded per seed:
the wall-clock minutes of the fit (training, validation and the test after it) and the validation
scores of the epoch kept as the best checkpoint; and the **ensemble** of the seeds' best
checkpoints (``medtext test --ensemble``'s averaging: mean probabilities, the first seed's
thresholds), scored on the same test abstracts. ``--name`` keeps rows of one config apart. The
file keeps each seed's predictions of the test abstracts, so ``benchmarks/quality_merge.py`` can
join seeds fitted in separate sessions into one row. A fit cut off mid-way (a session's end) goes on
from its run's last.ckpt with the same command plus ``--resume``; its minutes include the cut-off process's.

    python benchmarks/holdout.py ../shared/data/hoc benchmarks/work/hoc_holdout   # test: hoc_val.csv
    python benchmarks/quality.py --config configs/hoc/minilm_label_attention.yaml \\
        --data-dir benchmarks/work/hoc_holdout --test benchmarks/work/hoc_holdout/hoc_heldout_test.csv
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import yaml
from torchmetrics.functional import classification as tmc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from medtext import TextClassifier  # noqa: E402
from medtext.core.atomic_files import atomic_write_text  # noqa: E402
from medtext.runtime.checkpoint import import_class, read_checkpoint  # noqa: E402
from medtext.runtime.ensemble import attach_ensemble, check_members  # noqa: E402
from quality_run_folder import (best_checkpoint, fit_minutes, forget_interrupted, interrupted_minutes,  # noqa: E402
                                is_finished, is_interrupted, record_interrupted, validation_at_best)


def fit(args, seed: int, name: str, resume: bool = False) -> Path:
    command = [sys.executable, "-m", "medtext", "fit", "--config", str(args.config), "--seed_everything", str(seed),
               "--data.init_args.test_file", str(args.test), "--test_after_fit", "true",
               "--trainer.enable_progress_bar", "false", "--trainer.logger.init_args.save_dir", str(args.runs),
               "--trainer.logger.init_args.name", name, "--trainer.logger.init_args.version", f"seed{seed}"]
    if args.data_dir:
        command += ["--data.init_args.data_dir", str(args.data_dir)]
    command += args.extra + (["--ckpt_path", "auto"] if resume else [])  # medtext resumes this run's last.ckpt
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    return args.runs / name / f"seed{seed}"


def predict_test(run_dir: Path, test_file: Path, precision: str, members: tuple[Path, ...] = ()):
    """(predictions, gold labels, label names, multi_label) of the best checkpoint on the test file;
    with ``members`` (other checkpoints), of the ensemble's averaged probabilities."""
    checkpoint = best_checkpoint(run_dir)
    model = TextClassifier.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True).eval()
    attach_ensemble(model, members, check_members(members, read_checkpoint(checkpoint)))
    data = read_checkpoint(checkpoint).data
    datamodule = import_class(data["class_path"])(
        **{**data["init_args"], "test_file": str(test_file), "tokenizer_name": model.hparams.encoder_name})
    datamodule.prepare_data()
    datamodule.setup("test")
    trainer = pl.Trainer(accelerator="cpu", devices=1, precision=precision, logger=False,
                         enable_progress_bar=False, enable_checkpointing=False)
    outputs = trainer.predict(model, dataloaders=datamodule.test_dataloader())
    index = torch.cat([o["index"] for o in outputs])
    gold = torch.as_tensor(datamodule.datasets["test"].labels)[torch.sort(index).values]
    predictions = torch.cat([o["predictions"] for o in outputs])[torch.argsort(index)]
    return predictions.long(), gold.long(), list(model.label_names), bool(model.hparams.multi_label)


def scores(pred: torch.Tensor, gold: torch.Tensor, n: int, multi_label: bool) -> dict[str, np.ndarray]:
    if multi_label:
        f1 = lambda avg: tmc.multilabel_f1_score(pred, gold, n, average=avg, zero_division=0)  # noqa: E731
        accuracy = tmc.multilabel_exact_match(pred, gold, n)
    else:
        f1 = lambda avg: tmc.multiclass_f1_score(pred, gold, n, average=avg, zero_division=0)  # noqa: E731
        accuracy = tmc.multiclass_accuracy(pred, gold, n, average="micro")
    return {"macro_f1": f1("macro").numpy(), "micro_f1": f1("micro").numpy(), "accuracy": accuracy.numpy(),
            "per_class_f1": f1("none").numpy()}


def summarise(runs: list[tuple], names: list[str], multi_label: bool, resamples: int) -> dict:
    gold = runs[0][1]
    per_seed = [scores(pred, gold, len(names), multi_label) for pred, _ in runs]
    rng = np.random.default_rng(0)
    boot: dict[str, list] = {k: [] for k in per_seed[0]}
    for _ in range(resamples):
        rows = torch.as_tensor(rng.integers(0, len(gold), len(gold)))
        sampled = [scores(pred[rows], gold[rows], len(names), multi_label) for pred, _ in runs]
        for key in boot:
            boot[key].append(np.mean([s[key] for s in sampled], axis=0))
    result = {}
    for key in per_seed[0]:
        values = np.stack([s[key] for s in per_seed])
        low, high = np.percentile(np.stack(boot[key]), [2.5, 97.5], axis=0)
        entry = {"mean": values.mean(0), "std": values.std(0, ddof=1) if len(runs) > 1 else np.zeros_like(values[0]),
                 "ci95": [low, high], "per_seed": values}
        if key == "per_class_f1":
            result[key] = {name: {k: (v[:, i] if k == "per_seed" else [v[0][i], v[1][i]] if k == "ci95" else v[i])
                                  for k, v in entry.items()} for i, name in enumerate(names)}
        else:
            result[key] = entry
    return json.loads(json.dumps(result, default=lambda x: np.asarray(x).tolist()))


def cpu_flags() -> str:
    """The CPU features that decide matmul speed here (lscpu's AVX2 / AVX512-BF16 / AMX flags)."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags) or "none"


NUMBER_LIST = re.compile(r"\[\s*(-?[\d.eE+-]+(?:,\s*-?[\d.eE+-]+)*)\s*\]")


def result_json(result: dict) -> str:
    """``result`` as indented JSON with each list of numbers on one line: a seed's predictions take a
    line per abstract, not one per number."""
    text = json.dumps(result, indent=1)
    return NUMBER_LIST.sub(lambda m: "[" + ", ".join(n.strip() for n in m.group(1).split(",")) + "]", text) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True, help="held-out test file, in the data module's format")
    parser.add_argument("--data-dir", type=Path, help="passed as --data.data_dir (training and validation files)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=42)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--runs", type=Path, default=ROOT / "benchmarks/work/quality_runs")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--name", help="row name (run folders, results file); default: config stem + folder")
    parser.add_argument("--reuse", action="store_true",
                        help="score a seed's finished run (best checkpoint and test_metrics.json there) without refitting")
    parser.add_argument("--resume", action="store_true",
                        help="a seed whose fit was interrupted (a last.ckpt, no test report) goes on from its last.ckpt")
    parser.add_argument("extra", nargs="*", help="more medtext fit arguments, after --")
    args = parser.parse_args()
    args.config, args.test = args.config.resolve(), args.test.resolve()
    args.data_dir = args.data_dir.resolve() if args.data_dir else None
    name = args.name or args.config.stem + "_" + args.config.parent.name
    runs, checks, run_dirs = [], [], []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        start, run_dir = time.monotonic(), args.runs / name / f"seed{seed}"
        finished = is_finished(run_dir)
        interrupted = is_interrupted(run_dir)
        refit = not (args.reuse and finished)
        if args.resume and interrupted:
            print(f"seed {seed}: going on from {run_dir}'s last.ckpt after {record_interrupted(run_dir)} minutes", flush=True)
        elif refit:
            forget_interrupted(run_dir)  # a fresh fit: earlier processes' minutes are not its own
        if refit:
            run_dir = fit(args, seed, name, resume=args.resume and interrupted)
        earlier = interrupted_minutes(run_dir)
        minutes = round(sum(earlier) + (time.monotonic() - start) / 60, 2) if refit else fit_minutes(run_dir)
        run_dirs.append(run_dir)
        precision = yaml.safe_load((run_dir / "config.yaml").read_text())["trainer"]["precision"]  # as the fit ran
        pred, gold, names, multi_label = predict_test(run_dir, args.test, str(precision))
        runs.append((pred, gold))
        logged = json.loads((run_dir / "test_metrics.json").read_text())
        mine = scores(pred, gold, len(names), multi_label)
        checks.append({"seed": seed, "medtext_test_macro_f1": logged.get("test/macro_f1"),
                       "recomputed_macro_f1": float(mine["macro_f1"]), "fit_minutes": minutes,
                       "validation_at_best": validation_at_best(run_dir),
                       **({"interrupted_fits_minutes": earlier} if earlier else {})})
    ensemble = None
    if len(run_dirs) > 1:
        members = tuple(best_checkpoint(d) for d in run_dirs[1:])
        pred, gold, _, _ = predict_test(run_dirs[0], args.test, str(precision), members)
        ensemble = summarise([(pred, gold)], names, multi_label, args.resamples)
    result = {"settings": {"config": str(args.config.relative_to(ROOT)) if args.config.is_relative_to(ROOT) else str(args.config),
                           "test_file": str(args.test), "data_dir": str(args.data_dir), "seeds": list(range(
                               args.first_seed, args.first_seed + args.seeds)), "extra": args.extra,
                           "test_abstracts": len(runs[0][1]), "resamples": args.resamples, "torch": torch.__version__,
                           "cpu_flags": cpu_flags()},
              "checks": checks, **summarise(runs, names, multi_label, args.resamples), "ensemble": ensemble}
    result["predictions"] = {  # test-file row order; what quality_merge.py joins across sessions
        "test_sha256": hashlib.sha256(args.test.read_bytes()).hexdigest(), "label_names": names,
        "multi_label": multi_label, "gold": runs[0][1].tolist(),
        "per_seed": {str(c["seed"]): pred.tolist() for c, (pred, _) in zip(checks, runs)}}
    out = args.out or ROOT / "benchmarks/results" / f"quality_{name}.json"
    atomic_write_text(out, result_json(result))  # a unique temporary name: two runs at once are safe
    print(f"\n{result['settings']['config']}: {len(runs)} seeds, {len(runs[0][1])} test abstracts -> {out}")
    print("| metric | mean | std | bootstrap 95% CI |\n| --- | --- | --- | --- |")
    rows = [(k, result[k]) for k in ("macro_f1", "micro_f1", "accuracy")]
    rows += [(f"F1 {n}", v) for n, v in result["per_class_f1"].items()]
    for key, v in rows:
        print(f"| {key} | {v['mean']:.4f} | {v['std']:.4f} | {v['ci95'][0]:.4f}–{v['ci95'][1]:.4f} |")
    print("checks (medtext test vs recomputed macro-F1):", checks)
    if ensemble:
        print(f"ensemble of the {len(runs)} seeds: macro_f1 {ensemble['macro_f1']['mean']:.4f} "
              f"micro_f1 {ensemble['micro_f1']['mean']:.4f} (95% CI {ensemble['macro_f1']['ci95'][0]:.4f}–"
              f"{ensemble['macro_f1']['ci95'][1]:.4f} macro)")
    print(f"minutes per fit: {[c['fit_minutes'] for c in checks]}; CPU flags: {result['settings']['cpu_flags']}")


if __name__ == "__main__":
    main()
