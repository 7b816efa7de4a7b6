"""`steer layer-sweep`: the same vector kind computed and applied at each layer; its effect per layer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from steer.analysis.metrics import MAZE_KEYS, METRICS, effect_metrics, fmt, maze_info, summarize
from steer.errors import SteerError
from steer.net.policy import ImpalaPolicy
from steer.net.vectors import KINDS
from steer.net.vfield import FieldInputs, vector_field
from steer.report.charts import bar_rows
from steer.report.tables import (
    COEFF,
    MAZE_COLUMNS,
    SEED,
    Column,
    Table,
    maze_keys,
    metric_columns,
    metric_values,
)
from steer.run.options import Options, coeff_option, layers_option, vector_option
from steer.run.session import Session, resolve_layer
from steer.run.spec_values import VectorSpec
from steer.run.specs import DEFAULT_LAYER, Spec
from steer.run.study import CellResult, Finished, Report, Study, StudyTable
from steer.run.vector_plan import build_vector


@dataclass(frozen=True, kw_only=True)
class LayerSweepOptions(Options):
    vector: VectorSpec = vector_option()
    coeff: float = coeff_option(missing="coeff: missing; give the coefficient to apply at every layer, e.g. coeff: -1.")
    layers: tuple[str, ...] = layers_option(about="'all' (the default) or a list of hook names")


def check(spec: Spec) -> None:
    vec = spec.options.vector
    if vec.pair is None or vec.source_seed is not None or vec.source_seeds is not None:
        raise SteerError(
            "vector: a layer sweep computes each maze's own vector at every layer; give an inline "
            "vector spec such as {kind: cheese} without file, source_seed or source_seeds."
        )


def sweep_layers(spec: Spec, policy: ImpalaPolicy) -> tuple[str, ...]:
    """The spec's layers, or every hook point except the value head (it cannot change the actions)."""
    if not spec.options.layers:
        return tuple(name for name in policy.hook_names if name != "fc_value")
    return tuple(resolve_layer(policy, name, f"layers[{i}]") for i, name in enumerate(spec.options.layers))


@dataclass(frozen=True)
class Plan:
    """One maze: its own vector at every layer, each applied alone; the observations are rendered once."""

    spec: Spec
    layers: tuple[str, ...]

    @property
    def layer(self) -> str:
        return ", ".join(self.layers)

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        spec = self.spec
        assert spec.options.vector.pair is not None
        try:
            target = session.target_maze(spec, seed)
            vectors = [build_vector(session, spec, seed, spec.options.vector.pair, layer) for layer in self.layers]
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        policy, bs = session.policy, spec.batch_size
        inputs = FieldInputs.render(session.renderer, target, session.device)
        original = vector_field(policy, inputs, batch_size=bs, reuse_from=None)
        by_layer = []
        for layer, vec in zip(self.layers, vectors, strict=True):
            patched = vector_field(policy, inputs, [(layer, vec.tensor, spec.options.coeff)], batch_size=bs)
            by_layer.append(
                {"layer": layer, "vector_norm": float(vec.tensor.norm()), **effect_metrics(original, patched)}
            )
        return "done", [], {"seed": seed, **maze_info(target), "by_layer": by_layer}


def plan(spec: Spec, session: Session) -> Plan:
    return Plan(spec, sweep_layers(spec, session.policy))


def layer_chart(kind: str, coeff: float, per_layer: Sequence[dict[str, Any]], run_title: str) -> Figure:
    """The median effect of the kind's metric at each layer (the report's `summary.by_layer`), beside the
    unpatched policy's median (dashed), the default layer highlighted."""
    labels = [row["layer"] for row in per_layer]
    # The vector kind's own metric; where it is undefined everywhere (top-right vectors on cheese-removed
    # mazes have no decision squares), the mean step toward the top-right.
    key = KINDS[kind].effect_metric
    if not METRICS[key].paired or all(row[key]["patched"]["median"] is None for row in per_layer):
        cheese = any(row["p_cheese_ds"]["patched"]["median"] is not None for row in per_layer)
        key = "p_cheese_ds" if cheese else "p_toward_top_right"
    values = [row[key]["patched"]["median"] for row in per_layer]
    original = per_layer[0][key]["original"]["median"] if per_layer else None
    n = per_layer[0]["mazes"] if per_layer else 0
    title = f"{kind} vector x {coeff:g} at each layer · median {METRICS[key].label} · {n} mazes · {run_title}"
    footer = f"dashed: the unpatched policy · highlighted: the default layer {DEFAULT_LAYER}"
    return bar_rows(
        title, labels, values, reference=original, footer=footer, highlight=DEFAULT_LAYER,
        xlabel=f"median {METRICS[key].label} over mazes",
    )  # fmt: skip


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    assert spec.options.vector.pair is not None
    per_layer = []
    for i, layer in enumerate(plan.layers):
        rows = [{**{k: m[k] for k in MAZE_KEYS}, **m["by_layer"][i]} for m in done]
        per_layer.append({"layer": layer, **summarize(rows)})
    kind, coeff = spec.options.vector.pair.kind, spec.options.coeff
    figures = {"layer-sweep.png": layer_chart(kind, coeff, per_layer, session.title)} if done else {}
    return Report(
        {
            "vector": {"kind": spec.options.vector.pair.kind, "coeff": spec.options.coeff},
            "layers": list(plan.layers),
            "mazes": done,
            "summary": {"mazes": len(done), "by_layer": per_layer},
        },
        figures,
    )


def summary(report: dict[str, Any]) -> list[str]:
    rows = report["summary"]["by_layer"]
    best = [r for r in rows if r["p_cheese_ds"]["patched"]["median"] is not None]
    if not best:
        return [f"{len(rows)} layers, {report['summary']['mazes']} mazes"]
    low = min(best, key=lambda r: r["p_cheese_ds"]["patched"]["median"])
    return [
        f"{len(rows)} layers, {report['summary']['mazes']} mazes: lowest median P(cheese | decision square) "
        f"{fmt(low['p_cheese_ds']['patched']['median'], 3)} at {low['layer']}"
    ]


MAZES = Table(
    "mazes",
    "one row per maze and condition: the original, then one per layer the vector was added at",
    (
        SEED,
        *MAZE_COLUMNS,
        Column("condition", "str", "", "original (the policy left alone); patched (with coeff x the vector at layer)"),
        Column("layer", "str", "", "patched: the hook point the maze's own vector was computed at and added to"),
        COEFF,
        Column("vector_norm", "float", "", "patched: the vector's norm at that layer"),
        *metric_columns(),
    ),
)


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    """The original once per maze (the same at every layer), then the patched policy at each layer."""
    for m in f.done:
        keys = {"seed": m["seed"], **maze_keys(m)}
        if m["by_layer"]:
            yield {**keys, "condition": "original", **metric_values(m["by_layer"][0], "original")}
        for row in m["by_layer"]:
            yield {**keys, "condition": "patched", "layer": row["layer"], "coeff": f.spec.options.coeff,
                   "vector_norm": row["vector_norm"], **metric_values(row, "patched")}  # fmt: skip


STUDY = Study(
    name="layer-sweep",
    help="Compute and apply the same vector kind at every layer (or `layers:`); compare the effect per layer.",
    options=LayerSweepOptions,
    check=check,
    plan=plan,
    report=report,
    summary=summary,
    tables=(StudyTable(MAZES, maze_rows),),
)
