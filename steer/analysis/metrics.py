"""What a patch did to a maze's vector field, as numbers: the metric registry and the one summariser.

Each metric is declared once, as a `Metric` in `METRICS`, and every report, chart, matrix and console line
loops over the registry. A metric is either

- a *field* metric, computed on one field and reported for the original and the patched field
  (`{"original": …, "patched": …}`), or
- a *comparison* metric, computed from the original and patched fields together and reported as one value.

The metrics:

- p_cheese_ds / p_top_right_ds: probability of the step from the decision square onto the next square of
  the shortest path to the cheese / to the inner top-right square.
- p_toward_cheese / p_toward_top_right: mean over squares of the probability of a step that shortens the
  path to that target (the target square itself, and squares it cannot be reached from, are left out).
- entropy: mean over squares of the action distribution's entropy, in nats (uniform over 15: ln 15 ≈ 2.71).
- wall_mass: mean over squares of the probability of moves into walls (such moves leave the mouse in place).
- mean_tv: mean over squares of the total-variation distance between the 15-way action distributions.

A value is None where a metric is undefined (no decision square, no cheese); summaries leave those out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from steer.analysis.stats import intervals as interval_rows
from steer.analysis.stats import median, paired_values, present, settings, wilcoxon_p
from steer.maze.layout import Maze, Square
from steer.net.vfield import DIRECTIONS, VectorField, direction_prob

# -- the quantities --------------------------------------------------------------------------------


def step_toward(maze: Maze, square: Square, target: Square) -> tuple[int, int] | None:
    """The first step of the shortest path from `square` to `target`, or None if there is none."""
    path = maze.shortest_path(square, target)
    if path is None or len(path) < 2:
        return None
    return (path[1][0] - square[0], path[1][1] - square[1])


def p_toward(field: VectorField, target: Square | None) -> float | None:
    """Mean over squares of P(a step that brings the mouse closer to `target`)."""
    if target is None:
        return None
    dist = field.maze.distances_to(target)
    steps = list(DIRECTIONS)
    # closer[i, j]: step j from square i lands on a square nearer the target. A step into a wall lands on
    # no square (dist.get → the square's own distance), so it never counts as closer.
    rows, closer = [], []
    for i, sq in enumerate(field.positions):
        d = dist.get(sq)
        if d is None or d == 0:
            continue
        rows.append(i)
        closer.append([dist.get((sq[0] + dr, sq[1] + dc), d) < d for dr, dc in steps])
    if not rows:
        return None
    by_step = np.stack([direction_prob(field.probs[rows], step) for step in steps], axis=-1)
    return float(np.mean(np.where(closer, by_step, 0.0).sum(axis=-1)))


def p_step_at(field: VectorField, square: Square | None, target: Square | None) -> float | None:
    """P(the step from `square` onto the next square of the shortest path to `target`)."""
    if square is None or target is None or square not in field.positions:
        return None
    step = step_toward(field.maze, square, target)
    if step is None:
        return None
    return float(direction_prob(field.probs[field.index(square)], step))


def mean_tv(original: VectorField, patched: VectorField) -> float | None:
    """Mean over squares of ½ Σ|p − q| (total variation, in [0, 1])."""
    if not len(original.probs):
        return None
    return float(0.5 * np.abs(original.probs - patched.probs).sum(axis=-1).mean())


def mean_entropy(field: VectorField) -> float | None:
    """Mean over squares of the action distribution's entropy, in nats."""
    if not len(field.probs):
        return None
    p = field.probs.astype(np.float64)
    return float(-(p * np.log(np.clip(p, 1e-300, None))).sum(axis=-1).mean())


def blocked_moves(maze: Maze, positions: Sequence[Square]) -> np.ndarray:
    """(N, 4) bool, in DIRECTIONS order: True where that move from the square runs into a wall or the world edge."""
    return np.array(
        [[not maze.is_open((r + dr, c + dc)) for dr, dc in DIRECTIONS] for r, c in positions], dtype=bool
    ).reshape(len(positions), len(DIRECTIONS))


def wall_mass(field: VectorField) -> float | None:
    """Mean over squares of the probability of moves into walls."""
    if not len(field.probs):
        return None
    moves = np.stack([direction_prob(field.probs.astype(np.float64), step) for step in DIRECTIONS], axis=-1)
    return float((moves * blocked_moves(field.maze, field.positions)).sum(axis=-1).mean())


# -- the registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One number per maze: from each field (`of_field`), from the original and patched fields together
    (`of_both`), or from each policy's exact episode statistics (`of_behaviour`)."""

    name: str
    label: str  # for charts and console lines
    # What the number is measured in, for a table's documentation (docs/outputs.md, tables.json): "probability",
    # "nats", "steps"; a comparison metric's unit is its own.
    unit: str = ""
    of_field: Callable[[VectorField], float | None] | None = None
    of_both: Callable[[VectorField, VectorField], float | None] | None = None
    # Behaviour metrics come from the exact episode statistics (steer.analysis.chain.Behaviour), not one field: they
    # need both facings of every square, so studies compute them only where asked (steer behaviour).
    of_behaviour: Callable[[Any], float | None] | None = None

    @property
    def paired(self) -> bool:
        """Reported as {original, patched}; a comparison metric is one value per maze."""
        return self.of_field is not None or self.of_behaviour is not None

    @property
    def needs_behaviour(self) -> bool:
        return self.of_behaviour is not None

    def compute(self, original: Any, patched: Any) -> Any:
        """The metric of a patch: fields for field and comparison metrics, Behaviours for behaviour metrics."""
        if self.of_behaviour is not None:
            return {"original": self.of_behaviour(original), "patched": self.of_behaviour(patched)}
        if self.of_field is not None:
            return {"original": self.of_field(original), "patched": self.of_field(patched)}
        assert self.of_both is not None
        return self.of_both(original, patched)

    def unpatched(self, original: Any) -> float | None:
        """The metric's value for the policy left alone (a comparison metric compares the field with itself)."""
        if self.of_behaviour is not None:
            return self.of_behaviour(original)
        if self.of_field is not None:
            return self.of_field(original)
        assert self.of_both is not None
        return self.of_both(original, original)


def _at_decision_square(target: Callable[[Maze], Square | None]) -> Callable[[VectorField], float | None]:
    return lambda f: p_step_at(f, f.maze.decision_square(), target(f.maze))


def _toward(target: Callable[[Maze], Square | None]) -> Callable[[VectorField], float | None]:
    return lambda f: p_toward(f, target(f.maze))


def _cheese(maze: Maze) -> Square | None:
    return maze.cheese


def _top_right(maze: Maze) -> Square:
    return maze.top_right_square


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("p_cheese_ds", "P(cheese | decision square)", "probability", of_field=_at_decision_square(_cheese)),
        Metric(
            "p_top_right_ds", "P(top-right | decision square)", "probability", of_field=_at_decision_square(_top_right)
        ),
        Metric("p_toward_cheese", "mean P(step toward cheese)", "probability", of_field=_toward(_cheese)),
        Metric("p_toward_top_right", "mean P(step toward top-right)", "probability", of_field=_toward(_top_right)),
        Metric("mean_tv", "mean TV distance from original", "total variation, 0 to 1", of_both=mean_tv),
        Metric("entropy", "mean action entropy (nats)", "nats", of_field=mean_entropy),
        Metric("wall_mass", "mean P(move into a wall)", "probability", of_field=wall_mass),
        Metric(
            "p_reach_cheese", "P(reach the cheese within 500 steps)", "probability", of_behaviour=lambda b: b.p_cheese
        ),
        Metric(
            "p_reach_top_right", "P(visit the top-right square)", "probability", of_behaviour=lambda b: b.p_top_right
        ),
        Metric(
            "steps_to_cheese",
            "expected steps to the cheese, if reached",
            "steps",
            of_behaviour=lambda b: b.steps_to_cheese,
        ),
        Metric("mean_steps", "expected episode length (steps)", "steps", of_behaviour=lambda b: b.mean_steps),
    )
}
FIELD_METRICS = {name: m for name, m in METRICS.items() if not m.needs_behaviour}
BEHAVIOUR_METRICS = {name: m for name, m in METRICS.items() if m.needs_behaviour}
PAIRED = tuple(name for name, m in FIELD_METRICS.items() if m.paired)
MAZE_KEYS = ("maze_dim", "cheese", "decision_square")


def _listed(square: Square | None) -> list[int] | None:
    return list(square) if square is not None else None


def maze_info(maze: Maze) -> dict[str, Any]:
    """The keys that describe a maze rather than a patch."""
    return {
        "maze_dim": maze.maze_dim,
        "cheese": _listed(maze.cheese),
        "decision_square": _listed(maze.decision_square()),
    }


def effect_metrics(original: VectorField, patched: VectorField) -> dict[str, Any]:
    """Every registered field and comparison metric of a patch."""
    return {name: m.compute(original, patched) for name, m in FIELD_METRICS.items()}


def behaviour_metrics(original: Any, patched: Any, names: Sequence[str] | None = None) -> dict[str, Any]:
    """The registered behaviour metrics of a patch (all, or `names`), from two `steer.analysis.chain.Behaviour`s."""
    return {name: BEHAVIOUR_METRICS[name].compute(original, patched) for name in names or BEHAVIOUR_METRICS}


def maze_metrics(original: VectorField, patched: VectorField) -> dict[str, Any]:
    """The maze's own keys and every registered metric of the patch."""
    return {**maze_info(original.maze), **effect_metrics(original, patched)}


def unpatched_metrics(original: VectorField) -> dict[str, float | None]:
    """Every field metric's value for the unpatched policy (comparison metrics: the field against itself)."""
    return {name: m.unpatched(original) for name, m in FIELD_METRICS.items()}


def patched_value(value: Any) -> float | None:
    """A metric's value under the patch: field metrics store {original, patched}."""
    return value["patched"] if isinstance(value, dict) else value


def delta(value: Any) -> float | None:
    """Patched − original of a field metric; None where either side is undefined."""
    before, after = value["original"], value["patched"]
    return None if before is None or after is None else after - before


# -- the summariser --------------------------------------------------------------------------------


def describe(values: Sequence[float | None], intervals: bool = True) -> dict[str, Any]:
    """n, mean, median and quartiles of the defined values (mazes where a metric is undefined are left out),
    with 95% bootstrap intervals of the mean and the median over mazes (steer.analysis.stats)."""
    return describe_many([values], intervals)[0]


def describe_many(columns: Sequence[Sequence[float | None]], intervals: bool = True) -> list[dict[str, Any]]:
    """`describe` of each of many value lists, with the bootstraps of lists of equal length run together
    (`steer.analysis.stats.intervals`: the same numbers as one call each, a fraction of the time)."""
    xs = [present(values) for values in columns]
    out: list[dict[str, Any]] = []
    for x in xs:
        if not len(x):
            empty: dict[str, Any] = {"n": 0, "mean": None, "median": None, "q25": None, "q75": None}
            out.append({**empty, "mean_ci": None, "median_ci": None} if intervals else empty)
            continue
        q25, mid, q75 = np.percentile(x, [25, 50, 75])
        out.append({"n": len(x), "mean": float(x.mean()), "median": float(mid), "q25": float(q25), "q75": float(q75)})
    if intervals:
        by_n: dict[int, list[int]] = {}
        for i, x in enumerate(xs):
            if len(x):
                by_n.setdefault(len(x), []).append(i)
        for chosen in by_n.values():
            means, medians = interval_rows(np.stack([xs[i] for i in chosen]), (np.mean, median))
            for i, mean_ci, median_ci in zip(chosen, means, medians, strict=True):
                out[i]["mean_ci"], out[i]["median_ci"] = mean_ci, median_ci
    return out


def describe_change(original: Sequence[float | None], patched: Sequence[float | None]) -> dict[str, Any]:
    """Patched − original over the mazes where both are defined: its summary, intervals and a Wilcoxon p-value."""
    before, after = paired_values(original, patched)
    return {**describe(list(after - before)), "wilcoxon_p": wilcoxon_p(after, before)}


def summarize(mazes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Every registered metric over mazes: each side of a field metric and its change, or a comparison metric's
    one value."""
    out: dict[str, Any] = {"mazes": len(mazes)}
    for name, metric in METRICS.items():
        if mazes and not all(name in m for m in mazes):
            continue  # behaviour metrics, where the study did not compute them
        if metric.needs_behaviour and not mazes:
            continue
        if metric.paired:
            sides = {side: [m[name][side] for m in mazes] for side in ("original", "patched")}
            out[name] = {side: describe(v) for side, v in sides.items()}
            out[name]["change"] = describe_change(sides["original"], sides["patched"])
        else:
            out[name] = describe([m[name] for m in mazes])
    out["with_decision_square"] = sum(1 for m in mazes if m["decision_square"] is not None)
    out["statistics"] = settings()
    return out


def effect_label(metric: str) -> str:
    """What a metric's effect is called on a chart or a console line: "change in P(cheese | DS)" for a paired
    metric (patched − original), its own label for a comparison metric."""
    return f"change in {METRICS[metric].label}" if METRICS[metric].paired else METRICS[metric].label


def fmt(value: float | None, digits: int = 2) -> str:
    """A number for a caption or console line; n/a where undefined."""
    return "n/a" if value is None else f"{value:.{digits}f}"
