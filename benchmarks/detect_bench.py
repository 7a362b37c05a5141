"""Face detection speed and agreement: facenet-pytorch's MTCNN vs facesearch's cascade, one run.

Inputs: lfw_dev photos (250x250), the frames of ``video.mp4`` resized to 640x480 and kept at
1920x1080, and the group photos. Methods, all on the same decoded RGB images:

* ``facenet-pytorch MTCNN``: stock ``MTCNN(keep_all=True).detect``, one image per call;
* ``facesearch before``: ``FaceDetector(backend="facenet-pytorch")``, facenet-pytorch's
  MTCNN with channels-last networks (what facesearch ran until the cascade);
* ``cascade on torch``: ``FaceDetector(runtime="torch")``, one image per call (a live frame,
  one photo), and ``xN``: N images per call (enroll and scan batches);
* ``cascade on openvino``: the same with the networks on OpenVINO (``--detect-runtime auto``
  where ``facesearch[fast]`` is installed), the calls, pyramid levels and crops of a call split
  between one-thread workers.

No padded retry (facenet-pytorch has none). Agreement is with stock facenet-pytorch (its boxes
clipped to the image, as facesearch reports them) and with "facesearch before": images with the
same number of faces, and faces with a counterpart at box IoU >= 0.95 and landmarks within 2 px.
Each method runs ``--repeat`` passes; the fastest pass is reported (the machine may be shared),
and the first pass beside it (OpenVINO makes its kernels for each input shape it has not seen). MTCNN runs in fp32 everywhere: bf16 made PNet slower here and would move
boxes, so ``--precision`` does not apply to detection.

``--nets`` times the three networks alone instead, one thread, at a 640x480 frame's shapes
(PNet's first level and a smaller one, RNet on 227 candidates, ONet on 31): torch
channels-last against OpenVINO, best of 3 x 15 calls.

    python benchmarks/detect_bench.py [--lfw 300] [--batch 8] [--repeat 3] [--json PATH]
    python benchmarks/detect_bench.py --nets
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _common import FACES, GROUPS, LFW_DEV, cpu_line, person_photos, use_shared_models

VIDEO = FACES / "facenet_pytorch_data" / "video.mp4"


def load_sets(n_lfw: int) -> dict[str, list]:
    from PIL import Image

    from facesearch import load_image

    lfw: list[Path] = []
    for photos in person_photos(LFW_DEV).values():
        lfw.extend(photos)
        if len(lfw) >= n_lfw:
            break
    sets = {f"lfw_dev {n_lfw} (250x250)": [load_image(p).image for p in lfw[:n_lfw]]}
    import cv2

    cap = cv2.VideoCapture(str(VIDEO))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    cap.release()
    small = [cv2.resize(f, (640, 480), interpolation=cv2.INTER_AREA) for f in frames]
    sets[f"video {len(frames)} frames 640x480"] = [Image.fromarray(f) for f in small]
    sets[f"video {len(frames)} frames 1920x1080"] = [Image.fromarray(f) for f in frames]
    sets[f"group photos ({len(GROUPS)})"] = [load_image(FACES / g).image for g in GROUPS]
    return sets


def run_stock(mtcnn, images) -> list:
    out = []
    with torch.inference_mode():
        for img in images:
            boxes, probs, points = mtcnn.detect(img, landmarks=True)
            if boxes is None:
                out.append((np.zeros((0, 4)), np.zeros((0, 5, 2))))
            else:  # clipped to the image, as facesearch reports boxes
                b = boxes.astype(np.float32)
                b[:, [0, 2]] = b[:, [0, 2]].clip(0, img.width)
                b[:, [1, 3]] = b[:, [1, 3]].clip(0, img.height)
                out.append((b, points.astype(np.float32)))
    return out


def run_detector(detector, images, batch: int) -> list:
    out = []
    for start in range(0, len(images), batch):
        for faces in detector.detect_many(images[start : start + batch]):
            out.append((faces.boxes, faces.landmarks))
    return out


def agreement(ref: list, got: list) -> tuple[int, int, int]:
    """(images with the same count, faces matched, faces in the reference)."""
    same = matched = total = 0
    for (rb, rl), (gb, gl) in zip(ref, got):
        total += len(rb)
        if len(rb) != len(gb):
            continue
        same += 1
        if len(rb) == 0:
            continue
        x1 = np.maximum(rb[:, None, 0], gb[None, :, 0])
        y1 = np.maximum(rb[:, None, 1], gb[None, :, 1])
        x2 = np.minimum(rb[:, None, 2], gb[None, :, 2])
        y2 = np.minimum(rb[:, None, 3], gb[None, :, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        ar = (rb[:, 2] - rb[:, 0]) * (rb[:, 3] - rb[:, 1])
        ag = (gb[:, 2] - gb[:, 0]) * (gb[:, 3] - gb[:, 1])
        iou = inter / (ar[:, None] + ag[None, :] - inter)
        j = iou.argmax(axis=1)
        lm = np.abs(gl[j] - rl).reshape(len(rb), -1).max(axis=1)
        matched += int(np.sum((iou.max(axis=1) >= 0.95) & (lm <= 2.0)))
    return same, matched, total


def timed(fn, images: list, repeat: int) -> tuple[float, float, list]:
    """(fastest pass s, first pass s, detections)."""
    times, out = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(images)
        times.append(time.perf_counter() - t0)
    return min(times), times[0], out


def time_nets() -> None:
    """Each network alone, one thread: torch channels-last against OpenVINO."""
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    from facesearch.mtcnn_runtime import OpenVINONet, use_threads

    torch.set_num_threads(1)
    use_threads(1)

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(15):
                fn()
            times.append((time.perf_counter() - t0) / 15)
        return 1000 * min(times)

    print(f"CPU: {cpu_line()}\ntorch {torch.__version__}, one thread; ms per call, best of 3 x 15")
    print(f"{'network, input':<34} {'torch':>8} {'openvino':>9} {'ratio':>6}")
    for net, shape in (
        (PNet, (1, 3, 289, 385)),
        (PNet, (1, 3, 103, 137)),
        (RNet, (227, 3, 24, 24)),
        (ONet, (31, 3, 48, 48)),
    ):
        module = net().eval().to(memory_format=torch.channels_last)
        ov = OpenVINONet(net(), shape)
        x = torch.randn(*shape).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            t = best(lambda m=module, x=x: m(x))
            o = best(lambda m=ov, x=x: m(x))
        label = f"{net.__name__} {shape[0]} x {shape[2]}x{shape[3]}"
        print(f"{label:<34} {t:>8.2f} {o:>9.2f} {t / o:>5.2f}x")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lfw", type=int, default=300, help="lfw_dev photos")
    ap.add_argument("--batch", type=int, default=8, help="images per call of the batched row")
    ap.add_argument("--repeat", type=int, default=3, help="passes per method; the best counts")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--nets", action="store_true", help="time the networks alone (see above)")
    args = ap.parse_args()
    if args.nets:
        time_nets()
        return 0
    use_shared_models()
    from facenet_pytorch import MTCNN

    from facesearch import FaceDetector

    stock = MTCNN(keep_all=True, device="cpu")
    before = FaceDetector(device="cpu", backend="facenet-pytorch", pad_retry=0).load()
    cascades = [
        FaceDetector(device="cpu", pad_retry=0, runtime=r).load()
        for r in ("torch", "openvino")
        if r == "torch" or FaceDetector(device="cpu").runtime == "openvino"
    ]
    sets = load_sets(args.lfw)
    print(f"CPU: {cpu_line()}")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; fp32; best of "
        f"{args.repeat} passes"
    )
    rows = []
    for name, images in sets.items():
        run_stock(stock, images[:2])  # warm-up
        for cascade in cascades:
            run_detector(cascade, images[:2], 2)
        base = timed(lambda im: run_stock(stock, im), images, args.repeat)
        methods = [
            ("facenet-pytorch MTCNN", *base),
            (
                "facesearch before",
                *timed(lambda im: run_detector(before, im, 1), images, args.repeat),
            ),
        ]
        for cascade in cascades:
            for batch in (1, args.batch):
                methods.append(
                    (
                        f"cascade on {cascade.runtime}" + (f" x{batch}" if batch > 1 else ""),
                        *timed(
                            lambda im, c=cascade, b=batch: run_detector(c, im, b),
                            images,
                            args.repeat,
                        ),
                    )
                )
        base_s = base[0]
        print(f"\n{name}")
        print(
            f"  {'method':<26} {'images/s':>9} {'ms/image':>9} {'first pass':>10} {'vs fp-MTCNN':>11} "
            f"{'faces':>6} {'same count':>10} {'faces agree':>11} {'agree w/ before':>15}"
        )
        ref = methods[0][3]
        for label, s, first, got in methods:
            same, matched, total = agreement(ref, got)
            _, matched_before, total_before = agreement(methods[1][3], got)
            faces = sum(len(b) for b, _ in got)
            r = {
                "set": name,
                "method": label,
                "images": len(images),
                "images_per_s": len(images) / s,
                "ms_per_image": 1000 * s / len(images),
                "first_pass_ms_per_image": 1000 * first / len(images),
                "speedup": base_s / s,
                "faces": faces,
                "same_count": same,
                "faces_matched": matched,
                "faces_reference": total,
                "faces_matched_before": matched_before,
            }
            rows.append(r)
            print(
                f"  {label:<26} {r['images_per_s']:>9.1f} {r['ms_per_image']:>9.1f} "
                f"{r['first_pass_ms_per_image']:>10.1f} "
                f"{r['speedup']:>10.2f}x {faces:>6} {same:>4}/{len(images):<5} "
                f"{matched:>5}/{total:<5} {matched_before:>9}/{total_before:<5}"
            )
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_line(), "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
