"""Parameters no head reads (the encoder's pooler) stop requiring gradients before fit; nothing else."""

import torch

from medtext import TextClassifier
from medtext.heads import LabelAttentionHead


def test_only_the_pooler_is_unused_and_the_probe_leaves_no_trace(tiny_encoder):
    model = TextClassifier(tiny_encoder, ["a", "b", "c"], head=lambda h, n: LabelAttentionHead(h, n, num_heads=2))
    before = torch.get_rng_state()
    model.setup("fit")
    assert torch.equal(torch.get_rng_state(), before), "the probe draws no random numbers"
    assert model.unused_parameters == ["encoder.pooler.dense.weight", "encoder.pooler.dense.bias"]
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    assert frozen == model.unused_parameters
    assert all(p.grad is None for p in model.parameters()), "the probe's gradients are cleared"

    model.setup("fit")  # a second fit keeps them frozen, also through the epoch-start toggle
    model.on_train_epoch_start()
    assert [name for name, p in model.named_parameters() if not p.requires_grad] == frozen
