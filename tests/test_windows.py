"""``data.long_text: windows``: overlapping windows of a long abstract, their logits pooled by the model."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run, tiny_config
from conftest import write
from test_heads_in_model import HEADS, LABELS, make

from data_modules import AbstractsDataModule
from data_modules.dataset import EncodedAbstracts, PadCollator
from data_modules.long_text import Windows, window_ids
from data_modules.sampling import TrainingSampler
from data_modules.token_cache import (
    CACHE_FORMAT,
    cache_key,
    encode,
    load_or_encode,
    tokenizer_fingerprint,
)
from medtext.core.errors import DataError
from medtext.model.windows import pool_windows

from data_helpers import spec, text_of

MAX_LENGTH = 16  # [CLS] + 14 content tokens + [SEP]


# ------------------------------------------------------------------------------------ cutting windows
def test_windows_overlap_by_the_stride_with_specials_at_both_ends(tokenizer, vocabulary):
    text = text_of(vocabulary, 40)
    content = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(content) == 40 and len(set(content)) == 40
    tokens = encode(tokenizer, [text], spec(tokenizer, MAX_LENGTH, windows=Windows(stride=4, max_windows=8)))
    windows = [w.tolist() for w in tokens[0]]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    # windows of 14 content tokens starting every 10; the last one reaches the end
    assert windows == [[cls, *content[s:s + 14], sep] for s in (0, 10, 20, 30)]
    for before, after in itertools.pairwise(windows):
        assert before[-5:-1] == after[1:5]  # 4 shared tokens
    assert tokens.num_truncated == 0 and len(tokens) == 1
    assert tokens.lengths.tolist() == [sum(map(len, windows))]
    hf = tokenizer(text, truncation=True, max_length=MAX_LENGTH, stride=4, return_overflowing_tokens=True)
    assert windows == [list(ids) for ids in hf["input_ids"]]  # Hugging Face's own stride windows


def test_max_windows_drops_the_rest_and_counts_the_abstract(tokenizer, vocabulary):
    texts = [text_of(vocabulary, 40), text_of(vocabulary, 24, shift=3), text_of(vocabulary, 25, shift=5)]
    tokens = encode(tokenizer, texts, spec(tokenizer, MAX_LENGTH, windows=Windows(stride=4, max_windows=2)))
    assert [len(tokens[i]) for i in range(3)] == [2, 2, 2]
    assert tokens.num_truncated == 2  # 24 content tokens fit in two windows (0-13, 10-23), 25 and 40 do not
    full = encode(tokenizer, texts[:1], spec(tokenizer, MAX_LENGTH, windows=Windows(stride=4, max_windows=8)))
    assert [w.tolist() for w in tokens[0]] == [w.tolist() for w in full[0][:2]]


def test_a_short_abstract_is_one_window_equal_to_truncate(tokenizer, vocabulary):
    texts = [text_of(vocabulary, n, shift=n) for n in (1, 5, 13, 14)]
    truncated = encode(tokenizer, texts, spec(tokenizer, MAX_LENGTH))
    windowed = encode(tokenizer, texts, spec(tokenizer, MAX_LENGTH, windows=Windows(stride=3, max_windows=4)))
    assert windowed.num_truncated == 0 and windowed.windows.tolist() == [0, 1, 2, 3, 4]
    for i in range(len(texts)):
        assert len(windowed[i]) == 1 and windowed[i][0].tolist() == truncated[i].tolist()


def test_window_ids_other_layouts_and_edges():
    assert window_ids([0, 1, *range(10, 17), 9], budget=3, stride=0, prefix=2, specials=3) == [
        [0, 1, 10, 11, 12, 9], [0, 1, 13, 14, 15, 9], [0, 1, 16, 9]]
    assert window_ids([2, 3], budget=5, stride=2, prefix=1, specials=2) == [[2, 3]]  # no content: one window
    assert window_ids([2, *range(10, 20), 3], 4, 1, 1, 2, max_windows=2) == [[2, 10, 11, 12, 13, 3],
                                                                             [2, 13, 14, 15, 16, 3]]


# ------------------------------------------------------------------------------------ options and cache
@pytest.mark.parametrize("kwargs, message", [
    ({"long_text": "slide"}, "long_text must be one of truncate, windows, not 'slide'"),
    ({"long_text": "windows", "window_stride": -1}, "window_stride must be a whole number >= 0"),
    ({"long_text": "windows", "max_windows": 0}, "max_windows must be a whole number >= 1"),
    ({"long_text": "windows", "truncation": "head_tail"}, "truncation: head_tail is for long_text: truncate"),
])
def test_bad_options_stop_with_one_line(tiny_encoder, kwargs, message):
    with pytest.raises(DataError, match=message) as err:
        AbstractsDataModule(tokenizer_name=tiny_encoder, **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("stride", [14, 20])
def test_a_stride_that_leaves_no_new_token_stops_with_one_line(tiny_encoder, stride):
    data = AbstractsDataModule(tokenizer_name=tiny_encoder, max_length=MAX_LENGTH, long_text="windows",
                               window_stride=stride)
    with pytest.raises(DataError, match="window_stride must be >= 0 and below the 14 content tokens") as err:
        _ = data.tokenization
    assert "\n" not in str(err.value)
    assert AbstractsDataModule(tokenizer_name=tiny_encoder, max_length=MAX_LENGTH, long_text="windows").tokenization.windows == \
        Windows(stride=3, max_windows=8)  # default stride: a quarter of the 14 content tokens


def test_cache_key_differs_for_windows_and_truncate_is_unchanged(tokenizer, vocabulary, tmp_path):
    truncate = cache_key("digest", tokenizer, spec(tokenizer, MAX_LENGTH))
    old = hashlib.sha256("\0".join([CACHE_FORMAT, "digest", tokenizer_fingerprint(tokenizer), str(MAX_LENGTH)])
                         .encode()).hexdigest()[:32]
    assert truncate == old
    keys = {truncate, *(cache_key("digest", tokenizer, spec(tokenizer, MAX_LENGTH, windows=w))
                        for w in (Windows(3, 8), Windows(4, 8), Windows(3, 2)))}
    assert len(keys) == 4
    texts = [text_of(vocabulary, 40), text_of(vocabulary, 3)]
    written = load_or_encode(tokenizer, texts, tmp_path, "digest", spec(tokenizer, MAX_LENGTH, windows=Windows(4, 3)))
    read = load_or_encode(tokenizer, ["not tokenized: read from the cache"] * 2, tmp_path, "digest", spec(tokenizer, MAX_LENGTH, windows=Windows(4, 3)))
    assert len(list(tmp_path.glob("tokens-*.npz"))) == 1
    assert np.array_equal(read.ids, written.ids) and np.array_equal(read.windows, written.windows)
    assert read.num_truncated == written.num_truncated == 1 and [len(read[i]) for i in range(2)] == [3, 1]


# ------------------------------------------------------------------------------------ batches
def test_collator_pads_windows_and_keeps_2d_batches(tokenizer, vocabulary):
    texts = [text_of(vocabulary, 3), text_of(vocabulary, 30), text_of(vocabulary, 16)]
    tokens = encode(tokenizer, texts, spec(tokenizer, MAX_LENGTH, windows=Windows(4, 8)))
    dataset = EncodedAbstracts(tokens, np.array([0, 1, 2]))
    assert len(dataset) == 3 and dataset.lengths.tolist() == [5, 16 + 16 + 12, 16 + 8]
    batch = PadCollator(tokenizer.pad_token_id, pad_to_multiple_of=8)([dataset[i] for i in range(3)])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (3, 3, 16)
    assert batch["attention_mask"].sum(-1).tolist() == [[5, 0, 0], [16, 16, 12], [16, 8, 0]]
    assert batch["input_ids"][0, 1:].eq(tokenizer.pad_token_id).all()
    for row in range(3):
        for w, window in enumerate(tokens[row]):
            assert batch["input_ids"][row, w, :len(window)].tolist() == window.tolist()
    assert batch["index"].tolist() == [0, 1, 2] and batch["labels"].tolist() == [0, 1, 2]
    sampler = TrainingSampler(dataset.lengths, 2, bucket_by_length=True, seed=0)
    assert sorted(sampler) == [0, 1, 2]  # one item per abstract, bucketed by its tokens
    flat = PadCollator(tokenizer.pad_token_id)([{"input_ids": np.array([5, 6]), "index": 0}])
    assert flat["input_ids"].tolist() == [[5, 6]] and flat["attention_mask"].tolist() == [[1, 1]]


# ------------------------------------------------------------------------------------ pooling
def model_of(tiny_encoder, head: str = "mlp", **kwargs):
    return make(tiny_encoder, head, **kwargs).eval()  # test_heads_in_model's heads, labels and descriptions


def windowed_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Two abstracts: three windows (the last shorter), and one window then an all-padding one."""
    torch.manual_seed(0)
    ids = torch.randint(5, 60, (2, 3, 7))
    mask = torch.ones_like(ids)
    mask[0, 2, 4:] = 0
    mask[1, 0, 5:] = 0
    mask[1, 1:] = 0
    return ids * mask, mask


@pytest.mark.parametrize("how", ["mean", "max"])
def test_pooling_equals_a_manual_per_window_computation_and_one_window_the_2d_logits(tiny_encoder, how):
    model = model_of(tiny_encoder, window_pooling=how)
    ids, mask = windowed_batch()
    with torch.no_grad():
        logits = model(ids, mask)
        first = torch.stack([model(ids[0, w:w + 1, :n], mask[0, w:w + 1, :n])[0] for w, n in ((0, 7), (1, 7), (2, 4))])
        second = model(ids[1, :1, :5], mask[1, :1, :5])[0]
    expected = first.mean(0) if how == "mean" else first.amax(0)
    assert logits.shape == (2, len(LABELS))
    assert torch.allclose(logits[0], expected, atol=1e-5) and torch.allclose(logits[1], second, atol=1e-5)
    with torch.no_grad():  # one more all-padding window changes nothing
        padded = model(torch.cat([ids, torch.zeros(2, 1, 7, dtype=torch.long)], 1),
                       torch.cat([mask, torch.zeros(2, 1, 7, dtype=torch.long)], 1))
        one_window = model(ids[:, :1], mask[:, :1])  # every abstract's first window only: the 2-D path
        assert torch.allclose(padded, logits, atol=1e-6)
        assert torch.allclose(one_window, model(ids[:, 0], mask[:, 0]), atol=1e-6)
    with pytest.raises(NotImplementedError, match="long_text: windows"):
        model_of(tiny_encoder, "label_attention").explain(ids, mask)


def test_only_real_windows_are_encoded():
    seen = []

    def forward(ids, mask):
        seen.append(ids.shape[0])
        return ids[:, :1].float()

    ids, mask = windowed_batch()
    pool_windows(forward, ids, mask, "max")
    assert seen == [4]
    with pytest.raises(ValueError, match="window_pooling must be one of mean, max, not 'median'"):
        pool_windows(forward, ids, mask, "median")


@pytest.mark.parametrize("head", sorted(HEADS))
def test_every_head_takes_windows(tiny_encoder, head):
    model = model_of(tiny_encoder, head, window_pooling="max")
    ids, mask = windowed_batch()
    with torch.no_grad():
        logits = model(ids, mask)
        single = model(ids[1, :1, :5], mask[1, :1, :5])
    assert logits.shape == (2, len(LABELS)) and torch.isfinite(logits).all()
    assert torch.allclose(logits[1], single[0], atol=1e-5)
    model.train()
    model(ids, mask).sum().backward()
    assert model.encoder.embeddings.word_embeddings.weight.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------ end to end
@pytest.mark.slow  # about 10 s: a fit, its test and a predict
def test_fit_test_and_config_free_predict_use_windows(tiny_encoder, vocabulary, tmp_path):
    rows = [(text_of(vocabulary, 8 + 6 * i, shift=i), "xy"[i % 2]) for i in range(16)]
    files = {split: str(write(tmp_path / f"{split}.csv", "text,label\n" + "".join(f"{t},{y}\n" for t, y in part)))
             for split, part in (("train_file", rows), ("val_file", rows[:6]), ("test_file", rows[6:12]))}
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {**files, "max_length": MAX_LENGTH})
    cli = run("fit", "--config", str(config), "--data.init_args.long_text", "windows",
              "--data.init_args.window_stride", "2", "--data.init_args.max_windows", "3",
              "--data.init_args.bucket_by_length", "true", "--model.init_args.window_pooling", "max",
              "--test_after_fit", "true")
    assert next(iter(cli.datamodule.val_dataloader()))["input_ids"].dim() == 3
    assert "test/macro_f1" in cli.trainer.callback_metrics

    checkpoint = Path(cli.trainer.checkpoint_callback.best_model_path)
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    data = saved["datamodule_hyper_parameters"]
    assert (data["long_text"], data["window_stride"], data["max_windows"]) == ("windows", 2, 3)
    assert saved["hyper_parameters"]["window_pooling"] == "max"

    texts = [text_of(vocabulary, 60, shift=3), text_of(vocabulary, 5), text_of(vocabulary, 20)]
    predict_file = write(tmp_path / "new.csv", "text\n" + "".join(f"{t}\n" for t in texts))
    out = tmp_path / "predictions.csv"
    predicted = run("predict", "--ckpt_path", str(checkpoint), "--data.predict_file", str(predict_file),
                    "--predictions.output_file", str(out))
    assert predicted.datamodule.hparams["long_text"] == "windows"
    # the streamed predict cuts each abstract into at most max_windows windows, as the fit did
    batches = [b for b in predicted.datamodule.predict_dataloader() if len(b["index"])]
    windows = {int(i): int(m.any(-1).sum()) for b in batches for i, m in zip(b["index"], b["attention_mask"])}
    assert batches[0]["input_ids"].dim() == 3 and windows == {0: 3, 1: 1, 2: 2}
    assert len(out.read_text().splitlines()) == 1 + len(texts)
