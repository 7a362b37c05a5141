"""Command line: a thin layer over ``FaceSearch``; library errors become one line and exit 1."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
from .quality import DEFAULT_GATE

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
        choices=["auto", "fp32", "bf16"],
        default=default("auto"),
        help="embedding precision (auto: bf16 on CPUs that compute it natively, else fp32)",
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
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")

    p = add("calibrate", "set the gallery's threshold for a stranger false-accept rate on FOLDER")
    _eval_options(p, far_default=0.001)
    return parser


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
        quality_gate=None if args.no_quality_gate else DEFAULT_GATE,
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
            params = dataclasses.replace(fs.index_params(), **changes) if changes else None
            t0 = time.perf_counter()
            n = fs.reindex(params)
            now = fs.index_params()
            print(
                f"Rebuilt the index from the database: {n} face(s) in {time.perf_counter() - t0:.1f}s "
                f"(M={now.connectivity}, ef_construction={now.expansion_add}, "
                f"ef_search={now.expansion_search or 'auto'}, {now.dtype}"
                + (f", exact re-rank of {now.rerank})" if now.exact_rerank else ")")
            )
            return 0
        if args.command == "live":
            return _cmd_live(fs, args)
        if args.command == "migrate":
            return _cmd_migrate(fs, args)
        if args.command in ("evaluate", "calibrate"):
            return _cmd_evaluate(fs, args)
    raise AssertionError(args.command)


def _cmd_migrate(fs: FaceSearch, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .gallery import migrate

    emb = fs.embedder  # its model id (no weights are loaded): both galleries must match it
    bar = tqdm(
        unit="face", desc="migrate", disable=True if args.no_progress else None, file=sys.stderr
    )
    t0 = time.perf_counter()
    try:
        report = migrate(
            args.source,
            args.destination,
            emb.model_id,
            emb.dim,
            progress=bar.update,
            on_total=lambda n: bar.reset(total=n),
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
    options = LiveOptions(
        detect_width=args.detect_width,
        detect_every=args.detect_every,
        min_face=args.min_face,
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

    def on_event(ev: Any) -> None:
        if events_out is not None:
            events_out.write(json.dumps(ev.to_dict(), ensure_ascii=False) + "\n")
            events_out.flush()

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
    print(
        f"{PROG}: {stats.frames} frames in {stats.seconds:.1f}s ({stats.fps:.1f} FPS), "
        f"{stats.embedded_faces} face embeddings, {source.dropped} frames skipped",
        file=sys.stderr,
    )
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
    from .evaluation.report import summary_text, write_report

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
