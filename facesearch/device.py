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


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision FaceNet runs in: "auto" picks bf16 on CPUs with native bf16 (the same
    embeddings to ~1e-4 cosine) and fp32 everywhere else; fp16 runs on CUDA only (autocast:
    CPUs compute half precision no faster than fp32, and ONNX Runtime's CPU runner is fp32)."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; use {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise InputError("--precision fp16 runs on CUDA only; on the CPU use fp32 or bf16")
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
