"""`vector: {feature: {...}}` resolved for a run: the dictionary read and checked, the feature's vector per maze.

A plan is made before the run folder opens (so every refusal leaves nothing behind): the dictionary file is read
and refused for another checkpoint or another site than the spec's layer, the index against the dictionary's
size, positions against the site's map, and an `at:` square against the first target maze (a cheese-removed maze
has no cheese to place the feature on). Then `vector(maze)` gives the vector on a maze: the same tensor on every
maze for `positions`, `everywhere` or a fixed square, the maze's own square's position for `at: cheese` or
`at: top_right` (mapped by `steer.net.retarget.activation_position`, the one square-to-position rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from steer.errors import SteerError, excerpt
from steer.maze.layout import Maze, Square
from steer.net.dictionary_files import Dictionary, check_dictionary, read_dictionary
from steer.net.feature_vectors import KIND, feature_direction, placed
from steer.net.retarget import activation_position, spatial_grid
from steer.net.vectors import PairSpec, SteeringVector, compute_vector
from steer.run.session import Session, resolve_layer
from steer.run.spec_values import EVERYWHERE, FeatureSpec
from steer.run.specs import Spec

Position = tuple[int, int]
TOP_CHANNELS = 5


@dataclass(frozen=True)
class FeaturePlan:
    """A checked feature: its direction, the site's grid, and where on each maze it goes."""

    where: str  # "vector.feature", "vectors[1].feature"
    spec: FeatureSpec
    layer: str  # display name: the dictionary's site
    direction: torch.Tensor  # (channels,)
    grid: int
    meta: dict[str, Any]  # the dictionary and feature, as records and the vector's meta carry them

    @property
    def per_maze(self) -> bool:
        """The positions depend on the maze (`at: cheese`, `at: top_right`)."""
        return isinstance(self.spec.at, str) and self.spec.at != EVERYWHERE

    def positions(self, maze: Maze | None) -> tuple[Position, ...]:
        """The map positions the feature goes at on `maze` (None will do for `positions` and `everywhere`);
        SteerError when the maze lacks the named square."""
        at = self.spec.at
        if self.spec.positions is not None:
            return self.spec.positions
        if at == EVERYWHERE:
            return tuple((r, c) for r in range(self.grid) for c in range(self.grid))
        square: Square | None
        if at == "cheese":
            square = maze.cheese
        elif at == "top_right":
            square = maze.top_right_square
        else:
            assert isinstance(at, tuple)
            square = at
        assert maze is not None
        if square is None:
            raise SteerError(
                f"{self.where}.at: this maze has no {at} to place the feature on (target_edits remove it?); place "
                "the feature at a square the mazes have, or at positions: [[r, c]]."
            )
        try:
            return (activation_position(maze, square, self.grid),)
        except SteerError as e:
            raise SteerError(f"{self.where}.at: {e}") from None

    def vector(self, maze: Maze | None) -> SteeringVector:
        """The feature's vector on `maze`: scale x its direction at its positions, zero elsewhere."""
        positions = self.positions(maze)
        tensor = placed(self.direction, positions, self.grid, self.spec.scale)
        meta = {**self.meta, "positions": [list(p) for p in positions]}
        return SteeringVector(self.layer, tensor, KIND, meta)

    def describe(self) -> dict[str, Any]:
        at = self.spec.at
        return {
            **self.meta,
            "at": list(at) if isinstance(at, tuple) else at,
            "positions": [list(p) for p in self.spec.positions] if self.spec.positions is not None else None,
        }


def checked_dictionary(
    session: Session, path: Path, fw: str, layer: str | None = None, layer_field: str = "layer", droppable: bool = True
) -> tuple[Dictionary, str, int]:
    """A dictionary file read and refused (a site without a spatial map, another checkpoint, another site than
    `layer` when given; each message under the field `fw`), with its site and the site's grid. `droppable`: the
    layer can be left out (a vector's layer defaults to the dictionary's site), which the message then offers."""
    d = read_dictionary(path, f"{fw}.file")
    shown = f"{fw}.file ({excerpt(str(path), 160)})"
    site = resolve_layer(session.policy, str(d.meta.get("site")), shown)
    if layer is not None and resolve_layer(session.policy, layer, layer_field) != site:
        fix = f"Drop `{layer_field}`, set it to {site}," if droppable else f"Set `{layer_field}: {site}`"
        raise SteerError(
            f"{layer_field}: {layer!r} is not the site the dictionary {excerpt(str(path), 160)} was fitted at "
            f"({site!r}); a feature is a direction of that site only. {fix} or fit a dictionary at that layer with "
            "`steer features`."
        )
    channels, grid = spatial_grid(session.policy, site, shown)
    check_dictionary(d, path, site, session.checkpoint.sha256, channels, f"{fw}.file")
    return d, site, grid


def checked_feature(
    session: Session, path: Path, index: int, fw: str, layer: str | None, layer_field: str, droppable: bool = True
) -> tuple[Dictionary, str, int]:
    """`checked_dictionary`, and the feature `index` refused when out of the dictionary's range."""
    d, site, grid = checked_dictionary(session, path, fw, layer, layer_field, droppable)
    if not index < d.sae.d_sae:
        raise SteerError(
            f"{fw}.index: {index} is out of range; the dictionary {excerpt(str(path), 160)} has "
            f"{d.sae.d_sae} features, indexed 0 to {d.sae.d_sae - 1}."
        )
    return d, site, grid


def plan_feature(
    session: Session, spec: Spec, fspec: FeatureSpec, where: str, layer: str | None, layer_field: str
) -> FeaturePlan:
    """Read and check the dictionary and the feature's place; `layer`, when given, must be the dictionary's site."""
    fw = f"{where}.feature"
    path = fspec.file
    d, site, grid = checked_feature(session, path, fspec.index, fw, layer, layer_field)
    for i, (r, c) in enumerate(fspec.positions or ()):
        if not (r < grid and c < grid):
            raise SteerError(
                f"{fw}.positions[{i}]: [{r}, {c}] is outside the {grid}x{grid} map of {site}; rows and columns run "
                f"from 0 to {grid - 1} (row 0 at the top)."
            )
    direction = feature_direction(d.sae, fspec.index)
    meta = {
        "dictionary": str(path),
        "dictionary_sha256": d.sha256,
        "index": fspec.index,
        "scale": fspec.scale,
        "site": site,
        "checkpoint": session.checkpoint.name,
        "checkpoint_sha256": session.checkpoint.sha256,
        # the channels the direction is mostly made of (the decoder row is a unit vector: a weight is the cosine with
        # that channel's one-hot vector, e.g. channel 10's, which retargets)
        "top_channels": top_channels(direction),
    }
    plan = FeaturePlan(fw, fspec, site, direction, grid, meta)
    if fspec.at is not None and fspec.at != EVERYWHERE:
        plan.positions(first_maze(session, spec))  # a square the mazes lack is refused now, not as a skip per maze
    return plan


def top_channels(direction: torch.Tensor) -> list[list[int | float]]:
    """The TOP_CHANNELS channels a feature's decoder row weighs most, [channel, weight] by |weight|."""
    top = direction.abs().argsort(descending=True)[:TOP_CHANNELS].tolist()
    return [[c, float(direction[c])] for c in top]


def first_maze(session: Session, spec: Spec) -> Maze:
    """The first target maze: where a fixed square's position is found and a missing square refused (a mode's
    mazes share one world size, so a square's position is the same on all)."""
    return session.target_maze(spec, spec.seeds[0])


def cheese_cosine(session: Session, spec: Spec, seed: int, vec: SteeringVector) -> tuple[float | None, str | None]:
    """The cosine of a feature's vector with the cheese vector at its site on the same maze, or why there is none:
    how much the feature is the edit-based vector it may resemble."""
    try:
        cheese = compute_vector(session.policy, session.renderer, session.target_maze(spec, seed), PairSpec("cheese"),
                                vec.layer)  # fmt: skip
    except SteerError as e:
        return None, excerpt(str(e), 200)
    a, b = cheese.tensor.flatten().double(), vec.tensor.flatten().double()
    return float(torch.dot(a, b) / (a.norm() * b.norm())), None
