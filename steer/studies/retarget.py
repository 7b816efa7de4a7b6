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

- with `feature:`, `feature` (a dictionary feature's code set to its `value` at the target's position),
  `feature_random` (its norm-matched random control) and `feature_elsewhere` (clamped at the elsewhere square):
  steer/studies/retarget_feature.py;

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
    feature: {file: d.safetensors, index: 56, value: 3.0}   # optional: a dictionary feature clamped at the target
    show: [0, 1]                        # optional: mazes with a retargetability map (default: the first two)

Per seed `retarget-seed<N>.json` holds every target's numbers (`targets.csv` all of them, `mazes.csv` the
per-maze means: steer/studies/retarget_tables.py); metrics.json the per-maze summaries and the summaries over
mazes (n, 95% bootstrap intervals over mazes, paired Wilcoxon tests), computed in
steer/analysis/retarget_summary.py; the figures and console lines are steer/report/retarget_figs.py's and
retarget_text.py's.

About 450 lines: its options need their own parsers (channels, a finite value, targets), and a plan with six
conditions; its summaries, figures and console lines are already one layer down, and the `feature:` key's parser,
check and conditions are in steer/studies/retarget_feature.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from steer.analysis.feature_clamp import FeatureCondition
from steer.analysis.retarget import (
    Condition,
    derangement,
    elsewhere_squares,
    natural_maxima,
    rank_channels,
    ranking_scores,
    resampling_test,
    retarget_maze,
    scaled_values,
)
from steer.analysis.retarget_summary import maze_entry, summaries_over_mazes, target_rows
from steer.errors import SteerError, excerpt
from steer.io import atomic_write_json
from steer.maze.layout import Maze, Square
from steer.net.retarget import check_patch, spatial_grid
from steer.report.figures import save_figure
from steer.report.retarget_figs import reach_by_distance_chart, reach_maps_figure
from steer.report.retarget_text import summary_lines
from steer.run.options import Options, control_seed_option, option, seeds_option
from steer.run.seed_rules import parse_seeds
from steer.run.session import Session
from steer.run.spec_fields import _Fields, choice_of, finite_float, flag
from steer.run.specs import Spec
from steer.run.study import CellResult, Report, Study, check_show
from steer.studies.retarget_feature import ClampPlan, ClampSpec, feature_report, parse_clamp, plan_clamp, with_feature
from steer.studies.retarget_tables import TABLES


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


def _feature(value: Any, where: str, path: Path | None) -> ClampSpec:
    return parse_clamp(value, where, path, _value)


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


@dataclass(frozen=True, kw_only=True)
class RetargetOptions(Options):
    channels: ChannelChoice = option(
        _channels, missing="channels: missing; name the channels to set, e.g. channels: [10] or {top: 2}."
    )
    value: float = option(_value, missing="value: missing; give the activation to set them to, e.g. value: 5.5.")
    default: float | None = option(_value, default=None, about="every other position of the channels")
    cheese: str = option(choice_of(("remove", "keep")), default="remove")
    targets: str | tuple[Square, ...] = option(_targets, default="all")
    first_map: bool = option(flag, default=False, about="procgen-tools' default=None batch-element-0 behaviour")
    cheese_moved: bool = option(flag, default=True, about="the input-edit reference (costly)")
    random_scaled: bool = option(flag, default=True)
    elsewhere: bool = option(flag, default=True)
    resample: bool = option(flag, default=True)
    show: tuple[int, ...] = seeds_option(about="mazes with a retargetability map (default: the first two)")
    control_seed: int = control_seed_option()
    feature: ClampSpec | None = option(
        _feature, default=None, beside=True, about="a dictionary feature clamped at the target, beside the channels"
    )

    # Left out of a run's identity while unset, so that runs from before the key existed keep theirs.
    OMIT_WHEN_NONE = ("feature",)


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
    clamp: ClampPlan | None = None  # `feature:`, checked

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
        scale = None
        if self.clamp is not None:
            scale = self.clamp.scale(session, session.target_maze(spec, seed), self.layer, spec.batch_size)
            entry["feature_scale"] = scale.to_json()
        resampling = self.resampling(session, seed, random_channels)
        if resampling is not None:
            entry["resampling"] = resampling
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
        if seed in (spec.options.show or spec.seeds[:2]):
            name = f"retarget-map-seed{seed}.png"
            figure = reach_maps_figure(
                result,
                patched,
                channels=self.channels,
                value=spec.options.value,
                natural_max=self.natural_max,
                feature_scale=scale,
                seed=seed,
                layer=self.layer,
                run_title=session.title,
                mazes_ranked=self.ranking_mazes["used"],
            )
            save_figure(figure, out / name)
            files.append(name)
        return "done", files, entry

    def resampling(self, session: Session, seed: int, random_channels: tuple[int, ...]) -> dict[str, Any] | None:
        """The resampling test on the level as generated, its partner the donor; None where it is not run (not
        asked for, a single maze, or the cheese edited away)."""
        spec = self.spec
        if not (spec.options.resample and seed in self.partner):
            return None
        generated = session.target_maze(spec, seed)
        donor = session.target_maze(spec, self.partner[seed])
        if generated.cheese is None:
            return None
        return resampling_test(
            session.policy,
            session.renderer,
            generated,
            donor,
            self.layer,
            self.channels,
            random_channels,
            spec.batch_size,
        )

    def conditions(
        self, maze: Maze, targets: Sequence[Square], seed: int, random_channels: tuple[int, ...]
    ) -> tuple[dict[str, Condition | FeatureCondition], dict[str, str]]:
        """The patched conditions this maze runs, and the asked-for ones it cannot run, each with why."""
        spec = self.spec
        value = spec.options.value
        patched: dict[str, Condition | FeatureCondition] = {
            "intervention": Condition(self.channels, value),
            "random": Condition(random_channels, value),
        }
        not_run: dict[str, str] = {}
        if spec.options.random_scaled:
            scaled = scaled_values(value, self.channels, random_channels, np.array(self.natural_max))
            patched["random_scaled"] = Condition(random_channels, scaled)
        if spec.options.elsewhere:
            at = elsewhere_squares(maze, targets, self.grid, spec.options.control_seed, seed)
            if at is None:
                not_run["elsewhere"] = "a target has no other open square off its activation position"
                if self.clamp is not None:
                    not_run["feature_elsewhere"] = not_run["elsewhere"]
            else:
                patched["elsewhere"] = Condition(self.channels, value, tuple(at))
        return with_feature(patched, self.clamp, seed, spec.options.control_seed), not_run


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


def random_pool(
    ranking: Sequence[tuple[int, float]],
    channels: tuple[int, ...],
    natural_max: np.ndarray,
    scaled: bool,
    n_channels: int,
    mazes: int,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The channels the random control draws from (the bottom half of the ranking, never a chosen channel), and
    those left out of them with random_scaled; a chosen channel without a natural scale, or too few left to draw
    as many, refused with the fix (`mazes`: how many the natural maxima are a mean over)."""
    for c in channels if scaled else ():
        if not natural_max[c] > 0:
            raise SteerError(
                f"channels: channel {c}'s natural maximum (the mean over {mazes} mazes of its largest "
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
    return pool, unscaled


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
    # The dictionary is refused before the run folder opens (e.g. another checkpoint's): nothing written.
    clamp = plan_clamp(session, spec, spec.options.feature) if spec.options.feature is not None else None
    # The ranking and the natural maxima: on the named mazes, else on the run's own mazes as generated (with
    # their cheese), each scored against a decoy from its own open squares (as `steer channels` does).
    seeds = choice.seeds or spec.seeds
    mazes = {seed: session.renderer.level(seed) for seed in seeds}
    scores, left_out = ranking_scores(policy, session.renderer, mazes, layer, spec.options.control_seed)
    natural_max = natural_maxima(scores)
    ranking = tuple((int(r["channel"]), float(r["peak_distance"]["mean"])) for r in rank_channels(scores))  # type: ignore[index]
    channels = choice.channels or tuple(c for c, _ in ranking[: choice.top])
    pool, unscaled = random_pool(ranking, channels, natural_max, spec.options.random_scaled, n_channels, len(scores))
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
        clamp,
    )


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    summary = summaries_over_mazes(done)
    figures = {}
    if done:
        figures["retarget-by-start-distance.png"] = reach_by_distance_chart(
            summary, "by_start_distance", "P(reach target) by path distance from the start", session.title
        )
        figures["retarget-by-path-distance.png"] = reach_by_distance_chart(
            summary, "by_path_distance", "P(reach target) by distance from the start-to-top-right path", session.title
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
            **({"feature": feature_report(plan.clamp, list(done))} if plan.clamp is not None else {}),
            "mazes": done,
            "summary": summary,
        },
        figures,
    )


STUDY = Study(
    name="retarget",
    help="Set cheese-tracking channels at a target square; exact P(reach it) against no edit, the moved cheese, "
    "random channels (same value, same multiple of their scale), the same channels at another square.",
    options=RetargetOptions,
    check=check_show,
    plan=plan,
    report=report,
    summary=summary_lines,
    grows=False,  # {top: k} ranks the channels on the whole seed list
    tables=TABLES,
)
