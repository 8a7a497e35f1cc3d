"""Export a classifier to a Hugging Face ``AutoModelForSequenceClassification`` folder.

    python -m medtext export --ckpt_path runs/x/version_0/checkpoints/best.ckpt --export.format hf exported_model/
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from medtext.runtime.checkpoint import load_model, read_checkpoint
from medtext.core.encoders import load_tokenizer
from medtext.core.errors import MedtextError
from medtext.heads.mlp import MLPHead
from medtext.deploy.output_folders import output_folder


def _head_layers(head: nn.Module, hidden_size: int) -> tuple[nn.Linear, nn.Linear]:
    """The dense and the classifier layer of the sequence-classification head of BERT-family models:
    ``MLPHead`` with ``pooling: cls``, ``hidden_dims: [hidden_size]`` and ``activation: tanh`` (the
    pooler's dense+tanh, then dropout and a linear classifier); any other head is refused."""
    linears = [m for m in getattr(head, "mlp", []) if isinstance(m, nn.Linear)]
    tanh = [m for m in getattr(head, "mlp", []) if isinstance(m, nn.Tanh)]
    if (not isinstance(head, MLPHead) or head.pooling != "cls" or len(linears) != 2 or len(tanh) != 1
            or linears[0].out_features != hidden_size):
        raise MedtextError("only an MLPHead with pooling cls, hidden_dims [hidden_size] and activation tanh "
                           f"has a Hugging Face equivalent; this head is {head!r}")
    return linears[0], linears[1]


def to_sequence_classification(model) -> nn.Module:
    """A ``transformers`` sequence-classification model with ``model``'s weights (a TextClassifier)."""
    from transformers import AutoModelForSequenceClassification

    config = model.encoder.config.__class__.from_dict(model.encoder.config.to_dict())
    names = list(model.label_names)
    config.num_labels = len(names)
    config.id2label, config.label2id = dict(enumerate(names)), {n: i for i, n in enumerate(names)}
    config.problem_type = "multi_label_classification" if model.hparams.multi_label else "single_label_classification"
    exported = AutoModelForSequenceClassification.from_config(config)
    base = exported.base_model
    pooler_dense = getattr(getattr(base, "pooler", None), "dense", None)
    if pooler_dense is None or not isinstance(getattr(exported, "classifier", None), nn.Linear):
        raise MedtextError(f"{type(exported).__name__} has no pooler + linear classifier to export into")
    dense, classifier = _head_layers(model.head, config.hidden_size)
    encoder_state = {k: v for k, v in model.encoder.state_dict().items() if not k.startswith("pooler.")}
    missing, unexpected = base.load_state_dict(encoder_state, strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing):
        raise MedtextError(f"encoder weights do not fit {type(base).__name__}: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        pooler_dense.load_state_dict(dense.state_dict())
        exported.classifier.load_state_dict(classifier.state_dict())
    return exported.eval()


def export_checkpoint(ckpt_path: Path, out_dir: Path, overwrite: bool = False) -> Path:
    """Write ``out_dir``, atomically: the model (safetensors), its config and the tokenizer. The folder
    loads in ``transformers`` alone and gives the same logits, e.g. for
    ``pipeline("text-classification", model=folder)``.

    Args:
        ckpt_path: a medtext checkpoint whose head is BERT's sequence-classification head.
        out_dir: the folder to write (created; a non-empty folder is refused unless ``overwrite``).
        overwrite: replace an earlier export in ``out_dir``: only what its ``.medtext_manifest.json``
            lists, never the current directory or the checkpoint's folder (``medtext/deploy/output_folders.py``).
    """
    read_checkpoint(ckpt_path)  # a missing or unreadable file: one clear line
    with output_folder(out_dir, "medtext export --export.format hf", overwrite,
                       hint=" (add --export.overwrite true to replace an earlier export)",
                       inputs=[("the input checkpoint", ckpt_path)]) as tmp:
        model = load_model(ckpt_path)
        to_sequence_classification(model).save_pretrained(tmp)
        load_tokenizer(model.hparams.encoder_name).save_pretrained(tmp)
    print(f"wrote {Path(out_dir)}")
    return Path(out_dir)
