"""Server settings and ``facesearch serve``'s refusals (no server is started, no model loaded)."""

from __future__ import annotations

import sys

import pytest

from facesearch.errors import InputError
from facesearch.server.settings import Settings, is_loopback, keys_from
from fakes import one_line_error, run

from .conftest import KEY, READ_KEY


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_no_key_no_network():
    for host in ("0.0.0.0", "::", "10.0.0.5"):
        with pytest.raises(InputError, match="without an API key.*FACESEARCH_API_KEY"):
            Settings(host=host).check_host()
    Settings(host="127.0.0.1").check_host()
    Settings(host="0.0.0.0", api_keys={KEY: "read-write"}).check_host()
    Settings(host="0.0.0.0", api_keys={READ_KEY: "read-only"}).check_host()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"api_keys": {"short": "read-write"}}, "at least 16"),
        ({"api_keys": {KEY: "admin"}}, "read-only or read-write"),
        ({"port": 70000}, "--port"),
        ({"max_upload_bytes": 10}, "upload limit"),
        ({"max_batch": 0}, "--max-batch"),
    ],
)
def test_bad_settings(settings, message):
    with pytest.raises(InputError, match=message):
        Settings(**settings)


def test_keys_from_flags_and_comma_separated_variables():
    assert keys_from([f"{KEY}, other-key-0123456789"], [READ_KEY]) == {
        KEY: "read-write",
        "other-key-0123456789": "read-write",
        READ_KEY: "read-only",
    }
    assert keys_from([""], [""]) == {}


def test_serve_refuses_a_network_host_without_a_key(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("FACESEARCH_API_KEY", raising=False)
    code, _, err = run(capsys, "--gallery", tmp_path / "g", "serve", "--host", "0.0.0.0")
    assert code == 1
    assert "without an API key" in one_line_error(err)
    code, _, err = run(capsys, "--gallery", tmp_path / "g", "serve", "--api-key", "short")
    assert code == 1 and "at least 16" in one_line_error(err)
    assert not (tmp_path / "g").exists()  # refused before anything was opened


def test_serve_without_the_server_extra_says_how_to_install_it(capsys, tmp_path, monkeypatch):
    for name in list(sys.modules):
        if name.startswith("facesearch.server"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi raises ImportError
    code, _, err = run(capsys, "--gallery", tmp_path / "g", "serve")
    assert code == 1
    assert "pip install 'facesearch[server]'" in one_line_error(err)
