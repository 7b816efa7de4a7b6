"""`steer steerability`: per maze, how a vector moves a target's log-odds as its coefficient grows; what predicts it.

    seeds: {from: 0, to: 99}
    vector: {kind: cheese}               # own, source_seed, source_seeds (a mean) or file, as in `apply`
    layers: [block2.res1.resadd_out]     # or `layer:` (one site); default the vector's layer
    coeffs: {from: -2, to: 2, step: 0.2} # optional (this is the default); 0 is always measured
    target: p_cheese_ds                  # optional; default the vector kind's natural target
    direction: up                        # optional; the claimed way at a positive coefficient
    moved: 0.05                          # optional; the change of P across the non-crumbling range that moves
    crumble: {wall_mass: 0.1, entropy: 0.5}
    fit_within: 1                        # optional; the slope is fitted over |c| <= this

Per maze and site the exact curve of the target against the coefficient (the prefix up to the site runs once,
every coefficient through one batched suffix; behaviour targets from the exact chain), read by
`steer.analysis.steerability` (steerability, residual, crumbling, class) beside its predictors
(`steer.analysis.steerability_predictors`); over mazes, per site, the distributions and fractions with intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from steer.analysis.chain import behaviour
from steer.analysis.discover import behaviour_numbers, facing_slice, field_numbers
from steer.analysis.metrics import METRICS, fmt, maze_info
from steer.analysis.steerability import (
    BEHAVIOUR_TARGETS,
    CHEESE_TARGETS,
    FIELD_TARGETS,
    NEEDS_CHEESE,
    TARGETS,
    Curve,
    Rule,
    crumbling,
    default_direction,
    log_odds,
    natural_target,
    read_curve,
    site_summary,
    target_label,
)
from steer.analysis.steerability_predictors import PREDICTORS, predictor_summary
from steer.errors import SteerError, excerpt
from steer.maze.decision_features import decision_features
from steer.maze.families import regions
from steer.net.vectors import KINDS, PairSpec, SteeringVector
from steer.net.vfield import FieldInputs, facing_fields, facing_inputs, vector_fields
from steer.report.steerability_figs import figures
from steer.run.options import Options, coeffs_option, option, seeds_option, vector_option
from steer.run.session import Session, resolve_layer
from steer.run.spec_fields import choice_of, finite_float
from steer.run.spec_values import VectorSpec, parse_layers
from steer.run.specs import Spec
from steer.run.study import CellResult, Report, Study, check_show
from steer.run.vector_plan import VectorPlan, build_vector, plan_vector
from steer.studies.steerability_tables import TABLES

# 21 points symmetric about 0: eleven within |c| <= 1 for the slope (the posts' ±1 at its ends), and out to ±2,
# twice the posts' strength, where the crumbling measures start to rise for the posts' vectors.
DEFAULT_COEFFS = tuple(round(-2 + 0.2 * i, 12) + 0.0 for i in range(21))
FEATURES = tuple(k for k in PREDICTORS if k not in ("cosine", "headroom"))


def parse_target(value: Any, where: str) -> str:
    if not isinstance(value, str) or value not in TARGETS:
        raise SteerError(
            f"{where}: {excerpt(value)} is not a target steerability can follow; a target is a probability (or "
            f"a share of the episode): {', '.join(TARGETS)}."
        )
    return value


def parse_sites(value: Any, where: str) -> tuple[str, ...]:
    """`layers`: a list of hook names (not 'all': every site would be 20 runs' work for one question)."""
    if value == "all":
        raise SteerError(f"{where}: 'all' is not taken here; list the sites, e.g. [block2.res1.resadd_out].")
    return parse_layers(value, where)


def parse_fraction(value: Any, where: str) -> float:
    x = finite_float(value, where)
    if not 0 < x < 1:
        raise SteerError(f"{where}: {x:g} is out of range; give a probability change in (0, 1), e.g. 0.05.")
    return x


def parse_crumble(value: Any, where: str) -> tuple[float, float]:
    """`crumble`: {wall_mass, entropy}, either or both, each above 0 (discover's key)."""
    if not isinstance(value, dict) or set(value) - {"wall_mass", "entropy"}:
        raise SteerError(f"{where}: expected {{wall_mass: 0.1, entropy: 0.5}} (the rises that count as crumbling).")
    got = {k: finite_float(v, f"{where}.{k}") for k, v in value.items()}
    for k, v in got.items():
        if v <= 0:
            raise SteerError(f"{where}.{k}: {v:g} must be above 0 (a rise against the unpatched policy).")
    return got.get("wall_mass", Rule.crumble_wall), got.get("entropy", Rule.crumble_entropy)


def parse_fit(value: Any, where: str) -> float:
    x = finite_float(value, where)
    if x <= 0:
        raise SteerError(f"{where}: {x:g} must be above 0; the slope is fitted over the coefficients with |c| <= it.")
    return x


@dataclass(frozen=True, kw_only=True)
class SteerabilityOptions(Options):
    vector: VectorSpec = vector_option()
    layers: tuple[str, ...] = option(parse_sites, default=(), about="several sites (default: `layer`, or the vector's)")
    coeffs: tuple[float, ...] = coeffs_option(default=DEFAULT_COEFFS, about="the grid (default -2 to 2 by 0.2)")
    target: str | None = option(parse_target, default=None, about="default: the vector kind's natural target")
    direction: str | None = option(choice_of(("up", "down")), default=None, about="the claimed way at c > 0")
    moved: float = option(parse_fraction, default=Rule.moved, about="change of P that counts as moving")
    crumble: tuple[float, float] = option(
        parse_crumble, default=(Rule.crumble_wall, Rule.crumble_entropy), about="{wall_mass, entropy} rises"
    )
    fit_within: float = option(parse_fit, default=Rule.fit_within, about="the slope's fit covers |c| <= this")
    show: tuple[int, ...] = seeds_option(about="mazes whose curves are drawn (default: four across the range)")


def grid(spec: Spec) -> tuple[float, ...]:
    """The spec's coefficients with 0 (the unpatched policy), sorted."""
    return tuple(sorted({0.0, *spec.options.coeffs}))


def check(spec: Spec) -> None:
    o = spec.options
    check_show(spec)
    if o.layers and spec.layer is not None:
        raise SteerError("layers: give either `layer` (one site) or `layers` (several), not both.")
    if len(set(o.layers)) < len(o.layers):
        raise SteerError(f"layers: {', '.join(o.layers)} names a site twice; list each once.")
    if o.vector.feature is not None and o.layers:
        raise SteerError(
            "layers: a dictionary feature is a direction at the one site its dictionary was fitted at; drop `layers` "
            "(that site is used)."
        )
    if o.vector.file is not None and o.layers:
        raise SteerError(
            "layers: a vector file holds one site's vector; drop `layers` (the file's site is used) or give an "
            "inline vector such as {kind: cheese} to build it at several sites."
        )
    near = [c for c in o.coeffs if 0 < abs(c) <= o.fit_within]
    if not any(c < 0 for c in near) or not any(c > 0 for c in near):
        raise SteerError(
            f"coeffs: steerability is the slope near 0, fitted over |c| <= {o.fit_within:g}, so the grid needs a "
            "coefficient on each side of 0 there; e.g. coeffs: {from: -2, to: 2, step: 0.2}."
        )
    kind = o.vector.pair.kind if o.vector.pair is not None else None
    if kind == "custom" and o.target is None:
        raise SteerError(
            "target: a custom vector has no natural target; name one, e.g. target: p_top_right_ds "
            f"(targets: {', '.join(TARGETS)})."
        )
    removed = cheese_removed(spec)
    target = o.target or natural_target(kind or "", removed)
    if removed and target in NEEDS_CHEESE:
        why = " (it is read at the decision square, which needs the cheese)" if target not in CHEESE_TARGETS else ""
        raise SteerError(
            f"target: {target} is undefined on mazes with the cheese removed (target_edits: [remove_cheese]){why}; "
            "follow a target the mazes have, e.g. target: time_in_top_right or p_toward_top_right."
        )


def cheese_removed(spec: Spec) -> bool:
    return any(op == "remove_cheese" for op, _ in spec.target_edits)


@dataclass(frozen=True)
class Plan:
    spec: Spec
    vectors: tuple[VectorPlan, ...]  # one per site, in the spec's order
    target: str
    rule: Rule
    pair: PairSpec | None  # the pair each maze's own vector is built from for the cosine; None: no pair known

    @property
    def layer(self) -> str:
        return ", ".join(v.layer for v in self.vectors)

    @property
    def kind(self) -> str:
        return self.vectors[0].kind

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        maze = session.target_maze(self.spec, seed)
        try:
            vecs = [v.for_target(session, self.spec, seed) for v in self.vectors]
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        coeffs = grid(self.spec)
        behavioural = self.target not in FIELD_TARGETS
        render = facing_inputs if behavioural else FieldInputs.render
        inputs = render(session.renderer, maze, session.device)
        feats = decision_features(maze)
        entry: dict[str, Any] = {
            "seed": seed,
            **maze_info(maze),
            **{k: (None if np.isnan(feats[k]) else feats[k]) for k in FEATURES},
            "vector_source_seed": vecs[0].meta.get("source_seed"),
            "by_layer": [],
        }
        for plan, vec in zip(self.vectors, vecs, strict=True):
            curve = self.curve(session, inputs, plan.layer, vec, coeffs)
            p0 = curve.p[coeffs.index(0.0)]
            cosine, why = self.cosine(session, seed, plan, vec)
            up = self.rule.direction > 0
            row = {
                "layer": plan.layer,
                **read_curve(curve, self.rule),
                "p_original": p0,
                "headroom": None if p0 is None else (1.0 - p0 if up else p0),
                "cosine": cosine,
                **({"cosine_reason": why} if why else {}),
                "vector_norm": float(vec.tensor.float().norm()),
                "p": list(curve.p),
                "log_odds": None if None in curve.p else log_odds([p for p in curve.p if p is not None]).tolist(),
                "wall_mass": list(curve.wall_mass),
                "entropy": list(curve.entropy),
                "crumbled": [bool(x) for x in crumbling(curve, self.rule)],
            }
            entry["by_layer"].append(row)
        return "done", [], entry

    def curve(
        self, session: Session, inputs: FieldInputs, layer: str, vec: SteeringVector, coeffs: tuple[float, ...]
    ) -> Curve:
        """The target and the crumbling measures at every coefficient: the prefix to `layer` once, every
        coefficient through one batched suffix (passes of ~4x the batch size, as dose-response measured fastest)."""
        nonzero = [c for c in coeffs if c != 0]
        order = [0.0, *nonzero]
        size = 4 * self.spec.batch_size
        numbers: list[tuple[float | None, float, float]] = []
        if self.target in FIELD_TARGETS:
            fields = vector_fields(session.policy, inputs, layer, [None, *(c * vec.tensor for c in nonzero)], size)
            for f in fields:
                crumble = field_numbers(f)
                numbers.append((METRICS[self.target].unpatched(f), crumble["wall_mass"], crumble["entropy"]))
        else:
            patch_sets = [(), *([(layer, vec.tensor, c)] for c in nonzero)]
            squares = regions(inputs.maze)
            for f in facing_fields(session.policy, inputs, patch_sets, size):
                b = behaviour(f, regions=squares)
                if self.target in BEHAVIOUR_TARGETS:
                    value = METRICS[self.target].unpatched(b)
                else:
                    value = behaviour_numbers(b, squares)[self.target]
                crumble = field_numbers(facing_slice(f))
                numbers.append((value, crumble["wall_mass"], crumble["entropy"]))
        at = dict(zip(order, numbers, strict=True))
        cols = list(zip(*(at[c] for c in coeffs), strict=True))
        return Curve(coeffs, tuple(cols[0]), tuple(float(v) for v in cols[1]), tuple(float(v) for v in cols[2]))

    def cosine(
        self, session: Session, seed: int, plan: VectorPlan, vec: SteeringVector
    ) -> tuple[float | None, str | None]:
        """Cosine between the maze's own vector at the site and the vector applied (1 when it is the own one)."""
        if plan.fixed is None and plan.feature is None:
            return 1.0, None
        if self.pair is None:
            return None, f"a {plan.kind} vector from a file names no pair to build the maze's own from"
        try:
            own = build_vector(session, self.spec, seed, self.pair, plan.layer)
        except SteerError as e:
            return None, excerpt(str(e), 200)
        a, b = own.tensor.flatten().double(), vec.tensor.flatten().double()
        if not bool(b.any()):
            return None, "the vector applied is zero: no direction to compare"
        return float(torch.dot(a, b) / (a.norm() * b.norm())), None


def plan(spec: Spec, session: Session) -> Plan:
    o = spec.options
    sites = o.layers or (spec.layer,)
    vectors = []
    for i, site in enumerate(sites):
        if o.layers:  # a bad name is refused under its own key, before any vector is built
            resolve_layer(session.policy, site, f"layers[{i}]")
        vectors.append(plan_vector(session, replace(spec, layer=site), o.vector, 1.0, "vector"))
    kind = vectors[0].kind
    target = o.target or natural_target(kind, cheese_removed(spec))
    if target is None:
        raise SteerError(
            f"target: a {kind} vector has no natural target; name one, e.g. target: p_top_right_ds "
            f"(targets: {', '.join(TARGETS)})."
        )
    if cheese_removed(spec) and target in NEEDS_CHEESE:  # a file's kind is known only now
        raise SteerError(
            f"target: {target} is undefined on mazes with the cheese removed (target_edits: "
            "[remove_cheese]); follow a target the mazes have, e.g. target: time_in_top_right."
        )
    direction = o.direction or default_direction(kind, target)
    wall, entropy = o.crumble
    rule = Rule(1 if direction == "up" else -1, o.moved, wall, entropy, o.fit_within)
    pair = (
        o.vector.pair if o.vector.pair is not None else (PairSpec(kind) if kind in KINDS and kind != "custom" else None)
    )
    return Plan(spec, tuple(vectors), target, rule, pair)


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    by_layer = []
    for i, v in enumerate(plan.vectors):
        rows = [{**{k: m.get(k) for k in FEATURES}, **m["by_layer"][i]} for m in done]
        defined = [r for r in rows if r["class"] is not None]
        by_layer.append({"layer": v.layer, **site_summary(rows), "predictors": predictor_summary(defined)})
    body = {
        "vector": [v.describe() for v in plan.vectors],
        "target": plan.target,
        "target_label": target_label(plan.target),
        "rule": plan.rule.to_json(),
        "coeffs": list(grid(spec)),
        "layers": [v.layer for v in plan.vectors],
        "predictors": PREDICTORS,
        "mazes": list(done),
        "summary": {"mazes": len(done), "by_layer": by_layer},
    }
    head = f"{plan.kind} vector · {target_label(plan.target)} · {len(done)} mazes · {session.title}"
    shown = spec.options.show or spread(done)
    return Report(body, figures(body, shown, head) if done else {})


def spread(done: Sequence[dict[str, Any]], count: int = 4) -> tuple[int, ...]:
    """The mazes drawn by default: at the first site, those at the lowest, a third, two thirds and the highest
    steerability among the mazes where the target is defined (a blank panel would show nothing)."""
    ranked = sorted(
        (m for m in done if m["by_layer"][0]["class"] is not None),
        key=lambda m: (m["by_layer"][0]["steerability"], m["seed"]),
    )
    if not ranked:
        return ()
    picks = dict.fromkeys(ranked[round(i * (len(ranked) - 1) / (count - 1))]["seed"] for i in range(count))
    return tuple(sorted(picks))


def summary_lines(report: dict[str, Any]) -> list[str]:
    lines = [f"{report['summary']['mazes']} mazes; target {report['target']} ({report['rule']['direction']})"]
    for s in report["summary"]["by_layer"]:
        st = s["steerability"]
        anti = s["anti_steerable"]
        best = s["predictors"]["best"]
        lines.append(
            f"{s['layer']}: steerability median {fmt(st['median'], 3)} (n {s['n']}), anti-steerable "
            f"{fmt(anti['value'])}, not moved {fmt(s['not_moved']['value'])}, crumbles before moving "
            f"{fmt(s['crumbles_before_moving']['value'])}, moves and returns "
            f"{fmt(s['moves_and_returns']['value'])}; best predictor {best or 'none'}"
        )
    return lines


STUDY = Study(
    name="steerability",
    help="Per maze, the slope of a target's log-odds against the coefficient, where it crumbles, and what predicts it.",
    options=SteerabilityOptions,
    check=check,
    plan=plan,
    report=report,
    summary=summary_lines,
    tables=TABLES,
)
