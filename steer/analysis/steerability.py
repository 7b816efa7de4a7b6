"""`steer steerability`'s measurements: the targets a curve can follow, one maze's curve read as steerability,
linearity, crumbling and a class, and those numbers over mazes with intervals.

A curve is a target probability (or share) P(c) of one maze at every coefficient c of the grid, 0 included, with
the crumbling measures at each (`wall_mass`, `entropy`: the registry's field metrics, in the maze's own facing).
Read from it, per maze:

- **log-odds** logit(P), P clipped to [LOGIT_CLIP, 1 - LOGIT_CLIP] as the claims' logit scale is (beyond, a
  float32 softmax's last digits would set the slope);
- **slope**: the least-squares slope of the log-odds against c over the grid points with |c| <= `fit_within`
  (1 by default: the posts' coefficients, where the response is still near-linear), 0 included;
  **steerability** = the slope times the claimed direction (+1 up, -1 down), so a positive steerability moves the
  target the claimed way; **residual**: the root-mean-square residual of that linear fit, in log-odds;
- **crumbling**: a coefficient crumbles the policy when, against c = 0, the mean P(move into a wall) rises by at
  least `crumble.wall_mass` or the mean action entropy by at least `crumble.entropy` (discover's thresholds and
  measures: steer.analysis.discover.Settings); `crumble_pos` / `crumble_neg` are the first crumbling coefficients
  walking out from 0 on each side (None: none on the grid), and the non-crumbling range is the coefficients
  strictly between them;
- **class**, one rule: `moved_by` = direction x (P(c_hi) - P(c_lo)), the change across the non-crumbling range
  (c_hi, c_lo: its largest and smallest coefficients). `claimed` when moved_by >= `moved`, `anti` (anti-steerable)
  when moved_by <= -`moved`, else `not_moved`; **crumbles before it moves**: a maze crumbling somewhere on the grid
  and `not_moved` (what moving it would take crumbles it first); **moves and returns**: `not_moved`, yet P moves
  by at least `moved` away from P(0) somewhere inside the non-crumbling range (a curve that rises and falls back,
  or the reverse). The class reads the range's two ends only, so this count says how many "not moved" mazes were
  moved at some coefficient in between, not left alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special as spc

from steer.analysis.claim_measures import LOGIT_CLIP
from steer.analysis.discover import LABELS as DISCOVER_LABELS
from steer.analysis.discover import PROBABILITIES as DISCOVER_PROBABILITIES
from steer.analysis.discover import Settings
from steer.analysis.metrics import METRICS, describe
from steer.analysis.stats import proportion

# The targets: probabilities (or shares) a curve can follow. Field targets come from the field in the maze's own
# facing; behaviour targets from the exact chain (both facings, twice the passes); region targets are discover's
# exact numbers (P(visit) a region, the share of the episode's expected steps in it: `discover.behaviour_numbers`).
FIELD_TARGETS = ("p_cheese_ds", "p_top_right_ds", "p_toward_cheese", "p_toward_top_right")
BEHAVIOUR_TARGETS = ("p_reach_cheese", "p_reach_top_right")
REGION_TARGETS = tuple(name for name in DISCOVER_PROBABILITIES if name != "p_reach_cheese")
TARGETS = (*FIELD_TARGETS, *BEHAVIOUR_TARGETS, *REGION_TARGETS)
CHEESE_TARGETS = ("p_cheese_ds", "p_toward_cheese", "p_reach_cheese")
# Undefined on a maze without cheese: the cheese targets, and p_top_right_ds (read at the decision square, where the
# paths to the cheese and to the top-right part).
NEEDS_CHEESE = (*CHEESE_TARGETS, "p_top_right_ds")
# Each vector kind's natural target (on mazes with the cheese removed, the top-right vector's is the share of the
# episode in the top-right region: P(visit) saturates there, as the unpatched agent goes anyway).
NATURAL = {"cheese": "p_cheese_ds", "top_right": "p_top_right_ds"}
NATURAL_WITHOUT_CHEESE = {"top_right": "time_in_top_right"}


def natural_target(kind: str, cheese_removed: bool) -> str | None:
    """The vector kind's natural target; None for a kind that has none (custom)."""
    return (NATURAL_WITHOUT_CHEESE if cheese_removed else NATURAL).get(kind)


CRUMBLE_MEASURES = ("wall_mass", "entropy")


def target_label(name: str) -> str:
    return METRICS[name].label if name in METRICS else DISCOVER_LABELS[name]


def default_direction(kind: str, target: str) -> str:
    """The claimed way at a positive coefficient: the cheese vector raises cheese targets and lowers the
    top-right ones, the top-right vector the reverse; anything else is claimed to go up."""
    cheese_like = target in CHEESE_TARGETS
    if kind == "cheese":
        return "up" if cheese_like else "down"
    if kind == "top_right":
        return "down" if cheese_like else "up"
    return "up"


@dataclass(frozen=True)
class Rule:
    """How a curve is read (the spec's `direction`, `moved`, `crumble`, `fit_within`)."""

    direction: int = 1  # +1: the target is claimed to rise with c; -1: to fall
    moved: float = 0.05  # the least change of P across the non-crumbling range that counts as moving
    crumble_wall: float = Settings.crumble_wall  # discover's thresholds: one meaning of "crumbles" in steer
    crumble_entropy: float = Settings.crumble_entropy
    fit_within: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "direction": "up" if self.direction > 0 else "down",
            "moved": self.moved,
            "crumble": {"wall_mass": self.crumble_wall, "entropy": self.crumble_entropy},
            "fit_within": self.fit_within,
        }


@dataclass(frozen=True)
class Curve:
    """One maze's target and crumbling measures at each coefficient (sorted, 0 among them)."""

    coeffs: tuple[float, ...]
    p: tuple[float | None, ...]
    wall_mass: tuple[float, ...]
    entropy: tuple[float, ...]


def log_odds(p: Sequence[float]) -> np.ndarray:
    return spc.logit(np.clip(np.asarray(p, dtype=np.float64), LOGIT_CLIP, 1 - LOGIT_CLIP))


def line_fit(c: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares slope, intercept and root-mean-square residual of y against c."""
    if np.all(y == y[0]):  # flat (a saturated target): exactly 0, not polyfit's rounding of it
        return 0.0, float(y[0]), 0.0
    slope, intercept = np.polyfit(c, y, 1)
    resid = y - (slope * c + intercept)
    return float(slope), float(intercept), float(np.sqrt(np.mean(resid**2)))


def crumbling(curve: Curve, rule: Rule) -> np.ndarray:
    """Per coefficient: does it crumble the policy (a rise against c = 0 past either threshold)?"""
    zero = curve.coeffs.index(0.0)
    wall, ent = np.asarray(curve.wall_mass), np.asarray(curve.entropy)
    return ((wall - wall[zero]) >= rule.crumble_wall) | ((ent - ent[zero]) >= rule.crumble_entropy)


def first_crumbling(coeffs: Sequence[float], crumbles: np.ndarray, sign: int) -> float | None:
    """The first crumbling coefficient walking out from 0 on one side (sign +1 or -1); None if none."""
    side = sorted((c for c in coeffs if c * sign > 0), key=abs)
    return next((c for c in side if crumbles[coeffs.index(c)]), None)


def read_curve(curve: Curve, rule: Rule) -> dict[str, Any]:
    """One maze's numbers (see the module docstring); the shape-only fields when the target is undefined."""
    coeffs = curve.coeffs
    crumbles = crumbling(curve, rule)
    pos, neg = first_crumbling(coeffs, crumbles, 1), first_crumbling(coeffs, crumbles, -1)
    inside = [c for c in coeffs if (pos is None or c < pos) and (neg is None or c > neg)]
    out: dict[str, Any] = {
        "crumble_pos": pos,
        "crumble_neg": neg,
        "crumbles": int(pos is not None or neg is not None),
        "non_crumbling": [min(inside), max(inside)],
    }
    if any(p is None for p in curve.p):
        return {**out, "steerability": None, "slope": None, "intercept": None, "residual": None, "moved_by": None,
                "class": None, "claimed_way": None, "anti_steerable": None, "not_moved": None,
                "crumbles_before_moving": None, "moves_and_returns": None}  # fmt: skip
    p = np.asarray(curve.p, dtype=np.float64)
    c = np.asarray(coeffs, dtype=np.float64)
    near = np.abs(c) <= rule.fit_within
    slope, intercept, residual = line_fit(c[near], log_odds(p[near]))
    lo, hi = coeffs.index(min(inside)), coeffs.index(max(inside))
    moved_by = float(rule.direction * (p[hi] - p[lo]))
    kind = "claimed" if moved_by >= rule.moved else "anti" if moved_by <= -rule.moved else "not_moved"
    span = p[lo : hi + 1]  # the grid is sorted, so the non-crumbling range is one run of it, 0 included
    swings = bool(np.max(np.abs(span - p[coeffs.index(0)])) >= rule.moved)
    return {
        **out,
        "steerability": rule.direction * slope,
        "slope": slope,
        "intercept": intercept,
        "residual": residual,
        "moved_by": moved_by,
        "class": kind,
        "claimed_way": int(kind == "claimed"),
        "anti_steerable": int(kind == "anti"),
        "not_moved": int(kind == "not_moved"),
        "crumbles_before_moving": int(kind == "not_moved" and out["crumbles"] == 1),
        "moves_and_returns": int(kind == "not_moved" and swings),
    }


# -- over mazes --------------------------------------------------------------------------------------------

FRACTIONS = {
    "claimed_way": "moved the claimed way",
    "anti_steerable": "moved the wrong way (anti-steerable)",
    "not_moved": "not moved",
    "crumbles_before_moving": "crumbles before it moves",
    "moves_and_returns": "not moved, yet moved somewhere in between (moves and returns)",
}


def fraction_record(k: int, n: int) -> dict[str, Any]:
    """k of n mazes as a {value, ci, n} record a batch's `reported` claim reads (95% Wilson interval)."""
    share = proportion(k, n)
    return {"value": share["fraction"], "ci": share["ci"], "n": n, "k": k, "interval": "95% Wilson"}


def site_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One site's numbers over mazes: steerability's and the residual's distributions (median, mean, quartiles,
    bootstrap intervals over mazes), each class's fraction with its interval, and how many mazes the target was
    undefined on (left out of everything else)."""
    defined = [r for r in rows if r["class"] is not None]
    steer = describe([r["steerability"] for r in defined])
    out: dict[str, Any] = {
        "n": len(defined),
        "undefined": len(rows) - len(defined),
        "steerability": steer,
        "steerability_median": {
            "value": steer["median"],
            "ci": steer["median_ci"],
            "n": steer["n"],
            "interval": "95% percentile bootstrap over mazes",
        },
        "residual": describe([r["residual"] for r in defined]),
        "crumbles": fraction_record(sum(r["crumbles"] for r in defined), len(defined)),
    }
    for key in FRACTIONS:
        if all(key in r for r in defined):
            out[key] = fraction_record(sum(r[key] for r in defined), len(defined))
        else:  # cells finished before this count existed (a resumed run): say so rather than count them as 0
            out[key] = {"value": None, "ci": None, "n": 0, "note": "not recorded by this run's older cells"}
    return out


__all__ = [
    "BEHAVIOUR_TARGETS",
    "CHEESE_TARGETS",
    "CRUMBLE_MEASURES",
    "FIELD_TARGETS",
    "FRACTIONS",
    "NATURAL",
    "NATURAL_WITHOUT_CHEESE",
    "NEEDS_CHEESE",
    "REGION_TARGETS",
    "TARGETS",
    "Curve",
    "Rule",
    "crumbling",
    "default_direction",
    "first_crumbling",
    "fraction_record",
    "line_fit",
    "log_odds",
    "natural_target",
    "read_curve",
    "site_summary",
    "target_label",
]
