"""facesearch: enroll people, identify every face in a photo, recognise faces live.

MTCNN finds faces, FaceNet (InceptionResnetV1, VGGFace2 weights) embeds them as 512-d unit
vectors, an HNSW index (cosine distance) finds the nearest enrolled faces, and SQLite keeps who
they are. Nothing is loaded on import.
"""

__version__ = "0.2.0"

from .annotate import FaceAnnotator
from .detection import FaceDetector, most_prominent
from .embedding import FaceEmbedder
from .errors import (
    FaceSearchError,
    GalleryError,
    ImageError,
    InputError,
    ModelMismatchError,
    PersonNotFoundError,
    WeightsError,
)
from .gallery import Gallery
from .pipeline import FaceSearch
from .threshold import Threshold, default_threshold
from .types import Candidate, EnrollReport, FaceMatch, Faces, ImageResult, Person, Skip

__all__ = [
    "FaceSearch",
    "FaceDetector",
    "FaceEmbedder",
    "FaceAnnotator",
    "Gallery",
    "Threshold",
    "default_threshold",
    "most_prominent",
    "Faces",
    "FaceMatch",
    "Candidate",
    "ImageResult",
    "EnrollReport",
    "Person",
    "Skip",
    "FaceSearchError",
    "InputError",
    "ImageError",
    "PersonNotFoundError",
    "GalleryError",
    "ModelMismatchError",
    "WeightsError",
]
