"""``validate``/``test``/``predict --ckpt_path A.ckpt --ensemble B.ckpt C.ckpt``: an ensemble of checkpoints.

The main model (``--ckpt_path``) stays the LightningModule Lightning restores and runs; its logits
become those of the mean of every member's probabilities (the main model's included).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from pytorch_lightning.utilities import rank_zero_info
from torch import nn

from medtext.model.calibration import Logits
from medtext.runtime.checkpoint import CheckpointSettings, load_model, read_checkpoint
from medtext.core.errors import DataError, MedtextError

ENSEMBLE_HELP = ("validate, test, predict: checkpoints whose class probabilities are averaged with "
                 "--ckpt_path's (same task and class names; classes are matched by name)")
KINDS = {True: "multi-label", False: "single-label"}


def add_ensemble_argument(parser) -> None:
    """``--ensemble B.ckpt [C.ckpt ...]`` (default: none); only validate, test and predict take one."""
    parser.add_argument("--ensemble", type=str, nargs="+", default=[], metavar="CKPT", help=ENSEMBLE_HELP)


def member_order(path: str | Path, main: CheckpointSettings) -> list[int]:
    """For each of the main checkpoint's classes, its column in the member ``path``'s probabilities
    (classes in another order are mapped by name); a member of another task or with other class names
    stops with one line."""
    if not Path(path).is_file():
        raise DataError(f"--ensemble {path}: no such checkpoint file")
    member = read_checkpoint(path)
    if member.multi_label != main.multi_label:
        raise DataError(f"--ensemble {path}: the member is {KINDS[member.multi_label]} but --ckpt_path is "
                        f"{KINDS[main.multi_label]}")
    names, wanted = member.label_names, main.label_names
    if sorted(names) != sorted(wanted) or len(set(names)) != len(names):
        missing = [n for n in wanted if n not in names]
        extra = [n for n in names if n not in wanted]
        raise DataError(f"--ensemble {path}: the member's classes are not --ckpt_path's: missing {missing}, "
                        f"extra {extra}")
    return [names.index(name) for name in wanted]


def check_members(paths: Sequence[str | Path], main: CheckpointSettings | None) -> list[list[int]]:
    """The column order of each member (checked before any data or weights are read)."""
    if paths and main is None:
        raise MedtextError("--ensemble needs --ckpt_path FILE (the main checkpoint whose classes are the truth)")
    return [member_order(path, main) for path in paths]


class EnsembleClassifier(nn.Module):
    """The members of an ensemble and how their probabilities are averaged with the main model's.

    Called with the main model's :class:`~medtext.model.calibration.Logits` of a batch, it returns the
    ensemble's: the logits of the mean probabilities, and of the mean of each model's own calibrated
    probabilities (its own temperatures). Members run without gradients on the batch's device.

    So the loss, the metrics, the decision thresholds (the main checkpoint's) and the prediction writer
    work unchanged."""

    def __init__(self, members: Sequence[nn.Module], orders: Sequence[list[int]]):
        super().__init__()
        self.members = nn.ModuleList(members).requires_grad_(False).eval()
        self.orders = [torch.tensor(order, dtype=torch.long) for order in orders]  # main class -> member column
        self.task = members[0].task  # every member's task is the main model's (check_members)

    def forward(self, main: Logits, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Logits:
        self.to(input_ids.device)  # a no-op once there
        with torch.no_grad():
            member_raw = [member(input_ids, attention_mask).float() for member in self.members]
        columns = [slice(None), *(order.to(input_ids.device) for order in self.orders)]  # in the main model's order
        raw = [main.raw.float(), *member_raw]
        scaled = [main.scaled.float(), *(member.calibrator(z, True) for member, z in zip(self.members, member_raw))]
        return Logits(*(self._mean_logits([self.task.probabilities(z)[:, c] for z, c in zip(zs, columns)])
                        for zs in (raw, scaled)))

    def _mean_logits(self, probabilities: list[torch.Tensor]) -> torch.Tensor:
        """Single-label ``log(mean softmax)``, multi-label ``logit(mean sigmoid)``."""
        mean = sum(probabilities) / len(probabilities)
        return torch.logit(mean, eps=1e-6) if self.task.multi_label else mean.clamp_min(torch.finfo(mean.dtype).tiny).log()


def attach_ensemble(model, paths: Sequence[str | Path], orders: Sequence[list[int]]) -> None:
    """Make ``model`` (a :class:`~medtext.TextClassifier`) average its probabilities with those of the
    checkpoints ``paths`` (``orders``: from :func:`check_members`)."""
    if not paths:
        return
    members = [load_model(path) for path in paths]
    model.use_ensemble(EnsembleClassifier(members, orders))
    names = ", ".join(str(path) for path in paths)
    rank_zero_info(f"ensemble: averaging the probabilities of the --ckpt_path model and {names}")
