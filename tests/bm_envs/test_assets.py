"""Pinned third-party assets: offline with an empty cache → a clear error naming the fetch command; a wheel with
the wrong sha256 is refused; a filled cache works without any index."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bm_envs import assets
from bm_envs.assets import WHEELS, AssetUnavailableError, asset_path, cache_dir

PIP_ENV_VARS = ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_NO_INDEX", "PIP_CONSTRAINT",
                "PIP_CONFIG_FILE", "PIP_TRUSTED_HOST")  # fmt: skip


@pytest.fixture
def offline_pip(monkeypatch):
    """pip with no reachable index: no config files (local find-links/index mirrors live there), an index URL
    on a closed local port, no cache, no retries."""
    for var in PIP_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("BM_WHEELHOUSE", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")


def test_offline_pip_really_is_offline(offline_pip, tmp_path):
    """Guard for the tests below: this pip cannot obtain the pinned wheel from anywhere."""
    w = WHEELS["holosoma"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp_path), f"{w.name}=={w.version}"]
    assert subprocess.run(cmd, capture_output=True, text=True).returncode != 0
    assert not list(tmp_path.iterdir())


def test_empty_cache_offline_raises_with_hint(offline_pip, monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BM_CACHE_DIR", str(cache))
    assert cache_dir() == cache
    with pytest.raises(AssetUnavailableError) as e:
        asset_path("holosoma", "holosoma/data/robots/g1/g1_29dof.xml")
    msg = str(e.value)
    assert "python -m bm_envs.assets fetch" in msg and "holosoma==0.0.3" in msg and "BM_WHEELHOUSE" in msg
    assert [p.name for p in cache.iterdir()] == []  # no partial extraction left behind


def test_wrong_sha256_is_refused(offline_pip, monkeypatch, tmp_path):
    house = tmp_path / "wheelhouse"
    house.mkdir()
    w = WHEELS["holosoma-inference"]
    (house / w.filename).write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip, not the pinned wheel
    monkeypatch.setenv("BM_WHEELHOUSE", str(house))
    monkeypatch.setenv("BM_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(AssetUnavailableError, match=f"{w.filename}: sha256 .* does not match the pinned {w.sha256}"):
        asset_path("holosoma-inference", "holosoma_inference/models/loco/g1_29dof/fastsac_g1_29dof.onnx")
    assert list((tmp_path / "cache").iterdir()) == []
    assert (house / w.filename).is_file()  # the user's file is not touched


def test_filled_cache_works_offline(offline_pip):
    """The default cache (filled by ``python -m bm_envs.assets fetch``) needs no index."""
    p = asset_path("holosoma", "holosoma/data/robots/g1/g1_29dof.xml")
    assert p.is_file() and p.is_relative_to(cache_dir())
    with pytest.raises(AssetUnavailableError, match="not part of holosoma-0.0.3"):
        asset_path("holosoma", "holosoma/data/robots/h1/h1.xml")
    with pytest.raises(KeyError, match="unknown asset package"):
        asset_path("unitree-assets", "g1.xml")


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("BM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "bm"
    monkeypatch.setenv("BM_CACHE_DIR", str(tmp_path / "bm"))
    assert cache_dir() == tmp_path / "bm"


def test_cli_usage():
    assert assets.main(["frobnicate"]) == 2
