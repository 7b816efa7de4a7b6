"""`steer apply`: add `coeff × vector` on each target maze; per seed a field PNG and field JSON, and metrics.json.

`compare: [own]` also adds each target's own vector of the spec's pair (same coefficient and layer) beside a
fixed vector (a mean over `vector.source_seeds`, or one `source_seed`'s), so one run reports both effects per
maze and their paired difference (steer/analysis/comparison.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from steer.analysis.chain import maze_behaviours
from steer.analysis.comparison import COMPARISONS, difference_text, effect_key, mean_label, own_series, own_summary
from steer.analysis.controls import edited_field, random_like, random_seed, reference_edits, reference_metrics
from steer.analysis.metrics import (
    MAZE_KEYS,
    METRICS,
    behaviour_metrics,
    describe,
    effect_label,
    effect_metrics,
    fmt,
    maze_metrics,
    summarize,
)
from steer.errors import SteerError
from steer.io import atomic_write_json
from steer.maze.layout import Maze
from steer.net.vectors import KINDS, SteeringVector
from steer.net.vfield import FieldInputs, VectorField, vector_fields
from steer.report.captions import diff_panel
from steer.report.charts import paired_chart
from steer.report.field_vector import save_field
from steer.report.render import LEGEND, FieldFigure, Panel, field_figure
from steer.report.tables import COEFF, MAZE_COLUMNS, SEED, Column, Table, maze_keys, metric_columns, metric_values
from steer.run.feature_plan import cheese_cosine
from steer.run.options import (
    Options,
    coeff_option,
    control_seed_option,
    controls_option,
    metrics_option,
    option,
    vector_option,
)
from steer.run.session import Session
from steer.run.spec_fields import parse_names
from steer.run.spec_values import VectorSpec
from steer.run.specs import Spec
from steer.run.study import CellResult, Finished, Report, Study, StudyTable
from steer.run.vector_plan import OneVectorPlan, build_vector, plan_vector


def check(spec: Spec) -> None:
    o = spec.options
    if "own" in o.compare:
        if o.vector.feature is not None:
            raise SteerError(
                "compare: own builds each target's own vector of the spec's pair, and a dictionary feature has no "
                "pair; remove compare (the run records the feature's cosine with each maze's cheese vector)."
            )
        if o.vector.file is not None:
            raise SteerError(
                "compare: own builds each target's own vector from the spec's pair, and a vector file has no pair "
                "to rebuild; give an inline vector such as {kind: cheese, source_seeds: {from: 0, to: 99}} "
                "instead of vector.file, or remove compare."
            )
        if o.vector.source_seed is None and o.vector.source_seeds is None:
            raise SteerError(
                "compare: own compares the vector with each target's own vector, but this vector (no source_seed "
                "or source_seeds) already is each target's own; give vector.source_seeds (a mean over mazes) or "
                "vector.source_seed, or remove compare."
            )


def parse_compare(value: Any, where: str) -> tuple[str, ...]:
    """What to set beside the spec's vector on every maze: own (each target's own vector of the same pair)."""
    return parse_names(value, where, COMPARISONS, "[own]", f"is not a comparison; use {', '.join(COMPARISONS)}.")


@dataclass(frozen=True, kw_only=True)
class ApplyOptions(Options):
    vector: VectorSpec = vector_option()
    coeff: float = coeff_option()
    controls: tuple[str, ...] = controls_option()
    control_seed: int = control_seed_option()
    metrics: tuple[str, ...] = metrics_option()
    compare: tuple[str, ...] = option(parse_compare, default=(), about="own: each target's own vector beside this one")


@dataclass(frozen=True)
class Plan(OneVectorPlan):
    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        spec, coeff = self.spec, self.vector.coeff
        try:
            target, vec = self.target_and_vector(session, seed)
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        inputs = FieldInputs.render(session.renderer, target, session.device)
        random = (
            random_like(vec, random_seed(spec.options.control_seed, seed))
            if "random" in spec.options.controls
            else None
        )
        own, own_reason = self.own_vector(session, seed)
        extra = [v for v in (random, own) if v is not None]
        deltas = [None, coeff * vec.tensor, *(coeff * v.tensor for v in extra)]
        original, patched, *control = vector_fields(session.policy, inputs, self.layer, deltas, spec.batch_size)
        source = vec.meta.get("source_seed")
        m = {"seed": seed, **maze_metrics(original, patched), "coeff": coeff, "vector_source_seed": source}
        if self.vector.feature is not None:  # the edit-based vector a feature may resemble, on the same maze
            m["vector_norm"] = float(vec.tensor.float().norm())
            m["feature_positions"] = vec.meta["positions"]
            m["cosine_cheese"], m["cosine_cheese_reason"] = cheese_cosine(session, spec, seed, vec)
        if spec.options.metrics:  # asked-for behaviour metrics: exact episode statistics of both policies
            before, after = maze_behaviours(
                session.policy, session.renderer, target, [(), [(self.layer, vec.tensor, coeff)]]
            )
            m.update(behaviour_metrics(before, after, spec.options.metrics))
        panels = []
        if "own" in spec.options.compare:
            own_field = control[-1] if own is not None else None  # the own vector's field is the last
            panels += self._compare_own(m, vec, own, own_reason, original, own_field, target, seed)
        if spec.options.controls:
            panels += self._controls(session, m, random, original, patched, control, inputs, target)
        files = [f"vfield-seed{seed}.json"]
        write_field_json(out / files[0], seed, original, patched)
        sources = vec.meta.get("source_seeds")
        origin = f" (mean of {len(sources)} mazes)" if sources else "" if source == seed else f" from seed {source}"
        what = f"{vec.kind} vector{origin}"
        if self.vector.feature is not None:
            at = self.vector.feature.spec.at
            named = f"{at}: " if isinstance(at, str) and at != "everywhere" else ""
            what = f"feature {vec.meta['index']} x {vec.meta['scale']:g} at {named}map {_places(vec.meta['positions'])}"
        title = f"seed {seed} · {what} · {self.layer} · coeff {coeff:g} · {session.title}"
        files += save_field(_figure(title, original, patched, m, panels), out / f"field-seed{seed}.png", spec.figures)
        return "done", files, m

    def _compare_own(
        self,
        m: dict[str, Any],
        vec: SteeringVector,
        own: SteeringVector | None,
        own_reason: str | None,
        original: VectorField,
        own_field: VectorField | None,
        target: Maze,
        seed: int,
    ) -> list[Panel]:
        """`compare: [own]`: the maze's own vector's effect beside this one's (into `m`), and its panel."""
        m["vector_norm"] = float(vec.tensor.float().norm())
        m["compare"] = {"own": None, "own_reason": own_reason}
        if own is None or own_field is None:
            return []
        sources = vec.meta.get("source_seeds") or [vec.meta.get("source_seed")]
        m["compare"]["own"] = {
            "norm": float(own.tensor.float().norm()),
            "in_sample": seed in sources,  # the maze's own pair is (one of) the vector's sources
            **effect_metrics(original, own_field),
        }
        caption = f"the maze's own vector\n{_caption(m['compare']['own'], m)}"
        return [Panel(target, own_field.positions, own_field.arrows, caption)]

    def _controls(
        self,
        session: Session,
        m: dict[str, Any],
        random: SteeringVector | None,
        original: VectorField,
        patched: VectorField,
        control: list[VectorField],
        inputs: FieldInputs,
        target: Maze,
    ) -> list[Panel]:
        """The controls asked for (a norm-matched random vector, the input edit) into `m`, and their panels."""
        spec, coeff = self.spec, self.vector.coeff
        m["controls"] = {}
        panels = []
        if random is not None:
            m["controls"]["random"] = {
                "seed": random.meta["seed"],
                "norm": random.meta["norm"],
                **effect_metrics(original, control[0]),
            }
            what = "random feature" if random.kind == "random_feature" else "random vector"
            caption = f"{what}, same norm (control)\n{_caption(m['controls']['random'], m)}"
            panels.append(Panel(target, control[0].positions, control[0].arrows, caption))
        if "input_edit" in spec.options.controls:
            edits = reference_edits(self.vector.pair, coeff)
            ref = edited_field(session.policy, session.renderer, inputs, original, patched, edits, spec.batch_size)
            m["controls"]["input_edit"] = reference_metrics(ref) if ref is not None else None
            if ref is not None:
                r = m["controls"]["input_edit"]
                caption = (
                    f"input edit {', '.join(map(str, r['edits']))} (reference)\n"
                    f"{_caption(r, m)} · reproduced {fmt(r['reproduced'])}"
                )
                panels.append(Panel(ref.maze, ref.edited.positions, ref.edited.arrows, caption))
        return panels

    def own_vector(self, session: Session, seed: int) -> tuple[SteeringVector | None, str | None]:
        """The maze's own vector of the spec's pair when `compare: [own]` asks for it, or why it has none."""
        if "own" not in self.spec.options.compare:
            return None, None
        assert self.vector.pair is not None
        try:
            return build_vector(session, self.spec, seed, self.vector.pair, self.layer), None
        except SteerError as e:  # e.g. a top-right pair in a maze that fills the world: the vector still applies
            return None, str(e)


def _places(positions: list[list[int]]) -> str:
    """A feature's map positions for a title: one or two listed, more counted."""
    if len(positions) <= 2:
        return " ".join(f"({r},{c})" for r, c in positions)
    return f"{len(positions)} positions"


def plan(spec: Spec, session: Session) -> Plan:
    return Plan(spec, plan_vector(session, spec, spec.options.vector, spec.options.coeff, "vector"))


def write_field_json(path: Path, seed: int, original: VectorField, patched: VectorField) -> None:
    maze = original.maze
    atomic_write_json(
        path,
        {
            "seed": seed,
            "world_dim": maze.world_dim,
            "maze_dim": maze.maze_dim,
            "positions": [list(p) for p in original.positions],
            "original": original.to_json(),
            "patched": patched.to_json(),
        },
        compact=True,
    )


def _headline_key(m: dict[str, Any]) -> str:
    return "p_cheese_ds" if m["decision_square"] else "p_toward_cheese"


def _caption(effect: dict[str, Any], m: dict[str, Any]) -> str:
    key = _headline_key(m)
    return f"{METRICS[key].label} = {fmt(effect[key]['patched'])}"


def _figure(
    title: str, original: VectorField, patched: VectorField, m: dict[str, Any], extra: list[Panel]
) -> FieldFigure:
    key = _headline_key(m)
    label = METRICS[key].label
    panels = [
        Panel(original.maze, original.positions, original.arrows, f"original\n{label} = {fmt(m[key]['original'])}"),
        Panel(patched.maze, patched.positions, patched.arrows, f"patched\n{label} = {fmt(m[key]['patched'])}"),
        diff_panel(original, patched),
        *extra,
    ]
    return field_figure(title, panels, footer=LEGEND)


def control_summaries(done: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each control's and reference's metrics summarised like the effect's, over the mazes that have them."""
    out: dict[str, Any] = {}
    for name in ("random", "input_edit"):
        rows = [
            {**m["controls"][name], **{k: m[k] for k in MAZE_KEYS}}
            for m in done
            if m.get("controls", {}).get(name) is not None
        ]
        if rows or any(name in m.get("controls", {}) for m in done):
            out[name] = summarize(rows)
            if name == "input_edit":
                out[name]["reproduced"] = describe([r["reproduced"] for r in rows])
    return out


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    summary = summarize(done)
    if spec.options.controls:
        summary["controls"] = control_summaries(done)
        summary["controls"]["random_seed"] = spec.options.control_seed
    if plan.vector.feature is not None:
        summary["cosine_cheese"] = describe([m["cosine_cheese"] for m in done])
    figures = {}
    if "own" in spec.options.compare:
        metric = KINDS[plan.vector.kind].effect_metric
        summary["compare"] = own_summary(done, metric)
        figures["compare-own.png"] = own_chart(plan.vector.describe(), done, metric, session.title)
    return Report({"vector": plan.vector.describe(), "mazes": done, "summary": summary}, figures)


def own_chart(vector: dict[str, Any], mazes: Sequence[dict[str, Any]], metric: str, run_title: str) -> Figure:
    """The spec's vector (metrics.json's `vector`) and each maze's own, one column per maze, for the kind's
    effect metric."""
    have = [m for m in mazes if m["compare"]["own"] is not None]
    sources = vector.get("source_seeds")
    label = mean_label(sources) if sources else f"seed {vector['source_seed']}'s vector"
    return paired_chart(
        f"{vector['kind']} vector, coeff {vector['coeff']:g}: {label} against each maze's own · {run_title}",
        [str(m["seed"]) for m in have],
        own_series(have, metric),
        {"vector": label, "own": "the maze's own vector"},
        effect_label(metric),
        footer="a column per maze where the effect is defined",
        marked=[m["compare"]["own"]["in_sample"] for m in have],
        marked_note="in sample: the maze's own pair is one of the vector's sources",
    )


def change_text(summary: dict[str, Any], key: str) -> str:
    """'median 0.998 -> 0.101; mean change -0.86 (95% CI -0.91 to -0.80, Wilcoxon p 3e-10, n 53)'."""
    s = summary[key]
    change = s["change"]
    ci = change["mean_ci"]
    interval = f"95% CI {ci[0]:+.2f} to {ci[1]:+.2f}, " if ci else ""
    p = f"Wilcoxon p {change['wilcoxon_p']:.2g}, " if change.get("wilcoxon_p") is not None else ""
    return (
        f"{METRICS[key].label}: median {fmt(s['original']['median'], 3)} -> {fmt(s['patched']['median'], 3)}; "
        f"mean change {fmt(change['mean'], 3)} ({interval}{p}n {change['n']})"
    )


def summary_line(summary: dict[str, Any], keys: tuple[str, ...] = ("p_cheese_ds", "p_top_right_ds")) -> list[str]:
    """The decision-square metrics, original → patched with the change's interval, and the mean TV."""
    tv = summary["mean_tv"]
    ci = tv["mean_ci"]
    return [
        f"{summary['mazes']} mazes ({summary['with_decision_square']} with a decision square)",
        *(change_text(summary, key) for key in keys),
        f"{METRICS['mean_tv'].label}: mean {fmt(tv['mean'], 3)}"
        + (f" (95% CI {ci[0]:.2f} to {ci[1]:.2f})" if ci else ""),
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
            "original (the policy left alone); patched (with coeff x the vector); control:random (a random vector of "
            "the same norm, with `controls: [random]`; for a dictionary feature, a random feature at its positions); "
            "reference:input_edit (the input edit the vector stands for, with `controls: [input_edit]`); own (the "
            "maze's own vector of the pair, with `compare: [own]`)",
        ),
        COEFF,
        Column("vector_source_seed", "int", "", "patched: the maze the vector was computed on (empty for a mean)"),
        Column(
            "vector_norm", "float", "", "the added vector's norm, before coeff (with controls, compare or a feature)"
        ),
        Column("random_seed", "int", "", "control:random: the seed of the random vector"),
        Column(
            "cosine_cheese",
            "float",
            "cosine",
            "patched, a dictionary feature: its vector's cosine with the maze's cheese vector at the same site",
        ),
        Column("in_sample", "bool", "", "own: the maze's own pair is one of the vector's sources"),
        Column("input_edits", "str", "", "reference:input_edit: the edits made to the observation, joined by +"),
        Column(
            "reproduced",
            "float",
            "fraction",
            "reference:input_edit: 1 - TV(patched, edited) / TV(original, edited), mean over squares",
        ),
        Column("tv_patched_to_edited", "float", "TV, 0 to 1", "reference:input_edit: mean TV, patched to edited"),
        *metric_columns(),
    ),
)


def _edits_text(edits: list[Any]) -> str:
    """Edits as `edits_to_json` stores them ("remove_cheese", {"move_cheese": [r, c]}) in one short string."""
    return " + ".join(e if isinstance(e, str) else " ".join(f"{op} {r},{c}" for op, (r, c) in e.items()) for e in edits)


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    """The original, the patched policy and each control or comparison the run asked for, per maze."""
    for m in f.done:
        keys = {"seed": m["seed"], **maze_keys(m)}
        yield {**keys, "condition": "original", **metric_values(m, "original")}
        vector = {"coeff": m["coeff"], "vector_norm": m.get("vector_norm")}
        yield {**keys, "condition": "patched", **vector, "vector_source_seed": m["vector_source_seed"],
               "cosine_cheese": m.get("cosine_cheese"), **metric_values(m, "patched")}  # fmt: skip
        random, edit = (m.get("controls", {}).get(name) for name in ("random", "input_edit"))
        if random is not None:
            yield {**keys, "condition": "control:random", "coeff": m["coeff"], "vector_norm": random["norm"],
                   "random_seed": random["seed"], **metric_values(random, "patched")}  # fmt: skip
        if edit is not None:
            yield {**keys, "condition": "reference:input_edit", "input_edits": _edits_text(edit["edits"]),
                   "reproduced": edit["reproduced"], "tv_patched_to_edited": edit["tv_patched_to_edited"],
                   **metric_values(edit, "patched")}  # fmt: skip
        own = m.get("compare", {}).get("own")
        if own is not None:
            yield {**keys, "condition": "own", "coeff": m["coeff"], "vector_norm": own["norm"],
                   "in_sample": own["in_sample"], **metric_values(own, "patched")}  # fmt: skip


STUDY = Study(
    name="apply",
    help="Apply a vector with a coefficient to target mazes; write field PNGs, field JSON and metrics.json.",
    options=ApplyOptions,
    check=check,
    plan=plan,
    report=report,
    summary=lambda r: summary_line(r["summary"]) + compare_lines(r) + feature_lines(r),
    tables=(StudyTable(MAZES, maze_rows),),
)


def compare_lines(report: dict[str, Any]) -> list[str]:
    """With `compare: [own]`: the vector's effect against each maze's own, per subset of mazes."""
    if "compare" not in report["summary"]:
        return []
    c = report["summary"]["compare"]
    metric = KINDS[report["vector"]["kind"]].effect_metric
    key = effect_key(metric)
    norms = c["norms"]
    lines = [f"norms: this vector median {fmt(norms['vector']['median'])}, own vectors {fmt(norms['own']['median'])}"]
    for subset, b in c["by_target"][key].items():
        lines.append(
            f"vs own ({subset.replace('_', ' ')} mazes), {effect_label(metric)}: mean {fmt(b['vector']['mean'], 3)} vs "
            f"{fmt(b['own']['mean'], 3)}; {difference_text(b['vector_minus_own'])}"
        )
    return lines


def feature_lines(report: dict[str, Any]) -> list[str]:
    """For a dictionary feature: its cosine with each maze's cheese vector, over mazes."""
    c = report["summary"].get("cosine_cheese")
    if c is None or not c["n"]:
        return []
    ci = c["mean_ci"]
    interval = f" (95% CI {ci[0]:+.2f} to {ci[1]:+.2f})" if ci else ""
    return [f"feature vs the maze's cheese vector: mean cosine {c['mean']:+.3f}{interval}, n {c['n']}"]
