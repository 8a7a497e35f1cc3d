"""``medtext export --export.format onnx`` and ``predict --model_dir``: every head round-trips through
ONNX Runtime with PyTorch's logits, the same predictions file, head_tail truncation reproduced."""

import contextlib
import csv
import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from cli_helpers import in_folder, run, tiny_config  # noqa: E402
from data_helpers import spec  # noqa: E402
from medtext import TextClassifier  # noqa: E402
from medtext.commands import main  # noqa: E402
from medtext.deploy.onnx_predict import ExportedModel  # noqa: E402

HEADS = {
    "mlp": {"class_path": "medtext.heads.MLPHead", "init_args": {"pooling": "mean", "hidden_dims": [16]}},
    "bilstm": {"class_path": "medtext.heads.BiLSTMCrossAttentionHead", "init_args": {"lstm_hidden_size": 8, "num_heads": 2}},
    "label_attention": {"class_path": "medtext.heads.LabelAttentionHead", "init_args": {"num_heads": 2}},
}
DATA = {"num_train": 16, "num_val": 8, "num_test": 12, "max_length": 32, "truncation": "head_tail", "head_tokens": 8}


@pytest.fixture(scope="module", params=["mlp", *(pytest.param(head, marks=pytest.mark.slow) for head in ("bilstm", "label_attention"))])
def exported(request, tiny_encoder, tmp_path_factory):
    """A tiny head_tail checkpoint per head (fitted 2 steps, tested) and its ONNX export with int8; ~12 s each,
    so only the MLP head is in the inner loop (``-m "not slow"``)."""
    with in_folder(tmp_path_factory.mktemp(f"onnx_{request.param}")) as folder:
        config = tiny_config(folder / "fit.yaml", tiny_encoder, DATA, "data_modules.SyntheticAbstractsDataModule",
                             max_steps=2, default_root_dir=str(folder))
        fitted = run("fit", "--config", str(config), f"--model.init_args.head={yaml.safe_dump(HEADS[request.param])}",
                     f"--trainer.logger.init_args.save_dir={folder / 'runs'}", "--test_after_fit", "true")
        ckpt_path = fitted.trainer.checkpoint_callback.best_model_path
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main(["export", "--ckpt_path", ckpt_path, "--export.quantize", "int8", str(folder / "onnx")]) == 0
        test_file = fitted.datamodule.split_file("test")
        yield {"ckpt": ckpt_path, "dir": folder / "onnx", "test_file": test_file, "printed": printed.getvalue(),
               "folder": folder, "head": request.param}


def padded_batch(vocab_size: int, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(5, vocab_size, shape, generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[-1, shape[1] // 2:] = 0
    return ids, mask


def test_logits_match_pytorch_for_any_batch_and_length(exported):
    model = TextClassifier.load_from_checkpoint(exported["ckpt"], map_location="cpu", weights_only=True).eval()
    session = ExportedModel(exported["dir"]).session
    for shape in [(1, 3), (3, 12), (5, 32)]:  # none of them the traced example's
        ids, mask = padded_batch(model.encoder.config.vocab_size, shape)
        with torch.no_grad():
            expected = model(ids, mask).numpy()
        got = session.run(["logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_export_writes_the_folder_and_prints_the_check(exported):
    names = {p.name for p in exported["dir"].iterdir()}
    assert {"model.onnx", "model.int8.onnx", "medtext_export.json", "model_card.md", "tokenizer.json"} <= names
    fp32 = next(line for line in exported["printed"].splitlines() if line.startswith("export check fp32"))
    assert "labels identical 100.0%" in fp32 and float(fp32.split("max |logit diff| ")[1].split(",")[0]) < 1e-4
    assert "export check int8" in exported["printed"]
    card = (exported["dir"] / "model_card.md").read_text()
    assert "test/macro_f1" in card and "## Intended use" in card and "head_tail" in card


def test_predict_model_dir_writes_the_same_file_as_predict_ckpt_path(exported, tmp_path):
    run("predict", "--ckpt_path", exported["ckpt"], "--data.predict_file", exported["test_file"],
        "--predictions.output_file", str(tmp_path / "torch.csv"))
    assert main(["predict", "--model_dir", str(exported["dir"]), "--data.predict_file", exported["test_file"],
                 "--predictions.output_file", str(tmp_path / "onnx.csv"), "--data.batch_size", "5"]) == 0
    torch_rows, onnx_rows = (list(csv.reader(open(tmp_path / f"{name}.csv"))) for name in ("torch", "onnx"))
    assert onnx_rows[0] == torch_rows[0] and len(onnx_rows) == len(torch_rows) == DATA["num_test"] + 1
    assert [r[:2] for r in onnx_rows] == [r[:2] for r in torch_rows]  # ids and labels
    np.testing.assert_allclose(np.array([r[2:] for r in onnx_rows[1:]], float),
                               np.array([r[2:] for r in torch_rows[1:]], float), atol=2e-6)


def test_predict_model_dir_skips_invalid_rows_as_predict_ckpt_path_does(exported, tmp_path):
    new = tmp_path / "new.csv"
    new.write_text("text\nfever and cough in a cohort\n  \na randomised trial of asthma\n")
    for source in (["--ckpt_path", exported["ckpt"]], ["--model_dir", str(exported["dir"])]):
        out = tmp_path / f"{source[0][2:]}.csv"
        assert main(["predict", *source, "--data.predict_file", str(new), "--data.skip_invalid_rows", "true",
                     "--predictions.output_file", str(out)]) == 0
    torch_rows, onnx_rows = (list(csv.DictReader(open(tmp_path / f"{name}.csv"))) for name in ("ckpt_path", "model_dir"))
    assert [(r["row"], r["label"], r["skipped"]) for r in onnx_rows] == \
        [(r["row"], r["label"], r["skipped"]) for r in torch_rows]
    assert [r["skipped"] for r in onnx_rows] == ["", "empty text", ""] and onnx_rows[1]["label"] == ""


@pytest.mark.slow  # spawns two ONNX Runtime processes
def test_predict_model_dir_in_worker_processes_writes_the_same_rows(exported, tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    outputs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"workers{workers}.parquet"
        assert main(["predict", "--model_dir", str(exported["dir"]), "--data.predict_file", exported["test_file"],
                     "--predictions.output_file", str(out), "--predictions.chunk_rows", "3",
                     "--onnx.workers", workers, "--onnx.threads", "1"]) == 0
        outputs[workers] = pq.read_table(out).to_pylist()
    assert [r["row"] for r in outputs["2"]] == [str(i) for i in range(1, DATA["num_test"] + 1)]
    assert outputs["2"] == outputs["1"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["workers1.parquet", "workers2.parquet"]


@pytest.mark.slow  # a fresh interpreter
def test_predict_model_dir_imports_neither_lightning_nor_torchmetrics(exported, tmp_path):
    """A served export starts without Lightning's import (seconds): checked in a fresh interpreter."""
    import subprocess

    script = ("import sys\nfrom medtext.commands import main\nassert main(sys.argv[1:]) == 0\n"
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'pytorch_lightning', 'lightning', 'torchmetrics'}))")
    done = subprocess.run([sys.executable, "-c", script, "predict", "--model_dir", str(exported["dir"]),
                           "--data.predict_file", exported["test_file"], "--predictions.output_file", str(tmp_path / "p.csv")],
                          capture_output=True, text=True, cwd=Path(__file__).parents[1], timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert len((tmp_path / "p.csv").read_text().splitlines()) == DATA["num_test"] + 1


def test_head_tail_truncation_is_reproduced(exported, tokenizer):
    from data_modules.readers import read_table, read_texts
    from data_modules.token_cache import encode

    texts = read_texts(read_table(exported["test_file"]), exported["test_file"], "text")
    model = ExportedModel(exported["dir"])
    tokens = model.tokenize(texts)
    expected = encode(tokenizer, texts, spec(tokenizer, DATA["max_length"], "head_tail", DATA["head_tokens"]))
    assert tokens.num_truncated > 0 and np.array_equal(tokens.ids, expected.ids)


def test_int8_graph_loads_and_predicts(exported, tmp_path):
    out = tmp_path / "int8.csv"
    assert main(["predict", "--model_dir", str(exported["dir"]), "--data.predict_file", exported["test_file"],
                 "--predictions.output_file", str(out), "--onnx.int8", "true"]) == 0
    assert len(out.read_text().splitlines()) == DATA["num_test"] + 1


def test_compare_on_file_reports_agreement_and_macro_f1(exported):
    from medtext.deploy.export_check import compare_on_file

    result = compare_on_file(exported["ckpt"], exported["dir"], exported["test_file"], int8=True)
    assert result["rows"] == DATA["num_test"] and 0 <= result["label_agreement"] <= 1
    assert {"macro_f1_torch", "macro_f1_onnx"} <= set(result)


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p])
def test_a_bad_model_dir_is_one_line(make, tmp_path, capsys):
    (tmp_path / "new.csv").write_text("text\nan abstract\n")
    assert main(["predict", "--model_dir", str(make(tmp_path)), "--data.predict_file", str(tmp_path / "new.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("medtext: error: ") and "medtext export" in err


def test_missing_onnxruntime_is_one_line_naming_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    (tmp_path / "new.csv").write_text("text\nan abstract\n")
    assert main(["predict", "--model_dir", str(tmp_path), "--data.predict_file", str(tmp_path / "new.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'medtext[onnx]' in err


def test_export_refuses_a_non_empty_folder_and_hf_routes_to_hf_export(exported, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    assert main(["export", "--ckpt_path", exported["ckpt"], str(tmp_path / "taken")]) == 2
    assert "not empty" in capsys.readouterr().err and (tmp_path / "taken" / "x").is_file()
    assert main(["export", "--ckpt_path", exported["ckpt"], "--export.format", "hf", str(tmp_path / "hf")]) == 2
    assert "Hugging Face equivalent" in capsys.readouterr().err  # these heads have none (hf-export's check)


def graph_ops(path: Path) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_the_graph_uses_onnxruntime_fused_attention(exported):
    """The encoder's attention runs as ONNX Runtime's fused ``Attention`` kernel (fp32 and int8 graphs),
    except in the BiLSTM head's TorchScript graph, which is kept as exported."""
    fused = exported["head"] != "bilstm"
    for name in ("model.onnx", "model.int8.onnx"):
        assert ("Attention" in graph_ops(exported["dir"] / name)) == fused, (name, exported["printed"])
    assert ("ONNX Runtime fused kernels: none" in exported["printed"]) != fused


def test_a_fused_graph_with_other_logits_is_not_kept(exported, tmp_path, caplog):
    from medtext.deploy.onnx_export import INPUT_NAMES, example_inputs, fuse_for_onnxruntime

    plain = tmp_path / "model.onnx"
    plain.write_bytes((exported["dir"] / "model.onnx").read_bytes())
    inputs = {name: x.numpy() for name, x in zip(INPUT_NAMES, example_inputs(50, 9, batch=3))}
    session_logits = ExportedModel(exported["dir"]).session.run(["logits"], inputs)[0]
    assert fuse_for_onnxruntime(plain, inputs, session_logits + 1.0) == {}
    assert plain.read_bytes() == (exported["dir"] / "model.onnx").read_bytes()
    assert not list(tmp_path.glob(".fused-*"))
    assert "kept without ONNX Runtime's fused kernels (" in caplog.text
    assert "its logits differ from PyTorch's by 1.0e+00" in caplog.text
