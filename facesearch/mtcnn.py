"""MTCNN, batched: facenet-pytorch's PNet/RNet/ONet and weights, run a stage at a time.

facenet-pytorch's ``MTCNN.detect`` cuts and resizes every RNet/ONet candidate one at a time
(``interpolate(mode="area")`` per crop: about 300 calls for a 640x480 frame), accepts only
equal-sized images per call, and runs its last NMS as a Python loop over numpy. This cascade
finds the same faces (``tests/test_mtcnn.py`` holds it to facenet-pytorch on every shared photo)
with less work per face:

* each stage's candidate crops, from any number of images of any sizes, are resampled in one
  gather from the images' integral images (summed-area tables): exactly the box averages that
  ``interpolate(mode="area")`` computes, for all crops at once;
* images of equal size share one PNet batch per pyramid level, the pyramid being read from
  the same integral images (small images only: ``CALL_PIXELS``);
* RNet and ONet see the candidates of all images in one batch; NMS is torchvision's
  (the last, "min"-area NMS, on an overlap matrix).

The networks run channels-last on CPU (oneDNN's max-pool is several times faster that way), on
torch or on OpenVINO (``mtcnn_runtime.py``). OpenVINO runs these small networks no faster on two
threads than on one, so there the work is split between one-thread workers instead: a call's
images (in calls of their own), each call's pyramid levels, and RNet's and ONet's candidates.
Coordinates follow facenet-pytorch exactly (its 1-based crop windows and box regression) so that
boxes, scores and landmarks match it to float rounding.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

T = TypeVar("T")
R = TypeVar("R")

CALL_PIXELS = 512_000  # images per cascade call, up to this many pixels in all (measured:
# batching pays for small photos, 2.7x the per-image rate on 250x250, and costs cache misses on
# large ones, 10% slower on 640x480 frames in eights, 35% on 1920x1080)
PNET_CELL = 12  # PNet sees 12x12 windows ...
PNET_STRIDE = 2  # ... every 2 pixels
RNET_SIZE = 24
ONET_SIZE = 48
NORM_MEAN = 127.5
NORM_SCALE = 0.0078125


@dataclass(frozen=True)
class Detections:
    """Faces of one image as facenet-pytorch reports them: ``boxes`` (N, 4) xyxy pixels,
    ``scores`` (N,), ``landmarks`` (N, 5, 2), most confident first."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray


def pyramid_scales(height: int, width: int, min_face_size: int, factor: float) -> list[float]:
    """The image scales PNet runs at, exactly as facenet-pytorch computes them."""
    m = PNET_CELL / min_face_size
    minl = min(height, width) * m
    scales = []
    scale = m
    while minl >= PNET_CELL:
        scales.append(scale)
        scale *= factor
        minl *= factor
    return scales


class MTCNNCascade:
    """P-, R- and O-Net over a list of RGB uint8 images (H, W, 3), several images per call.

    ``detect(images)`` returns one ``Detections`` per image. The settings mean what they mean in
    facenet-pytorch's ``MTCNN``: the smallest face sought, the three stages' score thresholds,
    the pyramid's scale step.
    """

    def __init__(
        self,
        device: torch.device | str = "cpu",
        min_face_size: int = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        runtime: str = "torch",
    ) -> None:
        import torch
        from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

        self.device = torch.device(device)
        #: where the networks run: "torch" or "openvino" (``mtcnn_runtime.py``; CPU only)
        self.runtime = runtime
        self.min_face_size = min_face_size
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = factor
        self.pnet, self.rnet, self.onet = (
            net().eval().to(self.device) for net in (PNet, RNet, ONet)
        )
        self._channels_last = self.device.type == "cpu"
        if self._channels_last:
            for net in (self.pnet, self.rnet, self.onet):
                net.to(memory_format=torch.channels_last)
        if runtime == "openvino":
            from .mtcnn_runtime import OpenVINONet

            self.pnet = OpenVINONet(self.pnet, (1, 3, 2 * PNET_CELL, 2 * PNET_CELL))
            self.rnet = OpenVINONet(self.rnet, (2, 3, RNET_SIZE, RNET_SIZE))
            self.onet = OpenVINONet(self.onet, (2, 3, ONET_SIZE, ONET_SIZE))
        elif runtime != "torch":
            raise ValueError(f"unknown MTCNN runtime {runtime!r}")
        self._pools: dict[int, ThreadPoolExecutor] = {}
        self._pool_lock = threading.Lock()

    # -- the three stages ----------------------------------------------------------------------

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Faces in each of ``images`` (RGB uint8 arrays (H, W, 3), any sizes)."""
        if not len(images):
            return []
        for im in images:
            if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
                raise ValueError(
                    f"expected RGB uint8 arrays (H, W, 3), got {im.dtype} {tuple(im.shape)}"
                )
        calls = _calls(list(images), self._side_by_side(len(images)))
        return [d for found in self._map(self._detect, calls) for d in found]

    def _side_by_side(self, n_items: int) -> int:
        """How many of ``n_items`` pieces of work run at once: on OpenVINO, one per thread
        this thread may use (one, in the threads that run them)."""
        if self.runtime != "openvino" or n_items < 2:
            return 1
        from .mtcnn_runtime import threads_here

        return min(n_items, threads_here())

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``fn`` over ``items`` in order, side by side where ``_side_by_side`` says so."""
        n = self._side_by_side(len(items))
        if n > 1:
            return list(self._workers(n).map(fn, items))
        return [fn(item) for item in items]

    def _workers(self, n: int) -> ThreadPoolExecutor:
        """``n`` threads that run work side by side, one OpenVINO thread each; kept, as each
        compiles its own networks."""
        from .mtcnn_runtime import use_threads

        with self._pool_lock:
            if n not in self._pools:
                self._pools[n] = ThreadPoolExecutor(
                    n, thread_name_prefix="facesearch-mtcnn", initializer=use_threads, initargs=(1,)
                )
            return self._pools[n]

    def _detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        import torch

        with torch.inference_mode():
            table = _IntegralImages([np.ascontiguousarray(im) for im in images], self.device)
            boxes, inds = self._stage1(table)
            boxes, inds, _ = self._refine(boxes, inds, table, RNET_SIZE)
            boxes, inds, points = self._refine(boxes, inds, table, ONET_SIZE)
            return _split(boxes, inds, points, len(images))

    def _stage1(self, table: _IntegralImages) -> tuple[torch.Tensor, torch.Tensor]:
        """PNet over each image's pyramid: candidate boxes (N, 5: xyxy, score) and their image
        indices, after NMS within each level and across levels, regression applied and squared
        (facenet-pytorch's first stage)."""
        import torch
        from torchvision.ops import batched_nms

        groups: dict[tuple[int, int], list[int]] = {}
        for i, s in enumerate(table.sizes):
            groups.setdefault(s, []).append(i)
        levels = [
            (idxs, h, w, scale)
            for (h, w), idxs in groups.items()
            for scale in pyramid_scales(h, w, self.min_face_size, self.factor)
        ]
        found = self._map(lambda level: self._pnet_level(table, *level), levels)
        all_boxes = [b for b, _ in found if len(b)]
        all_inds = [i for b, i in found if len(b)]
        if not all_boxes:
            return torch.zeros((0, 5), device=self.device), torch.zeros(
                (0,), dtype=torch.long, device=self.device
            )
        boxes = torch.cat(all_boxes)
        inds = torch.cat(all_inds)
        keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes, inds = boxes[keep], inds[keep]
        regw = boxes[:, 2] - boxes[:, 0]
        regh = boxes[:, 3] - boxes[:, 1]
        qq = torch.stack(
            [
                boxes[:, 0] + boxes[:, 5] * regw,
                boxes[:, 1] + boxes[:, 6] * regh,
                boxes[:, 2] + boxes[:, 7] * regw,
                boxes[:, 3] + boxes[:, 8] * regh,
                boxes[:, 4],
            ],
            dim=1,
        )
        return _square(qq), inds

    def _pnet_level(
        self, table: _IntegralImages, idxs: list[int], h: int, w: int, scale: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """PNet over images ``idxs`` (all h x w) at one pyramid scale: the windows that pass,
        after NMS, and their image indices."""
        import torch
        from torchvision.ops import batched_nms

        with torch.inference_mode():
            level = table.level(idxs, int(h * scale + 1), int(w * scale + 1))
            reg, prob = self.pnet(level)
            b, local = _generate_boxes(reg, prob[:, 1], scale, self.thresholds[0])
            keep = batched_nms(b[:, :4], b[:, 4], local, 0.5)
            ids = torch.as_tensor(idxs, device=self.device)
            return b[keep], ids[local[keep]]

    def _run(self, net: Callable[..., Any], crops: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``net`` over ``crops``, in parts side by side where ``_side_by_side`` says so."""
        import torch

        parts = self._side_by_side(len(crops))
        if parts == 1:
            return tuple(net(crops))

        def run(part: torch.Tensor) -> tuple[torch.Tensor, ...]:
            with torch.inference_mode():
                return tuple(net(part))

        outs = self._map(run, crops.tensor_split(parts))
        return tuple(torch.cat(o) for o in zip(*outs))

    def _refine(
        self,
        boxes: torch.Tensor,
        inds: torch.Tensor,
        table: _IntegralImages,
        size: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """RNet (``size`` 24) or ONet (48) over all candidates of all images in one batch:
        the boxes that pass, regressed (and for ONet their landmarks), after NMS."""
        import torch
        from torchvision.ops import batched_nms

        empty_points = torch.zeros((0, 5, 2), device=self.device)
        if len(boxes) == 0:
            return boxes, inds, empty_points
        y, ey, x, ex = _pad(boxes, inds, table.sizes)
        ok = (ey > y - 1) & (ex > x - 1)
        boxes, inds, y, ey, x, ex = boxes[ok], inds[ok], y[ok], ey[ok], x[ok], ex[ok]
        if len(boxes) == 0:
            return boxes, inds, empty_points
        crops = table.crops(inds, y - 1, ey, x - 1, ex, size)
        if self._channels_last:
            crops = crops.contiguous(memory_format=torch.channels_last)
        stage = 1 if size == RNET_SIZE else 2
        if stage == 1:
            reg, prob = self._run(self.rnet, crops)
        else:
            reg, lms, prob = self._run(self.onet, crops)
        score = prob[:, 1]
        passed = score > self.thresholds[stage]
        boxes = torch.cat([boxes[passed, :4], score[passed, None]], dim=1)
        inds, reg = inds[passed], reg[passed]
        if stage == 1:
            keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
            boxes = _square(_regress(boxes[keep], reg[keep]))
            return boxes, inds[keep], empty_points
        lms = lms[passed]
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        px = w[:, None] * lms[:, :5] + boxes[:, 0:1] - 1
        py = h[:, None] * lms[:, 5:] + boxes[:, 1:2] - 1
        points = torch.stack([px, py], dim=2)
        boxes = _regress(boxes, reg)
        keep = _nms_min(boxes, inds, 0.7)
        return boxes[keep], inds[keep], points[keep]


def _calls(images: list[np.ndarray], parts: int) -> list[list[np.ndarray]]:
    """``images`` in order, cut into calls of at most ``CALL_PIXELS`` pixels each (a larger
    image alone), and into at least ``parts`` calls of about equal pixels."""
    pixels = np.array([im.shape[0] * im.shape[1] for im in images], np.int64)
    per_call = min(CALL_PIXELS, -(-int(pixels.sum()) // max(1, parts)))
    calls: list[list[np.ndarray]] = []
    call: list[np.ndarray] = []
    total = 0
    for im, px in zip(images, pixels):
        if call and total + px > per_call:
            calls.append(call)
            call, total = [], 0
        call.append(im)
        total += int(px)
    return calls + [call]


class _IntegralImages:
    """Summed-area tables of a list of images: box averages of any windows in a few gathers.

    Both resamplings of the cascade are adaptive average pooling, i.e. what facenet-pytorch's
    ``interpolate(mode="area")`` computes (output cell i averages input rows floor(i*L/n) to
    ceil((i+1)*L/n)): the pyramid (``level``) and every RNet/ONet crop (``crops``). From the
    integral image each is exact integer box sums, for all crops of all images at once.
    """

    def __init__(self, images: Sequence[np.ndarray], device: torch.device) -> None:
        import torch

        tables = [_integral(im, device) for im in images]
        self.sizes = [(int(im.shape[0]), int(im.shape[1])) for im in images]
        if len({t.dtype for t in tables}) > 1:
            tables = [t.to(torch.float64) for t in tables]
        self.tables = tables
        flat = [t.reshape(-1, 3) for t in tables]
        self.flat = flat[0] if len(flat) == 1 else torch.cat(flat)
        counts = [int(t.shape[0] * t.shape[1]) for t in tables]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.offsets = torch.as_tensor(starts, device=device)
        self.widths = torch.as_tensor([w + 1 for _, w in self.sizes], device=device)

    def level(self, idxs: list[int], hs: int, ws: int) -> torch.Tensor:
        """Images ``idxs`` (of one size) resized to (hs, ws), normalised for PNet:
        (B, 3, hs, ws), channels-last in memory."""
        import torch

        h, w = self.sizes[idxs[0]]
        rs, re, cs, ce, scale = _level_bins(h, w, hs, ws, str(self.flat.device))
        outs = []
        for i in idxs:  # per image: index_select is fastest on 3-d tables
            table = self.tables[i]
            rows = table.index_select(0, re) - table.index_select(0, rs)
            outs.append((rows.index_select(1, ce) - rows.index_select(1, cs)).to(torch.float32))
        out = outs[0][None] if len(outs) == 1 else torch.stack(outs)
        out.mul_(scale).sub_(NORM_MEAN * NORM_SCALE)
        return out.permute(0, 3, 1, 2)

    def crops(
        self,
        inds: torch.Tensor,
        r0: torch.Tensor,
        r1: torch.Tensor,
        c0: torch.Tensor,
        c1: torch.Tensor,
        size: int,
    ) -> torch.Tensor:
        """Rows [r0, r1) x cols [c0, c1) of images ``inds``, each resized to (size, size) and
        normalised: (N, 3, size, size), channels-last in memory."""
        import torch

        n = len(inds)
        rows_s, rows_e = _bins(r0, r1, size)  # (N, size)
        cols_s, cols_e = _bins(c0, c1, size)
        base = self.offsets[inds][:, None, None]
        stride = self.widths[inds][:, None, None]
        rows_s, rows_e = rows_s[:, :, None] * stride + base, rows_e[:, :, None] * stride + base
        cols_s, cols_e = cols_s[:, None, :], cols_e[:, None, :]

        def at(r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            return self.flat.index_select(0, (r + c).reshape(-1))

        total = at(rows_e, cols_e) - at(rows_s, cols_e) - at(rows_e, cols_s) + at(rows_s, cols_s)
        area = ((rows_e - rows_s) // stride) * (cols_e - cols_s)
        scale = (NORM_SCALE / area.to(torch.float32)).reshape(-1, 1).expand(-1, 3)
        out = total.to(torch.float32).mul_(scale).sub_(NORM_MEAN * NORM_SCALE)
        return out.view(n, size, size, 3).permute(0, 3, 1, 2)


@functools.lru_cache(maxsize=256)
def _level_bins(h: int, w: int, hs: int, ws: int, device: str):
    """Row and column windows of an (h, w) -> (hs, ws) area resize, and each output cell's
    normalising factor (hs, ws, 3); cached, as video frames repeat the same sizes."""
    import torch

    dev = torch.device(device)
    zero = torch.zeros(1, dtype=torch.long, device=dev)
    rs, re = (t[0] for t in _bins(zero, zero + h, hs))
    cs, ce = (t[0] for t in _bins(zero, zero + w, ws))
    area = ((re - rs)[:, None] * (ce - cs)[None, :]).to(torch.float32)
    scale = (NORM_SCALE / area)[:, :, None].expand(-1, -1, 3).contiguous()
    return rs, re, cs, ce, scale


def _integral(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """The (H + 1, W + 1, 3) summed-area table of an RGB uint8 image; int32 where its sums
    fit (images up to 8.4 Mpx), else float64 (exact to 2**53)."""
    import torch

    h, w = image.shape[:2]
    exact32 = 255 * h * w < 2**31
    if device.type == "cpu":
        import cv2

        table = cv2.integral(image, sdepth=cv2.CV_32S if exact32 else cv2.CV_64F)
        return torch.from_numpy(table)
    t = torch.as_tensor(image, device=device).to(torch.int32 if exact32 else torch.float64)
    out = t.new_zeros((h + 1, w + 1, 3))
    out[1:, 1:] = t.cumsum(0).cumsum(1)
    return out


def _bins(start: torch.Tensor, end: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive pooling's input range [s, e) for each of ``size`` output cells of each span
    [start, end): (N, size) each."""
    import torch

    i = torch.arange(size, device=start.device)[None, :]
    length = (end - start)[:, None]
    s = start[:, None] + (i * length).div(size, rounding_mode="floor")
    e = start[:, None] - (-(i + 1) * length).div(size, rounding_mode="floor")
    return s, e


def _generate_boxes(
    reg: torch.Tensor, prob: torch.Tensor, scale: float, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """PNet's windows scoring >= ``threshold`` at one level, in image pixels: (N, 9) rows of
    xyxy, score and the 4 regression offsets; and each one's index within the batch."""
    import torch

    mask = prob >= threshold
    where = mask.nonzero()
    image = where[:, 0]
    score = prob[mask]
    offsets = reg.permute(1, 0, 2, 3)[:, mask].permute(1, 0)
    xy = where[:, 1:].to(reg.dtype).flip(1)
    q1 = ((PNET_STRIDE * xy + 1) / scale).floor()
    q2 = ((PNET_STRIDE * xy + PNET_CELL - 1 + 1) / scale).floor()
    return torch.cat([q1, q2, score[:, None], offsets], dim=1), image


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Each box grown to a square on its longer side, about its centre (``rerec``)."""
    import torch

    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = torch.maximum(w, h)
    out = boxes.clone()
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Box regression with MTCNN's inclusive widths (``bbreg``)."""
    out = boxes.clone()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] = boxes[:, 0] + reg[:, 0] * w
    out[:, 1] = boxes[:, 1] + reg[:, 1] * h
    out[:, 2] = boxes[:, 2] + reg[:, 2] * w
    out[:, 3] = boxes[:, 3] + reg[:, 3] * h
    return out


def _pad(
    boxes: torch.Tensor, inds: torch.Tensor, sizes: list[tuple[int, int]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """facenet-pytorch's 1-based crop windows: truncated boxes clamped to each box's image;
    the crop is rows [y - 1, ey), cols [x - 1, ex)."""
    import torch

    hw = torch.as_tensor(sizes, device=boxes.device)[inds]
    b = boxes[:, :4].trunc().to(torch.int64)
    x = b[:, 0].clamp(min=1)
    y = b[:, 1].clamp(min=1)
    ex = torch.minimum(b[:, 2], hw[:, 1])
    ey = torch.minimum(b[:, 3], hw[:, 0])
    return y, ey, x, ex


def _nms_min(boxes: torch.Tensor, inds: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS per image where overlap is intersection over the *smaller* box (inclusive
    pixel areas), as facenet-pytorch's last stage does; indices kept, best first.

    Confident faces often score exactly 1.0 in float32, so ties are common; they are broken as
    facenet-pytorch breaks them (the last of ``np.argsort``'s ascending order goes first), or
    a different one of two near-identical boxes would be kept.
    """
    import torch

    b = boxes[:, :4].double().cpu().numpy()
    s = boxes[:, 4].cpu().numpy()
    im = inds.cpu().numpy()
    keep: list[int] = []
    for i in np.unique(im):
        rows = np.flatnonzero(im == i)
        bi = b[rows]
        area = (bi[:, 2] - bi[:, 0] + 1) * (bi[:, 3] - bi[:, 1] + 1)
        x1 = np.maximum(bi[:, None, 0], bi[None, :, 0])
        y1 = np.maximum(bi[:, None, 1], bi[None, :, 1])
        x2 = np.minimum(bi[:, None, 2], bi[None, :, 2])
        y2 = np.minimum(bi[:, None, 3], bi[None, :, 3])
        inter = np.maximum(0.0, x2 - x1 + 1) * np.maximum(0.0, y2 - y1 + 1)
        overlap = inter / np.minimum(area[:, None], area[None, :])
        suppressed = np.zeros(len(rows), bool)
        for j in np.argsort(s[rows])[::-1]:
            if not suppressed[j]:
                keep.append(int(rows[j]))
                suppressed |= overlap[j] > threshold
    return torch.as_tensor(np.array(keep, np.int64), device=boxes.device)


def _split(
    boxes: torch.Tensor, inds: torch.Tensor, points: torch.Tensor, n: int
) -> list[Detections]:
    b = boxes.float().cpu().numpy()
    p = points.float().cpu().numpy()
    im = inds.cpu().numpy()
    out = []
    for i in range(n):
        sel = np.flatnonzero(im == i)
        out.append(
            Detections(
                np.ascontiguousarray(b[sel, :4]),
                np.ascontiguousarray(b[sel, 4]),
                np.ascontiguousarray(p[sel]).reshape(-1, 5, 2),
            )
        )
    return out
