"""Several cameras in one ``facesearch serve`` against as many separate ``facesearch live``
processes, in the same run: per-camera processed FPS, frame-to-result latency, CPU share,
dropped frames and whether every enrolled walker was named.

Set-up (in a temporary folder): a gallery with celebrity5/train enrolled (5 people), and one
640x480 clip per camera (``tests/clipgen.walking_clip``, ``--source-fps`` 25 by default): four
of the five enrolled people, each on one of their celebrity5/val photos that ``identify``
names as a still, and one stranger (a one-photo lfw_dev person it calls unknown), walking
across the scene one after another (``--walk`` s each, ``--gap`` s apart), in a different order
and with different photos on every clip. Every run plays each clip once at real time, newest
frame only (frames the recognizer cannot keep up with are dropped and counted):

* server: one real ``facesearch serve --config cameras.toml`` process on a loopback port, the
  N clips as cameras (``loop = false``); models loaded once, frames of all cameras detected and
  embedded in shared batches. ``/api/v1/cameras`` is polled for the states, processed and
  dropped frames and the latency percentiles (capture to result, the camera's last 300 frames);
  the events are read from ``/api/v1/events/recent`` at the end;
* separate: N ``facesearch live --source clipK --headless --realtime --events FILE --stats
  FILE`` processes started at once (each loads its models before it opens its clip); frames,
  skipped frames and latency from ``--stats``, events from ``--events``; with torch's default
  threads (each process as many as there are cores), and ("split", N > 1) with the cores
  shared out among them (``OMP_NUM_THREADS`` = cores / N, at least 1).

Per run and N: processed FPS per camera = frames processed / the clip's length (a real-time
source plays for exactly that long), mean and min over the cameras, and their total; "vs
separate" = the total / the better separate run's total at the same N; latency p50/p95
(capture to result; the largest over the cameras); CPU share = CPU seconds of the process(es)
while the clips play (from all cameras running to all ended for the server; from its clip
opening to its exit for a live process) / wall / cores; dropped = frames skipped / frames of
the clips; named = enrolled walks with a ``recognized`` event of the right name between the
walk's first frame and the next walk's; wrong = ``recognized`` events with another name (the
stranger named counts here). ``--threads`` sets ``OMP_NUM_THREADS`` for the server and the
default separate run. ``--quick``: 1 and 2 cameras, 2 enrolled walkers a clip (about 4 min).

    flock /tmp/facesearch-heavy.lock python benchmarks/cameras_bench.py [--cameras 1,2,4]
        [--source-fps 25] [--walk 3.0] [--gap 1.2] [--threads N] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from _common import FACES, LFW_DEV, REPO, person_photos, use_shared_models

sys.path.insert(0, str(REPO / "tests"))
from clipgen import walking_clip  # noqa: E402

TRAIN = FACES / "celebrity5" / "train"
VAL = FACES / "celebrity5" / "val"
WIDTH, HEIGHT = 640, 480
PATCH = 170  # the walker's face patch, px (the face is about 100 px of it)


@dataclass
class ClipInfo:
    camera: str
    path: Path
    frames: int
    fps: float
    spans: list[tuple[str | None, int, int]]  # (truth, first frame, last frame)

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


@dataclass
class CameraRun:
    """One camera (or one live process) in one mode."""

    camera: str
    frames: int
    dropped: int
    p50_ms: float | None
    p95_ms: float | None
    events: list[dict] = field(default_factory=list)


@dataclass
class Row:
    mode: str
    cameras: int
    fps_mean: float
    fps_min: float
    fps_total: float
    p50_ms: float | None
    p95_ms: float | None
    cpu_share: float
    dropped_share: float
    named: int
    walks: int
    wrong: int
    stranger_named: int
    extra: dict = field(default_factory=dict)
    vs_separate: float | None = None


# -- set-up ---------------------------------------------------------------------------------------


def prominent_name(fs, photo: Path) -> tuple[bool, str | None]:
    """(a face was found, the name ``identify`` gives the photo's largest face)."""
    result = fs.identify(photo)
    if not result.faces:
        return False, None
    big = max(result.faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    return True, big.name


def choose_walkers(fs) -> tuple[dict[str, list[Path]], list[Path]]:
    """The val photos of each enrolled person that are named right as stills, and strangers
    (one-photo lfw_dev people) that are called unknown."""
    photos: dict[str, list[Path]] = {}
    for person, paths in person_photos(VAL).items():
        photos[person] = [p for p in paths if prominent_name(fs, p) == (True, person)]
    strangers = []
    for _, paths in person_photos(LFW_DEV).items():
        if len(paths) == 1 and prominent_name(fs, paths[0]) == (True, None):
            strangers.append(paths[0])
        if len(strangers) >= 4:
            break
    return photos, strangers


def make_clips(fs, n: int, folder: Path, args) -> list[ClipInfo]:
    """Clip k: four enrolled people from a rotation of the five and stranger k at place k."""
    photos, strangers = choose_walkers(fs)
    people = sorted(p for p, ps in photos.items() if ps)
    if len(people) < 4 or len(strangers) < n:
        sys.exit(f"too few nameable walkers ({people}) or strangers ({len(strangers)})")
    fps = args.source_fps
    clips = []
    for k in range(n):
        order = [people[(k + i) % len(people)] for i in range(args.people)]
        walkers: list[tuple[str | None, Path]] = [(p, photos[p][k % len(photos[p])]) for p in order]
        walkers.insert(k % (len(walkers) + 1), (None, strangers[k]))
        path = folder / f"clip{k + 1}.mp4"
        spans, frames = walking_clip(
            path,
            fs.detector,
            walkers,
            width=WIDTH,
            height=HEIGHT,
            fps=fps,
            segment=round(args.walk * fps),
            gap=round(args.gap * fps),
            patch=PATCH,
        )
        clips.append(ClipInfo(f"c{k + 1}", path, frames, fps, spans))
    return clips


# -- running ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(threads: int | None) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def cpu_seconds(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def run_server(
    gallery: Path, clips: list[ClipInfo], folder: Path, args
) -> tuple[list[CameraRun], dict]:
    import httpx

    config = folder / "cameras.toml"
    lines = ["[cameras]"] + [f'{c.camera} = {{ source = "{c.path}", loop = false }}' for c in clips]
    lines += ["", "[snapshots]", f'dir = "{folder / "snapshots"}"']
    config.write_text("\n".join(lines) + "\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "facesearch", "--gallery", str(gallery), "serve"]
    cmd += ["--port", str(port), "--config", str(config)]
    log = (folder / "server.log").open("w")
    proc = subprocess.Popen(cmd, env=child_env(args.threads), stderr=log, stdout=log)
    try:
        deadline = time.perf_counter() + 180
        t0 = cpu0 = None
        status: list[dict] = []
        with httpx.Client(base_url=url, timeout=5) as http:
            while time.perf_counter() < deadline:
                if proc.poll() is not None:
                    sys.exit(f"server exited with {proc.returncode}; see {folder / 'server.log'}")
                try:
                    got = http.get("/api/v1/cameras")
                except httpx.HTTPError:
                    time.sleep(0.1)
                    continue
                if got.status_code != 200:
                    time.sleep(0.1)
                    continue
                status = got.json()["cameras"]
                states = {s["state"] for s in status}
                if t0 is None and states == {"running"}:  # every clip has opened
                    t0, cpu0 = time.perf_counter(), cpu_seconds(proc.pid)
                    deadline = t0 + max(c.seconds for c in clips) + 60
                if t0 is not None and states == {"ended"}:
                    break
                time.sleep(0.05 if t0 is None else 0.25)
            else:
                sys.exit(f"server cameras not done in time: {status}")
            t1, cpu1 = time.perf_counter(), cpu_seconds(proc.pid)
            events = http.get("/api/v1/events/recent", params={"limit": 200}).json()["events"]
            stats = http.get("/api/v1/cameras").json()["stats"]
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    runs = [
        CameraRun(
            s["name"],
            s["frames"],
            s["dropped"],
            s.get("latency_p50_ms"),
            s.get("latency_p95_ms"),
            [e for e in events if e["camera"] == s["name"]],
        )
        for s in status
    ]
    extra = {
        "cpu_seconds": round(cpu1 - cpu0, 2),
        "wall_s": round(t1 - t0, 2),
        "mean_frames_per_round": stats.get("mean_frames_per_round"),
        "largest_round": stats.get("largest_round"),
        "events_kept": len(events),
    }
    return runs, extra


class LiveProcess:
    """One ``facesearch live`` process; notes its CPU time when its clip opens."""

    def __init__(self, gallery: Path, clip: ClipInfo, folder: Path, threads: int | None) -> None:
        self.clip = clip
        self.events_path = folder / f"{clip.camera}.events.jsonl"
        self.stats_path = folder / f"{clip.camera}.stats.json"
        cmd = [sys.executable, "-m", "facesearch", "--gallery", str(gallery), "live"]
        cmd += ["--source", str(clip.path), "--headless", "--realtime"]
        cmd += ["--events", str(self.events_path), "--stats", str(self.stats_path)]
        self.proc = subprocess.Popen(
            cmd,
            env=child_env(threads),
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.opened_at: float | None = None
        self.cpu_at_open = 0.0
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if self.opened_at is None and f": file {self.clip.path}:" in line:
                self.opened_at = time.perf_counter()
                try:
                    self.cpu_at_open = cpu_seconds(self.proc.pid)
                except Exception:  # noqa: BLE001 - gone already: counted from 0
                    pass
            self.stderr.append(line)

    def wait(self) -> tuple[float, float]:
        """Wait for the exit; (CPU seconds after the clip opened, exit time)."""
        _, status, usage = os.wait4(self.proc.pid, 0)
        ended = time.perf_counter()
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self._reader.join(5)
        if self.proc.returncode != 0:
            sys.exit(f"live {self.clip.camera} failed:\n{''.join(self.stderr[-20:])}")
        return usage.ru_utime + usage.ru_stime - self.cpu_at_open, ended

    def result(self) -> CameraRun:
        stats = json.loads(self.stats_path.read_text())
        events = [json.loads(line) for line in self.events_path.read_text().splitlines()]
        return CameraRun(
            self.clip.camera,
            stats["frames"],
            stats["skipped"],
            stats["latency_p50_ms"],
            stats["latency_p95_ms"],
            events,
        )


def run_separate(
    gallery: Path, clips: list[ClipInfo], folder: Path, args, split: bool = False
) -> tuple[list[CameraRun], dict]:
    threads = args.threads
    if split:  # the cores shared out: no process's threads wait on another's
        threads = max(1, len(os.sched_getaffinity(0)) // len(clips))
    procs = [LiveProcess(gallery, c, folder, threads) for c in clips]
    waited = [p.wait() for p in procs]
    cpu = sum(c for c, _ in waited)
    opened = [p.opened_at for p in procs if p.opened_at is not None]
    if len(opened) != len(procs):
        sys.exit("a live process never reported its clip open")
    wall = max(e for _, e in waited) - min(opened)
    extra = {
        "cpu_seconds": round(cpu, 2),
        "wall_s": round(wall, 2),
        "start_skew_s": round(max(opened) - min(opened), 2),
        "threads": threads,
    }
    return [p.result() for p in procs], extra


# -- scoring ----------------------------------------------------------------------------------------


def score(clip: ClipInfo, events: list[dict]) -> tuple[int, int, int, int]:
    """(enrolled walks named, enrolled walks, wrong names, stranger named). An event counts for
    a walk from its first frame to the next walk's (a late decision falls into the gap)."""
    named = walks = wrong = stranger = 0
    recognized = [e for e in events if e["event"] == "recognized"]
    starts = [first for _, first, _ in clip.spans] + [clip.frames]
    counted = 0
    for (truth, first, _), until in zip(clip.spans, starts[1:]):
        seg = [e for e in recognized if first <= e["frame"] < until]
        counted += len(seg)
        if truth is None:
            stranger += bool(seg)
            wrong += len(seg)
            continue
        walks += 1
        named += any(e["name"] == truth for e in seg)
        wrong += sum(e["name"] != truth for e in seg)
    wrong += len(recognized) - counted  # a name before the first walk
    return named, walks, wrong, stranger


def summarise(
    mode: str, clips: list[ClipInfo], runs: list[CameraRun], extra: dict, cores: int
) -> Row:
    by_name = {c.camera: c for c in clips}
    fps = [r.frames / by_name[r.camera].seconds for r in runs]
    tally = [score(by_name[r.camera], r.events) for r in runs]
    p50 = [r.p50_ms for r in runs if r.p50_ms is not None]
    p95 = [r.p95_ms for r in runs if r.p95_ms is not None]
    per_camera = [
        {
            "camera": r.camera,
            "fps": round(f, 2),
            "frames": r.frames,
            "dropped": r.dropped,
            "source_frames": by_name[r.camera].frames,
            "p50_ms": r.p50_ms,
            "p95_ms": r.p95_ms,
            "named": t[0],
            "walks": t[1],
            "wrong": t[2],
            "stranger_named": t[3],
            "events": len(r.events),
        }
        for r, f, t in zip(runs, fps, tally)
    ]
    return Row(
        mode,
        len(runs),
        sum(fps) / len(fps),
        min(fps),
        sum(fps),
        max(p50) if p50 else None,
        max(p95) if p95 else None,
        extra["cpu_seconds"] / extra["wall_s"] / cores,
        sum(r.dropped for r in runs) / sum(c.frames for c in clips),
        sum(t[0] for t in tally),
        sum(t[1] for t in tally),
        sum(t[2] for t in tally),
        sum(t[3] for t in tally),
        {**extra, "per_camera": per_camera},
    )


def fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def table(rows: list[Row]) -> str:
    out = [
        "| cameras | run | FPS per camera, mean / min | total FPS | vs separate | latency p50 / p95 ms "
        "| CPU share | dropped | named | wrong names |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = "-" if r.vs_separate is None else f"{r.vs_separate:.2f}×"
        out.append(
            f"| {r.cameras} | {r.mode} | {r.fps_mean:.1f} / {r.fps_min:.1f} | {r.fps_total:.1f} "
            f"| {ratio} | {fmt_ms(r.p50_ms)} / {fmt_ms(r.p95_ms)} | {100 * r.cpu_share:.0f} % "
            f"| {100 * r.dropped_share:.0f} % | {r.named}/{r.walks} | {r.wrong} |"
        )
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cameras", help="camera counts to run (default 1,2,4; --quick 1,2)")
    ap.add_argument("--source-fps", type=float, default=25.0, help="the clips' frame rate")
    ap.add_argument("--people", type=int, default=4, help="enrolled walkers per clip (max 5)")
    ap.add_argument("--walk", type=float, default=3.0, help="seconds each walker is in view")
    ap.add_argument("--gap", type=float, default=1.2, help="seconds between two walkers")
    ap.add_argument("--threads", type=int, help="OMP_NUM_THREADS for every process")
    ap.add_argument(
        "--modes",
        default="separate,split,server",
        help="separate: live processes with torch's default threads; split: with the cores "
        "shared out (OMP_NUM_THREADS = cores / N); server: one facesearch serve",
    )
    ap.add_argument("--quick", action="store_true", help="1 and 2 cameras, 2 people a clip")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.quick:
        args.people = 2
    args.cameras = args.cameras or ("1,2" if args.quick else "1,2,4")
    counts = [int(x) for x in args.cameras.split(",")]
    modes = args.modes.split(",")
    use_shared_models()
    cores = len(os.sched_getaffinity(0))
    from facesearch import FaceSearch

    with tempfile.TemporaryDirectory(prefix="cameras-bench-") as tmp:
        folder = Path(tmp)
        gallery = folder / "gallery"
        t = time.perf_counter()
        fs = FaceSearch(gallery)
        report = fs.enroll(TRAIN)
        clips = make_clips(fs, max(counts), folder, args)
        fs.close()
        print(
            f"gallery: {report.enrolled} faces of {len(report.added)} people "
            f"(celebrity5/train); {len(clips)} clips {WIDTH}x{HEIGHT} at {args.source_fps:g} fps, "
            f"{clips[0].frames} frames ({clips[0].seconds:.1f} s), {args.people} enrolled walkers "
            f"+ 1 stranger each; set-up {time.perf_counter() - t:.0f} s; {cores} cores, "
            f"{platform.processor() or platform.machine()}",
            flush=True,
        )
        rows: list[Row] = []
        for n in counts:
            got: dict[str, Row] = {}
            for mode in modes:
                if mode == "split" and cores // n >= cores:
                    continue  # one process: the same as "separate"
                work = folder / f"{mode}-{n}"
                work.mkdir()
                if mode == "server":
                    runs, extra = run_server(gallery, clips[:n], work, args)
                else:
                    runs, extra = run_separate(gallery, clips[:n], work, args, mode == "split")
                label = {"separate": "separate live", "server": "one server"}.get(mode, "")
                if mode == "split":
                    label = f"separate live, {extra['threads']} thread(s) each"
                row = got[mode] = summarise(label, clips[:n], runs, extra, cores)
                print(
                    f"  {n} camera(s), {label}: {row.fps_total:.1f} FPS total, named "
                    f"{row.named}/{row.walks}, wrong {row.wrong}",
                    flush=True,
                )
            base = max((r.fps_total for m, r in got.items() if m != "server"), default=0.0)
            for row in got.values():  # against the better of the separate runs
                row.vs_separate = row.fps_total / base if base else None
            rows += got.values()
    text = table(rows)
    print()
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "settings": {
                "source_fps": args.source_fps,
                "size": f"{WIDTH}x{HEIGHT}",
                "clip_frames": clips[0].frames,
                "clip_seconds": clips[0].seconds,
                "people": args.people,
                "walk_s": args.walk,
                "gap_s": args.gap,
                "threads": args.threads,
                "cores": cores,
            },
            "rows": [asdict(r) for r in rows],
            "table": text,
        }
        args.json.write_text(json.dumps(doc, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
