"""medtext: fine-tune pretrained biomedical encoders to classify medical abstracts."""

from .classifier import TextClassifier
from .errors import DataError, EncoderLoadError, MedtextError

__all__ = ["TextClassifier", "DataError", "EncoderLoadError", "MedtextError"]
__version__ = "0.1.0"
