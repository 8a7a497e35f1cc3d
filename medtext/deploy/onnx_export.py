"""The ONNX graph of a classifier: encoder + head, ``input_ids``/``attention_mask`` (batch, tokens) with
dynamic batch and sequence axes -> uncalibrated ``logits`` (batch, labels).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import nn


log = logging.getLogger(__name__)
INPUT_NAMES = ("input_ids", "attention_mask")
OPSET = 18


class ExportedClassifier(nn.Module):
    """A ``TextClassifier`` (eval mode) as ``(input_ids, attention_mask) -> logits`` on 2-D input.

    The label-description states of heads that read them are baked in as constants (``reencode``
    checkpoints: encoded once, at export, with the trained encoder, as the model does in eval mode)."""

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


def export_graph(model, path: Path, example_length: int = 16) -> dict[str, int]:
    """Write ``model`` (a ``TextClassifier``) as one self-contained ONNX file at ``path``, with ONNX Runtime's
    fused transformer kernels where they apply; the fusions applied (``fuse_for_onnxruntime``).

    ``torch.export`` (``dynamo=True``) for the MLP and label-attention heads; the BiLSTM head
    (``exports_with_dynamo = False``) through the TorchScript exporter, which turns its packed sequences
    into one ONNX ``LSTM`` with ``sequence_lens``. ``torch.export`` decomposes the LSTM into a loop over
    a fixed number of steps (no dynamic sequence axis), and the TorchScript exporter fixes the batch size
    of the label-attention head's reshapes, so neither exporter serves every head."""
    graph = ExportedClassifier(model).eval()
    inputs = example_inputs(model.encoder.config.vocab_size, max(example_length, 2))
    if not getattr(model.head, "exports_with_dynamo", True):  # a head's own declaration (medtext/heads/base.py)
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
    # torch.export graphs only (the rewriter's patterns): the BiLSTM head's TorchScript graph stays as exported
    # (no attention to fuse in it; its layer-norm rewrite moved the logits by ~1e-3 on the tiny test encoder)
    if options["dynamo"]:
        check = example_inputs(model.encoder.config.vocab_size, max(example_length, 2) + 3, batch=3)
        with torch.no_grad():
            expected = graph(*check).numpy()
        return fuse_for_onnxruntime(path, {name: x.numpy() for name, x in zip(INPUT_NAMES, check)}, expected)
    return {}


@contextlib.contextmanager
def quiet(logger_name: str):
    """``logger_name``'s records below ERROR dropped (the rewriter's "skipping constant folding" notes)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def onnxruntime_rewriters() -> list:
    """Graph rewriters to try in turn, each ``ir.Model -> (ir.Model, fusion counts)``: onnxscript's
    ``optimize_for_ort``, then its transformer fusions alone. The second leaves out the MatMul+Transpose
    rewrites, which in onnxscript 0.7 break the label-attention and BiLSTM heads' batched products
    (ONNX Runtime applies its own such fusions when it loads the graph)."""
    from onnxscript.rewriter import ort_fusions

    rewriters = [ort_fusions.optimize_for_ort]
    try:
        from onnxscript.rewriter.ort_fusions._core import fuse_xformers
        rewriters.append(fuse_xformers)
    except ImportError:  # a newer onnxscript without it: optimize_for_ort only
        pass
    return rewriters


def fuse_for_onnxruntime(path: Path, inputs: dict, expected, atol: float = 1e-4) -> dict[str, int]:
    """Rewrite the graph at ``path`` with ONNX Runtime's fused kernels (``onnxruntime_rewriters``, the first
    whose graph ONNX Runtime runs on ``inputs`` to the ``expected`` logits within ``atol``); the fusions
    applied (``{"attention": 6, ...}``), or ``{}`` when the graph is left as exported (one warning line).

    The kernels: one fused ``Attention`` per layer, ``SkipLayerNormalization``, ``BiasGelu``. For the
    Medical Abstracts MiniLM checkpoint, timed alone, fp32 and int8 both ran about 1.8x faster, with the
    same logits (BENCHMARKS.md)."""
    import numpy as np
    import onnxruntime as ort
    from onnxscript import ir

    fused_path, errors = path.with_name(f".fused-{path.name}"), []
    for rewrite in onnxruntime_rewriters():
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), quiet("onnxscript"):
                warnings.simplefilter("ignore")
                fused, counts = rewrite(ir.load(str(path)))
                ir.save(fused, str(fused_path))
            session = ort.InferenceSession(str(fused_path), providers=["CPUExecutionProvider"])
            difference = float(np.abs(session.run(["logits"], inputs)[0] - expected).max())
            if not difference <= atol:
                raise ValueError(f"its logits differ from PyTorch's by {difference:.1e}")
        except Exception as err:  # an optimisation only: the plain graph computes the same logits
            fused_path.unlink(missing_ok=True)
            errors.append(" ".join(str(err).split())[:120])
            continue
        fused_path.replace(path)
        return {name: count for name, count in counts.items() if count}
    log.warning("%s: kept without ONNX Runtime's fused kernels (%s)", path.name, "; ".join(errors))
    return {}


class PreprocessingHint(logging.Filter):
    """Drops the quantiser's "consider pre-processing" hint (for static quantisation of vision models)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider to run pre-processing")


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantisation (weights int8 with one scale per output channel, activations quantised at
    run time) of ``source``. Per channel, not per tensor: on the Medical Abstracts MiniLM checkpoint it kept
    99.0% of the fp32 labels (per tensor: 96.2%; BENCHMARKS.md)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # DefaultTensorType: shape inference types no outputs of the fused (com.microsoft) kernels
    root, hint = logging.getLogger(), PreprocessingHint()
    root.addFilter(hint)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.removeFilter(hint)
    return target
