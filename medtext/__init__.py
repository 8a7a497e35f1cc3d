"""medtext: fine-tune pretrained biomedical encoders to classify medical abstracts."""

from typing import TYPE_CHECKING

from .errors import DataError, EncoderLoadError, MedtextError
from .lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .classifier import TextClassifier
    from .config_logging import ScrubbedWandbLogger

_EXPORTS = {"TextClassifier": ".classifier", "ScrubbedWandbLogger": ".config_logging"}  # class paths configs name
__all__ = [*_EXPORTS, "DataError", "EncoderLoadError", "MedtextError"]
__version__ = "0.1.0"
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
