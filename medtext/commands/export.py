"""``python -m medtext export --ckpt_path CKPT [--export.format onnx|hf] [--export.quantize int8] OUT_DIR``:
a checkpoint as an ONNX Runtime folder (every head) or a Hugging Face one (BERT-style MLP heads only).

``python -m medtext predict --model_dir OUT_DIR`` runs an ONNX export (``medtext/deploy/onnx_predict.py``).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
from pathlib import Path
from typing import Literal, Optional

from medtext.core.atomic_files import atomic_write_text
from medtext.runtime.checkpoint import CheckpointSettings, import_class, load_model, read_checkpoint
from medtext.core.errors import MedtextError
from medtext.deploy.onnx_predict import INSTALL_HINT, MODEL_FILES, SETTINGS_FILE, ExportedModel, onnxruntime

FORMAT_VERSION = 1
CHECK_ABSTRACTS = 256  # int8 changes a few labels: 8 abstracts could not show how many
CARD_METRICS = ("test/accuracy", "test/exact_match", "test/macro_f1", "test/micro_f1", "test/ece", "test/brier")


def data_settings(settings: CheckpointSettings, tokenizer) -> dict:
    """How the checkpoint's data module read and tokenized texts: its init args over its class's defaults."""
    from data_modules.tokenization import TokenizationSpec

    data = settings.data or {"class_path": "data_modules.AbstractsDataModule", "init_args": {}}
    cls = import_class(data["class_path"])
    defaults = {key: p.default for klass in reversed(cls.__mro__) if "__init__" in vars(klass)
                for key, p in inspect.signature(klass.__init__).parameters.items() if p.default is not p.empty}
    args = {**defaults, **(data.get("init_args") or {})}
    found = {key: args.get(key) for key in ("text_column", "id_column", "file_format", "max_length", "truncation",
                                             "head_tokens", "long_text", "window_stride", "max_windows")}
    # as the data module resolved them (a stride of windows; max_length within the encoder's positions)
    found.update(TokenizationSpec.from_settings(found, tokenizer, settings.hyper_parameters.get("encoder_name")).settings())
    del found["budget"]  # counted again from the exported tokenizer when the export is loaded
    found["window_pooling"] = settings.hyper_parameters.get("window_pooling", "mean")
    return found


def export_settings(settings: CheckpointSettings, model, tokenizer, int8: bool) -> dict:
    """What ``medtext_export.json`` holds, with the ``settings_sha256`` a load checks (``medtext/deploy/export_schema.py``)."""
    from medtext.deploy.export_schema import with_checksum

    hparams = settings.hyper_parameters
    return with_checksum({
        "format_version": FORMAT_VERSION, "label_names": list(model.label_names),
        "multi_label": bool(hparams.get("multi_label")), "thresholds": model.thresholds.tolist(),
        "temperature": model.calibrator.temperature.tolist(), "calibration": hparams.get("calibration", "temperature"),
        "encoder_name": hparams.get("encoder_name"), "head": hparams.get("head"),
        "models": {k: v for k, v in MODEL_FILES.items() if int8 or k == "fp32"},
        "inputs": ["input_ids", "attention_mask"], "outputs": ["logits"], "data": data_settings(settings, tokenizer)})


def run_folder_file(ckpt_path: Path, name: str) -> Optional[Path]:
    """``name`` in the checkpoint's run folder (``RUN/checkpoints/x.ckpt``: ``RUN``), or beside the checkpoint."""
    for folder in (ckpt_path.resolve().parent.parent, ckpt_path.resolve().parent):
        if (folder / name).is_file():
            return folder / name
    return None


def validation_metrics(ckpt_path: Path) -> tuple[Optional[int], dict[str, float]]:
    """The checkpoint's epoch and that epoch's validation metrics (:data:`CARD_METRICS` as ``val/``) in
    its run's ``metrics.csv`` (a CSV logger's), if there."""
    import csv

    from medtext.core.checkpoint_reading import load_checkpoint_file

    metrics_file = run_folder_file(ckpt_path, "metrics.csv")
    epoch = load_checkpoint_file(ckpt_path).get("epoch")
    if metrics_file is None or not isinstance(epoch, int):
        return epoch, {}
    wanted = [name.replace("test/", "val/", 1) for name in CARD_METRICS]
    found: dict[str, float] = {}
    with open(metrics_file, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("epoch") == str(epoch):  # a resumed run's rows of that epoch: the last wins
                found.update({name: float(row[name]) for name in wanted if row.get(name)})
    return epoch, found


def check_texts(settings: CheckpointSettings, ckpt_path: Path, text_column: str) -> tuple[Optional[list[str]], str]:
    """Up to :data:`CHECK_ABSTRACTS` abstracts of the checkpoint's own data (validation, test, then
    training file), if on this machine."""
    from data_modules.readers import read_table, read_texts

    init_args = (settings.data or {}).get("init_args") or {}
    files = [init_args.get(f"{split}_file") for split in ("val", "test", "train")]
    report = run_folder_file(ckpt_path, "data_report.json")
    if report is not None:
        splits = json.loads(report.read_text()).get("splits", {})
        files += [splits.get(split, {}).get("file") for split in ("val", "test", "train")]
    for path in filter(None, files):
        if Path(path).is_file():
            try:
                frame = read_table(path, init_args.get("file_format"))
                return read_texts(frame.head(CHECK_ABSTRACTS), path, text_column), Path(path).name
            except MedtextError:
                continue
    return None, "random token ids"


def model_card(settings: CheckpointSettings, exported: dict, ckpt_path: Path, checks: list[str]) -> str:
    hparams, data = settings.hyper_parameters, exported["data"]
    kind = "multi-label (any number of labels per abstract)" if exported["multi_label"] else "single-label"
    lines = [f"# medtext classifier: {len(exported['label_names'])} classes, {kind}", "",
             f"Exported from `{ckpt_path.name}` by `medtext export --export.format onnx`. Encoder "
             f"`{hparams.get('encoder_name')}`, head `{(hparams.get('head') or {}).get('class_path', 'MLPHead')}`.", "",
             "## Data", "", "Labels, in the order of the logits:", "",
             *(f"{i}. {name}" for i, name in enumerate(exported["label_names"])), ""]
    report = run_folder_file(ckpt_path, "data_report.json")
    splits = json.loads(report.read_text()).get("splits", {}) if report else {}
    lines += [f"- {split}: `{Path(s.get('file', '?')).name}`, {s.get('rows', '?')} abstracts" for split, s in splits.items()]
    truncation = ("windows of {max_length} tokens (stride {window_stride}, at most {max_windows}, logits pooled by "
                  "{window_pooling})" if data["long_text"] == "windows" else "{max_length} tokens ({truncation}"
                  + (", first {head_tokens} + end)" if data["truncation"] == "head_tail" else ")"))
    lines += ["", f"Texts (column `{data['text_column']}`) are cut to {truncation.format(**data)}.", "", "## Metrics", ""]
    metrics_file = run_folder_file(ckpt_path, "test_metrics.json")
    if metrics_file is not None:
        metrics = json.loads(metrics_file.read_text())
        lines += [f"From `{metrics_file.parent.name}/{metrics_file.name}` (the PyTorch model):", "",
                  "| metric | value |", "| --- | --- |",
                  *(f"| {name} | {metrics[name]:.4f} |" for name in CARD_METRICS if name in metrics)]
    else:
        lines.append("No test report found beside the checkpoint.")
        epoch, validation = validation_metrics(ckpt_path)
        if validation:
            lines += ["", f"Validation, epoch {epoch} (the checkpoint's), from the run's `metrics.csv`:", "",
                      "| metric | value |", "| --- | --- |",
                      *(f"| {name} | {value:.4f} |" for name, value in validation.items())]
    lines += ["", "Export check (ONNX Runtime against PyTorch):", "", *(f"- {line}" for line in checks), "",
              "## Intended use", "", "Sorting or triaging medical abstracts into the classes above, for research "
              "and literature work, with a person reviewing the results. Not for diagnosis or any clinical decision.",
              "", "## Limits", "",
              "- Trained and tested only on the data above; other journals, languages or eras of text may score lower.",
              "- Tokens beyond the cut above are not read.",
              "- Probabilities are calibrated (temperature scaling) on the validation split; they shift with the data.",
              "- The int8 graph (if written) may change a few labels; its agreement is in the export check.", ""]
    return "\n".join(lines)


def describe(check: dict, variant: str, source: str) -> str:
    return (f"{variant}: {check['rows']} abstracts from {source}: max |logit diff| {check['max_abs_logit_diff']:.2e}, "
            f"labels identical {check['label_agreement']:.1%}")


def export_onnx(ckpt_path: Path, out_dir: Path, quantize: Optional[str] = None, overwrite: bool = False) -> Path:
    """Write the ONNX export folder ``out_dir`` of checkpoint ``ckpt_path`` and print the export check
    (``medtext/deploy/export_check.py``). Written atomically: ``model.onnx`` (encoder + head, uncalibrated logits, dynamic batch and sequence
    axes; ``medtext/deploy/onnx_export.py``), with ``int8`` also ``model.int8.onnx``; the tokenizer;
    ``medtext_export.json`` (label names in the checkpoint's order, multi_label, thresholds,
    temperatures, how to tokenize); and ``model_card.md``."""
    from medtext.core.encoders import load_tokenizer
    from medtext.deploy.export_check import check_sequences, compare_sequences
    from medtext.deploy.onnx_export import export_graph, quantize_int8

    onnxruntime()
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise MedtextError(f"exporting to ONNX needs {' and '.join(missing)}: {INSTALL_HINT}")
    settings = read_checkpoint(ckpt_path)
    model = load_model(ckpt_path)
    tokenizer = load_tokenizer(settings.hyper_parameters["encoder_name"])
    exported_settings = export_settings(settings, model, tokenizer, quantize == "int8")
    from medtext.deploy.output_folders import output_folder

    with output_folder(out_dir, "medtext export --export.format onnx", overwrite,
                       hint=" (add --export.overwrite true to replace an earlier export)",
                       inputs=[("the input checkpoint", ckpt_path)]) as tmp:
        fusions = export_graph(model, tmp / MODEL_FILES["fp32"], min(exported_settings["data"]["max_length"], 64))
        print("ONNX Runtime fused kernels: " + (", ".join(f"{name} {count}" for name, count in fusions.items())
                                                or "none (the graph is kept as exported)"))
        if quantize == "int8":
            quantize_int8(tmp / MODEL_FILES["fp32"], tmp / MODEL_FILES["int8"])
        tokenizer.save_pretrained(tmp)
        atomic_write_text(tmp / SETTINGS_FILE, json.dumps(exported_settings, indent=2) + "\n")
        texts, source = check_texts(settings, Path(ckpt_path), exported_settings["data"]["text_column"])
        checks = []
        for variant in exported_settings["models"]:
            exported = ExportedModel(tmp, int8=variant == "int8")
            check = compare_sequences(model, exported, check_sequences(exported, texts, CHECK_ABSTRACTS))
            checks.append(describe(check, variant, source))
            print(f"export check {checks[-1]}")
        atomic_write_text(tmp / "model_card.md", model_card(settings, exported_settings, Path(ckpt_path), checks))
    print(f"wrote {out_dir}")
    return Path(out_dir)


def main(args: Optional[list[str]] = None) -> None:
    """``medtext export --ckpt_path CKPT [--export.format onnx|hf] [--export.quantize int8] OUT_DIR``."""
    from jsonargparse import ActionConfigFile

    from medtext.core.argument_errors import CommandParser

    parser = CommandParser(prog="medtext export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action=ActionConfigFile, help="these options from a YAML file")
    parser.add_argument("out_dir", type=str, help="the folder to write")
    parser.add_argument("--ckpt_path", type=str, required=True, help="a medtext checkpoint")
    parser.add_argument("--export.format", type=Literal["onnx", "hf"], default="onnx",
                        help="onnx (ONNX Runtime, every head) or hf (Hugging Face folder, BERT-style MLP heads)")
    parser.add_argument("--export.quantize", type=Optional[Literal["int8"]], default=None,
                        help="onnx: also write model.int8.onnx (dynamic int8 quantisation)")
    parser.add_argument("--export.overwrite", type=bool, default=False,
                        help="replace an earlier export in out_dir (only what its .medtext_manifest.json "
                             "lists; never the current directory or the checkpoint's folder)")
    options = parser.parse_args(args)
    if options.export.format == "hf":
        if options.export.quantize:
            raise MedtextError("--export.quantize is for --export.format onnx")
        from medtext.deploy.hf_export import export_checkpoint

        export_checkpoint(Path(options.ckpt_path), Path(options.out_dir), options.export.overwrite)
        return
    export_onnx(Path(options.ckpt_path), Path(options.out_dir), options.export.quantize, options.export.overwrite)


def hf_export_main(args: Optional[list[str]] = None) -> None:
    """``medtext hf-export CKPT OUT_DIR [--overwrite true]``: the earlier spelling of
    ``medtext export --ckpt_path CKPT --export.format hf OUT_DIR``, kept for scripts that use it."""
    from jsonargparse import ActionConfigFile

    from medtext.core.argument_errors import CommandParser

    parser = CommandParser(prog="medtext hf-export", description="the same as: medtext export --export.format hf")
    parser.add_argument("--config", action=ActionConfigFile, help="these options from a YAML file")
    parser.add_argument("ckpt_path", type=str, help="a medtext checkpoint with a BERT-style MLP head")
    parser.add_argument("out_dir", type=str, help="the folder to write")
    parser.add_argument("--overwrite", type=bool, default=False, help="as export's --export.overwrite")
    options = parser.parse_args(args)
    main(["--ckpt_path", options.ckpt_path, "--export.format", "hf", "--export.overwrite",
          str(options.overwrite).lower(), options.out_dir])
