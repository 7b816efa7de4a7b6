"""`steer transfer`: vectors computed on `sources` mazes applied to `targets` mazes, as a source × target matrix.

The matrix shows the effect metric of the vector kind (steer.net.vectors.KINDS); every registered field metric's
change has its own matrix in metrics.json. With `vector.source_seeds`, the mean of the pair's vectors over
those mazes is applied to every target too: an extra row, summarised against each target's own vector and
the other single mazes' vectors (steer/analysis/comparison.py). Its two charts are drawn from the report body
by steer/report/transfer_figs.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steer.analysis.chain import maze_behaviours
from steer.analysis.comparison import compare_series, difference_text, mean_label, mean_series
from steer.analysis.metrics import (
    MAZE_KEYS,
    PAIRED,
    behaviour_metrics,
    delta,
    describe,
    fmt,
    maze_info,
    maze_metrics,
)
from steer.errors import SteerError
from steer.maze.layout import Maze
from steer.net.vectors import KINDS, SteeringVector
from steer.net.vfield import FieldInputs, VectorField, vector_fields
from steer.report.captions import diff_panel, headline
from steer.report.field_vector import save_field
from steer.report.render import LEGEND, FieldFigure, Panel, field_figure
from steer.report.transfer_figs import effect_key, matrix_chart, mean_chart
from steer.run.options import Options, coeff_option, metrics_option, pairs_option, seeds_option, vector_option
from steer.run.session import Session, resolve_layer
from steer.run.spec_values import VectorSpec
from steer.run.specs import Spec
from steer.run.study import CellResult, Report, Study, seed_list
from steer.run.vector_plan import build_vector, mean_vector
from steer.studies.transfer_tables import TABLES


def transfer_seeds(spec: Spec) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sources and targets of a transfer; either defaults to `seeds`."""
    return spec.options.sources or spec.seeds, spec.options.targets or spec.seeds


@dataclass(frozen=True, kw_only=True)
class TransferOptions(Options):
    vector: VectorSpec = vector_option(missing="vector: missing; give an inline vector spec such as {kind: cheese}.")
    coeff: float = coeff_option(
        missing="coeff: missing; give the coefficient to multiply each source's vector by, e.g. coeff: -1."
    )
    sources: tuple[int, ...] = seeds_option(sample=True, about="seeds the vectors come from (default: seeds)")
    targets: tuple[int, ...] = seeds_option(sample=True, about="seeds they are applied to (default: seeds)")
    show: tuple[tuple[int, int], ...] = pairs_option(about="[source, target] pairs to draw as fields")
    metrics: tuple[str, ...] = metrics_option()


def check(spec: Spec) -> None:
    if spec.options.vector.feature is not None:
        raise SteerError(
            "vector.feature: transfer moves each source maze's own vector of a pair to other mazes, and a dictionary "
            "feature has no pair; give an inline vector spec such as {kind: cheese}, or apply the feature with "
            "`steer apply`."
        )
    if spec.options.vector.file is not None:
        raise SteerError(
            "vector.file: transfer computes one vector per source seed; give an inline vector spec "
            "such as {kind: cheese}."
        )
    if spec.options.vector.source_seed is not None:
        raise SteerError("vector.source_seed: transfer takes its source seeds from `sources`; remove source_seed.")
    if spec.options.sources and spec.options.targets and spec.raw.get("seeds") is not None:
        raise SteerError("seeds: with both `sources` and `targets` given, `seeds` would be ignored; remove it.")
    sources, targets = transfer_seeds(spec)
    for i, (src, tgt) in enumerate(spec.options.show):
        if src not in sources:
            raise SteerError(f"show[{i}][0]: seed {src} is not one of the sources ({seed_list(sources)}).")
        if tgt not in targets:
            raise SteerError(f"show[{i}][1]: seed {tgt} is not one of the targets ({seed_list(targets)}).")


@dataclass(frozen=True)
class Source:
    seed: int
    maze: Maze
    vector: SteeringVector


@dataclass(frozen=True)
class Plan:
    """Every source's vector, built before the run; one cell per target."""

    spec: Spec
    layer: str
    sources: dict[int, Source]
    source_skips: tuple[dict[str, Any], ...]
    mean: SteeringVector | None = None  # the mean over vector.source_seeds, applied to every target too

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        try:
            target = session.target_maze(self.spec, seed)
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        figures: list[str] = []
        pairs, mean_pair = _target_pairs(session, self, seed, target, out, figures)
        result = {"seed": seed, "maze": {"seed": seed, **maze_info(target)}, "pairs": pairs, "figures": figures}
        return "done", figures, {**result, **({"mean_pair": mean_pair} if mean_pair is not None else {})}


def plan(spec: Spec, session: Session) -> Plan:
    assert spec.options.vector.pair is not None
    layer = resolve_layer(session.policy, spec.effective_layer, "layer")
    sources: dict[int, Source] = {}
    skips = []
    for seed in transfer_seeds(spec)[0]:
        try:
            maze = session.target_maze(spec, seed)
            sources[seed] = Source(seed, maze, build_vector(session, spec, seed, spec.options.vector.pair, layer))
        except SteerError as e:  # a seed can be skipped as a source yet used as a target
            skips.append({"seed": seed, "role": "source", "reason": f"as a source: {e}"})
    if not sources:
        raise SteerError(f"sources: no source seed gives a vector ({skips[0]['reason']}); choose other seeds.")
    mean = None
    if spec.options.vector.source_seeds is not None:
        mean = mean_vector(session, spec, spec.options.vector.source_seeds, spec.options.vector.pair, layer)
    return Plan(spec, layer, sources, tuple(skips), mean)


def _target_pairs(
    session: Session, plan: Plan, seed: int, target: Maze, out: Path, figures: list[str]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Every source vector (and the mean, if asked) on one target; the target's prefix up to the layer runs once."""
    spec = plan.spec
    vectors = [src.vector for src in plan.sources.values()] + ([plan.mean] if plan.mean is not None else [])
    inputs = FieldInputs.render(session.renderer, target, session.device)
    deltas = [None, *(spec.options.coeff * v.tensor for v in vectors)]
    original, *patched_fields = vector_fields(session.policy, inputs, plan.layer, deltas, spec.batch_size)
    behaviours: list[Any] = []
    if spec.options.metrics:  # asked-for behaviour metrics: exact episode statistics with each source's vector
        patch_sets = [(), *([(plan.layer, spec.options.coeff * v.tensor, 1.0)] for v in vectors)]
        behaviours = maze_behaviours(session.policy, session.renderer, target, patch_sets)

    def measures(i: int) -> dict[str, Any]:
        m = maze_metrics(original, patched_fields[i])
        if behaviours:
            m.update(behaviour_metrics(behaviours[0], behaviours[i + 1], spec.options.metrics))
        return m

    def effects(m: dict[str, Any]) -> dict[str, Any]:  # what a pair's row holds of its measures
        return {
            **{f"target_{k}": m[k] for k in MAZE_KEYS},
            **{f"delta_{k}": delta(m[k]) for k in (*PAIRED, *spec.options.metrics)},
            "mean_tv": m["mean_tv"],
            "metrics": {k: m[k] for k in m if k not in MAZE_KEYS},
        }

    mean_pair = None
    if plan.mean is not None:
        mean_pair = {
            "source": "mean",
            "target": seed,
            # In sample: the target's own pair is one of the vectors the mean averages.
            "in_sample": seed in plan.mean.meta["source_seeds"],
            **effects(measures(len(vectors) - 1)),
        }
    rows = []
    for i, (src, patched) in enumerate(zip(plan.sources.values(), patched_fields, strict=False)):
        m = measures(i)
        rows.append(
            {
                "source": src.seed,
                "target": seed,
                "same_maze_dim": src.maze.maze_dim == target.maze_dim,
                # Two cheese-less mazes do not share a cheese square.
                "same_cheese": src.maze.cheese is not None and src.maze.cheese == target.cheese,
                "source_maze_dim": src.maze.maze_dim,
                "source_cheese": maze_info(src.maze)["cheese"],
                **effects(m),
            }
        )
        if (src.seed, seed) in spec.options.show:
            name = f"transfer-src{src.seed}-tgt{seed}.png"
            pair = _pair_figure(session, spec, src, seed, original, patched, m)
            figures += save_field(pair, out / name, spec.figures)
    return rows, mean_pair


def _matrices(
    sources: Sequence[int], targets: Sequence[int], pairs: Sequence[dict[str, Any]], kind: str
) -> dict[str, Any]:
    """Source × target matrices (rows: sources) of each effect; None where undefined or skipped."""
    by_pair = {(p["source"], p["target"]): p for p in pairs}

    def matrix(key: str) -> list[list[Any]]:
        return [[by_pair[(s, t)][key] if (s, t) in by_pair else None for t in targets] for s in sources]

    return {
        "rows": "sources",
        "effect": matrix(effect_key(kind)),
        **{f"delta_{k}": matrix(f"delta_{k}") for k in PAIRED},
        "mean_tv": matrix("mean_tv"),
        "same_maze_dim": matrix("same_maze_dim"),
        "same_cheese": matrix("same_cheese"),
    }


def _pair_figure(
    session: Session, spec: Spec, src: Source, seed: int, original: VectorField, patched: VectorField, m: dict[str, Any]
) -> FieldFigure:
    maze = original.maze
    panels = [
        Panel(maze, original.positions, original.arrows, "original\n" + headline(maze, m, "original")),
        Panel(
            maze, patched.positions, patched.arrows, f"with seed {src.seed}'s vector\n" + headline(maze, m, "patched")
        ),
        diff_panel(original, patched),
    ]
    same = [
        what
        for what, ok in (
            ("maze size", src.maze.maze_dim == maze.maze_dim),
            ("cheese square", src.maze.cheese is not None and src.maze.cheese == maze.cheese),
        )
        if ok
    ]
    title = (
        f"seed {src.seed}'s {src.vector.kind} vector -> seed {seed} · coeff {spec.options.coeff:g} · "
        f"{src.vector.layer} · {session.title}"
    )
    footer = f"same {' and '.join(same)} as the source · {LEGEND}" if same else LEGEND
    return field_figure(title, panels, footer=footer)


def _mean_report(
    plan: Plan, spec: Spec, kind: str, done: Sequence[dict[str, Any]], pairs: list[dict[str, Any]]
) -> dict[str, Any]:
    """The averaged vector's row, and per target its effect beside the target's own and the other sources'."""
    assert plan.mean is not None
    targets = [t for t in transfer_seeds(spec)[1] if t in {d["seed"] for d in done}]
    mean_pairs = {d["seed"]: {**d["mean_pair"], "effect": d["mean_pair"][effect_key(kind)]} for d in done}
    label, in_sample = mean_label(plan.mean.meta["source_seeds"]), [mean_pairs[t]["in_sample"] for t in targets]
    keys = dict.fromkeys((effect_key(kind), "mean_tv"))
    all_targets = transfer_seeds(spec)[1]
    row = {  # aligned with `targets`, like a matrix row; None where a target was skipped
        "label": label,
        **{k: [mean_pairs[t][k] if t in mean_pairs else None for t in all_targets] for k in ("effect", *keys)},
        "in_sample": [t in plan.mean.meta["source_seeds"] for t in all_targets],
    }
    return {
        "mean_vector": {
            "label": label,
            "source_seeds": plan.mean.meta["source_seeds"],
            "skipped_source_seeds": plan.mean.meta["skipped_source_seeds"],
            "norm": float(plan.mean.tensor.float().norm()),
            "single_norms": describe([float(src.vector.tensor.float().norm()) for src in plan.sources.values()]),
        },
        "mean_row": row,
        "mean_pairs": [mean_pairs[t] for t in targets],
        # Per target (the unit of every interval): the mean's effect, the target's own vector's (the diagonal)
        # and the mean over the other single sources' effects; paired differences with Wilcoxon p-values.
        "summary": {
            "by_source": {
                "targets": targets,
                **{
                    k: compare_series(mean_series(targets, mean_pairs, pairs, list(plan.sources), k), in_sample)
                    for k in keys
                },
            }
        },
    }


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    assert spec.options.vector.pair is not None
    kind = spec.options.vector.pair.kind
    sources, targets = transfer_seeds(spec)
    pairs = [p for d in done for p in d["pairs"]]
    info = {d["seed"]: d["maze"] for d in done}
    info.update({seed: {"seed": seed, **maze_info(src.maze)} for seed, src in plan.sources.items()})
    body = {
        "skipped": [
            *plan.source_skips,
            *({**t, "role": "target", "reason": f"as a target: {t['reason']}"} for t in skipped),
        ],
        "vector": {"kind": kind, "layer": plan.layer, "coeff": spec.options.coeff},
        "sources": list(sources),
        "targets": list(targets),
        "mazes": [info[seed] for seed in sorted(info)],
        "effect_metric": KINDS[kind].effect_metric,
        "matrices": _matrices(sources, targets, pairs, kind),
        "pairs": pairs,
        **(_mean_report(plan, spec, kind, done, pairs) if plan.mean is not None else {}),
    }
    figures = {"transfer-matrix.png": matrix_chart(body, session.title)}
    if plan.mean is not None:
        figures["transfer-mean-vs-own.png"] = mean_chart(body, session.title)
    return Report(body, figures)


def summary(report: dict[str, Any]) -> list[str]:
    values = [v for row in report["matrices"]["effect"] for v in row if v is not None]
    span = f", from {min(values):+.3f} to {max(values):+.3f}" if values else ""
    lines = [
        f"{len(report['sources'])} x {len(report['targets'])} pairs; effect = change in {report['effect_metric']}, "
        f"defined for {len(values)}{span}"
    ]
    if "summary" in report:
        block = report["summary"]["by_source"][effect_key(report["vector"]["kind"])]
        for subset, b in block.items():
            lines.append(
                f"{report['mean_vector']['label']} vs own, {subset.replace('_', ' ')} targets: mean effect "
                f"{fmt(b['mean']['mean'], 3)} vs {fmt(b['own']['mean'], 3)}; {difference_text(b['mean_minus_own'])}"
            )
    return lines


STUDY = Study(
    name="transfer",
    help="Apply vectors computed on source mazes to target mazes; write a source x target effect matrix.",
    options=TransferOptions,
    check=check,
    plan=plan,
    report=report,
    cells=lambda spec: transfer_seeds(spec)[1],
    summary=summary,
    grows=False,
    tables=TABLES,
)
