"""``python -m medtext download ENCODER [--cache_dir DIR]``: fetch an encoder once, for offline nodes.

    python -m medtext download sentence-transformers/all-MiniLM-L6-v2 --cache_dir /shared/hf/hub
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from medtext.core.errors import MedtextError

CONFIG_FILES = ["config.json"]
# the files transformers' tokenizers read: fast (tokenizer.json), WordPiece, BPE and SentencePiece ones
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model"]
SAFETENSORS_WEIGHTS = ["model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors"]
# only for repositories without safetensors: transformers prefers those, so both would be twice the disk
BIN_WEIGHTS = ["pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*-of-*.bin"]


def fetch(encoder: str, cache_dir: Optional[str], allow_patterns: list[str]) -> Path:
    """``huggingface_hub.snapshot_download`` of the files matching ``allow_patterns``; a hub error is one line."""
    import huggingface_hub
    from huggingface_hub import constants

    try:
        return Path(huggingface_hub.snapshot_download(repo_id=encoder, cache_dir=cache_dir,
                                                      allow_patterns=allow_patterns))
    except (OSError, ValueError) as err:  # every hub error is one (RepositoryNotFoundError, HFValidationError, ...)
        reason = next((line.strip() for line in str(err).splitlines() if line.strip()), "")[:300]
        offline = "; the hub is switched off here: run it with HF_HUB_OFFLINE=0" if constants.HF_HUB_OFFLINE else ""
        raise MedtextError(f"cannot download {encoder!r} from the Hugging Face hub ({type(err).__name__}: "
                           f"{reason}){offline}") from err


def has_weights(folder: Path, patterns: list[str]) -> bool:
    return any(next(folder.glob(pattern), None) is not None for pattern in patterns)


def environment_lines(cache: Path) -> list[str]:
    """The variables that make huggingface_hub (and transformers) use ``cache``: ``HF_HOME`` names the
    folder that holds ``hub``; a cache folder of another name is ``HF_HUB_CACHE`` itself."""
    home = f"export HF_HOME={cache.parent}" if cache.name == "hub" else f"export HF_HUB_CACHE={cache}"
    return ["export HF_HUB_OFFLINE=1", home]


def download(encoder: str, cache_dir: Optional[str] = None) -> Path:
    """Fetch an encoder and its tokenizer into the Hugging Face cache and print how to use it offline.

    Compute nodes of a cluster often have no internet, and every rank that resolves a hub id there waits
    for the network to fail. Run where there is internet (a login node), this puts the encoder's config,
    tokenizer files and weights into the cache and prints the lines that make the nodes load it from
    there. Nothing else of the repository is fetched (no ONNX, TensorFlow or Flax copies), and no code
    of the model's own is ever run.

    Args:
        encoder: a Hugging Face hub id, as --model.encoder_name takes it.
        cache_dir: the hub cache folder (default: $HF_HUB_CACHE, else $HF_HOME/hub, else
            ~/.cache/huggingface/hub); put it where the compute nodes read it (a shared file system).
    """
    from medtext.core.encoders import load_encoder_config, load_tokenizer

    if Path(encoder).expanduser().is_dir():
        raise MedtextError(f"{encoder!r} is a local folder: pass it as --model.encoder_name, there is nothing to "
                           "download")
    cache_dir = str(Path(cache_dir).expanduser()) if cache_dir else None
    folder = fetch(encoder, cache_dir, [*CONFIG_FILES, *TOKENIZER_FILES, *SAFETENSORS_WEIGHTS])
    if not has_weights(folder, SAFETENSORS_WEIGHTS):  # an older repository: PyTorch pickles only
        folder = fetch(encoder, cache_dir, BIN_WEIGHTS)
    if not (folder / "config.json").is_file() or not has_weights(folder, [*SAFETENSORS_WEIGHTS, *BIN_WEIGHTS]):
        raise MedtextError(f"{encoder!r} on the Hugging Face hub has no config.json with model.safetensors or "
                           "pytorch_model.bin weights: not an encoder transformers loads")
    load_encoder_config(str(folder))  # remote code, a broken file: one line now, not on every rank later
    load_tokenizer(str(folder))
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    size = sum(path.stat().st_size for path in files) / 1e6
    print(f"downloaded {encoder} into {folder} ({', '.join(p.name for p in files)}: {size:.1f} MB)")
    print("on machines without internet (scripts/slurm/fit.sbatch and scripts/torchrun_fit.sh set "
          "HF_HUB_OFFLINE=1 and pass HF_HOME on), set:")
    for line in environment_lines(folder.parents[2]):  # <cache>/models--org--name/snapshots/<commit>
        print(f"  {line}")
    return folder


def main(args: Optional[list[str]] = None) -> None:
    """``medtext download ENCODER [--cache_dir DIR]``: :func:`download`, its signature the options."""
    from jsonargparse import ActionConfigFile

    from medtext.core.argument_errors import CommandParser

    parser = CommandParser(prog="medtext download", description=download.__doc__.split("\n\n")[0])
    parser.add_argument("--config", action=ActionConfigFile, help="these options from a YAML file")
    parser.add_function_arguments(download, as_positional=True)
    options = parser.parse_args(args)
    download(options.encoder, options.cache_dir)
