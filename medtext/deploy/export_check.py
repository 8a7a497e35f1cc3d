"""The export check: an exported graph's logits against PyTorch's on the same token ids.

``medtext export`` prints it on a few abstracts; a benchmark calls :func:`compare_on_file` on a whole file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from medtext.runtime.checkpoint import load_model, read_checkpoint


def torch_logits(model, sequences: Sequence[np.ndarray], batch_size: int, pad: int) -> np.ndarray:
    """``model``'s logits (sequences, labels) in the same length-sorted, right-padded batches."""
    lengths = np.array([len(s) for s in sequences])
    order = np.argsort(lengths, kind="stable")
    logits = np.zeros((len(sequences), len(model.label_names)), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            ids = torch.full((len(rows), int(lengths[rows].max())), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, row in enumerate(rows):
                ids[i, :lengths[row]], mask[i, :lengths[row]] = torch.as_tensor(sequences[row]), 1
            logits[rows] = model(ids, mask).float().numpy()
    return logits


def compare_sequences(model, exported, sequences: Sequence[np.ndarray], batch_size: int = 8) -> dict:
    """Max abs logit difference and the share of identical labels (per sequence) of ``exported``
    (an :class:`medtext.deploy.onnx_predict.ExportedModel`) against ``model`` (a ``TextClassifier``, eval)."""
    expected = torch_logits(model, sequences, batch_size, exported.tokenizer.pad_token_id or 0)
    got = exported.sequence_logits(sequences, batch_size)
    return {"rows": len(sequences), "max_abs_logit_diff": float(np.abs(expected - got).max()),
            "label_agreement": float(np.mean([np.array_equal(a, b) for a, b in
                                              zip(*(exported.decide(x)[1] for x in (expected, got)))])),
            "torch_logits": expected, "onnx_logits": got}


def check_sequences(exported, texts: Optional[list[str]], count: int, seed: int = 0) -> list[np.ndarray]:
    """Token ids of up to ``count`` of ``texts`` (one window each; ``medtext export`` reads the checkpoint's
    data files when they are on this machine), else of random ids of spread lengths up to ``max_length``."""
    if texts:
        tokens = exported.tokenize(texts[:count])
        return [tokens.sequence(j) for j in range(min(count, len(tokens.offsets) - 1))]
    from data_modules.token_cache import special_prefix

    tokenizer, max_length = exported.tokenizer, exported.tokenization.max_length
    special = set(tokenizer.all_special_ids)
    vocabulary = np.array([i for i in range(len(tokenizer)) if i not in special])
    # the special tokens the tokenizer's own call puts around a text, placed around the random ids as
    # the data module places them (BERT: [CLS] before, [SEP] after)
    marked = tokenizer("a", return_special_tokens_mask=True)
    specials = [i for i, is_special in zip(marked["input_ids"], marked["special_tokens_mask"]) if is_special]
    prefix = special_prefix(tokenizer)
    before, after = specials[:prefix], specials[prefix:]
    rng = np.random.default_rng(seed)
    budget = max(exported.tokenization.budget, 1)
    lengths = np.linspace(max(budget // count, 1), budget, count).astype(int)
    return [np.asarray(before + rng.choice(vocabulary, n).tolist() + after)[:max_length] for n in lengths]


def macro_f1(predictions: np.ndarray, truth: np.ndarray, num_labels: int) -> float:
    from torchmetrics.functional.classification import multiclass_f1_score

    return float(multiclass_f1_score(torch.as_tensor(predictions), torch.as_tensor(truth), num_labels, average="macro"))


def single_label_truth(ckpt_path: str | Path, frame) -> Optional[np.ndarray]:
    """Class ids of a single-label file's label column (the checkpoint's), else ``None``."""
    settings = read_checkpoint(ckpt_path)
    column = ((settings.data or {}).get("init_args") or {}).get("label_column", "label")
    if settings.multi_label or column not in frame.columns:
        return None
    index = {name: i for i, name in enumerate(settings.label_names)}
    named = [settings.label_map.get(str(value), str(value)) for value in frame[column]]
    return np.array([index[name] for name in named]) if all(name in index for name in named) else None


def compare_on_file(ckpt_path: str | Path, model_dir: str | Path, data_file: str | Path, int8: bool = False,
                    batch_size: int = 16, text_column: Optional[str] = None) -> dict:
    """The exported model (``int8``: its quantised graph) against the checkpoint's PyTorch model on every
    abstract of ``data_file``: ``rows``, ``max_abs_logit_diff`` (over windows), ``label_agreement``,
    and with a single-label label column ``macro_f1_torch``/``macro_f1_onnx`` (the same token ids for both).

    >>> compare_on_file("best.ckpt", "exported/", "test.csv", int8=True)  # doctest: +SKIP
    {'rows': 1000, 'max_abs_logit_diff': 0.21, 'label_agreement': 0.994, 'macro_f1_torch': 0.61, 'macro_f1_onnx': 0.60}
    """
    from data_modules.readers import read_table, read_texts

    from medtext.deploy.onnx_predict import ExportedModel, pool_windows

    exported = ExportedModel(model_dir, int8=int8)
    model = load_model(ckpt_path)
    data = exported.settings["data"]
    frame = read_table(data_file, data.get("file_format"))
    tokens = exported.tokenize(read_texts(frame, data_file, text_column or data["text_column"]))
    windows = tokens.windows if tokens.windows is not None else np.arange(len(tokens) + 1)
    sequences = [tokens.sequence(j) for j in range(len(tokens.offsets) - 1)]
    expected = torch_logits(model, sequences, batch_size, exported.tokenizer.pad_token_id or 0)
    got = exported.sequence_logits(sequences, batch_size)
    decided = [exported.decide(pool_windows(x, windows, data["window_pooling"]))[1] for x in (expected, got)]
    result = {"rows": len(tokens), "max_abs_logit_diff": float(np.abs(expected - got).max()),
              "label_agreement": float(np.mean([np.array_equal(a, b) for a, b in zip(*decided)]))}
    truth = single_label_truth(ckpt_path, frame)
    if truth is not None:
        result["macro_f1_torch"], result["macro_f1_onnx"] = (macro_f1(d, truth, len(model.label_names)) for d in decided)
    return result
