"""``python -m medtext explain --ckpt_path CKPT --data.predict_file F``: why a checkpoint predicts what it does.

    python -m medtext explain --ckpt_path best.ckpt --data.predict_file new.csv --explain.limit 20
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import torch

from medtext.runtime.checkpoint import load_model, peek_ckpt_path, read_checkpoint
from medtext.core.errors import MedtextError

Method = Literal["attention", "gradient_x_input", "integrated_gradients"]


def tokenize(tokenizer, texts: list[str], spec) -> list[dict]:
    """Per text: the model's input ``ids`` (cut as the data module's ``spec``, a ``TokenizationSpec``, cuts
    them; with windows: the first window) and, per kept position, its word index (``None`` for special
    tokens); ``words`` are (start, end) character spans of every word."""
    from data_modules.token_cache import head_tail_ids, silence_length_warning, special_prefix

    budget, prefix = spec.budget, special_prefix(tokenizer)
    specials = tokenizer.num_special_tokens_to_add()
    silence_length_warning(tokenizer)  # the ids are cut below, as the data module cuts them
    enc = tokenizer(texts, truncation=False, return_offsets_mapping=True, return_special_tokens_mask=True,
                    return_attention_mask=False, return_token_type_ids=False)
    out = []
    for i in range(len(texts)):
        ids, special = enc["input_ids"][i], enc["special_tokens_mask"][i]
        word_ids, offsets = enc.word_ids(i), enc["offset_mapping"][i]
        kept = head_tail_ids(range(len(ids)), budget, spec.kept_head, prefix, specials)
        spans: dict[int, list[int]] = {}
        for position, word in enumerate(word_ids):
            if word is not None and not special[position]:
                start, end = offsets[position]
                span = spans.setdefault(word, [start, end])
                span[0], span[1] = min(span[0], start), max(span[1], end)
        order = sorted(spans, key=lambda w: spans[w][0])
        index = {word: j for j, word in enumerate(order)}
        out.append({"ids": [ids[p] for p in kept], "words": [tuple(spans[w]) for w in order],
                    "token_words": [None if special[p] or word_ids[p] is None else index[word_ids[p]] for p in kept]})
    return out


def merge_to_words(token_weights: torch.Tensor, token_words: list[int | None], num_words: int) -> list[list[float] | None]:
    """(labels, tokens) weights -> per word (the tokenizer's ``word_ids``), per label, the sum over its
    pieces; ``None`` for a word the model did not see (cut by ``max_length``). Special tokens (word
    ``None``) and padding are dropped."""
    labels = token_weights.shape[0]
    sums = torch.zeros(num_words, labels, dtype=torch.float64)
    seen = torch.zeros(num_words, dtype=torch.bool)
    for position, word in enumerate(token_words):
        if word is not None:
            sums[word] += token_weights[:, position].double()
            seen[word] = True
    return [sums[j].tolist() if seen[j] else None for j in range(num_words)]


def embedding_gradients(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """gradient x input of every label's logit, summed over the hidden size: (batch, labels, tokens)."""
    layer, captured = model.encoder.get_input_embeddings(), {}

    def hook(module, inputs, output):
        captured["embeddings"] = output.detach().requires_grad_()
        return captured["embeddings"]

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(ids, mask)
            embeddings, labels = captured["embeddings"], logits.shape[1]
            rows = [(torch.autograd.grad(logits[:, j].sum(), embeddings, retain_graph=j < labels - 1)[0]
                     * embeddings).sum(-1) for j in range(labels)]
    finally:
        handle.remove()
    return torch.stack(rows, 1).detach()


def integrated_gradients(model, ids: torch.Tensor, mask: torch.Tensor, special: torch.Tensor, pad_id: int,
                         steps: int) -> torch.Tensor:
    """captum's LayerIntegratedGradients on the word-piece embeddings, per label: (batch, labels, tokens),
    from a baseline that keeps the special tokens and puts [PAD] on every text token."""
    try:
        from captum.attr import LayerIntegratedGradients
    except ImportError:
        raise MedtextError("--explain.method integrated_gradients needs captum: pip install 'medtext[explain]'") from None
    explainer = LayerIntegratedGradients(lambda i, m: model(i, m), model.encoder.get_input_embeddings())
    baseline = torch.where(special | (mask == 0), ids, torch.full_like(ids, pad_id))
    labels = len(model.label_names)
    with torch.enable_grad():
        rows = [explainer.attribute(ids, baselines=baseline, target=j, additional_forward_args=(mask,),
                                    n_steps=steps, internal_batch_size=max(steps, len(ids))).sum(-1)
                for j in range(labels)]
    return torch.stack(rows, 1).detach().float()


def token_weights(model, ids: torch.Tensor, mask: torch.Tensor, special: torch.Tensor, method: str, pad_id: int,
                  steps: int = 20) -> torch.Tensor:
    """(batch, labels, tokens) weights by ``method``; special tokens and padding are 0.

    ``attention``: the head's own, averaged over its attention heads (label attention: the last layer's,
    per label; BiLSTM cross-attention: per class query, or the one [CLS] query for every label).
    ``gradient_x_input``: gradient of the label's logit w.r.t. the word-piece embeddings, times them,
    summed over the hidden size. Gradients are of the raw logits (a temperature rescales them, the same
    for every word)."""
    if method == "attention":
        _, weights = model.explain(ids, mask)
        weights = weights.float().expand(-1, len(model.label_names), -1)  # one [CLS] query: every label
    elif method == "gradient_x_input":
        weights = embedding_gradients(model, ids, mask)
    else:
        weights = integrated_gradients(model, ids, mask, special, pad_id, steps)
    return weights.masked_fill((special | (mask == 0)).unsqueeze(1), 0.0)


def choose_method(head: type, method: str | None) -> str:
    """``method``, or the head's default: ``attention`` if it has attention weights, else ``gradient_x_input``."""
    has_attention = getattr(head, "has_attention_weights", False)
    if method == "attention" and not has_attention:
        raise MedtextError(f"{head.__name__} has no attention weights: use --explain.method "
                           "gradient_x_input or integrated_gradients")
    return method or ("attention" if has_attention else "gradient_x_input")


def explain_texts(model, tokenizer, texts: list[str], spec, method: str | None = None, batch_size: int = 8,
                  steps: int = 20) -> list[dict]:
    """Per text: ``words`` (character spans), ``weights`` (per word: per label, or ``None`` if unseen),
    ``probabilities`` and ``predictions`` (``TextClassifier.predict_step``'s)."""
    method = choose_method(type(model.head), method)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    results = []
    for start in range(0, len(texts), batch_size):
        encoded = tokenize(tokenizer, texts[start:start + batch_size], spec)
        width = max(len(e["ids"]) for e in encoded)
        ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
        mask, special = torch.zeros_like(ids), torch.zeros_like(ids, dtype=torch.bool)
        for row, e in enumerate(encoded):
            ids[row, :len(e["ids"])] = torch.tensor(e["ids"])
            mask[row, :len(e["ids"])] = 1
            special[row, :len(e["ids"])] = torch.tensor([w is None for w in e["token_words"]])
        with torch.no_grad():
            predicted = model.predict_step({"input_ids": ids, "attention_mask": mask, "index": torch.arange(len(ids))}, 0)
        weights = token_weights(model, ids, mask, special, method, pad_id, steps)
        for row, e in enumerate(encoded):
            results.append({"words": e["words"], "weights": merge_to_words(weights[row], e["token_words"], len(e["words"])),
                            "probabilities": predicted["probabilities"][row].tolist(),
                            "predictions": predicted["predictions"][row].tolist()})
    return results


def build_parser(settings) -> object:
    from jsonargparse import ActionConfigFile

    from medtext.core.argument_errors import CommandParser

    from data_modules import AbstractsDataModule

    description = (__doc__.split("\n\n")[0] + " The data options (--data.NAME VALUE, the same as "
                   "--data.init_args.NAME VALUE) default to the checkpoint's; --data.predict_file is needed.")
    parser = CommandParser(prog="medtext explain", description=description)
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of these options")
    parser.add_argument("--ckpt_path", type=str, required=True, help="the checkpoint to explain")
    parser.add_subclass_arguments(AbstractsDataModule, "data", required=False,
                                  help="data settings (default: the checkpoint's); set data.predict_file")
    parser.add_argument("--explain.output_file", type=str, default="explain.html", help="the HTML page to write")
    parser.add_argument("--explain.limit", type=int | None, default=50,
                        help="explain the first N abstracts of the file (null: all)")
    parser.add_argument("--explain.method", type=Method | None, default=None,
                        help="attention (the head's; default for attention heads), gradient_x_input (default "
                             "otherwise) or integrated_gradients (needs captum)")
    parser.add_argument("--explain.batch_size", type=int, default=8, help="abstracts per batch")
    parser.add_argument("--explain.steps", type=int, default=20, help="integrated_gradients: interpolation steps")
    if settings is not None and settings.data:
        parser.set_defaults({"data": settings.data})
    return parser


def main(args: list[str] | None = None) -> None:
    """``medtext explain --ckpt_path CKPT --data.predict_file F [--explain.* ...]``: an HTML page of word weights.

    One self-contained page (:mod:`medtext.commands.explain_html`): per abstract its predicted label(s) with
    (calibrated) probabilities, the true label when the file has labels, and its words highlighted by
    their weight for a label chosen per card. The data settings are the checkpoint's (as for
    ``predict``); ``--data.*`` overrides them."""
    import sys

    from data_modules.readers import read_row_ids, read_table, read_texts

    from medtext.core.atomic_files import atomic_write_text
    from medtext.commands.explain_html import render

    args = list(sys.argv[2:] if args is None else args)
    ckpt_path = peek_ckpt_path(args)
    settings = read_checkpoint(ckpt_path) if ckpt_path and "-h" not in args and "--help" not in args else None
    parser = build_parser(settings)
    config = parser.parse_args(args)
    settings = settings or read_checkpoint(config.ckpt_path)
    options = config.explain
    if not config.data or not config.data.init_args.get("predict_file"):
        raise MedtextError("explain needs --data.predict_file FILE: the abstracts to explain")
    if config.data.init_args.get("long_text") == "windows":
        raise MedtextError("explain takes long_text: truncate checkpoints; this one reads long_text: windows")
    config.data.init_args.tokenizer_name = settings.hyper_parameters["encoder_name"]
    data = parser.instantiate_classes(config).data
    data.align_labels(settings.label_map)
    path = data.split_file("predict")
    frame = read_table(path, data.file_format)
    texts = read_texts(frame, path, data.text_column)
    rows = len(texts) if options.limit is None else min(options.limit, len(texts))
    row_ids = read_row_ids(frame, path, data.id_column)[:rows]
    columns = data.labels.label_columns or [data.label_column]
    truth = data.read_labels(frame, path)[:rows] if all(c in frame.columns for c in columns) else None
    method = choose_method(settings.head_class, options.method)  # refused before loading weights
    model = load_model(ckpt_path or config.ckpt_path)
    began = time.perf_counter()
    results = explain_texts(model, data.tokenizer, texts[:rows], data.tokenization, method, options.batch_size,
                            options.steps)
    seconds = time.perf_counter() - began
    cards = [{"row_id": row_ids[i], "text": texts[i], **result,
              "truth": None if truth is None else truth[i].tolist()} for i, result in enumerate(results)]
    page = render(cards, model.label_names, bool(model.hparams.multi_label), method,
                  {"checkpoint": Path(config.ckpt_path).name, "file": Path(path).name, "max_length": data.tokenization.max_length})
    atomic_write_text(options.output_file, page)
    print(f"wrote {options.output_file}: {rows} abstracts, {method}, {seconds:.1f} s")
