"""Untrusted inputs are harmless: YAML, checkpoints, vector files, manifests and spec names from anyone.

Each test here failed before the fix it guards; together they pin what steer does with a hostile file:
refuse it with one short SteerError, and never run its code, expand it, or delete outside the output folder.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from steer.errors import excerpt
from steer.io import atomic_write_bytes, atomic_write_json

# -- excerpt: a value in a message is at most a short excerpt -------------------------------------


def test_excerpt_keeps_short_values_and_cuts_long_ones_with_their_size() -> None:
    assert excerpt("cheese") == "'cheese'" and excerpt(-1.5) == "-1.5" and excerpt([0, 1]) == "[0, 1]"
    long = excerpt("x" * 1_000_000)
    assert len(long) < 120 and long.endswith("… (1000000 characters)")
    many = excerpt(list(range(100_000)))
    assert len(many) < 120 and many.endswith("(a list of 100000 items)")
    assert len(excerpt(b"\0" * 10_000)) < 120
    assert excerpt(10**100_000) == "an integer of 332193 bits"  # repr() would refuse (and be slow)
    loop: list = []
    loop.append(loop)
    assert len(excerpt(loop)) < 120


def test_excerpt_of_a_huge_shared_structure_is_quick() -> None:
    """A 'billion laughs' value built in memory (shared lists): its full repr would never finish."""
    value: list = [0] * 9
    for _ in range(30):
        value = [value] * 9
    start = time.perf_counter()
    text = excerpt(value)
    assert time.perf_counter() - start < 0.1 and len(text) < 120


# -- output files get the user's umask ------------------------------------------------------------


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_get_the_users_umask(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"data")
        atomic_write_json(tmp_path / "b.json", {"x": 1})
    finally:
        os.umask(old)
    for name in ("a.bin", "b.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.json"]  # no temporary left behind
