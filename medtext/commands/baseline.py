"""``python -m medtext baseline --config FILE --baseline.method METHOD``: a baseline on a task's data,
reported like ``medtext test``.

    python -m medtext baseline --config configs/medical_abstracts/minilm_mlp.yaml \\
        --data.data_dir ../shared/data/medical_abstracts --data.test_file held_out.csv --baseline.method tfidf
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import pytorch_lightning as pl
from jsonargparse import Namespace
from pytorch_lightning.cli import LightningArgumentParser

from callbacks import ClassificationReport, MetricTables
from callbacks.classification_report import run_dir

from medtext.core.atomic_files import atomic_write_text
from medtext.baselines import BaselineData, BaselineOptions, method_function
from medtext.baselines.text_splits import TestRows, read_splits
from medtext.commands.data_only_cli import DataOnlyCLI


class BaselineCLI(DataOnlyCLI):
    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_class_arguments(BaselineOptions, "baseline")


def baseline_data(datamodule, splits: dict) -> BaselineData:
    """The splits (:func:`medtext.baselines.text_splits.read_splits`) as the methods read them."""
    (train_texts, train_labels), (val_texts, val_labels), (test_texts, test_labels) = (
        splits[name].part() for name in ("train", "val", "test"))
    return BaselineData(datamodule.label_names, datamodule.multi_label, datamodule.label_descriptions,
                        train_texts, train_labels, val_texts, val_labels, test_texts, test_labels)


def baseline_logger(config: Namespace, method: str):
    """The config's logger, its run named ``<name>_baseline_<method>``; without one, a CSV logger in ``runs/``."""
    from pytorch_lightning.loggers import CSVLogger

    logger = config.trainer.get("logger")
    if not isinstance(logger, Namespace):
        return CSVLogger(config.trainer.get("default_root_dir") or "runs", name=f"baseline_{method}")
    logger = logger.clone()
    name = logger.init_args.get("name")
    logger.init_args.name = f"{name}_baseline_{method}" if name else f"baseline_{method}"
    parser = LightningArgumentParser()
    parser.add_lightning_class_args(pl.Trainer, "trainer")
    return parser.instantiate_classes(Namespace(trainer=Namespace(logger=logger))).trainer.logger


def main(args: list[str] | None = None) -> None:
    """``medtext baseline --config FILE --baseline.method METHOD [--baseline.* ...] [--data.* ...]``.

    Reads a task config as ``fit`` does (its ``data`` section: files, columns, labels, the validation
    split carved from train; ``model.encoder_name`` as the default embedding model; the logger), runs the
    method (:mod:`medtext.baselines`), which chooses what it chooses on the validation split only, and
    tests it on ``data.test_file``. The run folder gets ``test``'s files (``test_metrics.json``,
    ``test_per_class.csv``, ``test_confusion_matrix.csv``/``.png``, ``test_predictions.csv``; W&B tables
    with a W&B logger) and ``baseline.json`` (the method, its options, what validation chose, minutes).
    ``medtext compare`` puts runs side by side.
    """
    from medtext.baselines.stored_scores import StoredScores

    cli = BaselineCLI.parse(args, "baseline", __doc__.split("\n\n")[0])
    options = BaselineOptions(**cli.config.baseline.as_dict())
    options.encoder_name = options.encoder_name or cli.config.model.init_args.encoder_name
    method = method_function(options.method)
    datamodule = cli.datamodule
    splits = read_splits(datamodule)  # texts only: no baseline reads the data module's token ids
    data = baseline_data(datamodule, splits)
    print(f"baseline {options.method}: {len(data.train_texts)} train, {len(data.val_texts)} validation, "
          f"{len(data.test_texts)} test abstracts")
    started = time.perf_counter()
    result = method(data, options)
    minutes = (time.perf_counter() - started) / 60
    print(f"baseline {options.method}: chose {json.dumps(result.chosen, default=float)} on validation ({minutes:.2f} min)")
    logger = baseline_logger(cli.config, options.method)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=logger, callbacks=[ClassificationReport(), MetricTables()],
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    model = StoredScores(datamodule.label_names, datamodule.multi_label, result.probabilities, result.thresholds)
    logger.log_hyperparams({"baseline": {**asdict(options), "chosen": result.chosen}})
    trainer.test(model, datamodule=TestRows(datamodule, splits["test"]), verbose=False)
    record = {"method": options.method, "options": asdict(options), "chosen": result.chosen,
              "minutes": round(minutes, 3), "train_rows": len(data.train_texts), "val_rows": len(data.val_texts),
              "test_file": str(datamodule.split_file("test"))}
    out = run_dir(trainer) / "baseline.json"
    atomic_write_text(out, json.dumps(record, indent=2, default=float) + "\n")
    print(f"baseline written to {out}")
