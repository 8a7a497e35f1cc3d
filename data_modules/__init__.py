"""LightningDataModules for abstract classification, chosen in YAML by ``class_path``.

Each class is imported on first use (``medtext/core/lazy_exports.py``): reading files and tokenizing
(``data_modules.readers``, ``data_modules.token_cache``) does not import Lightning.
"""

from typing import TYPE_CHECKING

from medtext.core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .abstracts import AbstractsDataModule
    from .hoc import HoCDataModule
    from .medical_abstracts import MedicalAbstractsDataModule
    from .synthetic import SyntheticAbstractsDataModule
    from .unlabeled import UnlabeledTextDataModule

_EXPORTS = {"AbstractsDataModule": ".abstracts", "HoCDataModule": ".hoc",
            "MedicalAbstractsDataModule": ".medical_abstracts", "SyntheticAbstractsDataModule": ".synthetic",
            "UnlabeledTextDataModule": ".unlabeled"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
