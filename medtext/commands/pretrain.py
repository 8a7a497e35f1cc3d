"""``python -m medtext pretrain --config FILE``: task-adaptive masked-language-model pretraining.

    python -m medtext pretrain --config configs/pretrain/minilm_medical_abstracts.yaml
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser
from pytorch_lightning.utilities import rank_zero_info

from data_modules.unlabeled import UnlabeledTextDataModule

from medtext.core.checkpoint_reading import load_checkpoint_file
from medtext.commands.cli import StrictOptionsCLI, own_arguments
from medtext.commands.short_help import HelpSections
from medtext.core.encoders import (attention_dropout_overrides, encoder_load_error, load_tokenizer, no_bar_for_local_weights,
                       resolve_encoder_path)
from medtext.core.errors import MedtextError
from medtext.runtime.launch_checks import settle_precision, with_streaming_checkpoints
from medtext.model.optim import adamw_with_linear_warmup, parameter_groups
from medtext.deploy.output_folders import check_output_folder, output_folder

DESCRIPTION = ("continue an encoder's masked-language-model training on unlabeled abstracts (Lightning's fit), "
               "then write a Hugging Face folder for fit's --model.init_args.encoder_name")
IGNORE = -100  # DataCollatorForLanguageModeling's label of unmasked tokens


def load_masked_lm(name: str, attention_dropout: float | None = None):
    """``AutoModelForMaskedLM`` of ``name`` (never remote code). An encoder saved without an MLM head
    gets a fresh one, its decoder tied to the word embeddings (checked) and the rest newly initialised."""
    from transformers import AutoModelForMaskedLM

    overrides = attention_dropout_overrides(name, attention_dropout)
    path = resolve_encoder_path(name)  # a split encoder missing a part: its own one-line error
    try:
        with no_bar_for_local_weights(path):
            model, info = AutoModelForMaskedLM.from_pretrained(path, trust_remote_code=False, output_loading_info=True,
                                                               **overrides)
    except (OSError, ValueError) as err:
        if Path(path).is_dir():  # there, but no masked-LM class for its architecture
            raise MedtextError(f"{name}: cannot load as a masked-language model: {' '.join(str(err).split())}") from err
        raise encoder_load_error(name, "masked-language model", err) from err
    prefix = model.base_model_prefix + "."
    fresh = sorted(k for k in info["missing_keys"] if not k.startswith(prefix))
    if any(k.startswith(prefix) for k in info["missing_keys"]):
        raise MedtextError(f"{name!r}: encoder weights are missing from its checkpoint: "
                           f"{sorted(k for k in info['missing_keys'] if k.startswith(prefix))[:5]}")
    if getattr(model.config, "tie_word_embeddings", False):
        model.tie_weights()
        if model.get_output_embeddings().weight.data_ptr() != model.get_input_embeddings().weight.data_ptr():
            raise MedtextError(f"{name!r}: the MLM decoder is not tied to the word embeddings after loading")
    parameters = dict(model.named_parameters(remove_duplicate=False))
    if any(not torch.isfinite(parameters[k]).all() for k in fresh if k in parameters):
        raise MedtextError(f"{name!r}: the fresh MLM head was not initialised (non-finite values)")
    if fresh:
        rank_zero_info(f"pretrain: {name} has no MLM head in its weights: a fresh head "
                       f"({len(fresh)} tensors, decoder tied to the word embeddings)")
    return model


def mlm_head(model) -> torch.nn.Module | None:
    """The module mapping hidden states to vocabulary logits (BERT ``cls``, RoBERTa ``lm_head``)."""
    for name in ("cls", "lm_head"):
        if isinstance(getattr(model, name, None), torch.nn.Module):
            return getattr(model, name)
    return None


class MaskedLMPretraining(pl.LightningModule):
    """An encoder's masked-language model trained further with AdamW, linear warm-up then decay.

    Args:
        encoder_name: Hugging Face hub id or local folder (the encoder to continue from).
        lr: peak learning rate.
        weight_decay: AdamW weight decay (not on vectors: biases, norms).
        warmup_ratio: share of the training steps spent warming the learning rate up.
        attention_dropout: replaces the encoder's dropout on attention probabilities (unset: keep);
            0 lets PyTorch's fused attention kernel train on CPU (faster).
    """

    def __init__(self, encoder_name: str, lr: float = 5e-5, weight_decay: float = 0.01, warmup_ratio: float = 0.06,
                 attention_dropout: float | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.model = load_masked_lm(encoder_name, attention_dropout).train()  # from_pretrained: eval mode
        self._val_sums = torch.zeros(2, dtype=torch.float64)  # summed loss, masked tokens

    def masked_loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed cross-entropy over the masked tokens, and their number. The vocabulary projection
        runs on the masked positions only (about 15% of the tokens) when the head allows it."""
        labels = batch["labels"]
        masked = labels != IGNORE
        head = mlm_head(self.model)
        if head is None:
            logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[masked]
        else:
            hidden = self.model.base_model(input_ids=batch["input_ids"],
                                           attention_mask=batch["attention_mask"]).last_hidden_state
            logits = head(hidden[masked])
        loss = F.cross_entropy(logits.float(), labels[masked], reduction="sum")
        return loss, masked.sum()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        total, count = self.masked_loss(batch)
        loss = total / count.clamp(min=1)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["input_ids"]))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_sums = torch.zeros(2, dtype=torch.float64, device=self.device)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        total, count = self.masked_loss(batch)
        self._val_sums += torch.stack([total.detach().double(), count.double()])

    def on_validation_epoch_end(self) -> None:
        """``val/loss``: the mean over every masked token of every rank (not a mean of batch means)."""
        sums = self.trainer.strategy.reduce(self._val_sums, reduce_op="sum")
        loss = (sums[0] / sums[1].clamp(min=1)).float()
        self.log("val/loss", loss, prog_bar=True)
        if not self.trainer.sanity_checking:
            rank_zero_info(f"pretrain: epoch {self.current_epoch} step {self.global_step}: val/loss {loss.item():.4f} "
                           f"({int(sums[1].item())} masked tokens)")

    def configure_optimizers(self) -> dict:
        groups = parameter_groups({"model": (self.model, self.hparams.lr)}, self.hparams.weight_decay)
        return adamw_with_linear_warmup(groups, self.trainer.estimated_stepping_batches, self.hparams.warmup_ratio)


# ---------------------------------------------------------------------------------------- output
HINT = "; choose another folder or pass --overwrite_output_dir true"
Folders = Iterable[tuple[str, Optional[str]]]  # (what, path) that output_dir must not be or hold


def check_output_dir(output_dir: str, overwrite: bool, keep: Folders = ()) -> None:
    """Refuse ``output_dir`` if it is the cwd or holds it or one of ``keep``, or is not empty (with
    ``overwrite``: unless it is an earlier pretrain output; ``medtext/deploy/output_folders.py``)."""
    check_output_folder(output_dir, overwrite, f"output_dir {Path(output_dir)}", HINT, keep)


def write_pretrained(model, tokenizer, output_dir: str, overwrite: bool = False, keep: Folders = ()) -> Path:
    """Save ``model`` and ``tokenizer`` as one Hugging Face folder with its manifest, atomically (a reader
    never sees half a folder; the user's umask), checked as by ``check_output_dir``."""
    with output_folder(output_dir, "medtext pretrain", overwrite, f"output_dir {Path(output_dir)}", HINT, keep) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(output_dir).expanduser().absolute()


def best_weights(trainer: pl.Trainer) -> str | None:
    """The best-by-``val/loss`` checkpoint of the run (its first such ModelCheckpoint), if any."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.monitor == "val/loss" and callback.best_model_path:
            return callback.best_model_path
    return None


# ---------------------------------------------------------------------------------------- CLI
class PretrainCLI(StrictOptionsCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("model.encoder_name", "data.tokenizer_name")
        parser.add_argument("--output_dir", type=str, required=True,
                            help="folder to write the pretrained encoder (MLM head included) and tokenizer into")
        parser.add_argument("--overwrite_output_dir", type=bool, default=False,
                            help="replace an earlier pretrain output in output_dir (only what its "
                                 ".medtext_manifest.json lists; never the current directory or the run's folder)")
        parser.add_argument("--ckpt_path", type=str | None, default=None,
                            help="a checkpoint (e.g. last.ckpt) to resume pretraining from")
        parser.add_help_actions(HelpSections(
            UnlabeledTextDataModule, MaskedLMPretraining, model_options=("encoder_name", "lr", "warmup_ratio"),
            data_options=("task_data", "text_file", "text_column", "mlm_probability", "max_length", "batch_size"),
            data_title="data (every option: --help_all)", model_title="model (every option: --help_all)"))

    def run_folders(self) -> list[tuple[str, Optional[str]]]:
        """What output_dir must not be or hold: the checkpoint resumed from, where checkpoints are written."""
        folders = [("the checkpoint to resume from", self.config.ckpt_path),
                   ("this run's folder (trainer.default_root_dir)", self.config.trainer.get("default_root_dir"))]
        callbacks = self.trainer.checkpoint_callbacks if getattr(self, "trainer", None) is not None else []
        return folders + [("this run's checkpoint folder", c.dirpath) for c in callbacks if getattr(c, "dirpath", None)]

    def before_instantiate_classes(self) -> None:
        check_output_dir(self.config.output_dir, self.config.overwrite_output_dir, self.run_folders())  # before fit
        settle_precision(self.config.trainer)

    def instantiate_trainer(self, **kwargs):
        return super().instantiate_trainer(plugins=with_streaming_checkpoints(self.config_init.get("trainer.plugins")),
                                           **kwargs)

    def pretrain(self) -> Path | None:
        """Fit, then (rank 0) write the best-by-val/loss weights (the MLM loss on the held-out texts, per
        masked token) and the tokenizer to output_dir."""
        self.trainer.fit(self.model, datamodule=self.datamodule, ckpt_path=self.config.ckpt_path)
        if not self.trainer.is_global_zero:
            return None
        if self.trainer.fast_dev_run:
            rank_zero_info("pretrain: fast_dev_run: output_dir not written")
            return None
        best = best_weights(self.trainer)
        if best:
            state = load_checkpoint_file(best)["state_dict"]
            self.model.load_state_dict(state)
            rank_zero_info(f"pretrain: writing the best weights by val/loss ({best})")
        else:
            rank_zero_info("pretrain: no val/loss checkpoint: writing the final weights")
        out = write_pretrained(self.model.model, load_tokenizer(self.model.hparams.encoder_name),
                               self.config.output_dir, self.config.overwrite_output_dir, self.run_folders())
        print(f"wrote {out}\n  use it: python -m medtext fit --config TASK.yaml --model.init_args.encoder_name {out}")
        return out


def default_callbacks() -> list:
    return [ModelCheckpoint(monitor="val/loss", mode="min", save_top_k=1, save_weights_only=True,
                            filename="best-{epoch}-{step}", enable_version_counter=False),
            ModelCheckpoint(filename="last", save_top_k=1, save_last=False, enable_version_counter=False)]


def build_cli(args: list[str] | None = None) -> PretrainCLI:
    return PretrainCLI(MaskedLMPretraining, UnlabeledTextDataModule, run=False, auto_configure_optimizers=False,
                       parser_kwargs={"prog": "medtext pretrain", "description": DESCRIPTION},
                       save_config_kwargs={"overwrite": True},
                       trainer_defaults={"callbacks": default_callbacks(), "default_root_dir": "runs/pretrain"},
                       args=args)


def main(args: list[str] | None = None) -> None:
    """``medtext pretrain [--config FILE] [options]``: MLM pretraining, then the Hugging Face folder.

    Continues an encoder's masked-language-model training on unlabeled abstracts (by default the task's
    own training texts: :class:`data_modules.UnlabeledTextDataModule`) with Lightning's ``fit`` (trainer
    options, DDP, mixed precision, ``seed_everything``, ``--ckpt_path`` to resume), then writes the
    encoder with its MLM head, and the tokenizer, as a folder that ``fit`` takes as
    ``--model.init_args.encoder_name FOLDER``."""
    with own_arguments():
        cli = build_cli(args)
    cli.pretrain()
