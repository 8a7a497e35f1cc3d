"""A checkpoint's classes and their order are the truth for test, validate and predict.

A data-side label set in another order is mapped by class name; one naming other classes stops with
one line. Predict takes the user's own file (any format, own text and id columns) with a
checkpoint of any data module, without the label map retyped and without the training data.
"""

import csv
import json
import shutil
from pathlib import Path

import pytest

from cli_helpers import in_folder, run, tiny_config
from conftest import SHARED_DATA
from medtext.commands import main

SYNTHETIC = {"num_train": 60, "num_val": 20, "num_test": 30}
NAMES = ["neoplasms", "digestive system diseases", "nervous system diseases", "cardiovascular diseases",
         "general pathological conditions"]


@pytest.fixture(scope="module")
def demo_checkpoint(tiny_encoder, tmp_path_factory) -> tuple[Path, Path]:
    """A checkpoint trained by the demo data module, and its test file (its token cache in its folder too)."""
    with in_folder(tmp_path_factory.mktemp("demo")) as folder:
        config = tiny_config(folder / "fit.yaml", tiny_encoder, {**SYNTHETIC, "data_dir": str(folder / "data")},
                             "data_modules.SyntheticAbstractsDataModule", max_epochs=2, default_root_dir=str(folder))
        cli = run("fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={folder / 'runs'}")
    return Path(cli.trainer.checkpoint_callback.best_model_path), folder / "data" / "test.csv"


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def predict(checkpoint: Path, tmp_path: Path, name: str, *options: str) -> list[dict]:
    out = tmp_path / f"{name}.csv"
    run("predict", "--ckpt_path", str(checkpoint), "--predictions.output_file", str(out), *options)
    return rows(out)


def test_a_permuted_label_map_or_labels_file_changes_no_prediction(demo_checkpoint, tmp_path):
    checkpoint, test_file = demo_checkpoint
    expected = predict(checkpoint, tmp_path, "plain", "--data.predict_file", str(test_file))
    assert list(expected[0])[2:] == ["prob_" + n.replace(" ", "_") for n in NAMES], "the checkpoint's order"
    permuted = NAMES[1:] + NAMES[:1]
    by_map = predict(checkpoint, tmp_path, "map", "--data.predict_file", str(test_file),
                     "--data.label_map", json.dumps({name: name for name in permuted}))
    labels_file = tmp_path / "labels.csv"
    labels_file.write_text("value,name\n" + "".join(f"{i},{name}\n" for i, name in enumerate(permuted, 1)))
    by_file = predict(checkpoint, tmp_path, "file", "--data.predict_file", str(test_file),
                      "--data.labels_file", str(labels_file), "--data.label_map", "null")
    assert by_map == expected and by_file == expected


def test_test_on_a_file_with_permuted_label_ids_gives_the_same_metrics(demo_checkpoint, tmp_path):
    checkpoint, test_file = demo_checkpoint
    run("test", "--ckpt_path", str(checkpoint), "--data.test_file", str(test_file),
        "--trainer.default_root_dir", str(tmp_path / "plain"), "--trainer.logger", "false")
    permuted = [NAMES[i] for i in (3, 0, 4, 2, 1)]
    ids = {name: str(i) for i, name in enumerate(permuted, 1)}
    (tmp_path / "labels.csv").write_text("id,name\n" + "".join(f"{ids[n]},{n}\n" for n in permuted))
    with open(tmp_path / "relabelled.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([row["text"], ids[row["label"]]] for row in rows(test_file))
    run("test", "--ckpt_path", str(checkpoint), "--data.test_file", str(tmp_path / "relabelled.csv"),
        "--data.labels_file", str(tmp_path / "labels.csv"), "--data.label_map", "null",
        "--trainer.default_root_dir", str(tmp_path / "relabelled"), "--trainer.logger", "false")
    plain, relabelled = (json.loads(next((tmp_path / name).glob("**/test_metrics.json")).read_text())
                         for name in ("plain", "relabelled"))
    assert relabelled == plain and "test/f1/neoplasms" in plain


@pytest.mark.parametrize("label_map, differs", [
    ({"a": "neoplasms", "b": "heart"}, "the data's 2 classes are not the checkpoint's 5: missing ["),
    ({n: n.upper() for n in NAMES}, "not in the checkpoint ['NEOPLASMS', "),
])
def test_a_label_set_naming_other_classes_is_one_line(demo_checkpoint, capsys, label_map, differs):
    checkpoint, test_file = demo_checkpoint
    code = main(["test", "--ckpt_path", str(checkpoint), "--data.test_file", str(test_file),
                 "--data.label_map", json.dumps(label_map)])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("medtext: error: data.label_map: ") and differs in last, last


def own_file(test_file: Path, path: Path, text: str = "abstract", limit: int = 8) -> Path:
    """The test abstracts as a user's JSON Lines file with its own text and id columns."""
    lines = [json.dumps({"pmid": f"PMID{i}", text: row["text"], "journal": "J"})
             for i, row in enumerate(rows(test_file)[:limit])]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_predict_own_file_with_the_demo_checkpoint_by_any_data_module(demo_checkpoint, tmp_path):
    checkpoint, test_file = demo_checkpoint
    expected = predict(checkpoint, tmp_path, "plain", "--data.predict_file", str(test_file))[:8]
    mine = own_file(test_file, tmp_path / "mine.jsonl")
    for data_class in ([], ["--data", "data_modules.AbstractsDataModule"]):
        got = predict(checkpoint, tmp_path, f"own{len(data_class)}", *data_class, "--data.predict_file", str(mine),
                      "--data.text_column", "abstract", "--data.id_column", "pmid",
                      "--predictions.keep_columns", "journal,abstract")
        assert list(got[0])[:2] == ["pmid", "label"] and list(got[0])[-2:] == ["journal", "abstract"]
        assert [r["pmid"] for r in got] == [f"PMID{i}" for i in range(8)]
        assert [r["label"] for r in got] == [r["label"] for r in expected]
        assert [r["prob_neoplasms"] for r in got] == [r["prob_neoplasms"] for r in expected]


RECIPES = {
    "medical_abstracts": ("data_modules.MedicalAbstractsDataModule", ["medical_tc_train_partial.csv",
                                                                       "medical_tc_labels.csv"]),
    "hoc": ("data_modules.HoCDataModule", ["hoc_train.csv", "hoc_val.csv", "labels.json"]),
}


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_predict_own_file_with_a_recipe_checkpoint_after_its_data_is_gone(recipe, tiny_encoder, tmp_path):
    data_class, names = RECIPES[recipe]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for name in names:  # a small slice of the corpus
        lines = (SHARED_DATA / recipe / name).read_text().splitlines(keepends=True)
        (data_dir / name).write_text("".join(lines[:81]) if name.endswith(".csv") and "labels" not in name
                                     else "".join(lines))
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {"data_dir": str(data_dir)}, data_class,
                         limit_train_batches=2, limit_val_batches=2)
    fitted = run("fit", "--config", str(config), *(["--trainer.callbacks.monitor=val/micro_f1"]
                                                   if recipe == "hoc" else []))
    checkpoint = Path(fitted.trainer.checkpoint_callback.best_model_path)
    names = fitted.model.label_names
    shutil.rmtree(data_dir)
    mine = tmp_path / "mine.jsonl"
    mine.write_text("".join(json.dumps({"pmid": f"P{i}", "abstract": f"tumour carcinoma case {i}."}) + "\n"
                            for i in range(5)))
    got = predict(checkpoint, tmp_path, "own", "--data.predict_file", str(mine),
                  "--data.text_column", "abstract", "--data.id_column", "pmid")
    assert [r["pmid"] for r in got] == [f"P{i}" for i in range(5)]
    assert list(got[0])[2:] == [f"prob_{n}".replace(" ", "_") for n in names]


def test_config_free_predict_reads_the_checkpoint_settings_once(demo_checkpoint, tmp_path, monkeypatch):
    """One memory-mapped read of the settings and one of the weights; never a full load to read them."""
    import torch

    from medtext.runtime.checkpoint import _read_checkpoint

    checkpoint, test_file = demo_checkpoint
    _read_checkpoint.cache_clear()
    loads, real_load = [], torch.load

    def counting_load(f, *args, **kwargs):
        if Path(str(f)).resolve() == checkpoint.resolve():
            loads.append(bool(kwargs.get("mmap")))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    predict(checkpoint, tmp_path, "once", "--data.predict_file", str(test_file))
    assert loads == [True, True], (
        f"checkpoint loads (memory-mapped?): {loads}; medtext reads the settings once (medtext/runtime/checkpoint.py) and "
        "Lightning restores the weights; another load means LightningCLI reads hyperparameters again in a hook "
        "that medtext/commands/cli.py no longer overrides (MedtextCLI._parse_ckpt_path)")


def test_options_and_configs_override_the_checkpoints_defaults(demo_checkpoint, tmp_path):
    checkpoint, test_file = demo_checkpoint
    config = tmp_path / "predict.yaml"
    config.write_text(f"data:\n  init_args:\n    predict_file: {test_file}\n    batch_size: 3\n")
    cli = run("predict", "--ckpt_path", str(checkpoint), "--config", str(config), "--data.eval_batch_size", "5",
              "--predictions.output_file", str(tmp_path / "out.csv"))
    hparams = cli.datamodule.hparams
    assert (hparams["batch_size"], hparams["eval_batch_size"], hparams["num_train"]) == (3, 5, SYNTHETIC["num_train"])
    assert len(rows(tmp_path / "out.csv")) == SYNTHETIC["num_test"]


def test_a_checkpoint_with_the_earlier_data_key_still_predicts(demo_checkpoint, tmp_path):
    import torch

    from medtext.runtime.checkpoint import class_config

    checkpoint, test_file = demo_checkpoint
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    saved["medtext_data"] = class_config(saved.pop("datamodule_hyper_parameters"), "data")
    legacy = tmp_path / "legacy.ckpt"
    torch.save(saved, legacy)
    assert predict(legacy, tmp_path, "legacy", "--data.predict_file", str(test_file)) == \
        predict(checkpoint, tmp_path, "current", "--data.predict_file", str(test_file))


def test_a_cache_dir_saved_in_a_checkpoint_is_not_where_predict_writes(demo_checkpoint, tmp_path, monkeypatch):
    import torch

    checkpoint, test_file = demo_checkpoint
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    saved["datamodule_hyper_parameters"]["cache_dir"] = str(tmp_path / "chosen_by_the_checkpoint")
    moved = tmp_path / "moved.ckpt"
    torch.save(saved, moved)
    monkeypatch.setenv("MEDTEXT_CACHE_DIR", str(tmp_path / "users_cache"))
    assert len(predict(moved, tmp_path, "out", "--data.predict_file", str(test_file))) == SYNTHETIC["num_test"]
    assert not (tmp_path / "chosen_by_the_checkpoint").exists() and (tmp_path / "users_cache").is_dir()
