"""Unlabeled abstracts for masked-language-model pretraining (``python -m medtext pretrain``): from a
task's training split, a text file or a table, tokenized once into the token cache, with a seeded share
held out to report the MLM ``val/loss``.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np
import torch
from pytorch_lightning.utilities import rank_zero_info

from medtext.core.encoders import load_tokenizer
from medtext.core.errors import DataError

from .abstracts import AbstractsDataModule
from .dataset import EncodedAbstracts
from .loaders import AbstractsLoaders
from .readers import decode_utf8, read_bytes, read_table, read_texts
from .sampling import stratified_split
from .token_cache import load_or_encode
from .tokenization import TokenizationSpec, encoder_positions_of


class MaskingCollator:
    """Pad a batch (to its longest abstract) and mask it with ``DataCollatorForLanguageModeling``.

    With ``seed``, each batch's masks depend only on the seed and the abstracts in it (validation: the
    same masks at every epoch, so ``val/loss`` is comparable across epochs); without, fresh masks at
    every step from the global (``seed_everything``-seeded) random state (training)."""

    def __init__(self, tokenizer, mlm_probability: float = 0.15, pad_to_multiple_of: int | None = None,
                 seed: int | None = None):
        from transformers import DataCollatorForLanguageModeling

        self.masker = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability,
                                                      pad_to_multiple_of=pad_to_multiple_of)
        self.seed = seed

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        if self.seed is not None:
            rows = np.asarray([item["index"] for item in items], dtype=np.int64)
            self.masker.generator = torch.Generator().manual_seed(self.seed * 2**32 + zlib.crc32(rows.tobytes()))
        batch = self.masker([{"input_ids": item["input_ids"].tolist()} for item in items])
        return {key: batch[key] for key in ("input_ids", "attention_mask", "labels")}


class UnlabeledTextDataModule(AbstractsLoaders):
    """Unlabeled abstracts for ``python -m medtext pretrain``; give exactly one of ``task_data`` and
    ``text_file``. E.g. in a pretrain config::

        data:
          text_file: ../shared/data/medical_abstracts/medical_tc_train_partial.csv
          text_column: medical_abstract

    Args:
        task_data: a task's data module (``class_path``/``init_args`` as in its fit config, e.g.
            ``data_modules.MedicalAbstractsDataModule`` or ``data_modules.HoCDataModule``). Only the
            texts of its training split are used, never its validation or test texts: without a
            ``val_file`` the rows that its fit would hold out for validation (the same seeded
            stratified split) are left out too.
        text_file: abstracts to pretrain on: ``.txt`` (one per line, blank lines skipped) or a
            CSV, TSV, JSON Lines or Parquet table with ``text_column``.
        text_column: the column of ``text_file`` holding the abstract.
        file_format: ``csv``, ``tsv``, ``jsonl`` or ``parquet`` when the suffix does not tell.
        val_fraction: share of the texts held out (seeded) to report the MLM ``val/loss``.
        split_seed: seed of that hold-out and of the validation masks.
        mlm_probability: share of the tokens masked (as BERT: 80% [MASK], 10% random, 10% kept).
        tokenizer_name: set from ``model.encoder_name`` by the CLI.
        max_length: abstracts are truncated to this many tokens.
        batch_size: training batch size.
        eval_batch_size: validation batch size (default: ``batch_size``).
        bucket_by_length: batch abstracts of similar length together when training.
        pad_to_multiple_of: pad each batch's length to a multiple of this.
        num_workers: data loader worker processes.
        cache_dir: token cache folder (default: ``$MEDTEXT_CACHE_DIR`` or ``~/.cache/medtext``).
    """

    def __init__(self, task_data: AbstractsDataModule | None = None, text_file: str | None = None,
                 text_column: str = "text", file_format: str | None = None, val_fraction: float = 0.05,
                 split_seed: int = 42, mlm_probability: float = 0.15,
                 tokenizer_name: str = "bert-base-uncased", max_length: int = 512, batch_size: int = 16,
                 eval_batch_size: int | None = None, bucket_by_length: bool = False,
                 pad_to_multiple_of: int | None = None, num_workers: int = 0, cache_dir: str | None = None):
        super().__init__()
        self.save_hyperparameters(ignore=["task_data"])
        if (task_data is None) == (text_file is None):
            raise DataError("pretrain data: give exactly one of data.task_data (a task's data module) "
                            "and data.text_file (.txt, or a table with data.text_column)")
        if not 0.0 < val_fraction < 1.0:
            raise DataError(f"val_fraction must be between 0 and 1 (exclusive), not {val_fraction}")
        if not 0.0 < mlm_probability < 1.0:
            raise DataError(f"mlm_probability must be between 0 and 1 (exclusive), not {mlm_probability}")
        self.task_data, self.text_file = task_data, text_file
        self.text_column, self.file_format = text_column, file_format
        self.val_fraction, self.split_seed, self.mlm_probability = val_fraction, split_seed, mlm_probability
        self.tokenizer_name, self.max_length = tokenizer_name, max_length
        self.set_loading(batch_size, eval_batch_size, bucket_by_length, pad_to_multiple_of, num_workers, cache_dir)
        self._tokenizer = None
        self._tokens = None
        self._masking_seed: int | None = None  # set while the validation loader is built
        self.datasets: dict[str, EncodedAbstracts] = {}

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_name)
        return self._tokenizer

    # ----------------------------------------------------------------- reading
    def read_texts(self) -> tuple[list[str], str]:
        """The abstracts, and a key of where they came from (for the token cache)."""
        if self.task_data is not None:
            return self._task_training_texts()
        path = Path(self.text_file)
        if path.suffix.lower() == ".txt" and not self.file_format:
            data = read_bytes(path)
            texts = [line.strip() for line in decode_utf8(path, data).splitlines() if line.strip()]
            return texts, hashlib.sha256(data).hexdigest() + "\0txt"
        texts = read_texts(read_table(path, self.file_format), path, self.text_column)
        return texts, hashlib.sha256(path.read_bytes()).hexdigest() + "\0" + self.text_column

    def _task_training_texts(self) -> tuple[list[str], str]:
        task = self.task_data
        path = task.split_file("train")
        if not path:
            raise DataError(f"data.task_data ({type(task).__name__}) has no training file")
        frame = read_table(path, task.file_format)
        texts = read_texts(frame, path, task.text_column)
        rows = np.arange(len(texts))
        if not task.split_file("val"):  # its fit holds out part of train: never pretrain on those rows
            rows, _ = stratified_split(task.read_labels(frame, path), task.val_fraction, task.split_seed)
        key = hashlib.sha256(Path(path).read_bytes() + rows.astype(np.int64).tobytes()).hexdigest()
        return [texts[i] for i in rows], key + "\0task\0" + task.text_column

    def load_tokens(self):
        if self._tokens is None:
            texts, source = self.read_texts()
            if len(texts) < 2:
                raise DataError(f"{self.text_file or 'data.task_data'}: pretraining needs at least 2 texts "
                                f"(one held out for val/loss), found {len(texts)}")
            spec = TokenizationSpec.resolve(self.tokenizer, self.max_length,
                                            max_positions=encoder_positions_of(self.tokenizer_name))
            self._tokens = load_or_encode(self.tokenizer, texts, self.cache_dir, source, spec)
            rank_zero_info(f"pretrain data: {len(texts)} texts, {self._tokens.num_truncated} truncated "
                           f"to {spec.max_length} tokens")
        return self._tokens

    def prepare_data(self) -> None:
        self.load_tokens()

    def setup(self, stage: str) -> None:
        tokens = self.load_tokens()
        order = np.random.default_rng(self.split_seed).permutation(len(tokens))
        n_val = min(max(round(len(tokens) * self.val_fraction), 1), len(tokens) - 1)
        self.datasets["val"] = EncodedAbstracts(tokens, None, np.sort(order[:n_val]))
        self.datasets["train"] = EncodedAbstracts(tokens, None, np.sort(order[n_val:]))

    # ----------------------------------------------------------------- batches
    def _collate(self) -> MaskingCollator:
        return MaskingCollator(self.tokenizer, self.mlm_probability, self.pad_to_multiple_of, self._masking_seed)

    def val_dataloader(self):
        self._masking_seed = self.split_seed
        try:
            return super().val_dataloader()
        finally:
            self._masking_seed = None

    def test_dataloader(self):
        raise DataError("pretrain data has no test split")

    predict_dataloader = test_dataloader
