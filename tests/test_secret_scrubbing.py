"""The command line that W&B records as the run's ``args`` (``sys.argv``) carries no secret: values of
options named like a secret, ``key=value`` secrets inside a value, words shaped like an API key or
token, and environment secrets, also those shorter than 16 characters inside a longer value."""

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from pytorch_lightning.loggers import WandbLogger

from cli_helpers import tiny_config
from medtext.commands import main
from medtext.runtime.config_logging import REDACTED, environment_secrets, scrub, scrub_argv, start_wandb_run
from test_wandb import SECRET, WANDB_CONFIG, offline_runs, offline_wandb  # noqa: F401 - offline_wandb: a fixture

SHORT = "pw-9f3k2x"  # 9 characters, in an environment variable named like a secret
WANDB_KEY = "0123456789abcdef0123456789abcdef01234567"  # shaped like a W&B API key (40 hex digits)
HF_TOKEN = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"


def secret_argv(config: Path) -> list[str]:
    """``python -m medtext fit ...`` as a user may type it, secrets included (in options that a fit does not
    print: W&B also records the console)."""
    return ["/site-packages/medtext/__main__.py", "fit", "--config", str(config), "--config", WANDB_CONFIG,
            f"--predictions.output_file=https://reader:{SHORT}@example.org/{SECRET}.csv?token=abc123&page=2",
            f"--predictions.keep_columns=[{WANDB_KEY}, {HF_TOKEN}]"]


def test_scrub_argv():
    secrets = environment_secrets({"DB_PASSWORD": SHORT, "WANDB_API_KEY": SECRET, "MY_KEY": "short"})
    assert secrets == {SHORT, SECRET}  # under 8 characters: not a secret
    argv = ["fit", "--trainer.logger.init_args.api_key=abc", "--x.auth_token", "abc", "--config", "f.yaml",
            '--trainer.logger.init_args.settings={"api_key": "abc", "mode": "offline"}', "https://h/x?token=abc&page=2",
            f"--model.init_args.cache_dir=/c/{SHORT}/x", f"--data.x=/c/{SHORT}x/y", f"--data.y={SECRET}.csv",
            WANDB_KEY, f"local-{WANDB_KEY}", f"--z={HF_TOKEN}",
            "--model.init_args.tokenizer_name=bert", "--data.init_args.head_tokens=128",
            "microsoft_biomednlp_pubmedbert_base_uncased_abstract_fulltext"]
    assert scrub_argv(argv, secrets) == [
        "fit", f"--trainer.logger.init_args.api_key={REDACTED}", "--x.auth_token", REDACTED, "--config", "f.yaml",
        f'--trainer.logger.init_args.settings={{"api_key": "{REDACTED}", "mode": "offline"}}',
        f"https://h/x?token={REDACTED}&page=2", f"--model.init_args.cache_dir=/c/{REDACTED}/x",
        f"--data.x=/c/{SHORT}x/y",  # part of a longer word: another value
        f"--data.y={REDACTED}.csv", REDACTED, f"local-{REDACTED}", f"--z={REDACTED}",
        "--model.init_args.tokenizer_name=bert", "--data.init_args.head_tokens=128",
        "microsoft_biomednlp_pubmedbert_base_uncased_abstract_fulltext"]


def test_short_secrets_inside_longer_values_are_scrubbed():
    clean = scrub({"url": f"https://reader:{SHORT}@example.org", "note": f"password={SHORT}x", "id": SHORT,
                   "word": f"{SHORT}suffix"}, {SHORT})
    assert clean == {"url": f"https://reader:{REDACTED}@example.org", "note": f"password={REDACTED}", "id": REDACTED,
                     "word": f"{SHORT}suffix"}


def test_wandb_records_sys_argv_as_the_run_args(monkeypatch):
    """The W&B internal that start_wandb_run relies on (medtext/runtime/config_logging.py): the run's ``args`` are
    ``sys.argv[1:]`` read when the run starts, and no setting replaces them."""
    import wandb

    monkeypatch.setattr(sys, "argv", ["medtext", "fit", "--x=1"])
    assert wandb.Settings()._args == ["fit", "--x=1"]


def test_the_wandb_run_is_created_with_the_scrubbed_argv(monkeypatch, tmp_path):
    """What medtext hands to W&B: ``sys.argv`` while ``wandb.init`` runs; the real one afterwards."""
    import wandb

    seen = []
    monkeypatch.setattr(wandb, "init", lambda **kwargs: seen.append(list(sys.argv)) or SimpleNamespace(id="x"))
    monkeypatch.setenv("DB_PASSWORD", SHORT)
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    argv = secret_argv(tmp_path / "fit.yaml")
    monkeypatch.setattr(sys, "argv", argv)
    logger = WandbLogger(project="medtext", save_dir=str(tmp_path), offline=True)
    start_wandb_run(SimpleNamespace(loggers=[logger], is_global_zero=True))
    (recorded,) = seen
    assert sys.argv == argv and recorded[:4] == argv[:4] and len(recorded) == len(argv)
    for secret in (WANDB_KEY, SHORT, "abc123", HF_TOKEN, SECRET):
        assert secret not in " ".join(recorded)


@pytest.mark.slow  # a W&B fit, offline
def test_the_offline_wandb_run_records_no_secret(tiny_encoder, tmp_path, monkeypatch, offline_wandb):  # noqa: F811
    import wandb

    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {"num_train": 16, "num_val": 8},
                         "data_modules.SyntheticAbstractsDataModule")
    monkeypatch.setenv("DB_PASSWORD", SHORT)
    monkeypatch.setattr(sys, "argv", secret_argv(config))
    assert main(sys.argv[1:]) == 0
    wandb.finish()
    wandb.teardown()  # the service has written the whole run
    (run_dir,) = offline_runs()
    records = next(run_dir.glob("run-*.wandb")).read_bytes()
    recorded = b"--predictions.output_file=https://reader:<redacted>@example.org/<redacted>.csv?token=<redacted>&page=2"
    assert recorded in records  # the args of the run, scrubbed
    for path in run_dir.rglob("*"):
        for secret in (WANDB_KEY, SHORT, "abc123", HF_TOKEN, SECRET):
            assert not path.is_file() or secret.encode() not in path.read_bytes(), (path, secret)
