"""`steer retarget`: send the agent to a square by setting cheese channels there, and map where it can be sent.

Per maze and target square, exactly from the (square, facing) chain (steer/analysis/chain.py, `reach`):
P(the agent reaches the target within the horizon) and E[steps | it does], for

- `intervention`: `channels` set to `value` at the target's activation position (steer/net/retarget.py);
- `none`: the unpatched policy;
- `cheese_moved`: the cheese moved onto the target (the input-edit reference; it changes the input, so it
  costs a full forward pass per target);
- `random`: as many channels drawn from the bottom half of the channel ranking (never a chosen channel), per
  maze from `control_seed`, set to the same value;

plus procgen-tools' geometric path probability for the conditions that share the maze's input.

    seeds: {from: 0, to: 99}
    layer: block2.res1.resadd_out       # optional; a site with a spatial map
    channels: {top: 2}                  # or a list [10, 27]; {top: k, seeds: …} ranks on other mazes
    value: 5.5
    default: 0.0                        # optional: every other position of the channels (the "smoothed" variant)
    cheese: remove                      # or keep
    targets: all                        # or [[r, c], …] (row 0 at the bottom)
    first_map: false                    # optional: procgen-tools' default=None batch-element-0 behaviour
    cheese_moved: true                  # optional: the input-edit reference (costly)
    resample: true                      # optional: the resampling test (the level as generated, a donor maze)
    control_seed: 0                     # optional: seeds the random channels
    show: [0, 1]                        # optional: mazes with a retargetability map (default: the first two)

Per seed `retarget-seed<N>.json` holds every target's numbers; metrics.json the per-maze summaries and the
summaries over mazes (n, 95% bootstrap intervals over mazes, paired Wilcoxon tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import stats

from steer.analysis.metrics import describe, describe_change
from steer.analysis.retarget import (
    MazeRetarget,
    derangement,
    maze_channel_scores,
    rank_channels,
    resampling_test,
    retarget_maze,
)
from steer.analysis.stats import settings
from steer.errors import SteerError, excerpt
from steer.io import atomic_write_json
from steer.maze.layout import Maze, Square
from steer.net.retarget import check_patch, spatial_grid
from steer.report.charts import IntervalSeries, interval_rows
from steer.report.render import save_png, tile
from steer.report.retarget_figs import reach_panel, scale_bar
from steer.run.session import Session
from steer.run.spec_values import _Fields, choice_of, finite_float
from steer.run.specs import Spec, parse_seeds
from steer.run.study import CellResult, Report, Study, seed_list

CONDITIONS = ("intervention", "none", "cheese_moved", "random")
LABELS = {
    "intervention": "channels set at the target",
    "none": "no intervention",
    "cheese_moved": "cheese moved to the target",
    "random": "random channels set at the target",
}
START_BINS = ((1, 5), (6, 10), (11, 15), (16, 20), (21, 25), (26, 10_000))
PATH_BINS = ((0, 0), (1, 2), (3, 4), (5, 8), (9, 10_000))


@dataclass(frozen=True)
class ChannelChoice:
    channels: tuple[int, ...] = ()  # given as a list
    top: int = 0  # or the k best of a ranking
    seeds: tuple[int, ...] = ()  # the ranking's mazes (empty: the run's own)


def _channels(value: Any, where: str) -> ChannelChoice:
    if isinstance(value, list):
        if not value:
            raise SteerError(f"{where}: the list is empty; name at least one channel, e.g. [10] or {{top: 2}}.")
        for i, c in enumerate(value):
            if type(c) is not int or c < 0:
                raise SteerError(f"{where}[{i}]: {excerpt(c)} is not a channel number; use integers from 0.")
        if len(set(value)) != len(value):
            raise SteerError(f"{where}: a channel is listed twice ({excerpt(value)}).")
        return ChannelChoice(channels=tuple(value))
    f = _Fields(value, where, ("top", "seeds"))
    top = f.data.get("top")
    if type(top) is not int or not 1 <= top <= 64:
        raise SteerError(f"{where}.top: expected a number of channels from 1 to 64, got {excerpt(top)}.")
    seeds = parse_seeds(f.data["seeds"], f.where("seeds")) if f.has("seeds") else ()
    return ChannelChoice(top=top, seeds=seeds)


def _value(value: Any, where: str) -> float:
    if isinstance(value, float | str) and not isinstance(value, bool):
        try:
            number = float(value)
        except ValueError:
            number = 0.0  # not a number at all: finite_float says so below
        if not np.isfinite(number):
            raise SteerError(
                f"{where}: {excerpt(value)} is not a finite number; the activation is set to this value, so give a "
                "real number such as 5.5."
            )
    v = finite_float(value, where)
    if abs(v) > 1e6:
        raise SteerError(f"{where}: {v:g} is too large for float32 activations; use a value such as 5.5.")
    return v


def _targets(value: Any, where: str) -> str | tuple[Square, ...]:
    if value == "all":
        return "all"
    if not isinstance(value, list) or not value:
        raise SteerError(f"{where}: expected all or a list of squares [[row, col], …], got {excerpt(value)}.")
    out = []
    for i, sq in enumerate(value):
        if not (isinstance(sq, list) and len(sq) == 2 and all(type(v) is int for v in sq)):
            raise SteerError(f"{where}[{i}]: expected a square [row, col] (row 0 at the bottom), got {excerpt(sq)}.")
        out.append((sq[0], sq[1]))
    return tuple(dict.fromkeys(out))


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SteerError(f"{where}: expected true or false, got {excerpt(value)}.")
    return value


def check(spec: Spec) -> None:
    for i, seed in enumerate(spec.extra.get("show", ())):
        if seed not in spec.seeds:
            raise SteerError(f"show[{i}]: seed {seed} is not one of the seeds ({seed_list(spec.seeds)}).")
    choice: ChannelChoice = spec.extra["channels"]
    if choice.top and not choice.seeds and len(spec.seeds) < 2:
        raise SteerError(
            "channels: {top: k} ranks the channels on the run's mazes against shuffled cheese positions, which "
            "needs at least two seeds; add seeds or give channels.seeds."
        )


@dataclass(frozen=True)
class Plan:
    spec: Spec
    layer: str
    channels: tuple[int, ...]
    random_pool: tuple[int, ...]  # the random control's channels are drawn from these
    ranking: tuple[tuple[int, float], ...]  # (channel, mean peak distance), best first
    partner: dict[int, int]  # the resampling test's donor maze for each seed (a derangement of the seeds)

    def mazes(self, session: Session, seed: int) -> Maze:
        maze = session.target_maze(self.spec, seed)
        return maze.without_cheese() if self.spec.extra.get("cheese", "remove") == "remove" else maze

    def targets(self, maze: Maze) -> list[Square]:
        chosen = self.spec.extra.get("targets", "all")
        if chosen == "all":
            return [sq for sq in maze.open_squares() if sq != maze.mouse and sq != maze.cheese]
        return list(chosen)

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        spec = self.spec
        maze = self.mazes(session, seed)
        targets = self.targets(maze)
        rng = np.random.default_rng([spec.control_seed, seed])
        random_channels = tuple(int(c) for c in rng.choice(self.random_pool, len(self.channels), replace=False))
        result = retarget_maze(
            session.policy,
            session.renderer,
            maze,
            targets,
            self.layer,
            self.channels,
            spec.extra["value"],
            default=spec.extra.get("default"),
            random_channels=random_channels,
            cheese_moved=spec.extra.get("cheese_moved", True),
            first_map=spec.extra.get("first_map", False),
            batch_size=spec.batch_size,
        )
        rows = target_rows(result)
        entry = maze_entry(seed, result, rows, random_channels)
        if spec.extra.get("resample", True) and seed in self.partner:
            generated = session.target_maze(spec, seed)
            donor = session.target_maze(spec, self.partner[seed])
            if generated.cheese is not None:
                entry["resampling"] = resampling_test(
                    session.policy,
                    session.renderer,
                    generated,
                    donor,
                    self.layer,
                    self.channels,
                    random_channels,
                    spec.batch_size,
                )
        files = [f"retarget-seed{seed}.json"]
        atomic_write_json(
            out / files[0],
            {"seed": seed, "channels": list(self.channels), "random_channels": list(random_channels), "targets": rows},
            compact=True,
        )
        shown = spec.extra.get("show") or spec.seeds[:2]
        if seed in shown:
            name = f"retarget-map-seed{seed}.png"
            save_png(map_figure(session, self, seed, result, random_channels), out / name)
            files.append(name)
        return "done", files, entry


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
        rows.append(row)
    return rows


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def maze_entry(
    seed: int, result: MazeRetarget, rows: list[dict[str, Any]], random_channels: Sequence[int]
) -> dict[str, Any]:
    """Per-maze summaries over its targets: the units the summaries over mazes bootstrap."""
    maze = result.maze
    entry: dict[str, Any] = {"seed": seed, "maze_dim": maze.maze_dim, "targets": len(rows)}
    entry["random_channels"] = list(random_channels)
    for name in result.conditions:
        entry[name] = {
            "p_reach": _mean([r[name]["p_reach"] for r in rows]),
            "geometric_path_p": _mean([r[name]["geometric_path_p"] for r in rows])
            if name in result.geometric
            else None,
            "by_start_distance": {
                f"{lo}-{hi}" if hi < 10_000 else f"{lo}+": _mean(
                    [r[name]["p_reach"] for r in rows if lo <= (r["distance_from_start"] or 0) <= hi]
                )
                for lo, hi in START_BINS
            },
            "by_path_distance": {
                f"{lo}-{hi}" if hi < 10_000 else f"{lo}+": _mean(
                    [r[name]["p_reach"] for r in rows if lo <= (r["distance_from_top_right_path"] or 0) <= hi]
                )
                for lo, hi in PATH_BINS
            },
        }
    if "cheese_moved" in result.conditions:
        ok = [r["intervention"]["p_reach"] >= 0.5 * r["cheese_moved"]["p_reach"] for r in rows]
        entry["share_half_of_cheese_moved"] = _mean([float(v) for v in ok])
    # How P(reach) under the intervention falls with the distance from the start-to-top-right path (Spearman).
    d = [r["distance_from_top_right_path"] for r in rows]
    p = [r["intervention"]["p_reach"] for r in rows]
    rho = None
    if len(rows) >= 3 and len(set(d)) > 1 and len(set(p)) > 1:
        rho = float(stats.spearmanr(d, p).statistic)
    entry["spearman_path_distance"] = rho
    return entry


def check_targets(maze: Maze, targets: Sequence[Square], seed: int) -> None:
    """Each target an open square of `maze` other than the mouse's, or one message naming it and the fix."""
    for i, sq in enumerate(targets):
        if not (0 <= sq[0] < maze.world_dim and 0 <= sq[1] < maze.world_dim):
            raise SteerError(
                f"targets[{i}]: {list(sq)} is outside the {maze.world_dim}x{maze.world_dim} world; rows "
                f"and columns run from 0 to {maze.world_dim - 1} (row 0 is the bottom)."
            )
        if not maze.is_open(sq):
            raise SteerError(
                f"targets[{i}]: {list(sq)} is a wall in seed {seed}'s maze (its open squares span rows and "
                f"columns {maze.inner_bounds[0]} to {maze.inner_bounds[1]}); choose an open square of every "
                "maze, or targets: all."
            )
        if sq == maze.mouse:
            raise SteerError(f"targets[{i}]: {list(sq)} is where the mouse starts in seed {seed}'s maze.")


def plan(spec: Spec, session: Session) -> Plan:
    policy = session.policy
    layer = spec.effective_layer
    n_channels, _ = spatial_grid(policy, layer)
    choice: ChannelChoice = spec.extra["channels"]
    if choice.channels:
        check_patch(policy, layer, choice.channels, spec.extra["value"])
    else:
        check_patch(policy, layer, (), spec.extra["value"])
        if choice.top > n_channels:
            raise SteerError(f"channels.top: {choice.top} is more than the {n_channels} channels of {layer!r}.")
    # Targets must be open squares of every maze: refused now, before any output is written.
    chosen = spec.extra.get("targets", "all")
    if chosen != "all":
        for seed in spec.seeds:
            check_targets(session.target_maze(spec, seed), chosen, seed)
    # The ranking: on the named mazes, else on the run's own mazes as generated (with their cheese).
    seeds = choice.seeds or spec.seeds
    shuffled = derangement(seeds, spec.control_seed) if len(seeds) > 1 else {}
    scores = []
    for seed in seeds if len(seeds) > 1 else ():
        maze = session.renderer.level(seed)
        other = session.renderer.level(shuffled[seed]).cheese
        if maze.cheese is not None and other is not None:
            scores.append(maze_channel_scores(policy, session.renderer, maze, layer, other))
    ranking = tuple((int(r["channel"]), float(r["peak_distance"]["mean"])) for r in rank_channels(scores))  # type: ignore[index]
    channels = choice.channels or tuple(c for c, _ in ranking[: choice.top])
    order = [c for c, _ in ranking] or list(range(n_channels))
    pool = tuple(c for c in order[n_channels // 2 :] if c not in channels)
    if len(pool) < len(channels):
        raise SteerError(
            f"channels: {len(channels)} channels leave too few others ({len(pool)}) in the bottom half of the "
            "ranking to draw as many random channels; choose fewer."
        )
    return Plan(
        spec, layer, channels, pool, ranking, derangement(spec.seeds, spec.control_seed) if len(spec.seeds) > 1 else {}
    )


def _summary(mazes: list[dict[str, Any]]) -> dict[str, Any]:
    present = [c for c in CONDITIONS if mazes and all(c in m for m in mazes)]
    out: dict[str, Any] = {"mazes": len(mazes), "conditions": present}
    for name in present:
        out[name] = {
            "p_reach": describe([m[name]["p_reach"] for m in mazes]),
            "geometric_path_p": describe([m[name]["geometric_path_p"] for m in mazes]),
            "by_start_distance": {
                k: describe([m[name]["by_start_distance"][k] for m in mazes])
                for k in mazes[0][name]["by_start_distance"]
            },
            "by_path_distance": {
                k: describe([m[name]["by_path_distance"][k] for m in mazes]) for k in mazes[0][name]["by_path_distance"]
            },
        }
    p = {name: [m[name]["p_reach"] for m in mazes] for name in present}
    out["intervention_minus"] = {
        other: describe_change(p[other], p["intervention"]) for other in present if other != "intervention"
    }
    sizes = sorted({m["maze_dim"] for m in mazes})
    out["by_maze_size"] = {
        str(s): {name: describe([m[name]["p_reach"] for m in mazes if m["maze_dim"] == s]) for name in present}
        for s in sizes
    }
    if mazes and "share_half_of_cheese_moved" in mazes[0]:
        out["share_half_of_cheese_moved"] = describe([m["share_half_of_cheese_moved"] for m in mazes])
    out["spearman_path_distance"] = describe([m["spearman_path_distance"] for m in mazes])
    resampled = [m["resampling"] for m in mazes if "resampling" in m]
    if resampled:
        out["resampling"] = {k: describe([r[k] for r in resampled]) for k in resampled[0]}
        for where in ("same", "different"):
            out["resampling"][f"cheese_minus_random_{where}"] = describe_change(
                [r[f"random_channels_{where}"] for r in resampled], [r[f"cheese_channels_{where}"] for r in resampled]
            )
    out["statistics"] = settings()
    return out


def map_figure(
    session: Session, plan: Plan, seed: int, result: MazeRetarget, random_channels: Sequence[int]
) -> Image.Image:
    maze = result.maze
    value = plan.spec.extra["value"]
    panels = []
    for name in CONDITIONS:
        if name not in result.conditions:
            continue
        r = result.conditions[name]
        p = {sq: float(v) for sq, v in zip(result.targets, r.p, strict=True)}
        what = {
            "intervention": f"channels {', '.join(map(str, plan.channels))} = {value:g} at the target",
            "random": f"random channels {', '.join(map(str, random_channels))} = {value:g}",
            "cheese_moved": "the cheese moved onto the target",
            "none": "no intervention",
        }[name]
        panels.append(reach_panel(maze, p, [what, f"mean P over {len(p)} targets: {np.mean(r.p):.3f}"]))
    panels.append(scale_bar())
    return tile(
        f"seed {seed} · P(reach each square within 500 steps), exact · {plan.layer} · {session.title}",
        panels,
        columns=len(panels),
        footer="each square: P(the agent, starting at the dark mark, reaches it) under that condition; green 1, "
        "white 0; grey: not a target",
    )


def chart(session: Session, plan: Plan, summary: dict[str, Any], key: str, title: str) -> Image.Image:
    present = summary["conditions"]
    bins = list(summary[present[0]][key])
    rgb = {
        "intervention": (200, 90, 20),
        "none": (120, 120, 120),
        "cheese_moved": (24, 48, 120),
        "random": (60, 160, 80),
    }
    series = []
    for name in present:
        stats_ = [summary[name][key][b] for b in bins]
        series.append(
            IntervalSeries(
                LABELS[name],
                rgb[name],
                [s["mean"] for s in stats_],
                [(s["mean_ci"] or [None, None])[0] for s in stats_],
                [(s["mean_ci"] or [None, None])[1] for s in stats_],
            )
        )
    labels = [f"{b} (n {summary[present[0]][key][b]['n']})" for b in bins]
    return interval_rows(
        f"{title} · {summary['mazes']} mazes · {session.title}",
        labels,
        series,
        (0.0, 1.0),
        footer="dot: mean over mazes of the maze's mean P(reach target) in that bin; line: 95% bootstrap interval "
        "over mazes",
    )


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    summary = _summary(done)
    figures = {}
    if done:
        figures["retarget-by-start-distance.png"] = chart(
            session, plan, summary, "by_start_distance", "P(reach target) by path distance from the start"
        )
        figures["retarget-by-path-distance.png"] = chart(
            session, plan, summary, "by_path_distance", "P(reach target) by distance from the start-to-top-right path"
        )
    return Report(
        {
            "layer": plan.layer,
            "channels": list(plan.channels),
            "value": spec.extra["value"],
            "default": spec.extra.get("default"),
            "cheese": spec.extra.get("cheese", "remove"),
            "first_map": spec.extra.get("first_map", False),
            "ranking": [{"channel": c, "mean_peak_distance": d} for c, d in plan.ranking],
            "random_pool": list(plan.random_pool),
            "mazes": done,
            "summary": summary,
        },
        figures,
    )


def summary_lines(report: dict[str, Any]) -> list[str]:
    s = report["summary"]
    lines = [f"channels {report['channels']} = {report['value']:g} at {report['layer']}; {s['mazes']} mazes"]
    for name in s["conditions"]:
        d = s[name]["p_reach"]
        ci = d["mean_ci"] or [d["mean"], d["mean"]]
        lines.append(
            f"  mean P(reach target) {LABELS[name]}: {d['mean']:.3f} (95% CI {ci[0]:.3f}-{ci[1]:.3f}, n {d['n']})"
        )
    for key, text in (
        ("share_half_of_cheese_moved", "share of targets at >= half the cheese-moved P"),
        ("spearman_path_distance", "Spearman rho of P(reach) with distance from the top-right path"),
    ):
        if key in s and s[key]["n"]:
            d = s[key]
            ci = d["mean_ci"] or [d["mean"], d["mean"]]
            lines.append(f"  {text}: {d['mean']:.3f} ({ci[0]:.3f} to {ci[1]:.3f}, n {d['n']})")
    for key, d in s.get("resampling", {}).items():
        if key.startswith("cheese_minus"):
            continue
        ci = d["mean_ci"] or [d["mean"], d["mean"]]
        if d["n"]:
            what = key.replace("_", " ")
            lines.append(f"  resampling, mean TV, {what}: {d['mean']:.4f} ({ci[0]:.4f} to {ci[1]:.4f}, n {d['n']})")
    for other, d in s["intervention_minus"].items():
        ci = d["mean_ci"] or [d["mean"], d["mean"]]
        p = d["wilcoxon_p"]
        lines.append(
            f"  intervention - {other}: {d['mean']:+.3f} ({ci[0]:+.3f} to {ci[1]:+.3f}), Wilcoxon p "
            + ("n/a" if p is None else f"{p:.2g}")
        )
    return lines


STUDY = Study(
    name="retarget",
    help="Set cheese-tracking channels at a target square; exact P(reach it) against no edit, the moved cheese, "
    "random channels.",
    keys=("seeds", "control_seed"),
    required=("seeds", "channels", "value"),
    check=check,
    plan=plan,
    report=report,
    summary=summary_lines,
    grows=False,  # {top: k} ranks the channels on the whole seed list
    own_keys={
        "channels": _channels,
        "value": _value,
        "default": _value,
        "cheese": choice_of(("remove", "keep")),
        "targets": _targets,
        "first_map": _flag,
        "cheese_moved": _flag,
        "show": lambda v, where: parse_seeds(v, where),
        "resample": _flag,
    },
)
