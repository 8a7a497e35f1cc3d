"""Argument errors as one line, with a "did you mean" where a close option exists.

jsonargparse prints the whole usage (~60 lines for a Lightning command) and then a nested report of
every type it tried; the user needs the option, what was wrong with it and the likely fix. The parsers
of every command mix in :class:`OneLineErrors`.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import sys
from typing import Iterable, NoReturn, Optional

from jsonargparse import ArgumentParser

NOT_ACCEPTED = re.compile(r"Option '([^']+)' is not accepted")
CLASS_PATH = re.compile(r"class_path[ =]'([\w.]+)'")
NO_ATTRIBUTE = re.compile(r"module '([\w.]+)' has no attribute '(\w+)'")
PARSER_KEY = re.compile(r'Parser key "([^"]+)":')
GIVEN_VALUE = re.compile(r"^Given value: (?:NestedArg\(key='([^']*)', val=(.*)\)|(.*))$")
# lines of jsonargparse's report that say how it searched, not what is wrong
SEARCH_LINES = ("Does not validate against", "Subtypes:", "Errors:", "Given value type:", "Given value:")


class OneLineErrors:
    """A jsonargparse parser mixin: an argument error is ``PROG: error: MESSAGE`` on one line, exit 2;
    no option may be abbreviated (``--trainer.max_epoch`` is an error, never ``max_epochs``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def parse_args(self, args=None, *more, **kwargs):
        self.given_arguments = list(sys.argv[1:] if args is None else args)  # for the "did you mean"
        return super().parse_args(args, *more, **kwargs)

    def error(self, message: str, ex: Optional[Exception] = None) -> NoReturn:
        from jsonargparse._common import debug_mode_active

        if not self.exit_on_error or debug_mode_active() or callable(getattr(self, "_error_handler", None)):
            super().error(message, ex)  # a caller that handles errors itself gets jsonargparse's
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        line = one_line(message, option_strings(self), getattr(self, "given_arguments", []))
        sys.stderr.write(f"{prog}: error: {line}\n")
        self.exit(2)


def option_strings(parser) -> list[str]:
    """Every ``--option`` of ``parser`` and of its subcommands' parsers."""
    found = []
    for action in parser._actions:
        found += [name for name in action.option_strings if name.startswith("--")]
        for subparser in getattr(action, "_name_parser_map", {}).values():
            found += option_strings(subparser)
    return found


def one_line(message: str, options: list[str], given: list[str]) -> str:
    """jsonargparse's message reduced to its key, what was wrong and a suggestion."""
    if message.startswith("the following arguments are required:"):
        names = message.split(":", 1)[1].split(",")
        return "missing " + ", ".join(f"--{n.strip()}" if f"--{n.strip()}" in options else n.strip() for n in names)
    if message.startswith("Problems parsing config"):  # which file: jsonargparse says "<unicode string>"
        configs = [value for option, value in zip(given, given[1:]) if option in ("--config", "-c")]
        configs += [token.split("=", 1)[1] for token in given if token.startswith("--config=")]
        where = f"{', '.join(configs)}: " if configs else ""
        lines = [line.strip() for line in message.replace('in "<unicode string>", ', "").splitlines() if line.strip()]
        return where + "; ".join(lines)
    expects = re.fullmatch(r"argument (--[\w.]+): expected one argument", message)
    if expects:  # also a value that starts with "-", which argparse takes for an option
        return f"{expects.group(1)} needs a value (one that starts with - is written {expects.group(1)}=VALUE)"
    if message.startswith("unrecognized arguments:"):
        return message + did_you_mean(close_option(token.split("=")[0], options)
                                      for token in message.split()[2:] if token.startswith("--"))
    lines = [line.strip().lstrip("- ").strip() for line in message.splitlines() if line.strip()]
    keys = [found.group(1) for line in lines for found in [PARSER_KEY.match(line)] if found]
    given_value = next((GIVEN_VALUE.match(line) for line in lines if line.startswith("Given value:")), None)
    nested_key = given_value.group(1) if given_value else None
    if nested_key:  # --data.text_colum X: the key "data" and, inside it, "text_colum"
        keys = [keys[0], nested_key] if keys else [nested_key]
    key = ".".join(keys)
    not_accepted = NOT_ACCEPTED.search(message)
    if not_accepted:
        name = not_accepted.group(1)
        classes = CLASS_PATH.findall(message)
        suggestion = close_name(name, parameters(classes))
        typed = typed_option(given, name)
        fix = typed[: len(typed) - len(name)] + suggestion if typed and suggestion else suggestion
        owner = classes[-1] if classes else "this class"
        return f"{typed or '--' + key}: {name!r} is not an option of {owner}" + did_you_mean([fix])
    missing = NO_ATTRIBUTE.search(message)
    if missing:
        module, name = missing.groups()
        suggestion = close_name(name, public_names(module))
        return (f"--{key}: {module} has no {name!r}" + did_you_mean([f"{module}.{suggestion}" if suggestion else None]))
    reasons = [re.sub(r"\.? ?Got value: .*$", "", line) for line in lines
               if not line.startswith(SEARCH_LINES) and not PARSER_KEY.match(line)
               and not line.startswith("Problem with given class_path")]
    reasons = [reason for reason in reasons if reason != "Expected a <class 'NoneType'>"] or reasons
    if not reasons:
        return PARSER_KEY.sub(r"--\1:", " ".join(lines), count=1)
    value = (given_value.group(2) or given_value.group(3)) if given_value else None
    got = f", got {value.strip(chr(39))!r}" if value is not None else ""
    return f"--{key}: {expected(reasons)}{got}" if key else "; ".join(reasons)


def expected(reasons: list[str]) -> str:
    """``Expected a <class 'int'>`` lines as ``expected int``; Literal choices merged into one list."""
    kinds, choices, others = [], [], []
    for reason in reasons:
        found = re.fullmatch(r"Expected a (.*)", reason)
        if not found:
            others.append(reason)
            continue
        kind = found.group(1)
        literal = re.fullmatch(r"typing\.Literal\[(.*)\]", kind)
        if literal:
            choices += [choice.strip() for choice in literal.group(1).split(",")]
        else:
            kinds.append(re.sub(r"<class '(?:builtins\.)?([\w.]+)'>", r"\1", kind))
    if choices:
        kinds.append("one of " + ", ".join(dict.fromkeys(choices)))
    parts = (["expected " + " or ".join(kinds)] if kinds else []) + others
    return "; ".join(parts)


def did_you_mean(suggestions: Iterable[Optional[str]]) -> str:
    suggestions = [s for s in suggestions if s]
    return f" (did you mean {' '.join(suggestions)}?)" if suggestions else ""


def close_option(typed: str, options: list[str]) -> Optional[str]:
    """The option closest to ``typed`` among those with the same dotted prefix (``--trainer.``)."""
    prefix, _, _ = typed.rpartition(".")
    same_group = [name for name in options if name.rpartition(".")[0] == prefix] or options
    found = difflib.get_close_matches(typed, same_group, n=1, cutoff=0.75)
    return found[0] if found else None


def close_name(name: str, names: Iterable[str]) -> Optional[str]:
    found = difflib.get_close_matches(name, sorted(set(names)), n=1, cutoff=0.7)
    return found[0] if found else None


def parameters(class_paths: list[str]) -> set[str]:
    """The ``__init__`` parameter names of the classes (and their bases) a message names."""
    names = set()
    for path in class_paths:
        module, _, attribute = path.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError, ValueError):
            continue
        for base in inspect.getmro(cls) if inspect.isclass(cls) else [cls]:
            try:
                names |= set(inspect.signature(base).parameters) - {"self", "args", "kwargs"}
            except (TypeError, ValueError):
                continue
    return names


def public_names(module: str) -> list[str]:
    try:
        return [name for name in dir(importlib.import_module(module)) if not name.startswith("_")]
    except ImportError:
        return []


def typed_option(given: list[str], name: str) -> Optional[str]:
    """The command-line option (without its value) that ends in ``name``: the suggestion keeps its form."""
    for token in given:
        option = token.split("=")[0]
        if option.startswith("--") and (option.endswith("." + name) or option == "--" + name):
            return option
    return None


class CommandParser(OneLineErrors, ArgumentParser):
    """jsonargparse's parser for medtext's own commands (export, compare, explain, ...): one-line
    errors, no abbreviated options, a one-line usage."""

    def format_help(self, *args) -> str:
        from jsonargparse._core import restore_suppressed_required

        if self.usage is None:  # argparse's usage lists every option again, one per line
            with restore_suppressed_required():  # --help is read while parsing, required options relaxed
                self.usage = short_usage(self)
        return super().format_help(*args)


def short_usage(parser) -> str:
    """``PROG --required VALUE ... POSITIONAL ... [options]``."""
    words = [parser.prog]
    for action in parser._actions:
        if action.option_strings and action.required:
            words.append(f"{action.option_strings[-1]} {action.dest.split('.')[-1].upper()}")
        elif not action.option_strings and action.dest not in ("==SUPPRESS==",) and action.help != "==SUPPRESS==":
            words.append(action.metavar or action.dest)
    return " ".join([*words, "[options]"])
