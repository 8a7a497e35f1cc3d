"""The ONNX graph of a classifier: encoder + head, ``input_ids``/``attention_mask`` (batch, tokens) with
dynamic batch and sequence axes -> uncalibrated ``logits`` (batch, labels).

The label-description states of heads that read them are baked in as constants (``reencode``
checkpoints: encoded once, at export, with the trained encoder, as the model does in eval mode).
Exporters: ``torch.export`` (``dynamo=True``) for the MLP and label-attention heads. The BiLSTM
head goes through the TorchScript exporter (``dynamo=False``), which turns its packed sequences into
one ONNX ``LSTM`` with ``sequence_lens``; ``torch.export`` decomposes the LSTM into a loop over a
fixed number of steps (no dynamic sequence axis), and the TorchScript exporter fixes the batch size of
the label-attention head's reshapes, so neither exporter serves every head.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from .heads import BiLSTMCrossAttentionHead

INPUT_NAMES = ("input_ids", "attention_mask")
OPSET = 18


class ExportedClassifier(nn.Module):
    """A ``TextClassifier`` (eval mode) as ``(input_ids, attention_mask) -> logits`` on 2-D input."""

    def __init__(self, model):
        super().__init__()
        model = model.eval()
        self.encoder = model.encoder
        self.head = model.head
        with torch.no_grad():
            label_states = model.label_states()
        self.register_buffer("label_states", None if label_states is None else label_states.detach().clone())

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(states, attention_mask, self.label_states)


def example_inputs(vocab_size: int, length: int, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """A traced example: ``batch`` rows of ``length`` tokens, the last one half padding (neither
    axis 0 or 1, which ``torch.export`` would specialise)."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, vocab_size, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[-1, length // 2:] = 0
    return ids, mask


def export_graph(model, path: Path, example_length: int = 16) -> Path:
    """Write ``model`` (a ``TextClassifier``) as one self-contained ONNX file at ``path``."""
    graph = ExportedClassifier(model).eval()
    inputs = example_inputs(model.encoder.config.vocab_size, max(example_length, 2))
    if isinstance(model.head, BiLSTMCrossAttentionHead):
        options = {"dynamo": False, "dynamic_axes": {**{name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES},
                                                     "logits": {0: "batch"}}}
    else:
        batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
        options = {"dynamo": True, "dynamic_shapes": {name: {0: batch, 1: sequence} for name in INPUT_NAMES},
                   "external_data": False}
    with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, inputs, str(path), input_names=list(INPUT_NAMES), output_names=["logits"],
                          opset_version=OPSET, verbose=False, **options)
    return path


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantisation (weights int8 with one scale per output channel, activations quantised at
    run time) of ``source``. Per channel, not per tensor: on the Medical Abstracts MiniLM checkpoint it kept
    99.0% of the fp32 labels (per tensor: 96.2%; BENCHMARKS.md)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
    return target
