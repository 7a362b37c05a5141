"""Bad and unusual image files made from a real face photo, for the bad-input tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def save(img: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def variants(face: Path, out: Path) -> dict[str, Path]:
    """The same face saved in modes that must all decode to a usable RGB image."""
    rgb = Image.open(face).convert("RGB")
    gray = np.asarray(rgb.convert("L"), dtype=np.uint16)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.new("L", rgb.size, 255))
    return {
        "grayscale": save(rgb.convert("L"), out / "gray.png"),
        "16-bit": save(Image.fromarray(gray * 257), out / "gray16.png"),  # mode I;16
        "cmyk": save(rgb.convert("CMYK"), out / "cmyk.jpg", quality=95),
        "palette": save(rgb.convert("P", palette=Image.ADAPTIVE, colors=256), out / "palette.png"),
        "rgba": save(rgba, out / "rgba.png"),
    }


def truncated(src: Path, dst: Path, keep: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def huge(dst: Path) -> Path:
    """A small file that decodes to 12000 x 12000 = 144M pixels (a decompression bomb)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.new("1", (12000, 12000)).save(dst, "PNG")
    return dst


def rotated_exif(face: Path, dst: Path) -> Path:
    """The face stored sideways with EXIF orientation 6 (display rotated 90° clockwise)."""
    img = Image.open(face).convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return save(img, dst, exif=exif.tobytes(), quality=95)
