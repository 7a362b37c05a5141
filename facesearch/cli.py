"""Command line: a thin layer over ``FaceSearch``; library errors become one line and exit 1."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import (
    DTYPES,
    EnrollReport,
    FaceAnnotator,
    FaceSearch,
    FaceSearchError,
    ImageResult,
    InputError,
    __version__,
    given,
    load_image,
)
from .device import PRECISIONS
from .mtcnn_runtime import DETECT_RUNTIMES
from .quality import DEFAULT_GATE
from .runtimes import RUNTIMES

if TYPE_CHECKING:
    from .cameras import CamerasConfig

PROG = "facesearch"


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Options accepted before and after the command name (after it, they override only if given)."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--gallery",
        metavar="DIR|URL",
        default=default(None),
        help="gallery directory or postgresql://user:pass@host/db URL "
        "(else $FACESEARCH_GALLERY, else ~/.local/share/facesearch/gallery)",
    )
    parser.add_argument(
        "--models",
        metavar="DIR",
        default=default(None),
        help="directory holding the FaceNet weights",
    )
    parser.add_argument("--device", default=default(None), help="auto (default), cpu or cuda")
    parser.add_argument(
        "--precision",
        choices=list(PRECISIONS),
        default=default("auto"),
        help="embedding precision (auto: bf16 on CPUs that compute it natively, else fp32; "
        "fp16 on CUDA only)",
    )
    parser.add_argument(
        "--runtime",
        choices=list(RUNTIMES),
        default=default(os.environ.get("FACESEARCH_RUNTIME", "auto")),
        help="where FaceNet runs: auto (ONNX Runtime for fp32 on the CPU when installed, else "
        "torch), torch, onnxruntime, or openvino (experimental; both: pip install "
        "'facesearch[fast]', see docs/performance.md); also $FACESEARCH_RUNTIME",
    )
    parser.add_argument(
        "--detect-runtime",
        choices=list(DETECT_RUNTIMES),
        default=default(os.environ.get("FACESEARCH_DETECT_RUNTIME", "auto")),
        help="where MTCNN runs: auto (OpenVINO on the CPU when installed, else torch), torch, "
        "or openvino (pip install 'facesearch[fast]', see docs/detection.md); also "
        "$FACESEARCH_DETECT_RUNTIME",
    )
    parser.add_argument(
        "--flip",
        choices=["on", "off"],
        default=default(None),
        help="average each face's embedding with its mirror image's (on) or embed it once "
        "(off: FaceNet runs half as often, enroll ~1.5x faster on CPUs without native bf16, "
        "~1 point fewer known people named); default: as the gallery was made, on for a new "
        "one, which keeps the setting",
    )
    parser.add_argument(
        "--no-quality-gate",
        action="store_true",
        default=default(False),
        help="name, enroll and evaluate every detection, however low its score or small its "
        "face (by default those below the gate are reported as low quality and not named)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default(False), help="log what happens"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Enroll people and identify faces in photos (MTCNN + FaceNet + HNSW).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        _common(p, suppress=True)
        return p

    p = add("enroll", "enroll FOLDER/<person>/* photos, or --name NAME FILE_OR_DIR...")
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a folder of person sub-folders, or with --name photos/folders of one person",
    )
    p.add_argument("--name", help="enroll the given photos as this one person")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = add("identify", "find and name every face in images")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument(
        "--annotate",
        metavar="OUT",
        help="write annotated image(s): a file for one image, else a folder",
    )
    _match_options(p)
    p.add_argument(
        "--top-k",
        type=int,
        default=3,
        metavar="K",
        help="candidates reported per face, one per person (default 3, at least 2)",
    )

    p = add("people", "list enrolled people")
    p.add_argument("--json", action="store_true")

    p = add("remove", "remove a person and all their faces")
    p.add_argument("name")

    p = add("faces", "list the stored faces of a person (or all, or the unassigned ones)")
    p.add_argument("name", nargs="?", metavar="NAME", help="whose faces (default: everyone's)")
    p.add_argument("--unassigned", action="store_true", help="the faces of no one yet")
    p.add_argument("--json", action="store_true")

    p = add("remove-face", "remove one face by its id (see faces); a person's last takes them too")
    p.add_argument("face_id", type=int, metavar="ID")

    p = add("rename", "rename a person; to the name of someone enrolled, merge the two")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")

    # -- the photo library
    p = add("scan", "store every face of every photo in PHOTOS_DIR (re-run: only what changed)")
    p.add_argument("folder", metavar="PHOTOS_DIR")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = add("clusters", "group the faces of no one into clusters of one unknown person each")
    p.add_argument(
        "--min-faces",
        type=int,
        default=3,
        metavar="N",
        help="list clusters of at least N faces (default 3)",
    )
    p.add_argument("--recluster", action="store_true", help="redo all clusters from scratch")
    p.add_argument("--sheet", metavar="PNG", help="write a contact sheet of the clusters")
    p.add_argument("--json", action="store_true")

    p = add("name", "give a cluster's faces a name (new, or someone enrolled)")
    p.add_argument("cluster", type=int, metavar="CLUSTER")
    p.add_argument("name", metavar="NAME")

    p = add("assign", "give faces (by id) to a person, new or enrolled")
    p.add_argument("face_ids", type=int, nargs="+", metavar="FACE_ID")
    p.add_argument("name", metavar="NAME")

    p = add(
        "unassign",
        "eject a face from its person or suggestion (never suggested to them again) or cluster",
    )
    p.add_argument("face_id", type=int, metavar="FACE_ID")

    p = add("confirm", "make the faces suggested for a person theirs (all, or the ids given)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("face_ids", type=int, nargs="*", metavar="FACE_ID")

    p = add("merge", "merge person A into person B (A's faces become B's)")
    p.add_argument("source", metavar="A")
    p.add_argument("target", metavar="B")

    p = add("split", "re-cluster one cluster more strictly")
    p.add_argument("cluster", type=int, metavar="CLUSTER")
    p.add_argument(
        "--average-distance",
        type=float,
        metavar="D",
        help="largest average distance within a part (default: a little below clustering's)",
    )

    p = add("find", "every photo a person is in, with the box of their face")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--suggested", action="store_true", help="also the faces suggested for them")
    p.add_argument("--json", action="store_true")

    p = add("photos-of", "copy (or symlink) every photo a person is in into a folder")
    p.add_argument("name", metavar="NAME")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--copy", metavar="DIR", help="copy the photos here")
    where.add_argument("--link", metavar="DIR", help="make symbolic links to them here")
    p.add_argument("--suggested", action="store_true", help="also photos of suggested faces")

    p = add("info", "gallery counts, model, index parameters, threshold, file sizes")
    p.add_argument("--json", action="store_true")

    p = add(
        "reindex",
        "rebuild the HNSW index from the database; options change the gallery's index parameters",
    )
    p.add_argument("--dtype", choices=list(DTYPES), help="how vectors are stored in the index")
    p.add_argument("--connectivity", type=int, metavar="M", help="graph degree (HNSW M)")
    p.add_argument("--ef-construction", type=int, metavar="N", help="search breadth while adding")
    p.add_argument(
        "--ef-search",
        type=int,
        metavar="N",
        help="default search breadth (0, the default: grows with the gallery, see info)",
    )
    p.add_argument(
        "--rerank",
        type=int,
        metavar="K",
        help="candidates re-scored with exact vectors when the dtype is compressed (0: off)",
    )
    p.add_argument(
        "--project",
        choices=("on", "off"),
        help="build the graph on the model's 64-d subspace coordinates (on, the default where "
        "the model has one) or on the full 512-d vectors",
    )

    p = add(
        "migrate",
        "copy every person and face from gallery SRC to DST (directories or postgresql:// URLs); "
        "re-run to finish an interrupted copy",
    )
    p.add_argument("source", metavar="SRC", help="gallery to copy from (directory or URL)")
    p.add_argument("destination", metavar="DST", help="gallery to copy into (created if needed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = add("evaluate", "measure verification and open-set identification on FOLDER/<person>/*")
    _eval_options(p)
    p.add_argument(
        "--pairs",
        metavar="FILE",
        help="LFW-format pairs.txt (else same/different pairs are sampled)",
    )
    p.add_argument("--no-verification", action="store_true", help="skip the 1:1 pairs")
    p.add_argument("--no-identification", action="store_true", help="skip open-set identification")
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="also store the open-set threshold in the gallery (as the calibrate command does)",
    )
    p.add_argument(
        "--gallery-sizes",
        metavar="LIST",
        help="also measure open-set identification on random sub-galleries of these numbers of "
        "people, comma-separated, 'all' for everyone (e.g. 4,16,64,256,all): the default "
        "threshold's stranger false-accepts and known people named, beside the fixed 0.307",
    )
    p.add_argument(
        "--draws",
        type=int,
        default=10,
        metavar="N",
        help="random sub-galleries per size for --gallery-sizes (default 10)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="random seed of the --gallery-sizes draws (default 0)"
    )

    p = add("live", "recognise faces live in a camera, video file or network stream")
    p.add_argument(
        "--source",
        default="0",
        help="camera number (default 0), video file, or rtsp:// / http:// stream URL",
    )
    p.add_argument(
        "--headless", action="store_true", help="no window (automatic when there is no display)"
    )
    p.add_argument("--output", metavar="FILE.mp4", help="write the annotated video")
    p.add_argument(
        "--events", metavar="FILE", help="append JSON lines (appear/recognized/leave); - = stdout"
    )
    p.add_argument(
        "--webhook",
        action="append",
        default=[],
        metavar="URL",
        help="POST each event as JSON to URL (retried; repeatable); signed with "
        "$FACESEARCH_WEBHOOK_SECRET when set (X-Facesearch-Signature: sha256=HMAC)",
    )
    p.add_argument(
        "--mqtt",
        metavar="URL",
        help="publish events to an MQTT broker, mqtt://[user:pass@]host[:1883] "
        "(topics facesearch/CAMERA/events, facesearch/people/NAME)",
    )
    p.add_argument(
        "--camera-name",
        default="live",
        metavar="NAME",
        help="the camera's name in webhook and MQTT events (default: live)",
    )
    p.add_argument(
        "--realtime",
        action="store_true",
        help="play a file at its own speed, skipping frames the loop cannot keep up with",
    )
    p.add_argument(
        "--enroll-key",
        action="store_true",
        help="in the window: press e, type a name, Enter: enrolls the largest face in view",
    )
    _match_options(p)
    p.add_argument(
        "--detect-width",
        type=int,
        default=640,
        metavar="PX",
        help="frames wider than this are downscaled for detection (default 640)",
    )
    p.add_argument(
        "--detect-every",
        type=int,
        default=2,
        metavar="N",
        help="run the face detector every Nth frame, tracking in between (default 2)",
    )
    p.add_argument(
        "--min-face",
        type=int,
        default=20,
        metavar="PX",
        help="smallest face looked for, in pixels of the detection frame (default 20)",
    )
    p.add_argument(
        "--detect-workers",
        type=int,
        metavar="N",
        help="frames detected at once, ahead of the one being named (default: one per core, "
        "at most 2, for a video file read as fast as possible; 1 for a camera, a stream, "
        "--realtime or a GPU)",
    )
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument(
        "--stats",
        metavar="FILE",
        help="write the run's summary as JSON at the end (frames, FPS, skipped frames, "
        "latency p50/p95)",
    )

    p = add("calibrate", "set the gallery's threshold for a stranger false-accept rate on FOLDER")
    _eval_options(p, far_default=0.001)

    p = add("serve", "serve the REST API (/api/v1) and the web page (/) over the gallery")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other needs an API key)",
    )
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument(
        "--api-key",
        action="append",
        metavar="KEY",
        help="a read-write API key; repeat for several (default: $FACESEARCH_API_KEY, "
        "comma-separated; an environment variable keeps keys out of the process list)",
    )
    p.add_argument(
        "--read-only-key",
        action="append",
        metavar="KEY",
        help="a key that may identify, verify and list only; repeat for several "
        "(default: $FACESEARCH_READ_ONLY_KEY)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=20.0,
        metavar="MB",
        help="largest request (photos) accepted, in MB; larger get 413 (default 20)",
    )
    p.add_argument(
        "--batch-window-ms",
        type=float,
        default=5.0,
        metavar="MS",
        help="identify requests arriving within this time share one batch (default 5)",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=16,
        metavar="N",
        help="most identify requests in one batch (default 16; 1 switches batching off)",
    )
    p.add_argument(
        "--compreface-known-only",
        action="store_true",
        help="the CompreFace-compatible /api/v1/recognition/recognize gives an unknown face no "
        "subjects, instead of its nearest people as CompreFace does (docs/compreface.md)",
    )
    cams = p.add_argument_group("cameras (live recognition inside the server)")
    cams.add_argument(
        "--camera",
        action="append",
        default=[],
        metavar="NAME=SOURCE",
        help="recognise a camera: NAME=0 (a local camera), NAME=rtsp://... or http://... (a "
        "stream), NAME=/path/clip.mp4 (a file, played at its speed and looped); repeatable",
    )
    cams.add_argument(
        "--config",
        metavar="FILE.toml",
        help="cameras, events and snapshots from a TOML file ([cameras], [events], "
        "[snapshots]; see docs/cameras.md); flags add to it",
    )
    cams.add_argument(
        "--webhook",
        action="append",
        default=[],
        metavar="URL",
        help="POST each camera event as JSON to URL (retried; repeatable); signed with "
        "$FACESEARCH_WEBHOOK_SECRET when set",
    )
    cams.add_argument(
        "--mqtt",
        metavar="URL",
        help="publish camera events to mqtt://[user:pass@]host[:1883] "
        "(facesearch/CAMERA/events, facesearch/people/NAME retained, HA discovery)",
    )
    cams.add_argument(
        "--snapshots",
        metavar="DIR",
        help="where face snapshots are kept (default: snapshots/ in a local gallery's folder)",
    )
    cams.add_argument(
        "--keep-snapshots",
        type=int,
        metavar="N",
        help="most snapshots kept, newest first (default 500)",
    )
    cams.add_argument(
        "--snapshot-days",
        type=float,
        metavar="DAYS",
        help="snapshots older than this are deleted (default 7)",
    )
    return parser


def _cameras_config(args: argparse.Namespace) -> CamerasConfig:
    """serve's cameras: the config file's, plus the flags'."""
    from .cameras import CamerasConfig, SnapshotSettings, load_config, parse_camera

    base = load_config(args.config) if args.config else CamerasConfig()
    snaps = base.snapshots
    if args.snapshots or args.keep_snapshots is not None or args.snapshot_days is not None:
        snaps = SnapshotSettings(
            Path(args.snapshots) if args.snapshots else snaps.directory,
            snaps.keep if args.keep_snapshots is None else args.keep_snapshots,
            snaps.days if args.snapshot_days is None else args.snapshot_days,
        )
    return base.merged(
        [parse_camera(text) for text in args.camera],
        args.webhook,
        os.environ.get("FACESEARCH_WEBHOOK_SECRET") or None,
        args.mqtt,
        snaps,
    )


def _check_ef(ef: int | None) -> None:
    if ef is not None and not 1 <= ef <= 4096:
        raise InputError("--ef must be an integer from 1 to 4096")


def _match_options(p: argparse.ArgumentParser) -> None:
    """--threshold and --refine, shared by identify and live."""
    p.add_argument(
        "--threshold", type=float, metavar="T", help="largest cosine distance accepted as a match"
    )
    p.add_argument(
        "--refine",
        choices=["none", "exact", "gradient"],
        default="none",
        help="re-examine 512 index candidates per face: exact re-rank or the potential-field "
        "gradient search (default none)",
    )
    p.add_argument(
        "--ef",
        type=int,
        metavar="N",
        help="HNSW search breadth for this run: higher finds the exact nearest face more often, "
        "slower (default: the gallery's, see info)",
    )


def _eval_options(p: argparse.ArgumentParser, far_default: float = 0.01) -> None:
    p.add_argument("folder", metavar="FOLDER", help="labelled photos, one sub-folder per person")
    p.add_argument(
        "--far",
        type=float,
        default=far_default,
        help=f"stranger false-accept rate the threshold is chosen for (default {far_default:g})",
    )
    p.add_argument(
        "--enroll-per-person",
        type=int,
        default=1,
        metavar="K",
        help="photos enrolled per person in the open-set test; the rest are queries (default 1)",
    )
    p.add_argument("--report", metavar="DIR", help="write summary.txt/.json and PNG plots here")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON document")
    p.add_argument("--no-cache", action="store_true", help="do not reuse or keep embeddings")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _print_enroll(report: EnrollReport, seconds: float, out: Any, verbose: bool) -> None:
    people = len(report.added)
    rate = report.photos_seen / seconds if seconds > 0 else 0.0
    print(
        f"Enrolled {report.enrolled} photo(s) of {people} person(s) in {seconds:.1f}s "
        f"({report.photos_seen} seen, {rate:.1f} photos/s)",
        file=out,
    )
    for name, n in sorted(report.added.items()):
        print(f"  + {name}: {n}", file=out)
    by_reason = report.skipped_by_reason()
    if by_reason:
        summary = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in sorted(by_reason.items()))
        print(f"Skipped {len(report.skipped)}: {summary}", file=out)
        for s in report.skipped:
            if s.reason == "duplicate" and not verbose:
                continue
            print(
                f"  - {s.path}: {s.reason.replace('_', ' ')}"
                + (f" ({s.detail})" if s.detail else ""),
                file=out,
            )
    for c in report.chosen:
        box = ", ".join(f"{v:.0f}" for v in c.box)
        print(f"  * {c.path}: {c.faces} faces, enrolled the most prominent [{box}]", file=out)


def _print_identify(result: ImageResult, out: Any) -> None:
    print(f"{result.image}: {len(result.faces)} face(s)", file=out)
    if not result.faces:
        return
    print(
        f"  {'#':>2}  {'name':<20} {'similarity':>10} {'distance':>8}  {'runner-up':<24} {'det':>5}  box",
        file=out,
    )
    for i, f in enumerate(result.faces, 1):
        name = f.name or ("unknown" + (f" (~{f.candidates[0].name})" if f.candidates else ""))
        if f.quality == "low":
            name = "(low quality)"
        sim = "-" if f.similarity is None else f"{f.similarity:.3f}"
        dist = "-" if f.distance is None else f"{f.distance:.3f}"
        ru = f.runner_up
        runner = f"{ru.name} {ru.similarity:.3f}" if ru else "-"
        box = "[" + ", ".join(f"{v:.0f}" for v in f.box) + "]"
        print(
            f"  {i:>2}  {name:<20} {sim:>10} {dist:>8}  {runner:<24} {f.score:>5.2f}  {box}",
            file=out,
        )


def _annotate_target(out: str, image: str, many: bool) -> Path:
    target = Path(out)
    if many or target.is_dir() or not target.suffix:
        target.mkdir(parents=True, exist_ok=True)
        return target / f"{Path(image).stem}.annotated.jpg"
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def run(args: argparse.Namespace) -> int:
    fs = FaceSearch(
        args.gallery,
        models_dir=args.models,
        device=args.device,
        precision=args.precision,
        runtime=args.runtime,
        detect_runtime=args.detect_runtime,
        quality_gate=None if args.no_quality_gate else DEFAULT_GATE,
        flip=None if args.flip is None else args.flip == "on",
    )
    with fs:
        if args.command == "enroll":
            return _cmd_enroll(fs, args)
        if args.command == "identify":
            return _cmd_identify(fs, args)
        if args.command == "people":
            people = fs.people()
            if args.json:
                print(json.dumps({"people": [p.to_dict() for p in people]}, indent=2))
            else:
                for p in people:
                    print(f"{p.name}\t{p.faces} face(s)")
                print(
                    f"{len(people)} person(s), {sum(p.faces for p in people)} face(s)",
                    file=sys.stderr,
                )
            return 0
        if args.command == "remove":
            n = fs.remove(args.name)
            print(f"Removed {args.name!r} and {n} face(s)")
            return 0
        if args.command == "faces":
            return _cmd_faces(fs, args)
        if args.command == "remove-face":
            face = fs.remove_face(args.face_id)
            owner = "unassigned" if face.person is None else repr(face.person)
            print(f"Removed face {face.id} ({owner}, {face.source_path})")
            if face.person is not None and face.person not in {p.name for p in fs.people()}:
                print(f"That was the last face of {owner}: they are no longer enrolled")
            return 0
        if args.command == "rename":
            result = fs.rename(args.old, args.new)
            if result.merged:
                print(f"{result.old!r} merged into {result.new!r}: {result.faces} face(s) moved")
            else:
                print(f"Renamed {result.old!r} to {result.new!r} ({result.faces} face(s))")
            return 0
        if args.command == "info":
            info = fs.info()
            if args.json:
                print(json.dumps(info, indent=2))
            else:
                for key, value in info.items():
                    if isinstance(value, dict):
                        value = ", ".join(f"{k}={v}" for k, v in value.items())
                    print(f"{key + ':':<18}{value}")
            return 0
        if args.command == "reindex":
            changes = {
                key: value
                for key, value in (
                    ("dtype", args.dtype),
                    ("connectivity", args.connectivity),
                    ("expansion_add", args.ef_construction),
                    ("expansion_search", args.ef_search),
                    ("rerank", args.rerank),
                )
                if value is not None
            }
            t0 = time.perf_counter()
            project = None if args.project is None else args.project == "on"
            n = fs.reindex_changed(project=project, **changes)
            now = fs.index_params()
            print(
                f"Rebuilt the index from the database: {n} face(s) in {time.perf_counter() - t0:.1f}s "
                f"(M={now.connectivity}, ef_construction={now.expansion_add}, "
                f"ef_search={now.expansion_search or 'auto'}, {now.dtype}"
                + (f" of {now.project}-d projections" if now.project else "")
                + (f", exact re-rank of {now.rerank})" if now.exact_rerank else ")")
            )
            if now.chosen_for:
                print(f"Index storage: {now.choice}")
            return 0
        if args.command in LIBRARY_COMMANDS:
            return LIBRARY_COMMANDS[args.command](fs, args)
        if args.command == "live":
            return _cmd_live(fs, args)
        if args.command == "migrate":
            return _cmd_migrate(fs, args)
        if args.command in ("evaluate", "calibrate"):
            return _cmd_evaluate(fs, args)
        if args.command == "serve":
            return _cmd_serve(fs, args)
    raise AssertionError(args.command)


def _cmd_faces(fs: FaceSearch, args: argparse.Namespace) -> int:
    if args.name is not None and args.unassigned:
        raise InputError("give a NAME or --unassigned, not both")
    faces = fs.faces(args.name, unassigned=args.unassigned)
    if args.json:
        print(json.dumps({"faces": [f.to_dict() for f in faces]}, indent=2, ensure_ascii=False))
        return 0
    for f in faces:
        box = "[" + ", ".join(f"{v:.0f}" for v in f.box) + "]"
        person = "-" if f.person is None else f.person
        print(f"{f.id}\t{person}\t{f.source_path}\t{box}\t{f.score:.2f}\t{f.added}")
    whose = (
        f" of {args.name!r}" if args.name is not None else " unassigned" if args.unassigned else ""
    )
    print(f"{len(faces)} face(s){whose}", file=sys.stderr)
    return 0


def _box_text(box: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in box) + "]"


def _cmd_scan(fs: FaceSearch, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    bar = tqdm(
        unit="photo", desc="scan", disable=True if args.no_progress else None, file=sys.stderr
    )
    t0 = time.perf_counter()
    try:
        report = fs.scan(args.folder, progress=bar.update, on_total=lambda n: bar.reset(total=n))
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return 0
    rate = report.photos_added / seconds if seconds > 0 else 0.0
    print(
        f"Scanned {report.folder}: {report.photos_seen} file(s) in {seconds:.1f}s; "
        f"{report.photos_added} new photo(s) ({rate:.1f}/s) with {report.faces_added} face(s), "
        f"{report.no_face} without a face"
    )
    print(
        f"  {report.unchanged} unchanged, {report.moved} moved, {report.deleted} gone "
        f"({report.faces_removed} face(s) removed)"
    )
    for name, n in sorted(report.suggested.items()):
        print(f"  ? {name}: {n} face(s) suggested (facesearch find {name!r} --suggested)")
    by_reason = report.skipped_by_reason()
    if by_reason:
        summary = ", ".join(f"{n} {r}" for r, n in sorted(by_reason.items()))
        print(f"Skipped {len(report.skipped)}: {summary}")
        for s in report.skipped:
            print(f"  - {s.path}: {s.reason}" + (f" ({s.detail})" if s.detail else ""))
    return 0


def _cmd_clusters(fs: FaceSearch, args: argparse.Namespace) -> int:
    report = fs.clusters(args.min_faces, recluster=args.recluster)
    if args.sheet:
        from .library.contact import ContactSheet

        target = Path(args.sheet)
        target.parent.mkdir(parents=True, exist_ok=True)
        ContactSheet().write(report, fs.thumbnail, target)
        print(f"contact sheet: {target}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return 0
    for c in report.clusters:
        photos = ", ".join(str(Path(*Path(f.image).parts[-2:])) for f in c.faces[:3])
        more = f", ... ({c.size - 3} more)" if c.size > 3 else ""
        print(f"cluster {c.id}	{c.size} face(s)	{photos}{more}")
    print(
        f"{len(report.clusters)} cluster(s) of at least {args.min_faces} face(s), "
        f"{report.unclustered} face(s) unclustered; name one: facesearch name CLUSTER NAME",
        file=sys.stderr,
    )
    return 0


def _cmd_name(fs: FaceSearch, args: argparse.Namespace) -> int:
    result = fs.name_cluster(args.cluster, args.name)
    print(f"Cluster {result.cluster}: {len(result.faces)} face(s) are now {result.name!r}")
    if result.kept_out:
        shown = ", ".join(str(i) for i in result.kept_out)
        print(f"  kept out (once taken from {result.name!r}): face(s) {shown}")
    return 0


def _cmd_assign(fs: FaceSearch, args: argparse.Namespace) -> int:
    n = fs.assign(args.face_ids, args.name)
    print(f"{n} face(s) given to {args.name!r}" + (" (already theirs)" if n == 0 else ""))
    return 0


def _cmd_unassign(fs: FaceSearch, args: argparse.Namespace) -> int:
    face = fs.unassign(args.face_id)
    if face.person is not None:
        print(f"Face {face.id} taken from {face.person!r}; it will not be suggested to them again")
    elif face.suggested is not None:
        print(f"Face {face.id}: suggestion {face.suggested!r} rejected; not suggested again")
    else:
        print(f"Face {face.id} taken out of cluster {face.cluster}; it stays unclustered")
    return 0


def _cmd_confirm(fs: FaceSearch, args: argparse.Namespace) -> int:
    n = fs.confirm(args.name, args.face_ids or None)
    print(f"{n} suggested face(s) are now {args.name!r}'s")
    return 0


def _cmd_merge(fs: FaceSearch, args: argparse.Namespace) -> int:
    result = fs.merge(args.source, args.target)
    print(f"{result.old!r} merged into {result.new!r}: {result.faces} face(s) moved")
    return 0


def _cmd_split(fs: FaceSearch, args: argparse.Namespace) -> int:
    ids = fs.split_cluster(args.cluster, args.average_distance)
    if ids == [args.cluster]:
        print(f"Cluster {args.cluster} did not split (its faces are close together)")
    elif not ids:
        print(f"Cluster {args.cluster} fell apart: its faces are unclustered (kept out) now")
    else:
        print(f"Cluster {args.cluster} split into {', '.join(str(i) for i in ids)}")
    return 0


def _cmd_find(fs: FaceSearch, args: argparse.Namespace) -> int:
    hits = fs.find(args.name, suggested=args.suggested)
    if args.json:
        doc = {"person": args.name, "photos": [h.to_dict() for h in hits]}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    for h in hits:
        print(
            f"{h.image}	{_box_text(h.box)}	face {h.face}"
            + ("	suggested" if h.suggested else "")
        )
    photos = len({h.image for h in hits})
    print(f"{photos} photo(s) of {args.name!r}", file=sys.stderr)
    return 0


def _cmd_photos_of(fs: FaceSearch, args: argparse.Namespace) -> int:
    folder = args.link or args.copy
    made, missing = fs.copy_photos(
        args.name, folder, link=args.link is not None, suggested=args.suggested
    )
    verb = "linked" if args.link else "copied"
    print(f"{len(made)} photo(s) of {args.name!r} {verb} into {folder}")
    for m in missing:
        print(f"  - {m}: no longer there")
    return 0


LIBRARY_COMMANDS = {
    "scan": _cmd_scan,
    "clusters": _cmd_clusters,
    "name": _cmd_name,
    "assign": _cmd_assign,
    "unassign": _cmd_unassign,
    "confirm": _cmd_confirm,
    "merge": _cmd_merge,
    "split": _cmd_split,
    "find": _cmd_find,
    "photos-of": _cmd_photos_of,
}


SERVER_PACKAGES = ("fastapi", "uvicorn", "starlette", "pydantic", "multipart", "python_multipart")


def _cmd_serve(fs: FaceSearch, args: argparse.Namespace) -> int:
    try:
        from .server import Settings
        from .server.app import serve
        from .server.settings import API_KEY_ENV, READ_ONLY_KEY_ENV, keys_from
    except ImportError as err:
        if (err.name or "").split(".")[0] not in SERVER_PACKAGES:
            raise
        raise InputError(
            f"serve needs the server extra ({err.name} is missing): pip install 'facesearch[server]'"
        ) from None
    read_write = args.api_key or [os.environ.get(API_KEY_ENV, "")]
    read_only = args.read_only_key or [os.environ.get(READ_ONLY_KEY_ENV, "")]
    settings = Settings(
        host=args.host,
        port=args.port,
        api_keys=keys_from(read_write, read_only),
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        batch_window_ms=args.batch_window_ms,
        max_batch=args.max_batch,
        compreface_known_only=args.compreface_known_only,
    )
    settings.check_host()
    cameras = _cameras_config(args)
    host = f"[{args.host}]" if ":" in args.host else args.host
    access = "API keys required" if settings.api_keys else "no API key: loopback only"
    print(
        f"{PROG}: serving {fs.gallery_name} on http://{host}:{args.port}/ "
        f"(API /api/v1, docs /docs; {access}); Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    for cam in cameras.cameras:
        print(f"{PROG}: camera {cam.name}: {cam.describe()}", file=sys.stderr, flush=True)
    stopped_by = serve(
        fs, settings, log_level="info" if args.verbose else "warning", cameras=cameras
    )
    print(
        f"{PROG}: stopped{f' by {stopped_by}' if stopped_by else ''}; requests in flight finished",
        file=sys.stderr,
    )
    return 0


def _cmd_migrate(fs: FaceSearch, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .gallery import migrate, recorded_model

    emb = fs.embedder  # its model id (no weights are loaded): both galleries must match it
    model_id = recorded_model(args.source) or emb.model_id
    bar = tqdm(
        unit="face", desc="migrate", disable=True if args.no_progress else None, file=sys.stderr
    )
    t0 = time.perf_counter()
    try:
        report = migrate(
            args.source,
            args.destination,
            model_id,
            emb.dim,
            progress=bar.update,
            on_total=lambda n: bar.reset(total=n),
            subspace=emb.subspace,
        )
    finally:
        bar.close()
    print(
        f"Copied {report.copied} face(s) into {report.destination} "
        f"({report.skipped} already there) in {time.perf_counter() - t0:.1f}s: "
        f"{report.people} people, {report.faces} faces, as in the source"
    )
    return 0


def _cmd_live(fs: FaceSearch, args: argparse.Namespace) -> int:
    from .live import FrameSource, LiveOptions, display_available, parse_source, run_live

    for flag, value, low in (
        ("--detect-width", args.detect_width, 64),
        ("--detect-every", args.detect_every, 1),
        ("--min-face", args.min_face, 12),
        ("--detect-workers", 1 if args.detect_workers is None else args.detect_workers, 1),
    ):
        if value < low:
            raise InputError(f"{flag} must be at least {low}")
    if args.threshold is not None and not 0.0 <= args.threshold <= 2.0:
        raise InputError("--threshold is a cosine distance between 0 and 2")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError("--max-frames must be at least 1")
    show = not args.headless and display_available()
    if args.enroll_key and not show:
        raise InputError("--enroll-key needs a window (a display), and is not for --headless")
    if not show and not args.headless:
        print(f"{PROG}: no display: running headless", file=sys.stderr)
    # fail now (no gallery, wrong model) rather than after the camera opened
    rule = fs.threshold_in_force(args.threshold)
    print(f"{PROG}: threshold {rule.value:.3f} ({rule.source})", file=sys.stderr)
    # loaded before the source opens: a live source's first seconds are not lost to loading
    fs.load_models()
    options = LiveOptions(
        detect_width=args.detect_width,
        detect_every=args.detect_every,
        min_face=args.min_face,
        detect_workers=args.detect_workers,
        threshold=args.threshold,
        refine=args.refine,
        ef=args.ef,
    )
    events_out = None
    if args.events == "-":
        events_out = sys.stdout
    elif args.events:
        try:
            events_out = open(args.events, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as err:
            raise InputError(f"{args.events}: cannot write events ({err.strerror})") from err

    from .events import event_payload, open_sinks

    sinks = open_sinks(
        args.webhook, args.mqtt, secret=os.environ.get("FACESEARCH_WEBHOOK_SECRET") or None
    )

    def on_event(ev: Any) -> None:
        if events_out is not None:
            events_out.write(json.dumps(ev.to_dict(), ensure_ascii=False) + "\n")
            events_out.flush()
        if sinks is not None:
            sinks.send(event_payload(ev.to_dict(), args.camera_name))

    source = FrameSource(parse_source(args.source), realtime=args.realtime)
    try:
        with source:
            print(
                f"{PROG}: {source.kind} {args.source}: {source.width}x{source.height}"
                + (f" at {source.fps:.0f} fps" if source.fps else ""),
                file=sys.stderr,
            )
            stats = run_live(
                fs,
                source,
                options=options,
                show=show,
                output=args.output,
                on_event=on_event,
                enroll_key=args.enroll_key,
                max_frames=args.max_frames,
            )
    finally:
        if events_out is not None and events_out is not sys.stdout:
            events_out.close()
        if sinks is not None:
            sinks.close()
    print(
        f"{PROG}: {stats.frames} frames in {stats.seconds:.1f}s ({stats.fps:.1f} FPS), "
        f"{stats.embedded_faces} face embeddings, {source.dropped} frames skipped",
        file=sys.stderr,
    )
    if args.stats:
        summary = {**stats.to_dict(), "skipped": source.dropped, "source_fps": source.fps}
        try:
            Path(args.stats).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        except OSError as err:
            raise InputError(f"{args.stats}: cannot write the stats ({err.strerror})") from err
    return 0


def _cmd_evaluate(fs: FaceSearch, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .evaluation import default_cache_dir, evaluate, parse_gallery_sizes

    evaluating = args.command == "evaluate"
    calibrating = not evaluating or args.calibrate
    verification = evaluating and not args.no_verification
    identification = not evaluating or not args.no_identification
    pairs = args.pairs if evaluating else None
    if not (verification or identification):
        raise InputError("nothing to do: both --no-verification and --no-identification given")
    if calibrating and not identification:
        raise InputError("--calibrate needs the open-set identification part")
    if pairs and not verification:
        raise InputError("--pairs is for verification, which is switched off")
    sizes = parse_gallery_sizes(args.gallery_sizes) if evaluating and args.gallery_sizes else []
    bar = tqdm(
        unit="photo", desc="embed", disable=True if args.no_progress else None, file=sys.stderr
    )
    try:
        ev = evaluate(
            fs,
            args.folder,
            pairs=pairs,
            verification=verification,
            identification=identification,
            far=args.far,
            enroll_per_person=args.enroll_per_person,
            gallery_sizes=sizes,
            draws=args.draws if evaluating else 1,
            seed=args.seed if evaluating else 0,
            cache_dir=None if args.no_cache else default_cache_dir(),
            progress=bar.update,
            on_total=lambda n: bar.reset(total=n),
        )
    finally:
        bar.close()
    from .evaluation import summary_text, write_report

    written = write_report(ev, args.report) if args.report else []
    if args.json:
        print(ev.to_json())
    else:
        print(summary_text(ev), end="")
        for path in written:
            print(f"report: {path}")
    if calibrating:
        ident = ev.identification
        assert ident is not None
        source = (
            f"calibrated on {ev.folder}: stranger false-accept <= {ident.far_target:g} "
            f"({ident.known_queries} known, {ident.stranger_queries} stranger queries, "
            f"{time.strftime('%Y-%m-%d')})"
        )
        fs.set_threshold(ident.threshold, source)
        print(
            f"Gallery {fs.gallery_name}: threshold set to {ident.threshold:.3f} ({source})",
            file=sys.stderr,
        )
    return 0


def _cmd_enroll(fs: FaceSearch, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    bar = tqdm(
        unit="photo", desc="enroll", disable=True if args.no_progress else None, file=sys.stderr
    )

    def on_total(n: int) -> None:
        bar.reset(total=n)

    t0 = time.perf_counter()
    try:
        if args.name is not None:
            report = fs.enroll_person(args.name, args.paths, progress=bar.update, on_total=on_total)
        else:
            if len(args.paths) != 1:
                raise InputError(
                    "enroll takes one FOLDER of person sub-folders (or use --name NAME PATH...)"
                )
            report = fs.enroll(args.paths[0], progress=bar.update, on_total=on_total)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_enroll(report, seconds, sys.stdout, args.verbose)
    # A re-run that finds everything already enrolled succeeded; finding nothing usable did not.
    failed = report.enrolled == 0 and not report.skipped_by_reason().get("duplicate")
    if failed:
        print(f"{PROG}: error: nothing was enrolled (no usable photo with a face)", file=sys.stderr)
    return 1 if failed else 0


def _cmd_identify(fs: FaceSearch, args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise InputError("--top-k must be at least 1")
    if args.threshold is not None and not 0.0 <= args.threshold <= 2.0:
        raise InputError("--threshold is a cosine distance between 0 and 2")
    _check_ef(args.ef)
    results: list[dict[str, Any]] = []
    status = 0
    annotator = FaceAnnotator()
    many = len(args.images) > 1
    explicit = None if args.threshold is None else given(args.threshold, "set by --threshold")
    told_threshold = False
    for path in args.images:
        try:
            loaded = load_image(path)  # decoded once, for identify and the annotation
            result = fs.identify(
                loaded, threshold=explicit, top_k=args.top_k, refine=args.refine, ef=args.ef
            )
        except InputError as err:
            status = 1
            print(f"{PROG}: error: {err}", file=sys.stderr)
            results.append({"image": path, "error": str(err), "faces": []})
            continue
        results.append(result.to_dict())
        if not args.json:
            if not told_threshold:
                print(f"threshold {result.threshold:.3f} ({result.threshold_source})")
                told_threshold = True
            _print_identify(result, sys.stdout)
        if args.annotate:
            target = _annotate_target(args.annotate, path, many)
            annotator.annotate(loaded.image, result.faces).save(target)
            if not args.json:
                print(f"  annotated image: {target}")
    if args.json:
        print(json.dumps({"results": results}, indent=2, ensure_ascii=False))
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format=f"{PROG}: %(levelname)s: %(message)s",
    )
    try:
        return run(args)
    except FaceSearchError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; what was committed is kept, re-run to finish", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
