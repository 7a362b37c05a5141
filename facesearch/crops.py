"""Cutting detected faces out of an image the way the FaceNet checkpoint expects them.

160x160 RGB crops around the MTCNN box with a margin (in output pixels, facenet-pytorch's
convention), standardised as ``(x - 127.5) / 128``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image

from .config import CROP_MARGIN, CROP_SIZE
from .types import Faces

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
