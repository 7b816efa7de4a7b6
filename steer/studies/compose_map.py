"""`steer compose-map`: how additive two vectors are across a grid of coefficients (s, t).

    seeds: {from: 0, to: 29}
    vectors: [{vector: {kind: cheese}}, {vector: {kind: top_right}}]   # no coeff: the grid gives them
    grid: {s: [-2, -1, 0, 1, 2], t: [-1, 0, 1]}   # optional; default s = t = [-2, -1, -0.5, 0, 0.5, 1, 2]
    references: [self, random]                    # optional; default both
    sites: [block3.conv, fc]                      # optional; default every site after the layer through fc_policy

Per maze and cell (s, t), with Δ(s, t) = f(x + s·v1 + t·v2) − f(x): the additivity error
‖Δ(s,t) − Δ(s,0) − Δ(0,t)‖ / ‖Δ(s,t)‖ (Frobenius over squares; None at (0, 0)) at the action probabilities and
at each downstream site, and the behaviour prediction error |m(s,t) − [m(s,0) + m(0,t) − m(0,0)]| for
P(cheese | DS) and P(top-right | DS). On the s = 0 row and t = 0 column both are 0 by construction.

References on the same grid: `self` composes v1 with itself (Δ depends on s + t alone; its error shows the
network's own non-linearity along v1) and `random` composes v1 with a Gaussian vector of v2's norm (seeded per
maze from `control_seed`, recorded). Both vectors must be at one layer, so every cell is one suffix run from
that site; the prefix runs once per maze and all cells go through the suffix together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from steer.analysis.controls import random_like, random_seed
from steer.analysis.metrics import METRICS, describe, fmt, maze_info
from steer.errors import SteerError, excerpt
from steer.net.policy import display_name
from steer.net.vfield import FieldInputs, VectorField, action_probs, check_finite
from steer.report import compose_figs
from steer.run.options import Options, control_seed_option, option
from steer.run.session import Session
from steer.run.spec_fields import _Fields, parse_names
from steer.run.spec_values import ComposeItem, _beside_spec, parse_coeffs, parse_layers, parse_vector
from steer.run.specs import Spec
from steer.run.study import CellResult, Report, Study
from steer.run.vector_plan import VectorPlan, plan_vector
from steer.studies.compose_map_tables import BEHAVIOUR, PROBS, TABLES

DEFAULT_AXIS = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)
REFERENCES = ("self", "random")


def parse_items(value: Any, where: str = "vectors", path: Path | None = None) -> tuple[ComposeItem, ...]:
    """Exactly two {vector, layer?, label?} entries; a `coeff` is refused, since the grid sets both coefficients."""
    if not isinstance(value, list) or len(value) != 2:
        raise SteerError(f"{where}: expected a list of exactly two {{vector: ...}} entries, got {excerpt(value)}.")
    items = []
    for i, item in enumerate(value):
        w = f"{where}[{i}]"
        if isinstance(item, dict) and "coeff" in item:
            raise SteerError(
                f"{w}.coeff: compose-map takes both coefficients from `grid` (s for the first vector, t "
                "for the second); remove coeff."
            )
        f = _Fields(item, w, ("vector", "layer", "label"))
        if not f.has("vector"):
            raise SteerError(f"{w}.vector: missing; give an inline vector spec ({{kind: cheese}}) or {{file: PATH}}.")
        vector = _beside_spec(parse_vector(item["vector"], f.where("vector")), path, f.where("vector"))
        items.append(ComposeItem(vector, 1.0, f.get_str("layer"), f.get_str("label")))
    return tuple(items)


def parse_grid(value: Any, where: str = "grid") -> dict[str, tuple[float, ...]]:
    """{s: [...], t: [...]} (each a list of numbers or a range); 0 is added to each axis when missing, since
    every cell's error needs its (s, 0) and (0, t) neighbours."""
    f = _Fields(value, where, ("s", "t"))
    axes = {k: parse_coeffs(f.data[k], f.where(k)) if f.has(k) else DEFAULT_AXIS for k in ("s", "t")}
    return {k: tuple(sorted({*v, 0.0})) for k, v in axes.items()}


def parse_references(value: Any, where: str = "references") -> tuple[str, ...]:
    return parse_names(value, where, REFERENCES, "[self, random]", f"is not a reference; use {', '.join(REFERENCES)}.")


@dataclass(frozen=True, kw_only=True)
class ComposeMapOptions(Options):
    vectors: tuple[ComposeItem, ...] = option(
        parse_items,
        beside=True,
        missing="vectors: missing; give the two vectors to compose, e.g. [{vector: {kind: cheese}}, "
        "{vector: {kind: top_right}}].",
    )
    grid: dict[str, tuple[float, ...]] = option(
        parse_grid, default={"s": (*DEFAULT_AXIS,), "t": (*DEFAULT_AXIS,)}, about="{s: [...], t: [...]}"
    )
    references: tuple[str, ...] = option(parse_references, default=REFERENCES)
    sites: tuple[str, ...] | None = option(parse_layers, default=None, about="sites measured (default: all after)")
    control_seed: int = control_seed_option()


def additivity_sums(values: torch.Tensor, i0: int, j0: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums of squares per (s, t) of the residual Δ(s,t) − Δ(s,0) − Δ(0,t) and of Δ(s,t), over all other dims.

    `values`: (S, T, ...) at one site, (i0, j0) the cell s = t = 0. The residual is formed as
    (V(s,t) − V(s,0)) − (V(0,t) − V(0,0)), which is exactly 0 in floating point on both axes.
    """
    row0 = values[i0 : i0 + 1]  # V(0, t)
    col0 = values[:, j0 : j0 + 1]  # V(s, 0)
    residual = (values - col0) - (row0 - values[i0 : i0 + 1, j0 : j0 + 1])
    joint = values - values[i0 : i0 + 1, j0 : j0 + 1]
    rest = tuple(range(2, values.ndim))
    return residual.double().square().sum(rest), joint.double().square().sum(rest)


def ratio(residual_sq: np.ndarray, joint_sq: np.ndarray) -> list[list[float | None]]:
    """‖residual‖ / ‖Δ(s,t)‖ per cell; None where Δ(s,t) = 0 (the (0, 0) cell)."""
    return [
        [None if j == 0 else float(np.sqrt(r / j)) for r, j in zip(rr, jj, strict=True)]
        for rr, jj in zip(residual_sq, joint_sq, strict=True)
    ]


def prediction_errors(values: list[list[float | None]], i0: int, j0: int) -> list[list[float | None]]:
    """|m(s,t) − [m(s,0) + m(0,t) − m(0,0)]| per cell, grouped so that both axes give exactly 0."""
    out = []
    for i, row in enumerate(values):
        line: list[float | None] = []
        for j, v in enumerate(row):
            parts = (v, values[i][j0], values[i0][j], values[i0][j0])
            if any(p is None for p in parts):
                line.append(None)
            else:
                a, b, c, d = parts  # grouped as (m(s,t) − m(s,0)) − (m(0,t) − m(0,0)): 0 exactly on both axes
                line.append(abs((a - b) - (c - d)))  # type: ignore[operator]
        out.append(line)
    return out


def downstream(session: Session, layer: str, asked: tuple[str, ...] | None) -> tuple[str, ...]:
    """Internal site names measured besides the probabilities: those asked for, or every site after the layer
    through fc_policy (the per-site maps show where along the network the non-additivity appears)."""
    policy = session.policy
    start, last = policy.site_index(layer), policy.site_index("fc_policy")
    if asked is None:
        # `flatten` is relu3 reshaped: the same numbers, so measuring it twice would add nothing.
        return tuple(s.name for s in policy.sites[start + 1 : last + 1] if s.name != "flatten")
    out = []
    for i, name in enumerate(asked):
        try:
            site = policy.resolve(name)
        except SteerError:
            raise SteerError(f"sites[{i}]: {excerpt(name)} is not a hook point of this policy.") from None
        if not start < policy.site_index(site) <= last:
            raise SteerError(f"sites[{i}]: {display_name(site)} is not downstream of {display_name(layer)}.")
        out.append(site)
    return tuple(sorted(dict.fromkeys(out), key=policy.site_index))


@dataclass(frozen=True)
class Plan:
    spec: Spec
    vectors: tuple[VectorPlan, VectorPlan]
    grid: dict[str, tuple[float, ...]]
    references: tuple[str, ...]
    sites: tuple[str, ...]

    @property
    def layer(self) -> str:
        return self.vectors[0].layer

    @property
    def combos(self) -> tuple[str, ...]:
        return ("pair", *self.references)

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        try:
            target = session.target_maze(self.spec, seed)
            v1, v2 = (p.for_target(session, self.spec, seed) for p in self.vectors)
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        rseed = random_seed(self.spec.options.control_seed, seed)
        seconds = {"pair": v2.tensor, "self": v1.tensor, "random": random_like(v2, rseed).tensor}
        entry: dict[str, Any] = {
            "seed": seed,
            **maze_info(target),
            "v1_norm": float(v1.tensor.norm()),
            "v2_norm": float(v2.tensor.norm()),
            "random_seed": rseed if "random" in self.references else None,
        }
        inputs = FieldInputs.render(session.renderer, target, session.device)
        entry["combos"] = self._measure(session, inputs, target, v1.tensor, [seconds[c] for c in self.combos])
        return "done", [], entry

    def _measure(
        self, session: Session, inputs: FieldInputs, target: Any, first: torch.Tensor, seconds: list[torch.Tensor]
    ) -> dict[str, Any]:
        policy, site = session.policy, session.policy.resolve(self.layer)
        ss, ts = self.grid["s"], self.grid["t"]
        i0, j0 = ss.index(0.0), ts.index(0.0)
        shape = (len(seconds), len(ss), len(ts))
        k, n = int(np.prod(shape)), len(inputs.positions)
        sums = {s: [torch.zeros(shape, dtype=torch.float64) for _ in range(2)] for s in self.sites}
        probs = []
        step = max(1, 4 * self.spec.batch_size // k)  # observations × cells per suffix pass ≈ 4 × batch_size
        with torch.inference_mode():
            values = inputs.prefix(policy, site, self.spec.batch_size)
            device = values[site].device
            deltas = torch.stack([s * first.to(device) + t * v.to(device) for v in seconds for s in ss for t in ts])
            for i in range(0, n, step):
                batch = {}
                for name, v in values.items():
                    chunk = v[i : i + step]
                    if name == site:
                        batch[name] = (chunk.unsqueeze(0) + deltas.unsqueeze(1)).flatten(0, 1)
                    else:
                        batch[name] = chunk.repeat(k, *([1] * (chunk.ndim - 1)))
                got = policy.run(batch, start=site, keep=frozenset({*self.sites, "fc_policy"}))
                for s in self.sites:
                    per = got[s].reshape(*shape, -1, *got[s].shape[1:])
                    for c in range(len(seconds)):
                        res, joint = additivity_sums(per[c], i0, j0)
                        sums[s][0][c] += res.cpu()
                        sums[s][1][c] += joint.cpu()
                probs.append(action_probs(got["fc_policy"]).reshape(*shape, -1, 15).cpu())
        by_cell = torch.cat(probs, dim=3)
        check_finite(by_cell.numpy(), [self.layer])
        out = {}
        for c, combo in enumerate(self.combos):
            res, joint = additivity_sums(by_cell[c], i0, j0)
            errors = {PROBS: ratio(res.numpy(), joint.numpy())}
            errors.update({display_name(s): ratio(sums[s][0][c].numpy(), sums[s][1][c].numpy()) for s in self.sites})
            behaviour = {
                name: [
                    [
                        METRICS[name].unpatched(VectorField(target, inputs.positions, by_cell[c, i, j].numpy()))
                        for j in range(len(ts))
                    ]
                    for i in range(len(ss))
                ]
                for name in BEHAVIOUR
            }
            out[combo] = {
                "additivity_error": errors,
                "behaviour": behaviour,
                "prediction_error": {name: prediction_errors(v, i0, j0) for name, v in behaviour.items()},
            }
        return out


def plan(spec: Spec, session: Session) -> Plan:
    items = spec.options.vectors
    plans = tuple(
        plan_vector(
            session,
            spec,
            _beside_spec(it.vector, spec.path, f"vectors[{i}].vector"),
            1.0,
            f"vectors[{i}]",
            it.layer,
            it.label or (it.vector.pair and it.vector.pair.kind),
        )
        for i, it in enumerate(items)
    )
    layers = [session.policy.resolve(p.layer) for p in plans]
    if layers[0] != layers[1]:
        raise SteerError(
            f"vectors[1].layer: the vectors are at two layers ({plans[0].layer}, {plans[1].layer}); compose-map adds "
            "both at one site, so give them the same layer (`layer:` for both, or matching vector files)."
        )
    if layers[0] in ("fc_policy", "fc_value"):
        raise SteerError(f"layer: {plans[0].layer} has no site after it; use an earlier layer.")
    refs = spec.options.references
    return Plan(
        spec,
        (plans[0], plans[1]),
        spec.options.grid,
        refs,
        downstream(session, layers[0], spec.options.sites),
    )


def _off_axis_mean(grid: list[list[float | None]], i0: int, j0: int) -> float | None:
    """One maze's mean over the cells off both axes (where the error can be nonzero)."""
    vals = [v for i, row in enumerate(grid) for j, v in enumerate(row) if i != i0 and j != j0 and v is not None]
    return float(np.mean(vals)) if vals else None


def map_summary(plan: Plan, mazes: list[dict[str, Any]]) -> dict[str, Any]:
    ss, ts = plan.grid["s"], plan.grid["t"]
    i0, j0 = ss.index(0.0), ts.index(0.0)
    out: dict[str, Any] = {"mazes": len(mazes), "s": list(ss), "t": list(ts), "combos": {}}
    for combo in plan.combos:
        rows = [m["combos"][combo] for m in mazes]
        entry: dict[str, Any] = {}
        for key in ("additivity_error", "prediction_error"):
            entry[key] = {}
            for name in rows[0][key] if rows else ():
                grids = [r[key][name] for r in rows]
                entry[key][name] = {
                    "cells": [[describe([g[i][j] for g in grids]) for j in range(len(ts))] for i in range(len(ss))],
                    "off_axes": describe([_off_axis_mean(g, i0, j0) for g in grids]),
                    "on_axes": describe(
                        [
                            v
                            for g in grids
                            for i, row in enumerate(g)
                            for j, v in enumerate(row)
                            if (i == i0) != (j == j0)
                        ],
                        intervals=False,
                    ),
                }
        out["combos"][combo] = entry
    return out


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    v1, v2 = plan.vectors
    names = {
        "pair": f"{v1.label} x {v2.label}",
        "self": f"{v1.label} x {v1.label}",
        "random": f"{v1.label} x random (norm of {v2.label})",
    }
    body = {
        "vectors": [p.describe() for p in plan.vectors],
        "grid": {k: list(v) for k, v in plan.grid.items()},
        "references": list(plan.references),
        "combos": {c: names[c] for c in plan.combos},
        "sites": [PROBS, *(display_name(s) for s in plan.sites)],
        "mazes": done,
        "summary": map_summary(plan, done),
    }
    return Report(body, compose_figs.figures(body, session.title) if done else {})


def summary_lines(report: dict[str, Any]) -> list[str]:
    s = report["summary"]
    lines = [f"{s['mazes']} mazes, grid {len(s['s'])} x {len(s['t'])}"]
    for combo, entry in s["combos"].items():
        err = entry["additivity_error"].get(PROBS)
        if err:
            lines.append(
                f"{combo}: median off-axis additivity error {fmt(err['off_axes']['median'], 3)} "
                f"(on axes {fmt(err['on_axes']['median'], 3)})"
            )
    return lines


STUDY = Study(
    name="compose-map",
    help="Map the additivity of two vectors over a grid of coefficients (s, t), with self and random references.",
    options=ComposeMapOptions,
    plan=plan,
    report=report,
    summary=summary_lines,
    tables=TABLES,
)
