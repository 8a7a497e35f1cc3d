"""medtext: fine-tune pretrained biomedical encoders to classify medical abstracts."""

from typing import TYPE_CHECKING

from medtext.core.errors import DataError, EncoderLoadError, MedtextError
from medtext.core.lazy_exports import lazy_exports
from medtext.core.old_module_paths import install as _keep_old_module_paths
from medtext.core.version import VERSION

if TYPE_CHECKING:
    from medtext.model.classifier import TextClassifier
    from medtext.runtime.config_logging import ScrubbedWandbLogger

_EXPORTS = {"TextClassifier": ".model.classifier", "ScrubbedWandbLogger": ".runtime.config_logging"}  # class paths configs name
__all__ = [*_EXPORTS, "DataError", "EncoderLoadError", "MedtextError"]
__version__ = VERSION
_keep_old_module_paths()  # configs and checkpoints that name medtext.classifier.TextClassifier ...
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
