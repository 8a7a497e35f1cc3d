"""A diverged run (learning rates far too high) stops ``fit`` with one line and keeps the checkpoints
saved before; calibration never sees misaligned validation rows; validate, test and predict refuse
non-finite weights or outputs instead of writing NaN probabilities (medtext/core/divergence.py)."""

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch

from cli_helpers import in_folder, shipped_checkpoints, tiny_config
from medtext import TextClassifier
from medtext.model.calibration import fit_on_validation
from medtext.commands import main
from medtext.core.errors import MedtextError

SYNTHETIC = {"num_train": 48, "num_val": 16, "num_test": 8}  # 6 training steps per epoch
LABELS = ["a", "b", "c"]


class NaNWeightsAfterStep(pl.Callback):
    """Test only: the head's weights become NaN after ``step``'s update, while that step's loss was finite."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step + 1:
            with torch.no_grad():
                for parameter in pl_module.head.parameters():
                    parameter.fill_(float("nan"))


def fit_config(tmp_path: Path, tiny_encoder: str, every_n_train_steps: int) -> Path:
    """The shipped checkpoints (best, last every N steps, last after validation), all saving on an exception."""
    checkpoints = shipped_checkpoints(every_n_train_steps)
    for checkpoint in checkpoints:
        checkpoint["init_args"]["save_on_exception"] = True
    return tiny_config(tmp_path / "fit.yaml", tiny_encoder, SYNTHETIC, "data_modules.SyntheticAbstractsDataModule",
                       max_epochs=2, callbacks=checkpoints)


def error_line(capsys) -> str:
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("medtext: error:")]
    assert len(errors) == 1, errors
    return errors[0]


def finite_checkpoints(folder: Path) -> dict[str, int]:
    """Every checkpoint below ``folder``: its global step, after checking its weights are finite."""
    steps = {}
    for path in sorted(folder.rglob("*.ckpt")):
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        for name, value in checkpoint["state_dict"].items():
            assert not value.is_floating_point() or torch.isfinite(value).all(), f"{path}: {name}"
        steps[path.name] = checkpoint["global_step"]
    return steps


def test_huge_learning_rates_stop_fit_with_one_line_and_keep_last(tiny_encoder, tmp_path, capsys):
    config = fit_config(tmp_path, tiny_encoder, every_n_train_steps=2)
    assert main(["fit", "--config", str(config), "--model.init_args.head_lr", "1e6",
                 "--model.init_args.encoder_lr", "1e5"]) == 2
    error = error_line(capsys)
    match = re.fullmatch(r"medtext: error: training diverged at step (\d+) .*", error)
    assert match and "head_lr=1e+06" in error and "encoder_lr=1e+05" in error and "lower learning rate" in error
    steps = finite_checkpoints(Path("runs"))
    assert 0 < steps["last.ckpt"] <= int(match.group(1))  # saved before the divergence, not after
    last = next(Path("runs").rglob("last.ckpt"))
    assert TextClassifier.load_from_checkpoint(last, map_location="cpu").hparams.head_lr == 1e6


def test_nan_weights_after_a_finite_loss_are_never_saved(tiny_encoder, tmp_path, capsys):
    """The every-N-steps save of the step that made the weights NaN (its loss still finite) is refused."""
    config = fit_config(tmp_path, tiny_encoder, every_n_train_steps=1)
    assert main(["fit", "--config", str(config), "--trainer.callbacks+=test_divergence.NaNWeightsAfterStep",
                 "--trainer.callbacks.step=1"]) == 2
    assert error_line(capsys).startswith("medtext: error: training diverged at step 1: ")
    assert finite_checkpoints(Path("runs"))["last.ckpt"] == 1  # the one saved before step 1's update


def test_calibration_keeps_nan_rows_aligned_and_refuses_them(tiny_encoder):
    model = TextClassifier(tiny_encoder, label_names=LABELS)
    model.trainer = SimpleNamespace(state=SimpleNamespace(fn="fit"), sanity_checking=False, global_step=7)
    logits = torch.randn(6, 3)
    logits[1, 0], logits[4, 2] = float("nan"), float("inf")
    model.val_logits.update(logits)
    model.val_targets.update(torch.tensor([0, 1, 2, 0, 1, 2]).float())
    assert model.val_logits.compute().shape == (6, 3)  # NaN kept in place: rows stay aligned with targets
    with pytest.raises(MedtextError, match="outputs are not finite for 2 of 6 abstracts") as error:
        fit_on_validation(model)
    assert "\n" not in str(error.value) and "head_lr=0.001" in str(error.value)
    assert torch.equal(model.calibrator.temperature, torch.ones(1))  # nothing fitted on them


@pytest.fixture(scope="module")
def good_fit(tiny_encoder, tmp_path_factory) -> SimpleNamespace:
    """The finite ``last.ckpt`` of a two-step fit, and its data's ``test.csv``."""
    with in_folder(tmp_path_factory.mktemp("good")) as folder:
        config = tiny_config(folder / "fit.yaml", tiny_encoder, SYNTHETIC, "data_modules.SyntheticAbstractsDataModule")
        assert main(["fit", "--config", str(config), "--trainer.max_steps", "2"]) == 0
        return SimpleNamespace(checkpoint=next(folder.rglob("last.ckpt")),
                               test_file=str(next(folder.rglob("test.csv"))))


@pytest.mark.parametrize("command", ["predict", "test", "validate"])
@pytest.mark.parametrize("weights", ["nan", "overflowing"])
def test_non_finite_checkpoint_is_refused(good_fit, tmp_path, capsys, command, weights):
    checkpoint = torch.load(good_fit.checkpoint, map_location="cpu", weights_only=False)
    for name, value in checkpoint["state_dict"].items():
        if name.startswith("head.") and name.endswith("weight"):  # overflowing: finite, but the outputs are not
            value.fill_(float("nan") if weights == "nan" else 3e38)
    bad = tmp_path / "bad.ckpt"
    torch.save(checkpoint, bad)
    out = tmp_path / "predictions.csv"
    options = ["--data.predict_file", good_fit.test_file, "--predictions.output_file", str(out)] \
        if command == "predict" else []
    assert main([command, "--ckpt_path", str(bad), *options]) == 2
    error = error_line(capsys)
    assert str(bad) in error and "diverged" in error
    assert ("non-finite weights" if weights == "nan" else "outputs are not finite") in error
    assert not out.exists()


@pytest.mark.parametrize("command", ["export", "hf-export", "explain", "ensemble"])
def test_commands_that_load_a_checkpoint_refuse_nan_weights(good_fit, tmp_path, capsys, command):
    checkpoint = torch.load(good_fit.checkpoint, map_location="cpu", weights_only=False)
    next(value for name, value in checkpoint["state_dict"].items() if name.startswith("head.")).fill_(float("nan"))
    bad = tmp_path / "bad.ckpt"
    torch.save(checkpoint, bad)
    out = tmp_path / "out"
    argv = {"export": ["export", "--ckpt_path", str(bad), str(out)],
            "hf-export": ["hf-export", str(bad), str(out)],
            "explain": ["explain", "--ckpt_path", str(bad), "--data.predict_file", good_fit.test_file,
                        "--explain.output_file", str(out / "explain.html")],
            "ensemble": ["predict", "--ckpt_path", str(good_fit.checkpoint), "--ensemble", str(bad),
                         "--data.predict_file", good_fit.test_file, "--predictions.output_file", str(out / "p.csv")]}
    assert main(argv[command]) == 2
    error = error_line(capsys)
    assert str(bad) in error and "non-finite weights" in error
    assert not out.exists()
