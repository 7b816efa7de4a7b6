"""`steer choose`'s spec, which both of its stages read: its options (`ChooseOptions`), their parsers, the checks
made before anything is loaded, the goal the choice serves (`goal_of`: target, direction, objective, limits, with
the vector kind's defaults) and the reference setting (`reference_of`: the posts' by default). A module of its own
because the grid stage (`steer.studies.choose_grid`) and the command (`steer.studies.choose`) both read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from steer.analysis.choose import DAMAGES, OBJECTIVES, Goal, Setting
from steer.analysis.metrics import METRICS
from steer.errors import SteerError, excerpt
from steer.net.vectors import KINDS, Edit
from steer.run.options import Options, coeffs_option, layers_option, option, seed_list, vector_option
from steer.run.spec_fields import coefficient
from steer.run.spec_values import VectorSpec, parse_edits
from steer.run.specs import DEFAULT_LAYER, Spec

# The posts' site, and the sites searched beside it when the spec names none.
DEFAULT_LAYERS = (DEFAULT_LAYER, "block2.res2.resadd_out", "block3.res1.resadd_out")
# The posts' direction and sign for each kind: the cheese vector is subtracted to make the agent ignore the
# cheese (P(cheese | decision square) down), the top-right vector added to pull it to the corner (up).
POST_SIGN = {"cheese": -1, "top_right": 1}
MIN_REPLICATION = 2  # an interval needs two mazes; a claim states its own precision


@dataclass(frozen=True)
class Limits:
    """The most each damage measure's mean over mazes may reach (None: no limit); steer.analysis.choose says how
    each is measured and the rule (the upper end of its 95% interval at or below the limit)."""

    wall_mass: float | None = None
    entropy: float | None = None
    mean_tv_unaffected: float | None = None
    mean_steps: float | None = None
    steps_to_cheese: float | None = None
    p_timeout: float | None = None

    def given(self) -> dict[str, float]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class Reference:
    """`compare_with`: the setting the chosen one is judged against (None: the posts' for the kind)."""

    layer: str | None = None
    coeff: float | None = None


def _limits(value: Any, where: str) -> Limits:
    if not isinstance(value, dict) or not value:
        raise SteerError(
            f"{where}: expected a mapping of damage measures to limits, e.g. {{wall_mass: 0.05, entropy: 0.3}}; "
            f"measures: {', '.join(DAMAGES)}."
        )
    out = {}
    for key, raw in value.items():
        if key not in DAMAGES:
            raise SteerError(f"{where}: {excerpt(key)} is not a damage measure. Measures: {', '.join(DAMAGES)}.")
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise SteerError(f"{where}: {key} must be a number (the most its mean may reach), got {excerpt(raw)}.")
        x = float(raw)
        if not math.isfinite(x) or x < 0:
            raise SteerError(
                f"{where}: {key} is {excerpt(raw)}; a limit is a finite number of 0 or more (leave the measure out "
                "for no limit)."
            )
        out[key] = x
    return Limits(**out)


def _target(value: Any, where: str) -> str:
    paired = [n for n, m in METRICS.items() if m.paired]
    if value not in paired:
        raise SteerError(
            f"{where}: {excerpt(value)} is not a metric a setting changes (patched - original). Use one of "
            f"{', '.join(paired)}."
        )
    return str(value)


def _direction(value: Any, where: str) -> int:
    if value not in ("up", "down"):
        raise SteerError(f"{where}: {excerpt(value)} is not up or down (the way the target should move).")
    return 1 if value == "up" else -1


def _objective(value: Any, where: str) -> str:
    if value not in OBJECTIVES:
        raise SteerError(
            f"{where}: {excerpt(value)} is not an objective. Use mean_change (the mean change of the target in the "
            "wanted direction, the default) or fraction_moved (the fraction of mazes moved that way by more than 0.01)."
        )
    return str(value)


def _edits(value: Any, where: str) -> tuple[Edit, ...]:
    edits = parse_edits(value, where)
    if not edits:
        raise SteerError(
            f"{where}: give the edits that make a maze the vector should leave alone, e.g. [remove_cheese]."
        )
    return edits


def _reference(value: Any, where: str) -> Reference:
    if not isinstance(value, dict) or not value or set(value) - {"layer", "coeff"}:
        raise SteerError(f"{where}: expected {{layer: block2.res1.resadd_out, coeff: 1}} (either or both).")
    layer = value.get("layer")
    if layer is not None and (not isinstance(layer, str) or not layer.strip()):
        raise SteerError(f"{where}.layer: expected a hook name such as block2.res1.resadd_out, got {excerpt(layer)}.")
    coeff = coefficient(value["coeff"], f"{where}.coeff") if "coeff" in value else None
    return Reference(layer.strip() if layer else None, coeff)


@dataclass(frozen=True, kw_only=True)
class ChooseOptions(Options):
    vector: VectorSpec = vector_option()
    layers: tuple[str, ...] = layers_option(about="candidate sites (default: the posts' and two residual sites)")
    coeffs: tuple[float, ...] = coeffs_option(
        missing="coeffs: missing; give the candidate coefficients, e.g. coeffs: [0.5, 1, 2, 3, 5]."
    )
    replication: tuple[int, ...] = option(
        seed_list,
        missing="replication: missing; give the replication sample the chosen setting is judged on, disjoint from "
        "seeds, e.g. replication: {from: 1000, to: 1049}.",
    )
    target: str | None = option(_target, default=None, about="the metric to move (default: the kind's)")
    direction: int | None = option(_direction, default=None, about="up or down (default: the posts' for the kind)")
    objective: str = option(_objective, default="mean_change", about="mean_change or fraction_moved")
    limits: Limits = option(_limits, default=Limits(), about="damage measure -> the most its mean may reach")
    unaffected: tuple[Edit, ...] = option(_edits, default=(), about="edits making a maze the vector should not affect")
    compare_with: Reference = option(_reference, default=Reference(), about="the reference setting (the posts')")


def check(spec: Spec) -> None:
    """What needs no checkpoint: the samples disjoint and large enough, the grid's coefficients, sites given as a
    list, a TV limit with its variant, and a target for a kind without one."""
    o: ChooseOptions = spec.options
    shared = sorted(set(o.replication) & set(spec.seeds))
    if shared:
        raise SteerError(
            f"replication: seed {shared[0]} is also in seeds (the discovery sample the choice looks at); the chosen "
            "setting must be judged on mazes the choice never saw. Draw it from another range, e.g. "
            "{from: 1000, to: 1049}."
        )
    if len(o.replication) < MIN_REPLICATION:
        raise SteerError(f"replication: {len(o.replication)} mazes; a replication needs at least {MIN_REPLICATION}.")
    if len(spec.seeds) < 2:
        raise SteerError("seeds: the choice needs at least 2 discovery mazes (an interval needs two values).")
    if any(c == 0 for c in o.coeffs):
        raise SteerError("coeffs: 0 is not a setting to choose (it adds nothing); drop it.")
    if spec.layer is not None:
        raise SteerError("layer: `steer choose` chooses the site; give the candidate sites as layers: [...].")
    if o.layers == () and spec.raw.get("layers") == "all":
        raise SteerError("layers: give the candidate sites as a list (each one multiplies the run's cost), not 'all'.")
    if o.limits.mean_tv_unaffected is not None and not o.unaffected:
        raise SteerError(
            "limits: mean_tv_unaffected needs `unaffected:`, the edits that make a maze the vector should leave "
            "alone (e.g. unaffected: [remove_cheese] for the cheese vector)."
        )
    pair = o.vector.pair
    if o.target is None and pair is not None and METRICS[KINDS[pair.kind].effect_metric].paired is False:
        raise SteerError(
            f"target: missing; a {pair.kind} vector has no natural target metric. Give target: (e.g. p_cheese_ds) "
            "and direction: up|down."
        )


def goal_of(spec: Spec, kind: str) -> Goal:
    """The goal as the spec states it, the kind's target and the posts' direction where it does not."""
    o: ChooseOptions = spec.options
    target = o.target or (KINDS[kind].effect_metric if kind in KINDS else "mean_tv")  # a feature: no natural one
    if not METRICS[target].paired:
        raise SteerError(
            f"target: missing; a {kind} vector has no natural target metric. Give target: (e.g. p_cheese_ds) and "
            "direction: up|down."
        )
    sign = o.direction if o.direction is not None else POST_SIGN.get(kind, 1)
    return Goal(target, sign, o.objective, o.limits.given())


def reference_of(spec: Spec, kind: str) -> Setting:
    """`compare_with`, the posts' setting where it says nothing: the posts' site at coefficient 1, -1 for the
    cheese vector (the post's sign for the kind). Its site is resolved by the plan."""
    ref: Reference = spec.options.compare_with
    return Setting(ref.layer or DEFAULT_LAYER, ref.coeff if ref.coeff is not None else float(POST_SIGN.get(kind, 1)))


__all__ = [
    "DEFAULT_LAYERS",
    "POST_SIGN",
    "ChooseOptions",
    "Limits",
    "Reference",
    "check",
    "goal_of",
    "reference_of",
]
