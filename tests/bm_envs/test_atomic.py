"""``bm_envs.atomic``: the old file survives a failed write, no temporary file is left, suffixes are kept."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bm_envs.atomic import atomic_path, write_text


def test_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    p = tmp_path / "a.json"
    write_text(p, "old")
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert p.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["a.json"]
    write_text(p, "new", fsync=True)
    assert p.read_text() == "new" and sorted(os.listdir(tmp_path)) == ["a.json"]
    assert oct(p.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_suffix_kept_for_writers_that_choose_the_format_by_it(tmp_path):
    p = tmp_path / "sub" / "x.npz"
    with atomic_path(p) as tmp:
        assert tmp.suffix == ".npz" and tmp.parent == p.parent
        np.savez(tmp, a=np.arange(3))
    with np.load(p) as z:
        assert z["a"].tolist() == [0, 1, 2]
