"""The four ``medtext baseline`` methods on tiny synthetic data, single- and multi-label: tfidf learns
(well above chance); the embedding and NLI methods (tiny random models) give well-formed outputs; the
embedding cache is written, read back and keyed by the texts; bad options give one-line errors."""

import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from data_modules.synthetic import CONDITIONS, GENERIC
from medtext.baselines import METHODS, BaselineData, BaselineOptions, embeddings, method_function
from medtext.baselines.selection import validation_score
from medtext.core.encoders import load_tokenizer
from medtext.core.errors import MedtextError

LABELS = list(CONDITIONS)[:3]


def abstract(labels: list[int], rng: random.Random) -> str:
    """Sentences naming terms of each label's condition among generic clinical sentences."""
    terms = [rng.choice(CONDITIONS[LABELS[label]]) for label in labels for _ in range(3)]
    generic = [s.format(n=rng.randint(10, 90), m=rng.randint(1, 9)) for s in rng.sample(GENERIC, 2)]
    return " ".join([f"Patients with {term} were studied." for term in terms] + generic)


def make_data(multi_label: bool, sizes=(60, 30, 30), seed: int = 0) -> BaselineData:
    """Single-label: one condition per abstract. Multi-label: each condition with probability 0.4, and a
    fourth label ("unseen") that no training abstract has."""
    rng = random.Random(seed)
    names = LABELS + ["unseen"] * multi_label
    splits = []
    for split, size in enumerate(sizes):
        if multi_label:
            labels = np.array([[rng.random() < 0.4 for _ in LABELS] + [split > 0 and rng.random() < 0.3]
                               for _ in range(size)], dtype=np.int64)
            texts = [abstract(list(np.flatnonzero(row[:len(LABELS)])), rng) for row in labels]
        else:
            labels = np.array([rng.randrange(len(LABELS)) for _ in range(size)])
            texts = [abstract([label], rng) for label in labels]
        splits += [texts, labels]
    return BaselineData(names, multi_label, [f"diseases such as {n}" for n in names], *splits)


def check_shapes(result, data: BaselineData) -> None:
    p = result.probabilities
    assert p.shape == (len(data.test_texts), len(data.label_names))
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    if data.multi_label:
        assert result.thresholds.shape == (len(data.label_names),)
        assert ((result.thresholds > 0) & (result.thresholds < 1)).all()
    else:
        assert result.thresholds is None
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)


def test_every_method_is_importable():
    assert all(callable(method_function(name)) for name in METHODS)


@pytest.mark.parametrize("multi_label", [False, True])
def test_tfidf_learns_the_condition_words(multi_label):
    data = make_data(multi_label)
    options = BaselineOptions(c_grid=[0.1, 1.0, 10.0])
    result = method_function("tfidf")(data, options)
    check_shapes(result, data)
    score = validation_score(result.probabilities, data.test_labels, multi_label, result.thresholds)
    assert score > 0.8  # chance: about 1/3 (single-label macro-F1), 0.4 (multi-label micro-F1)
    name = "val/tuned_micro_f1" if multi_label else "val/macro_f1"
    assert result.chosen["C"] in options.c_grid and result.chosen[name] > 0.8
    assert [row["C"] for row in result.chosen["grid"]] == options.c_grid
    if multi_label:  # no training positive: a constant, never-positive probability
        assert np.ptp(result.probabilities[:, -1]) < 1e-9


def test_tfidf_class_missing_from_training_gets_probability_zero():
    data = make_data(False)
    keep = data.train_labels != 2
    data.train_texts = [t for t, k in zip(data.train_texts, keep) if k]
    data.train_labels = data.train_labels[keep]
    result = method_function("tfidf")(data, BaselineOptions(c_grid=[1.0]))
    check_shapes(result, data)
    assert (result.probabilities[:, 2] == 0).all()


def test_platt_scaling():
    rng = np.random.default_rng(0)
    labels = rng.random(200) < 0.3
    cosines = 0.2 + 0.1 * labels + 0.03 * rng.standard_normal(200)
    slope, intercept = embeddings.platt_scaling(cosines, labels.astype(int), seed=0)
    probability = 1 / (1 + np.exp(-(slope * np.array([0.2, 0.3]) + intercept)))
    assert slope > 0 and probability[0] < 0.5 < probability[1]
    assert embeddings.platt_scaling(cosines, np.zeros(200, int), seed=0) == (0.0, pytest.approx(np.log(1 / 201)))


def test_empty_c_grid_is_one_line_error():
    with pytest.raises(MedtextError, match="c_grid"):
        method_function("tfidf")(make_data(False), BaselineOptions(c_grid=[]))
    with pytest.raises(MedtextError, match="c_grid"):
        method_function("embedding_probe")(make_data(False), BaselineOptions(c_grid=[0.0]))


@pytest.mark.parametrize("multi_label", [False, True])
def test_embedding_probe(multi_label, tiny_encoder):
    data = make_data(multi_label)
    result = method_function("embedding_probe")(data, BaselineOptions(encoder_name=tiny_encoder, batch_size=8))
    check_shapes(result, data)
    assert result.chosen["C"] in BaselineOptions().c_grid


@pytest.mark.parametrize("multi_label", [False, True])
def test_zero_shot_similarity(multi_label, tiny_encoder):
    data = make_data(multi_label)
    options = BaselineOptions(encoder_name=tiny_encoder, batch_size=8)
    result = method_function("zero_shot_similarity")(data, options)
    check_shapes(result, data)
    embed = embeddings.Embedder(options)
    cosines = (embed(data.test_texts) @ embed(data.descriptions).T).numpy()
    if multi_label:
        assert len(result.chosen["platt_a"]) == len(data.label_names) and "val/tuned_micro_f1" in result.chosen
    else:  # the temperature changes no decision
        assert result.chosen["temperature"] > 0 and "val/macro_f1" in result.chosen
        np.testing.assert_array_equal(result.probabilities.argmax(1), cosines.argmax(1))


def test_embeddings_are_cached_and_keyed_by_the_texts(tiny_encoder, tmp_path, monkeypatch):
    options = BaselineOptions(encoder_name=tiny_encoder, batch_size=2, cache_dir=str(tmp_path / "emb"))
    texts = make_data(False).train_texts[:5]
    first = embeddings.Embedder(options)(texts)
    assert first.shape[0] == len(texts)
    torch.testing.assert_close(first.norm(dim=-1), torch.ones(len(texts)))
    cached = sorted((tmp_path / "emb").glob("*.pt"))
    assert len(cached) == 1

    def no_encoder(*args, **kwargs):
        raise AssertionError("the cached embeddings should have been read")

    monkeypatch.setattr(embeddings, "load_encoder", no_encoder)
    torch.testing.assert_close(embeddings.Embedder(options)(texts), first)
    with pytest.raises(AssertionError, match="cached"):  # one changed text: another key, computed again
        embeddings.Embedder(options)(texts[:-1] + [texts[-1] + " Revised."])
    changed = embeddings.cache_path(tmp_path / "emb", embeddings.encoder_identity(tiny_encoder),
                                    options.max_length, texts[:-1] + ["other"])
    assert changed != cached[0]
    assert embeddings.cache_path(tmp_path / "emb", embeddings.encoder_identity(tiny_encoder), 64, texts) != cached[0]


def test_embeddings_are_mean_pooled_regardless_of_batching(tiny_encoder, tmp_path):
    texts = make_data(False).train_texts[:6] + ["short"]
    one = embeddings.Embedder(BaselineOptions(encoder_name=tiny_encoder, batch_size=1, cache_dir=str(tmp_path / "a")))
    many = embeddings.Embedder(BaselineOptions(encoder_name=tiny_encoder, batch_size=4, cache_dir=str(tmp_path / "b")))
    torch.testing.assert_close(one(texts), many(texts), atol=1e-5, rtol=1e-4)


def test_embedding_methods_need_an_encoder():
    with pytest.raises(MedtextError, match="encoder_name"):
        method_function("zero_shot_similarity")(make_data(False), BaselineOptions())


def save_nli_model(folder: Path, tiny_encoder: str, id2label: dict[int, str]) -> str:
    """A tiny random BERT sequence classifier with ``id2label``, saved with the tiny encoder's tokenizer."""
    tokenizer = load_tokenizer(tiny_encoder)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, num_labels=len(id2label),
                        id2label=id2label, label2id={v: k for k, v in id2label.items()})
    BertForSequenceClassification(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def nli_model(tiny_encoder, tmp_path_factory) -> str:
    return save_nli_model(tmp_path_factory.mktemp("nli"), tiny_encoder,
                          {0: "entailment", 1: "neutral", 2: "contradiction"})


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("hypothesis_text", ["name", "description"])
def test_zero_shot_entailment(multi_label, hypothesis_text, nli_model):
    data = make_data(multi_label, sizes=(4, 12, 6))
    options = BaselineOptions(nli_model=nli_model, batch_size=5, max_length=96, hypothesis_text=hypothesis_text)
    result = method_function("zero_shot_entailment")(data, options)
    check_shapes(result, data)
    assert result.chosen["entailment_class"] == "entailment"
    assert result.chosen["contradiction_class"] == "contradiction"
    texts = data.label_names if hypothesis_text == "name" else data.descriptions
    assert result.chosen["hypotheses"] == [options.hypothesis_template.format(t) for t in texts]
    assert ("val/tuned_micro_f1" in result.chosen) == multi_label


def test_zero_shot_entailment_without_contradiction_class(tiny_encoder, tmp_path):
    model = save_nli_model(tmp_path / "nli2", tiny_encoder, {0: "ENTAILMENT", 1: "not_entailment"})
    data = make_data(True, sizes=(4, 8, 5))
    result = method_function("zero_shot_entailment")(data, BaselineOptions(nli_model=model, max_length=48))
    check_shapes(result, data)
    assert result.chosen["contradiction_class"] is None


def test_zero_shot_entailment_errors(tiny_encoder, nli_model, tmp_path):
    data = make_data(False, sizes=(4, 4, 4))
    run = method_function("zero_shot_entailment")
    with pytest.raises(MedtextError, match="needs an NLI model"):
        run(data, BaselineOptions())
    with pytest.raises(MedtextError, match=r"must contain \{\}"):
        run(data, BaselineOptions(nli_model=nli_model, hypothesis_template="About the label."))
    with pytest.raises(MedtextError, match="hypothesis_text"):
        run(data, BaselineOptions(nli_model=nli_model, hypothesis_text="title"))
    with pytest.raises(MedtextError, match="leaving none for the abstract"):
        run(data, BaselineOptions(nli_model=nli_model, max_length=8))
    no_entailment = save_nli_model(tmp_path / "sentiment", tiny_encoder, {0: "negative", 1: "positive"})
    with pytest.raises(MedtextError, match="no entailment class.*negative, positive") as error:
        run(data, BaselineOptions(nli_model=no_entailment))
    assert "\n" not in str(error.value)
    with pytest.raises(MedtextError, match="cannot load the NLI model") as error:
        run(data, BaselineOptions(nli_model=str(tmp_path / "missing")))
    assert "\n" not in str(error.value)


def test_a_best_c_at_the_edge_of_the_grid_is_said():
    from medtext.baselines.selection import select_logistic_regression

    rng = np.random.default_rng(0)
    labels = np.arange(200) % 2
    features = rng.normal(size=(200, 5)) + labels[:, None] * 0.5  # learnable: a weaker penalty fits better
    args = (features[:120], labels[:120], features[120:160], labels[120:160], features[160:], ["a", "b"], False)
    with pytest.warns(UserWarning, match=r"the best C=1 is the largest of --baseline.c_grid \[1e-06, 1.0\]"):
        select_logistic_regression(*args, [1e-6, 1.0], 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one C: no edge to speak of
        select_logistic_regression(*args, [1.0], 0)
