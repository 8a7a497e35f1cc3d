"""``python -m medtext predict --model_dir DIR --data.predict_file F``: a folder written by ``medtext export
--export.format onnx`` run with ONNX Runtime, the predictions file as ``predict --ckpt_path`` writes it.

    python -m medtext predict --model_dir exported/ --data.predict_file new.csv --predictions.output_file out.csv
"""

from __future__ import annotations

import functools
import json
import time
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
        return self.tokenization.encode(self.tokenizer, list(texts))

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


def build_parser():
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(prog="medtext predict", allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action=ActionConfigFile, help="these options from a YAML file")
    parser.add_argument("--model_dir", type=str, required=True, help="a folder written by medtext export --export.format onnx")
    parser.add_argument("--data.predict_file", type=str, required=True, help="abstracts to label (CSV, TSV, JSON Lines, Parquet)")
    parser.add_argument("--data.text_column", type=Optional[str], default=None, help="default: the checkpoint's")
    parser.add_argument("--data.id_column", type=Optional[str], default=None, help="default: the checkpoint's, else row numbers")
    parser.add_argument("--data.file_format", type=Optional[str], default=None, help="csv, tsv, jsonl or parquet")
    parser.add_argument("--data.batch_size", type=int, default=16, help="abstracts (windows) per batch")
    parser.add_argument("--data.skip_invalid_rows", type=bool, default=False,
                        help="leave out rows that cannot be classified (an empty text) and write them with a reason")
    parser.add_argument("--predictions.output_file", type=str, default="predictions.csv", help="where to write")
    parser.add_argument("--predictions.keep_columns", type=Optional[str], default=None, help="input columns to copy, a,b")
    parser.add_argument("--predictions.escape_formulas", type=bool, default=True,
                        help="write cells a spreadsheet would run (=..., @..., -x) with a leading '")
    parser.add_argument("--onnx.int8", type=bool, default=False, help="run the int8 graph (export --export.quantize int8)")
    parser.add_argument("--onnx.threads", type=Optional[int], default=None, help="ONNX Runtime intra-op threads")
    return parser


def main(args: Optional[list[str]] = None) -> None:
    """``medtext predict --model_dir DIR --data.predict_file F [--predictions.output_file OUT] [--data.batch_size N]``."""
    from callbacks.report_files import write_predictions_csv
    from data_modules.invalid_rows import invalid_texts, skipped_rows_line
    from data_modules.readers import read_row_ids, read_table, read_texts, require_column

    options = build_parser().parse_args(args)
    if options.data.batch_size < 1:
        raise MedtextError(f"data.batch_size must be >= 1, not {options.data.batch_size}")
    model = ExportedModel(options.model_dir, options.onnx.int8, options.onnx.threads)
    defaults = model.settings["data"]
    path, file_format = options.data.predict_file, options.data.file_format or defaults.get("file_format")
    id_column = options.data.id_column or defaults.get("id_column")
    frame = read_table(path, file_format)
    row_ids = read_row_ids(frame, path, id_column)
    skipping = options.data.skip_invalid_rows
    texts = read_texts(frame, path, options.data.text_column or defaults["text_column"], row_ids if id_column else None,
                       allow_invalid=skipping)
    skipped = invalid_texts(texts) if skipping else {}
    rows = np.array([row for row in range(len(texts)) if row not in skipped], dtype=np.int64)
    if skipped:
        print(skipped_rows_line(path, skipped, len(texts)))
    keep = [c.strip() for c in (options.predictions.keep_columns or "").split(",") if c.strip()]
    kept = {column: require_column(frame, path, column, "kept").tolist() for column in keep}
    began = time.perf_counter()
    logits = model.logits([texts[row] for row in rows], options.data.batch_size)
    if not np.isfinite(logits).all():  # a graph with non-finite weights: no nan probabilities, no class 0
        row = int(rows[np.flatnonzero(~np.isfinite(logits).all(axis=-1))[0]])
        raise MedtextError(f"{options.model_dir}: the model's outputs are not finite (first at {path} row {row + 1}); "
                           "its weights are broken: export the checkpoint again")
    probabilities, predictions = model.decide(logits)
    seconds = time.perf_counter() - began
    write_predictions_csv(Path(options.predictions.output_file), id_column or "row", row_ids, model.label_names,
                          rows, predictions, probabilities, kept=kept,
                          escape_formulas=options.predictions.escape_formulas, skipped=skipped)
    also = f" and {len(skipped)} skipped rows (column skipped: why)" if skipped else ""
    print(f"wrote {len(rows)} predictions{also} to {options.predictions.output_file} "
          f"({len(rows) / max(seconds, 1e-9):.1f} abstracts/s)")
