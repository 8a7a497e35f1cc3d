"""Every shipped YAML parses through the CLI; task configs compose configs/base/fit.yaml (stating
trainer keys dotted), resolve to the expected callbacks and logger; the CPU ones run one fast_dev_run
batch, the BiomedBERT ones too with a tiny encoder."""

import contextlib
import copy
import functools
import io
from pathlib import Path

import pytest
import yaml

from cli_helpers import run
from conftest import ROOT, SHARED_DATA
from medtext.core import split_packages
from medtext.commands import main
from medtext.model.tasks import MultiLabelTask, SingleLabelTask
from sweep_helpers import write_hoc, write_medical_abstracts

ADD_ONS = ("logger", "trainer")  # partial configs layered on a task config with a second --config
FRAGMENTS = ("base",)  # pulled in by a task config's `config:` key
PRETRAIN = "pretrain"  # `python -m medtext pretrain` recipes, not fit configs
CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml")
                 if p.parent.name not in (*ADD_ONS, *FRAGMENTS, "sweeps", PRETRAIN))
PRETRAIN_CONFIGS = sorted((ROOT / "configs" / PRETRAIN).glob("*.yaml"))
ADD_ON_CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if p.parent.name in ADD_ONS)
FRAGMENT_CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if p.parent.name in FRAGMENTS)
SHARED = ROOT / "configs" / "base" / "fit.yaml"
SMALL = ["--data.max_length", "64", "--data.batch_size", "4", "--data.eval_batch_size", "8"]
# Configs that run on this CPU-only, offline machine, with the extra arguments they need here.
CPU_RUNS = {"demo.yaml": ["--data.num_train", "40", "--data.num_val", "20", "--data.num_test", "20"]}
for _task in ("medical_abstracts", "hoc"):
    for _recipe in ("mlp", "bilstm_xattn", "label_attention", "best"):
        CPU_RUNS[f"{_task}/minilm_{_recipe}.yaml"] = ["--data.data_dir", str(SHARED_DATA / _task), *SMALL]
# the offline mpnet (pip install -e ".[mpnet]"): run when its split packages are installed, else skipped
for _name in ("medical_abstracts/mpnet_mlp.yaml", "hoc/mpnet_label_attention.yaml", "hoc/mpnet_head_tail.yaml"):
    CPU_RUNS[_name] = ["--data.data_dir", str(SHARED_DATA / _name.split("/")[0]), *SMALL]
# tests run in a temporary folder: point the config's relative descriptions path at the repository
CPU_RUNS["medical_abstracts/minilm_label_attention.yaml"] += [
    "--data.descriptions_file", str(ROOT / "configs" / "medical_abstracts" / "label_descriptions.json")]
# the measured recipes that train longer than the offline encoders' 2 epochs
FOUR_EPOCHS = {"medical_abstracts/minilm_best.yaml", "hoc/minilm_best.yaml", "hoc/mpnet_head_tail.yaml"}
BEST, LAST = "callbacks.BestCheckpoint", "pytorch_lightning.callbacks.ModelCheckpoint"
SHARED_CALLBACKS = [BEST, LAST, LAST, "pytorch_lightning.callbacks.LearningRateMonitor",
                    "callbacks.SelectionEarlyStopping"]


def config_id(path: Path) -> str:
    return str(path.relative_to(ROOT / "configs"))


def selection_metric(config: Path) -> str:
    """What the model selects by: HoC is multi-label."""
    return (MultiLabelTask if config.parent.name == "hoc" else SingleLabelTask).selection_metric


def resolved(config: Path, *args: str) -> dict:
    """``fit --config CONFIG ARGS --print_config``, loaded (parsed once per config and arguments)."""
    return copy.deepcopy(_resolved(config, args))


@functools.lru_cache(maxsize=None)
def _resolved(config: Path, args: tuple[str, ...]) -> dict:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), *args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(printed.getvalue())


def test_every_task_and_head_has_configs():
    names = {config_id(p) for p in CONFIGS}
    for task in ("medical_abstracts", "hoc"):
        for encoder in ("biomedbert", "minilm"):
            for head in ("mlp", "bilstm_xattn", "label_attention"):
                assert f"{task}/{encoder}_{head}.yaml" in names
    assert "demo.yaml" in names


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_config_parses(config):
    printed = resolved(config)  # fit --config CONFIG --print_config, exit status 0
    assert printed["model"]["class_path"] == "medtext.TextClassifier"
    assert printed["data"]["class_path"].startswith("data_modules.")


@pytest.mark.parametrize("config", PRETRAIN_CONFIGS, ids=config_id)
def test_pretrain_config_parses_and_says_how_to_use_its_output(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["output_dir"] and printed["model"]["encoder_name"] and printed["data"]["task_data"]
    header = config.read_text().split("\nseed_everything")[0]
    assert f"python -m medtext pretrain --config configs/pretrain/{config.name}" in header
    assert "python -m medtext fit --config configs/" in header and printed["output_dir"] in header


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_config_composes_the_shared_one_with_dotted_trainer_keys(config):
    """Inside a file with `config:`, a block-form `trainer:` replaces the fragment's whole trainer
    group (its callbacks silently lost), and a list of fragments loses them all: both refused."""
    raw = yaml.safe_load(config.read_text())
    assert raw.get("config") and isinstance(raw["config"], str), "one fragment, `config: ../base/fit.yaml`"
    pulled = (config.parent / raw["config"]).resolve()
    if pulled != SHARED.resolve():  # a recipe that is another task config as it is (mpnet_best: mpnet_mlp)
        assert pulled in CONFIGS and (pulled.parent / yaml.safe_load(pulled.read_text())["config"]).resolve() == SHARED
        assert set(raw) <= {"config", "trainer.logger.init_args.name"}, "a renamed copy, nothing else changed"
    assert "trainer" not in raw, "state trainer keys dotted (trainer.max_epochs: 4), not as a trainer: block"
    assert not {"seed_everything", "test_after_fit"} & set(raw), "the shared fragment sets them"
    assert config.read_text().startswith("# ") and "python -m medtext fit --config configs/" in config.read_text()


@pytest.mark.parametrize("fragment", FRAGMENT_CONFIGS, ids=config_id)
def test_fragment_is_used_and_parses(fragment):
    users = [c for c in CONFIGS if (c.parent / yaml.safe_load(c.read_text())["config"]).resolve() == fragment]
    assert users, "a fragment no config pulls in"
    raw = yaml.safe_load(fragment.read_text())
    assert "config" not in raw and not {"model", "data"} & set(raw), "trainer settings only, not chained"
    callbacks = resolved(fragment)["trainer"]["callbacks"]
    assert [c["class_path"] for c in callbacks] == SHARED_CALLBACKS


def test_block_form_trainer_replaces_the_fragment_and_dotted_keys_merge(tmp_path):
    """Why task configs state trainer keys dotted (jsonargparse 4.53)."""
    task = ("config: {}\nmodel: {{class_path: medtext.TextClassifier, init_args: {{encoder_name: x}}}}\n"
            "data: {{class_path: data_modules.SyntheticAbstractsDataModule}}\n").format(SHARED)
    dotted = tmp_path / "dotted.yaml"
    dotted.write_text(task + "trainer.max_epochs: 3\ntrainer.logger.init_args.name: mine\n")
    trainer = resolved(dotted)["trainer"]
    assert trainer["max_epochs"] == 3 and trainer["logger"]["class_path"].endswith(".CSVLogger")
    assert (trainer["logger"]["init_args"]["save_dir"], trainer["logger"]["init_args"]["name"]) == ("runs", "mine")
    assert [c["class_path"] for c in trainer["callbacks"]] == SHARED_CALLBACKS
    block = tmp_path / "block.yaml"
    block.write_text(task + "trainer:\n  max_epochs: 3\n")
    assert not resolved(block)["trainer"]["callbacks"], "if jsonargparse merges blocks now, relax the dotted rule"


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_resolved_callbacks_follow_the_model_and_keep_best_and_last(config):
    trainer = resolved(config)["trainer"]
    callbacks = trainer["callbacks"]
    names = [c["class_path"] for c in callbacks]
    assert names == ([BEST, LAST] if config.name == "demo.yaml" else SHARED_CALLBACKS)
    best, *last = [c["init_args"] for c in callbacks if c["class_path"] in (BEST, LAST)]
    # the first checkpoint callback is the one test_after_fit's "best" reads: the model's selection metric
    assert best["monitor"] is None and best["mode"] == "max" and best["save_top_k"] == 1
    assert best["save_weights_only"] is True and not best["save_last"]
    assert last and not any(c["save_weights_only"] or c["monitor"] for c in last)
    # last.ckpt after every validation (a top-1 without monitor, named last) ...
    assert any(c["filename"] == "last" and c["save_top_k"] == 1 for c in last)
    if config.name != "demo.yaml":  # ... and every N training steps; early stopping on the same metric
        assert any(c["every_n_train_steps"] and c["save_last"] and c["save_top_k"] == 0 for c in last)
        (stopping,) = [c["init_args"] for c in callbacks if c["class_path"].endswith("EarlyStopping")]
        assert stopping["monitor"] is None and stopping["mode"] == "max" and stopping["patience"] == 3


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_resolved_trainer_settings(config):
    settings = resolved(config)
    trainer, task = settings["trainer"], config.parent.name
    assert settings["seed_everything"] == 42 and settings["test_after_fit"] is True and trainer["devices"] == 1
    logger = trainer["logger"]
    assert logger["class_path"] == "pytorch_lightning.loggers.CSVLogger" and logger["init_args"]["save_dir"] == "runs"
    top_level = config.parent.name == "configs"  # demo.yaml, own_csv.yaml: named after themselves
    assert logger["init_args"]["name"] == (config.stem if top_level else f"{task}_{config.stem}")
    hardware = (trainer["accelerator"], trainer["precision"], trainer["gradient_clip_val"])
    if config.stem.startswith("biomedbert"):
        assert hardware == ("gpu", "bf16-mixed", 1.0)
        assert trainer["max_epochs"] == (10 if task == "hoc" else 4) and trainer["log_every_n_steps"] == 50
    elif config.stem.startswith(("minilm", "mpnet")):  # the offline (packaged) encoders, CPU
        assert hardware == ("auto", "32-true", None)
        assert trainer["max_epochs"] == (4 if config_id(config) in FOUR_EPOCHS else 2)
        assert trainer["log_every_n_steps"] == 20
    elif config.name == "own_csv.yaml":  # a user's own data, offline MiniLM: nothing downloaded
        assert hardware == ("auto", "32-true", None) and trainer["max_epochs"] == 3
        assert settings["data"]["class_path"] == "data_modules.AbstractsDataModule"
    else:  # the demo, whose run time and metrics README.md states
        assert hardware == ("cpu", None, None) and trainer["default_root_dir"] == "runs/demo"
        assert trainer["max_epochs"] == 2 and trainer["log_every_n_steps"] == 5


def test_logger_names_are_unique():
    names = [resolved(c)["trainer"]["logger"]["init_args"]["name"] for c in CONFIGS]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("add_on", ADD_ON_CONFIGS, ids=config_id)
def test_add_on_config_layers_on_a_task_config(add_on, capsys):
    task = ROOT / "configs" / "medical_abstracts" / "biomedbert_mlp.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(task), "--config", str(add_on), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    added = add_on.read_text()
    assert "class_path: callbacks.BestCheckpoint" in printed, "the task config's callbacks survive the add-on"
    assert "name: medical_abstracts_biomedbert_mlp" in printed or add_on.parent.name == "logger"
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


def assert_follows_the_model(cli, config: Path) -> None:
    monitors = [c.monitor for c in cli.trainer.callbacks
                if type(c).__name__ in ("BestCheckpoint", "SelectionEarlyStopping")]
    assert monitors and set(monitors) == {selection_metric(config)} == {cli.model.selection_metric}
    assert type(cli.trainer.checkpoint_callback).__name__ == "BestCheckpoint"


@pytest.mark.parametrize("name", [pytest.param(name, marks=[] if name == "demo.yaml" else pytest.mark.slow)
                                  for name in sorted(CPU_RUNS)])  # the real MiniLM: ~2 s each, mpnet ~20 s
def test_cpu_config_fast_dev_run(name, shared_token_cache, monkeypatch):
    if "--data.data_dir" in CPU_RUNS[name] and not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    if "mpnet" in name and split_packages.installed_parts(split_packages.MPNET) is None:
        pytest.skip('the mpnet split packages are not installed (pip install -e ".[mpnet]")')
    monkeypatch.setenv("MEDTEXT_CACHE_DIR", shared_token_cache)
    cli = run("fit", "--config", str(ROOT / "configs" / name), "--trainer.fast_dev_run=true",
              "--trainer.accelerator=cpu", *CPU_RUNS[name])
    assert cli.trainer.state.finished
    monitor = "val/micro_f1" if cli.datamodule.multi_label else "val/macro_f1"
    assert monitor in cli.trainer.logged_metrics or monitor.replace("val", "test") in cli.trainer.logged_metrics
    assert cli.model.head.num_labels == len(cli.datamodule.label_names)
    assert_follows_the_model(cli, ROOT / "configs" / name)
    assert not list(Path.cwd().rglob("*.ckpt")), "a fast_dev_run writes no checkpoint"


@pytest.mark.parametrize("name", ["medical_abstracts/biomedbert_mlp.yaml", "hoc/biomedbert_mlp.yaml"])
def test_biomedbert_config_fast_dev_run_with_a_tiny_encoder(name, tiny_encoder, tmp_path):
    config = ROOT / "configs" / name
    data = (write_hoc if config.parent.name == "hoc" else write_medical_abstracts)(tmp_path / "data")
    cli = run("fit", "--config", str(config), "--trainer.fast_dev_run=true", "--trainer.accelerator=cpu",
              "--trainer.precision=32-true", f"--model.init_args.encoder_name={tiny_encoder}",
              f"--data.init_args.data_dir={data}", "--data.init_args.num_workers=0", *SMALL)
    assert cli.trainer.state.finished and cli.trainer.gradient_clip_val == 1.0
    assert_follows_the_model(cli, config)

