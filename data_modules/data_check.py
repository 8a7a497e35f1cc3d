"""What a data module's splits hold, before training (``python -m medtext check``): rows, class counts,
token lengths, truncation, duplicates within and across splits, identical texts with different labels,
and validation or test abstracts that also appear in train (``drop_leaked`` removes those from train).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from medtext.core.errors import DataError

from .invalid_rows import invalid_rows_message, invalid_texts
from .readers import read_row_ids, read_table, read_texts, require_column
from .sampling import stratified_split
from .token_cache import TokenizedTexts, full_ids

NORMALISATION = ("Unicode NFKC, casefold, every character that is not a letter, digit or whitespace "
                 "replaced by a space, whitespace collapsed")
SPLIT_ORDER = ("train", "val", "test", "predict")
PERCENTILES = (50, 90, 99)
EXAMPLES = 3
_NOT_WORD = re.compile(r"[\W_]+")


def normalise(text: str) -> str:
    """The text compared for near-duplicates (:data:`NORMALISATION`).

    >>> normalise("  The P53   gene-mutation, (TP53)!  ")
    'the p53 gene mutation tp53'
    """
    return " ".join(_NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split())


def digest(text: str) -> bytes:
    """The hash texts are compared by (a set per split, no pairwise comparison), each text twice:
    exactly as written and normalised (:func:`normalise`)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass
class Split:
    """One split: ``indices`` are its rows of ``file`` (a validation split carved from train is a
    subset of the train file's rows)."""

    name: str
    file: str
    texts: list
    row_ids: list
    labels: np.ndarray | None
    tokens: TokenizedTexts
    indices: np.ndarray
    carved: bool = False

    @cached_property
    def exact(self) -> list[bytes]:
        return [digest(self.texts[i]) for i in self.indices]

    @cached_property
    def normalised(self) -> list[bytes]:
        return [digest(normalise(self.texts[i])) for i in self.indices]

    def label_keys(self) -> list:
        """A hashable label per row: the class id, or the tuple of a multi-label row's label ids."""
        labels = self.labels[self.indices]
        return labels.tolist() if labels.ndim == 1 else [tuple(np.flatnonzero(row).tolist()) for row in labels]


def file_texts(dm, split: str) -> list[str]:
    path = dm.split_file(split)
    return read_texts(read_table(path, dm.file_format), path, dm.text_column)


def collect_splits(dm) -> dict[str, Split]:
    """Every configured split, read (and tokenized, through the cache) by the data module itself; without
    a validation file, the validation rows ``fit`` carves from train (``val_fraction``, ``split_seed``)."""
    splits: dict[str, Split] = {}
    for name in SPLIT_ORDER:
        if dm.split_file(name):
            data = dm.load_split(name)
            splits[name] = Split(name, dm.split_file(name), file_texts(dm, name), data["row_ids"], data["labels"],
                                 data["tokens"], np.arange(len(data["row_ids"])))
    if "train" in splits and "val" not in splits:
        train = splits["train"]
        train_idx, val_idx = stratified_split(train.labels, dm.val_fraction, dm.split_seed)
        splits["val"] = replace(train, name="val", indices=val_idx, carved=True)
        splits["train"] = replace(train, indices=train_idx)
    return splits


def full_lengths(dm, split: Split) -> np.ndarray:
    """Tokens of each row of the split's file, special tokens included, untruncated: the length in the
    data module's token cache (what ``fit`` reads), and for the abstracts the cache holds cut (at
    ``max_length``, or in several windows) a full tokenization of those only."""
    tokens = split.tokens
    lengths = tokens.lengths.astype(np.int64)
    if tokens.windows is None:
        long = np.flatnonzero(lengths >= dm.tokenization.max_length)
    else:
        long = np.flatnonzero(np.diff(tokens.windows) > 1)
    if len(long):
        lengths[long] = [len(ids) for ids in full_ids(dm.tokenizer, [split.texts[i] for i in long])]
    return lengths


def conflicts(keys: Sequence[bytes], labels: Sequence) -> dict[bytes, set]:
    """``{text hash: its labels}`` for the texts that carry more than one label."""
    seen: dict[bytes, set] = defaultdict(set)
    for key, label in zip(keys, labels):
        seen[key].add(label)
    return {key: found for key, found in seen.items() if len(found) > 1}


def split_stats(dm, split: Split, lengths: np.ndarray, names: list[str]) -> dict:
    rows = len(split.indices)
    stats: dict = {"file": split.file, "rows": rows}
    if split.carved:
        stats["carved_from_train"] = {"val_fraction": dm.val_fraction, "split_seed": dm.split_seed}
    if split.labels is not None:
        labels = split.labels[split.indices]
        counts = labels.sum(axis=0) if labels.ndim == 2 else np.bincount(labels, minlength=len(names))
        stats["class_counts"] = {name: int(count) for name, count in zip(names, counts)}
        if labels.ndim == 2:
            stats["no_label"] = int((labels.sum(axis=1) == 0).sum())
    own = lengths[split.indices]
    if rows:
        stats["token_length"] = {**{f"p{p}": int(np.percentile(own, p, method="higher")) for p in PERCENTILES},
                                 "max": int(own.max())}
    stats["truncated"] = int((own > dm.tokenization.max_length).sum())
    exact, norm = split.exact, split.normalised
    stats["duplicates"] = {"exact": rows - len(set(exact)), "near": len(set(exact)) - len(set(norm))}
    if split.labels is not None:
        stats["conflicting_labels"] = len(conflicts(norm, split.label_keys()))
    return stats


def pair_stats(first: Split, second: Split) -> dict:
    """Rows of ``second`` whose text is also in ``first``: exactly, or only once normalised."""
    exact_first = {key: row for key, row in reversed(list(zip(first.exact, first.indices)))}  # the first row
    norm_first = {key: row for key, row in reversed(list(zip(first.normalised, first.indices)))}
    exact, near, examples = 0, 0, []
    for row, key, norm in zip(second.indices, second.exact, second.normalised):
        match = exact_first.get(key)
        exact += match is not None
        if match is None and norm in norm_first:
            near, match = near + 1, norm_first[norm]
        if match is not None and len(examples) < EXAMPLES:
            examples.append(f"{second.name} {second.row_ids[row]} = {first.name} {first.row_ids[match]}")
    stats = {"exact": exact, "near": near, "examples": examples}
    if first.labels is not None and second.labels is not None:
        labels_first: dict[bytes, set] = defaultdict(set)
        for key, label in zip(first.normalised, first.label_keys()):
            labels_first[key].add(label)
        labels_second: dict[bytes, set] = defaultdict(set)
        for key, label in zip(second.normalised, second.label_keys()):
            labels_second[key].add(label)
        stats["conflicting_labels"] = sum(labels_first[key] != found for key, found in labels_second.items()
                                          if key in labels_first)
    return stats


def leaked_train_rows(train: Split, others: Sequence[Split]) -> np.ndarray:
    """The train file's rows (of ``train.indices``) whose normalised text is in one of ``others``."""
    elsewhere = {key for other in others for key in other.normalised}
    return np.asarray([row for row, key in zip(train.indices, train.normalised) if key in elsewhere], dtype=np.int64)


def check_texts(dm, shown: int = 10) -> None:
    """Every row of every configured file whose text cannot be used, in one line per file (the first
    ``shown`` with their row numbers and ids, then how many): the data module would stop at the first."""
    for name in SPLIT_ORDER:
        path = dm.split_file(name)
        if not path:
            continue
        frame = read_table(path, dm.file_format)
        invalid = invalid_texts(require_column(frame, path, dm.text_column, "text").tolist())
        if invalid:
            ids = read_row_ids(frame, path, dm.id_column) if dm.id_column else None
            raise DataError(invalid_rows_message(path, dm.text_column, invalid, ids, shown))


def check_data(dm) -> dict:
    """The data report of a data module (an :class:`~data_modules.AbstractsDataModule`)."""
    check_texts(dm)
    splits = collect_splits(dm)
    names = dm.label_names
    lengths = {}
    for split in splits.values():
        if split.file not in lengths:
            lengths[split.file] = full_lengths(dm, split)
    report = {"normalisation": NORMALISATION, "tokenizer": dm.tokenizer_name, "max_length": dm.tokenization.max_length,
              "long_text": dm.long_text, "multi_label": dm.multi_label, "classes": names,
              "splits": {name: split_stats(dm, split, lengths[split.file], names) for name, split in splits.items()},
              "across": {}}
    ordered = [splits[name] for name in SPLIT_ORDER if name in splits]
    for i, first in enumerate(ordered):
        for second in ordered[i + 1:]:
            report["across"][f"{first.name}/{second.name}"] = pair_stats(first, second)
    held_out = [splits[name] for name in ("val", "test") if name in splits and "train" in splits]
    report["leaked"] = {split.name: report["across"][f"train/{split.name}"]["exact"]
                        + report["across"][f"train/{split.name}"]["near"] for split in held_out}
    report["leaked_train_rows"] = len(leaked_train_rows(splits["train"], held_out)) if held_out else 0
    report["drop_leaked"] = bool(getattr(dm, "drop_leaked", False))
    return report


def drop_leaked_rows(dm, train_idx: np.ndarray, val_idx: np.ndarray | None = None) -> np.ndarray:
    """``drop_leaked``: ``train_idx`` without the training rows whose text (exact or normalised) is also
    a validation (``val_idx`` of the train file when carved, else the val file) or test abstract.
    Says how many it removed, also when none."""
    texts = file_texts(dm, "train")

    def split(name: str, file_texts_: list, indices) -> Split:
        return Split(name, "", file_texts_, [], None, None, np.asarray(indices))

    train = split("train", texts, train_idx)
    others = {}
    if val_idx is not None:
        others["val"] = split("val", texts, val_idx)
    for name in ("val", "test"):
        if name not in others and dm.split_file(name):
            held = file_texts(dm, name)
            others[name] = split(name, held, np.arange(len(held)))
    leaked = {name: leaked_train_rows(train, [other]) for name, other in others.items()}
    removed = np.unique(np.concatenate([np.zeros(0, dtype=np.int64), *leaked.values()]))
    if rank_zero_only.rank == 0:
        per_split = ", ".join(f"{len(rows)} also in {name}" for name, rows in leaked.items()) or "no val or test split"
        print(f"drop_leaked: removed {len(removed)} of {len(train_idx)} training abstracts ({per_split}; "
              "exact or normalised text)")
    return np.setdiff1d(np.asarray(train_idx), removed)
