"""Enroll throughput: the naive facenet-pytorch loop vs ``facesearch enroll``, in one run.

Naive loop (what the facenet-pytorch README suggests, per photo): open the image, ``MTCNN()(img)``
for the face crop, then ``InceptionResnetV1`` on that one face. facesearch: ``FaceSearch.enroll``
on the same photos laid out one folder per person, including hashing, the SQLite writes and the
HNSW index; in fp32 all on torch (facesearch before ONNX Runtime), with MTCNN on torch (before
OpenVINO ran it), fp32 as ``--runtime auto`` and ``--detect-runtime auto`` run it (FaceNet on ONNX
Runtime, MTCNN on OpenVINO where installed), and the default precision, with and without
``--flip off`` (one FaceNet pass per face, recorded in the gallery). Also reported: model load time and identify
latency per photo once models are loaded.

    python benchmarks/enroll_bench.py [--photos 300] [--repeat 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from _common import FACES, LFW_DEV, SHARED, cpu_line, person_photos, use_shared_models


def pick_photos(n: int) -> list[Path]:
    """The first n photos of lfw_dev in person order (a mix of one-photo and many-photo people)."""
    out: list[Path] = []
    for photos in person_photos(LFW_DEV).values():
        out.extend(photos)
        if len(out) >= n:
            break
    return out[:n]


def naive_loop(paths: list[Path], weights: Path, device: str = "cpu") -> tuple[float, int, float]:
    from facenet_pytorch import MTCNN, InceptionResnetV1
    from PIL import Image

    t0 = time.perf_counter()
    mtcnn = MTCNN(image_size=160, margin=14, device=device)
    resnet = InceptionResnetV1(pretrained=None, classify=False).eval()
    resnet.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    resnet.to(device)
    load_s = time.perf_counter() - t0
    faces = 0
    t0 = time.perf_counter()
    embeddings = []
    for p in paths:
        img = Image.open(p).convert("RGB")
        face = mtcnn(img)
        if face is not None:
            with torch.no_grad():
                embeddings.append(resnet(face.unsqueeze(0).to(device)).cpu())
            faces += 1
    return time.perf_counter() - t0, faces, load_s


def facesearch_enroll(
    paths: list[Path],
    precision: str,
    runtime: str = "auto",
    flip: bool | None = None,
    detect_runtime: str = "auto",
) -> tuple[float, int, float]:
    from facesearch import FaceSearch

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "people"
        for p in paths:
            (folder / p.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(p, folder / p.parent.name / p.name)
        t0 = time.perf_counter()
        fs = FaceSearch(
            Path(tmp) / "gallery",
            precision=precision,
            runtime=runtime,
            detect_runtime=detect_runtime,
            flip=flip,
        )
        fs.embedder.load()
        fs.detector.mtcnn  # noqa: B018 - load the detector now, not inside the timed run
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = fs.enroll(folder)
        seconds = time.perf_counter() - t0
        fs.close()
    return seconds, report.enrolled, load_s


def identify_latency(precision: str, photos: list[Path], gallery_photos: list[Path]) -> list[float]:
    from facesearch import FaceSearch

    with tempfile.TemporaryDirectory() as tmp:
        fs = FaceSearch(Path(tmp) / "g", precision=precision)
        fs.enroll_person("someone", gallery_photos)
        fs.identify(photos[0])  # warm-up
        times = []
        for p in photos:
            t0 = time.perf_counter()
            fs.identify(p)
            times.append(time.perf_counter() - t0)
        fs.close()
    return times


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()
    use_shared_models()
    from facesearch.weights import resolve_weights

    weights = resolve_weights(allow_download=False)
    paths = pick_photos(args.photos)
    print(
        f"{len(paths)} lfw_dev photos (250x250) from {SHARED}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads\nCPU: {cpu_line()}",
        file=sys.stderr,
    )

    # warm-up so that neither side pays first-call costs inside its timing
    naive_loop(paths[:2], weights)
    facesearch_enroll(paths[:2], "auto")

    rows = []
    s, faces, load = naive_loop(paths, weights)
    rows.append(("naive facenet-pytorch loop", s, faces, load))
    for label, precision, runtime, detect_runtime, flip in (
        ("facesearch enroll (fp32, all on torch)", "fp32", "torch", "torch", None),
        ("facesearch enroll (fp32, MTCNN on torch)", "fp32", "auto", "torch", None),
        ("facesearch enroll (fp32)", "fp32", "auto", "auto", None),
        ("facesearch enroll (fp32, --flip off, MTCNN on torch)", "fp32", "auto", "torch", False),
        ("facesearch enroll (fp32, --flip off)", "fp32", "auto", "auto", False),
        ("facesearch enroll (default)", "auto", "auto", "auto", None),
        ("facesearch enroll (default, --flip off)", "auto", "auto", "auto", False),
    ):
        s, faces, load = facesearch_enroll(paths, precision, runtime, flip, detect_runtime)
        rows.append((label, s, faces, load))

    base = len(paths) / rows[0][1]
    print(
        f"\n{'method':<52} {'photos':>6} {'faces':>6} {'seconds':>8} {'photos/s':>9} {'faces/s':>8} {'vs naive':>9} {'load s':>7}"
    )
    results = []
    for label, s, faces, load in rows:
        pps = len(paths) / s
        print(
            f"{label:<52} {len(paths):>6} {faces:>6} {s:>8.1f} {pps:>9.1f} {faces / s:>8.1f} {pps / base:>8.2f}x {load:>7.2f}"
        )
        results.append(
            {
                "method": label,
                "photos": len(paths),
                "faces": faces,
                "seconds": s,
                "photos_per_s": pps,
                "faces_per_s": faces / s,
                "speedup": pps / base,
                "load_s": load,
            }
        )

    lat_sets = {
        "lfw 250x250 (1 face)": pick_photos(args.photos + 40)[args.photos :],
        "group photos (2-6 faces, up to 1366x768)": [
            FACES / "bbt" / "group" / "bbt1.jpg",
            FACES / "bbt" / "group" / "bbt2.jpg",
            FACES / "facenet_pytorch_data" / "multiface.jpg",
            FACES / "face_recognition_examples" / "examples" / "two_people.jpg",
        ],
    }
    print(f"\n{'identify latency (models loaded)':<44} {'median ms':>9} {'p90 ms':>7}")
    for name, photos in lat_sets.items():
        times = sorted(identify_latency("auto", photos, paths[:20]))
        med, p90 = statistics.median(times) * 1000, times[int(0.9 * (len(times) - 1))] * 1000
        print(f"{name:<44} {med:>9.0f} {p90:>7.0f}")
        results.append({"identify": name, "median_ms": med, "p90_ms": p90, "n": len(photos)})
    # A whole CLI call: interpreter start, imports, weights checksum and load, one identify.
    import os
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        from facesearch import FaceSearch

        with FaceSearch(Path(tmp) / "g") as fs:
            fs.enroll_person("someone", paths[:5])
        cmd = [
            sys.executable,
            "-m",
            "facesearch",
            "--gallery",
            str(Path(tmp) / "g"),
            "identify",
            str(paths[0]),
        ]
        env = dict(os.environ)
        walls = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            walls.append(time.perf_counter() - t0)
    cli_s = statistics.median(walls)
    print(f"{'one CLI identify call, cold process (median of 3)':<44} {cli_s * 1000:>9.0f}")
    results.append({"cli_identify_cold_ms": cli_s * 1000})
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
