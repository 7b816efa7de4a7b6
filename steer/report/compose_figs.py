"""`steer compose-map`'s per-site figures: where along the network the non-additivity of two vectors appears.

- `compose-map-sites-{pair,self,random}.png`: one small s × t map per measured site (network order, then the
  action probabilities) of the median additivity error over mazes. Every tile of every composition is drawn on
  one log colour scale, so a tile's shade compares across sites and across the pair and its references.
  The s = 0 row and t = 0 column, where the error is 0 by construction, are crossed by dark lines.
- `compose-map-depth.png`: per site, the median over mazes of each maze's mean off-axis error with its 95%
  bootstrap interval (the summary's `off_axes`), one marker per composition: the error against depth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageDraw

from steer.report.charts import IntervalSeries, interval_rows
from steer.report.render import BG_RGB, TEXT_RGB, font, text_width, tile

# The colour scale's ends, log-spaced: at LOW or below a cell is the palest shade, at HIGH or above the darkest.
# The pair's errors run from ~0.01 just after the layer to ~0.8 at the output; the self reference reaches 2.
LOW, HIGH = 1e-2, 2.0
PALE, DARK = (255, 247, 236), (127, 0, 0)
NA_RGB = (226, 226, 226)
AXIS_RGB = (30, 30, 30)
COMBO_RGB = {"pair": (24, 48, 120), "self": (200, 90, 20), "random": (60, 150, 60)}
CELL = 22


def shade(value: float) -> tuple[int, int, int]:
    """Pale (≤ LOW) to dark red (≥ HIGH) on a log scale; exact 0 (the axes) is white."""
    if value <= 0:
        return BG_RGB
    x = (math.log10(max(LOW, min(HIGH, value))) - math.log10(LOW)) / (math.log10(HIGH) - math.log10(LOW))
    mid = (239, 101, 72)  # through orange, so that small and middling errors stay apart
    a, b, f = (PALE, mid, 2 * x) if x < 0.5 else (mid, DARK, 2 * x - 1)
    return tuple(round(p + (q - p) * f) for p, q in zip(a, b, strict=True))  # type: ignore[return-value]


def site_map(
    title: str, values: Sequence[Sequence[float | None]], ss: Sequence[float], ts: Sequence[float], labels: bool
) -> Image.Image:
    """One site's s × t tile: rows s (top: most negative), columns t; `labels` writes the s and t values."""
    i0, j0 = list(ss).index(0.0), list(ts).index(0.0)
    left, top = 38, 22
    width, height = left + CELL * len(ts) + 6, top + CELL * len(ss) + 18
    img = Image.new("RGB", (max(width, int(text_width(title, 11)) + 8), height), BG_RGB)
    d = ImageDraw.Draw(img)
    d.text((2, 3), title, fill=TEXT_RGB, font=font(11))
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            x, y = left + j * CELL, top + i * CELL
            d.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=NA_RGB if v is None else shade(v))
    # The axes of the (s, t) plane: through the middle of the s = 0 row and the t = 0 column.
    y_axis, x_axis = top + i0 * CELL + CELL / 2, left + j0 * CELL + CELL / 2
    d.line((left, y_axis, left + CELL * len(ts) - 1, y_axis), fill=AXIS_RGB, width=1)
    d.line((x_axis, top, x_axis, top + CELL * len(ss) - 1), fill=AXIS_RGB, width=1)
    d.rectangle((left - 1, top - 1, left + CELL * len(ts), top + CELL * len(ss)), outline=(170, 170, 170))
    if labels:
        for i, s in enumerate(ss):
            text = f"{s:g}"
            d.text((left - 4 - text_width(text, 9), top + i * CELL + 4), text, fill=(90, 90, 90), font=font(9))
        for j, t in enumerate(ts):
            text = f"{t:g}"
            d.text((left + j * CELL + CELL / 2 - text_width(text, 9) / 2, top + CELL * len(ss) + 3), text,
                   fill=(90, 90, 90), font=font(9))  # fmt: skip
    return img


def scale_legend() -> Image.Image:
    """The shared colour scale, as one more tile."""
    img = Image.new("RGB", (200, 86), BG_RGB)
    d = ImageDraw.Draw(img)
    d.text((4, 4), "median additivity error", fill=TEXT_RGB, font=font(11))
    x0, width = 16, 170
    for k in range(width):
        span = math.log10(HIGH) - math.log10(LOW)
        d.line((x0 + k, 24, x0 + k, 38), fill=shade(10 ** (math.log10(LOW) + span * k / (width - 1))))
    for value in (0.01, 0.03, 0.1, 0.3, 1.0, 2.0):
        x = x0 + width * (math.log10(value) - math.log10(LOW)) / (math.log10(HIGH) - math.log10(LOW))
        d.line((x, 38, x, 42), fill=TEXT_RGB)
        d.text((x - text_width(f"{value:g}", 9) / 2, 44), f"{value:g}", fill=TEXT_RGB, font=font(9))
    d.rectangle((x0, 60, x0 + 12, 72), fill=NA_RGB)
    d.text((x0 + 18, 60), "undefined: D(s,t) = 0", fill=(90, 90, 90), font=font(9))
    return img


COLUMNS = 6


def sites_figure(
    title: str, sites: Sequence[str], maps: dict[str, Any], ss: Sequence[float], ts: Sequence[float], footer: str
) -> Image.Image:
    """Small multiples: one `site_map` per site (median over mazes per cell), then the colour scale."""
    tiles = []
    for k, site in enumerate(sites):
        medians = [[c["median"] for c in row] for row in maps[site]["cells"]]
        tiles.append(site_map(site, medians, ss, ts, labels=k % COLUMNS == 0))
    return tile(title, [*tiles, scale_legend()], COLUMNS, footer=footer, gap=6, min_width=0)


def depth_figure(
    title: str, sites: Sequence[str], combos: dict[str, dict[str, Any]], labels: dict[str, str], footer: str
) -> Image.Image:
    """Median off-axis error per site (rows, network order) for each composition, with 95% intervals."""
    series = []
    for combo, maps in combos.items():
        rows = [maps[s]["off_axes"] for s in sites]
        series.append(
            IntervalSeries(
                labels.get(combo, combo),
                COMBO_RGB.get(combo, TEXT_RGB),
                [r["median"] for r in rows],
                [r["median_ci"][0] if r["median_ci"] else None for r in rows],
                [r["median_ci"][1] if r["median_ci"] else None for r in rows],
            )
        )
    present = [v for s in series for v in (*s.high, *s.value) if v is not None]
    high = max(present, default=1.0)
    return interval_rows(title, list(sites), series, (0.0, high * 1.05 or 1.0), footer)


def figures(summary: dict[str, Any], sites: Sequence[str], names: dict[str, str], head: str) -> dict[str, Image.Image]:
    """Every per-site figure of a compose-map report (the combos' summaries hold the maps per site)."""
    ss, ts = summary["s"], summary["t"]
    combos = {c: e["additivity_error"] for c, e in summary["combos"].items()}
    out = {}
    foot = (
        "||D(s,t) - D(s,0) - D(0,t)|| / ||D(s,t)||, median over mazes per cell · rows s (first vector), columns t "
        "· dark lines: s = 0 and t = 0, where it is 0 by construction\none log colour scale for every site and "
        "every composition (pair, self, random) so that tiles compare; >= 1 means the additive prediction explains "
        "nothing; darkest: 2 or more"
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
