"""Which ``class_path`` a checkpoint may make medtext import: medtext's own, or one the user named."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

from medtext.core.errors import MedtextError

OWN_PACKAGES = ("medtext", "data_modules", "callbacks")
INSTANTIATORS = ("pytorch_lightning.cli.instantiate_module", "lightning.pytorch.cli.instantiate_module")
TRUST_VARIABLE = "MEDTEXT_TRUSTED_CLASS_PATHS"
CLASS_PATH_KEYS = ("class_path", "_class_path")
_named: set[str] = set()  # what this command's line and config files name (trust_command_line)


class UntrustedClassPath(MedtextError):
    """A class path from a checkpoint or an export that is neither medtext's nor named by the user."""


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value.strip()
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _config_strings(path: Path, depth: int = 0) -> Iterator[str]:
    """Every string in a YAML config and the configs it includes (``config: other.yaml``)."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return  # the command's own parser reports an unreadable config
    yield from _strings(loaded)
    included = loaded.get("config") if isinstance(loaded, dict) else None
    for name in ([included] if isinstance(included, str) else included or []) if depth < 8 else []:
        if isinstance(name, str):
            yield from _config_strings(path.parent / name, depth + 1)


def _option_values(args: list[str]) -> Iterator[tuple[str, str]]:
    """(``--option``, value) for ``--option=value`` and ``--option value``; positional words are skipped."""
    for i, arg in enumerate(args):
        option, equals, value = arg.partition("=")
        if option.startswith("--") and equals:
            yield option, value
        elif arg.startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
            yield arg, args[i + 1]


def trust_command_line(args: Iterable[str]) -> None:
    """Remember the class paths this command's options and ``--config`` files name.

    A file or folder option's value (``--ckpt_path evil.Boom``) names no class: a checkpoint could
    otherwise be given a file name that trusts the class path inside it."""
    named = set()
    for option, value in _option_values([str(arg) for arg in args]):
        if option == "--config":
            named.update(_config_strings(Path(value)))
        elif option.endswith("class_path") or not option.endswith(("_path", "_file", "_files", "_dir")):
            named.add(value.strip())
    _named.clear()
    _named.update(named)


def is_trusted(class_path: str) -> bool:
    """medtext's own (or a bare name, resolved among imported classes), Lightning's instantiator, or named
    by the user: an argument of this command's line, a string in one of its ``--config`` files, or in
    ``MEDTEXT_TRUSTED_CLASS_PATHS`` (comma-separated)."""
    if "." not in class_path:
        return True
    if class_path.split(".", 1)[0] in OWN_PACKAGES or class_path in INSTANTIATORS:
        return True
    listed = {name.strip() for name in os.environ.get(TRUST_VARIABLE, "").split(",") if name.strip()}
    return class_path in _named or class_path in listed


def class_paths_in(value: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """(where, class path) for every ``class_path``/``_class_path``/``_instantiator`` in nested settings."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}" if where else str(key)
            if key in (*CLASS_PATH_KEYS, "_instantiator"):
                yield here, item
            else:
                yield from class_paths_in(item, here)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from class_paths_in(item, f"{where}[{i}]")


def check_class_paths(settings: Any, source: str) -> None:
    """Stop, before any import, if ``settings`` (read from ``source``) names a class path not trusted.

    A checkpoint is data, but a class path in it is code: importing ``this.Zen`` runs a module, and
    under ``python -m`` a ``.py`` beside the checkpoint is importable. So every class path read from a
    checkpoint is checked as a string: anything not trusted (:func:`is_trusted`) stops the command with
    one line and nothing imported."""
    for where, class_path in class_paths_in(settings):
        if not isinstance(class_path, str) or not class_path.strip():
            raise UntrustedClassPath(f"{source}: {where} is {class_path!r}, not a class path")
        if not is_trusted(class_path.strip()):
            raise UntrustedClassPath(
                f"{source}: {where} is {class_path!r}, which is not one of medtext's classes; nothing was imported "
                f"(if you trust it, name it on the command line, in a --config file or in {TRUST_VARIABLE})")
