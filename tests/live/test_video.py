"""Frame sources and tracking, with fake captures (no camera needed) and small synthetic boxes."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from facesearch.live.tracking import Tracker, iou_matrix
from facesearch.live.video import FrameSource, SourceError, parse_source, source_kind


class FakeCapture:
    """A cv2.VideoCapture stand-in producing ``n`` numbered frames, ``period`` seconds apart."""

    def __init__(self, n: int = 200, period: float = 0.001, opened: bool = True, fail_at=None):
        self.n, self.period, self.opened, self.fail_at = n, period, opened, fail_at
        self.produced = 0
        self.released = False

    def isOpened(self):
        return self.opened

    def read(self):
        if self.produced >= self.n or (self.fail_at is not None and self.produced == self.fail_at):
            return False, None
        time.sleep(self.period)
        img = np.full((4, 6, 3), self.produced % 256, np.uint8)
        self.produced += 1
        return True, img

    def get(self, prop):
        return 25.0

    def release(self):
        self.released = True


def test_parse_and_kind():
    assert parse_source("0") == 0 and parse_source(" 2 ") == 2
    assert parse_source("clip.mp4") == "clip.mp4"
    assert source_kind(0) == "camera"
    assert source_kind("rtsp://cam.local/stream") == "stream"
    assert source_kind("HTTP://x/y.mjpg") == "stream"
    assert source_kind("clip.mp4") == "file"


def test_live_source_hands_over_the_newest_frame():
    cap = FakeCapture(n=200, period=0.001)
    seen = []
    with FrameSource(0, opener=lambda s: cap) as src:
        while (frame := src.read(timeout=5)) is not None:
            # the frame handed over is the newest one read so far (or at most one behind,
            # if the reader produced another while we were being woken up)
            assert frame.index >= cap.produced - 2
            seen.append(frame.index)
            time.sleep(0.02)  # a consumer much slower than the camera
    assert seen == sorted(set(seen)) and seen[-1] == 199
    assert len(seen) < 100 and src.dropped == 200 - len(seen)


def test_file_source_delivers_every_frame_in_order(tmp_path):
    clip = tmp_path / "c.mp4"
    clip.write_bytes(b"not checked: the opener is fake")
    cap = FakeCapture(n=50, period=0.0)
    with FrameSource(str(clip), opener=lambda s: cap) as src:
        frames = []
        while (frame := src.read(timeout=5)) is not None:
            frames.append(frame)
            time.sleep(0.002)
    assert [f.index for f in frames] == list(range(50))
    assert [int(f.image[0, 0, 0]) for f in frames] == list(range(50))
    assert frames[1].t == pytest.approx(1 / 25) and src.dropped == 0 and cap.released


def test_stream_reconnects_after_a_drop():
    caps = [FakeCapture(n=10**6, fail_at=5), FakeCapture(n=20)]
    opened = []

    def opener(source):
        opened.append(source)
        return caps[min(len(opened) - 1, 1)]

    with FrameSource("rtsp://cam/1", opener=opener, reconnect_s=5) as src:
        got = 0
        while src.read(timeout=5) is not None:
            got += 1
    # dropped after 5 frames, reopened; the second capture's end is another drop, and the
    # third open finds nothing more to read: the stream ends without an error
    assert len(opened) >= 2 and got >= 2 and src.error is None


def test_stream_that_stays_down_gives_a_clear_error():
    calls = []

    def opener(source):
        calls.append(1)
        return FakeCapture(n=3) if len(calls) == 1 else FakeCapture(opened=False)

    src = FrameSource("rtsp://cam/down", opener=opener, reconnect_s=0.8).open()
    while src.read(timeout=5) is not None:
        pass
    src.close()
    assert isinstance(src.error, SourceError)
    assert "dropped and could not be reopened" in str(src.error) and len(calls) >= 2


@pytest.mark.parametrize(
    "source, cap, message",
    [
        (0, FakeCapture(opened=False), "cannot open camera 0"),
        ("rtsp://nowhere/x", FakeCapture(opened=False), "cannot open stream rtsp://nowhere/x"),
        ("{tmp}/bad.mp4", FakeCapture(opened=False), "cannot open as a video"),
        ("{tmp}/empty.mp4", FakeCapture(n=0), "no frames"),
        ("{tmp}/missing.mp4", None, "no such video file"),
    ],
)
def test_sources_that_fail_say_why(tmp_path, source, cap, message):
    for name in ("bad.mp4", "empty.mp4"):
        (tmp_path / name).write_bytes(b"x")
    if isinstance(source, str):
        source = source.format(tmp=tmp_path)
    with pytest.raises(SourceError, match=message):
        FrameSource(source, opener=lambda s: cap).open()


def test_real_opencv_rejects_a_text_file(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 100)
    with pytest.raises(SourceError, match=r"notes\.mp4: (cannot open as a video|no frames)"):
        FrameSource(str(bad)).open()


def test_close_stops_the_reader_thread():
    src = FrameSource(0, opener=lambda s: FakeCapture(n=10**6)).open()
    src.read(timeout=5)
    src.close()
    assert not any(t.name == "facesearch-capture" and t.is_alive() for t in threading.enumerate())


# -- tracking ----------------------------------------------------------------------------------


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]], float)
    m = iou_matrix(a, b)
    assert m[0].tolist() == pytest.approx([1.0, 50 / 150, 0.0])
    assert m[1].tolist() == [0.0, 0.0, 0.0]
    assert iou_matrix(a[:0], b).shape == (0, 3)


def test_tracker_follows_moving_faces_and_ends_lost_ones():
    tr = Tracker(max_missed=2)
    box_a, box_b = np.array([0, 0, 40, 40.0]), np.array([100, 0, 140, 40.0])
    up = tr.update(np.array([box_a, box_b]), np.array([0.99, 0.98]), 0)
    ids = [t.id for t in up.appeared]
    assert ids == [1, 2]
    for f in range(1, 6):  # both move right 4 px a frame
        up = tr.update(np.array([box_a + 4 * f, box_b + 4 * f]), np.array([0.99, 0.98]), f)
        assert not up.appeared and not up.ended
    assert [t.id for t in tr.tracks] == ids
    assert tr.tracks[0].velocity[0] == pytest.approx(4, abs=0.2)
    tr.predict()  # a frame without detection: the box keeps moving
    assert tr.tracks[0].box[0] == pytest.approx(24, abs=0.3)
    for f in range(6, 9):  # b disappears
        up = tr.update(np.array([box_a + 4 * f]), np.array([0.99]), f)
    assert [t.id for t in up.ended] == [2] and [t.id for t in tr.tracks] == [1]


def test_votes_confirm_a_name_and_resist_one_odd_frame():
    tr = Tracker(confirm_votes=2)
    (t,) = tr.update(np.array([[0, 0, 40, 40.0]]), np.array([0.99]), 0).appeared
    assert tr.needs_embedding(t, 0)
    assert not tr.vote(t, "ann", 0.7, 0)  # one borderline vote: no verdict yet
    assert not t.decided and t.name is None
    assert not tr.needs_embedding(t, 1) and tr.needs_embedding(t, 3)  # unconfirmed: every 3
    assert tr.vote(t, "ann", 0.72, 3) and t.name == "ann" and t.decided
    assert not tr.vote(t, "bob", 0.69, 30)  # one odd result does not rename
    assert t.name == "ann"
    assert not tr.needs_embedding(t, 31) and tr.needs_embedding(t, 30 + tr.recheck_frames)
    tr.vote(t, "bob", 0.7, 60)
    assert tr.vote(t, "bob", 0.7, 90) and t.name == "bob"  # bob now holds the majority


def test_a_sure_first_result_decides_at_once_and_growing_triggers_a_recheck():
    tr = Tracker()
    (t,) = tr.update(np.array([[0, 0, 40, 40.0]]), np.array([0.99]), 0).appeared
    assert tr.vote(t, None, 0.1, 0, sure=True) and t.decided and t.name is None
    tr.update(np.array([[12, 0, 52, 40.0]]), np.array([0.99]), 1)  # moved, same size
    assert tr.tracks == [t] and not tr.needs_embedding(t, 1)
    tr.update(np.array([[10, 0, 74, 64.0]]), np.array([0.99]), 2)  # came closer: 1.6x larger
    assert tr.tracks == [t] and tr.needs_embedding(t, 2)


def test_a_stale_verdict_is_re_established_without_a_duplicate_event():
    tr = Tracker()
    (t,) = tr.update(np.array([[0, 0, 40, 40.0]]), np.array([0.99]), 0).appeared
    assert tr.vote(t, None, 0.2, 0, sure=True)  # unknown
    t.stale = True  # the gallery changed
    assert tr.needs_embedding(t, 3)
    assert tr.vote(t, "abbas", 0.9, 3, sure=True) and t.name == "abbas" and not t.stale
    t.stale = True
    assert not tr.vote(t, "abbas", 0.9, 6, sure=True)  # same verdict: no new event


def _one_track(tr: Tracker, side: float = 40.0, quality: float = 1.0):
    (t,) = tr.update(
        np.array([[0, 0, side, side]]), np.array([0.99]), 0, np.array([quality])
    ).appeared
    return t


def test_a_sure_unknown_from_a_poor_view_does_not_decide_a_track():
    tr = Tracker()
    t = _one_track(tr, quality=0.1)
    assert not tr.vote(t, None, 0.3, 0, sure=True, quality=0.1)  # small or turned: no verdict
    assert not t.decided
    assert tr.vote(t, None, 0.3, 3, sure=True, quality=0.1)  # two agreeing results decide
    assert t.decided and t.name is None


def test_unknown_is_re_examined_often_and_at_once_when_the_view_improves():
    tr = Tracker(unknown_every=8, recheck_frames=25, better_by=0.15)
    t = _one_track(tr, quality=0.6)
    assert tr.vote(t, None, 0.3, 0, sure=True, quality=0.6) and t.decided and t.name is None
    assert not tr.needs_embedding(t, 7) and tr.needs_embedding(t, 8)  # not every 25 frames
    t.quality = 0.9  # the face turned towards the camera / came closer
    assert tr.needs_embedding(t, 1)


def test_good_views_overturn_an_unknown_verdict_built_from_poor_ones():
    tr = Tracker(confirm_votes=2)
    t = _one_track(tr, quality=0.2)
    for f in range(0, 16, 4):  # four poor views, all "unknown"
        tr.vote(t, None, 0.3, f, sure=True, quality=0.2)
    assert t.decided and t.name is None
    assert not tr.vote(t, "ann", 0.7, 16, quality=0.9)  # one borderline good view: look again
    assert t.unsettled and tr.needs_embedding(t, 19)  # ... soon, not after unknown_every
    assert tr.vote(t, "ann", 0.72, 19, quality=0.9) and t.name == "ann"  # two good views win
    tr = Tracker(confirm_votes=2)
    t2 = _one_track(tr, quality=0.2)
    for f in range(0, 16, 4):
        tr.vote(t2, None, 0.3, f, sure=True, quality=0.2)
    assert tr.vote(t2, "bob", 0.85, 16, sure=True, quality=0.9) and t2.name == "bob"  # clear-cut


def test_a_named_track_is_not_renamed_by_poor_views():
    tr = Tracker(confirm_votes=2)
    t = _one_track(tr)
    assert tr.vote(t, "ann", 0.8, 0, sure=True, quality=0.9)
    for f in (25, 28, 31):  # the head turns away: three poor views of someone else
        tr.vote(t, "bob", 0.62, f, quality=0.1)
    assert t.name == "ann"


def test_end_all_and_split_start_new_tracks():
    tr = Tracker()
    t = _one_track(tr)
    tr.vote(t, "ann", 0.8, 0, sure=True)
    new = tr.split(t, 5)
    assert new.id != t.id and tr.tracks == [new] and new.name is None and not new.votes
    assert np.array_equal(new.box, t.box)
    assert tr.end_all() == [new] and tr.tracks == []


def test_a_track_below_the_quality_gate_is_not_embedded_until_it_passes():
    tr = Tracker()
    box = np.array([[0, 0, 40, 40.0]])
    (t,) = tr.update(box, np.array([0.7]), 0, low=np.array([True])).appeared
    assert t.low_quality and not tr.needs_embedding(t, 0)
    tr.update(box, np.array([0.99]), 1, low=np.array([False]))
    assert not t.low_quality and tr.needs_embedding(t, 1)


def test_a_face_walking_on_while_frames_are_skipped_stays_one_track():
    """A slow consumer sees every 4th frame of a face walking 12 px a frame (48 px between the
    frames it sees, on a 100 px box): the face is expected where it has walked to."""
    tr = Tracker()
    box = np.array([0, 0, 100, 100.0])
    tr.update(np.array([box]), np.array([0.99]), 0)
    tr.update(np.array([box + [12, 0, 12, 0]]), np.array([0.99]), 1)
    for f in range(5, 60, 4):
        tr.predict(f - 2)  # a processed frame without detection in between
        up = tr.update(np.array([box + [12 * f, 0, 12 * f, 0]]), np.array([0.99]), f)
        assert not up.appeared and not up.ended, f
    assert [t.id for t in tr.tracks] == [1]
    assert tr.tracks[0].velocity[0] == pytest.approx(12, abs=0.5)
