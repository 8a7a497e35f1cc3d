"""Every shipped YAML parses through the CLI; the CPU ones also run one fast_dev_run batch."""

from pathlib import Path

import pytest
import yaml

from cli_helpers import run
from conftest import ROOT, SHARED_DATA
from medtext.cli import main

ADD_ONS = ("logger", "trainer")  # partial configs layered on a task config with a second --config
CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if p.parent.name not in (*ADD_ONS, "sweeps"))
ADD_ON_CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if p.parent.name in ADD_ONS)
SMALL = ["--data.max_length", "64", "--data.batch_size", "4", "--data.eval_batch_size", "8"]
# Configs that run on this CPU-only, offline machine, with the extra arguments they need here.
CPU_RUNS = {"demo.yaml": ["--data.num_train", "40", "--data.num_val", "20", "--data.num_test", "20"]}
for _task in ("medical_abstracts", "hoc"):
    for _head in ("mlp", "bilstm_xattn", "label_attention"):
        CPU_RUNS[f"{_task}/minilm_{_head}.yaml"] = ["--data.data_dir", str(SHARED_DATA / _task), *SMALL]
# tests run in a temporary folder: point the config's relative descriptions path at the repository
CPU_RUNS["medical_abstracts/minilm_label_attention.yaml"] += [
    "--data.descriptions_file", str(ROOT / "configs" / "medical_abstracts" / "label_descriptions.json")]


def config_id(path: Path) -> str:
    return str(path.relative_to(ROOT / "configs"))


def test_every_task_and_head_has_configs():
    names = {config_id(p) for p in CONFIGS}
    for task in ("medical_abstracts", "hoc"):
        for encoder in ("biomedbert", "minilm"):
            for head in ("mlp", "bilstm_xattn", "label_attention"):
                assert f"{task}/{encoder}_{head}.yaml" in names
    assert "demo.yaml" in names


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_config_parses(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "class_path: medtext.TextClassifier" in printed and "class_path: data_modules." in printed


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_best_checkpoint_is_weights_only_and_last_is_the_full_state(config):
    callbacks = [c.get("init_args", {}) for c in yaml.safe_load(config.read_text())["trainer"]["callbacks"]
                 if c["class_path"].endswith(".ModelCheckpoint")]
    best, *last = callbacks  # the first ModelCheckpoint is the one test_after_fit's "best" reads
    assert best.get("monitor") and best.get("save_weights_only") is True and not best.get("save_last")
    assert last and not any(c.get("save_weights_only") for c in last)
    # last.ckpt after every validation (a top-1 without monitor, named last) ...
    assert any(c.get("filename") == "last" and not c.get("monitor") and c.get("save_top_k", 1) == 1 for c in last)
    if config.name != "demo.yaml":  # ... and every N training steps
        assert any(c.get("every_n_train_steps") and c.get("save_last") and c.get("save_top_k") == 0 for c in last)


@pytest.mark.parametrize("add_on", ADD_ON_CONFIGS, ids=config_id)
def test_add_on_config_layers_on_a_task_config(add_on, capsys):
    task = ROOT / "configs" / "medical_abstracts" / "biomedbert_mlp.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(task), "--config", str(add_on), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    added = add_on.read_text()
    assert "ModelCheckpoint" in printed, "the task config's callbacks survive the add-on"
    if add_on.parent.name == "trainer":
        for key in ("accelerator", "precision", "strategy"):
            value = next(line.split(":", 1)[1].strip() for line in added.splitlines()
                         if line.strip().startswith(key + ":"))
            assert f"  {key}: {value}" in printed, key
    else:
        assert "WandbLogger" in printed


@pytest.fixture(scope="module")
def shared_token_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("token_cache"))


@pytest.mark.parametrize("name", sorted(CPU_RUNS))
def test_cpu_config_fast_dev_run(name, shared_token_cache, monkeypatch):
    if "--data.data_dir" in CPU_RUNS[name] and not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    monkeypatch.setenv("MEDTEXT_CACHE_DIR", shared_token_cache)
    cli = run("fit", "--config", str(ROOT / "configs" / name), "--trainer.fast_dev_run=true",
              "--trainer.accelerator=cpu", *CPU_RUNS[name])
    assert cli.trainer.state.finished
    monitor = "val/micro_f1" if cli.datamodule.multi_label else "val/macro_f1"
    assert monitor in cli.trainer.logged_metrics or monitor.replace("val", "test") in cli.trainer.logged_metrics
    assert cli.model.head.num_labels == len(cli.datamodule.label_names)
    assert not list(Path.cwd().rglob("*.ckpt")), "a fast_dev_run writes no checkpoint"
