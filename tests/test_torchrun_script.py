"""``scripts/torchrun_fit.sh`` on one or several nodes: it counts the GPUs torch sees (not
``nvidia-smi``'s list), passes them and the rendezvous settings on to ``torchrun``, and stops with one
line when torch sees none; run with the stubs of ``test_cluster_scripts.py``."""

import sys
from pathlib import Path

import pytest

from test_cluster_scripts import checkout, run_script  # noqa: F401 - checkout: a fixture


def torchrun_argv(nproc: int, nnodes: int, node_rank: int, addr: str) -> list[str]:
    return [f"--nnodes={nnodes}", f"--node-rank={node_rank}", f"--nproc-per-node={nproc}", f"--master-addr={addr}",
            "--master-port=29500", "-m", "medtext", "fit", "--config", "configs/medical_abstracts/biomedbert_mlp.yaml"]


@pytest.mark.parametrize(("env", "nproc"), [
    ({}, 8),  # every GPU torch sees
    ({"CUDA_VISIBLE_DEVICES": "0,2"}, 2),  # nvidia-smi -L would say 16 (8 GPUs, 8 MIG slices)
    ({"NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "node0", "CUDA_VISIBLE_DEVICES": "3"}, 1),
    ({"GPUS_PER_NODE": "3", "CUDA_VISIBLE_DEVICES": ""}, 3),  # GPUS_PER_NODE wins, torch is not asked
])
def test_torchrun_counts_the_gpus_torch_sees(checkout, env, nproc):
    script = checkout / "scripts" / "torchrun_fit.sh"
    result, calls = run_script(script, checkout, env, "configs/medical_abstracts/biomedbert_mlp.yaml",
                               "--seed_everything=1")
    assert result.returncode == 0, result.stderr
    asked = [c for c in calls if c["cmd"] == "python"]
    assert [c["argv"] for c in asked] == ([] if "GPUS_PER_NODE" in env else
                                          [["-c", "import torch; print(torch.cuda.device_count())"]])
    assert all(c["venv"] == str(checkout / ".venv") for c in calls)
    assert not [c for c in calls if c["cmd"] == "nvidia-smi"]
    [torchrun] = [c for c in calls if c["cmd"] == "torchrun"]
    nnodes = int(env.get("NNODES", 1))
    expected = torchrun_argv(nproc, nnodes, int(env.get("NODE_RANK", 0)), env.get("MASTER_ADDR", "127.0.0.1"))
    assert torchrun["argv"] == [*expected, "--config", str(checkout / "configs/trainer/multinode.yaml"),
                                f"--trainer.num_nodes={nnodes}", f"--trainer.devices={nproc}", "--seed_everything=1"]
    assert torchrun["path"] == str(checkout / ".venv" / "bin" / "torchrun")


def test_torchrun_stops_when_torch_sees_no_gpu(checkout):
    script = checkout / "scripts" / "torchrun_fit.sh"
    result, calls = run_script(script, checkout, {"CUDA_VISIBLE_DEVICES": ""}, "configs/demo.yaml")
    assert result.returncode == 1 and [c["cmd"] for c in calls] == ["python"]
    assert "torch sees no GPU (CUDA_VISIBLE_DEVICES=)" in result.stderr and "GPUS_PER_NODE" in result.stderr


def test_torchrun_asks_the_real_torch(checkout):
    """This machine's torch (CPU only) sees no GPU: the script says so and starts nothing."""
    script = checkout / "scripts" / "torchrun_fit.sh"
    env = {"MEDTEXT_VENV": "", "PATH": f"{checkout / '.venv' / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin"}
    (checkout / ".venv" / "bin" / "python").unlink()  # the real python, the stub torchrun
    result, calls = run_script(script, checkout, env, "configs/demo.yaml")
    assert result.returncode == 1 and calls == [], result.stderr
    assert "torch sees no GPU (CUDA_VISIBLE_DEVICES=unset)" in result.stderr
