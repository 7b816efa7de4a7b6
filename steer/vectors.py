"""Steering vectors: activation differences between paired maze observations, saved with their provenance.

A pair is two edited copies of one level, rendered with the mouse on the same square (its start square
unless told otherwise). The vector is activations(a) - activations(b) at one layer:
- `cheese`:    a = the level as generated, b = the same level with the cheese removed
- `top_right`: a = the level with an L-path opened to the world's top-right corner, b = the level
- `custom`:    a and b are any two edit lists applied to the level
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from steer import __version__
from steer.env import MazeRenderer
from steer.errors import SteerError
from steer.hooks import patching
from steer.io import atomic_write_bytes
from steer.maze import Maze, Square
from steer.policy import ImpalaPolicy, display_name, obs_to_tensor

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
    effect_metric: str  # a name in steer.metrics.METRICS: what transfer matrices and layer charts show


KINDS: dict[str, VectorKind] = {
    k.name: k
    for k in (
        VectorKind("cheese", "the level − the level without cheese", (), (("remove_cheese", None),), "p_cheese_ds"),
        VectorKind("top_right", "the level with a path to the top-right corner − the level",
                   (("top_right_path", None),), (), "p_toward_top_right"),
        VectorKind("custom", "edits `a` − edits `b`", (), (), "mean_tv"),
    )
}
VECTOR_KINDS = tuple(KINDS)
FORMAT = "steer.vector/1"


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
        edits_a, edits_b = self.edits()
        if self.kind == "cheese" and level.cheese is None:
            raise SteerError("A cheese vector needs a level with cheese; this level has none.")
        mouse = self.mouse or level.start_square
        return (apply_edits(level, edits_a).with_mouse(mouse), apply_edits(level, edits_b).with_mouse(mouse))

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

    def save(self, path: Path) -> None:
        buf = io.BytesIO()
        torch.save(
            {"format": FORMAT, "layer": self.layer, "kind": self.kind, "tensor": self.tensor.cpu(),
             "meta": self.meta},
            buf,
        )
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SteeringVector:
        path = Path(path)
        if not path.is_file():
            raise SteerError(
                f"vector.file: {str(path)!r} does not exist. Make one with `steer compute-vector SPEC.yaml`."
            )
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise SteerError(
                f"vector.file: {str(path)!r} is not a steer vector file ({type(e).__name__}). Make one with "
                "`steer compute-vector SPEC.yaml`."
            ) from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("tensor"), torch.Tensor):
            raise SteerError(
                f"vector.file: {str(path)!r} is not a steer vector file (format {FORMAT!r}). Make one with "
                "`steer compute-vector SPEC.yaml`."
            )
        return cls(layer=raw["layer"], tensor=raw["tensor"], kind=raw["kind"], meta=dict(raw.get("meta", {})))


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
) -> SteeringVector:
    a, b = pair.build(level)
    acts = activations(policy, renderer, [a, b], layer)
    info = {
        "pair": pair.describe(),
        "mouse": list(a.mouse),
        "distribution_mode": renderer.mode,
        "steer_version": __version__,
        **(meta or {}),
    }
    name = display_name(policy.resolve(layer))
    return SteeringVector(layer=name, tensor=acts[0] - acts[1], kind=pair.kind, meta=info)
