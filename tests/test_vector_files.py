"""Vector files others can read (issue 32): safetensors with steer's metadata, read without steer; the legacy
`.pt` still read; `steer vector info`; a hostile safetensors file is one clear error (real checkpoint)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _cli import run, write_spec
from _harness import LAYER

from steer.errors import SteerError
from steer.net.tensor_files import tensor_file_bytes
from steer.net.vector_files import FORMAT, MAX_VECTOR_BYTES
from steer.net.vectors import SteeringVector, vector_info
from steer.net.vfield import FieldInputs, vector_field
from steer.run.session import Session
from steer.run.vector_plan import build_vector, mean_vector
from steer.studies import STUDIES

APPLY = STUDIES["apply"]


@pytest.fixture(scope="module")
def session(ckpt, easy) -> Session:
    return Session(ckpt, "easy", "spec", easy)


@pytest.fixture(scope="module")
def computed(session: Session) -> SteeringVector:
    """A real cheese vector of seed 2, with target edits (squares, so lists in its metadata)."""
    spec = APPLY.parse({"seeds": [2], "coeff": -1, "vector": {"kind": "cheese"}, "target_edits": [{"mouse": [2, 3]}]})
    assert spec.options.vector.pair is not None
    return build_vector(session, spec, 2, spec.options.vector.pair, LAYER)


def test_a_computed_vector_round_trips_through_safetensors_bit_for_bit(
    tmp_path: Path, session: Session, computed: SteeringVector
) -> None:
    path = tmp_path / "v.safetensors"
    computed.save(path)
    back = SteeringVector.load(path)
    assert torch.equal(back.tensor, computed.tensor) and back.tensor.dtype == torch.float32
    assert back.meta == computed.meta and (back.layer, back.kind) == (computed.layer, computed.kind)
    assert back.meta["checkpoint_sha256"] == session.checkpoint.sha256 and back.meta["target_edits"] == [
        ["mouse", [2, 3]]
    ]
    # A mean vector's seeds (and skipped seeds with their reasons) come back too; and the bytes are the same
    # every time the same vector is saved.
    spec = APPLY.parse({"seeds": [0], "coeff": -1, "vector": {"kind": "cheese", "source_seeds": [0, 29]}})
    assert spec.options.vector.pair is not None
    mean = mean_vector(session, spec, (0, 29), spec.options.vector.pair, LAYER)
    mean.save(tmp_path / "mean.safetensors")
    mean.save(tmp_path / "again.safetensors")
    assert (tmp_path / "mean.safetensors").read_bytes() == (tmp_path / "again.safetensors").read_bytes()
    loaded = SteeringVector.load(tmp_path / "mean.safetensors")
    assert loaded.meta == mean.meta and loaded.meta["source_seeds"] == [0, 29] and loaded.meta["source_seed"] is None
    assert torch.equal(loaded.tensor, mean.tensor)


READ_WITHOUT_STEER = """
import json, sys
sys.modules["steer"] = None  # any import of steer (the venv has it installed) now fails
from safetensors import safe_open
from safetensors.numpy import load_file
tensor = load_file(sys.argv[1])["vector"]
with safe_open(sys.argv[1], "np") as f:
    header = f.metadata()
json.dump({"header": header, "meta": json.loads(header["meta"]), "shape": list(tensor.shape),
           "dtype": str(tensor.dtype), "values": tensor.ravel().tolist()}, sys.stdout)
"""


def test_a_vector_file_is_read_by_plain_safetensors_without_steer(tmp_path: Path, computed: SteeringVector) -> None:
    path = tmp_path / "v.safetensors"
    computed.save(path)
    # -I: no working folder, PYTHONPATH or user site on sys.path; the script also makes `import steer` fail
    done = subprocess.run(
        [sys.executable, "-I", "-c", READ_WITHOUT_STEER, str(path)], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    read = json.loads(done.stdout)
    assert read["header"]["format"] == FORMAT and read["header"]["kind"] == "cheese"
    assert read["header"]["layer"] == LAYER and read["meta"] == computed.meta
    assert read["shape"] == [32, 16, 16] and read["dtype"] == "float32"
    assert np.array_equal(np.array(read["values"], dtype=np.float32), computed.tensor.numpy().ravel())


def test_a_pt_file_still_loads_and_applies_to_the_same_field(
    tmp_path: Path, session: Session, computed: SteeringVector
) -> None:
    computed.save(tmp_path / "v.pt")
    computed.save(tmp_path / "v.safetensors")
    assert (tmp_path / "v.pt").read_bytes()[:2] == b"PK"  # torch's zip format, as steer wrote before
    legacy, new = SteeringVector.load(tmp_path / "v.pt"), SteeringVector.load(tmp_path / "v.safetensors")
    assert torch.equal(legacy.tensor, new.tensor) and legacy.meta == new.meta == computed.meta
    inputs = FieldInputs.render(session.renderer, session.renderer.level(1))
    original = vector_field(session.policy, inputs)
    fields = [vector_field(session.policy, inputs, [(v.layer, v.tensor, -1.0)]) for v in (legacy, new)]
    assert np.array_equal(fields[0].probs, fields[1].probs)
    assert not np.array_equal(fields[0].probs, original.probs)  # the vector does change the field


def test_a_file_of_another_checkpoint_or_site_is_refused_through_the_cli(
    tmp_path: Path, computed: SteeringVector
) -> None:
    other = SteeringVector(computed.layer, computed.tensor, "cheese", {**computed.meta, "checkpoint_sha256": "ab" * 32})
    other.save(tmp_path / "other.safetensors")
    computed.save(tmp_path / "v.safetensors")
    cases = [
        ({"vector": {"file": str(tmp_path / "other.safetensors")}}, "was computed with checkpoint"),
        ({"vector": {"file": str(tmp_path / "v.safetensors")}, "layer": "block3.res1.resadd_out"}, "is not the layer"),
    ]
    for i, (fields, says) in enumerate(cases):
        out = tmp_path / f"out{i}"
        result = run("apply", write_spec(tmp_path, {"seeds": [1], "coeff": -1, **fields}), "--out", out)
        assert result.exit_code == 2 and says in result.output, result.output
        assert "Traceback" not in result.output and not out.exists()


def test_vector_info_names_the_kind_the_site_and_the_seeds(tmp_path: Path, computed: SteeringVector) -> None:
    computed.save(tmp_path / "v.safetensors")
    computed.save(tmp_path / "v.pt")
    shown = run("vector", "info", tmp_path / "v.safetensors")
    assert shown.exit_code == 0, shown.output
    lines = {line.split("  ", 1)[0].strip(): line.split("  ", 1)[1].strip() for line in shown.output.splitlines()}
    assert lines["kind"].startswith("cheese") and lines["layer"] == LAYER and lines["source seed"] == "2"
    assert lines["checkpoint sha256"] == computed.meta["checkpoint_sha256"]
    assert lines["tensor"].startswith("float32 [32, 16, 16], norm ")
    assert lines["format"].startswith("safetensors, steer.vector/1")
    as_json = run("vector", "info", tmp_path / "v.pt", "--json")
    assert as_json.exit_code == 0, as_json.output
    record = json.loads(as_json.output)
    assert record == {**vector_info(tmp_path / "v.pt").to_json()} and record["container"] == "torch"
    assert record["norm"] == pytest.approx(float(computed.tensor.norm())) and record["meta"] == computed.meta


def test_vector_info_on_junk_is_one_error_and_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    for path in (junk, tmp_path / "missing.safetensors", tmp_path):
        result = run("vector", "info", path)
        assert result.exit_code == 2 and result.output.count("error:") == 1, result.output
        assert "vector.file: " in result.output and "Traceback" not in result.output


# -- hostile safetensors files: each one message naming vector.file, the field, the value and the fix ------------

GOOD_META = {"format": FORMAT, "kind": "cheese", "layer": LAYER, "meta": json.dumps({"source_seed": 0})}


def _raw(header: Any, data: bytes, length: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def _entry(dtype: str = "F32", shape: list[int] | None = None, end: int = 32 * 16 * 16 * 4) -> dict[str, Any]:
    return {"dtype": dtype, "shape": [32, 16, 16] if shape is None else shape, "data_offsets": [0, end]}


ZEROS = bytes(32 * 16 * 16 * 4)
NAN = np.full((32, 16, 16), np.nan, dtype="<f4").tobytes()
HOSTILE: list[tuple[str, bytes, str]] = [
    ("too-short", b"\x01\x02", "too short for a safetensors header"),
    ("huge-header", _raw(b"{}", b"", length=1 << 40), "field 'header': expected a JSON header of at most 1 MiB"),
    ("header-past-the-end", _raw(b"{}", b"", length=5000), "field 'header': expected a header within the file's"),
    ("header-not-json", _raw(b"{not json", ZEROS), "its header is not JSON"),
    ("header-not-utf8", _raw(b'{"\xff"}', ZEROS), "its header is not JSON"),
    ("header-deeply-nested", _raw(b"[" * 100_000, b""), "its header is not JSON"),
    ("header-a-list", _raw([1, 2], b""), "field 'header': expected a JSON object"),
    ("no-metadata", _raw({"vector": _entry()}, ZEROS), "is not a steer vector file (format 'steer.vector/1'"),
    (
        "another-format",
        _raw({"__metadata__": {**GOOD_META, "format": "other/1"}, "vector": _entry()}, ZEROS),
        "is not a steer vector file (format 'steer.vector/1', this file's is 'other/1')",
    ),
    (
        "metadata-not-strings",
        _raw({"__metadata__": {**GOOD_META, "kind": 3}, "vector": _entry()}, ZEROS),
        "field '__metadata__.kind': expected a string",
    ),
    (
        "meta-not-json",
        _raw({"__metadata__": {**GOOD_META, "meta": "{oops"}, "vector": _entry()}, ZEROS),
        "field 'meta': expected a JSON object, got '{oops'",
    ),
    (
        "meta-nan",
        _raw({"__metadata__": {**GOOD_META, "meta": '{"coeff": NaN}'}, "vector": _entry()}, ZEROS),
        "field 'meta': expected a JSON object",
    ),
    (
        "meta-a-list",
        _raw({"__metadata__": {**GOOD_META, "meta": "[1]"}, "vector": _entry()}, ZEROS),
        "field 'meta': expected a JSON object, got [1]",
    ),
    (
        "missing-tensor",
        _raw({"__metadata__": GOOD_META, "other": _entry()}, ZEROS),
        "field 'vector': expected a tensor named 'vector', got nothing",
    ),
    (
        "extra-tensor",
        _raw({"__metadata__": GOOD_META, "vector": _entry(), "zz": {**_entry(), "data_offsets": [0, 0]}}, ZEROS),
        "field 'zz': expected only the tensors vector",
    ),
    (
        "wrong-dtype",
        _raw({"__metadata__": GOOD_META, "vector": _entry("F64", end=len(ZEROS) * 2)}, ZEROS * 2),
        "field 'vector': expected a float32 tensor (steer writes float32), got a float64 tensor of shape [32, 16, 16]",
    ),
    (
        "bad-shape",
        _raw({"__metadata__": GOOD_META, "vector": _entry(shape=[-1])}, ZEROS),
        "field 'vector': expected a tensor entry with a shape",
    ),
    (
        "data-truncated",
        _raw({"__metadata__": GOOD_META, "vector": _entry()}, ZEROS[:100]),
        "safetensors cannot read its tensors",
    ),
    (
        "offsets-disagree-with-shape",
        _raw({"__metadata__": GOOD_META, "vector": _entry(end=400)}, ZEROS[:400]),
        "safetensors cannot read its tensors",
    ),
    (
        "nan-values",
        _raw({"__metadata__": GOOD_META, "vector": _entry()}, NAN),
        "field 'vector': expected finite values, got a float32 tensor of shape [32, 16, 16] with 8192 NaN",
    ),
    (
        "scalar",
        _raw({"__metadata__": GOOD_META, "vector": _entry(shape=[], end=4)}, bytes(4)),
        "field 'vector': expected one observation's activations",
    ),
    (
        "kind-unknown",
        _raw({"__metadata__": {**GOOD_META, "kind": "gouda"}, "vector": _entry()}, ZEROS),
        "field 'kind': expected one of cheese, top_right, custom, got 'gouda'",
    ),
    (
        "layer-missing",
        _raw({"__metadata__": {k: v for k, v in GOOD_META.items() if k != "layer"}, "vector": _entry()}, ZEROS),
        "field 'layer': expected a hook name such as 'block2.res1.resadd_out', got nothing",
    ),
    (
        "source-seed-not-a-seed",
        _raw({"__metadata__": {**GOOD_META, "meta": '{"source_seed": "s"}'}, "vector": _entry()}, ZEROS),
        "field 'meta.source_seed': expected a level seed, got 's'",
    ),
]


@pytest.mark.parametrize(("name", "data", "expected"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_safetensors_vector_file_is_one_clear_error(
    tmp_path: Path, name: str, data: bytes, expected: str
) -> None:
    path = tmp_path / "v.safetensors"
    path.write_bytes(data)
    with pytest.raises(SteerError) as info:
        SteeringVector.load(path)
    message = str(info.value)
    assert message.startswith("vector.file: ") and expected in message, message
    assert len(message) < 600 and "\n" not in message and "compute-vector" in message


def test_a_huge_vector_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.safetensors"
    with path.open("wb") as f:  # sparse: no disk is used
        f.write(_raw({"__metadata__": GOOD_META, "vector": _entry()}, ZEROS))
        f.truncate(MAX_VECTOR_BYTES + 1)
    with pytest.raises(SteerError, match=r"^vector\.file: .* is larger than 64 MiB.*refused unread"):
        SteeringVector.load(path)


def test_a_safetensors_file_under_another_name_is_still_read_as_one(tmp_path: Path) -> None:
    # The content decides, not only the name: a renamed file is read with the safetensors checks.
    vec = SteeringVector(LAYER, torch.ones(32, 16, 16), "cheese", {"source_seed": 0})
    path = tmp_path / "renamed.bin"
    path.write_bytes(tensor_file_bytes(FORMAT, {"vector": vec.tensor}, {"kind": "cheese", "layer": LAYER}, vec.meta))
    assert torch.equal(SteeringVector.load(path).tensor, vec.tensor)
