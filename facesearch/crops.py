"""Cutting detected faces out of an image: for FaceNet, and as thumbnails to show.

``crop_faces``: 160x160 RGB crops around the MTCNN box with a margin (in output pixels,
facenet-pytorch's convention), standardised as ``(x - 127.5) / 128``, as the FaceNet checkpoint
expects them. ``face_thumbnail``: a small square JPEG of one face, stored with it in the gallery.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PIL import Image

from .config import CROP_MARGIN, CROP_SIZE
from .errors import InputError
from .types import Faces, as_box

THUMBNAIL_SIZE = 112  # pixels, square
THUMBNAIL_QUALITY = 85  # JPEG; a 112 px face is about 3-5 kB
THUMBNAIL_MARGIN = 0.2  # added on each side, as a fraction of the box's longer side

if TYPE_CHECKING:
    import torch


def crop_faces(
    image: Image.Image, faces: Faces, size: int = CROP_SIZE, margin: int = CROP_MARGIN
) -> torch.Tensor:
    """Crops of every face in ``faces`` as a float tensor (N, 3, size, size), standardised."""
    import torch
    from facenet_pytorch.models.utils.detect_face import extract_face

    if len(faces) == 0:
        return torch.zeros((0, 3, size, size), dtype=torch.float32)
    crops = [extract_face(image, box, image_size=size, margin=margin) for box in faces.boxes]
    return (torch.stack(crops) - 127.5) / 128.0


def face_thumbnail(
    image: Image.Image,
    box: Sequence[float],
    size: int = THUMBNAIL_SIZE,
    quality: int = THUMBNAIL_QUALITY,
    margin: float = THUMBNAIL_MARGIN,
) -> bytes:
    """A ``size`` x ``size`` JPEG (bytes) of the face at ``box`` (``[x1, y1, x2, y2]`` pixels).

    The square is centred on the box, its side the box's longer side plus ``margin`` of it on
    each side; it is moved inside the image where it fits, and where it cannot (a face larger
    than the image allows) the outside is black. InputError for an empty box or bad settings.
    """
    x1, y1, x2, y2 = as_box(box)
    if not (x2 > x1 and y2 > y1):
        raise InputError(f"face box {[x1, y1, x2, y2]} is empty")
    if not 8 <= size <= 1024 or not 1 <= quality <= 95 or not 0 <= margin <= 2:
        raise InputError("thumbnail size must be 8..1024 pixels, JPEG quality 1..95, margin 0..2")
    side = max(1, round(max(x2 - x1, y2 - y1) * (1 + 2 * margin)))

    def start(centre: float, extent: int) -> int:
        s = round(centre - side / 2)
        return min(max(s, 0), extent - side) if side <= extent else s

    left, top = start((x1 + x2) / 2, image.width), start((y1 + y2) / 2, image.height)
    face = image.crop((left, top, left + side, top + side))
    if face.mode != "RGB":
        face = face.convert("RGB")
    face = face.resize((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    face.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()
