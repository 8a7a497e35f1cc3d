"""Interchangeable classification heads, chosen in YAML by ``class_path``."""

from .base import ClassificationHead, HeadFactory
from .bilstm_cross_attention import BiLSTMCrossAttentionHead
from .label_attention import LabelAttentionHead
from .mlp import MLPHead

__all__ = ["BiLSTMCrossAttentionHead", "ClassificationHead", "HeadFactory", "LabelAttentionHead", "MLPHead"]
