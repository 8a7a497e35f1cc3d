"""fit (with test_after_fit), test and validate print one summary: medtext's per-class table."""

import re

from cli_helpers import run, tiny_config

SYNTHETIC = {"num_train": 32, "num_val": 16, "num_test": 12}
LIGHTNING_TABLE = "DataLoader 0"  # the column header of Lightning's metric table


def class_rows(out: str, names: list[str]) -> list[str]:
    """The per-class table's rows: lines that begin (after box drawing) with a class name."""
    return [n for n in names if re.search(rf"^\W*{re.escape(n)}\W", out, re.MULTILINE)]


def test_one_summary_per_command(tiny_encoder, tmp_path, capsys):
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, SYNTHETIC, "data_modules.SyntheticAbstractsDataModule")
    fitted = run("fit", "--config", str(config), "--test_after_fit", "true")
    names = fitted.datamodule.label_names
    out = capsys.readouterr().out
    assert LIGHTNING_TABLE not in out and out.count("test/macro_f1") == 1 and "test/loss" in out
    best = fitted.trainer.checkpoint_callback.best_model_path

    run("test", "--ckpt_path", best)
    out = capsys.readouterr().out
    assert LIGHTNING_TABLE not in out and out.count("test/macro_f1") == 1
    assert class_rows(out, names) == names

    run("validate", "--ckpt_path", best)
    out = capsys.readouterr().out
    assert LIGHTNING_TABLE not in out and out.count("val/macro_f1") == 1 and "val/loss" in out
    assert class_rows(out, names) == names

    run("test", "--ckpt_path", best, "--verbose", "true")  # Lightning's table on request
    assert LIGHTNING_TABLE in capsys.readouterr().out
