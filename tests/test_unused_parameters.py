"""Parameters no head reads (the encoder's pooler) stop requiring gradients before fit; nothing else."""

import pytest
import torch
from pytorch_lightning.strategies import DDPStrategy, SingleDeviceStrategy

from medtext import TextClassifier
from medtext.core.errors import MedtextError
from medtext.model.unused_parameters import check_unused_parameter_search, strategy_finding_unused_parameters
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


@pytest.mark.parametrize("trainer, chosen", [
    ({"strategy": "ddp", "devices": 2}, "ddp_find_unused_parameters_true"),
    ({"strategy": "ddp_spawn", "devices": 2}, "ddp_spawn_find_unused_parameters_true"),
    ({"strategy": "auto", "devices": 2}, "ddp_find_unused_parameters_true"),
    ({"strategy": "auto", "devices": "0,1"}, "ddp_find_unused_parameters_true"),
    ({"strategy": "auto", "devices": 1, "num_nodes": 2}, "ddp_find_unused_parameters_true"),
    ({"strategy": "auto", "devices": 1}, None),
    ({"strategy": "auto", "devices": "auto", "accelerator": "cpu"}, None),
    ({"strategy": "ddp_find_unused_parameters_true", "devices": 2}, None),
    ({"strategy": "deepspeed", "devices": 2}, None),
    ({"strategy": {"class_path": "pytorch_lightning.strategies.DDPStrategy", "init_args": {"timeout": 60}}},
     {"class_path": "pytorch_lightning.strategies.DDPStrategy", "init_args": {"timeout": 60, "find_unused_parameters": True}}),
])
def test_a_frozen_then_trained_encoder_gets_the_ddp_strategy_that_finds_unused_parameters(trainer, chosen):
    assert strategy_finding_unused_parameters(trainer) == chosen


def test_a_ddp_strategy_object_that_does_not_search_stops_with_one_line():
    check_unused_parameter_search(DDPStrategy(find_unused_parameters=True), "freeze_encoder_epochs")
    check_unused_parameter_search(SingleDeviceStrategy("cpu"), "freeze_encoder_epochs")
    with pytest.raises(MedtextError, match="ddp_find_unused_parameters_true"):
        check_unused_parameter_search(DDPStrategy(), "freeze_encoder_epochs")
