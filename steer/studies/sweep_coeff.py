"""`steer sweep-coeff`: one vector at each coefficient of `coeffs`.

Per maze every registered metric at every coefficient; a field grid for the mazes in `grid_seeds`; a chart
of each metric against the coefficient (median and 25–75% band over mazes). The network prefix up to the
injection layer runs once per maze and only the suffix runs per coefficient (`FieldInputs` memoises it).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from steer.analysis.chain import maze_behaviours
from steer.analysis.metrics import (
    BEHAVIOUR_METRICS,
    FIELD_METRICS,
    MAZE_KEYS,
    METRICS,
    behaviour_metrics,
    describe,
    effect_metrics,
    fmt,
    maze_info,
    patched_value,
    summarize,
    unpatched_metrics,
)
from steer.errors import SteerError
from steer.net.vfield import FieldInputs, VectorField, vector_fields
from steer.report.charts import BandSeries, band_charts
from steer.report.field_vector import save_field
from steer.report.render import LEGEND, FieldFigure, Panel, field_figure
from steer.report.tables import (
    COEFF,
    MAZE_COLUMNS,
    SEED,
    VECTOR_SOURCE_SEED,
    Column,
    Table,
    maze_keys,
    metric_columns,
    metric_values,
)
from steer.run.options import Options, coeffs_option, metrics_option, seeds_option, vector_option
from steer.run.session import Session
from steer.run.spec_values import VectorSpec
from steer.run.specs import Spec
from steer.run.study import CellResult, Finished, Report, Study, StudyTable, seed_list
from steer.run.vector_plan import OneVectorPlan, VectorPlan, plan_vector


@dataclass(frozen=True, kw_only=True)
class SweepOptions(Options):
    vector: VectorSpec = vector_option()
    coeffs: tuple[float, ...] = coeffs_option(
        missing="coeffs: missing; give a list such as [-1, 1, 2] or a range {from: -2, to: 2, step: 0.5}."
    )
    grid_seeds: tuple[int, ...] = seeds_option(about="seeds whose fields are drawn at every coefficient")
    metrics: tuple[str, ...] = metrics_option()


def check(spec: Spec) -> None:
    for i, seed in enumerate(spec.options.grid_seeds):
        if seed not in spec.seeds:
            raise SteerError(
                f"grid_seeds[{i}]: seed {seed} is not one of the seeds ({seed_list(spec.seeds)}); "
                "a field grid can only be drawn for a maze the sweep runs."
            )


@dataclass(frozen=True)
class Plan(OneVectorPlan):
    grid_seeds: frozenset[int]  # the mazes whose fields are drawn across coefficients

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        try:
            target, vec = self.target_and_vector(session, seed)
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        inputs = FieldInputs.render(session.renderer, target, session.device)
        # The prefix up to the layer runs once; the original and every coefficient share one batched suffix.
        deltas = [None, *(c * vec.tensor for c in self.spec.options.coeffs)]
        original, *fields = vector_fields(session.policy, inputs, self.layer, deltas, self.spec.batch_size)
        entry = {
            "seed": seed,
            **maze_info(target),
            "vector_source_seed": vec.meta.get("source_seed"),
            "original": unpatched_metrics(original),
            "by_coeff": [
                {"coeff": c, **effect_metrics(original, f)}
                for c, f in zip(self.spec.options.coeffs, fields, strict=True)
            ],
        }
        if self.spec.options.metrics:  # asked-for behaviour metrics: exact episode statistics at every coefficient
            patch_sets = [(), *([(self.layer, vec.tensor, c)] for c in self.spec.options.coeffs)]
            before, *after = maze_behaviours(session.policy, session.renderer, target, patch_sets)
            entry["original"].update({n: BEHAVIOUR_METRICS[n].unpatched(before) for n in self.spec.options.metrics})
            for row, b in zip(entry["by_coeff"], after, strict=True):
                row.update(behaviour_metrics(before, b, self.spec.options.metrics))
        files = []
        if seed in self.grid_seeds:
            grid = _grid(session, self.vector, entry, [original, *fields])
            files = save_field(grid, out / f"sweep-fields-seed{seed}.png", self.spec.figures)
        return "done", files, entry


def plan(spec: Spec, session: Session) -> Plan:
    return Plan(
        spec,
        plan_vector(session, spec, spec.options.vector, 1.0, "vector"),
        frozenset(spec.options.grid_seeds or spec.seeds[:1]),
    )


def sweep_summary(coeffs: Sequence[float], mazes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per coefficient every metric's summary; per metric its median and quartile band across coefficients."""
    per_coeff = []
    for i, c in enumerate(coeffs):
        rows = [{**{k: m[k] for k in MAZE_KEYS}, **m["by_coeff"][i]} for m in mazes]
        per_coeff.append({"coeff": c, **summarize(rows)})
    bands = {}
    for key in [*FIELD_METRICS, *(k for k in BEHAVIOUR_METRICS if mazes and k in mazes[0]["original"])]:
        at = [
            describe([patched_value(m["by_coeff"][i][key]) for m in mazes], intervals=False) for i in range(len(coeffs))
        ]
        original = describe([m["original"][key] for m in mazes], intervals=False)
        bands[key] = {
            "median": [s["median"] for s in at],
            "q25": [s["q25"] for s in at],
            "q75": [s["q75"] for s in at],
            "n": [s["n"] for s in at],
            "original_median": original["median"],
        }
    return {"mazes": len(mazes), "by_coeff": per_coeff, "bands": bands}


def _signals(m: dict[str, Any]) -> str:
    return f"H {fmt(patched_value(m['entropy']))} · wall {fmt(patched_value(m['wall_mass']))}"


def _grid(session: Session, plan: VectorPlan, entry: dict[str, Any], fields: Sequence[VectorField]) -> FieldFigure:
    original = fields[0]
    panels = [Panel(original.maze, original.positions, original.arrows, f"original\n{_signals(entry['original'])}")]
    for m, f in zip(entry["by_coeff"], fields[1:], strict=True):
        caption = f"coeff {m['coeff']:g} · TV {fmt(m['mean_tv'])}\n{_signals(m)}"
        panels.append(Panel(f.maze, f.positions, f.arrows, caption))
    title = f"seed {entry['seed']} · {plan.kind} vector at {plan.layer} over coefficients · {session.title}"
    footer = f"H: mean action entropy (nats) · wall: mean P(move into a wall) · TV: mean TV from original · {LEGEND}"
    widest = 4 if original.maze.maze_dim > 9 else 6  # big mazes draw wide panels
    rows = -(-len(panels) // widest)
    return field_figure(title, panels, footer=footer, columns=-(-len(panels) // rows))  # rows as even as can be


def metrics_chart(coeffs: Sequence[float], summary: dict[str, Any], title: str) -> Figure:
    """Every metric against the coefficient, from a report's summary (a notebook can redraw it from
    metrics.json): median and 25-75% band over mazes, the unpatched median dashed."""
    series = []
    for key, b in summary["bands"].items():
        metric = METRICS[key]
        if not any(n for n in b["n"]):
            continue  # e.g. cheese metrics on cheese-removed mazes
        series.append(BandSeries(metric.label, b["median"], b["q25"], b["q75"], b["n"], b["original_median"]))
    uneven = len({round(b - a, 9) for a, b in itertools.pairwise(coeffs)}) > 1
    footer = "dashed: median of the original (unpatched) policy"
    if uneven:
        footer += " · coefficients are evenly spaced on the x axis, not to scale"
    return band_charts(title, [f"{c:g}" for c in coeffs], series, footer=footer)


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    summary = sweep_summary(spec.options.coeffs, done)
    title = f"{plan.vector.kind} vector at {plan.vector.layer} · {summary['mazes']} mazes · {session.title}"
    figures = {"sweep-metrics.png": metrics_chart(spec.options.coeffs, summary, title)} if done else {}
    return Report(
        {"vector": plan.vector.describe(), "coeffs": list(spec.options.coeffs), "mazes": done, "summary": summary},
        figures,
    )


def summary_lines(report: dict[str, Any]) -> list[str]:
    keys = ("mean_tv", "p_toward_top_right", "entropy", "wall_mass")
    return [
        f"coeff {row['coeff']:g}: "
        + ", ".join(
            f"{METRICS[k].label} {fmt(patched_value(row[k])['median'] if METRICS[k].paired else row[k]['median'], 3)}"
            for k in keys
        )
        for row in report["summary"]["by_coeff"]
    ]


MAZES = Table(
    "mazes",
    "one row per maze and condition: the original, then one per coefficient",
    (
        SEED,
        *MAZE_COLUMNS,
        Column("condition", "str", "", "original (the policy left alone); patched (with coeff x the vector)"),
        COEFF,
        VECTOR_SOURCE_SEED,
        *metric_columns(),
    ),
)


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    for m in f.done:
        keys = {"seed": m["seed"], **maze_keys(m), "vector_source_seed": m["vector_source_seed"]}
        yield {**keys, "condition": "original", **metric_values(m["original"], "original")}
        for row in m["by_coeff"]:
            yield {**keys, "condition": "patched", "coeff": row["coeff"], **metric_values(row, "patched")}


STUDY = Study(
    name="sweep-coeff",
    help="Apply one vector at each of several coefficients; chart each metric against the coefficient.",
    options=SweepOptions,
    check=check,
    plan=plan,
    report=report,
    summary=summary_lines,
    tables=(StudyTable(MAZES, maze_rows),),
)
