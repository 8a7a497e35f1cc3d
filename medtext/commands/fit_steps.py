"""What :class:`medtext.commands.cli.MedtextCLI` does around ``trainer.fit``: the run folder's lock, the W&B
run, a resumed run's logged rows, the test after fit and the record that the fit completed."""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_info

from callbacks import SlurmRequeue
from data_modules import AbstractsDataModule

from medtext.core.requeue_files import saved_step
from medtext.runtime.config_logging import scrubbed_sys_argv, start_wandb_run
from medtext.runtime.fit_completion import record_completed
from medtext.runtime.resume import keep_csv_rows
from medtext.runtime.run_lock import RunLocks


class FitSteps:
    """Lightning's ``before_fit``/``fit``/``after_fit`` hooks of the CLI (needs ``trainer``, ``config``,
    ``subcommand``, ``datamodule`` and ``model``)."""

    def before_fit(self) -> None:
        """Lock the run folder (``medtext/runtime/run_lock.py``) until the fit ends; start a W&B run recording the
        command line without secrets; keep a resumed run's ``metrics.csv`` rows; ``fast_dev_run``: no
        ``last.ckpt`` either (Lightning skips every other save then)."""
        self.run_lock = RunLocks()
        try:
            self.run_lock.lock_folders(self.trainer)  # rank zero, before anything is written into them
            with scrubbed_sys_argv():  # a W&B run that starts here (data check, else just below) records it
                self._prepare_fit()
                start_wandb_run(self.trainer)
            self.run_lock.lock_folders(self.trainer)  # a new W&B run's, now that it has its id
        except BaseException:
            self.run_lock.close()
            raise

    def _prepare_fit(self) -> None:
        if self.config[self.subcommand].get("ckpt_path"):
            ckpt_path = Path(self.config[self.subcommand]["ckpt_path"])  # a resumed run keeps the rows logged before
            keep_csv_rows(self.trainer, saved_step(ckpt_path) if ckpt_path.is_file() else None)
        if self.trainer.fast_dev_run:
            for callback in self.trainer.checkpoint_callbacks:
                if isinstance(callback, ModelCheckpoint):
                    callback.save_last = None
        if isinstance(self.datamodule, AbstractsDataModule):  # the data report and leak warning (rank 0)
            from medtext.runtime.data_report import check_before_fit

            check_before_fit(self.trainer, self.datamodule)

    def fit(self, model, **kwargs) -> None:
        """``trainer.fit``, with SlurmRequeue's signal handler kept until the command ends (a signal during
        the test after fit lets the test finish, callbacks/slurm_requeue.py); a failure ends the fit."""
        for requeuer in (c for c in self.trainer.callbacks if isinstance(c, SlurmRequeue)):
            requeuer.hold_handler = True
        try:
            self.trainer.fit(model, **kwargs)
        except BaseException:
            self._end_fit()
            raise

    def after_fit(self) -> None:
        try:
            tested = self._test_after_fit()
            self._record_completed(tested)
        finally:
            self._end_fit()

    def _record_completed(self, tested: bool) -> None:
        """``fit_completed.json`` beside ``last.ckpt``: ``--ckpt_path auto`` run again has nothing to do."""
        # by name, not last_model_path: a resumed run that trained nothing saved no last.ckpt of its own
        lasts = [Path(c.dirpath) / f"{c.CHECKPOINT_NAME_LAST}{c.FILE_EXTENSION}" for c in self.trainer.checkpoint_callbacks
                 if isinstance(c, ModelCheckpoint) and c.dirpath
                 and (c.save_last or c.filename == c.CHECKPOINT_NAME_LAST)]  # the demo's: filename last
        if lasts and self.trainer.is_global_zero and lasts[0].is_file():
            # the step last.ckpt holds: with save_last alone, Lightning refreshes it only with a new best
            step = saved_step(lasts[0])
            if step is not None:
                remove = not self.config[self.subcommand].get("keep_last", True) and self._best_kept(lasts[0])
                # recorded first: killed before the removal, the record still matches the last.ckpt left
                record_completed(lasts[0], step, self.config[self.subcommand].trainer, tested, last_removed=remove)
                self._settle_last(lasts[0], remove)

    def _best_kept(self, last: Path) -> bool:
        """Whether a best checkpoint other than ``last`` exists: only then may ``last.ckpt`` go."""
        best = getattr(self.trainer.checkpoint_callback, "best_model_path", "")
        if best and Path(best).is_file() and Path(best).resolve() != last.resolve():
            return True
        rank_zero_info(f"--keep_last false: no best checkpoint besides {last}, which is kept")
        return False

    def _settle_last(self, last: Path, remove: bool) -> None:
        """``--keep_last false``: the completed run's ``last.ckpt`` goes (the best checkpoint stays);
        otherwise say where it is and what it costs."""
        if remove:
            last.unlink(missing_ok=True)
            rank_zero_info(f"removed {last} (--keep_last false); the best checkpoint stays: "
                           f"{self.trainer.checkpoint_callback.best_model_path}")
        else:
            megabytes = last.stat().st_size / 2**20
            rank_zero_info(f"last.ckpt: {last} ({megabytes:,.0f} MB, the full training state, to resume or train on; "
                           "fit --keep_last false removes it once a fit completes)")

    def _end_fit(self) -> None:
        """The command's last step: the lock file and the run's leftover temporary files go, and the
        requeue signal's default action is back."""
        self.run_lock.close()
        for requeuer in (c for c in self.trainer.callbacks if isinstance(c, SlurmRequeue)):
            requeuer.release()

    def _test_after_fit(self) -> bool:
        """Test the best checkpoint when asked; whether a test ran."""
        config = self.config[self.subcommand]
        if not config.get("test_after_fit"):
            return False
        if not self.datamodule.split_file("test"):
            rank_zero_info("test_after_fit: no data.test_file, skipping the test")
            return False
        checkpoint = self.trainer.checkpoint_callback  # the first ModelCheckpoint: the best by its metric
        ckpt_path = checkpoint.best_model_path if checkpoint is not None and checkpoint.best_model_path else None
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt_path, verbose=False)
        return True
