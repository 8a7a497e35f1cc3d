"""Validation quality of each head with the offline MiniLM encoder, one fit per config.

    python benchmarks/heads.py --epochs 1 --out benchmarks/results/heads.json
    python benchmarks/heads.py --configs hoc/minilm_mlp.yaml --epochs 1

Runs ``python -m medtext fit`` for each config (Medical Abstracts from
``../shared/data/medical_abstracts``, HoC from ``../shared/data/hoc``), then reads the last
validation epoch from the run's ``metrics.csv``: macro-F1 for Medical Abstracts, micro-F1 (global
0.5 threshold, and per-label tuned thresholds) for HoC. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = [f"{task}/minilm_{head}.yaml" for task in ("medical_abstracts", "hoc")
                   for head in ("mlp", "bilstm_xattn", "label_attention")]
METRICS = {"medical_abstracts": ["val/macro_f1", "val/micro_f1", "val/accuracy"],
           "hoc": ["val/micro_f1", "val/macro_f1", "val/tuned_micro_f1", "val/tuned_macro_f1"]}


def last_values(metrics_csv: Path, keys: list[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    with open(metrics_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            values.update({k: float(row[k]) for k in keys if row.get(k)})
    return values


def run_config(config: str, epochs: int, data_root: Path, extra: list[str]) -> dict:
    task = config.split("/")[0]
    run_name = "bench_" + config.replace("/", "_").removesuffix(".yaml")
    args = [sys.executable, "-m", "medtext", "fit", "--config", str(ROOT / "configs" / config),
            "--data.data_dir", str(data_root / task), "--trainer.max_epochs", str(epochs),
            "--trainer.enable_progress_bar", "false", "--trainer.logger.init_args.name", run_name,
            "--test_after_fit", "false", *extra]
    started = time.time()
    subprocess.run(args, cwd=ROOT, check=True)
    log_dir = max((ROOT / "runs" / run_name).glob("version_*"), key=lambda p: p.stat().st_mtime)
    return {"config": config, "epochs": epochs, "seconds": round(time.time() - started),
            "log_dir": str(log_dir.relative_to(ROOT)), "command": " ".join(args[1:]),
            **last_values(log_dir / "metrics.csv", METRICS[task])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "heads.json")
    parser.add_argument("extra", nargs="*", help="more CLI arguments for every run, after --")
    args = parser.parse_args()
    results = []
    for config in args.configs:
        results.append(run_config(config, args.epochs, args.data_root, args.extra))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("| config | epochs | val macro-F1 | val micro-F1 | val micro-F1 (tuned thresholds) | minutes |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        cells = [f"{r[k]:.4f}" if k in r else "–" for k in ("val/macro_f1", "val/micro_f1", "val/tuned_micro_f1")]
        print(f"| {r['config']} | {r['epochs']} | {' | '.join(cells)} | {r['seconds'] / 60:.1f} |")


if __name__ == "__main__":
    main()
