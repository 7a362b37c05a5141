"""One FaceSearch shared by threads, as the server shares it (real models, real photos)."""

from __future__ import annotations

import threading

from conftest import FACES
from facesearch import FaceSearch

VAL = FACES / "celebrity5" / "val"
NEWCOMER = sorted((FACES / "lfw_dev" / "images" / "Amelia_Vega").iterdir())


def test_identify_from_threads_while_enrolling(enrolled_copy, detector, embedder):
    queries = [(VAL / who / "1.jpg", who) for who in ("madonna", "elton_john", "mindy_kaling")]
    errors: list[BaseException] = []
    named: list[tuple[str, str | None]] = []
    stop = threading.Event()
    with FaceSearch(enrolled_copy, detector=detector, embedder=embedder) as fs:

        def identify(offset: int) -> None:
            try:
                k = offset
                while not stop.is_set() or k < offset + 2:
                    path, who = queries[k % len(queries)]
                    faces = fs.identify(path).faces
                    named.append((who, faces[0].name if faces else None))
                    k += 1
            except BaseException as err:  # pragma: no cover - reported below
                errors.append(err)

        threads = [threading.Thread(target=identify, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        try:
            report = fs.enroll_person("amelia_vega", NEWCOMER[:5])
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not errors, errors
        assert report.added == {"amelia_vega": 5}
        assert len(named) >= 6 and all(who == name for who, name in named)
        # the very next identify, in this object and in another one on the same gallery
        assert fs.identify(NEWCOMER[5]).faces[0].name == "amelia_vega"
    with FaceSearch(enrolled_copy, detector=detector, embedder=embedder) as other:
        assert other.identify(NEWCOMER[6]).faces[0].name == "amelia_vega"


def test_a_reader_sees_another_writer_on_its_next_identify(enrolled_copy, detector, embedder):
    with (
        FaceSearch(enrolled_copy, detector=detector, embedder=embedder) as reader,
        FaceSearch(enrolled_copy, detector=detector, embedder=embedder) as writer,
    ):
        assert reader.identify(NEWCOMER[0]).faces[0].name is None  # opens its reader
        writer.enroll_person("amelia_vega", NEWCOMER[1:4])
        assert reader.identify(NEWCOMER[0]).faces[0].name == "amelia_vega"
        writer.remove("amelia_vega")
        assert reader.identify(NEWCOMER[0]).faces[0].name is None
