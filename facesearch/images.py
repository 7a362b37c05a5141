"""Reading photos from disk: any PIL mode to 8-bit RGB, EXIF orientation applied, content hash.

Every failure becomes an ``ImageError`` with a one-line reason, so a bad file is skipped or
reported instead of crashing a long enroll.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .config import MAX_IMAGE_PIXELS
from .errors import ImageError, InputError

# We enforce our own pixel limit before decoding; PIL's would only warn below 2x its limit.
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")
R = TypeVar("R")
_END = object()  # the end of an iterator (None may be an item)


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded photo: ``image`` is 8-bit RGB, upright; ``sha256`` is of the file's bytes."""

    path: str
    image: Image.Image
    sha256: str

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB: 16-bit and float scaled, alpha composited on white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        else:
            lo, hi = float(arr.min()), float(arr.max())
            if hi > 255 or lo < 0:
                arr = (arr - lo) * (255.0 / max(hi - lo, 1e-9))
        gray = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "L")
        return gray.convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def decode_image(data: bytes, path: str = "<bytes>") -> Image.Image:
    """Decode bytes to an upright 8-bit RGB image, or raise ImageError with the reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise ImageError(
                    f"{path}: image too large ({w}x{h} = {w * h:,} pixels, limit {MAX_IMAGE_PIXELS:,})"
                )
            if w == 0 or h == 0:
                raise ImageError(f"{path}: image has no pixels ({w}x{h})")
            img.load()
            img = ImageOps.exif_transpose(img) or img
            return to_rgb(img)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        raise ImageError(f"{path}: corrupt or truncated image ({err})") from err


def image_from_bytes(data: bytes, label: str = "<bytes>") -> LoadedImage:
    """Hash and decode one photo held in memory (an upload); ``label`` names it in errors."""
    return LoadedImage(label, decode_image(data, label), file_sha256(data))


def load_image(path: PathLike) -> LoadedImage:
    """Read, hash and decode one photo file."""
    p = str(path)
    try:
        with open(p, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, expected an image file") from None
    except OSError as err:
        raise ImageError(f"{p}: cannot read file ({err.strerror or err})") from err
    return LoadedImage(p, decode_image(data, p), file_sha256(data))


def iter_files(folder: Path) -> Iterator[Path]:
    """Files below ``folder``, recursive and sorted; hidden files and folders are skipped.

    Every other file is returned, whatever its extension: the decoder decides what is an image,
    so a non-image file is reported as skipped rather than silently ignored.
    """
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def _load_or_error(path: Path) -> LoadedImage | Exception:
    try:
        return load_image(path)
    except (ImageError, InputError) as err:
        return err


def read_ahead(
    read: Callable[[T], R],
    items: Iterable[T],
    workers: int = 2,
    ahead: int = 16,
    name: str = "read",
) -> Iterator[R]:
    """``read(item)`` of each item in background threads, yielded in order, at most ``ahead``
    items in flight (decoding photos overlaps detection without holding them all in memory)."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"facesearch-{name}") as pool:
        window: deque[Future[R]] = deque()
        it = iter(items)
        for item in it:
            window.append(pool.submit(read, item))
            if len(window) >= ahead:
                break
        while window:
            result = window.popleft().result()
            nxt = next(it, _END)
            if nxt is not _END:
                window.append(pool.submit(read, nxt))  # type: ignore[arg-type]
            yield result


def prefetch_images(
    paths: Iterable[Path], workers: int = 2, ahead: int = 16
) -> Iterator[LoadedImage | Exception]:
    """Read, hash and decode photos in background threads, in order, a bounded window ahead.

    A file that cannot be read yields its ``ImageError``/``InputError`` instead of stopping.
    """
    return read_ahead(_load_or_error, paths, workers, ahead, name="decode")
