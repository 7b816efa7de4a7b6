"""`steer retarget`: send the agent to a square by setting cheese channels there, and map where it can be sent.

Per maze and target square, exactly from the (square, facing) chain (steer/analysis/chain.py, `reach`):
P(the agent reaches the target within the horizon) and E[steps | it does], for

- `intervention`: `channels` set to `value` at the target's activation position (steer/net/retarget.py);
- `none`: the unpatched policy;
- `cheese_moved`: the cheese moved onto the target (the input-edit reference; it changes the input, so it
  costs a full forward pass per target);
- `random`: as many channels drawn from the bottom half of the channel ranking (never a chosen channel), per
  maze from `control_seed`, set to the same value;
- `random_scaled`: the same random channels, each set to the multiple of its own natural maximum that `value` is
  of the natural maximum of the chosen channel it stands in for (one to one; `natural_max` in metrics.json:
  per channel, the mean over the ranking's mazes of its largest activation, mouse at the start, cheese present);
- `elsewhere`: the chosen channels set to `value` at another open square's position (drawn per maze and target
  from `control_seed`, never on the target's position), and P(reach the target): how much of the effect is
  specific to where the channels are set;

plus procgen-tools' geometric path probability for the conditions that share the maze's input. Per maze,
Spearman's rho of a target's distance from the start-to-top-right path with P(reach) under the intervention
(`spearman_path_distance`) and with the gain over no intervention (`spearman_path_distance_gain`): a maze whose
distances or values are all equal enters as 0 and is counted as flat; one with fewer than 2 targets is left
out, counted.

    seeds: {from: 0, to: 99}
    layer: block2.res1.resadd_out       # optional; a site with a spatial map
    channels: {top: 2}                  # or a list [10, 27]; {top: k, seeds: …} ranks on other mazes
    value: 5.5
    default: 0.0                        # optional: every other position of the channels (the "smoothed" variant)
    cheese: remove                      # or keep
    targets: all                        # or [[r, c], …] (row 0 at the bottom)
    first_map: false                    # optional: procgen-tools' default=None batch-element-0 behaviour
    cheese_moved: true                  # optional: the input-edit reference (costly)
    random_scaled: true                 # optional: random channels at the chosen channels' multiple of their scale
    elsewhere: true                     # optional: the chosen channels at another open square
    resample: true                      # optional: the resampling test (the level as generated, a donor maze)
    control_seed: 0                     # optional: seeds the random channels, decoys and elsewhere squares
    show: [0, 1]                        # optional: mazes with a retargetability map (default: the first two)

Per seed `retarget-seed<N>.json` holds every target's numbers; metrics.json the per-maze summaries and the
summaries over mazes (n, 95% bootstrap intervals over mazes, paired Wilcoxon tests).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from steer.analysis.metrics import describe, describe_change
from steer.analysis.retarget import (
    TOO_FEW_TARGETS,
    Condition,
    MazeRetarget,
    derangement,
    elsewhere_squares,
    natural_maxima,
    path_spearman,
    rank_channels,
    ranking_scores,
    resampling_test,
    retarget_maze,
    scaled_values,
)
from steer.analysis.stats import settings
from steer.errors import SteerError, excerpt
from steer.io import atomic_write_json
from steer.maze.layout import Maze, Square
from steer.net.retarget import check_patch, spatial_grid
from steer.report.charts import IntervalSeries, interval_rows
from steer.report.render import save_png, tile
from steer.report.retarget_figs import reach_panel, scale_bar
from steer.run.options import Options, control_seed_option, option, seeds_option
from steer.run.seed_rules import parse_seeds
from steer.run.session import Session
from steer.run.spec_fields import _Fields, choice_of, finite_float
from steer.run.specs import Spec
from steer.run.study import CellResult, Report, Study, seed_list

CONDITIONS = ("intervention", "none", "cheese_moved", "random", "random_scaled", "elsewhere")
LABELS = {
    "intervention": "channels set at the target",
    "none": "no intervention",
    "cheese_moved": "cheese moved to the target",
    "random": "random channels set at the target",
    "random_scaled": "random channels at the same multiple of their scale",
    "elsewhere": "channels set at another square",
}
SPEARMANS = ("spearman_path_distance", "spearman_path_distance_gain")
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


@dataclass(frozen=True, kw_only=True)
class RetargetOptions(Options):
    channels: ChannelChoice = option(
        _channels, missing="channels: missing; name the channels to set, e.g. channels: [10] or {top: 2}."
    )
    value: float = option(_value, missing="value: missing; give the activation to set them to, e.g. value: 5.5.")
    default: float | None = option(_value, default=None, about="every other position of the channels")
    cheese: str = option(choice_of(("remove", "keep")), default="remove")
    targets: str | tuple[Square, ...] = option(_targets, default="all")
    first_map: bool = option(_flag, default=False, about="procgen-tools' default=None batch-element-0 behaviour")
    cheese_moved: bool = option(_flag, default=True, about="the input-edit reference (costly)")
    random_scaled: bool = option(_flag, default=True)
    elsewhere: bool = option(_flag, default=True)
    resample: bool = option(_flag, default=True)
    show: tuple[int, ...] = seeds_option(about="mazes with a retargetability map (default: the first two)")
    control_seed: int = control_seed_option()


def check(spec: Spec) -> None:
    for i, seed in enumerate(spec.options.show):
        if seed not in spec.seeds:
            raise SteerError(f"show[{i}]: seed {seed} is not one of the seeds ({seed_list(spec.seeds)}).")


@dataclass(frozen=True)
class Plan:
    spec: Spec
    layer: str
    grid: int
    channels: tuple[int, ...]
    random_pool: tuple[int, ...]  # the random control's channels are drawn from these
    ranking: tuple[tuple[int, float], ...]  # (channel, mean peak distance), best first
    partner: dict[int, int]  # the resampling test's donor maze for each seed (a derangement of the seeds)
    natural_max: tuple[float, ...]  # per channel (steer.analysis.retarget.natural_maxima), on the ranking's mazes
    ranking_mazes: dict[str, Any]  # the seeds the ranking and natural maxima used, and those left out with why

    def mazes(self, session: Session, seed: int) -> Maze:
        maze = session.target_maze(self.spec, seed)
        return maze.without_cheese() if self.spec.options.cheese == "remove" else maze

    def targets(self, maze: Maze) -> list[Square]:
        chosen = self.spec.options.targets
        if chosen == "all":
            return [sq for sq in maze.open_squares() if sq != maze.mouse and sq != maze.cheese]
        return list(chosen)

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        spec = self.spec
        maze = self.mazes(session, seed)
        targets = self.targets(maze)
        rng = np.random.default_rng([spec.options.control_seed, seed])
        random_channels = tuple(int(c) for c in rng.choice(self.random_pool, len(self.channels), replace=False))
        patched, not_run = self.conditions(maze, targets, seed, random_channels)
        result = retarget_maze(
            session.policy,
            session.renderer,
            maze,
            targets,
            self.layer,
            patched,
            default=spec.options.default,
            cheese_moved=spec.options.cheese_moved,
            first_map=spec.options.first_map,
            batch_size=spec.batch_size,
        )
        rows = target_rows(result)
        entry = maze_entry(seed, result, rows, patched, not_run)
        if spec.options.resample and seed in self.partner:
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
            {
                "seed": seed,
                "channels": list(self.channels),
                "random_channels": list(random_channels),
                **(
                    {"random_scaled_values": list(patched["random_scaled"].value)} if "random_scaled" in patched else {}
                ),
                "targets": rows,
            },
            compact=True,
        )
        shown = spec.options.show or spec.seeds[:2]
        if seed in shown:
            name = f"retarget-map-seed{seed}.png"
            save_png(map_figure(session, self, seed, result, patched), out / name)
            files.append(name)
        return "done", files, entry

    def conditions(
        self, maze: Maze, targets: Sequence[Square], seed: int, random_channels: tuple[int, ...]
    ) -> tuple[dict[str, Condition], dict[str, str]]:
        """The patched conditions this maze runs, and the asked-for ones it cannot run, each with why."""
        spec = self.spec
        value = spec.options.value
        patched = {"intervention": Condition(self.channels, value), "random": Condition(random_channels, value)}
        not_run: dict[str, str] = {}
        if spec.options.random_scaled:
            scaled = scaled_values(value, self.channels, random_channels, np.array(self.natural_max))
            patched["random_scaled"] = Condition(random_channels, scaled)
        if spec.options.elsewhere:
            at = elsewhere_squares(maze, targets, self.grid, spec.options.control_seed, seed)
            if at is None:
                not_run["elsewhere"] = "a target has no other open square off its activation position"
            else:
                patched["elsewhere"] = Condition(self.channels, value, tuple(at))
        return patched, not_run


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
    patched: dict[str, Condition],
    not_run: dict[str, str],
) -> dict[str, Any]:
    """Per-maze summaries over its targets: the units the summaries over mazes bootstrap. A condition asked for
    but not run on this maze is None here, its reason under `not_run`, so the summaries can count it."""
    maze = result.maze
    entry: dict[str, Any] = {"seed": seed, "maze_dim": maze.maze_dim, "targets": len(rows)}
    entry["random_channels"] = list(patched["random"].channels)
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
    choice: ChannelChoice = spec.options.channels
    if choice.channels:
        check_patch(policy, layer, choice.channels, spec.options.value)
    else:
        check_patch(policy, layer, (), spec.options.value)
        if choice.top > n_channels:
            raise SteerError(f"channels.top: {choice.top} is more than the {n_channels} channels of {layer!r}.")
    # Targets must be open squares of every maze: refused now, before any output is written.
    chosen = spec.options.targets
    if chosen != "all":
        for seed in spec.seeds:
            check_targets(session.target_maze(spec, seed), chosen, seed)
    # The ranking and the natural maxima: on the named mazes, else on the run's own mazes as generated (with
    # their cheese), each scored against a decoy from its own open squares (as `steer channels` does).
    seeds = choice.seeds or spec.seeds
    mazes = {seed: session.renderer.level(seed) for seed in seeds}
    scores, left_out = ranking_scores(policy, session.renderer, mazes, layer, spec.options.control_seed)
    natural_max = natural_maxima(scores)
    ranking = tuple((int(r["channel"]), float(r["peak_distance"]["mean"])) for r in rank_channels(scores))  # type: ignore[index]
    channels = choice.channels or tuple(c for c, _ in ranking[: choice.top])
    scaled = spec.options.random_scaled
    for c in channels if scaled else ():
        if not natural_max[c] > 0:
            raise SteerError(
                f"channels: channel {c}'s natural maximum (the mean over {len(scores)} mazes of its largest "
                f"activation) is {natural_max[c]:.3g}, not positive, so random_scaled has no multiple to match; "
                "choose other channels or set random_scaled: false."
            )
    order = [c for c, _ in ranking]
    # With random_scaled, a channel that never rises above 0 has no natural scale to take a multiple of: it
    # cannot stand in for a chosen channel (the random channels of both random conditions are the same).
    unscaled = tuple(c for c in order[n_channels // 2 :] if scaled and c not in channels and not natural_max[c] > 0)
    pool = tuple(c for c in order[n_channels // 2 :] if c not in channels and c not in unscaled)
    if len(pool) < len(channels):
        raise SteerError(
            f"channels: {len(channels)} channels leave too few others ({len(pool)}) in the bottom half of the "
            "ranking to draw as many random channels; choose fewer."
        )
    _, grid = spatial_grid(policy, layer)
    return Plan(
        spec,
        layer,
        grid,
        channels,
        pool,
        ranking,
        derangement(spec.seeds, spec.options.control_seed) if len(spec.seeds) > 1 else {},
        tuple(float(v) for v in natural_max),
        {
            "used": len(scores),
            "left_out": {str(seed): why for seed, why in left_out.items()},
            "random_pool_left_out": {str(c): "natural maximum not positive" for c in unscaled},
        },
    )


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


def _summary(mazes: list[dict[str, Any]]) -> dict[str, Any]:
    # A condition is summarised where any maze ran it; mazes that did not are counted with their reason.
    present = [c for c in CONDITIONS if any(m.get(c) is not None for m in mazes)]
    out: dict[str, Any] = {"mazes": len(mazes), "conditions": present}

    def side(name: str, get: Any) -> list[float | None]:
        return [None if m.get(name) is None else get(m[name]) for m in mazes]

    def why(name: str, otherwise: str) -> list[str]:
        """Per maze: the condition's reason for not running there, else `otherwise`."""
        return [m.get("not_run", {}).get(name, otherwise) for m in mazes]

    for name in present:
        out[name] = {
            "p_reach": _counted(side(name, lambda r: r["p_reach"]), why(name, "no targets")),
            "geometric_path_p": _counted(
                side(name, lambda r: r["geometric_path_p"]),
                why(name, "not computed for the cheese-moved reference" if name == "cheese_moved" else "no targets"),
            ),
            **{
                key: {
                    b: _counted(side(name, lambda r, k=key, b=b: r[k][b]), why(name, "no target in this bin"))
                    for b in names
                }
                for key, names in BIN_NAMES.items()
            },
        }
    p = {name: side(name, lambda r: r["p_reach"]) for name in present}
    out["intervention_minus"] = {
        other: _counted_change(p[other], p["intervention"], why(other, "no targets"))
        for other in present
        if other != "intervention"
    }
    sizes = sorted({m["maze_dim"] for m in mazes})
    out["by_maze_size"] = {
        str(s): {
            name: _counted(
                [v for v, m in zip(p[name], mazes, strict=True) if m["maze_dim"] == s],
                [w for w, m in zip(why(name, "no targets"), mazes, strict=True) if m["maze_dim"] == s],
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
        untested = "no resampling test: the cheese edited away, or no donor (a single maze)"
        untestable = {
            "same": "the donor maze cannot take the cheese on this maze's cheese square: a wall or its start",
            "different": "the donor maze's cheese is on this maze's cheese square, or it has none",
        }
        reasons = {where: [untested if r is None else text for r in resampled] for where, text in untestable.items()}
        keys = next(r for r in resampled if r is not None)
        res = {k: [None if r is None else r[k] for r in resampled] for k in keys}
        out["resampling"] = {k: _counted(v, reasons[k.rsplit("_", 1)[1]]) for k, v in res.items()}
        for where in ("same", "different"):
            out["resampling"][f"cheese_minus_random_{where}"] = _counted_change(
                res[f"random_channels_{where}"], res[f"cheese_channels_{where}"], reasons[where]
            )
    out["statistics"] = settings()
    return out


def _listed(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.3g}" for v in values)


def _what(name: str, plan: Plan, patched: dict[str, Condition]) -> list[str]:
    """A map panel's caption: which channels were set to what, where."""
    value = plan.spec.options.value
    chosen = ", ".join(map(str, plan.channels))
    multiples = f"(x {_listed([value / plan.natural_max[c] for c in plan.channels])} their natural max)"
    if name == "intervention":
        return [f"channels {chosen} = {value:g} at the target", multiples]
    if name in ("random", "random_scaled"):
        cond = patched[name]
        values = f"{value:g}" if name == "random" else _listed(cond.value)  # type: ignore[arg-type]
        return [
            f"random channels {', '.join(map(str, cond.channels))} = {values}",
            "at the target" if name == "random" else multiples,
        ]
    if name == "elsewhere":
        return [f"channels {chosen} = {value:g} at another", "square (per target); P(reach the target)"]
    return ["the cheese moved onto the target" if name == "cheese_moved" else "no intervention"]


def map_figure(
    session: Session, plan: Plan, seed: int, result: MazeRetarget, patched: dict[str, Condition]
) -> Image.Image:
    maze = result.maze
    panels = []
    for name in CONDITIONS:
        if name not in result.conditions:
            continue
        r = result.conditions[name]
        p = {sq: float(v) for sq, v in zip(result.targets, r.p, strict=True)}
        caption = [*_what(name, plan, patched), f"mean P over {len(p)} targets: {np.mean(r.p):.3f}"]
        panels.append(reach_panel(maze, p, caption))
    panels.append(scale_bar())
    return tile(
        f"seed {seed} · P(reach each square within 500 steps), exact · {plan.layer} · {session.title}",
        panels,
        # Up to six conditions and the scale: two rows of four keep the figure readable at page width.
        columns=min(len(panels), 4),
        footer="each square: P(the agent, starting at the dark mark, reaches it) under that condition; green 1, "
        "white 0; grey: not a target\nnatural max: a channel's largest activation, mean over the ranking's "
        f"{plan.ranking_mazes['used']} mazes (mouse at the start, cheese present)",
    )


def chart(session: Session, plan: Plan, summary: dict[str, Any], key: str, title: str) -> Image.Image:
    present = summary["conditions"]
    bins = list(summary[present[0]][key])
    rgb = {
        "intervention": (200, 90, 20),
        "none": (120, 120, 120),
        "cheese_moved": (24, 48, 120),
        "random": (60, 160, 80),
        "random_scaled": (0, 165, 175),
        "elsewhere": (160, 60, 170),
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
            "value": spec.options.value,
            "default": spec.options.default,
            "cheese": spec.options.cheese,
            "first_map": spec.options.first_map,
            "ranking": [{"channel": c, "mean_peak_distance": d} for c, d in plan.ranking],
            "ranking_mazes": plan.ranking_mazes,
            "natural_max": {
                "what": "per channel, the mean over the ranking's mazes (levels as generated, mouse at the start, "
                "cheese present) of its largest activation over positions",
                "mazes": plan.ranking_mazes["used"],
                "by_channel": list(plan.natural_max),
                "chosen_multiples": [spec.options.value / plan.natural_max[c] for c in plan.channels],
            },
            "random_pool": list(plan.random_pool),
            "mazes": done,
            "summary": summary,
        },
        figures,
    )


def _excluded(d: dict[str, Any]) -> str:
    """ ", k excluded (why: count; ...)" for a console line, or nothing where no maze was left out."""
    if not d.get("excluded"):
        return ""
    return f", {d['excluded']} excluded (" + "; ".join(f"{why}: {k}" for why, k in d["why_excluded"].items()) + ")"


def summary_lines(report: dict[str, Any]) -> list[str]:
    s = report["summary"]
    lines = [f"channels {report['channels']} = {report['value']:g} at {report['layer']}; {s['mazes']} mazes"]
    for name in s["conditions"]:
        d = s[name]["p_reach"]
        ci = d["mean_ci"] or [d["mean"], d["mean"]]
        lines.append(
            f"  mean P(reach target) {LABELS[name]}: {d['mean']:.3f} (95% CI {ci[0]:.3f}-{ci[1]:.3f}, "
            f"n {d['n']}{_excluded(d)})"
        )
    for key, text in (
        ("share_half_of_cheese_moved", "share of targets at >= half the cheese-moved P"),
        ("spearman_path_distance", "Spearman rho of P(reach) with distance from the top-right path"),
        ("spearman_path_distance_gain", "Spearman rho of the gain over none with distance from the top-right path"),
    ):
        if key not in s:
            continue
        d = s[key]
        counts = (f", {d['flat']} flat as 0" if "flat" in d else "") + _excluded(d)
        if not d["n"]:  # every maze left out: say so rather than drop the line
            lines.append(f"  {text}: no maze (n 0{counts})")
            continue
        ci = d["mean_ci"] or [d["mean"], d["mean"]]
        lines.append(f"  {text}: {d['mean']:.3f} ({ci[0]:.3f} to {ci[1]:.3f}, n {d['n']}{counts})")
    for key, d in s.get("resampling", {}).items():
        if key.startswith("cheese_minus"):
            continue
        ci = d["mean_ci"] or [d["mean"], d["mean"]]
        if d["n"]:
            what = key.replace("_", " ")
            lines.append(
                f"  resampling, mean TV, {what}: {d['mean']:.4f} ({ci[0]:.4f} to {ci[1]:.4f}, n {d['n']}{_excluded(d)})"
            )
    for other, d in s["intervention_minus"].items():
        ci = d["mean_ci"] or [d["mean"], d["mean"]]
        p = d["wilcoxon_p"]
        lines.append(
            f"  intervention - {other}: {d['mean']:+.3f} ({ci[0]:+.3f} to {ci[1]:+.3f}, n {d['n']}{_excluded(d)}), "
            "Wilcoxon p " + ("n/a" if p is None else f"{p:.2g}")
        )
    return lines


STUDY = Study(
    name="retarget",
    help="Set cheese-tracking channels at a target square; exact P(reach it) against no edit, the moved cheese, "
    "random channels (same value, same multiple of their scale), the same channels at another square.",
    options=RetargetOptions,
    check=check,
    plan=plan,
    report=report,
    summary=summary_lines,
    grows=False,  # {top: k} ranks the channels on the whole seed list
)
