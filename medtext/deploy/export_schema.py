"""The settings of an ONNX export (``medtext_export.json``), checked each time the export is loaded.

A bad value is one line naming the file and the key.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

from medtext.core.errors import MedtextError

SETTINGS_FILE = "medtext_export.json"
MODEL_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
FORMAT_VERSIONS = (1,)  # the versions this medtext reads (medtext/commands/export.py writes FORMAT_VERSION)
CHECKSUM_KEY = "settings_sha256"
INPUTS, OUTPUTS = ["input_ids", "attention_mask"], ["logits"]  # the names onnx_predict.py feeds and reads
CALIBRATIONS = ("temperature", "none")  # medtext/model/calibration.py's; not imported, it loads torchmetrics
WINDOW_POOLINGS = ("mean", "max")  # medtext/model/windows.py's; not imported, it loads torch
MAX_TOKENS = 1 << 16  # above common encoders' positions (512 to 8192); bounds the probe run of check_graph
REEXPORT = "export the checkpoint again (medtext export --export.format onnx)"


def settings_checksum(settings: dict) -> str:
    """sha256 of ``settings`` without its checksum key, as canonical JSON (a file's spacing and key
    order do not count; every value does)."""
    rest = {key: value for key, value in settings.items() if key != CHECKSUM_KEY}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def with_checksum(settings: dict) -> dict:
    """``settings`` with their ``settings_sha256``, computed on the values as a load reads them back."""
    settings = json.loads(json.dumps(settings))  # tuples become lists, numpy scalars fail here, not at load
    return {**settings, CHECKSUM_KEY: settings_checksum(settings)}


class Checker:
    """Raises one line naming the settings file and the key."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, problem: str):
        raise MedtextError(f"{self.path}: {key} {problem}")

    def get(self, table: dict, key: str, prefix: str = ""):
        if key not in table:
            self.fail(prefix + key, f"is missing; {REEXPORT}")
        return table[key]

    def choice(self, table: dict, key: str, choices, prefix: str = ""):
        value = self.get(table, key, prefix)
        if value not in choices:
            self.fail(prefix + key, f"must be one of {', '.join(map(json.dumps, choices))}, not {json.dumps(value)}")
        return value

    def whole(self, table: dict, key: str, least: int, most: int = sys.maxsize, prefix: str = "",
              optional: bool = False):
        value = self.get(table, key, prefix)
        if optional and value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
            bound = f">= {least}" if most == sys.maxsize else f"from {least} to {most}"
            self.fail(prefix + key, f"must be a whole number {bound}, not {json.dumps(value)}")
        return value

    def text(self, table: dict, key: str, prefix: str = "", optional: bool = False):
        value = self.get(table, key, prefix)
        if not (isinstance(value, str) and value) and not (optional and value is None):
            kind = "a non-empty string" + (" or null" if optional else "")
            self.fail(prefix + key, f"must be {kind}, not {json.dumps(value)}")
        return value

    def numbers(self, table: dict, key: str, count: int, why: str, accept, bound: str) -> None:
        values = self.get(table, key)
        if not isinstance(values, list):
            self.fail(key, f"must be a list of {count} numbers ({why}), not {json.dumps(values)}")
        if len(values) != count:
            self.fail(key, f"has {len(values)} value{'s' * (len(values) != 1)}; it needs {count} ({why})")
        for i, value in enumerate(values):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and math.isfinite(value) and accept(value)):
                self.fail(f"{key}[{i}]", f"must be a finite number {bound}, not {json.dumps(value)}")


def check_settings(settings, path: Path) -> dict:
    """``settings`` (read from ``path``) if every key is valid, else one line (:func:`verify_checksum` then
    tells whether they are the exported ones, after :func:`check_graph`, whose lines say more).

    Every key's type and range: a format version this medtext reads, unique label names, temperatures
    finite and > 0 (one, or one per label when multi-label), thresholds in [0, 1] (one per label), the
    model files and tensor names medtext writes, and the tokenization settings."""
    from data_modules.long_text import LONG_TEXTS
    from data_modules.readers import FORMATS
    from data_modules.token_cache import TRUNCATIONS

    check = Checker(path)
    if not isinstance(settings, dict):
        raise MedtextError(f"{path}: must hold a JSON object of export settings; {REEXPORT}")
    version = check.get(settings, "format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version not in FORMAT_VERSIONS:
        check.fail("format_version", f"{json.dumps(version)} is not one this medtext reads "
                                     f"({', '.join(map(str, FORMAT_VERSIONS))}); upgrade medtext or {REEXPORT}")
    labels = check.get(settings, "label_names")
    if not isinstance(labels, list) or not labels or not all(isinstance(n, str) and n for n in labels):
        check.fail("label_names", "must be a non-empty list of non-empty strings (in the order of the logits)")
    if len(set(labels)) != len(labels):
        check.fail("label_names", f"has {sorted({n for n in labels if labels.count(n) > 1})} more than once")
    multi_label = check.get(settings, "multi_label")
    if not isinstance(multi_label, bool):
        check.fail("multi_label", f"must be true or false, not {json.dumps(multi_label)}")
    # calibration writes one temperature per label multi-label, one for all single-label
    count, why = (len(labels), "one per label, multi_label true") if multi_label else (1, "multi_label false")
    check.numbers(settings, "temperature", count, why, lambda t: t > 0, "> 0")
    check.numbers(settings, "thresholds", len(labels), "one per label", lambda t: 0 <= t <= 1, "in [0, 1]")
    check.choice(settings, "calibration", CALIBRATIONS)
    check.text(settings, "encoder_name", optional=True)
    head = check.get(settings, "head")
    if not isinstance(head, (dict, str, type(None))):  # as the checkpoint names its head
        check.fail("head", f"must be an object, a class path or null, not {json.dumps(head)}")
    models = check.get(settings, "models")
    if not (isinstance(models, dict) and "fp32" in models and all(MODEL_FILES.get(k) == v for k, v in models.items())):
        check.fail("models", f"must be {json.dumps({'fp32': MODEL_FILES['fp32']})} or (with int8) "
                             f"{json.dumps(MODEL_FILES)}, not {json.dumps(models)}")
    for key, names in (("inputs", INPUTS), ("outputs", OUTPUTS)):
        if check.get(settings, key) != names:
            check.fail(key, f"must be {json.dumps(names)} (the graph's tensors), not {json.dumps(settings[key])}")
    data = check.get(settings, "data")
    if not isinstance(data, dict):
        check.fail("data", "must be an object (how the checkpoint's data module tokenized)")
    check.text(data, "text_column", "data.")
    check.text(data, "id_column", "data.", optional=True)
    if check.get(data, "file_format", "data.") is not None:
        check.choice(data, "file_format", sorted(set(FORMATS.values())), "data.")
    max_length = check.whole(data, "max_length", 2, MAX_TOKENS, "data.")
    check.choice(data, "truncation", TRUNCATIONS, "data.")
    check.whole(data, "head_tokens", 0, prefix="data.")
    windows = check.choice(data, "long_text", LONG_TEXTS, "data.") == "windows"
    # with windows, each window must add a token the previous one did not have: a stride below the window
    check.whole(data, "window_stride", 0, max_length - 1 if windows else sys.maxsize, "data.", optional=not windows)
    check.whole(data, "max_windows", 1, prefix="data.")
    check.choice(data, "window_pooling", WINDOW_POOLINGS, "data.")
    return settings


def verify_checksum(settings: dict, path: Path) -> None:
    """One line if ``settings_sha256`` does not match the settings; a warning line if there is none (an
    export written before the checksum existed).

    It refuses values that are valid but not the exported ones, such as reordered ``label_names``; it
    detects edits, not someone who recomputes the hash."""
    recorded = settings.get(CHECKSUM_KEY)
    if recorded is None:
        print(f"medtext: warning: {path} has no {CHECKSUM_KEY} (an export from before medtext recorded one): "
              f"its values are checked, an edit of them cannot be detected; {REEXPORT} to add it", file=sys.stderr)
        return
    if not (isinstance(recorded, str) and re.fullmatch(r"[0-9a-f]{64}", recorded)):
        Checker(path).fail(CHECKSUM_KEY, f"must be 64 lowercase hex digits; {REEXPORT}")
    if recorded != settings_checksum(settings):
        raise MedtextError(f"{path} was changed after export ({CHECKSUM_KEY} does not match its settings); "
                           f"{REEXPORT} instead of editing it")


def check_graph_file(graph: Path, folder: Path) -> None:
    """One line if ``graph`` is a symlink that leads out of the export folder ``folder``: the folder's
    settings and checksum describe its own graph, not a file elsewhere that can change under it."""
    if graph.is_symlink() and not graph.resolve().is_relative_to(folder.resolve()):
        raise MedtextError(f"{graph}: a symlink to {graph.resolve()}, outside the export folder; copy the "
                           "graph into the folder (or export again) instead of linking it")


def brief(err: Exception) -> str:
    return " ".join(str(err).split())[:160]


def check_graph(session, settings: dict, path: Path, graph: Path, pad_id: int) -> None:
    """Run ``session`` (``graph``'s) once on a few tokens and once on ``data.max_length`` tokens: one line
    if the graph does not run at all, if ``max_length`` is more than it takes (the encoder's positions),
    or if it outputs another number of logits than ``label_names`` has."""
    import onnxruntime as ort

    max_length, labels = settings["data"]["max_length"], len(settings["label_names"])
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4  # a failed run is reported below in one line, not also in ONNX Runtime's log
    for length in sorted({min(max_length, 8), max_length}):
        ids = np.full((1, length), pad_id, dtype=np.int64)
        try:
            logits = session.run(OUTPUTS, {"input_ids": ids, "attention_mask": np.ones_like(ids)}, quiet)[0]
        except Exception as err:  # noqa: BLE001 - ONNX Runtime raises its own exception types
            if length < max_length or max_length <= 8:
                raise MedtextError(f"{graph}: ONNX Runtime cannot run it ({brief(err)}); {REEXPORT}") from None
            raise MedtextError(f"{path}: data.max_length {max_length} is more tokens than {graph.name} takes "
                               f"(the encoder's positions; ONNX Runtime: {brief(err)})") from None
        if logits.shape[-1] != labels:
            raise MedtextError(f"{path}: label_names has {labels} labels but {graph.name} outputs "
                               f"{logits.shape[-1]} logits; {REEXPORT}")
