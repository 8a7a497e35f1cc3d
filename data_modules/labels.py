"""Label sets: raw label values as they appear in a data file, mapped to readable class names.

A label map is an ordered ``{raw value: class name}`` dict; class id ``i`` is the ``i``-th entry.

>>> infer_label_map(["b", "a", "b"])
{'a': 'a', 'b': 'b'}
>>> encode_labels(["2", "1"], {"1": "neoplasms", "2": "digestive"}, "train.csv", "label").tolist()
[1, 0]
>>> encode_labels(["neoplasms", "2.0"], {"1": "neoplasms", "2": "digestive"}, "train.csv", "label").tolist()
[0, 1]
"""

from __future__ import annotations

import json
import re
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from medtext.errors import DataError

from .readers import decode_utf8, read_bytes, read_table


def _natural_key(value: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", value)]


def infer_label_map(values: Iterable[str]) -> dict[str, str]:
    """Every distinct non-empty value, in natural sort order (``2`` before ``10``), named by itself;
    ``1`` and ``1.0`` are one class, ``1``."""
    distinct = sorted({v.strip() for v in values if v.strip()}, key=_natural_key)
    first = {}
    for value in distinct:
        first.setdefault(_integer_form(value), value)
    return {value: value for value in first.values()}


def split_name_description(text: str) -> tuple[str, str | None]:
    """``"Name: description"`` -> ``("Name", "description")``; plain ``"Name"`` -> ``("Name", None)``."""
    name, sep, description = text.partition(": ")
    return (name.strip(), description.strip() or None) if sep else (text.strip(), None)


def load_label_map(path: str | Path) -> dict[str, str]:
    """Read ``{raw value: name}`` from a two-column CSV/TSV (value, name) or a JSON object.

    A value written ``"Name: description"`` (as in HoC's ``labels.json``) names the class ``Name``.
    """
    return {value: split_name_description(text)[0] for value, text in load_label_texts(path).items()}


def load_label_texts(path: str | Path) -> dict[str, str]:
    """The raw ``{key: text}`` pairs of a labels or descriptions file (JSON object or two columns)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            mapping = json.loads(decode_utf8(path, read_bytes(path)))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: invalid JSON: {err}") from None
        if not isinstance(mapping, dict) or not mapping:
            raise DataError(f"{path}: expected a JSON object mapping label values to names")
        return {str(k): str(v) for k, v in mapping.items()}
    frame = read_table(path)
    if frame.shape[1] < 2:
        raise DataError(f"{path}: a labels file needs two columns (label value, label name)")
    mapping: dict[str, str] = {}
    for row, (value, name) in enumerate(zip(frame.iloc[:, 0], frame.iloc[:, 1]), start=1):
        if value == "" or name.strip() == "":
            raise DataError(f"{path}: row {row}: empty label value or name")
        if value in mapping:
            raise DataError(f"{path}: row {row}: label value {value!r} is listed twice")
        mapping[value] = name.strip()
    return mapping


def encode_multi_hot_columns(frame, columns: Sequence[str], path: str | Path) -> np.ndarray:
    """A (rows, labels) 0/1 matrix from one 0/1 column per label; any other value is an error."""
    from .readers import require_column

    matrix = np.zeros((len(frame), len(columns)), dtype=np.float32)
    for j, column in enumerate(columns):
        for row, value in enumerate(require_column(frame, path, column, "label").tolist(), start=1):
            value = value.strip().lower()
            if value in ("1", "1.0", "true"):
                matrix[row - 1, j] = 1.0
            elif value not in ("0", "0.0", "false"):
                raise DataError(f"{path}: row {row}: label column {column!r} holds {value!r}; expected 0 or 1")
    return matrix


def split_labels(value: str, delimiter: str) -> list[str]:
    return [part.strip() for part in value.split(delimiter) if part.strip()]


def encode_delimited(raw: Sequence[str], label_map: dict[str, str], delimiter: str, path: str | Path,
                     column: str) -> np.ndarray:
    """A (rows, labels) 0/1 matrix from delimited label lists (``"a;b"``); an empty cell is no label.

    Each label is matched as :func:`encode_labels` matches a cell (label value, class name or ``1.0``).
    """
    lookup = label_lookup(label_map)
    matrix = np.zeros((len(raw), len(label_map)), dtype=np.float32)
    for row, value in enumerate(raw, start=1):
        for label in split_labels(value, delimiter):
            matrix[row - 1, match_label(label, lookup, label_map, path, row, column)] = 1.0
    return matrix


def check_label_names(names: Sequence[str], source: str) -> None:
    if len(set(names)) != len(names):
        raise DataError(f"{source}: class names must be distinct, got {list(names)}")
    if len(names) < 2:
        raise DataError(f"{source}: a classifier needs at least two classes, got {list(names)}")


def _integer_form(value: str) -> str:
    """``"1.0"`` and ``"1."`` -> ``"1"`` (as a float column writes integers); else unchanged."""
    match = re.fullmatch(r"(-?\d+)\.0*", value)
    return match.group(1) if match else value


def label_lookup(label_map: dict[str, str]) -> dict[str, set[int]]:
    """Every way a class may be written in a data file -> the class ids written that way."""
    lookup: dict[str, set[int]] = defaultdict(set)
    for i, (value, name) in enumerate(label_map.items()):
        for key in (value, name):
            lookup[key].add(i)
            lookup[_integer_form(key)].add(i)
    return lookup


def match_label(value: str, lookup: dict[str, set[int]], label_map: dict[str, str], path: str | Path,
                row: int, column: str) -> int:
    """The class id of one label as written: its label value, its class name, or an integer written
    ``1.0``; no match, or more than one class, is an error naming the row."""
    ids = lookup.get(value, set()) | lookup.get(_integer_form(value), set())
    if len(ids) == 1:
        return next(iter(ids))
    values = list(label_map)
    if not ids:
        names = list(label_map.values())
        known = f"{values}" if names == values else f"{values} (class names {names})"
        raise DataError(f"{path}: row {row}: label {value!r} is not in the label set {known}")
    matches = {values[i]: label_map[values[i]] for i in sorted(ids)}
    raise DataError(f"{path}: row {row}: label {value!r} in column {column!r} is ambiguous: it matches "
                    f"the label set entries {matches} (label value: class name)")


def encode_labels(raw: Sequence[str], label_map: dict[str, str], path: str | Path, column: str) -> np.ndarray:
    """Class ids of ``raw`` labels, each written as its label value, its class name (``neoplasms``
    for ``1`` in Medical Abstracts) or, for integers, ``1.0``; a missing, unknown or ambiguous
    label (e.g. a class name that is another class's label value) is an error naming its row."""
    lookup = label_lookup(label_map)
    ids = np.empty(len(raw), dtype=np.int64)
    for row, value in enumerate(raw, start=1):
        value = value.strip()
        if value == "" or value.lower() == "nan":
            raise DataError(f"{path}: row {row}: missing label in column {column!r}")
        ids[row - 1] = match_label(value, lookup, label_map, path, row, column)
    return ids


def warn_empty_classes(labels: np.ndarray, label_map: dict[str, str], path: str | Path) -> list[str]:
    """Warn naming the classes with no example in ``labels`` (class ids, or a (rows, labels) 0/1
    matrix); return their names."""
    labels = np.asarray(labels)
    counts = (labels.sum(axis=0) if labels.ndim == 2 else np.bincount(labels, minlength=len(label_map)))
    empty = [name for name, count in zip(label_map.values(), counts) if count == 0]
    if empty:
        warnings.warn(f"{path}: {len(empty)} of {len(label_map)} classes have no training example: {empty}",
                      stacklevel=2)
    return empty


def warn_conflicting_duplicates(texts: Sequence[str], labels: Sequence, path: str | Path) -> int:
    """Warn (with the count) about identical texts that carry different labels; return the count."""
    seen: dict[str, set] = defaultdict(set)
    for text, label in zip(texts, labels):
        seen[" ".join(text.split())].add(label if np.isscalar(label) else tuple(np.asarray(label).tolist()))
    conflicts = sum(1 for labels_of_text in seen.values() if len(labels_of_text) > 1)
    if conflicts:
        warnings.warn(f"{path}: {conflicts} duplicated texts carry conflicting labels", stacklevel=2)
    return conflicts
