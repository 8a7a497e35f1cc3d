"""A SLURM requeue inside a W&B sweep: the trial's run is marked preempting and the command exits 75
(``SWEEP_REQUEUE_EXIT``), so the sweep runs the trial again instead of counting it finished; outside a
sweep a requeued job still exits 0. The slow test runs W&B's own agent (``run_agent``, what ``wandb
agent`` runs) offline, with the three calls it makes to the W&B server replaced by stubs, on a trial
that SLURM (simulated) asks to stop. ``scripts/slurm/sweep.sbatch`` passes SIGUSR1 on to the agent."""

import json
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
import yaml

from conftest import ROOT
from medtext import commands
from medtext.core.errors import SWEEP_REQUEUE_EXIT, Requeued
from slurm_stub import stub_scontrol
from sweep_helpers import repo_like, sample, tiny_overrides

SWEEP_SBATCH = ROOT / "scripts" / "slurm" / "sweep.sbatch"


class FakeRun:
    def __init__(self, sweep_id=None):
        self.id, self.sweep_id, self.calls = "run1", sweep_id, []

    def mark_preempting(self):
        self.calls.append("mark_preempting")

    def finish(self, exit_code=None):
        self.calls.append(("finish", exit_code))


def requeued_main(monkeypatch, run, sweep_id):
    """``main`` of a ``fit`` that SlurmRequeue stopped, with ``run`` as ``wandb.run``."""
    import wandb

    monkeypatch.setattr(wandb, "run", run)
    if sweep_id:
        monkeypatch.setenv("WANDB_SWEEP_ID", sweep_id)
    else:
        monkeypatch.delenv("WANDB_SWEEP_ID", raising=False)
    with mock.patch.object(commands, "run", side_effect=Requeued("SLURM job 7 requeued; it resumes from x")):
        return commands.main(["fit"])


@pytest.mark.parametrize("env_sweep, run_sweep", [("abc123", None), (None, "abc123"), ("abc123", "abc123")])
def test_a_requeued_sweep_trial_is_marked_preempting_and_fails(monkeypatch, capsys, env_sweep, run_sweep):
    run = FakeRun(run_sweep)
    assert requeued_main(monkeypatch, run, env_sweep) == SWEEP_REQUEUE_EXIT == 75
    assert run.calls == ["mark_preempting", ("finish", 75)]
    assert "marked preempting; exit status 75" in capsys.readouterr().err


def test_a_sweep_rank_without_a_run_fails_too(monkeypatch):
    assert requeued_main(monkeypatch, None, "abc123") == 75  # DDP ranks other than zero have no run


@pytest.mark.parametrize("run", [None, FakeRun()], ids=["no run", "run"])
def test_a_requeued_job_outside_a_sweep_exits_0(monkeypatch, capsys, run):
    assert requeued_main(monkeypatch, run, None) == 0  # SLURM requeues the job; its next start resumes
    assert run is None or run.calls == []
    assert capsys.readouterr().err == "medtext: SLURM job 7 requeued; it resumes from x\n"


def test_the_trial_is_marked_preempting_before_the_job_is_requeued(monkeypatch, tmp_path):
    """After ``scontrol requeue`` SLURM may stop the job at any moment: the mark must already be sent."""
    import wandb

    from callbacks import slurm_requeue

    calls = []
    run = FakeRun("abc123")
    run.mark_preempting = lambda: calls.append("mark_preempting")
    monkeypatch.setattr(wandb, "run", run)
    monkeypatch.setenv("WANDB_SWEEP_ID", "abc123")
    monkeypatch.setattr(slurm_requeue, "requeue", lambda key: calls.append(("requeue", key)))
    callback = slurm_requeue.SlurmRequeue()
    callback.signalled, callback._key = True, "7"
    trainer = SimpleNamespace(strategy=SimpleNamespace(reduce_boolean_decision=lambda flag, all: flag),
                              default_root_dir=str(tmp_path), save_checkpoint=lambda path: calls.append("save"),
                              global_step=3, is_global_zero=True)
    with pytest.raises(Requeued):
        callback._requeue_if_signalled(trainer)
    assert calls == ["save", "mark_preempting", ("requeue", "7")]


def run_records(path: Path) -> list:
    """The records of an offline W&B run's ``.wandb`` file (a LevelDB-style log of protobuf records:
    a 7-byte file header, 32 KiB blocks, records split in chunks behind a 7-byte chunk header)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block, position, chunks, records = path.read_bytes(), 32768, 7, b"", []
    assert data[:4] == b":W&B"
    while position + 7 <= len(data):
        if block - position % block < 7:  # no room for a chunk header: the rest of the block is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        chunks += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            records.append(pb.Record.FromString(chunks))
            chunks = b""
    return records


@pytest.mark.slow  # a fit in a subprocess, started by W&B's agent
def test_wandb_agent_sees_a_requeued_trial_fail_with_its_run_preempting(tiny_encoder, tmp_path, monkeypatch):
    import wandb
    from wandb import wandb_agent
    from wandb.apis.public import sweeps as server

    repo_like(tmp_path)
    sweep = yaml.safe_load((ROOT / "configs" / "sweeps" / "medical_abstracts.yaml").read_text())
    values = {key: sample(spec, random.Random(5)) for key, spec in sweep["parameters"].items()}
    overrides = [o for o in tiny_overrides(sweep, tiny_encoder, tmp_path) if "data_dir" not in o]
    signal_at = json.dumps({"class_path": "signal_at_step.SignalAtStep", "init_args": {"step": 2}})
    # fixed options go before ${args}, as a user adds them; the data folder comes from MEDTEXT_DATA_DIR
    command = [*sweep["command"][:-1], *overrides, "--trainer.max_epochs=1", "--test_after_fit=false",
               f"--trainer.callbacks+={signal_at}", "${args}"]
    trial = {"type": "run", "run_id": "trial1", "program": sweep["program"],
             "args": {key: {"value": value} for key, value in values.items()}}
    heartbeats = []

    def heartbeat(api, agent_id, metrics, run_states):  # the controller hands out one trial, then nothing
        heartbeats.append(dict(run_states))
        return [trial] if len(heartbeats) == 1 else []

    served = {"config": yaml.safe_dump({**sweep, "command": command})}  # the sweep as `wandb sweep` stored it
    monkeypatch.setattr(server, "_sweep_with_runs", lambda *_: served)
    monkeypatch.setattr(server, "_register_agent", lambda *_, **__: {"id": "agent1"})
    monkeypatch.setattr(server, "_agent_heartbeat", heartbeat)
    monkeypatch.setattr(wandb, "Api", lambda *_, **__: SimpleNamespace())
    agents, processes = [], []

    class Agent(wandb_agent.Agent):  # W&B's agent, kept for the assertions
        POLL_INTERVAL = 0.5  # W&B waits 5 s between polls of the trial

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            agents.append(self)

    class AgentProcess(wandb_agent.AgentProcess):  # W&B's Popen of the trial, kept for the assertions
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            processes.append(self)

    monkeypatch.setattr(wandb_agent, "Agent", Agent)
    monkeypatch.setattr(wandb_agent, "AgentProcess", AgentProcess)

    stub_scontrol(tmp_path)
    environment = {  # what the trial inherits from the agent: a one-task SLURM job, offline W&B
        "PATH": os.pathsep.join([str(tmp_path / "bin"), str(Path(sys.executable).parent), os.environ["PATH"]]),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)]), "SCONTROL_LOG": str(tmp_path / "scontrol.log"),
        "MEDTEXT_DATA_DIR": str(tmp_path / "ma"), "WANDB_MODE": "offline", "WANDB_SILENT": "true",
        "WANDB_DIR": str(tmp_path), "WANDB_SWEEP_ID": "-", "WANDB_RUN_ID": "-", "WANDB_SWEEP_PARAM_PATH": "-",
        "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "medtext-sweep", "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_NNODES": "1", "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
        "SLURM_NODELIST": "127.0.0.1", "SLURM_STEP_ID": "0"}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)  # set (and restored) here: run_agent and the agent overwrite some
    watchdog = threading.Timer(600, lambda: [p.kill() for p in processes])  # a hung trial fails the test
    watchdog.start()
    try:
        wandb_agent.run_agent("sweep1", count=1)  # what `wandb agent --count 1 sweep1` runs
    finally:
        watchdog.cancel()

    (agent,), (process,) = agents, processes
    assert process.poll() == SWEEP_REQUEUE_EXIT  # medtext's exit status, as the agent read it
    assert agent._failed == 1  # the agent counts the trial failed, not completed
    assert any(states.get("trial1") for states in heartbeats)  # it reported the trial running meanwhile
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
    assert list((tmp_path / "runs" / "slurm-4242-trial1").glob("hpc_ckpt_*.ckpt"))  # keyed by the trial too
    (run_file,) = (tmp_path / "runs" / "wandb").glob("offline-run-*-trial1/run-trial1.wandb")
    records = run_records(run_file)
    kinds = [record.WhichOneof("record_type") for record in records]
    assert "preempting" in kinds  # W&B: a preempting run that exits non-zero is requeued by the sweep
    (exit_record,) = [record.exit for record in records if record.HasField("exit")]
    assert exit_record.exit_code == SWEEP_REQUEUE_EXIT


def test_sweep_sbatch_asks_for_the_signal_and_requeue():
    directives = [line.split()[1] for line in SWEEP_SBATCH.read_text().splitlines() if line.startswith("#SBATCH")]
    assert "--signal=B:USR1@90" in directives and "--requeue" in directives  # B: the agent is not a job step


def start_sweep_sbatch(tmp_path: Path, **env: str) -> subprocess.Popen:
    """``sweep.sbatch`` with a stand-in ``wandb`` that records its arguments and the signals it gets."""
    (tmp_path / "bin").mkdir(exist_ok=True)
    fake = tmp_path / "bin" / "wandb"
    fake.write_text('#!/bin/bash\ntrap \'echo USR1 >> "$LOG"; exit 3\' USR1\necho "$@" > "$LOG"\n'
                    'while true; do sleep 0.1; done\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "MEDTEXT_VENV": "", "SLURM_SUBMIT_DIR": str(ROOT),
           "LOG": str(tmp_path / "wandb.log"), **env}
    return subprocess.Popen(["bash", str(SWEEP_SBATCH), "ENT/medtext/abc123"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sweep_sbatch_passes_sigusr1_to_the_agent_and_its_status_back(tmp_path):
    job = start_sweep_sbatch(tmp_path, MEDTEXT_DATA_DIR="/data/hoc")
    log = tmp_path / "wandb.log"
    deadline = time.monotonic() + 30
    while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert log.read_text() == "agent --count 1 --forward-signals ENT/medtext/abc123\n"
    job.send_signal(signal.SIGUSR1)  # SLURM's --signal=B:USR1@90, sent to the batch shell only
    out, err = job.communicate(timeout=30)
    assert log.read_text().endswith("USR1\n")
    assert job.returncode == 3 and "wandb agent exited with status 3" in out, err


def test_sweep_sbatch_needs_the_data_folder(tmp_path):
    job = start_sweep_sbatch(tmp_path)
    out, err = job.communicate(timeout=30)
    assert job.returncode == 1 and "set MEDTEXT_DATA_DIR" in err and not (tmp_path / "wandb.log").exists()
