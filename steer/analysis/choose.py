"""`steer choose`'s measurements: what one setting (a site and a coefficient) does on one maze, the grid of
settings summarised over the discovery mazes, the limits on damage, the choice, and the chosen setting against
the reference setting on the replication mazes.

A setting's record on one maze holds the target metric ({original, patched}) and the damage measures:

- `wall_mass`, `entropy`: the crumbling measures `steer discover` uses (rises of mean P(move into a wall) and of
  mean action entropy), {original, patched};
- `mean_tv_unaffected`: mean TV between the unpatched and the patched policy on the maze's *unaffected* variant
  (the spec's `unaffected:` edits, e.g. the cheese removed for the cheese vector: a maze the vector should leave
  alone), one number;
- `mean_steps`, `steps_to_cheese`, `p_timeout`: from the exact chain (steer.analysis.chain): the expected episode
  length, the expected steps to the cheese if reached, and P(the episode times out), which on a maze with cheese
  is 1 - P(reach the cheese within the horizon): the mass that wanders or loops until the timeout. Undefined
  (None) without cheese, where every episode times out.

A limit caps a damage measure's mean over mazes (a rise for {original, patched} measures, the value itself for
`mean_tv_unaffected`). The rule is the conservative one: a setting meets a limit when the upper end of the 95%
bootstrap interval of that mean lies at or below it, so a setting measured too noisily to show it is safe is not
chosen; a measure with no interval (fewer than two mazes define it) fails its limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from steer.analysis.chain import behaviour
from steer.analysis.claims import UNMOVED
from steer.analysis.metrics import METRICS, describe_many, mean_tv
from steer.analysis.stats import proportion
from steer.maze.env import MazeRenderer
from steer.maze.layout import Maze
from steer.net.policy import ImpalaPolicy
from steer.net.vfield import FieldInputs, VectorField, facing_fields, facing_inputs, vector_fields

# The damage measures: name -> (what it is, its unit). All but mean_tv_unaffected are stored {original, patched}
# and limited by their rise; mean_tv_unaffected is one number per maze, limited itself.
DAMAGES: dict[str, tuple[str, str]] = {
    "wall_mass": ("mean P(move into a wall), rise", "probability"),
    "entropy": ("mean action entropy, rise", "nats"),
    "mean_tv_unaffected": ("mean TV on the unaffected variant", "TV, 0 to 1"),
    "mean_steps": ("expected episode length, rise", "steps"),
    "steps_to_cheese": ("expected steps to the cheese if reached, rise", "steps"),
    "p_timeout": ("P(the episode times out), rise", "probability"),
}
FROM_CHAIN = ("mean_steps", "steps_to_cheese", "p_timeout")
OBJECTIVES = ("mean_change", "fraction_moved")


@dataclass(frozen=True, order=True)
class Setting:
    """Where and how strongly to steer: a site (display name) and a coefficient."""

    site: str
    coeff: float

    @property
    def label(self) -> str:
        return f"{self.site} x {self.coeff:g}"

    def to_json(self) -> dict[str, Any]:
        return {"site": self.site, "coeff": self.coeff}


@dataclass(frozen=True)
class Goal:
    """What a choice maximises and what it must not break: the target metric, the wanted direction (+1 up, -1
    down), the objective (`mean_change` or `fraction_moved`) and the limits (damage measure -> the most its mean
    may reach)."""

    target: str
    sign: int
    objective: str
    limits: Mapping[str, float]

    @property
    def chain(self) -> bool:
        """Whether the exact chain is needed (a behaviour target, or a limit on a chain measure)."""
        return METRICS[self.target].needs_behaviour or any(k in FROM_CHAIN for k in self.limits)


@dataclass(frozen=True)
class Network:
    """What measuring on one maze needs: the network, the renderer, the inputs' device and the batch size."""

    policy: ImpalaPolicy
    renderer: MazeRenderer
    device: str
    batch_size: int


# -- one maze ---------------------------------------------------------------------------------------------------


def _p_timeout(b: Any) -> float | None:
    return None if b.cheese is None else 1.0 - b.p_cheese


def _inputs(net: Network, maze: Maze, chain: bool) -> FieldInputs:
    """The maze's rendered observations, once for every site: its own facing, or with `chain` both facings."""
    if chain:
        return facing_inputs(net.renderer, maze, net.device)
    return FieldInputs.render(net.renderer, maze, net.device)


def _fields(
    net: Network,
    inputs: FieldInputs,
    site: str,
    vector: torch.Tensor,
    coeffs: Sequence[float],
    chain: bool,
    first: bool,
) -> tuple[list[VectorField], list[Any] | None]:
    """One field per coefficient (facing 0), after the unpatched one when `first`, and with `chain` each one's
    exact behaviour."""
    if not chain:
        deltas = [None] * first + [c * vector for c in coeffs]
        return vector_fields(net.policy, inputs, site, deltas, net.batch_size), None
    patch_sets: list[Sequence[Any]] = [()] * first + [((site, vector, c),) for c in coeffs]
    facing = facing_fields(net.policy, inputs, patch_sets, net.batch_size)
    # Fields above render the maze's own facing, 0 for a level as generated: the first of the two facings.
    return [VectorField(f.maze, f.positions, f.probs[0]) for f in facing], [behaviour(f) for f in facing]


def measure_maze(
    net: Network,
    maze: Maze,
    unaffected: Maze | None,
    vectors: Mapping[str, torch.Tensor],
    settings: Sequence[Setting],
    goal: Goal,
) -> dict[str, dict[str, Any]]:
    """Every setting's record on one maze (setting label -> record; see the module's docstring). The prefix up to
    each site runs once on observations rendered once, and its coefficients share one batched suffix; the unpatched
    pass runs once, with the first site's, so every setting compares against the same numbers."""
    target = METRICS[goal.target]
    by_site: dict[str, list[float]] = {}
    for s in settings:
        by_site.setdefault(s.site, []).append(s.coeff)
    out: dict[str, dict[str, Any]] = {}
    inputs = _inputs(net, maze, goal.chain)
    other_inputs = None if unaffected is None else _inputs(net, unaffected, False)
    base: tuple[VectorField, Any, VectorField | None] | None = None
    for site, coeffs in by_site.items():
        first = base is None  # the unpatched pass runs with the first site's coefficients, once
        fields, behaviours = _fields(net, inputs, site, vectors[site], coeffs, goal.chain, first)
        others = None
        if other_inputs is not None:
            others, _ = _fields(net, other_inputs, site, vectors[site], coeffs, False, first)
        if base is None:
            base = (fields[0], behaviours[0] if behaviours else None, others[0] if others else None)
            fields, behaviours = fields[1:], behaviours[1:] if behaviours else None
            others = others[1:] if others else None
        original, before, other_original = base
        for i, c in enumerate(coeffs):
            field = fields[i]
            after = behaviours[i] if behaviours else None
            rec: dict[str, Any] = {
                goal.target: target.compute(before, after)
                if target.needs_behaviour
                else target.compute(original, field),
                "wall_mass": METRICS["wall_mass"].compute(original, field),
                "entropy": METRICS["entropy"].compute(original, field),
            }
            if others is not None and other_original is not None:
                rec["mean_tv_unaffected"] = mean_tv(other_original, others[i])
            if after is not None:
                rec["mean_steps"] = {"original": before.mean_steps, "patched": after.mean_steps}
                rec["steps_to_cheese"] = {"original": before.steps_to_cheese, "patched": after.steps_to_cheese}
                rec["p_timeout"] = {"original": _p_timeout(before), "patched": _p_timeout(after)}
            out[Setting(site, c).label] = rec
    return out


def change(value: Any) -> float | None:
    """A record's measure as one number: patched - original of {original, patched}, or the number itself."""
    if isinstance(value, dict):
        before, after = value.get("original"), value.get("patched")
        return None if before is None or after is None else float(after) - float(before)
    return None if value is None else float(value)


# -- over mazes ---------------------------------------------------------------------------------------------------


def signed_changes(records: Sequence[Mapping[str, Any] | None], goal: Goal) -> list[float | None]:
    """Each maze's change of the target in the wanted direction (sign x (patched - original))."""
    out: list[float | None] = []
    for r in records:
        c = None if r is None else change(r.get(goal.target))
        out.append(None if c is None else goal.sign * c)
    return out


def summarise_setting(records: Sequence[Mapping[str, Any] | None], goal: Goal, damages: Sequence[str]) -> dict:
    """One setting over mazes: the target's change in the wanted direction (mean and interval), the fraction of
    mazes moved the wanted way (by more than UNMOVED, Wilson interval), and each damage measure's mean with its
    interval."""
    signed = signed_changes(records, goal)
    columns = [signed] + [[None if r is None else change(r.get(d)) for r in records] for d in damages]
    described = describe_many(columns)
    defined = [x for x in signed if x is not None]
    moved = proportion(sum(1 for x in defined if x > UNMOVED), len(defined))
    change_ = described[0]
    objective = change_["mean"] if goal.objective == "mean_change" else moved["fraction"]
    objective_ci = change_["mean_ci"] if goal.objective == "mean_change" else moved["ci"]
    return {
        "objective": objective,
        "objective_ci": objective_ci,
        "change": {k: change_[k] for k in ("n", "mean", "mean_ci", "median")},
        "moved": moved,
        "damage": {d: {k: s[k] for k in ("n", "mean", "mean_ci")} for d, s in zip(damages, described[1:], strict=True)},
    }


def violations(summary: Mapping[str, Any], limits: Mapping[str, float]) -> list[str]:
    """The limits a setting's summary breaks, each as a short reason (empty: feasible). Conservative: the upper end
    of the 95% interval of the mean must lie at or below the limit; no interval fails."""
    out = []
    for name, limit in limits.items():
        d = summary["damage"].get(name)
        if d is None or d["mean_ci"] is None:
            out.append(f"{name} not measured on 2 or more mazes")
        elif d["mean_ci"][1] > limit:
            out.append(f"{name} up to {d['mean_ci'][1]:+.3g} > {limit:g}")
    return out


def choose(grid: Sequence[Mapping[str, Any]]) -> int | None:
    """The index of the chosen row of the grid: the feasible setting with the largest objective; ties go to the
    smaller |coefficient|, then to the earlier row (the spec's order of sites and coefficients). None when no
    setting is feasible (or none has a defined objective)."""
    ok = [i for i, row in enumerate(grid) if row["feasible"] and row["objective"] is not None]
    if not ok:
        return None
    return min(ok, key=lambda i: (-grid[i]["objective"], abs(grid[i]["coeff"]), i))


def grid_rows(
    per_maze: Sequence[Mapping[str, Mapping[str, Any]]], settings: Sequence[Setting], goal: Goal, damages: Sequence[str]
) -> list[dict[str, Any]]:
    """Every setting's summary over the discovery mazes, its violations and whether it is feasible."""
    rows = []
    for s in settings:
        summary = summarise_setting([m.get(s.label) for m in per_maze], goal, damages)
        broken = violations(summary, goal.limits)
        rows.append({**s.to_json(), **summary, "feasible": not broken, "violations": broken})
    return rows


def record(values: Sequence[float | None]) -> dict[str, Any]:
    """A {value, ci, n} record of a mean over mazes (what a batch's `reported` claim reads)."""
    (s,) = describe_many([values])
    return {"value": s["mean"], "ci": s["mean_ci"], "n": s["n"], "interval": "95% bootstrap of the mean over mazes"}


def versus_reference(mazes: Sequence[Mapping[str, Any]], goal: Goal, damages: Sequence[str]) -> dict[str, Any]:
    """On the replication mazes, per maze the chosen setting minus the reference setting: the target's change in the
    wanted direction (`gain`: above 0 when the chosen setting moves it further) and each damage measure (`excess`:
    above 0 when the chosen setting damages more), as {value, ci, n} records."""
    chosen = [m.get("chosen") for m in mazes]
    reference = [m.get("reference") for m in mazes]

    def diff(a: Sequence[float | None], b: Sequence[float | None]) -> list[float | None]:
        return [None if x is None or y is None else x - y for x, y in zip(a, b, strict=True)]

    out = {"gain": record(diff(signed_changes(chosen, goal), signed_changes(reference, goal)))}
    for d in damages:
        a = [None if r is None else change(r.get(d)) for r in chosen]
        b = [None if r is None else change(r.get(d)) for r in reference]
        out[f"{d}_excess"] = record(diff(a, b))
    return out


def damages_measured(goal: Goal, unaffected: bool) -> tuple[str, ...]:
    """The damage measures a run records: the crumbling ones always, TV on the unaffected variant when it has one,
    the chain's when it runs the chain."""
    names = ["wall_mass", "entropy"]
    if unaffected:
        names.append("mean_tv_unaffected")
    if goal.chain:
        names += FROM_CHAIN
    return tuple(names)


__all__ = [
    "DAMAGES",
    "FROM_CHAIN",
    "OBJECTIVES",
    "Goal",
    "Network",
    "Setting",
    "change",
    "choose",
    "damages_measured",
    "grid_rows",
    "measure_maze",
    "record",
    "signed_changes",
    "summarise_setting",
    "versus_reference",
    "violations",
]
