"""A checkpoint's class paths are checked before anything imports them (medtext/runtime/class_paths.py).

A tampered checkpoint naming a module beside it (importable, as under ``python -m``) stops every
command that reads checkpoints with one line, exit 2, the module never imported; a class the user
names on the command line, in a config or in ``MEDTEXT_TRUSTED_CLASS_PATHS`` is used.
"""

import sys
from pathlib import Path

import pytest
import torch
import yaml

from cli_helpers import in_folder, run, tiny_config
from medtext.runtime.class_paths import check_class_paths, is_trusted, trust_command_line
from medtext.commands import main

SYNTHETIC = {"num_train": 24, "num_val": 8, "num_test": 8}
PLANTED = '''
from pathlib import Path
Path(__file__).with_name("IMPORTED").write_text("the planted module ran")
from medtext.heads import MLPHead
class Head(MLPHead):
    """A user's own head: medtext's MLP under another name."""
'''


@pytest.fixture(scope="module")
def fitted(tiny_encoder, tmp_path_factory) -> tuple[Path, Path]:
    with in_folder(tmp_path_factory.mktemp("class_paths")) as folder:
        config = tiny_config(folder / "fit.yaml", tiny_encoder, {**SYNTHETIC, "data_dir": str(folder / "data")},
                             "data_modules.SyntheticAbstractsDataModule", default_root_dir=str(folder))
        cli = run("fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={folder / 'runs'}")
    return Path(cli.trainer.checkpoint_callback.best_model_path), folder / "data" / "test.csv"


@pytest.fixture
def planted(tmp_path, monkeypatch) -> Path:
    """``planted.py`` beside the checkpoints, importable as under ``python -m medtext`` (the cwd on sys.path)."""
    (tmp_path / "planted.py").write_text(PLANTED)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "planted", raising=False)
    yield tmp_path / "IMPORTED"
    sys.modules.pop("planted", None)


def tampered(checkpoint: Path, folder: Path, where: str, class_path: str) -> Path:
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    section, _, key = where.partition(":")
    if section == "head":
        saved["hyper_parameters"]["head"]["class_path"] = class_path
    else:
        saved[section][key] = class_path
    out = folder / f"tampered_{section}_{key or 'head'}.ckpt"
    torch.save(saved, out)
    return out


COMMANDS = {
    "predict": lambda ckpt, data, out: ["predict", "--ckpt_path", str(ckpt), "--data.predict_file", str(data),
                                        "--predictions.output_file", str(out / "p.csv")],
    "test": lambda ckpt, data, out: ["test", "--ckpt_path", str(ckpt), "--data.test_file", str(data)],
    "export": lambda ckpt, data, out: ["export", "--ckpt_path", str(ckpt), str(out / "exported")],
    "hf-export": lambda ckpt, data, out: ["hf-export", str(ckpt), str(out / "hf")],
    "explain": lambda ckpt, data, out: ["explain", "--ckpt_path", str(ckpt), "--data.predict_file", str(data)],
}
PLACES = ["head", "hyper_parameters:_class_path", "hyper_parameters:_instantiator",
          "datamodule_hyper_parameters:_class_path"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("where", PLACES)
def test_a_planted_class_path_is_refused_before_it_imports(fitted, planted, tmp_path, capsys, command, where):
    checkpoint, data = fitted
    bad = tampered(checkpoint, tmp_path, where, "planted.Head")
    assert main(COMMANDS[command](bad, data, tmp_path)) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "'planted.Head'" in error[0] and "nothing was imported" in error[0], error
    assert not planted.exists() and "planted" not in sys.modules
    assert not (tmp_path / "p.csv").exists()


def test_the_zen_of_python_is_not_printed(fitted, tmp_path, capsys):
    checkpoint, data = fitted
    assert main(COMMANDS["predict"](tampered(checkpoint, tmp_path, "head", "this.Zen"), data, tmp_path)) == 2
    assert "Beautiful is better than ugly" not in capsys.readouterr().out


@pytest.mark.parametrize("how", ["environment", "command line", "config"])
def test_a_head_the_user_names_is_used(fitted, planted, tmp_path, monkeypatch, how):
    checkpoint, data = fitted
    own = tampered(checkpoint, tmp_path, "head", "planted.Head")
    extra = []
    if how == "environment":
        monkeypatch.setenv("MEDTEXT_TRUSTED_CLASS_PATHS", "other.Thing, planted.Head")
    elif how == "command line":
        extra = ["--model.init_args.head.class_path", "planted.Head"]
    else:
        (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"config": "heads.yaml"}))
        (tmp_path / "heads.yaml").write_text(yaml.safe_dump({"model": {"init_args": {"head": {
            "class_path": "planted.Head"}}}}))
        extra = ["--config", str(tmp_path / "mine.yaml")]
    assert main([*COMMANDS["predict"](own, data, tmp_path), *extra]) == 0
    assert planted.exists() and (tmp_path / "p.csv").is_file()


def test_a_file_name_on_the_command_line_trusts_no_class_path():
    trust_command_line(["--ckpt_path", "planted.Head", "--data.predict_file=planted.Head", "--model_dir", "a.B"])
    assert not is_trusted("planted.Head") and not is_trusted("a.B")
    trust_command_line(["--model.init_args.head", "planted.Head"])
    assert is_trusted("planted.Head")
    trust_command_line([])
    assert is_trusted("medtext.heads.MLPHead") and is_trusted("data_modules.HoCDataModule") and is_trusted("MLPHead")
    assert is_trusted("pytorch_lightning.cli.instantiate_module") and not is_trusted("os.system")


def test_non_string_class_paths_are_refused():
    with pytest.raises(Exception, match="not a class path"):
        check_class_paths({"head": {"class_path": ["x"]}}, "saved.ckpt")
