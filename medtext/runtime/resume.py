"""Resolve ``fit --ckpt_path last`` (or ``auto``) to the ``last.ckpt`` of this command's own run only.

``auto`` means "resume if there is one", for a job script that runs the same command again.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Optional

import yaml

from medtext.core.atomic_files import atomic_write_text
from medtext.core.errors import FitCompleted, MedtextError
from medtext.runtime.fit_completion import completed_record, removed_last
from medtext.core.requeue_files import newest_state, run_requeue_checkpoints, saved_step
from medtext.core.requeue_files import newest_last

VERSIONED_LOGGERS = ("CSVLogger", "TensorBoardLogger")
RESUME_OPTIONS = ("last", "auto")


class NothingToResume(MedtextError):
    """No ``last.ckpt`` of this run: an error for ``--ckpt_path last``, a fresh start for ``auto``."""

    def __init__(self, option: str, where: str):
        super().__init__(f"--ckpt_path {option}: no last.ckpt {where}; pass the checkpoint file")
        self.where = where


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys to JSON-comparable leaves (Namespaces and dicts flattened, ``__path__`` dropped)."""
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, dict):
        return {k: v for key, item in value.items() if not str(key).startswith("__")
                for k, v in _flat(item, f"{prefix}{key}.").items()}
    return {prefix[:-1]: json.loads(json.dumps(value, default=str))}


def same_experiment(run_folder: Path, fit_config) -> Optional[bool]:
    """Whether the run's ``config.yaml`` has the ``model``, ``data`` and seed of ``fit_config`` (values
    both give must agree: a seed loop's fits share a folder and must not resume each other); ``None``
    when the run has no readable ``config.yaml``."""
    try:
        saved = yaml.safe_load((run_folder / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(saved, dict):
        return None
    sections = ("model", "data") if isinstance(fit_config.get("seed_everything"), bool) else (
        "model", "data", "seed_everything")  # a random seed (`true`) is saved as the number drawn
    for section in sections:
        ours, theirs = _flat(fit_config.get(section)), _flat(saved.get(section))
        if any(theirs[key] != value for key, value in ours.items() if key in theirs):
            return False
    return True


def _logger_runs(fit_config) -> tuple[Path, Optional[str], Any]:
    """(the folder of the logger's run folders, the run the logger names or ``None``, the init_args
    of a CSV/TensorBoard logger whose ``version`` may be set to the resumed run, else ``None``).

    Lightning looks for ``last`` only in the new run's own (empty) checkpoint folder, because a CSV or
    TensorBoard logger starts a new ``version_N`` on every call. medtext looks in the run folders of the
    configured logger (the first one, as ``ModelCheckpoint`` does): ``<save_dir>/<name>/<version>/`` for
    CSV and TensorBoard, ``<save_dir>/<project>/<run id>/`` for W&B (whatever its display ``name``)."""
    trainer = fit_config.trainer
    root = Path(trainer.get("default_root_dir") or ".")
    logger = trainer.get("logger")
    logger = logger[0] if isinstance(logger, list) and logger else logger
    if logger is False:  # no logger: checkpoints in <default_root_dir>/checkpoints
        return root, "", None
    init_args = getattr(logger, "init_args", None) if logger not in (None, True) else None
    if init_args is None:  # Lightning's default logger: <default_root_dir>/lightning_logs/version_N
        return root / "lightning_logs", None, None
    save_dir = Path(init_args.get("save_dir") or init_args.get("dir") or root)
    class_name = str(getattr(logger, "class_path", "")).rsplit(".", 1)[-1]
    if class_name.endswith("WandbLogger"):  # <project>/<run id>: the display name plays no part
        project = init_args.get("project") or os.environ.get("WANDB_PROJECT") or "lightning_logs"
        return save_dir / project, init_args.get("version") or init_args.get("id"), None
    version = init_args.get("version")
    run = f"version_{version}" if isinstance(version, int) else version
    return save_dir / (init_args.get("name") or ""), run, init_args if class_name in VERSIONED_LOGGERS else None


def find_last(fit_config, option: str = "last") -> Path:
    """The ``last.ckpt`` that ``--ckpt_path last`` means for this parsed ``fit`` config; ``option`` is
    the value the messages name.

    The logger names its run (CSV/TensorBoard ``version``, W&B ``id``): that run's ``last.ckpt`` only.
    Otherwise, the run folders holding a ``last.ckpt`` whose ``config.yaml`` has this command's
    ``model``, ``data`` and ``seed_everything`` (a rerun after a crash; runs of other configs or sweep
    values sharing the folder are never taken; a run without ``config.yaml`` counts). Exactly one: it
    is resumed. Several (an earlier finished run of the same command, or a concurrent one): one line
    listing them."""
    folder, run, _ = _logger_runs(fit_config)
    if run is not None:
        checkpoint = newest_last(folder / run / "checkpoints") or removed_last(folder / run / "checkpoints")
        if checkpoint is None:
            raise NothingToResume(option, f"in {folder / run / 'checkpoints'} (the logger's own run)")
        return checkpoint
    found = [c for c in (newest_last(d) or removed_last(d) for d in sorted(folder.glob("*/checkpoints"))) if c is not None]
    ours = sorted((c for c in found if same_experiment(c.parent.parent, fit_config) is not False),
                  key=lambda p: (p if p.exists() else p.parent).stat().st_mtime, reverse=True)
    if len(ours) == 1:
        return ours[0]
    if len(ours) > 1:
        raise MedtextError(f"--ckpt_path {option} is ambiguous: {len(ours)} runs of this model and data below {folder} "
                           f"have a last.ckpt (newest first: {', '.join(map(str, ours))}); pass the one to resume "
                           "as --ckpt_path FILE, or give each run its own logger version (W&B: id)")
    others = f" (only other configs' runs: {', '.join(map(str, found))})" if found else ""
    raise NothingToResume(option, f"of this model and data below {folder}{others}")


def resolve_last(fit_config, requeue_root: Optional[Path] = None) -> None:
    """Rewrite ``ckpt_path: last`` or ``auto`` in a parsed ``fit`` config into an explicit path (in
    place); ``auto`` with nothing to resume into ``None``. ``auto`` looks for the run's requeue
    checkpoints in ``<requeue_root>/slurm-*`` (default: the trainer's ``default_root_dir``).

    ``auto`` finds the run as ``last`` does, but with none ``fit`` starts fresh and says so in one line.
    It takes a requeue checkpoint of that run (``medtext.runtime.slurm``) when it holds a later step than the
    run's ``last.ckpt``, and does nothing for a completed run (``medtext/runtime/fit_completion.py``). The
    resumed run continues in the same run folder; for W&B, in the same run (``medtext.runtime.wandb_runs``)."""
    option = fit_config.get("ckpt_path")
    if option not in RESUME_OPTIONS:
        return
    try:
        last = find_last(fit_config, option)
    except NothingToResume as nothing:
        if option != "auto":
            raise
        fit_config.ckpt_path = None
        print(f"--ckpt_path auto: no last.ckpt {nothing.where}: starting fresh")
        return
    checkpoint = last
    if option == "auto":  # a job of this run requeued after the last.ckpt was written, and never restarted
        root = Path(requeue_root or fit_config.trainer.get("default_root_dir") or ".")
        if last.exists():  # else fit --keep_last false removed it when the run completed
            checkpoint = newest_state([last, *run_requeue_checkpoints(last.parent, root)])
        record = (completed_record(last, saved_step(last) if last.exists() else None, fit_config)
                  if checkpoint == last else None)
        if record is not None:
            raise FitCompleted(f"--ckpt_path auto: the run of {last} has completed ({record}): nothing to do")
    if not checkpoint.exists():
        raise MedtextError(f"--ckpt_path {option}: the run of {last} completed and fit --keep_last false removed "
                           "its last.ckpt, so it cannot train on; start a new run (another logger version) "
                           "or pass a checkpoint file")
    fit_config.ckpt_path = str(checkpoint)
    _, run, init_args = _logger_runs(fit_config)
    if run is None and init_args is not None:
        init_args.version = last.parent.parent.name  # keep logging into the resumed run's folder
    print(f"resuming from {checkpoint}")


def rows_before_step(text: str, header: list[str], step: int) -> str:
    """``metrics.csv`` text without the rows of steps from ``step`` on (unchanged if there are none)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    kept = [row for row in rows if not (row["step"].isdigit() and int(row["step"]) >= step)]
    if len(kept) == len(rows):
        return text
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\r\n" if "\r\n" in text else "\n")
    writer.writeheader()
    writer.writerows(kept)
    return buffer.getvalue()


def keep_csv_rows(trainer, resumed_step: Optional[int] = None) -> None:
    """A resumed run keeps the ``metrics.csv`` rows its CSV logger wrote before: Lightning's CSV
    logger deletes an existing run folder's ``metrics.csv`` when it starts (call before ``fit``).
    Rows of steps from ``resumed_step`` on (the checkpoint's ``global_step``) are dropped: the
    resumed run trains and logs those steps again (after a crash or kill, they were logged past the
    last save)."""
    from pytorch_lightning.loggers import CSVLogger

    for logger in trainer.loggers:
        path = Path(logger.log_dir) / "metrics.csv" if isinstance(logger, CSVLogger) else None
        if path is None or not trainer.is_global_zero or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        header = next(csv.reader(io.StringIO(text)), [])
        if resumed_step is not None and "step" in header:
            text = rows_before_step(text, header, resumed_step)
        writer = logger.experiment  # creating it removes the file
        atomic_write_text(path, text)
        writer.metrics_keys = [*header, *(key for key in writer.metrics_keys if key not in header)]
