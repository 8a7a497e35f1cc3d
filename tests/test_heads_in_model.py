"""The published heads inside TextClassifier: padding invariance, label descriptions, learning rates."""

import functools
import json

import pytest
import torch

from data_modules import AbstractsDataModule
from medtext import DataError, TextClassifier
from medtext.heads import BiLSTMCrossAttentionHead, LabelAttentionHead, MLPHead

LABELS = ["neoplasms", "liver", "nerves", "heart"]
DESCRIPTIONS = ["tumour carcinoma", "hepatitis cirrhosis liver", "epilepsy seizures", "heart failure"]
HEADS = {
    "mlp": functools.partial(MLPHead, pooling="mean"),
    "bilstm_xattn": functools.partial(BiLSTMCrossAttentionHead, lstm_hidden_size=16, num_heads=2),
    "bilstm_xattn_cls": functools.partial(BiLSTMCrossAttentionHead, lstm_hidden_size=16, num_heads=2, query="cls"),
    "label_attention": functools.partial(LabelAttentionHead, num_heads=2, num_layers=2),
}


def make(tiny_encoder, head, **kwargs):
    return TextClassifier(tiny_encoder, LABELS, head=HEADS[head], label_descriptions=DESCRIPTIONS, **kwargs)


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("head", sorted(HEADS))
def test_shapes_and_padding_invariance(tiny_encoder, head, multi_label):
    model = make(tiny_encoder, head, multi_label=multi_label).eval()
    ids = torch.randint(5, 60, (3, 8))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0  # a shorter abstract inside the batch
    ids[1, 5:] = 0
    padded_ids, padded_mask = torch.cat([ids, torch.zeros(3, 6, dtype=torch.long)], 1), \
        torch.cat([mask, torch.zeros(3, 6, dtype=torch.long)], 1)
    with torch.no_grad():
        logits = model(ids, mask)
        assert logits.shape == (3, len(LABELS))
        assert torch.allclose(logits, model(padded_ids, padded_mask), atol=1e-5)


def test_label_attention_weights_are_distributions_over_real_tokens(tiny_encoder):
    model = make(tiny_encoder, "label_attention").eval()
    ids = torch.randint(5, 60, (2, 9))
    mask = torch.ones_like(ids)
    mask[0, 4:] = 0
    logits, weights = model.explain(ids, mask)
    assert weights.shape == (2, len(LABELS), 9)
    assert torch.allclose(weights.sum(-1), torch.ones(2, len(LABELS)), atol=1e-5)
    assert torch.all(weights[0, :, 4:] == 0)
    with torch.no_grad():
        assert torch.allclose(logits, model(ids, mask), atol=1e-5)
    with pytest.raises(TypeError, match="no attention weights"):
        make(tiny_encoder, "mlp").explain(ids, mask)


def test_static_descriptions_are_fixed_and_reencoded_ones_follow_the_encoder(tiny_encoder):
    ids = torch.randint(5, 60, (2, 6))
    mask = torch.ones_like(ids)
    for encoding in ("static", "reencode"):
        torch.manual_seed(0)
        model = make(tiny_encoder, "label_attention", label_encoding=encoding)
        before = model.label_states().detach().clone()
        loss = model(ids, mask).sum()
        loss.backward()
        description_grad = model.encoder.embeddings.word_embeddings.weight.grad[model.description_ids.unique()]
        with torch.no_grad():
            for p in model.encoder.parameters():
                p.add_(0.05 * torch.randn_like(p))
        after = model.label_states().detach()
        if encoding == "static":
            assert torch.equal(before, after) and "static_label_states" in model.state_dict()
        else:
            assert not torch.allclose(before, after) and "static_label_states" not in model.state_dict()
            assert description_grad.abs().sum() > 0


def test_static_label_states_match_the_pretrained_encoder(tiny_encoder):
    model = make(tiny_encoder, "label_attention").eval()
    with torch.no_grad():
        cls = model.encoder(input_ids=model.description_ids, attention_mask=model.description_mask)
    assert torch.allclose(model.static_label_states, cls.last_hidden_state[:, 0], atol=1e-5)


def test_attention_learning_rate_and_frozen_encoder(tiny_encoder):
    model = make(tiny_encoder, "label_attention", encoder_lr=1e-5, head_lr=1e-3, attention_lr=5e-4,
                 freeze_encoder_epochs=1)

    class Trainer:
        estimated_stepping_batches = 10
        current_epoch = 0

    model.trainer = Trainer()
    optimizer = model.configure_optimizers()["optimizer"]
    lr_of = {id(p): g["initial_lr"] for g in optimizer.param_groups for p in g["params"]}
    attention = {id(p) for layer in model.head.layers for p in layer.attention.parameters()}
    for name, p in model.head.named_parameters():
        assert lr_of[id(p)] == (5e-4 if id(p) in attention else 1e-3), name
    assert all(lr_of[id(p)] == 1e-5 for p in model.encoder.parameters())
    assert any("attention" in n for n, _ in model.head.named_parameters())
    model.on_train_epoch_start()
    assert not any(p.requires_grad for p in model.encoder.parameters())


def test_descriptions_file_must_match_the_labels(tiny_encoder, tmp_path):
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"an abstract,{n}\n" for n in LABELS))
    good = {n: f"{n}: about {n}" for n in LABELS}
    for broken, message in (({**good, "extra": "x"}, "extra \\['extra'\\]"),
                            ({k: v for k, v in good.items() if k != "heart"}, "missing \\['heart'\\]")):
        (tmp_path / "d.json").write_text(json.dumps(broken))
        data = AbstractsDataModule(train_file=str(tmp_path / "train.csv"), descriptions_file=str(tmp_path / "d.json"),
                                   tokenizer_name=tiny_encoder)
        with pytest.raises(DataError, match=message):
            data.label_descriptions
    (tmp_path / "d.json").write_text(json.dumps(good))
    data = AbstractsDataModule(train_file=str(tmp_path / "train.csv"), descriptions_file=str(tmp_path / "d.json"),
                               tokenizer_name=tiny_encoder)
    assert data.label_descriptions == [good[n] for n in sorted(LABELS)]
