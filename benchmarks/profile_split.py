"""Where the time of a predict batch and of a training step goes on this CPU (issue 17's profiler split).

    python benchmarks/profile_split.py                       # bf16 autocast where native, else fp32
    python benchmarks/profile_split.py --precision 32-true --batches 6

The offline MiniLM with the speed benchmark's head ([CLS] -> dense+tanh -> linear) on real Medical
Abstracts: batches of 16 abstracts of similar length (256 tokens at most), as ``predict`` and ``fit``
with ``bucket_by_length`` make them. Under ``torch.profiler``: forward only (predict) and
forward + backward (fit); the fused AdamW step is timed apart. Prints the share of each op family in
the profiled time, and the matmul family's rate three ways: inside the model, the same matmul
shapes timed alone, and the 2048 x 2048 peak that ``benchmarks/speed.py`` uses for its ceilings.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from flops import bf16_matmul_is_native, matmul_peak  # noqa: E402
from medtext import TextClassifier  # noqa: E402
from medtext.core.encoders import load_tokenizer, resolve_encoder_path  # noqa: E402
from medtext.heads import MLPHead  # noqa: E402

FAMILIES = {  # op-name fragments -> family; the first match wins
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "mkldnn", "onednn", "aten::linear", "aten::matmul"),
    "attention kernel": ("scaled_dot_product",),
    "layer norm": ("layer_norm",),
    "GELU / tanh": ("gelu", "tanh"),
    "softmax": ("softmax",),
    "casts and copies": ("aten::to", "aten::_to_copy", "aten::copy_", "aten::clone", "aten::contiguous"),
    "dropout": ("dropout", "bernoulli"),
    "embedding": ("embedding",),
    "elementwise and reductions": ("aten::add", "aten::mul", "aten::div", "aten::sub", "aten::where", "aten::sum",
                                   "aten::fill_", "aten::zero_", "aten::mean", "aten::masked_fill", "aten::rsub",
                                   "aten::cross_entropy", "aten::nll", "aten::log_softmax", "aten::_log_softmax"),
    "views and shapes": ("aten::view", "aten::reshape", "aten::transpose", "aten::permute", "aten::expand",
                         "aten::slice", "aten::select", "aten::t", "aten::unsqueeze", "aten::empty", "aten::as_strided",
                         "aten::_unsafe_view", "aten::detach", "aten::result_type", "aten::resize_"),
}


def family(name: str) -> str:
    name = name.lower()
    return next((label for label, parts in FAMILIES.items() if any(part in name for part in parts)), "other")


def batches(model_dir: str, count: int, size: int = 16, max_length: int = 256):
    """``count`` length-sorted batches of real abstracts, spread over the length range (the longest included)."""
    texts = pd.read_csv(ROOT.parent / "shared/data/medical_abstracts/medical_tc_train_partial.csv")["medical_abstract"]
    tokenizer = load_tokenizer(model_dir)
    ids = sorted(tokenizer(list(texts[:size * 40]), truncation=True, max_length=max_length)["input_ids"], key=len)
    groups = [ids[i:i + size] for i in range(0, len(ids) - size + 1, size)]
    picked = [groups[round(i * (len(groups) - 1) / max(count - 1, 1))] for i in range(count)]
    return [tokenizer.pad({"input_ids": group}, return_tensors="pt") for group in picked]


def profiled(step, inputs) -> tuple[Counter, float]:
    """Self CPU time per op family (seconds) of ``step`` over ``inputs``, and the wall time."""
    step(inputs[0])  # warm-up (oneDNN primitives, allocator)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for batch in inputs:
            step(batch)
        wall = time.perf_counter() - start
    shares = Counter()
    for event in prof.key_averages():
        shares[family(event.key)] += event.self_cpu_time_total / 1e6
    return shares, wall


def matmul_shapes_alone(tokens: int, hidden: int, intermediate: int, dtype: torch.dtype, seconds: float = 2.0) -> float:
    """FLOP/s of the encoder's linear layers at one batch's shape, timed alone (no model around them)."""
    shapes = [(tokens, hidden, 3 * hidden), (tokens, hidden, hidden), (tokens, hidden, intermediate),
              (tokens, intermediate, hidden)]
    mats = [(torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)) for m, k, n in shapes]
    flops = sum(2 * m * k * n for m, k, n in shapes)
    for x, y in mats:
        x @ y
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for x, y in mats:
            x @ y
        runs += 1
    return runs * flops / (time.perf_counter() - start)


def report(title: str, shares: Counter, wall: float, flops: tuple[float, float], alone: float, peak: float) -> None:
    """The op-family table; ``flops``: (linear layers, attention products) of the profiled steps."""
    total = sum(shares.values())
    print(f"\n{title}: {wall:.2f} s wall, {total:.2f} s profiled self time")
    print("| op family | seconds | share |\n| --- | --- | --- |")
    for name, seconds in shares.most_common():
        print(f"| {name} | {seconds:.2f} | {100 * seconds / total:.1f}% |")
    linear, attention = flops
    fused = shares["attention kernel"]  # with eager attention its products are in the matmul family
    rate = (linear + (0 if fused else attention)) / shares["matmul"] if shares["matmul"] else float("nan")
    print(f"matmul family {rate / 1e9:.0f} GFLOP/s (the linear layers' shapes alone: {alone / 1e9:.0f}; 2048x2048 "
          f"peak: {peak / 1e9:.0f})" + (f"; attention kernel {attention / fused / 1e9:.0f} GFLOP/s" if fused else "")
          + f". All of it at the peak: {100 * (linear + attention) / peak / wall:.1f}% of the wall time.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precision", choices=["auto", "32-true", "bf16-mixed"], default="auto")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--attention", choices=["sdpa", "eager"], default="sdpa",
                        help="the encoder's attention: PyTorch's fused kernel (medtext's default) or matmul + softmax")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    bf16 = args.precision == "bf16-mixed" or (args.precision == "auto" and bf16_matmul_is_native())
    dtype = torch.bfloat16 if bf16 else torch.float32
    model_dir = resolve_encoder_path("sentence-transformers/all-MiniLM-L6-v2")
    model = TextClassifier(model_dir, label_names=[f"class {i}" for i in range(5)],
                           head=lambda hidden, labels: MLPHead(hidden, labels, pooling="cls", hidden_dims=[hidden],
                                                               activation="tanh"), attention_dropout=0.0)
    model.encoder.set_attn_implementation(args.attention)
    config = model.encoder.config
    inputs = batches(model_dir, args.batches)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    tokens = sum(int(b["attention_mask"].numel()) for b in inputs)
    # per padded token and layer: the linear layers (QKV, output, FFN), and attention's scores and weighted sums
    linear = sum(2 * b["attention_mask"].numel() * config.num_hidden_layers
                 * (4 * config.hidden_size ** 2 + 2 * config.hidden_size * config.intermediate_size) for b in inputs)
    attention = sum(4 * b["attention_mask"].numel() * b["attention_mask"].shape[1] * config.hidden_size
                    * config.num_hidden_layers for b in inputs)
    alone = matmul_shapes_alone(tokens // len(inputs), config.hidden_size, config.intermediate_size, dtype)
    peak = matmul_peak(dtype)
    print(f"{'bf16 autocast' if bf16 else 'fp32'}, {torch.get_num_threads()} threads, {len(inputs)} batches of 16, "
          f"{tokens} padded tokens, lengths {[b['attention_mask'].shape[1] for b in inputs]}")

    model.eval()

    def predict(batch):
        with torch.no_grad(), autocast:
            model(batch["input_ids"], batch["attention_mask"])

    report("predict (forward)", *profiled(predict, inputs), (linear, attention), alone, peak)

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, fused=True)
    labels = torch.zeros(16, dtype=torch.long)

    def train(batch):
        with autocast:
            logits = model(batch["input_ids"], batch["attention_mask"])
        torch.nn.functional.cross_entropy(logits.float(), labels[:len(logits)]).backward()

    report("training forward + backward", *profiled(train, inputs), (3 * linear, 3 * attention), alone, peak)
    start = time.perf_counter()
    for _ in inputs:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    print(f"fused AdamW step + zero_grad: {(time.perf_counter() - start) / len(inputs) * 1e3:.0f} ms per step "
          f"({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters)")


if __name__ == "__main__":
    main()
