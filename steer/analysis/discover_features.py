"""`steer discover`'s dictionary features: each feature of a dictionary (`steer features`) searched as a family
`feature:<index>`, beside the families of paired maze edits (`steer.maze.families`).

A feature family is another kind of candidate. A maze family's vector on a maze is the activation difference of
its pair there; a feature's is fixed: its decoder row (a unit direction in the site's channel space) placed at its
positions of the site's map (`steer.net.feature_vectors.placed`: everywhere, or each maze's cheese or top-right
square, or given positions), times the feature's *typical code*: the mean of its nonzero codes over the unpatched
observations (every open square and both facings, as the chain sees them) of the screen's mazes, measured in the
run and recorded in its report. So discover's coefficient 1 adds the feature at its typical strength at every one
of its positions, and the same coefficients mean the same thing for features whose codes differ tenfold.
A feature never active on those observations (a dead feature) has no typical code: it is skipped and counted.

A feature lives at the dictionary's site only: its candidates are at that site whatever `layers` lists (`layers`
places the maze families), and each family's statement names the site. It is searched with the cheese kept (the
levels as generated). Its random control is a random feature (`steer.analysis.controls.random_like`: a random unit
channel direction at the same positions, with the same norm), one direction per maze as the maze families' random
vector is. Its floor is the unrelated-maze null's vector at the site scaled to the feature's norm, as for every
other family: a structured activation edit of the same size (an edit spread over the whole map, where a feature
placed at one square is concentrated there), which a feature's effect must clear.

The maze layer cannot read dictionaries, so the families' registry (`steer.maze.families.FAMILIES`) does not hold
these; every reader of a family's name asks `is_feature` first (`family_doc`, `family_kind`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from steer.analysis.controls import random_seed
from steer.analysis.discover import (
    SCREEN_KINDS,
    Measuring,
    ScreenKey,
    control_vector,
    exact_numbers,
    family_pairs,
    fields_by_key,
    pair_vectors,
    screen_passes,
    screen_records,
)
from steer.analysis.features import site_rows
from steer.maze.env import MazeRenderer
from steer.maze.families import FAMILIES, Pair, regions
from steer.maze.layout import Maze
from steer.net.feature_vectors import placed
from steer.net.policy import ImpalaPolicy
from steer.net.sae import TopKSAE
from steer.net.vfield import Patch, facing_inputs

PREFIX = "feature:"
FACTOR = "feature"
Position = tuple[int, int]


def feature_family(index: int) -> str:
    return f"{PREFIX}{index}"


def is_feature(name: str) -> bool:
    return name.startswith(PREFIX)


def feature_index(name: str) -> int:
    return int(name.removeprefix(PREFIX))


# -- a feature's typical code ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeSummary:
    """Each feature's codes over the unpatched observations of some mazes: the mean of its nonzero codes (None for
    a feature never active there), the fraction of positions it is active at, and the positions read."""

    typical: tuple[float | None, ...]
    active: tuple[float, ...]
    rows: int


def code_summary(
    policy: ImpalaPolicy, renderer: MazeRenderer, sae: TopKSAE, site: str, seeds: Sequence[int], batch_size: int
) -> CodeSummary:
    """Every feature's codes at `site` over every open square and both facings (the chain's states) of each maze
    of `seeds` as generated, cheese kept."""
    sums = torch.zeros(sae.d_sae, dtype=torch.float64)
    counts = torch.zeros(sae.d_sae, dtype=torch.int64)
    rows = 0
    device = next(policy.parameters()).device
    for seed in seeds:
        x = site_rows(policy, facing_inputs(renderer, renderer.level(seed), device), site, batch_size).float().cpu()
        with torch.inference_mode():
            codes = sae.encode(x)
        sums += codes.double().sum(0)
        counts += (codes != 0).sum(0)
        rows += x.shape[0]
    typical = tuple(float(s / n) if n else None for s, n in zip(sums.tolist(), counts.tolist(), strict=True))
    return CodeSummary(typical, tuple(n / max(rows, 1) for n in counts.tolist()), rows)


# -- the families ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureFamilies:
    """The features a search screens, each a family `feature:<index>`: the dictionary's site and map size, the live
    features' decoder rows and typical codes, where each goes on a maze (`place`; `per_maze` when that depends on
    the maze: each maze's cheese or top-right square), and what was asked for but skipped (dead features)."""

    file: str  # the dictionary, as the spec names it (for the report)
    site: str  # display name: the dictionary's site
    grid: int
    place_text: str  # e.g. "everywhere", "at each maze's cheese", "at 2 map positions"
    indices: tuple[int, ...]  # the live features searched, in order
    directions: torch.Tensor  # (len(indices), channels): their decoder rows (unit norm)
    typical: tuple[float, ...]  # their typical codes (the vectors' scale at coefficient 1)
    active: tuple[float, ...]  # the fraction of screen positions each is active at
    place: Callable[[Maze], tuple[Position, ...]]
    per_maze: bool
    dead: tuple[int, ...]  # asked for, never active on the screen's mazes: skipped
    rows: int  # positions the typical codes were measured over

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(feature_family(i) for i in self.indices)

    def vector(self, name: str, maze: Maze) -> tuple[torch.Tensor, tuple[Position, ...]]:
        """A feature family's vector on `maze` (its decoder row at its positions there, times its typical code)
        and those positions."""
        k = self.indices.index(feature_index(name))
        positions = self.place(maze)
        return placed(self.directions[k], positions, self.grid, self.typical[k]), positions

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "site": self.site,
            "place": self.place_text,
            "scale": "each feature's typical code: the mean of its nonzero codes over the unpatched observations "
            "(every open square, both facings) of the screen's mazes; coefficient 1 adds the feature at that "
            "strength at each of its positions",
            "searched": len(self.indices),
            "dead_features": list(self.dead),
            "rows": self.rows,
            "typical_code": {str(i): round(t, 6) for i, t in zip(self.indices, self.typical, strict=True)},
            "active_fraction": {str(i): round(a, 6) for i, a in zip(self.indices, self.active, strict=True)},
        }


def family_doc(name: str, features: FeatureFamilies | None = None) -> str:
    """What a family's vector is: the registry's doc of a maze family; a feature's decoder row and place."""
    if not is_feature(name):
        return FAMILIES[name].doc
    where = f" {features.place_text}, at {features.site}" if features is not None else ""
    return f"dictionary feature {feature_index(name)}'s decoder row{where}, times its typical code"


def other_maze_vector(m: Measuring, seed: int, target: str, layer: str) -> torch.Tensor | None:
    """The unrelated-maze null's vector on `seed` at `layer` (the floor's direction), None where it has no member."""
    pair = family_pairs(m.renderer, seed, target, ("null:other_maze",))["null:other_maze"]
    return pair_vectors(m.policy, m.renderer, [pair], (layer,))[0][layer] if isinstance(pair, Pair) else None


def screen_features(
    m: Measuring, seed: int, features: FeatureFamilies, coeffs: Sequence[float]
) -> dict[str, dict[str, Any]]:
    """Every feature family on one maze as generated (cheese kept), at every coefficient, beside its random control
    and the floor: {effects, controls, floors}, each by candidate key, the rounded changes of every effect (the
    same records `steer.analysis.discover_screen.screen_maze` makes for the maze families)."""
    level = m.renderer.level(seed)
    layer = features.site
    other = other_maze_vector(m, seed, "keep", layer)
    noise_seed = random_seed(m.control_seed, seed)
    passes: list[tuple[ScreenKey, list[Patch]]] = []
    for name in features.families:
        v, positions = features.vector(name, level)
        passes += screen_passes(name, layer, v, control_vector(layer, v, noise_seed, positions), other, coeffs)
    out: dict[str, dict[str, Any]] = {kind: {} for kind in SCREEN_KINDS}
    if not passes:
        return out
    regs = regions(level)
    original, fields = fields_by_key(m.policy, facing_inputs(m.renderer, level, m.device), passes, m.batch_size)
    screen_records(out, fields, original, exact_numbers(original, regs), regs, layer, "keep")
    return out


def feature_counts(families: Mapping[str, Mapping[str, Any]], features: Mapping[str, Any]) -> dict[str, Any]:
    """The search's count of features (its families `feature:<index>`, after `family_table`): screened, skipped as
    dead, sent on to be confirmed, and found (an effect beyond the random control, clearing the floor, on both
    samples after Holm's adjustment: the confirm stage's verdict), with the found features' names."""
    rows = [f for name, f in families.items() if is_feature(name)]
    found = [f["family"] for f in rows if f["status"] == "found"]
    return {
        "screened": len(rows),
        "dead_skipped": len(features["dead_features"]),
        "confirmed": sum(f["confirmed"] for f in rows),
        "found": len(found),
        "found_features": found,
    }


__all__ = [
    "FACTOR",
    "PREFIX",
    "CodeSummary",
    "FeatureFamilies",
    "code_summary",
    "family_doc",
    "feature_counts",
    "feature_family",
    "feature_index",
    "is_feature",
    "other_maze_vector",
    "screen_features",
]
