"""A local encoder folder that transformers refuses is reported with what is wrong in it (remote code,
a broken ``tokenizer.json``), not as a folder that is missing and a hub that could not help."""

import json
import shutil

import pytest

from medtext.core.encoders import load_encoder, load_tokenizer
from medtext.core.errors import EncoderLoadError


def remote_code(folder):
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="custom-bert", auto_map={"AutoConfig": "modeling.Config", "AutoModel": "modeling.Model"})
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_config.pop("tokenizer_class")
    tokenizer_config["auto_map"] = {"AutoTokenizer": ["tokenization.Tokenizer", "tokenization.TokenizerFast"]}
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))


BROKEN = {  # name: (damage, load, words of the error)
    "auto_map tokenizer": (remote_code, load_tokenizer,
                           "auto_map in config.json and tokenizer_config.json asks for the model's own Python code"),
    "auto_map encoder": (remote_code, load_encoder, "auto_map in config.json asks for the model's own Python code"),
    "tokenizer.json cut short": (lambda f: (f / "tokenizer.json").write_text('{"version": "1.0", "trunc'), load_tokenizer,
                                 "tokenizer.json is not valid JSON (Unterminated string"),
    "tokenizer.json without a model": (lambda f: (f / "tokenizer.json").write_text('{"version": "1.0"}'), load_tokenizer,
                                       "tokenizer.json is not a tokenizer file ("),
}


@pytest.mark.parametrize("name", BROKEN)
def test_a_refused_local_folder_says_what_is_wrong_with_it(name, tiny_encoder, tmp_path):
    damage, load, words = BROKEN[name]
    folder = shutil.copytree(tiny_encoder, tmp_path / "encoder")
    damage(folder)
    with pytest.raises(EncoderLoadError) as err:
        load(str(folder))
    message = str(err.value)
    assert "\n" not in message and f"from the local folder {str(folder)!r}: " in message and words in message
    assert "not a local folder" not in message
