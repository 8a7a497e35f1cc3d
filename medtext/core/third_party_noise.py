"""Messages from the libraries medtext runs on that tell a medtext user nothing: tips for other
products, deprecations inside Lightning, a notice about a package medtext does not use. medtext's
own warnings, and every other library message, still show."""

from __future__ import annotations

import logging
import warnings

WARNINGS = (  # regular expressions matched at the start of a warning's message
    r"No seed found, seed set to",  # predict and test need no seed
    r"Starting from v1\.9\.0, `tensorboardX` has been removed",  # medtext's configs name their loggers
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # inside Lightning, not medtext's to fix
    r"The number of training batches \(\d+\) is smaller than the logging interval",  # small data: known
)
TIPS = ("💡 Tip:",)  # Lightning's advertisements for its cloud products
# validate/test/predict --ckpt_path use a checkpoint's weights alone: fit's callbacks are not needed
CHECKPOINT_CALLBACKS = r"Be aware that when using `ckpt_path`, callbacks used to create the checkpoint need to be provided"
PREDICT_WARNINGS = (  # predict streams a corpus: this is expected
    r"Couldn't infer the batch indices fetched from your dataloader",
    CHECKPOINT_CALLBACKS,
)
PREDICT_LINES = ("Seed set to", "GPU available:", "TPU available:", "HPU available:", "Restoring states from the checkpoint path",
                 "Loaded model weights from the checkpoint")  # predict prints its progress and one summary
LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero")


class _WithoutTips(logging.Filter):
    starts = TIPS

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.starts)


class _WithoutPredictLines(_WithoutTips):
    starts = PREDICT_LINES


def quiet_third_party() -> None:
    """Filter those messages out of this process (once is enough; again is harmless)."""
    for message in WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _WithoutTips) for f in logger.filters):
            logger.addFilter(_WithoutTips())


def quiet_evaluation() -> None:
    """For ``validate``/``test --ckpt_path``: Lightning's note that fit's callbacks are missing."""
    warnings.filterwarnings("ignore", message=CHECKPOINT_CALLBACKS)


def quiet_predict() -> None:
    """For ``predict``: also Lightning's device and checkpoint-restoring lines and its notes on a loader
    without a sampler; the progress bar and medtext's summary line stay."""
    for message in PREDICT_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name in (*LOGGERS, "lightning_fabric.utilities.seed"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _WithoutPredictLines) for f in logger.filters):
            logger.addFilter(_WithoutPredictLines())
