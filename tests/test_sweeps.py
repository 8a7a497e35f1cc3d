"""W&B sweeps: every ``configs/sweeps/*.yaml`` has the keys ``wandb agent`` needs, and the command the
agent expands from it with sampled values (``--key=value``) is a ``python -m medtext fit`` that parses
and runs; each value reaches the model, the sweep's metric is logged; under DDP every rank gets the
same values and one W&B run is made."""

import json
import os
import random
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml

from cli_helpers import run
from conftest import ROOT
from medtext.commands import main
from sweep_helpers import SWEEPS, agent_command, base_config, repo_like, sample, tiny_overrides


def sweep_id(path: Path) -> str:
    return path.stem


@pytest.fixture
def agent_cwd(tmp_path):
    return repo_like(tmp_path)


def resolved(config: Namespace, key: str):
    value = config.get(key)
    return value.class_path if isinstance(value, Namespace) else value


def assert_same(got, expected, key: str) -> None:
    if isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-9), key
    else:
        assert got == expected, key


@pytest.mark.parametrize("path", SWEEPS, ids=sweep_id)
def test_sweep_config_is_valid(path):
    sweep = yaml.safe_load(path.read_text())
    monitor = "val/tuned_micro_f1" if base_config(sweep)["data"]["class_path"].endswith("HoCDataModule") else "val/macro_f1"
    assert sweep["method"] in ("bayes", "random") and sweep["metric"] == {"name": monitor, "goal": "maximize"}
    assert sweep["program"] == "medtext"  # `wandb agent` from the command line needs it (W&B's sweep docs)
    assert sweep["command"][:5] == ["${env}", "${interpreter}", "-m", "${program}", "fit"]
    assert sweep["command"][-1] == "${args}" and "configs/logger/wandb.yaml" in sweep["command"]
    assert "--data.init_args.data_dir=${envvar:MEDTEXT_DATA_DIR}" in sweep["command"]  # no hand edit of the file
    assert all({"values", "value", "min"} & set(spec) for spec in sweep["parameters"].values())
    assert len(SWEEPS) >= 2


@pytest.mark.parametrize("path", SWEEPS, ids=sweep_id)
def test_the_data_folder_comes_from_the_agents_environment(path, monkeypatch):
    sweep = yaml.safe_load(path.read_text())
    monkeypatch.setenv("MEDTEXT_DATA_DIR", "/data/corpus")
    command = agent_command(sweep, {"model.init_args.encoder_lr": 3e-5})
    assert command[-2:] == ["--data.init_args.data_dir=/data/corpus", "--model.init_args.encoder_lr=3e-05"]


@pytest.mark.parametrize("path", SWEEPS, ids=sweep_id)
def test_agent_command_runs_and_logs_the_sweep_metric(path, tiny_encoder, tmp_path, agent_cwd):
    sweep = yaml.safe_load(path.read_text())
    values = {key: sample(spec, random.Random(sweep_id(path))) for key, spec in sweep["parameters"].items()}
    command = agent_command(sweep, values)
    assert all(f"--{key}={value}" in command for key, value in values.items())
    cli = run(*command[4:], *tiny_overrides(sweep, tiny_encoder, tmp_path), "--trainer.fast_dev_run=true")
    assert sweep["metric"]["name"] in cli.trainer.logged_metrics
    config = cli.config["fit"]
    for key, value in values.items():
        assert_same(resolved(config, key), value, key)
        name = key.removeprefix("model.init_args.")
        if "." not in name and name != "head":
            assert_same(cli.model.hparams[name], value, key)
    if "model.init_args.head" in values:
        assert values["model.init_args.head"].endswith("." + type(cli.model.head).__name__)


@pytest.mark.parametrize("path", SWEEPS, ids=sweep_id)
def test_every_value_and_bound_parses(path, tiny_encoder, tmp_path, agent_cwd, capsys):
    """The agent's expansion of the sweep (wandb's code) is a ``python -m medtext fit`` that parses,
    for every listed value and both bounds of every range."""
    sweep = yaml.safe_load(path.read_text())
    overrides = tiny_overrides(sweep, tiny_encoder, tmp_path)
    choices = max(len(spec.get("values", [0, 0])) for spec in sweep["parameters"].values())
    for pick in range(choices):
        values = {key: sample(spec, random.Random(0), pick) for key, spec in sweep["parameters"].items()}
        command = agent_command(sweep, values)
        assert command[:5] == ["/usr/bin/env", "python", "-m", "medtext", "fit"]
        with pytest.raises(SystemExit) as exit_info:
            main([*command[4:], *overrides, "--print_config"])
        assert exit_info.value.code in (0, None)
        printed = yaml.safe_load(capsys.readouterr().out)
        for key, value in values.items():
            got = _lookup(printed, key)
            assert_same(got["class_path"] if isinstance(got, dict) else got, value, key)


def _lookup(config: dict, key: str):
    for part in key.split("."):
        config = config[part]
    return config


class RankProbe(pl.Callback):
    """Writes, per rank, the model's hyperparameters and head as this rank built them."""

    def __init__(self, folder: str):
        self.folder = folder

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        hparams = {k: v for k, v in pl_module.hparams.items() if isinstance(v, (int, float, str, list, type(None)))}
        record = {"hparams": hparams, "head": type(pl_module.head).__name__,
                  "dropout": [m.p for m in pl_module.head.modules() if isinstance(m, torch.nn.Dropout)]}
        Path(self.folder, f"rank{trainer.global_rank}.json").write_text(json.dumps(record, sort_keys=True))


@pytest.mark.slow  # two processes
def test_ddp_ranks_share_the_swept_values_and_one_wandb_run(tiny_encoder, tmp_path, agent_cwd):
    path = ROOT / "configs" / "sweeps" / "medical_abstracts.yaml"
    sweep = yaml.safe_load(path.read_text())
    values = {key: sample(spec, random.Random(3)) for key, spec in sweep["parameters"].items()}
    command = agent_command(sweep, values)
    command[1] = sys.executable  # the agent's `python`, here this virtualenv's
    probe = json.dumps({"class_path": "test_sweeps.RankProbe", "init_args": {"folder": str(tmp_path)}})
    command += [*tiny_overrides(sweep, tiny_encoder, tmp_path), "--trainer.strategy=ddp", "--trainer.devices=2",
                "--trainer.max_epochs=1", "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1",
                "--trainer.num_sanity_val_steps=0", "--test_after_fit=false", f"--trainer.callbacks+={probe}"]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, cwd=agent_cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]
    for key, value in values.items():
        name = key.removeprefix("model.init_args.")
        if name in ranks[0]["hparams"]:
            assert_same(ranks[0]["hparams"][name], value, key)
    assert values["model.init_args.head"].endswith("." + ranks[0]["head"])
    assert ranks[0]["dropout"] and set(ranks[0]["dropout"]) == {values["model.init_args.head.init_args.dropout"]}
    (run_dir,) = Path(agent_cwd, "runs", "wandb").glob("offline-run-*")  # one W&B run for both ranks
    saved = yaml.safe_load((run_dir / "files" / "lightning" / "config.yaml").read_text())
    assert saved["model"]["init_args"]["encoder_lr"] == pytest.approx(values["model.init_args.encoder_lr"])
