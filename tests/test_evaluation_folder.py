"""``validate``/``test --ckpt_path`` without a named logger report in the checkpoint's run
(``RUN/evaluations/...``), each time in a new version folder, and create nothing where they are run."""

import os
import warnings
from pathlib import Path

import pytest

from cli_helpers import in_folder, run, tiny_config

SYNTHETIC = {"num_train": 32, "num_val": 16, "num_test": 12}


@pytest.fixture(scope="module")
def fitted(tiny_encoder, tmp_path_factory) -> Path:
    """A checkpoint in the run folder fit writes (``RUN/checkpoints/best-....ckpt``)."""
    with in_folder(tmp_path_factory.mktemp("fit")) as folder:
        config = tiny_config(folder / "fit.yaml", tiny_encoder, SYNTHETIC, "data_modules.SyntheticAbstractsDataModule")
        cli = run("fit", "--config", str(config))
    return folder / cli.trainer.checkpoint_callback.best_model_path


def test_a_checkpoints_test_reports_in_its_run_and_writes_nothing_where_it_runs(fitted, tmp_path):
    run_folder = fitted.parent.parent
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with in_folder(elsewhere), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = run("test", "--ckpt_path", str(fitted))
        second = run("test", "--ckpt_path", str(fitted))
    evaluations = run_folder / "evaluations" / f"test_{fitted.stem}_data"
    assert Path(first.trainer.log_dir) == evaluations / "version_0"
    assert Path(second.trainer.log_dir) == evaluations / "version_1"  # the first report is kept
    assert (evaluations / "version_0" / "test_metrics.json").is_file()
    assert (evaluations / "version_1" / "test_metrics.json").is_file()
    assert sorted(p.name for p in elsewhere.iterdir() if p.name != "cache") == []  # no runs/lightning_logs here
    assert not any("callbacks used to create the checkpoint" in str(w.message) for w in caught)


def test_validate_reports_beside_the_checkpoint_too(fitted, tmp_path):
    with in_folder(tmp_path):
        validated = run("validate", "--ckpt_path", str(fitted))
    assert Path(validated.trainer.log_dir).parent == fitted.parent.parent / "evaluations" / f"validate_{fitted.stem}_data"


def test_a_named_logger_or_none_or_a_root_folder_is_where_the_user_asked(fitted, tmp_path):
    with in_folder(tmp_path):
        run("test", "--ckpt_path", str(fitted), "--trainer.logger", "false", "--trainer.default_root_dir", "mine")
    assert (tmp_path / "mine" / "test_metrics.json").is_file()
    with in_folder(tmp_path):
        named = run("test", "--ckpt_path", str(fitted), "--trainer.logger", "CSVLogger",
                    "--trainer.logger.save_dir", "logs", "--trainer.logger.name", "mine")
    assert (tmp_path / named.trainer.log_dir).parent == tmp_path / "logs" / "mine"
    with in_folder(tmp_path):
        rooted = run("test", "--ckpt_path", str(fitted), "--trainer.default_root_dir", "reports")
    assert (tmp_path / rooted.trainer.log_dir).parent == tmp_path / "reports" / "lightning_logs"


def test_a_read_only_model_folder_reports_under_the_runs_folder(fitted, tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    copy = shared / "model.ckpt"
    copy.write_bytes(fitted.read_bytes())
    real_access = os.access  # root may write anywhere: the folder is read-only as the check sees it
    monkeypatch.setattr(os, "access", lambda path, mode: real_access(path, mode) and Path(path) != shared)
    with in_folder(tmp_path):
        tested = run("test", "--ckpt_path", str(copy))
    assert not (shared / "evaluations").exists()
    assert (tmp_path / tested.trainer.log_dir).parent == tmp_path / "runs" / "evaluations" / "test_model_data"
