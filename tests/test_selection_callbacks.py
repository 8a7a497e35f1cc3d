"""BestCheckpoint and SelectionEarlyStopping: without a monitor they follow the model's selection
metric; their checkpoint state keys are the plain Lightning ones, so resuming (also a checkpoint of a
config that named the metric) restores the best score and the patience counter."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from callbacks import BestCheckpoint, SelectionEarlyStopping
from callbacks.checkpoints import monitored_metric
from cli_helpers import run, tiny_config
from sweep_helpers import write_hoc

SYNTHETIC = {"num_train": 32, "num_val": 16, "num_test": 8}
LAST = {"class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
        "init_args": {"filename": "last", "save_top_k": 1, "enable_version_counter": False}}
BEST_ARGS = {"save_weights_only": True, "filename": "best-{epoch}", "enable_version_counter": False}


def selection_callbacks(named: str = "") -> list[dict]:
    """Best checkpoint, early stopping, last.ckpt; ``named``: the plain Lightning classes on that metric."""
    if named:
        return [{"class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                 "init_args": {"monitor": named, "mode": "max", **BEST_ARGS}},
                {"class_path": "pytorch_lightning.callbacks.EarlyStopping",
                 "init_args": {"monitor": named, "mode": "max", "patience": 3}}, LAST]
    return [{"class_path": "callbacks.BestCheckpoint", "init_args": BEST_ARGS},
            {"class_path": "callbacks.SelectionEarlyStopping", "init_args": {"patience": 3}}, LAST]


def fit(tmp_path: Path, encoder: str, *args: str, named: str = "", multi_label: bool = False):
    data = ({"data_dir": str(tmp_path / "hoc")}, "data_modules.HoCDataModule") if multi_label else \
        (SYNTHETIC, "data_modules.SyntheticAbstractsDataModule")
    tmp_path.mkdir(exist_ok=True)
    config = tiny_config(tmp_path / "fit.yaml", encoder, *data, callbacks=selection_callbacks(named))
    return run("fit", "--config", str(config), "--test_after_fit=false", *args)


def selection(cli) -> tuple:
    best = cli.trainer.checkpoint_callback
    (stopping,) = [c for c in cli.trainer.callbacks if isinstance(c, EarlyStopping)]
    return best, stopping


@pytest.mark.parametrize("multi_label", [False, True], ids=["single-label", "multi-label"])
def test_monitor_is_the_models_selection_metric(tiny_encoder, tmp_path, multi_label):
    if multi_label:
        write_hoc(tmp_path / "hoc")
    cli = fit(tmp_path, tiny_encoder, multi_label=multi_label)
    metric = "val/tuned_micro_f1" if multi_label else "val/macro_f1"
    best, stopping = selection(cli)
    assert isinstance(best, BestCheckpoint) and isinstance(stopping, SelectionEarlyStopping)
    assert cli.model.selection_metric == metric == best.monitor == stopping.monitor
    assert best.best_model_score == pytest.approx(float(cli.trainer.callback_metrics[metric]))
    assert Path(best.best_model_path).name == "best-epoch=0.ckpt" and stopping.best_score == best.best_model_score
    # the state keys are those of ModelCheckpoint / EarlyStopping given the metric
    saved = torch.load(Path(best.dirpath) / "last.ckpt", map_location="cpu", weights_only=True)["callbacks"]
    assert ModelCheckpoint(monitor=metric, mode="max", **BEST_ARGS).state_key in saved
    assert EarlyStopping(monitor=metric, mode="max").state_key in saved
    assert best.state_key == ModelCheckpoint(monitor=metric, mode="max").state_key


def test_resume_restores_best_and_patience_also_from_a_named_metric_checkpoint(tiny_encoder, tmp_path):
    """Lightning calls setup (the monitor resolved) before it loads callback states from --ckpt_path."""
    first = fit(tmp_path / "a", tiny_encoder, named="val/macro_f1")
    old_best, old_stopping = selection(first)
    last = Path(old_best.dirpath) / "last.ckpt"
    assert not isinstance(old_best, BestCheckpoint) and last.is_file()
    # the same run folder (as --ckpt_path last picks); 1 epoch done: nothing left to train
    resumed = fit(tmp_path / "b", tiny_encoder, f"--ckpt_path={last}", "--trainer.logger.init_args.version=0")
    best, stopping = selection(resumed)
    assert isinstance(best, BestCheckpoint) and resumed.trainer.current_epoch == 1
    assert (best.best_model_path, float(best.best_model_score)) == (old_best.best_model_path,
                                                                   float(old_best.best_model_score))
    assert stopping.wait_count == old_stopping.wait_count
    assert float(stopping.best_score) == float(old_stopping.best_score)


def test_explicit_monitor_is_kept():
    best = BestCheckpoint(monitor="val/loss", mode="min")
    assert not best.follows_model and monitored_metric(best, SimpleNamespace(selection_metric="val/x")) == "val/loss"
    assert best.state_key == ModelCheckpoint(monitor="val/loss", mode="min").state_key
    stopping = SelectionEarlyStopping(monitor="val/loss", mode="min", patience=5)
    assert stopping.state_key == EarlyStopping(monitor="val/loss", mode="min").state_key and stopping.patience == 5


def test_defaults_and_misuse():
    best, stopping = BestCheckpoint(), SelectionEarlyStopping()
    assert (best.monitor, best.mode, stopping.monitor, stopping.mode) == (None, "max", None, "max")
    model = SimpleNamespace(selection_metric="val/macro_f1")
    assert monitored_metric(best, model) == monitored_metric(stopping, model) == "val/macro_f1"
    assert BestCheckpoint(save_top_k=3).save_top_k == 3  # ModelCheckpoint needs a monitor for that: known in setup
    with pytest.raises(ValueError, match="mode must be 'max'"):
        BestCheckpoint(mode="min")
    with pytest.raises(ValueError, match="selection_metric"):
        monitored_metric(best, SimpleNamespace())
    # a plain ModelCheckpoint on the same metric and arguments would share the checkpoint state: refused
    clash = ModelCheckpoint(monitor="val/macro_f1", mode="max")
    with pytest.raises(ValueError, match="two callbacks would store their state"):
        best.setup(SimpleNamespace(callbacks=[best, clash]), model, "fit")


@pytest.mark.parametrize("callback", [0, 1])
def test_a_monitor_the_run_does_not_log_is_one_line_naming_the_ones_it_does(tiny_encoder, tmp_path, capsys, callback):
    """A typo in the monitor fails at the first validation with a one-line error, not a traceback."""
    from cli_helpers import in_folder
    from medtext.commands import main

    callbacks = selection_callbacks()
    callbacks[callback]["init_args"] = {**callbacks[callback]["init_args"], "monitor": "val/macro-f1"}
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, SYNTHETIC, "data_modules.SyntheticAbstractsDataModule",
                         callbacks=callbacks)
    with in_folder(tmp_path):
        assert main(["fit", "--config", str(config), "--test_after_fit=false"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    name = ["BestCheckpoint", "SelectionEarlyStopping"][callback]
    assert error.startswith(f"medtext: error: {name} monitors 'val/macro-f1', which this run does not log")
    assert "val/macro_f1" in error and "val/loss" in error and "val/f1/" not in error.split("(or")[0]
