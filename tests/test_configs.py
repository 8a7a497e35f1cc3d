"""Every shipped YAML parses through the CLI; the CPU ones also run one fast_dev_run batch."""

from pathlib import Path

import pytest

from cli_helpers import run
from conftest import ROOT, SHARED_DATA
from medtext.cli import main

CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
# Configs that run on this CPU-only, offline machine, with the extra arguments they need here.
CPU_RUNS = {
    "demo.yaml": ["--data.num_train", "40", "--data.num_val", "20", "--data.num_test", "20"],
    "medical_abstracts/minilm_mlp.yaml": ["--data.data_dir", str(SHARED_DATA / "medical_abstracts"),
                                          "--data.max_length", "128"],
}


def config_id(path: Path) -> str:
    return str(path.relative_to(ROOT / "configs"))


def test_configs_are_found():
    assert {"demo.yaml", "medical_abstracts/minilm_mlp.yaml", "medical_abstracts/biomedbert_mlp.yaml"} <= {
        config_id(p) for p in CONFIGS}


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_config_parses(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "class_path: medtext.TextClassifier" in printed and "class_path: data_modules." in printed


@pytest.mark.parametrize("name", sorted(CPU_RUNS))
def test_cpu_config_fast_dev_run(name):
    if "shared" in " ".join(CPU_RUNS[name]) and not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    cli = run("fit", "--config", str(ROOT / "configs" / name), "--trainer.fast_dev_run=true",
              "--trainer.accelerator=cpu", *CPU_RUNS[name])
    assert cli.trainer.state.finished
    assert "val/macro_f1" in cli.trainer.logged_metrics or "test/macro_f1" in cli.trainer.logged_metrics
