"""Batches of a corpus to predict, streamed: a chunk of rows is read, checked and tokenized (one fast
tokenizer call), sorted by length and cut into padded batches; then the next chunk. Memory holds a chunk,
not the file, and nothing goes to the token cache. Chunks are shared out over DDP ranks and loader
workers by number, and chunks already written by an interrupted run are skipped.

Each batch says which chunk it belongs to and how many batches that chunk has; a chunk's first batch
also carries its rows (ids, kept columns, skipped rows), so a writer can put the chunk's predictions
in file order once its last batch is done (``callbacks/prediction_writer.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from medtext.core.errors import DataError

from .dataset import PadCollator
from .invalid_rows import invalid_rows_message, invalid_texts
from .table_chunks import TableChunk, iter_table_chunks
from .tokenization import TokenizationSpec


@dataclasses.dataclass
class ChunkRows:
    """What a chunk's predictions are written with: its first row (0-based), its number of rows, each row's
    id, the kept input columns and the skipped rows (0-based in the file: reason)."""

    index: int
    start: int
    rows: int
    ids: list
    kept: dict[str, list[str]]
    skipped: dict[int, str]


@dataclasses.dataclass(frozen=True)
class CorpusSource:
    """Where the abstracts are and how a chunk becomes batches."""

    path: str
    text_column: str
    id_column: Optional[str] = None
    keep_columns: Sequence[str] = ()
    file_format: Optional[str] = None
    chunk_rows: int = 4096
    batch_size: int = 32
    skip_invalid_rows: bool = False
    pad_to_multiple_of: Optional[int] = None

    def chunks(self) -> Iterator[TableChunk]:
        roles = {**{c: "kept" for c in self.keep_columns}, **({self.id_column: "id"} if self.id_column else {}),
                 self.text_column: "text"}
        return iter_table_chunks(self.path, list(roles), self.chunk_rows, self.file_format, roles)

    def check(self) -> None:
        """Read the header and the first row: a missing file or column stops a run before it writes anything."""
        next(iter(dataclasses.replace(self, chunk_rows=1).chunks()))

    def rows_of(self, chunk: TableChunk) -> tuple[ChunkRows, list[str], np.ndarray]:
        """The chunk's :class:`ChunkRows`, the texts to predict and their rows in the file; an invalid text
        is an error naming its row and id, unless ``skip_invalid_rows``."""
        texts = chunk.columns[self.text_column]
        ids = chunk.columns[self.id_column] if self.id_column else [str(chunk.start + i + 1) for i in range(chunk.rows)]
        invalid = invalid_texts(texts)
        if invalid and not self.skip_invalid_rows:
            in_file = {chunk.start + row: reason for row, reason in invalid.items()}
            raise DataError(invalid_rows_message(self.path, self.text_column, in_file,
                                                 _Shifted(ids, chunk.start) if self.id_column else None))
        kept_rows = np.array([row for row in range(chunk.rows) if row not in invalid], dtype=np.int64)
        rows = ChunkRows(chunk.index, chunk.start, chunk.rows, ids,
                         {c: chunk.columns[c] for c in self.keep_columns},
                         {chunk.start + row: reason for row, reason in invalid.items()})
        return rows, [texts[row] for row in kept_rows], kept_rows + chunk.start


class _Shifted:
    """A chunk's ids indexed by row in the file (for :func:`invalid_rows_message`)."""

    def __init__(self, ids: list, start: int):
        self.ids, self.start = ids, start

    def __getitem__(self, row: int):
        return self.ids[row - self.start]


class CorpusBatches(IterableDataset):
    """The batches of ``source`` for one DDP rank (``rank`` of ``world_size``), chunks in ``done`` left out.
    Each batch: ``input_ids``, ``attention_mask``, ``index`` (rows in the file), ``chunk`` (its number),
    ``chunk_batches`` and, in a chunk's first batch, ``chunk_rows`` (:class:`ChunkRows`). A chunk whose rows
    were all skipped is one batch without abstracts. Shard 0 ends with a batch ``chunks_total``."""

    def __init__(self, source: CorpusSource, spec: TokenizationSpec, tokenizer, rank: int = 0, world_size: int = 1,
                 done: frozenset = frozenset()):
        self.source, self.spec, self.tokenizer = source, spec, tokenizer
        self.rank, self.world_size, self.done = rank, world_size, done
        self.collate = PadCollator(tokenizer.pad_token_id or 0, source.pad_to_multiple_of)

    def shard(self) -> tuple[int, int]:
        """This loader worker's shard among every rank's workers: (shard, shards)."""
        worker = get_worker_info()
        workers, worker_id = (worker.num_workers, worker.id) if worker is not None else (1, 0)
        return self.rank * workers + worker_id, self.world_size * workers

    def __iter__(self) -> Iterator[dict]:
        shard, shards = self.shard()
        total = 0
        for chunk in self.source.chunks():
            total = chunk.index + 1
            if chunk.index % shards != shard or chunk.index in self.done:
                continue
            yield from self.chunk_batches(chunk)
        if shard == 0:
            yield {"chunks_total": total, **self._empty()}

    def chunk_batches(self, chunk: TableChunk) -> Iterator[dict]:
        rows, texts, file_rows = self.source.rows_of(chunk)
        tokens = self.spec.encode(self.tokenizer, texts, count_truncated=False) if texts else None
        return self.padded_batches(rows, tokens, file_rows)

    def padded_batches(self, rows: ChunkRows, tokens, file_rows: np.ndarray) -> Iterator[dict]:
        """A tokenized chunk's batches, longest abstracts first (little padding)."""
        order = np.argsort(-tokens.lengths, kind="stable") if len(file_rows) else np.zeros(0, dtype=np.int64)
        size = self.source.batch_size
        starts = list(range(0, len(order), size)) or [0]
        for number, start in enumerate(starts):
            picked = order[start:start + size]
            batch = self.collate([{"input_ids": tokens[int(j)], "index": int(file_rows[j])} for j in picked]) \
                if len(picked) else self._empty()
            batch.update(chunk=rows.index, chunk_batches=len(starts))
            if number == 0:
                batch["chunk_rows"] = rows
            yield batch

    @staticmethod
    def _empty() -> dict:
        empty = torch.zeros((0, 0), dtype=torch.long)
        return {"input_ids": empty, "attention_mask": empty, "index": torch.zeros(0, dtype=torch.long)}
