"""Tensor files others can read: named tensors and their metadata in the safetensors format.

One file holds several named tensors (a steering vector is one, `vector`; a sparse dictionary several) and a
header any safetensors reader returns as `metadata()`, a mapping of strings to strings. steer keeps there:

- `format`: what the file is and its version (`steer.vector/1`), checked first on reading;
- flat string fields a person or a script reads at a glance (a vector's `kind` and `layer`);
- `meta`: one JSON object with everything else (checkpoint sha256, mode, seeds, the pair, steer's version, ...).
  safetensors' metadata holds strings only; nested values (a pair's edits, a list of seeds, numbers) keep their
  JSON types in this one object rather than an encoding of steer's own, so `json.loads` gives them back exactly.

Writing is steer's own (the format is a length, a JSON header and the raw little-endian bytes): safetensors'
writer orders the metadata keys differently in every process, and a file must be the same bytes every run.
Reading is untrusted input: the header's length, its JSON, every field, the dtypes, the data's extent and its
values are checked before a tensor is used, each failure one `SteerError` naming the field, the value and the fix;
the bytes themselves are decoded by `safetensors` (no pickle, no code).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

from steer.errors import SteerError, excerpt
from steer.io import atomic_write_bytes

FORMAT_KEY = "format"
META_KEY = "meta"
SUFFIX = ".safetensors"
MAX_HEADER_BYTES = 1 << 20  # a vector's header is a few hundred bytes; 1 MiB holds a dictionary's thousands of names
MAX_FILE_BYTES = 1 << 30  # a vector is 32 KiB; a dictionary of 16,384 features at a 8,192-wide site is 512 MiB
MAX_DIMS = 8

# safetensors' dtype names and torch's; a dtype not here is refused on writing and named raw on reading.
DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
DTYPE_NAMES: dict[torch.dtype, str] = {v: k for k, v in DTYPES.items()}


def dtype_label(code: str) -> str:
    """`F32` as a reader of torch knows it: `float32`."""
    return str(DTYPES[code]).removeprefix("torch.") if code in DTYPES else code


@dataclass(frozen=True)
class TensorFile:
    """What one file holds: its format, named tensors, flat string fields and the `meta` JSON object."""

    format: str
    tensors: Mapping[str, torch.Tensor]
    fields: Mapping[str, str]  # the header's metadata besides `format` and `meta`
    meta: Mapping[str, Any]
    sha256: str  # of the bytes read: what a run records of the file, without reading it again


@dataclass(frozen=True)
class FileProblem:
    """How a reader names its file in messages: the spec field, what the file should be, how to make one."""

    where: str  # "vector.file"
    what: str  # "a steer vector file"
    how: str  # "Make one with `steer compute-vector SPEC.yaml`."


def is_tensor_file(path: Path) -> bool:
    """Whether `path` is to be read as safetensors: named so, or starting as one does (a length, then `{`)."""
    if Path(path).suffix == SUFFIX:
        return True
    try:
        with Path(path).open("rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] <= MAX_HEADER_BYTES


def tensor_file_bytes(
    format: str, tensors: Mapping[str, torch.Tensor], fields: Mapping[str, str], meta: Mapping[str, Any]
) -> bytes:
    """The file's bytes: the same tensors and metadata give the same bytes in every process."""
    if sys.byteorder != "little":  # safetensors stores little-endian; so does every machine steer runs on
        raise SteerError("Writing a tensor file needs a little-endian machine.")
    for key in (FORMAT_KEY, META_KEY):
        if key in fields:
            raise ValueError(f"{key!r} is written from its own argument, not from fields")
    if "__metadata__" in tensors:
        raise ValueError("'__metadata__' is the header's own key, not a tensor name")
    metadata = {FORMAT_KEY: format, **fields, META_KEY: json.dumps(meta, sort_keys=True, allow_nan=False)}
    cpu = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    chunks: list[bytes] = []
    offset = 0
    # Widest dtype first, then by name (safetensors' own order), so every tensor's data stays aligned.
    for name in sorted(cpu, key=lambda n: (-cpu[n].element_size(), n)):
        t = cpu[name]
        if t.dtype not in DTYPE_NAMES:
            raise ValueError(f"tensor {name!r}: dtype {t.dtype} has no safetensors name here")
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {
            "dtype": DTYPE_NAMES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # padded with spaces to a multiple of 8, as safetensors does
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write_tensor_file(
    path: Path,
    format: str,
    tensors: Mapping[str, torch.Tensor],
    fields: Mapping[str, str] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> None:
    """Write `tensors` with their metadata to `path` atomically (a reader never sees half a file)."""
    atomic_write_bytes(Path(path), tensor_file_bytes(format, tensors, fields or {}, meta or {}))


def _no_constants(name: str) -> Any:
    """NaN and Infinity are Python's extensions, not JSON: refused in a header, never written by steer."""
    raise ValueError(f"{name} is not JSON")


class _Reader:
    """One file's checks, each failure one message in the house's shape."""

    def __init__(self, path: Path, problem: FileProblem) -> None:
        self.path, self.problem = path, problem
        self.shown = excerpt(str(path), 160)

    def refuse(self, what_is_wrong: str) -> SteerError:
        p = self.problem
        return SteerError(f"{p.where}: {self.shown} {what_is_wrong}. {p.how}")

    def bad(self, key: str, expected: str, got: str) -> SteerError:
        return self.refuse(
            f"field {key!r}: expected {expected}, got {got}. The file is damaged or was not written by steer; "
            "recompute it"
        )

    def read_bytes(self, max_bytes: int) -> bytes:
        how = self.problem.how
        try:
            is_dir, is_file = self.path.is_dir(), self.path.is_file()
        except OSError as e:  # e.g. a name longer than the file system allows
            raise SteerError(
                f"{self.problem.where}: {self.shown} cannot be used as a file name ({e.strerror or e})."
            ) from None
        if is_dir:
            raise SteerError(f"{self.problem.where}: {self.shown} is a folder, not {self.problem.what}. {how}")
        if not is_file:
            raise SteerError(f"{self.problem.where}: {self.shown} does not exist. {how}")
        try:
            with self.path.open("rb") as f:
                data = f.read(max_bytes + 1)  # bounded: a huge file is never read in full
        except OSError as e:
            raise self.refuse(f"cannot be read ({e.strerror or e})") from None
        if len(data) > max_bytes:
            raise self.refuse(
                f"is larger than {max_bytes >> 20} MiB, more than {self.problem.what} holds; it is refused unread"
            )
        return data

    def header(self, data: bytes) -> dict[str, Any]:
        if len(data) < 8:
            raise self.refuse(f"is not {self.problem.what}: {len(data)} bytes, too short for a safetensors header")
        size = struct.unpack("<Q", data[:8])[0]
        if size > MAX_HEADER_BYTES:
            raise self.bad(
                "header", f"a JSON header of at most {MAX_HEADER_BYTES >> 20} MiB", f"a length of {size:,} bytes"
            )
        if 8 + size > len(data):
            raise self.bad("header", f"a header within the file's {len(data)} bytes", f"a length of {size:,} bytes")

        try:
            header = json.loads(data[8 : 8 + size].decode("utf-8"), parse_constant=_no_constants)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise self.refuse(f"is not {self.problem.what}: its header is not JSON ({excerpt(str(e), 80)})") from None
        if not isinstance(header, dict):
            raise self.bad("header", "a JSON object of tensors and __metadata__", excerpt(header))
        return header

    def metadata(self, header: dict[str, Any], format: str) -> tuple[dict[str, str], dict[str, Any]]:
        metadata = header.get("__metadata__")
        if not isinstance(metadata, dict):
            got = "missing" if metadata is None else excerpt(metadata)
            raise self.refuse(f"is not {self.problem.what} (format {format!r}; its __metadata__ is {got})")
        if metadata.get(FORMAT_KEY) != format:
            got = excerpt(metadata.get(FORMAT_KEY)) if FORMAT_KEY in metadata else "none"
            raise self.refuse(f"is not {self.problem.what} (format {format!r}, this file's is {got})")
        for key, value in metadata.items():
            if not isinstance(value, str):
                raise self.bad(f"__metadata__.{key[:40]}", "a string (safetensors metadata)", excerpt(value))
        fields = {k: v for k, v in metadata.items() if k not in (FORMAT_KEY, META_KEY)}
        try:
            meta = json.loads(metadata.get(META_KEY, "{}"), parse_constant=_no_constants)
        except (ValueError, RecursionError):
            raise self.bad(META_KEY, "a JSON object", excerpt(metadata.get(META_KEY))) from None
        if not isinstance(meta, dict):
            raise self.bad(META_KEY, "a JSON object", excerpt(meta))
        return fields, meta

    def entries(
        self, header: dict[str, Any], names: Sequence[str], dtypes: Mapping[str, str], optional: Sequence[str] = ()
    ) -> list[str]:
        """Each named tensor present (an `optional` one may be absent), of its dtype and a sane shape; no other
        tensors. Returns the names present."""
        entries = {k: v for k, v in header.items() if k != "__metadata__"}
        for name in names:
            if name not in entries:
                raise self.bad(name, f"a tensor named {name!r}", "nothing")
        extra = sorted(set(entries) - set(names) - set(optional))
        if extra:
            allowed = ", ".join([*names, *optional])
            raise self.bad(extra[0], f"only the tensors {allowed}", f"another tensor {excerpt(extra[0])}")
        names = [*names, *(n for n in optional if n in entries)]
        for name in names:
            entry = entries[name]
            shape = entry.get("shape") if isinstance(entry, dict) else None
            if not (
                isinstance(shape, list)
                and len(shape) <= MAX_DIMS
                and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
            ):
                raise self.bad(name, f"a tensor entry with a shape of at most {MAX_DIMS} sizes", excerpt(entry))
            code, dtype = entry.get("dtype"), dtypes[name]
            if code != dtype:
                described = f"a {dtype_label(code)[:20] if isinstance(code, str) else excerpt(code)} tensor"
                # Refused, not converted: float64 would silently lose precision, an integer tensor is no vector.
                raise self.bad(
                    name,
                    f"a {dtype_label(dtype)} tensor (steer writes {dtype_label(dtype)})",
                    f"{described} of shape {shape}",
                )
        return names

    def tensors(self, data: bytes) -> dict[str, torch.Tensor]:
        try:
            return safetensors.torch.load(data)
        except (safetensors.SafetensorError, ValueError, TypeError, RuntimeError) as e:
            raise self.refuse(
                f"is not {self.problem.what}: safetensors cannot read its tensors ({excerpt(str(e), 120)}). The file "
                "is damaged or was not written by steer; recompute it"
            ) from None


def read_tensor_file(
    path: str | os.PathLike[str],
    format: str,
    names: Sequence[str],
    problem: FileProblem,
    dtype: str | Mapping[str, str] = "F32",
    max_bytes: int = MAX_FILE_BYTES,
    optional: Sequence[str] = (),
) -> TensorFile:
    """The file at `path`, checked: its `format`, exactly the tensors `names` (and any of `optional`), each of
    `dtype` (one for all, or one per name), with finite values where floating. Any failure is one SteerError naming
    `problem.where`, the value and the fix."""
    reader = _Reader(Path(path), problem)
    data = reader.read_bytes(max_bytes)
    header = reader.header(data)
    fields, meta = reader.metadata(header, format)
    dtypes = {name: dtype for name in (*names, *optional)} if isinstance(dtype, str) else dtype
    present = reader.entries(header, names, dtypes, optional)
    tensors = reader.tensors(data)
    for name in present:
        t = tensors[name]
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            count = int((~torch.isfinite(t)).sum())
            described = f"a {dtype_label(dtypes[name])} tensor of shape {list(t.shape)}"
            raise reader.bad(name, "finite values", f"{described} with {count} NaN or infinite values")
    return TensorFile(format=format, tensors=tensors, fields=fields, meta=meta, sha256=hashlib.sha256(data).hexdigest())
