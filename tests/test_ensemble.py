"""``test``/``predict --ckpt_path A --ensemble B ...`` average the class probabilities of the checkpoints."""

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from cli_helpers import in_folder, run, tiny_config
from medtext.commands import main
from medtext.core.metrics import metric_label

SYNTHETIC = {"num_train": 40, "num_val": 16, "num_test": 20}


@pytest.fixture(scope="module")
def seeds(tiny_encoder, tmp_path_factory) -> tuple[Path, Path, Path]:
    """Two checkpoints fitted with different seeds on the same data, and its test file."""
    with in_folder(tmp_path_factory.mktemp("ensemble")) as folder:
        checkpoints = []
        for seed in (7, 8):
            config = tiny_config(folder / "fit.yaml", tiny_encoder, {**SYNTHETIC, "data_dir": str(folder / "data")},
                                 "data_modules.SyntheticAbstractsDataModule", default_root_dir=str(folder))
            cli = run("fit", "--config", str(config), "--seed_everything", str(seed),
                      f"--trainer.logger.init_args.save_dir={folder / 'runs'}",
                      f"--trainer.logger.init_args.name=seed{seed}")
            checkpoints.append(Path(cli.trainer.checkpoint_callback.best_model_path))
    return checkpoints[0], checkpoints[1], folder / "data" / "test.csv"


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def predict(tmp_path: Path, name: str, test_file: Path, checkpoint: Path, *ensemble: Path) -> list[dict]:
    out = tmp_path / f"{name}.csv"
    members = ["--ensemble", *map(str, ensemble)] if ensemble else []
    run("predict", "--ckpt_path", str(checkpoint), "--data.predict_file", str(test_file),
        "--predictions.output_file", str(out), *members)
    return rows(out)


def probabilities(predictions: list[dict]) -> torch.Tensor:
    return torch.tensor([[float(v) for k, v in row.items() if k.startswith("prob_")] for row in predictions])


def test_predict_averages_the_members_probabilities(seeds, tmp_path):
    a, b, test_file = seeds
    single_a, single_b = predict(tmp_path, "a", test_file, a), predict(tmp_path, "b", test_file, b)
    assert probabilities(single_a).sub(probabilities(single_b)).abs().max() > 1e-4, "the seeds differ"
    both = predict(tmp_path, "ab", test_file, a, b)
    assert list(both[0]) == list(single_a[0]) and len(both) == SYNTHETIC["num_test"]
    mean = (probabilities(single_a) + probabilities(single_b)) / 2
    assert torch.allclose(probabilities(both), mean, atol=1e-5)
    names = [column[len("prob_"):] for column in both[0] if column.startswith("prob_")]
    assert [metric_label(row["label"]) for row in both] == [names[i] for i in mean.argmax(-1).tolist()]


def test_an_ensemble_of_a_checkpoint_with_itself_is_the_checkpoint(seeds, tmp_path):
    a, _, test_file = seeds
    single, twice = predict(tmp_path, "a", test_file, a), predict(tmp_path, "aa", test_file, a, a)
    assert [row["label"] for row in twice] == [row["label"] for row in single]
    assert torch.allclose(probabilities(twice), probabilities(single), atol=1e-5)


def permuted_copy(checkpoint: Path, path: Path, order: list[int]) -> Path:
    """The same model with its classes (names and output rows) in ``order``."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    names = saved["hyper_parameters"]["label_names"]
    saved["hyper_parameters"]["label_names"] = [names[i] for i in order]
    state = saved["state_dict"]
    for key in [k for k, v in state.items() if k.startswith("head.") and v.shape[:1] == (len(names),)]:
        state[key] = state[key][order]
    state["thresholds"] = state["thresholds"][order]
    torch.save(saved, path)
    return path


def test_a_member_with_classes_in_another_order_is_mapped_by_name(seeds, tmp_path):
    a, _, test_file = seeds
    permuted = permuted_copy(a, tmp_path / "permuted.ckpt", [3, 0, 4, 2, 1])
    single, mixed = predict(tmp_path, "a", test_file, a), predict(tmp_path, "mixed", test_file, a, permuted)
    assert list(mixed[0]) == list(single[0])
    assert torch.allclose(probabilities(mixed), probabilities(single), atol=1e-5)


def test_test_with_an_ensemble_reports_the_metrics_of_the_averaged_probabilities(seeds, tmp_path):
    a, b, test_file = seeds
    run("test", "--ckpt_path", str(a), "--ensemble", str(b), "--data.test_file", str(test_file),
        "--trainer.default_root_dir", str(tmp_path / "test"), "--trainer.logger", "false")
    metrics = json.loads(next((tmp_path / "test").glob("**/test_metrics.json")).read_text())
    predicted = [row["label"] for row in predict(tmp_path, "ab", test_file, a, b)]
    truth = [row["label"] for row in rows(test_file)]
    names = sorted(set(truth) | set(predicted))
    counts = Counter(zip(truth, predicted))
    f1 = []
    for name in names:
        tp = counts[name, name]
        fp = sum(counts[t, name] for t in names) - tp
        fn = sum(counts[name, p] for p in names) - tp
        f1.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    accuracy = sum(counts[n, n] for n in names) / len(truth)
    assert metrics["test/accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert len(names) == 5, "every class occurs, so the macro mean is over the same classes"
    assert metrics["test/macro_f1"] == pytest.approx(sum(f1) / len(names), abs=1e-6)


@pytest.mark.parametrize("change, differs", [
    ("names", "the member's classes are not --ckpt_path's: missing ['neoplasms'], extra ['tumours']"),
    ("task", "the member is multi-label but --ckpt_path is single-label"),
])
def test_a_member_of_another_task_or_classes_is_one_line(seeds, tmp_path, capsys, change, differs):
    a, b, test_file = seeds
    saved = torch.load(b, map_location="cpu", weights_only=True)
    hparams = saved["hyper_parameters"]
    if change == "names":
        hparams["label_names"] = ["tumours" if n == "neoplasms" else n for n in hparams["label_names"]]
    else:
        hparams["multi_label"] = True
    other = tmp_path / "other.ckpt"
    torch.save(saved, other)
    code = main(["test", "--ckpt_path", str(a), "--ensemble", str(other), "--data.test_file", str(test_file)])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and last == f"medtext: error: --ensemble {other}: {differs}", last


def test_members_stay_out_of_the_state_dict_and_of_autograd(seeds):
    from medtext import TextClassifier
    from medtext.runtime.ensemble import EnsembleClassifier, attach_ensemble

    a, b, _ = seeds
    model = TextClassifier.load_from_checkpoint(a, map_location="cpu", weights_only=True).eval()
    keys = set(model.state_dict())
    attach_ensemble(model, [b], [list(range(len(model.label_names)))])
    assert set(model.state_dict()) == keys and isinstance(model.ensemble, EnsembleClassifier)
    (member,) = model.ensemble.members
    assert not member.training and not any(p.requires_grad for p in member.parameters())
    ids = torch.arange(1, 9).unsqueeze(0)
    mean = model.logits(ids, torch.ones_like(ids))
    alone = [m(ids, torch.ones_like(ids)) for m in (model, member)]  # forward: each model's own logits
    assert torch.allclose(mean.raw.softmax(-1), (alone[0].softmax(-1) + alone[1].softmax(-1)) / 2, atol=1e-6)
    calibrated = [(z / m.calibrator.temperature).softmax(-1) for z, m in zip(alone, (model, member))]
    assert torch.allclose(mean.scaled.softmax(-1), (calibrated[0] + calibrated[1]) / 2, atol=1e-6)


def test_fit_takes_no_ensemble(tiny_encoder, tmp_path, capsys):
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, SYNTHETIC, "data_modules.SyntheticAbstractsDataModule")
    assert main(["fit", "--config", str(config), "--ensemble", "b.ckpt"]) == 2
    assert capsys.readouterr().err == "medtext: error: --ensemble is for validate, test, predict, not fit\n"
