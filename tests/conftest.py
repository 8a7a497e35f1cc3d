import os
from pathlib import Path

# before anything imports transformers / huggingface_hub, which read these once
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from tiny_encoder import build_tiny_encoder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> str:
    """Folder of a tiny random BERT (hidden 32) with its fast tokenizer."""
    return str(build_tiny_encoder(tmp_path_factory.mktemp("tiny_bert")))


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own token cache and runs in its own folder."""
    monkeypatch.setenv("MEDTEXT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.fixture(scope="session")
def tokenizer(tiny_encoder):
    """The tiny encoder's fast tokenizer."""
    from medtext.core.encoders import load_tokenizer

    return load_tokenizer(tiny_encoder)


@pytest.fixture(scope="session")
def vocabulary(tokenizer) -> list[str]:
    """Distinct whole words, each one token of the tiny tokenizer (texts of known token counts)."""
    words = sorted(w for w in tokenizer.get_vocab() if w.isalpha() and len(w) > 1 and not w.startswith("["))
    single = [w for w in words if len(tokenizer(w, add_special_tokens=False)["input_ids"]) == 1]
    assert len(single) >= 60
    return single


@pytest.fixture(params=[0o022, 0o027], ids=lambda m: f"umask{m:03o}")
def umask(request):
    """The process umask set to each value for the test, then restored."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)
