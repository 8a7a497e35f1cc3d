"""The predict side of :class:`AbstractsDataModule`: ``predict_file`` is streamed a chunk at a time
(``corpus.py``), never read whole nor token-cached, so a corpus of millions of abstracts predicts in the
memory of one chunk. The predictions writer plans the chunks (their size, the kept columns, the chunks an
interrupted run already wrote) before the loader is built.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from torch.utils.data import DataLoader

from medtext.core.errors import DataError

from .corpus import CorpusBatches, CorpusSource


@dataclasses.dataclass
class PredictPlan:
    chunk_rows: int = 4096
    keep_columns: Sequence[str] = ()
    done: frozenset = frozenset()


class StreamedPredict:
    """Needs ``split_file``, ``text_column``, ``id_column``, ``file_format``, ``eval_batch_size``,
    ``skip_invalid_rows``, ``pad_to_multiple_of``, ``num_workers``, ``tokenizer``, ``tokenization``
    and ``trainer`` (for the DDP rank)."""

    _predict_plan: Optional[PredictPlan] = None

    def plan_predict(self, chunk_rows: int, keep_columns: Sequence[str] = (), done: frozenset = frozenset()) -> None:
        """How ``predict_dataloader`` cuts the file: ``chunk_rows`` per chunk, ``done`` chunks left out."""
        if chunk_rows < 1:
            raise DataError(f"predictions.chunk_rows must be >= 1, not {chunk_rows}")
        self._predict_plan = PredictPlan(chunk_rows, tuple(keep_columns), frozenset(done))

    def predict_source(self) -> CorpusSource:
        path = self.split_file("predict")
        if not path:
            raise DataError("the predict stage needs data.predict_file")
        plan = self._predict_plan or PredictPlan()
        return CorpusSource(str(path), self.text_column, self.id_column, tuple(plan.keep_columns), self.file_format,
                            plan.chunk_rows, self.eval_batch_size, self.skip_invalid_rows, self.pad_to_multiple_of)

    def predict_dataloader(self) -> DataLoader:
        """The batches of this rank's chunks (``CorpusBatches``), already collated: no sampler, no shuffling."""
        plan = self._predict_plan or PredictPlan()
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        batches = CorpusBatches(self.predict_source(), self.tokenization, self.tokenizer, rank, world, plan.done)
        return DataLoader(batches, batch_size=None, num_workers=self.num_workers)
