"""Export to a Hugging Face sequence-classification model: same logits, clear error otherwise."""

import functools

import pytest
import torch
from transformers import AutoModelForSequenceClassification, pipeline

from medtext import TextClassifier
from medtext.core.errors import MedtextError
from medtext.heads import MLPHead
from medtext.deploy.hf_export import to_sequence_classification

LABELS = ["neoplasms", "digestive", "nervous"]


def bert_style_classifier(tiny_encoder, **head_args):
    torch.manual_seed(0)
    hidden = TextClassifier(tiny_encoder, LABELS).encoder.config.hidden_size
    args = {"pooling": "cls", "hidden_dims": [hidden], "activation": "tanh", **head_args}
    return TextClassifier(tiny_encoder, LABELS, head=functools.partial(MLPHead, **args)).eval()


def test_exported_model_gives_the_same_logits_and_labels(tiny_encoder, tmp_path):
    model = bert_style_classifier(tiny_encoder)
    torch.nn.init.normal_(model.head.mlp[-1].weight, std=1.0)  # make the classes distinguishable
    to_sequence_classification(model).save_pretrained(tmp_path)
    exported = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    ids = torch.randint(5, 50, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    with torch.no_grad():
        expected = model(ids, mask)
        got = exported(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert exported.config.id2label == dict(enumerate(LABELS))


def test_pipeline_on_exported_folder_matches_the_classifier(tiny_encoder, tmp_path):
    from transformers import AutoTokenizer

    model = bert_style_classifier(tiny_encoder)
    torch.nn.init.normal_(model.head.mlp[-1].weight, std=1.0)
    to_sequence_classification(model).save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    texts = ["tumor of the colon", "stroke and seizure in the brain"]
    classify = pipeline("text-classification", model=str(tmp_path), tokenizer=tokenizer)
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(encoded["input_ids"], encoded["attention_mask"]).argmax(-1).tolist()
    assert [r["label"] for r in classify(texts)] == [LABELS[i] for i in expected]


@pytest.mark.parametrize("head_args", [{"pooling": "mean"}, {"activation": "gelu"}, {"hidden_dims": []}])
def test_heads_without_a_hugging_face_equivalent_are_refused(tiny_encoder, head_args):
    with pytest.raises(MedtextError, match="has a Hugging Face equivalent"):
        to_sequence_classification(bert_style_classifier(tiny_encoder, **head_args))


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="unknown activation"):
        MLPHead(8, 2, hidden_dims=[8], activation="swish")
