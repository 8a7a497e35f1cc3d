"""Seeded, stratified train/validation splits.

>>> train, val = stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1]), 0.5, seed=0)
>>> sorted(np.bincount(np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])[val]).tolist())
[2, 3]
"""

from __future__ import annotations

import numpy as np


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices so every class keeps about ``val_fraction`` of its rows in validation.

    Multi-label rows (2-D ``labels``) are stratified by their label combination. Every class with
    at least two rows keeps one in each part.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    keys = labels if labels.ndim == 1 else np.unique(labels, axis=0, return_inverse=True)[1].reshape(-1)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for key in np.unique(keys):
        rows = rng.permutation(np.flatnonzero(keys == key))
        n_val = int(round(len(rows) * val_fraction))
        if len(rows) >= 2:
            n_val = min(max(n_val, 1), len(rows) - 1)
        val.append(rows[:n_val])
        train.append(rows[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
