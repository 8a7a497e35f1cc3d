"""Lightning callbacks of medtext: reports, per-epoch metric tables and prediction files."""

from .checkpoints import BestCheckpoint, SelectionEarlyStopping
from .classification_report import ClassificationReport
from .metric_tables import MetricTables
from .prediction_writer import PredictionWriter
from .rng_state import RNGStateCheckpoint
from .slurm_requeue import SlurmRequeue
from .weight_averaging import EMAWeights

__all__ = ["BestCheckpoint", "ClassificationReport", "EMAWeights", "MetricTables", "PredictionWriter", "RNGStateCheckpoint",
           "SelectionEarlyStopping", "SlurmRequeue"]
