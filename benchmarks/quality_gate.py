"""What the quality gate removes: every detection on lfw_dev and the group photos, measured.

Runs the detector over lfw_dev (each photo's subject is a real face; other detections are
bystanders or junk) and the group photos, records each detection's score, size and pose, and
prints how many of each kind a gate removes, for the default gate and a grid of alternatives.
``--sheet PATH`` also writes a contact sheet of the detections that the loosest gate of the grid
would still remove and the strictest keep, for looking at by eye.

    python benchmarks/quality_gate.py [--limit N] [--json PATH] [--sheet PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from _common import FACES, GROUPS, LFW_DEV, use_shared_models


def detections(limit: int | None) -> list[dict]:
    from facesearch import FaceDetector, load_image
    from facesearch.detection import most_prominent
    from facesearch.quality import face_side, pose_angles

    detector = FaceDetector()
    lfw = sorted(LFW_DEV.rglob("*.jpg"))[:limit]
    groups = [FACES / g for g in GROUPS]
    rows = []
    paths = lfw + groups
    for start in range(0, len(paths), 16):
        chunk = paths[start : start + 16]
        images = [load_image(p).image for p in chunk]
        for path, image, faces in zip(chunk, images, detector.detect_many(images)):
            if len(faces) == 0:
                continue
            subject = most_prominent(faces, image.size)
            yaw, pitch = pose_angles(faces.landmarks)
            for i in range(len(faces)):
                rows.append(
                    {
                        "path": str(path.relative_to(FACES)),
                        "set": "group" if path in groups else "lfw_dev",
                        "subject": i == subject,
                        "score": float(faces.scores[i]),
                        "side": float(face_side(faces.boxes[i : i + 1])[0]),
                        "yaw": float(yaw[i]),
                        "pitch": float(pitch[i]),
                        "box": [round(float(v), 1) for v in faces.boxes[i]],
                    }
                )
    return rows


def removed(rows: list[dict], min_score: float, min_side: float) -> list[dict]:
    return [r for r in rows if r["score"] < min_score or r["side"] < min_side]


def sheet(rows: list[dict], path: Path) -> None:
    from PIL import Image, ImageDraw

    tiles = []
    for r in rows:
        img = Image.open(FACES / r["path"]).convert("RGB")
        x1, y1, x2, y2 = r["box"]
        m = 0.3 * max(x2 - x1, y2 - y1)
        tile = img.crop((x1 - m, y1 - m, x2 + m, y2 + m)).resize((120, 120))
        draw = ImageDraw.Draw(tile)
        draw.text((2, 2), f"{r['score']:.3f} {r['side']:.0f}px", fill=(255, 255, 0))
        draw.text((2, 108), Path(r["path"]).stem[:20], fill=(255, 255, 0))
        tiles.append(tile)
    cols = 8
    out = Image.new("RGB", (cols * 120, max(1, -(-len(tiles) // cols)) * 120))
    for k, t in enumerate(tiles):
        out.paste(t, ((k % cols) * 120, (k // cols) * 120))
    out.save(path)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--limit", type=int, help="only the first N lfw_dev photos")
    ap.add_argument("--json", type=Path, help="write every detection here")
    ap.add_argument("--sheet", type=Path, help="contact sheet of the borderline detections")
    args = ap.parse_args()
    use_shared_models()
    from facesearch.quality import DEFAULT_GATE

    rows = detections(args.limit)
    subjects = [r for r in rows if r["set"] == "lfw_dev" and r["subject"]]
    others = [r for r in rows if r["set"] == "lfw_dev" and not r["subject"]]
    groups = [r for r in rows if r["set"] == "group"]
    print(
        f"{len(subjects)} lfw_dev subjects, {len(others)} other lfw_dev detections, "
        f"{len(groups)} detections on {len(GROUPS)} group photos"
    )
    for name, part in (("subjects", subjects), ("others", others), ("groups", groups)):
        s = np.array([r["score"] for r in part])
        side = np.array([r["side"] for r in part])
        print(
            f"  {name:<9} score min {s.min():.3f} p1 {np.percentile(s, 1):.3f}; "
            f"side min {side.min():.0f} p1 {np.percentile(side, 1):.0f} px"
        )
    print(
        f"\n{'min score':>9} {'min side':>8} {'subjects lost':>13} {'others removed':>14} {'group removed':>13}"
    )
    grid = [(s, p) for s in (0.8, 0.85, 0.9, 0.95) for p in (0, 20, 24, 30)]
    gate = (DEFAULT_GATE.min_score, DEFAULT_GATE.min_side)
    for s, p in [gate, *grid]:
        mark = "  <- default" if (s, p) == gate else ""
        print(
            f"{s:>9.2f} {p:>8.0f} {len(removed(subjects, s, p)):>13} "
            f"{len(removed(others, s, p)):>14} {len(removed(groups, s, p)):>13}{mark}"
        )
    print("\ngroup-photo detections the default gate removes:")
    for r in removed(groups, *gate):
        print(f"  {r['path']}: score {r['score']:.3f}, side {r['side']:.0f} px, box {r['box']}")
    print("lfw_dev subjects the default gate removes:")
    for r in removed(subjects, *gate):
        print(f"  {r['path']}: score {r['score']:.3f}, side {r['side']:.0f} px")
    if args.sheet:
        loose = [r for r in rows if r not in removed(rows, 0.8, 0) and not r["subject"]]
        sheet(
            [r for r in loose if r in removed(rows, 0.95, 30)] + removed(rows, 0.8, 0), args.sheet
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
