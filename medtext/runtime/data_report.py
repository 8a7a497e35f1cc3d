"""The data report (``medtext check``, and ``fit`` before it trains): summary lines, Markdown and files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pytorch_lightning.utilities.rank_zero import rank_zero_only

from data_modules.data_check import check_data
from medtext.core.atomic_files import atomic_write_text


REPORT_FILES = ("data_report.json", "data_report.md")


def _counts(counts: dict) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items())


def _lengths(stats: dict) -> str:
    lengths = stats.get("token_length")
    return "no rows" if lengths is None else "tokens " + " ".join(f"{k} {v}" for k, v in lengths.items())


def leak_warning(report: dict) -> str | None:
    """One line when validation or test abstracts also appear in train, else ``None``."""
    leaked = {name: count for name, count in report["leaked"].items() if count}
    if not leaked:
        return None
    counts = ", ".join(f"{count} of {report['splits'][name]['rows']} {name}" for name, count in leaked.items())
    action = (f"drop_leaked removes the {report['leaked_train_rows']} training copies" if report["drop_leaked"]
              else f"--data.init_args.drop_leaked true removes the {report['leaked_train_rows']} training copies")
    return f"medtext: WARNING: data leak: {counts} abstracts also appear in train (exact or normalised text); {action}"


def summary_lines(report: dict) -> list[str]:
    """The printed summary: one line per split, one across splits."""
    lines = [(f"data check ({report['tokenizer']}, max_length {report['max_length']}); near-duplicates: "
              f"identical after normalisation ({report['normalisation']})")]
    width = max(len(name) for name in report["splits"])
    for name, stats in report["splits"].items():
        parts = [f"{stats['rows']} rows"
                 + (f" (carved from train, val_fraction {stats['carved_from_train']['val_fraction']})"
                    if "carved_from_train" in stats else "")]
        if "class_counts" in stats:
            parts.append(_counts(stats["class_counts"]) + (f", no label {stats['no_label']}" if "no_label" in stats
                                                           else ""))
        rows = max(stats["rows"], 1)
        parts += [_lengths(stats), f"{stats['truncated']} longer than max_length ({stats['truncated'] / rows:.1%})",
                  f"duplicates {stats['duplicates']['exact']} exact, {stats['duplicates']['near']} near"]
        if "conflicting_labels" in stats:
            parts.append(f"{stats['conflicting_labels']} texts with conflicting labels")
        lines.append(f"  {name:<{width}}  " + " | ".join(parts))
    across = []
    for pair, stats in report["across"].items():
        text = f"{pair} {stats['exact']} exact, {stats['near']} near"
        if stats.get("conflicting_labels"):
            text += f", {stats['conflicting_labels']} conflicting labels"
        if stats["examples"]:
            text += f" (e.g. {'; '.join(stats['examples'])})"
        across.append(text)
    if across:
        lines.append(f"  {'across':<{width}}  " + " | ".join(across))
    return lines


def markdown(report: dict) -> str:
    splits = report["splits"]
    intro = (f"Tokenizer `{report['tokenizer']}`, max_length {report['max_length']} (lengths in tokens, special "
             f"tokens included). Near-duplicates: texts identical after normalisation ({report['normalisation']}) "
             "but not exactly.")
    header = ("| split | rows | p50 | p90 | p99 | max | longer than max_length | exact duplicates | near duplicates "
              "| conflicting labels | file |")
    out = ["# Data report", "", intro, "", header, "|---" * 11 + "|"]
    for name, s in splits.items():
        lengths = s.get("token_length") or {}
        cells = [name, s["rows"], *(lengths.get(k, "") for k in ("p50", "p90", "p99", "max")), s["truncated"],
                 s["duplicates"]["exact"], s["duplicates"]["near"], s.get("conflicting_labels", ""),
                 f"`{s['file']}`" + (" (carved from train)" if "carved_from_train" in s else "")]
        out.append("| " + " | ".join(str(c) for c in cells) + " |")
    labelled = [name for name, s in splits.items() if "class_counts" in s]
    if labelled:
        out += ["", "| class | " + " | ".join(labelled) + " |", "|---" * (len(labelled) + 1) + "|"]
        for cls in report["classes"]:
            out.append(f"| {cls} | " + " | ".join(str(splits[n]["class_counts"][cls]) for n in labelled) + " |")
        if report["multi_label"]:
            out.append("| (no label) | " + " | ".join(str(splits[n]["no_label"]) for n in labelled) + " |")
    if report["across"]:
        out += ["", "| splits | exact | near | conflicting labels | examples |", "|---|---|---|---|---|"]
        for pair, s in report["across"].items():
            out.append(f"| {pair} | {s['exact']} | {s['near']} | {s.get('conflicting_labels', '')} | "
                       f"{'; '.join(s['examples'])} |")
    warning = leak_warning(report)
    out += ["", f"**{warning.removeprefix('medtext: ')}**" if warning else "No validation or test abstract appears in train."]
    return "\n".join(out) + "\n"


def write_report(report: dict, folder: str | Path) -> Path:
    folder = Path(folder)
    atomic_write_text(folder / REPORT_FILES[0], json.dumps(report, indent=2) + "\n")
    atomic_write_text(folder / REPORT_FILES[1], markdown(report))
    return folder


def check_before_fit(trainer, datamodule) -> None:
    """``fit``'s data check (rank 0): the summary, a WARNING line for leaked abstracts, and the report files
    in the run folder. The splits it reads stay memoised in the data module: ``fit`` reads them once."""
    if rank_zero_only.rank != 0:
        return
    from callbacks.classification_report import run_dir

    from medtext.core.trainer_loggers import file_loggers

    report = print_check(datamodule)
    for logger in file_loggers(trainer):
        _ = logger.experiment  # created first: a CSV logger would warn about the folder holding the report
    print(f"data report written to {write_report(report, run_dir(trainer))}")


def print_check(datamodule) -> dict:
    """Check the data module's splits; print the summary (and the leak WARNING line, on stderr)."""
    report = check_data(datamodule)
    print("\n".join(summary_lines(report)))
    warning = leak_warning(report)
    if warning:
        print(warning, file=sys.stderr)
    return report
