"""Summaries and Markdown tables of ``benchmarks/speed.py`` runs (throughput, memory, FLOP/s, ratios).

    python benchmarks/speed.py --report   # print the tables of benchmarks/results/speed.json again
"""

from __future__ import annotations

import numpy as np

from flops import step_flops

ABLATION = "medtext_attention_dropout"  # medtext as shipped but with the encoder's own attention dropout


def mean(values) -> float:
    return float(np.mean([v for v in values if v is not None]))


def summarise(train, predict, a, b, forward, peaks) -> dict:
    summary = {"train": {}, "predict": {}}
    peak = peaks["bf16" if "bf16" in peaks else "fp32"]
    for system, runs in train.items():
        runs = [r for r in runs if r["timed_seconds"]]  # a run shorter than the warm-up has no timed steps
        executed = [step_flops(r["timed_shapes"], a, b, padded=True) / r["timed_seconds"] for r in runs]
        useful = [step_flops(r["timed_shapes"], a, b, padded=False) / r["timed_seconds"] for r in runs]
        summary["train"][system] = {
            "abstracts_per_second": [r["abstracts_per_second"] for r in runs],
            "mean_abstracts_per_second": mean(r["abstracts_per_second"] for r in runs),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
            "val_macro_f1": [r.get("val_macro_f1") for r in runs],
            "padded_tokens_per_real_token": sum(s[0] * s[1] for r in runs for s in r["timed_shapes"])
            / sum(s[2] for r in runs for s in r["timed_shapes"]),
            "executed_flops_per_second": mean(executed), "useful_flops_per_second": mean(useful),
            "useful_fraction_of_matmul_peak": mean(useful) / peak}
    for system, runs in predict.items():
        summary["predict"][system] = {
            "abstracts_per_second": [r["predict_abstracts"] / r["predict_seconds"] for r in runs],
            "mean_abstracts_per_second": mean(r["predict_abstracts"] / r["predict_seconds"] for r in runs),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs)}
    t, p = summary["train"], summary["predict"]
    summary["train_speedup"] = t["medtext"]["mean_abstracts_per_second"] / t["hf_trainer"]["mean_abstracts_per_second"]
    summary["predict_speedup"] = p["medtext"]["mean_abstracts_per_second"] / p["pipeline"]["mean_abstracts_per_second"]
    same = [np.mean([x == y for x, y in zip(m["labels"], q["labels"])]) for m, q in zip(predict["medtext"], predict["pipeline"])]
    summary["predict_label_agreement"] = float(min(same))
    # the fastest any implementation could predict: medtext's real tokens, forward FLOPs at the matmul peak
    ceiling = [r["predict_abstracts"] * peak / step_flops(r["predict_shapes"], *forward, padded=False)
               for r in predict["medtext"]]
    summary["predict_ceiling_abstracts_per_second"] = mean(ceiling)
    summary["predict_ceiling_speedup"] = mean(ceiling) / p["pipeline"]["mean_abstracts_per_second"]
    return summary


def print_tables(summary: dict, peaks: dict) -> None:
    t, p = summary["train"], summary["predict"]
    fractions = " | ".join(f"of {k} matmul peak" for k in peaks)
    print(f"\n| training | abstracts/s (each run) | mean | peak RSS MiB | val macro-F1 | padded/real tokens | useful GFLOP/s | {fractions} |")
    print("| --- " * (7 + len(peaks)) + "|")
    for name, r in t.items():
        f1 = ", ".join(f"{v:.4f}" for v in r["val_macro_f1"] if v is not None)
        print(f"| {name} | {', '.join(f'{v:.2f}' for v in r['abstracts_per_second'])} | {r['mean_abstracts_per_second']:.2f} | "
              f"{r['peak_rss_mib']:.0f} | {f1} | {r['padded_tokens_per_real_token']:.3f} | "
              f"{r['useful_flops_per_second'] / 1e9:.1f} | "
              + " | ".join(f"{100 * r['useful_flops_per_second'] / v:.1f}%" for v in peaks.values()) + " |")
    print(f"\ntraining speedup medtext / Trainer: {summary['train_speedup']:.2f}x; peak RSS medtext / Trainer: "
          f"{t['medtext']['peak_rss_mib'] / t['hf_trainer']['peak_rss_mib']:.2f}")
    if ABLATION in t:
        print(f"ablation, {ABLATION} / Trainer: "
              f"{t[ABLATION]['mean_abstracts_per_second'] / t['hf_trainer']['mean_abstracts_per_second']:.2f}x")
    print("\n| inference | abstracts/s (each run) | mean | peak RSS MiB |")
    print("| --- | --- | --- | --- |")
    for name, r in p.items():
        print(f"| {name} | {', '.join(f'{v:.2f}' for v in r['abstracts_per_second'])} | {r['mean_abstracts_per_second']:.2f} | {r['peak_rss_mib']:.0f} |")
    print(f"\ninference speedup medtext / pipeline: {summary['predict_speedup']:.2f}x; "
          f"same predicted label: {100 * summary['predict_label_agreement']:.2f}%")
    if "predict_ceiling_abstracts_per_second" in summary:
        print(f"inference ceiling (forward FLOPs of the real tokens at the matmul peak, nothing else): "
              f"{summary['predict_ceiling_abstracts_per_second']:.2f} abstracts/s = "
              f"{summary['predict_ceiling_speedup']:.2f}x the pipeline")
    print("matmul peak: " + ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in peaks.items()))
