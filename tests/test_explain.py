"""``medtext explain``: an HTML page of word weights, one card per abstract, for any head and task."""

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from cli_helpers import in_folder, run, tiny_config
from data_helpers import spec
from test_multilabel import write_multilabel_csv

from data_modules.synthetic import generate_abstracts
from data_modules.token_cache import encode
from medtext.model.classifier import TextClassifier
from medtext.commands import main
from medtext.core.encoders import load_tokenizer
from medtext.commands.explain import tokenize
from medtext.heads import BiLSTMCrossAttentionHead

TRICKY = "Tumour <b>markers</b> & CA72-4: \"gastric\" cancer; unknownword zzz."


class Page(HTMLParser):
    """Cards (their text, highlighted spans, selector options), every src/href, and the JSON data."""

    def __init__(self, text: str):
        super().__init__()
        self.cards, self.links, self.data, self._stack, self._json = [], [], None, [], False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[k] for k in ("src", "href") if k in attrs]
        classes = (attrs.get("class") or "").split()
        if tag == "section" and "card" in classes:
            self.cards.append({"text": "", "spans": [], "options": [], "in_text": False})
        elif tag == "p" and "text" in classes:
            self.cards[-1]["in_text"] = True
        elif tag == "span" and "w" in classes:
            self.cards[-1]["spans"].append([int(attrs["data-w"]), ""])
        elif tag == "option":
            self.cards[-1]["options"].append(attrs["value"])
        self._json = tag == "script" and attrs.get("type") == "application/json"
        if tag not in ("meta", "br", "link", "img", "input"):  # void elements have no end tag
            self._stack.append((tag, classes))

    def handle_endtag(self, tag):
        opened, classes = self._stack.pop()
        if opened == "p" and "text" in classes:
            self.cards[-1]["in_text"] = False

    def handle_data(self, data):
        if self._json:
            self.data, self._json = json.loads(data), False
        elif self.cards and self.cards[-1]["in_text"]:
            self.cards[-1]["text"] += data
            if self._stack[-1] == ("span", ["w"]):
                self.cards[-1]["spans"][-1][1] += data


def write_predict_file(path, rows: int = 6):
    data = generate_abstracts(rows, seed=5, label_noise=0.0)
    data[1]["text"] = TRICKY + " " + data[1]["text"]
    data[2]["text"] = " ".join([data[2]["text"]] * 6)  # longer than max_length 64
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(data)
    return [row["text"] for row in data]


def fit(folder, encoder, head: list[str], data: dict, data_class="data_modules.SyntheticAbstractsDataModule"):
    with in_folder(folder):
        config = tiny_config(folder / "fit.yaml", encoder, data, data_class, max_steps=2, default_root_dir=str(folder))
        fitted = run("fit", "--config", str(config), *head, f"--trainer.logger.init_args.save_dir={folder / 'runs'}")
        return fitted.trainer.checkpoint_callback.last_model_path  # max_steps 2: before any validation


@pytest.fixture(scope="module")
def label_attention_ckpt(tiny_encoder, tmp_path_factory):
    """Single-label, label-attention head."""
    return fit(tmp_path_factory.mktemp("explain_la"), tiny_encoder,
               ["--model.head", "medtext.heads.LabelAttentionHead", "--model.head.num_heads", "2"],
               {"num_train": 24, "num_val": 8, "num_test": 8})


@pytest.fixture(scope="module")
def multilabel_mlp_ckpt(tiny_encoder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain_ml")
    for split, n, seed in (("train", 24, 1), ("val", 12, 2)):
        write_multilabel_csv(folder / f"{split}.csv", n, seed)
    return fit(folder, tiny_encoder, ["--model.head", "medtext.heads.MLPHead"],
               {"train_file": str(folder / "train.csv"), "val_file": str(folder / "val.csv"),
                "label_column": "labels", "label_delimiter": ";"}, "data_modules.AbstractsDataModule")


def explain(ckpt, predict_file, *options) -> Page:
    assert main(["explain", "--ckpt_path", ckpt, "--data.predict_file", str(predict_file),
                 "--explain.output_file", "out/report.html", *options]) == 0
    with open("out/report.html", encoding="utf-8") as handle:
        return Page(handle.read())


def check_page(page: Page, texts: list[str], tokenizer, labels: int):
    assert len(page.cards) == len(texts) == len(page.data["cards"])
    assert not [link for link in page.links if "http" in link]
    for card, text, weights in zip(page.cards, texts, page.data["cards"]):
        assert card["text"] == text  # the whole abstract, escaped and unescaped back
        words = {word for word, _ in tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(text)}
        assert card["spans"] and all(word in words for _, word in card["spans"])
        assert not any(special in card["text"] for special in ("[CLS]", "[SEP]", "[PAD]") if special not in text)
        assert all(weights[j] is not None and len(weights[j]) == labels for j, _ in card["spans"])
        assert card["options"] == [str(j) for j in range(labels)]


def test_label_attention_page_shows_the_weights_explain_returns(label_attention_ckpt, tmp_path):
    texts = write_predict_file(tmp_path / "new.csv")
    page = explain(label_attention_ckpt, tmp_path / "new.csv", "--explain.limit", "4", "--explain.batch_size", "3")
    model = TextClassifier.load_from_checkpoint(label_attention_ckpt, map_location="cpu", weights_only=True).eval()
    tokenizer = load_tokenizer(model.hparams.encoder_name)
    check_page(page, texts[:4], tokenizer, len(model.label_names))
    html = Path("out/report.html").read_text(encoding="utf-8")
    assert "<b>markers" not in html and ">&lt;</span>" in html and ">&amp;</span>" in html  # the text is escaped
    assert sum(w is None for w in page.data["cards"][2]) > 0 and "not seen" in html  # truncated: said
    for k, text in enumerate(texts[:4]):  # recomputed: explain() on the model input, pieces summed per word
        enc = tokenizer(text, truncation=True, max_length=64)
        ids = torch.tensor([enc["input_ids"]])
        _, weights = model.explain(ids, torch.ones_like(ids))
        expected: dict[int, torch.Tensor] = {}
        for position, word in enumerate(enc.word_ids()):
            if word is not None:
                expected[word] = expected.get(word, 0) + weights[0, :, position].double()
        shown = page.data["cards"][k]
        assert sorted(expected) == [j for j, w in enumerate(shown) if w is not None]
        for word, value in expected.items():
            assert shown[word] == pytest.approx(value.tolist(), abs=1e-5)


def test_single_label_gradient_x_input_and_a_missing_predict_file(label_attention_ckpt, tmp_path, capsys):
    texts = write_predict_file(tmp_path / "new.csv")
    page = explain(label_attention_ckpt, tmp_path / "new.csv", "--explain.method", "gradient_x_input")
    tokenizer = load_tokenizer(TextClassifier.load_from_checkpoint(label_attention_ckpt, map_location="cpu",
                                                                   weights_only=True).hparams.encoder_name)
    check_page(page, texts, tokenizer, 5)
    assert "gradient_x_input" in capsys.readouterr().out
    assert main(["explain", "--ckpt_path", label_attention_ckpt]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--data.predict_file" in err


def test_multilabel_mlp_gradient_x_input_and_no_attention(multilabel_mlp_ckpt, tmp_path, capsys):
    texts = write_predict_file(tmp_path / "new.csv")
    page = explain(multilabel_mlp_ckpt, tmp_path / "new.csv", "--explain.limit", "3")  # MLP: gradient_x_input
    assert "gradient_x_input" in capsys.readouterr().out
    model = TextClassifier.load_from_checkpoint(multilabel_mlp_ckpt, map_location="cpu", weights_only=True)
    assert model.hparams.multi_label
    check_page(page, texts[:3], load_tokenizer(model.hparams.encoder_name), len(model.label_names))
    capsys.readouterr()
    assert main(["explain", "--ckpt_path", multilabel_mlp_ckpt, "--data.predict_file", str(tmp_path / "new.csv"),
                 "--explain.method", "attention"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "MLPHead has no attention weights" in err


@pytest.mark.slow
def test_integrated_gradients_for_the_mlp_head(multilabel_mlp_ckpt, tmp_path):
    pytest.importorskip("captum")
    texts = write_predict_file(tmp_path / "new.csv", rows=3)
    page = explain(multilabel_mlp_ckpt, tmp_path / "new.csv", "--explain.method", "integrated_gradients",
                   "--explain.steps", "8")
    model = TextClassifier.load_from_checkpoint(multilabel_mlp_ckpt, map_location="cpu", weights_only=True)
    check_page(page, texts, load_tokenizer(model.hparams.encoder_name), len(model.label_names))


@pytest.mark.parametrize("truncation", ["head", "head_tail"])
def test_own_tokenization_is_the_model_input(tiny_encoder, truncation):
    tokenizer = load_tokenizer(tiny_encoder)
    texts = write_predict_file("new.csv")
    tokenization = spec(tokenizer, 32, truncation, head_tokens=10)
    ours, theirs = tokenize(tokenizer, texts, tokenization), encode(tokenizer, texts, tokenization)
    assert [e["ids"] for e in ours] == [theirs[i].tolist() for i in range(len(texts))]
    for e in ours:
        specials = [p for p, w in enumerate(e["token_words"]) if w is None]
        assert specials == [0, len(e["ids"]) - 1]


@pytest.mark.parametrize("query", ["labels", "cls"])
def test_bilstm_head_attention_matches_its_forward(query):
    head = BiLSTMCrossAttentionHead(8, 3, lstm_hidden_size=4, num_heads=2, query=query).eval()
    states, mask = torch.randn(2, 5, 8), torch.tensor([[1] * 5, [1, 1, 1, 0, 0]])
    logits, weights = head.forward_with_attention(states, mask)
    torch.testing.assert_close(logits, head(states, mask))
    assert weights.shape == (2, 3 if query == "labels" else 1, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
    assert weights[1, :, 3:].abs().max() == 0
