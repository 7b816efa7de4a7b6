"""One look for every chart steer draws with matplotlib: fonts, colours, sizes.

A chart function builds its figure with `new_figure` and its axes under `styled()`, so a notebook's own
rcParams (a dark theme, a seaborn style) never leak into steer's figures and steer's never leak out. Figures are
made with `matplotlib.figure.Figure` rather than pyplot: no backend or display is needed, nothing is kept in
pyplot's registry (a run that draws a thousand charts frees each when it is saved), and a notebook still shows
one that a cell returns.

The colours are those of the maze panels (steer/report/render.py), so a chart beside a vector field reads as
one figure: arrows and lines in the same navy, cheese in the same yellow.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from matplotlib import rc_context
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

from steer.report.render import ARROW_RGB, CHEESE_RGB, DIFF_RGB, TEXT_RGB


def hex_of(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


INK = hex_of(TEXT_RGB)
LINE = hex_of(ARROW_RGB)  # a metric's line, the patched condition
BAND = "#c4d0ec"  # its 25-75% band or interval
BASELINE = "#969696"  # the unpatched reference, dashed
GRID = "#e4e4e4"
CHEESE = hex_of(CHEESE_RGB)
ALARM = hex_of(DIFF_RGB)
# Verdict colours (the claims chart, the tables' badges): one per verdict of steer.analysis.verdicts.VERDICTS;
# the chart also writes each verdict as text, so none is told by colour alone.
VERDICT = {
    "holds": "#1a7f37",
    "fails": "#c62828",
    "inconclusive": "#8c8c8c",
    "underpowered": "#e08a00",
    "does not replicate": "#7b3294",  # one sample holds, the other fails: as loud as a failure, told apart from it
    "vacuous": "#c7c7c7",  # nothing to judge (too few mazes, an unmet precondition): paler than inconclusive
}
# Series colours in order, for charts with several (paired charts, bar rows by condition): Tol's bright scheme.
SERIES = ("#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb")
# Signed values (a heat map of effects): blue below zero, white at zero, red above.
DIVERGING = LinearSegmentedColormap.from_list("steer-diverging", ["#2166ac", "#ffffff", "#b2182b"])

WIDTH_IN = 6.4  # one column of a paper at 150 dpi: 960 px, about the width of the maze figures
PANEL_IN = (3.2, 2.4)  # one small multiple

RC: dict[str, Any] = {
    # DejaVu Sans ships with matplotlib: the same glyphs, hence the same pixels, on every machine.
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "axes.edgecolor": INK,
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": GRID,
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "xtick.color": INK,
    "ytick.color": INK,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "text.color": INK,
    "svg.fonttype": "none",  # text stays text in an SVG: a paper's editor can restyle it
    "pdf.fonttype": 42,  # TrueType in PDFs, as journals ask
}


@contextmanager
def styled() -> Iterator[None]:
    """steer's rcParams for the figures and axes made inside (matplotlib reads most of them at creation)."""
    with rc_context(RC):
        yield


def new_figure(width: float = WIDTH_IN, height: float = 3.2) -> Figure:
    """An empty figure in steer's style, laid out by matplotlib's constrained layout (no clipped labels)."""
    with styled():
        return Figure(figsize=(width, height), layout="constrained")


__all__ = [
    "ALARM",
    "BAND",
    "BASELINE",
    "CHEESE",
    "DIVERGING",
    "GRID",
    "INK",
    "LINE",
    "PANEL_IN",
    "RC",
    "SERIES",
    "VERDICT",
    "WIDTH_IN",
    "hex_of",
    "new_figure",
    "styled",
]
