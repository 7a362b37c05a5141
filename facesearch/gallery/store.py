"""The gallery database (SQLite): people, their faces and embeddings, library photos, settings.

It is the source of truth. A face's row id is its label in the HNSW index, so the index can
always be rebuilt from here; the index holds the faces of people, not the unassigned ones
(``person_id`` NULL). Each write runs in one transaction and bumps ``generation``, which lets the
index file tell whether it reflects the latest write.

Schema versions (``meta.schema_version``): 1, the first release; 2 made ``faces.person_id``
nullable (unassigned faces) and added ``faces.thumbnail`` (a small JPEG); 3 is the photo library:
a ``photos`` table (the scanned files: path, content hash, size, mtime), and on ``faces`` the
``photo_id`` it was found in, its ``kind`` ("enrolled" or "scanned"), a ``suggested_person_id``
(a scanned face close to someone, not yet theirs) and a ``cluster_id``; a ``rejections`` table
remembers which person a face was taken from, so it is never suggested to them again. Photo
hashes are unique among enrolled faces only (enroll stores one subject per photo; a scanned
photo has many faces). A writable open upgrades an older database in place, in one transaction;
a read-only open reads it as it is (no thumbnails before 2, no library before 3).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import (
    ClusterNotFoundError,
    FaceNotFoundError,
    GalleryError,
    InputError,
    ModelMismatchError,
    PersonNotFoundError,
)
from ..types import (
    FaceInfo,
    FaceRecord,
    LooseFaces,
    Person,
    RenameResult,
    ScannedPhoto,
    StoredPhoto,
)
from .scoring import unit_template

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
# a scanned face and an enrolled face of the same photo are one face when their boxes overlap so
CONVERT_IOU = 0.5


def _faces_ddl(table: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {table} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- the face's label in the HNSW index
    person_id INTEGER REFERENCES people(id) ON DELETE CASCADE,  -- NULL: unassigned
    source_path TEXT NOT NULL,
    image_sha256 TEXT NOT NULL,             -- unique among enrolled faces (index below)
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    score REAL NOT NULL,
    embedding BLOB NOT NULL,                -- float32 little-endian, unit norm
    model_id TEXT NOT NULL,
    created TEXT NOT NULL,
    thumbnail BLOB,                         -- a small JPEG of the face, or NULL
    photo_id INTEGER REFERENCES photos(id) ON DELETE SET NULL,  -- the library photo, if scanned
    kind TEXT NOT NULL DEFAULT 'enrolled' CHECK (kind IN ('enrolled', 'scanned')),
    suggested_person_id INTEGER REFERENCES people(id) ON DELETE SET NULL,
    cluster_id INTEGER                      -- NULL: in no cluster; -1: kept out of clustering
);"""


_PHOTOS_DDL = """CREATE TABLE IF NOT EXISTS photos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    scanned_at TEXT NOT NULL
);"""

# what schema 3 adds beside the faces table; all of it IF NOT EXISTS
_V3_EXTRAS = f"""
{_PHOTOS_DDL}
CREATE INDEX IF NOT EXISTS photos_path ON photos(path);
CREATE TABLE IF NOT EXISTS rejections (
    face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    created TEXT NOT NULL,
    PRIMARY KEY (face_id, person_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS faces_enrolled_photo ON faces(image_sha256)
    WHERE kind = 'enrolled';
CREATE INDEX IF NOT EXISTS faces_sha256 ON faces(image_sha256);
CREATE INDEX IF NOT EXISTS faces_photo ON faces(photo_id);
CREATE INDEX IF NOT EXISTS faces_cluster ON faces(cluster_id) WHERE cluster_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS faces_suggested ON faces(suggested_person_id)
    WHERE suggested_person_id IS NOT NULL;
"""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);
{_faces_ddl("faces")}
CREATE INDEX IF NOT EXISTS faces_person ON faces(person_id);
"""

# the columns of a v1 faces table, all kept by the upgrades
_V1_FACE_COLUMNS = (
    "id, person_id, source_path, image_sha256, x1, y1, x2, y2, score, embedding, model_id, created"
)
# a FaceInfo from "faces f LEFT JOIN people p"; {thumb} is f.thumbnail, or NULL before schema 2;
# {library} the kind, suggested person's name and cluster (constants before schema 3)
_INFO_COLUMNS = (
    "f.id, p.name, f.source_path, f.x1, f.y1, f.x2, f.y2, f.score, f.created, {thumb} IS NOT NULL,"
    " {library}"
)
_LIBRARY_COLUMNS = "f.kind, s.name, f.cluster_id"
_NO_LIBRARY = "'enrolled', NULL, NULL"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _info(row: Sequence) -> FaceInfo:
    return FaceInfo(
        id=int(row[0]),
        person=row[1],
        source_path=row[2],
        box=(float(row[3]), float(row[4]), float(row[5]), float(row[6])),
        score=float(row[7]),
        added=row[8],
        has_thumbnail=bool(row[9]),
        kind=row[10],
        suggested=row[11],
        cluster=None if row[12] is None else int(row[12]),
    )


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``[x1, y1, x2, y2]`` boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _chunks(ids: Sequence[int], size: int = 500) -> Iterator[list[int]]:
    """Ids in runs short enough for one ``IN (?, ...)`` (SQLite limits the parameters)."""
    ids = [int(i) for i in ids]
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


class GalleryStore:
    """SQLite access for one gallery database file."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        # check_same_thread=False: one connection may serve a server's worker threads in turn;
        # FaceSearch never lets two threads use it at once.
        try:
            if readonly:
                uri = f"{path.resolve().as_uri()}?mode=ro"
                self.db = sqlite3.connect(
                    uri, uri=True, isolation_level=None, check_same_thread=False
                )
            else:
                self.db = sqlite3.connect(
                    str(path), isolation_level=None, timeout=30, check_same_thread=False
                )
            self.db.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                self.db.executescript(_SCHEMA)
                self._init_meta()
            version = self._check_schema()
            if version < SCHEMA_VERSION and not readonly:
                self._upgrade(version)
                version = SCHEMA_VERSION
            elif not readonly:
                self.db.executescript(_V3_EXTRAS)  # a new gallery: the library's tables
            self.version = version
            self._thumb = "f.thumbnail" if self._has_column("faces", "thumbnail") else "NULL"
            #: whether the database has the photo library (schema 3)
            self.library = version >= 3
            library = _LIBRARY_COLUMNS if self.library else _NO_LIBRARY
            self._select_info = (
                f"SELECT {_INFO_COLUMNS.format(thumb=self._thumb, library=library)}"
                " FROM faces f LEFT JOIN people p ON p.id = f.person_id"
                + (" LEFT JOIN people s ON s.id = f.suggested_person_id" if self.library else "")
            )
            # enroll's photo-level dedupe counts enrolled faces only (not scanned ones)
            self._enrolled = "f.kind = 'enrolled'" if self.library else "1 = 1"
        except sqlite3.DatabaseError as err:
            raise GalleryError(f"{path}: cannot open gallery database ({err})") from err

    def close(self) -> None:
        self.db.close()

    def _init_meta(self) -> None:
        with self.transaction(bump=False):
            self.db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")

    def _check_schema(self) -> int:
        version = self.get_meta("schema_version")
        if version is None:
            raise GalleryError(f"{self.path}: not a facesearch gallery (no schema version)")
        if int(version) > SCHEMA_VERSION:
            raise GalleryError(
                f"{self.path}: gallery schema {version} is newer than this facesearch ({SCHEMA_VERSION})"
            )
        return int(version)

    def _has_column(self, table: str, column: str) -> bool:
        return any(row[1] == column for row in self.db.execute(f"PRAGMA table_info({table})"))

    def _upgrade(self, version: int) -> None:
        """Bring a schema-``version`` database up to ``SCHEMA_VERSION`` in one transaction.

        ``faces`` is rebuilt (SQLite can drop neither a NOT NULL nor a UNIQUE) in the newest
        form: 1 -> 2 made ``person_id`` nullable and added ``thumbnail``; 2 -> 3 dropped the
        uniqueness of ``image_sha256`` (kept for enrolled faces by a partial index), added the
        library's columns, ``photos`` and ``rejections``. Ids, and the AUTOINCREMENT counter that
        keeps labels from being reused, stay as they were, so the index file stays valid.
        """
        log.info(
            "%s: upgrading the gallery schema from %d to %d", self.path, version, SCHEMA_VERSION
        )
        # foreign keys must be off while a table is replaced (and can only change outside a
        # transaction); the check inside the transaction makes sure nothing dangles
        self.db.execute("PRAGMA foreign_keys = OFF")
        try:
            with self.transaction(bump=False) as db:
                if int(self.get_meta("schema_version") or 0) != version:
                    return  # upgraded meanwhile
                if version < 3:
                    row = db.execute(
                        "SELECT seq FROM sqlite_sequence WHERE name = 'faces'"
                    ).fetchone()
                    columns = _V1_FACE_COLUMNS + (", thumbnail" if version >= 2 else "")
                    db.execute(_PHOTOS_DDL)  # faces refer to it
                    db.execute(_faces_ddl("faces_v3"))
                    db.execute(f"INSERT INTO faces_v3 ({columns}) SELECT {columns} FROM faces")
                    db.execute("DROP TABLE faces")
                    db.execute("ALTER TABLE faces_v3 RENAME TO faces")
                    db.execute("CREATE INDEX IF NOT EXISTS faces_person ON faces(person_id)")
                    for statement in _V3_EXTRAS.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    if row is not None:
                        db.execute("DELETE FROM sqlite_sequence WHERE name = 'faces'")
                        db.execute(
                            "INSERT INTO sqlite_sequence (name, seq) VALUES ('faces', ?)", row
                        )
                if db.execute("PRAGMA foreign_key_check").fetchone() is not None:
                    raise GalleryError(
                        f"{self.path}: the gallery database has faces of unknown people; "
                        "nothing was changed"
                    )
                db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
                )
        finally:
            self.db.execute("PRAGMA foreign_keys = ON")

    # -- transactions and settings -------------------------------------------------------------

    class _Tx:
        def __init__(self, store: GalleryStore, bump: bool) -> None:
            self.store, self.bump = store, bump

        def __enter__(self) -> sqlite3.Connection:
            self.store.db.execute("BEGIN IMMEDIATE")
            return self.store.db

        def __exit__(self, exc_type, exc, tb) -> None:
            db = self.store.db
            if exc_type is None:
                if self.bump:
                    db.execute(
                        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
                    )
                db.execute("COMMIT")
            else:
                db.execute("ROLLBACK")

    def transaction(self, bump: bool = True) -> GalleryStore._Tx:
        """One atomic write; ``bump`` marks the index as needing to catch up."""
        if self.readonly:
            raise GalleryError(f"{self.path}: gallery is open read-only")
        return GalleryStore._Tx(self, bump)

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, values: dict[str, str | None]) -> None:
        with self.transaction(bump=False) as db:
            for key, value in values.items():
                if value is None:
                    db.execute("DELETE FROM meta WHERE key = ?", (key,))
                else:
                    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    def ensure_model(self, model_id: str, dim: int) -> None:
        """Record the embedding model on first use; refuse a gallery made with another one."""
        stored_model, stored_dim = self.get_meta("model_id"), self.get_meta("embedding_dim")
        if stored_model is None:
            if self.count_faces() and not self.readonly:
                raise GalleryError(f"{self.path}: gallery has faces but no model id")
            if not self.readonly:
                self.set_meta({"model_id": model_id, "embedding_dim": str(dim)})
            return
        if stored_model != model_id or int(stored_dim or 0) != dim:
            raise ModelMismatchError(
                f"{self.path}: gallery was built with {stored_model} ({stored_dim}-d), "
                f"not {model_id} ({dim}-d); its vectors cannot be compared: use another "
                "--gallery, or enroll the photos again into a new one"
            )

    # -- faces and people ----------------------------------------------------------------------

    def add_faces(self, records: Sequence[FaceRecord], model_id: str) -> list[int]:
        """Insert faces (creating people as needed; ``person`` None: unassigned) in one
        transaction; returns their labels. GalleryError, nothing written, if a photo is stored
        already."""
        ids: list[int] = []
        now = _now()
        try:
            with self.transaction() as db:
                person_ids: dict[str | None, int | None] = {None: None}
                for r in records:
                    if r.person is not None and r.person not in person_ids:
                        person_ids[r.person] = self._person_id(r.person, now, create=True)
                    taken = (
                        self._take_over_scanned(r, person_ids[r.person]) if self.library else None
                    )
                    if taken is not None:
                        ids.append(taken)
                        continue
                    cur = db.execute(
                        "INSERT INTO faces (person_id, source_path, image_sha256, x1, y1, x2, y2,"
                        " score, embedding, model_id, created, thumbnail)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            person_ids[r.person],
                            r.source_path,
                            r.image_sha256,
                            *(float(v) for v in r.box),
                            float(r.score),
                            np.ascontiguousarray(r.embedding, dtype="<f4").tobytes(),
                            model_id,
                            now,
                            None if r.thumbnail is None else bytes(r.thumbnail),
                        ),
                    )
                    ids.append(int(cur.lastrowid))  # type: ignore[arg-type]
        except sqlite3.IntegrityError as err:
            raise GalleryError(
                f"{self.path}: a photo in this batch is already stored; nothing was written ({err})"
            ) from err
        return ids

    def _take_over_scanned(self, r: FaceRecord, person_id: int | None) -> int | None:
        """Enrolling a face that a scan found already (same photo, overlapping box): that face
        becomes the enrolled one, keeping its id and photo (inside a transaction)."""
        if person_id is None:
            return None
        for fid, before, *box in self.db.execute(
            "SELECT id, person_id, x1, y1, x2, y2 FROM faces"
            " WHERE image_sha256 = ? AND kind = 'scanned'",
            (r.image_sha256,),
        ).fetchall():
            if iou(box, r.box) >= CONVERT_IOU:
                self.db.execute(
                    "UPDATE faces SET person_id = ?, kind = 'enrolled', x1 = ?, y1 = ?, x2 = ?,"
                    " y2 = ?, score = ?, embedding = ?, thumbnail = coalesce(?, thumbnail),"
                    " suggested_person_id = NULL, cluster_id = NULL WHERE id = ?",
                    (
                        person_id,
                        *(float(v) for v in r.box),
                        float(r.score),
                        np.ascontiguousarray(r.embedding, dtype="<f4").tobytes(),
                        None if r.thumbnail is None else bytes(r.thumbnail),
                        int(fid),
                    ),
                )
                self.db.execute(
                    "DELETE FROM rejections WHERE face_id = ? AND person_id = ?",
                    (int(fid), person_id),
                )
                if before is not None and before != person_id:
                    self._drop_empty_people([before])
                return int(fid)
        return None

    def _person_id(self, name: str, now: str, create: bool) -> int:
        """The id of the person ``name`` (inside a transaction); created if new with ``create``,
        else PersonNotFoundError."""
        if create:
            self.db.execute(
                "INSERT OR IGNORE INTO people (name, created) VALUES (?, ?)", (name, now)
            )
        row = self.db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise PersonNotFoundError(f"no person named {name!r} in the gallery")
        return int(row[0])

    def _drop_empty_people(self, person_ids: Sequence[int]) -> None:
        """Delete those of these people who have no faces left (inside a transaction)."""
        for part in _chunks(person_ids):
            marks = ",".join("?" * len(part))
            self.db.execute(
                f"DELETE FROM people WHERE id IN ({marks})"
                " AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.person_id = people.id)",
                part,
            )

    def remove_face(self, face_id: int) -> tuple[FaceInfo, int | None]:
        """Delete one face, and its person if it was their last; returns what it was and its
        person's id (None: it was unassigned)."""
        with self.transaction() as db:
            info, person_id = self._face(int(face_id))
            db.execute("DELETE FROM faces WHERE id = ?", (info.id,))
            if person_id is not None:
                self._drop_empty_people([person_id])
        return info, person_id

    def _face(self, face_id: int) -> tuple[FaceInfo, int | None]:
        row = self.db.execute(
            self._select_info.replace("SELECT ", "SELECT f.person_id, ", 1) + " WHERE f.id = ?",
            (face_id,),
        ).fetchone()
        if row is None:
            raise FaceNotFoundError(f"no face with id {face_id} in the gallery")
        return _info(row[1:]), row[0]

    def assign_faces(self, face_ids: Sequence[int], name: str) -> tuple[list[int], list[int]]:
        """Give the faces to ``name`` (created if new) in one transaction; people left without
        faces go. Returns (labels that changed owner, those of them that were unassigned)."""
        ids = sorted({int(i) for i in face_ids})
        moved: list[int] = []
        newly: list[int] = []
        with self.transaction() as db:
            owners: dict[int, int | None] = {}
            for part in _chunks(ids):
                marks = ",".join("?" * len(part))
                owners.update(
                    db.execute(f"SELECT id, person_id FROM faces WHERE id IN ({marks})", part)
                )
            missing = [i for i in ids if i not in owners]
            if missing:
                shown = ", ".join(str(i) for i in missing[:5]) + (
                    ", ..." if len(missing) > 5 else ""
                )
                raise FaceNotFoundError(
                    f"no face with id {shown} in the gallery; nothing was changed"
                )
            if not ids:
                return [], []
            person_id = self._person_id(name, _now(), create=True)
            moved = [i for i in ids if owners[i] != person_id]
            newly = [i for i in moved if owners[i] is None]
            self._give(moved, person_id)
            self._drop_empty_people(sorted({p for p in owners.values() if p is not None}))
        return moved, newly

    def _give(self, face_ids: Sequence[int], person_id: int) -> None:
        """Make the faces ``person_id``'s (inside a transaction): out of any cluster, no longer
        a suggestion, and no longer rejected for them (the user said so)."""
        for part in _chunks(face_ids):
            marks = ",".join("?" * len(part))
            if self.library:
                self.db.execute(
                    "UPDATE faces SET person_id = ?, suggested_person_id = NULL, cluster_id = NULL"
                    f" WHERE id IN ({marks})",
                    [person_id, *part],
                )
                self.db.execute(
                    f"DELETE FROM rejections WHERE person_id = ? AND face_id IN ({marks})",
                    [person_id, *part],
                )
            else:
                self.db.execute(
                    f"UPDATE faces SET person_id = ? WHERE id IN ({marks})", [person_id, *part]
                )

    def rename_person(self, old: str, new: str) -> RenameResult:
        """Rename ``old`` to ``new``, or merge ``old`` into ``new`` if that is someone already."""
        with self.transaction() as db:
            old_id = self._person_id(old, "", create=False)
            faces = int(
                db.execute("SELECT COUNT(*) FROM faces WHERE person_id = ?", (old_id,)).fetchone()[
                    0
                ]
            )
            if new == old:
                return RenameResult(old, new, merged=False, faces=faces)
            row = db.execute("SELECT id FROM people WHERE name = ?", (new,)).fetchone()
            if row is None:
                db.execute("UPDATE people SET name = ? WHERE id = ?", (new, old_id))
                return RenameResult(old, new, merged=False, faces=faces)
            db.execute("UPDATE faces SET person_id = ? WHERE person_id = ?", (row[0], old_id))
            if self.library:  # suggestions and rejections follow the person
                db.execute(
                    "UPDATE faces SET suggested_person_id = ? WHERE suggested_person_id = ?",
                    (row[0], old_id),
                )
                db.execute(
                    "INSERT OR IGNORE INTO rejections (face_id, person_id, created)"
                    " SELECT face_id, ?, created FROM rejections WHERE person_id = ?",
                    (row[0], old_id),
                )
            db.execute("DELETE FROM people WHERE id = ?", (old_id,))
        return RenameResult(old, new, merged=True, faces=faces)

    def owner_of_hash(self, sha256: str) -> str | None:
        """Name of the person a photo with this content hash is enrolled under, if any."""
        row = self.db.execute(
            "SELECT p.name FROM faces f JOIN people p ON p.id = f.person_id"
            f" WHERE f.image_sha256 = ? AND {self._enrolled}",
            (sha256,),
        ).fetchone()
        return None if row is None else row[0]

    def face_of_hash(self, sha256: str) -> FaceInfo | None:
        """The stored face of the photo with this content hash (assigned or not), if any."""
        row = self.db.execute(
            self._select_info + " WHERE f.image_sha256 = ? ORDER BY f.id LIMIT 1", (sha256,)
        ).fetchone()
        return None if row is None else _info(row)

    def faces(
        self,
        person: str | None = None,
        unassigned: bool = False,
        cluster: int | None = None,
        suggested: str | None = None,
    ) -> list[FaceInfo]:
        """Faces by id: ``person``'s, the unassigned ones, those of a ``cluster``, those
        ``suggested`` for a person, or all."""
        if (person is not None) + unassigned + (cluster is not None) + (suggested is not None) > 1:
            raise InputError(
                "faces of a person, the unassigned ones, a cluster's or suggestions: one at a time"
            )
        query = self._select_info
        params: tuple = ()
        if person is not None:
            query += " WHERE f.person_id = ?"
            params = (self._person_id(person, "", create=False),)
        elif unassigned:
            query += " WHERE f.person_id IS NULL"
        elif cluster is not None:
            if not self.library:
                return []
            query += " WHERE f.cluster_id = ? AND f.person_id IS NULL"
            params = (int(cluster),)
        elif suggested is not None:
            pid = self._person_id(suggested, "", create=False)
            if not self.library:
                return []
            query += " WHERE f.suggested_person_id = ? AND f.person_id IS NULL"
            params = (pid,)
        return [_info(r) for r in self.db.execute(query + " ORDER BY f.id", params)]

    def thumbnail(self, face_id: int) -> bytes | None:
        row = self.db.execute(
            f"SELECT {self._thumb.removeprefix('f.')} FROM faces WHERE id = ?", (int(face_id),)
        ).fetchone()
        if row is None:
            raise FaceNotFoundError(f"no face with id {face_id} in the gallery")
        return None if row[0] is None else bytes(row[0])

    # -- the photo library ---------------------------------------------------------------------

    def _require_library(self) -> None:
        if not self.library:
            raise GalleryError(
                f"{self.path}: this gallery predates the photo library (schema {self.version}); "
                "open it for writing once (any write, e.g. facesearch scan) to upgrade it"
            )

    def photos(self) -> list[StoredPhoto]:
        """Every scanned photo, by id."""
        if not self.library:
            return []
        return [
            StoredPhoto(int(r[0]), r[1], r[2], int(r[3]), float(r[4]))
            for r in self.db.execute("SELECT id, path, sha256, size, mtime FROM photos ORDER BY id")
        ]

    def count_photos(self) -> int:
        if not self.library:
            return 0
        return int(self.db.execute("SELECT COUNT(*) FROM photos").fetchone()[0])

    def add_photos(self, photos: Sequence[ScannedPhoto], model_id: str) -> list[int]:
        """Record photos as scanned together with their faces, in one transaction; returns the
        faces' labels. A face that is already enrolled from the same photo (overlapping box)
        is not stored twice: the enrolled face is linked to the photo and its label returned."""
        self._require_library()
        ids: list[int] = []
        now = _now()
        try:
            with self.transaction() as db:
                people = {name: pid for pid, name in db.execute("SELECT id, name FROM people")}
                for photo in photos:
                    cur = db.execute(
                        "INSERT INTO photos (path, sha256, size, mtime, scanned_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (photo.path, photo.sha256, int(photo.size), float(photo.mtime), now),
                    )
                    photo_id = int(cur.lastrowid)  # type: ignore[arg-type]
                    enrolled = db.execute(
                        "SELECT id, x1, y1, x2, y2 FROM faces"
                        " WHERE image_sha256 = ? AND kind = 'enrolled'",
                        (photo.sha256,),
                    ).fetchall()
                    for r in photo.faces:
                        same = [e[0] for e in enrolled if iou(e[1:], r.box) >= CONVERT_IOU]
                        if same:
                            db.execute(
                                "UPDATE faces SET photo_id = ?, source_path = ? WHERE id = ?",
                                (photo_id, photo.path, same[0]),
                            )
                            ids.append(int(same[0]))
                            continue
                        cur = db.execute(
                            "INSERT INTO faces (person_id, source_path, image_sha256, x1, y1, x2,"
                            " y2, score, embedding, model_id, created, thumbnail, photo_id, kind,"
                            " suggested_person_id)"
                            " VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'scanned', ?)",
                            (
                                photo.path,
                                photo.sha256,
                                *(float(v) for v in r.box),
                                float(r.score),
                                np.ascontiguousarray(r.embedding, dtype="<f4").tobytes(),
                                model_id,
                                now,
                                None if r.thumbnail is None else bytes(r.thumbnail),
                                photo_id,
                                people.get(r.suggested) if r.suggested else None,
                            ),
                        )
                        ids.append(int(cur.lastrowid))  # type: ignore[arg-type]
        except sqlite3.IntegrityError as err:
            raise GalleryError(
                f"{self.path}: a photo in this batch is already scanned; nothing was written ({err})"
            ) from err
        return ids

    def remove_photos(self, photo_ids: Sequence[int]) -> tuple[list[int], list[int]]:
        """Forget photos that are gone: their scanned faces go (enrolled faces stay, unlinked),
        in one transaction. Returns (labels removed, those of them that were people's)."""
        self._require_library()
        removed: list[int] = []
        indexed: list[int] = []
        with self.transaction() as db:
            owners: set[int] = set()
            for part in _chunks(photo_ids):
                marks = ",".join("?" * len(part))
                for fid, pid in db.execute(
                    f"SELECT id, person_id FROM faces WHERE kind = 'scanned' AND photo_id IN ({marks})",
                    part,
                ).fetchall():
                    removed.append(int(fid))
                    if pid is not None:
                        indexed.append(int(fid))
                        owners.add(int(pid))
                db.execute(
                    f"DELETE FROM faces WHERE kind = 'scanned' AND photo_id IN ({marks})", part
                )
                db.execute(f"DELETE FROM photos WHERE id IN ({marks})", part)
            self._drop_empty_people(sorted(owners))
        return removed, indexed

    def move_photos(self, moves: Sequence[tuple[int, str, int, float]]) -> None:
        """Photos found at a new path (``(id, path, size, mtime)``): the photo and its faces
        follow, nothing else changes (one transaction)."""
        self._require_library()
        with self.transaction(bump=False) as db:
            for photo_id, path, size, mtime in moves:
                db.execute(
                    "UPDATE photos SET path = ?, size = ?, mtime = ? WHERE id = ?",
                    (path, int(size), float(mtime), int(photo_id)),
                )
                db.execute(
                    "UPDATE faces SET source_path = ? WHERE photo_id = ?", (path, int(photo_id))
                )

    def loose_faces(self) -> LooseFaces:
        """The faces of no person, with their embeddings, photos, clusters and suggestions."""
        rows = (
            self.db.execute(
                "SELECT id, embedding, coalesce(photo_id, -1), coalesce(cluster_id, 0),"
                " coalesce(suggested_person_id, 0) FROM faces WHERE person_id IS NULL ORDER BY id"
            ).fetchall()
            if self.library
            else []
        )
        dim = len(rows[0][1]) // 4 if rows else 0
        return LooseFaces(
            np.array([r[0] for r in rows], np.int64),
            np.stack([np.frombuffer(r[1], "<f4") for r in rows]).astype(np.float32)
            if rows
            else np.zeros((0, dim), np.float32),
            np.array([r[2] for r in rows], np.int64),
            np.array([r[3] for r in rows], np.int64),
            np.array([r[4] for r in rows], np.int64),
        )

    def set_suggestions(self, suggestions: dict[int, str]) -> int:
        """Suggest faces of no one for people (face id -> name), in one transaction; a face
        rejected for that person, or that someone has meanwhile, is left alone. Returns how
        many were set."""
        self._require_library()
        done = 0
        with self.transaction(bump=False) as db:
            people = {name: pid for pid, name in db.execute("SELECT id, name FROM people")}
            for face_id, name in suggestions.items():
                pid = people.get(name)
                if pid is None:
                    continue
                cur = db.execute(
                    "UPDATE faces SET suggested_person_id = ?, cluster_id = NULL"
                    " WHERE id = ? AND person_id IS NULL AND NOT EXISTS"
                    " (SELECT 1 FROM rejections r WHERE r.face_id = faces.id AND r.person_id = ?)",
                    (pid, int(face_id), pid),
                )
                done += cur.rowcount
        return done

    def rejections(self, face_ids: Sequence[int]) -> dict[int, set[str]]:
        """Who each face was taken from (``unassign``): never to be suggested to them again."""
        out: dict[int, set[str]] = {}
        if not self.library:
            return out
        for part in _chunks(face_ids):
            marks = ",".join("?" * len(part))
            for fid, name in self.db.execute(
                "SELECT r.face_id, p.name FROM rejections r JOIN people p ON p.id = r.person_id"
                f" WHERE r.face_id IN ({marks})",
                part,
            ):
                out.setdefault(int(fid), set()).add(name)
        return out

    def next_cluster_id(self) -> int:
        """The id a new cluster gets: never one used before."""
        if not self.library:
            return 1
        stored = int(self.get_meta("next_cluster_id") or 1)
        top = self.db.execute("SELECT max(cluster_id) FROM faces").fetchone()[0]
        return max(stored, int(top or 0) + 1)

    def set_clusters(self, clusters: dict[int, int | None]) -> None:
        """Store faces' cluster ids (face id -> cluster id, None for none, -1 kept out), in one
        transaction; faces someone has meanwhile are left alone."""
        self._require_library()
        with self.transaction(bump=False) as db:
            top = self.next_cluster_id()
            for face_id, cluster in clusters.items():
                db.execute(
                    "UPDATE faces SET cluster_id = ? WHERE id = ? AND person_id IS NULL",
                    (None if cluster is None else int(cluster), int(face_id)),
                )
                if cluster is not None and cluster >= top:
                    top = int(cluster) + 1
            db.execute("INSERT OR REPLACE INTO meta VALUES ('next_cluster_id', ?)", (str(top),))

    def assign_cluster(self, cluster: int, name: str) -> tuple[list[int], list[int]]:
        """Give a cluster's faces to ``name`` (created if new) in one transaction, except those
        once taken from ``name`` (``unassign``). Returns (labels given, labels kept out)."""
        self._require_library()
        with self.transaction() as db:
            ids = [
                int(r[0])
                for r in db.execute(
                    "SELECT id FROM faces WHERE cluster_id = ? AND person_id IS NULL ORDER BY id",
                    (int(cluster),),
                )
            ]
            if not ids or int(cluster) <= 0:
                raise ClusterNotFoundError(
                    f"no cluster with id {cluster} (see facesearch clusters)"
                )
            rejected = {
                int(r[0])
                for r in db.execute(
                    "SELECT r.face_id FROM rejections r JOIN people p ON p.id = r.person_id"
                    " JOIN faces f ON f.id = r.face_id WHERE p.name = ? AND f.cluster_id = ?",
                    (name, int(cluster)),
                )
            }
            given = [i for i in ids if i not in rejected]
            if given:
                self._give(given, self._person_id(name, _now(), create=True))
        return given, sorted(rejected)

    def unassign_face(self, face_id: int) -> FaceInfo:
        """Take a face from its person (remembered: it is never suggested to them again; their
        last face takes them too), or reject its suggestion, or (a face of no one in a cluster)
        keep it out of clustering; one transaction. Returns the face as it was."""
        self._require_library()
        with self.transaction() as db:
            info, person_id = self._face(int(face_id))
            if person_id is not None:
                db.execute(
                    "INSERT OR IGNORE INTO rejections VALUES (?, ?, ?)",
                    (info.id, person_id, _now()),
                )
                db.execute(
                    "UPDATE faces SET person_id = NULL, suggested_person_id = NULL,"
                    " cluster_id = NULL WHERE id = ?",
                    (info.id,),
                )
                self._drop_empty_people([person_id])
            elif info.suggested is not None:
                db.execute(
                    "INSERT OR IGNORE INTO rejections SELECT ?, suggested_person_id, ?"
                    " FROM faces WHERE id = ?",
                    (info.id, _now(), info.id),
                )
                db.execute("UPDATE faces SET suggested_person_id = NULL WHERE id = ?", (info.id,))
            elif info.cluster is not None and info.cluster > 0:
                db.execute("UPDATE faces SET cluster_id = -1 WHERE id = ?", (info.id,))
            else:
                raise InputError(
                    f"face {info.id} is nobody's, suggested for no one and in no cluster: "
                    "nothing to unassign"
                )
        return info

    def remove_person(self, name: str) -> list[int]:
        """Delete a person and their faces; returns the labels of the removed faces."""
        with self.transaction() as db:
            person_id = self._person_id(name, "", create=False)
            ids = [
                r[0] for r in db.execute("SELECT id FROM faces WHERE person_id = ?", (person_id,))
            ]
            db.execute("DELETE FROM people WHERE id = ?", (person_id,))
        return ids

    def people(self) -> list[Person]:
        rows = self.db.execute(
            "SELECT p.id, p.name, COUNT(f.id), p.created FROM people p"
            " LEFT JOIN faces f ON f.person_id = p.id GROUP BY p.id ORDER BY p.name"
        ).fetchall()
        return [Person(id=r[0], name=r[1], faces=r[2], created=r[3]) for r in rows]

    def count_faces(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def count_unassigned(self) -> int:
        return int(
            self.db.execute("SELECT COUNT(*) FROM faces WHERE person_id IS NULL").fetchone()[0]
        )

    def count_indexed(self) -> int:
        """The faces the index holds: those of people."""
        return int(
            self.db.execute("SELECT COUNT(*) FROM faces WHERE person_id IS NOT NULL").fetchone()[0]
        )

    def count_people(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM people").fetchone()[0])

    def face_ids(self) -> np.ndarray:
        """The labels the index should hold: the faces of people, in order."""
        rows = self.db.execute(
            "SELECT id FROM faces WHERE person_id IS NOT NULL ORDER BY id"
        ).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def owners(self, face_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        """Map face labels to (person id, name); labels not in the database are left out."""
        out: dict[int, tuple[int, str]] = {}
        ids = [int(i) for i in face_ids]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for fid, pid, name in self.db.execute(
                f"SELECT f.id, p.id, p.name FROM faces f JOIN people p ON p.id = f.person_id"
                f" WHERE f.id IN ({marks})",
                chunk,
            ):
                out[fid] = (pid, name)
        return out

    def embeddings(
        self, face_ids: Sequence[int] | None = None, chunk: int = 10_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(labels, embeddings) in chunks: of the faces of people (those the index holds), or
        of the given labels."""
        if face_ids is None:
            last = -1
            while True:
                rows = self.db.execute(
                    "SELECT id, embedding FROM faces WHERE id > ? AND person_id IS NOT NULL"
                    " ORDER BY id LIMIT ?",
                    (last, chunk),
                ).fetchall()
                if not rows:
                    return
                last = rows[-1][0]
                yield _unpack(rows)
        else:
            ids = [int(i) for i in face_ids]
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = self.db.execute(
                    f"SELECT id, embedding FROM faces WHERE id IN ({marks}) ORDER BY id", part
                ).fetchall()
                if rows:
                    yield _unpack(rows)

    def face_records(self, chunk: int = 1000) -> Iterator[list[FaceRecord]]:
        """Every face (unassigned ones too) as a ``FaceRecord`` (embedding and thumbnail as
        stored), in label order, in chunks."""
        last = -1
        while True:
            rows = self.db.execute(
                "SELECT f.id, p.name, f.source_path, f.image_sha256, f.x1, f.y1, f.x2, f.y2,"
                f" f.score, f.embedding, {self._thumb}"
                " FROM faces f LEFT JOIN people p ON p.id = f.person_id"
                " WHERE f.id > ? ORDER BY f.id LIMIT ?",
                (last, chunk),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [
                FaceRecord(
                    r[1],
                    r[2],
                    r[3],
                    (r[4], r[5], r[6], r[7]),
                    r[8],
                    np.frombuffer(r[9], "<f4"),
                    None if r[10] is None else bytes(r[10]),
                )
                for r in rows
            ]

    def person_templates(self, person_ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Per person, the normalised mean of their face embeddings (their template)."""
        sums: dict[int, np.ndarray] = {}
        ids = [int(i) for i in person_ids]
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            for pid, blob in self.db.execute(
                f"SELECT person_id, embedding FROM faces WHERE person_id IN ({marks})", part
            ):
                vec = np.frombuffer(blob, dtype="<f4").astype(np.float64)
                sums[pid] = sums[pid] + vec if pid in sums else vec
        return {pid: unit_template(v) for pid, v in sums.items()}


def _unpack(rows: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.array([r[0] for r in rows], dtype=np.int64)
    vectors = np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows]).astype(np.float32)
    return labels, vectors
