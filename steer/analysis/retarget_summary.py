"""`steer retarget`'s summaries: per target, per maze over its targets, and over mazes.

A maze's targets become rows (`target_rows`: distances from the start and from the start-to-top-right path,
and per condition P(reach), E[steps], the geometric path score and where the channels were set); the rows
become the maze's entry (`maze_entry`: per condition the mean P(reach) over its targets, overall and in bins
of distance, the share of targets at half the cheese-moved P, the distance claim's Spearmans); the entries
become the summaries over mazes (`summaries_over_mazes`: n, 95% bootstrap intervals over mazes, paired
Wilcoxon tests). Nothing is left out uncounted: a maze without a value is counted per reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from steer.analysis.feature_clamp import FeatureCondition
from steer.analysis.metrics import describe, describe_change
from steer.analysis.retarget import TOO_FEW_TARGETS, Condition, MazeRetarget, path_spearman
from steer.analysis.stats import settings
from steer.maze.layout import Maze, Square

CONDITIONS = (
    "intervention",
    "none",
    "cheese_moved",
    "random",
    "random_scaled",
    "elsewhere",
    # with `feature:` only (steer/studies/retarget_feature.py): absent from runs without it, their metrics unchanged
    "feature",
    "feature_random",
    "feature_elsewhere",
)
SPEARMANS = ("spearman_path_distance", "spearman_path_distance_gain")
START_BINS = ((1, 5), (6, 10), (11, 15), (16, 20), (21, 25), (26, 10_000))
PATH_BINS = ((0, 0), (1, 2), (3, 4), (5, 8), (9, 10_000))


# -- per target and per maze ---------------------------------------------------------------------------------


def _distance_to_path(maze: Maze, path: Sequence[Square]) -> dict[Square, int]:
    """Steps from every reachable square to the nearest square of `path` (multi-source BFS)."""
    dist = {sq: 0 for sq in path}
    frontier = list(path)
    while frontier:
        nxt = []
        for sq in frontier:
            for nb in maze.neighbours(sq):
                if nb not in dist:
                    dist[nb] = dist[sq] + 1
                    nxt.append(nb)
        frontier = nxt
    return dist


def target_rows(result: MazeRetarget) -> list[dict[str, Any]]:
    maze = result.maze
    from_start = maze.distances_to(maze.mouse)
    tr_path = maze.shortest_path(maze.mouse, maze.top_right_square) or []
    from_path = _distance_to_path(maze, tr_path)
    rows = []
    for j, sq in enumerate(result.targets):
        row: dict[str, Any] = {
            "square": list(sq),
            "distance_from_start": from_start.get(sq),
            "distance_from_top_right_path": from_path.get(sq),
        }
        for name, r in result.conditions.items():
            steps = float(r.steps[j])
            row[name] = {"p_reach": float(r.p[j]), "steps": None if np.isnan(steps) else steps}
            if name in result.geometric:
                row[name]["geometric_path_p"] = float(result.geometric[name][j])
            if name in result.at:  # where the channels were set instead of at the target
                row[name]["square"] = list(result.at[name][j])
        rows.append(row)
    return rows


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _bin_name(lo: int, hi: int) -> str:
    return f"{lo}-{hi}" if hi < 10_000 else f"{lo}+"


BIN_NAMES = {
    "by_start_distance": [_bin_name(lo, hi) for lo, hi in START_BINS],
    "by_path_distance": [_bin_name(lo, hi) for lo, hi in PATH_BINS],
}


def maze_entry(
    seed: int,
    result: MazeRetarget,
    rows: list[dict[str, Any]],
    patched: Mapping[str, Condition | FeatureCondition],
    not_run: dict[str, str],
) -> dict[str, Any]:
    """Per-maze summaries over its targets: the units the summaries over mazes bootstrap. A condition asked for
    but not run on this maze is None here, its reason under `not_run`, so the summaries can count it."""
    maze = result.maze
    entry: dict[str, Any] = {"seed": seed, "maze_dim": maze.maze_dim, "targets": len(rows)}
    entry["random_channels"] = list(patched["random"].channels)  # type: ignore[union-attr]
    if "random_scaled" in patched:
        entry["random_scaled_values"] = list(patched["random_scaled"].value)  # type: ignore[arg-type]
    for name in result.conditions:
        entry[name] = {
            "p_reach": _mean([r[name]["p_reach"] for r in rows]),
            "geometric_path_p": _mean([r[name]["geometric_path_p"] for r in rows])
            if name in result.geometric
            else None,
            "by_start_distance": {
                _bin_name(lo, hi): _mean(
                    [r[name]["p_reach"] for r in rows if lo <= (r["distance_from_start"] or 0) <= hi]
                )
                for lo, hi in START_BINS
            },
            "by_path_distance": {
                _bin_name(lo, hi): _mean(
                    [r[name]["p_reach"] for r in rows if lo <= (r["distance_from_top_right_path"] or 0) <= hi]
                )
                for lo, hi in PATH_BINS
            },
        }
    for name in not_run:
        entry[name] = None
    entry["not_run"] = dict(not_run)
    if "cheese_moved" in result.conditions:
        ok = [r["intervention"]["p_reach"] >= 0.5 * r["cheese_moved"]["p_reach"] for r in rows]
        entry["share_half_of_cheese_moved"] = _mean([float(v) for v in ok])
    # How P(reach) under the intervention, and its gain over no intervention, fall with the distance from the
    # start-to-top-right path (Spearman): flat mazes enter as 0, mazes of fewer than 2 targets are left out.
    d = [r["distance_from_top_right_path"] for r in rows]
    p = [r["intervention"]["p_reach"] for r in rows]
    gain = [r["intervention"]["p_reach"] - r["none"]["p_reach"] for r in rows]
    entry["spearman_status"] = {}
    for key, values in zip(SPEARMANS, (p, gain), strict=True):
        entry[key], entry["spearman_status"][key] = path_spearman(d, values)
    return entry


# -- over mazes ----------------------------------------------------------------------------------------------

Why = str | Sequence[str]  # why a maze has no value: one reason for every maze, or one per maze


def _reasons(values: Sequence[float | None], why: Why) -> dict[str, int]:
    reasons = [why] * len(values) if isinstance(why, str) else list(why)
    return dict(Counter(r for v, r in zip(values, reasons, strict=True) if v is None))


def _counted(values: Sequence[float | None], why: Why) -> dict[str, Any]:
    """describe() of the mazes' values, with how many mazes had none (`excluded`) and, per reason, how many
    (`why_excluded`): nothing left out uncounted."""
    d = describe(values)
    return {**d, "excluded": len(values) - d["n"], "why_excluded": _reasons(values, why)}


def _counted_change(before: Sequence[float | None], after: Sequence[float | None], why: Why) -> dict[str, Any]:
    """describe_change() over the mazes where both sides have a value, counted as `_counted` counts."""
    d = describe_change(before, after)
    both = [None if b is None or a is None else 0.0 for b, a in zip(before, after, strict=True)]
    return {**d, "excluded": len(before) - d["n"], "why_excluded": _reasons(both, why)}


def _per_maze(mazes: Sequence[dict[str, Any]], name: str, get: Callable[[dict[str, Any]], Any]) -> list[float | None]:
    """Per maze: `get` of the condition's entry, None where the maze did not run it."""
    return [None if m.get(name) is None else get(m[name]) for m in mazes]


def _why_not(mazes: Sequence[dict[str, Any]], name: str, otherwise: str) -> list[str]:
    """Per maze: the condition's reason for not running there, else `otherwise`."""
    return [m.get("not_run", {}).get(name, otherwise) for m in mazes]


def _condition_summary(mazes: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    """One condition over mazes: its mean P(reach), geometric path score and each distance bin, counted."""
    no_targets = _why_not(mazes, name, "no targets")
    not_scored = "not computed for the cheese-moved reference"  # it changes the input: no geometric path score
    no_score = _why_not(mazes, name, not_scored) if name == "cheese_moved" else no_targets
    empty_bin = _why_not(mazes, name, "no target in this bin")
    return {
        "p_reach": _counted(_per_maze(mazes, name, lambda r: r["p_reach"]), no_targets),
        "geometric_path_p": _counted(_per_maze(mazes, name, lambda r: r["geometric_path_p"]), no_score),
        **{
            key: {b: _counted(_per_maze(mazes, name, lambda r, k=key, b=b: r[k][b]), empty_bin) for b in names}
            for key, names in BIN_NAMES.items()
        },
    }


def _resampling_summary(resampled: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """The resampling test's values over the mazes that ran it, and cheese − random channels, each counted."""
    untested = "no resampling test: the cheese edited away, or no donor (a single maze)"
    untestable = {
        "same": "the donor maze cannot take the cheese on this maze's cheese square: a wall or its start",
        "different": "the donor maze's cheese is on this maze's cheese square, or it has none",
    }
    reasons = {where: [untested if r is None else text for r in resampled] for where, text in untestable.items()}
    keys = next(r for r in resampled if r is not None)
    res = {k: [None if r is None else r[k] for r in resampled] for k in keys}
    out = {k: _counted(v, reasons[k.rsplit("_", 1)[1]]) for k, v in res.items()}
    for where in ("same", "different"):
        out[f"cheese_minus_random_{where}"] = _counted_change(
            res[f"random_channels_{where}"], res[f"cheese_channels_{where}"], reasons[where]
        )
    return out


def summaries_over_mazes(mazes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """metrics.json's `summary`: each condition over mazes; the intervention minus each other condition (paired);
    P(reach) by maze size; the share of targets at half the cheese-moved P; the distance claim's Spearmans (flat
    mazes counted); the resampling test; the statistics' settings. A condition is summarised where any maze ran
    it; mazes that did not are counted with their reason."""
    present = [c for c in CONDITIONS if any(m.get(c) is not None for m in mazes)]
    out: dict[str, Any] = {"mazes": len(mazes), "conditions": present}
    for name in present:
        out[name] = _condition_summary(mazes, name)
    p = {name: _per_maze(mazes, name, lambda r: r["p_reach"]) for name in present}
    out["intervention_minus"] = {
        other: _counted_change(p[other], p["intervention"], _why_not(mazes, other, "no targets"))
        for other in present
        if other != "intervention"
    }
    if "feature" in present:
        # The feature's clamp against the channels' intervention and the feature's own controls, paired per maze.
        out["feature_minus"] = {
            other: _counted_change(p[other], p["feature"], _why_not(mazes, other, "no targets"))
            for other in present
            if other != "feature"
        }
    sizes = sorted({m["maze_dim"] for m in mazes})
    out["by_maze_size"] = {
        str(s): {
            name: _counted(
                [v for v, m in zip(p[name], mazes, strict=True) if m["maze_dim"] == s],
                [w for w, m in zip(_why_not(mazes, name, "no targets"), mazes, strict=True) if m["maze_dim"] == s],
            )
            for name in present
        }
        for s in sizes
    }
    if mazes and "share_half_of_cheese_moved" in mazes[0]:
        out["share_half_of_cheese_moved"] = _counted([m["share_half_of_cheese_moved"] for m in mazes], "no targets")
    for key in SPEARMANS:
        status = [m["spearman_status"][key] for m in mazes]
        out[key] = {
            **_counted([m[key] for m in mazes], TOO_FEW_TARGETS),
            # Flat mazes (no trend visible: every distance or every value equal) are in n, each as rho 0.
            "flat": status.count("flat"),
        }
    resampled = [m.get("resampling") for m in mazes]
    if any(r is not None for r in resampled):
        out["resampling"] = _resampling_summary(resampled)
    out["statistics"] = settings()
    return out
