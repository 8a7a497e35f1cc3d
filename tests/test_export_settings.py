"""An ONNX export's ``medtext_export.json`` is checked at load (``medtext/deploy/export_schema.py``): each bad or
changed value is one line naming the file and the key; a graph symlinked from outside the folder is
refused; an export written before ``settings_sha256`` loads with a warning. And ``medtext export`` works
on a checkpoint moved away from its run folder and data (the check then runs on random token ids)."""

import contextlib
import io
import json
import re
import shutil

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from cli_helpers import in_folder, run, tiny_config  # noqa: E402
from medtext.commands import main  # noqa: E402
from test_onnx_export import DATA, HEADS  # noqa: E402

SETTINGS = "medtext_export.json"


@pytest.fixture(scope="module")
def export(tiny_encoder, tmp_path_factory):
    """One tiny checkpoint (MLP head, fitted 2 steps) and its ONNX export with int8; tests edit copies."""
    with in_folder(tmp_path_factory.mktemp("export_settings")) as folder:
        config = tiny_config(folder / "fit.yaml", tiny_encoder, DATA, "data_modules.SyntheticAbstractsDataModule",
                             max_steps=2, default_root_dir=str(folder))
        fitted = run("fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={folder / 'runs'}",
                     f"--model.init_args.head={json.dumps(HEADS['mlp'])}")
        ckpt_path = fitted.trainer.checkpoint_callback.best_model_path
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["export", "--ckpt_path", ckpt_path, "--export.quantize", "int8", str(folder / "onnx")]) == 0
        yield {"ckpt": ckpt_path, "dir": folder / "onnx"}


@pytest.fixture
def copy(export, tmp_path):
    """A copy of the export to edit, and a predict file."""
    (tmp_path / "new.csv").write_text("text\nan abstract about a cohort study of asthma\n")
    return shutil.copytree(export["dir"], tmp_path / "onnx")


def edit(folder, change) -> None:
    settings = json.loads((folder / SETTINGS).read_text())
    change(settings)
    (folder / SETTINGS).write_text(json.dumps(settings, indent=2))


def predict(folder, *extra: str) -> int:
    return main(["predict", "--model_dir", str(folder), "--data.predict_file", "new.csv", *extra])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("medtext: error: "), err
    return err


def set_data(key, value):
    return lambda s: s["data"].__setitem__(key, value)


def add_label(settings):
    settings["label_names"].append("extra")
    settings["thresholds"].append(0.5)


TAMPERING = {  # name: (edit, words of the one error line)
    "negative temperature": (lambda s: s.__setitem__("temperature", [-1]), "temperature[0] must be a finite number > 0"),
    "zero temperature": (lambda s: s.__setitem__("temperature", [0]), "temperature[0] must be a finite number > 0"),
    "NaN threshold": (lambda s: s["thresholds"].__setitem__(0, float("nan")), "thresholds[0] must be a finite number in [0, 1]"),
    "reordered labels": (lambda s: s["label_names"].reverse(), f"{SETTINGS} was changed after export"),
    "multi_label flipped": (lambda s: s.__setitem__("multi_label", True), "temperature has 1 value; it needs"),
    "threshold moved": (lambda s: s["thresholds"].__setitem__(0, 0.4), f"{SETTINGS} was changed after export"),
    "unknown format_version": (lambda s: s.__setitem__("format_version", 99), "format_version 99 is not one this medtext reads"),
    "missing key": (lambda s: s["data"].pop("max_length"), "data.max_length is missing"),
    "wrong label count": (add_label, "labels but model.onnx outputs"),
    "max_length beyond the positions": (set_data("max_length", 4096), "data.max_length 4096 is more tokens than model.onnx takes"),
    "unknown truncation": (set_data("truncation", "middle"), 'data.truncation must be one of "head", "head_tail"'),
    "checksum not hex": (lambda s: s.__setitem__("settings_sha256", "x"), "settings_sha256 must be 64 lowercase hex"),
}


@pytest.mark.parametrize("name", TAMPERING)
def test_a_tampered_setting_is_one_line_naming_the_file_and_key(name, copy, capfd):
    change, words = TAMPERING[name]
    edit(copy, change)
    assert predict(copy) == 2
    err = one_error_line(capfd)  # capfd: ONNX Runtime's own log would go to the file descriptor
    assert str(copy / SETTINGS) in err and words in err


@pytest.mark.parametrize("variant", ["model.onnx", "model.int8.onnx"])
def test_a_graph_symlinked_from_outside_the_folder_is_refused(variant, copy, tmp_path, capsys):
    outside = tmp_path / "elsewhere.onnx"
    (copy / variant).replace(outside)
    (copy / variant).symlink_to(outside)
    assert predict(copy, "--onnx.int8", str(variant == "model.int8.onnx").lower()) == 2
    err = one_error_line(capsys)
    assert f"{copy / variant}: a symlink to {outside}, outside the export folder" in err


def test_an_untouched_export_loads_without_a_warning(copy, capsys):
    assert "settings_sha256" in json.loads((copy / SETTINGS).read_text())
    assert predict(copy, "--onnx.int8", "true") == 0
    assert capsys.readouterr().err == ""


def test_an_export_from_before_the_checksum_loads_with_one_warning_line(copy, capsys):
    edit(copy, lambda s: s.pop("settings_sha256"))
    assert predict(copy) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("medtext: warning: ") and "has no settings_sha256" in err
    edit(copy, lambda s: s.__setitem__("temperature", [-1]))  # its values are still checked
    assert predict(copy) == 2 and "temperature[0]" in one_error_line(capsys)


def test_export_of_a_checkpoint_moved_away_from_its_run_folder_and_data(export, tmp_path, monkeypatch, capsys):
    (tmp_path / "moved").mkdir()
    shutil.copy(export["ckpt"], tmp_path / "moved" / "best.ckpt")
    monkeypatch.chdir(tmp_path / "moved")
    assert main(["export", "--ckpt_path", "best.ckpt", "--export.format", "onnx", "out/"]) == 0
    printed = capsys.readouterr().out
    assert "export check fp32: 256 abstracts from random token ids" in printed and "labels identical 100.0%" in printed
    (tmp_path / "moved" / "new.csv").write_text("text\nan abstract\n")
    assert predict("out") == 0


def test_onnx_predict_neutralises_formulas_unless_asked(copy, tmp_path):
    (tmp_path / "new.csv").write_text("id,text\n=1+1,an abstract about asthma\n-3,a cohort study\n")
    assert predict(copy, "--data.id_column", "id", "--predictions.output_file", "safe.csv") == 0
    assert (tmp_path / "safe.csv").read_text().splitlines()[1].startswith("'=1+1,")
    assert (tmp_path / "safe.csv").read_text().splitlines()[2].startswith("-3,")
    assert predict(copy, "--data.id_column", "id", "--predictions.output_file", "raw.csv",
                   "--predictions.escape_formulas", "false") == 0
    assert (tmp_path / "raw.csv").read_text().splitlines()[1].startswith("=1+1,")


def test_onnx_predict_refuses_non_finite_outputs(copy, tmp_path, capsys, monkeypatch):
    import numpy as np

    from medtext.deploy.onnx_predict import ExportedModel

    monkeypatch.setattr(ExportedModel, "logits", lambda self, texts, batch_size=16: np.full((len(texts), 5), np.nan))
    assert predict(copy, "--predictions.output_file", "out.csv") == 2
    assert "outputs are not finite" in one_error_line(capsys) and not (tmp_path / "out.csv").exists()


def test_a_card_without_a_test_report_shows_the_checkpoints_validation_metrics(export):
    card = (export["dir"] / "model_card.md").read_text()
    assert "No test report found beside the checkpoint." in card
    assert "Validation, epoch 0 (the checkpoint's), from the run's `metrics.csv`:" in card
    assert re.search(r"\| val/macro_f1 \| 0\.\d{4} \|", card) and "| val/accuracy |" in card
