"""Shared helpers for the benchmarks: where the data is, the shared weights, a PostgreSQL server."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FACESEARCH_SHARED", REPO.parent / "shared"))
FACES = SHARED / "faces"
LFW_DEV = FACES / "lfw_dev" / "images"
CACHE = REPO / ".cache"
# the group photos under FACES the detection benchmarks measure
GROUPS = [
    "bbt/group/bbt1.jpg",
    "bbt/group/bbt2.jpg",
    "facenet_pytorch_data/multiface.jpg",
    "face_recognition_examples/examples/two_people.jpg",
    "face_recognition_examples/examples/knn_examples/test/obama_and_biden.jpg",
    "face_recognition_examples/examples/knn_examples/test/kit_with_rose.jpg",
]


def cpu_line() -> str:
    """The CPU model and the flags that matter for the models' kernels (from lscpu): every
    speed table says which CPU it was measured on."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = set(info.get("Flags", "").split())
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"]
    have = [f for f in wanted if f in flags] or ["no AVX2"]
    model = info.get("Model name", "?").strip()
    return f"{model}, {info.get('CPU(s)', '?').strip()} CPUs; flags: {' '.join(have)}"


def use_shared_models() -> None:
    """Point facesearch at ../shared/models unless the caller chose a directory."""
    if "FACESEARCH_MODELS" not in os.environ and (SHARED / "models").is_dir():
        os.environ["FACESEARCH_MODELS"] = str(SHARED / "models")


def person_photos(root: Path) -> dict[str, list[Path]]:
    """{person: sorted photo paths} for a folder-per-person set."""
    return {
        d.name: sorted(p for p in d.iterdir() if p.is_file())
        for d in sorted(root.iterdir())
        if d.is_dir()
    }


# -- PostgreSQL ---------------------------------------------------------------------------------

# A throwaway server's settings: shared_buffers holds a 100k-face HNSW index and its table
# (pgvector reads them through it; the default 128MB would send most page reads to the OS cache),
# and maintenance_work_mem holds the graph while CREATE INDEX builds it in memory.
PG_SETTINGS = {"shared_buffers": "1GB", "maintenance_work_mem": "1GB"}


class PgServer:
    """A PostgreSQL server with pgvector: a throwaway pgserver in ``root`` (``start``), or one at
    an admin URL (``external``; then its processes are not known and its memory is not measured)."""

    def __init__(self, url: str, handle: object | None = None) -> None:
        self.url, self.handle = url, handle

    @classmethod
    def external(cls, url: str) -> PgServer:
        return cls(url)

    @classmethod
    def start(cls, root: Path, settings: dict[str, str] | None = None) -> PgServer:
        """Start pgserver (PostgreSQL 16 + pgvector) in ``root``/pgdata with ``settings``."""
        import pgserver
        import psycopg

        server = cls("", pgserver.get_server(Path(root) / "pgdata", cleanup_mode="delete"))
        server.url = server.handle.get_uri()  # type: ignore[attr-defined]
        with psycopg.connect(server.url, autocommit=True) as conn:
            for key, value in (PG_SETTINGS if settings is None else settings).items():
                conn.execute(f"ALTER SYSTEM SET {key} = '{value}'")  # fixed names and values
        server.restart()
        return server

    def restart(self) -> None:
        """Restart a throwaway server: settings take effect and its shared buffers are empty."""
        if self.handle is None:
            return
        from pgserver._commands import pg_ctl
        from pgserver.utils import PostmasterInfo

        h = self.handle
        pg_ctl(["-w", "restart"], pgdata=h.pgdata, user=h.system_user, timeout=60)  # type: ignore[attr-defined]
        for _ in range(100):
            info = PostmasterInfo.read_from_pgdata(h.pgdata)  # type: ignore[attr-defined]
            if info is not None and info.is_running() and info.status == "ready":
                break
            time.sleep(0.1)
        h._postmaster_info = info  # type: ignore[attr-defined]  # pgserver stops this pid at exit

    @property
    def pid(self) -> int | None:
        """The postmaster's process id (a throwaway server only)."""
        return None if self.handle is None else self.handle.get_pid()  # type: ignore[attr-defined]

    def database(self, name: str, fresh: bool = True) -> str:
        """The URL of database ``name`` on this server, (re)created empty if ``fresh``."""
        from urllib.parse import urlsplit

        import psycopg
        from psycopg import sql

        if fresh:
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return urlsplit(self.url)._replace(path=f"/{name}").geturl()

    def versions(self) -> tuple[str, str]:
        """(PostgreSQL version, pgvector version) of the server."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            row = conn.execute(
                "SELECT current_setting('server_version'),"
                " (SELECT extversion FROM pg_extension WHERE extname = 'vector')"
            ).fetchone()
        return str(row[0]), str(row[1])

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cleanup()  # type: ignore[attr-defined]
            self.handle = None


def server_memory_mb(pid: int | None) -> float | None:
    """Memory of a PostgreSQL server: the proportional set size (shared buffers counted once) of
    its postmaster and every child process, in MB; None if the server's processes are unknown."""
    if pid is None:
        return None
    import psutil

    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total / 2**20
