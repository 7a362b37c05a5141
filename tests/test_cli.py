"""The command line: JSON contract, one-line errors, exit codes."""

import json
import os
import shutil
import stat

import pytest

from conftest import FACES
from facesearch.gallery import DB_NAME, INDEX_NAME
from fakes import one_line_error, run

BBT2 = FACES / "bbt" / "group" / "bbt2.jpg"


def test_identify_json_contract(capsys, enrolled):
    code, out, err = run(
        capsys, "--gallery", enrolled[0], "identify", BBT2, "--json", "--top-k", "2"
    )
    assert code == 0, err
    doc = json.loads(out)
    (result,) = doc["results"]
    assert result["image"] == str(BBT2) and len(result["faces"]) == 4
    # the salt shaker (MTCNN score 0.71) is reported below the quality gate, unnamed
    assert [f["quality"] for f in result["faces"]] == ["ok"] * 3 + ["low"]
    low = result["faces"][3]
    assert low["name"] is None and low["similarity"] is None and low["candidates"] == []
    for face in result["faces"]:
        x1, y1, x2, y2 = face["box"]
        assert 0 <= x1 < x2 and 0 <= y1 < y2
        assert 0 < face["score"] <= 1
        if face["quality"] == "low":
            continue
        assert face["name"] is None or isinstance(face["name"], str)
        assert face["distance"] == pytest.approx(1 - face["similarity"], abs=1e-3)
        assert face["runner_up"]["name"] != face["candidates"][0]["name"]
        assert len(face["candidates"]) == 2
    assert {f["name"] for f in result["faces"]} == {"leonard", "sheldon", None}
    # which threshold decided, and why: the default for the 13 people enrolled
    assert isinstance(result["threshold"], float)
    assert result["threshold_source"].startswith("default for 13 people with ")
    code, out, err = run(
        capsys, "--gallery", enrolled[0], "identify", BBT2, "--json", "--no-quality-gate"
    )
    assert code == 0, err
    faces = json.loads(out)["results"][0]["faces"]
    assert [f["quality"] for f in faces] == ["ok"] * 4
    assert all(f["similarity"] is not None for f in faces)


def test_identify_threshold_option_is_reported(capsys, enrolled):
    code, out, err = run(
        capsys, "--gallery", enrolled[0], "identify", BBT2, "--threshold", "0.0", "--json"
    )
    assert code == 0, err
    (result,) = json.loads(out)["results"]
    assert result["threshold"] == 0.0 and result["threshold_source"] == "set by --threshold"
    assert all(f["name"] is None for f in result["faces"])
    code, out, _ = run(capsys, "--gallery", enrolled[0], "identify", BBT2, BBT2)
    assert code == 0 and out.count("threshold ") == 1  # said once, not per image
    assert out.startswith("threshold ") and "(default for 13 people with " in out.splitlines()[0]


def test_identify_table_and_annotation(capsys, enrolled, tmp_path):
    out_png = tmp_path / "out.png"
    code, out, _ = run(capsys, "--gallery", enrolled[0], "identify", BBT2, "--annotate", out_png)
    assert code == 0 and "leonard" in out and "sheldon" in out and "unknown" in out
    assert "(low quality)" in out
    from PIL import Image

    assert Image.open(out_png).size == Image.open(BBT2).size


def test_identify_bad_image_among_good_ones(capsys, enrolled, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    code, out, err = run(capsys, "--gallery", enrolled[0], "identify", bad, BBT2, "--json")
    assert code == 1
    line = one_line_error(err)
    assert "not an image" in line
    doc = json.loads(out)
    assert doc["results"][0]["error"] and len(doc["results"][1]["faces"]) == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["identify", "/no/such.jpg"], "no such file"),
        (["enroll", "/no/such/folder"], "no such folder"),
        (["enroll", "--name", "../x", str(FACES / "bbt" / "people" / "amy")], "path separator"),
        (["remove", "nobody"], "no person named"),
        (["identify", str(BBT2), "--threshold", "3"], "between 0 and 2"),
    ],
)
def test_errors_are_one_line_and_nonzero(capsys, enrolled_copy, argv, message):
    code, _, err = run(capsys, "--gallery", enrolled_copy, *argv)
    assert code == 1
    assert message in one_line_error(err)


def test_empty_folder_fails(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "--gallery", tmp_path / "g", "enroll", tmp_path / "empty")
    assert code == 1 and "empty" in one_line_error(err)


def test_folder_with_no_usable_photo_fails(capsys, tmp_path):
    (tmp_path / "p" / "ann").mkdir(parents=True)
    (tmp_path / "p" / "ann" / "a.txt").write_text("x")
    code, out, err = run(capsys, "--gallery", tmp_path / "g", "enroll", tmp_path / "p")
    assert code == 1 and "nothing was enrolled" in err and "unreadable" in out


def test_read_only_gallery(capsys, enrolled_copy):
    db_before = (enrolled_copy / DB_NAME).read_bytes()
    os.chmod(enrolled_copy, stat.S_IRUSR | stat.S_IXUSR)
    try:
        code, _, err = run(
            capsys,
            "--gallery",
            enrolled_copy,
            "enroll",
            "--name",
            "x",
            FACES / "bbt" / "people" / "amy",
        )
        assert code == 1 and "read-only" in one_line_error(err)
        code, out, _ = run(capsys, "--gallery", enrolled_copy, "identify", BBT2)
        assert code == 0 and "leonard" in out
    finally:
        os.chmod(enrolled_copy, stat.S_IRWXU)
    assert (enrolled_copy / DB_NAME).read_bytes() == db_before


def test_corrupt_index_is_rebuilt(capsys, caplog, enrolled_copy):
    (enrolled_copy / INDEX_NAME).write_bytes(b"corrupt" * 50)
    code, out, _ = run(capsys, "--gallery", enrolled_copy, "identify", BBT2)
    assert code == 0 and "leonard" in out
    assert "unreadable index file" in caplog.text and "rebuilding" in caplog.text


def test_wrong_checksum_weights(capsys, tmp_path, enrolled):
    models = tmp_path / "models"
    models.mkdir()
    (models / "20180402-114759-vggface2-features.pt").write_bytes(b"\0" * 4096)
    code, _, err = run(capsys, "--gallery", enrolled[0], "--models", models, "identify", BBT2)
    assert code == 1 and "checksum mismatch" in one_line_error(err)


def test_people_info_remove_reindex(capsys, enrolled_copy):
    code, out, _ = run(capsys, "--gallery", enrolled_copy, "people", "--json")
    people = {p["name"]: p["faces"] for p in json.loads(out)["people"]}
    assert code == 0 and people["amy"] == 5 and len(people) == 13
    code, out, _ = run(capsys, "--gallery", enrolled_copy, "remove", "amy")
    assert code == 0 and "5 face(s)" in out
    code, out, _ = run(capsys, "--gallery", enrolled_copy, "reindex")
    assert code == 0
    code, out, _ = run(capsys, "--gallery", enrolled_copy, "info", "--json")
    info = json.loads(out)
    assert (
        info["people"] == 12 and info["faces"] == info["index"]["size"] == sum(people.values()) - 5
    )
    assert (
        info["threshold_source"].startswith("default for 12 people") and info["files"][DB_NAME] > 0
    )


def test_detect_runtime_is_chosen_and_reported(capsys, enrolled_copy, monkeypatch):
    code, out, _ = run(
        capsys, "--gallery", enrolled_copy, "--detect-runtime", "torch", "info", "--json"
    )
    assert code == 0 and json.loads(out)["detect_runtime"] == "torch"
    code, out, _ = run(capsys, "--gallery", enrolled_copy, "identify", BBT2, "--json")
    names = sorted(f["name"] or "" for f in json.loads(out)["results"][0]["faces"])
    monkeypatch.setenv("FACESEARCH_DETECT_RUNTIME", "torch")
    code, out, _ = run(capsys, "--gallery", enrolled_copy, "identify", BBT2, "--json")
    assert sorted(f["name"] or "" for f in json.loads(out)["results"][0]["faces"]) == names
    with pytest.raises(SystemExit):
        run(capsys, "--gallery", enrolled_copy, "--detect-runtime", "tensorrt", "info")


def test_reindex_with_new_params_and_identify_ef(capsys, enrolled_copy):
    g = enrolled_copy
    code, out, err = run(capsys, "--gallery", g, "identify", BBT2, "--json")
    before = [f["name"] for f in json.loads(out)["results"][0]["faces"]]
    code, out, err = run(
        capsys,
        "--gallery",
        g,
        "reindex",
        "--dtype",
        "f16",
        "--connectivity",
        "12",
        "--rerank",
        "16",
    )
    assert code == 0 and "M=12" in out and "f16" in out and "re-rank of 16" in out, err
    code, out, _ = run(capsys, "--gallery", g, "info", "--json")
    index = json.loads(out)["index"]
    assert (index["dtype"], index["connectivity"], index["rerank"]) == ("f16", 12, 16)
    assert index["memory_bytes"] > 0 and index["size"] == json.loads(out)["faces"]
    for ef in ("8", "500"):
        code, out, err = run(capsys, "--gallery", g, "identify", BBT2, "--json", "--ef", ef)
        assert code == 0, err
        assert [f["name"] for f in json.loads(out)["results"][0]["faces"]] == before


def test_reindex_project_off_and_on(capsys, enrolled_copy):
    """An enrolled gallery's graph holds the model's 64-d subspace coordinates; --project off
    rebuilds it on full vectors and on again, and identify names the same people either way."""
    g = enrolled_copy
    code, out, err = run(capsys, "--gallery", g, "identify", BBT2, "--json")
    before = [f["name"] for f in json.loads(out)["results"][0]["faces"]]
    code, out, _ = run(capsys, "--gallery", g, "info", "--json")
    assert json.loads(out)["index"]["project"] == 64
    for setting, project, shown in (("off", 0, "i8, exact"), ("on", 64, "i8 of 64-d projections")):
        code, out, err = run(capsys, "--gallery", g, "reindex", "--project", setting)
        assert code == 0 and shown in out, err
        code, out, _ = run(capsys, "--gallery", g, "info", "--json")
        assert json.loads(out)["index"]["project"] == project
        code, out, err = run(capsys, "--gallery", g, "identify", BBT2, "--json")
        assert [f["name"] for f in json.loads(out)["results"][0]["faces"]] == before, err


@pytest.mark.parametrize(
    "args, message",
    [
        (["identify", BBT2, "--ef", "0"], "--ef must be an integer from 1 to 4096"),
        (["reindex", "--connectivity", "1"], "connectivity must be an integer from 2 to 256"),
        (["reindex", "--rerank", "-3"], "rerank must be an integer from 0 to 4096"),
    ],
)
def test_bad_index_options_are_one_line_errors(capsys, enrolled_copy, args, message):
    before = (enrolled_copy / INDEX_NAME).read_bytes()
    code, _, err = run(capsys, "--gallery", enrolled_copy, *args)
    assert code == 1 and message in one_line_error(err)
    assert (enrolled_copy / INDEX_NAME).read_bytes() == before  # nothing rebuilt or lost


def test_gallery_from_environment(capsys, enrolled, monkeypatch, tmp_path):
    monkeypatch.setenv("FACESEARCH_GALLERY", str(enrolled[0]))
    code, out, _ = run(capsys, "people")
    assert code == 0 and "sheldon" in out


def test_enroll_json_summary(capsys, tmp_path):
    src = FACES / "bbt" / "people"
    people = tmp_path / "p"
    for name in ("amy", "raj"):
        shutil.copytree(src / name, people / name)
    code, out, _ = run(
        capsys, "--gallery", tmp_path / "g", "enroll", people, "--json", "--no-progress"
    )
    assert code == 0
    assert json.loads(out)["people"] == {"amy": 5, "raj": 5}


def test_cuda_requested_without_cuda(capsys, enrolled):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, _, err = run(capsys, "--gallery", enrolled[0], "--device", "cuda", "identify", BBT2)
    assert code == 1 and "CUDA is not available" in one_line_error(err)


def test_fp16_is_refused_on_the_cpu(capsys, enrolled):
    code, _, err = run(
        capsys, "--gallery", enrolled[0], "--device", "cpu", "--precision", "fp16", "identify", BBT2
    )
    assert code == 1 and "fp16 runs on CUDA only" in one_line_error(err)


def test_annotate_several_images_into_a_folder(capsys, enrolled, tmp_path):
    images = [BBT2, FACES / "bbt" / "group" / "bbt1.jpg"]
    code, out, _ = run(
        capsys, "--gallery", enrolled[0], "identify", *images, "--annotate", tmp_path / "ann"
    )
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == [
        "bbt1.annotated.jpg",
        "bbt2.annotated.jpg",
    ]
