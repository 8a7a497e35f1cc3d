"""Corpus-scale ``predict``: peak memory against the number of abstracts, and where the CPU time goes.

    python benchmarks/corpus_predict.py --rows 20000 1000000 --work-dir benchmarks/work/corpus

A tiny 2-layer encoder (the tests' ``build_tiny_encoder``) is fitted for two steps on the shared Medical
Abstracts file; corpora of N abstracts repeat its 3,115 texts. Each N runs ``python -m medtext predict
--ckpt_path`` in its own process (peak RSS and CPU seconds from ``getrusage`` of that child), then the
tokenizer alone on the same texts (the same chunks, ``TokenizationSpec.encode``) in its own process, so
the ratio predict / tokenizer-alone compares like with like. ``--split`` times the stages (read, tokenize,
collate, forward, write) in this process on the first N. Writes JSON to ``--out`` and prints a table
with the CPU flags. Run it alone: two cores shared with anything else make every figure slower.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]
from medtext.core.atomic_files import atomic_open  # noqa: E402
SHARED = ROOT.parent / "shared" / "data" / "medical_abstracts" / "medical_tc_train_partial.csv"
MAX_LENGTH = 64  # as the tests' tiny checkpoints: the pipeline around the model, not the model, is measured


def child(command: list[str], env: dict | None = None) -> dict:
    """Run ``command`` in a fresh wrapper process; its child's wall time, CPU seconds and peak RSS."""
    probe = ("import json, resource, subprocess, sys, time; began = time.perf_counter(); "
             "code = subprocess.run(sys.argv[1:]).returncode; usage = resource.getrusage(resource.RUSAGE_CHILDREN); "
             "print(json.dumps({'code': code, 'wall_s': time.perf_counter() - began, "
             "'cpu_s': usage.ru_utime + usage.ru_stime, 'peak_rss_mb': usage.ru_maxrss / 1024}))")
    result = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    if measured["code"] != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return measured


def tiny_checkpoint(work: Path) -> Path:
    from tiny_encoder import build_tiny_encoder
    import yaml

    ckpt = work / "runs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    if ckpt.is_file():
        return ckpt
    encoder = build_tiny_encoder(work / "tiny_encoder")
    config = {"seed_everything": 1,
              "trainer": {"accelerator": "cpu", "max_steps": 2, "enable_progress_bar": False, "limit_val_batches": 2,
                          "logger": {"class_path": "pytorch_lightning.loggers.CSVLogger",
                                     "init_args": {"save_dir": str(work / "runs"), "name": "tiny"}},
                          "callbacks": [{"class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                                         "init_args": {"save_last": True}}]},
              "model": {"class_path": "medtext.TextClassifier", "init_args": {"encoder_name": str(encoder)}},
              "data": {"class_path": "data_modules.AbstractsDataModule",
                       "init_args": {"train_file": str(SHARED), "text_column": "medical_abstract",
                                     "label_column": "condition_label", "max_length": MAX_LENGTH, "batch_size": 16}}}
    (work / "fit.yaml").write_text(yaml.safe_dump(config))
    subprocess.run([sys.executable, "-m", "medtext", "fit", "--config", str(work / "fit.yaml")], check=True,
                   cwd=work, capture_output=True)
    return ckpt


def corpus(work: Path, rows: int) -> Path:
    path = work / f"corpus_{rows}.csv"
    if path.is_file():
        return path
    with open(SHARED, newline="") as handle:
        texts = [row["medical_abstract"] for row in csv.DictReader(handle)]
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["pmid", "text"])
        writer.writerows((f"P{i}", texts[i % len(texts)]) for i in range(rows))
    return path


TOKENIZE_ONLY = """
import sys, time
from data_modules.corpus import CorpusSource
from data_modules.tokenization import TokenizationSpec
from medtext.core.encoders import load_tokenizer
tokenizer = load_tokenizer(sys.argv[2])
spec = TokenizationSpec.resolve(tokenizer, int(sys.argv[3]))
source = CorpusSource(sys.argv[1], "text", "pmid", chunk_rows=4096)
for chunk in source.chunks():
    spec.encode(tokenizer, chunk.columns["text"], count_truncated=False)
"""


def measure(work: Path, ckpt: Path, rows: int) -> dict:
    path, out = corpus(work, rows), work / f"predictions_{rows}.csv"
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    predicted = child([sys.executable, "-m", "medtext", "predict", "--ckpt_path", str(ckpt), "--data.predict_file",
                       str(path), "--data.id_column", "pmid", "--data.text_column", "text", "--predictions.output_file", str(out),
                       "--predictions.overwrite", "true", "--data.eval_batch_size", "64",
                       "--trainer.enable_progress_bar", "false"], env)
    assert sum(1 for _ in open(out)) == rows + 1, "one row per abstract"
    out.unlink()
    tokenized = child([sys.executable, "-c", TOKENIZE_ONLY, str(path), str(work / "tiny_encoder"), str(MAX_LENGTH)], env)
    return {"rows": rows, "predict": predicted, "tokenize_only": tokenized,
            "ratio_cpu": predicted["cpu_s"] / tokenized["cpu_s"], "predict_ms_per_abstract": 1000 * predicted["cpu_s"] / rows}


def split(work: Path, ckpt: Path, rows: int) -> dict:
    """CPU seconds of each stage in this process, on ``rows`` abstracts (one thread, as the stages run)."""
    import torch

    from data_modules.corpus import CorpusBatches, CorpusSource
    from data_modules.table_chunks import iter_table_chunks
    from medtext.core.prediction_table import PredictedChunk, PredictionColumns, write_chunk
    from medtext.model.classifier import TextClassifier

    model = TextClassifier.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True).eval()
    from data_modules.tokenization import TokenizationSpec
    from medtext.core.encoders import load_tokenizer

    tokenizer = load_tokenizer(str(work / "tiny_encoder"))
    spec = TokenizationSpec.resolve(tokenizer, MAX_LENGTH)
    source = CorpusSource(str(corpus(work, rows)), "text", "pmid", chunk_rows=4096, batch_size=64)
    clock = time.process_time
    stages = {}
    began = clock()
    chunks = list(iter_table_chunks(source.path, ["text", "pmid"], 4096))
    stages["read"] = clock() - began
    began = clock()
    tokenized = [source.rows_of(chunk) for chunk in chunks]
    tokenized = [(rows, spec.encode(tokenizer, texts, count_truncated=False), file_rows) for rows, texts, file_rows in tokenized]
    stages["tokenize"] = clock() - began
    began = clock()
    streamed = CorpusBatches(source, spec, tokenizer)
    batches = [b for rows, tokens, file_rows in tokenized for b in streamed.padded_batches(rows, tokens, file_rows)]
    stages["collate"] = clock() - began
    outputs = []
    began = clock()
    with torch.inference_mode():
        for batch in batches:
            outputs.append(model.predict_step(batch, 0))
    stages["forward"] = clock() - began
    columns = PredictionColumns("pmid", tuple(model.label_names), False)
    began = clock()
    done = 0
    for chunk in chunks:
        n = chunk.rows
        index = torch.arange(chunk.start, chunk.start + n).numpy()
        probabilities = torch.full((n, len(model.label_names)), 0.2).numpy()
        write_chunk(work / "chunk.csv", "csv", columns, PredictedChunk(chunk.start, chunk.columns["pmid"], index,
                    probabilities, probabilities.argmax(-1), {}, {}))
        done += n
    stages["write"] = clock() - began
    return {"rows": rows, "cpu_s": stages, "ms_per_abstract": {k: 1000 * v / rows for k, v in stages.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[20000, 1000000])
    parser.add_argument("--work-dir", type=Path, default=ROOT / "benchmarks" / "work" / "corpus")
    parser.add_argument("--split", type=int, default=20000, help="abstracts for the stage split (0: none)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "corpus_predict.json")
    args = parser.parse_args()
    from quality import cpu_flags

    args.work_dir.mkdir(parents=True, exist_ok=True)
    ckpt = tiny_checkpoint(args.work_dir)
    result = {"cpu_flags": cpu_flags(), "cores": os.cpu_count(), "max_length": MAX_LENGTH,
              "split": split(args.work_dir, ckpt, args.split) if args.split else None,
              "runs": [measure(args.work_dir, ckpt, rows) for rows in args.rows]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"CPU flags: {result['cpu_flags']}; {result['cores']} cores; max_length {MAX_LENGTH}")
    if result["split"]:
        print("stage ms/abstract: " + ", ".join(f"{k} {v:.3f}" for k, v in result["split"]["ms_per_abstract"].items()))
    print("| abstracts | predict wall s | predict CPU s | ms CPU/abstract | peak RSS MB | tokenizer-alone CPU s | ratio |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in result["runs"]:
        p, t = run["predict"], run["tokenize_only"]
        print(f"| {run['rows']:,} | {p['wall_s']:.0f} | {p['cpu_s']:.0f} | {run['predict_ms_per_abstract']:.3f} | "
              f"{p['peak_rss_mb']:.0f} | {t['cpu_s']:.0f} | {run['ratio_cpu']:.2f} |")


if __name__ == "__main__":
    main()
