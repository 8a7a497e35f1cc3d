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
LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero")


class _WithoutTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(TIPS)


def quiet_third_party() -> None:
    """Filter those messages out of this process (once is enough; again is harmless)."""
    for message in WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _WithoutTips) for f in logger.filters):
            logger.addFilter(_WithoutTips())
