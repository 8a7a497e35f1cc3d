"""Save the random number generators' states in checkpoints and restore them on resume.

Lightning restores weights, optimizer, scheduler and loop progress, but not the global RNGs that
dropout draws from; with this callback a run resumed from a mid-epoch checkpoint draws the same
dropout masks as the uninterrupted run.
"""

from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch


class RNGStateCheckpoint(pl.Callback):
    """Adds ``torch``, ``cuda``, ``numpy`` and ``random`` generator states to every checkpoint."""

    @property
    def state_key(self) -> str:
        return "RNGStateCheckpoint"

    def state_dict(self) -> dict:
        """This rank's state; under DDP also every rank's, in ``ranks`` (all ranks save together)."""
        state = self._own_state()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            ranks: list = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(ranks, state)
            state = {**state, "ranks": ranks}
        return state

    @staticmethod
    def _own_state() -> dict:
        kind, keys, position, has_gauss, cached = np.random.get_state()
        return {
            "rank": _rank(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                      "has_gauss": int(has_gauss), "cached": float(cached)},
            "random": random.getstate(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore this rank's own state (under DDP, its entry in ``ranks``)."""
        ranks = state.get("ranks") or []
        if _rank() < len(ranks):
            state = ranks[_rank()]
        if state.get("rank", 0) != _rank():
            # another rank's state: keep this rank's streams distinct but reproducible
            torch.manual_seed(int(state["torch"][:8].view(torch.int64)) + _rank())
            return
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        numpy_state = state["numpy"]
        np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
                             numpy_state["has_gauss"], numpy_state["cached"]))
        version, internal, gauss = state["random"]
        random.setstate((version, tuple(internal), gauss))


def _rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_available() and torch.distributed.is_initialized() else 0
