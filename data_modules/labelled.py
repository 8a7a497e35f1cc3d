"""The label side of a data module: its classes, their order and how a file's labels are read."""

from __future__ import annotations

import numpy as np


class LabelledAbstracts:
    """Classes, their order (a checkpoint's is the truth) and each row's label, for a data module with
    a ``labels`` (:class:`data_modules.labels.LabelSet`), ``split_file()`` and ``file_format``."""

    @property
    def label_map(self) -> dict[str, str]:
        """Ordered ``{label value: class name}``; class id ``i`` is entry ``i``."""
        train = None if self.labels.map is not None else self.split_file("train")
        return self.labels.resolve(train, self.file_format)

    def align_labels(self, reference: dict[str, str], source: str = "the checkpoint") -> None:
        """Make the classes and their order ``reference``'s (a trained model's ``{value: name}``).

        This data's own label set, if it has one, must hold the same class names (in any order);
        its label values are kept and mapped by name. Without one, ``reference`` is the label set.
        """
        own = self.label_map if self.labels.has_own_labels() or self.split_file("train") else None
        self.labels.align(own, reference, source)

    @property
    def label_names(self) -> list[str]:
        """Class names in id order; linked to ``model.label_names`` by the CLI."""
        return list(self.label_map.values())

    @property
    def multi_label(self) -> bool:
        """Linked to ``model.multi_label`` by the CLI."""
        return self.labels.multi_label

    @property
    def label_descriptions(self) -> list[str]:
        """One description per class in id order; linked to ``model.label_descriptions``."""
        _ = self.label_map
        return self.labels.descriptions()

    def read_labels(self, frame, path: str) -> np.ndarray:
        """Class ids of every row, or a (rows, labels) 0/1 matrix for multi-label data."""
        _ = self.label_map
        return self.labels.encode(frame, path)

    def _follow_model_classes(self) -> None:
        """Labels are encoded in the attached model's class order (a checkpoint's is the truth)."""
        model = self.trainer.lightning_module if self.trainer is not None else None
        names = list(getattr(model, "label_names", None) or [])
        if names and (not self.labels.map or list(self.labels.map.values()) != names):
            self.align_labels({name: name for name in names}, "the model")
