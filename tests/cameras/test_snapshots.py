"""Kept face snapshots: bounded by count and age, listed newest first, named or dismissed."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from facesearch.cameras import SnapshotStore
from facesearch.errors import InputError


def frame(value: int = 120) -> np.ndarray:
    img = np.full((480, 640, 3), value, np.uint8)
    img[200:300, 300:380] = 255 - value
    return img


def add(store, when=None, event="unknown", name=None, box=(300.0, 200.0, 380.0, 300.0)):
    return store.add(
        frame(), box, camera="door", event=event, name=name, similarity=0.41, track=3, when=when
    )


def test_a_snapshot_shows_the_face_with_its_surroundings(tmp_path):
    import cv2

    store = SnapshotStore(tmp_path, keep=10, days=1)
    snap = add(store)
    picture = cv2.imdecode(np.frombuffer(store.jpeg(snap.id), np.uint8), cv2.IMREAD_COLOR)
    h, w = picture.shape[:2]
    x1, y1, x2, y2 = snap.box
    assert 0 < x1 < x2 < w and 0 < y1 < y2 < h  # the face inside, context around it
    inside = picture[int(y1) + 5 : int(y2) - 5, int(x1) + 5 : int(x2) - 5]
    assert abs(float(inside.mean()) - 135) < 10  # the face's pixels, not the background's
    assert (snap.camera, snap.event, snap.similarity, snap.track) == ("door", "unknown", 0.41, 3)
    assert len(snap.id) == 16 and int(snap.id, 16) >= 0


def test_kept_newest_first_at_most_keep(tmp_path):
    store = SnapshotStore(tmp_path, keep=3, days=1)
    now = time.time()
    ids = [add(store, when=now - 10 + i).id for i in range(5)]
    assert [s.id for s in store.list()] == ids[::-1][:3]
    assert len(list(tmp_path.glob("*.jpg"))) == 3 and len(list(tmp_path.glob("*.json"))) == 3


def test_old_ones_are_pruned_also_after_a_restart(tmp_path):
    store = SnapshotStore(tmp_path, keep=10, days=1)
    old = add(store, when=time.time() - 2 * 86400)
    new = add(store)
    assert [s.id for s in store.list()] == [new.id]
    assert not (tmp_path / f"{old.id}.jpg").exists()
    again = SnapshotStore(tmp_path, keep=10, days=1)
    assert [s.id for s in again.list()] == [new.id]


def test_a_half_written_snapshot_is_not_listed_and_goes(tmp_path):
    store = SnapshotStore(tmp_path, keep=10, days=1)
    snap = add(store)
    orphan = tmp_path / "00000000deadbeef.jpg"
    orphan.write_bytes(b"x")
    (tmp_path / "broken.json").write_text("{not json")
    import os

    os.utime(orphan, (time.time() - 120, time.time() - 120))
    fresh = SnapshotStore(tmp_path, keep=10, days=1)
    assert [s.id for s in fresh.list()] == [snap.id]
    assert not orphan.exists()


def test_name_and_dismiss(tmp_path):
    store = SnapshotStore(tmp_path, keep=10, days=1)
    a, b = add(store), add(store, event="recognized", name="amy")
    assert [s.id for s in store.list(unknown=True)] == [a.id]
    named = store.mark_named(a.id, "Zoë")
    assert named is not None and named.named == "Zoë"
    assert store.list(unknown=True) == []
    assert json.loads((tmp_path / f"{a.id}.json").read_text())["named"] == "Zoë"
    assert SnapshotStore(tmp_path, 10, 1).get(a.id).named == "Zoë"  # kept across restarts
    assert store.remove(b.id) and not store.remove(b.id)
    assert store.jpeg(b.id) is None and store.get(b.id) is None
    assert store.mark_named("0123456789abcdef", "x") is None


def test_a_box_outside_the_frame_is_refused(tmp_path):
    store = SnapshotStore(tmp_path, keep=10, days=1)
    with pytest.raises(InputError, match="outside the frame"):
        add(store, box=(700.0, 500.0, 800.0, 600.0))
    assert len(store) == 0


def test_a_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    store = SnapshotStore(tmp_path / "file" / "snaps", keep=10, days=1)
    with pytest.raises(InputError, match="cannot keep snapshots here"):
        add(store)
