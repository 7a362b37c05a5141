"""Choosing the torch device and numeric precision for the networks."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    import torch


def resolve_device(device: str | None = None) -> torch.device:
    """``None``/"auto": CUDA when available, else CPU; "cuda" without CUDA is an error."""
    import torch

    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available on this machine")
    return dev


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX), where bf16 is faster."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            flags = fh.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """ "auto" picks bf16 on CPUs with native bf16 (same embeddings to ~1e-4 cosine), else fp32."""
    if precision not in ("auto", "fp32", "bf16"):
        raise InputError(f"unknown precision {precision!r}; use auto, fp32 or bf16")
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
