"""`steer compose`: several vectors, each with its own coefficient and layer, added in one forward pass.

Per maze the additivity error ||Δ(all) − ΣΔ(single)|| / ||Δ(all)|| compares the joint change of the action
probabilities with the sum of the single-vector changes (Frobenius over squares × 15 actions).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from steer.analysis.chain import maze_behaviours
from steer.analysis.metrics import behaviour_metrics, describe, effect_metrics, fmt, maze_metrics, summarize
from steer.errors import SteerError
from steer.net.vectors import SteeringVector
from steer.net.vfield import FieldInputs, VectorField, vector_field
from steer.report.captions import DIFF_RGB, headline
from steer.report.field_vector import save_field
from steer.report.render import LEGEND, FieldFigure, Panel, field_figure
from steer.report.tables import MAZE_COLUMNS, SEED, Column, Table, maze_keys, metric_columns, metric_values
from steer.run.options import Options, compose_items, metrics_option, option
from steer.run.session import Session
from steer.run.spec_values import ComposeItem
from steer.run.specs import Spec
from steer.run.study import CellResult, Finished, Report, Study, StudyTable
from steer.run.vector_plan import VectorPlan, plan_vector


def additivity_error(original: np.ndarray, singles: Sequence[np.ndarray], together: np.ndarray) -> float | None:
    """||Δ(all) − ΣΔ(single)||_F / ||Δ(all)||_F over squares × actions; None when the joint change is zero."""
    base = original.astype(np.float64)
    joint = together.astype(np.float64) - base
    predicted = sum((s.astype(np.float64) - base for s in singles), np.zeros_like(base))
    norm = float(np.linalg.norm(joint))
    return None if norm == 0 else float(np.linalg.norm(joint - predicted)) / norm


@dataclass(frozen=True, kw_only=True)
class ComposeOptions(Options):
    vectors: tuple[ComposeItem, ...] = option(
        compose_items,
        beside=True,
        missing="vectors: missing; give the vectors to compose, each {vector: {kind: cheese}, coeff: -1}.",
    )
    metrics: tuple[str, ...] = metrics_option()


def check(spec: Spec) -> None:
    if len(spec.options.vectors) < 2:
        raise SteerError("vectors: compose needs at least two vectors; `steer apply` applies a single one.")


@dataclass(frozen=True)
class Plan:
    spec: Spec
    vectors: tuple[VectorPlan, ...]

    @property
    def layer(self) -> str:
        return ", ".join(dict.fromkeys(p.layer for p in self.vectors))

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        try:
            target = session.target_maze(self.spec, seed)
            vectors = [plan.for_target(session, self.spec, seed) for plan in self.vectors]
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        m, fig = _compose_seed(session, self.spec, seed, target, self.vectors, vectors)
        return "done", save_field(fig, out / f"compose-seed{seed}.png", self.spec.figures), m


def plan(spec: Spec, session: Session) -> Plan:
    return Plan(
        spec,
        tuple(
            plan_vector(session, spec, item.vector, item.coeff, f"vectors[{i}]", item.layer, item.label)
            for i, item in enumerate(spec.options.vectors)
        ),
    )


def _compose_seed(
    session: Session,
    spec: Spec,
    seed: int,
    target: Any,
    plans: Sequence[VectorPlan],
    vectors: Sequence[SteeringVector],
) -> tuple[dict[str, Any], FieldFigure]:
    policy, bs = session.policy, spec.batch_size
    inputs = FieldInputs.render(session.renderer, target, session.device)
    patches = [(plan.layer, vec.tensor, plan.coeff) for plan, vec in zip(plans, vectors, strict=True)]
    original = vector_field(policy, inputs, batch_size=bs)
    singles = [vector_field(policy, inputs, [patch], batch_size=bs) for patch in patches]
    together = vector_field(policy, inputs, patches, batch_size=bs)
    m = {
        "seed": seed,
        **maze_metrics(original, together),
        "additivity_error": additivity_error(original.probs, [s.probs for s in singles], together.probs),
        "joint_change_norm": float(np.linalg.norm(together.probs.astype(np.float64) - original.probs)),
        "singles": [
            {"label": plan.label, "source_seed": vec.meta.get("source_seed"), **effect_metrics(original, single)}
            for plan, vec, single in zip(plans, vectors, singles, strict=True)
        ],
    }
    if spec.options.metrics:  # asked-for behaviour metrics, for each vector alone and for all together
        before, *alone, joint = maze_behaviours(
            policy, session.renderer, target, [(), *([patch] for patch in patches), patches]
        )
        m.update(behaviour_metrics(before, joint, spec.options.metrics))
        for single, b in zip(m["singles"], alone, strict=True):
            single.update(behaviour_metrics(before, b, spec.options.metrics))
    title = f"seed {seed} · compose {' and '.join(p.label for p in plans)} · {session.title}"
    return m, _figure(title, original, singles, together, plans, m)


def _figure(
    title: str,
    original: VectorField,
    singles: Sequence[VectorField],
    together: VectorField,
    plans: Sequence[VectorPlan],
    m: dict[str, Any],
) -> FieldFigure:
    maze, pos = original.maze, original.positions
    panels = [Panel(maze, pos, original.arrows, "original\n" + headline(maze, m, "original"))]
    for plan, single, s in zip(plans, singles, m["singles"], strict=True):
        caption = headline(maze, {**s, "decision_square": m["decision_square"]}, "patched")
        panels.append(Panel(maze, pos, single.arrows, f"{plan.label} alone\n{caption}"))
    panels.append(Panel(maze, pos, together.arrows, "all together\n" + headline(maze, m, "patched")))
    panels.append(
        Panel(
            maze,
            pos,
            together.arrows - original.arrows,
            f"all - original\nadditivity error {fmt(m['additivity_error'])}",
            color=DIFF_RGB,
        )
    )
    layers = ", ".join(dict.fromkeys(f"{p.label} at {p.layer}" for p in plans))
    return field_figure(title, panels, footer=f"{layers} · {LEGEND}")


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    return Report(
        {
            "vectors": [p.describe() for p in plan.vectors],
            "mazes": done,
            "summary": {**summarize(done), "additivity_error": describe([m["additivity_error"] for m in done])},
        }
    )


def summary(report: dict[str, Any]) -> list[str]:
    s = report["summary"]
    return [
        f"{s['mazes']} mazes: median additivity error {fmt(s['additivity_error']['median'], 3)}; median "
        f"P(cheese | decision square) {fmt(s['p_cheese_ds']['original']['median'], 3)} -> "
        f"{fmt(s['p_cheese_ds']['patched']['median'], 3)}"
    ]


MAZES = Table(
    "mazes",
    "one row per maze and condition",
    (
        SEED,
        *MAZE_COLUMNS,
        Column(
            "condition",
            "str",
            "",
            "original (the policy left alone); patched (every vector added together); single (one vector alone)",
        ),
        Column("vector", "str", "", "the vectors added, as labelled in the report (`-1 x cheese`), joined by +"),
        Column("source_seed", "int", "", "single: the maze the vector was computed on (empty for a mean or a file)"),
        Column(
            "additivity_error",
            "float",
            "fraction",
            "patched: ||D(all) - sum of D(single)|| / ||D(all)|| over squares x actions (0: exactly additive)",
        ),
        Column("joint_change_norm", "float", "probability", "patched: ||D(all)||, over squares x actions"),
        *metric_columns(),
    ),
)


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    """The original, every vector together and each alone, per maze."""
    for m in f.done:
        keys = {"seed": m["seed"], **maze_keys(m)}
        yield {**keys, "condition": "original", **metric_values(m, "original")}
        together = " + ".join(s["label"] for s in m["singles"])
        yield {**keys, "condition": "patched", "vector": together, "additivity_error": m["additivity_error"],
               "joint_change_norm": m["joint_change_norm"], **metric_values(m, "patched")}  # fmt: skip
        for single in m["singles"]:
            yield {**keys, "condition": "single", "vector": single["label"], "source_seed": single["source_seed"],
                   **metric_values(single, "patched")}  # fmt: skip


STUDY = Study(
    name="compose",
    help="Apply several vectors together (each with its own coefficient and layer); measure their additivity.",
    options=ComposeOptions,
    check=check,
    plan=plan,
    report=report,
    summary=summary,
    tables=(StudyTable(MAZES, maze_rows),),
)
