"""The argument parser of Lightning's commands: one-line argument errors with a "did you mean"
(:mod:`medtext.core.argument_errors`), no prefix abbreviations, and a short ``--help``
(:mod:`medtext.commands.short_help`) with ``--help_all`` and ``--trainer.help`` for the rest."""

from __future__ import annotations

import argparse
import sys

from pytorch_lightning.cli import LightningArgumentParser

from medtext.core.argument_errors import OneLineErrors
from medtext.commands.short_help import class_option_help, short_help, trainer_help


class LightningCommandParser(OneLineErrors, LightningArgumentParser):
    """Lightning's parser for fit/validate/test/predict (and check, baseline, pretrain)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    short_help_classes: tuple = ()  # (data module class, model class) once add_help_actions gave them

    def format_help(self, *args) -> str:
        if not self.short_help_classes:  # the main parser before its subcommands; pretrain
            return super().format_help(*args)
        data_class, model_class = self.short_help_classes
        return short_help(self, class_option_help(data_class, "data"), class_option_help(model_class, "model"))

    def full_help(self) -> str:
        return super().format_help()

    def add_help_actions(self, data_class: type, model_class: type) -> None:
        """A short ``--help`` naming the options of ``data_class`` and ``model_class``, ``--help_all``
        (Lightning's whole help) and ``--trainer.help`` (its Trainer options)."""
        self.short_help_classes = (data_class, model_class)
        self.add_argument("--help_all", action=PrintAndExit, nargs=0, help="every option, the Trainer's included",
                          default=argparse.SUPPRESS)
        if "trainer" in self.groups:
            self.add_argument("--trainer.help", action=PrintAndExit, nargs=0, help="every Trainer option",
                              default=argparse.SUPPRESS)


class PrintAndExit(argparse.Action):
    """Prints the help its option names and exits 0, as ``--help`` does."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        text = trainer_help(parser) if option_string == "--trainer.help" else parser.full_help()
        parser._print_message(text, sys.stdout)
        parser.exit()
