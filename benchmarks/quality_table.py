"""One markdown table from several ``benchmarks/quality.py`` result files: a row per file.

Columns: seeds, the validation score of each seed's kept epoch (the selection metric: macro-F1
single-label, micro-F1 at the tuned thresholds multi-label) and its mean, the held-out score mean ±
std with the bootstrap 95% interval, the difference to the first file's mean, the ensemble of the
seeds, and the minutes per fit. The held-out score is macro-F1 for single-label runs and micro-F1
(at each checkpoint's tuned thresholds) for multi-label ones.

    python benchmarks/quality_table.py \\
        plain=benchmarks/results/quality_ma_minilm_mlp.json ema=benchmarks/results/quality_ma_ema.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def row_values(result: dict) -> dict:
    multi_label = any("val/exact_match" in c.get("validation_at_best", {}) for c in result["checks"])
    score, val_key = ("micro_f1", "val/tuned_micro_f1") if multi_label else ("macro_f1", "val/macro_f1")
    validation = [c.get("validation_at_best", {}).get(val_key) for c in result["checks"]]
    minutes = [c["fit_minutes"] for c in result["checks"] if c.get("fit_minutes") is not None]
    ensemble = (result.get("ensemble") or {}).get(score, {}).get("mean")
    return {"score": score, "seeds": len(result["checks"]), "validation": validation,
            "mean": result[score]["mean"], "std": result[score]["std"], "ci": result[score]["ci95"],
            "ensemble": ensemble, "minutes": minutes}


def table(named: list[tuple[str, dict]]) -> str:
    rows = [(name, row_values(result)) for name, result in named]
    base = rows[0][1]["mean"]
    lines = [f"| row | seeds | validation (kept epochs; mean) | held-out {rows[0][1]['score'].replace('_', '-')} "
             "mean ± std (95% CI) | vs first row | ensemble | minutes per fit |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, v in rows:
        known = [x for x in v["validation"] if x is not None]
        validation = ", ".join("?" if x is None else f"{x:.4f}" for x in v["validation"])
        validation += f"; {sum(known) / len(known):.4f}" if len(known) > 1 else ""
        held_out = f"{v['mean']:.4f} ± {v['std']:.4f} ({v['ci'][0]:.3f}–{v['ci'][1]:.3f})"
        delta = "—" if v is rows[0][1] else f"{100 * (v['mean'] - base):+.1f} pts"
        ensemble = f"{v['ensemble']:.4f}" if v["ensemble"] is not None else "—"
        minutes = ", ".join(f"{m:.1f}" for m in v["minutes"]) or "—"
        lines.append(f"| {name} | {v['seeds']} | {validation} | {held_out} | {delta} | {ensemble} | {minutes} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", help="NAME=FILE or FILE (named by the file's stem)")
    args = parser.parse_args()
    named = []
    for item in args.results:
        name, _, path = item.rpartition("=")
        named.append((name or Path(path).stem, json.loads(Path(path).read_text())))
    print(table(named))


if __name__ == "__main__":
    main()
