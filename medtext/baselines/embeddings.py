"""Baselines on frozen encoder embeddings: ``embedding_probe`` (logistic regression on them) and
``zero_shot_similarity`` (the cosine to each label description). The embeddings are mean-pooled,
L2-normalised (SBERT-style), computed once per text list and cached on disk.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock
from pytorch_lightning.utilities import rank_zero_info

from medtext.core.atomic_files import atomic_open
from medtext.model.calibration import fit_temperature
from medtext.core.encoders import load_encoder, load_tokenizer, resolve_encoder_path
from medtext.core.errors import MedtextError

from . import BaselineData, BaselineOptions, BaselineResult
from .selection import (check_c_grid, check_splits, choose_thresholds, score_name, select_logistic_regression,
                        validation_score)

log = logging.getLogger(__name__)
CACHE_FORMAT = "mean-pooled-l2-v1"  # change it when the pooling changes: old files are then ignored
# fit_temperature keeps T in [0.05, 20]; cosines (in [-1, 1]) are scaled first, so the temperature on
# cosines can range over [0.005, 2], around the 0.01-0.05 that contrastively trained encoders use
COSINE_SCALE = 10.0
PLATT_C = 1.0  # inverse L2 strength of each label's Platt scaling (on the standardised cosine)


def encoder_folder(name: str) -> Optional[Path]:
    """The local folder ``name`` loads from: as given, packaged, or the hub cache's snapshot."""
    resolved = resolve_encoder_path(name)
    if Path(resolved).is_dir():
        return Path(resolved)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(resolved, local_files_only=True))
    except (OSError, ValueError):  # not cached (or not a hub id): loading it gives the one-line error
        return None


def encoder_identity(name: str) -> str:
    """The encoder's folder and each file's name, size and modification time (or just ``name``)."""
    folder = encoder_folder(name)
    if folder is None:
        return name
    files = [(p.name, p.stat()) for p in sorted(folder.iterdir()) if p.is_file()]  # stat follows hub symlinks
    return "\0".join([str(folder.resolve()), *(f"{n}:{s.st_size}:{s.st_mtime_ns}" for n, s in files)])


def texts_digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little") + encoded)
    return digest.hexdigest()


def cache_path(cache_dir: Path, identity: str, max_length: int, texts: Sequence[str]) -> Path:
    """``embeddings-<key>.pt``, keyed by the encoder's identity (its folder and the names, sizes and
    times of its files: weights, config, tokenizer), the max length and a digest of the texts."""
    key = hashlib.sha256("\0".join([CACHE_FORMAT, identity, str(max_length), texts_digest(texts)]).encode())
    return cache_dir / f"embeddings-{key.hexdigest()[:32]}.pt"


def embeddings_cache_dir(options: BaselineOptions) -> Path:
    """``baseline.cache_dir``, or else ``<medtext cache root>/embeddings``."""
    if options.cache_dir:
        return Path(options.cache_dir).expanduser()
    from data_modules.token_cache import default_cache_dir

    return Path(default_cache_dir()) / "embeddings"


class Embedder:
    """Embeds text lists with one encoder, loaded only when a list is not in the cache."""

    def __init__(self, options: BaselineOptions):
        if not options.encoder_name:
            raise MedtextError("the embedding baselines need an encoder: set --baseline.encoder_name "
                               "(or model.encoder_name in the config)")
        if options.batch_size < 1 or options.max_length < 2:
            raise MedtextError(f"baseline.batch_size must be >= 1 and max_length >= 2, not "
                               f"{options.batch_size} and {options.max_length}")
        self.options = options
        self.cache_dir = embeddings_cache_dir(options)
        self.identity = encoder_identity(options.encoder_name)
        self.tokenizer = self.encoder = None
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """``(texts, hidden)`` unit-length embeddings, from the cache or computed and cached (a float32
        tensor, one file per text list, written atomically under a file lock)."""
        path = cache_path(self.cache_dir, self.identity, self.options.max_length, texts)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if path.is_file():
                try:
                    cached = torch.load(path, weights_only=True)
                    if isinstance(cached, torch.Tensor) and cached.shape[0] == len(texts):
                        return cached
                except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError):  # computed again
                    pass
            embeddings = self.embed(texts)
            with atomic_open(path, "wb") as handle:
                torch.save(embeddings, handle)
            log.info("embedded %d texts into %s", len(texts), path)
            return embeddings

    def load(self) -> None:
        if self.encoder is None:
            self.tokenizer = load_tokenizer(self.options.encoder_name)
            self.encoder = load_encoder(self.options.encoder_name).eval().to(self.device)

    @torch.inference_mode()
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Mean of the last hidden states over real tokens, L2-normalised; batches of similar length."""
        from data_modules.tokenization import TokenizationSpec, encoder_positions_of

        self.load()
        spec = TokenizationSpec.resolve(self.tokenizer, self.options.max_length,
                                        max_positions=encoder_positions_of(self.options.encoder_name))
        tokens = spec.encode(self.tokenizer, list(texts))  # the start of each text, as the data modules cut it
        if tokens.num_truncated:  # at --baseline.max_length (not data.max_length); cached lists were said when embedded
            rank_zero_info(f"{self.options.encoder_name}: {tokens.num_truncated} of {len(texts)} texts truncated to "
                           f"{spec.describe()} (--baseline.max_length)")
        order = np.argsort(tokens.lengths, kind="stable")[::-1]
        pieces = []
        for start in range(0, len(order), self.options.batch_size):
            rows = order[start:start + self.options.batch_size]
            batch = self.tokenizer.pad([{"input_ids": tokens[i].tolist()} for i in rows],
                                       return_tensors="pt").to(self.device)
            states = self.encoder(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            pieces.append(F.normalize((states * mask).sum(1) / mask.sum(1).clamp_min(1), dim=-1).cpu())
        stacked = torch.cat(pieces)
        embeddings = torch.empty_like(stacked)
        embeddings[torch.as_tensor(order.copy())] = stacked
        return embeddings


def run_probe(data: BaselineData, options: BaselineOptions) -> BaselineResult:
    """``embedding_probe``: class-balanced logistic regression on frozen embeddings, C chosen on
    validation (:mod:`medtext.baselines.selection`). ``chosen``: ``C``, its validation score, ``grid``."""
    check_c_grid(options.c_grid)
    check_splits(train=data.train_texts, validation=data.val_texts, test=data.test_texts)
    embed = Embedder(options)
    train, val, test = (embed(texts).numpy() for texts in (data.train_texts, data.val_texts, data.test_texts))
    return select_logistic_regression(train, data.train_labels, val, data.val_labels, test, data.label_names,
                                      data.multi_label, options.c_grid, options.seed)


def platt_scaling(cosines: np.ndarray, labels: np.ndarray, seed: int) -> tuple[float, float]:
    """``(a, b)`` of ``sigmoid(a * cos + b)`` fitted by logistic regression (on the standardised
    cosine, lightly regularised); without both classes: ``a = 0`` and ``b`` the smoothed prior."""
    positives = int(labels.sum())
    if positives in (0, len(labels)):
        rate = (positives + 1) / (len(labels) + 2)
        return 0.0, float(np.log(rate / (1 - rate)))
    from sklearn.linear_model import LogisticRegression

    mean, std = float(cosines.mean()), float(cosines.std()) or 1.0
    model = LogisticRegression(C=PLATT_C, random_state=seed).fit(((cosines - mean) / std)[:, None], labels)
    slope, intercept = float(model.coef_[0, 0]), float(model.intercept_[0])
    return slope / std, intercept - slope * mean / std


def run_similarity(data: BaselineData, options: BaselineOptions) -> BaselineResult:
    """``zero_shot_similarity``: no training; the cosine between each abstract and each label description.

    Single-label: argmax, probabilities ``softmax(cos / T)`` with one temperature fitted on validation
    (``chosen``: ``temperature``). Multi-label: per label ``sigmoid(a * cos + b)`` (Platt scaling fitted
    on validation; ``chosen``: ``platt_a``, ``platt_b``), then per-label thresholds tuned on validation."""
    check_splits(validation=data.val_texts, test=data.test_texts)
    if len(data.descriptions) != len(data.label_names):
        raise MedtextError(f"{len(data.descriptions)} label descriptions for {len(data.label_names)} labels")
    embed = Embedder(options)
    descriptions = embed(data.descriptions)
    val_cos, test_cos = ((embed(texts) @ descriptions.T).double() for texts in (data.val_texts, data.test_texts))
    if not data.multi_label:
        targets = torch.as_tensor(data.val_labels).long()
        temperature = float(fit_temperature(val_cos * COSINE_SCALE, targets, multi_label=False)) / COSINE_SCALE
        val_p, test_p = ((cos / temperature).softmax(-1).numpy() for cos in (val_cos, test_cos))
        score = validation_score(val_p, data.val_labels, multi_label=False)
        return BaselineResult(probabilities=test_p, chosen={"temperature": temperature, score_name(False): score})
    fitted = [platt_scaling(val_cos[:, j].numpy(), data.val_labels[:, j], options.seed)
              for j in range(len(data.label_names))]
    slopes, intercepts = (torch.tensor(values, dtype=torch.float64) for values in zip(*fitted))
    val_p, test_p = ((cos * slopes + intercepts).sigmoid().numpy() for cos in (val_cos, test_cos))
    thresholds, score = choose_thresholds(val_p, data.val_labels, multi_label=True)
    return BaselineResult(probabilities=test_p, thresholds=thresholds,
                          chosen={"platt_a": slopes.tolist(), "platt_b": intercepts.tolist(),
                                  score_name(True): score})
