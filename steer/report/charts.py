"""Charts for study figures, drawn with Pillow: metric bands against the coefficient, heat maps, bar rows.

`band_charts` draws small multiples of median lines with 25-75% bands (sweeps, behaviour), `heatmap` a matrix
in a diverging scale (transfer), `bar_rows` one horizontal bar per label (layer sweeps), `paired_chart` two or
three vectors' effects per target maze (steer.analysis.comparison). They use the fonts,
colours and `tile` of steer/report/render.py but draw no maze, which is why they live apart from its maze panels.

Over 400 lines until matplotlib replaces these hand-drawn charts (issue 31).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from steer.report.render import ARROW_RGB, BG_RGB, TEXT_RGB, font, text_width, tile


@dataclass(frozen=True)
class BandSeries:
    """One metric over the x positions of a chart: median line and 25–75% band; None where undefined."""

    title: str
    median: Sequence[float | None]
    q25: Sequence[float | None]
    q75: Sequence[float | None]
    n: Sequence[int]
    baseline: float | None = None  # drawn as a dashed line, e.g. the unpatched median
    band: str = "median and 25-75% band"  # what line and band show, for the subtitle


LINE_RGB = (24, 48, 120)
BAND_RGB = (196, 208, 236)
BASELINE_RGB = (150, 150, 150)
GRID_RGB = (228, 228, 228)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) covering [low, high]."""
    span = max(high - low, 1e-9)
    raw = span / max(count - 1, 1)
    power = 10 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = np.floor(low / step) * step
    return [float(v) for v in np.arange(first, high + step * 0.5, step)]


def _tick_label(value: float, step: float) -> str:
    decimals = max(0, int(-np.floor(np.log10(step)))) if step < 1 else 0
    return f"{value:.{decimals}f}"


def _dashed_hline(d: ImageDraw.ImageDraw, x0: float, x1: float, y: float, color: tuple[int, int, int]) -> None:
    x = x0
    while x < x1:
        d.line([(x, y), (min(x + 6, x1), y)], fill=color, width=2)
        x += 11


def _runs(values: Sequence[float | None]) -> list[list[int]]:
    """Index runs where values are defined: a line or band is broken where a metric is undefined."""
    runs: list[list[int]] = []
    for i, v in enumerate(values):
        if v is None:
            continue
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def band_chart(
    series: BandSeries,
    xlabels: Sequence[str],
    size: tuple[int, int] = (440, 300),
    xtitle: str = "coefficient",
    y_range: tuple[float, float] | None = None,
) -> Image.Image:
    """One small chart: x at evenly spaced positions labelled `xlabels`, y auto-ranged with round ticks.

    Kept whole: one figure's drawing, axis to legend; matplotlib replaces these charts (issue 31)."""
    width, height = size
    left, right, top, bottom = 56, 14, 44, 46
    img = Image.new("RGB", size, BG_RGB)
    d = ImageDraw.Draw(img)
    n_max = max(series.n, default=0)
    d.text((left, 8), series.title, fill=TEXT_RGB, font=font(15))
    d.text((left, 26), f"{series.band} over mazes (n <= {n_max})", fill=(110, 110, 110), font=font(11))
    present = [v for v in (*series.q25, *series.q75, *series.median, series.baseline) if v is not None]
    if not present:
        d.text((left, height // 2), "undefined in every maze", fill=(120, 120, 120), font=font(13))
        return img
    lo, hi = min(present), max(present)
    pad = 0.08 * (hi - lo) or max(0.05 * abs(hi), 0.05)
    # A shared range (e.g. 0 to 1 for probabilities) lets small multiples be compared by eye.
    y_lo, y_hi = y_range if y_range is not None else (lo - pad, hi + pad)
    ticks = [t for t in nice_ticks(y_lo, y_hi) if y_lo <= t <= y_hi]
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(i: int) -> float:
        return left + (plot_w * (i + 0.5) / len(xlabels))

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - y_lo) / (y_hi - y_lo))

    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for t in ticks:
        d.line([(left, py(t)), (width - right, py(t))], fill=GRID_RGB, width=1)
        label = _tick_label(t, step)
        d.text((left - 6 - d.textlength(label, font=font(11)), py(t) - 7), label, fill=TEXT_RGB, font=font(11))
    for i, label in enumerate(xlabels):
        d.text((px(i) - d.textlength(label, font=font(11)) / 2, top + plot_h + 6), label, fill=TEXT_RGB, font=font(11))
    d.text(
        (left + plot_w / 2 - d.textlength(xtitle, font=font(11)) / 2, height - 18),
        xtitle,
        fill=(90, 90, 90),
        font=font(11),
    )
    d.rectangle((left, top, width - right, top + plot_h), outline=(160, 160, 160))
    if series.baseline is not None:
        _dashed_hline(d, left, width - right, py(series.baseline), BASELINE_RGB)
    for run in _runs([None if a is None or b is None else a for a, b in zip(series.q25, series.q75, strict=True)]):
        upper = [(px(i), py(series.q75[i])) for i in run]  # type: ignore[arg-type]
        lower = [(px(i), py(series.q25[i])) for i in reversed(run)]  # type: ignore[arg-type]
        if len(run) == 1:  # a single defined point: draw its band as a short bar
            d.line([(upper[0][0], upper[0][1]), (lower[0][0], lower[0][1])], fill=BAND_RGB, width=10)
        else:
            d.polygon(upper + lower, fill=BAND_RGB)
    for run in _runs(series.median):
        points = [(px(i), py(series.median[i])) for i in run]  # type: ignore[arg-type]
        if len(points) > 1:
            d.line(points, fill=LINE_RGB, width=3)
        for x, y in points:
            d.ellipse((x - 3.5, y - 3.5, x + 3.5, y + 3.5), fill=LINE_RGB)
    return img


def band_charts(
    title: str,
    xlabels: Sequence[str],
    series: Sequence[BandSeries],
    footer: str = "",
    columns: int = 3,
    size: tuple[int, int] = (440, 300),
    xtitle: str = "coefficient",
    y_range: tuple[float, float] | None = None,
) -> Image.Image:
    """Small-multiple charts of several metrics against the same x positions, in rows of `columns`; `size`
    is one chart's, wider where many x labels must fit."""
    charts = [band_chart(s, xlabels, size, xtitle, y_range) for s in series]
    return tile(title, charts, columns, footer=footer, gap=8, min_width=0)


NEG_RGB = (33, 102, 172)
POS_RGB = (178, 24, 43)
NA_RGB = (225, 225, 225)


def diverging(value: float, limit: float) -> tuple[int, int, int]:
    """White at 0, blue toward -limit, red toward +limit."""
    t = max(-1.0, min(1.0, value / limit)) if limit > 0 else 0.0
    end = POS_RGB if t > 0 else NEG_RGB
    return tuple(round(255 + (c - 255) * abs(t)) for c in end)  # type: ignore[return-value]


def heatmap(
    title: str,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    values: Sequence[Sequence[float | None]],
    notes: Sequence[Sequence[str]] | None = None,
    axis_titles: tuple[str, str] = ("rows", "columns"),
    footer: str = "",
    divider_before: int | None = None,
) -> Image.Image:
    """A matrix as coloured cells (diverging, symmetric about 0) with each value and an optional note written in.

    `divider_before`: a row index; a gap and a line set the rows from there on apart (e.g. a summary row)."""
    cell_w, cell_h = 112, 58
    label_w = max([text_width(lbl, 13) for lbl in row_labels] + [60]) + 16
    pad, title_h, header_h, scale_h = 12, 34, 44, 44
    footer_h = 22 * len(footer.split("\n")) if footer else 0
    n_rows, n_cols = len(row_labels), len(col_labels)
    texts = [text_width(title, 18), *(text_width(line, 13) for line in footer.split("\n") if footer)]
    width = int(max(2 * pad + label_w + n_cols * cell_w, 2 * pad + max(texts), 560))
    gap = 14 if divider_before is not None else 0
    height = 2 * pad + title_h + header_h + n_rows * cell_h + gap + scale_h + footer_h
    out = Image.new("RGB", (width, height), BG_RGB)
    d = ImageDraw.Draw(out)
    d.text((pad, pad), title, fill=TEXT_RGB, font=font(18))
    x0, y0 = pad + label_w, pad + title_h + header_h
    d.text(
        (pad, pad + title_h), f"rows: {axis_titles[0]} · columns: {axis_titles[1]}", fill=(90, 90, 90), font=font(12)
    )
    for j, label in enumerate(col_labels):
        d.text((x0 + j * cell_w + 6, pad + title_h + 20), label, fill=TEXT_RGB, font=font(13))
    present = [abs(v) for row in values for v in row if v is not None]
    limit = max(present, default=0.0)
    for i, label in enumerate(row_labels):
        y = y0 + i * cell_h + (gap if divider_before is not None and i >= divider_before else 0)
        if i == divider_before:
            d.line((pad, y - gap / 2, x0 + n_cols * cell_w, y - gap / 2), fill=TEXT_RGB, width=2)
        d.text((pad, y + cell_h / 2 - 8), label, fill=TEXT_RGB, font=font(13))
        for j in range(n_cols):
            v = values[i][j]
            x = x0 + j * cell_w
            fill = NA_RGB if v is None else diverging(v, limit)
            d.rectangle((x, y, x + cell_w - 2, y + cell_h - 2), fill=fill, outline=(200, 200, 200))
            strong = v is not None and limit > 0 and abs(v) / limit > 0.6
            ink = (255, 255, 255) if strong else TEXT_RGB
            d.text((x + 8, y + 8), "n/a" if v is None else f"{v:+.3f}", fill=ink, font=font(17))
            if notes and notes[i][j]:
                d.text((x + 8, y + 34), notes[i][j], fill=ink, font=font(11))
    _scale_bar(d, x0, y0 + n_rows * cell_h + gap + 12, limit)
    for k, line in enumerate(footer.split("\n") if footer else []):
        d.text((pad, height - pad - footer_h + 4 + 22 * k), line, fill=(90, 90, 90), font=font(13))
    return out


def probability_map(
    title: str,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    values: Sequence[Sequence[float | None]],
    counts: Sequence[Sequence[int]],
    axis_titles: tuple[str, str],
    footer: str = "",
) -> Image.Image:
    """A grid of probabilities in [0, 1]: white to dark blue, each cell with its value and its n; grey where empty."""
    cell_w, cell_h, pad, title_h, header_h = 54, 38, 12, 34, 40
    label_w = max([text_width(lbl, 12) for lbl in row_labels] + [40]) + 12
    lines = footer.split("\n") if footer else []
    texts = [text_width(title, 18), *(text_width(line, 13) for line in lines)]
    width = int(max(2 * pad + label_w + len(col_labels) * cell_w, 2 * pad + max(texts)))
    height = 2 * pad + title_h + header_h + len(row_labels) * cell_h + 22 * len(lines) + 8
    out = Image.new("RGB", (width, height), BG_RGB)
    d = ImageDraw.Draw(out)
    d.text((pad, pad), title, fill=TEXT_RGB, font=font(18))
    d.text(
        (pad, pad + title_h), f"rows: {axis_titles[0]} · columns: {axis_titles[1]}", fill=(90, 90, 90), font=font(12)
    )
    x0, y0 = pad + label_w, pad + title_h + header_h
    for j, label in enumerate(col_labels):
        d.text((x0 + j * cell_w + 4, y0 - 18), label, fill=TEXT_RGB, font=font(12))
    for i, label in enumerate(row_labels):
        y = y0 + i * cell_h
        d.text((pad, y + cell_h / 2 - 8), label, fill=TEXT_RGB, font=font(12))
        for j in range(len(col_labels)):
            v, x = values[i][j], x0 + j * cell_w
            if v is None:
                d.rectangle((x, y, x + cell_w - 2, y + cell_h - 2), fill=NA_RGB)
                continue
            shade = tuple(int(255 + (c - 255) * v) for c in NEG_RGB)
            d.rectangle((x, y, x + cell_w - 2, y + cell_h - 2), fill=shade, outline=(200, 200, 200))
            ink = (255, 255, 255) if v > 0.55 else TEXT_RGB
            d.text((x + 5, y + 3), f"{v:.2f}", fill=ink, font=font(13))
            d.text((x + 5, y + 21), f"n {counts[i][j]}", fill=ink, font=font(9))
    for k, line in enumerate(lines):
        d.text((pad, height - pad - 22 * len(lines) + 22 * k), line, fill=(90, 90, 90), font=font(13))
    return out


def _scale_bar(d: ImageDraw.ImageDraw, x: float, y: float, limit: float, width: int = 220) -> None:
    for k in range(width):
        v = (2 * k / (width - 1) - 1) * limit
        d.line([(x + k, y), (x + k, y + 10)], fill=diverging(v, limit))
    for frac, value in ((0.0, -limit), (0.5, 0.0), (1.0, limit)):
        label = f"{value:+.2f}" if value else "0"
        d.text((x + frac * width - text_width(label, 11) / 2, y + 13), label, fill=TEXT_RGB, font=font(11))


def bar_rows(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    reference: float | None = None,
    footer: str = "",
    value_range: tuple[float, float] = (0.0, 1.0),
    highlight: str | None = None,
) -> Image.Image:
    """One horizontal bar per label (legible with 40+ rows); a dashed line marks `reference`."""
    row_h, pad, label_w, bar_w = 18, 12, 250, 420
    top = pad + 34
    height = top + row_h * len(labels) + 40 + (26 if footer else 0)
    width = int(max(pad * 2 + label_w + bar_w + 70, text_width(title, 16) + 2 * pad))
    img, d = _titled(width, height, title, pad)
    lo, hi = value_range
    x_of = _x_scale(pad + label_w, bar_w, value_range)

    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row_h
        bold = label == highlight
        d.text((pad, y + 2), label, fill=(180, 60, 0) if bold else TEXT_RGB, font=font(13))
        if value is None:
            d.text((x_of(lo) + 4, y + 2), "n/a", fill=(120, 120, 120), font=font(12))
            continue
        d.rectangle((x_of(lo), y + 3, x_of(value), y + row_h - 3), fill=(200, 90, 20) if bold else ARROW_RGB)
        d.text((x_of(value) + 4, y + 2), f"{value:.2f}", fill=TEXT_RGB, font=font(12))
    axis_y = top + row_h * len(labels) + 4
    d.line((x_of(lo), axis_y, x_of(hi), axis_y), fill=TEXT_RGB)
    for t in nice_ticks(lo, hi):
        d.line((x_of(t), axis_y, x_of(t), axis_y + 4), fill=TEXT_RGB)
        d.text((x_of(t) - 8, axis_y + 6), f"{t:g}", fill=TEXT_RGB, font=font(12))
    if reference is not None:
        _dashed_vline(d, x_of(reference), top, axis_y, (90, 90, 90))
    if footer:
        d.text((pad, height - pad - 18), footer, fill=(90, 90, 90), font=font(13))
    return img


def _titled(width: int, height: int, title: str, pad: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A blank chart with its title in the top-left corner."""
    img = Image.new("RGB", (width, height), BG_RGB)
    d = ImageDraw.Draw(img)
    d.text((pad, pad), title, fill=TEXT_RGB, font=font(16))
    return img, d


def _x_scale(left: float, width: float, value_range: tuple[float, float]) -> Callable[[float], float]:
    """Pixel x of a value on a horizontal axis spanning `value_range`; values outside it sit at its ends."""
    lo, hi = value_range
    return lambda v: left + width * (min(max(v, lo), hi) - lo) / (hi - lo)


def _dashed_vline(d: ImageDraw.ImageDraw, x: float, y0: float, y1: float, color: tuple[int, int, int]) -> None:
    y = y0
    while y < y1:
        d.line((x, y, x, min(y + 5, y1)), fill=color, width=2)
        y += 9


@dataclass(frozen=True)
class IntervalSeries:
    """One marker per row with a horizontal interval line; None where undefined."""

    title: str
    rgb: tuple[int, int, int]
    value: Sequence[float | None]
    low: Sequence[float | None]
    high: Sequence[float | None]


def interval_rows(
    title: str,
    labels: Sequence[str],
    series: Sequence[IntervalSeries],
    value_range: tuple[float, float],
    footer: str = "",
) -> Image.Image:
    """Rows of labels (e.g. sites in network order), each with one marker and interval per series, offset
    vertically within the row so that overlapping intervals stay apart; a legend names the series."""
    row_h, pad, bar_w = 8 + 7 * len(series), 12, 520
    label_w = int(max([text_width(label, 13) for label in labels] + [60])) + 16
    lines = footer.split("\n") if footer else []
    width = int(max(pad * 2 + label_w + bar_w + 20, *(text_width(t, 16) + 2 * pad for t in [title, *lines])))
    # The legend flows onto more lines where one line of it would run past the chart's right edge.
    legend: list[tuple[float, int]] = []
    x, line = float(pad + label_w), 0
    for s in series:
        if x > pad + label_w and x + text_width(s.title, 12) + 12 > width - pad:
            x, line = float(pad + label_w), line + 1
        legend.append((x, line))
        x += text_width(s.title, 12) + 34
    top = pad + 34 + 22 * (line + 1)
    height = top + row_h * len(labels) + 40 + 22 * len(lines)
    img, d = _titled(width, height, title, pad)
    lo, hi = value_range
    x_of = _x_scale(pad + label_w, bar_w, value_range)

    for s, (x, k) in zip(series, legend, strict=True):  # the legend, one line per 22 pixels above the rows
        y = top - 22 * (line - k)
        d.ellipse((x, y - 16, x + 8, y - 8), fill=s.rgb)
        d.text((x + 12, y - 19), s.title, fill=TEXT_RGB, font=font(12))
    axis_y = top + row_h * len(labels) + 4
    for i, label in enumerate(labels):  # backgrounds and labels, then the grid, then the markers on top
        y = top + i * row_h
        if i % 2:
            d.rectangle((pad + label_w, y, pad + label_w + bar_w, y + row_h - 1), fill=(246, 246, 246))
        d.text((pad, y + row_h / 2 - 8), label, fill=TEXT_RGB, font=font(13))
    d.line((x_of(lo), axis_y, x_of(hi), axis_y), fill=TEXT_RGB)
    for t in nice_ticks(lo, hi, 8):
        if lo <= t <= hi:
            d.line((x_of(t), top, x_of(t), axis_y + 4), fill=GRID_RGB)
            d.text((x_of(t) - text_width(f"{t:g}", 12) / 2, axis_y + 6), f"{t:g}", fill=TEXT_RGB, font=font(12))
    for i in range(len(labels)):
        for k, s in enumerate(series):
            yy = top + i * row_h + 6 + 7 * k
            low, high, value = s.low[i], s.high[i], s.value[i]
            if low is not None and high is not None:
                d.line((x_of(low), yy, x_of(high), yy), fill=s.rgb, width=2)
            if value is not None:
                d.ellipse((x_of(value) - 3.5, yy - 3.5, x_of(value) + 3.5, yy + 3.5), fill=s.rgb)
    for k, line in enumerate(lines):
        d.text((pad, axis_y + 26 + 22 * k), line, fill=(90, 90, 90), font=font(13))
    return img


# Series colours of the paired chart: the averaged vector, each target's own vector, other single mazes.
SERIES_RGB = {"mean": (200, 90, 20), "vector": (200, 90, 20), "own": (24, 48, 120), "other": (120, 120, 120)}


def paired_chart(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    names: Mapping[str, str],
    ylabel: str,
    footer: str = "",
    marked: Sequence[bool] = (),
    marked_note: str = "",
) -> Image.Image:
    """One column per target (those where any series is defined), a dot per series joined by a thin line.

    `names` gives each series' legend text; `marked` targets (in sample) get an asterisk after their label,
    and the footer `marked_note` where any is drawn. A dashed line marks 0 (no effect).

    Kept whole: one figure's drawing, axis to legend; matplotlib replaces these charts (issue 31)."""
    keep = [i for i in range(len(labels)) if any(series[k][i] is not None for k in series)]
    if any(marked[i] for i in keep) and marked_note:  # the asterisk is explained only where one is drawn
        footer = f"{footer}\n* {marked_note}" if footer else f"* {marked_note}"
    col_w, left, right, top, bottom = 28, 64, 16, 74, 70
    plot_h = 300
    width = max(left + right + col_w * max(len(keep), 1), 560, int(text_width(title, 16)) + 24)
    height = top + plot_h + bottom + (22 * len(footer.split("\n")) if footer else 0)
    img = Image.new("RGB", (width, height), BG_RGB)
    d = ImageDraw.Draw(img)
    d.text((12, 10), title, fill=TEXT_RGB, font=font(16))
    x = 12.0
    for key, text in names.items():
        d.ellipse((x, 40, x + 10, 50), fill=SERIES_RGB.get(key, TEXT_RGB))
        d.text((x + 14, 37), text, fill=TEXT_RGB, font=font(12))
        x += 28 + text_width(text, 12)
    values = [series[k][i] for k in series for i in keep if series[k][i] is not None]
    if not values:
        d.text((left, top + plot_h // 2), "undefined for every target", fill=(120, 120, 120), font=font(13))
        return img
    lo, hi = min(0.0, *values), max(0.0, *values)
    pad = 0.06 * (hi - lo) or 0.05
    y_lo, y_hi = lo - pad, hi + pad
    ticks = [t for t in nice_ticks(y_lo, y_hi) if y_lo <= t <= y_hi]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - y_lo) / (y_hi - y_lo))

    for t in ticks:
        d.line([(left, py(t)), (width - right, py(t))], fill=GRID_RGB, width=1)
        label = _tick_label(t, step)
        d.text((left - 6 - text_width(label, 11), py(t) - 7), label, fill=TEXT_RGB, font=font(11))
    d.text((12, top - 18), ylabel, fill=(90, 90, 90), font=font(12))
    d.rectangle((left, top, width - right, top + plot_h), outline=(160, 160, 160))
    _dashed_hline(d, left, width - right, py(0.0), (150, 150, 150))
    for col, i in enumerate(keep):
        cx = left + col_w * (col + 0.5)
        # Each series a little apart within the column, so equal values (all at 0) stay visible side by side.
        points = [(cx + 6 * (n - (len(series) - 1) / 2), k, series[k][i]) for n, k in enumerate(series)]
        points = [(x, k, py(v)) for x, k, v in points if v is not None]
        if len(points) > 1:
            d.line([(x, y) for x, _, y in points], fill=(190, 190, 190), width=2)
        for x, k, y in points:
            d.ellipse((x - 3.5, y - 3.5, x + 3.5, y + 3.5), fill=SERIES_RGB.get(k, TEXT_RGB))
        star = "*" if marked and marked[i] else ""
        label = labels[i] + star
        # Three-digit seeds are nearly as wide as a column: every other label goes one line lower.
        ly = top + plot_h + 6 + 12 * (col % 2)
        d.text((cx - text_width(label, 10) / 2, ly), label, fill=TEXT_RGB, font=font(10))
    d.text((left, top + plot_h + 36), "target seed", fill=(90, 90, 90), font=font(12))
    for k, line in enumerate(footer.split("\n") if footer else []):
        d.text((12, top + plot_h + bottom + 22 * k - 18), line, fill=(90, 90, 90), font=font(12))
    return img
