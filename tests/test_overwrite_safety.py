"""Overwriting an output folder (``export --export.overwrite``, ``hf-export --overwrite``, ``pretrain
--overwrite_output_dir``) replaces only medtext's own earlier output there: never other files, the
current directory, the checkpoint's folder or a parent of either (issue 26)."""

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
from test_commands import bert_head_checkpoint  # noqa: F401  (a fixture: a fitted checkpoint, BERT's own head)
from test_pretrain import pretrain, texts
from transformers import BertConfig, BertForMaskedLM

from medtext.commands import main

needs_onnx = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")),
                                reason="the ONNX export needs onnx, onnxscript and onnxruntime")


def refusal(capsys) -> str:
    """The one error line of a refused command."""
    err = capsys.readouterr().err
    assert err.count("medtext: error:") == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("medtext: error: refusing to "), line
    return line


def others_files(folder: Path) -> dict[str, bytes]:
    """``folder`` made to hold what is not medtext's: a repository, notes, a checkpoint copy."""
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / "notes.txt").write_text("mine\n")
    return contents(folder)


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def export(ckpt, out, *options: str) -> int:
    return main(["export", "--ckpt_path", str(ckpt), *options, str(out)])


@needs_onnx
def test_export_overwrite_refuses_a_folder_of_other_files(bert_head_checkpoint, tmp_path, capsys):
    ckpt_path, _ = bert_head_checkpoint
    out = tmp_path / "project"
    others_files(out)
    shutil.copy(ckpt_path, out / "model.ckpt")  # not the input checkpoint: a copy of it
    before = contents(out)
    assert export(ckpt_path, out, "--export.overwrite", "true") == 2
    line = refusal(capsys)
    assert f"it holds {out / '.git'}, and no .medtext_manifest.json says medtext wrote it" in line
    assert contents(out) == before and not list(tmp_path.glob(".project.*"))


@needs_onnx
@pytest.mark.parametrize("target", ["checkpoints", "run"])  # the checkpoint's folder, a parent of it
def test_export_overwrite_refuses_the_checkpoints_folder(bert_head_checkpoint, tmp_path, capsys, target):
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    shutil.copy(bert_head_checkpoint[0], ckpt)  # a copy: the fixture's own stays whatever happens
    (ckpt.parent / "last.ckpt").write_bytes(ckpt.read_bytes())
    before = contents(tmp_path / "run")
    out = ckpt.parent if target == "checkpoints" else tmp_path / "run"
    assert export(ckpt, out, "--export.overwrite", "true") == 2
    assert refusal(capsys).endswith(f"refusing to write {out}: it holds the input checkpoint {ckpt}")
    assert contents(tmp_path / "run") == before


@needs_onnx
@pytest.mark.parametrize("target", [".", ".."])  # the current directory, a parent of it
def test_export_overwrite_refuses_the_current_directory(bert_head_checkpoint, tmp_path, capsys, target):
    project = tmp_path / "project"
    others_files(project)
    shutil.copy(bert_head_checkpoint[0], project / "model.ckpt")
    cwd = project if target == "." else project / "sub"
    cwd.mkdir(exist_ok=True)
    before = contents(project)
    os.chdir(cwd)  # the autouse fixture's monkeypatch.chdir puts the test's folder back
    assert export(project / "model.ckpt" if target == ".." else "model.ckpt", target, "--export.overwrite", "true") == 2
    expected = "it is the current directory" if target == "." else f"it holds the current directory {cwd.resolve()}"
    assert refusal(capsys).endswith(f"refusing to write {target}: {expected}")
    assert contents(project) == before


@pytest.mark.parametrize("target", [".", "runs"])  # the current directory, the folder its checkpoints go to
def test_pretrain_overwrite_refuses_the_current_directory_and_its_checkpoints(tiny_encoder, tmp_path, capsys, target):
    (tmp_path / "abstracts.txt").write_text("\n".join(texts()) + "\n")
    before = others_files(tmp_path)
    assert pretrain(tiny_encoder, Path(target), "--data.text_file=abstracts.txt", "--overwrite_output_dir=true") == 2
    expected = ("it is the current directory" if target == "." else
                "it holds this run's folder (trainer.default_root_dir) runs/pretrain")
    assert refusal(capsys).endswith(f"refusing to write output_dir {target}: {expected}")
    assert contents(tmp_path) == before, "refused before any training: nothing written, nothing deleted"


@needs_onnx
@pytest.mark.slow  # two ONNX exports with their checks, ~10 s
def test_export_overwrite_replaces_an_earlier_export_and_only_that(bert_head_checkpoint, tmp_path, capsys):
    ckpt_path, _ = bert_head_checkpoint
    out = tmp_path / "onnx"
    assert export(ckpt_path, out) == 0
    assert (out / ".medtext_manifest.json").is_file()
    (out / "model_card.md").write_text("old card")  # a file medtext wrote, changed since: still medtext's
    (out / "tokenizer.json").unlink()  # listed but gone: fine
    assert export(ckpt_path, out, "--export.overwrite", "true") == 0
    assert "## Intended use" in (out / "model_card.md").read_text() and (out / "tokenizer.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".onnx")] == [], "no temporary folder left"
    (out / "notes.txt").write_text("mine\n")
    before = contents(out)
    capsys.readouterr()
    assert export(ckpt_path, out, "--export.overwrite", "true") == 2
    assert f"it holds {out / 'notes.txt'}, which its .medtext_manifest.json does not list" in refusal(capsys)
    assert contents(out) == before


def test_hf_export_overwrite_replaces_an_earlier_export_and_refuses_other_files(bert_head_checkpoint, tmp_path,
                                                                                  capsys):
    ckpt_path, _ = bert_head_checkpoint
    out = tmp_path / "hf"
    assert main(["hf-export", ckpt_path, str(out)]) == 0
    assert main(["hf-export", ckpt_path, str(out)]) == 2  # not without --overwrite
    assert "exists and is not empty" in capsys.readouterr().err
    (out / "config.json").write_text("{}")  # a file medtext wrote, changed since: still medtext's to replace
    assert main(["hf-export", ckpt_path, str(out), "--overwrite", "true"]) == 0
    assert (out / "config.json").read_text() != "{}" and (out / "model.safetensors").is_file()
    (out / "notes.txt").write_text("mine\n")
    assert main(["hf-export", ckpt_path, str(out), "--overwrite", "true"]) == 2
    assert refusal(capsys).endswith("which its .medtext_manifest.json does not list (medtext did not write it)")
    assert (out / "notes.txt").read_text() == "mine\n"


def test_write_pretrained_overwrite_replaces_only_its_own_output(tiny_encoder, tmp_path):
    from medtext.core.encoders import load_tokenizer
    from medtext.deploy.output_folders import OutputFolderError
    from medtext.commands.pretrain import write_pretrained

    model = BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=8))
    tokenizer = load_tokenizer(tiny_encoder)
    out = tmp_path / "model"
    write_pretrained(model, tokenizer, str(out))
    (out / "config.json").write_text("{}")
    write_pretrained(model, tokenizer, str(out), overwrite=True)
    assert (out / "config.json").read_text() != "{}"
    (out / "extra.txt").write_text("old")
    with pytest.raises(OutputFolderError, match=f"it holds {out / 'extra.txt'}, which its .medtext_manifest.json"):
        write_pretrained(model, tokenizer, str(out), overwrite=True)
    assert (out / "extra.txt").read_text() == "old" and (out / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "no temporary folder left"


def test_a_file_added_while_the_new_folder_is_written_keeps_the_old_folder(tmp_path):
    from medtext.deploy.output_folders import OutputFolderError, output_folder

    out = tmp_path / "out"
    with output_folder(out, "a test") as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(OutputFolderError, match="notes.txt, which its"):
        with output_folder(out, "a test", overwrite=True) as tmp:
            (tmp / "a.txt").write_text("new")
            (out / "notes.txt").write_text("mine\n")  # after the first check, before the swap
    assert (out / "a.txt").read_text() == "old" and (out / "notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no temporary folder left"
