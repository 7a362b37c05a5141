"""``facesearch serve``'s camera flags: bad ones are one line and exit 1 before anything starts."""

from __future__ import annotations

import pytest

from fakes import one_line_error, run

pytest.importorskip("fastapi", reason="the server extra is not installed")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--camera", "front door=0"], "camera name 'front door'"),
        (["--camera", "front"], "expected NAME=SOURCE"),
        (["--camera", "a=0", "--camera", "a=1"], "camera 'a' is given twice"),
        (["--config", "{tmp}/nope.toml"], "no such config file"),
        (["--config", "{tmp}/bad.toml"], "not valid TOML"),
        (["--keep-snapshots", "0", "--camera", "a=0"], "keep must be at least 1"),
    ],
)
def test_bad_camera_settings_are_one_line(capsys, tmp_path, args, says):
    (tmp_path / "bad.toml").write_text("[cameras\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, out, err = run(capsys, "--gallery", tmp_path / "g", "serve", "--port", "0", *args)
    assert code == 1 and says in one_line_error(err), err
    assert not (tmp_path / "g").exists()  # refused before the gallery was touched
