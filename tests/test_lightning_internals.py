"""Lightning internals and unwritten behaviours that medtext relies on, where no public API exists.

Each test is small and independent and names, in its failure message, the medtext file that relies
on the internal, so that an upgrade of Lightning that changes it fails here with a clear message
rather than somewhere downstream (e.g. as a resumed fit that silently repeats batches).
Add one test function per internal; keep each under a few seconds (tiny models, no tokenizer).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from data_modules import SyntheticAbstractsDataModule
from data_modules.dataset import EncodedAbstracts
from data_modules.loaders import AbstractsLoaders
from data_modules.token_cache import TokenizedTexts

NUM_ABSTRACTS, BATCH_SIZE = 10, 3  # 4 training batches per epoch, the last one short


class TinyAbstracts(AbstractsLoaders):
    """medtext's loaders over 10 made-up abstracts of token ids (no files, no tokenizer)."""

    def __init__(self):
        super().__init__()
        lengths = np.random.default_rng(0).integers(2, 9, NUM_ABSTRACTS)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        tokens = TokenizedTexts(ids=np.arange(1, offsets[-1] + 1, dtype=np.int32) % 50 + 1, offsets=offsets,
                                num_truncated=0)
        labels = np.arange(NUM_ABSTRACTS) % 2
        self.datasets = {split: EncodedAbstracts(tokens, labels) for split in ("train", "val")}
        self.tokenizer = SimpleNamespace(pad_token_id=0)
        self.batch_size = self.eval_batch_size = BATCH_SIZE
        self.bucket_by_length, self.pad_to_multiple_of, self.num_workers = False, None, 0


class TinyClassifier(pl.LightningModule):
    """Records ``(epoch, row indices)`` of every training batch it runs."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.EmbeddingBag(64, 2)
        self.seen: list[tuple[int, list[int]]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append((self.current_epoch, batch["index"].tolist()))
        return torch.nn.functional.cross_entropy(self.embed(batch["input_ids"]), batch["labels"])

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def tiny_fit(tmp_path, callbacks=(), ckpt_path=None) -> TinyClassifier:
    pl.seed_everything(0, verbose=False)  # the training order's seed
    model = TinyClassifier()
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         default_root_dir=tmp_path, callbacks=list(callbacks))
    trainer.fit(model, datamodule=TinyAbstracts(), ckpt_path=ckpt_path)
    return model


def batches_done(trainer: pl.Trainer) -> int:
    """What data_modules/loaders.py (``AbstractsLoaders._batches_done``) reads."""
    try:
        return trainer.fit_loop.epoch_loop.batch_progress.current.processed
    except AttributeError as err:
        pytest.fail(f"data_modules/loaders.py (AbstractsLoaders._batches_done) reads "
                    f"trainer.fit_loop.epoch_loop.batch_progress.current.processed; this Lightning "
                    f"({pl.__version__}) has no such attribute ({err}): find its new counter of the "
                    f"training batches finished in the current epoch")


def test_batch_progress_counts_the_batches_finished_in_the_epoch(tmp_path):
    """At ``on_train_batch_end`` (when checkpoints are taken) the counter is the batch's 1-based
    position in its epoch, and Lightning has called the sampler's ``set_epoch``."""
    states = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            states.append((trainer.current_epoch, batch_idx, batches_done(trainer), trainer.datamodule.state_dict()))

    tiny_fit(tmp_path, [Record()])
    per_epoch = -(-NUM_ABSTRACTS // BATCH_SIZE)
    expected = [(epoch, i, i + 1, {"train_epoch": epoch, "train_batches_done": i + 1})
                for epoch in range(2) for i in range(per_epoch)]
    assert states == expected, (
        "data_modules/loaders.py saves (sampler epoch, trainer.fit_loop.epoch_loop.batch_progress.current"
        f".processed) in checkpoints as (epoch, batches done); with Lightning {pl.__version__} they are "
        f"(epoch, batch_idx, processed, data module state) = {states}, expected {expected}")


def test_mid_epoch_resume_continues_with_exactly_the_remaining_batches(tmp_path):
    """A fit resumed from a checkpoint taken after batch 2 of epoch 0 must run the batches the
    uninterrupted fit ran after it: Lightning restores the data module's state before it builds the
    train loader, and ends the resumed epoch after the batches the restored counter has not done."""
    checkpoint = tmp_path / "mid_epoch.ckpt"

    class SaveMidEpoch(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.current_epoch == 0 and batch_idx == 1:
                trainer.save_checkpoint(checkpoint)

    full = tiny_fit(tmp_path / "full", [SaveMidEpoch()]).seen
    resumed = tiny_fit(tmp_path / "resumed", ckpt_path=str(checkpoint)).seen
    assert resumed == full[2:], (
        "data_modules/loaders.py (state_dict / load_state_dict / train_dataloader) relies on Lightning "
        "restoring the data module before building the train loader and ending a resumed epoch after the "
        f"batches not done; with Lightning {pl.__version__} the resumed fit ran {resumed}, expected {full[2:]}")


def test_parent_save_hyperparameters_records_a_recipe_s_own_arguments(tmp_path):
    """Only ``AbstractsDataModule.__init__`` calls ``save_hyperparameters()``; Lightning collects the
    init arguments of every ``__init__`` frame up the stack, so a recipe's own arguments (and defaults
    that differ from the parent's) are in ``hparams`` (and in checkpoints) too."""
    hparams = dict(SyntheticAbstractsDataModule(num_train=7, batch_size=3, cache_dir=str(tmp_path)).hparams)
    wanted = {"num_train": 7, "num_val": 100, "seed": 0, "max_length": 128, "batch_size": 3, "label_map": None}
    got = {key: hparams.get(key, "<missing>") for key in wanted}
    assert got == wanted, (
        "data_modules/abstracts.py relies on save_hyperparameters() in the parent's __init__ recording the "
        f"recipe's (subclass's) arguments too; with Lightning {pl.__version__} hparams hold {got}")


# ------------------------------------------------------------------ medtext/ and its CLI

def test_lightning_cli_still_has_the_checkpoint_hyperparameter_hook_medtext_turns_off():
    import inspect

    from pytorch_lightning.cli import LightningCLI

    assert "self._parse_ckpt_path()" in inspect.getsource(LightningCLI.__init__), (
        f"Lightning {pl.__version__}: LightningCLI no longer calls _parse_ckpt_path; medtext/commands/cli.py overrides it "
        "(the checkpoint's settings are parser defaults from medtext/runtime/checkpoint.py): find its successor and "
        "override that, or the checkpoint is loaded twice and its hyperparameters override the user's options")


def test_cli_instantiated_classes_record_their_class_path_in_hparams(tiny_encoder, tmp_path):
    from cli_helpers import tiny_config
    from medtext.commands.cli import build_cli

    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {"num_train": 8, "num_val": 4, "num_test": 4},
                         "data_modules.SyntheticAbstractsDataModule")

    cli = build_cli(["--config", str(config), "--data.init_args.data_dir", str(tmp_path / "data")], run=False)
    found = {"model": cli.model.hparams.get("_class_path"), "data": cli.datamodule.hparams.get("_class_path")}
    assert found == {"model": "medtext.TextClassifier", "data": "data_modules.SyntheticAbstractsDataModule"}, (
        f"Lightning {pl.__version__}: LightningCLI no longer saves '_class_path' in hparams ({found}); "
        "medtext/runtime/checkpoint.py (class_config) rebuilds the model and data of validate/test/predict from it")


def test_ddp_strategies_that_find_unused_parameters_are_registered_and_readable():
    from pytorch_lightning.strategies import DDPStrategy, StrategyRegistry

    from medtext.model.unused_parameters import FINDING_UNUSED

    assert set(FINDING_UNUSED.values()) <= set(StrategyRegistry.available_strategies()), (
        f"Lightning {pl.__version__}: medtext/model/unused_parameters.py chooses a DDP strategy that is not registered")
    strategy = DDPStrategy(find_unused_parameters=True)
    assert getattr(strategy, "_ddp_kwargs", None) == {"find_unused_parameters": True}, (
        f"Lightning {pl.__version__}: DDPStrategy._ddp_kwargs changed; medtext/model/unused_parameters.py reads "
        "find_unused_parameters there to stop a freeze_encoder_epochs run whose strategy does not search")


def test_csv_logger_writes_the_header_from_metrics_keys(tmp_path):
    from pytorch_lightning.loggers import CSVLogger

    writer = CSVLogger(tmp_path).experiment
    writer.metrics_keys = ["kept/earlier", "step"]
    writer.log_metrics({"new/metric": 1.0}, step=0)
    writer.save()
    header = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text().splitlines()[0]
    assert header.split(",")[0] == "kept/earlier" and "new/metric" in header, (
        f"Lightning {pl.__version__}: the CSV logger's writer no longer takes its header from metrics_keys "
        f"({header!r}); medtext/runtime/resume.py (keep_csv_rows) relies on it to keep a resumed run's rows")


def test_save_config_callback_lets_a_subclass_save_elsewhere_by_its_public_attributes():
    import inspect

    from pytorch_lightning.cli import SaveConfigCallback

    source = inspect.getsource(SaveConfigCallback.setup)
    assert "if self.save_to_log_dir:" in source and "self.save_config(trainer, pl_module, stage)" in source, (
        f"Lightning {pl.__version__}: SaveConfigCallback.setup changed; medtext/runtime/config_logging.py turns off "
        "save_to_log_dir in setup and writes the W&B run's config.yaml in save_config")


def test_loggers_are_given_hyperparameters_through_the_instance_method():
    import inspect

    from pytorch_lightning.loggers import utilities

    assert "logger.log_hyperparams(" in inspect.getsource(utilities._log_hyperparams), (
        f"Lightning {pl.__version__}: hyperparameters no longer reach loggers through logger.log_hyperparams; "
        "medtext/runtime/config_logging.py overrides that method in ScrubbedWandbLogger to scrub secrets "
        "(tests/test_wandb.py checks that no secret reaches a W&B file)")


def test_weight_averaging_swaps_and_copies_through_the_methods_ema_weights_overrides():
    import inspect

    from pytorch_lightning.callbacks import WeightAveraging

    sources = {hook: inspect.getsource(getattr(WeightAveraging, hook))
               for hook in ("on_validation_epoch_start", "on_validation_epoch_end", "on_train_end")}
    uses = {hook: ("self._copy_average_to_current(pl_module)" if hook == "on_train_end" else
                   "self._swap_models(pl_module)") in source for hook, source in sources.items()}
    assert all(uses.values()), (
        f"Lightning {pl.__version__}: WeightAveraging no longer swaps/copies weights through _swap_models and "
        f"_copy_average_to_current ({uses}); callbacks/weight_averaging.py (EMAWeights) overrides both so that "
        "buffers (tuned thresholds) stay the model's own")


def test_lightning_cli_builds_its_subcommand_parsers_from_the_instance_subcommands_method(monkeypatch, capsys):
    from pytorch_lightning.cli import LightningCLI

    from medtext.commands.cli import build_cli

    built, original = [], LightningCLI._prepare_subcommand_parser
    def recording(self, klass, subcommand, **kwargs):
        built.append(subcommand)
        return original(self, klass, subcommand, **kwargs)
    monkeypatch.setattr(LightningCLI, "_prepare_subcommand_parser", recording)
    with pytest.raises(SystemExit):
        build_cli(["predict", "--print_config"])
    assert built == ["predict"], ("medtext/commands/cli.py MedtextCLI.subcommands: Lightning no longer builds its subcommand "
                                  f"parsers from self.subcommands() (it built {built}, not only the one asked for)")
    assert "predictions:" in capsys.readouterr().out


def test_missing_monitors_are_checked_in_the_methods_the_selection_callbacks_override():
    import inspect

    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    early, best = (inspect.getsource(method) for method in (EarlyStopping._run_early_stopping_check,
                                                            ModelCheckpoint._save_topk_checkpoint))
    assert "self._validate_condition_metric(" in early and "val_loop._has_run" in best, (
        f"Lightning {pl.__version__}: EarlyStopping no longer validates its metric in _validate_condition_metric, "
        "or ModelCheckpoint's missing-monitor error no longer waits for a validation (val_loop._has_run); "
        "callbacks/checkpoints.py overrides both to turn a monitor the run does not log into one line")
