"""facesearch: enroll people, identify every face in a photo, recognise faces live.

MTCNN finds faces, FaceNet (InceptionResnetV1, VGGFace2 weights) embeds them as 512-d unit
vectors, and a gallery finds the nearest enrolled people: a directory (SQLite keeps who they are,
an HNSW index with cosine distance finds them) or a PostgreSQL database with pgvector.
``FaceSearch`` is the API; the CLI and everything else call it. Nothing is loaded on import.

Where things are: the pipeline's stages are modules here (``images`` → ``detection`` →
``crops`` → ``embedding``, ``subjects`` choosing each photo's subject, ``quality``,
``refine``, ``threshold``, ``annotate``); ``gallery/`` holds the backends and the person scoring,
``live/`` video recognition, ``evaluation/`` evaluate and calibrate, ``library/`` the photo
library (``scan`` every face of a folder, ``clusters`` of unknown people, name them, ``find``).
"""

__version__ = "0.2.0"

from .annotate import FaceAnnotator
from .detection import FaceDetector, most_prominent
from .embedding import FaceEmbedder
from .errors import (
    FaceNotFoundError,
    FaceSearchError,
    GalleryError,
    ImageError,
    InputError,
    ModelMismatchError,
    NoFaceError,
    PersonNotFoundError,
    WeightsError,
)
from .gallery import DTYPES, Gallery, IndexParams, open_gallery
from .images import LoadedImage, image_from_bytes, load_image
from .pipeline import FaceSearch
from .threshold import Threshold, default_threshold, given, name_for
from .types import (
    Candidate,
    Cluster,
    ClusterReport,
    EnrollReport,
    FaceInfo,
    FaceMatch,
    Faces,
    ImageResult,
    NamedCluster,
    Person,
    PhotoHit,
    RenameResult,
    ScanReport,
    Skip,
    Verification,
    VerifiedFace,
)

__all__ = [
    "FaceSearch",
    "FaceDetector",
    "FaceEmbedder",
    "FaceAnnotator",
    "Gallery",
    "IndexParams",
    "DTYPES",
    "open_gallery",
    "LoadedImage",
    "load_image",
    "image_from_bytes",
    "given",
    "name_for",
    "Threshold",
    "default_threshold",
    "most_prominent",
    "Faces",
    "FaceMatch",
    "Candidate",
    "ImageResult",
    "EnrollReport",
    "Person",
    "FaceInfo",
    "RenameResult",
    "Skip",
    "ScanReport",
    "Cluster",
    "ClusterReport",
    "NamedCluster",
    "PhotoHit",
    "Verification",
    "VerifiedFace",
    "FaceSearchError",
    "InputError",
    "ImageError",
    "NoFaceError",
    "PersonNotFoundError",
    "FaceNotFoundError",
    "GalleryError",
    "ModelMismatchError",
    "WeightsError",
]
