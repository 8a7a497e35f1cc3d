"""Corpus-scale predict: streamed in chunks, written as CSV, JSON Lines or Parquet with the same rows,
resumable after kill -9, never over a file medtext did not write, and one run at a time per output."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from cli_helpers import in_folder, run, run_medtext, tiny_config
from medtext.commands import main
from medtext.core.errors import DataError, MedtextError, PredictionsComplete

SYNTHETIC = {"num_train": 40, "num_val": 20, "num_test": 20}


@pytest.fixture(scope="module")
def trained(tiny_encoder, tmp_path_factory) -> tuple[Path, Path]:
    """A tiny checkpoint and a corpus of 57 abstracts (ids, a kept column, one empty text at row 30)."""
    with in_folder(tmp_path_factory.mktemp("corpus")) as folder:
        config = tiny_config(folder / "fit.yaml", tiny_encoder, {**SYNTHETIC, "data_dir": str(folder / "data")},
                             "data_modules.SyntheticAbstractsDataModule", default_root_dir=str(folder))
        cli = run("fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={folder / 'runs'}")
        with open(folder / "data" / "test.csv", newline="") as handle:
            texts = [row["text"] for row in csv.DictReader(handle)]
        corpus = folder / "corpus.csv"
        with open(corpus, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["pmid", "text", "journal"])
            for i in range(57):
                writer.writerow([f"P{i}", "" if i == 30 else texts[i % len(texts)], f"=J{i % 3}"])
    return Path(cli.trainer.checkpoint_callback.best_model_path), corpus


def predict(checkpoint: Path, corpus: Path, out: Path, *options: str) -> None:
    run("predict", "--ckpt_path", str(checkpoint), "--data.predict_file", str(corpus), "--data.id_column", "pmid",
        "--data.skip_invalid_rows", "true", "--predictions.keep_columns", "journal",
        "--predictions.output_file", str(out), *options)


def listing(folder: Path) -> list[str]:
    """The folder's files, less the test's token cache (``conftest.isolated_cache``)."""
    return sorted(p.name for p in folder.iterdir() if p.name != "cache")


def read_rows(path: Path) -> list[dict]:
    """Rows as strings, probabilities to 6 decimals, whatever the format."""
    if path.suffix == ".csv":
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines()]
    else:
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    return [{k: "" if v is None else f"{v:.6f}" if isinstance(v, float) else str(v) for k, v in row.items()} for row in rows]


def test_chunked_output_is_the_same_in_every_chunk_size_and_format(trained, tmp_path):
    checkpoint, corpus = trained
    predict(checkpoint, corpus, tmp_path / "whole.csv", "--predictions.chunk_rows", "1000")
    whole = read_rows(tmp_path / "whole.csv")
    assert [r["pmid"] for r in whole] == [f"P{i}" for i in range(57)]
    assert list(whole[0]) == ["pmid", "label", *[k for k in whole[0] if k.startswith("prob_")], "journal", "skipped"]
    assert whole[30]["skipped"] == "empty text" and whole[30]["label"] == "" and whole[29]["label"]
    assert whole[0]["journal"] == "'=J0", "CSV cells a spreadsheet would run are escaped"
    for chunk_rows, name in (("1", "ones.csv"), ("7", "sevens.jsonl"), ("16", "sixteens.parquet")):
        predict(checkpoint, corpus, tmp_path / name, "--predictions.chunk_rows", chunk_rows, "--data.eval_batch_size", "3")
        got = read_rows(tmp_path / name)
        if not name.endswith(".csv"):  # only CSV escapes formulas
            got = [{**row, "journal": "'" + row["journal"]} for row in got]
        assert got == whole, name
    assert listing(tmp_path) == ["ones.csv", "sevens.jsonl", "sixteens.parquet", "whole.csv"]


def test_predict_writes_nothing_but_its_output(trained, tmp_path, monkeypatch, capsys):
    checkpoint, corpus = trained
    monkeypatch.chdir(tmp_path)
    run("predict", "--ckpt_path", str(checkpoint), "--data.predict_file", str(corpus), "--data.skip_invalid_rows", "true")
    assert listing(tmp_path) == ["predictions.csv"]
    assert "wrote 56 predictions and 1 skipped rows (column skipped: why) to predictions.csv" in capsys.readouterr().out


def test_the_same_command_again_has_nothing_to_do_and_a_changed_input_predicts_again(trained, tmp_path, capsys):
    checkpoint, corpus = trained
    out = tmp_path / "out.csv"
    args = ["predict", "--ckpt_path", str(checkpoint), "--data.predict_file", str(corpus), "--data.skip_invalid_rows",
            "true", "--predictions.output_file", str(out)]
    assert main(args) == 0
    first = out.read_text()
    capsys.readouterr()
    assert main(args) == 0
    assert "nothing to do" in capsys.readouterr().out and out.read_text() == first
    with pytest.raises(PredictionsComplete):
        run(*args)
    changed = tmp_path / "changed.csv"
    changed.write_text(corpus.read_text().replace("P0,", "Q0,"))
    assert main([*args[:4], str(changed), *args[5:], "--data.id_column", "pmid"]) == 0
    assert out.read_text().splitlines()[1].startswith("Q0,")


def test_a_file_medtext_did_not_write_is_never_replaced_unless_asked(trained, tmp_path):
    checkpoint, corpus = trained
    out = tmp_path / "predictions.csv"
    out.write_text("my own results\n")
    with pytest.raises(MedtextError, match=r"predictions.csv exists and is not a predictions file this medtext wrote"):
        predict(checkpoint, corpus, out)
    assert out.read_text() == "my own results\n" and not (tmp_path / "predictions.csv.parts").exists()
    predict(checkpoint, corpus, out, "--predictions.overwrite", "true")
    assert len(read_rows(out)) == 57


def test_an_unknown_output_suffix_and_a_bad_row_stop_before_anything_is_written(trained, tmp_path):
    checkpoint, corpus = trained
    with pytest.raises(MedtextError, match=r"out\.xlsx: cannot tell the predictions format"):
        predict(checkpoint, corpus, tmp_path / "out.xlsx")
    bad = tmp_path / "bad.csv"
    bad.write_text("pmid,text,journal\nA,fine text,J\nB,,J\n")
    with pytest.raises(DataError, match=r"bad.csv: row 2: empty text in column 'text' \(id B\)$"):
        run("predict", "--ckpt_path", str(checkpoint), "--data.predict_file", str(bad), "--data.id_column", "pmid",
            "--predictions.output_file", str(tmp_path / "out.csv"))
    assert listing(tmp_path) == ["bad.csv"]


def test_a_second_predict_into_the_same_output_waits_its_turn(trained, tmp_path):
    from medtext.core.prediction_parts import PredictionParts

    checkpoint, corpus = trained
    out = tmp_path / "out.csv"
    holder = PredictionParts(out, {"a": 1}, "csv")
    holder.prepare()  # as a running predict holds it
    try:
        with pytest.raises(MedtextError, match=r"another predict is writing it now"):
            predict(checkpoint, corpus, out)
    finally:
        holder.close()


def kill_then_resume(checkpoint: Path, corpus: Path, out: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    command = ["predict", "--ckpt_path", str(checkpoint), "--data.predict_file",
               str(corpus), "--data.id_column", "pmid", "--data.skip_invalid_rows", "true",
               "--predictions.output_file", str(out), "--predictions.chunk_rows", "5", "--data.eval_batch_size", "2",
               "--trainer.enable_progress_bar", "false", *extra]
    killed = run_medtext(*command, "--trainer.callbacks+=killer.KillAfterChunks", f"--trainer.callbacks.folder={out}.parts",
                         "--trainer.callbacks.chunks=4", cwd=tmp_path, check=False, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not out.exists() and len(list(Path(f"{out}.parts").glob("chunk-*"))) >= 4
    return run_medtext(*command, cwd=tmp_path, check=False, timeout=300)


@pytest.mark.slow
def test_kill_9_then_the_same_command_gives_every_row_exactly_once(trained, tmp_path):
    checkpoint, corpus = trained
    predict(checkpoint, corpus, tmp_path / "whole.csv")
    out = tmp_path / "resumed.csv"
    resumed = kill_then_resume(checkpoint, corpus, out, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stdout and "from the interrupted run's chunks" in resumed.stdout
    rows = read_rows(out)
    assert [r["pmid"] for r in rows] == [f"P{i}" for i in range(57)], "each id exactly once, in input order"
    whole = {r["pmid"]: r for r in read_rows(tmp_path / "whole.csv")}
    assert all({k: v for k, v in r.items() if k != "journal"} == {k: v for k, v in whole[r["pmid"]].items()
                                                                   if k != "journal"} for r in rows)
    assert listing(tmp_path) == ["resumed.csv", "whole.csv"]


@pytest.mark.slow
def test_two_ddp_ranks_predict_the_same_rows_as_one_process(trained, tmp_path):
    checkpoint, corpus = trained
    predict(checkpoint, corpus, tmp_path / "one.csv", "--predictions.chunk_rows", "4")
    result = run_medtext(
        "predict", "--ckpt_path", str(checkpoint), "--data.predict_file", str(corpus), "--data.id_column", "pmid",
        "--data.skip_invalid_rows", "true", "--predictions.keep_columns", "journal",
        "--predictions.output_file", str(tmp_path / "two.csv"), "--predictions.chunk_rows", "4",
        "--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", "--trainer.devices", "2", cwd=tmp_path)
    assert "MEMBER: 2/2" in result.stdout + result.stderr, "two processes predicted"
    one, two = read_rows(tmp_path / "one.csv"), read_rows(tmp_path / "two.csv")
    assert [r["pmid"] for r in two] == [f"P{i}" for i in range(57)]
    assert [r["label"] for r in two] == [r["label"] for r in one]
    assert all(abs(float(a[k]) - float(b[k])) < 1e-5 for a, b in zip(one, two) for k in a if k.startswith("prob_") and a[k])
    assert listing(tmp_path) == ["one.csv", "two.csv"]
