"""``python -m medtext pretrain``: MLM pretraining on unlabeled abstracts writes a Hugging Face folder
that loads with medtext's encoder loaders and is accepted by ``fit`` as ``encoder_name``."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run, tiny_config
from sweep_helpers import write_medical_abstracts
from transformers import BertConfig, BertForMaskedLM

from data_modules import MedicalAbstractsDataModule, UnlabeledTextDataModule
from data_modules.synthetic import generate_abstracts
from data_modules.unlabeled import MaskingCollator
from medtext.commands import main
from medtext.core.encoders import load_encoder, load_tokenizer
from medtext.core.errors import DataError
from medtext.commands.pretrain import MaskedLMPretraining, load_masked_lm, write_pretrained

TRAINER = ["--trainer.accelerator=cpu", "--trainer.max_steps=3", "--trainer.val_check_interval=3",
           "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
           "--trainer.logger=false", "--data.max_length=32", "--data.batch_size=4", "--seed_everything=3"]


def texts(n: int = 12) -> list[str]:
    return [row["text"] for row in generate_abstracts(n, seed=1)]


def pretrain(encoder: str, out: Path, *data: str) -> int:
    return main(["pretrain", f"--model.encoder_name={encoder}", "--model.lr=1e-3", f"--output_dir={out}",
                 *TRAINER, *data])


def assert_loads(folder: Path) -> None:
    assert (folder / "config.json").is_file() and not list(folder.parent.glob(f".{folder.name}.*"))
    encoder, tokenizer = load_encoder(str(folder)), load_tokenizer(str(folder))
    assert encoder.config.hidden_size == 32 and tokenizer.is_fast
    again = BertForMaskedLM.from_pretrained(folder)  # the MLM head was written too
    assert again.get_output_embeddings().weight.data_ptr() == again.get_input_embeddings().weight.data_ptr()


@pytest.mark.slow  # an in-process pretrain and fit, ~5 s
def test_pretrain_from_a_txt_file_then_fit_from_the_folder(tiny_encoder, tmp_path, capsys, caplog):
    corpus = tmp_path / "abstracts.txt"
    corpus.write_text("\n".join(texts()) + "\n\n")  # blank lines are skipped
    out = tmp_path / "pretrained"
    assert pretrain(tiny_encoder, out, f"--data.text_file={corpus}") == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert "has no MLM head in its weights: a fresh head" in caplog.text and "val/loss" in caplog.text
    assert_loads(out)
    config = tiny_config(tmp_path / "fit.yaml", str(out), {"num_train": 16, "num_val": 8, "num_test": 8},
                         "data_modules.SyntheticAbstractsDataModule", max_steps=2)
    fitted = run("fit", "--config", str(config))
    assert fitted.trainer.state.finished and fitted.trainer.global_step == 2
    assert fitted.model.hparams.encoder_name == str(out)


def test_pretrain_from_a_csv_column(tiny_encoder, tmp_path):
    table = tmp_path / "abstracts.csv"
    table.write_text("id,abstract\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(texts())))
    out = tmp_path / "from_csv"
    assert pretrain(tiny_encoder, out, f"--data.text_file={table}", "--data.text_column=abstract") == 0
    assert_loads(out)


def test_pretrain_from_a_task_data_module_reads_only_its_training_rows(tiny_encoder, tmp_path):
    data = write_medical_abstracts(tmp_path / "ma")
    task = MedicalAbstractsDataModule(data_dir=str(data), tokenizer_name=tiny_encoder, max_length=32)
    task.setup("fit")  # the fit's own split: validation rows held out of medical_tc_train.csv
    fit_val = {task.load_split("train")["tokens"][i].tobytes() for i in task.datasets["val"].indices}
    unlabeled = UnlabeledTextDataModule(task_data=MedicalAbstractsDataModule(data_dir=str(data)),
                                        tokenizer_name=tiny_encoder, max_length=32)
    used, _ = unlabeled.read_texts()
    assert len(used) == len(task.datasets["train"]) and len(used) + len(fit_val) == 40
    tokens = unlabeled.load_tokens()
    assert not {tokens[i].tobytes() for i in range(len(tokens))} & fit_val, "a fit validation text was used"


@pytest.mark.slow  # an in-process pretrain, ~3 s
def test_pretrain_from_a_task_data_module(tiny_encoder, tmp_path):
    data = write_medical_abstracts(tmp_path / "ma")
    out = tmp_path / "from_task"
    task_data = ('{"class_path": "data_modules.MedicalAbstractsDataModule", '
                 f'"init_args": {{"data_dir": "{data}"}}}}')
    assert pretrain(tiny_encoder, out, f"--data.task_data={task_data}") == 0
    assert_loads(out)


def test_an_encoder_without_mlm_head_gets_a_fresh_tied_head(tiny_encoder):
    model = load_masked_lm(tiny_encoder)  # tests/tiny_encoder.py saves a plain BertModel
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    transform = model.cls.predictions.transform
    assert torch.equal(transform.LayerNorm.weight, torch.ones(32)) and not transform.LayerNorm.bias.any()
    assert not transform.dense.bias.any() and not model.cls.predictions.bias.any()
    assert 0.01 < transform.dense.weight.std().item() < 0.03  # initializer_range 0.02
    assert model.cls.predictions.decoder.bias is model.cls.predictions.bias


@pytest.mark.slow  # 40 training steps, ~3 s
def test_mlm_loss_goes_down_on_a_repeated_text(tiny_encoder):
    torch.manual_seed(0)
    module = MaskedLMPretraining(tiny_encoder)
    tokenizer = load_tokenizer(tiny_encoder)
    ids = np.asarray(tokenizer("patients with fever and cough were treated in the hospital")["input_ids"])
    items = [{"input_ids": ids, "index": i} for i in range(8)]
    fixed = MaskingCollator(tokenizer, 0.3, seed=0)(items)  # seeded: the same masks at every check

    def loss() -> float:
        with torch.no_grad():
            total, count = module.masked_loss(fixed)
        return (total / count).item()

    optimizer = torch.optim.AdamW(module.parameters(), lr=3e-3)
    training = MaskingCollator(tokenizer, 0.3)
    before = loss()
    for _ in range(40):
        total, count = module.masked_loss(training(items))
        optimizer.zero_grad()
        (total / count).backward()
        optimizer.step()
    assert loss() < 0.5 * before


def test_validation_masks_are_seeded_and_training_masks_are_not(tiny_encoder):
    tokenizer = load_tokenizer(tiny_encoder)
    items = [{"input_ids": np.asarray(tokenizer(t)["input_ids"]), "index": i} for i, t in enumerate(texts(6))]
    first, second = MaskingCollator(tokenizer, seed=5)(items), MaskingCollator(tokenizer, seed=5)(items)
    assert all(torch.equal(first[k], second[k]) for k in ("input_ids", "labels", "attention_mask"))
    training = MaskingCollator(tokenizer)
    assert not torch.equal(training(items)["labels"], training(items)["labels"])
    assert (first["labels"] != -100).any() and first["input_ids"].shape == first["attention_mask"].shape


def test_an_existing_output_dir_is_refused_in_one_line(tiny_encoder, tmp_path, capsys):
    corpus = tmp_path / "abstracts.txt"
    corpus.write_text("\n".join(texts()))
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert pretrain(tiny_encoder, out, f"--data.text_file={corpus}") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"output_dir {out} exists and is not empty" in err
    assert (out / "keep.txt").read_text() == "mine"


def test_a_missing_text_column_is_one_line_naming_the_file(tiny_encoder, tmp_path, capsys):
    table = tmp_path / "abstracts.csv"
    table.write_text("id,abstract\n1,Fever.\n2,Cough.\n")
    assert pretrain(tiny_encoder, tmp_path / "out", f"--data.text_file={table}") == 2
    err = capsys.readouterr().err  # after the model's loading messages: one line
    assert err.count("medtext: error:") == 1
    assert err.strip().splitlines()[-1].startswith(f"medtext: error: {table}: text column 'text' not found")
    assert not (tmp_path / "out").exists()


def test_write_pretrained_is_atomic_respects_the_umask_and_overwrites_only_when_asked(tiny_encoder, tmp_path):
    model = BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=8))
    tokenizer = load_tokenizer(tiny_encoder)
    out = tmp_path / "model"
    out.mkdir()  # an empty folder may be replaced
    old = os.umask(0o027)
    try:
        write_pretrained(model, tokenizer, str(out))
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o640}
    with pytest.raises(Exception, match="exists and is not empty"):
        write_pretrained(model, tokenizer, str(out))
    (out / "config.json").write_text("{}")  # a file it wrote: replaced
    write_pretrained(model, tokenizer, str(out), overwrite=True)
    assert (out / "config.json").read_text() != "{}"
    (out / "extra.txt").write_text("old")  # a file it did not write: refused, kept
    with pytest.raises(Exception, match="extra.txt, which its .medtext_manifest.json does not list"):
        write_pretrained(model, tokenizer, str(out), overwrite=True)
    assert (out / "extra.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "no temporary folder left"


@pytest.mark.parametrize("content, message", [
    (None, "file not found"),
    (b"\n \n", "file is empty"),
    (b"Fever.\nCough \xff here.\n", "line 2: invalid UTF-8 byte 0xff"),
])
def test_text_file_errors_are_one_line_naming_the_file(tiny_encoder, tmp_path, content, message):
    corpus = tmp_path / "abstracts.txt"
    if content is not None:
        corpus.write_bytes(content)
    with pytest.raises(DataError) as err:
        UnlabeledTextDataModule(text_file=str(corpus), tokenizer_name=tiny_encoder).load_tokens()
    assert str(err.value).startswith(f"{corpus}: {message}") and "\n" not in str(err.value)


def test_an_empty_text_in_a_table_names_its_row(tiny_encoder, tmp_path):
    table = tmp_path / "abstracts.csv"
    table.write_text('text\nFever.\n" "\nCough.\n')
    with pytest.raises(DataError, match=r"abstracts.csv: row 2: empty text in column 'text'"):
        UnlabeledTextDataModule(text_file=str(table), tokenizer_name=tiny_encoder).load_tokens()


def test_exactly_one_source_of_texts(tiny_encoder):
    with pytest.raises(DataError, match="exactly one of data.task_data"):
        UnlabeledTextDataModule(tokenizer_name=tiny_encoder)
