"""Tensor files with several named tensors (the layout vector files use, and dictionaries of features will):
read back exactly, by steer and by plain safetensors, the same bytes whatever the order they were given in."""

from __future__ import annotations

from pathlib import Path

import pytest
import safetensors.torch
import torch

from steer.errors import SteerError
from steer.net.tensor_files import FileProblem, read_tensor_file, tensor_file_bytes, write_tensor_file

PROBLEM = FileProblem("dictionary.file", "a steer dictionary file", "Make one with steer.")
FORMAT = "steer.test-dictionary/1"


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "encoder": torch.randn(6, 4, generator=g),
        "decoder": torch.randn(4, 6, generator=g),
        "bias": torch.randn(6, generator=g).half(),  # a narrower dtype after wider ones: offsets stay aligned
    }


def test_several_named_tensors_round_trip_and_read_without_steer(tmp_path: Path) -> None:
    tensors = _tensors()
    meta = {"site": "block2.res1.resadd_out", "features": 6, "seeds": [0, 1, 2]}
    path = tmp_path / "d.safetensors"
    write_tensor_file(path, FORMAT, tensors, {"kind": "sae"}, meta)
    dtypes = {"encoder": "F32", "decoder": "F32", "bias": "F16"}
    back = read_tensor_file(path, FORMAT, tuple(dtypes), PROBLEM, dtype=dtypes)
    assert back.meta == meta and back.fields == {"kind": "sae"} and back.format == FORMAT
    assert all(torch.equal(back.tensors[k], v) and back.tensors[k].dtype == v.dtype for k, v in tensors.items())
    plain = safetensors.torch.load_file(path)
    assert set(plain) == set(tensors) and all(torch.equal(plain[k], v) for k, v in tensors.items())
    # The same contents given in another order are the same bytes.
    reordered = dict(reversed(list(tensors.items())))
    assert tensor_file_bytes(FORMAT, reordered, {"kind": "sae"}, dict(reversed(list(meta.items())))) == (
        path.read_bytes()
    )


def test_a_reader_names_its_own_field_and_format(tmp_path: Path) -> None:
    path = tmp_path / "d.safetensors"
    write_tensor_file(path, FORMAT, {"encoder": torch.zeros(2, 2)})
    with pytest.raises(SteerError, match=r"^dictionary\.file: .* field 'decoder': expected a tensor named 'decoder'"):
        read_tensor_file(path, FORMAT, ("encoder", "decoder"), PROBLEM)
    with pytest.raises(SteerError, match=r"is not a steer dictionary file \(format 'other/1', this file's is"):
        read_tensor_file(path, "other/1", ("encoder",), PROBLEM)
    with pytest.raises(SteerError, match=r"field 'encoder': expected a float16 tensor .*got a float32 tensor"):
        read_tensor_file(path, FORMAT, ("encoder",), PROBLEM, dtype="F16")
