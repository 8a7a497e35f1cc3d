"""``scripts/slurm/fit.sbatch`` and ``scripts/torchrun_fit.sh`` run by ``bash`` as sbatch and a user
would run them, with stub ``srun``, ``torchrun``, ``python`` and ``nvidia-smi`` that record their
command lines (and the Hugging Face cache settings they get), in a fake checkout whose ``.venv`` holds
the stubs."""

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from medtext.runtime.launch_checks import requested_devices

FIT_SBATCH = ROOT / "scripts" / "slurm" / "fit.sbatch"
TORCHRUN_FIT = ROOT / "scripts" / "torchrun_fit.sh"
STUB = """#!{python}
import json, os, sys
with open(os.environ["STUB_RECORD"], "a") as f:
    f.write(json.dumps({{"cmd": os.path.basename(sys.argv[0]), "path": sys.argv[0], "argv": sys.argv[1:],
                        "cwd": os.getcwd(), "venv": os.environ.get("VIRTUAL_ENV"),
                        "tokenizers": os.environ.get("TOKENIZERS_PARALLELISM"),
                        "offline": os.environ.get("HF_HUB_OFFLINE"), "hf_home": os.environ.get("HF_HOME"),
                        "requeue_exit": os.environ.get("MEDTEXT_REQUEUE_EXIT")}}) + "\\n")
needle, _, status = os.environ.get("STUB_EXIT", "").rpartition(":")
if needle and needle in sys.argv:
    sys.exit(int(status))
if os.path.basename(sys.argv[0]) == "python" and sys.argv[1:2] == ["-c"]:  # torch.cuda.device_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    print(8 if visible is None else len([d for d in visible.split(",") if d]))
if os.path.basename(sys.argv[0]) == "nvidia-smi":
    for i in range(8):
        print(f"GPU {{i}}: A100 (UUID: GPU-{{i}})\\n  MIG 3g.20gb Device 0: (UUID: MIG-{{i}})")
"""
# sbatch with the script's #SBATCH lines: 2 nodes x 4 tasks x 4 GPUs, 8 CPUs a task
SBATCH_ENV = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "medtext", "SLURM_NNODES": "2", "SLURM_JOB_NUM_NODES": "2",
              "SLURM_NTASKS": "8", "SLURM_NTASKS_PER_NODE": "4", "SLURM_GPUS_PER_NODE": "4",
              "SLURM_CPUS_PER_TASK": "8", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}


def stub(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(STUB.format(python=sys.executable))
    (folder / name).chmod(0o755)


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A fake repository: the files fit.sbatch looks for, the torchrun script, a .venv with the stubs
    (its activate refers to an unset variable, as some do), and srun/nvidia-smi in a system folder."""
    repo = tmp_path / "medtext"
    for path in ("medtext/commands/cli.py", "configs/trainer/multinode.yaml"):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, repo / path)
    (repo / "scripts").mkdir()
    shutil.copy(TORCHRUN_FIT, repo / "scripts" / "torchrun_fit.sh")
    venv = repo / ".venv"
    for name in ("python", "torchrun"):
        stub(venv / "bin", name)
    (venv / "bin" / "activate").write_text(
        f'_OLD_PS1="$PS1"\nVIRTUAL_ENV="{venv}"\nexport VIRTUAL_ENV\nPATH="$VIRTUAL_ENV/bin:$PATH"\nexport PATH\n')
    for name in ("srun", "nvidia-smi"):
        stub(tmp_path / "sysbin", name)
    return repo


def run_script(script: Path, cwd: Path, env: dict, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    record = cwd.parent / "record.jsonl"
    record.unlink(missing_ok=True)
    base = {"PATH": f"{cwd.parent / 'sysbin'}:/usr/bin:/bin", "HOME": str(cwd.parent), "STUB_RECORD": str(record)}
    result = subprocess.run(["bash", str(script), *args], cwd=cwd, env={**base, **env}, capture_output=True,
                            text=True, timeout=60)
    calls = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return result, calls


def sbatch(checkout: Path, env: dict, *args: str):
    """Run fit.sbatch as slurmd does: a spool copy, in the submit folder, SLURM_SUBMIT_DIR set."""
    spool = checkout.parent / "spool" / "job04242"
    spool.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIT_SBATCH, spool / "slurm_script")
    submit = Path(env.get("SLURM_SUBMIT_DIR", checkout))
    return run_script(spool / "slurm_script", submit, {"SLURM_SUBMIT_DIR": str(checkout), **env}, *args)


def fit_command(nodes: int, devices: int) -> list[str]:
    return ["python", "-m", "medtext", "fit", "--config", "configs/hoc/biomedbert_label_attention.yaml",
            "--config", "configs/trainer/multinode.yaml", f"--trainer.num_nodes={nodes}",
            f"--trainer.devices={devices}", "--data.data_dir", "/data/hoc"]


@pytest.mark.parametrize("script", [FIT_SBATCH, TORCHRUN_FIT])
def test_scripts_parse(script):
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True).returncode == 0


def test_sbatch_lines_keep_requeue_and_default_to_two_nodes_of_four_gpus():
    lines = [line.split()[1] for line in FIT_SBATCH.read_text().splitlines() if line.startswith("#SBATCH")]
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--signal=SIGUSR1@90", "--requeue",
                 "--open-mode=append"):
        assert line in lines


@pytest.mark.parametrize(("overrides", "nodes", "devices"), [
    ({}, 2, 4),  # the #SBATCH lines
    ({"SLURM_NNODES": "1", "SLURM_JOB_NUM_NODES": "1", "SLURM_NTASKS": "4"}, 1, 4),  # sbatch --nodes=1
    ({"SLURM_NNODES": "1", "SLURM_JOB_NUM_NODES": "1", "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2",
      "SLURM_GPUS_PER_NODE": "a100:2"}, 1, 2),  # sbatch --nodes=1 --ntasks-per-node=2 --gpus-per-node=a100:2
])
def test_sbatch_runs_srun_in_the_checkout_with_its_venv(checkout, overrides, nodes, devices):
    result, calls = sbatch(checkout, {**SBATCH_ENV, **overrides}, "configs/hoc/biomedbert_label_attention.yaml",
                           "--data.data_dir", "/data/hoc")
    assert result.returncode == 0, result.stderr
    [srun] = calls
    assert srun["cmd"] == "srun" and srun["argv"] == ["--cpus-per-task=8", *fit_command(nodes, devices)]
    assert srun["cwd"] == str(checkout) and srun["venv"] == str(checkout / ".venv")
    assert srun["tokenizers"] == "false"
    assert f"{nodes} node(s) x {devices} task(s)" in result.stdout
    assert str(checkout / ".venv/bin/python") in result.stdout


def test_sbatch_with_an_empty_medtext_venv_keeps_the_environment(checkout):
    env = {**SBATCH_ENV, "MEDTEXT_VENV": ""}
    del env["SLURM_CPUS_PER_TASK"]
    result, [srun] = sbatch(checkout, env, "configs/demo.yaml")
    assert result.returncode == 0, result.stderr
    assert srun["venv"] is None and srun["argv"][:5] == ["python", "-m", "medtext", "fit", "--config"]


@pytest.mark.parametrize(("overrides", "message"), [
    ({"SLURM_NTASKS_PER_NODE": None}, "has no --ntasks-per-node"),  # sbatch --ntasks=8 only
    ({"SLURM_NTASKS_PER_NODE": "2", "SLURM_NTASKS": "4"}, "--ntasks-per-node=2 but --gpus-per-node=4"),
    ({"MEDTEXT_VENV": "/nowhere/venv"}, "no virtualenv at /nowhere/venv"),
    ({"SLURM_SUBMIT_DIR": "ELSEWHERE"}, "is not the medtext repository: submit from its root"),
])
def test_sbatch_stops_with_one_line_before_srun(checkout, overrides, message):
    env = {**SBATCH_ENV, **overrides}
    if env["SLURM_NTASKS_PER_NODE"] is None:
        del env["SLURM_NTASKS_PER_NODE"]
    if env.get("SLURM_SUBMIT_DIR") == "ELSEWHERE":
        env["SLURM_SUBMIT_DIR"] = str(checkout.parent)
    result, calls = sbatch(checkout, env, "configs/demo.yaml")
    assert result.returncode == 1 and calls == []
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_sbatch_command_line_parses_as_medtext_fit(checkout, monkeypatch, capsys):
    """The srun command line, run for real (in this process) up to the parsed config: num_nodes and
    devices arrive."""
    from medtext.commands import main

    _, [srun] = sbatch(checkout, {**SBATCH_ENV, "SLURM_NNODES": "1"}, "configs/demo.yaml")
    assert srun["argv"][1:4] == ["python", "-m", "medtext"], srun["argv"]
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as exit_info:
        main([*srun["argv"][4:], "--print_config"])
    assert exit_info.value.code in (0, None)
    trainer = yaml.safe_load(capsys.readouterr().out)["trainer"]
    assert (trainer["num_nodes"], trainer["strategy"]) == (1, "ddp")
    assert requested_devices(trainer["devices"]) == 4  # jsonargparse keeps "4", Lightning counts 4


def readme_sbatch_commands() -> list[list[str]]:
    """The ``sbatch`` command lines of the README's SLURM paragraph (comments dropped), with the
    variables set before ``sbatch`` (``SEEDS=...``) as leading words."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**SLURM**"):readme.index("**torchrun**")]
    return [shlex.split(line, comments=True) for line in section.splitlines()
            if re.match(r"([A-Z_]+=\S+ |[A-Z_]+=\"[^\"]*\" )*sbatch ", line)]


def sbatch_options(command: list[str]) -> tuple[dict, dict, list[str]]:
    """(the variables before ``sbatch``, its options over the script's #SBATCH lines, the script's arguments)."""
    start = command.index("sbatch")
    variables = dict(word.split("=", 1) for word in command[:start])
    directives = [line.split()[1] for line in FIT_SBATCH.read_text().splitlines() if line.startswith("#SBATCH")]
    script = command.index("scripts/slurm/fit.sbatch")
    options = dict(o.lstrip("-").split("=", 1) for o in [*directives, *command[start + 1:script]] if "=" in o)
    return variables, options, command[script + 1:]


@pytest.mark.parametrize("command", readme_sbatch_commands(), ids=" ".join)
def test_readme_sbatch_commands_run_as_documented(checkout, command):
    """Each README command, with sbatch's rule that its options win over the #SBATCH lines; a job
    array is run as its first task."""
    variables, options, arguments = sbatch_options(command)
    nodes, tasks = int(options["nodes"]), int(options["ntasks-per-node"])
    env = {**SBATCH_ENV, **variables, "SLURM_NNODES": str(nodes), "SLURM_JOB_NUM_NODES": str(nodes),
           "SLURM_NTASKS": str(nodes * tasks), "SLURM_NTASKS_PER_NODE": str(tasks),
           "SLURM_GPUS_PER_NODE": options["gpus-per-node"]}
    if "array" in options:
        env["SLURM_ARRAY_TASK_ID"] = re.match(r"\d+", options["array"]).group()
    result, calls = sbatch(checkout, env, *arguments)
    assert result.returncode == 0, result.stderr
    config, *rest = arguments
    seeds = variables["SEEDS"].split() if "SEEDS" in variables else [env.get("SLURM_ARRAY_TASK_ID")]
    assert [srun["argv"][1:] for srun in calls] == [
        ["python", "-m", "medtext", "fit", "--config", config, "--config", "configs/trainer/multinode.yaml",
         f"--trainer.num_nodes={nodes}", f"--trainer.devices={tasks}", *rest,
         *([f"--seed_everything={seed}"] if seed else [])] for seed in seeds]


def test_readme_gives_the_cluster_recipes():
    starts = [command[:command.index("scripts/slurm/fit.sbatch")] for command in readme_sbatch_commands()]
    assert starts == [["sbatch"], ["sbatch", "--nodes=1"],
                      ["sbatch", "--nodes=1", "--ntasks-per-node=2", "--gpus-per-node=2"],
                      ["SEEDS=1 2 3", "sbatch", "--nodes=1"], ["sbatch", "--array=1-3", "--nodes=1"]]
    readme = (ROOT / "README.md").read_text()
    assert "sbatch --array=1-20%4 scripts/slurm/sweep.sbatch" in readme  # the sweep agent's recipe
    assert "NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 bash scripts/torchrun_fit.sh" in readme  # torchrun


@pytest.mark.parametrize("status, message", [(75, "the fit of seed 2 requeued the job"),
                                             (1, "fit.sbatch: the fit of seed 2 failed (exit status 1)")])
def test_a_seed_loop_stops_at_a_requeue_or_a_failure(checkout, status, message):
    env = {**SBATCH_ENV, "SEEDS": "1 2 3", "STUB_EXIT": f"--seed_everything=2:{status}"}
    result, calls = sbatch(checkout, env, "CONFIG.yaml", "--ckpt_path", "auto")
    assert [srun["argv"][-1] for srun in calls] == ["--seed_everything=1", "--seed_everything=2"]
    assert all(srun["requeue_exit"] == "75" for srun in calls)
    assert result.returncode == (0 if status == 75 else 1) and message in result.stdout + result.stderr


@pytest.mark.parametrize("env, args, message", [
    ({"SEEDS": "1 2"}, ["--seed_everything=3"], "give the seeds either in SEEDS or as --seed_everything=3, not both"),
    ({"SEEDS": "1 x"}, [], "SEEDS holds 'x': give whole numbers"),
])
def test_seed_loop_settings_stop_with_one_line(checkout, env, args, message):
    result, calls = sbatch(checkout, {**SBATCH_ENV, **env}, "CONFIG.yaml", *args)
    assert result.returncode == 1 and calls == [] and message in result.stderr


def test_an_array_task_keeps_a_given_seed(checkout):
    result, [srun] = sbatch(checkout, {**SBATCH_ENV, "SLURM_ARRAY_TASK_ID": "2"}, "CONFIG.yaml", "--seed_everything=9")
    assert result.returncode == 0 and srun["argv"][-1] == "--seed_everything=9"
