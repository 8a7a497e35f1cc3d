"""LightningDataModules for abstract classification, chosen in YAML by ``class_path``."""

from .abstracts import AbstractsDataModule
from .hoc import HoCDataModule
from .medical_abstracts import MedicalAbstractsDataModule
from .synthetic import SyntheticAbstractsDataModule
from .unlabeled import UnlabeledTextDataModule

__all__ = ["AbstractsDataModule", "HoCDataModule", "MedicalAbstractsDataModule", "SyntheticAbstractsDataModule",
           "UnlabeledTextDataModule"]
