"""Steering vectors: activation differences between paired maze observations, saved with their provenance.

A pair is two edited copies of one level. Both start with the mouse on the pair's square (`mouse`, by
default the level's start square); then each side's edits apply, so a `{mouse: [r, c]}` edit moves the mouse
in that observation only. The vector is activations(a) - activations(b) at one layer:
- `cheese`:    a = the level as generated, b = the same level with the cheese removed
- `top_right`: a = the level with an L-path opened to the world's top-right corner, b = the level
- `custom`:    a and b are any two edit lists applied to the level (they may differ only by the mouse)
A pair whose two observations are identical is an error: its vector would be zero.

Vector files (`vector_files.py`: safetensors, and the legacy `.pt`) are untrusted input: every field is checked
(format, layer, kind, a finite float32 tensor, meta), each failure one message naming `vector.file`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from steer.errors import SteerError, excerpt
from steer.io import sha256_file
from steer.maze.env import MazeRenderer
from steer.maze.layout import Maze, Square
from steer.net.hooks import patching
from steer.net.policy import ImpalaPolicy, display_name, obs_to_tensor
from steer.net.vector_files import FORMAT, read_vector, write_vector
from steer.version import __version__

Edit = tuple[str, Square | None]  # ("remove_cheese", None), ("cheese", (r, c)), ("mouse", (r, c)), ...
EDIT_OPS: dict[str, bool] = {  # op -> takes a square
    "remove_cheese": False,
    "top_right_path": False,
    "cheese": True,
    "mouse": True,
    "wall": True,
    "open": True,
}


@dataclass(frozen=True)
class VectorKind:
    """A kind of vector: the edits that make its two observations, and the metric that shows its effect."""

    name: str
    doc: str
    a: tuple[Edit, ...]  # edits for the first observation (custom: the spec's `a`)
    b: tuple[Edit, ...]
    effect_metric: str  # a name in steer.analysis.metrics.METRICS: what transfer matrices and layer charts show


KINDS: dict[str, VectorKind] = {
    k.name: k
    for k in (
        VectorKind("cheese", "the level − the level without cheese", (), (("remove_cheese", None),), "p_cheese_ds"),
        VectorKind(
            "top_right",
            "the level with a path to the top-right corner − the level",
            (("top_right_path", None),),
            (),
            "p_top_right_ds",
        ),
        VectorKind("custom", "edits `a` − edits `b`", (), (), "mean_tv"),
    )
}
VECTOR_KINDS = tuple(KINDS)


def apply_edits(maze: Maze, edits: Sequence[Edit]) -> Maze:
    for op, square in edits:
        if op == "remove_cheese":
            maze = maze.without_cheese()
        elif op == "top_right_path":
            maze = maze.with_top_right_path()
        elif op == "cheese":
            maze = maze.with_cheese(square)
        elif op == "mouse":
            maze = maze.with_mouse(square)
        elif op == "wall":
            maze = maze.with_wall(square)
        elif op == "open":
            maze = maze.with_open(square)
        else:
            raise SteerError(f"Unknown maze edit {op!r}; valid edits: {', '.join(EDIT_OPS)}.")
    return maze


def edits_to_json(edits: Sequence[Edit]) -> list[Any]:
    return [op if sq is None else {op: list(sq)} for op, sq in edits]


@dataclass(frozen=True)
class PairSpec:
    """How to build the two observations of a vector from one level."""

    kind: str
    a: tuple[Edit, ...] = ()
    b: tuple[Edit, ...] = ()
    mouse: Square | None = None  # None: the level's start square

    def edits(self) -> tuple[tuple[Edit, ...], tuple[Edit, ...]]:
        if self.kind == "custom":
            return self.a, self.b
        kind = KINDS[self.kind]
        return kind.a, kind.b

    def build(self, level: Maze) -> tuple[Maze, Maze]:
        """The two observations: the mouse put on the pair's square first, then each side's edits.

        Placing the mouse before the edits (not after, which undid them) is what lets a `{mouse: [r, c]}`
        edit in `a` or `b` move the mouse in that observation.
        """
        edits_a, edits_b = self.edits()
        if self.kind == "cheese" and level.cheese is None:
            raise SteerError("A cheese vector needs a level with cheese; this level has none.")
        base = level.with_mouse(self.mouse or level.start_square)
        return apply_edits(base, edits_a), apply_edits(base, edits_b)

    def describe(self) -> dict[str, Any]:
        edits_a, edits_b = self.edits()
        return {"kind": self.kind, "a": edits_to_json(edits_a), "b": edits_to_json(edits_b)}


@dataclass
class SteeringVector:
    """An activation-space direction at one layer, plus where it came from."""

    layer: str
    tensor: torch.Tensor  # one observation's activation shape, e.g. (32, 16, 16) at block2
    kind: str
    meta: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def apply(self, policy: ImpalaPolicy, coeff: float = 1.0) -> Iterator[None]:
        """Add `coeff * self` at `self.layer` for every forward pass inside the block."""
        with patching(policy, [(self.layer, self.tensor, coeff)]):
            yield

    def save(self, path: str | os.PathLike[str]) -> None:
        """safetensors readable without steer (`vector_files.py`); a `.pt` path gets torch's legacy format."""
        write_vector(Path(path), self.layer, self.kind, self.tensor, self.meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SteeringVector:
        """A vector file of either format, every field checked: a bad file is one SteerError, never a crash."""
        data = read_vector(path, VECTOR_KINDS)
        return cls(layer=data.layer, tensor=data.tensor, kind=data.kind, meta=data.meta)


# Meta keys in the order `steer vector info` shows them, with their labels; any other key follows, sorted.
INFO_KEYS = {
    "checkpoint": "checkpoint",
    "checkpoint_sha256": "checkpoint sha256",
    "distribution_mode": "mode",
    "source_seed": "source seed",
    "source_seeds": "source seeds (mean)",
    "skipped_source_seeds": "skipped source seeds",
    "skipped_reasons": "why skipped",
    "pair": "pair",
    "mouse": "mouse square",
    "target_edits": "target edits",
    "coeff": "coefficient",
    "steer_version": "steer version",
}


@dataclass(frozen=True)
class VectorInfo:
    """What `steer vector info` prints about a vector file: the file, the vector, and its metadata."""

    path: str
    container: str  # "safetensors" | "torch" (the legacy .pt)
    size_bytes: int
    sha256: str
    kind: str
    layer: str
    shape: tuple[int, ...]
    dtype: str
    norm: float
    max_abs: float
    meta: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": FORMAT,
            "container": self.container,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "kind": self.kind,
            "layer": self.layer,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "norm": self.norm,
            "max_abs": self.max_abs,
            "meta": self.meta,
        }

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) lines for people; values from the file are cut to a readable length."""
        container = "safetensors" if self.container == "safetensors" else "torch .pt (legacy; steer writes safetensors)"
        rows = [
            ("file", _cut(self.path, 160)),
            ("format", f"{container}, {FORMAT}, {self.size_bytes:,} bytes"),
            ("file sha256", self.sha256),
            ("kind", f"{self.kind}: {KINDS[self.kind].doc}"),
            ("layer", self.layer),
            ("tensor", f"{self.dtype} {list(self.shape)}, norm {self.norm:.6g}, max |x| {self.max_abs:.6g}"),
        ]
        # A key without a value (a mean's source_seed) says nothing to a reader; --json keeps it.
        present = {k for k, v in self.meta.items() if v is not None}
        keys = [k for k in INFO_KEYS if k in present] + sorted(k for k in present if k not in INFO_KEYS)
        for key in keys:
            value = self.meta[key]
            shown = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
            rows.append((_cut(INFO_KEYS.get(key, key), 40), _cut(shown, 200)))
        return rows


def _cut(text: str, limit: int) -> str:
    """A file's text at a readable length (a meta value may be a megabyte)."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def vector_info(path: str | os.PathLike[str]) -> VectorInfo:
    """A vector file described (either format), after the checks `SteeringVector.load` makes."""
    data = read_vector(path, VECTOR_KINDS)
    t = data.tensor
    return VectorInfo(
        path=str(path),
        container=data.container,
        size_bytes=Path(path).stat().st_size,
        sha256=sha256_file(Path(path)),
        kind=data.kind,
        layer=data.layer,
        shape=tuple(t.shape),
        dtype=str(t.dtype).removeprefix("torch."),
        norm=float(t.norm()),
        max_abs=float(t.abs().max()),
        meta=data.meta,
    )


def activations(policy: ImpalaPolicy, renderer: MazeRenderer, mazes: Sequence[Maze], layer: str) -> torch.Tensor:
    """Activations at `layer` for the observations of `mazes`, batch first."""
    site = policy.resolve(layer)
    device = next(policy.parameters()).device
    obs = obs_to_tensor(renderer.observe_many([m.to_bytes() for m in mazes]), device)
    with torch.no_grad():
        return policy.run({"input": obs}, stop=site, keep=frozenset({site}))[site]


def compute_vector(
    policy: ImpalaPolicy,
    renderer: MazeRenderer,
    level: Maze,
    pair: PairSpec,
    layer: str,
    meta: dict[str, Any] | None = None,
    where: str = "vector",
) -> SteeringVector:
    """activations(a) - activations(b) for `pair` on `level`; identical observations are a SteerError at `where`."""
    a, b = pair.build(level)
    edits_a, edits_b = pair.edits()

    def zero() -> SteerError:
        return SteerError(
            f"{where}: the two observations of this {pair.kind} pair are identical on this level (a: "
            f"{excerpt(edits_to_json(edits_a))}, b: {excerpt(edits_to_json(edits_b))}); the vector would be zero. "
            "Give edits that change this level, e.g. a: [{cheese: [r, c]}] or a: [{mouse: [r, c]}] with b: []."
        )

    if a.to_bytes() == b.to_bytes():  # before rendering: nothing to compute
        raise zero()
    acts = activations(policy, renderer, [a, b], layer)
    diff = acts[0] - acts[1]
    if not bool(diff.any()):  # different states that render the same observation
        raise zero()
    base = pair.mouse or level.start_square
    info = {
        "pair": pair.describe(),
        "mouse": list(base),
        **({"mouse_a": list(a.mouse)} if a.mouse != base else {}),
        **({"mouse_b": list(b.mouse)} if b.mouse != base else {}),
        "distribution_mode": renderer.mode,
        "steer_version": __version__,
        **(meta or {}),
    }
    name = display_name(policy.resolve(layer))
    return SteeringVector(layer=name, tensor=diff, kind=pair.kind, meta=info)
