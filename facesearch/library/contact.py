"""A contact sheet of clusters: one row of face thumbnails per cluster, labelled with its id.

``ContactSheet`` takes its settings in the constructor and the data in ``draw(report,
thumbnail)``, where ``thumbnail(face_id)`` gives a face's stored JPEG (``FaceSearch.thumbnail``);
the result is a PIL image to save as PNG (``facesearch clusters --sheet out.png``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageFont

from ..types import ClusterReport

BACKGROUND = (250, 250, 250)
INK = (30, 30, 30)
MISSING = (200, 200, 200)  # a face without a stored thumbnail


class ContactSheet:
    """Thumbnail strips, one per cluster: ``tile`` pixels per face, at most ``per_row`` faces
    per cluster (the representative first), at most ``max_clusters`` rows."""

    def __init__(self, tile: int = 72, per_row: int = 12, max_clusters: int = 40) -> None:
        self.tile = tile
        self.per_row = per_row
        self.max_clusters = max_clusters

    def draw(self, report: ClusterReport, thumbnail: Callable[[int], bytes | None]) -> Image.Image:
        clusters = report.clusters[: self.max_clusters]
        pad, label_w = 4, 110
        font = ImageFont.load_default(size=max(12, self.tile // 5))
        rows = max(1, len(clusters))
        width = label_w + self.per_row * (self.tile + pad) + pad
        height = rows * (self.tile + pad) + pad + 24
        sheet = Image.new("RGB", (width, height), BACKGROUND)
        pen = ImageDraw.Draw(sheet)
        shown = sum(c.size for c in clusters)
        pen.text(
            (pad, pad),
            f"{len(report.clusters)} cluster(s), {shown} face(s) shown, "
            f"{report.unclustered} unclustered",
            fill=INK,
            font=font,
        )
        for r, cluster in enumerate(clusters):
            y = 24 + pad + r * (self.tile + pad)
            pen.text((pad, y + 4), f"#{cluster.id}", fill=INK, font=font)
            pen.text((pad, y + 4 + self.tile // 3), f"{cluster.size} faces", fill=INK, font=font)
            ids = [cluster.representative] + [
                f.id for f in cluster.faces if f.id != cluster.representative
            ]
            for k, face_id in enumerate(ids[: self.per_row]):
                x = label_w + pad + k * (self.tile + pad)
                sheet.paste(self._tile(thumbnail(face_id)), (x, y))
        return sheet

    def write(
        self,
        report: ClusterReport,
        thumbnail: Callable[[int], bytes | None],
        path: str | os.PathLike[str],
    ) -> None:
        """Draw and save as PNG, in 256 colours (dithered: a third of the size, looks the same)."""
        sheet = self.draw(report, thumbnail)
        palette = sheet.quantize(256, Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
        palette.save(path, "PNG", optimize=True)

    def _tile(self, jpeg: bytes | None) -> Image.Image:
        if jpeg is None:
            return Image.new("RGB", (self.tile, self.tile), MISSING)
        with Image.open(io.BytesIO(jpeg)) as img:
            return img.convert("RGB").resize((self.tile, self.tile), Image.Resampling.LANCZOS)
