"""The ONNX Runtime side of ``benchmarks/speed.py`` (issue 17): the export of the benchmark's checkpoint,
the ``predict --model_dir`` command of each ONNX path, and the label check on the held-out file.

The held-out check (``holdout_check``) runs, on every abstract of the Medical Abstracts held-out file
(``benchmarks/holdout.py``), PyTorch in fp32 against the ONNX fp32 graph
(``medtext.deploy.export_check.compare_on_file``: same token ids, max |logit diff|, label agreement, macro-F1
of both), and the int8 graph against the fp32 graph (``medtext.deploy.onnx_predict.ExportedModel``: label
agreement, macro-F1 difference), as the targets of issue 17 state them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ONNX_PATHS = {"onnx_fp32": False, "onnx_int8": True}  # system name -> --onnx.int8


def export_onnx(checkpoint: str, out_dir: Path, env: dict) -> Path:
    """``medtext export --export.format onnx --export.quantize int8`` in its own process (prints its check)."""
    command = [sys.executable, "-m", "medtext", "export", "--ckpt_path", checkpoint, "--export.format", "onnx",
               "--export.quantize", "int8", "--export.overwrite", "true", str(out_dir)]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, env=env, check=True, cwd=ROOT)
    return out_dir


def onnx_predict_command(model_dir: Path, predict_file: str, predictions: Path, out: Path, int8: bool,
                         threads: int, batch_size: int) -> list[str]:
    """``benchmarks/onnx_timer.py`` around ``python -m medtext predict --model_dir`` (one process)."""
    return [sys.executable, str(ROOT / "benchmarks/onnx_timer.py"), "--out", str(out), "--",
            "--model_dir", str(model_dir), "--data.predict_file", predict_file,
            "--predictions.output_file", str(predictions), "--data.batch_size", str(batch_size),
            "--onnx.threads", str(threads), "--onnx.int8", "true" if int8 else "false"]


def limited_copy(data_file: Path, work: Path, limit: int) -> Path:
    """``data_file`` itself, or (``limit`` > 0) ``limit`` of its rows drawn at random (seed 0) as a file in ``work``."""
    import pandas as pd

    frame = pd.read_csv(data_file)
    if not limit or limit >= len(frame):
        return data_file
    target = work / f"holdout_sample{limit}.csv"
    frame.sample(n=limit, random_state=0).sort_index().to_csv(target, index=False)
    return target


def holdout_check(checkpoint: str, model_dir: Path, data_file: Path, batch_size: int, threads: int) -> dict:
    """PyTorch fp32 vs ONNX fp32 and ONNX int8 vs ONNX fp32 on every abstract of ``data_file``."""
    import torch
    from data_modules.readers import read_table, read_texts
    from medtext.deploy.export_check import compare_on_file, macro_f1, single_label_truth
    from medtext.deploy.onnx_predict import ExportedModel

    torch.set_num_threads(threads)
    torch_vs_fp32 = compare_on_file(checkpoint, model_dir, data_file, int8=False, batch_size=batch_size)
    labels = {}
    for name, int8 in ONNX_PATHS.items():
        model = ExportedModel(model_dir, int8=int8, threads=threads)
        frame = read_table(str(data_file), model.settings["data"].get("file_format"))
        texts = read_texts(frame, str(data_file), model.settings["data"]["text_column"])
        labels[name] = model.decide(model.logits(texts, batch_size))[1]
    truth = single_label_truth(checkpoint, frame)
    result = {"file": str(data_file), "rows": len(texts), "torch_vs_onnx_fp32": torch_vs_fp32,
              "int8_vs_fp32_label_agreement": float(np.mean([np.array_equal(a, b) for a, b in
                                                             zip(labels["onnx_fp32"], labels["onnx_int8"])]))}
    if truth is not None:
        scores = {name: macro_f1(found, truth, len(model.label_names)) for name, found in labels.items()}
        result |= {f"macro_f1_{name}": value for name, value in scores.items()}
        result["int8_minus_fp32_macro_f1"] = scores["onnx_int8"] - scores["onnx_fp32"]
    return result
