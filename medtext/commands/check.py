"""``python -m medtext check --config FILE``: a data check before training (also run by ``fit``).

    python -m medtext check --config configs/medical_abstracts/minilm_mlp.yaml \\
        --data.data_dir ../shared/data/medical_abstracts
"""

from __future__ import annotations




from medtext.commands.data_only_cli import DataOnlyCLI
from medtext.runtime.data_report import print_check, write_report

class CheckCLI(DataOnlyCLI):
    """The ``fit`` parser (configs compose as for ``fit``); only the data module is built."""

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument("--report_dir", type=str | None, default=None,
                            help="also write data_report.json and data_report.md into this folder")


def main(args: list[str] | None = None) -> None:
    """``medtext check --config FILE [--report_dir DIR] [--data.* ...]``: the data check of a task config.

    Reads the same task config as ``fit`` (its ``data`` section, and ``model.encoder_name`` for the
    tokenizer; the rest is parsed, not used), and prints per split its rows, class counts, token lengths
    and truncation, then duplicates and conflicting labels within and across splits
    (:mod:`data_modules.data_check`). ``--report_dir DIR`` also writes ``data_report.json`` and ``.md``."""
    cli = CheckCLI.parse(args, "check", __doc__.split("\n\n")[0])
    report = print_check(cli.datamodule)
    if cli.config.get("report_dir"):
        print(f"data report written to {write_report(report, cli.config.report_dir)}")
