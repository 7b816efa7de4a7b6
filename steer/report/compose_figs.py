"""`steer compose-map`'s per-site figures: where along the network the non-additivity of two vectors appears.

- `compose-map-sites-{pair,self,random}.png`: one small s × t map per measured site (network order, then the
  action probabilities) of the median additivity error over mazes. Every tile of every composition is drawn on
  one log colour scale (`NORM`, shown by one colour bar), so a tile's shade compares across sites and across
  the pair and its references. The s = 0 row and t = 0 column, where the error is 0 by construction, are
  white and crossed by dark lines; an undefined cell (D(s,t) = 0) is grey.
- `compose-map-depth.png`: per site, the median over mazes of each maze's mean off-axis error with its 95%
  bootstrap interval (the summary's `off_axes`), one marker per composition: the error against depth.

Both are matplotlib figures (steer/report/charts for the interval rows, steer/report/style.py for the look).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap, ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import FixedLocator, FuncFormatter

from steer.report.charts import IntervalSeries, interval_rows
from steer.report.style import HIGHLIGHT, INK, LINE, MUTED, NA, SERIES, colour_bar, heading, new_figure, styled

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
    ax: Axes, title: str, values: Sequence[Sequence[float | None]], ss: Sequence[float], ts: Sequence[float]
) -> AxesImage:
    """One site's s × t tile on `ax`: rows s (top: most negative), columns t. The returned image holds the
    positive errors (0 and None masked); None cells are painted grey over it."""
    data = np.array([[np.nan if v is None else float(v) for v in row] for row in values], dtype=float)
    image = ax.imshow(np.ma.masked_where(~(data > 0), data), cmap=ERROR_MAP, norm=NORM, aspect="equal")
    undefined = np.isnan(data)
    if undefined.any():
        ax.imshow(np.ma.masked_where(~undefined, np.ones_like(data)), cmap=ListedColormap([NA]), aspect="equal")
    # The axes of the (s, t) plane: through the middle of the s = 0 row and the t = 0 column.
    ax.axhline(list(ss).index(0.0), color=INK, linewidth=0.8)
    ax.axvline(list(ts).index(0.0), color=INK, linewidth=0.8)
    ax.grid(False)
    ax.set_title(title, fontsize=7, loc="left", pad=3)
    ax.set_xticks(range(len(ts)), [f"{t:g}" for t in ts])
    ax.set_yticks(range(len(ss)), [f"{s:g}" for s in ss])
    ax.tick_params(labelsize=6, length=1.5, colors=MUTED)
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color("#aaaaaa")
    return image


@styled()
def sites_figure(
    title: str, sites: Sequence[str], maps: dict[str, Any], ss: Sequence[float], ts: Sequence[float], footer: str
) -> Figure:
    """Small multiples: one site map per site (median over mazes per cell), one shared colour bar."""
    cols = min(COLUMNS, len(sites))
    rows = -(-len(sites) // cols)
    fig = new_figure(TILE_IN * cols + 1.3, TILE_IN * rows + 1.2 + 0.16 * (footer.count("\n") + 1))
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for k, (ax, site) in enumerate(zip(axes.flat, sites, strict=False)):
        medians = [[c["median"] for c in row] for row in maps[site]["cells"]]
        image = draw_site_map(ax, site, medians, ss, ts)
        # s values on the first column, t values under the last tile of each column; no ticks elsewhere
        # (fewer ticks also keep the layout of 22 tiles quick).
        if k % cols:
            ax.set_yticks([])
        else:
            ax.set_ylabel("s", fontsize=7, color=MUTED, labelpad=1)
        if k + cols < len(sites):
            ax.set_xticks([])
        else:
            ax.set_xlabel("t", fontsize=7, color=MUTED, labelpad=1)
    for ax in axes.flat[len(sites) :]:
        ax.set_visible(False)
    if image is not None:
        bar = colour_bar(fig, image, axes, "median additivity error")
        ticks = (0.01, 0.03, 0.1, 0.3, 1.0, 2.0)
        bar.ax.yaxis.set_major_locator(FixedLocator(ticks))
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


def figures(summary: dict[str, Any], sites: Sequence[str], names: dict[str, str], head: str) -> dict[str, Figure]:
    """Every per-site figure of a compose-map report (the combos' summaries hold the maps per site)."""
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


__all__ = ["ERROR_MAP", "NORM", "depth_figure", "draw_site_map", "figures", "sites_figure"]
