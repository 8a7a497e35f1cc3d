"""TextClassifier and heads: shapes, padding invariance, loss, optimizer groups."""

import functools

import pytest
import torch

from medtext import TextClassifier
from medtext.heads import MLPHead
from medtext.model.tasks import SingleLabelTask

LABELS = ["a", "b", "c"]


@pytest.fixture
def model(tiny_encoder):
    return TextClassifier(tiny_encoder, LABELS, head=functools.partial(MLPHead, pooling="mean", hidden_dims=[16]))


@pytest.mark.parametrize("pooling", ["cls", "mean", "max"])
def test_head_output_shape_and_hidden_size_from_encoder(tiny_encoder, pooling):
    model = TextClassifier(tiny_encoder, LABELS, head=functools.partial(MLPHead, pooling=pooling))
    assert model.head.hidden_size == model.encoder.config.hidden_size == 32
    ids = torch.randint(5, 50, (4, 9))
    logits = model(ids, torch.ones_like(ids))
    assert logits.shape == (4, len(LABELS))


@pytest.mark.parametrize("pooling", ["cls", "mean", "max"])
def test_padding_does_not_change_logits(tiny_encoder, pooling):
    model = TextClassifier(tiny_encoder, LABELS, head=functools.partial(MLPHead, pooling=pooling)).eval()
    ids = torch.randint(5, 50, (2, 7))
    mask = torch.ones_like(ids)
    padded_ids = torch.cat([ids, torch.zeros(2, 5, dtype=torch.long)], 1)
    padded_mask = torch.cat([mask, torch.zeros(2, 5, dtype=torch.long)], 1)
    with torch.no_grad():
        assert torch.allclose(model(ids, mask), model(padded_ids, padded_mask), atol=1e-5)


def test_encoder_trains_with_dropout(model):
    assert model.encoder.training, "from_pretrained returns eval mode; the classifier must switch it back"


def test_label_names_required(tiny_encoder):
    with pytest.raises(ValueError, match="at least two classes"):
        TextClassifier(tiny_encoder, ["only"])


def test_class_weights_and_label_smoothing_change_the_loss():
    logits, labels = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]), torch.tensor([0, 2])
    plain = SingleLabelTask(3).loss(logits, labels)
    weighted = SingleLabelTask(3, class_weights=[1.0, 1.0, 5.0]).loss(logits, labels)
    smoothed = SingleLabelTask(3, label_smoothing=0.2).loss(logits, labels)
    assert weighted > plain and smoothed != plain
    with pytest.raises(ValueError, match="2 values for 3 classes"):
        SingleLabelTask(3, class_weights=[1.0, 2.0])


def test_optimizer_groups_use_encoder_and_head_learning_rates(model):
    model.hparams.encoder_lr, model.hparams.head_lr = 1e-5, 1e-3

    class Trainer:
        estimated_stepping_batches = 100

    model.trainer = Trainer()  # configure_optimizers reads only the step estimate
    optim = model.configure_optimizers()
    optimizer, scheduler = optim["optimizer"], optim["lr_scheduler"]["scheduler"]
    by_lr = {}
    for group in optimizer.param_groups:
        by_lr.setdefault(group["initial_lr"], 0)
        by_lr[group["initial_lr"]] += sum(p.numel() for p in group["params"])
    head_params = sum(p.numel() for p in model.head.parameters())
    encoder_params = sum(p.numel() for p in model.encoder.parameters())
    assert by_lr == {1e-5: encoder_params, 1e-3: head_params}
    no_decay = [g for g in optimizer.param_groups if g["weight_decay"] == 0.0]
    assert no_decay and all(p.dim() == 1 for g in no_decay for p in g["params"])
    assert scheduler.get_last_lr()[0] == 0.0  # warm-up starts from zero


def test_a_local_encoder_loads_without_a_progress_bar_and_leaves_bars_on(tiny_encoder, capfd):
    from transformers.utils import logging as hf_logging

    from medtext.core.encoders import load_encoder

    load_encoder(tiny_encoder)
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled(), "hub downloads keep their bars"
