"""Baselines that need no fine-tuning, for ``python -m medtext baseline`` (:mod:`medtext.commands.baseline`).

Each method is a function ``run(data: BaselineData, options: BaselineOptions) -> BaselineResult``
registered in :data:`METHODS`; the command turns its result into the same report files as ``medtext test``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np


@dataclass
class BaselineData:
    """One task's splits as texts and labels (class ids ``(n,)``; multi-label 0/1 ``(n, labels)``)."""

    label_names: list[str]
    multi_label: bool
    descriptions: list[str]  # one per label, as the label-attention head reads them
    train_texts: list[str]
    train_labels: np.ndarray
    val_texts: list[str]
    val_labels: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray


@dataclass
class BaselineOptions:
    """``--baseline.*``: every method's settings (each reads the ones it needs).

    Args:
        method: tfidf, embedding_probe, zero_shot_similarity or zero_shot_entailment.
        encoder_name: the embedding methods' encoder (default: the config's model.encoder_name).
        max_length: tokens per abstract for the embedding and entailment methods.
        batch_size: abstracts (entailment: abstract-label pairs) per forward pass.
        c_grid: logistic regression inverse regularisation strengths tried; validation picks one.
        nli_model: zero_shot_entailment: a hub id or folder of an NLI AutoModelForSequenceClassification.
        hypothesis_template: zero_shot_entailment: the hypothesis, {} replaced by the label.
        hypothesis_text: zero_shot_entailment: fill the template with the label's name or description.
        cache_dir: the embeddings cache (default: medtext's cache root, embeddings/).
        seed: seed of the logistic regressions.
    """

    method: str = "tfidf"
    encoder_name: Optional[str] = None
    max_length: int = 256
    batch_size: int = 32
    c_grid: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0, 100.0])
    nli_model: Optional[str] = None
    hypothesis_template: str = "This abstract is about {}."
    hypothesis_text: str = "name"
    cache_dir: Optional[str] = None
    seed: int = 42


@dataclass
class BaselineResult:
    """Test-set output: per-abstract probabilities (rows sum to 1 single-label; per label otherwise),
    the per-label decision thresholds (multi-label), and what validation chose, with its score."""

    probabilities: np.ndarray
    thresholds: Optional[np.ndarray] = None
    chosen: dict = field(default_factory=dict)


METHODS = {  # method: "module:function" (imported when used: scikit-learn is an optional extra)
    "tfidf": "medtext.baselines.tfidf:run",
    "embedding_probe": "medtext.baselines.embeddings:run_probe",
    "zero_shot_similarity": "medtext.baselines.embeddings:run_similarity",
    "zero_shot_entailment": "medtext.baselines.entailment:run",
}


def method_function(name: str) -> Callable[[BaselineData, BaselineOptions], BaselineResult]:
    """The function of method ``name``. It may fit on ``data.train_*``, chooses whatever it chooses
    (regularisation, thresholds, a probability scale) on ``data.val_*`` only, and scores ``data.test_texts``."""
    if name not in METHODS:
        from medtext.core.errors import MedtextError

        raise MedtextError(f"unknown baseline method {name!r}; the methods are {', '.join(METHODS)}")
    module, _, function = METHODS[name].partition(":")
    return getattr(importlib.import_module(module), function)
