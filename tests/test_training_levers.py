"""Layer-wise learning-rate decay (``layer_decay``) and an EMA of the weights (``callbacks.EMAWeights``)."""

import functools
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from transformers import DistilBertConfig, DistilBertModel

from callbacks import EMAWeights
from cli_helpers import in_folder, run, shipped_checkpoints, tiny_config
from medtext import TextClassifier
from medtext.core.errors import MedtextError
from medtext.heads import LabelAttentionHead
from medtext.model.optim import encoder_groups, parameter_groups, split_attention

LABELS = ["a", "b", "c"]
ENCODER_LR, DECAY = 1e-3, 0.5


def make_model(encoder: str, layer_decay=None) -> TextClassifier:
    head = functools.partial(LabelAttentionHead, num_heads=2, feedforward_size=16)  # has attention parameters
    return TextClassifier(encoder, LABELS, head=head, encoder_lr=ENCODER_LR, head_lr=1e-2, attention_lr=3e-3,
                          layer_decay=layer_decay)


def optimizer_groups(model: TextClassifier) -> list[dict]:
    model.trainer = SimpleNamespace(estimated_stepping_batches=10)  # configure_optimizers reads only this
    return model.configure_optimizers()["optimizer"].param_groups


def summary(groups: list[dict]) -> list[tuple]:
    return [(g["name"], g.get("initial_lr", g["lr"]), g["weight_decay"], [id(p) for p in g["params"]]) for g in groups]


def test_layer_decay_learning_rates_per_layer(tiny_encoder):
    model = make_model(tiny_encoder, DECAY)
    model.encoder.pooler.requires_grad_(False)  # as setup("fit") leaves it: unused, in no group
    groups = optimizer_groups(model)
    lr = {g["name"]: g["initial_lr"] for g in groups}
    layers = model.encoder.encoder.layer  # 2 layers: the top one at encoder_lr
    expected = {"encoder/layer_1": ENCODER_LR, "encoder/layer_0": ENCODER_LR * DECAY,
                "encoder/embeddings": ENCODER_LR * DECAY ** 2}
    for name, rate in expected.items():
        assert lr[name] == lr[f"{name}/no_decay"] == pytest.approx(rate)
    where = {id(p): g["name"] for g in groups for p in g["params"]}
    for i, layer in enumerate(layers):
        assert {where[id(p)].removesuffix("/no_decay") for p in layer.parameters()} == {f"encoder/layer_{i}"}
    assert {where[id(p)].removesuffix("/no_decay") for p in model.encoder.embeddings.parameters()} == {
        "encoder/embeddings"}
    # every trainable encoder parameter in exactly one group; weight decay by dimension in each
    trainable = [p for p in model.encoder.parameters() if p.requires_grad]
    in_groups = [id(p) for g in groups for p in g["params"]]
    assert sorted(id(p) for p in trainable) == sorted(i for i in in_groups if i in {id(p) for p in trainable})
    assert len(in_groups) == len(set(in_groups)) == sum(p.requires_grad for p in model.parameters())
    for group in groups:
        assert all((p.ndim >= 2) == (group["weight_decay"] > 0) for p in group["params"])


def test_pooler_and_other_encoder_parameters_train_at_encoder_lr(tiny_encoder):
    groups = optimizer_groups(make_model(tiny_encoder, DECAY))  # pooler still trainable here
    (other,) = [g for g in groups if g["name"] == "encoder"]
    assert other["initial_lr"] == ENCODER_LR and len(other["params"]) == 1  # pooler.dense.weight


@pytest.mark.parametrize("layer_decay", [None, 1.0])
def test_no_layer_decay_gives_todays_groups(tiny_encoder, layer_decay):
    model = make_model(tiny_encoder, layer_decay)
    attention, other = split_attention(model.head)
    today = parameter_groups({"encoder": (model.encoder, ENCODER_LR), "head": (other, 1e-2),
                              "attention": (attention, 3e-3)}, 0.01)
    assert summary(optimizer_groups(model)) == summary(today)


def test_head_and_attention_groups_unchanged_by_layer_decay(tiny_encoder):
    plain, decayed = make_model(tiny_encoder), make_model(tiny_encoder, DECAY)
    names = ("head", "head/no_decay", "attention", "attention/no_decay")

    def head_groups(model):
        index = {id(p): n for n, p in model.named_parameters()}
        return [(g["name"], g["initial_lr"], g["weight_decay"], [index[id(p)] for p in g["params"]])
                for g in optimizer_groups(model) if g["name"] in names]
    assert head_groups(plain) == head_groups(decayed) and len(head_groups(plain)) == 4


def test_layers_found_without_bert_names():
    encoder = DistilBertModel(DistilBertConfig(vocab_size=50, dim=16, hidden_dim=32, n_layers=3, n_heads=2))
    named = encoder_groups(encoder, 1.0, 0.5)
    assert {name: lr for name, (_, lr) in named.items()} == {
        "encoder": 1.0, "encoder/layer_0": 0.25, "encoder/layer_1": 0.5, "encoder/layer_2": 1.0,
        "encoder/embeddings": 0.125}
    assert named["encoder"][0] == []  # DistilBERT: no pooler
    assert {id(p) for p in named["encoder/embeddings"][0]} == {id(p) for p in encoder.embeddings.parameters()}


def test_unknown_structure_and_bad_decay_are_one_line_errors(tiny_encoder):
    class Odd(nn.Module):
        config = SimpleNamespace(num_hidden_layers=3)

        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])

    with pytest.raises(MedtextError, match="no list of 3 layers"):
        encoder_groups(Odd(), 1.0, 0.9)
    with pytest.raises(MedtextError, match=r"layer_decay must be in \(0, 1\]"):
        make_model(tiny_encoder, 0.0)


# ------------------------------------------------------------------ EMA of the weights
def test_ema_checkpoints_average_parameters_and_keep_the_models_buffers(tiny_encoder):
    model = make_model(tiny_encoder)
    ema = EMAWeights(decay=0.5)
    ema.setup(None, model, "fit")
    with torch.no_grad():
        before = {n: p.clone() for n, p in model.named_parameters()}
        for p in model.parameters():
            p.add_(1.0)
    ema._average_model.update_parameters(model)  # first update: a copy
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema._average_model.update_parameters(model)  # 0.5 * (w + 1) + 0.5 * (w + 2)
    model.thresholds.fill_(0.3)  # tuned by a validation epoch, after the last update
    checkpoint = {"state_dict": model.state_dict()}
    ema.on_save_checkpoint(None, model, checkpoint)
    state = {name: value.clone() for name, value in checkpoint["state_dict"].items()}  # not live tensors
    for name, value in before.items():
        torch.testing.assert_close(state[name], value + 1.5)
        torch.testing.assert_close(checkpoint["current_model_state"][name], value + 2.0)
    assert torch.equal(state["thresholds"], torch.full((3,), 0.3))
    assert torch.equal(state["static_label_states"], model.static_label_states)
    ema._swap_models(model)  # validation: averaged parameters, the model's own buffers
    assert torch.equal(model.thresholds, torch.full((3,), 0.3))
    parameters = dict(model.named_parameters())
    assert all(torch.equal(parameters[name], state[name]) for name in before)


@pytest.fixture(scope="module")
def ema_fit(tiny_encoder, tmp_path_factory):
    """A one-epoch tiny fit with the shipped checkpoints (weights-only best) and EMA on from the command line."""

    folder = tmp_path_factory.mktemp("ema_fit")
    with in_folder(folder):
        config = tiny_config(folder / "fit.yaml", tiny_encoder, {"num_train": 32, "num_val": 16, "num_test": 8},
                             "data_modules.SyntheticAbstractsDataModule",
                             callbacks=shipped_checkpoints(every_n_train_steps=1000))
        cli = run("fit", "--config", str(config), "--trainer.callbacks+=callbacks.EMAWeights",
                  "--trainer.callbacks.decay=0.5")
    return folder, cli


def test_ema_fit_checkpoints_hold_the_average(ema_fit):
    folder, cli = ema_fit
    (ema,) = [c for c in cli.trainer.callbacks if isinstance(c, EMAWeights)]
    assert ema._kwargs["avg_fn"] is not None and int(ema._average_model.n_averaged) == cli.trainer.global_step == 4
    average = dict(ema._average_model.module.named_parameters())
    checkpoints = folder / "runs" / "tiny" / "version_0" / "checkpoints"
    (best_path,) = checkpoints.glob("best-*.ckpt")
    best = torch.load(best_path, weights_only=True)
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert "optimizer_states" not in best and "current_model_state" not in best  # weights only, averaged
    raw = last["current_model_state"]
    trained = [n for n, p in cli.model.named_parameters() if p.requires_grad]
    for name, value in average.items():
        assert torch.equal(best["state_dict"][name], value) and torch.equal(last["state_dict"][name], value)
    assert all(not torch.equal(raw[name], average[name]) for name in trained)
    assert all(torch.equal(cli.model.state_dict()[name], average[name]) for name in average)  # after fit


def test_ema_validation_metric_is_the_averaged_models(ema_fit, tmp_path):
    folder, cli = ema_fit
    logged = {k: float(v) for k, v in cli.trainer.logged_metrics.items() if k.startswith("val/")}
    (best_path,) = (folder / "runs" / "tiny" / "version_0" / "checkpoints").glob("best-*.ckpt")
    again = run("validate", "--ckpt_path", str(best_path), "--trainer.logger", "false",
                "--trainer.enable_progress_bar", "false")
    validated = {k: float(v) for k, v in again.trainer.logged_metrics.items()}
    assert validated["val/loss"] == pytest.approx(logged["val/loss"], abs=1e-6)
    assert validated["val/macro_f1"] == pytest.approx(logged["val/macro_f1"])
    raw = torch.load(folder / "runs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt",
                     weights_only=True)["current_model_state"]
    again.model.load_state_dict(raw)  # the raw weights give another loss
    again.trainer.validate(again.model, datamodule=again.datamodule, verbose=False)
    assert float(again.trainer.logged_metrics["val/loss"]) != pytest.approx(logged["val/loss"], abs=1e-6)


def test_ema_resumes_from_the_last_checkpoint_saved_when_training_ended(ema_fit):
    """last.ckpt written when training ended: the model continues from the raw weights, the average
    from the averaged ones, with its count of updates."""
    folder, _ = ema_fit
    last = folder / "runs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)
    model = TextClassifier(saved["hyper_parameters"]["encoder_name"], saved["hyper_parameters"]["label_names"])
    ema = EMAWeights(decay=0.5)
    ema.setup(None, model, "fit")
    model.load_state_dict(saved["state_dict"])  # what Lightning restores first
    ema.on_load_checkpoint(None, model, saved)
    for name, value in model.named_parameters():
        assert torch.equal(value, saved["current_model_state"][name])
        assert torch.equal(dict(ema._average_model.module.named_parameters())[name], saved["state_dict"][name])
    assert int(ema._average_model.n_averaged) == 4
    with in_folder(folder):
        resumed = run("fit", "--config", str(folder / "fit.yaml"), "--trainer.callbacks+=callbacks.EMAWeights",
                      "--trainer.callbacks.decay=0.5", "--ckpt_path", str(last), "--trainer.max_epochs", "2")
    (ema,) = [c for c in resumed.trainer.callbacks if isinstance(c, EMAWeights)]
    assert int(ema._average_model.n_averaged) == ema._latest_update_step == resumed.trainer.global_step == 8
