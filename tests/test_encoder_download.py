"""``python -m medtext download``: an encoder fetched once into the Hugging Face cache loads offline,
and a hub id missing from the cache, with the hub offline, is one line naming the command.

The hub is never reached: ``huggingface_hub.snapshot_download`` is replaced by a stand-in that files
a fake repository (the tiny encoder plus files no encoder needs) into the cache as the hub client
does (``models--org--name/refs/main``, ``snapshots/<commit>/``), filtered by huggingface_hub's own
``filter_repo_objects``."""

import json
import shutil
import time
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import constants
from huggingface_hub.utils import filter_repo_objects

from medtext.commands import main
from medtext.commands.encoder_download import BIN_WEIGHTS, CONFIG_FILES, SAFETENSORS_WEIGHTS, TOKENIZER_FILES
from medtext.core.encoders import load_encoder, load_encoder_config, load_tokenizer
from medtext.core.errors import EncoderLoadError

NAME = "medtext-tests/tiny-bert"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
NOT_NEEDED = ["tf_model.h5", "flax_model.msgpack", "onnx/model.onnx", "1_Pooling/config.json", "README.md",
              "training_args.bin"]


def fake_repository(tiny_encoder: str, folder: Path, safetensors: bool = True) -> Path:
    """The tiny encoder's files, a pytorch_model.bin copy of its weights, and files no encoder needs."""
    shutil.copytree(tiny_encoder, folder)
    shutil.copy(folder / "model.safetensors", folder / "pytorch_model.bin")  # size only: never loaded here
    if not safetensors:
        (folder / "model.safetensors").unlink()
    for name in NOT_NEEDED:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("{}")
    return folder


@pytest.fixture
def hub(monkeypatch):
    """``snapshot_download`` serving the repositories in ``hub.repositories``; ``hub.calls`` records it."""
    class Hub:
        repositories: dict = {}
        calls: list = []

    def snapshot_download(repo_id, *, cache_dir=None, allow_patterns=None, **kwargs):
        Hub.calls.append({"repo_id": repo_id, "cache_dir": cache_dir, "allow_patterns": allow_patterns, **kwargs})
        source = Hub.repositories[repo_id]
        storage = Path(cache_dir or constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
        (storage / "refs").mkdir(parents=True, exist_ok=True)
        (storage / "refs" / "main").write_text(COMMIT)
        snapshot = storage / "snapshots" / COMMIT
        files = [str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()]
        for name in filter_repo_objects(files, allow_patterns=allow_patterns):
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / name, snapshot / name)
        return str(snapshot)

    Hub.repositories, Hub.calls = {}, []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return Hub


def test_download_fetches_config_tokenizer_and_safetensors_only(hub, tiny_encoder, tmp_path, capsys):
    hub.repositories[NAME] = fake_repository(tiny_encoder, tmp_path / "repo")
    cache = tmp_path / "shared" / "hf" / "hub"
    assert main(["download", NAME, "--cache_dir", str(cache)]) == 0
    [call] = hub.calls  # safetensors found: no second request for pytorch_model.bin
    assert call == {"repo_id": NAME, "cache_dir": str(cache),
                    "allow_patterns": [*CONFIG_FILES, *TOKENIZER_FILES, *SAFETENSORS_WEIGHTS]}
    snapshot = cache / f"models--{NAME.replace('/', '--')}" / "snapshots" / COMMIT
    got = sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file())
    assert got == ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    out = capsys.readouterr().out
    assert f"downloaded {NAME} into {snapshot}" in out
    assert "  export HF_HUB_OFFLINE=1\n" in out and f"  export HF_HOME={tmp_path / 'shared' / 'hf'}\n" in out


def test_a_repository_without_safetensors_gets_its_pytorch_weights(hub, tiny_encoder, tmp_path, capsys):
    hub.repositories[NAME] = fake_repository(tiny_encoder, tmp_path / "repo", safetensors=False)
    assert main(["download", NAME, "--cache_dir", str(tmp_path / "cache")]) == 0
    assert [call["allow_patterns"] for call in hub.calls] == [
        [*CONFIG_FILES, *TOKENIZER_FILES, *SAFETENSORS_WEIGHTS], BIN_WEIGHTS]
    assert all(call["repo_id"] == NAME and call["cache_dir"] == str(tmp_path / "cache") for call in hub.calls)
    out = capsys.readouterr().out
    assert "pytorch_model.bin" in out and "training_args.bin" not in out
    assert f"  export HF_HUB_CACHE={tmp_path / 'cache'}\n" in out  # not named hub: the cache folder itself


def test_the_default_cache_is_huggingface_hubs(hub, tiny_encoder, tmp_path, monkeypatch, capsys):
    hub.repositories[NAME] = fake_repository(tiny_encoder, tmp_path / "repo")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "home" / "hub"))
    assert main(["download", NAME]) == 0
    assert hub.calls[0]["cache_dir"] is None  # huggingface_hub's own default: HF_HUB_CACHE, else HF_HOME/hub
    assert f"  export HF_HOME={tmp_path / 'home'}\n" in capsys.readouterr().out


def test_the_download_loads_offline_by_hub_id(hub, tiny_encoder, tmp_path, monkeypatch):
    hub.repositories[NAME] = fake_repository(tiny_encoder, tmp_path / "repo")
    assert main(["download", NAME, "--cache_dir", str(tmp_path / "hf" / "hub")]) == 0
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))  # export HF_HOME=.../hf
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert load_encoder(NAME).config.hidden_size == 32
    assert load_tokenizer(NAME).is_fast


@pytest.mark.parametrize(("error", "words"), [
    (OSError("401 Client Error.\n\nRepository Not Found for url: https://huggingface.co/api/models/x"),
     "(OSError: 401 Client Error.)"),
    (huggingface_hub.errors.HFValidationError("Repo id must be in the form 'repo_name'"), "HFValidationError"),
])
def test_a_hub_error_is_one_line(monkeypatch, capsys, error, words):
    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(huggingface_hub, "snapshot_download", failing)
    assert main(["download", NAME]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"medtext: error: cannot download {NAME!r}") and words in err


def test_a_repository_with_remote_code_is_refused_at_download(hub, tiny_encoder, tmp_path, capsys):
    repo = hub.repositories[NAME] = fake_repository(tiny_encoder, tmp_path / "repo")
    config = json.loads((repo / "config.json").read_text())
    (repo / "config.json").write_text(json.dumps({**config, "model_type": "custom-bert",
                                                  "auto_map": {"AutoConfig": "modeling.Config"}}))
    assert main(["download", NAME, "--cache_dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "medtext never runs (trust_remote_code=False)" in err


@pytest.mark.parametrize("load", [load_encoder_config, load_tokenizer, load_encoder])
def test_offline_with_an_empty_cache_is_one_line_naming_the_download(load, tmp_path, monkeypatch):
    """A compute node: HF_HUB_OFFLINE=1 and the encoder not in the cache. One line, at once (no retries)."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    name = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
    start = time.monotonic()
    with pytest.raises(EncoderLoadError) as err:
        load(name)
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert "\n" not in message and f"python -m medtext download {name}` on a machine with internet" in message
    assert str(tmp_path / "empty" / "hub") in message and "HF_HUB_OFFLINE=1" in message


def test_fit_offline_with_an_empty_cache_is_one_line(tmp_path, monkeypatch, capsys):
    from cli_helpers import tiny_config

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    config = tiny_config(tmp_path / "fit.yaml", "medtext-tests/not-downloaded", {"num_train": 8, "num_val": 4},
                         "data_modules.SyntheticAbstractsDataModule")
    start = time.monotonic()
    assert main(["fit", "--config", str(config)]) == 2
    assert time.monotonic() - start < 60
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("medtext: error: cannot load the ")
    assert "run `python -m medtext download medtext-tests/not-downloaded` on a machine with internet" in err
