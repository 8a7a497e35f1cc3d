"""The demo data: a small synthetic corpus of abstract-like texts, generated offline, and the data
module that writes and reads it (no external data; also used by the tests).

    python -m medtext fit --config configs/demo.yaml
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Optional

from medtext.core.atomic_files import atomic_write_text

from .abstracts import AbstractsDataModule

CONDITIONS = {
    "neoplasms": ["carcinoma", "tumor", "metastasis", "chemotherapy", "lymphoma", "malignant cells",
                  "radiotherapy", "oncogene expression", "tumour resection", "adenocarcinoma"],
    "digestive system diseases": ["hepatitis", "cirrhosis", "gastric ulcer", "colitis", "pancreatitis",
                                  "endoscopy", "bowel resection", "biliary obstruction", "duodenum", "liver"],
    "nervous system diseases": ["epilepsy", "seizures", "neuropathy", "multiple sclerosis", "dementia",
                                "cerebral lesions", "spinal cord", "neurological deficit", "migraine", "stroke"],
    "cardiovascular diseases": ["myocardial infarction", "hypertension", "coronary artery", "arrhythmia",
                                "heart failure", "angioplasty", "ventricular function", "atherosclerosis",
                                "blood pressure", "cardiac output"],
    "general pathological conditions": ["sepsis", "inflammation", "fever", "shock", "infection",
                                        "tissue injury", "systemic response", "wound healing",
                                        "oxidative stress", "fibrosis"],
}
TOPIC_TEMPLATES = [
    "We studied {n} patients with {a} and {b}.",
    "The role of {a} in {b} remains unclear.",
    "Patients presenting with {a} were evaluated for {b}.",
    "Outcomes after {a} were compared with {b} in this cohort.",
    "{A} was associated with {b} in most cases.",
    "These findings suggest that {a} contributes to {b}.",
]
GENERIC = [
    "A retrospective review of medical records was performed.",
    "Follow-up ranged from {n} months to {m} years.",
    "Statistical analysis used a two-tailed test with significance at p < 0.05.",
    "The study was approved by the institutional review board.",
    "Results were consistent across age groups and sexes.",
    "Further prospective trials are warranted.",
    "Mean age was {n} years.",
    "Laboratory values were measured at baseline and at discharge.",
]


def _sentence(rng: random.Random, terms: list[str]) -> str:
    a, b = rng.sample(terms, 2)
    text = rng.choice(TOPIC_TEMPLATES).format(n=rng.randint(12, 400), a=a, b=b, A=a.capitalize())
    return text


def generate_abstracts(n: int, seed: int = 0, label_noise: float = 0.05) -> list[dict[str, str]]:
    """``n`` rows of ``{"text": ..., "label": class name}`` with balanced classes.

    Each abstract mixes sentences about one condition (its label) with generic clinical-study
    sentences and, sometimes, a distracting sentence about another condition; a few labels
    (``label_noise``) are redrawn at random, so the task is learnable but not trivial.

    >>> rows = generate_abstracts(10, seed=0)
    >>> sorted(rows[0])
    ['label', 'text']
    """
    rng = random.Random(seed)
    names = list(CONDITIONS)
    rows = []
    for i in range(n):
        label = names[i % len(names)]
        sentences = [_sentence(rng, CONDITIONS[label]) for _ in range(rng.randint(1, 2))]
        sentences += [rng.choice(GENERIC).format(n=rng.randint(2, 80), m=rng.randint(2, 9))
                      for _ in range(rng.randint(2, 4))]
        if rng.random() < 0.3:
            sentences.append(_sentence(rng, CONDITIONS[rng.choice(names)]))
        rng.shuffle(sentences)
        if rng.random() < label_noise:
            label = rng.choice(names)
        rows.append({"text": " ".join(sentences), "label": label})
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["text", "label"])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


class SyntheticAbstractsDataModule(AbstractsDataModule):
    """Writes ``train.csv``, ``val.csv``, ``test.csv`` of generated abstracts into ``data_dir``
    unless they are there, then reads them. Other arguments as in :class:`AbstractsDataModule`.

    Args:
        data_dir: folder of the generated files (default: ``<cache_dir>/synthetic-<seed>-<sizes>``).
        num_train: training abstracts to generate.
        num_val: validation abstracts to generate.
        num_test: test abstracts to generate.
        seed: generator seed.
    """

    def __init__(self, data_dir: Optional[str] = None, num_train: int = 400, num_val: int = 100,
                 num_test: int = 100, seed: int = 0, max_length: int = 128,
                 label_map: Optional[dict[str, str]] = None, **kwargs):
        default_map = None if label_map or kwargs.get("labels_file") else {name: name for name in CONDITIONS}
        super().__init__(max_length=max_length, label_map=label_map or default_map, **kwargs)
        self.folder = Path(data_dir or Path(self.cache_dir) / f"synthetic-{seed}-{num_train}-{num_val}-{num_test}")
        self.sizes, self.seed = (num_train, num_val, num_test), seed

    def resolve_files(self) -> dict[str, Optional[str]]:
        files: dict[str, Optional[str]] = {"predict": None}
        for offset, (split, size) in enumerate(zip(("train", "val", "test"), self.sizes)):
            path = self.folder / f"{split}.csv"
            if not path.is_file():
                write_csv(path, generate_abstracts(size, seed=self.seed * 1000 + offset))
            files[split] = str(path)
        return files
