"""Module paths from before medtext's layers (``medtext.classifier``), kept importable: a user's config
or an earlier checkpoint may name a class by its old module path."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {  # old module: its module now
    "medtext.archive_files": "medtext.core.archive_files",
    "medtext.atomic_files": "medtext.core.atomic_files",
    "medtext.baseline": "medtext.commands.baseline",
    "medtext.calibration": "medtext.model.calibration",
    "medtext.check": "medtext.commands.check",
    "medtext.checkpoint": "medtext.runtime.checkpoint",
    "medtext.checkpoint_reading": "medtext.core.checkpoint_reading",
    "medtext.class_paths": "medtext.runtime.class_paths",
    "medtext.classifier": "medtext.model.classifier",
    "medtext.cli": "medtext.commands.cli",
    "medtext.compare": "medtext.commands.compare",
    "medtext.config_logging": "medtext.runtime.config_logging",
    "medtext.divergence": "medtext.core.divergence",
    "medtext.encoder_download": "medtext.commands.encoder_download",
    "medtext.encoders": "medtext.core.encoders",
    "medtext.ensemble": "medtext.runtime.ensemble",
    "medtext.errors": "medtext.core.errors",
    "medtext.explain": "medtext.commands.explain",
    "medtext.explain_html": "medtext.commands.explain_html",
    "medtext.export": "medtext.commands.export",
    "medtext.export_check": "medtext.deploy.export_check",
    "medtext.export_schema": "medtext.deploy.export_schema",
    "medtext.fit_completion": "medtext.runtime.fit_completion",
    "medtext.hf_export": "medtext.deploy.hf_export",
    "medtext.job_fits": "medtext.runtime.job_fits",
    "medtext.launch_checks": "medtext.runtime.launch_checks",
    "medtext.lazy_exports": "medtext.core.lazy_exports",
    "medtext.metrics": "medtext.core.metrics",
    "medtext.onnx_export": "medtext.deploy.onnx_export",
    "medtext.onnx_predict": "medtext.deploy.onnx_predict",
    "medtext.optim": "medtext.model.optim",
    "medtext.output_folders": "medtext.deploy.output_folders",
    "medtext.pretrain": "medtext.commands.pretrain",
    "medtext.requeue_files": "medtext.core.requeue_files",
    "medtext.resume": "medtext.runtime.resume",
    "medtext.run_lock": "medtext.runtime.run_lock",
    "medtext.slurm": "medtext.runtime.slurm",
    "medtext.split_packages": "medtext.core.split_packages",
    "medtext.spreadsheet_cells": "medtext.core.spreadsheet_cells",
    "medtext.tasks": "medtext.model.tasks",
    "medtext.unused_parameters": "medtext.model.unused_parameters",
    "medtext.wandb_runs": "medtext.runtime.wandb_runs",
    "medtext.windows": "medtext.model.windows",
}


class OldModulePaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path as the module it moved to (the same module object)."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module) -> None:
        """Nothing: the module it moved to has run already."""


def install() -> None:
    """Put the finder first (it answers only for the old paths, before a stale file of the same name), once."""
    if not any(isinstance(finder, OldModulePaths) for finder in sys.meta_path):
        sys.meta_path.insert(0, OldModulePaths())
