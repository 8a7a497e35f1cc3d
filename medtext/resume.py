"""Resolve ``fit --ckpt_path last`` to the newest ``last.ckpt`` of the configured logger's runs.

Lightning looks for ``last`` only in the new run's own (empty) checkpoint folder, because a CSV or
TensorBoard logger starts a new ``version_N`` on every call. medtext instead finds the newest
``last.ckpt`` under the logger's run folders and continues that run: same ``version_N`` folder, same
metrics file; for W&B, the same run id (see ``medtext.wandb_resume``).

>>> find_last_checkpoint(Path("runs"), "demo")  # doctest: +SKIP
PosixPath('runs/demo/version_3/checkpoints/last.ckpt')
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .errors import MedtextError

VERSIONED_LOGGERS = ("CSVLogger", "TensorBoardLogger")


def find_last_checkpoint(save_dir: Path, name: str) -> Optional[Path]:
    """The most recently written ``last*.ckpt`` below ``save_dir/name``, if any."""
    folder = save_dir / name if name else save_dir
    candidates = [p for p in folder.glob("**/checkpoints/last*.ckpt") if p.is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def resolve_last(fit_config) -> None:
    """Rewrite ``ckpt_path: last`` in a parsed ``fit`` config into an explicit path (in place)."""
    if fit_config.get("ckpt_path") != "last":
        return
    trainer = fit_config.trainer
    logger = trainer.get("logger")
    init_args = getattr(logger, "init_args", None) if logger not in (None, True, False) else None
    class_name = str(getattr(logger, "class_path", "")).rsplit(".", 1)[-1]
    if init_args is None:  # Lightning's default logger: <default_root_dir>/lightning_logs/version_N
        save_dir, name = Path(trainer.get("default_root_dir") or "."), "lightning_logs"
    else:
        save_dir = Path(init_args.get("save_dir") or trainer.get("default_root_dir") or ".")
        name = init_args.get("name") or init_args.get("project") or ""
    checkpoint = find_last_checkpoint(save_dir, name)
    if checkpoint is None:
        raise MedtextError(f"--ckpt_path last: no last.ckpt below {save_dir / name}; pass the checkpoint file")
    fit_config.ckpt_path = str(checkpoint)
    run_folder = checkpoint.parent.parent.name
    if init_args is not None and class_name in VERSIONED_LOGGERS and init_args.get("version") is None:
        init_args.version = run_folder  # keep logging into the resumed run's folder
    print(f"resuming from {checkpoint}")
