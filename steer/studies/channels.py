"""`steer channels`: rank a site's channels by how well their activation maps locate the cheese.

Per maze (the level as generated, the mouse on its start square) and channel: the distance from the channel's
peak to the cheese's activation position, and the share of the cheese vector's ‖Δ‖² at that position; the
same at a decoy, one of the maze's own open squares where the cheese could have been, drawn per maze from
`shuffle_seed` (`steer.analysis.retarget.decoy_square`), as the shuffled control; and the channel's largest
activation (its natural scale). metrics.json ranks the channels by mean peak distance, each score with n and
its 95% bootstrap interval over mazes, and the paired shuffled − own gain with a Wilcoxon p-value; channels.png
draws the top channels' maps beside the observation for the `show` mazes.

    seeds: {from: 0, to: 199}
    layer: block2.res1.resadd_out       # optional; any site with a spatial map
    shuffle_seed: 0                     # optional: seeds each maze's decoy square
    show: [0, 1]                        # optional: mazes drawn in channels.png (default: the first two)
    top: 6                              # optional: channels drawn (default 6)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from steer.analysis.retarget import cheese_maps, decoy_square, maze_channel_scores, rank_channels
from steer.analysis.stats import settings
from steer.net.retarget import activation_position, spatial_grid
from steer.report.render import tile
from steer.report.retarget_figs import channel_maps_figure
from steer.report.tables import MAZE_COLUMNS, SEED, Column, Table, square_keys
from steer.run.options import Options, option, seeds_option, whole
from steer.run.session import Session
from steer.run.spec_fields import seed_value
from steer.run.specs import Spec
from steer.run.study import CellResult, Finished, Report, Study, StudyTable, check_show


@dataclass(frozen=True, kw_only=True)
class ChannelsOptions(Options):
    shuffle_seed: int = option(seed_value, default=0, about="seeds each maze's decoy square")
    show: tuple[int, ...] = seeds_option(about="mazes whose channel maps are drawn (default: the first two)")
    top: int = option(whole(1, 64), default=6, about="channels drawn and listed")


@dataclass(frozen=True)
class Plan:
    spec: Spec
    layer: str
    grid: int

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        maze = session.target_maze(self.spec, seed)
        if maze.cheese is None:
            return "skipped", [], {"seed": seed, "reason": "no cheese (the target_edits removed it)"}
        decoy = decoy_square(maze, self.grid, self.spec.options.shuffle_seed, seed)
        if decoy is None:
            return "skipped", [], {"seed": seed, "reason": "no open square off the cheese's position for a decoy"}
        scores = maze_channel_scores(session.policy, session.renderer, maze, self.layer, decoy)
        # Per channel, shuffled − own peak distance: one value per maze that a batch claim can name by channel.
        gains = {
            str(c): {"peak_distance_gain": s - d}
            for c, (d, s) in enumerate(zip(scores["peak_distance"], scores["peak_distance_shuffled"], strict=True))
        }
        entry = {"seed": seed, "cheese": list(maze.cheese), "decoy": list(decoy), **scores}
        return "done", [], {**entry, "by_channel": gains}


def plan(spec: Spec, session: Session) -> Plan:
    layer = spec.effective_layer
    _, grid = spatial_grid(session.policy, layer)  # a site without a spatial map is refused before anything runs
    return Plan(spec, layer, grid)


def figure(session: Session, spec: Spec, layer: str, ranking: list[dict[str, Any]]) -> Image.Image:
    top = [r["channel"] for r in ranking[: spec.options.top]]
    shown = spec.options.show or spec.seeds[:2]
    _, grid = spatial_grid(session.policy, layer)
    rows = []
    for seed in shown:
        maze = session.target_maze(spec, seed)
        if maze.cheese is None:
            continue
        acts, _ = cheese_maps(session.policy, session.renderer, maze, layer)
        labels = [f"#{i + 1} channel {c}" for i, c in enumerate(top)]
        rows.append(
            channel_maps_figure(
                f"seed {seed}",
                session.renderer.observe_maze(maze),
                [acts[c] for c in top],
                labels,
                activation_position(maze, maze.cheese, grid),
            )
        )
    n = ranking[0]["peak_distance"]["n"] if ranking else 0
    return tile(
        f"top channels at {layer} by peak distance to the cheese ({n} mazes) · {session.title}",
        rows,
        columns=1,
        footer="each channel map: its activations with the cheese, blue < 0 < red, own scale; box: the cheese's "
        "activation position",
    )


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    ranking = rank_channels(done)
    figures = {"channels.png": figure(session, spec, plan.layer, ranking)} if done else {}
    _, grid = spatial_grid(session.policy, plan.layer)
    chance = float(
        np.mean(
            [
                np.hypot(r1 - r0, c1 - c0)
                for r0 in range(grid)
                for c0 in range(grid)
                for r1 in range(grid)
                for c1 in range(grid)
            ]
        )
    )
    return Report(
        {
            "layer": plan.layer,
            "grid": grid,
            "mazes": done,
            "ranking": ranking,
            "notes": {
                "peak_distance": "Euclidean distance in activation positions from the channel's argmax (with the "
                "cheese, mouse at the start) to the cheese's position; lower is better",
                "share": "share of the channel's squared cheese-vector norm at the cheese's position",
                "shuffled": "the same score at the maze's decoy: one of its own open squares, not the mouse's start "
                "and not on the cheese's activation position, drawn per maze from shuffle_seed and the seed",
                "peak_distance_gain": "shuffled - own peak distance, per maze (positive: nearer the cheese than the "
                "decoy)",
                "share_gain": "own - shuffled share, per maze",
                "max_activation": "the channel's largest activation over positions (cheese present, mouse at the "
                "start); its mean over mazes is the channel's natural maximum",
                "skipped": f"{len(skipped)} mazes skipped, each with its reason under skipped",
                "uniform_peak_distance": chance,
            },
            "statistics": settings(),
        },
        figures,
    )


def summary_lines(report: dict[str, Any]) -> list[str]:
    lines = [f"channels at {report['layer']} ranked by mean peak distance to the cheese (activation positions):"]
    for row in report["ranking"][:8]:
        d, s, g = row["peak_distance"], row["peak_distance_shuffled"], row["peak_distance_gain"]
        ci, gci = d["mean_ci"] or [d["mean"]] * 2, g["mean_ci"] or [g["mean"]] * 2
        sci = row["share"]["mean_ci"] or [row["share"]["mean"]] * 2
        lines.append(
            f"  #{row['rank']} channel {row['channel']}: {d['mean']:.2f} (95% CI {ci[0]:.2f}-{ci[1]:.2f}, n {d['n']}) "
            f"vs the decoy {s['mean']:.2f}; gain {g['mean']:+.2f} ({gci[0]:+.2f} to {gci[1]:+.2f}); share at the "
            f"cheese {row['share']['mean']:.3f} ({sci[0]:.3f}-{sci[1]:.3f}) vs {row['share_shuffled']['mean']:.3f}"
        )
    return lines


SCORES = {
    "peak_distance": ("positions", "distance from the channel's strongest activation to the cheese's position"),
    "peak_distance_shuffled": ("positions", "the same distance to the decoy's position"),
    "share": ("fraction", "share of the channel's squared cheese-vector norm at the cheese's position"),
    "share_shuffled": ("fraction", "the same share at the decoy's position"),
    "max_activation": ("activation", "the channel's largest activation over positions (cheese present)"),
}
GAINS = {
    "peak_distance_gain": ("positions", "decoy - cheese peak distance (positive: nearer the cheese than the decoy)"),
    "share_gain": ("fraction", "cheese - decoy share"),
}
CHANNEL = Column("channel", "int", "", "the channel's index at the layer")
MAZES = Table(
    "mazes",
    "one row per maze and channel: its scores at the cheese and at the decoy (one of the maze's own open squares)",
    (
        SEED,
        *MAZE_COLUMNS[1:3],
        Column("decoy_row", "int", "square", "the decoy square's row"),
        Column("decoy_col", "int", "square", "the decoy square's column"),
        CHANNEL,
        *(Column(name, "float", unit, about) for name, (unit, about) in SCORES.items()),
        Column("peak_distance_gain", "float", GAINS["peak_distance_gain"][0], GAINS["peak_distance_gain"][1]),
    ),
)
CHANNELS = Table(
    "channels",
    "one row per channel, in rank order: its scores over mazes (mean, median, the mean's 95% interval; the "
    "gains' Wilcoxon p)",
    (
        Column("rank", "int", "", "1: nearest the cheese on average"),
        CHANNEL,
        Column("n", "int", "mazes", "mazes scored"),
        *(
            Column(f"{name}_{stat}", "float", unit, f"{about}: {stat.replace('_', ' ')} over mazes")
            for name, (unit, about) in {**SCORES, **GAINS}.items()
            for stat in ("mean", "median", "mean_ci_low", "mean_ci_high")
        ),
        *(Column(f"{name}_wilcoxon_p", "float", "", f"{about}: Wilcoxon p") for name, (_, about) in GAINS.items()),
    ),
)


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    for m in f.done:
        keys = {"seed": m["seed"], **square_keys("cheese", m["cheese"]), **square_keys("decoy", m["decoy"])}
        for c in range(len(m["peak_distance"])):
            gain = m["by_channel"][str(c)]["peak_distance_gain"]
            yield {**keys, "channel": c, **{name: m[name][c] for name in SCORES}, "peak_distance_gain": gain}


def channel_rows(f: Finished) -> Iterator[dict[str, Any]]:
    for r in f.body["ranking"]:
        row = {"rank": r["rank"], "channel": r["channel"], "n": r["peak_distance"]["n"]}
        for name in (*SCORES, *GAINS):
            ci = r[name]["mean_ci"] or (None, None)
            row.update({f"{name}_mean": r[name]["mean"], f"{name}_median": r[name]["median"],
                        f"{name}_mean_ci_low": ci[0], f"{name}_mean_ci_high": ci[1]})  # fmt: skip
        yield {**row, **{f"{name}_wilcoxon_p": r[name]["wilcoxon_p"] for name in GAINS}}


STUDY = Study(
    name="channels",
    help="Rank a site's channels by how well their maps locate the cheese, against a decoy square of the same maze.",
    options=ChannelsOptions,
    check=check_show,
    plan=plan,
    report=report,
    summary=summary_lines,
    # Each maze's decoy depends on its own seed alone, so a run given more seeds reuses the finished mazes.
    grows=True,
    tables=(StudyTable(MAZES, maze_rows), StudyTable(CHANNELS, channel_rows)),
)
