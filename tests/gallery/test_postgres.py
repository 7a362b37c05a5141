"""The PostgreSQL gallery beyond the shared contract: one-line errors, the real models through a
``postgresql://`` gallery, the CLI, and ``migrate`` between a directory and a database."""

import json
import shutil
import subprocess
import sys
import uuid
from dataclasses import replace
from urllib.parse import urlsplit

import numpy as np
import pytest

from conftest import FACES, REPO
from facesearch.errors import GalleryError, InputError
from facesearch.gallery import open_gallery
from facesearch.gallery.migrate import migrate
from facesearch.gallery.postgres import SCHEMA_VERSION
from facesearch.types import FaceRecord
from fakes import one_line_error, run, v1_records, v2_records

MODEL, DIM = "test-model", 32
BBT2 = FACES / "bbt" / "group" / "bbt2.jpg"
VAL = FACES / "celebrity5" / "val"


def with_user(url, user, password=None):
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    auth = user if password is None else f"{user}:{password}"
    return parts._replace(netloc=f"{auth}@{host}").geturl()


def face(person, i, dim=DIM):
    v = np.random.default_rng(i).standard_normal(dim).astype(np.float32)
    return FaceRecord(person, f"{person}/{i}.jpg", f"{person}-{i}", (0, 0, 1, 1), 0.9, v)


# -- errors ---------------------------------------------------------------------------------------


def test_unreachable_server_is_one_line(capsys):
    url = "postgresql://facesearch@127.0.0.1:1/gallery"
    with pytest.raises(GalleryError, match="cannot connect to the gallery"):
        open_gallery(url, MODEL, DIM)
    code, _, err = run(capsys, "--gallery", url, "people")
    assert code == 1 and "cannot connect" in one_line_error(err)


@pytest.fixture
def password_role(pg_server):
    """(user, password) of a role the server checks the password of: pgserver trusts every
    local connection, so a line asking for a password for this role goes first in pg_hba.conf."""
    from pathlib import Path

    import psycopg
    from psycopg import sql

    role, password = f"fs_pw_{uuid.uuid4().hex[:8]}", "right-password"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        if not hba.is_file() or not hba.stat().st_size or not os_writable(hba):
            pytest.skip("the server trusts connections and its pg_hba.conf is not ours to change")
        original = hba.read_text()
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        hba.write_text(
            f"local all {role} scram-sha-256\nhost all {role} all scram-sha-256\n" + original
        )
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield role, password
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            hba.write_text(original)
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def os_writable(path):
    import os

    return os.access(path, os.W_OK)


def test_wrong_password_is_one_line(pg_url, password_role, capsys):
    role, password = password_role
    url = with_user(pg_url, role, "certainly-wrong")
    with pytest.raises(GalleryError, match="wrong user name or password"):
        open_gallery(url, MODEL, DIM)
    code, _, err = run(capsys, "--gallery", url, "people")
    line = one_line_error(err)
    assert code == 1 and "wrong user name or password" in line and "certainly-wrong" not in line
    # the right password gets in (and finds no gallery yet)
    with pytest.raises(GalleryError, match="enroll people first"):
        open_gallery(with_user(pg_url, role, password), MODEL, DIM)


@pytest.fixture
def no_vector_url(pg_server):
    """A database owned by a non-superuser, without the vector extension (which it cannot add)."""
    import psycopg
    from psycopg import sql

    role = f"fs_plain_{uuid.uuid4().hex[:8]}"
    db = f"fs_novector_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(role))
        )
    from conftest import pg_database_url

    yield with_user(pg_database_url(pg_server, db), role)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_database_without_vector_extension_says_how_to_add_it(no_vector_url, capsys):
    for writable in (False, True):
        with pytest.raises(GalleryError, match=r"CREATE EXTENSION vector; .* pgvector/pgvector"):
            open_gallery(no_vector_url, MODEL, DIM, writable=writable)
    code, _, err = run(capsys, "--gallery", no_vector_url, "info")
    assert code == 1 and "CREATE EXTENSION vector" in one_line_error(err)


def test_missing_psycopg_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(GalleryError, match=r"pip install 'facesearch\[postgres\]'"):
        open_gallery("postgresql://localhost/gallery", MODEL, DIM)


def test_facesearch_never_imports_psycopg_for_a_directory(tmp_path):
    code = (
        "import sys, numpy as np, facesearch, facesearch.cli;"
        "from facesearch.gallery import open_gallery;"
        f"open_gallery({str(tmp_path / 'g')!r}, 'm', 4, writable=True).close();"
        "assert not [m for m in sys.modules if m.startswith(('psycopg', 'pgvector'))]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_server_error_mid_batch_rolls_the_batch_back(pg_url):
    with open_gallery(pg_url, MODEL, DIM, writable=True) as g:
        g.add([face("ann", 0)])
        bad = [face("bob", 1), face("cy", 2), face("dee", 3, dim=DIM + 1), face("eve", 4)]
        with pytest.raises(GalleryError, match="rolled back"):
            g.add(bad)  # the server refuses the third vector
        assert [p.name for p in g.people()] == ["ann"] and g.count_faces() == 1


def test_postgres_url_in_environment_is_kept(monkeypatch):
    from facesearch.config import resolve_gallery_location

    monkeypatch.setenv("FACESEARCH_GALLERY", "postgresql://u:pw@db.example/faces")
    assert resolve_gallery_location() == "postgresql://u:pw@db.example/faces"
    monkeypatch.setenv("FACESEARCH_GALLERY", "~/g")
    assert str(resolve_gallery_location()).endswith("/g")


# -- real models ----------------------------------------------------------------------------------


def val_photos():
    return [(p.name, sorted(p.iterdir())[0]) for p in sorted(VAL.iterdir())]


def test_enroll_and_identify_with_a_postgres_gallery(pg_url, tmp_path, detector, embedder):
    from facesearch import FaceSearch

    train = tmp_path / "train"
    for person in sorted((FACES / "celebrity5" / "train").iterdir()):
        (train / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:4]:
            shutil.copy(photo, train / person.name / photo.name)
    with FaceSearch(pg_url, detector=detector, embedder=embedder) as fs:
        assert fs.gallery_dir is None and fs.gallery_location == pg_url
        report = fs.enroll(train)
        assert report.enrolled >= 15 and len(report.added) == 5
        again = fs.enroll(train)  # photos already there are skipped
        assert again.enrolled == 0
        for name, photo in val_photos():
            faces = fs.identify(photo).faces
            assert name in {f.name for f in faces}, (name, photo)
        info = fs.info()
        assert info["people"] == 5 and "pgvector" in info["index"]["type"]
        assert (info["index"]["project"], info["index"]["unprojected"]) == (64, 0)
        assert fs.remove("madonna") >= 1
        assert "madonna" not in {p.name for p in fs.people()}


def identify_all(fs, photos):
    out = []
    for photo in photos:
        for f in fs.identify(photo).faces:
            if f.quality == "ok":  # a face below the quality gate is not searched
                out.append((f.name, round(f.distance, 4), [c.name for c in f.candidates]))
    return out


def test_migrate_directory_to_postgres_and_back(
    enrolled, pg_url, tmp_path, capsys, make_fs, embedder
):
    gallery, _ = enrolled
    code, out, err = run(capsys, "migrate", gallery, pg_url, "--no-progress")
    assert code == 0, err
    assert "Copied" in out and "13 people" in out
    back = tmp_path / "back"
    code, out, err = run(capsys, "migrate", pg_url, back, "--no-progress")
    assert code == 0, err
    code, out, err = run(capsys, "migrate", gallery, pg_url, "--no-progress")  # a re-run
    assert code == 0 and "Copied 0 face(s)" in out, err

    photos = [BBT2] + [p for _, p in val_photos()]
    results = [identify_all(make_fs(loc), photos) for loc in (gallery, pg_url, back)]
    names = [[r[0] for r in res] for res in results]
    assert names[0] == names[1] == names[2]
    for res in results[1:]:
        assert [r[1] for r in res] == pytest.approx([r[1] for r in results[0]], abs=2e-4)
    counts = []
    for loc in (gallery, pg_url, back):
        with open_gallery(loc, embedder.model_id, embedder.dim) as g:
            counts.append((g.count_people(), g.count_faces()))
    assert counts[0] == counts[1] == counts[2]

    code, out, err = run(capsys, "--gallery", pg_url, "identify", BBT2, "--json")
    assert code == 0, err
    (result,) = json.loads(out)["results"]
    assert {f["name"] for f in result["faces"]} == {"leonard", "sheldon", None}
    assert result["threshold_source"].startswith("default for 13 people with ")

    code, out, err = run(capsys, "--gallery", pg_url, "info", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert (info["people"], info["faces"]) == counts[0] and "***" not in info["gallery"]
    assert info["index"]["type"].startswith("pgvector") and info["weights"]
    # the directory's basis came along: the index is on the model's subspace coordinates
    assert (info["index"]["project"], info["index"]["unprojected"]) == (64, 0)
    code, out, err = run(capsys, "--gallery", pg_url, "people")
    assert code == 0 and len(out.splitlines()) == 13, err
    code, out, err = run(
        capsys, "--gallery", pg_url, "reindex", "--connectivity", "8", "--ef-construction", "32"
    )
    assert code == 0 and "M=8, ef_construction=32" in out and "of 64-d projections" in out, err
    code, out, err = run(capsys, "--gallery", pg_url, "reindex", "--project", "off")
    assert code == 0 and "M=8" in out and "projections" not in out, err
    assert identify_all(make_fs(pg_url), photos) == results[1]
    code, out, err = run(capsys, "--gallery", pg_url, "reindex", "--project", "on")
    assert code == 0 and "of 64-d projections" in out, err
    code, _, err = run(capsys, "--gallery", pg_url, "reindex", "--dtype", "i8")
    assert code == 1 and "do not apply" in one_line_error(err)


def test_migrate_resumes_and_checks_counts(tmp_path, pg_url):
    src = str(tmp_path / "src")
    with open_gallery(src, MODEL, DIM, writable=True) as g:
        g.add([face(f"p{i % 4}", i) for i in range(40)])
    with open_gallery(pg_url, MODEL, DIM, writable=True) as g:
        g.add([face(f"p{i % 4}", i) for i in range(0, 40, 3)])  # an interrupted earlier run
    report = migrate(src, pg_url, MODEL, DIM, batch=7)
    assert (report.copied, report.skipped, report.people, report.faces) == (26, 14, 4, 40)
    with open_gallery(pg_url, MODEL, DIM, writable=True) as g:
        g.add([face("stranger", 99)])
    with pytest.raises(GalleryError, match="has 5 people and 41 faces"):
        migrate(src, pg_url, MODEL, DIM)


def test_reindex_with_parameters_keeps_them(pg_url):
    from facesearch.gallery.index import IndexParams

    with open_gallery(pg_url, MODEL, DIM, writable=True) as g:
        g.add([face(f"p{i}", i) for i in range(20)])
        assert (g.index_params.connectivity, g.index_params.expansion_add) == (16, 64)
        with pytest.raises(InputError, match=r"connectivity \(m\)"):
            g.reindex(IndexParams(connectivity=200, dtype="f32", rerank=0))
        with pytest.raises(InputError, match="--dtype and --rerank do not apply"):
            g.reindex(IndexParams(connectivity=8, expansion_add=32))
        # no subspace given and none recorded: full vectors
        assert g.reindex(IndexParams(dtype="f32", rerank=0, project=64)) == 20
        assert g.index_params.project == 0
        assert g.reindex(IndexParams(connectivity=8, expansion_add=32, dtype="f32", rerank=0)) == 20
    with open_gallery(pg_url, MODEL, DIM) as g:
        assert g.info()["index"]["connectivity"] == 8
        assert g.search(face("p3", 3).embedding[None], 1)[0][0].name == "p3"


def has_hnsw(url):
    with open_gallery(url, MODEL, DIM) as g:
        return g.conn.execute("SELECT to_regclass('faces_embedding')").fetchone()[0] is not None


def test_migrate_into_an_empty_database_builds_the_index_once(tmp_path, pg_url):
    src = str(tmp_path / "src")
    with open_gallery(src, MODEL, DIM, writable=True) as g:
        g.add([face(f"p{i % 4}", i) for i in range(30)])
    assert migrate(src, pg_url, MODEL, DIM, batch=8).copied == 30
    assert has_hnsw(pg_url)
    with open_gallery(pg_url, MODEL, DIM) as g:
        assert g.search(face("p1", 5).embedding[None], 1)[0][0].name == "p1"


def test_interrupted_bulk_load_gets_its_index_back(pg_url):
    with open_gallery(pg_url, MODEL, DIM, writable=True) as g:
        with pytest.raises(KeyboardInterrupt), g.bulk_load():
            g.add([face("ann", 1)])
            raise KeyboardInterrupt
    assert not has_hnsw(pg_url)
    with open_gallery(pg_url, MODEL, DIM) as g:  # readers still find everyone (exact scan)
        assert g.search(face("ann", 1).embedding[None], 1)[0][0].name == "ann"
    open_gallery(pg_url, MODEL, DIM, writable=True).close()
    assert has_hnsw(pg_url)


def test_lost_connection_is_a_gallery_error(pg_url, pg_server):
    import psycopg

    with open_gallery(pg_url, MODEL, DIM, writable=True) as g:
        g.add([face("ann", 1)])
        pid = g.conn.info.backend_pid
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(GalleryError, match="reading the gallery failed"):
            g.people()
        with pytest.raises(GalleryError):
            g.add([face("bob", 2)])
    with open_gallery(pg_url, MODEL, DIM) as g:
        assert [p.name for p in g.people()] == ["ann"]


@pytest.mark.parametrize(
    "version, ok",
    [("0.4.4", False), ("0.5.0", True), ("0.6.2", True), ("0.10.1", True), ("1.0", True)],
)
def test_pgvector_needs_hnsw(version, ok):
    from facesearch.gallery.postgres import pgvector_has_hnsw

    assert pgvector_has_hnsw(version) is ok


WRITER = """
import sys, numpy as np
from facesearch.gallery import open_gallery
from facesearch.types import FaceRecord
url, w = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(w)
with open_gallery(url, "test-model", 32, writable=True) as g:
    for b in range(10):
        names = ["shared", f"own{w}"] if b % 2 else [f"own{w}", "shared"]
        g.add([
            FaceRecord(n, f"{n}/{w}-{b}-{i}", f"{n}-{w}-{b}-{i}", (0, 0, 1, 1), 0.9, v / np.linalg.norm(v))
            for n in names for i, v in enumerate(rng.standard_normal((3, 32)).astype(np.float32))
        ])
"""


def test_two_processes_enrolling_at_once_lose_nothing(pg_url):
    open_gallery(pg_url, MODEL, DIM, writable=True).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, pg_url, str(w)], cwd=REPO) for w in range(2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with open_gallery(pg_url, MODEL, DIM) as g:
        assert {p.name: p.faces for p in g.people()} == {"shared": 60, "own0": 30, "own1": 30}
        shared = [r for chunk in g.export_faces() for r in chunk if r.person == "shared"]
        total = np.sum([r.embedding for r in shared], axis=0)
        q = total / np.linalg.norm(total)
        # the template kept in the database is the mean of all 60 faces, whoever added them
        assert g.search(q[None], 1)[0][0].distance == pytest.approx(0, abs=1e-5)


# -- a schema-1 gallery, as the release before schema 2 created it ---------------------------------

V1_DDL = [
    "CREATE EXTENSION IF NOT EXISTS vector",
    "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS people ( id bigserial PRIMARY KEY, name text NOT NULL UNIQUE,"
    " created timestamptz NOT NULL DEFAULT now(), template_sum vector(32))",
    "CREATE TABLE IF NOT EXISTS faces ( id bigserial PRIMARY KEY,"
    " person_id bigint NOT NULL REFERENCES people(id) ON DELETE CASCADE, source text NOT NULL,"
    " sha256 text NOT NULL UNIQUE, box real[] NOT NULL, score real NOT NULL,"
    " embedding vector(32) NOT NULL, created timestamptz NOT NULL DEFAULT now())",
    "CREATE INDEX IF NOT EXISTS faces_person ON faces (person_id)",
    "CREATE INDEX IF NOT EXISTS faces_embedding ON faces USING hnsw (embedding vector_ip_ops)"
    " WITH (m = 16, ef_construction = 64)",
]
V1_META = {
    "schema_version": "1",
    "index_params": json.dumps(
        {
            "connectivity": 16,
            "expansion_add": 64,
            "expansion_search": 0,
            "dtype": "i8",
            "rerank": 64,
        }
    ),
    "generation": "1",
    "model_id": MODEL,
    "embedding_dim": str(DIM),
    "threshold": "0.3",
    "threshold_source": "calibrated for the fixture",
}


@pytest.fixture
def v1_database(pg_url):
    """A database with the schema-1 tables and the records of tests/data/gallery_v1."""
    import psycopg
    from pgvector.psycopg import register_vector

    recs = v1_records()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in V1_DDL:
            conn.execute(statement)
        register_vector(conn)
        with conn.transaction():
            for key, value in V1_META.items():
                conn.execute("INSERT INTO meta VALUES (%s, %s)", (key, value))
            for r in recs:
                conn.execute(
                    "INSERT INTO people (name) VALUES (%s) ON CONFLICT DO NOTHING", (r.person,)
                )
                conn.execute(
                    "INSERT INTO faces (person_id, source, sha256, box, score, embedding)"
                    " SELECT id, %s, %s, %s, %s, %s FROM people WHERE name = %s",
                    (r.source_path, r.image_sha256, list(r.box), r.score, r.embedding, r.person),
                )
            conn.execute(
                "UPDATE people p SET template_sum = s.total FROM (SELECT person_id,"
                " sum(embedding) AS total FROM faces GROUP BY person_id) s WHERE p.id = s.person_id"
            )
    return pg_url, recs


def pg_schema(url):
    import psycopg

    with psycopg.connect(url) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        nullable = conn.execute(
            "SELECT is_nullable FROM information_schema.columns"
            " WHERE table_name = 'faces' AND column_name = 'person_id'"
        ).fetchone()[0]
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'faces'"
            )
        }
        index = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'faces_embedding'"
        ).fetchone()
    return int(version), nullable == "YES", "thumbnail" in columns, index and index[0]


def check_v1_content(g, recs):
    assert {p.name: p.faces for p in g.people()} == {"ann": 3, "bob": 2, "Zoë": 1}
    hits = g.search(np.stack([r.embedding for r in recs]), k_people=2)
    assert [h[0].name for h in hits] == [r.person for r in recs]
    assert all(h[0].distance < 1e-4 for h in hits)
    ann = np.sum([r.embedding for r in recs if r.person == "ann"], axis=0)
    best = g.search((ann / np.linalg.norm(ann))[None], k_people=1)[0][0]
    assert best.name == "ann" and best.distance == pytest.approx(0, abs=1e-5)  # template kept
    assert g.threshold().value == 0.3
    assert [(f.person, f.source_path, f.box) for f in g.faces() if f.person] == [
        (r.person, r.source_path, r.box) for r in recs
    ]


def test_v1_postgres_gallery_reads_as_it_is(v1_database):
    url, recs = v1_database
    with open_gallery(url, MODEL, DIM) as g:
        check_v1_content(g, recs)
        assert g.count_unassigned() == 0 and not any(f.has_thumbnail for f in g.faces())
        assert g.thumbnail(g.faces()[0].id) is None
        assert [r.thumbnail for chunk in g.export_faces() for r in chunk] == [None] * 6
    version, nullable, thumbnails, index = pg_schema(url)
    assert (version, nullable, thumbnails) == (1, False, False) and "WHERE" not in index


def test_v1_postgres_gallery_is_upgraded_by_a_write(v1_database):
    url, recs = v1_database
    with open_gallery(url, MODEL, DIM, writable=True) as g:
        check_v1_content(g, recs)
        loose = FaceRecord(None, "x.jpg", "loose", (0, 0, 1, 1), 0.9, recs[0].embedding, b"jpg")
        (face_id,) = g.add([loose])
        assert g.thumbnail(face_id) == b"jpg" and g.count_unassigned() == 1
        assert g.search(recs[0].embedding[None], k_people=1)[0][0].name == "ann"
    version, nullable, thumbnails, index = pg_schema(url)
    assert (version, nullable, thumbnails) == (SCHEMA_VERSION, True, True)
    assert "WHERE (person_id IS NOT NULL)" in index  # rebuilt as the partial index
    with open_gallery(url, MODEL, DIM) as g:
        check_v1_content(g, recs)


def test_failed_postgres_upgrade_changes_nothing(v1_database, monkeypatch):
    from psycopg import sql

    from facesearch.gallery import postgres

    url, recs = v1_database
    real = postgres._schema_v2
    monkeypatch.setattr(
        postgres, "_schema_v2", lambda: [*real(), sql.SQL("SELECT no_such_function()")]
    )
    with pytest.raises(GalleryError, match="cannot create the gallery"):
        open_gallery(url, MODEL, DIM, writable=True)
    version, nullable, thumbnails, index = pg_schema(url)
    assert (version, nullable, thumbnails) == (1, False, False) and index
    monkeypatch.undo()
    with open_gallery(url, MODEL, DIM, writable=True) as g:
        check_v1_content(g, recs)
    assert pg_schema(url)[0] == SCHEMA_VERSION


# -- a schema-2 gallery, as the release before the photo library created it ----------------------

V2_DDL = [
    *V1_DDL[:-1],
    "ALTER TABLE faces ALTER COLUMN person_id DROP NOT NULL",
    "ALTER TABLE faces ADD COLUMN IF NOT EXISTS thumbnail bytea",
    "CREATE INDEX IF NOT EXISTS faces_embedding ON faces USING hnsw (embedding vector_ip_ops)"
    " WITH (m = 16, ef_construction = 64) WHERE person_id IS NOT NULL",
]


@pytest.fixture
def v2_database(pg_url):
    """A database with the schema-2 tables and the records of tests/data/gallery_v2."""
    import psycopg
    from pgvector.psycopg import register_vector

    recs = v2_records()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in V2_DDL:
            conn.execute(statement)
        register_vector(conn)
        with conn.transaction():
            for key, value in {**V1_META, "schema_version": "2"}.items():
                conn.execute("INSERT INTO meta VALUES (%s, %s)", (key, value))
            for r in recs:
                if r.person is not None:
                    conn.execute(
                        "INSERT INTO people (name) VALUES (%s) ON CONFLICT DO NOTHING", (r.person,)
                    )
                conn.execute(
                    "INSERT INTO faces (person_id, source, sha256, box, score, embedding,"
                    " thumbnail) VALUES ((SELECT id FROM people WHERE name = %s),"
                    " %s, %s, %s, %s, %s, %s)",
                    (
                        r.person,
                        r.source_path,
                        r.image_sha256,
                        list(r.box),
                        r.score,
                        r.embedding,
                        r.thumbnail,
                    ),
                )
            conn.execute(
                "UPDATE people p SET template_sum = s.total FROM (SELECT person_id,"
                " sum(embedding) AS total FROM faces GROUP BY person_id) s WHERE p.id = s.person_id"
            )
    return pg_url, recs


def check_v2_content(g, recs):
    assert {p.name: p.faces for p in g.people()} == {"ann": 3, "bob": 2}
    assert (g.count_faces(), g.count_unassigned()) == (7, 2)
    people = [r for r in recs if r.person]
    hits = g.search(np.stack([r.embedding for r in people]), k_people=2)
    assert [h[0].name for h in hits] == [r.person for r in people]
    assert g.threshold().value == 0.3
    faces = g.faces()
    assert [(f.person, f.source_path, f.box) for f in faces] == [
        (r.person, r.source_path, r.box) for r in recs
    ]
    assert [g.thumbnail(f.id) for f in faces] == [r.thumbnail for r in recs]


def test_v2_postgres_gallery_reads_as_it_is(v2_database):
    url, recs = v2_database
    with open_gallery(url, MODEL, DIM) as g:
        check_v2_content(g, recs)
        assert g.photos() == [] and len(g.loose_faces()) == 0 and g.faces(cluster=1) == []
    assert pg_schema(url)[0] == 2


def test_v2_postgres_gallery_is_upgraded_by_a_write(v2_database):
    from facesearch.types import ScannedPhoto

    url, recs = v2_database
    with open_gallery(url, MODEL, DIM, writable=True) as g:
        check_v2_content(g, recs)
        assert len(g.loose_faces()) == 2
        loose = [replace(r, source_path="/p/x.jpg", image_sha256="x") for r in recs[:2]]
        assert len(g.add_photos([ScannedPhoto("/p/x.jpg", "x", 1, 1.0, tuple(loose))])) == 2
        with pytest.raises(GalleryError, match="nothing was written"):
            g.add([recs[0]])  # enroll's dedupe: one enrolled subject per photo
    assert pg_schema(url)[0] == SCHEMA_VERSION
    with open_gallery(url, MODEL, DIM) as g:
        check_v2_content_after = (g.count_faces(), g.count_unassigned(), g.count_photos())
        assert check_v2_content_after == (9, 4, 1)


def test_failed_postgres_v3_upgrade_changes_nothing(v2_database, monkeypatch):
    from psycopg import sql

    from facesearch.gallery import postgres

    url, recs = v2_database
    real = postgres._schema_v3
    monkeypatch.setattr(
        postgres, "_schema_v3", lambda: [*real(), sql.SQL("SELECT no_such_function()")]
    )
    with pytest.raises(GalleryError, match="cannot create the gallery"):
        open_gallery(url, MODEL, DIM, writable=True)
    assert pg_schema(url)[0] == 2
    monkeypatch.undo()
    with open_gallery(url, MODEL, DIM, writable=True) as g:
        check_v2_content(g, recs)
    assert pg_schema(url)[0] == SCHEMA_VERSION


# -- migrate: unassigned faces and thumbnails ------------------------------------------------------


def test_migrate_carries_unassigned_faces_and_thumbnails(tmp_path, pg_url):
    from fakes import records

    rng = np.random.default_rng(5)
    recs = records(rng, "ann", 3, thumbnail=b"a") + records(rng, None, 4, thumbnail=b"u")
    recs += records(rng, "bob", 2) + records(rng, None, 1, tag="more")
    src, back = str(tmp_path / "src"), str(tmp_path / "back")
    with open_gallery(src, MODEL, DIM, writable=True) as g:
        g.add(recs)
    assert migrate(src, pg_url, MODEL, DIM, batch=4).copied == 10
    assert migrate(pg_url, back, MODEL, DIM, batch=3).copied == 10
    again = migrate(src, pg_url, MODEL, DIM)
    assert (again.copied, again.skipped) == (0, 10)
    for location in (pg_url, back):
        with open_gallery(location, MODEL, DIM) as g:
            out = [r for chunk in g.export_faces() for r in chunk]
            assert [(r.person, r.image_sha256, r.thumbnail) for r in out] == [
                (r.person, r.image_sha256, r.thumbnail) for r in recs
            ]
            assert all(np.array_equal(a.embedding, b.embedding) for a, b in zip(out, recs))
            assert (g.count_people(), g.count_faces(), g.count_unassigned()) == (2, 10, 5)
    with open_gallery(pg_url, MODEL, DIM, writable=True) as g:
        g.assign_faces([g.face_of_hash(recs[3].image_sha256).id], "cy")
    with pytest.raises(GalleryError, match="unassigned in .* but enrolled as 'cy' in"):
        migrate(src, pg_url, MODEL, DIM)


def test_each_search_sets_its_breadth_whatever_the_connection_did_before(pg_url):
    """pgvector returns at most ``hnsw.ef_search`` faces (40 by default): each search sets it
    with its statement, so no earlier RESET or rolled-back SET on the connection narrows it."""
    recs = [face(f"p{p}", p) for p in range(120)]
    with open_gallery(pg_url, MODEL, DIM, writable=True) as g:
        g.add(recs)
    with open_gallery(pg_url, MODEL, DIM) as g:
        for plan in ("seqscan", "bitmapscan", "sort"):  # the HNSW index, even for so few faces
            g.conn.execute(f"SET enable_{plan} = off")
        query = recs[0].embedding[None]
        assert len(g.search(query, k_people=100)[0]) == 100
        g.conn.execute("RESET hnsw.ef_search")
        assert len(g.search(query, k_people=100)[0]) == 100
        with pytest.raises(RuntimeError), g.conn.transaction():
            g.conn.execute("SET hnsw.ef_search = 10")
            raise RuntimeError("roll back")
        assert len(g.search(query, k_people=100)[0]) == 100
        g.conn.execute("SET hnsw.ef_search = 10")
        assert len(g.search(query, k_people=100)[0]) == 100


# -- the index on the model's subspace coordinates -------------------------------------------------

K = 8  # the synthetic model's embeddings lie in an 8-d subspace of the 32 dimensions
BASIS = np.linalg.qr(np.random.default_rng(42).standard_normal((DIM, K)))[0].astype(np.float32)


def in_subspace(person, n, seed, tag=""):
    """``n`` faces of ``person`` whose embeddings lie in BASIS's subspace."""
    v = np.random.default_rng(seed).standard_normal((n, K)).astype(np.float32) @ BASIS.T
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return [
        FaceRecord(person, f"{person}/{tag}{i}.jpg", f"{person}{tag}-{i}", (0, 0, 9, 9), 0.9, e)
        for i, e in enumerate(v)
    ]


def open_projected(url, writable=False):
    return open_gallery(url, MODEL, DIM, writable=writable, subspace=lambda: BASIS)


def as_numpy(value):
    """A vector as pgvector-python gives it: a ``Vector`` (0.3 and later) or an array."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, np.float32)


def assert_coords_follow_embeddings(url):
    """Every stored face has its coordinates in BASIS, but those outside its subspace."""
    import psycopg
    from pgvector.psycopg import register_vector

    with psycopg.connect(url) as conn:
        register_vector(conn)
        rows = conn.execute("SELECT id, embedding, coords FROM faces").fetchall()
    assert rows
    for fid, embedding, coords in rows:
        e = as_numpy(embedding)
        if np.linalg.norm(e @ BASIS) ** 2 >= 0.999 * np.linalg.norm(e) ** 2:
            assert coords is not None, fid
            assert np.allclose(as_numpy(coords), e @ BASIS, atol=1e-5), fid
        else:
            assert coords is None, fid


def test_new_gallery_indexes_subspace_coordinates(pg_url):
    from facesearch.gallery.postgres import _search_statement

    recs = [r for p in range(40) for r in in_subspace(f"p{p}", 5, seed=p)]
    odd = face("odd", 7)  # a random 32-d unit vector: outside the subspace
    odd = replace(odd, embedding=odd.embedding / np.linalg.norm(odd.embedding))
    with open_projected(pg_url, writable=True) as g:
        g.add(recs[:100])
        g.add([*recs[100:], odd])
        params, info = g.index_params, g.info()["index"]
        assert (params.project, info["project"], info["unprojected"]) == (K, K, 1)
        assert info["type"].endswith("on 8-d subspace coordinates")
        plan = "\n".join(
            r[0]
            for r in g.conn.execute(
                "EXPLAIN " + _search_statement(K),
                {"q": [odd.embedding], "c": [odd.embedding @ BASIS], "k": 64, "vectors": False},
            )
        )
        assert "Index Scan using faces_embedding" in plan
    assert_coords_follow_embeddings(pg_url)
    everyone = [*recs, odd]
    queries = np.stack([r.embedding for r in everyone])
    noisy = queries[:, :] + 0.3 * np.random.default_rng(9).standard_normal(queries.shape)
    noisy = (noisy @ BASIS @ BASIS.T).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    owners = np.array([r.person for r in everyone])
    names = sorted(set(owners))
    # scoring.score_people: a person's distance is that of their closest face or template
    sims = []
    for name in names:
        faces = queries[owners == name]
        template = faces.sum(0) / np.linalg.norm(faces.sum(0))
        sims.append(np.maximum((noisy @ faces.T).max(1), noisy @ template))
    nearest = [names[i] for i in np.argmax(np.stack(sims, 1), axis=1)]
    with open_gallery(pg_url, MODEL, DIM) as g:  # read-only, and without the model's subspace
        assert np.array_equal(g.basis, BASIS) and g.index_params.project == K
        hits = g.search(queries, k_people=2)
        # each face found by its coordinates (odd: exactly, beside the index), scored exactly
        assert [h[0].name for h in hits] == [r.person for r in everyone]
        assert max(h[0].distance for h in hits) < 1e-5
        assert [h[0].name for h in g.search(noisy, k_people=1)] == nearest


def test_every_write_keeps_the_coordinates(pg_url):
    from facesearch.types import ScannedPhoto

    with open_projected(pg_url, writable=True) as g:
        g.add(in_subspace("ann", 3, seed=1) + in_subspace(None, 2, seed=2, tag="u"))
        scanned = in_subspace(None, 3, seed=3, tag="s")
        photo = ScannedPhoto(
            "/lib/s.jpg", "s", 1, 1.0, tuple(replace(r, image_sha256="s") for r in scanned)
        )
        ids = g.add_photos([photo])
        assert_coords_follow_embeddings(pg_url)
        g.assign_faces(ids[:2], "bob")  # scanned faces of no one become searchable
        hits = g.search(np.stack([r.embedding for r in scanned[:2]]), k_people=1)
        assert [(h[0].name, h[0].face_id) for h in hits] == [("bob", ids[0]), ("bob", ids[1])]
        # enrolling the third scanned face takes it over, with the new embedding
        again = replace(in_subspace("cy", 1, seed=4)[0], image_sha256="s", box=scanned[2].box)
        assert g.add([again]) == [ids[2]]
        assert_coords_follow_embeddings(pg_url)
        (hit,) = g.search(again.embedding[None], k_people=1)[0][:1]
        assert (hit.name, hit.face_id) == ("cy", ids[2]) and hit.distance < 1e-5


def test_upgraded_gallery_is_projected_by_reindex(v2_database, monkeypatch):
    from facesearch.gallery import postgres
    from facesearch.gallery.index import IndexParams

    url, recs = v2_database
    monkeypatch.setattr(postgres, "SCHEMA_VERSION", 3)  # as the release before this one left it
    open_gallery(url, MODEL, DIM, writable=True).close()
    monkeypatch.undo()
    assert pg_schema(url)[0] == 3
    with open_projected(url, writable=True) as g:  # upgraded: no coordinates, full vectors
        assert pg_schema(url)[0] == SCHEMA_VERSION
        assert g.index_params.project == 0 and g.basis is None
        check_v2_content(g, recs)
        new = in_subspace("cy", 4, seed=5)
        g.add(new)
    with open_projected(url, writable=True) as g:
        full = g.index_params
        assert g.reindex(replace(full, project=1)) == 9
        assert g.index_params.project == K and np.array_equal(g.basis, BASIS)
        assert g.info()["index"]["unprojected"] == 5  # the old random vectors, outside it
    assert_coords_follow_embeddings(url)
    assert "(coords)::vector(8)" in pg_schema(url)[3]
    for project in (K, 0):
        with open_gallery(url, MODEL, DIM, writable=True) as g:
            if not project:
                g.reindex(replace(g.index_params, project=0))
                assert "(embedding vector_ip_ops)" in pg_schema(url)[3]
            assert g.index_params.project == project
            people = [r for r in recs if r.person] + new
            hits = g.search(np.stack([r.embedding for r in people]), k_people=1)
            assert [h[0].name for h in hits] == [r.person for r in people]
    with pytest.raises(InputError, match="do not apply"):
        with open_gallery(url, MODEL, DIM, writable=True) as g:
            g.reindex(IndexParams(project=8))  # dtype i8


def test_migrate_carries_the_basis_both_ways(tmp_path, pg_url):
    src, back = str(tmp_path / "src"), str(tmp_path / "back")
    recs = in_subspace("ann", 4, seed=1) + in_subspace("bob", 4, seed=2)
    with open_projected(src, writable=True) as g:
        g.add(recs)
    assert migrate(src, pg_url, MODEL, DIM).copied == 8
    assert migrate(pg_url, back, MODEL, DIM).copied == 8
    for location in (pg_url, back):
        with open_gallery(location, MODEL, DIM) as g:
            assert np.array_equal(g.basis, BASIS) and g.index_params.project == K
            hits = g.search(np.stack([r.embedding for r in recs]), k_people=1)
            assert [h[0].name for h in hits] == [r.person for r in recs]
    assert_coords_follow_embeddings(pg_url)
