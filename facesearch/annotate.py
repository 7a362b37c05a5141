"""Drawing identification results onto an image: a box per face, name (or unknown) and similarity."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from .types import FaceMatch

KNOWN_COLOR = (46, 204, 113)
UNKNOWN_COLOR = (231, 76, 60)
LOW_QUALITY_COLOR = (150, 150, 150)


class FaceAnnotator:
    """Settings here, data in ``annotate``; line width and font scale with the image by default."""

    def __init__(self, line_width: int | None = None, font_size: int | None = None) -> None:
        self.line_width = line_width
        self.font_size = font_size

    def annotate(self, image: Image.Image, faces: Sequence[FaceMatch]) -> Image.Image:
        """Return a copy of ``image`` with every face's box and label drawn on it."""
        out = image.convert("RGB").copy()
        draw = ImageDraw.Draw(out)
        short = min(out.size)
        width = self.line_width or max(2, short // 250)
        size = self.font_size or max(12, short // 40)
        try:
            font = ImageFont.load_default(size=size)
        except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
            font = ImageFont.load_default()
        for face in faces:
            color = KNOWN_COLOR if face.name else UNKNOWN_COLOR
            label = face.name or "unknown"
            if face.quality == "low":
                color, label = LOW_QUALITY_COLOR, "low quality"
            x1, y1, x2, y2 = face.box
            draw.rectangle((x1, y1, x2, y2), outline=color, width=width)
            if face.similarity is not None:
                label += f" {face.similarity:.2f}"
            tx1, ty1, tx2, ty2 = draw.textbbox((0, 0), label, font=font)
            tw, th = tx2 - tx1, ty2 - ty1
            ty = y1 - th - 2 * width if y1 - th - 2 * width >= 0 else y2
            draw.rectangle((x1, ty, x1 + tw + 2 * width, ty + th + 2 * width), fill=color)
            draw.text((x1 + width, ty + width - ty1), label, fill=(255, 255, 255), font=font)
        return out
