"""Interchangeable classification heads, chosen in YAML by ``class_path``."""

from .base import ClassificationHead, HeadFactory
from .mlp import MLPHead

__all__ = ["ClassificationHead", "HeadFactory", "MLPHead"]
