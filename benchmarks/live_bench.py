"""Live recognition speed: the naive per-frame loop vs facesearch's live loop, in one run.

The frames of a real video (default ``../shared/faces/facenet_pytorch_data/video.mp4``, 1920x1080,
105 frames of people walking) are decoded once, resized to each size, and fed from memory to:

* naive: every frame, facenet-pytorch ``MTCNN(keep_all=True)`` for the face crops, then
  ``InceptionResnetV1`` on one face at a time and an exact search of the gallery;
* facesearch: ``live``'s loop, ``process_stream`` (the next frames detected on other cores,
  one per core; tracking; embeddings only for new, unconfirmed, moved or periodically
  re-checked faces, batched; detection on a copy at most ``--detect-width`` wide), with the
  default options (detection on every second frame) and with detection on every frame, and both
  again with ``--detect-workers 1`` (one frame at a time, as before detection ahead).

FPS = frames / wall time; latency = from a frame being handed over to its labels being ready
(p50 / p95). Both search the same gallery (``--gallery``, default: a temporary one with
lfw_dev's first 500 photos enrolled).

Then time to first correct name and wrong names (``live_names.py``): assembled clips of people
who enter small and turned and then face the camera, with a scene cut and an in-place swap, and
``video.mp4`` with its walkers enrolled, at the default settings and with ``--detect-every 1``.

    python benchmarks/live_bench.py [--sizes 640x480,1920x1080] [--repeat 2] [--clips 8]
                                    [--no-fps] [--no-names] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import FACES, LFW_DEV, cpu_line, person_photos, use_shared_models
from facesearch.device import PRECISIONS
from live_names import read_frames

VIDEO = FACES / "facenet_pytorch_data" / "video.mp4"


def naive_loop(
    frames: list[np.ndarray], gallery: np.ndarray, weights: Path, device: str = "cpu"
) -> dict:
    import cv2
    from facenet_pytorch import MTCNN, InceptionResnetV1
    from PIL import Image

    from facesearch.weights import load_state_dict

    mtcnn = MTCNN(keep_all=True, device=device)
    resnet = InceptionResnetV1(pretrained=None).eval()
    resnet.load_state_dict(load_state_dict(weights))
    resnet.to(device)
    lat = []
    faces = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for f in frames:
            t = time.perf_counter()
            crops = mtcnn(Image.fromarray(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)))
            if crops is not None:
                for c in crops:  # one face at a time
                    e = torch.nn.functional.normalize(resnet(c[None].to(device)), dim=1)
                    e = e.cpu().numpy()
                    int(np.argmax(gallery @ e[0]))
                    faces += 1
            lat.append(time.perf_counter() - t)
    return summary("naive (MTCNN + FaceNet per face, every frame)", frames, lat, t0, faces)


def facesearch_loop(frames: list[np.ndarray], fs, options, label: str) -> dict:
    """``live``'s loop (``process_stream``: detection ahead on ``options.detect_workers``)
    over frames handed over as fast as it takes them; latency from hand-over to result."""
    from facesearch.live import LiveRecognizer, process_stream
    from facesearch.live.video import Frame

    rec = LiveRecognizer(fs, options)

    def handed_over():
        for i, f in enumerate(frames):
            yield Frame(i, i / 25.0, f, time.perf_counter())

    t0 = time.perf_counter()
    lat = [r.latency for r in process_stream(rec, handed_over(), options.detect_workers)]
    out = summary(label, frames, lat, t0, rec.stats.embedded_faces)
    out["detected_frames"] = rec.stats.detected_frames
    out["tracks"] = rec.tracker._next_id - 1
    return out


def summary(label: str, frames: list, lat: list[float], t0: float, faces: int) -> dict:
    seconds = time.perf_counter() - t0
    lat_sorted = sorted(lat)
    return {
        "method": label,
        "frames": len(frames),
        "fps": len(frames) / seconds,
        "latency_p50_ms": 1000 * statistics.median(lat),
        "latency_p95_ms": 1000 * lat_sorted[int(0.95 * (len(lat) - 1))],
        "embeddings": faces,
    }


def time_to_name(fs_speed, n_clips: int, fixed: float | None = None) -> list[dict]:
    """The time-to-name table (``live_names``) on its own gallery: one photo per clip person,
    200 one-photo lfw_dev people as distractors, and video.mp4's walkers."""
    import live_names as ln
    from facesearch import FaceSearch
    from facesearch.live import LiveOptions

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fs = FaceSearch(folder / "gallery", detector=fs_speed.detector, embedder=fs_speed.embedder)
        candidates, singles = ln.choose_people(n_clips)
        ln.build_gallery(fs, candidates, singles[:200])
        people = ln.nameable(fs, candidates)
        strangers = singles[200:]
        print(
            f"\ntime to name: {len(people)} of {len(candidates)} candidate people are named on "
            f"their clip photo as a still; gallery {len(fs.people())} people"
        )
        clips = ln.make_clips(fs.detector, people, strangers, n_clips, folder)
        video = ln.prepare_video(fs, VIDEO)
        settings = [("default", LiveOptions()), ("--detect-every 1", LiveOptions(detect_every=1))]
        if fixed is not None:
            settings += [
                (f"--threshold {fixed:g}", LiveOptions(threshold=fixed)),
                (f"-e 1 --threshold {fixed:g}", LiveOptions(detect_every=1, threshold=fixed)),
            ]
        rows = []
        for label, options in settings:
            clip_run = ln.RunResult()
            for clip in clips:
                ln.run_clip(fs, options, clip, clip_run)
            rows.append(
                {"input": f"{n_clips} clips", "settings": label, **ln.summarise(label, clip_run)}
            )
            video_run = ln.run_video(fs, options, video, "video.mp4")
            rows.append(
                {
                    "input": "video.mp4",
                    "settings": label,
                    **ln.summarise(label, video_run),
                }
            )
        fs.close()
    print(
        f"\n{'input':<22} {'settings':<24} {'people':>6} {'<=0.5s':>6} {'median s':>8} "
        f"{'max s':>6} {'never':>5} {'wrong ev':>8} {'wrong fr':>8} {'FPS':>5} {'embeds':>6}"
    )
    for r in rows:
        med = "-" if r["median_s"] is None else f"{r['median_s']:.2f}"
        mx = "-" if r["max_s"] is None else f"{r['max_s']:.2f}"
        print(
            f"{r['input']:<22} {r['settings']:<24} {r['people']:>6} {r['within_0_5s']:>6} "
            f"{med:>8} {mx:>6} {r['never_named']:>5} {r['wrong_events']:>8} "
            f"{r['wrong_frames']:>8} {r['fps']:>5.1f} {r['embeddings']:>6}"
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--video", type=Path, default=VIDEO)
    ap.add_argument("--sizes", default="640x480,1920x1080")
    ap.add_argument("--repeat", type=int, default=2, help="passes over the video per method")
    ap.add_argument("--gallery", type=Path, help="an enrolled gallery to search")
    ap.add_argument("--device", default=None)
    ap.add_argument(
        "--precision",
        default="auto",
        choices=list(PRECISIONS),
        help="FaceNet precision of the facesearch rows (auto: bf16 where the CPU has it; "
        "fp16 on CUDA only)",
    )
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--no-fps", action="store_true", help="skip the speed table")
    ap.add_argument("--no-names", action="store_true", help="skip the time-to-name table")
    ap.add_argument("--clips", type=int, default=8, help="assembled clips for time to name")
    ap.add_argument(
        "--names-threshold",
        type=float,
        help="also time names at this fixed threshold (e.g. 0.307, release 0.2's default)",
    )
    ap.add_argument(
        "--detect-runtimes",
        default="auto,torch",
        help="where MTCNN runs, one set of rows each (the first also times names)",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    use_shared_models()
    import cv2

    from facesearch import FaceSearch, open_gallery
    from facesearch.live import LiveOptions

    torch.set_num_threads(torch.get_num_threads())
    tmp = None
    if args.gallery is None:
        tmp = tempfile.TemporaryDirectory()
        gdir = Path(tmp.name) / "people"
        n = 0
        for name, photos in person_photos(LFW_DEV).items():
            (gdir / name).mkdir(parents=True)
            for p in photos:
                (gdir / name / p.name).symlink_to(p)
                n += 1
            if n >= 500:
                break
        args.gallery = Path(tmp.name) / "gallery"
        FaceSearch(args.gallery, device=args.device).enroll(gdir)
    runtimes = args.detect_runtimes.split(",")
    fs = FaceSearch(
        args.gallery, device=args.device, precision=args.precision, detect_runtime=runtimes[0]
    )
    fs.embedder.load()
    searchers = [(fs, "")] + [
        (
            FaceSearch(args.gallery, device=args.device, embedder=fs.embedder, detect_runtime=r),
            f" (MTCNN on {r})",
        )
        for r in runtimes[1:]
    ]
    with open_gallery(args.gallery, fs.embedder.model_id, fs.embedder.dim) as gallery:
        emb = np.stack([r.embedding for chunk in gallery.export_faces() for r in chunk])
    raw = read_frames(args.video)
    if not raw:
        sys.exit(f"{args.video}: no frames")
    device = str(fs.embedder.device)
    from facesearch.live.ahead import auto_workers

    workers = auto_workers(fs.detector.device.type)  # frames from memory: as from a file
    print(
        f"{args.video.name}: {len(raw)} frames {raw[0].shape[1]}x{raw[0].shape[0]}; gallery "
        f"{len(emb)} faces; device {device}, {fs.embedder.precision} on "
        f"{fs.embedder.runtime}, MTCNN on {fs.detector.runtime}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, "
        f"{workers} detect worker(s); {args.repeat} pass(es) per method\nCPU: {cpu_line()}"
    )
    rows = []
    for size in [] if args.no_fps else args.sizes.split(","):
        w, h = (int(x) for x in size.split("x"))
        frames = [f if f.shape[1] == w else cv2.resize(f, (w, h), cv2.INTER_AREA) for f in raw]
        frames = frames * args.repeat
        results = []
        if not args.skip_naive:
            results.append(naive_loop(frames, emb, fs.embedder.weights_path))
        settings = [
            ("facesearch live (default)", LiveOptions()),
            ("facesearch live, --detect-every 1", LiveOptions(detect_every=1)),
        ]
        if workers > 1:  # the same, one frame at a time (facesearch before detection ahead)
            settings += [
                ("  --detect-workers 1", LiveOptions(detect_workers=1)),
                (
                    "  --detect-every 1 --detect-workers 1",
                    LiveOptions(detect_every=1, detect_workers=1),
                ),
            ]
        for searcher, suffix in searchers:
            for label, options in settings:
                results.append(facesearch_loop(frames, searcher, options, label + suffix))
        base = results[0]["fps"]
        print(f"\n{w}x{h}")
        print(
            f"{'method':<64} {'FPS':>6} {'vs first':>8} {'p50 ms':>7} {'p95 ms':>7} {'embeddings':>10}"
        )
        for r in results:
            r.update(size=size, device=device, speedup=r["fps"] / base)
            print(
                f"{r['method']:<64} {r['fps']:>6.1f} {r['speedup']:>7.2f}x "
                f"{r['latency_p50_ms']:>7.0f} {r['latency_p95_ms']:>7.0f} {r['embeddings']:>10}"
            )
        rows += results
    names = [] if args.no_names else time_to_name(fs, args.clips, args.names_threshold)
    if args.json:
        args.json.write_text(json.dumps({"results": rows, "time_to_name": names}, indent=2))
    for searcher, _ in searchers:
        searcher.close()
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
