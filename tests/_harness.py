"""What several test modules share: the repository's root, the default steering layer, a run's metrics.json, and the
hostile inputs tests/test_trust.py, tests/test_io.py and tests/test_hostile.py build (a pickle that runs code,
a "billion laughs" YAML value and a vector file with any field wrong)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import torch

from steer.net.vector_files import FORMAT

ROOT = Path(__file__).resolve().parent.parent
LAYER = "block2.res1.resadd_out"  # the default steering layer


def metrics(folder: Path) -> dict:
    """A run folder's metrics.json."""
    return json.loads((folder / "metrics.json").read_text())


class Evil:
    """Unpickling this creates the file `marker`: it stands for any code a hostile checkpoint or vector file could
    run."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.marker, "w"))


def alias_bomb(key: str, levels: int = 9) -> str:
    """YAML setting `key` to a "billion laughs": 9 lists of 9 aliases each, the last standing for 9**9 zeros."""
    names = "abcdefghijklmnopqrstuvwxyz"[:levels]
    items = ["&a [0, 0, 0, 0, 0, 0, 0, 0, 0]"]
    items += [f"&{cur} [" + ", ".join([f"*{prev}"] * 9) + "]" for prev, cur in itertools.pairwise(names)]
    return f"{key}:\n" + "".join(f"  - {item}\n" for item in items)


MISSING = object()  # a field save_vector_file leaves out


def save_vector_file(path: Path, **fields: Any) -> Path:
    """A steer vector file at `path`: a zero cheese vector at LAYER, with `fields` put in (MISSING: left out)."""
    data: dict[str, Any] = {
        "format": FORMAT,
        "layer": LAYER,
        "kind": "cheese",
        "tensor": torch.zeros(32, 16, 16),
        "meta": {"source_seed": 0},
    }
    for key, value in fields.items():
        if value is MISSING:
            del data[key]
        else:
            data[key] = value
    torch.save(data, path)
    return path
