"""Resolve a data module's label set: class names, multi-label encoding and label descriptions.

Single-label data has one label column. Multi-label data has either several 0/1 label columns
(``label_columns``, as in HoC) or one column of delimited label lists (``label_delimiter``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from medtext.errors import DataError

from .labels import (check_label_names, encode_delimited, encode_labels, encode_multi_hot_columns, infer_label_map,
                     load_label_map, load_label_texts, split_labels, split_name_description)
from .readers import read_table, require_column


class LabelSet:
    """How labels are read from a table, and which classes exist.

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
