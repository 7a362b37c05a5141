"""FaceNet's forward pass on a CPU: torch eager against ONNX Runtime and OpenVINO, same crops.

The crops are the subjects of ``--photos`` lfw_dev photos, cut exactly as enroll cuts them
(160x160, standardised), each embedded with flip averaging (the crop and its mirror image in one
batch), as facesearch does. Per runtime: crops/s at batch 32 on all cores (best of 3 passes), and
the cosine similarity of each embedding to torch fp32's (min and mean). torch's int8 static
quantisation (FX graph mode, fbgemm) and ONNX Runtime's (QDQ, whole and with the first
convolutions left in fp32) are measured with ``--int8``, calibrated on the second half of the
crops. ONNX Runtime (facesearch's runner, what ``--runtime auto`` uses for fp32) and
OpenVINO are measured when installed (``pip install 'facesearch[fast]'``).

    python benchmarks/embed_runtime_bench.py [--photos 256] [--int8] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import CACHE, LFW_DEV, cpu_line, use_shared_models  # noqa: E402

BATCH = 32


def crops(n: int) -> np.ndarray:
    cache = CACHE / f"embed_runtime_crops_{n}.npy"
    if cache.is_file():
        return np.load(cache)
    use_shared_models()
    import torch

    from facesearch import FaceSearch
    from facesearch.crops import crop_faces
    from facesearch.detection import most_prominent
    from facesearch.images import iter_files, load_image

    fs = FaceSearch("/nonexistent-unused-gallery")
    paths = sorted(p for d in sorted(LFW_DEV.iterdir()) for p in iter_files(d))[:n]
    out = []
    for p in paths:
        img = load_image(p)
        faces = fs.detector.detect(img.image)
        if len(faces):
            out.append(crop_faces(img.image, faces[most_prominent(faces, img.size)]))
    arr = torch.cat(out).numpy().astype(np.float32)
    CACHE.mkdir(exist_ok=True)
    np.save(cache, arr)
    return arr


def with_flip(batch: np.ndarray) -> np.ndarray:
    return np.concatenate([batch, batch[..., ::-1]])


def finish(raw: np.ndarray) -> np.ndarray:
    """Flip-averaged unit embeddings from the raw outputs of crops + mirrors."""
    raw = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    half = len(raw) // 2
    v = raw[:half] + raw[half:]
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def timed(run, data: np.ndarray) -> tuple[np.ndarray, float]:
    """Embeddings of every crop and the best crops/s over 3 passes."""
    best, out = 0.0, None
    for _ in range(3):
        t0 = time.perf_counter()
        parts = [finish(run(with_flip(data[s : s + BATCH]))) for s in range(0, len(data), BATCH)]
        best = max(best, len(data) / (time.perf_counter() - t0))
        out = np.concatenate(parts)
    return out, best


def torch_runner(precision: str):
    import torch

    from facesearch import FaceEmbedder

    model = FaceEmbedder(precision="fp32").load()._model
    model = model.to(memory_format=torch.channels_last)

    def run(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x)).contiguous(memory_format=torch.channels_last)
        with (
            torch.inference_mode(),
            torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"),
        ):
            return model(t).float().numpy()

    return run, model


def torch_int8_runner(calibration: np.ndarray):
    """torch's own int8: FX graph-mode static quantisation with fbgemm's default qconfig
    (per-channel weights, histogram-observed activations), calibrated on ``calibration``."""
    import copy

    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    from facesearch import FaceEmbedder

    torch.backends.quantized.engine = "fbgemm"
    model = copy.deepcopy(FaceEmbedder(precision="fp32").load()._model)
    model = model.to(memory_format=torch.contiguous_format)
    example = (torch.from_numpy(calibration[:8]),)
    prepared = prepare_fx(model, get_default_qconfig_mapping("fbgemm"), example)
    with torch.inference_mode():
        for s in range(0, len(calibration), BATCH):
            prepared(torch.from_numpy(np.ascontiguousarray(calibration[s : s + BATCH])))
    quantized = convert_fx(prepared)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return quantized(torch.from_numpy(np.ascontiguousarray(x))).numpy()

    return run


def ort_int8_runner(onnx_path: Path, calibration: np.ndarray, keep_fp32: int):
    """ONNX Runtime's static int8 (QDQ; per-channel weights; activations' ranges from min/max
    over ``calibration`` and its mirror images), the first ``keep_fp32`` convolutions left in
    fp32. Weights are quantised to 7 bits (``reduce_range``): without AVX-512 VNNI, ONNX
    Runtime multiplies u8 by s8 with an instruction that saturates at 16 bits, which took
    full-range weights to cosine 0.905 of fp32."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from facesearch import runtimes

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.at = 0

        def get_next(self):
            if self.at >= len(calibration):
                return None
            batch = calibration[self.at : self.at + BATCH // 2]
            self.at += BATCH // 2
            return {"crops": with_flip(batch).astype(np.float32)}

    pre = onnx_path.with_name("facenet-pre.onnx")
    if not pre.is_file():  # the same for every row
        quant_pre_process(str(onnx_path), str(pre))
    convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]
    out = onnx_path.with_name(f"facenet-int8-{keep_fp32}.onnx")
    quantize_static(
        str(pre),
        str(out),
        Batches(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=convs[:keep_fp32],
    )
    return runtimes.load_runner("onnxruntime", out, "fp32")


def pass_gflop(model) -> float:
    """FaceNet's arithmetic for one 160x160 crop, as torch counts it (2 FLOP a multiply-add):
    crops/s x 2 passes x this is the rate the runtime computes at, to hold against the CPU's
    peak."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.to(memory_format=torch.contiguous_format)(torch.zeros(1, 3, 160, 160))
    return counter.get_total_flops() / 1e9


def export_onnx(model, path: Path) -> None:
    import torch

    dummy = torch.zeros(2, 3, 160, 160)
    torch.onnx.export(
        model.to(memory_format=torch.contiguous_format),
        dummy,
        str(path),
        input_names=["crops"],
        output_names=["embeddings"],
        dynamic_axes={"crops": {0: "n"}, "embeddings": {0: "n"}},
        opset_version=17,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=256)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--int8",
        action="store_true",
        help="also torch's and ONNX Runtime's int8 static quantisation (~2 min more)",
    )
    args = ap.parse_args()
    data = crops(args.photos)
    use_shared_models()
    rows = []
    run, model = torch_runner("fp32")
    ref, speed = timed(run, data)
    rows.append(("torch eager fp32", speed, 1.0, 1.0))
    flags = Path("/proc/cpuinfo").read_text()
    native_bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
    if native_bf16:
        run16, _ = torch_runner("bf16")
        v, speed = timed(run16, data)
        cos = np.sum(v * ref, 1)
        rows.append(
            ("torch eager bf16 autocast (facesearch's default here)", speed, cos.min(), cos.mean())
        )
    if args.int8:
        v, speed = timed(torch_int8_runner(data[len(data) // 2 :]), data)
        cos = np.sum(v * ref, 1)
        rows.append(("torch int8 static (FX, fbgemm; not offered)", speed, cos.min(), cos.mean()))
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "facenet.onnx"
        export_onnx(model, onnx_path)
        from facesearch import native, runtimes

        ort = native.onnxruntime()
        if ort is not None:  # facesearch's own runner, as --runtime auto uses it for fp32
            run_ort = runtimes.load_runner("onnxruntime", onnx_path, "fp32")
            v, speed = timed(run_ort, data)
            cos = np.sum(v * ref, 1)
            rows.append((f"ONNX Runtime {ort.__version__} fp32", speed, cos.min(), cos.mean()))
            if args.int8:
                for keep in (0, 2, 6):
                    run_q = ort_int8_runner(onnx_path, data[len(data) // 2 :], keep)
                    v, speed = timed(run_q, data)
                    cos = np.sum(v * ref, 1)
                    kept = f", first {keep} convs fp32" if keep else ""
                    name = f"ONNX Runtime int8 (7-bit weights{kept}; not offered)"
                    rows.append((name, speed, cos.min(), cos.mean()))
        else:
            print("onnxruntime not installed: left out")
        try:
            import openvino as ov

            for hint in ("fp32", "bf16"):  # facesearch's runner, as --runtime openvino uses it
                run_ov = runtimes.load_runner("openvino", onnx_path, hint)
                v, speed = timed(run_ov, data)
                cos = np.sum(v * ref, 1)
                name = f"OpenVINO {ov.__version__.split('-')[0]} {hint}"
                if hint == "bf16" and not native_bf16:
                    name += " (no native bf16: runs f32)"
                rows.append((name, speed, cos.min(), cos.mean()))
        except ImportError:
            print("openvino not installed: left out")
    gflop = pass_gflop(model)
    print(f"{len(data)} crops (flip: {2 * len(data)} forward passes), batch {BATCH}, {cpu_line()}")
    print(f"a forward pass is {gflop:.2f} GFLOP (torch's count of its multiply-adds, x2)")
    print(
        f"{'runtime':<68} {'crops/s':>8} {'vs torch fp32':>13} {'GFLOP/s':>8}"
        f" {'cos min':>8} {'cos mean':>9}"
    )
    base = rows[0][1]
    for name, speed, cmin, cmean in rows:
        print(
            f"{name:<68} {speed:8.1f} {speed / base:12.2f}x {2 * speed * gflop:8.0f}"
            f" {cmin:8.5f} {cmean:9.6f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                [dict(zip(("runtime", "crops_per_s", "cos_min", "cos_mean"), r)) for r in rows],
                indent=2,
                default=float,
            )
        )


if __name__ == "__main__":
    main()
