"""The GPU path, measured in one run: detection, FaceNet's precisions, lfw_dev pairs, the 1080p
video, and enroll/identify/scan, each on one device against facenet-pytorch on the same device.

Tables (``--tables``, all by default):

* ``detect``: facenet-pytorch's ``MTCNN(device=...)``, one image per call, against facesearch's
  detector on the same device: one image per call, ``--batch`` per call, and ``--batch`` per
  call in calls of up to 16 Mpx (the cascade cuts calls at ``CALL_PIXELS``, 0.5 Mpx, a size set
  by CPU caches: a 1080p frame is a call of its own). The video's frames at 640x480 and
  1920x1080; images/s, the ratio to facenet-pytorch, and agreement with it (images with the same
  count; faces at box IoU >= 0.95 with landmarks within 2 px).
* ``embed``: FaceNet with flip averaging in fp32, bf16 and fp16 (torch autocast; fp16 on CUDA
  only): crops/s at batch 32 and 128, and each embedding's cosine to fp32's (min, mean) over
  the subjects of lfw_dev photos.
* ``lfw``: lfw_dev's ``pairs.txt`` in each precision: 10-fold accuracy, AUC and TAR at FAR 1e-3,
  as ``facesearch evaluate`` computes them. A precision keeps accuracy when these match fp32's.
* ``video``: MTCNN + FaceNet on every frame of the 1920x1080 video (the issue's goal on a GPU:
  >= 100 FPS): the naive loop (facenet-pytorch, one face at a time) and ``live``'s loop with
  ``--detect-every 1`` in each precision, against a gallery of lfw_dev people.
* ``enroll``: ``--photos`` lfw_dev photos enrolled through the library against the naive
  facenet-pytorch loop on the same device, then identify latency and ``scan`` of the same photos.

Every row runs ``--repeat`` passes after a warm-up pass; the best counts. Results come back as
NumPy arrays, so every timing includes the device's work. ``--device cpu --quick`` runs every
table on a few images, which checks the script where there is no GPU (fp16 is then skipped).
docs/gpu.md says how to take the data to a lent GPU machine (``gpu_carry.py``).

    python benchmarks/gpu_bench.py [--device cuda] [--tables detect,embed,lfw,video,enroll]
                                   [--batch 8] [--photos 200] [--repeat 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from _common import FACES, LFW_DEV, cpu_line, person_photos, use_shared_models

if TYPE_CHECKING:
    from facesearch.evaluation.evalset import EvalSet, Pairs

VIDEO = FACES / "facenet_pytorch_data" / "video.mp4"
TABLES = ("detect", "embed", "lfw", "video", "enroll")
PRECISIONS = ("fp32", "bf16", "fp16")
BIG_CALLS = 16_000_000  # pixels per cascade call in the "large calls" rows


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """(fastest of ``repeat`` passes in seconds, the last pass's result), after a warm-up pass."""
    out = fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def device_line(device: torch.device) -> str:
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        return (
            f"{p.name}, {p.total_memory / 2**30:.0f} GiB, capability {p.major}.{p.minor}, "
            f"torch {torch.__version__}, CUDA {torch.version.cuda}"
        )
    return f"CPU ({cpu_line()}), torch {torch.__version__}, {torch.get_num_threads()} threads"


def precisions_on(device: torch.device) -> list[str]:
    from facesearch.device import resolve_precision
    from facesearch.errors import InputError

    out = []
    for p in PRECISIONS:
        try:
            out.append(resolve_precision(p, device))
        except InputError as err:
            print(f"  ({p} skipped: {err})")
    return out


def video_frames(width: int, height: int, limit: int | None) -> list[np.ndarray]:
    """The video's frames as RGB arrays of the given size."""
    import cv2

    from live_names import read_frames

    frames = read_frames(VIDEO)[:limit]
    return [
        cv2.cvtColor(
            f if f.shape[:2] == (height, width) else cv2.resize(f, (width, height), cv2.INTER_AREA),
            cv2.COLOR_BGR2RGB,
        )
        for f in frames
    ]


def table_detect(device: torch.device, args: argparse.Namespace) -> list[dict]:
    from detect_bench import agreement, run_detector, run_stock
    from facenet_pytorch import MTCNN
    from PIL import Image

    import facesearch.mtcnn as cascade
    from facesearch import FaceDetector

    stock = MTCNN(keep_all=True, device=device)
    ours = FaceDetector(device=str(device), pad_retry=0).load()
    rows = []
    for w, h in ((640, 480), (1920, 1080)):
        images = [Image.fromarray(f) for f in video_frames(w, h, args.frames)]
        s, ref = best_of(lambda im=images: run_stock(stock, im), args.repeat)
        base = len(images) / s
        rows.append({"size": f"{w}x{h}", "method": "facenet-pytorch MTCNN", "img_s": base})
        for label, batch, call_pixels in (
            ("facesearch, 1 per call", 1, cascade.CALL_PIXELS),
            (f"facesearch, {args.batch} per call", args.batch, cascade.CALL_PIXELS),
            (f"facesearch, {args.batch} per call, calls <= 16 Mpx", args.batch, BIG_CALLS),
        ):
            default = cascade.CALL_PIXELS
            cascade.CALL_PIXELS = call_pixels
            try:
                s, got = best_of(lambda im=images, n=batch: run_detector(ours, im, n), args.repeat)
            finally:
                cascade.CALL_PIXELS = default
            same, matched, total = agreement(ref, got)
            rows.append(
                {
                    "size": f"{w}x{h}",
                    "method": label,
                    "img_s": len(images) / s,
                    "vs_stock": len(images) / s / base,
                    "agreement": f"{same}/{len(images)} images, {matched}/{total} faces",
                }
            )
    print(f"\n{'size':<10} {'method':<44} {'img/s':>7} {'vs stock':>8}  agreement with stock")
    for r in rows:
        vs = f"{r['vs_stock']:.2f}x" if "vs_stock" in r else ""
        print(
            f"{r['size']:<10} {r['method']:<44} {r['img_s']:>7.1f} {vs:>8}  {r.get('agreement', '')}"
        )
    return rows


def table_embed(device: torch.device, args: argparse.Namespace) -> list[dict]:
    from embed_runtime_bench import crops

    from facesearch import FaceEmbedder

    data = torch.from_numpy(crops(args.crops))
    rows, reference = [], None
    for precision in precisions_on(device):
        for batch in (32, 128):
            emb = FaceEmbedder(device=str(device), precision=precision, batch_size=batch)
            emb.load()
            s, out = best_of(lambda e=emb: e.embed(data), args.repeat)
            if reference is None:
                reference = out
            cos = np.sum(out * reference, axis=1)
            rows.append(
                {
                    "precision": precision,
                    "runtime": emb.runtime,
                    "batch": batch,
                    "crops_s": len(data) / s,
                    "cos_min": float(cos.min()),
                    "cos_mean": float(cos.mean()),
                }
            )
    print(f"\n{len(data)} lfw_dev crops, flip averaging (two passes a crop)")
    print(
        f"{'precision':<10} {'runtime':<12} {'batch':>5} {'crops/s':>8} {'cos min':>8} {'mean':>8}"
    )
    for r in rows:
        print(
            f"{r['precision']:<10} {r['runtime']:<12} {r['batch']:>5} {r['crops_s']:>8.1f} "
            f"{r['cos_min']:>8.5f} {r['cos_mean']:>8.5f}"
        )
    return rows


def first_pairs(evalset: EvalSet, pairs: Pairs, n: int) -> tuple[EvalSet, Pairs]:
    """The first ``n`` same-person and first ``n`` different-person pairs, and only their photos."""
    from facesearch.evaluation.evalset import Pairs

    same, diff = np.flatnonzero(pairs.same)[:n], np.flatnonzero(~pairs.same)[:n]
    keep = np.sort(np.concatenate([same, diff]))
    used = np.unique(np.concatenate([pairs.a[keep], pairs.b[keep]]))
    where = np.full(len(evalset), -1)
    where[used] = np.arange(len(used))
    subset = replace(
        evalset,
        paths=tuple(evalset.paths[i] for i in used),
        person_of=evalset.person_of[used],
    )
    return subset, Pairs(where[pairs.a[keep]], where[pairs.b[keep]], pairs.same[keep], pairs.source)


def table_lfw(device: torch.device, args: argparse.Namespace) -> list[dict]:
    from facesearch import FaceSearch
    from facesearch.evaluation.evalset import load_eval_set, read_lfw_pairs
    from facesearch.evaluation.protocols import embed_subjects, verify_pairs

    evalset = load_eval_set(LFW_DEV)
    pairs = read_lfw_pairs(LFW_DEV.parent / "pairs.txt", evalset)
    if args.pairs:
        evalset, pairs = first_pairs(evalset, pairs, args.pairs)
    rows = []
    for precision in precisions_on(device):
        with tempfile.TemporaryDirectory() as tmp:
            with FaceSearch(Path(tmp) / "unused", device=str(device), precision=precision) as fs:
                v = verify_pairs(embed_subjects(evalset, fs), pairs)
        rows.append(
            {
                "precision": precision,
                "pairs": v.pairs,
                "accuracy": v.kfold.accuracy,
                "auc": v.auc,
                "tar_at_far_1e-3": v.tar_at_far[1e-3],
                "no_face_pairs": v.no_face_pairs,
            }
        )
    print(f"\nlfw_dev pairs ({pairs.source}), {len(evalset)} photos")
    print(f"{'precision':<10} {'pairs':>6} {'accuracy':>9} {'AUC':>8} {'TAR@1e-3':>9}")
    for r in rows:
        print(
            f"{r['precision']:<10} {r['pairs']:>6} {r['accuracy']:>9.4f} {r['auc']:>8.5f} "
            f"{r['tar_at_far_1e-3']:>9.4f}"
        )
    return rows


def gallery_folder(root: Path, n: int) -> Path:
    """The first ``n`` lfw_dev photos, linked one folder per person under ``root``."""
    out, count = root / "people", 0
    for name, photos in person_photos(LFW_DEV).items():
        (out / name).mkdir(parents=True)
        for p in photos:
            (out / name / p.name).symlink_to(p)
            count += 1
        if count >= n:
            break
    return out


def table_video(device: torch.device, args: argparse.Namespace) -> list[dict]:
    import cv2
    from live_bench import facesearch_loop, naive_loop

    from facesearch import FaceSearch, open_gallery
    from facesearch.live import LiveOptions

    bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in video_frames(1920, 1080, args.frames)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        gallery = Path(tmp) / "gallery"
        with FaceSearch(gallery, device=str(device)) as fs:
            fs.enroll(gallery_folder(Path(tmp), args.photos))
            model_id, dim = fs.embedder.model_id, fs.embedder.dim
            weights = fs.embedder.weights_path
        with open_gallery(gallery, model_id, dim) as g:
            known = np.stack([r.embedding for chunk in g.export_faces() for r in chunk])
        rows.append(naive_loop(bgr * args.repeat, known, weights, device=str(device)))
        for precision in precisions_on(device):
            with FaceSearch(gallery, device=str(device), precision=precision) as fs:
                fs.load_models()
                options = LiveOptions(detect_every=1)
                facesearch_loop(bgr[:8], fs, options, "warm-up")
                label = f"facesearch live --detect-every 1, {precision}"
                rows.append(facesearch_loop(bgr * args.repeat, fs, options, label))
    print(f"\n1920x1080 video, {len(bgr)} frames x {args.repeat}, every frame detected")
    print(f"{'method':<52} {'FPS':>6} {'p50 ms':>7} {'p95 ms':>7} {'embeddings':>10}")
    for r in rows:
        print(
            f"{r['method']:<52} {r['fps']:>6.1f} {r['latency_p50_ms']:>7.1f} "
            f"{r['latency_p95_ms']:>7.1f} {r['embeddings']:>10}"
        )
    return rows


def table_enroll(device: torch.device, args: argparse.Namespace) -> list[dict]:
    from enroll_bench import naive_loop

    from facesearch import FaceSearch

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        people = gallery_folder(Path(tmp), args.photos)
        photos = sorted(p for d in people.iterdir() for p in d.iterdir())
        with FaceSearch(Path(tmp) / "warm", device=str(device)) as loader:
            loader.load_models()
            models = {"detector": loader.detector, "embedder": loader.embedder}
            weights = loader.embedder.weights_path
            loader.enroll_person("warm-up", photos[:4])
            naive_s, naive_faces, _ = naive_loop(photos, weights, device=str(device))
            rows.append({"step": "naive loop: enroll", "photos_s": len(photos) / naive_s})
            for step in ("enroll", "scan"):
                with FaceSearch(Path(tmp) / step, **models) as fs:
                    t0 = time.perf_counter()
                    (fs.enroll if step == "enroll" else fs.scan)(people)
                    s = time.perf_counter() - t0
                    rows.append(
                        {
                            "step": f"facesearch {step}",
                            "photos_s": len(photos) / s,
                            "vs_naive": len(photos) / s / rows[0]["photos_s"],
                        }
                    )
                    if step == "enroll":
                        fs.identify(photos[0])
                        t0 = time.perf_counter()
                        for p in photos[:50]:
                            fs.identify(p)
                        per = (time.perf_counter() - t0) / min(50, len(photos))
                        rows.append({"step": "facesearch identify", "ms": 1000 * per})
    print(f"\n{len(photos)} lfw_dev photos ({naive_faces} faces found by the naive loop)")
    print(f"{'step':<24} {'photos/s':>9} {'vs naive':>9} {'ms/photo':>9}")
    for r in rows:
        ps = f"{r['photos_s']:.1f}" if "photos_s" in r else ""
        vs = f"{r['vs_naive']:.2f}x" if "vs_naive" in r else ""
        ms = f"{r['ms']:.1f}" if "ms" in r else ""
        print(f"{r['step']:<24} {ps:>9} {vs:>9} {ms:>9}")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tables", default=",".join(TABLES))
    ap.add_argument("--frames", type=int, help="video frames (default: all 105)")
    ap.add_argument("--batch", type=int, default=8, help="images per detector call")
    ap.add_argument("--crops", type=int, default=512, help="lfw_dev photos for the embed table")
    ap.add_argument("--photos", type=int, default=200, help="lfw_dev photos to enroll and scan")
    ap.add_argument("--pairs", type=int, help="the first N same and N different lfw pairs only")
    ap.add_argument("--repeat", type=int, default=2, help="timed passes per row (best counts)")
    ap.add_argument("--quick", action="store_true", help="a few images per table")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.quick:
        args.frames, args.crops, args.photos, args.pairs, args.repeat = 6, 24, 12, 10, 1
    tables = args.tables.split(",")
    unknown = set(tables) - set(TABLES)
    if unknown:
        ap.error(f"unknown tables {sorted(unknown)}; choose from {', '.join(TABLES)}")
    use_shared_models()
    from facesearch.device import resolve_device

    device = resolve_device(args.device)
    print(f"device: {device_line(device)}")
    results = {"device": device_line(device)}
    runners = {
        "detect": table_detect,
        "embed": table_embed,
        "lfw": table_lfw,
        "video": table_video,
        "enroll": table_enroll,
    }
    for name in tables:
        t0 = time.perf_counter()
        results[name] = runners[name](device, args)
        print(f"({name}: {time.perf_counter() - t0:.0f} s)", flush=True)
        if args.json:  # written after each table: a run cut short keeps what it measured
            args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
