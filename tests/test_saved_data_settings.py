"""A checkpoint reused on a differently shaped file: what the user states beats the checkpoint's saved
data settings, and a saved setting that does not fit the file is named in the error with its override.

The checkpoint here was fitted on a user's CSV (string labels, an ``pmid`` id column, an ``abstract``
text column); it is then tested on a file shaped like the official corpus: numeric label ids mapped to
names by a labels file, other column names, no id column.
"""

import csv
import json
from pathlib import Path

import pytest

from cli_helpers import in_folder, run, tiny_config
from data_helpers import text_of
from medtext.commands import main

NAMES = ["alpha disease", "beta disease", "gamma disease"]


@pytest.fixture(scope="module")
def own_checkpoint(tiny_encoder, vocabulary, tmp_path_factory) -> tuple[Path, list[tuple[str, str]], Path]:
    """A checkpoint fitted on an own CSV with string labels and an id column, and its abstracts."""
    rows = [(text_of(vocabulary, 6 + i % 7, shift=3 * (i % 3)), NAMES[i % 3]) for i in range(36)]
    with in_folder(tmp_path_factory.mktemp("own")) as folder:
        own = folder / "own.csv"
        with open(own, "w", newline="") as handle:
            csv.writer(handle).writerows([("pmid", "abstract", "diagnosis"),
                                          *((f"P{i}", text, label) for i, (text, label) in enumerate(rows))])
        config = tiny_config(folder / "fit.yaml", tiny_encoder,
                             {"train_file": str(own), "val_file": str(own), "text_column": "abstract",
                              "label_column": "diagnosis", "id_column": "pmid"}, default_root_dir=str(folder))
        cli = run("fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={folder / 'runs'}")
    return Path(cli.trainer.checkpoint_callback.best_model_path), rows, own


@pytest.fixture
def official(own_checkpoint, tmp_path) -> tuple[Path, Path]:
    """The same abstracts in the official shape (``condition_label`` 1..3, ``medical_abstract``, no id),
    the ids numbered in another order than the checkpoint's classes, and its labels file."""
    ids = {name: str(i) for i, name in enumerate(reversed(NAMES), 1)}
    labels = tmp_path / "labels.csv"
    labels.write_text("condition_label,condition_name\n" + "".join(f"{ids[n]},{n}\n" for n in reversed(NAMES)))
    test_file = tmp_path / "official.csv"
    with open(test_file, "w", newline="") as handle:
        csv.writer(handle).writerows([("condition_label", "medical_abstract"),
                                      *((ids[label], text) for text, label in own_checkpoint[1])])
    return test_file, labels


def metrics(folder: Path) -> dict:
    return json.loads(next(folder.glob("**/test_metrics.json")).read_text())


def test_command_line_data_settings_beat_the_saved_ones_and_classes_map_by_name(own_checkpoint, official, tmp_path):
    checkpoint, _, own_file = own_checkpoint
    test_file, labels = official
    run("test", "--ckpt_path", str(checkpoint), "--data.test_file", str(own_file),
        "--trainer.default_root_dir", str(tmp_path / "own"), "--trainer.logger", "false")
    run("test", "--ckpt_path", str(checkpoint), "--data.test_file", str(test_file), "--data.labels_file", str(labels),
        "--data.text_column", "medical_abstract", "--data.label_column", "condition_label", "--data.id_column", "null",
        "--trainer.default_root_dir", str(tmp_path / "official"), "--trainer.logger", "false")
    own, relabelled = metrics(tmp_path / "own"), metrics(tmp_path / "official")
    assert relabelled == own and any(key.startswith("test/f1/alpha") for key in own), own


@pytest.mark.parametrize("left_out, setting, override", [
    ("--data.id_column", "data.id_column='pmid'", "give --data.id_column with this file's column, or null for none"),
    ("--data.text_column", "data.text_column='abstract'", "give --data.text_column with this file's column"),
])
def test_a_saved_column_that_the_file_lacks_is_named_with_its_override(own_checkpoint, official, tmp_path, capsys,
                                                                        left_out, setting, override):
    checkpoint, _, _ = own_checkpoint
    test_file, labels = official
    given = {"--data.text_column": "medical_abstract", "--data.label_column": "condition_label",
             "--data.id_column": "null"}
    options = [part for key, value in given.items() if key != left_out for part in (key, value)]
    code = main(["test", "--ckpt_path", str(checkpoint), "--data.test_file", str(test_file),
                 "--data.labels_file", str(labels), *options, "--trainer.default_root_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert f"{setting} is a setting saved in {checkpoint}: {override}" in err[0]


def test_unknown_label_values_point_at_the_saved_label_map(own_checkpoint, official, tmp_path, capsys):
    checkpoint, _, _ = own_checkpoint
    test_file, _ = official
    code = main(["test", "--ckpt_path", str(checkpoint), "--data.test_file", str(test_file),
                 "--data.text_column", "medical_abstract", "--data.label_column", "condition_label",
                 "--data.id_column", "null", "--trainer.default_root_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "is not in the label set" in err[0] and "give --data.labels_file FILE" in err[0], err[0]
