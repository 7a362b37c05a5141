"""The live loop on a real clip assembled from ../shared/faces photos, run headless."""

from __future__ import annotations

import json

import pytest
from receivers import Receiver

from clipgen import walking_clip
from conftest import CLIP_PEOPLE, FACES
from facesearch import FaceSearch
from facesearch.cli import main
from facesearch.events.webhook import sign
from facesearch.live import LiveOptions, LiveRecognizer
from facesearch.live.video import Frame

W, H, FPS = 640, 480, 10
SEGMENT, GAP = 30, 14  # frames a person is in view, empty frames between people
PEOPLE = CLIP_PEOPLE  # two enrolled people and a stranger (tests/conftest.py)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, detector):
    """An mp4: each person walks across a gray scene (10 px a frame, bobbing), one after another."""
    path = tmp_path_factory.mktemp("clip") / "people.mp4"
    spans, frames = walking_clip(
        path, detector, PEOPLE, width=W, height=H, fps=FPS, segment=SEGMENT, gap=GAP
    )
    return path, spans, frames


def events_in(events, start, end):
    return [e for e in events if start <= e["frame"] <= end + GAP]


def test_headless_live_names_enrolled_people_and_marks_a_stranger_unknown(
    capsys, enrolled, clip, tmp_path, monkeypatch
):
    path, spans, n_frames = clip
    events_file = tmp_path / "events.jsonl"
    out_video = tmp_path / "annotated.mp4"
    hook = Receiver()
    monkeypatch.setenv("FACESEARCH_WEBHOOK_SECRET", "s3cret")
    try:
        code = main(
            [
                "--gallery",
                str(enrolled[0]),
                "live",
                "--source",
                str(path),
                "--headless",
                "--events",
                str(events_file),
                "--output",
                str(out_video),
                "--webhook",
                hook.url,
                "--camera-name",
                "hall",
                "--stats",
                str(tmp_path / "stats.json"),
            ]
        )
    finally:
        hook.close()
    _, err = capsys.readouterr()
    assert code == 0, err
    assert f"{n_frames} frames" in err
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["frames"] == n_frames and stats["skipped"] == 0 and stats["source_fps"] == FPS
    assert 0 < stats["latency_p50_ms"] <= stats["latency_p95_ms"]
    assert stats["fps"] == pytest.approx(n_frames / stats["seconds"], rel=0.01)
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    # the webhook got every event (delivered before live returned), with the camera and a time
    assert [{k: e[k] for k in e if k not in ("camera", "time")} for e in hook.got] == events
    assert {e["camera"] for e in hook.got} == {"hall"}
    assert all(h["X-Facesearch-Signature"] == sign(h["_body"], "s3cret") for h in hook.headers)
    for e in events:
        assert set(e) == {"t", "frame", "event", "track", "name", "similarity", "box", "quality"}
        assert e["quality"] in {"ok", "low"}
        assert e["event"] in {"appear", "recognized", "unknown", "leave"}
        assert e["t"] == pytest.approx(e["frame"] / FPS, abs=1e-3)
    for truth, start, end in spans:
        seg = events_in(events, start, end)
        appeared = {e["track"] for e in seg if e["event"] == "appear"}
        left = {e["track"]: e["name"] for e in seg if e["event"] == "leave"}
        assert appeared and appeared == set(left), seg  # every track that appears also leaves
        recognized = {e["name"] for e in seg if e["event"] == "recognized"}
        unknown = {e["track"] for e in seg if e["event"] == "unknown"}
        if truth is None:
            assert recognized == set() and set(left.values()) == {None}, seg
            assert unknown == appeared, seg  # the stranger was decided unknown, once
        else:
            assert recognized == {truth}, seg
        assert list(left.values()) == [truth], seg  # one track per walk, named right to the end
    import cv2

    cap = cv2.VideoCapture(str(out_video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n_frames
    cap.release()


def test_enrolling_from_a_frame_names_the_face_from_then_on(make_fs, enrolled_copy, clip):
    import cv2

    path, spans, _ = clip
    fs = make_fs(enrolled_copy)
    rec = LiveRecognizer(fs, LiveOptions(refresh_s=0.0))
    cap = cv2.VideoCapture(str(path))
    _, start, end = spans[2]  # the stranger
    frames = []
    for i in range(end + 1):
        ok, img = cap.read()
        assert ok
        if i >= start:
            frames.append(Frame(i, i / FPS, img, 0.0))
    cap.release()
    for f in frames[:10]:
        result = rec.process(f)
    (track,) = result.tracks
    assert track.decided and track.name is None
    rgb = cv2.cvtColor(frames[9].image, cv2.COLOR_BGR2RGB)
    fs.enroll_face("abbas", rgb, box=track.as_box, source="test frame")
    with pytest.raises(Exception, match="already enrolled"):
        fs.enroll_face("someone", rgb, box=track.as_box)
    rec.forget_names()
    names = [t.name for f in frames[10:] for t in rec.process(f).tracks]
    assert names[-1] == "abbas"


def test_a_reader_notices_another_process_enrolling(make_fs, enrolled_copy, detector, embedder):
    reader = make_fs(enrolled_copy)
    assert "abbas" not in {p.name for p in reader.people()}
    assert not reader.refresh()
    with FaceSearch(enrolled_copy, detector=detector, embedder=embedder) as writer:
        writer.enroll_person("abbas", [PEOPLE[2][1]])
    assert reader.refresh()
    assert "abbas" in {p.name for p in reader.people()}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--source", "/nonexistent/clip.mp4"], "no such video file"),
        (["--source", "{bad}"], "cannot open as a video|no frames"),
        (["--headless", "--enroll-key"], "--enroll-key needs a window"),
        (["--detect-every", "0"], "--detect-every must be at least 1"),
    ],
)
def test_live_bad_input_is_one_line_error(capsys, enrolled, tmp_path, args, message):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    argv = ["--gallery", str(enrolled[0]), "live"] + [a.format(bad=bad) for a in args]
    code = main(argv + (["--headless"] if "--headless" not in args else []))
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    import re

    assert (
        code == 1 and re.search(message, lines[-1]) and lines[-1].startswith("facesearch: error:")
    )
    assert sum(line.startswith("facesearch: error:") for line in lines) == 1, err


# -- naming promptly and never carrying a name onto another face ---------------------------------

LATE = 25.0  # fps of the late-facing clip


@pytest.fixture(scope="module")
def late_clip(tmp_path_factory, detector):
    """ben_afflek enters small and turned away, then faces the camera; a scene cut to
    mindy_kaling at the same place; she is then swapped in place for a stranger."""
    from clipgen import Shot, render

    val = FACES / "celebrity5" / "val"
    shots = [
        Shot(
            "ben_afflek",
            val / "ben_afflek" / "1.jpg",
            90,
            size=(42.0, 220.0),
            centre=((0.15, 0.35), (0.5, 0.45)),
            turn=(0.9, 0.0),
            settle=0.55,
        ),
        Shot("mindy_kaling", val / "mindy_kaling" / "2.jpg", 50, size=(220.0, 220.0)),
        Shot(None, PEOPLE[2][1], 50, size=(220.0, 220.0), same_scene=True),
    ]
    path = tmp_path_factory.mktemp("late") / "late.mp4"
    return render(shots, detector, path, fps=LATE, seed=3)


def run_frames(fs, clip, options=None):
    import cv2

    rec = LiveRecognizer(fs, options or LiveOptions())
    cap = cv2.VideoCapture(str(clip.path))
    results = []
    i = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        results.append(rec.process(Frame(i, i / clip.fps, img, 0.0)))
        i += 1
    cap.release()
    return results


@pytest.mark.parametrize("detect_every", [2, 1])
def test_a_late_facing_person_is_named_promptly_and_a_cut_ends_the_track(
    make_fs, enrolled, late_clip, detect_every
):
    ben, mindy, stranger = late_clip.spans
    assert mindy.cut and not stranger.cut
    results = run_frames(make_fs(enrolled[0]), late_clip, LiveOptions(detect_every=detect_every))
    events = [e for r in results for e in r.events]
    named = [e for e in events if e.event == "recognized"]
    ben_named = [e.frame for e in named if e.name == "ben_afflek"]
    # named within half a second of facing the camera
    assert ben_named and min(ben_named) <= ben.clear_from + 0.5 * LATE, named
    # the cut ends every track of the first shot on its first frame
    ben_tracks = {e.track for e in named if e.name == "ben_afflek"}
    left = {e.track: e.frame for e in events if e.event == "leave"}
    assert all(left.get(t) == mindy.start for t in ben_tracks), (ben_tracks, left)
    # nobody after the cut is given ben's name, mindy is named at once, the stranger never
    for r in results[mindy.start :]:
        assert all(t.name != "ben_afflek" for t in r.tracks), r.frame.index
    assert {e.name for e in named if e.frame >= mindy.start} == {"mindy_kaling"}
    assert min(e.frame for e in named if e.name == "mindy_kaling") <= mindy.start + 2
    mindy_tracks = {e.track for e in named if e.name == "mindy_kaling"}
    for r in results[stranger.start + detect_every :]:
        assert all(t.name is None and t.id not in mindy_tracks for t in r.tracks), r.frame.index


def test_detection_ahead_gives_the_results_of_one_frame_at_a_time(make_fs, enrolled, late_clip):
    """``process_stream`` with two detection workers: the same tracks, names and events as
    ``process``, frame by frame, through the clip's scene cut (which moves the schedule)."""
    import cv2

    from facesearch.live import process_stream

    options = LiveOptions(detect_every=2)
    fs = make_fs(enrolled[0])
    one = run_frames(fs, late_clip, options)

    def frames():
        cap = cv2.VideoCapture(str(late_clip.path))
        i = 0
        while (read := cap.read())[0]:
            yield Frame(i, i / late_clip.fps, read[1], 0.0)
            i += 1
        cap.release()

    rec = LiveRecognizer(fs, options)
    ahead = list(process_stream(rec, frames(), workers=2))

    def summary(results):
        return [
            (
                r.frame.index,
                r.detected,
                [(e.event, e.track, e.name) for e in r.events],
                [(t.id, t.name) for t in r.tracks],
            )
            for r in results
        ]

    assert len(ahead) == len(one) == late_clip.spans[-1].end + 1
    assert summary(ahead) == summary(one)
    assert rec.stats.detected_frames == sum(r.detected for r in one)
