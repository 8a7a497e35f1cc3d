"""``--data.help`` describes every option of every data module in one line or more."""

import inspect
import re

import pytest

import data_modules
from medtext.commands import main

VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
# every labelled-abstracts data module (the unlabeled one feeds `pretrain`, whose help is its own)
DATA_MODULES = [name for name in data_modules.__all__ if name != "UnlabeledTextDataModule"]


def option_help(help_text: str, name: str) -> str:
    """The description of ``--data.NAME`` in ``help_text``, without its invocation and type."""
    match = re.search(rf"^  --data\.{name}\b(.*?)(?=^  -|\Z)", help_text, re.MULTILINE | re.DOTALL)
    assert match, f"--data.{name} is not in the help"
    block = re.sub(r"^( [A-Z_]+| \{[^}]*\})?(, --data\.\S+( [A-Z_]+)?)?", "", match.group(1))
    return " ".join(block.split("(type:")[0].split("(required, type:")[0].split())


@pytest.mark.parametrize("name", DATA_MODULES)
def test_every_data_option_has_a_description(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--data.help", f"data_modules.{name}"])
    assert exit_info.value.code in (0, None)
    help_text = capsys.readouterr().out
    signature = inspect.signature(getattr(data_modules, name).__init__)
    parameters = [p.name for p in signature.parameters.values() if p.name != "self" and p.kind not in VARIADIC]
    assert "data_dir" in parameters if name != "AbstractsDataModule" else "text_column" in parameters
    undescribed = [p for p in parameters if not option_help(help_text, p)]
    assert undescribed == []


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_usage_names_medtext(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert capsys.readouterr().out.startswith(f"usage: medtext {command} ")
