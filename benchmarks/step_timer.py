"""Timers for the speed benchmark: the same measurement inside medtext (a Lightning callback) and
inside the Hugging Face baseline (a data-collator wrapper plus a ``TrainerCallback``).

Each records, per training step, the batch shape (abstracts, padded length) and the real
(non-padding) tokens, and the wall-clock time at the end of the step; throughput counts the steps
after ``warmup_steps``. Peak RSS is the process's ``VmHWM``. Results go to a JSON file.
"""

from __future__ import annotations

import json
import resource
import time


def peak_rss_mib() -> float:
    """This process's peak resident memory: ``VmHWM``, not ``ru_maxrss``, which on Linux carries the
    parent's peak over ``fork`` + ``exec`` (every run would be floored at the harness's own size)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024  # KiB
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class StepLog:
    """Batch shapes, real tokens and step end times; summarised after ``warmup_steps``."""

    def __init__(self, warmup_steps: int):
        self.warmup_steps = warmup_steps
        self.started = time.perf_counter()
        self.shapes: list[tuple[int, int, int]] = []  # (abstracts, padded length, real tokens)
        self.step_ends: list[float] = []
        self.extra: dict = {}

    def summary(self) -> dict:
        steps = len(self.step_ends)
        timed = slice(self.warmup_steps + 1, steps)
        seconds = self.step_ends[-1] - self.step_ends[self.warmup_steps] if steps > self.warmup_steps + 1 else 0.0
        abstracts = sum(s[0] for s in self.shapes[timed])
        return {"steps": steps, "warmup_steps": self.warmup_steps, "timed_steps": max(0, steps - self.warmup_steps - 1),
                "timed_seconds": seconds, "timed_abstracts": abstracts,
                "abstracts_per_second": abstracts / seconds if seconds else None,
                "timed_shapes": self.shapes[timed], "peak_rss_mib": peak_rss_mib(),
                "seconds_since_start": time.perf_counter() - self.started, **self.extra}

    def write(self, path: str) -> None:
        from medtext.core.atomic_files import atomic_write_text

        atomic_write_text(path, json.dumps(self.summary()) + "\n")


try:  # the medtext side
    import pytorch_lightning as pl

    class LightningStepTimer(pl.Callback):
        """Times training steps (``fit``) or the whole predict loop (``predict``) of medtext."""

        def __init__(self, out: str, warmup_steps: int = 3):
            self.out, self.steps = out, StepLog(warmup_steps)  # created with the trainer: model already loaded

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            mask = batch["attention_mask"]
            self.steps.shapes.append((int(mask.shape[0]), int(mask.shape[1]), int(mask.sum())))
            self.steps.step_ends.append(time.perf_counter())

        def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
            mask = batch["attention_mask"]
            self.steps.shapes.append((int(mask.shape[0]), int(mask.shape[1]), int(mask.sum())))

        def on_predict_end(self, trainer, pl_module) -> None:
            self.steps.extra["predict_seconds"] = time.perf_counter() - self.steps.started  # includes tokenization
            self.steps.extra["predict_abstracts"] = sum(s[0] for s in self.steps.shapes)
            self.steps.extra["predict_shapes"] = list(self.steps.shapes)

        def on_validation_end(self, trainer, pl_module) -> None:
            if not trainer.sanity_checking and "val/macro_f1" in trainer.callback_metrics:
                self.steps.extra["val_macro_f1"] = float(trainer.callback_metrics["val/macro_f1"])

        def teardown(self, trainer, pl_module, stage: str) -> None:
            self.steps.write(self.out)
except ImportError:  # pragma: no cover - the baseline process may run without Lightning
    pass


class RecordingCollator:
    """Wraps a data collator and records each batch's shape and real tokens (Hugging Face side)."""

    def __init__(self, collate, log: StepLog):
        self.collate, self.steps = collate, log

    def __call__(self, features):
        batch = self.collate(features)
        mask = batch["attention_mask"]
        self.steps.shapes.append((int(mask.shape[0]), int(mask.shape[1]), int(mask.sum())))
        return batch


def trainer_step_callback(log: StepLog):
    """A ``transformers.TrainerCallback`` that records step end times into ``log``."""
    from transformers import TrainerCallback

    class StepEnd(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            log.step_ends.append(time.perf_counter())

    return StepEnd()
