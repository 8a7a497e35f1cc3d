"""A Lightning command's ``--help`` that fits a screen: the command's own options, the data module's
files and columns, the model and Trainer options a user sets first, and where the rest are listed
(``--help_all``, ``--data.help CLASS``, ``--model.help CLASS``, ``--trainer.help``).

Lightning's own help lists all ~100 Trainer options with their docstrings cut at the first line
break, and internal reprs; that stays available as ``--help_all``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import textwrap
from dataclasses import dataclass

OWN_OPTIONS = {  # command: its options, in the order a user needs them
    "fit": ("--config", "--ckpt_path", "--seed_everything", "--test_after_fit", "--keep_last"),
    "validate": ("--config", "--ckpt_path", "--ensemble"),
    "test": ("--config", "--ckpt_path", "--ensemble"),
    "predict": ("--config", "--ckpt_path", "--ensemble", "--predictions.output_file", "--predictions.keep_columns",
                "--predictions.overwrite"),
    "distil": ("--config", "--distil.output_dir", "--distil.student_config", "--distil.folds", "--distil.seed",
               "--distil.weight", "--distil.teacher_options", "--distil.student_options"),
    "pretrain": ("--config", "--output_dir", "--overwrite_output_dir", "--ckpt_path", "--seed_everything"),
}
OWN_HELP = {  # Lightning's options, said for these commands; medtext's own options keep their help
    "--config": "a YAML config; several compose left to right (configs/...)",
    "--ckpt_path": {"fit": "resume this checkpoint (last: this config's run's last.ckpt)",
                    "validate": "the checkpoint to validate", "test": "the checkpoint to test",
                    "predict": "the checkpoint to predict with"}.get,
    "--seed_everything": "an int, or true for a random one (recorded in the run's config)",
}
SAID_SHORTER = {  # options whose docstring is several lines (or names several options at once)
    "encoder_lr": "AdamW learning rate of the encoder",
    "head_lr": "AdamW learning rate of the head",
    "calibration": "temperature (fitted on validation; test, predict and explain apply it) or none",
    "skip_invalid_rows": "predict writes rows it cannot classify with an empty label and the reason",
}
TRAINER_OPTIONS = {  # Lightning's docstrings are long; what each one does, in a line
    "max_epochs": "passes over the training data",
    "precision": "32-true; bf16-mixed on a GPU or a CPU with native bf16; 16-mixed on a GPU",
    "accelerator": "cpu, gpu or auto",
    "devices": "how many devices (or which) per node; several GPUs train with DDP",
    "num_nodes": "nodes of a multi-node (SLURM) run",
    "logger": "a logger, e.g. --config configs/logger/wandb.yaml",
    "default_root_dir": "where run folders are written (default: runs)",
}
SCREEN_WIDTH = 100


def command_name(parser) -> str:
    return parser.prog.replace(" [options]", "").split()[-1]


@dataclass(frozen=True)
class HelpSections:
    """The data and model options a command's short help lists, and where the rest are."""

    data_class: type
    model_class: type
    data_options: tuple[str, ...] = ("train_file", "val_file", "test_file", "predict_file", "text_column",
                                     "label_column", "label_columns", "id_column", "labels_file", "max_length",
                                     "batch_size", "skip_invalid_rows")
    model_options: tuple[str, ...] = ("encoder_name", "head", "encoder_lr", "head_lr", "calibration")
    data_title: str = "data (every option of the config's class: --data.help CLASS, e.g. data_modules.AbstractsDataModule)"
    model_title: str = "model (every option: --model.help medtext.TextClassifier)"


def short_help(parser, sections_of: HelpSections) -> str:
    """``parser``'s short help, listing the options ``sections_of`` names."""
    data_help = class_option_help(sections_of.data_class, "data")
    model_help = class_option_help(sections_of.model_class, "model")
    command = command_name(parser)
    width = min(shutil.get_terminal_size((SCREEN_WIDTH, 24)).columns, SCREEN_WIDTH)
    own = {name: parser._option_string_actions[name] for name in OWN_OPTIONS.get(command, ("--config",))
           if name in parser._option_string_actions}
    model_help, data_help = {**model_help, **SAID_SHORTER}, {**data_help, **SAID_SHORTER}
    sections = [
        (None, [("-h, --help", "this help; --help_all lists every option")]
         + [(option_label(action, name), own_help(name, command, action)) for name, action in own.items()]),
        (sections_of.data_title, [(f"--data.{name}", data_help.get(name, "")) for name in sections_of.data_options]),
        (sections_of.model_title,
         [(f"--model.{name}", model_help.get(name, "")) for name in sections_of.model_options]),
        ("trainer (every Lightning Trainer option: --trainer.help)",
         [(f"--trainer.{name}", text) for name, text in TRAINER_OPTIONS.items()]),
    ]
    lines = [f"usage: medtext {command} --config FILE [--config FILE ...] [--section.option VALUE ...]", ""]
    if parser.description:
        lines += [*textwrap.wrap(first_sentence(" ".join(parser.description.split())), width), ""]
    if command == "predict":
        lines += ["An exported (ONNX) model instead of a checkpoint: medtext predict --model_dir DIR --help", ""]
    for title, rows in sections:
        lines.append(f"{title or 'options'}:")
        lines += [row for name, text in rows for row in option_rows(name, text, width)]
        lines.append("")
    lines.append("Options compose left to right: later configs and options override earlier ones.")
    return "\n".join(lines) + "\n"


def own_help(name: str, command: str, action: argparse.Action) -> str:
    said = OWN_HELP.get(name)
    said = said(command, None) if callable(said) else said
    return said or action.help or ""


def option_label(action: argparse.Action, name: str) -> str:
    short = [option for option in action.option_strings if not option.startswith("--")]
    return ", ".join([*short, name])


def option_rows(name: str, text: str, width: int, column: int = 28) -> list[str]:
    text = first_sentence(" ".join(text.replace("``", "").split()))
    if len(name) + 2 >= column:
        return [f"  {name}", *textwrap.wrap(text, width, initial_indent=" " * column, subsequent_indent=" " * column)]
    wrapped = textwrap.wrap(text, width - column) or [""]
    return [f"  {name:<{column - 2}}{wrapped[0]}", *(" " * column + rest for rest in wrapped[1:])]


def first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence ("e.g." does not)."""
    for stop in re.finditer(r"\.(?=\s|$)", text):
        if not text[: stop.start()].endswith(("e.g", "i.e", ".")):
            return text[: stop.end()]
    return text


def class_option_help(cls, key: str) -> dict[str, str]:
    """Each ``__init__`` option's help text of ``cls``, as jsonargparse reads it from the docstring."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, key, fail_untyped=False)
    prefix = f"--{key}."
    return {option[len(prefix):]: action.help or "" for option, action in parser._option_string_actions.items()
            if option.startswith(prefix)}


def trainer_help(parser) -> str:
    """Every Trainer option, as Lightning's help lists them."""
    from jsonargparse._common import parser_context

    group = parser.groups["trainer"]
    formatter = parser._get_formatter()
    with parser_context(parent_parser=parser):
        formatter.start_section(group.title)
        formatter.add_text(group.description)
        formatter.add_arguments(group._group_actions)
        formatter.end_section()
        return formatter.format_help()
