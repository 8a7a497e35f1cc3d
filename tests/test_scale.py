"""Distributed evaluation on CPU (2 processes, gloo), bf16 autocast, and kill-and-resume."""

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

from cli_helpers import run_medtext as medtext, tiny_config

SYNTHETIC = {"num_train": 64, "num_val": 20, "num_test": 25}  # an odd test set: DDP ranks get 13 and 12
DEMO = "data_modules.SyntheticAbstractsDataModule"


def resumable_config(path: Path, encoder: str) -> Path:
    data = {**SYNTHETIC, "batch_size": 4, "bucket_by_length": True, "data_dir": str(path.parent / "data"),
            "cache_dir": str(path.parent / "cache")}
    tiny_config(path, encoder, data, DEMO, max_epochs=2)
    config = yaml.safe_load(path.read_text())
    config["trainer"]["callbacks"][0]["init_args"]["enable_version_counter"] = False
    config["trainer"]["callbacks"].append({"class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                                           "init_args": {"every_n_train_steps": 5, "save_top_k": 0,
                                                         "save_last": True, "enable_version_counter": False}})
    config["trainer"]["logger"]["init_args"]["name"] = path.stem
    path.write_text(yaml.safe_dump(config))
    return path


def last_row_with(metrics_csv: Path, key: str) -> dict:
    rows = [r for r in csv.DictReader(open(metrics_csv)) if r.get(key)]
    return rows[-1]


@pytest.fixture(scope="module")
def trained(tiny_encoder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("trained")
    config = resumable_config(folder / "straight.yaml", tiny_encoder)
    medtext("fit", "--config", str(config), cwd=folder)
    return folder, next((folder / "runs" / "straight").glob("version_*"))


@pytest.mark.slow  # two processes
def test_ddp_test_metrics_equal_single_process(trained):
    folder, run = trained
    checkpoint = next((run / "checkpoints").glob("best*.ckpt"))
    medtext("test", "--ckpt_path", str(checkpoint), "--trainer.default_root_dir=single",
                     cwd=folder)
    ddp = medtext("test", "--ckpt_path", str(checkpoint), "--trainer.strategy=ddp", "--trainer.devices=2",
                  "--trainer.accelerator=cpu", "--trainer.default_root_dir=ddp", cwd=folder)
    assert "MEMBER: 2/2" in ddp.stderr + ddp.stdout, "the test ran in two processes"
    metrics = {name: json.loads(next((folder / name).glob("**/test_metrics.json")).read_text())
               for name in ("single", "ddp")}
    assert metrics["single"].keys() == metrics["ddp"].keys()
    for key, value in metrics["single"].items():
        assert metrics["ddp"][key] == pytest.approx(value, abs=1e-6), key
    matrix = list(csv.reader(open(next((folder / "ddp").glob("**/test_confusion_matrix.csv")))))
    assert sum(int(v) for row in matrix[1:] for v in row[1:]) == SYNTHETIC["num_test"]
    # each test abstract once, in file order, with the labels of the single process (the padded sampler's repeat dropped)
    rows = {name: list(csv.DictReader(open(next((folder / name).glob("**/test_predictions.csv")))))
            for name in ("single", "ddp")}
    assert [r["row"] for r in rows["ddp"]] == [str(i) for i in range(1, SYNTHETIC["num_test"] + 1)]
    assert [(r["true_label"], r["label"]) for r in rows["ddp"]] == [(r["true_label"], r["label"]) for r in rows["single"]]
    for key in ("test/macro_f1", "test/micro_f1", "test/accuracy"):
        print(f"{key}: single process {metrics['single'][key]} ddp {metrics['ddp'][key]}")


@pytest.mark.slow  # three medtext processes, one of them killed
def test_killed_fit_resumes_mid_epoch_to_identical_metrics(trained, tiny_encoder, tmp_path):
    folder, straight = trained
    config = resumable_config(tmp_path / "killed.yaml", tiny_encoder)
    killed = medtext("fit", "--config", str(config), "--trainer.callbacks+=killer.KillAtStep",
                     "--trainer.callbacks.step=7", cwd=tmp_path, check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    run = next((tmp_path / "runs" / "killed").glob("version_*"))
    saved = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] == 5 and saved["epoch"] == 0  # mid-epoch: 16 batches per epoch

    resumed = medtext("fit", "--config", str(config), "--ckpt_path", "last", cwd=tmp_path)
    assert "resuming from" in resumed.stdout
    assert len(list((tmp_path / "runs" / "killed").glob("version_*"))) == 1, "resume continues the same run"
    logged_steps = {int(r["step"]) for r in csv.DictReader(open(run / "metrics.csv")) if r.get("train/loss")}
    assert {0, 1, 2, 3, 4} <= logged_steps, "the rows logged before the kill are kept"
    expected = last_row_with(straight / "metrics.csv", "val/loss")
    got = last_row_with(run / "metrics.csv", "val/loss")
    assert got["step"] == expected["step"] and got["epoch"] == expected["epoch"]
    for key in ("val/loss", "val/macro_f1", "val/accuracy"):
        print(f"{key}: resumed {got[key]} uninterrupted {expected[key]}")
        assert float(got[key]) == pytest.approx(float(expected[key]), abs=1e-6), key
    first = torch.load(straight / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    second = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    for name, tensor in first.items():
        assert torch.allclose(tensor.float(), second[name].float(), atol=1e-6), name


@pytest.mark.parametrize("head", ["medtext.heads.MLPHead",  # the other heads' bf16 forward: test_heads.py
                                  pytest.param("medtext.heads.BiLSTMCrossAttentionHead", marks=pytest.mark.slow),
                                  pytest.param("medtext.heads.LabelAttentionHead", marks=pytest.mark.slow)])
def test_bf16_mixed_on_cpu_for_every_head(tiny_encoder, tmp_path, head):
    from cli_helpers import run

    config = tiny_config(tmp_path / "bf16.yaml", tiny_encoder, {"num_train": 24, "num_val": 8, "num_test": 8}, DEMO)
    cli = run("fit", "--config", str(config), "--trainer.precision=bf16-mixed", "--trainer.max_steps=3",
              "--model.head", head, *(["--model.head.num_heads=2"] if "Attention" in head else []),
              "--model.head.dropout=0.0" if head.endswith("MLPHead") else "--model.head.dropout=0.1")
    assert cli.trainer.precision == "bf16-mixed"
    loss = float(cli.trainer.callback_metrics["val/loss"])
    # the last validation (after step 3, the end of the only epoch) is the trained model's, under autocast
    model, total, count = cli.model.eval(), 0.0, 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for batch in cli.datamodule.val_dataloader():
            logits = model(batch["input_ids"], batch["attention_mask"])
            total += float(model.task.loss(logits, batch["labels"])) * len(batch["labels"])
            count += len(batch["labels"])
    assert cli.trainer.global_step == 3 and count == 8
    assert torch.isfinite(torch.tensor(loss)) and loss == pytest.approx(total / count, abs=1e-4), loss
