"""What an effect is measured against: a control (a norm-matched random vector) and a reference (the input
edit itself).

- random: per maze, a Gaussian vector with the same L2 norm as the vector applied, drawn from a seed made
  of the spec's `control_seed` and the maze seed (recorded), added at the same layer with the same
  coefficient. An effect the random vector also has is not the vector's. A dictionary feature's control is a
  random feature instead (a random channel direction at the feature's positions, the same norm).
- input_edit: the policy on the edited maze itself (cheese removed when a cheese vector is subtracted, the
  path to the top-right opened when a top-right vector is added: the edit of the pair that the coefficient's
  sign moves toward), at the target's squares and measured with the target's geometry (its cheese, its
  decision square). `reproduced` = 1 − TV(patched, edited) / TV(original, edited): the fraction of the
  edit's effect the vector reproduces (1: the patched policy is the edited maze's policy; 0: no closer
  than the original; negative: further away).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from steer.analysis.metrics import effect_metrics, mean_tv
from steer.maze.env import MazeRenderer
from steer.maze.layout import Maze
from steer.net.feature_vectors import KIND as FEATURE
from steer.net.feature_vectors import random_direction_like
from steer.net.policy import ImpalaPolicy, obs_to_tensor
from steer.net.vectors import Edit, PairSpec, SteeringVector, apply_edits, edits_to_json
from steer.net.vfield import FieldInputs, VectorField, vector_field


def random_seed(control_seed: int, maze_seed: int) -> int:
    """The seed of one maze's random control: the same spec and maze always draw the same vector."""
    return control_seed * 1_000_003 + maze_seed


def random_like(vector: SteeringVector, seed: int) -> SteeringVector:
    """A Gaussian vector with `vector`'s shape, layer and L2 norm; for a dictionary feature, a random feature: a
    random unit direction in channel space at the feature's positions, with its norm (steer.net.feature_vectors)."""
    if vector.kind == FEATURE:
        positions = [tuple(p) for p in vector.meta["positions"]]
        tensor = random_direction_like(vector.tensor, positions, seed)
        meta = {"like": FEATURE, "seed": seed, "norm": float(tensor.norm()), "positions": vector.meta["positions"]}
        return SteeringVector(vector.layer, tensor.to(vector.tensor.device), "random_feature", meta)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(vector.tensor.shape, generator=gen, dtype=torch.float32)
    noise = noise * (vector.tensor.float().norm() / noise.norm())
    meta = {"like": vector.kind, "seed": seed, "norm": float(noise.norm())}
    return SteeringVector(vector.layer, noise.to(vector.tensor.device), "random", meta)


def reference_edits(pair: PairSpec | None, coeff: float) -> tuple[Edit, ...]:
    """The input edit a vector of `pair` at `coeff` stands for: b's edits when subtracting, a's when adding."""
    if pair is None:
        return ()
    edits_a, edits_b = pair.edits()
    return edits_b if coeff < 0 else edits_a


@dataclass(frozen=True)
class EditedField:
    """The edited maze's policy at the squares both mazes have, beside the original and patched fields there."""

    edits: tuple[Edit, ...]
    maze: Maze  # the edited maze, for drawing
    original: VectorField
    patched: VectorField
    edited: VectorField


def edited_field(
    policy: ImpalaPolicy,
    renderer: MazeRenderer,
    inputs: FieldInputs,
    original: VectorField,
    patched: VectorField,
    edits: tuple[Edit, ...],
    batch_size: int,
) -> EditedField | None:
    """The policy on the edited target maze; None when the coefficient's sign has no edit (e.g. +cheese)."""
    if not edits:
        return None
    target: Maze = inputs.maze
    edited = apply_edits(target, edits)
    keep = [i for i, sq in enumerate(inputs.positions) if edited.is_open(sq)]
    positions = tuple(inputs.positions[i] for i in keep)
    frames = renderer.observe_positions(edited, positions)
    device = next(policy.parameters()).device
    field = vector_field(policy, FieldInputs(edited, positions, obs_to_tensor(frames, device)), batch_size=batch_size)
    # The edited maze's probabilities, read with the target's geometry (its cheese, decision square, walls).
    return EditedField(
        edits,
        edited,
        VectorField(target, positions, original.probs[keep]),
        VectorField(target, positions, patched.probs[keep]),
        VectorField(target, positions, field.probs),
    )


def reference_metrics(ref: EditedField) -> dict[str, Any]:
    """The edit's own effect (every metric, edited vs original) and how much of it the vector reproduces."""
    edit_tv = mean_tv(ref.original, ref.edited)
    left_tv = mean_tv(ref.patched, ref.edited)
    reproduced = None if not edit_tv or left_tv is None else 1.0 - left_tv / edit_tv
    return {
        "edits": edits_to_json(ref.edits),
        "squares": len(ref.original.positions),
        **effect_metrics(ref.original, ref.edited),
        "tv_patched_to_edited": left_tv,
        "reproduced": reproduced,
    }
