"""One ``benchmarks/quality.py`` row from several of its result files: the same config, arguments and
held-out file, fitted with different seeds (in separate sessions, say, when a fit takes an hour).

The statistics (mean, std, the bootstrap interval of the seed mean) are recomputed over all the
seeds from the per-abstract predictions each file keeps; a file written before quality.py kept them
cannot be joined. The seeds' ensemble needs their checkpoints, so the merged file has none (null).

    python benchmarks/quality_merge.py --out benchmarks/results/quality_ma_mpnet_3_epochs.json \\
        benchmarks/results/quality_ma_mpnet_3_epochs_seed42.json \\
        benchmarks/results/quality_ma_mpnet_3_epochs_seeds_43_44.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import result_json, summarise  # noqa: E402

from medtext.core.atomic_files import atomic_write_text  # noqa: E402

SAME_SETTINGS = ("config", "extra", "test_abstracts", "resamples")  # what makes the files one row
SAME_PREDICTIONS = ("test_sha256", "label_names", "multi_label", "gold")


def merge(named: list[tuple[str, dict]]) -> dict:
    """The files' seeds as one result; ``SystemExit`` naming the file that does not fit the first."""
    first_name, first = named[0]
    for name, result in named:
        if "predictions" not in result:
            raise SystemExit(f"{name}: no per-abstract predictions (written before quality.py kept them); refit or "
                             "rerun quality.py --reuse on its run folders")
        for key in SAME_SETTINGS:
            if result["settings"].get(key) != first["settings"].get(key):
                raise SystemExit(f"{name}: settings.{key} {result['settings'].get(key)!r} differs from {first_name}'s "
                                 f"{first['settings'].get(key)!r}")
        for key in SAME_PREDICTIONS:
            if result["predictions"][key] != first["predictions"][key]:
                raise SystemExit(f"{name}: predictions.{key} differs from {first_name}'s (another held-out file or labels)")
    checks = sorted((check for _, result in named for check in result["checks"]), key=lambda c: c["seed"])
    seeds = [check["seed"] for check in checks]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"a seed is in more than one file ({seeds}): each file must bring its own seeds")
    per_seed = {int(seed): pred for _, result in named for seed, pred in result["predictions"]["per_seed"].items()}
    labels = first["predictions"]
    gold = torch.as_tensor(labels["gold"])
    runs = [(torch.as_tensor(per_seed[seed]), gold) for seed in seeds]
    flags = sorted({result["settings"].get("cpu_flags", "unknown") for _, result in named})
    settings = {**first["settings"], "seeds": seeds, "cpu_flags": " | ".join(flags),
                "merged_from": [name for name, _ in named]}
    return {"settings": settings, "checks": checks,
            **summarise(runs, labels["label_names"], labels["multi_label"], settings["resamples"]),
            "ensemble": None, "predictions": {**labels, "per_seed": {str(s): per_seed[s] for s in seeds}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", type=Path, nargs="+", help="quality.py result files of one row")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    named = []
    for path in args.files:
        try:
            named.append((str(path), json.loads(path.read_text())))
        except (OSError, ValueError) as error:
            raise SystemExit(f"{path}: not a readable quality.py result ({error})")
    result = merge(named)
    atomic_write_text(args.out, result_json(result))
    score = "micro_f1" if result["predictions"]["multi_label"] else "macro_f1"
    low, high = result[score]["ci95"]
    print(f"{len(result['checks'])} seeds {result['settings']['seeds']} -> {args.out}: {score} "
          f"{result[score]['mean']:.4f} ± {result[score]['std']:.4f} (95% CI {low:.4f}–{high:.4f})")


if __name__ == "__main__":
    main()
