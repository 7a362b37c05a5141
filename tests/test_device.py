"""Choosing the device and the precision FaceNet runs in."""

from __future__ import annotations

import pytest
import torch

from facesearch import FaceEmbedder, device
from facesearch.errors import InputError

CPU = torch.device("cpu")
CUDA = torch.device("cuda")


@pytest.mark.parametrize(
    "asked, where, native_bf16, expected",
    [
        ("auto", CPU, False, "fp32"),
        ("auto", CPU, True, "bf16"),
        ("auto", CUDA, True, "fp32"),  # CUDA: fp32 until half precision is measured there
        ("fp32", CPU, True, "fp32"),
        ("bf16", CPU, False, "bf16"),
        ("bf16", CUDA, False, "bf16"),
        ("fp16", CUDA, False, "fp16"),
    ],
)
def test_precision_rule(monkeypatch, asked, where, native_bf16, expected):
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: native_bf16)
    assert device.resolve_precision(asked, where) == expected


@pytest.mark.parametrize(
    "asked, where, message",
    [
        ("fp16", CPU, "fp16 runs on CUDA only"),
        ("int8", CPU, "unknown precision 'int8'; use auto, fp32, bf16, fp16"),
        ("half", CUDA, "unknown precision"),
    ],
)
def test_precision_errors(asked, where, message):
    with pytest.raises(InputError, match=message):
        device.resolve_precision(asked, where)


def test_embedder_refuses_fp16_on_the_cpu():
    with pytest.raises(InputError, match="fp16 runs on CUDA only"):
        FaceEmbedder(device="cpu", precision="fp16")


def test_cuda_asked_for_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="CUDA is not available"):
        device.resolve_device("cuda")
    assert device.resolve_device(None) == CPU
    assert device.resolve_device("auto") == CPU
    assert device.resolve_device("cpu") == CPU


def test_auto_device_is_cuda_where_there_is_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.resolve_device(None).type == "cuda"
    assert device.resolve_device("cuda:0") == torch.device("cuda:0")
