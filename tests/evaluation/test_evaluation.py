"""evaluate / calibrate end to end on a small real subset of lfw_dev, and the pair-list parsing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import FACES
from facesearch.cli import main
from facesearch.errors import InputError
from facesearch.evaluation.evalset import load_eval_set, read_lfw_pairs, sample_pairs
from facesearch.evaluation.protocols import evaluate

LFW = FACES / "lfw_dev" / "images"
# people with several photos (enrolled + queried) and one-photo people (strangers)
KNOWN = ["Abdullah_Gul", "Angela_Bassett", "Ann_Veneman", "Anna_Kournikova", "Bob_Hope"]
STRANGERS = ["Aaron_Sorkin", "Abbas_Kiarostami", "Abdel_Madi_Shabneh", "Adam_Freier"]
PAIRS = """1\t4
Abdullah_Gul\t1\t2
Angela_Bassett\t1\t3
Ann_Veneman\t2\t3
Bob_Hope\t1\t3
Abdullah_Gul\t1\tAngela_Bassett\t2
Ann_Veneman\t1\tBob_Hope\t2
Anna_Kournikova\t1\tAaron_Sorkin\t1
Adam_Freier\t1\tAbbas_Kiarostami\t1
"""


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    """5 people x 3 photos and 4 one-photo people copied from lfw_dev, plus an LFW pairs file."""
    root = tmp_path_factory.mktemp("evalset")
    for name in KNOWN + STRANGERS:
        photos = sorted((LFW / name).iterdir())[: 3 if name in KNOWN else 1]
        (root / name).mkdir()
        for p in photos:
            shutil.copy(p, root / name / p.name)
    (root / "pairs.txt").write_text(PAIRS)
    return root


@pytest.fixture
def fs(make_fs):
    return make_fs()


def test_eval_set_and_lfw_pairs(subset):
    es = load_eval_set(subset)
    assert es.people == tuple(sorted(KNOWN + STRANGERS))
    assert len(es) == 3 * len(KNOWN) + len(STRANGERS)
    pairs = read_lfw_pairs(subset / "pairs.txt", es)
    assert len(pairs) == 8 and pairs.same.tolist() == [True] * 4 + [False] * 4
    a, b = es.paths[pairs.a[4]], es.paths[pairs.b[4]]
    assert (a.name, b.name) == ("Abdullah_Gul_0001.jpg", "Angela_Bassett_0002.jpg")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty pairs file"),
        ("pairs\nA 1 2\n", ":1: expected a header"),
        ("1\t1\nAbdullah_Gul\t1\n", ":2: expected 'name i j'"),
        ("1\t1\nAbdullah_Gul\t1\tx\n", ":2: expected 'name i j'"),
        ("1\t1\nAbdullah_Gul\t1\t9\n", ":2: no photo Abdullah_Gul_0009"),
        ("1\t1\n", "no pairs"),
    ],
)
def test_bad_pairs_file_is_one_clear_error(subset, tmp_path, text, message):
    bad = tmp_path / "pairs.txt"
    bad.write_text(text)
    with pytest.raises(InputError, match=message):
        read_lfw_pairs(bad, load_eval_set(subset))


def test_sampled_pairs_are_balanced_labelled_and_repeatable(subset):
    es = load_eval_set(subset)
    pairs = sample_pairs(es, n=40, seed=3)
    owner = es.person_of
    assert np.array_equal(owner[pairs.a] == owner[pairs.b], pairs.same)
    # 5 people x 3 photos have only 15 same-person pairs: all of them, and 15 different ones
    assert pairs.same.sum() == 15 and (~pairs.same).sum() == 15
    again = sample_pairs(es, n=40, seed=3)
    assert np.array_equal(pairs.a, again.a) and np.array_equal(pairs.b, again.b)


def test_evaluate_end_to_end_on_real_photos(fs, subset, tmp_path):
    ev = evaluate(fs, subset, pairs=subset / "pairs.txt", cache_dir=tmp_path / "cache")
    assert ev.photos == 19 and ev.photos_without_face == 0 and not ev.embeddings_cached
    v = ev.verification
    assert v is not None and v.pairs == 8
    assert v.kfold.accuracy >= 0.85 and v.auc >= 0.95
    i = ev.identification
    assert i is not None and not i.strangers_simulated
    assert (i.enrolled_people, i.known_queries, i.stranger_queries) == (5, 10, 4)
    assert i.result.rank1 >= 0.9
    at = i.result.at(i.threshold)
    assert at["stranger_false_accept"] == 0.0  # with 4 strangers, 1% allows none
    assert at["known_correct"] >= 0.6
    # the second run reads the cached embeddings and gives the same numbers
    again = evaluate(fs, subset, pairs=subset / "pairs.txt", cache_dir=tmp_path / "cache")
    assert again.embeddings_cached
    assert again.to_dict()["identification"] == ev.to_dict()["identification"]


def test_strangers_are_simulated_without_one_photo_people(fs, subset, tmp_path):
    only_known = tmp_path / "known"
    for name in KNOWN:
        shutil.copytree(subset / name, only_known / name)
    ev = evaluate(fs, only_known, verification=False, cache_dir=None)
    i = ev.identification
    assert i is not None and i.strangers_simulated and i.stranger_queries == i.known_queries
    assert ev.verification is None


@pytest.fixture
def cache_home(monkeypatch, tmp_path):
    """The CLI caches embeddings under $XDG_CACHE_HOME; keep that inside the test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache"


def test_evaluate_cli_json_and_report(capsys, subset, tmp_path, cache_home):
    report = tmp_path / "report"
    code = main(
        [
            "--gallery",
            str(tmp_path / "g"),
            "evaluate",
            str(subset),
            "--pairs",
            str(subset / "pairs.txt"),
            "--json",
            "--no-progress",
            "--report",
            str(report),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    ver, ident = doc["verification"], doc["identification"]
    for key in ("accuracy", "accuracy_std", "auc", "threshold"):
        assert isinstance(ver[key], float)
    assert set(ver["tar_at_far"]) == {"0.01", "0.001"}
    for key in ("rank1", "known_correct", "stranger_false_accept", "threshold"):
        assert isinstance(ident[key], float)
    names = {p.name for p in report.iterdir()}
    assert {"summary.txt", "summary.json", "roc.png", "distances.png", "det.png"} <= names
    assert (report / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((report / "summary.json").read_text()) == doc
    assert not (tmp_path / "g").exists()  # evaluate alone never touches a gallery
    assert list((cache_home / "facesearch" / "embeddings").glob("subjects-*.npz"))


def test_calibrate_stores_the_threshold_and_info_says_where_from(
    capsys, subset, tmp_path, cache_home
):
    gallery = tmp_path / "g"
    code = main(
        ["--gallery", str(gallery), "calibrate", str(subset), "--far", "0.001", "--no-progress"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "threshold set to" in err
    assert "Open-set identification" in out and "Verification" not in out
    code = main(["--gallery", str(gallery), "info", "--json"])
    info = json.loads(capsys.readouterr()[0])
    assert info["threshold_source"].startswith(f"calibrated on {subset}")
    assert "stranger false-accept <= 0.001" in info["threshold_source"]
    # the stored value is the one the summary printed
    printed = [line for line in out.splitlines() if line.strip().startswith("threshold ")][0]
    assert f"{info['threshold']:.3f}" in printed


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "/nonexistent-folder"], "no such folder"),
        (["evaluate", "{subset}", "--far", "2"], "--far must be between 0 and 1"),
        (["evaluate", "{subset}", "--pairs", "/nonexistent.txt"], "cannot read pairs file"),
        (["evaluate", "{subset}", "--no-verification", "--no-identification"], "nothing to do"),
        (["calibrate", "{subset}", "--enroll-per-person", "0"], "at least 1"),
    ],
)
def test_evaluate_bad_input_is_one_line_error(capsys, subset, tmp_path, cache_home, args, message):
    argv = ["--gallery", str(tmp_path / "g")] + [a.format(subset=subset) for a in args]
    code = main(argv + ["--no-progress"])
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and message in lines[0], err
    assert not (tmp_path / "g").exists()


def test_evaluate_by_gallery_size_on_real_photos(capsys, subset, tmp_path, cache_home):
    from facesearch.threshold import default_threshold

    report = tmp_path / "report"
    argv = ["--gallery", str(tmp_path / "g"), "evaluate", str(subset), "--no-verification"]
    argv += ["--gallery-sizes", "2,4,all", "--draws", "3", "--seed", "5", "--json"]
    code = main(argv + ["--no-progress", "--report", str(report)])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    rows = doc["by_gallery_size"]
    # 5 people have photos to enroll and query: "all" is 5, and one draw (every draw is the same)
    assert [r["people"] for r in rows] == [2, 4, 5]
    assert [r["draws"] for r in rows] == [3, 3, 1]
    for r in rows:
        rule = default_threshold(r["people"], 0.01, faces=r["people"])
        assert r["threshold"] == rule.value and r["threshold_source"] == rule.source
        assert r["fixed"]["threshold"] == 0.307 and r["far_target"] == 0.01
        # known queries: 2 more photos of each drawn person; strangers: every other photo
        assert r["known_queries"] == 2 * r["people"]
        assert r["stranger_queries"] == 19 - 3 * r["people"]
        for side in ("rule", "fixed"):
            rates = r[side]
            assert 0 <= rates["stranger_false_accept"] <= rates["stranger_false_accept_worst"] <= 1
            assert 0 <= rates["known_correct_worst"] <= rates["known_correct"] <= 1
        # few people: the rule's looser threshold names at least as many known people as 0.307
        assert r["rule"]["known_correct"] >= r["fixed"]["known_correct"]
        assert r["rule"]["stranger_false_accept"] == 0.0  # these strangers look like no one here
    assert rows[0]["threshold"] > rows[2]["threshold"]
    assert rows[0]["rule"]["known_correct"] >= 0.9
    assert json.loads((report / "summary.json").read_text()) == doc
    assert "Open-set by gallery size" in (report / "summary.txt").read_text()


def test_gallery_size_draws_are_repeatable_and_seeded(fs, subset, tmp_path):
    def run(seed):
        ev = evaluate(
            fs,
            subset,
            verification=False,
            gallery_sizes=[2],
            draws=4,
            seed=seed,
            cache_dir=tmp_path / "cache",
        )
        return [r.known_dist.tolist() for r in ev.by_gallery_size[0].results]

    assert run(1) == run(1)
    assert run(1) != run(2)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gallery-sizes", "0"], "--gallery-sizes takes numbers of people >= 1 or 'all'"),
        (["--gallery-sizes", "abc"], "got 'abc'"),
        (["--gallery-sizes", "4,,16"], "got ''"),
        (["--gallery-sizes", "4", "--draws", "0"], "--draws must be at least 1"),
        (["--gallery-sizes", "4", "--no-identification"], "--gallery-sizes is part of open-set"),
        (["--gallery-sizes", "6", "--no-verification"], "only 5 people"),
    ],
)
def test_gallery_sizes_bad_values_are_one_line_errors(
    capsys, subset, tmp_path, cache_home, args, message
):
    argv = ["--gallery", str(tmp_path / "g"), "evaluate", str(subset), *args, "--no-progress"]
    code = main(argv)
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and message in lines[0], err
