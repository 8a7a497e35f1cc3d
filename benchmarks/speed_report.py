"""Summaries and Markdown tables of ``benchmarks/speed.py`` runs (throughput, memory, FLOP/s, ratios), and
the targets of issue 17 marked met / not met (``targets``), with the CPU flags they were measured on.

    python benchmarks/speed.py --report   # print the tables of benchmarks/results/speed.json again
"""

from __future__ import annotations

import numpy as np

from flops import step_flops

ABLATION = "medtext_attention_dropout"  # medtext as shipped but with the encoder's own attention dropout


def mean(values) -> float:
    return float(np.mean([v for v in values if v is not None]))


def agreement(first: list[dict], second: list[dict]) -> float:
    """The lowest share of identical labels over the repeat pairs of two paths (same abstracts, file order)."""
    return float(min(np.mean([x == y for x, y in zip(m["labels"], q["labels"])]) for m, q in zip(first, second)))


def summarise(train, predict, a, b, forward, peaks, holdout=None, precision="32-true") -> dict:
    summary = {"train": {}, "predict": {}, "precision": precision}
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
    if t:
        summary["train_speedup"] = t["medtext"]["mean_abstracts_per_second"] / t["hf_trainer"]["mean_abstracts_per_second"]
    pipeline = p["pipeline"]["mean_abstracts_per_second"]
    summary["predict_speedup"] = p["medtext"]["mean_abstracts_per_second"] / pipeline
    for system in p:
        p[system]["times_pipeline"] = p[system]["mean_abstracts_per_second"] / pipeline
        p[system]["rss_over_pipeline"] = p[system]["peak_rss_mib"] / p["pipeline"]["peak_rss_mib"]
    summary["predict_label_agreement"] = agreement(predict["medtext"], predict["pipeline"])
    if "onnx_fp32" in predict:  # on the benchmark's abstracts, at the harness's precision for PyTorch
        summary["onnx_fp32_vs_medtext_label_agreement"] = agreement(predict["onnx_fp32"], predict["medtext"])
        summary["onnx_int8_vs_fp32_label_agreement"] = agreement(predict["onnx_int8"], predict["onnx_fp32"])
        if "medtext_fp32" in predict:
            summary["onnx_fp32_vs_medtext_fp32_label_agreement"] = agreement(predict["onnx_fp32"], predict["medtext_fp32"])
    # the fastest any implementation could predict: medtext's real tokens, forward FLOPs at the matmul peak
    ceilings = {name: mean(r["predict_abstracts"] * value / step_flops(r["predict_shapes"], *forward, padded=False)
                           for r in predict["medtext"]) for name, value in peaks.items()}
    summary["predict_ceilings"] = ceilings
    summary["predict_ceiling_abstracts_per_second"] = ceilings["bf16" if "bf16" in ceilings else "fp32"]
    summary["predict_ceiling_speedup"] = summary["predict_ceiling_abstracts_per_second"] / pipeline
    summary["holdout"] = holdout
    summary["targets"] = targets(summary)
    return summary


def targets(summary: dict) -> list[list]:
    """[path, target, result, met] rows of issue 17 (met: True, False or None when not measured)."""
    p, ceilings, rows = summary["predict"], summary["predict_ceilings"], []
    torch_precision = "bf16" if summary["precision"] == "bf16-mixed" else "fp32"

    def of_ceiling(system: str, name: str) -> float:
        return p[system]["mean_abstracts_per_second"] / ceilings[name]

    def rss(system: str) -> list:
        ratio = p[system]["rss_over_pipeline"]
        found = f"{p[system]['peak_rss_mib']:.0f} vs {p['pipeline']['peak_rss_mib']:.0f} MiB ({ratio:.2f})"
        return [system, "peak RSS ≤ the pipeline's", found, ratio <= 1]

    if torch_precision in ceilings:
        rows.append(["medtext", f"≥ 85% of the {torch_precision} ceiling", f"{100 * of_ceiling('medtext', torch_precision):.1f}%",
                     of_ceiling("medtext", torch_precision) >= 0.85])
    rows += [["medtext", "labels identical to the pipeline", f"{100 * summary['predict_label_agreement']:.2f}%",
              summary["predict_label_agreement"] == 1], rss("medtext")]
    if "medtext_fp32" in p:  # the checkpoint in fp32 where the harness runs bf16 (issue 29)
        rows += [["medtext_fp32", "≥ 85% of the fp32 ceiling", f"{100 * of_ceiling('medtext_fp32', 'fp32'):.1f}%",
                  of_ceiling("medtext_fp32", "fp32") >= 0.85], rss("medtext_fp32")]
    if "onnx_fp32" not in p:
        return rows
    hold = summary.get("holdout") or {}
    same = [summary["onnx_fp32_vs_medtext_label_agreement"]] if torch_precision == "fp32" else []
    if "onnx_fp32_vs_medtext_fp32_label_agreement" in summary:
        same.append(summary["onnx_fp32_vs_medtext_fp32_label_agreement"])
    if hold:
        same.append(hold["torch_vs_onnx_fp32"]["label_agreement"])
    result = (f"{100 * summary['onnx_fp32_vs_medtext_label_agreement']:.2f}% vs medtext predict ({summary['precision']})"
              + (f", {100 * summary['onnx_fp32_vs_medtext_fp32_label_agreement']:.2f}% vs medtext_fp32"
                 if "onnx_fp32_vs_medtext_fp32_label_agreement" in summary else "")
              + (f"; held-out, both fp32: {100 * hold['torch_vs_onnx_fp32']['label_agreement']:.2f}%, max abs logit diff "
                 f"{hold['torch_vs_onnx_fp32']['max_abs_logit_diff']:.1e}" if hold else ""))
    rows += [["onnx_fp32", "≥ 90% of the fp32 ceiling (graph exported in fp32 only)",
              f"{100 * of_ceiling('onnx_fp32', 'fp32'):.1f}%", of_ceiling("onnx_fp32", "fp32") >= 0.90],
             ["onnx_fp32", "labels identical to PyTorch at the same precision", result, min(same) == 1],
             rss("onnx_fp32"),
             ["onnx_int8", "≥ 2.0x the pipeline", f"{p['onnx_int8']['times_pipeline']:.2f}x",
              p["onnx_int8"]["times_pipeline"] >= 2.0]]
    if hold:
        rows.append(["onnx_int8", "≥ 99% the same labels as fp32 (held-out)",
                     f"{100 * hold['int8_vs_fp32_label_agreement']:.2f}% of {hold['rows']}",
                     hold["int8_vs_fp32_label_agreement"] >= 0.99])
    if "int8_minus_fp32_macro_f1" in hold:
        found = (f"{100 * hold['int8_minus_fp32_macro_f1']:+.2f} points ({hold['macro_f1_onnx_int8']:.4f} vs "
                 f"{hold['macro_f1_onnx_fp32']:.4f})")
        rows.append(["onnx_int8", "macro-F1 within 0.5 points of fp32 (held-out)", found,
                     abs(hold["int8_minus_fp32_macro_f1"]) <= 0.005])
    else:
        rows.append(["onnx_int8", "held-out label check", "not run (no held-out file)", None])
    t = summary["train"]
    if t:
        rows += [["fit", "useful FLOP/s ≥ 60% of the best native matmul peak",
                  f"{100 * t['medtext']['useful_fraction_of_matmul_peak']:.1f}%",
                  t["medtext"]["useful_fraction_of_matmul_peak"] >= 0.60],
                 ["fit", "≥ 1.5x the Trainer", f"{summary['train_speedup']:.2f}x", summary["train_speedup"] >= 1.5]]
    return rows


def print_tables(summary: dict, peaks: dict, flags: str = "not recorded") -> None:
    t, p = summary["train"], summary["predict"]
    print(f"\nCPU flags: {flags}; precision: {summary.get('precision', '?')}; matmul peak: "
          + ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in peaks.items()))
    if t:
        print_training(summary, peaks)
    ceilings = summary.get("predict_ceilings", {"fp32": summary["predict_ceiling_abstracts_per_second"]})
    columns = " | ".join(f"% of {k} ceiling" for k in ceilings)
    print(f"\n| inference | abstracts/s (each run) | mean | {columns} | x pipeline | peak RSS MiB | RSS / pipeline |")
    print("| --- " * (6 + len(ceilings)) + "|")
    for name, r in p.items():
        print(f"| {name} | {', '.join(f'{v:.2f}' for v in r['abstracts_per_second'])} | {r['mean_abstracts_per_second']:.2f} | "
              + " | ".join(f"{100 * r['mean_abstracts_per_second'] / c:.1f}%" for c in ceilings.values())
              + f" | {r['mean_abstracts_per_second'] / p['pipeline']['mean_abstracts_per_second']:.2f} | "
              f"{r['peak_rss_mib']:.0f} | {r['peak_rss_mib'] / p['pipeline']['peak_rss_mib']:.2f} |")
    print(f"\ninference speedup medtext / pipeline: {summary['predict_speedup']:.2f}x; "
          f"same predicted label: {100 * summary['predict_label_agreement']:.2f}%")
    print("inference ceiling (forward FLOPs of the real tokens at the matmul peak, nothing else): "
          + "; ".join(f"{k} {v:.2f} abstracts/s = {v / p['pipeline']['mean_abstracts_per_second']:.2f}x the pipeline"
                      for k, v in ceilings.items()))
    if "onnx_int8_vs_fp32_label_agreement" in summary:
        print(f"same labels on the benchmark's abstracts: onnx_fp32 vs medtext {100 * summary['onnx_fp32_vs_medtext_label_agreement']:.2f}%, "
              f"onnx_int8 vs onnx_fp32 {100 * summary['onnx_int8_vs_fp32_label_agreement']:.2f}%")
    hold = summary.get("holdout")
    if hold:
        f1 = {k: hold.get(k) for k in ("macro_f1_onnx_fp32", "macro_f1_onnx_int8")}
        print(f"held-out {hold['file']} ({hold['rows']} abstracts): macro-F1 PyTorch fp32 "
              f"{hold['torch_vs_onnx_fp32'].get('macro_f1_torch', float('nan')):.4f}, ONNX fp32 {f1['macro_f1_onnx_fp32'] or float('nan'):.4f}, "
              f"ONNX int8 {f1['macro_f1_onnx_int8'] or float('nan'):.4f}")
    if summary.get("targets"):
        print(f"\n| issue 17 target ({flags}) | path | result | met |")
        print("| --- | --- | --- | --- |")
        for path, target, result, met in summary["targets"]:
            print(f"| {target} | {path} | {result} | {'—' if met is None else 'yes' if met else '**no**'} |")


def print_training(summary: dict, peaks: dict) -> None:
    t = summary["train"]
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
