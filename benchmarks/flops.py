"""Model FLOPs per abstract (counted by ``torch.utils.flop_counter``) and this CPU's matmul peak.

A training step of one abstract of length L costs ``a*L + b*L**2`` FLOPs (linear layers grow with
L, attention with L squared); counting fwd+bwd at two lengths gives a and b exactly.

    python benchmarks/flops.py --model DIR
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode


def training_flops_per_abstract(model_dir: str, num_labels: int = 5, lengths=(64, 256),
                                backward: bool = True) -> tuple[float, float]:
    """(a, b) with fwd+bwd (or, with ``backward=False``, forward) FLOPs of one abstract of L tokens = a*L + b*L**2."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=num_labels, attn_implementation="eager")  # eager: attention matmuls are counted
    counts = []
    for length in lengths:
        ids = torch.randint(1000, 2000, (1, length))
        with FlopCounterMode(display=False) as counter:
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.zeros(1, dtype=torch.long)).loss
            if backward:
                loss.backward()
        counts.append(counter.get_total_flops())
    (l1, l2), (f1, f2) = lengths, counts
    b = (f2 / l2 - f1 / l1) / (l2 - l1)
    return f1 / l1 - b * l1, b


def step_flops(shapes: list, a: float, b: float, padded: bool) -> float:
    """FLOPs of the recorded steps: over padded shapes (executed) or real tokens per abstract (useful)."""
    if padded:
        return sum(n * (a * length + b * length ** 2) for n, length, _ in shapes)
    # real tokens only: linear term exact; attention term with the batch's mean real length
    return sum(a * real + b * n * (real / n) ** 2 for n, _, real in shapes if n)  # streamed predict's end marker: 0 rows


def matmul_peak(dtype: torch.dtype, size: int = 2048, seconds: float = 3.0) -> float:
    """Best FLOP/s of ``size`` x ``size`` matmuls in ``dtype`` over about ``seconds``."""
    x, y = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(3):
        x @ y
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        x @ y
        best = max(best, 2 * size ** 3 / (time.perf_counter() - start))
    return best


def matmul_peaks() -> dict[str, float]:
    """This CPU's best matmul FLOP/s in fp32, and in bf16 where the CPU has native bf16 matmuls."""
    return {"fp32": matmul_peak(torch.float32), **({"bf16": matmul_peak(torch.bfloat16)} if bf16_matmul_is_native() else {})}


def bf16_matmul_is_native() -> bool:
    return bool(getattr(torch.backends.mkldnn, "is_available", lambda: False)()) and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    a, b = training_flops_per_abstract(args.model)
    print(f"fwd+bwd FLOPs per abstract of L tokens = {a:.4g}*L + {b:.4g}*L^2 (L=256: {(a * 256 + b * 256 ** 2) / 1e9:.2f} GFLOP)")
    fa, fb = training_flops_per_abstract(args.model, backward=False)
    print(f"forward FLOPs per abstract of L tokens = {fa:.4g}*L + {fb:.4g}*L^2")
    print(f"matmul peak fp32: {matmul_peak(torch.float32) / 1e9:.1f} GFLOP/s")
    if bf16_matmul_is_native():
        print(f"matmul peak bf16: {matmul_peak(torch.bfloat16) / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
