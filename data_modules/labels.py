"""Labels: raw label values as they appear in a data file, mapped to readable class names by an
ordered ``{raw value: class name}`` label map (class id ``i`` is its ``i``-th entry), and the
:class:`LabelSet` of a data module (which classes, multi-label encoding, label descriptions).
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from medtext.core.errors import DataError

from .readers import load_label_map, load_label_texts, read_table, require_column, split_name_description


def _natural_key(value: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", value)]


def infer_label_map(values: Iterable[str]) -> dict[str, str]:
    """Every distinct non-empty value, in natural sort order (``2`` before ``10``), named by itself;
    integers written differently are one class: ``1``, ``01`` and ``1.0`` are ``1``.

    >>> infer_label_map(["b", "a", "b"])
    {'a': 'a', 'b': 'b'}
    """
    distinct = {_integer_form(v.strip()) for v in values if v.strip()}
    return {value: value for value in sorted(distinct, key=lambda v: (_natural_key(v), v))}


def encode_multi_hot_columns(frame, columns: Sequence[str], path: str | Path) -> np.ndarray:
    """A (rows, labels) 0/1 matrix from one 0/1 column per label; any other value is an error."""
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
    """``"1.0"``, ``"1."`` (as a float column writes integers) and ``"01"`` -> ``"1"``; else unchanged."""
    match = re.fullmatch(r"(-?)0*(\d+)(?:\.0*)?", value)
    if not match:
        return value
    return "0" if match.group(2) == "0" else match.group(1) + match.group(2)


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
    label (e.g. a class name that is another class's label value) is an error naming its row.

    >>> encode_labels(["2", "1"], {"1": "neoplasms", "2": "digestive"}, "train.csv", "label").tolist()
    [1, 0]
    >>> encode_labels(["neoplasms", "2.0"], {"1": "neoplasms", "2": "digestive"}, "train.csv", "label").tolist()
    [0, 1]
    """
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


class LabelSet:
    """How labels are read from a table, and which classes exist. Single-label data has one label column;
    multi-label data several 0/1 ``label_columns`` (as in HoC) or one column of lists (``label_delimiter``).

    >>> LabelSet(label_column="label").multi_label
    False
    """

    def __init__(self, label_column: str = "label", label_columns: Optional[Sequence[str]] = None,
                 label_delimiter: Optional[str] = None, labels_file: Optional[str] = None,
                 label_map: Optional[dict[str, str]] = None, descriptions_file: Optional[str] = None):
        if label_columns is not None and label_delimiter is not None:
            raise DataError("give either data.label_columns (0/1 columns) or data.label_delimiter, not both")
        self.label_column, self.label_columns = label_column, list(label_columns) if label_columns else None
        self.label_delimiter, self.labels_file = label_delimiter, labels_file
        self.descriptions_file = descriptions_file
        self.map = dict(label_map) if label_map else None
        self.origin = "data.label_map"  # where the classes came from, for messages

    @property
    def multi_label(self) -> bool:
        return self.label_columns is not None or self.label_delimiter is not None

    def resolve(self, train_file: Optional[str], file_format: Optional[str]) -> dict[str, str]:
        """The ordered ``{label value: class name}``: inline map, labels file, or inferred from train."""
        if self.map is None:
            self.origin = str(self.labels_file or ("data.label_columns" if self.label_columns else train_file))
            if self.labels_file:
                self.map = load_label_map(self.labels_file)
            elif self.label_columns:
                self.map = {column: column for column in self.label_columns}
            elif train_file:
                raw = require_column(read_table(train_file, file_format), train_file, self.label_column, "label")
                values = raw if self.label_delimiter is None else [
                    label for cell in raw for label in split_labels(cell, self.label_delimiter)]
                self.map = infer_label_map(values)
            else:
                raise DataError("no label set: give data.labels_file, data.label_map or data.train_file")
            if self.label_columns and set(self.map) == set(self.label_columns):
                self.map = {column: self.map[column] for column in self.label_columns}
        if self.label_columns:  # the class order is the map's; each class reads its own column
            self._check_same_keys(self.map, self.label_columns, self.labels_file or "label_map", "label columns")
        check_label_names(list(self.map.values()), self.labels_file or "label set")
        return self.map

    def has_own_labels(self) -> bool:
        """Whether the classes are given (map, labels file or label columns), not only inferable."""
        return bool(self.map or self.labels_file or self.label_columns)

    def align(self, own: Optional[dict[str, str]], reference: dict[str, str], source: str) -> None:
        """Take ``reference``'s classes and order; ``own`` (this data's resolved map, or ``None``)
        must name the same classes, whose label values are kept. One line says what differs."""
        if own is None:
            self.map = dict(reference)
            return
        names, wanted = list(own.values()), list(reference.values())
        if names == wanted:
            return
        if sorted(names) != sorted(wanted):
            missing = [name for name in wanted if name not in names]
            extra = [name for name in names if name not in wanted]
            raise DataError(f"{self.origin}: the data's {len(names)} classes are not "
                            f"{source}'s {len(wanted)}: missing {missing}, not in {source} {extra}")
        value_of = {name: value for value, name in own.items()}
        self.map = {value_of[name]: name for name in wanted}

    def encode(self, frame, path: str) -> np.ndarray:
        """Class ids (single-label) or a (rows, labels) 0/1 matrix (multi-label) for a table."""
        if self.label_columns:
            return encode_multi_hot_columns(frame, list(self.map), path)
        raw = require_column(frame, path, self.label_column, "label").tolist()
        if self.label_delimiter is not None:
            return encode_delimited(raw, self.map, self.label_delimiter, path, self.label_column)
        return encode_labels(raw, self.map, path, self.label_column)

    def descriptions(self) -> list[str]:
        """One text per class, in id order, to encode as that class's query: from ``descriptions_file``
        (keyed by label value or class name), else the ``"Name: description"`` texts of the labels
        file, else the class names."""
        assert self.map is not None, "resolve() first"
        if self.descriptions_file:
            texts = load_label_texts(self.descriptions_file)
            by_name = {name: value for value, name in self.map.items()}
            keyed = {by_name.get(key, key): text for key, text in texts.items()}
            self._check_same_keys(keyed, list(self.map), self.descriptions_file, "labels")
            return [keyed[value].strip() for value in self.map]
        if self.labels_file:
            texts = load_label_texts(self.labels_file)
            return [texts[value].strip() if split_name_description(texts[value])[1] else self.map[value]
                    for value in self.map]
        return list(self.map.values())

    @staticmethod
    def _check_same_keys(found: dict, expected: Sequence[str], source: str | Path, what: str) -> None:
        missing = [k for k in expected if k not in found]
        extra = [k for k in found if k not in expected]
        if missing or extra:
            raise DataError(f"{source}: does not match the {what}: missing {missing}, extra {extra}")
