"""``scripts/torchrun_fit.sh`` refuses a multi-node start without its rendezvous settings, and both
cluster scripts load encoders from the Hugging Face cache only (compute nodes often have no internet)
unless the user says otherwise; run with the stubs of ``test_cluster_scripts.py``."""

import subprocess
from pathlib import Path

import pytest

from test_cluster_scripts import SBATCH_ENV, checkout, run_script, sbatch  # noqa: F401 - checkout: a fixture


@pytest.mark.parametrize("missing", [["MASTER_ADDR"], ["NODE_RANK"], ["MASTER_ADDR", "NODE_RANK"]])
def test_torchrun_on_several_nodes_refuses_an_unset_master_addr_or_node_rank(checkout, missing):
    """127.0.0.1 and rank 0 on every node would start as many one-node rendezvous, each waiting for the rest."""
    env = {key: value for key, value in {"NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "node0"}.items()
           if key not in missing}
    result, calls = run_script(checkout / "scripts" / "torchrun_fit.sh", checkout, env, "configs/demo.yaml")
    assert result.returncode == 1 and calls == []
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"torchrun_fit.sh: NNODES=2 but {' '.join(missing)} unset") and "MASTER_ADDR to" in line


@pytest.mark.parametrize("env", [{"NODE_RANK": "2", "NNODES": "2", "MASTER_ADDR": "node0"}, {"NNODES": "two"}])
def test_torchrun_refuses_a_node_rank_or_node_count_that_is_not_one(checkout, env):
    result, calls = run_script(checkout / "scripts" / "torchrun_fit.sh", checkout, env, "configs/demo.yaml")
    assert result.returncode == 1 and calls == [] and len(result.stderr.strip().splitlines()) == 1


def launch(checkout: Path, script: str, env: dict) -> tuple[subprocess.CompletedProcess, dict]:
    """The srun or torchrun call of ``script`` (``sbatch`` or ``torchrun``) with ``env`` added."""
    if script == "sbatch":
        result, calls = sbatch(checkout, {**SBATCH_ENV, **env}, "configs/demo.yaml")
    else:
        result, calls = run_script(checkout / "scripts" / "torchrun_fit.sh", checkout, env, "configs/demo.yaml")
    assert result.returncode == 0, result.stderr
    return result, calls[-1]


@pytest.mark.parametrize("script", ["sbatch", "torchrun"])
def test_scripts_load_encoders_from_the_cache_only(checkout, script):
    """Compute nodes without internet: every process loads encoders from the Hugging Face cache."""
    result, call = launch(checkout, script, {})
    home = str(checkout.parent / ".cache" / "huggingface")  # HOME is the checkout's parent
    assert (call["offline"], call["hf_home"]) == ("1", home)
    assert f"encoders from {home}/hub (HF_HUB_OFFLINE=1)" in result.stdout


@pytest.mark.parametrize("script", ["sbatch", "torchrun"])
@pytest.mark.parametrize(("env", "offline"), [({"HF_HUB_OFFLINE": "0"}, "0"), ({"TRANSFORMERS_OFFLINE": "0"}, "0"),
                                              ({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "0"}, "1")])
def test_scripts_keep_the_users_hub_settings(checkout, script, env, offline):
    result, call = launch(checkout, script, {**env, "HF_HOME": "/shared/hf", "HF_HUB_CACHE": "/shared/hub"})
    assert (call["offline"], call["hf_home"]) == (offline, "/shared/hf")
    assert f"encoders from /shared/hub (HF_HUB_OFFLINE={offline})" in result.stdout
