"""``facesearch serve`` under load: requests/s and latency at 1/4/16 concurrent clients, beside
in-process sequential ``FaceSearch.identify`` on the same photos, in the same run.

A gallery is built once (a temporary one: the first photo of ``--people`` lfw_dev people with
two photos or more); the queries are their second photos and photos of people not enrolled, sent
as multipart uploads. Then:

* in-process: ``FaceSearch.identify(image_from_bytes(...))`` one after another (no server);
* server: a real ``facesearch serve`` process on a free loopback port, driven by httpx async
  clients, each sending its next request as soon as the last is answered, until ``--requests``
  are done or ``--seconds`` have passed (after ``--warmup`` requests), per client count; with
  cross-request batching (the default) and, unless ``--no-unbatched``, with ``--max-batch 1``;
* enroll under load: ``--enroll`` photos of people not enrolled, one request each, through the
  API while 4 clients identify; every identify must answer 200 and every photo be enrolled.

Latency is from sending a request to its answer, as a client sees it. Errors: any status but
200/201, or a failed request. Both sides use ``--threads`` torch threads (default: the cores).

    python benchmarks/server_bench.py [--clients 1,4,16] [--requests 240] [--seconds 60]
                                      [--people 300] [--enroll 50] [--json out/server_bench.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from _common import LFW_DEV, REPO, person_photos, use_shared_models


@dataclass
class Level:
    """One row of the table."""

    mode: str
    clients: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_batch: float | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def level(mode: str, clients: int, latencies: list[float], seconds: float, errors: int) -> Level:
    ms = [1000 * t for t in latencies]
    return Level(
        mode,
        clients,
        len(latencies),
        seconds,
        errors,
        percentile(ms, 50),
        percentile(ms, 95),
        percentile(ms, 99),
    )


# -- data -----------------------------------------------------------------------------------------


def build(people: int, enroll_n: int, workdir: Path):
    """The gallery folder to enroll, the query photos, and the photos to enroll under load."""
    photos = person_photos(LFW_DEV)
    multi = [name for name, ps in photos.items() if len(ps) >= 2][:people]
    single = [name for name, ps in photos.items() if len(ps) == 1]
    folder = workdir / "people"
    for name in multi:
        (folder / name).mkdir(parents=True)
        (folder / name / photos[name][0].name).symlink_to(photos[name][0])
    queries = [photos[name][1] for name in multi] + [photos[name][0] for name in single[:100]]
    to_enroll = [(name, photos[name][0]) for name in single[100 : 100 + enroll_n]]
    return folder, queries, to_enroll


# -- the server -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(gallery: Path, threads: int, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "facesearch", "--gallery", str(gallery), "serve"]
    proc = subprocess.Popen([*cmd, "--port", str(port), *extra], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server not ready after 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(60)


async def drive(
    url: str, payloads: list[tuple[str, bytes]], clients: int, count: int, seconds: float
) -> tuple[list[float], float, int]:
    """``clients`` concurrent clients identifying until ``count`` answers or ``seconds``."""
    import httpx

    latencies: list[float] = []
    errors = 0
    issued = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        start = time.perf_counter()

        async def client() -> None:
            nonlocal issued, errors
            while issued < count and time.perf_counter() - start < seconds:
                name, data = payloads[issued % len(payloads)]
                issued += 1
                t0 = time.perf_counter()
                try:
                    r = await http.post("/api/v1/identify", files={"file": (name, data)})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return latencies, elapsed, errors


def measure_server(url: str, payloads, clients: list[int], args, mode: str) -> list[Level]:
    import httpx

    rows = []
    asyncio.run(drive(url, payloads, max(clients), args.warmup, 60))
    for c in clients:
        before = httpx.get(f"{url}/api/v1/info").json()["server"]
        lat, elapsed, errors = asyncio.run(drive(url, payloads, c, args.requests, args.seconds))
        after = httpx.get(f"{url}/api/v1/info").json()["server"]
        row = level(mode, c, lat, elapsed, errors)
        batches = after["identify_batches"] - before["identify_batches"]
        images = after["identify_images"] - before["identify_images"]
        row.mean_batch = images / batches if batches else None
        rows.append(row)
        print(
            f"  {mode} {c:>2} clients: {row.rate:6.1f} req/s, p95 {row.p95_ms:.0f} ms", flush=True
        )
    return rows


async def enroll_under_load(url: str, payloads, to_enroll, identify_clients: int = 4) -> dict:
    """Enroll photos one request each while ``identify_clients`` clients identify."""
    import httpx

    done = asyncio.Event()
    id_latencies: list[float] = []
    id_errors = 0
    enrolled = 0
    enroll_errors = 0
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        faces_before = (await http.get("/api/v1/info")).json()["faces"]

        async def identify(k: int) -> None:
            nonlocal id_errors
            i = k
            while not done.is_set():
                name, data = payloads[i % len(payloads)]
                i += identify_clients
                t0 = time.perf_counter()
                try:
                    r = await http.post("/api/v1/identify", files={"file": (name, data)})
                    if r.status_code == 200:
                        id_latencies.append(time.perf_counter() - t0)
                    else:
                        id_errors += 1
                except httpx.HTTPError:
                    id_errors += 1

        async def enroll() -> None:
            nonlocal enrolled, enroll_errors
            try:
                for name, path in to_enroll:
                    files = {"file": (path.name, path.read_bytes())}
                    try:
                        r = await http.post(f"/api/v1/people/{name}/faces", files=files)
                        if r.status_code in (200, 201):
                            enrolled += r.json()["enrolled"]
                        else:
                            enroll_errors += 1
                    except httpx.HTTPError:
                        enroll_errors += 1
            finally:
                done.set()

        t0 = time.perf_counter()
        await asyncio.gather(enroll(), *(identify(k) for k in range(identify_clients)))
        seconds = time.perf_counter() - t0
        faces_after = (await http.get("/api/v1/info")).json()["faces"]
    return {
        "photos": len(to_enroll),
        "enrolled": enrolled,
        "enroll_errors": enroll_errors,
        "faces_added": faces_after - faces_before,
        "seconds": round(seconds, 1),
        "identify_requests": len(id_latencies),
        "identify_errors": id_errors,
        "identify_p95_ms": round(percentile([1000 * t for t in id_latencies], 95), 1),
    }


# -- in-process -----------------------------------------------------------------------------------


def in_process(gallery: Path, payloads, count: int, seconds: float) -> Level:
    from facesearch import FaceSearch, image_from_bytes

    with FaceSearch(gallery) as fs:
        fs.load_models()
        for name, data in payloads[:10]:  # warm-up
            fs.identify(image_from_bytes(data, name))
        latencies = []
        start = time.perf_counter()
        for i in range(count):
            if time.perf_counter() - start > seconds:
                break
            name, data = payloads[i % len(payloads)]
            t0 = time.perf_counter()
            fs.identify(image_from_bytes(data, name))
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    return level("in-process sequential", 1, latencies, elapsed, 0)


# -- report ---------------------------------------------------------------------------------------


def table(rows: list[Level], base: Level) -> str:
    out = [
        "| mode | clients | requests | req/s | × in-process | p50 ms | p95 ms | p99 ms | errors | mean batch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in [base, *rows]:
        batch = "" if r.mean_batch is None else f"{r.mean_batch:.1f}"
        out.append(
            f"| {r.mode} | {r.clients} | {r.requests} | {r.rate:.1f} | {r.rate / base.rate:.2f} "
            f"| {r.p50_ms:.0f} | {r.p95_ms:.0f} | {r.p99_ms:.0f} | {r.errors} | {batch} |"
        )
    return "\n".join(out)


def cpu_name() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="1,4,16", help="client counts (default 1,4,16)")
    ap.add_argument("--requests", type=int, default=240, help="requests per level (default 240)")
    ap.add_argument("--seconds", type=float, default=60, help="time limit per level (default 60)")
    ap.add_argument("--warmup", type=int, default=32, help="requests before measuring (default 32)")
    ap.add_argument("--people", type=int, default=300, help="people enrolled (default 300)")
    ap.add_argument("--enroll", type=int, default=50, help="photos enrolled under load (50)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    ap.add_argument("--no-unbatched", action="store_true", help="skip the --max-batch 1 server")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    use_shared_models()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    clients = [int(c) for c in args.clients.split(",")]

    with tempfile.TemporaryDirectory(prefix="server-bench-") as tmp:
        workdir = Path(tmp)
        folder, queries, to_enroll = build(args.people, args.enroll, workdir)
        payloads = [(p.name, p.read_bytes()) for p in queries]
        gallery = workdir / "gallery"
        from facesearch import FaceSearch

        with FaceSearch(gallery) as fs:
            report = fs.enroll(folder)
        print(
            f"gallery: {report.enrolled} faces of {len(report.added)} people; "
            f"{len(payloads)} query photos",
            flush=True,
        )

        base = in_process(gallery, payloads, args.requests, args.seconds)
        print(f"  in-process: {base.rate:.1f} req/s, p50 {base.p50_ms:.0f} ms", flush=True)
        rows: list[Level] = []
        runs = [("server, batched", ())]
        if not args.no_unbatched:
            runs.append(("server, --max-batch 1", ("--max-batch", "1")))
        enroll_result = None
        for mode, extra in runs:
            proc, url = start_server(gallery, args.threads, *extra)
            try:
                rows += measure_server(url, payloads, clients, args, mode)
                if enroll_result is None and args.enroll:
                    enroll_result = asyncio.run(enroll_under_load(url, payloads, to_enroll))
                    print(f"  enroll under load: {enroll_result}", flush=True)
            finally:
                stop_server(proc)

    print()
    print(
        f"CPU: {cpu_name()}, {os.cpu_count()} cores; torch threads {args.threads}; "
        f"{len(payloads)} lfw_dev photos (250x250) against {report.enrolled} enrolled faces"
    )
    print(table(rows, base))
    if enroll_result:
        e = enroll_result
        print(
            f"\nenroll {e['photos']} photos (one request each) while 4 clients identify: "
            f"{e['enrolled']} enrolled ({e['faces_added']} faces added), "
            f"{e['enroll_errors']} enroll errors; {e['identify_requests']} identify requests, "
            f"{e['identify_errors']} errors, p95 {e['identify_p95_ms']:.0f} ms; {e['seconds']} s"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "cpu": cpu_name(),
                    "cores": os.cpu_count(),
                    "threads": args.threads,
                    "in_process": asdict(base),
                    "server": [asdict(r) | {"req_s": r.rate} for r in rows],
                    "enroll_under_load": enroll_result,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
