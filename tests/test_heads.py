"""The BiLSTM cross-attention and label-attention heads, on random token states."""

import pytest
import torch

from medtext.heads.bilstm_cross_attention import BiLSTMCrossAttentionHead
from medtext.heads.label_attention import LabelAttentionHead
from medtext.model.optim import parameter_groups, split_attention

H = 32


def make_head(kind: str, num_labels: int = 5, **kwargs):
    torch.manual_seed(0)
    if kind == "label":
        return LabelAttentionHead(H, num_labels, num_layers=2, num_heads=4, **kwargs)
    return BiLSTMCrossAttentionHead(H, num_labels, lstm_hidden_size=16, num_heads=4, query=kind,
                                    **kwargs)


def run(head, states, mask):
    labels = torch.randn(head.num_labels, H, generator=torch.Generator().manual_seed(1))
    return head(states, mask, labels if head.uses_label_descriptions else None)


def batch(lengths, tokens=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = tokens or max(lengths)
    mask = (torch.arange(tokens).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)).long()
    return torch.randn(len(lengths), tokens, H, generator=g), mask


KINDS = ["label", "labels", "cls"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_labels", [5, 10])
def test_output_shape(kind, num_labels):
    states, mask = batch([7, 3, 5])
    assert run(make_head(kind, num_labels), states, mask).shape == (3, num_labels)


@pytest.mark.parametrize("kind", KINDS)
def test_padding_does_not_change_logits(kind):
    head = make_head(kind).eval()
    states, mask = batch([6, 2, 4])
    garbage = 100 * torch.randn(3, 5, H)
    padded_states = torch.cat([states, garbage], 1)
    padded_mask = torch.cat([mask, torch.zeros(3, 5, dtype=mask.dtype)], 1)
    padded_states[1, 2:] = 100 * torch.randn(padded_states.shape[1] - 2, H)  # inside the batch too
    with torch.no_grad():
        expected = run(head, states, mask)
        expected[1] = run(head, states[1:2, :2], mask[1:2, :2])[0]
        got = run(head, padded_states, padded_mask)
        got_bool = run(head, padded_states, padded_mask.bool())
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_bool, got)


@pytest.mark.parametrize("kind", KINDS)
def test_single_token_sequence(kind):
    states, mask = batch([1])
    assert torch.isfinite(run(make_head(kind).eval(), states, mask)).all()
    states, mask = batch([1, 4])
    assert torch.isfinite(run(make_head(kind).eval(), states, mask)).all()


def test_label_attention_weights_are_distributions_over_real_tokens():
    head = make_head("label")
    states, mask = batch([6, 2, 4], tokens=9)
    logits, weights = head.forward_with_attention(states, mask, torch.randn(5, H))
    assert logits.shape == (3, 5) and weights.shape == (3, 5, 9)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 5))
    assert (weights.masked_select(mask.unsqueeze(1).expand_as(weights) == 0) == 0).all()
    assert (weights[0, :, :6] > 0).all()
    head.eval()
    with torch.no_grad():
        logits, _ = head.forward_with_attention(states, mask, torch.ones(5, H))
        torch.testing.assert_close(logits, head(states, mask, torch.ones(5, H)))


def test_label_attention_depends_on_label_states():
    head = make_head("label").eval()
    states, mask = batch([6, 3])
    labels = torch.randn(5, H)
    with torch.no_grad():
        before = head(states, mask, labels)
        changed = labels.clone()
        changed[2] += torch.randn(H)
        after = head(states, mask, changed)
    assert not torch.allclose(before[:, 2], after[:, 2])
    with pytest.raises(ValueError, match="label_states"):
        head(states, mask)


def test_invalid_head_counts():
    with pytest.raises(ValueError, match="divisible"):
        LabelAttentionHead(H, 5, num_heads=5)
    with pytest.raises(ValueError, match="divisible"):
        BiLSTMCrossAttentionHead(H, 5, lstm_hidden_size=10, num_heads=3)
    with pytest.raises(ValueError, match="query"):
        BiLSTMCrossAttentionHead(H, 5, lstm_hidden_size=16, query="mean")


@pytest.mark.parametrize("kind", KINDS)
def test_bf16_autocast_on_cpu(kind):
    head = make_head(kind)
    states, mask = batch([6, 2, 4])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = run(head, states.bfloat16(), mask)
        logits.float().sum().backward()
    assert logits.shape == (3, 5) and torch.isfinite(logits).all()


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_every_parameter(kind):
    head = make_head(kind, lstm_layers=2) if kind != "label" else make_head(kind)
    states, mask = batch([6, 2, 4])
    states.requires_grad_(True)
    labels = torch.randn(5, H, requires_grad=True)
    logits = head(states, mask, labels if kind == "label" else None)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 4])).backward()
    missing = [name for name, p in head.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    assert states.grad is not None and states.grad[1, 2:].abs().sum() == 0
    if kind == "label":
        assert labels.grad is not None


@pytest.mark.parametrize("kind", KINDS)
def test_the_head_names_its_attention_parameters_and_vectors_get_no_weight_decay(kind):
    head = make_head(kind)
    attention, other = split_attention(head)
    expected = {id(p) for m in head.modules() if isinstance(m, torch.nn.MultiheadAttention) for p in m.parameters()}
    assert {id(p) for p in attention} == expected and len(attention) + len(other) == len(list(head.parameters()))
    groups = parameter_groups({"head": (other, 1e-3)}, weight_decay=0.01)
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    names = {id(p): name for name, p in head.named_parameters()}
    assert sorted(names[i] for i in no_decay) == sorted(n for n, p in head.named_parameters()
                                                       if p.ndim == 1 and id(p) not in expected)
    if isinstance(head, BiLSTMCrossAttentionHead):  # LSTM biases (bias_ih_l0 ...) are vectors too
        assert {"lstm.bias_ih_l0", "lstm.bias_hh_l0_reverse"} <= {names[i] for i in no_decay}
