"""A gallery in a PostgreSQL database with pgvector: many readers, any number of servers.

Tables (created, and later migrated, by this module; ``meta`` holds ``schema_version``):

- ``meta(key, value)``: schema version, model id and embedding size, ``generation`` (bumped by
  every write, so any process can tell that the gallery changed), threshold, index parameters.
- ``people(id, name unique, created, template_sum)``: ``template_sum`` is the sum of the
  person's face embeddings, recomputed in the transaction of every write that touches them;
  normalised it is their template (``scoring.score_people``).
- ``faces(id, person_id -> people ON DELETE CASCADE (NULL: unassigned), source, sha256
  unique, box, score, embedding vector(dim), created, thumbnail bytea, coords vector)`` with an
  HNSW index of the faces of people (``WHERE person_id IS NOT NULL``: search, which scores
  only people, never wades through unassigned faces) with ``vector_ip_ops``: the vectors are
  unit length, so the inner product is the cosine similarity; measured on 10k faces
  ``vector_cosine_ops`` answered as fast, 3.5 vs 3.6 ms for 64 neighbours.
- ``photos(id, path, sha256 unique, size, mtime, scanned_at)``: the library photos ``scan``
  has seen; a scanned face has ``photo_id``, ``kind`` ('enrolled' or 'scanned'), and while it is
  no one's a ``suggested_person_id`` and a ``cluster_id``. ``rejections(face_id, person_id)``:
  faces taken from a person, never suggested to them again.

The index is on ``embedding``, or (``IndexParams.project``, the default for a new gallery when
the model has a subspace: ``FaceEmbedder.subspace``) on ``coords``, each face's coordinates in
the basis of the 64-d subspace FaceNet's embeddings lie in, recorded in ``meta`` like a
directory gallery's. Those give the same inner products to within a few millionths, and at 100k
faces the index alone answered twice as fast, built in half the time and took under a third of
the space (``benchmarks/index_bench.py --methods pgvector pgvector-64d``); a search through the
library took 8.1 against 11.9 ms (docs/postgres.md). Every write of an embedding writes its
coordinates while the gallery has a basis; a face outside the subspace (``index.MAX_RESIDUAL``)
has none and is searched exactly beside the index, and each hit is scored with its full vector.

Schema versions: 1, the first release; 2 made ``faces.person_id`` nullable, added
``faces.thumbnail`` and made the HNSW index partial (rebuilt once by the upgrade); 3 is the photo
library (the tables and columns above; a photo's hash is unique among enrolled faces only); 4
added ``faces.coords`` (empty until ``reindex`` projects an upgraded gallery). A writable open
upgrades an older gallery in one transaction; a read-only open reads it as it is.

Every write is one transaction that first takes a transaction-level advisory lock, so writers
from any number of processes queue instead of deadlocking, and a failed batch leaves nothing
behind. A search batch is one statement and one round trip: the nearest faces of every query
(``hnsw.ef_search`` from ``index.auto_ef``, set for the session just before it in the same
pipeline), their owners and the owners' templates.

psycopg and pgvector are imported only when a ``postgresql://`` gallery is opened
(``pip install 'facesearch[postgres]'``).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import display_location
from ..errors import (
    ClusterNotFoundError,
    FaceNotFoundError,
    GalleryError,
    InputError,
    ModelMismatchError,
    PersonNotFoundError,
)
from ..threshold import Threshold, default_threshold, given
from ..types import (
    Candidate,
    FaceInfo,
    FaceRecord,
    LooseFaces,
    Person,
    RenameResult,
    ScannedPhoto,
    StoredPhoto,
)
from .index import (
    SUBSPACE_KEY,
    IndexParams,
    auto_ef,
    basis_to_text,
    outside_subspace,
    recorded_basis,
)
from .scoring import candidate_faces, refine_candidates, score_people, unit_template

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
PARAMS_KEY = "index_params"
INDEX_NAME = "faces_embedding"  # on embedding, or on coords when projected
# pg_advisory_xact_lock key taken by every write ("facesear" in ASCII); locks are per database
LOCK_KEY = 0x6661636573656172
INSTALL_HINT = "pip install 'facesearch[postgres]'"
EXTENSION_HINT = (
    "run CREATE EXTENSION vector; in that database as a superuser, "
    "or use a server with pgvector (e.g. the pgvector/pgvector Docker image)"
)
# HNSW build parameters when none are given: pgvector's own defaults. Each insert into the graph
# costs the server about ef_construction distance computations per layer: with m=32,
# ef_construction=128 (the directory backend's defaults) 10k faces went in at 47 faces/s on a
# 2-core VM, with these at 156 faces/s, recall of the nearest person 1.000 either way
# (benchmarks/pg_bench.py --n 10000).
DEFAULT_PARAMS = IndexParams(connectivity=16, expansion_add=64)
# pgvector's limits on HNSW build parameters
M_RANGE, EF_CONSTRUCTION_RANGE = (2, 100), (4, 1000)
NO_LIMIT = 1 << 62


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _import_psycopg() -> Any:
    try:
        import pgvector.psycopg  # noqa: F401
        import psycopg
    except ImportError as err:
        raise GalleryError(
            f"a postgresql:// gallery needs psycopg and pgvector ({err.name} is missing): "
            f"{INSTALL_HINT}"
        ) from err
    return psycopg


def _schema_v1(dim: int) -> list[Any]:
    from psycopg import sql

    # the only values composed into DDL are integers this module checked; names are fixed
    dim_sql = sql.SQL(str(int(dim)))
    return [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS people ("
            " id bigserial PRIMARY KEY,"
            " name text NOT NULL UNIQUE,"
            " created timestamptz NOT NULL DEFAULT now(),"
            " template_sum vector({dim}))"
        ).format(dim=dim_sql),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS faces ("
            " id bigserial PRIMARY KEY,"
            " person_id bigint NOT NULL REFERENCES people(id) ON DELETE CASCADE,"
            " source text NOT NULL,"
            " sha256 text NOT NULL UNIQUE,"
            " box real[] NOT NULL,"
            " score real NOT NULL,"
            " embedding vector({dim}) NOT NULL,"
            " created timestamptz NOT NULL DEFAULT now())"
        ).format(dim=dim_sql),
        sql.SQL("CREATE INDEX IF NOT EXISTS faces_person ON faces (person_id)"),
        # the HNSW index is created after the last step (_create_schema)
    ]


def _schema_v2() -> list[Any]:
    """Unassigned faces, thumbnails; the HNSW index goes, to come back partial."""
    from psycopg import sql

    return [
        sql.SQL("ALTER TABLE faces ALTER COLUMN person_id DROP NOT NULL"),
        sql.SQL("ALTER TABLE faces ADD COLUMN IF NOT EXISTS thumbnail bytea"),
        sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(INDEX_NAME)),
    ]


def _schema_v3() -> list[Any]:
    """The photo library: photos, the faces' library columns, rejections."""
    from psycopg import sql

    return [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS photos ("
            " id bigserial PRIMARY KEY,"
            " path text NOT NULL,"
            " sha256 text NOT NULL UNIQUE,"
            " size bigint NOT NULL,"
            " mtime double precision NOT NULL,"
            " scanned_at timestamptz NOT NULL DEFAULT now())"
        ),
        sql.SQL("CREATE INDEX IF NOT EXISTS photos_path ON photos (path)"),
        sql.SQL("ALTER TABLE faces DROP CONSTRAINT IF EXISTS faces_sha256_key"),
        sql.SQL(
            "ALTER TABLE faces"
            " ADD COLUMN IF NOT EXISTS photo_id bigint REFERENCES photos(id) ON DELETE SET NULL,"
            " ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'enrolled'"
            "  CHECK (kind IN ('enrolled', 'scanned')),"
            " ADD COLUMN IF NOT EXISTS suggested_person_id bigint"
            "  REFERENCES people(id) ON DELETE SET NULL,"
            " ADD COLUMN IF NOT EXISTS cluster_id bigint"
        ),
        sql.SQL(
            "CREATE UNIQUE INDEX IF NOT EXISTS faces_enrolled_sha256 ON faces (sha256)"
            " WHERE kind = 'enrolled'"
        ),
        sql.SQL("CREATE INDEX IF NOT EXISTS faces_sha256 ON faces (sha256)"),
        sql.SQL("CREATE INDEX IF NOT EXISTS faces_photo ON faces (photo_id)"),
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS faces_cluster ON faces (cluster_id)"
            " WHERE cluster_id IS NOT NULL"
        ),
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS faces_suggested ON faces (suggested_person_id)"
            " WHERE suggested_person_id IS NOT NULL"
        ),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS rejections ("
            " face_id bigint NOT NULL REFERENCES faces(id) ON DELETE CASCADE,"
            " person_id bigint NOT NULL REFERENCES people(id) ON DELETE CASCADE,"
            " created timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (face_id, person_id))"
        ),
    ]


def _schema_v4() -> list[Any]:
    """Each face's coordinates in the gallery's subspace basis, and the faces of people that
    have none (outside the subspace, or from before it), which search scans exactly."""
    from psycopg import sql

    return [
        sql.SQL("ALTER TABLE faces ADD COLUMN IF NOT EXISTS coords vector"),
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS faces_unprojected ON faces (id)"
            " WHERE person_id IS NOT NULL AND coords IS NULL"
        ),
    ]


def _indexed(project: int) -> str:
    """What the HNSW index is on (search orders by the same expression)."""
    return f"(coords::vector({int(project)}))" if project else "embedding"


def _hnsw_ddl(params: IndexParams) -> Any:
    from psycopg import sql

    m, efc = _hnsw_build_params(params)
    return sql.SQL(
        "CREATE INDEX IF NOT EXISTS {name} ON faces USING hnsw ({column} vector_ip_ops)"
        " WITH (m = {m}, ef_construction = {efc}) WHERE person_id IS NOT NULL"
    ).format(
        name=sql.Identifier(INDEX_NAME),
        column=sql.SQL(_indexed(params.project)),  # an integer this module formatted
        m=sql.SQL(str(m)),
        efc=sql.SQL(str(efc)),
    )


def _hnsw_build_params(params: IndexParams) -> tuple[int, int]:
    """(m, ef_construction) for pgvector from facesearch's index parameters; InputError if
    pgvector cannot build with them."""
    m, efc = int(params.connectivity), int(params.expansion_add)
    if not M_RANGE[0] <= m <= M_RANGE[1]:
        raise InputError(f"pgvector's HNSW connectivity (m) must be {M_RANGE[0]}..{M_RANGE[1]}")
    if not max(EF_CONSTRUCTION_RANGE[0], 2 * m) <= efc <= EF_CONSTRUCTION_RANGE[1]:
        raise InputError(
            f"pgvector's HNSW ef_construction must be from 2 * m to {EF_CONSTRUCTION_RANGE[1]}"
        )
    return m, efc


def pgvector_has_hnsw(version: str) -> bool:
    """Whether this pgvector extension version has HNSW indexes (0.5.0 and later)."""
    parts = []
    for part in version.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts) >= (0, 5)


@functools.cache
def _search_statement(project: int) -> str:
    """The search statement: each query's (``q``) nearest faces of people and their owners,
    then those owners' template sums. On a projected index (``project``) the index is searched
    with the queries' coordinates (``c``) and the faces without any are scanned exactly."""
    face = (
        "SELECT id, person_id, embedding <#> q.v AS dist,"
        " CASE WHEN %(vectors)s THEN embedding END AS embedding FROM faces"
        " WHERE person_id IS NOT NULL"  # the partial HNSW index's rows
    )
    if project:
        nearest = (
            f"SELECT * FROM (({face} AND coords IS NOT NULL"
            f"  ORDER BY {_indexed(project)} <#> q.c LIMIT %(k)s)"
            f" UNION ALL ({face} AND coords IS NULL ORDER BY embedding <#> q.v LIMIT %(k)s))"
            " u ORDER BY dist LIMIT %(k)s"
        )
        queries = "unnest(%(q)b::vector[], %(c)b::vector[]) WITH ORDINALITY AS t(v, c, ord)"
    else:
        nearest = f"{face} ORDER BY embedding <#> q.v LIMIT %(k)s"
        queries = "unnest(%(q)b::vector[]) WITH ORDINALITY AS t(v, ord)"
    return (
        f"WITH q AS (SELECT * FROM {queries}),"
        " n AS MATERIALIZED ("
        "  SELECT q.ord, f.id, f.person_id, f.dist, f.embedding"
        f"  FROM q CROSS JOIN LATERAL ({nearest}) f)"
        " SELECT n.ord, n.id, n.person_id, n.dist, NULL::text, n.embedding FROM n"
        " UNION ALL"
        " SELECT NULL, NULL, p.id, NULL, p.name, p.template_sum FROM people p"
        " WHERE p.id IN (SELECT person_id FROM n)"
    )


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


# a FaceInfo from "faces f LEFT JOIN people p"; {thumb} is f.thumbnail, or NULL before schema 2
# {library}: the kind, suggested person's name and cluster (constants before schema 3)
_INFO_COLUMNS = "f.id, p.name, f.source, f.box, f.score, f.created, {thumb} IS NOT NULL, {library}"
_LIBRARY_COLUMNS = "f.kind, s.name, f.cluster_id"
_NO_LIBRARY = "'enrolled', NULL::text, NULL::bigint"


def _info(row: Sequence[Any]) -> FaceInfo:
    x1, y1, x2, y2 = (float(v) for v in row[3])
    return FaceInfo(
        id=int(row[0]),
        person=row[1],
        source_path=row[2],
        box=(x1, y1, x2, y2),
        score=float(row[4]),
        added=_iso(row[5]),
        has_thumbnail=bool(row[6]),
        kind=str(row[7]),
        suggested=row[8],
        cluster=None if row[9] is None else int(row[9]),
    )


def recorded_model(url: str) -> str | None:
    """The embedding model id recorded in the gallery database; None if it has none yet."""
    pg = _import_psycopg()
    try:
        with pg.connect(url, autocommit=True, connect_timeout=10) as conn:
            if conn.execute("SELECT to_regclass('meta')").fetchone()[0] is None:
                return None
            row = conn.execute("SELECT value FROM meta WHERE key = 'model_id'").fetchone()
    except pg.Error as err:
        raise GalleryError(
            f"cannot connect to the gallery {display_location(url)}: {_one_line(err)}"
        ) from err
    return None if row is None else str(row[0])


class PostgresGallery:
    """Open the gallery in the database at ``url`` for reading, or (``writable``) for writing.

    A writable open creates the schema (and the ``vector`` extension when the user may) on
    first use. Any number of processes may hold it open for writing at once. ``subspace`` gives
    the model's subspace basis (``FaceEmbedder.subspace``): a new gallery records it and indexes
    the faces' coordinates in it (``params`` with ``project`` 0 keeps full vectors).
    """

    def __init__(
        self,
        url: str,
        model_id: str,
        dim: int,
        writable: bool = False,
        params: IndexParams | None = None,
        subspace: Callable[[], np.ndarray | None] | None = None,
    ) -> None:
        self._pg = _import_psycopg()
        self.url = url
        self.model_id = model_id
        self._subspace_source = subspace
        #: the subspace basis the gallery recorded (``coords`` are coordinates in it), if any
        self.basis: np.ndarray | None = None
        self.dim = int(dim)
        self.writable = writable
        self._threshold: Threshold | None = None
        self.conn = self._connect()
        try:
            if writable:
                self._create_schema(params)
            else:
                self._check_readable()
            from pgvector.psycopg import register_vector

            register_vector(self.conn)
            self._check_model()
            if not writable:  # a writable open read it while creating the schema
                self.basis = self._stored_basis()
            self.params = self._params_in_force(params)
            self.generation = self._generation()
            version = int(self._get_meta("schema_version") or 0)
            self._thumb = "f.thumbnail" if version >= 2 else "NULL"
            #: whether the database has the photo library (schema 3)
            self.version = version
            self.library = version >= 3
            library = _LIBRARY_COLUMNS if self.library else _NO_LIBRARY
            self._select_info = (
                f"SELECT {_INFO_COLUMNS.format(thumb=self._thumb, library=library)}"
                " FROM faces f LEFT JOIN people p ON p.id = f.person_id"
                + (" LEFT JOIN people s ON s.id = f.suggested_person_id" if self.library else "")
            )
            self._enrolled = "f.kind = 'enrolled'" if self.library else "true"
            self._faces_at_open = self._count_assigned()
        except BaseException:
            self.conn.close()
            raise

    # -- connection and schema -----------------------------------------------------------------

    @property
    def location(self) -> str:
        """The database URL without its password."""
        return display_location(self.url)

    def _connect(self) -> psycopg.Connection[Any]:
        pg = self._pg
        try:
            return pg.connect(self.url, autocommit=True, connect_timeout=10)  # type: ignore[no-any-return]
        except pg.Error as err:
            text = _one_line(err)
            if "password authentication failed" in text or "no password supplied" in text:
                raise GalleryError(
                    f"{self.location}: wrong user name or password for the PostgreSQL server"
                ) from err
            raise GalleryError(f"cannot connect to the gallery {self.location}: {text}") from err

    def _has_vector(self) -> bool:
        """Whether the database has pgvector; GalleryError if it is too old for HNSW."""
        rows = self._rows("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        if rows and not pgvector_has_hnsw(str(rows[0][0])):
            raise GalleryError(
                f"{self.location}: pgvector {rows[0][0]} has no HNSW index (0.5.0 or newer "
                "does): update it on the server, then ALTER EXTENSION vector UPDATE;"
            )
        return bool(rows)

    def _check_readable(self) -> None:
        has_vector = self._has_vector()
        if self._rows("SELECT to_regclass('meta')")[0][0] is None:
            raise GalleryError(
                f"no gallery in {self.location}: enroll people first (facesearch enroll FOLDER)"
                + (
                    ""
                    if has_vector
                    else f"; the database has no pgvector extension: {EXTENSION_HINT}"
                )
            )
        if not has_vector:
            raise GalleryError(
                f"{self.location}: the database has no pgvector extension: {EXTENSION_HINT}"
            )
        self._check_schema_version(self._get_meta("schema_version"))

    def _check_schema_version(self, version: str | None) -> None:
        if version is None:
            raise GalleryError(f"{self.location}: not a facesearch gallery (no schema version)")
        if int(version) > SCHEMA_VERSION:
            raise GalleryError(
                f"{self.location}: gallery schema {version} is newer than this facesearch "
                f"({SCHEMA_VERSION})"
            )

    def _create_schema(self, params: IndexParams | None) -> None:
        pg = self._pg
        try:
            with self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                if not self._has_vector():
                    self.conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    self._has_vector()  # new enough?
        except pg.Error as err:
            raise GalleryError(
                f"{self.location}: the database has no pgvector extension and it cannot be "
                f"created here ({_one_line(err)}): {EXTENSION_HINT}"
            ) from err
        try:
            with self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                self.conn.execute(
                    "CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL)"
                )
                version = self._get_meta("schema_version")
                if version is not None:
                    self._check_schema_version(version)
                current = int(version or 0)
                migrations = {
                    1: lambda: _schema_v1(self.dim),
                    2: _schema_v2,
                    3: _schema_v3,
                    4: _schema_v4,
                }
                if 0 < current < SCHEMA_VERSION:
                    log.warning(
                        "%s: upgrading the gallery schema from %d to %d%s",
                        self.location,
                        current,
                        SCHEMA_VERSION,
                        " (the vector index is rebuilt once)" if current < 2 else "",
                    )
                for target in range(current + 1, SCHEMA_VERSION + 1):
                    for statement in migrations[target]():
                        self.conn.execute(statement)
                    self._set_meta_in_tx({"schema_version": str(target)})
                if current == 0:  # the index is built with these: keep them with the gallery
                    params = self._new_params(params)
                    self._set_meta_in_tx({PARAMS_KEY: json.dumps(params.to_dict())})
                # rebuilt here if a bulk load was interrupted before it built the index again
                self.basis = self._stored_basis()
                self.conn.execute(_hnsw_ddl(self._params_in_force(params, warn=False)))
                self.conn.execute(
                    "INSERT INTO meta VALUES ('generation', '0') ON CONFLICT (key) DO NOTHING"
                )
        except pg.Error as err:
            raise GalleryError(
                f"{self.location}: cannot create the gallery ({_one_line(err)})"
            ) from err

    def _new_params(self, params: IndexParams | None) -> IndexParams:
        """A new gallery's index parameters (inside its creating transaction): ``params``, else
        pgvector's defaults on the model's subspace where ``subspace`` gives one (recorded)."""
        chosen = params or replace(DEFAULT_PARAMS, project=1)
        if not chosen.project:
            return chosen
        basis = self._adopt_basis()
        return replace(chosen, project=0 if basis is None else basis.shape[1])

    def _stored_basis(self) -> np.ndarray | None:
        """The subspace basis recorded in the gallery (``SUBSPACE_KEY``), if any."""
        return recorded_basis(self._get_meta(SUBSPACE_KEY), self.dim)

    def _adopt_basis(self) -> np.ndarray | None:
        """The recorded basis; else the one ``subspace`` gives, recorded now (inside a write's
        transaction); None where there is neither."""
        if self.basis is None and self._subspace_source is not None:
            basis = self._subspace_source()
            if basis is not None:
                # basis_to_text checks its shape and that it is orthonormal
                self._set_meta_in_tx({SUBSPACE_KEY: basis_to_text(basis, self.dim)})
                self.basis = np.array(basis, np.float32)
        return self.basis

    def _params_in_force(self, given: IndexParams | None, warn: bool = True) -> IndexParams:
        """The gallery's own index parameters, else ``given``, else the defaults; projected only
        with a basis of that width."""
        params = self._stored_params() or given or DEFAULT_PARAMS
        if params.project and (self.basis is None or self.basis.shape[1] != params.project):
            if warn:
                log.warning(
                    "%s: the index is on %d-d subspace coordinates but the gallery has no "
                    "such basis: searching full vectors (reindex --project off rebuilds it)",
                    self.location,
                    params.project,
                )
            return replace(params, project=0)
        return params

    def _coords(self, embeddings: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """Each embedding's coordinates in the gallery's basis; None without a basis, or for
        one that is not in its subspace (``index.outside_subspace``: it is then searched exactly)."""
        if self.basis is None or not len(embeddings):
            return [None] * len(embeddings)
        vectors = np.asarray(np.stack(embeddings), np.float32)
        coords = vectors @ self.basis
        outside = outside_subspace(vectors, coords)
        return [None if out else c for c, out in zip(coords, outside)]

    def _check_model(self) -> None:
        stored_model, stored_dim = self._get_meta("model_id"), self._get_meta("embedding_dim")
        if stored_model is None:
            if self.writable:
                with self._write(bump=False):
                    if self._get_meta("model_id") is None:
                        self._set_meta_in_tx(
                            {"model_id": self.model_id, "embedding_dim": str(self.dim)}
                        )
                self._check_model()
            return
        if stored_model != self.model_id or int(stored_dim or 0) != self.dim:
            raise ModelMismatchError(
                f"{self.location}: gallery was built with {stored_model} ({stored_dim}-d), "
                f"not {self.model_id} ({self.dim}-d); its vectors cannot be compared: use another "
                "--gallery, or enroll the photos again into a new one"
            )

    def _get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = %s", (key,))
        return str(rows[0][0]) if rows else None

    def _rows(self, query: Any, params: Any = None) -> list[Any]:
        """The rows of one read; a failure (server gone, connection lost) is a GalleryError."""
        try:
            return self.conn.execute(query, params).fetchall()
        except self._pg.Error as err:
            raise GalleryError(
                f"{self.location}: reading the gallery failed ({_one_line(err)})"
            ) from err

    def _set_meta_in_tx(self, values: dict[str, str | None]) -> None:
        for key, value in values.items():
            if value is None:
                self.conn.execute("DELETE FROM meta WHERE key = %s", (key,))
            else:
                self.conn.execute(
                    "INSERT INTO meta VALUES (%s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    (key, value),
                )

    def _generation(self) -> int:
        return int(self._get_meta("generation") or 0)

    def _stored_params(self) -> IndexParams | None:
        raw = self._get_meta(PARAMS_KEY)
        if raw is None:
            return None
        try:
            return IndexParams.from_dict(json.loads(raw))
        except (ValueError, TypeError, InputError) as err:
            log.warning("ignoring unreadable index parameters in the gallery (%s)", err)
            return None

    @contextmanager
    def _write(self, bump: bool = True) -> Iterator[Any]:
        """One write transaction: writers queue on an advisory lock; ``bump`` the generation."""
        if not self.writable:
            raise GalleryError(f"gallery {self.location} is open read-only")
        pg = self._pg
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                yield cur
                if bump:
                    cur.execute(
                        "UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'generation'"
                    )
        except pg.errors.UniqueViolation as err:
            raise GalleryError(
                f"{self.location}: a photo in this batch is already enrolled; nothing was "
                f"written ({_one_line(err)})"
            ) from err
        except pg.Error as err:
            raise GalleryError(
                f"{self.location}: the write failed and was rolled back ({_one_line(err)})"
            ) from err
        finally:
            self._threshold = None

    def close(self) -> None:
        self.conn.close()

    def flush(self) -> None:
        """Nothing to do: every write is committed when it returns."""

    def __enter__(self) -> PostgresGallery:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def changed_since_open(self) -> bool:
        """Whether any process has written to the gallery since this object opened it."""
        return self._generation() != self.generation

    # -- writes --------------------------------------------------------------------------------

    def add(self, records: Sequence[FaceRecord]) -> list[int]:
        """Store faces (creating people as needed) in one transaction; returns their labels."""
        if not records:
            return []
        with self._write() as cur:
            names = sorted({r.person for r in records if r.person is not None})
            cur.execute(
                "INSERT INTO people (name) SELECT unnest(%s::text[]) ON CONFLICT (name) DO NOTHING",
                (names,),
            )
            cur.execute("SELECT name, id FROM people WHERE name = ANY(%s)", (names,))
            person_ids = {str(name): int(pid) for name, pid in cur.fetchall()}
            taken: dict[int, int] = {}  # record -> the scanned face it takes over
            before: list[int] = []  # whose those faces were
            if self.library:
                for i, r in enumerate(records):
                    if r.person is not None:
                        found = self._scanned_twin(cur, r)
                        if found is not None:
                            taken[i] = found[0]
                            before.append(-1 if found[1] is None else found[1])
                            coords = self._coords([r.embedding])[0]
                            self._take_over(cur, found[0], person_ids[r.person], r, coords)
            new = [r for i, r in enumerate(records) if i not in taken]
            new_ids: list[int] = []
            if new:
                cur.executemany(
                    "INSERT INTO faces (person_id, source, sha256, box, score, embedding,"
                    " thumbnail, coords) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    [
                        (
                            None if r.person is None else person_ids[r.person],
                            r.source_path,
                            r.image_sha256,
                            [float(v) for v in r.box],
                            float(r.score),
                            np.asarray(r.embedding, np.float32),
                            None if r.thumbnail is None else bytes(r.thumbnail),
                            coords,
                        )
                        for r, coords in zip(new, self._coords([r.embedding for r in new]))
                    ],
                    returning=True,
                )
                while True:
                    new_ids.append(int(cur.fetchone()[0]))
                    if not cur.nextset():
                        break
            fresh = iter(new_ids)
            ids = [taken[i] if i in taken else next(fresh) for i in range(len(records))]
            self._people_changed(cur, [*person_ids.values(), *(p for p in before if p >= 0)])
        self._faces_at_open += sum(r.person is not None for r in new) + before.count(-1)
        return ids

    @staticmethod
    def _scanned_twin(cur: Any, r: FaceRecord) -> tuple[int, int | None] | None:
        """The scanned face of the same photo at the same place as ``r``, if any: (id, person)."""
        from .store import CONVERT_IOU, iou

        cur.execute(
            "SELECT id, person_id, box FROM faces WHERE sha256 = %s AND kind = 'scanned'",
            (r.image_sha256,),
        )
        for fid, pid, box in cur.fetchall():
            if iou([float(v) for v in box], r.box) >= CONVERT_IOU:
                return int(fid), None if pid is None else int(pid)
        return None

    @staticmethod
    def _take_over(
        cur: Any, face_id: int, person_id: int, r: FaceRecord, coords: np.ndarray | None
    ) -> None:
        """Enrolling a face a scan found already: that face becomes the enrolled one."""
        cur.execute(
            "UPDATE faces SET person_id = %s, kind = 'enrolled', box = %s, score = %s,"
            " embedding = %s, coords = %s, thumbnail = coalesce(%s, thumbnail),"
            " suggested_person_id = NULL, cluster_id = NULL WHERE id = %s",
            (
                person_id,
                [float(v) for v in r.box],
                float(r.score),
                np.asarray(r.embedding, np.float32),
                coords,
                None if r.thumbnail is None else bytes(r.thumbnail),
                face_id,
            ),
        )
        cur.execute(
            "DELETE FROM rejections WHERE face_id = %s AND person_id = %s", (face_id, person_id)
        )

    @staticmethod
    def _update_templates(cur: Any, person_ids: list[int]) -> None:
        cur.execute(
            "UPDATE people p SET template_sum = s.total"
            " FROM (SELECT person_id, sum(embedding) AS total FROM faces"
            "       WHERE person_id = ANY(%s) GROUP BY person_id) s"
            " WHERE p.id = s.person_id",
            (person_ids,),
        )

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Faster adding of many faces into an empty gallery: the HNSW index is dropped while
        inside and built once over all the rows at the end (one build is far cheaper than one
        graph insert per face). On a gallery that has faces it changes nothing. If interrupted,
        the next writable open builds the index; searches meanwhile scan exactly."""
        from psycopg import sql

        if self.count_faces() > 0:
            yield
            return
        with self._write(bump=False) as cur:
            cur.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(INDEX_NAME)))
        yield
        with self._write(bump=False) as cur:
            cur.execute(_hnsw_ddl(self.params))

    def remove_person(self, name: str) -> int:
        """Delete a person and their faces (one transaction); returns how many faces went."""
        with self._write() as cur:
            cur.execute(
                "SELECT p.id, (SELECT count(*) FROM faces f WHERE f.person_id = p.id)"
                " FROM people p WHERE p.name = %s FOR UPDATE",
                (name,),
            )
            row = cur.fetchone()
            if row is None:
                raise PersonNotFoundError(f"no person named {name!r} in the gallery")
            cur.execute("DELETE FROM people WHERE id = %s", (row[0],))
        self._faces_at_open -= int(row[1])
        return int(row[1])

    def _face_in_tx(self, cur: Any, face_id: int) -> tuple[FaceInfo, int | None]:
        cur.execute(
            self._select_info.replace("SELECT ", "SELECT f.person_id, ", 1) + " WHERE f.id = %s",
            (int(face_id),),
        )
        row = cur.fetchone()
        if row is None:
            raise FaceNotFoundError(f"no face with id {face_id} in the gallery")
        return _info(row[1:]), None if row[0] is None else int(row[0])

    @classmethod
    def _people_changed(cls, cur: Any, person_ids: Sequence[int]) -> None:
        """These people's faces changed: those left with none go, the others' templates are
        recomputed (inside the write's transaction)."""
        ids = sorted(set(person_ids))
        if not ids:
            return
        cur.execute(
            "DELETE FROM people p WHERE p.id = ANY(%s)"
            " AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.person_id = p.id)",
            (ids,),
        )
        cls._update_templates(cur, ids)

    def remove_face(self, face_id: int) -> FaceInfo:
        """Delete one face, and its person if it was their last (one transaction)."""
        with self._write() as cur:
            info, person_id = self._face_in_tx(cur, face_id)
            cur.execute("DELETE FROM faces WHERE id = %s", (info.id,))
            if person_id is not None:
                self._people_changed(cur, [person_id])
        self._faces_at_open -= person_id is not None
        return info

    def assign_faces(self, face_ids: Sequence[int], name: str) -> int:
        """Give faces to ``name`` (created if new) in one transaction; returns how many changed
        owner. FaceNotFoundError, nothing changed, if any id is unknown."""
        ids = sorted({int(i) for i in face_ids})
        with self._write() as cur:
            cur.execute("SELECT id, person_id FROM faces WHERE id = ANY(%s)", (ids,))
            owners = {int(fid): None if pid is None else int(pid) for fid, pid in cur.fetchall()}
            missing = [i for i in ids if i not in owners]
            if missing:
                shown = ", ".join(str(i) for i in missing[:5]) + (
                    ", ..." if len(missing) > 5 else ""
                )
                raise FaceNotFoundError(
                    f"no face with id {shown} in the gallery; nothing was changed"
                )
            if not ids:
                return 0
            cur.execute(
                "INSERT INTO people (name) VALUES (%s) ON CONFLICT (name) DO NOTHING", (name,)
            )
            cur.execute("SELECT id FROM people WHERE name = %s", (name,))
            person_id = int(cur.fetchone()[0])
            moved = [i for i in ids if owners[i] != person_id]
            self._give(cur, moved, person_id)
            before = [owners[i] for i in moved]
            self._people_changed(cur, [person_id, *(p for p in before if p is not None)])
        self._faces_at_open += sum(p is None for p in before)
        return len(moved)

    def rename_person(self, old: str, new: str) -> RenameResult:
        """Rename a person, or merge them into ``new`` if that is someone already (one
        transaction; the merged person's template is recomputed)."""
        with self._write() as cur:
            cur.execute(
                "SELECT p.id, (SELECT count(*) FROM faces f WHERE f.person_id = p.id)"
                " FROM people p WHERE p.name = %s",
                (old,),
            )
            row = cur.fetchone()
            if row is None:
                raise PersonNotFoundError(f"no person named {old!r} in the gallery")
            old_id, faces = int(row[0]), int(row[1])
            if new == old:
                return RenameResult(old, new, merged=False, faces=faces)
            cur.execute("SELECT id FROM people WHERE name = %s", (new,))
            target = cur.fetchone()
            if target is None:
                cur.execute("UPDATE people SET name = %s WHERE id = %s", (new, old_id))
                return RenameResult(old, new, merged=False, faces=faces)
            cur.execute(
                "UPDATE faces SET person_id = %s WHERE person_id = %s", (int(target[0]), old_id)
            )
            if self.library:  # suggestions and rejections follow the person
                cur.execute(
                    "UPDATE faces SET suggested_person_id = %s WHERE suggested_person_id = %s",
                    (int(target[0]), old_id),
                )
                cur.execute(
                    "INSERT INTO rejections (face_id, person_id, created)"
                    " SELECT face_id, %s, created FROM rejections WHERE person_id = %s"
                    " ON CONFLICT DO NOTHING",
                    (int(target[0]), old_id),
                )
            cur.execute("DELETE FROM people WHERE id = %s", (old_id,))
            self._update_templates(cur, [int(target[0])])
        return RenameResult(old, new, merged=True, faces=faces)

    def set_threshold(self, value: float | None, source: str) -> None:
        """Store the gallery's own threshold (``calibrate``), or with None go back to the default."""
        with self._write():
            self._set_meta_in_tx(
                {
                    "threshold": None if value is None else repr(float(value)),
                    "threshold_source": None if value is None else source,
                }
            )

    def reindex(self, params: IndexParams | None = None) -> int:
        """Rebuild the HNSW index (with ``params``: with their m and ef_construction, which
        become the gallery's own, on full vectors or, with ``project``, on the coordinates in
        the gallery's subspace basis, recorded now if it has none yet and the gallery was opened
        with a ``subspace``; the faces without coordinates get theirs first). Returns the
        number of faces."""
        from psycopg import sql

        if params is not None and (params.dtype != "f32" or params.rerank):
            raise InputError(
                "a PostgreSQL gallery's index keeps float32 vectors: --dtype and --rerank do not "
                "apply"
            )
        _hnsw_build_params(params or self.params)  # checked before anything is changed
        if params is not None and params.project:
            with self._write(bump=False):
                basis = self._adopt_basis()
            params = replace(params, project=0 if basis is None else basis.shape[1])
            if basis is None:
                log.warning("%s: no subspace basis to project on", self.location)
            else:
                self._fill_coords()
        with self._write(bump=False) as cur:
            if params is None:
                cur.execute(sql.SQL("REINDEX INDEX {}").format(sql.Identifier(INDEX_NAME)))
            else:
                cur.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(INDEX_NAME)))
                cur.execute(_hnsw_ddl(params))
                self._set_meta_in_tx({PARAMS_KEY: json.dumps(params.to_dict())})
                self.params = params
            cur.execute("ANALYZE faces")  # the planner's view of which faces have coordinates
        return self._count_assigned()

    def _fill_coords(self, chunk: int = 2000) -> None:
        """Give the faces without coordinates theirs, in one transaction (those outside the
        subspace stay without). The HNSW index goes first: with it, every row changed would be
        one more insert into its graph (a full-vector index at 100k: minutes); ``reindex``
        builds it again. A VACUUM then clears the rows' old versions from the index of faces
        without coordinates, which search reads."""
        from psycopg import sql

        changed = 0
        with self._write(bump=False), self.conn.cursor(binary=True) as cur:
            last = -1
            while True:
                cur.execute(
                    "SELECT id, embedding FROM faces WHERE coords IS NULL AND id > %s"
                    " ORDER BY id LIMIT %s",
                    (last, chunk),
                )
                rows = cur.fetchall()
                if not rows:
                    break
                last = int(rows[-1][0])
                pairs = [
                    (int(r[0]), c)
                    for r, c in zip(rows, self._coords([_array(r[1]) for r in rows]))
                    if c is not None
                ]
                if pairs and not changed:
                    cur.execute(
                        sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(INDEX_NAME))
                    )
                if pairs:
                    cur.execute(
                        "UPDATE faces f SET coords = u.c"
                        " FROM unnest(%s::bigint[], %s::vector[]) AS u(id, c) WHERE f.id = u.id",
                        ([p[0] for p in pairs], [p[1] for p in pairs]),
                    )
                    changed += len(pairs)
        if changed:
            try:
                self.conn.execute("VACUUM faces")
            except self._pg.Error as err:  # not the table's owner: autovacuum will do it
                log.warning("%s: VACUUM faces failed (%s)", self.location, _one_line(err))

    # -- the photo library ---------------------------------------------------------------------

    @staticmethod
    def _give(cur: Any, face_ids: Sequence[int], person_id: int) -> None:
        """Make the faces ``person_id``'s (inside a transaction): out of any cluster, no longer
        a suggestion, and no longer rejected for them."""
        cur.execute(
            "UPDATE faces SET person_id = %s, suggested_person_id = NULL, cluster_id = NULL"
            " WHERE id = ANY(%s)",
            (person_id, list(face_ids)),
        )
        cur.execute(
            "DELETE FROM rejections WHERE person_id = %s AND face_id = ANY(%s)",
            (person_id, list(face_ids)),
        )

    def _require_library(self) -> None:
        if not self.library:
            raise GalleryError(
                f"{self.location}: this gallery predates the photo library (schema "
                f"{self.version}); open it for writing once (e.g. facesearch scan) to upgrade it"
            )

    def photos(self) -> list[StoredPhoto]:
        """Every scanned photo, by id."""
        if not self.library:
            return []
        return [
            StoredPhoto(int(r[0]), r[1], r[2], int(r[3]), float(r[4]))
            for r in self._rows("SELECT id, path, sha256, size, mtime FROM photos ORDER BY id")
        ]

    def count_photos(self) -> int:
        if not self.library:
            return 0
        return int(self._rows("SELECT count(*) FROM photos")[0][0])

    def add_photos(self, photos: Sequence[ScannedPhoto]) -> list[int]:
        """Record photos as scanned together with their faces (no person yet), in one
        transaction; returns the faces' labels. A face enrolled from the same photo already
        (overlapping box) is linked to the photo instead of being stored twice."""
        from .store import CONVERT_IOU, iou

        self._require_library()
        if not photos:
            return []
        ids: list[int] = []
        with self._write() as cur:
            cur.execute("SELECT name, id FROM people")
            people = {str(name): int(pid) for name, pid in cur.fetchall()}
            for photo in photos:
                coords = self._coords([r.embedding for r in photo.faces])
                cur.execute(
                    "INSERT INTO photos (path, sha256, size, mtime) VALUES (%s, %s, %s, %s)"
                    " RETURNING id",
                    (photo.path, photo.sha256, int(photo.size), float(photo.mtime)),
                )
                photo_id = int(cur.fetchone()[0])
                cur.execute(
                    "SELECT id, box FROM faces WHERE sha256 = %s AND kind = 'enrolled'",
                    (photo.sha256,),
                )
                enrolled = [(int(fid), [float(v) for v in box]) for fid, box in cur.fetchall()]
                for r, c in zip(photo.faces, coords):
                    same = [fid for fid, box in enrolled if iou(box, r.box) >= CONVERT_IOU]
                    if same:
                        cur.execute(
                            "UPDATE faces SET photo_id = %s, source = %s WHERE id = %s",
                            (photo_id, photo.path, same[0]),
                        )
                        ids.append(same[0])
                        continue
                    cur.execute(
                        "INSERT INTO faces (person_id, source, sha256, box, score, embedding,"
                        " thumbnail, photo_id, kind, suggested_person_id, coords)"
                        " VALUES (NULL, %s, %s, %s, %s, %s, %s, %s, 'scanned', %s, %s)"
                        " RETURNING id",
                        (
                            photo.path,
                            photo.sha256,
                            [float(v) for v in r.box],
                            float(r.score),
                            np.asarray(r.embedding, np.float32),
                            None if r.thumbnail is None else bytes(r.thumbnail),
                            photo_id,
                            people.get(r.suggested) if r.suggested else None,
                            c,
                        ),
                    )
                    ids.append(int(cur.fetchone()[0]))
        return ids

    def remove_photos(self, photo_ids: Sequence[int]) -> int:
        """Forget photos that are gone: their scanned faces go (enrolled faces stay, unlinked),
        in one transaction; returns how many faces went."""
        self._require_library()
        if not photo_ids:
            return 0
        ids = [int(i) for i in photo_ids]
        with self._write() as cur:
            cur.execute(
                "DELETE FROM faces WHERE kind = 'scanned' AND photo_id = ANY(%s)"
                " RETURNING person_id",
                (ids,),
            )
            owners = [int(r[0]) for r in cur.fetchall() if r[0] is not None]
            removed = cur.rowcount
            cur.execute("DELETE FROM photos WHERE id = ANY(%s)", (ids,))
            self._people_changed(cur, owners)
        self._faces_at_open -= len(owners)
        return int(removed)

    def move_photos(self, moves: Sequence[tuple[int, str, int, float]]) -> None:
        """Photos found at a new path: they and their faces follow (one transaction)."""
        self._require_library()
        with self._write(bump=False) as cur:
            for photo_id, path, size, mtime in moves:
                cur.execute(
                    "UPDATE photos SET path = %s, size = %s, mtime = %s WHERE id = %s",
                    (path, int(size), float(mtime), int(photo_id)),
                )
                cur.execute(
                    "UPDATE faces SET source = %s WHERE photo_id = %s", (path, int(photo_id))
                )

    def loose_faces(self) -> LooseFaces:
        """The faces of no person, with their embeddings, photos, clusters and suggestions."""
        rows = (
            self._rows(
                "SELECT id, embedding, coalesce(photo_id, -1), coalesce(cluster_id, 0),"
                " coalesce(suggested_person_id, 0) FROM faces WHERE person_id IS NULL ORDER BY id"
            )
            if self.library
            else []
        )
        return LooseFaces(
            np.array([r[0] for r in rows], np.int64),
            np.stack([_array(r[1]) for r in rows]) if rows else np.zeros((0, self.dim), np.float32),
            np.array([r[2] for r in rows], np.int64),
            np.array([r[3] for r in rows], np.int64),
            np.array([r[4] for r in rows], np.int64),
        )

    def set_suggestions(self, suggestions: dict[int, str]) -> int:
        """Suggest faces of no one for people (face id -> name), in one transaction, except to
        someone a face was taken from; returns how many were set."""
        self._require_library()
        if not suggestions:
            return 0
        with self._write(bump=False) as cur:
            cur.execute(
                "UPDATE faces f SET suggested_person_id = p.id, cluster_id = NULL"
                " FROM unnest(%s::bigint[], %s::text[]) AS s(face_id, name)"
                " JOIN people p ON p.name = s.name"
                " WHERE f.id = s.face_id AND f.person_id IS NULL AND NOT EXISTS"
                " (SELECT 1 FROM rejections r WHERE r.face_id = f.id AND r.person_id = p.id)",
                ([int(k) for k in suggestions], list(suggestions.values())),
            )
            return int(cur.rowcount)

    def rejections(self, face_ids: Sequence[int]) -> dict[int, set[str]]:
        """Per face, the people it was taken from (never suggested to them again)."""
        out: dict[int, set[str]] = {}
        if not self.library:
            return out
        for fid, name in self._rows(
            "SELECT r.face_id, p.name FROM rejections r JOIN people p ON p.id = r.person_id"
            " WHERE r.face_id = ANY(%s)",
            ([int(i) for i in face_ids],),
        ):
            out.setdefault(int(fid), set()).add(str(name))
        return out

    def next_cluster_id(self) -> int:
        """The id a new cluster gets: never one used before."""
        if not self.library:
            return 1
        stored = int(self._get_meta("next_cluster_id") or 1)
        top = self._rows("SELECT max(cluster_id) FROM faces")[0][0]
        return max(stored, int(top or 0) + 1)

    def set_clusters(self, clusters: dict[int, int | None]) -> None:
        """Store cluster ids of faces of no one (None: none; -1: kept out), one transaction."""
        self._require_library()
        with self._write(bump=False) as cur:
            top = self.next_cluster_id()
            used = [c for c in clusters.values() if c is not None]
            top = max([top, *(c + 1 for c in used)])
            cur.execute(
                "UPDATE faces f SET cluster_id = s.cluster_id"
                " FROM unnest(%s::bigint[], %s::bigint[]) AS s(face_id, cluster_id)"
                " WHERE f.id = s.face_id AND f.person_id IS NULL",
                ([int(k) for k in clusters], list(clusters.values())),
            )
            self._set_meta_in_tx({"next_cluster_id": str(top)})

    def assign_cluster(self, cluster: int, name: str) -> tuple[list[int], list[int]]:
        """A cluster's faces become ``name``'s (created if new), but those once taken from
        them; one transaction. Returns (labels given, labels kept out)."""
        self._require_library()
        with self._write() as cur:
            cur.execute(
                "SELECT f.id, EXISTS (SELECT 1 FROM rejections r JOIN people p"
                " ON p.id = r.person_id WHERE r.face_id = f.id AND p.name = %s)"
                " FROM faces f WHERE f.cluster_id = %s AND f.person_id IS NULL ORDER BY f.id",
                (name, int(cluster)),
            )
            rows = cur.fetchall()
            if not rows or int(cluster) <= 0:
                raise ClusterNotFoundError(
                    f"no cluster with id {cluster} (see facesearch clusters)"
                )
            given = [int(fid) for fid, rejected in rows if not rejected]
            kept = [int(fid) for fid, rejected in rows if rejected]
            if given:
                cur.execute(
                    "INSERT INTO people (name) VALUES (%s) ON CONFLICT (name) DO NOTHING", (name,)
                )
                cur.execute("SELECT id FROM people WHERE name = %s", (name,))
                person_id = int(cur.fetchone()[0])
                self._give(cur, given, person_id)
                self._update_templates(cur, [person_id])
        self._faces_at_open += len(given)
        return given, kept

    def unassign_face(self, face_id: int) -> FaceInfo:
        """Take a face from its person (remembered; their last face takes them too), or reject
        its suggestion, or keep a face of no one out of its cluster; one transaction. Returns
        the face as it was."""
        self._require_library()
        with self._write() as cur:
            info, person_id = self._face_in_tx(cur, face_id)
            if person_id is not None:
                cur.execute(
                    "INSERT INTO rejections (face_id, person_id) VALUES (%s, %s)"
                    " ON CONFLICT DO NOTHING",
                    (info.id, person_id),
                )
                cur.execute(
                    "UPDATE faces SET person_id = NULL, suggested_person_id = NULL,"
                    " cluster_id = NULL WHERE id = %s",
                    (info.id,),
                )
                self._people_changed(cur, [person_id])
            elif info.suggested is not None:
                cur.execute(
                    "INSERT INTO rejections (face_id, person_id) SELECT id, suggested_person_id"
                    " FROM faces WHERE id = %s ON CONFLICT DO NOTHING",
                    (info.id,),
                )
                cur.execute("UPDATE faces SET suggested_person_id = NULL WHERE id = %s", (info.id,))
            elif info.cluster is not None and info.cluster > 0:
                cur.execute("UPDATE faces SET cluster_id = -1 WHERE id = %s", (info.id,))
            else:
                raise InputError(
                    f"face {info.id} is nobody's, suggested for no one and in no cluster: "
                    "nothing to unassign"
                )
        self._faces_at_open -= person_id is not None
        return info

    # -- reads ---------------------------------------------------------------------------------

    def owner_of_hash(self, sha256: str) -> str | None:
        """Name of the person a photo with this content hash is enrolled under, if any."""
        rows = self._rows(
            "SELECT p.name FROM faces f JOIN people p ON p.id = f.person_id"
            f" WHERE f.sha256 = %s AND {self._enrolled} LIMIT 1",
            (sha256,),
        )
        return str(rows[0][0]) if rows else None

    def people(self) -> list[Person]:
        """Everyone enrolled, by name (byte order, as SQLite sorts), with their face counts."""
        rows = self._rows(
            "SELECT p.id, p.name, count(f.id), p.created FROM people p"
            ' LEFT JOIN faces f ON f.person_id = p.id GROUP BY p.id ORDER BY p.name COLLATE "C"'
        )
        return [Person(id=int(r[0]), name=r[1], faces=int(r[2]), created=_iso(r[3])) for r in rows]

    def count_people(self) -> int:
        return int(self._rows("SELECT count(*) FROM people")[0][0])

    def count_faces(self) -> int:
        return int(self._rows("SELECT count(*) FROM faces")[0][0])

    def count_unassigned(self) -> int:
        return int(self._rows("SELECT count(*) FROM faces WHERE person_id IS NULL")[0][0])

    def _count_assigned(self) -> int:
        """The faces search looks through (those of people)."""
        return int(self._rows("SELECT count(*) FROM faces WHERE person_id IS NOT NULL")[0][0])

    def face_of_hash(self, sha256: str) -> FaceInfo | None:
        """The stored face of the photo with this content hash (assigned or not), if any."""
        rows = self._rows(
            self._select_info + " WHERE f.sha256 = %s ORDER BY f.id LIMIT 1", (sha256,)
        )
        return _info(rows[0]) if rows else None

    def faces(
        self,
        person: str | None = None,
        *,
        unassigned: bool = False,
        cluster: int | None = None,
        suggested: str | None = None,
    ) -> list[FaceInfo]:
        """Stored faces by id: ``person``'s, the unassigned ones, a cluster's, those suggested
        for a person, or all."""
        if (person is not None) + unassigned + (cluster is not None) + (suggested is not None) > 1:
            raise InputError(
                "faces of a person, the unassigned ones, a cluster's or suggestions: one at a time"
            )
        query = self._select_info
        params: tuple[Any, ...] = ()
        for name in (person, suggested):
            if name is not None and not self._rows("SELECT 1 FROM people WHERE name = %s", (name,)):
                raise PersonNotFoundError(f"no person named {name!r} in the gallery")
        if person is not None:
            query += " WHERE p.name = %s"
            params = (person,)
        elif unassigned:
            query += " WHERE f.person_id IS NULL"
        elif cluster is not None or suggested is not None:
            if not self.library:
                return []
            if cluster is not None:
                query += " WHERE f.cluster_id = %s AND f.person_id IS NULL"
                params = (int(cluster),)
            else:
                query += " WHERE s.name = %s AND f.person_id IS NULL"
                params = (suggested,)
        return [_info(r) for r in self._rows(query + " ORDER BY f.id", params)]

    def thumbnail(self, face_id: int) -> bytes | None:
        """The face's JPEG thumbnail, None if it has none."""
        rows = self._rows(f"SELECT {self._thumb} FROM faces f WHERE f.id = %s", (int(face_id),))
        if not rows:
            raise FaceNotFoundError(f"no face with id {face_id} in the gallery")
        return None if rows[0][0] is None else bytes(rows[0][0])

    def export_faces(self, chunk: int = 1000) -> Iterator[list[FaceRecord]]:
        """Every stored face (unassigned ones too) with its embedding and thumbnail as stored,
        in label order, in chunks."""
        last = -1
        while True:
            rows = self._rows(
                "SELECT f.id, p.name, f.source, f.sha256, f.box, f.score, f.embedding,"
                f" {self._thumb} FROM faces f LEFT JOIN people p ON p.id = f.person_id"
                " WHERE f.id > %s ORDER BY f.id LIMIT %s",
                (last, chunk),
            )
            if not rows:
                return
            last = int(rows[-1][0])
            yield [
                FaceRecord(
                    r[1],
                    r[2],
                    r[3],
                    tuple(r[4]),  # type: ignore[arg-type]
                    float(r[5]),
                    _array(r[6]),
                    None if r[7] is None else bytes(r[7]),
                )
                for r in rows
            ]

    @property
    def index_params(self) -> IndexParams:
        """The HNSW parameters in force (m = connectivity, ef_construction = expansion_add;
        ``project``: the width of the subspace coordinates indexed, 0 for full vectors)."""
        return IndexParams(
            connectivity=self.params.connectivity,
            expansion_add=self.params.expansion_add,
            expansion_search=self.params.expansion_search,
            dtype="f32",
            rerank=0,
            project=self.params.project,
        )

    def search_breadth(self, k_faces: int = 0) -> int:
        """``hnsw.ef_search`` for a search: the gallery's setting, else ``auto_ef`` of its size;
        at least ``k_faces``, since pgvector returns at most ef_search rows."""
        ef = self.params.expansion_search or auto_ef(self._faces_at_open)
        return max(ef, k_faces)

    def search(
        self,
        embeddings: np.ndarray,
        k_people: int = 5,
        refine: str = "none",
        pool: int = 512,
        device: str | None = None,
        ef: int | None = None,
    ) -> list[list[Candidate]]:
        """Per query embedding, the nearest enrolled people, nearest first (``Gallery.search``).

        One statement finds each query's nearest faces with the HNSW index, their owners and
        the owners' templates; ``scoring.score_people`` ranks the people. On a projected index
        the faces without coordinates are searched exactly beside it, and every face found is
        scored with its full vector. ``refine`` re-examines a pool of ``pool`` candidates with
        their stored vectors.
        """
        queries = np.atleast_2d(np.asarray(embeddings, np.float32))
        if len(queries) == 0:
            return []
        k_faces = candidate_faces(k_people, NO_LIMIT, refine, pool)
        # pgvector returns at most ef_search rows, and takes ef_search up to 1000
        breadth = min(max(int(ef) if ef else self.search_breadth(), k_faces), 1000)
        values = {"q": list(queries), "k": k_faces, "vectors": refine != "none"}
        if self.params.project and self.basis is not None:
            values["c"] = list(queries @ self.basis)
        query = _search_statement(self.params.project if "c" in values else 0)
        pg = self._pg
        try:
            # one round trip: the setting for this session (set right before the statement, so
            # it holds whatever ran on the connection earlier), no transaction around one
            # statement; queries go and results come back binary (float32 bytes, not text)
            with self.conn.pipeline():
                self.conn.execute(
                    "SELECT set_config('hnsw.ef_search', %s, false)", (str(int(breadth)),)
                )
                cur = self.conn.cursor(binary=True)
                cur.execute(query, values)
                rows = cur.fetchall()
        except pg.Error as err:
            raise GalleryError(f"{self.location}: search failed ({_one_line(err)})") from err
        hits = [r for r in rows if r[0] is not None]
        owners_rows = [r for r in rows if r[0] is None]
        names = {int(r[2]): str(r[4]) for r in owners_rows}
        sums = [r for r in owners_rows if r[5] is not None]
        units = unit_template(np.stack([_array(r[5]) for r in sums])) if sums else ()
        templates = {int(r[2]): unit for r, unit in zip(sums, units)}
        labels = np.full((len(queries), k_faces), -1, np.int64)
        dists = np.full((len(queries), k_faces), np.inf, np.float32)
        pools = (
            np.zeros((len(queries), k_faces, self.dim), np.float32) if values["vectors"] else None
        )
        hits.sort(key=lambda r: (int(r[0]), float(r[3]), int(r[1])))
        filled = np.zeros(len(queries), np.int64)
        owners: dict[int, tuple[int, str]] = {}
        for ord_, fid, pid, dist, _, vec in hits:
            i = int(ord_) - 1
            j = int(filled[i])
            labels[i, j], dists[i, j] = int(fid), 1.0 + float(dist)
            if pools is not None:
                pools[i, j] = _array(vec)
            filled[i] += 1
            if int(pid) in names:
                owners[int(fid)] = (int(pid), names[int(pid)])
        if pools is not None:
            labels, dists = refine_candidates(queries, labels, pools, refine, device)
        return score_people(queries, labels, dists, owners, templates, k_people)

    # -- settings and info ---------------------------------------------------------------------

    def threshold(self, explicit: float | Threshold | None = None) -> Threshold:
        """The match threshold in force: explicit > calibrated (stored) > default for the size."""
        if isinstance(explicit, Threshold):
            return explicit
        if explicit is not None:
            return given(explicit)
        if self._threshold is None:
            value = self._get_meta("threshold")
            if value is None:
                self._threshold = default_threshold(
                    self.count_people(), faces=self._count_assigned()
                )
            else:
                source = self._get_meta("threshold_source") or "gallery setting"
                self._threshold = Threshold(float(value), source, "calibrated")
        return self._threshold

    def info(self) -> dict[str, Any]:
        threshold = self.threshold()
        faces, indexed = self.count_faces(), self._count_assigned()
        (row,) = self._rows(
            "SELECT current_setting('server_version'), pg_database_size(current_database()),"
            " coalesce(pg_relation_size(to_regclass(%s)), 0),"
            " (SELECT extversion FROM pg_extension WHERE extname = 'vector')",
            (INDEX_NAME,),
        )
        params = self.index_params
        on = f" on {params.project}-d subspace coordinates" if params.project else ""
        index: dict[str, Any] = {
            "size": indexed,
            "metric": "cosine",
            "type": f"pgvector {row[3]} hnsw (vector_ip_ops){on}",
            "connectivity": params.connectivity,
            "expansion_add": params.expansion_add,
            "expansion_search": params.expansion_search,
            "project": params.project,
            "ef_in_use": min(self.search_breadth(), 1000),
            "memory_bytes": int(row[2]),
        }
        if params.project:  # searched exactly beside the index
            index["unprojected"] = int(
                self._rows(
                    "SELECT count(*) FROM faces WHERE person_id IS NOT NULL AND coords IS NULL"
                )[0][0]
            )
        return {
            "gallery": self.location,
            "people": self.count_people(),
            "faces": faces,
            "unassigned": faces - indexed,
            "photos": self.count_photos(),
            "model": self._get_meta("model_id"),
            "embedding_dim": int(self._get_meta("embedding_dim") or self.dim),
            "index": index,
            "threshold": threshold.value,
            "threshold_source": threshold.source,
            "server": {"postgresql": row[0], "database_bytes": int(row[1])},
        }


def _array(value: Any) -> np.ndarray:
    """A pgvector value (``pgvector.Vector`` or array) as a float32 numpy vector."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value, np.float32)
