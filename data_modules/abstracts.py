"""LightningDataModule for abstracts in CSV, TSV, JSON Lines or Parquet files.

Tokenizes each file once (``prepare_data``, rank 0), caches the ids on disk and pads each batch
dynamically. Labels come from a labels file, an explicit ``label_map``, or the training file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

from pytorch_lightning.utilities import rank_zero_info

from medtext.core.encoders import load_tokenizer
from medtext.core.errors import DataError

from .data_check import drop_leaked_rows
from .dataset import EncodedAbstracts
from .labelled import LabelledAbstracts
from .labels import LabelSet, warn_conflicting_duplicates, warn_empty_classes
from .loaders import AbstractsLoaders
from .long_text import LongText, check_long_text
from .invalid_rows import invalid_texts, skipped_rows_line
from .readers import read_row_ids, read_table, read_texts, require_column
from .sampling import stratified_split
from .streamed_predict import StreamedPredict
from .soft_targets import check_weight, distillation_targets
from .token_cache import Truncation, check_truncation, load_or_encode
from .tokenization import TokenizationSpec, encoder_positions_of

STAGE_FILES = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ()}  # predict: streamed


class AbstractsDataModule(StreamedPredict, LabelledAbstracts, AbstractsLoaders):
    """Abstracts classification data, single-label or multi-label.

    Example config (``--data`` of ``python -m medtext fit``)::

        data:
          class_path: data_modules.AbstractsDataModule
          init_args: {train_file: train.csv, text_column: abstract, label_column: label}

    Args:
        train_file: training data (CSV, TSV, JSON Lines or Parquet; format from the suffix).
        val_file: validation data; without it, a seeded stratified ``val_fraction`` of train.
        test_file: test data, for ``test`` and ``fit --test_after_fit true``.
        predict_file: abstracts to label with ``predict``.
        text_column: column holding the abstract's text.
        label_column: column holding the label (single-label, or lists with ``label_delimiter``).
        id_column: column that identifies rows in predictions (default: 1-based row number).
        label_columns: multi-label, one 0/1 column per label (e.g. HoC's ``label-1`` ... ``label-a``).
        label_delimiter: multi-label, ``label_column`` holds lists such as ``a;b`` (empty: no label).
        file_format: ``csv``, ``tsv``, ``jsonl`` or ``parquet``, when the suffix does not tell.
        labels_file: two-column CSV/TSV (label value, class name) or JSON ``{value: name}``; a
            name written ``"Name: description"`` also gives the description.
        label_map: ``{label value: class name}`` given inline (wins over ``labels_file``).
        descriptions_file: ``{label value or class name: description}`` (JSON or two columns), for
            heads that read label descriptions; default: the labels file's, else the class names.
        val_fraction: share of train held out for validation when there is no ``val_file``.
        split_seed: seed of that validation split.
        tokenizer_name: set from ``model.encoder_name`` by the CLI.
        max_length: abstracts are truncated to this many tokens (``windows``: each window's length).
        truncation: which tokens of a longer abstract are kept: ``head`` (its start) or ``head_tail``
            (its first ``head_tokens`` and its end; Sun et al., 2019). Shorter abstracts are kept whole.
        head_tokens: with ``head_tail``, tokens kept from the start; the rest of the budget from the end.
        long_text: ``truncate`` (default: ``truncation``) or ``windows``: a longer abstract is cut
            into overlapping windows of ``max_length`` tokens, each ``[CLS] ... [SEP]``; the model
            pools its windows' logits (``model.window_pooling``). Batches are then 3-D.
        window_stride: with ``windows``, content tokens consecutive windows share (default: a quarter of one).
        max_windows: with ``windows``, windows kept per abstract (its further tokens are dropped).
        batch_size: training batch size.
        eval_batch_size: batch size of validation, test and predict (default: ``batch_size``).
        bucket_by_length: batch abstracts of similar length together when training.
        pad_to_multiple_of: pad each batch's length to a multiple of this (fewer distinct shapes).
        num_workers: data loader worker processes.
        cache_dir: token cache folder (default: ``$MEDTEXT_CACHE_DIR`` or ``~/.cache/medtext``).
        drop_leaked: ``fit`` removes from train the abstracts whose text (exact or normalised) is also
            a validation or test abstract, and says how many (``python -m medtext check`` lists them).
        soft_targets_file: a teacher's ``predict`` file of the training file, to distil (``soft_targets.py``).
        soft_targets_weight: the teacher's probabilities' share of each training target (the label's: 1 minus it).
        skip_invalid_rows: ``predict`` leaves out rows it cannot classify (an empty text), says how many, and
            writes them with an empty label and the reason; otherwise the first one stops the command.
    """

    def __init__(self, train_file: Optional[str] = None, val_file: Optional[str] = None,
                 test_file: Optional[str] = None, predict_file: Optional[str] = None,
                 text_column: str = "text", label_column: str = "label", id_column: Optional[str] = None,
                 label_columns: Optional[list[str]] = None, label_delimiter: Optional[str] = None,
                 file_format: Optional[str] = None, labels_file: Optional[str] = None,
                 label_map: Optional[dict[str, str]] = None, descriptions_file: Optional[str] = None,
                 val_fraction: float = 0.1, split_seed: int = 42,
                 tokenizer_name: str = "bert-base-uncased", max_length: int = 512,
                 truncation: Truncation = "head", head_tokens: int = 128, long_text: LongText = "truncate",
                 window_stride: Optional[int] = None, max_windows: int = 8, batch_size: int = 16,
                 eval_batch_size: Optional[int] = None, bucket_by_length: bool = False,
                 pad_to_multiple_of: Optional[int] = None, num_workers: int = 0,
                 cache_dir: Optional[str] = None, drop_leaked: bool = False,
                 soft_targets_file: Optional[str] = None, soft_targets_weight: float = 0.5,
                 skip_invalid_rows: bool = False):
        super().__init__()
        self.save_hyperparameters()  # with a recipe's (subclass's) own arguments
        self.files = {"train": train_file, "val": val_file, "test": test_file, "predict": predict_file}
        self.text_column, self.label_column, self.id_column = text_column, label_column, id_column
        self.file_format = file_format
        self.labels = LabelSet(label_column, label_columns, label_delimiter, labels_file, label_map,
                               descriptions_file)
        self.val_fraction, self.split_seed = val_fraction, split_seed
        self.tokenizer_name, self.max_length = tokenizer_name, max_length
        check_truncation(truncation, head_tokens)
        check_long_text(long_text, window_stride, max_windows, truncation)
        self.truncation, self.head_tokens = truncation, head_tokens
        self.long_text, self.window_stride, self.max_windows = long_text, window_stride, max_windows
        self.set_loading(batch_size, eval_batch_size, bucket_by_length, pad_to_multiple_of, num_workers, cache_dir)
        self.drop_leaked, self.skip_invalid_rows = drop_leaked, skip_invalid_rows
        self.soft_targets_file, self.soft_targets_weight = soft_targets_file, check_weight(soft_targets_weight)
        self._tokenizer = None
        self._tokenization: Optional[TokenizationSpec] = None
        self._splits: dict[str, dict] = {}
        self.datasets: dict[str, EncodedAbstracts] = {}

    # ----------------------------------------------------------------- files
    def resolve_files(self) -> dict[str, Optional[str]]:
        """The data files by split; recipes override this to locate or download them."""
        return self.files

    def split_file(self, split: str) -> Optional[str]:
        """The file of ``split``: as given (``<split>_file``), else the recipe's (``resolve_files``).
        A given file needs no recipe folder: a checkpoint predicts on any machine."""
        if split == "predict":  # recipes bring no predict file
            return self.files["predict"]
        return self.files.get(split) or self.resolve_files().get(split)

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_name)
        return self._tokenizer

    @property
    def tokenization(self) -> TokenizationSpec:
        """How this data's abstracts become token ids, resolved once with the tokenizer (and the
        encoder's positions, which ``max_length`` may not exceed)."""
        if self._tokenization is None:
            self._tokenization = TokenizationSpec.resolve(
                self.tokenizer, self.max_length, self.truncation, self.head_tokens, self.long_text,
                self.window_stride, self.max_windows, max_positions=encoder_positions_of(self.tokenizer_name))
        return self._tokenization

    def state_dict(self) -> dict:  # checkpoints: the training position and, for the record, the tokenization
        return {**super().state_dict(), **({"tokenization": self._tokenization.settings()} if self._tokenization else {})}

    # ----------------------------------------------------------------- reading
    def load_split(self, split: str) -> dict:
        """Read, validate and tokenize one split's file (memoised)."""
        if split in self._splits:
            return self._splits[split]
        path = self.split_file(split)
        frame = read_table(path, self.file_format)
        row_ids = read_row_ids(frame, path, self.id_column)
        skipping = split == "predict" and self.skip_invalid_rows
        texts = read_texts(frame, path, self.text_column, row_ids if self.id_column else None, allow_invalid=skipping)
        invalid = invalid_texts(texts) if skipping else {}
        if invalid:  # predicted without them; the prediction file lists them with their reason
            rank_zero_info(skipped_rows_line(path, invalid, len(texts)))
        labels = None if split == "predict" else self.read_labels(frame, path)
        if split == "train":
            warn_conflicting_duplicates(texts, labels, path)
            warn_empty_classes(labels, self.label_map, path)
        content_key = hashlib.sha256(Path(path).read_bytes()).hexdigest() + "\0" + self.text_column
        tokens = load_or_encode(self.tokenizer, texts, self.cache_dir, content_key, self.tokenization)
        if tokens.num_truncated:
            rank_zero_info(f"{path}: {tokens.num_truncated} of {len(texts)} abstracts truncated to "
                           f"{self.tokenization.describe()}")
        self._splits[split] = {"tokens": tokens, "labels": labels, "row_ids": row_ids, "invalid": invalid}
        return self._splits[split]

    def row_ids(self, split: str) -> list:
        """Each row's id in ``split``'s file: its ``id_column`` value, else its 1-based row number."""
        return self.load_split(split)["row_ids"]

    def skipped_rows(self, split: str) -> dict[int, str]:
        """The rows (0-based) ``skip_invalid_rows`` left out of ``split``, with the reason."""
        return self.load_split(split)["invalid"]

    def input_columns(self, split: str, columns: list[str]) -> dict[str, list[str]]:
        """Other columns of a split's file, as read (strings), e.g. to copy into predictions."""
        path = self.split_file(split)
        frame = read_table(path, self.file_format)
        return {column: require_column(frame, path, column, "kept").tolist() for column in columns}

    def splits_for(self, stage: Optional[str]) -> list[str]:
        """The configured splits a stage reads; ``fit`` also checks test so a later test cannot fail."""
        if stage == "validate":
            wanted: tuple = ("val",) if self.split_file("val") else ("train",)
        else:
            # predict streams its file (streamed_predict.py): nothing is read before
            wanted = {"fit": ("train", "val", "test"), "test": ("test",), "predict": ()}.get(
                stage or "", tuple(self.files))
        return [split for split in wanted if self.split_file(split)]

    def prepare_data(self) -> None:
        """Validate and tokenize the stage's files before any training starts (once per node)."""
        self._follow_model_classes()
        stage = self.trainer.state.fn if self.trainer is not None else None
        for split in self.splits_for(getattr(stage, "value", stage)):
            self.load_split(split)

    def setup(self, stage: str) -> None:
        self._follow_model_classes()
        self.hparams["label_map"] = dict(self.label_map)  # resolved: saved in checkpoints, in class order
        if stage in ("fit", "validate") and not self.split_file("val") and self.split_file("train"):
            train = self.load_split("train")
            train_idx, val_idx = stratified_split(train["labels"], self.val_fraction, self.split_seed)
            self.datasets["train"] = EncodedAbstracts(train["tokens"], train["labels"], train_idx)
            self.datasets["val"] = EncodedAbstracts(train["tokens"], train["labels"], val_idx)
        elif stage == "predict":
            self.predict_source()  # says at once when there is no predict_file
        else:
            for split in STAGE_FILES[stage]:
                if not self.split_file(split):
                    raise DataError(f"the {getattr(stage, 'value', stage)} stage needs data.{split}_file")
                data = self.load_split(split)
                kept = [row for row in range(len(data["tokens"])) if row not in data["invalid"]]
                self.datasets[split] = EncodedAbstracts(data["tokens"], data["labels"], kept if data["invalid"] else None)
        if stage == "fit" and self.drop_leaked:  # data_check.py: said, never silent
            carved = None if self.split_file("val") else self.datasets["val"].indices
            self.datasets["train"].indices = drop_leaked_rows(self, self.datasets["train"].indices, carved)
        if stage == "fit" and self.soft_targets_file:  # distillation; validation keeps the true labels
            self.datasets["train"].labels = distillation_targets(
                self.soft_targets_file, self.soft_targets_weight, self.load_split("train"), self.label_names, self.multi_label)
