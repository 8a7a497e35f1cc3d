"""Lightning callbacks of medtext: reports, per-epoch metric tables and prediction files.

Each class is imported on first use (``medtext/core/lazy_exports.py``): ONNX Runtime's predict writes its
file with ``callbacks.report_files`` without importing Lightning.
"""

from typing import TYPE_CHECKING

from medtext.core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .checkpoints import BestCheckpoint, SelectionEarlyStopping
    from .classification_report import ClassificationReport
    from .divergence import StopOnDivergence
    from .metric_tables import MetricTables
    from .prediction_writer import PredictionWriter
    from .rng_state import RNGStateCheckpoint
    from .slurm_requeue import SlurmRequeue
    from .weight_averaging import EMAWeights

_EXPORTS = {"BestCheckpoint": ".checkpoints", "SelectionEarlyStopping": ".checkpoints",
            "ClassificationReport": ".classification_report", "EMAWeights": ".weight_averaging",
            "MetricTables": ".metric_tables", "PredictionWriter": ".prediction_writer",
            "RNGStateCheckpoint": ".rng_state", "SlurmRequeue": ".slurm_requeue", "StopOnDivergence": ".divergence"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
