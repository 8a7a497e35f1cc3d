"""Every command's ``--help`` fits a screen and points to the rest; an argument error is one line with
a "did you mean" where a close option (or class) exists."""

from pathlib import Path

import pytest

from medtext.commands import main

ROOT = Path(__file__).resolve().parents[1]
SCREEN_LINES, SCREEN_COLUMNS = 66, 100
OWN_CSV = ["--config", "configs/own_csv.yaml", "--data.train_file", "x.csv"]


def run_main(argv, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", str(SCREEN_COLUMNS))
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.mark.parametrize("command", ["fit", "validate", "test", "predict", "check", "baseline"])
def test_a_lightning_commands_help_fits_a_screen_and_points_to_the_rest(command, capsys, monkeypatch):
    code, out, _ = run_main([command, "--help"], capsys, monkeypatch)
    lines = out.splitlines()
    assert code in (0, None) and len(lines) <= SCREEN_LINES and max(map(len, lines)) <= SCREEN_COLUMNS, out
    for needed in ("--config", "--data.train_file", "--data.text_column", "--data.label_column", "--data.id_column",
                   "--model.encoder_name", "--trainer.max_epochs", "--trainer.help", "--help_all", "--data.help"):
        assert needed in out, needed
    assert "--keep_last" in out if command == "fit" else "--keep_last" not in out
    assert "functools.partial" not in out and " at 0x" not in out and "Useful to:" not in out
    if command == "predict":
        assert "--model_dir" in out and "--predictions.output_file" in out


def test_pretrains_help_fits_a_screen_with_its_own_data_and_model_options(capsys, monkeypatch):
    code, out, _ = run_main(["pretrain", "--help"], capsys, monkeypatch)
    lines = out.splitlines()
    assert code in (0, None) and len(lines) <= SCREEN_LINES and max(map(len, lines)) <= SCREEN_COLUMNS, out
    for needed in ("--output_dir", "--data.text_file", "--data.mlm_probability", "--model.lr", "--trainer.help"):
        assert needed in out, needed
    assert "--data.label_column" not in out and "--model.head" not in out


@pytest.mark.parametrize("argv", [["predict", "--model_dir", "m"], ["export"], ["hf-export"], ["explain"],
                                  ["compare"], ["download"]])
def test_medtexts_own_commands_help_fits_a_screen(argv, capsys, monkeypatch):
    code, out, _ = run_main([*argv, "--help"], capsys, monkeypatch)
    lines = out.splitlines()
    assert code in (0, None) and len(lines) <= SCREEN_LINES, out
    assert lines[0].startswith(f"usage: medtext {argv[0]} ") and lines[0].endswith("[options]")


def test_help_all_and_trainer_help_list_every_trainer_option(capsys, monkeypatch):
    code, everything, _ = run_main(["fit", "--help_all"], capsys, monkeypatch)
    assert code in (0, None) and "--trainer.gradient_clip_val" in everything and "--data.help" in everything
    code, trainer, _ = run_main(["fit", "--trainer.help"], capsys, monkeypatch)
    assert code in (0, None) and "--trainer.gradient_clip_val" in trainer and "--trainer.max_epochs" in trainer
    assert "--data." not in trainer and len(trainer.splitlines()) < len(everything.splitlines())


@pytest.mark.parametrize("argv, says", [
    (["fit", *OWN_CSV, "--trainer.max_epoch", "1"],
     "unrecognized arguments: --trainer.max_epoch 1 (did you mean --trainer.max_epochs?)"),
    (["fit", *OWN_CSV, "--data.text_colum", "abstract"],
     "--data.text_colum: 'text_colum' is not an option of data_modules.AbstractsDataModule "
     "(did you mean --data.text_column?)"),
    (["fit", *OWN_CSV, "--model.init_args.head.init_args.dropout_rat", "0.2"],
     "is not an option of medtext.heads.MLPHead (did you mean --model.init_args.head.init_args.dropout?)"),
    (["fit", *OWN_CSV, "--model.head", "medtext.heads.MLPHeadd"],
     "--model.head: medtext.heads has no 'MLPHeadd' (did you mean medtext.heads.MLPHead?)"),
    (["fit", *OWN_CSV, "--data", "data_modules.AbstractDataModule"],
     "(did you mean data_modules.AbstractsDataModule?)"),
    (["fit", *OWN_CSV, "--trainer.max_epochs", "three"], "--trainer.max_epochs: expected int, got 'three'"),
    (["fit", *OWN_CSV, "--data.batch_size", "many"], "--data.batch_size: expected int, got 'many'"),
    (["fit", *OWN_CSV, "--trainer.precision", "15"], "--trainer.precision: expected one of 64, 32, 16, "),
    (["fit", "--config", "configs/no_such.yaml"], "--config: File does not exist: "),
    (["fit", *OWN_CSV, "--trainer.max_epochs"], "--trainer.max_epochs needs a value (one that starts with - is "
                                                 "written --trainer.max_epochs=VALUE)"),
    (["test", "--ckpt_pth", "x.ckpt"], "unrecognized arguments: --ckpt_pth x.ckpt (did you mean --ckpt_path?)"),
])
def test_an_argument_error_is_one_line_with_a_suggestion(argv, says, capsys, monkeypatch):
    # --print_config: should an error not be raised, nothing trains
    code, _, err = run_main([*argv, "--print_config"], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"medtext {argv[0]}: error: ") and says in err, err


def test_a_typo_in_a_config_file_is_one_line_naming_the_class_and_the_option(tmp_path, capsys, monkeypatch):
    config = tmp_path / "mine.yaml"
    config.write_text("data:\n  class_path: data_modules.AbstractsDataModule\n  init_args:\n    label_colum: y\n")
    code, _, err = run_main(["fit", *OWN_CSV, "--config", str(config), "--print_config"], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1, err
    assert "'label_colum' is not an option of data_modules.AbstractsDataModule (did you mean label_column?)" in err


def test_a_config_that_is_not_yaml_is_named_and_a_missing_option_is_written_as_an_option(tmp_path, capsys,
                                                                                           monkeypatch):
    broken = tmp_path / "broken.yaml"
    broken.write_text("data:\n  class_path: [oops\n")
    code, _, err = run_main(["fit", "--config", str(broken), "--print_config"], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and f"{broken}: Problems parsing config" in err, err
    assert "line 2, column 15" in err and "<unicode string>" not in err
    code, _, err = run_main(["explain"], capsys, monkeypatch)
    assert code == 2 and err == "medtext explain: error: missing --ckpt_path\n"


def test_an_unlike_option_gets_no_suggestion(capsys, monkeypatch):
    code, _, err = run_main(["fit", *OWN_CSV, "--zzz", "1", "--print_config"], capsys, monkeypatch)
    assert code == 2 and err.strip() == "medtext fit: error: unrecognized arguments: --zzz 1"
