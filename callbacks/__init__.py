"""Lightning callbacks of medtext: reports and prediction files."""

from .classification_report import ClassificationReport
from .prediction_writer import PredictionWriter

__all__ = ["ClassificationReport", "PredictionWriter"]
