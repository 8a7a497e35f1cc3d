"""The argument parser of Lightning's commands: one-line argument errors with a "did you mean"
(:mod:`medtext.core.argument_errors`), no prefix abbreviations, and a short ``--help``
(:mod:`medtext.commands.short_help`) with ``--help_all`` and ``--trainer.help`` for the rest."""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from pytorch_lightning.cli import LightningArgumentParser

from medtext.core.argument_errors import OneLineErrors
from medtext.commands.short_help import HelpSections, short_help, trainer_help


class LightningCommandParser(OneLineErrors, LightningArgumentParser):
    """Lightning's parser for fit/validate/test/predict (and check, baseline, pretrain)."""

    help_sections: Optional[HelpSections] = None  # what the short help lists, once add_help_actions gave it

    def format_help(self, *args) -> str:
        if self.help_sections is None:  # the main parser, before its subcommands
            return super().format_help(*args)
        return short_help(self, self.help_sections)

    def full_help(self) -> str:
        return super().format_help()

    def add_help_actions(self, sections: HelpSections) -> None:
        """A short ``--help`` listing what ``sections`` names, ``--help_all`` (Lightning's whole help)
        and ``--trainer.help`` (its Trainer options)."""
        self.help_sections = sections
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
