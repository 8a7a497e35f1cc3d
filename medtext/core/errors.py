"""Exceptions that end a medtext command with one clear line instead of a traceback."""


class MedtextError(Exception):
    """Base class: the CLI prints ``medtext: error: <message>`` and exits with status 2."""


class DataError(MedtextError, ValueError):
    """Bad input data: a missing file or column, an empty text, an unknown label, ..."""


class EncoderLoadError(MedtextError, OSError):
    """A pretrained encoder or tokenizer could not be found or downloaded."""


# EX_TEMPFAIL of sysexits.h, "try again later": the exit status of a requeued W&B sweep trial. A sweep
# counts a trial that exits 0 as finished, so a requeued trial must fail to be run again.
SWEEP_REQUEUE_EXIT = 75


class FitCompleted(Exception):
    """``fit --ckpt_path auto`` found its run completed (``medtext/runtime/fit_completion.py``): nothing to do,
    exit status 0 (a requeued job's seed loop skips its finished fits)."""


class PredictionsComplete(Exception):
    """``predict`` found its output already written by the same command (``medtext/core/prediction_parts.py``):
    nothing to do, exit status 0."""


class Requeued(Exception):
    """Raised on every rank once a requeue checkpoint is saved and the job requeued: the run stops at
    once (no validation, no test, no further checkpoint); ``python -m medtext`` exits with status 0
    (or ``MEDTEXT_REQUEUE_EXIT``, which ``scripts/slurm/fit.sbatch``'s seed loop sets), or inside a W&B sweep with :data:`SWEEP_REQUEUE_EXIT` after marking the run preempting."""
