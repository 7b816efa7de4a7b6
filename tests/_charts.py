"""A chart's numbers read back from its matplotlib Figure, for the tests that draw each chart on a real run: the
median line, the band's corners, the dashed reference, bars, markers and intervals, and a matrix's cells."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D


def nan(values: Sequence[float | None]) -> np.ndarray:
    """None as NaN, as the charts draw it (a gap)."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def panels(fig: Figure) -> list[Axes]:
    """The visible plot axes, colour bars left out."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def line(ax: Axes, label: str) -> Line2D:
    (found,) = [ln for ln in ax.lines if ln.get_label() == label]
    return found


def references(ax: Axes) -> list[float]:
    """Where the dashed reference lines sit: y for a horizontal one, x for a vertical one."""
    out = []
    for ln in ax.lines:
        if ln.get_label() == "_reference":
            x, y = ln.get_xdata(), ln.get_ydata()
            out.append(float(y[0]) if y[0] == y[1] else float(x[0]))
    return out


def band_corners(ax: Axes) -> set[tuple[float, float]]:
    """Every (x, y) corner of the band: the filled polygons' vertices and the ends of lone bars."""
    points: set[tuple[float, float]] = set()
    for coll in ax.collections:
        if coll.get_label() != "_band":
            continue
        segments = coll.get_segments() if isinstance(coll, LineCollection) else [p.vertices for p in coll.get_paths()]
        for seg in segments:
            points |= {(round(float(x), 9), round(float(y), 9)) for x, y in seg}
    return points


def assert_band(ax: Axes, median: Sequence, q25: Sequence, q75: Sequence, baseline: float | None) -> None:
    """The panel draws `median` as its line (gaps at None), a band through `q25` and `q75` where both are
    defined and nowhere else, and the baseline dashed."""
    np.testing.assert_allclose(line(ax, "_median").get_ydata(), nan(median), rtol=1e-12)
    corners = band_corners(ax)
    want = {(float(i), round(v, 9)) for i, (a, b) in enumerate(zip(q25, q75, strict=True)) if a is not None
            and b is not None for v in (a, b)}  # fmt: skip
    assert want <= corners
    assert {x for x, _ in corners} == {x for x, _ in want}  # no band where a quartile is undefined
    assert references(ax) == ([] if baseline is None else [baseline])


def bar_ends(ax: Axes) -> list[float]:
    """Each bar's value: where it ends (bars start at 0 or at the range's low end)."""
    return [float(p.get_x() + p.get_width()) for p in ax.patches]


def intervals(ax: Axes, title: str) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """One series of interval rows: its markers' x (NaN where undefined) and its intervals (low, high), in row
    order of the rows that have one."""
    (coll,) = [c for c in ax.collections if c.get_label() == f"_interval: {title}"]
    spans = [(float(s[0][0]), float(s[1][0])) for s in coll.get_segments()]
    return np.asarray(line(ax, title).get_xdata(), dtype=float), spans


def cells(ax: Axes | AxesImage) -> np.ndarray:
    """A matrix chart's values as drawn (NaN where masked): an Axes' first image, or the image given."""
    image = ax if isinstance(ax, AxesImage) else ax.images[0]
    return np.ma.filled(np.ma.asarray(image.get_array(), dtype=float), np.nan)


def tiles(ax: Axes) -> list[AxesImage]:
    """The labelled images of one Axes that holds several (compose-map's per-site maps), in drawing order."""
    return [im for im in ax.images if not im.get_label().startswith("_")]
