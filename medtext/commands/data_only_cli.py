"""The ``fit`` parser for commands that build only the data module (``check``, ``baseline``): task configs
compose as for ``fit``, but no model, no trainer and no run folder are made."""

from __future__ import annotations

from typing import Optional

from data_modules import AbstractsDataModule

from medtext.commands.cli import MedtextCLI, own_arguments
from medtext.model.classifier import TextClassifier


class DataOnlyCLI(MedtextCLI):
    """The ``fit`` parser (task configs compose as for ``fit``) for commands that build only the data
    module (``check``, ``baseline``): no model, no trainer, no run folder at parse time."""

    def before_instantiate_classes(self) -> None:
        """Nothing: no trainer, no run folder."""

    def instantiate_classes(self) -> None:
        from jsonargparse import ArgumentParser, Namespace

        parser = ArgumentParser()
        parser.add_subclass_arguments(AbstractsDataModule, "data")
        self.datamodule = parser.instantiate_classes(Namespace(data=self.config.data)).data
        self.model = self.trainer = None

    @classmethod
    def parse(cls, args: Optional[list[str]], command: str, description: str) -> "DataOnlyCLI":
        with own_arguments():
            return cls(TextClassifier, AbstractsDataModule, args=args, run=False, subclass_mode_model=True,
                       subclass_mode_data=True, auto_configure_optimizers=False,
                       parser_kwargs={"prog": f"medtext {command}", "description": description})
