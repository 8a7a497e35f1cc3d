"""``zero_shot_entailment``: zero-shot classification with an NLI model, as the transformers
zero-shot-classification pipeline does it: each (abstract, label) pair is one NLI example.
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import torch

from medtext.core.encoders import resolve_encoder_path
from medtext.core.errors import EncoderLoadError, MedtextError

from . import BaselineData, BaselineOptions, BaselineResult
from .selection import check_splits, choose_thresholds, score_name

log = logging.getLogger(__name__)
HYPOTHESIS_TEXTS = ("name", "description")


def hypotheses(data: BaselineData, options: BaselineOptions) -> list[str]:
    """One hypothesis per label; one line for a template without ``{}`` or an unknown text choice."""
    if options.hypothesis_text not in HYPOTHESIS_TEXTS:
        raise MedtextError(f"baseline.hypothesis_text must be one of {', '.join(HYPOTHESIS_TEXTS)}, "
                           f"not {options.hypothesis_text!r}")
    template = options.hypothesis_template
    if "{}" not in template:
        raise MedtextError(f"baseline.hypothesis_template must contain {{}} where the label goes, not {template!r}")
    if options.hypothesis_text == "description" and list(data.descriptions) == list(data.label_names):
        raise MedtextError("--baseline.hypothesis_text description: this data has no label descriptions (a labels_file "
                           "with 'Name: description' entries or a descriptions_file gives them); use name")
    texts = data.label_names if options.hypothesis_text == "name" else data.descriptions
    try:
        return [template.format(text) for text in texts]
    except (IndexError, KeyError, ValueError) as err:
        raise MedtextError(f"baseline.hypothesis_template {template!r} cannot be filled ({err}); "
                           "use a single {} and double any other brace ({{ }})") from None


def load_nli_model(name: Optional[str]):
    """Tokenizer and sequence-classification model of ``name`` (hub id or folder); no remote code."""
    if not name:
        raise MedtextError("zero_shot_entailment needs an NLI model: set --baseline.nli_model to a hub id or a "
                           "local folder of an AutoModelForSequenceClassification trained on NLI")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_encoder_path(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise EncoderLoadError(f"cannot load the NLI model {name!r}: it is not a local folder holding config.json, "
                               f"the weights and the tokenizer files, and the Hugging Face hub could not provide it "
                               f"({type(err).__name__}). Pass a local folder (--baseline.nli_model /path/to/model), "
                               "or run once online to fill the hub cache and set HF_HUB_OFFLINE=1") from err
    return tokenizer, model.eval()


def nli_classes(config, name: str) -> tuple[int, Optional[int]]:
    """Ids of the entailment class and of the contradiction class (``None`` if there is none)."""
    id2label = {int(i): str(label) for i, label in config.id2label.items()}

    def find(prefix: str) -> Optional[int]:
        return next((i for i, label in sorted(id2label.items()) if label.lower().startswith(prefix)), None)

    entailment = find("entail")
    if entailment is None:
        raise MedtextError(f"the NLI model {name!r} has no entailment class (a label starting with 'entail'); "
                           f"its labels are {', '.join(id2label[i] for i in sorted(id2label))}")
    return entailment, find("contradict")


def check_hypothesis_lengths(tokenizer, hypothesis_list: Sequence[str], max_length: int) -> None:
    """One line if a hypothesis leaves no room for the abstract within ``max_length`` tokens."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    for hypothesis in hypothesis_list:
        needed = len(tokenizer(hypothesis, add_special_tokens=False)["input_ids"]) + specials
        if needed >= max_length:
            raise MedtextError(f"the hypothesis {hypothesis!r} takes {needed} of the {max_length} tokens "
                               "(baseline.max_length), leaving none for the abstract; raise max_length")


@torch.inference_mode()
def pair_logits(tokenizer, model, abstracts: Sequence[str], hypothesis_list: Sequence[str],
                options: BaselineOptions) -> torch.Tensor:
    """NLI logits ``(abstracts, labels, classes)`` of every (abstract, hypothesis) pair, in batches of
    ``batch_size`` pairs, longest abstracts first (similar lengths share a batch: little padding).
    The premise is the abstract (truncated, ``only_first``), the hypothesis the label's."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    order = sorted(range(len(abstracts)), key=lambda i: len(abstracts[i]), reverse=True)
    pairs = [(i, j) for i in order for j in range(len(hypothesis_list))]
    logits = torch.empty(len(abstracts), len(hypothesis_list), model.config.num_labels)
    for start in range(0, len(pairs), options.batch_size):
        rows, columns = zip(*pairs[start:start + options.batch_size])
        batch = tokenizer([abstracts[i] for i in rows], [hypothesis_list[j] for j in columns], padding=True,
                          truncation="only_first", max_length=options.max_length, return_tensors="pt")
        logits[list(rows), list(columns)] = model(**batch.to(device)).logits.float().cpu()
    return logits


def label_probabilities(logits: torch.Tensor, entailment: int, contradiction: Optional[int],
                        multi_label: bool) -> torch.Tensor:
    """``(abstracts, labels)`` probabilities from the pair logits. Single-label: softmax over the labels
    of the entailment logits. Multi-label: per label, softmax over [contradiction, entailment] (sigmoid
    of the entailment logit if the model has no contradiction class)."""
    if not multi_label:
        return logits[..., entailment].softmax(-1)
    if contradiction is None:
        return logits[..., entailment].sigmoid()
    return logits[..., [contradiction, entailment]].softmax(-1)[..., 1]


def run(data: BaselineData, options: BaselineOptions) -> BaselineResult:
    """Zero-shot NLI probabilities for the test abstracts (single-label: no validation pass; multi-label:
    per-label thresholds tuned on validation). ``chosen``: the model's ``entailment_class`` and
    ``contradiction_class``, the ``hypotheses`` and, multi-label, ``val/tuned_micro_f1``."""
    check_splits(test=data.test_texts, **({"validation": data.val_texts} if data.multi_label else {}))
    if options.batch_size < 1:
        raise MedtextError(f"baseline.batch_size must be >= 1, not {options.batch_size}")
    hypothesis_list = hypotheses(data, options)
    tokenizer, model = load_nli_model(options.nli_model)
    entailment, contradiction = nli_classes(model.config, options.nli_model)
    check_hypothesis_lengths(tokenizer, hypothesis_list, options.max_length)
    names = model.config.id2label
    chosen = {"entailment_class": names[entailment],
              "contradiction_class": None if contradiction is None else names[contradiction],
              "hypotheses": hypothesis_list}

    def probabilities(texts: Sequence[str]):
        logits = pair_logits(tokenizer, model, texts, hypothesis_list, options)
        return label_probabilities(logits, entailment, contradiction, data.multi_label).numpy()

    test = probabilities(data.test_texts)
    if not data.multi_label:
        return BaselineResult(probabilities=test, chosen=chosen)
    thresholds, score = choose_thresholds(probabilities(data.val_texts), data.val_labels, multi_label=True)
    log.info("zero-shot entailment: %s %.4f at the tuned thresholds", score_name(True), score)
    return BaselineResult(probabilities=test, thresholds=thresholds, chosen={**chosen, score_name(True): score})
