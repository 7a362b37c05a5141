"""``scan`` against ``enroll`` on the same photos: photos per second, faces stored, re-scan time.

The first ``--photos`` photos of lfw_dev (person order, as enroll_bench picks them) are laid out
one folder per person. ``enroll`` stores each photo's subject; ``scan`` every face of every photo
(with thumbnails and suggestions) into another gallery; then the scan is run again (nothing new:
unchanged files are not read) and ``clusters`` groups the scanned faces. Models are loaded once,
before anything is timed; each step gets a fresh gallery directory.

    python benchmarks/scan_bench.py [--photos 200] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from enroll_bench import pick_photos

from _common import use_shared_models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()
    use_shared_models()
    import torch

    from facesearch import FaceSearch

    work = Path(tempfile.mkdtemp(prefix="scan-bench-"))
    try:
        photos = work / "photos"
        for p in pick_photos(args.photos):
            (photos / p.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(p, photos / p.parent.name / p.name)
        loader = FaceSearch(work / "warm")
        loader.load_models()
        models = {"detector": loader.detector, "embedder": loader.embedder}
        loader.scan(photos / sorted(p.name for p in photos.iterdir())[0])  # warm up

        def timed(step):
            t0 = time.perf_counter()
            out = step()
            return out, time.perf_counter() - t0

        enrolled, t_enroll = timed(lambda: FaceSearch(work / "e", **models).enroll(photos))
        fs = FaceSearch(work / "s", **models)
        scanned, t_scan = timed(lambda: fs.scan(photos))
        again, t_rescan = timed(lambda: fs.scan(photos))
        clusters, t_clusters = timed(lambda: fs.clusters())
        result = {
            "photos": args.photos,
            "torch_threads": torch.get_num_threads(),
            "enroll": {
                "seconds": round(t_enroll, 2),
                "photos_per_s": round(args.photos / t_enroll, 2),
                "faces_stored": enrolled.enrolled,
            },
            "scan": {
                "seconds": round(t_scan, 2),
                "photos_per_s": round(args.photos / t_scan, 2),
                "faces_stored": scanned.faces_added,
                "photos_without_faces": scanned.no_face,
            },
            "rescan_seconds": round(t_rescan, 3),
            "rescan_added": again.photos_added,
            "clusters": {
                "seconds": round(t_clusters, 3),
                "clusters": len(clusters.clusters),
                "unclustered": clusters.unclustered,
            },
        }
        print(json.dumps(result, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
