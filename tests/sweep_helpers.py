"""Shared by the sweep tests: sampling a sweep's parameters, the command ``wandb agent`` starts for
them (expanded by wandb's own agent code), and tiny copies of the corpora for a trial to run on."""

from __future__ import annotations

import csv
import json
import math
import os
import random
from pathlib import Path
from unittest import mock

import yaml

from conftest import ROOT
from data_modules.synthetic import CONDITIONS, generate_abstracts

SWEEPS = sorted((ROOT / "configs" / "sweeps").glob("*.yaml"))
HOC_LABELS = [f"label-{c}" for c in "123456789a"]


def sample(spec: dict, rng: random.Random, pick=None):
    """One value of a sweep parameter; ``pick`` (an index) chooses among ``values`` and min/max."""
    if "value" in spec:
        return spec["value"]
    if "values" in spec:
        values = spec["values"]
        return values[pick % len(values)] if pick is not None else rng.choice(values)
    low, high = spec["min"], spec["max"]
    if pick is not None:
        return (low, high)[pick % 2]
    distribution = spec.get("distribution", "int_uniform" if isinstance(low, int) else "uniform")
    if distribution == "uniform":
        return rng.uniform(low, high)
    if distribution == "log_uniform_values":
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    if distribution == "int_uniform":
        return rng.randint(low, high)
    raise AssertionError(f"no sampler for distribution {distribution!r} in this test")


def agent_command(sweep: dict, values: dict) -> list[str]:
    """The argv ``wandb agent`` starts for a trial with these values: wandb's ``Agent._command_run``
    (macros ${env}, ${interpreter}, ${program}, ${args} ...) given the sweep's ``command``, as
    ``Agent.run`` reads it, and the run command the W&B server sends (the sweep's ``program`` and
    the values), with the process start replaced by a recorder. The environment is left unchanged."""
    from wandb import wandb_agent

    started = []

    def record(command=None, env=None, **_):
        started.append(command)
        return mock.Mock()  # the agent keeps the process handle

    run = {"type": "run", "run_id": "trial", "program": sweep["program"],
           "args": {key: {"value": value} for key, value in values.items()}}
    with mock.patch.dict(os.environ, {"WANDB_DIR": os.getcwd(), "WANDB_SWEEP_ID": "sweep"}), \
            mock.patch.object(wandb_agent, "AgentProcess", record):
        agent = wandb_agent.Agent(api=None, queue=None, sweep_id="sweep")
        agent._sweep_command = list(sweep["command"])  # what Agent.run takes from the sweep's config
        agent._command_run(run)
    (command,) = started
    return command


def repo_like(folder: Path) -> Path:
    """The agent runs from the repository root: the sweep's relative config paths must resolve."""
    (folder / "configs").symlink_to(ROOT / "configs")
    return folder


def write_medical_abstracts(folder: Path) -> Path:
    """A tiny copy of the official format: medical_tc_train.csv and medical_tc_labels.csv."""
    folder.mkdir()
    names = list(CONDITIONS)
    with open(folder / "medical_tc_labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["condition_label", "condition_name"],
                                      *([i + 1, n] for i, n in enumerate(names))])
    with open(folder / "medical_tc_train.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["condition_label", "medical_abstract"],
                                      *([names.index(r["label"]) + 1, r["text"]] for r in generate_abstracts(40))])
    return folder


def write_hoc(folder: Path) -> Path:
    """A tiny copy of the HoC format: tab-separated splits, one 0/1 column per label, labels.json."""
    folder.mkdir()
    rng = random.Random(0)
    (folder / "labels.json").write_text(json.dumps({c: f"Hallmark {c}: description of {c}" for c in HOC_LABELS}))
    for split, n in (("train", 24), ("val", 8)):
        rows = [["", *HOC_LABELS]] + [[r["text"], *(int(rng.random() < 0.3) for _ in HOC_LABELS)]
                                      for r in generate_abstracts(n, seed=len(split))]
        with open(folder / f"hoc_{split}.csv", "w", newline="") as handle:
            csv.writer(handle, delimiter="\t").writerows(rows)
    return folder


def base_config(sweep: dict) -> dict:
    """The task config the sweep's command starts from (its first ``--config``)."""
    return yaml.safe_load((ROOT / sweep["command"][sweep["command"].index("--config") + 1]).read_text())


def tiny_overrides(sweep: dict, tiny_encoder: str, tmp_path: Path) -> list[str]:
    """Options after ${args}, as a user adds fixed ones: tiny encoder and data, CPU. None is swept."""
    multi_label = base_config(sweep)["data"]["class_path"].endswith("HoCDataModule")
    data_dir = write_hoc(tmp_path / "hoc") if multi_label else write_medical_abstracts(tmp_path / "ma")
    overrides = [f"--model.init_args.encoder_name={tiny_encoder}", f"--data.init_args.data_dir={data_dir}",
                 "--data.init_args.max_length=32", "--data.init_args.batch_size=4",
                 "--data.init_args.eval_batch_size=8", "--data.init_args.num_workers=0",
                 "--trainer.accelerator=cpu", "--trainer.precision=32-true", "--trainer.enable_progress_bar=false"]
    assert not {o.split("=")[0][2:] for o in overrides} & set(sweep["parameters"])
    return overrides
