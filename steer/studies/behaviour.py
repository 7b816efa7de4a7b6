"""`steer behaviour`: what the steered agent does over whole episodes, computed exactly, checked by real ones.

A policy on a static maze is a Markov chain on (square, facing) states (steer/analysis/chain.py), so P(reach the
cheese within the 500-step timeout), the expected steps, P(visit the top-right square), the expected visits
per square and the greedy path follow exactly from the action probabilities in both facings, with no
sampling noise. Per maze and condition (the original policy, then each coefficient of `coeffs`):

    seeds: {from: 0, to: 99}
    vector: {kind: cheese}              # as in `apply`: inline, {file: …}, source_seed
    coeffs: [-1]                        # the patched conditions (or coeff: -1)
    targets: {moved: [4, 10]}           # optional: extra squares, P(visit) and P(step toward it at the DS)
    episodes: 400                       # optional: sampled episodes per maze and condition, beside the exact
    episode_seed: 0                     # optional: seeds the sampled episodes
    show: [0, 2]                        # optional: seeds with an occupancy figure and an episode GIF

Per seed `behaviour-seed<N>.json` holds the occupancy maps and greedy paths; metrics.json the numbers and
their summaries over mazes (intervals, and the patched − original change with a Wilcoxon p-value).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from steer.analysis.chain import Behaviour, behaviour
from steer.analysis.episodes import sample_episodes
from steer.analysis.metrics import (
    BEHAVIOUR_METRICS,
    MAZE_KEYS,
    behaviour_metrics,
    describe,
    fmt,
    maze_info,
    p_step_at,
    summarize,
)
from steer.analysis.stats import settings
from steer.errors import SteerError, excerpt
from steer.io import atomic_write_json
from steer.maze.layout import Square
from steer.net.vfield import VectorField, facing_fields, facing_inputs
from steer.report.behaviour_figs import episode_gif, occupancy_figure
from steer.report.charts import BandSeries, band_charts
from steer.report.figures import save_figure
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
from steer.run.options import Options, coeff_option, coeffs_option, option, seeds_option, vector_option
from steer.run.session import Session
from steer.run.spec_fields import seed_value
from steer.run.spec_values import VectorSpec
from steer.run.specs import Spec
from steer.run.study import CellResult, Finished, Report, Study, StudyTable, check_show
from steer.run.vector_plan import OneVectorPlan, plan_vector

MAX_EPISODES = 10_000


def _targets(value: Any, where: str) -> dict[str, Square]:
    if not isinstance(value, dict) or not value:
        raise SteerError(f"{where}: expected a mapping of names to squares, e.g. {{moved_cheese: [4, 10]}}.")
    out = {}
    for name, square in value.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise SteerError(f"{where}: {excerpt(name)} is not a target name; use letters, digits and '_'.")
        if not (isinstance(square, list) and len(square) == 2 and all(type(v) is int and 0 <= v < 64 for v in square)):
            raise SteerError(
                f"{where}.{name}: expected a square [row, col] (row 0 at the bottom), got {excerpt(square)}."
            )
        out[name] = (square[0], square[1])
    return out


def _episodes(value: Any, where: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_EPISODES:
        raise SteerError(f"{where}: expected a number of episodes from 0 to {MAX_EPISODES}, got {excerpt(value)}.")
    return value


@dataclass(frozen=True, kw_only=True)
class BehaviourOptions(Options):
    vector: VectorSpec = vector_option()
    coeff: float | None = coeff_option(default=None)
    coeffs: tuple[float, ...] = coeffs_option(default=(), about="the patched conditions, one per coefficient")
    targets: dict[str, Square] = option(_targets, default={}, about="extra squares: P(visit) and P(step toward)")
    episodes: int = option(_episodes, default=0, about="sampled episodes per maze and condition, beside the exact")
    episode_seed: int = option(seed_value, default=0)
    show: tuple[int, ...] = seeds_option(about="mazes drawn with occupancy figures and episode GIFs")


def check(spec: Spec) -> None:
    if (spec.options.coeff is None) == (not spec.options.coeffs):
        raise SteerError("coeffs: give the patched conditions as coeffs: [-1, 1] (or one coeff: -1), not both.")
    check_show(spec)


def conditions(spec: Spec) -> tuple[float, ...]:
    return spec.options.coeffs or ((spec.options.coeff,) if spec.options.coeff is not None else ())


@dataclass(frozen=True)
class Plan(OneVectorPlan):
    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        """One maze, every condition: the exact chain's numbers, the episodes asked for, the figures; the steps share
        the maze's fields and chains."""
        spec = self.spec
        try:
            target, vec = self.target_and_vector(session, seed)
            targets: Mapping[str, Square] = spec.options.targets
            for name, square in targets.items():
                if not (0 <= square[0] < target.world_dim and 0 <= square[1] < target.world_dim):
                    raise SteerError(
                        f"targets.{name}: {list(square)} is outside the {target.world_dim}x{target.world_dim} world."
                    )
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        coeffs = conditions(spec)
        patch_sets = [(), *([(self.layer, vec.tensor, c)] for c in coeffs)]
        fields = facing_fields(
            session.policy, facing_inputs(session.renderer, target, session.device), patch_sets, spec.batch_size
        )
        behaviours = [behaviour(f, targets) for f in fields]
        ds = target.decision_square()
        rows = []
        for c, f, b in zip((None, *coeffs), fields, behaviours, strict=True):
            facing0 = VectorField(target, f.positions, f.probs[0])  # the facing a level starts in
            row: dict[str, Any] = {
                "coeff": c,
                **{name: m.of_behaviour(b) for name, m in BEHAVIOUR_METRICS.items()},  # type: ignore[misc]
                "p_reach_targets": dict(b.p_targets),
                "p_target_ds": {name: p_step_at(facing0, ds, sq) for name, sq in targets.items()},
                "greedy_end": b.greedy.end,
                "greedy_steps": len(b.greedy.squares) - 1,
            }
            if spec.options.episodes:
                eps = sample_episodes(
                    session.policy,
                    target,
                    spec.options.episodes,
                    _episode_seed(spec, seed, c),
                    list(patch_sets[len(rows)]),
                    prefill=session.renderer,
                    batch_size=spec.batch_size,
                )
                low, high = eps.cheese_interval(0.99)
                row["sampled"] = {
                    **eps.to_json(),
                    "p_cheese_ci99": [low, high],
                    "exact_in_ci99": bool(low <= b.p_cheese <= high),
                }
            rows.append(row)
        original = behaviours[0]
        entry = {
            "seed": seed,
            **maze_info(target),
            "vector_source_seed": vec.meta.get("source_seed"),
            "original": rows[0],
            "by_coeff": [
                {**r, **behaviour_metrics(original, b)} for r, b in zip(rows[1:], behaviours[1:], strict=True)
            ],
        }
        files = [f"behaviour-seed{seed}.json"]
        atomic_write_json(
            out / files[0],
            {
                "seed": seed,
                "world_dim": target.world_dim,
                "conditions": [{"coeff": c, **b.to_json()} for c, b in zip((None, *coeffs), behaviours, strict=True)],
            },
            compact=True,
        )
        if seed in spec.options.show:
            files += _show(session, self, seed, target, patch_sets, coeffs, behaviours, out)
        return "done", files, entry


def _episode_seed(spec: Spec, seed: int, coeff: float | None) -> int:
    # One stream per (spec seed, maze, condition), stable across runs and workers.
    return (spec.options.episode_seed * 1_000_003 + seed) * 1009 + (
        0 if coeff is None else round(coeff * 1000) % 1_000_000 + 1
    )


def _show(
    session: Session,
    plan: Plan,
    seed: int,
    target: Any,
    patch_sets: list[Any],
    coeffs: tuple[float, ...],
    behaviours: list[Behaviour],
    out: Path,
) -> list[str]:
    """An occupancy figure and an episode GIF per patched condition of a shown maze."""
    files = []
    for c, patches, b in zip(coeffs, patch_sets[1:], behaviours[1:], strict=True):
        tag = f"seed{seed}-coeff{c:g}"
        title = f"seed {seed} · {plan.vector.kind} vector x {c:g} at {plan.layer} · {session.title}"
        img = occupancy_figure(target, behaviours[0], b, title=title, labels=("original", f"patched (x {c:g})"))
        name = f"occupancy-{tag}.png"
        save_figure(img, out / name)
        files.append(name)
        # One real episode of each policy, from the same sampling seed, for the picture.
        episode_seed = _episode_seed(plan.spec, seed, c)
        first = sample_episodes(session.policy, target, 1, episode_seed, (), prefill=session.renderer).episodes[0]
        second = sample_episodes(
            session.policy, target, 1, episode_seed, list(patches), prefill=session.renderer
        ).episodes[0]
        name = f"episodes-{tag}.gif"
        episode_gif(out / name, target, [("original", first), (f"patched (x {c:g})", second)], title=title)
        files.append(name)
    return files


def plan(spec: Spec, session: Session) -> Plan:
    assert spec.options.vector is not None
    return Plan(spec, plan_vector(session, spec, spec.options.vector, conditions(spec)[0], "vector"))


def summarise_conditions(coeffs: tuple[float, ...], mazes: list[dict[str, Any]]) -> dict[str, Any]:
    by_coeff = []
    for i, c in enumerate(coeffs):
        rows = [{**{k: m[k] for k in MAZE_KEYS}, **m["by_coeff"][i]} for m in mazes]
        by_coeff.append({"coeff": c, **{k: v for k, v in summarize(rows).items() if k != "statistics"}})
    original = {name: describe([m["original"][name] for m in mazes]) for name in BEHAVIOUR_METRICS}
    sampled = [r["sampled"] for m in mazes for r in (m["original"], *m["by_coeff"]) if "sampled" in r]
    out = {"mazes": len(mazes), "original": original, "by_coeff": by_coeff, "statistics": settings()}
    if sampled:
        out["sampled_agree"] = {"conditions": len(sampled), "exact_in_ci99": sum(s["exact_in_ci99"] for s in sampled)}
    return out


def behaviour_chart(coeffs: Sequence[float], summary: dict[str, Any], title: str) -> Figure:
    """P(reach the cheese) and P(reach the top-right square), original then each coefficient, from a report's
    summary: mean over mazes and its 95% bootstrap interval, the original's mean dashed."""
    series = []
    for key in ("p_reach_cheese", "p_reach_top_right"):
        stats = [summary["original"][key], *(row[key]["patched"] for row in summary["by_coeff"])]
        ci = [s["mean_ci"] or [s["mean"], s["mean"]] for s in stats]
        series.append(
            BandSeries(
                f"mean {BEHAVIOUR_METRICS[key].label}",
                [s["mean"] for s in stats],
                [c[0] for c in ci],
                [c[1] for c in ci],
                [s["n"] for s in stats],
                summary["original"][key]["mean"],
                band="mean and its 95% bootstrap interval",
            )
        )
    return band_charts(
        title,
        ["original", *(f"x {c:g}" for c in coeffs)],
        series,
        footer="line: mean over mazes · band: 95% bootstrap interval · dashed: the original policy",
    )


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    coeffs = conditions(spec)
    summary = summarise_conditions(coeffs, done)
    title = (
        f"{plan.vector.kind} vector at {plan.layer} · exact episode statistics · {summary['mazes']} mazes · "
        f"{session.title}"
    )
    figures = {"behaviour.png": behaviour_chart(coeffs, summary, title)} if done else {}
    return Report(
        {"vector": plan.vector.describe(), "coeffs": list(coeffs), "mazes": done, "summary": summary}, figures
    )


def summary_lines(report: dict[str, Any]) -> list[str]:
    s = report["summary"]
    lines = []
    for row in s["by_coeff"]:
        parts = []
        for key in ("p_reach_cheese", "p_reach_top_right"):
            before, after, change = row[key]["original"], row[key]["patched"], row[key]["change"]
            ci = change["mean_ci"]
            parts.append(
                f"{BEHAVIOUR_METRICS[key].label} {fmt(before['mean'], 3)} -> {fmt(after['mean'], 3)}"
                + (f" (change 95% CI {ci[0]:+.3f} to {ci[1]:+.3f}, n {change['n']})" if ci else "")
            )
        lines.append(f"coeff {row['coeff']:g}: " + "; ".join(parts))
    if "sampled_agree" in s:
        a = s["sampled_agree"]
        lines.append(
            f"sampled episodes: the exact P(reach the cheese) lies in the 99% interval of the sample in "
            f"{a['exact_in_ci99']} of {a['conditions']} maze-conditions"
        )
    return lines


CONDITION = Column("condition", "str", "", "original (the policy left alone); patched (with coeff x the vector)")
SAMPLED = tuple(  # with `episodes:`, the sampled episodes' counterparts of the exact numbers
    Column(f"sampled_{key}", kind, unit, f"with `episodes:`: {about}")
    for key, kind, unit, about in (
        ("n", "int", "", "episodes sampled"),
        ("p_cheese", "float", "probability", "share of the sampled episodes that reached the cheese"),
        ("p_top_right", "float", "probability", "share that visited the top-right square"),
        ("steps_to_cheese", "float", "steps", "mean steps to the cheese of those that reached it"),
        ("mean_steps", "float", "steps", "mean episode length"),
    )
)
MAZES = Table(
    "mazes",
    "one row per maze and condition: the original, then one per coefficient",
    (
        SEED,
        *MAZE_COLUMNS,
        CONDITION,
        COEFF,
        VECTOR_SOURCE_SEED,
        *metric_columns(BEHAVIOUR_METRICS),
        Column("greedy_end", "str", "", "where the greedy path (the most likely action at every step) ends"),
        Column("greedy_steps", "int", "steps", "the greedy path's length"),
        *SAMPLED,
        Column("sampled_p_cheese_ci99_low", "float", "probability", "with `episodes:`: the sample's 99% interval"),
        Column("sampled_p_cheese_ci99_high", "float", "probability", "with `episodes:`: the sample's 99% interval"),
        Column("sampled_exact_in_ci99", "bool", "", "with `episodes:`: the exact P(reach) lies in that interval"),
    ),
)
TARGETS = Table(
    "targets",
    "one row per maze, condition and square named under `targets:`",
    (
        SEED,
        CONDITION,
        COEFF,
        Column("target", "str", "", "the square's name under `targets:`"),
        Column("target_row", "int", "square", "its row (row 0 at the bottom)"),
        Column("target_col", "int", "square", "its column"),
        Column("p_reach", "float", "probability", "P(the episode visits the square within 500 steps), exact"),
        Column("p_step_ds", "float", "probability", "P(the step at the decision square toward it); empty without one"),
    ),
)


def _sides(m: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(the condition's keys, its record) for the original and each coefficient."""
    yield {"condition": "original"}, m["original"]
    for row in m["by_coeff"]:
        yield {"condition": "patched", "coeff": row["coeff"]}, row


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    for m in f.done:
        keys = {"seed": m["seed"], **maze_keys(m), "vector_source_seed": m["vector_source_seed"]}
        for condition, row in _sides(m):
            side = "original" if condition["condition"] == "original" else "patched"
            sampled = row.get("sampled") or {}
            low, high = sampled.get("p_cheese_ci99") or (None, None)
            yield {
                **keys,
                **condition,
                **metric_values(row, side, BEHAVIOUR_METRICS),
                "greedy_end": row["greedy_end"],
                "greedy_steps": row["greedy_steps"],
                **{c.name: sampled.get(c.name.removeprefix("sampled_")) for c in SAMPLED},
                "sampled_p_cheese_ci99_low": low,
                "sampled_p_cheese_ci99_high": high,
                "sampled_exact_in_ci99": sampled.get("exact_in_ci99"),
            }


def target_rows(f: Finished) -> Iterator[dict[str, Any]]:
    squares = f.spec.options.targets
    for m in f.done:
        for condition, row in _sides(m):
            for name, (r, c) in squares.items():
                square = {"target": name, "target_row": r, "target_col": c}
                yield {"seed": m["seed"], **condition, **square, "p_reach": row["p_reach_targets"].get(name),
                       "p_step_ds": row["p_target_ds"].get(name)}  # fmt: skip


STUDY = Study(
    name="behaviour",
    help="Exact episode statistics of the original and patched policies (P(reach cheese), steps, occupancy).",
    options=BehaviourOptions,
    check=check,
    plan=plan,
    report=report,
    summary=summary_lines,
    tables=(StudyTable(MAZES, maze_rows), StudyTable(TARGETS, target_rows)),
)
