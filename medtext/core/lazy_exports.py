"""A package's classes imported on first use (PEP 562), so a light command does not import Lightning."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str], namespace: dict[str, Any]) -> tuple[Callable, Callable]:
    """A package's ``__getattr__`` and ``__dir__``: ``exports`` maps a name to the submodule defining it.

    ``python -m medtext predict --model_dir ...`` (ONNX Runtime) reads files, tokenizes and writes
    predictions with modules of ``medtext``, ``data_modules`` and ``callbacks``; so importing a package
    does not import every LightningModule, data module and callback in it (several seconds)::

        _EXPORTS = {"HoCDataModule": ".hoc"}
        __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        namespace[name] = value  # the next access is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__


def import_exports(*packages) -> None:
    """Import every class the packages export (before a parser resolves short class names such as
    ``--data HoCDataModule`` among the imported subclasses: ``medtext/commands/cli.py``)."""
    for package in packages:
        for name in package.__all__:
            getattr(package, name)
