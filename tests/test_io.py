"""steer/io.py: how steer reads an input file it may have been sent and writes an output file.

YAML is read with bounds (size, aliases, nesting, encoding), each refused with one short SteerError; a file is
written atomically with the user's umask; `inside` confines a name read from a manifest to its folder; and a file's
sha256 is the one checkpoints are checked by. As in tests/test_trust.py (what the rest of steer does with a
hostile file), each test of a hostile input failed before the fix it guards.
"""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from _harness import alias_bomb

from steer.errors import SteerError
from steer.io import MAX_YAML_BYTES, atomic_write_bytes, atomic_write_json, inside, load_yaml, sha256_file
from steer.net import checkpoints
from steer.run.specs import load_spec
from steer.studies import STUDIES

# -- atomic writes: output files get the user's umask ---------------------------------------------


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


# -- YAML: bounded size, aliases, nesting; one short message each ---------------------------------


def _laughs(key: str = "seeds") -> str:
    """A "billion laughs" spec: `key` holds 9 lists of 9 aliases each, the last standing for 9**9 zeros."""
    return alias_bomb(key) + ("seeds: [0]\n" if key != "seeds" else "")


def _refused(load: object, path: Path, *patterns: str) -> str:
    with pytest.raises(SteerError) as info:
        load(path)  # type: ignore[operator]
    message = str(info.value)
    assert len(message) < 400 and "\n" not in message, message
    for pattern in patterns:
        assert pattern in message, message
    return message


@pytest.mark.parametrize("key", ["seeds", "name"])
def test_a_billion_laughs_spec_is_refused_fast_with_bounded_memory(tmp_path: Path, key: str) -> None:
    """Before: `name` made the error message repr 9**9 items (minutes, gigabytes); now refused on load."""
    path = tmp_path / "bomb.yaml"
    path.write_text(_laughs(key))
    assert len(path.read_bytes()) < 500
    tracemalloc.start()
    start = time.perf_counter()
    try:
        _refused(load_spec, path, "spec: ", "aliases would expand to more than")
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.5 and peak < 20 * 2**20, (elapsed, peak)


def test_a_billion_laughs_batch_is_refused(tmp_path: Path) -> None:
    from steer.batch import load_batch

    batch = tmp_path / "batch.yaml"
    batch.write_text(_laughs("experiments"))
    start = time.perf_counter()
    _refused(load_batch, batch, "batch: ", "aliases would expand")
    spec = tmp_path / "bomb.yaml"
    spec.write_text(_laughs())
    batch.write_text(yaml.safe_dump({"experiments": [{"name": "x", "command": "apply", "spec": "bomb.yaml"}]}))
    _refused(load_batch, batch, "experiments[0].spec: ", "aliases would expand")
    assert time.perf_counter() - start < 1


def test_small_aliases_still_work(tmp_path: Path) -> None:
    """Documented choice: aliases are allowed within a budget, so an ordinary reuse of a value loads."""
    path = tmp_path / "spec.yaml"
    path.write_text("seeds: &s [0, 1, 2]\ntargets: *s\nsources: *s\nvector: {kind: cheese}\ncoeff: -1\n")
    spec = load_spec(path, STUDIES["transfer"].options)  # the YAML and its values, before transfer's own checks
    assert spec.seeds == spec.options.targets == spec.options.sources == (0, 1, 2)
    path.write_text("base: &b {kind: cheese}\nv: {<<: *b, source_seed: 3}\n")
    assert load_yaml(path, "spec") == {"base": {"kind": "cheese"}, "v": {"kind": "cheese", "source_seed": 3}}


def test_recursive_too_many_and_deeply_nested_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("seeds: &a [0, *a]\n")
    _refused(load_spec, path, "refers to a list or mapping that contains it")
    path.write_text("seeds: &a [0]\nx: [" + ", ".join(["*a"] * 101) + "]\n")
    _refused(load_spec, path, "more than 100 aliases")
    path.write_text("seeds: " + "[" * 10_000 + "]" * 10_000 + "\n")
    _refused(load_spec, path, "nested more than 64 deep")


def test_a_big_yaml_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("seeds: [" + "0, " * (MAX_YAML_BYTES // 3) + "0]\n")
    start = time.perf_counter()
    _refused(load_spec, path, "spec: ", "larger than 1 MiB")
    assert time.perf_counter() - start < 0.5


def test_a_folder_non_utf8_and_invalid_yaml_are_one_short_message_each(tmp_path: Path) -> None:
    _refused(load_spec, tmp_path, "spec: ", "is a folder, not a YAML file")
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"seeds: [0]\nname: caf\xe9\n")
    _refused(load_spec, path, "spec: ", "is not UTF-8 text (byte 0xe9 on line 2, at offset 20)")
    path.write_text("seeds: [0\n" + "x" * 10_000)
    _refused(load_spec, path, "spec: ", "is not valid YAML at line")
    path.write_text("seeds: !!int " + "z" * 10_000 + "\n")  # a constructor's ValueError, not a YAMLError
    _refused(load_spec, path, "spec: ", "is not valid YAML")
    path.write_text("seeds: *" + "n" * 10_000 + "\n")  # an undefined alias with a long name
    _refused(load_spec, path, "spec: ", "found undefined alias")
    path.write_text("seeds: [0]\n---\nseeds: [1]\n")
    _refused(load_spec, path, "expected a single document in the stream, but found another document")
    path.write_text("seeds: [0]\x1f\n")  # PyYAML's reader refuses control characters while constructing
    _refused(load_spec, path, "spec: ", "is not valid YAML: unacceptable character #x001f")
    _refused(load_spec, tmp_path / "missing.yaml", "spec: ", "does not exist. See configs/")


# -- inside: a name read from a manifest stays in its folder --------------------------------------


def test_inside_confines_a_name_to_its_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (out / "out-link").symlink_to(tmp_path / "elsewhere")
    (out / "in-link").symlink_to(out / "sub")
    assert inside(out, "a.png") == out.resolve() / "a.png"
    assert inside(out, "sub/../b.png") == out.resolve() / "b.png"
    assert inside(out, "in-link/c.png") == out.resolve() / "sub" / "c.png"
    for name in ("../victim.txt", str(tmp_path / "victim.txt"), "out-link/x", "sub/../../x", ".", "", None, 3, ["a"]):
        assert inside(out, name) is None, name


# -- sha256_file ----------------------------------------------------------------------------------


def test_sha256_file_is_the_checkpoint_hash(tmp_path: Path) -> None:
    path = tmp_path / "v.pt"
    path.write_bytes(b"vector")
    assert sha256_file(path) == hashlib.sha256(b"vector").hexdigest() == checkpoints.sha256_of(path)
