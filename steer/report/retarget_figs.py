"""Retargeting figures: channel maps beside the observation, retargetability maps of a maze, and P(reach) by
distance over mazes.

A channel map is drawn on the activation grid (row 0 at the top, as the observation), upscaled to the
observation's size, with the cheese's activation position boxed. A retargetability map is the maze schematic
with each open square coloured by P(the agent reaches it), white at 0 to dark green at 1; `reach_maps_figure`
draws one per condition, each captioned with what was set where (`condition_caption`). `reach_by_distance_chart`
draws each condition's mean P(reach) per distance bin with its interval over mazes, a matplotlib chart
(steer/report/charts); the maps are maze panels, drawn with Pillow square by square on the schematic of
steer/report/render.py like every other maze panel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from steer.analysis.feature_clamp import FeatureCondition, FeatureScale
from steer.analysis.retarget import Condition, MazeRetarget
from steer.analysis.retarget_summary import CONDITIONS
from steer.maze.layout import Maze, Square
from steer.report.behaviour_figs import _cell_for, _Grid, _schematic
from steer.report.charts import IntervalSeries, interval_rows
from steer.report.render import TEXT_RGB, diverging, font, text_width, tile
from steer.report.style import BASELINE, HIGHLIGHT, LINE, SERIES

PANEL = 224  # pixels per panel side
MARK_RGB = (230, 160, 0)
HIGH_RGB = (0, 90, 50)  # P = 1
NOT_TARGET_RGB = (200, 200, 205)
# What each of `CONDITIONS` is called in the figures and the console lines, and its colour in the charts.
LABELS = {
    "intervention": "channels set at the target",
    "none": "no intervention",
    "cheese_moved": "cheese moved to the target",
    "random": "random channels set at the target",
    "random_scaled": "random channels at the same multiple of their scale",
    "elsewhere": "channels set at another square",
    "feature": "feature clamped at the target",
    "feature_random": "random direction, the clamp's norm",
    "feature_elsewhere": "feature clamped at another square",
}
CONDITION_COLOURS = {
    "intervention": HIGHLIGHT,
    "none": BASELINE,
    "cheese_moved": LINE,
    "random": SERIES[2],
    "random_scaled": SERIES[4],
    "elsewhere": SERIES[5],
    "feature": SERIES[1],
    "feature_random": SERIES[3],
    "feature_elsewhere": SERIES[0],
}


def _boxed(img: Image.Image, position: tuple[int, int] | None, grid: int, rgb: tuple[int, int, int]) -> None:
    if position is None:
        return
    d = ImageDraw.Draw(img)
    s = img.width / grid
    r, c = position
    d.rectangle((c * s, r * s, (c + 1) * s - 1, (r + 1) * s - 1), outline=rgb, width=3)


def _captioned(img: Image.Image, lines: Sequence[str]) -> Image.Image:
    out = Image.new("RGB", (img.width, img.height + 18 * len(lines) + 6), (255, 255, 255))
    out.paste(img, (0, 0))
    d = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        d.text((2, img.height + 4 + 18 * i), line, fill=TEXT_RGB, font=font(13))
    return out


def channel_maps_figure(
    title: str,
    frame: np.ndarray,
    maps: Sequence[np.ndarray],
    labels: Sequence[str],
    cheese_position: tuple[int, int] | None,
    footer: str = "",
) -> Image.Image:
    """The observation, then one diverging heat map per channel (own colour scale each), cheese position boxed."""
    grid = maps[0].shape[0] if maps else 16
    obs = Image.fromarray(frame).resize((PANEL, PANEL), Image.NEAREST)
    _boxed(obs, cheese_position, grid, MARK_RGB)
    panels = [_captioned(obs, ["observation", "box: the cheese's position"])]
    for m, label in zip(maps, labels, strict=True):
        limit = float(np.abs(m).max()) or 1.0
        rgb = np.array([[diverging(float(v), limit) for v in row] for row in m], dtype=np.uint8)
        img = Image.fromarray(rgb).resize((PANEL, PANEL), Image.NEAREST)
        _boxed(img, cheese_position, grid, (0, 0, 0))
        panels.append(_captioned(img, [label, f"scale ±{limit:.2f}"]))
    return tile(title, panels, columns=min(len(panels), 7), footer=footer)


def _green(p: float) -> tuple[int, int, int]:
    t = min(max(p, 0.0), 1.0)
    return tuple(round(255 + (c - 255) * t) for c in HIGH_RGB)  # type: ignore[return-value]


def _label(p: float) -> str:
    """A probability in a cell: two decimals without the leading zero; "1" only for what rounds to 1.00."""
    text = f"{p:.2f}"
    return "1" if text == "1.00" else text[1:]


def reach_panel(maze: Maze, p: Mapping[Square, float], caption: Sequence[str], span: int = 300) -> Image.Image:
    """The maze with each open square coloured by P(reach it); squares without a value (not targets) grey."""
    cell = _cell_for(maze, span)
    grid = _Grid.of(maze, cell)
    # Open squares that are not targets (the start, or squares a target list leaves out) in grey, so that they
    # cannot be read as P = 0 (white).
    fills = {sq: NOT_TARGET_RGB for sq in maze.open_squares()} | {sq: _green(v) for sq, v in p.items()}
    img = _schematic(maze, grid, fills)
    d = ImageDraw.Draw(img)
    for sq, v in p.items():  # the value, where a cell is big enough to read it
        if cell >= 26:
            x0, y0, _, _ = grid.box(sq)
            d.text(
                (x0 + 3, y0 + 3),
                _label(v),
                fill=(255, 255, 255) if v > 0.6 else TEXT_RGB,
                font=font(max(9, cell // 3)),
            )
    x0, y0, x1, y1 = grid.box(maze.mouse, cell * 0.3)
    d.rectangle((x0, y0, x1, y1), fill=(90, 90, 100))  # the start
    return _captioned(img, caption)


def scale_bar(width: int = 300) -> Image.Image:
    img = Image.new("RGB", (width, 40), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for k in range(width - 20):
        d.line([(10 + k, 4), (10 + k, 16)], fill=_green(k / (width - 21)))
    for frac, label in ((0.0, "0"), (0.5, "0.5"), (1.0, "1")):
        x = 10 + frac * (width - 21)
        d.text((x - text_width(label, 12) / 2, 20), label, fill=TEXT_RGB, font=font(12))
    return img


def _listed(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.3g}" for v in values)


def feature_caption(name: str, cond: FeatureCondition, scale: FeatureScale | None) -> list[str]:
    """A clamped feature's panel caption: which feature, set to what (and what multiple of its largest code on this
    maze's unpatched observations), where."""
    what = f"feature {cond.index} clamped to {cond.value:g}"
    multiple = f"(x {cond.value / scale.max:.3g} its max on this maze)" if scale is not None and scale.max > 0 else ""
    if name == "feature_random":
        return ["random direction, the norm the", f"clamp to {cond.value:g} makes, at the target"]
    if name == "feature_elsewhere":
        return [f"{what} at another", "square (per target); P(reach the target)"]
    return [f"{what} at the target", multiple]


def condition_caption(
    name: str,
    patched: Mapping[str, Condition | FeatureCondition],
    channels: Sequence[int],
    value: float,
    natural_max: Sequence[float],
    feature_scale: FeatureScale | None = None,
) -> list[str]:
    """A map panel's caption: which channels were set to what, where (`channels` and `value`: the chosen ones;
    `natural_max`, per channel, gives their multiples of it), or which feature was clamped."""
    cond = patched.get(name)
    if isinstance(cond, FeatureCondition):
        return feature_caption(name, cond, feature_scale)
    chosen = ", ".join(map(str, channels))
    multiples = f"(x {_listed([value / natural_max[c] for c in channels])} their natural max)"
    if name == "intervention":
        return [f"channels {chosen} = {value:g} at the target", multiples]
    if name in ("random", "random_scaled"):
        assert isinstance(cond, Condition)
        values = f"{value:g}" if name == "random" else _listed(cond.value)  # type: ignore[arg-type]
        return [
            f"random channels {', '.join(map(str, cond.channels))} = {values}",
            "at the target" if name == "random" else multiples,
        ]
    if name == "elsewhere":
        return [f"channels {chosen} = {value:g} at another", "square (per target); P(reach the target)"]
    return ["the cheese moved onto the target" if name == "cheese_moved" else "no intervention"]


def reach_maps_figure(
    result: MazeRetarget,
    patched: Mapping[str, Condition | FeatureCondition],
    *,
    channels: Sequence[int],
    value: float,
    natural_max: Sequence[float],
    feature_scale: FeatureScale | None = None,
    seed: int,
    layer: str,
    run_title: str,
    mazes_ranked: int,
) -> Image.Image:
    """One maze's retargetability map under each condition it ran, and the colour scale (`mazes_ranked`: how
    many mazes the natural maxima are a mean over)."""
    maze = result.maze
    panels = []
    for name in CONDITIONS:
        if name not in result.conditions:
            continue
        r = result.conditions[name]
        p = {sq: float(v) for sq, v in zip(result.targets, r.p, strict=True)}
        what = condition_caption(name, patched, channels, value, natural_max, feature_scale)
        caption = [*what, f"mean P over {len(p)} targets: {np.mean(r.p):.3f}"]
        panels.append(reach_panel(maze, p, caption))
    panels.append(scale_bar())
    return tile(
        f"seed {seed} · P(reach each square within 500 steps), exact · {layer} · {run_title}",
        panels,
        # Up to six conditions and the scale: two rows of four keep the figure readable at page width; with a
        # feature's three, up to nine and the scale in two rows of five.
        columns=min(len(panels), 4 if len(panels) <= 8 else 5),
        footer="each square: P(the agent, starting at the dark mark, reaches it) under that condition; green 1, "
        "white 0; grey: not a target\nnatural max: a channel's largest activation, mean over the ranking's "
        f"{mazes_ranked} mazes (mouse at the start, cheese present)"
        + (
            "\nfeature's max: its largest code on this maze as generated (cheese present, every square, both facings, "
            "every position)"
            if feature_scale is not None
            else ""
        ),
    )


def reach_by_distance_chart(summary: Mapping[str, Any], key: str, title: str, run_title: str) -> Figure:
    """Each condition's mean over mazes of P(reach target) per bin of `key` (a summary's `by_start_distance` or
    `by_path_distance`), with its 95% bootstrap interval."""
    present = summary["conditions"]
    bins = list(summary[present[0]][key])
    series = []
    for name in present:
        stats_ = [summary[name][key][b] for b in bins]
        series.append(
            IntervalSeries(
                LABELS[name],
                CONDITION_COLOURS[name],
                [s["mean"] for s in stats_],
                [(s["mean_ci"] or [None, None])[0] for s in stats_],
                [(s["mean_ci"] or [None, None])[1] for s in stats_],
            )
        )
    labels = [f"{b} (n {summary[present[0]][key][b]['n']})" for b in bins]
    return interval_rows(
        f"{title} · {summary['mazes']} mazes · {run_title}",
        labels,
        series,
        (0.0, 1.0),
        footer="dot: mean over mazes of the maze's mean P(reach target) in that bin; line: 95% bootstrap interval "
        "over mazes",
        xlabel="P(reach target)",
    )
