"""Weights & Biases logging, offline: per-class tables, confusion matrices, the resolved config without
secrets, resuming the same run; and the CSV/PNG files written with other loggers."""

import csv
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from callbacks.metric_tables import COLUMNS, MetricTables
from cli_helpers import run, tiny_config
from conftest import ROOT
from data_modules.synthetic import generate_abstracts
from medtext import ScrubbedWandbLogger
from medtext.runtime.config_logging import REDACTED, WANDB_CONFIG_FILE, environment_secrets, is_secret_key, scrub
from medtext.core.metrics import metric_label
from medtext.runtime.wandb_runs import RUN_ID_KEY, resume_wandb_run

WANDB_CONFIG = str(ROOT / "configs" / "logger" / "wandb.yaml")
SYNTHETIC = {"num_train": 40, "num_val": 20, "num_test": 15}
SECRET = "not-a-real-key-0123456789abcdef"


@pytest.fixture
def offline_wandb(monkeypatch, tmp_path):
    """W&B offline and silent, with a (fake) API key in the environment; no run left open."""
    import wandb

    for name, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path),
                        "WANDB_API_KEY": SECRET}.items():
        monkeypatch.setenv(name, value)
    yield
    wandb.finish()
    wandb.teardown()  # the W&B service resolves relative paths in the folder it started in


def fit_wandb(config: Path, *args: str):
    return run("fit", "--config", str(config), "--config", WANDB_CONFIG, *args)


def offline_runs(run_id: str = "") -> list[Path]:
    return sorted(Path("runs/wandb").glob(f"offline-run-*-{run_id or '*'}"))


def tables(files: Path, key: str) -> list[dict]:
    """The ``wandb.Table`` JSON files logged under ``key`` (``val/per_class`` ...), by step."""
    def step(path: Path) -> int:  # <name>_<step>_<hash>.table.json
        return int(path.name[len(Path(key).name) + 1:].split("_")[0])

    paths = sorted(files.glob(f"media/table/{key}_*.table.json"), key=step)
    return [json.loads(path.read_text()) for path in paths]


def counted_row(counts: dict[tuple[str, str], int], names: list[str], name: str) -> list[float]:
    """Precision, recall, F1 and support of class ``name`` from (actual, predicted) counts."""
    tp = counts[name, name]
    predicted, actual = sum(counts[other, name] for other in names), sum(counts[name, other] for other in names)
    return [tp / predicted if predicted else 0.0, tp / actual if actual else 0.0,
            2 * tp / (predicted + actual) if predicted + actual else 0.0, actual]


def test_fit_and_test_log_tables_matrices_and_scrubbed_config(tiny_encoder, tmp_path, offline_wandb, capsys):
    import wandb

    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, SYNTHETIC, "data_modules.SyntheticAbstractsDataModule",
                         max_epochs=2)
    cli = fit_wandb(config, "--test_after_fit", "true", f"--predictions.output_file={SECRET}",
                    f"--data.init_args.cache_dir={tmp_path / 'cache' / SECRET}")
    assert type(cli.trainer.logger) is ScrubbedWandbLogger  # the config names Lightning's WandbLogger
    experiment = cli.trainer.logger.experiment
    run_id, files, names = experiment.id, Path(experiment.dir), cli.datamodule.label_names
    val_labels = [row["label"] for row in csv.DictReader(open(cli.datamodule.resolve_files()["val"]))]
    run_config = {key: experiment.config[key] for key in experiment.config.keys()}
    wandb.finish()

    # the resolved CLI config: run config and lightning/config.yaml, with the secrets scrubbed
    assert run_config["model"]["class_path"] == "medtext.TextClassifier"
    assert run_config["model"]["init_args"]["encoder_name"] == tiny_encoder
    assert run_config["trainer"]["logger"]["class_path"].endswith("WandbLogger")
    assert run_config["predictions"]["output_file"] == REDACTED
    assert run_config["cache_dir"] == str(tmp_path / "cache" / REDACTED)  # Lightning's data hyperparameter
    saved = yaml.safe_load((files / WANDB_CONFIG_FILE).read_text())
    assert saved["data"]["class_path"] == "data_modules.SyntheticAbstractsDataModule"
    assert saved["predictions"]["output_file"] == REDACTED and saved["model"] == run_config["model"]
    (run_dir,) = offline_runs(run_id)
    for path in run_dir.rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path
    assert b"medtext.TextClassifier" in (run_dir / f"run-{run_id}.wandb").read_bytes()
    # the local config.yaml is complete and sits in the run's folder, beside its checkpoints
    local = Path("runs/medtext") / run_id
    assert (local / "checkpoints" / "last.ckpt").is_file() and not Path("runs/config.yaml").exists()
    assert yaml.safe_load((local / "config.yaml").read_text())["predictions"]["output_file"] == SECRET

    # per-class tables and confusion matrices: one per validation epoch, one for the test; each table's
    # precision, recall, F1 and support are those counted from the matrix logged with it
    for stage, epochs, total in (("val", 2, SYNTHETIC["num_val"]), ("test", 1, SYNTHETIC["num_test"])):
        per_class, matrices = tables(files, f"{stage}/per_class"), tables(files, f"{stage}/confusion_matrix_table")
        assert len(per_class) == len(matrices) == epochs
        for table, matrix in zip(per_class, matrices):
            assert table["columns"] == list(COLUMNS) and [row[0] for row in table["data"]] == names
            assert sum(row[4] for row in table["data"]) == total
            assert matrix["columns"] == ["Actual", "Predicted", "nPredictions"]
            assert len(matrix["data"]) == len(names) ** 2 and sum(row[2] for row in matrix["data"]) == total
            counts = {(actual, predicted): n for actual, predicted, n in matrix["data"]}
            for row in table["data"]:
                assert row[1:] == pytest.approx(counted_row(counts, names, row[0]), abs=1e-6), (stage, row)
            if stage == "val":
                assert [row[4] for row in table["data"]] == [val_labels.count(name) for name in names]
    test_metrics = json.loads((local / "test_metrics.json").read_text())
    (test_table,) = tables(files, "test/per_class")
    for name, row in zip(names, test_table["data"]):
        expected = [test_metrics[f"test/{key}/{metric_label(name)}"] for key in ("precision", "recall", "f1")]
        assert row[1:4] == pytest.approx(expected, abs=1e-6), name
    records = (run_dir / f"run-{run_id}.wandb").read_bytes()
    for key in (b"val/per_class_f1", b"wandb/bar/v0", b"wandb/confusion_matrix/v1", b"val/macro_f1"):
        assert key in records

    # the summary printed at test end
    out = capsys.readouterr().out
    assert "test/macro_f1" in out and "test/micro_f1" in out and "neoplasms" in out


def test_resume_from_last_checkpoint_continues_the_wandb_run(tiny_encoder, tmp_path, offline_wandb):
    import wandb

    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {"num_train": 24, "num_val": 10, "num_test": 5},
                         "data_modules.SyntheticAbstractsDataModule")
    first = fit_wandb(config)
    run_id = first.trainer.logger.experiment.id
    last = Path(first.trainer.checkpoint_callback.last_model_path)
    assert torch.load(last, map_location="cpu", weights_only=True)[RUN_ID_KEY] == run_id
    wandb.finish()

    second = fit_wandb(config, "--ckpt_path", str(last), "--trainer.max_epochs", "2")
    assert second.trainer.current_epoch == 2 and second.trainer.logger.experiment.id == run_id
    wandb.finish()
    # both sessions logged to one run: offline-run-<date>_<time>-<id>, and W&B adds "-1" to the second
    # folder's name when both started within the same second
    assert {re.match(r"offline-run-\d{8}_\d{6}-([a-z0-9]+)", path.name).group(1) for path in offline_runs()} == {run_id}


def test_resume_sets_the_stored_id_only_where_none_is_given(tmp_path):
    from jsonargparse import Namespace

    ckpt = tmp_path / "last.ckpt"
    torch.save({RUN_ID_KEY: "abc123"}, ckpt)

    def config(ckpt_path, logger):
        return Namespace(ckpt_path=ckpt_path, trainer=Namespace(logger=logger))

    def wandb_logger(**init_args):
        return Namespace(class_path="pytorch_lightning.loggers.WandbLogger",
                         init_args=Namespace(**{"id": None, "version": None, "resume": None, **init_args}))

    fresh = config(str(ckpt), [Namespace(class_path="pytorch_lightning.loggers.CSVLogger", init_args=Namespace()),
                               wandb_logger()])
    assert resume_wandb_run(fresh) == "abc123"
    assert fresh.trainer.logger[1].init_args.id == "abc123" and fresh.trainer.logger[1].init_args.resume == "allow"
    explicit = config(str(ckpt), wandb_logger(id="mine"))
    assert resume_wandb_run(explicit) is None and explicit.trainer.logger.init_args.id == "mine"
    assert resume_wandb_run(config("last", wandb_logger())) is None  # resolved later by Lightning
    assert resume_wandb_run(config(str(ckpt), Namespace(class_path="pytorch_lightning.loggers.CSVLogger"))) is None


def write_multilabel(path: Path, n: int, seed: int) -> str:
    rows = [{"text": row["text"], "labels": row["label"].split()[0] + (";study" if i % 2 else "")}
            for i, row in enumerate(generate_abstracts(n, seed=seed, label_noise=0.0))]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "labels"])
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def test_multilabel_logs_one_2x2_matrix_per_label(tiny_encoder, tmp_path, offline_wandb):
    import wandb

    data = {"train_file": write_multilabel(tmp_path / "train.csv", 24, 1),
            "val_file": write_multilabel(tmp_path / "val.csv", 12, 2),
            "label_column": "labels", "label_delimiter": ";"}
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, data)
    cli = fit_wandb(config, "--trainer.callbacks.init_args.monitor", "val/micro_f1")
    files, names = Path(cli.trainer.logger.experiment.dir), cli.datamodule.label_names
    wandb.finish()
    (counts,) = tables(files, "val/confusion_counts")
    assert counts["columns"] == ["label", "tn", "fp", "fn", "tp"] and [r[0] for r in counts["data"]] == names
    assert all(sum(row[1:]) == 12 for row in counts["data"])
    (per_class,) = tables(files, "val/per_class")
    assert [row[4] for row in per_class["data"]] == [row[3] + row[4] for row in counts["data"]]  # fn + tp
    (image,) = files.glob("media/images/val/confusion_matrix_*.png")
    assert image.stat().st_size > 1000


def test_other_loggers_get_per_epoch_csv_and_png(tiny_encoder, tmp_path):
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, SYNTHETIC, "data_modules.SyntheticAbstractsDataModule",
                         max_epochs=2)
    cli = run("fit", "--config", str(config))
    reports = Path(cli.trainer.log_dir) / "reports"
    names = cli.datamodule.label_names
    per_class = sorted(reports.glob("val_epoch=*_per_class.csv"))
    assert [p.name.split("_step")[0] for p in per_class] == ["val_epoch=000", "val_epoch=001"]
    for path in per_class:
        rows = list(csv.DictReader(open(path)))
        assert list(rows[0]) == list(COLUMNS) and [r["class"] for r in rows] == names
        assert sum(int(r["support"]) for r in rows) == SYNTHETIC["num_val"]
        prefix = path.name[:-len("_per_class.csv")]
        assert (reports / f"{prefix}_confusion_matrix.png").stat().st_size > 1000
        matrix = list(csv.reader(open(reports / f"{prefix}_confusion_matrix.csv")))
        assert sum(int(v) for row in matrix[1:] for v in row[1:]) == SYNTHETIC["num_val"]
    assert not Path("runs/wandb").exists()


def test_only_global_rank_zero_reports():
    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"rank 1 used the logger ({name})")

    trainer = SimpleNamespace(is_global_zero=False, sanity_checking=False, loggers=[Untouchable()])
    module = SimpleNamespace(evaluation_results={"val": {"confusion_matrix": torch.eye(2)}, "test": {}}.get,
                             label_names=["a", "b"])
    MetricTables().on_validation_end(trainer, module)
    MetricTables().on_test_end(trainer, module)


def test_scrub_removes_secret_keys_and_environment_values():
    environ = {"WANDB_API_KEY": SECRET, "HF_TOKEN": "hf_abcdefghijkl", "TOKENIZERS_PARALLELISM": "false",
               "HOME": "/home/someone/secret-free"}
    secrets = environment_secrets(environ)
    assert secrets == {SECRET, "hf_abcdefghijkl"}
    config = {"model": {"init_args": {"encoder_name": "hf_abcdefghijkl", "tokenizer_name": "bert", "pad_token_id": 0,
                                      "head": {"api_key": "x1", "hidden_dims": [SECRET, 3]}}},
              "data": {"url": f"https://u:{SECRET}@example.org/x", "db_password": "pw", "flag": "false"},
              "AWS_SECRET_ACCESS_KEY": "abc", "hf_token": None}
    clean = scrub(config, secrets)
    assert clean["model"]["init_args"] == {"encoder_name": REDACTED, "tokenizer_name": "bert", "pad_token_id": 0,
                                           "head": {"api_key": REDACTED, "hidden_dims": [REDACTED, 3]}}
    assert clean["data"] == {"url": f"https://u:{REDACTED}@example.org/x", "db_password": REDACTED, "flag": "false"}
    assert clean["AWS_SECRET_ACCESS_KEY"] == REDACTED and clean["hf_token"] is None
    assert config["data"]["db_password"] == "pw"  # a copy: the input is unchanged
    assert [is_secret_key(k) for k in ("apiKey", "auth_token", "tokenizer_name", "key_column")] == [
        True, True, False, False]

