"""Lower-poly copies of the G1's *visual* meshes for rendering (physics untouched).

The pinned G1 MJCF draws its links with 35 STL meshes of ~437 k triangles in all (its collision geometry is made
of primitives in another geom group and is not affected). Software rendering (``MUJOCO_GL=egl`` without a GPU, or
osmesa) spends most of a frame on them. :func:`simplified_mesh_files` makes quadric-decimated copies once
(``fast_simplification`` on ``trimesh``-loaded meshes), cached next to the fetched assets under
``<cache>/visual-meshes/`` and keyed by each source file's sha256 and the kept fraction, so they are rebuilt only
when the source or the setting changes. The envs use them only when they render (``render_mode`` set).

The meshes have ``contype = conaffinity = 0`` and every link has an explicit ``<inertial>``, so the compiled model
simulates identically with either set (tested: same masses and inertias, bit-identical trajectories).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Fraction of each visual mesh's triangles kept (about 44 k of 437 k in all).
KEEP_FRACTION = 0.1
#: Meshes with fewer triangles than this are used as they are.
MIN_FACES = 2000


from bm_envs.atomic import atomic_path  # noqa: E402


def _cache_dir() -> Path:
    from bm_envs.assets import cache_dir

    d = cache_dir() / "visual-meshes"
    d.mkdir(parents=True, exist_ok=True)
    return d


def simplify_mesh(src: Path, keep: float = KEEP_FRACTION) -> Path:
    """A decimated copy of the mesh file ``src`` keeping ``keep`` of its triangles (cached); ``src`` itself when it
    is already small. Raises ``ValueError`` naming the file when it cannot be read."""
    import fast_simplification
    import numpy as np
    import trimesh

    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep!r}")
    data = Path(src).read_bytes()
    key = hashlib.sha256(data + f"|{keep:.4f}".encode()).hexdigest()[:16]
    out = _cache_dir() / f"{Path(src).stem}-{key}.stl"
    if out.is_file():
        return out
    try:
        mesh = trimesh.load(src, force="mesh", process=True)  # STL is a triangle soup: merge shared vertices first
    except Exception as e:  # noqa: BLE001  (trimesh raises many kinds)
        raise ValueError(f"{src}: cannot read the mesh ({type(e).__name__}: {e})") from None
    if len(mesh.faces) == 0:
        raise ValueError(f"{src}: the mesh has no triangles")
    if keep >= 1.0 or len(mesh.faces) < MIN_FACES:
        return Path(src)
    v, f = fast_simplification.simplify(np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int64),
                                        target_reduction=1.0 - keep)  # fmt: skip
    with atomic_path(out) as tmp:
        trimesh.Trimesh(v, f, process=False).export(tmp)
    return out


def use_simplified_meshes(spec, keep: float = KEEP_FRACTION) -> None:
    """Point every mesh of a robot ``MjSpec`` loaded from a file at its simplified copy (absolute paths)."""
    root = Path(spec.modelfiledir) / spec.meshdir
    for m in spec.meshes:
        if m.file:
            m.file = str(simplify_mesh(root / m.file, keep))
