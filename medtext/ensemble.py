"""``validate``/``test``/``predict --ckpt_path A.ckpt --ensemble B.ckpt C.ckpt``: an ensemble of checkpoints.

The main model (``--ckpt_path``) stays the LightningModule Lightning restores and runs; its
``forward`` returns logits whose probabilities are the mean of every member's (the main model
included): single-label ``log(mean softmax)``, multi-label ``logit(mean sigmoid)``; calibrated
(``medtext/calibration.py``), the mean of each member's own calibrated probabilities. So the loss,
the metrics, the decision thresholds (the main checkpoint's) and the prediction writer work
unchanged. Every member must have the main checkpoint's task and class names; classes in another
order are mapped by name onto the main checkpoint's order.

The members are kept out of the main model's ``state_dict`` (Lightning restores the main
checkpoint strictly), follow its device at each batch and run without gradients.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Sequence

import torch
from pytorch_lightning.utilities import rank_zero_info
from torch import nn

from .checkpoint import CheckpointSettings, load_model, read_checkpoint
from .errors import DataError, MedtextError

ENSEMBLE_HELP = ("validate, test, predict: checkpoints whose class probabilities are averaged with "
                 "--ckpt_path's (same task and class names; classes are matched by name)")
KINDS = {True: "multi-label", False: "single-label"}


def add_ensemble_argument(parser) -> None:
    """``--ensemble B.ckpt [C.ckpt ...]`` (default: none); only validate, test and predict take one."""
    parser.add_argument("--ensemble", type=str, nargs="+", default=[], metavar="CKPT", help=ENSEMBLE_HELP)


def member_order(path: str | Path, main: CheckpointSettings) -> list[int]:
    """For each of the main checkpoint's classes, its column in the member ``path``'s probabilities;
    a member of another task or with other class names stops with one line."""
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


def load_members(paths: Sequence[str | Path], orders: Sequence[list[int]]) -> list[tuple[nn.Module, torch.Tensor]]:

    members = []
    for path, order in zip(paths, orders):
        model = load_model(path)
        model.requires_grad_(False)
        members.append((model, torch.tensor(order, dtype=torch.long)))
    return members


def ensemble_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The main model's logits, replaced by those of the members' mean probabilities; they carry, as
    ``calibrated_logits``, those of the mean of each member's calibrated probabilities (its own
    temperatures), which the main model's calibrator uses instead of dividing by its temperatures."""
    logits = type(self).forward(self, input_ids, attention_mask).float()
    members = [(logits, None, self)]
    with torch.no_grad():
        for member, order in self._ensemble_members:
            member.to(input_ids.device)  # a no-op once there
            members.append((member(input_ids, attention_mask).float(), order.to(input_ids.device), member))
    mean_logits = []
    for calibrated in (False, True):
        total = sum(model.task.probabilities(model.calibrator(z, calibrated) if calibrated else z)[
            :, slice(None) if order is None else order] for z, order, model in members)
        mean = total / len(members)
        mean_logits.append(torch.logit(mean, eps=1e-6) if self.task.multi_label
                           else mean.clamp_min(torch.finfo(mean.dtype).tiny).log())
    mean_logits[0].calibrated_logits = mean_logits[1]
    return mean_logits[0]


def attach_ensemble(model: nn.Module, paths: Sequence[str | Path], orders: Sequence[list[int]]) -> None:
    """Make ``model``'s forward average the probabilities of ``model`` and the checkpoints ``paths``.
    The members sit in a plain list: not submodules, so not in ``state_dict`` nor moved by ``.to``."""
    if not paths:
        return
    model._ensemble_members = load_members(paths, orders)
    model.forward = types.MethodType(ensemble_forward, model)
    names = ", ".join(str(path) for path in paths)
    rank_zero_info(f"ensemble: averaging the probabilities of the --ckpt_path model and {names}")
