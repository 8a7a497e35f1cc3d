"""``medtext predict --ckpt_path`` at three precisions on the same abstracts: fp32 (``32-true``), bf16
autocast (``bf16-mixed``, fp32 weights, casts around each matmul) and whole-model bf16 weights
(``bf16-true``, no casts). Each run in its own process, interleaved A/B/C then C/B/A; abstracts/s of the
predict loop (``step_timer.LightningStepTimer``), peak RSS, and the share of labels equal to fp32's.

    python benchmarks/predict_precision.py --ckpt RUN/checkpoints/best.ckpt --predict-file F.csv --work-dir DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from speed import interleaved, medtext_predict_command, run  # noqa: E402

PRECISIONS = ("32-true", "bf16-mixed", "bf16-true")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--predict-file", required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks"), str(ROOT)])}
    results: dict[str, list[dict]] = {p: [] for p in PRECISIONS}
    for repeat, precision in interleaved(args.repeats, *PRECISIONS):
        out, predictions = args.work_dir / f"{precision}_{repeat}.json", args.work_dir / f"{precision}_{repeat}.csv"
        result = run(medtext_predict_command(args.ckpt, args.predict_file, predictions, out, args.batch_size, precision),
                     env, out)
        result["labels"] = pd.read_csv(predictions)["label"].tolist()
        results[precision].append(result)
    fp32 = results["32-true"][0]["labels"]
    print("\n| precision | abstracts/s (each run) | mean | x fp32 | peak RSS MiB | labels equal to fp32 |")
    print("| --- | --- | --- | --- | --- | --- |")
    base = np.mean([r["predict_abstracts"] / r["predict_seconds"] for r in results["32-true"]])
    summary = {}
    for precision, runs in results.items():
        speeds = [r["predict_abstracts"] / r["predict_seconds"] for r in runs]
        same = min(np.mean([a == b for a, b in zip(r["labels"], fp32)]) for r in runs)
        summary[precision] = {"abstracts_per_second": speeds, "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
                              "labels_equal_to_fp32": float(same)}
        print(f"| {precision} | {', '.join(f'{v:.2f}' for v in speeds)} | {np.mean(speeds):.2f} | "
              f"{np.mean(speeds) / base:.2f} | {summary[precision]['peak_rss_mib']:.0f} | {100 * same:.2f}% |")
    if args.out:
        args.out.write_text(json.dumps({"rows": len(fp32), "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
