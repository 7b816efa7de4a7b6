"""`steer behaviour-stats`: which maze features decide whether the agent goes to the cheese, over many mazes.

Per maze, the features of the behavioural-statistics posts (steer/maze/decision_features.py) and, per condition,
the exact outcomes of the (square, facing) chain (steer/analysis/chain.py): P(reach the cheese within 500
steps), P(cheese | decision square), P(visit the top-right square), the expected steps. The conditions are the
run's checkpoint, optionally the same policy steered by a vector, and optionally other checkpoints:

    seeds: {from: 0, to: 9999}
    vector: {kind: cheese}          # optional: a steered condition beside the original
    coeff: -1                       #   ... at this coefficient
    checkpoints: [maze-rr5-easy-2M, maze-rr5-easy-0.75M]   # optional: one more condition per checkpoint
    resamples: 200                  # optional: bootstrap resamples of the coefficients

`features.csv` holds one row per (maze, condition): the maze's features and the condition's outcomes (the table the
regressions read), `mazes.csv` the outcomes alone in the layout every study's mazes.csv shares; metrics.json the
regressions per condition (steer/analysis/behaviour_stats.py) and the curves; the figures show the run's own
checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from steer.analysis.behaviour_stats import (
    ANALYSED,
    POST_FOUR,
    POST_FOUR_COEFFS,
    POST_THREE,
    analyse,
    outside_top_right,
)
from steer.analysis.chain import behaviour
from steer.analysis.metrics import BEHAVIOUR_METRICS, METRICS, describe, fmt
from steer.errors import SteerError, excerpt
from steer.maze.decision_features import DECISION_FEATURES, decision_features
from steer.net import checkpoints
from steer.net.policy import ImpalaPolicy
from steer.net.vfield import VectorField, facing_fields, facing_inputs
from steer.report.charts import BandSeries, IntervalSeries, band_charts, interval_rows, probability_map
from steer.report.style import ALARM, BASELINE, LINE
from steer.report.tables import MAZE_COLUMNS, SEED, Column, Table, metric_columns
from steer.run.options import Options, coeff_option, option, vector_option
from steer.run.session import Session
from steer.run.spec_values import VectorSpec
from steer.run.specs import Spec
from steer.run.study import CellResult, Finished, Report, Study, StudyTable
from steer.run.vector_plan import VectorPlan, plan_vector

OUTCOMES = ("p_reach_cheese", "p_cheese_ds", "p_reach_top_right", "steps_to_cheese", "mean_steps")
MAX_CHECKPOINTS = 8
MAX_RESAMPLES = 5000


def _checkpoints(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_CHECKPOINTS:
        raise SteerError(
            f"{where}: expected a list of 1 to {MAX_CHECKPOINTS} checkpoint names or paths, e.g. "
            f"[maze-rr5-easy-2M], got {excerpt(value)}."
        )
    for i, ref in enumerate(value):
        if not isinstance(ref, str) or not ref.strip():
            raise SteerError(f"{where}[{i}]: {excerpt(ref)} is not a checkpoint name or path.")
    return tuple(value)


def _resamples(value: Any, where: str) -> int:
    if type(value) is not int or not 50 <= value <= MAX_RESAMPLES:
        raise SteerError(
            f"{where}: expected a number of bootstrap resamples from 50 to {MAX_RESAMPLES}, got {excerpt(value)}."
        )
    return value


@dataclass(frozen=True, kw_only=True)
class BehaviourStatsOptions(Options):
    vector: VectorSpec | None = vector_option(default=None, about="with coeff: a steered condition")
    coeff: float | None = coeff_option(default=None)
    checkpoints: tuple[str, ...] = option(_checkpoints, default=(), about="other checkpoints, each a condition")
    resamples: int = option(_resamples, default=200, about="bootstrap resamples of the coefficients")


def check(spec: Spec) -> None:
    if (spec.options.vector is None) != (spec.options.coeff is None):
        raise SteerError(
            "coeff: a steered condition needs both `vector` and `coeff` (e.g. vector: {kind: cheese} and coeff: -1); "
            "give both, or neither for the original policy alone."
        )


@dataclass(frozen=True)
class Extra:
    """Another checkpoint, resolved when the run is planned: its name, path and sha256."""

    name: str
    path: str
    sha256: str


@lru_cache(maxsize=MAX_CHECKPOINTS)
def _extra_policy(path: str, sha256: str) -> ImpalaPolicy:
    # Loaded once per process (a worker keeps it for all its cells); the same weights-only loader as --checkpoint.
    ck = checkpoints.load(path)
    if ck.sha256 != sha256:
        raise SteerError(
            f"checkpoints: {path!r} changed while the run was going (sha256 {ck.sha256[:12]}…). Run again."
        )
    return ck.policy


@dataclass(frozen=True)
class Plan:
    spec: Spec
    vector: VectorPlan | None
    extras: tuple[Extra, ...]
    own_name: str

    @property
    def layer(self) -> str:
        return self.vector.layer if self.vector is not None else "none"

    @property
    def labels(self) -> list[str]:
        steered = (
            [f"{self.own_name}, {self.vector.kind} x {self.spec.options.coeff:g}"] if self.vector is not None else []
        )
        return [self.own_name, *steered, *(e.name for e in self.extras)]

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        spec = self.spec
        try:
            maze = session.target_maze(spec, seed)
            vec = self.vector.for_target(session, spec, seed) if self.vector is not None else None
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        if maze.cheese is None:
            return "skipped", [], {"seed": seed, "reason": "the maze has no cheese, so there is nothing to reach"}
        inputs = facing_inputs(session.renderer, maze, session.device)
        patch_sets: list[Sequence[Any]] = [()]
        if vec is not None:
            patch_sets.append([(self.layer, vec.tensor, spec.options.coeff)])
        fields = facing_fields(session.policy, inputs, patch_sets, spec.batch_size)
        for extra in self.extras:
            fields += facing_fields(_extra_policy(extra.path, extra.sha256), inputs, [()], spec.batch_size)
        conditions = []
        for label, f in zip(self.labels, fields, strict=True):
            b = behaviour(f)
            facing0 = VectorField(maze, f.positions, f.probs[0])  # the facing a level starts in
            conditions.append(
                {
                    "condition": label,
                    **{name: BEHAVIOUR_METRICS[name].of_behaviour(b) for name in OUTCOMES if name in BEHAVIOUR_METRICS},  # type: ignore[misc]
                    "p_cheese_ds": METRICS["p_cheese_ds"].of_field(facing0),  # type: ignore[misc]
                }
            )
        last = maze.inner_bounds[1]
        offset = [last - maze.cheese[0], last - maze.cheese[1]]  # rows below and columns left of the top-right
        return "done", [], {"seed": seed, **decision_features(maze), "cheese_offset": offset, "conditions": conditions}


def plan(spec: Spec, session: Session) -> Plan:
    vector = (
        plan_vector(session, spec, spec.options.vector, spec.options.coeff, "vector")
        if spec.options.vector is not None
        else None
    )
    extras = []
    for i, ref in enumerate(spec.options.checkpoints):
        try:
            ck = checkpoints.load(ref)
        except SteerError as e:
            raise SteerError(f"checkpoints[{i}]: {e}") from None
        extras.append(Extra(ck.name, str(ck.path.resolve()), ck.sha256))
    return Plan(spec, vector, tuple(extras), session.checkpoint.name)


# -- the report -------------------------------------------------------------------------------------------

CONDITION = Column(
    "condition",
    "str",
    "",
    "the policy: the run's checkpoint by name, the same policy steered (`<checkpoint>, <kind> x <coeff>`, with "
    "`vector:`), or a checkpoint named under `checkpoints:`",
)


def _feature_unit(name: str) -> str:
    return "steps" if name.startswith("path_") else "" if name == "has_decision_square" else "squares"


# The features are floats, NaN (empty) where undefined: the table the posts' regressions read, as it always was.
FEATURES = Table(
    "features",
    "one row per maze and condition: the posts' maze features and the condition's exact outcomes",
    (
        SEED,
        CONDITION,
        *(Column(name, "float", _feature_unit(name), about) for name, about in DECISION_FEATURES.items()),
        *metric_columns(OUTCOMES),
    ),
)
MAZES = Table(
    "mazes",
    "one row per maze and condition: the condition's exact outcomes (the features are in features.csv)",
    (SEED, MAZE_COLUMNS[0], CONDITION, *metric_columns(OUTCOMES)),
)


def maze_rows(maze: dict[str, Any], condition: str | None = None) -> Iterator[dict[str, Any]]:
    """One flat row per condition of one maze's result, or the row of one condition."""
    features = {k: v for k, v in maze.items() if k not in ("conditions", "cheese_offset")}
    for c in maze["conditions"]:
        if condition is None or c["condition"] == condition:
            yield {**features, **c}


def rows_of(done: Sequence[dict[str, Any]], condition: str) -> list[dict[str, Any]]:
    """One condition's rows, one per maze (the analysis' table; the run's other conditions stay unread)."""
    return [row for maze in done for row in maze_rows(maze, condition)]


def feature_rows(f: Finished) -> Iterator[dict[str, Any]]:
    """features.csv, a maze at a time as the runner reads the results back: never whole in memory."""
    for maze in f.done:
        yield from maze_rows(maze)


def outcome_rows(f: Finished) -> Iterator[dict[str, Any]]:
    for maze in f.done:
        for c in maze["conditions"]:
            yield {"seed": maze["seed"], "maze_dim": maze["maze_dim"], **c}


# Bins of the cheese's straight-line distance from the top-right square (in squares) for the curves.
DIST_BINS = ((0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 13), (13, 100))


def _curve(rows: list[dict[str, Any]], key: str, bins: Sequence[tuple[float, float]]) -> list[dict[str, Any]]:
    return [{"bin": [lo, hi], **describe([r["p_reach_cheese"] for r in rows if lo <= r[key] < hi])} for lo, hi in bins]


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    resamples = spec.options.resamples
    by_condition = {}
    for label in plan.labels:
        rows = rows_of(done, label)
        by_condition[label] = {
            "condition": label,
            "outcomes": {k: describe([r[k] for r in rows]) for k in OUTCOMES},
            "regressions": analyse(rows, seed=0, resamples=resamples),
            "outside_top_right": outside_top_right(rows),
            "by_cheese_top_right_distance": _curve(rows, "euclid_cheese_top_right", DIST_BINS),
            # The cheese map's cells: [rows below][columns left of] the inner top-right square, n and mean.
            "by_cheese_offset": _offset_grid(done, label),
        }
    body = {
        "conditions": plan.labels,
        "features": list(DECISION_FEATURES),
        "analysed_features": list(ANALYSED),
        "post_three": list(POST_THREE),
        "post_four": list(POST_FOUR),
        # A list in the order of `conditions`, so a claim's path reads `by_condition.0.…` whatever the names.
        "by_condition": list(by_condition.values()),
        "mazes": len(done),
    }
    return Report(body, figures(body, session.title) if done else {})


def _points(title: str, colour: str, rows: list[tuple[float, list[float] | None]]) -> IntervalSeries:
    """One series of values with their intervals (None: a value without one, drawn as a point)."""
    lows = [v if ci is None else ci[0] for v, ci in rows]
    highs = [v if ci is None else ci[1] for v, ci in rows]
    return IntervalSeries(title, colour, [v for v, _ in rows], lows, highs)


def figures(body: dict[str, Any], run_title: str) -> dict[str, Figure]:
    """The run's four figures from its report body (metrics.json; the run's own checkpoint is the first
    condition): a notebook redraws them from the file."""
    own = body["by_condition"][0]
    out: dict[str, Figure] = {}
    if "skipped" not in own["regressions"]:
        out["accuracy.png"] = accuracy_chart(own["regressions"], run_title)
        out["coefficients.png"] = coefficients_chart(own["regressions"], run_title)
    out["by-distance.png"] = distance_chart(body["by_condition"], body["mazes"])
    out["cheese-map.png"] = cheese_map(own["by_cheese_offset"], body["mazes"], run_title)
    return out


def accuracy_chart(fit: dict[str, Any], run_title: str) -> Figure:
    """Held-out accuracy of each single feature, all of them and the posts' sets, beside the majority baseline."""
    labels = [*fit["single"], "all features", "the posts' three", "the posts' four"]
    accs = [*fit["single"].values(), fit["all"], fit["three"], fit["four"]]
    return interval_rows(
        f"held-out accuracy, L1 logistic, {fit['with_decision_square']} mazes with a decision square · {run_title}",
        labels,
        [
            _points("model (Wilson 95% interval)", LINE, [(a["accuracy"], a["accuracy_ci"]) for a in accs]),
            _points("always the majority outcome", BASELINE, [(a["baseline"], None) for a in accs]),
        ],
        (0.5, 1.0),
        footer=f"target: {fit['target']} · 5-fold stratified cross-validation",
        xlabel="held-out accuracy",
    )


def coefficients_chart(fit: dict[str, Any], run_title: str) -> Figure:
    """The posts' four features' standardised coefficients: L1 logistic, fractional logit and the posts'."""
    coefs = fit["coefficients_four"]["coefficients"]
    glm = fit["fractional_logit_four"]
    names = list(POST_FOUR)
    ends = [abs(v) for f in names for v in (*coefs[f]["ci"], *glm[f]["ci"], *POST_FOUR_COEFFS)]
    limit = float(min(10.0, max(1.0, math.ceil(max(ends)))))
    return interval_rows(
        f"standardised coefficients of the posts' four features · {run_title}",
        names,
        [
            _points(
                "L1 logistic, binarised (bootstrap 95%)", LINE, [(coefs[f]["value"], coefs[f]["ci"]) for f in names]
            ),
            _points("the posts", BASELINE, [(v, None) for v in POST_FOUR_COEFFS]),
            _points("fractional logit, exact P (HC0 95%)", ALARM, [(glm[f]["value"], glm[f]["ci"]) for f in names]),
        ],
        (-limit, limit),
        footer="the posts: 8,000 mazes, the hard-mode channel-scale-4 network; here: this run's mazes with a DS",
        xlabel="standardised coefficient (log-odds per standard deviation)",
    )


def distance_chart(conditions: Sequence[dict[str, Any]], mazes: int) -> Figure:
    """Per condition, mean P(reach the cheese) by the cheese's distance from the top-right square, one scale."""
    series = []
    for data in conditions:
        curve = data["by_cheese_top_right_distance"]
        ci = [c["mean_ci"] or [c["mean"], c["mean"]] if c["n"] else [None, None] for c in curve]
        series.append(
            BandSeries(
                data["condition"],
                [c["mean"] if c["n"] else None for c in curve],
                [x[0] for x in ci],
                [x[1] for x in ci],
                [c["n"] for c in curve],
                band="mean P(reach) and 95% bootstrap interval",
            )
        )
    return band_charts(
        f"P(reach the cheese) against the cheese's distance from the top-right square · {mazes} mazes",
        [f"{lo}-{hi}" if hi < 100 else f"{lo}+" for lo, hi in DIST_BINS],
        series,
        footer="line: mean over mazes · band: its 95% bootstrap interval",
        xtitle="cheese to top-right square, straight line (squares)",
        y_range=(-0.02, 1.02),
    )


def cheese_map(grid: list[list[dict[str, Any] | None]], mazes: int, run_title: str) -> Figure:
    """Mean P(reach the cheese) by where the cheese sits relative to the inner top-right square, with n."""
    return probability_map(
        f"mean P(reach the cheese) by where the cheese is, from the inner top-right square · {run_title}",
        [f"{d} below" for d in range(len(grid))],
        [f"{c} left" for c in range(len(grid))],
        [[None if cell is None else cell["mean"] for cell in line] for line in grid],
        [[0 if cell is None else cell["n"] for cell in line] for line in grid],
        ("rows below the top-right square", "columns left of it"),
        footer=f"{mazes} mazes; each cell: the mean over the mazes whose cheese sits there, and their number",
        scale_label="mean P(reach the cheese)",
    )


def _offset_grid(done: Sequence[dict[str, Any]], condition: str) -> list[list[dict[str, Any] | None]]:
    size = max((max(m["cheese_offset"]) + 1 for m in done), default=1)
    cells: list[list[list[float]]] = [[[] for _ in range(size)] for _ in range(size)]
    for maze in done:
        down, left = maze["cheese_offset"]
        for c in maze["conditions"]:
            if c["condition"] == condition and 0 <= down < size and 0 <= left < size:
                cells[down][left].append(c["p_reach_cheese"])
    return [[{"n": len(v), "mean": sum(v) / len(v)} if v else None for v in line] for line in cells]


def summary_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    for data in report["by_condition"]:
        label = data["condition"]
        reg = data["regressions"]
        o = data["outcomes"]["p_reach_cheese"]
        head = f"{label}: mean P(reach the cheese) {fmt(o['mean'], 3)} (n {o['n']})"
        if "skipped" in reg:
            lines.append(f"{head}; regressions skipped: {reg['skipped']}")
            continue
        three, all_ = reg["three"], reg["all"]
        lines.append(
            f"{head}; {reg['with_decision_square']} with a decision square, {reg['share_gets_cheese']:.1%} get the "
            f"cheese; held-out accuracy: all features {all_['accuracy']:.1%}, the posts' three {three['accuracy']:.1%} "
            f"(baseline {three['baseline']:.1%}, McNemar p {three['mcnemar_p']:.2g})"
        )
    return lines


STUDY = Study(
    name="behaviour-stats",
    help="Which maze features decide whether the agent goes to the cheese: exact outcomes and regressions over mazes.",
    options=BehaviourStatsOptions,
    check=check,
    plan=plan,
    report=report,
    summary=summary_lines,
    tables=(StudyTable(MAZES, outcome_rows), StudyTable(FEATURES, feature_rows)),
)
