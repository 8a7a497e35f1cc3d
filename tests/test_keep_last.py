"""``last.ckpt`` (the full state, to resume) is kept and named at the end of a fit; ``--keep_last false``
removes it once the fit completes, keeps the best checkpoint, and ``--ckpt_path auto``/``last`` still
know the run completed."""

import json
from pathlib import Path

import pytest

from cli_helpers import in_folder, tiny_config
from medtext.commands import main

SYNTHETIC = {"num_train": 32, "num_val": 16, "num_test": 12}


def fit(folder: Path, tiny_encoder: str, *options: str):
    config = tiny_config(folder / "fit.yaml", tiny_encoder, SYNTHETIC, "data_modules.SyntheticAbstractsDataModule")
    with in_folder(folder):
        code = main(["fit", "--config", str(config), "--trainer.logger.init_args.version", "7", *options])
    return code, folder / "runs" / "tiny" / "version_7" / "checkpoints"


def test_last_is_kept_by_default_and_named(tiny_encoder, tmp_path, caplog):
    code, checkpoints = fit(tmp_path, tiny_encoder)
    out = caplog.text  # Lightning's rank-zero log
    assert code == 0 and (checkpoints / "last.ckpt").is_file()
    assert "last.ckpt: runs/tiny/version_7/checkpoints/last.ckpt (" in out and "--keep_last false" in out


def test_keep_last_false_removes_last_keeps_best_and_a_rerun_knows_the_run_completed(tiny_encoder, tmp_path, capsys):
    code, checkpoints = fit(tmp_path, tiny_encoder, "--keep_last", "false")
    assert code == 0 and not (checkpoints / "last.ckpt").exists()
    best = [p for p in checkpoints.glob("best*.ckpt")]
    assert len(best) == 1 and best[0].stat().st_size > 0
    assert json.loads((checkpoints / "fit_completed.json").read_text())["last_removed"] is True
    capsys.readouterr()
    code, _ = fit(tmp_path, tiny_encoder, "--keep_last", "false", "--ckpt_path", "auto")
    assert code == 0 and "has completed" in capsys.readouterr().out  # nothing trained again, nothing tested
    assert sorted(p.name for p in checkpoints.iterdir()) == sorted([best[0].name, "fit_completed.json"])
    code, _ = fit(tmp_path, tiny_encoder, "--ckpt_path", "last")
    err = capsys.readouterr().err
    assert code == 2 and "--keep_last false removed its last.ckpt" in err and err.count("\n") == 1


@pytest.mark.parametrize("longer", ["--trainer.max_epochs=5"])
def test_auto_after_removal_with_a_longer_budget_stops_instead_of_retraining(tiny_encoder, tmp_path, capsys, longer):
    fit(tmp_path, tiny_encoder, "--keep_last", "false")
    capsys.readouterr()
    code, checkpoints = fit(tmp_path, tiny_encoder, "--ckpt_path", "auto", longer)
    assert code == 2 and "cannot train on" in capsys.readouterr().err
    assert not (checkpoints / "last.ckpt").exists()
