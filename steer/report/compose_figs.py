"""`steer compose-map`'s figures, drawn from its report body (metrics.json; `figures`): where along the network
the non-additivity of two vectors appears.

- `compose-map-{pair,self,random}.png` and `compose-map-prediction-<metric>.png`: the s × t map at the action
  probabilities of the additivity error, and of the pair's behaviour prediction errors, each a heat map
  (median over mazes per cell, its n written in).
- `compose-map-sites-{pair,self,random}.png`: one small s × t map per measured site (network order, then the
  action probabilities) of the median additivity error over mazes. Every tile of every composition is drawn on
  one log colour scale (`NORM`, shown by one colour bar), so a tile's shade compares across sites and across
  the pair and its references. The s = 0 row and t = 0 column, where the error is 0 by construction, are
  white and crossed by dark lines; an undefined cell (D(s,t) = 0) is grey.
- `compose-map-depth.png`: per site, the median over mazes of each maze's mean off-axis error with its 95%
  bootstrap interval (the summary's `off_axes`), one marker per composition: the error against depth.

All are matplotlib figures (steer/report/charts for the heat maps and interval rows, steer/report/style.py for
the look); the site maps are drawn here, on a grid laid out by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap, ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle
from matplotlib.ticker import FixedLocator, FuncFormatter

from steer.analysis.metrics import METRICS
from steer.report.charts import IntervalSeries, heatmap, interval_rows
from steer.report.style import (
    HIGHLIGHT,
    INK,
    LINE,
    MUTED,
    NA,
    SERIES,
    colour_bar,
    heading,
    new_figure,
    styled,
    wrap,
)

# The colour scale's ends, log-spaced: at LOW or below a cell is the palest shade, at HIGH or above the darkest.
# The pair's errors run from ~0.01 just after the layer to ~0.8 at the output; the self reference reaches 2.
LOW, HIGH = 1e-2, 2.0
NORM = LogNorm(LOW, HIGH, clip=True)
# Pale to dark red through orange, so that small and middling errors stay apart; exact 0 (the axes) is white.
ERROR_MAP = LinearSegmentedColormap.from_list("steer-error", ["#fff7ec", "#ef6548", "#7f0000"]).with_extremes(
    bad="white"
)
COMBO_COLOURS = {"pair": LINE, "self": HIGHLIGHT, "random": SERIES[2]}
COLUMNS = 6
TILE_IN = 1.35


@styled()
def draw_site_map(
    ax: Axes,
    at: tuple[float, float],
    title: str,
    values: Sequence[Sequence[float | None]],
    ss: Sequence[float],
    ts: Sequence[float],
    label_s: bool,
    label_t: bool,
) -> AxesImage:
    """One site's s × t tile on `ax`, its top-left cell corner at `at` (x right, y down, one unit a cell): rows s
    (top: most negative), columns t. The returned image (label: the site) holds the positive errors, 0 and None
    masked; None cells are painted grey over it. `label_s`, `label_t`: write the s values at its left, the t
    values under it."""
    x0, y0 = at
    rows, cols = len(ss), len(ts)
    data = np.array([[np.nan if v is None else float(v) for v in row] for row in values], dtype=float)
    box = (x0, x0 + cols, y0 + rows, y0)
    image = ax.imshow(np.ma.masked_where(~(data > 0), data), cmap=ERROR_MAP, norm=NORM, extent=box, label=title)
    undefined = np.isnan(data)
    if undefined.any():
        ax.imshow(np.ma.masked_where(~undefined, np.ones_like(data)), cmap=ListedColormap([NA]), extent=box,
                  label="_undefined")  # fmt: skip
    # The axes of the (s, t) plane: through the middle of the s = 0 row and the t = 0 column; then the frame.
    s0, t0 = y0 + list(ss).index(0.0) + 0.5, x0 + list(ts).index(0.0) + 0.5
    ax.plot([x0, x0 + cols], [s0, s0], color=INK, linewidth=0.8)
    ax.plot([t0, t0], [y0, y0 + rows], color=INK, linewidth=0.8)
    ax.add_patch(Rectangle((x0, y0), cols, rows, fill=False, edgecolor="#aaaaaa", linewidth=0.8))
    ax.text(x0, y0 - 0.12, title, fontsize=7, fontweight="bold", va="bottom", color=INK)
    if label_s:
        for i, v in enumerate(ss):
            ax.text(x0 - 0.15, y0 + i + 0.5, f"{v:g}", fontsize=6, ha="right", va="center", color=MUTED)
        ax.text(x0 - 0.9, y0 + rows / 2, "s", fontsize=7, ha="right", va="center", color=MUTED)
    if label_t:
        for j, v in enumerate(ts):
            ax.text(x0 + j + 0.5, y0 + rows + 0.12, f"{v:g}", fontsize=6, ha="center", va="top", color=MUTED)
        ax.text(x0 + cols / 2, y0 + rows + 0.6, "t", fontsize=7, ha="center", va="top", color=MUTED)
    return image


@styled()
def sites_figure(
    title: str, sites: Sequence[str], maps: dict[str, Any], ss: Sequence[float], ts: Sequence[float], footer: str
) -> Figure:
    """Small multiples: one site map per site (median over mazes per cell), one shared colour bar. All tiles are
    drawn on one Axes at fixed offsets, laid out by hand: 22 Axes of their own, each with its ticks, took most
    of a compose-map run's report time."""
    cols = min(COLUMNS, len(sites))
    rows = -(-len(sites) // cols)
    cell = TILE_IN / max(len(ss), len(ts))  # inches a cell
    gap_x, gap_y = 0.12 / cell, 0.32 / cell  # between tiles, in cells: room for a tile's title above it
    pitch_x, pitch_y = len(ts) + gap_x, len(ss) + gap_y
    left, right = 0.55, 1.1
    grid_w = cell * (cols * pitch_x - gap_x)
    grid_h = cell * (rows * pitch_y - gap_y)
    width = left + grid_w + right
    top = 0.35 + 0.2 * (wrap(title, width - 0.2, 10, em=0.6).count("\n") + 1)
    bottom = 0.45 + 0.14 * (wrap(footer, width - 0.2, 7.5).count("\n") + 1)
    height = top + grid_h + bottom
    fig = new_figure(width, height)
    fig.set_layout_engine("none")
    ax = fig.add_axes((left / width, bottom / height, grid_w / width, grid_h / height))
    ax.set_xlim(0, cols * pitch_x - gap_x)
    ax.set_ylim(rows * pitch_y - gap_y, 0)
    ax.set_axis_off()
    image = None
    for k, site in enumerate(sites):
        r, c = divmod(k, cols)
        medians = [[cell_["median"] for cell_ in row] for row in maps[site]["cells"]]
        image = draw_site_map(
            ax, (c * pitch_x, r * pitch_y), site, medians, ss, ts, label_s=c == 0, label_t=k + cols >= len(sites)
        )
    if image is not None:
        cax = fig.add_axes((1 - (right - 0.2) / width, (bottom + 0.1 * grid_h) / height, 0.12 / width,
                            0.8 * grid_h / height))  # fmt: skip
        bar = colour_bar(fig, image, ax, "median additivity error", cax=cax)
        bar.ax.yaxis.set_major_locator(FixedLocator((0.01, 0.03, 0.1, 0.3, 1.0, 2.0)))
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        bar.ax.yaxis.set_minor_locator(FixedLocator([]))
    heading(fig, title, footer)
    return fig


def depth_figure(
    title: str, sites: Sequence[str], combos: dict[str, dict[str, Any]], labels: dict[str, str], footer: str
) -> Figure:
    """Median off-axis error per site (rows, network order) for each composition, with 95% intervals."""
    series = []
    for combo, maps in combos.items():
        rows = [maps[s]["off_axes"] for s in sites]
        series.append(
            IntervalSeries(
                labels.get(combo, combo),
                COMBO_COLOURS.get(combo, MUTED),
                [r["median"] for r in rows],
                [r["median_ci"][0] if r["median_ci"] else None for r in rows],
                [r["median_ci"][1] if r["median_ci"] else None for r in rows],
            )
        )
    present = [v for s in series for v in (*s.high, *s.value) if v is not None]
    high = max(present, default=1.0)
    return interval_rows(
        title, list(sites), series, (0.0, high * 1.05 or 1.0), footer, xlabel="mean off-axis additivity error"
    )


def site_figures(summary: dict[str, Any], sites: Sequence[str], names: dict[str, str], head: str) -> dict[str, Figure]:
    """The per-site figures of a compose-map report (the combos' summaries hold the maps per site)."""
    ss, ts = summary["s"], summary["t"]
    combos = {c: e["additivity_error"] for c, e in summary["combos"].items()}
    out = {}
    foot = (
        "||D(s,t) - D(s,0) - D(0,t)|| / ||D(s,t)||, median over mazes per cell · rows s (first vector), columns t "
        "· dark lines: s = 0 and t = 0, where it is 0 by construction (white) · grey: undefined, D(s,t) = 0\n"
        "one log colour scale for every site and every composition (pair, self, random) so that tiles compare; "
        ">= 1 means the additive prediction explains nothing; darkest: 2 or more"
    )
    for combo, maps in combos.items():
        out[f"compose-map-sites-{combo}.png"] = sites_figure(
            f"additivity error per site · {names[combo]} · {head}", sites, maps, ss, ts, foot
        )
    out["compose-map-depth.png"] = depth_figure(
        f"median off-axis additivity error by site · {head}",
        sites,
        combos,
        names,
        "x: each maze's mean additivity error over the off-axis cells; dot: median over mazes, line: its 95% "
        "bootstrap interval\nsites in network order, top to bottom; on the axes the error is 0 by construction",
    )
    return out


def _map(title: str, grid: dict[str, list[float]], cells: list[list[dict[str, Any]]], footer: str) -> Figure:
    ss, ts = grid["s"], grid["t"]
    values = [[c["median"] for c in row] for row in cells]
    notes = [
        ["axis" if s == 0 or t == 0 else f"n={c['n']}" for t, c in zip(ts, row, strict=True)]
        for s, row in zip(ss, cells, strict=True)
    ]
    return heatmap(
        title,
        [f"s = {s:g}" for s in ss],
        [f"t = {t:g}" for t in ts],
        values,
        notes,
        ("s (first vector)", "t (second vector)"),
        footer=footer,
        scale_label="median over mazes",
    )


def figures(body: dict[str, Any], run_title: str) -> dict[str, Figure]:
    """Every figure from a report body (metrics.json): per composition the map at the action probabilities, the
    per-site maps and the error against depth, and the pair's behaviour prediction errors."""
    summary, grid, names = body["summary"], body["grid"], body["combos"]
    probs = body["sites"][0]  # the action probabilities, listed first
    head = f"{summary['mazes']} mazes · {body['vectors'][0]['layer']} · {run_title}"  # both at one layer
    foot = "median over mazes · axis: s = 0 or t = 0, where the error is 0 by construction"
    out = {}
    for combo in names:
        out[f"compose-map-{combo}.png"] = _map(
            f"additivity error at the action probabilities · {names[combo]} · {head}",
            grid,
            summary["combos"][combo]["additivity_error"][probs]["cells"],
            f"||D(s,t) - D(s,0) - D(0,t)|| / ||D(s,t)|| · {foot}",
        )
    # Per-site maps and the error against depth: sites in network order, the probabilities last.
    order = [*(s for s in body["sites"] if s != probs), probs]
    out.update(site_figures(summary, order, names, head))
    for name in summary["combos"]["pair"]["prediction_error"]:
        out[f"compose-map-prediction-{name}.png"] = _map(
            f"|{METRICS[name].label}(s,t) - additive prediction| · {names['pair']} · {head}",
            grid,
            summary["combos"]["pair"]["prediction_error"][name]["cells"],
            f"prediction: m(s,0) + m(0,t) - m(0,0) · {foot}",
        )
    return out


__all__ = ["ERROR_MAP", "NORM", "depth_figure", "draw_site_map", "figures", "site_figures", "sites_figure"]
