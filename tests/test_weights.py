"""Weights: found on the search path, checksum-verified, downloaded only when absent."""

import dataclasses

import pytest
import torch

from conftest import MODELS
from facesearch import weights as W
from facesearch.embedding import FaceEmbedder
from facesearch.errors import WeightsError


@pytest.fixture
def no_weights_anywhere(tmp_path, monkeypatch):
    """Point every weights location at empty folders."""
    monkeypatch.setenv("FACESEARCH_MODELS", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_shared_weights_are_found_and_verified():
    path = W.resolve_weights(str(MODELS), allow_download=False)
    assert path.name == W.FEATURES.filename


def test_wrong_checksum_is_refused(tmp_path):
    bad = tmp_path / W.FEATURES.filename
    bad.write_bytes(b"\0" * 1024)
    with pytest.raises(WeightsError, match="checksum mismatch") as err:
        W.resolve_weights(str(tmp_path), allow_download=False)
    assert "\n" not in str(err.value)
    with pytest.raises(WeightsError, match="checksum mismatch"):
        FaceEmbedder(weights=str(bad)).load()


def test_missing_weights_without_download_say_where_to_put_them(no_weights_anywhere):
    with pytest.raises(WeightsError, match="put 20180402-114759-vggface2-features.pt or") as err:
        W.resolve_weights(allow_download=False)
    assert str(no_weights_anywhere / "env") in str(err.value)


def test_failed_download_is_one_line(no_weights_anywhere, monkeypatch):
    unreachable = dataclasses.replace(
        W.OFFICIAL, url="http://127.0.0.1:9/20180402-114759-vggface2.pt"
    )
    monkeypatch.setattr(W, "OFFICIAL", unreachable)
    with pytest.raises(WeightsError, match="download failed") as err:
        W.resolve_weights(progress=False)
    assert "\n" not in str(err.value)
    assert not any((no_weights_anywhere / "cache").rglob("*.pt"))


def test_download_is_checksummed_and_atomic(no_weights_anywhere, monkeypatch):
    src = MODELS / W.FEATURES.filename
    good = W.WeightsFile(W.FEATURES.filename, W.FEATURES.sha256, src.as_uri())
    path = W.download(good, no_weights_anywhere / "dl", progress=False)
    assert path.is_file() and W.sha256_file(path) == W.FEATURES.sha256

    corrupt = dataclasses.replace(good, sha256="0" * 64)
    with pytest.raises(WeightsError, match="checksum mismatch"):
        W.download(corrupt, no_weights_anywhere / "dl2", progress=False)
    assert list((no_weights_anywhere / "dl2").iterdir()) == []  # no partial file left


def test_official_checkpoint_logits_are_dropped(tmp_path):
    state = {
        "conv.weight": torch.zeros(2),
        "logits.weight": torch.zeros(3),
        "logits.bias": torch.zeros(3),
    }
    p = tmp_path / "w.pt"
    torch.save(state, p)
    assert set(W.load_state_dict(p)) == {"conv.weight"}


def test_unloadable_file_is_a_weights_error(tmp_path):
    p = tmp_path / "w.pt"
    p.write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="cannot load"):
        W.load_state_dict(p)
