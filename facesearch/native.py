"""The order in which two native libraries load: ONNX Runtime before usearch.

usearch loads its SIMD kernels (NumKong) into the process's global symbol namespace
(``RTLD_GLOBAL``); ONNX Runtime's module, loaded after that, binds to some of those symbols and
crashes the process with a segmentation fault while it initialises (ONNX Runtime 1.31-1.32,
usearch 2.26). torch imports ONNX Runtime too when it is installed (``torch.onnx``, which
torchvision loads). Loaded the other way round, both work, so every import of usearch in
facesearch goes through ``usearch_index``. A program that imports usearch itself must import
facesearch's gallery (or ``onnxruntime``) first.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any


def onnxruntime() -> ModuleType | None:
    """ONNX Runtime's module, or None when it is not installed."""
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime as ort

    return ort


def usearch_index() -> Any:
    """usearch's ``Index`` class, with ONNX Runtime loaded before it where it is installed."""
    onnxruntime()
    from usearch.index import Index

    return Index
