"""``python -m medtext COMMAND``: every command, dispatched from one table.

    python -m medtext --help
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from typing import Callable, Optional

from medtext.runtime.class_paths import trust_command_line
from medtext.core.errors import SWEEP_REQUEUE_EXIT, FitCompleted, MedtextError, PredictionsComplete, Requeued
from medtext.core.third_party_noise import quiet_third_party

SIGTERM_EXIT = 128 + 15  # a shell's status for a process ended by SIGTERM
LIGHTNING_COMMANDS = {
    "fit": "train a model (add --test_after_fit true to test the best checkpoint)",
    "validate": "evaluate a checkpoint on data.val_file",
    "test": "evaluate a checkpoint on data.test_file",
    "predict": "write a checkpoint's predictions for data.predict_file",
}
# command: ("module:function", what it does); the function is a module's main(args), given the command's
# arguments as they are, which it parses with jsonargparse (--help, --config FILE)
COMMANDS = {
    "export": ("medtext.commands.export:main",
               "write a checkpoint as an ONNX Runtime folder (--export.format onnx, every head) or a Hugging Face one (hf)"),
    "hf-export": ("medtext.commands.export:hf_export_main",
                  "the earlier name of export --export.format hf (a Hugging Face AutoModelForSequenceClassification folder)"),
    "check": ("medtext.commands.check:main",
              "check a task config's data: rows, classes, token lengths, duplicates, leaks between splits"),
    "pretrain": ("medtext.commands.pretrain:main",
                 "continue an encoder's masked-language-model training on abstracts (a folder for fit)"),
    "explain": ("medtext.commands.explain:main",
                "an HTML page of a checkpoint's predictions with each word weighted (attention or gradients)"),
    "baseline": ("medtext.commands.baseline:main",
                 "a baseline (tfidf, embedding_probe, zero_shot_similarity, zero_shot_entailment) reported like test"),
    "distil": ("medtext.commands.distil:main",
               "cross-fitted distillation: k teachers' out-of-fold probabilities, then a student fitted on them"),
    "compare": ("medtext.commands.compare:main",
                "test results of several runs side by side, with bootstrap intervals"),
    "download": ("medtext.commands.encoder_download:main",
                 "fetch an encoder and its tokenizer into the Hugging Face cache, for nodes without internet"),
}


def entry_function(command: str) -> Callable:
    module, _, function = COMMANDS[command][0].partition(":")
    return getattr(importlib.import_module(module), function)


def usage() -> str:
    rows = [*LIGHTNING_COMMANDS.items(), *((name, help_) for name, (_, help_) in COMMANDS.items())]
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name:<{width}}  {help_}" for name, help_ in rows]
    return "\n".join(["usage: medtext COMMAND [--help] [--config FILE] [options]", "", "commands:", *lines])


def exported_model_predict(argv: list[str]) -> bool:
    """``predict --model_dir DIR``: an ONNX export run with ONNX Runtime, not a checkpoint."""
    return bool(argv) and argv[0] == "predict" and any(a == "--model_dir" or a.startswith("--model_dir=") for a in argv)


def run(argv: list[str]) -> None:
    """Lightning's four commands run through :class:`medtext.commands.cli.MedtextCLI`; every other command is in
    :data:`COMMANDS`."""
    command = argv[0] if argv else None
    trust_command_line(argv[1:])  # class paths a checkpoint may name: medtext/runtime/class_paths.py
    if exported_model_predict(argv):
        from medtext.deploy.onnx_corpus import main as predict_exported

        predict_exported(argv[1:])
    elif command in COMMANDS:
        entry_function(command)(argv[1:])
    elif command in LIGHTNING_COMMANDS:
        from medtext.commands.cli import build_cli

        build_cli(argv)
    elif command in ("-h", "--help"):
        print(usage())
    elif command is None:
        print(usage(), file=sys.stderr)
        raise SystemExit(2)
    else:
        raise MedtextError(f"unknown command {command!r}; the commands are "
                           f"{', '.join([*LIGHTNING_COMMANDS, *COMMANDS])} (medtext --help)")


def requeue_exit_status() -> int:
    """A requeued job's exit status outside a sweep: 0 (the job runs again), unless a batch script that
    runs several fits asks for another one in ``MEDTEXT_REQUEUE_EXIT`` to stop its loop there."""
    value = os.environ.get("MEDTEXT_REQUEUE_EXIT", "0")
    if value.isdigit() and int(value) < 256:
        return int(value)
    print(f"medtext: MEDTEXT_REQUEUE_EXIT={value!r} is not an exit status (0-255); exiting 0", file=sys.stderr)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """Run a command; a user error (bad input, bad option value) is one line on stderr, exit 2."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    quiet_third_party()
    try:
        run(list(sys.argv[1:] if argv is None else argv))
    except (FitCompleted, PredictionsComplete) as completed:  # a finished run or output: nothing to do
        print(f"medtext: {completed}")
        return 0
    except Requeued as requeued:  # not an error: the job runs again
        from medtext.runtime.wandb_runs import preempt_sweep_trial  # fit raised it: Lightning is loaded already

        print(f"medtext: {requeued}", file=sys.stderr)
        # W&B ignores a run id inside a sweep, and a trial that exits 0 counts as finished: a sweep
        # trial is marked preempting and fails, so the sweep runs it again; plain SLURM jobs exit 0
        if preempt_sweep_trial(SWEEP_REQUEUE_EXIT):
            print(f"medtext: W&B sweep trial marked preempting; exit status {SWEEP_REQUEUE_EXIT}", file=sys.stderr)
            return SWEEP_REQUEUE_EXIT
        return requeue_exit_status()
    except SystemExit as stop:
        if not stopped_by_sigterm(stop):
            raise
        # Lightning ends a run on SIGTERM with a bare SystemExit: status 0, as if it had finished
        print(f"medtext: stopped by SIGTERM; exit status {SIGTERM_EXIT}", file=sys.stderr)
        return SIGTERM_EXIT
    except Exception as err:  # noqa: BLE001 - user errors become one line; the rest propagates
        cause = user_error(err)
        if cause is None:
            raise
        print(f"medtext: error: {cause}", file=sys.stderr)
        return 2
    return 0


def stopped_by_sigterm(stop: SystemExit) -> bool:
    """Whether Lightning stopped a run on SIGTERM (its ``SIGTERMException``; Lightning is loaded then)."""
    exceptions = sys.modules.get("pytorch_lightning.utilities.exceptions")
    return exceptions is not None and isinstance(stop, exceptions.SIGTERMException)


def user_error(err: BaseException) -> Optional[MedtextError]:
    """The :class:`MedtextError` behind ``err``, also when a library re-raised it as another type; a
    full disk (or quota) anywhere in the chain is one too: the user frees space, no traceback helps."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, MedtextError):
            return err
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            where = f" while writing {err.filename}" if err.filename else ""
            return MedtextError(f"no space left on the device{where} ({err.strerror or 'disk full'}); "
                                "free some space and run the command again")
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None
