"""Choose a mixed precision the hardware supports.

>>> choose_precision("32-true", cuda_available=False, bf16_supported=False)
'32-true'
>>> choose_precision("bf16-mixed", cuda_available=True, bf16_supported=False)
'16-mixed'
"""

from __future__ import annotations

from typing import Optional

import torch


def choose_precision(precision: Optional[str], cuda_available: Optional[bool] = None,
                     bf16_supported: Optional[bool] = None) -> Optional[str]:
    """``bf16-mixed`` becomes ``16-mixed`` (with loss scaling) on CUDA GPUs without bf16 (pre-Ampere)."""
    if str(precision) != "bf16-mixed":
        return precision
    cuda_available = torch.cuda.is_available() if cuda_available is None else cuda_available
    if not cuda_available:
        return precision  # CPU autocast supports bf16
    bf16_supported = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
    return precision if bf16_supported else "16-mixed"
