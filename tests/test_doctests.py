"""The examples in medtext's docstrings run and print what they show."""

import doctest
import importlib
import pkgutil

import pytest

import callbacks
import data_modules
import medtext
import medtext.heads


def modules_with_examples() -> list[str]:
    names = []
    for package in (medtext, data_modules, callbacks):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            spec = importlib.util.find_spec(info.name)
            if spec and spec.origin and ">>>" in open(spec.origin, encoding="utf-8").read():
                names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} docstring examples failed"


@pytest.mark.parametrize("package", [medtext, medtext.heads, data_modules, callbacks], ids=lambda p: p.__name__)
def test_every_exported_class_has_a_docstring(package):
    """``--model.help`` and ``--data.help`` show a class's docstring: its ``Args:`` are the options' help."""
    undocumented = [name for name in package.__all__
                    if isinstance(getattr(package, name), type) and not getattr(package, name).__doc__]
    assert undocumented == []
