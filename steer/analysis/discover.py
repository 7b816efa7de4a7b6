"""`steer discover`'s measurements, which both of its stages use: what a candidate is, a family's member on a maze,
the pair vectors, the patched passes by key, the effects measured on one maze, and the summaries and records its
intervals are reported as.

A candidate is a family of paired maze edits (`steer.maze.families`) at one layer and coefficient, applied to
mazes with the cheese kept or removed. On each maze it is each maze's own vector (activations(a) −
activations(b) of the family's pair on that maze). Its effects are exact (the chain of `steer.analysis.chain`):

- `p_reach_cheese` and `mean_steps` (the registry's behaviour metrics), `p_visit_<region>`, P(the episode
  visits a square of each corner region or the centre; `steer.maze.families.regions`), and `time_in_<region>`,
  the share of the episode's expected steps spent in the region (P(visit) saturates where the unpatched agent
  goes there anyway, as it does to the top-right once the cheese is removed); patched − original;
- `mean_tv` (the registry's), and the crumble signals `wall_mass` and `entropy` (the registry's field metrics, of
  the patched policy in the maze's own facing), patched − original.

The search's analysis is one module per job, each named `discover_<job>` after this one (the name repeats along
the layers: docs/layout.md): `discover_screen` (the screen: candidates measured on one maze, their scores,
intervals and the choice), `discover_confirm` (the confirm stage: the claims measured on one maze and their
verdicts on two samples) and `discover_answer` (what the search can say of each family, and its answer). This
module holds what more than one of them reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from steer.analysis.chain import Behaviour, behaviour
from steer.analysis.controls import random_like
from steer.analysis.metrics import BEHAVIOUR_METRICS, FIELD_METRICS
from steer.analysis.stats import bca_intervals
from steer.errors import SteerError
from steer.maze.env import MazeRenderer
from steer.maze.families import FAMILIES, REGIONS, Empty, Pair, other_seed
from steer.maze.layout import Maze
from steer.net.feature_vectors import KIND as FEATURE_KIND
from steer.net.policy import ImpalaPolicy, obs_to_tensor
from steer.net.vectors import SteeringVector
from steer.net.vfield import FacingField, FieldInputs, Patch, VectorField, facing_fields

K = TypeVar("K")
Position = tuple[int, int]

PROBABILITIES = ("p_reach_cheese", *(f"p_visit_{r}" for r in REGIONS), *(f"time_in_{r}" for r in REGIONS))
EFFECTS = (*PROBABILITIES, "mean_steps", "mean_tv", "wall_mass", "entropy")
LABELS = {
    "p_reach_cheese": "P(reach the cheese)",
    **{f"p_visit_{r}": f"P(visit the {r.replace('_', '-')} region)" for r in REGIONS},
    **{f"time_in_{r}": f"share of the episode in the {r.replace('_', '-')} region" for r in REGIONS},
    "mean_steps": "expected episode length",
    "mean_tv": "mean TV from original",
    "wall_mass": "P(move into a wall)",
    "entropy": "action entropy (nats)",
}
# The families whose pair is a known vector's own (the cheese vector's, the top-right vector's): found, they are
# rediscoveries, whatever the layer or coefficient.
KNOWN_FAMILIES = ("cheese_at:own", "path:top_right")


@dataclass(frozen=True, order=True)
class Candidate:
    family: str
    layer: str
    coeff: float
    target: str = "keep"

    @property
    def key(self) -> str:
        return f"{self.family} @ {self.layer} x {self.coeff:g}" + (
            " (cheese removed)" if self.target == "remove" else ""
        )

    def to_json(self) -> dict[str, Any]:
        return {"family": self.family, "layer": self.layer, "coeff": self.coeff, "target": self.target}


@dataclass(frozen=True)
class Settings:
    """What the verdicts are judged by, stated in the spec before the run."""

    margin: float = 0.05  # the effect must exceed the random control's by this much (probability)
    precision: float = 0.1  # the largest 95% half-width that can decide a candidate
    crumble_wall: float = 0.1  # mean rise of P(move into a wall) that counts as crumbling
    crumble_entropy: float = 0.5  # mean rise of the action entropy (nats) that counts as crumbling
    alpha: float = 0.05  # family-wise level of the Holm adjustment over candidates


@dataclass(frozen=True)
class Measuring:
    """What measuring candidates on one maze needs: the network and the renderer, the device of its inputs, the
    batch size of the patched passes, and the seed of the random controls (`steer.analysis.controls`)."""

    policy: ImpalaPolicy
    renderer: MazeRenderer
    device: str
    batch_size: int
    control_seed: int


# -- a family's member on one maze ----------------------------------------------------------------------


def level_for(renderer: MazeRenderer, seed: int, target: str) -> Maze:
    """Seed's level as candidates with the cheese kept (`target` keep) or removed (remove) are applied to."""
    level = renderer.level(seed)
    return level if target == "keep" else level.without_cheese()


def family_pairs(renderer: MazeRenderer, seed: int, target: str, families: Sequence[str]) -> dict[str, Pair | Empty]:
    """Each family's member on seed's level for candidates with the cheese kept or removed (`target`), applied to
    `level_for(renderer, seed, target)`; a family the maze refuses (a wall on the mouse) has none, with why."""
    level = renderer.level(seed)

    def other() -> tuple[int, Maze]:
        s = other_seed(seed)
        return s, renderer.level(s)

    out: dict[str, Pair | Empty] = {}
    for name in families:
        try:
            out[name] = FAMILIES[name].build_for(level, target, other)
        except SteerError as e:  # an edit the maze refuses (a wall on the mouse): no member here
            out[name] = Empty(str(e))
    return out


# -- vectors --------------------------------------------------------------------------------------------


def pair_vectors(
    policy: ImpalaPolicy, renderer: MazeRenderer, pairs: Sequence[Pair], layers: Sequence[str]
) -> list[dict[str, torch.Tensor]]:
    """activations(a) − activations(b) of each pair at each layer, one forward pass for all (a zero vector where the
    pair's two mazes are the same: the null must be measured, not refused)."""
    if not pairs:
        return []
    sites = [policy.resolve(layer) for layer in layers]
    deepest = max(sites, key=policy.site_index)
    states = [m.to_bytes() for p in pairs for m in (p.a, p.b)]
    obs = obs_to_tensor(renderer.observe_many(states), next(policy.parameters()).device)
    with torch.inference_mode():
        acts = policy.run({"input": obs}, stop=deepest, keep=frozenset(sites))
    return [
        {layer: (acts[site][2 * i] - acts[site][2 * i + 1]).clone() for layer, site in zip(layers, sites, strict=True)}
        for i in range(len(pairs))
    ]


def control_vector(layer: str, v: torch.Tensor, noise_seed: int, positions: Sequence[Position] | None) -> torch.Tensor:
    """A vector's norm-matched random control: a Gaussian over the whole map for a maze family's vector
    (`positions` None); a random feature (a random channel direction at `positions`, the same norm) for a
    dictionary feature's (`steer.analysis.discover_features`)."""
    if positions is None:
        return random_like(SteeringVector(layer, v, "custom"), noise_seed).tensor
    meta = {"positions": [list(p) for p in positions]}
    return random_like(SteeringVector(layer, v, FEATURE_KIND, meta), noise_seed).tensor


# A screen pass's key: (family, coefficient, kind), kind one of SCREEN_KINDS
ScreenKey = tuple[str, float, str]
SCREEN_KINDS = ("effects", "controls", "floors")  # the candidate's own vector, its random control, the floor


def screen_passes(
    name: str, layer: str, v: torch.Tensor, control: torch.Tensor, other: torch.Tensor | None, coeffs: Sequence[float]
) -> list[tuple[ScreenKey, list[Patch]]]:
    """One family's screen passes at `layer`, by key: its vector `v` beside its `control` and, where the
    unrelated-maze null has a member here (`other`), that maze's vector scaled to v's norm (the floor), at every
    coefficient."""
    beside = {"effects": v, "controls": control}
    if other is not None:
        beside["floors"] = other * (float(v.norm()) / max(float(other.norm()), 1e-12))
    return [((name, c, kind), [(layer, vec, c)]) for c in coeffs for kind, vec in beside.items()]


def fields_by_key(
    policy: ImpalaPolicy, inputs: FieldInputs, patched: Sequence[tuple[K, Sequence[Patch]]], batch_size: int
) -> tuple[FacingField, dict[K, FacingField]]:
    """The unpatched field and, by key, the field under each patch set: one batched pass over all of them, in the
    order given (a key given twice keeps its last field, in its first place)."""
    original, *fields = facing_fields(policy, inputs, [(), *(patches for _, patches in patched)], batch_size)
    return original, {key: f for (key, _), f in zip(patched, fields, strict=True)}


# -- effects on one maze --------------------------------------------------------------------------------


def facing_slice(field: FacingField) -> VectorField:
    """The policy in the maze's own facing (0 for a level as generated), as the registry's field metrics read it."""
    return VectorField(field.maze, field.positions, field.probs[field.maze.facing])


def behaviour_numbers(b: Behaviour, squares: Mapping[str, Sequence[Any]]) -> dict[str, float | None]:
    """The exact episode numbers of one policy: P(reach the cheese), P(visit) each region (`b.p_regions`) and the
    share of the episode's expected steps spent in it (its squares' expected visits over the expected length)."""
    steps = BEHAVIOUR_METRICS["mean_steps"].unpatched(b)
    return {
        "p_reach_cheese": BEHAVIOUR_METRICS["p_reach_cheese"].unpatched(b) if b.cheese is not None else None,
        **{f"p_visit_{r}": b.p_regions.get(r) for r in REGIONS},
        **{
            f"time_in_{r}": float(sum(b.occupancy[sq] for sq in squares[r]) / steps) if steps else None for r in REGIONS
        },
        "mean_steps": steps,
    }


def field_numbers(field: VectorField) -> dict[str, float | None]:
    return {name: FIELD_METRICS[name].unpatched(field) for name in ("wall_mass", "entropy")}


def minus_or_none(after: float | None, before: float | None) -> float | None:
    """after − before, or None when either is."""
    return None if after is None or before is None else after - before


def changes(
    before: Mapping[str, float | None],
    after: Mapping[str, float | None],
    original: VectorField | None = None,
    patched: VectorField | None = None,
) -> dict[str, float | None]:
    """Patched − original of every effect (the numbers of `behaviour_numbers` and `field_numbers`), and mean TV."""
    out = {name: minus_or_none(after.get(name), before.get(name)) for name in EFFECTS if name != "mean_tv"}
    if original is not None and patched is not None:
        out["mean_tv"] = FIELD_METRICS["mean_tv"].compute(original, patched)
    return {name: out.get(name) for name in EFFECTS}


def crumble_numbers(before: VectorField, after: VectorField) -> dict[str, float | None]:
    b, a = field_numbers(before), field_numbers(after)
    return {name: minus_or_none(a[name], b[name]) for name in b}


def exact_numbers(field: FacingField, squares: Mapping[str, Sequence[Any]]) -> dict[str, float | None]:
    """One policy's numbers on one maze: its exact episode numbers (`behaviour_numbers`, the regions' `squares`)
    and its field numbers in the maze's own facing (`field_numbers`)."""
    return {**behaviour_numbers(behaviour(field, regions=squares), squares), **field_numbers(facing_slice(field))}


def screen_records(
    out: dict[str, dict[str, Any]],
    fields: Mapping[ScreenKey, FacingField],
    base: FacingField,
    before: Mapping[str, float | None],
    regs: Mapping[str, Sequence[Any]],
    layer: str,
    target: str,
) -> None:
    """Each screen pass's rounded changes from the unpatched field `base` (its exact numbers `before`, measured
    once per maze) into `out[kind][candidate key]`."""
    for (name, c, kind), f in fields.items():
        numbers = changes(before, exact_numbers(f, regs), facing_slice(base), facing_slice(f))
        out[kind][Candidate(name, layer, c, target).key] = rounded(numbers)


def rounded(numbers: Mapping[str, float | None]) -> dict[str, float | None]:
    """Each number to 6 decimals, as a cell stores it."""
    return {k: None if v is None else round(v, 6) for k, v in numbers.items()}


def sign_of(row: Mapping[str, Any]) -> int:
    """A row's claimed direction as a sign: +1 for a claim that its effect goes up, −1 down."""
    return 1 if row["direction"] == "up" else -1


# -- summaries over mazes -------------------------------------------------------------------------------


def mean_or_none(values: Sequence[float | None]) -> float | None:
    """The mean of the values that are not None; None when none is."""
    x = [v for v in values if v is not None]
    return float(np.mean(x)) if x else None


def interval_summary(values: np.ndarray) -> dict[str, Any]:
    mean_ci, _, method = bca_intervals(values)
    return {
        "n": len(values),
        "mean": float(values.mean()) if len(values) else None,
        "mean_ci": mean_ci,
        "method": method,
    }


def record(summary: Mapping[str, Any], sign: int = 1) -> dict[str, Any]:
    """A {value, ci} record (what a batch's `reported` claim reads) of the change itself: `summary` holds the
    effect in the claimed direction (sign × change), so the sign turns it back."""
    mean, ci = summary["mean"], summary["mean_ci"]
    return {
        "value": None if mean is None else sign * mean,
        "ci": None if ci is None else sorted([sign * ci[0], sign * ci[1]]),
        "n": summary["n"],
        "interval": "95% BCa bootstrap",
    }


__all__ = [
    "EFFECTS",
    "KNOWN_FAMILIES",
    "LABELS",
    "PROBABILITIES",
    "SCREEN_KINDS",
    "Candidate",
    "Measuring",
    "ScreenKey",
    "Settings",
    "behaviour_numbers",
    "changes",
    "control_vector",
    "crumble_numbers",
    "exact_numbers",
    "facing_slice",
    "family_pairs",
    "field_numbers",
    "fields_by_key",
    "interval_summary",
    "level_for",
    "mean_or_none",
    "minus_or_none",
    "pair_vectors",
    "record",
    "rounded",
    "screen_passes",
    "screen_records",
    "sign_of",
]
