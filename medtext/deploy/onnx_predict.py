"""A folder written by ``medtext export --export.format onnx``, run with ONNX Runtime: its settings, its
tokenization and its graph (``ExportedModel``). ``medtext/deploy/onnx_corpus.py`` is the command.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from medtext.core.errors import MedtextError
from medtext.deploy.export_schema import MODEL_FILES, SETTINGS_FILE, check_graph, check_graph_file, check_settings, verify_checksum

INSTALL_HINT = 'pip install "medtext[onnx]" (onnx, onnxscript, onnxruntime)'


def onnxruntime():
    """The ``onnxruntime`` module, or one line naming the install extra."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise MedtextError(f"ONNX export and predict need onnxruntime: {INSTALL_HINT}") from None
    return ort


def read_settings(model_dir: str | Path) -> dict:
    """The export's settings (``medtext_export.json``), checked (``medtext/deploy/export_schema.py``); one line if
    ``model_dir`` is not an export or a setting is not valid."""
    path = Path(model_dir) / SETTINGS_FILE
    if not Path(model_dir).is_dir():
        raise MedtextError(f"{model_dir}: model_dir not found (a folder written by medtext export --export.format onnx)")
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MedtextError(f"{model_dir}: not an ONNX export (no {SETTINGS_FILE}; write one with "
                           "medtext export --export.format onnx)") from None
    except (OSError, ValueError) as err:
        raise MedtextError(f"{path}: cannot read: {' '.join(str(err).split())}") from None
    return check_settings(settings, path)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(-1, keepdims=True))
    return (shifted / shifted.sum(-1, keepdims=True)).astype(np.float32)


def pool_windows(per_window: np.ndarray, windows: np.ndarray, how: str) -> np.ndarray:
    """Text ``i``'s logits: the ``mean`` or ``max`` of rows ``windows[i]`` to ``windows[i + 1]`` (at least one)."""
    if how == "max":
        return np.maximum.reduceat(per_window, windows[:-1], axis=0)
    return (np.add.reduceat(per_window, windows[:-1], axis=0) / np.diff(windows)[:, None]).astype(np.float32)


class ExportedModel:
    """An exported folder: its tokenizer, settings and an ONNX Runtime session (``int8``: the quantised graph).

    The folder is checked as it loads (``medtext/deploy/export_schema.py``): its settings and their checksum,
    and its graph (run on max_length tokens; a symlink out of the folder is refused)."""

    def __init__(self, model_dir: str | Path, int8: bool = False, threads: Optional[int] = None):
        ort = onnxruntime()
        self.folder, self.settings = Path(model_dir), read_settings(model_dir)
        graph = self.folder / MODEL_FILES["int8" if int8 else "fp32"]
        check_graph_file(graph, self.folder)
        if not graph.is_file():
            hint = " (export with --export.quantize int8)" if int8 else ""
            raise MedtextError(f"{model_dir}: no {graph.name}{hint}")
        from medtext.core.encoders import load_tokenizer

        self.tokenizer = load_tokenizer(str(self.folder))
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        check_graph(self.session, self.settings, self.folder / SETTINGS_FILE, graph, self.tokenizer.pad_token_id or 0)
        verify_checksum(self.settings, self.folder / SETTINGS_FILE)

    @property
    def label_names(self) -> list[str]:
        return list(self.settings["label_names"])

    def tokenize(self, texts: Sequence[str]):
        """Token ids as the checkpoint's data module made them (a ``TokenizedTexts``; ``head`` or
        ``head_tail`` truncation, or ``long_text: windows``)."""
        return self.tokenization.encode(self.tokenizer, list(texts), count_truncated=False)

    @functools.cached_property
    def tokenization(self):
        """The data module's :class:`~data_modules.tokenization.TokenizationSpec`, from the export's settings."""
        from data_modules.tokenization import TokenizationSpec

        return TokenizationSpec.from_settings(self.settings["data"], self.tokenizer)

    def sequence_logits(self, sequences: Sequence[np.ndarray], batch_size: int) -> np.ndarray:
        """Logits (sequences, labels) of token id sequences, run in batches of similar length."""
        pad = self.tokenizer.pad_token_id or 0
        lengths = np.array([len(s) for s in sequences])
        order = np.argsort(lengths, kind="stable")
        logits = np.zeros((len(sequences), len(self.label_names)), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            width = int(lengths[rows].max())
            ids = np.full((len(rows), width), pad, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for i, row in enumerate(rows):
                ids[i, :lengths[row]], mask[i, :lengths[row]] = sequences[row], 1
            logits[rows] = self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
        return logits

    def logits(self, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
        """Uncalibrated logits (texts, labels); windowed texts pooled over their windows (as
        ``medtext/model/windows.py`` does)."""
        tokens = self.tokenize(texts)
        if tokens.windows is None:
            return self.sequence_logits([tokens.sequence(j) for j in range(len(tokens))], batch_size)
        per_window = self.sequence_logits([tokens.sequence(j) for j in range(len(tokens.offsets) - 1)], batch_size)
        return pool_windows(per_window, tokens.windows, self.settings["data"]["window_pooling"])

    def decide(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (calibrated unless the checkpoint says ``calibration: none``) and predictions:
        class ids, or (multi-label) 0/1 per label at the thresholds of the calibrated probabilities.
        As ``predict`` does (``medtext/model/calibration.py``): single-label ``softmax(logits / T)``,
        multi-label ``sigmoid(logits / T_l) >= thresholds``."""
        settings = self.settings
        scaled = logits / np.asarray(settings["temperature"], dtype=np.float32)
        applied = settings["calibration"] != "none"
        if settings["multi_label"]:
            decided = sigmoid(scaled)
            predictions = (decided >= np.asarray(settings["thresholds"], dtype=np.float32)).astype(np.int64)
            return (decided if applied else sigmoid(logits)), predictions
        decided = softmax(scaled)
        return (decided if applied else softmax(logits)), decided.argmax(-1)
