"""LightningDataModules for abstract classification, chosen in YAML by ``class_path``."""

from .abstracts import AbstractsDataModule
from .demo import SyntheticAbstractsDataModule
from .hoc import HoCDataModule
from .medical_abstracts import MedicalAbstractsDataModule

__all__ = ["AbstractsDataModule", "HoCDataModule", "MedicalAbstractsDataModule", "SyntheticAbstractsDataModule"]
