"""The gallery database (SQLite): people, their faces and embeddings, and settings.

It is the source of truth. A face's row id is its label in the HNSW index, so the index can
always be rebuilt from here. Each write runs in one transaction and bumps ``generation``, which
lets the index file tell whether it reflects the latest write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import GalleryError, ModelMismatchError, PersonNotFoundError
from ..types import FaceRecord, Person
from .scoring import unit_template

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- the face's label in the HNSW index
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    source_path TEXT NOT NULL,
    image_sha256 TEXT NOT NULL UNIQUE,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    score REAL NOT NULL,
    embedding BLOB NOT NULL,                -- float32 little-endian, unit norm
    model_id TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_person ON faces(person_id);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
            self._check_schema()
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

    def _check_schema(self) -> None:
        version = self.get_meta("schema_version")
        if version is None:
            raise GalleryError(f"{self.path}: not a facesearch gallery (no schema version)")
        if int(version) > SCHEMA_VERSION:
            raise GalleryError(
                f"{self.path}: gallery schema {version} is newer than this facesearch ({SCHEMA_VERSION})"
            )

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
        """Insert faces (creating people as needed) in one transaction; returns their labels."""
        ids: list[int] = []
        now = _now()
        with self.transaction() as db:
            person_ids: dict[str, int] = {}
            for r in records:
                if r.person not in person_ids:
                    db.execute(
                        "INSERT OR IGNORE INTO people (name, created) VALUES (?, ?)",
                        (r.person, now),
                    )
                    person_ids[r.person] = db.execute(
                        "SELECT id FROM people WHERE name = ?", (r.person,)
                    ).fetchone()[0]
                cur = db.execute(
                    "INSERT INTO faces (person_id, source_path, image_sha256, x1, y1, x2, y2, score,"
                    " embedding, model_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        person_ids[r.person],
                        r.source_path,
                        r.image_sha256,
                        *(float(v) for v in r.box),
                        float(r.score),
                        np.ascontiguousarray(r.embedding, dtype="<f4").tobytes(),
                        model_id,
                        now,
                    ),
                )
                ids.append(int(cur.lastrowid))  # type: ignore[arg-type]
        return ids

    def owner_of_hash(self, sha256: str) -> str | None:
        """Name of the person a photo with this content hash is enrolled under, if any."""
        row = self.db.execute(
            "SELECT p.name FROM faces f JOIN people p ON p.id = f.person_id WHERE f.image_sha256 = ?",
            (sha256,),
        ).fetchone()
        return None if row is None else row[0]

    def remove_person(self, name: str) -> list[int]:
        """Delete a person and their faces; returns the labels of the removed faces."""
        with self.transaction() as db:
            row = db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise PersonNotFoundError(f"no person named {name!r} in the gallery")
            ids = [r[0] for r in db.execute("SELECT id FROM faces WHERE person_id = ?", (row[0],))]
            db.execute("DELETE FROM people WHERE id = ?", (row[0],))
        return ids

    def people(self) -> list[Person]:
        rows = self.db.execute(
            "SELECT p.id, p.name, COUNT(f.id), p.created FROM people p"
            " LEFT JOIN faces f ON f.person_id = p.id GROUP BY p.id ORDER BY p.name"
        ).fetchall()
        return [Person(id=r[0], name=r[1], faces=r[2], created=r[3]) for r in rows]

    def count_faces(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def count_people(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM people").fetchone()[0])

    def face_ids(self) -> np.ndarray:
        rows = self.db.execute("SELECT id FROM faces ORDER BY id").fetchall()
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
        """(labels, embeddings) in chunks, for all faces or the given labels."""
        if face_ids is None:
            last = -1
            while True:
                rows = self.db.execute(
                    "SELECT id, embedding FROM faces WHERE id > ? ORDER BY id LIMIT ?",
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
        """Every face as a ``FaceRecord`` (embedding as stored), in label order, in chunks."""
        last = -1
        while True:
            rows = self.db.execute(
                "SELECT f.id, p.name, f.source_path, f.image_sha256, f.x1, f.y1, f.x2, f.y2,"
                " f.score, f.embedding FROM faces f JOIN people p ON p.id = f.person_id"
                " WHERE f.id > ? ORDER BY f.id LIMIT ?",
                (last, chunk),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [
                FaceRecord(
                    r[1], r[2], r[3], (r[4], r[5], r[6], r[7]), r[8], np.frombuffer(r[9], "<f4")
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
