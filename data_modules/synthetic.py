"""A small synthetic corpus of abstract-like texts, generated offline for demos and tests.

Each abstract mixes sentences about one condition (its label) with generic clinical-study
sentences and, sometimes, a distracting sentence about another condition; a few labels are flipped,
so the task is learnable but not trivial.

>>> rows = generate_abstracts(10, seed=0)
>>> sorted(rows[0])
['label', 'text']
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from medtext.io import atomic_write_text

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
    """``n`` rows of ``{"text": ..., "label": class name}`` with balanced classes."""
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
