"""``python -m medtext {fit,validate,test,predict} --config FILE [--key=value ...]``: Lightning's
commands, the model and the data module chosen by ``class_path``.

    python -m medtext fit --config configs/medical_abstracts/minilm_mlp.yaml --data.data_dir DIR
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.plugins.environments import ClusterEnvironment, SLURMEnvironment
from pytorch_lightning.utilities import rank_zero_info

import callbacks
import data_modules
from callbacks import ClassificationReport, MetricTables, PredictionWriter, RNGStateCheckpoint, SlurmRequeue
from data_modules import AbstractsDataModule

from medtext.commands.command_parser import LightningCommandParser
from medtext.commands.fit_steps import FitSteps
from medtext.commands.short_help import HelpSections
from medtext.runtime.checkpoint import (EVALUATION_COMMANDS, CheckpointSettings, checkpoint_defaults,
                         read_checkpoint)
from medtext.runtime.launch_checks import settle_precision, slurm_launch_problem, with_streaming_checkpoints
from medtext.core.lazy_exports import import_exports
from medtext.core.third_party_noise import quiet_evaluation, quiet_predict
from medtext.runtime.class_paths import trust_command_line
from medtext.model.classifier import TextClassifier
from medtext.runtime.config_logging import WandbSaveConfigCallback, start_wandb_run, use_scrubbed_wandb_loggers
from medtext.runtime.evaluation_folder import use_evaluation_folder
from medtext.runtime.ensemble import add_ensemble_argument, attach_ensemble, check_members
from medtext.core.errors import DataError
from medtext.runtime.resume import resolve_last
from medtext.runtime.slurm import prepare_slurm_fit
from medtext.model.unused_parameters import find_unused_parameters_while_frozen
from medtext.runtime.saved_data_settings import hint_for, prefer_given_labels_file, saved_settings_in_effect
from medtext.runtime.wandb_runs import WandbRunId, resume_wandb_run

DEFAULT_ROOT_DIR = "runs"  # where run folders go unless --trainer.default_root_dir says otherwise
import_exports(callbacks, data_modules)  # short class names (``--data HoCDataModule``) resolve among imported classes


class StrictOptionsCLI(LightningCLI):
    """Lightning's CLI whose main parser and subcommand parsers refuse abbreviated options
    (``--trainer.max_epoch 1`` is an error, never ``--trainer.max_epochs 1``) and report an argument
    error in one line (``fit`` and ``pretrain``)."""

    def init_parser(self, **kwargs) -> LightningArgumentParser:
        if self.parser_class is LightningArgumentParser:  # one-line argument errors, "did you mean"
            self.parser_class = LightningCommandParser
        return super().init_parser(**{"allow_abbrev": False, **kwargs})


class MedtextCLI(FitSteps, StrictOptionsCLI):
    checkpoint: Optional[CheckpointSettings] = None  # --ckpt_path FILE: its classes are the truth
    ensemble_orders: list = []  # --ensemble FILE ...: each member's class columns in the checkpoint's order
    saved_data: Optional[tuple[str, dict]] = None  # (checkpoint, its data settings this command still uses)

    def __init__(self, *args, **kwargs) -> None:
        command_line = kwargs.get("args")
        command_line = sys.argv[1:] if command_line is None else command_line
        self.requested = command_line[0] if isinstance(command_line, list) and command_line else None
        super().__init__(*args, **kwargs)

    def subcommands(self) -> dict[str, set[str]]:
        """Lightning's subcommands, reduced to the one the command line starts with: Lightning builds
        a parser per subcommand at every start (half of a short command's parsing), used or not."""
        every = LightningCLI.subcommands()
        return {self.requested: every[self.requested]} if self.requested in every else every

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # the encoder name flows from the model to the data module's tokenizer, the classes back to the model
        parser.link_arguments("model.init_args.encoder_name", "data.init_args.tokenizer_name")
        for name in ("label_names", "multi_label", "label_descriptions"):
            parser.link_arguments("data", f"model.init_args.{name}", apply_on="instantiate",
                                  compute_fn=functools.partial(self._model_labels, name))
        parser.add_lightning_class_args(PredictionWriter, "predictions")
        add_ensemble_argument(parser)  # validate/test/predict --ensemble B.ckpt ...: medtext/runtime/ensemble.py
        parser.add_argument("--test_after_fit", type=bool, default=False,
                            help="after fit, test the best checkpoint on data.test_file")
        parser.add_argument("--keep_last", type=bool, default=True,
                            help="false: once the fit completes, remove its last.ckpt (the full state, to resume); "
                                 "the best checkpoint stays")
        parser.add_help_actions(HelpSections(AbstractsDataModule, TextClassifier))  # --help fits a screen

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        """Lightning's, with ``validate``/``test``/``predict --ckpt_path FILE`` taking the checkpoint's
        model and data as defaults (a config or command-line option overrides them)."""
        command_line = list(sys.argv[1:] if args is None else args) if args is None or isinstance(args, list) else []
        trust_command_line(command_line)  # the class paths it names may be imported from a checkpoint
        parser.set_defaults(checkpoint_defaults(command_line) if command_line else {})
        super().parse_arguments(parser, args)

    def _model_labels(self, name: str, datamodule) -> object:
        """The model's ``label_names``, ``multi_label`` or ``label_descriptions``: the data module's
        for a new model; with ``--ckpt_path FILE``, the checkpoint's, and the data's labels are mapped
        onto its classes by name (a data-side label set naming other classes stops with one line)."""
        if self.checkpoint is None:
            return getattr(datamodule, name)
        if hasattr(datamodule, "align_labels"):
            datamodule.align_labels(self.checkpoint.label_map)
        reads_labels = self.subcommand != "predict"
        if name == "multi_label" and reads_labels and datamodule.multi_label != self.checkpoint.multi_label:
            kinds = {True: "multi-label", False: "single-label"}
            raise DataError(f"the checkpoint is {kinds[self.checkpoint.multi_label]} but the data module reads "
                            f"{kinds[datamodule.multi_label]} labels")
        if name == "label_descriptions" and self.checkpoint.label_descriptions is None:
            return getattr(datamodule, name)
        return getattr(self.checkpoint, name)

    def _set_seed(self) -> None:
        """Lightning's, keeping the seed as given (``True``: random) for telling runs apart."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        self.seed_option = config.get("seed_everything")
        super()._set_seed()

    def _parse_ckpt_path(self) -> None:
        """Nothing: the checkpoint's model settings are already the parser's defaults
        (:func:`medtext.runtime.checkpoint.checkpoint_defaults`). Lightning's hook would load the whole
        checkpoint into RAM to read them and then apply them over what the user stated."""

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        use_scrubbed_wandb_loggers(config.trainer)  # W&B gets the hyperparameters without secrets
        problem = slurm_launch_problem(os.environ, config.trainer.get("devices"), config.trainer.get("num_nodes"))
        if problem:
            rank_zero_info(f"medtext: warning: {problem}")
        settle_precision(config.trainer)
        if self.subcommand == "predict":  # it logs nothing: no logger folder, no W&B run
            config.trainer.logger = False
            quiet_predict()
        if self.subcommand == "fit":
            if (config.model.get("init_args") or {}).get("freeze_encoder_epochs"):
                find_unused_parameters_while_frozen(config.trainer)  # before the run's identity is taken from it
            # which run is this one's is decided by the seed as given: `true` (a random seed) is the
            # same fit on every rank and after a requeue, whatever number each process drew
            chosen, config.seed_everything = config.seed_everything, self.seed_option
            try:
                prepare_slurm_fit(config)  # under SLURM: the job's own folders; a requeued job resumes
                resolve_last(config)  # --ckpt_path last: this config's run's last.ckpt
            finally:
                config.seed_everything = chosen
            resume_wandb_run(config)  # --ckpt_path continues the checkpoint's W&B run
        ckpt_path = config.get("ckpt_path")
        if isinstance(ckpt_path, (str, Path)) and Path(ckpt_path).is_file():
            self.checkpoint = read_checkpoint(ckpt_path)  # its classes: the truth, also when resuming
            if self.subcommand in EVALUATION_COMMANDS:  # a given labels_file beats the saved label_map
                prefer_given_labels_file(config.data, self.checkpoint.data)
                self.saved_data = (str(ckpt_path), saved_settings_in_effect(config.data, self.checkpoint.data))
            if self.subcommand in ("validate", "test"):  # the report goes to the checkpoint's run
                use_evaluation_folder(config, self.subcommand, Path(ckpt_path), DEFAULT_ROOT_DIR)
                quiet_evaluation()
        if config.get("ensemble") and self.subcommand not in EVALUATION_COMMANDS:
            raise DataError(f"--ensemble is for {', '.join(EVALUATION_COMMANDS)}, not {self.subcommand}")
        self.ensemble_orders = check_members(config.get("ensemble") or [], self.checkpoint)

    def _run_subcommand(self, subcommand: str) -> None:
        """Lightning's, with a data error that a checkpoint's saved data setting caused saying which
        setting and how to override it (``medtext/runtime/saved_data_settings.py``)."""
        try:
            super()._run_subcommand(subcommand)
        except DataError as err:
            hint = hint_for(str(err), self.saved_data[1], self.saved_data[0]) if self.saved_data else None
            if hint is None:
                raise
            raise DataError(f"{err}; {hint}") from None

    def instantiate_trainer(self, **kwargs):
        """Checkpoints stream to disk (no in-memory copy) unless the config brings its own CheckpointIO.
        Under SLURM, :class:`callbacks.SlurmRequeue` requeues, not Lightning's signal handler. Under
        torchrun (also inside a SLURM allocation) Lightning's own choice stands: torchrun's ranks."""
        from pytorch_lightning.plugins.environments import TorchElasticEnvironment

        plugins = with_streaming_checkpoints(
            self.config_init.get(f"{self.subcommand}.trainer.plugins" if self.subcommand else "trainer.plugins"))
        # Lightning's order (accelerator connector): TorchElastic before SLURM. A SLURMEnvironment here
        # would take SLURM's task count for the world size and refuse torchrun's devices=N in a one-task job.
        if (not TorchElasticEnvironment.detect() and SLURMEnvironment.detect()
                and not any(isinstance(p, ClusterEnvironment) for p in plugins)):
            plugins.append(SLURMEnvironment(auto_requeue=False))
        return super().instantiate_trainer(plugins=plugins, **kwargs)

    def _before_evaluation(self) -> None:
        start_wandb_run(self.trainer)  # the W&B run records the command line without secrets
        attach_ensemble(self.model, self.config[self.subcommand].get("ensemble") or [], self.ensemble_orders)

    before_validate = before_test = _before_evaluation

    def before_predict(self) -> None:
        config = self.config[self.subcommand]
        attach_ensemble(self.model, config.get("ensemble") or [], self.ensemble_orders)
        models = [config.get("ckpt_path"), *(config.get("ensemble") or [])]
        for writer in (c for c in self.trainer.callbacks if isinstance(c, PredictionWriter)):
            writer.model_files = [str(path) for path in models if path]  # the run's identity, for resuming

    def predict(self, model, **kwargs) -> None:
        """``trainer.predict`` streaming (``data_modules/streamed_predict.py``, ``callbacks/prediction_writer.py``):
        nothing is kept in memory for a return value."""
        self.trainer.predict(model, **{**kwargs, "return_predictions": False})

    def setup_parser(self, add_subcommands: bool, main_kwargs: dict, subparser_kwargs: dict) -> None:
        """Lightning's, with ``--verbose false`` as the default of ``validate`` and ``test``: the
        summary is ClassificationReport's table; ``--verbose true`` adds Lightning's metric table."""
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        if add_subcommands:
            self.parser.set_defaults({f"{name}.verbose": False for name in ("validate", "test") if name in self.subcommands()})


@contextlib.contextmanager
def own_arguments():
    """Around a LightningCLI built with ``args``: Lightning warns whenever both they and ``sys.argv[1:]`` are
    given, also when they are the same (``python -m medtext fit ...`` passes its arguments on)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        yield


def build_cli(args: Optional[list[str]] = None, run: bool = True) -> MedtextCLI:
    with own_arguments():
        return MedtextCLI(TextClassifier, AbstractsDataModule, subclass_mode_model=True, subclass_mode_data=True,
                          auto_configure_optimizers=False, save_config_callback=WandbSaveConfigCallback,
                          save_config_kwargs={"overwrite": True}, parser_kwargs={"prog": "medtext"},
                          trainer_defaults={"callbacks": [callbacks.StopOnDivergence(), ClassificationReport(), MetricTables(),
                                                          WandbRunId(), RNGStateCheckpoint(), SlurmRequeue()],
                                            "default_root_dir": DEFAULT_ROOT_DIR}, args=args, run=run)
