"""A full disk during fit or predict is one line naming the file being written, exit 2, no traceback."""

import errno
import os
from collections import namedtuple
from pathlib import Path

import pytest

from cli_helpers import in_folder, run, tiny_config
from medtext.commands import main

SYNTHETIC = {"num_train": 16, "num_val": 8, "num_test": 8}


@pytest.fixture(scope="module")
def fitted(tiny_encoder, tmp_path_factory) -> tuple[Path, Path, Path]:
    with in_folder(tmp_path_factory.mktemp("disk_full")) as folder:
        config = tiny_config(folder / "fit.yaml", tiny_encoder, {**SYNTHETIC, "data_dir": str(folder / "data")},
                             "data_modules.SyntheticAbstractsDataModule", default_root_dir=str(folder))
        cli = run("fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={folder / 'runs'}")
    return Path(cli.trainer.checkpoint_callback.best_model_path), folder / "data" / "test.csv", config


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_predict_on_a_full_disk_is_one_line(fitted, tmp_path, monkeypatch, capsys):
    checkpoint, test_file, _ = fitted
    out = tmp_path / "predictions.csv"
    monkeypatch.setattr(os, "fsync", no_space)  # every atomic write syncs before its rename
    assert main(["predict", "--ckpt_path", str(checkpoint), "--data.predict_file", str(test_file),
                 "--predictions.output_file", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("medtext: error: no space left on the device while writing "), error
    assert not out.exists() and not list(tmp_path.glob(".predictions.csv.*"))


def test_a_checkpoint_save_on_a_full_disk_is_one_line(fitted, tmp_path, monkeypatch, capsys):
    import medtext.runtime.checkpoint

    _, _, config = fitted
    usage = namedtuple("usage", "total used free")

    def torch_save_on_a_full_disk(*args, **kwargs):  # what torch's zip writer raises then (no errno)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(medtext.runtime.checkpoint.torch, "save", torch_save_on_a_full_disk)
    monkeypatch.setattr(medtext.runtime.checkpoint.shutil, "disk_usage", lambda path: usage(100, 100, 0))
    assert main(["fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
                 f"--trainer.default_root_dir={tmp_path}"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("medtext: error: no space left on the device while writing ") and \
        error[-1].rstrip(")").split(" (")[0].endswith(".ckpt"), error


def test_another_save_failure_is_not_called_a_full_disk(fitted, tmp_path, monkeypatch):
    import medtext.runtime.checkpoint

    _, _, config = fitted

    def broken(*args, **kwargs):
        raise RuntimeError("some other failure")

    monkeypatch.setattr(medtext.runtime.checkpoint.torch, "save", broken)
    with pytest.raises(RuntimeError, match="some other failure"):
        main(["fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
              f"--trainer.default_root_dir={tmp_path}"])
