"""Held-out test files for the quality benchmarks, never used for tuning or checkpoint selection.

    python benchmarks/holdout.py ../shared/data/medical_abstracts benchmarks/work/ma_holdout
    python benchmarks/holdout.py ../shared/data/hoc benchmarks/work/hoc_holdout

HoC (a folder with ``labels.json``): ``hoc_val.csv`` becomes the held-out ``hoc_heldout_test.csv``;
the out folder gets ``hoc_train.csv`` and ``labels.json`` and no ``hoc_val.csv``, so medtext
validates (thresholds, checkpoint selection) on a seeded stratified ``val_fraction`` of train.

Medical Abstracts:
Writes ``medical_tc_train.csv`` (the rest) and ``medical_tc_test.csv`` (``--fraction``, seed
``--seed``) in the official layout, and copies ``medical_tc_labels.csv``, so the folder works as
``--data.data_dir`` and its test file as ``--data.test_file``. Only needed while the official test
split is not at hand.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_modules.sampling import stratified_split  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    if (args.source_dir / "labels.json").is_file():
        args.out_dir.mkdir(parents=True, exist_ok=True)
        for source, target in (("hoc_train.csv", "hoc_train.csv"), ("labels.json", "labels.json"),
                               ("hoc_val.csv", "hoc_heldout_test.csv")):
            shutil.copy(args.source_dir / source, args.out_dir / target)
        print(f"{args.source_dir}: hoc_val.csv held out as {args.out_dir / 'hoc_heldout_test.csv'}")
        return
    source = next(p for p in (args.source_dir / "medical_tc_train.csv", args.source_dir / "medical_tc_train_partial.csv")
                  if p.is_file())
    frame = pd.read_csv(source)
    train, test = stratified_split(frame["condition_label"].to_numpy(), args.fraction, args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    frame.iloc[train].to_csv(args.out_dir / "medical_tc_train.csv", index=False)
    frame.iloc[test].to_csv(args.out_dir / "medical_tc_test.csv", index=False)
    shutil.copy(args.source_dir / "medical_tc_labels.csv", args.out_dir / "medical_tc_labels.csv")
    print(f"{source}: {len(train)} train, {len(test)} test rows -> {args.out_dir}")


if __name__ == "__main__":
    main()
