"""A steering vector's file: safetensors (what steer writes) or the legacy torch `.pt` (still read).

A safetensors vector file holds one float32 tensor named `vector` and, in the header's metadata, `format`
(`steer.vector/1`), `kind`, `layer` and `meta` (a JSON object: checkpoint and its sha256, mode, pair, seeds,
steer's version, and a coefficient where one was chosen); see `tensor_files.py` for why that split. Any
safetensors reader gets the tensor and the header without steer:

    from safetensors import safe_open
    with safe_open("vector-cheese-seed0.safetensors", "pt") as f:
        tensor, header = f.get_tensor("vector"), f.metadata()     # json.loads(header["meta"])

A `.pt` file (steer before safetensors) is a `torch.save`d dict read with `torch.load(weights_only=True)`.
Both are untrusted input and pass the same checks: layer, kind, a finite float32 tensor of one observation's
activations, meta; each failure one message naming `vector.file`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from steer.errors import SteerError, excerpt
from steer.io import atomic_write_bytes
from steer.net.checkpoints import pickle_global
from steer.net.tensor_files import FileProblem, is_tensor_file, read_tensor_file, write_tensor_file

FORMAT = "steer.vector/1"
TENSOR = "vector"  # the tensor's name in a safetensors file
LEGACY_SUFFIXES = (".pt", ".pth")  # a path ending so is written as torch's format; any other as safetensors
SUFFIXES = (".safetensors", *LEGACY_SUFFIXES)  # what the explorer's picker lists
MAX_VECTOR_BYTES = 64 << 20  # one observation's activations at the widest site are 256 KiB
HOW = "Make one with `steer compute-vector SPEC.yaml`."
PROBLEM = FileProblem("vector.file", "a steer vector file", HOW)

Bad = Callable[[str, str, str | None], SteerError]


@dataclass(frozen=True)
class VectorData:
    """A vector file's contents, checked; `container` says which of the two formats it was read from."""

    layer: str
    kind: str
    tensor: torch.Tensor
    meta: dict[str, Any]
    container: str  # "safetensors" | "torch"


def is_legacy_path(path: Path) -> bool:
    return Path(path).suffix in LEGACY_SUFFIXES


def write_vector(path: Path, layer: str, kind: str, tensor: torch.Tensor, meta: dict[str, Any]) -> None:
    """safetensors, unless `path` ends in `.pt`/`.pth` (torch's format, for tools that still expect it)."""
    if is_legacy_path(path):
        buf = io.BytesIO()
        torch.save({"format": FORMAT, "layer": layer, "kind": kind, "tensor": tensor.cpu(), "meta": meta}, buf)
        atomic_write_bytes(path, buf.getvalue())
        return
    write_tensor_file(path, FORMAT, {TENSOR: tensor.float()}, {"kind": kind, "layer": layer}, meta)


def read_vector(path: str | os.PathLike[str], kinds: Sequence[str]) -> VectorData:
    """A vector file of either format, every field checked: a bad file is one SteerError, never a crash."""
    path = Path(path)
    shown = excerpt(str(path), 160)
    if is_tensor_file(path):
        data = read_tensor_file(path, FORMAT, (TENSOR,), PROBLEM, max_bytes=MAX_VECTOR_BYTES)
        fields = dict(data.fields)

        def bad_field(key: str, expected: str, got: str | None = None) -> SteerError:
            return _bad(shown, key, expected, excerpt(fields[key]) if got is None and key in fields else got)

        parts = (fields.get("layer"), fields.get("kind"), data.tensors[TENSOR], dict(data.meta))
        return _checked(bad_field, *parts, kinds, TENSOR, "safetensors")
    raw = _torch_dict(path, shown)

    def bad_key(key: str, expected: str, got: str | None = None) -> SteerError:
        return _bad(shown, key, expected, excerpt(raw[key]) if got is None and key in raw else got)

    parts = (raw.get("layer"), raw.get("kind"), raw.get("tensor"), raw.get("meta", {}))
    return _checked(bad_key, *parts, kinds, "tensor", "torch")


def _bad(shown: str, key: str, expected: str, got: str | None) -> SteerError:
    return SteerError(
        f"vector.file: {shown} field {key!r}: expected {expected}, got {got or 'nothing'}. The file is damaged or was "
        f"not written by steer; recompute it. {HOW}"
    )


def _torch_dict(path: Path, shown: str) -> dict[str, Any]:
    """A legacy `.pt` file's dict, loaded without running code from it."""
    try:
        is_dir, is_file = path.is_dir(), path.is_file()
    except OSError as e:  # e.g. a name longer than the file system allows
        raise SteerError(f"vector.file: {shown} cannot be used as a file name ({e.strerror or e}).") from None
    if is_dir:
        raise SteerError(f"vector.file: {shown} is a folder, not a vector file. {HOW}")
    if not is_file:
        raise SteerError(f"vector.file: {shown} does not exist. {HOW}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        name = pickle_global(e)
        if name is not None:
            raise SteerError(
                f"vector.file: {shown} needs the Python object {excerpt(name)} to load, and unpickling it would "
                f"run code from the file; a steer vector file never does, so it is refused. {HOW}"
            ) from None
        raise SteerError(f"vector.file: {shown} is not a steer vector file ({type(e).__name__}). {HOW}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise SteerError(f"vector.file: {shown} is not a steer vector file (format {FORMAT!r}). {HOW}")
    return raw


def _checked(
    bad: Bad, layer: Any, kind: Any, tensor: Any, meta: Any, kinds: Sequence[str], key: str, container: str
) -> VectorData:
    """The checks both formats share, in the order a reader fixes them; `key` names the tensor's field."""
    if not isinstance(layer, str) or not layer.strip() or len(layer) > 200:
        raise bad("layer", "a hook name such as 'block2.res1.resadd_out'", None)
    if kind not in kinds:
        raise bad("kind", f"one of {', '.join(kinds)}", None)
    if not isinstance(tensor, torch.Tensor) or tensor.layout != torch.strided:
        raise bad(key, "a dense tensor", None)
    described = f"a {str(tensor.dtype).removeprefix('torch.')} tensor of shape {list(tensor.shape)}"
    if tensor.dtype != torch.float32:
        # Refused, not converted: float64 would silently lose precision, an integer tensor is no vector.
        raise bad(key, "a float32 tensor (steer writes float32)", described)
    if tensor.ndim == 0 or tensor.numel() == 0:
        raise bad(key, "one observation's activations, e.g. of shape [32, 16, 16]", described)
    if not bool(torch.isfinite(tensor).all()):
        count = int((~torch.isfinite(tensor)).sum())
        raise bad(key, "finite values", f"{described} with {count} NaN or infinite values")
    if not isinstance(meta, dict) or not all(isinstance(k, str) for k in meta):
        raise bad("meta", "a mapping of names to values", None)
    source = meta.get("source_seed")
    if source is not None and (isinstance(source, bool) or not isinstance(source, int)):
        raise bad("meta.source_seed", "a level seed", excerpt(source))
    return VectorData(layer.strip(), kind, tensor.detach(), dict(meta), container)
