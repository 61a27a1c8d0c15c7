"""Fetch third-party assets (robot model, meshes, pretrained experts) from pinned registry packages.

Nothing third-party is committed to this repository. The G1 MJCF and meshes come from the
``holosoma`` wheel and the Stage-1 ONNX experts from the ``holosoma-inference`` wheel. Each wheel is
downloaded once with ``pip download --no-deps`` (its own heavy dependencies are never installed),
checked against a pinned sha256, and the needed files are extracted into a user cache:

* ``$BM_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/bm``, else ``~/.cache/bm``.
* ``$BM_WHEELHOUSE`` (optional): a folder holding the pinned wheels, used instead of the network.

Run ``python -m bm_envs.assets fetch`` once on a machine with registry access; afterwards everything
works offline. With an empty cache and no network, :func:`asset_path` raises :class:`AssetUnavailableError`
telling the user what to run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PinnedWheel", "WHEELS", "AssetUnavailableError", "cache_dir", "asset_path", "fetch_all"]


class AssetUnavailableError(RuntimeError):
    """A pinned third-party asset is not in the cache and could not be fetched."""


@dataclass(frozen=True)
class PinnedWheel:
    """A registry wheel pinned by version and sha256, and the members we extract from it."""

    name: str
    version: str
    filename: str
    sha256: str
    members: tuple[str, ...]  # path prefixes inside the wheel to extract

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"


WHEELS: dict[str, PinnedWheel] = {
    "holosoma": PinnedWheel(
        name="holosoma",
        version="0.0.3",
        filename="holosoma-0.0.3-py3-none-any.whl",
        sha256="1c007c27dbf130c04533af6052649d88da32eaa9b54e69c6d39009e979a2312f",
        members=("holosoma/data/robots/g1/", "holosoma/data/motions/g1_29dof/"),
    ),
    "holosoma-inference": PinnedWheel(
        name="holosoma-inference",
        version="0.1.3",
        filename="holosoma_inference-0.1.3-py3-none-any.whl",
        sha256="3c11fd4595bc82921d4c44f77357667828761548c1ce74782ea77937b2ab0ef7",
        members=("holosoma_inference/models/loco/g1_29dof/", "holosoma_inference/models/wbt/"),
    ),
}

FETCH_HINT = "python -m bm_envs.assets fetch"


def cache_dir() -> Path:
    """Root of the asset cache (created on demand)."""
    if os.environ.get("BM_CACHE_DIR"):
        root = Path(os.environ["BM_CACHE_DIR"])
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bm"
    return root.expanduser()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_wheel(wheel: PinnedWheel, dest: Path) -> Path:
    """Place the pinned wheel in ``dest`` (from $BM_WHEELHOUSE or the registry) and verify its sha256."""
    target = dest / wheel.filename
    house = os.environ.get("BM_WHEELHOUSE")
    if house and (Path(house) / wheel.filename).is_file():
        shutil.copyfile(Path(house) / wheel.filename, target)
    else:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "-q", "-d", str(dest), f"{wheel.name}=={wheel.version}",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not target.is_file():
            raise AssetUnavailableError(
                f"could not download {wheel.name}=={wheel.version} (needed for the G1 model/experts) and it is "
                f"not cached in {cache_dir()}. Run `{FETCH_HINT}` on a machine with access to the package "
                f"registry, or set BM_WHEELHOUSE to a folder holding {wheel.filename}.\n"
                f"pip said: {proc.stderr.strip()[-600:]}"
            )
    digest = sha256_file(target)
    if digest != wheel.sha256:
        target.unlink(missing_ok=True)
        raise AssetUnavailableError(
            f"{wheel.filename}: sha256 {digest} does not match the pinned {wheel.sha256}; refusing to use it."
        )
    return target


def _ensure_wheel(wheel: PinnedWheel) -> Path:
    """Extract the pinned wheel's members into the cache once; return the extraction root."""
    root = cache_dir() / wheel.key
    if (root / ".complete").is_file():
        return root
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=f".{wheel.key}-") as tmp:
        tmp_path = Path(tmp)
        whl = _download_wheel(wheel, tmp_path)
        staging = tmp_path / "extract"
        with zipfile.ZipFile(whl) as zf:
            names = [n for n in zf.namelist() if n.startswith(wheel.members)]
            if not names:
                raise AssetUnavailableError(f"{wheel.filename} holds none of {wheel.members}")
            for n in names:
                zf.extract(n, staging)
        (staging / ".complete").write_text(wheel.sha256 + "\n")
        if root.exists():  # a partial extraction from an interrupted run
            shutil.rmtree(root)
        os.replace(staging, root)  # atomic: the cache holds a complete tree or nothing
    return root


def asset_path(package: str, relpath: str) -> Path:
    """Path of ``relpath`` inside the pinned ``package`` (fetched and cached on first use).

    Example: ``asset_path("holosoma", "holosoma/data/robots/g1/g1_29dof.xml")``.
    """
    if package not in WHEELS:
        raise KeyError(f"unknown asset package {package!r}; known: {sorted(WHEELS)}")
    path = _ensure_wheel(WHEELS[package]) / relpath
    if not path.exists():
        raise AssetUnavailableError(f"{relpath} is not part of {WHEELS[package].key}")
    return path


def fetch_all() -> dict[str, Path]:
    """Fetch and extract every pinned wheel; return their cache roots."""
    return {name: _ensure_wheel(w) for name, w in WHEELS.items()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["fetch"]:
        print(f"usage: {FETCH_HINT}", file=sys.stderr)
        return 2
    for name, root in fetch_all().items():
        print(f"{name}: {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
