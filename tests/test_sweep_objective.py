"""The sweep objective is what the deployed model is judged by, and a run's W&B summary holds the best
epoch's value of it: HoC sweeps and checkpoints select by the micro-F1 at the tuned per-label
thresholds (what test and predict use), and monitored metrics are summarized by their best value."""

import random
from types import SimpleNamespace

import pytest
import yaml
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from cli_helpers import run
from conftest import ROOT
from medtext.model.tasks import MultiLabelTask
from medtext.runtime.wandb_runs import summarize_monitored_by_best
from sweep_helpers import agent_command, repo_like, sample, tiny_overrides

HOC_SWEEP = ROOT / "configs" / "sweeps" / "hoc.yaml"
HOC_CONFIGS = sorted((ROOT / "configs" / "hoc").glob("*.yaml"))


@pytest.fixture
def offline_wandb(monkeypatch, tmp_path):
    import wandb

    for name, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    yield
    wandb.finish()
    wandb.teardown()  # the W&B service resolves relative paths in the folder it started in


def test_hoc_sweep_and_checkpoints_select_by_the_tuned_thresholds():
    sweep = yaml.safe_load(HOC_SWEEP.read_text())
    assert sweep["metric"] == {"name": "val/tuned_micro_f1", "goal": "maximize"}
    assert not any(key.rsplit(".", 1)[-1] == "threshold" for key in sweep["parameters"])  # tuning replaces it
    assert MultiLabelTask.selection_metric == sweep["metric"]["name"]  # best checkpoint and early stopping
    for path in HOC_CONFIGS:
        config = yaml.safe_load(path.read_text())
        assert config["data"]["class_path"] == "data_modules.HoCDataModule", path.name  # multi-label
        assert config["model"]["init_args"]["tune_thresholds"] is True, path.name


def test_summary_of_monitored_metrics_is_their_best_not_their_last(offline_wandb, tmp_path):
    from pytorch_lightning.loggers import WandbLogger

    logger = WandbLogger(project="medtext", save_dir=str(tmp_path))
    trainer = SimpleNamespace(callbacks=[ModelCheckpoint(monitor="val/tuned_micro_f1", mode="max"),
                                         EarlyStopping(monitor="val/loss", mode="min"), ModelCheckpoint()])
    assert summarize_monitored_by_best(trainer, logger) == {"val/tuned_micro_f1": "max", "val/loss": "min"}
    for step, (f1, loss) in enumerate([(0.2, 0.9), (0.7, 0.4), (0.5, 0.6)]):
        logger.log_metrics({"val/tuned_micro_f1": f1, "val/loss": loss, "val/macro_f1": f1}, step=step)
    summary = logger.experiment.summary
    assert summary["val/tuned_micro_f1"]["max"] == 0.7 and summary["val/loss"]["min"] == 0.4
    assert summary["val/macro_f1"] == 0.5  # not monitored: the last value, as before


@pytest.mark.slow  # a 3-epoch W&B trial; the summary rule itself: test_summary_of_monitored_metrics_...
def test_hoc_sweep_trial_summary_holds_the_best_epoch(tiny_encoder, tmp_path, offline_wandb):
    """A HoC trial as the agent starts it, 3 epochs, offline W&B: the run's summary of the sweep metric
    is the best epoch's value, which is also the best checkpoint's score."""
    repo_like(tmp_path)
    sweep = yaml.safe_load(HOC_SWEEP.read_text())
    values = {key: sample(spec, random.Random(2)) for key, spec in sweep["parameters"].items()}
    command = agent_command(sweep, values)
    cli = run(*command[4:], *tiny_overrides(sweep, tiny_encoder, tmp_path), "--trainer.max_epochs=3",
              "--model.init_args.head_lr=0.05", "--trainer.log_every_n_steps=1")
    metric = sweep["metric"]["name"]
    best = float(cli.trainer.checkpoint_callback.best_model_score)
    assert cli.trainer.checkpoint_callback.monitor == metric and cli.trainer.current_epoch == 3
    summary = cli.trainer.logger.experiment.summary[metric]
    assert summary["max"] == pytest.approx(best, abs=1e-6)
    last = float(cli.trainer.callback_metrics[metric])
    print(f"{metric}: summary max {summary['max']:.4f}, best checkpoint {best:.4f}, last epoch {last:.4f}")


def test_a_best_checkpoint_not_yet_set_up_counts_with_the_models_selection_metric(offline_wandb, tmp_path):
    from pytorch_lightning.loggers import WandbLogger

    from callbacks import BestCheckpoint

    logger = WandbLogger(project="medtext", save_dir=str(tmp_path))
    trainer = SimpleNamespace(callbacks=[BestCheckpoint(), ModelCheckpoint()],
                              lightning_module=SimpleNamespace(selection_metric="val/macro_f1"))
    assert summarize_monitored_by_best(trainer, logger) == {"val/macro_f1": "max"}
