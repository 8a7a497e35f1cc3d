"""Module paths from before medtext's layers still import, so configs and checkpoints that name them work."""

import csv
import importlib

import pytest
import torch
from cli_helpers import run, tiny_config

import medtext
from medtext.core.old_module_paths import MOVED


def test_every_old_module_path_is_the_module_it_moved_to():
    for old, new in MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
    assert medtext.TextClassifier is importlib.import_module("medtext.classifier").TextClassifier


def renamed(value, old: str, new: str):
    if isinstance(value, dict):
        return {key: renamed(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [renamed(item, old, new) for item in value]
    return new if value == old else value


@pytest.mark.slow  # a fit and two predicts; the fast path keeps the module-path test above
def test_a_checkpoint_naming_an_old_class_path_predicts_the_same(tiny_encoder, tmp_path):
    data = {"num_train": 16, "num_val": 8, "num_test": 8}
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, data, "data_modules.SyntheticAbstractsDataModule",
                         max_steps=2, default_root_dir=str(tmp_path / "runs"))
    fitted = run("fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}")
    best = fitted.trainer.checkpoint_callback.best_model_path
    checkpoint = torch.load(best, map_location="cpu", weights_only=True)
    hparams = renamed(checkpoint["hyper_parameters"], "medtext.TextClassifier", "medtext.classifier.TextClassifier")
    assert hparams != checkpoint["hyper_parameters"], "the checkpoint names the model's class path"
    old = tmp_path / "old.ckpt"
    torch.save({**checkpoint, "hyper_parameters": hparams}, old)
    test_file = fitted.datamodule.resolve_files()["test"]
    outputs = []
    for path, out in ((best, tmp_path / "new.csv"), (old, tmp_path / "old.csv")):
        run("predict", "--ckpt_path", str(path), "--data.predict_file", test_file, "--predictions.output_file", str(out))
        with open(out, newline="") as handle:
            outputs.append(list(csv.DictReader(handle)))
    assert outputs[0] == outputs[1] and len(outputs[0]) == data["num_test"]
