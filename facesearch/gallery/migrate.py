"""Copy a gallery between backends (a directory and a PostgreSQL database, either way).

Every person and face (unassigned faces too) is copied with its embedding and thumbnail as
stored: nothing is re-embedded, so the copy answers searches as the original does. Faces already
in the destination (same photo hash, same person or both unassigned) are skipped, so an
interrupted migration finishes when run again. At the end the two galleries must hold the same
numbers of people and faces.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..config import display_location
from ..errors import GalleryError
from .base import GalleryBackend


@dataclass
class MigrateReport:
    """What a migration did: faces copied, faces already there, and the final counts."""

    destination: str = ""  # fit to print (a URL without its password)
    copied: int = 0
    skipped: int = 0
    people: int = 0
    faces: int = 0


def migrate(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    model_id: str,
    dim: int,
    batch: int = 500,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    subspace: Callable[[], np.ndarray | None] | None = None,
) -> MigrateReport:
    """Copy every person and face of ``source`` into ``destination`` (created if needed).

    Each batch of ``batch`` faces is one transaction in the destination. GalleryError if a photo
    is enrolled under different people in the two galleries, or if the counts differ at the end.
    ``subspace``: as for ``open_gallery``, for a destination gallery created here, where the
    source has no basis of its own to pass on.
    """
    src_name, dst_name = display_location(source), display_location(destination)
    if os.fspath(source) == os.fspath(destination):
        raise GalleryError(f"{src_name}: source and destination are the same gallery")
    report = MigrateReport(destination=dst_name)
    from . import open_gallery  # the package's, which imports this module

    with open_gallery(source, model_id, dim) as src:
        if src.count_photos():
            raise GalleryError(
                f"{src_name} holds a scanned photo library ({src.count_photos()} photos): "
                "migrate copies enrolled galleries only, for now; nothing was copied"
            )
        basis = src.basis  # the source's recorded basis, else the caller's (the model's)
        given = subspace if basis is None else (lambda: basis)
        with open_gallery(destination, model_id, dim, writable=True, subspace=given) as dst:
            if on_total:
                on_total(src.count_faces())
            with dst.bulk_load():
                _copy(src, dst, batch, report, progress)
            counts = (src.count_people(), src.count_faces())
            report.people, report.faces = dst.count_people(), dst.count_faces()
    if (report.people, report.faces) != counts:
        raise GalleryError(
            f"after copying, {dst_name} has {report.people} people and {report.faces} faces, "
            f"{src_name} {counts[0]} and {counts[1]}: the destination held other people or "
            "faces already (or the source changed meanwhile)"
        )
    return report


def _copy(
    src: GalleryBackend,
    dst: GalleryBackend,
    batch: int,
    report: MigrateReport,
    progress: Callable[[int], None] | None,
) -> None:
    src_name, dst_name = src.location, dst.location
    for chunk in src.export_faces(batch):
        new = []
        for record in chunk:
            there = dst.face_of_hash(record.image_sha256)
            if there is None:
                new.append(record)
            elif there.person == record.person:
                report.skipped += 1
            else:
                raise GalleryError(
                    f"{record.source_path}: {_as_whom(record.person)} in {src_name} "
                    f"but {_as_whom(there.person)} in {dst_name}; nothing more was copied"
                )
        dst.add(new)
        report.copied += len(new)
        if progress:
            progress(len(chunk))


def _as_whom(person: str | None) -> str:
    return "unassigned" if person is None else f"enrolled as {person!r}"
