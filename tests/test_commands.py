"""``python -m medtext COMMAND``: one table dispatches every command; each of medtext's own is a
module's ``main(args)`` with ``--help`` and ``--config``; no option may be abbreviated."""

import inspect
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForSequenceClassification

from cli_helpers import in_folder, run, tiny_config
from medtext.commands import COMMANDS, LIGHTNING_COMMANDS, entry_function, main

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_command_of_the_table(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: medtext COMMAND")
    for command in [*LIGHTNING_COMMANDS, *COMMANDS]:
        assert f"\n  {command} " in out, command


def test_no_command_prints_the_usage_and_fails(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2 and "commands:" in capsys.readouterr().err


def test_an_unknown_command_is_one_line_naming_it(capsys):
    assert main(["pretrian", "--config", "x.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown command 'pretrian'" in err and "hf-export" in err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_is_a_main_of_its_arguments_with_help(command, capsys):
    entry = entry_function(command)
    assert entry.__name__.endswith("main") and list(inspect.signature(entry).parameters) == ["args"]
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and out.startswith(f"usage: medtext {command} ") and "--config" in out


@pytest.fixture(scope="module")
def bert_head_checkpoint(tiny_encoder, tmp_path_factory):
    """A fitted checkpoint whose head is BERT's own sequence-classification head."""
    with in_folder(tmp_path_factory.mktemp("hf_export")) as folder:
        config = tiny_config(folder / "fit.yaml", tiny_encoder, {"num_train": 16, "num_val": 8, "num_test": 8},
                             "data_modules.SyntheticAbstractsDataModule", max_steps=2, default_root_dir=str(folder))
        head = {"class_path": "medtext.heads.MLPHead",
                "init_args": {"pooling": "cls", "hidden_dims": [32], "activation": "tanh"}}
        fitted = run("fit", "--config", str(config), f"--model.init_args.head={yaml.safe_dump(head)}",
                     f"--trainer.logger.init_args.save_dir={folder / 'runs'}")
        return fitted.trainer.checkpoint_callback.best_model_path, fitted.model.eval()


def test_hf_export_through_the_table_from_a_config_file(bert_head_checkpoint, tmp_path, capsys):
    ckpt_path, model = bert_head_checkpoint
    config = tmp_path / "export.yaml"
    config.write_text(yaml.safe_dump({"ckpt_path": ckpt_path, "out_dir": str(tmp_path / "exported")}))
    assert main(["hf-export", "--config", str(config)]) == 0
    assert f"wrote {tmp_path / 'exported'}" in capsys.readouterr().out
    exported = AutoModelForSequenceClassification.from_pretrained(tmp_path / "exported").eval()
    ids = torch.randint(5, 50, (2, 10))
    with torch.no_grad():
        torch.testing.assert_close(exported(input_ids=ids, attention_mask=torch.ones_like(ids)).logits,
                                   model(ids, torch.ones_like(ids)), rtol=1e-4, atol=1e-5)
    assert exported.config.id2label == dict(enumerate(model.label_names))


def test_a_bad_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["hf-export", str(bad), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("medtext: error: ") and "bad.ckpt" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, full", [
    (["fit", "--config", "configs/demo.yaml", "--trainer.max_epoch", "1", "--print_config"], "--trainer.max_epochs"),
    (["check", "--config", "configs/demo.yaml", "--data.num_trai", "5"], "--data.num_train"),
    (["pretrain", "--config", "configs/pretrain/minilm_medical_abstracts.yaml", "--trainer.max_epoch", "1",
      "--print_config"], "--trainer.max_epochs"),
    (["export", "--ckpt_path", "x.ckpt", "--export.form", "hf", "out"], "--export.format"),
    (["compare", "a", "b", "--resample", "10"], "--resamples"),
    (["explain", "--ckpt_pat", "x.ckpt"], "--ckpt_path"),
    (["predict", "--model_dir", "m", "--data.predict_fil", "x.csv"], "--data.predict_file"),
    (["download", "bert-base-uncased", "--cache_di", "x"], "--cache_dir"),
])
def test_an_abbreviated_option_is_refused_in_one_line_naming_the_option(argv, full, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    abbreviated = next(arg for arg in argv if full.startswith(arg) and arg.startswith("--") and arg != full)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"medtext {argv[0]}: error: ") and abbreviated in err and f"did you mean {full}" in err
