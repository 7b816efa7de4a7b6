"""One look for every chart steer draws with matplotlib: fonts, colours, sizes.

A chart function builds its figure with `new_figure` and its axes under `styled()`, so a notebook's own
rcParams (a dark theme, a seaborn style) never leak into steer's figures and steer's never leak out. Figures are
made with `matplotlib.figure.Figure` rather than pyplot: no backend or display is needed, nothing is kept in
pyplot's registry (a run that draws a thousand charts frees each when it is saved), and a notebook still shows
one that a cell returns.

The colours are those of the maze panels (steer/report/render.py), so a chart beside a vector field reads as
one figure: arrows and lines in the same navy, cheese in the same yellow, a diverging cell the colour of a maze
square of the same value (`render.diverging`).

Every chart shares the same frame: `heading` puts the title above and the footer (what the marks mean, where
the numbers come from) below, wrapped to the figure's width; `panel_title` gives one panel its bold title and
a grey subtitle; `dashed` draws a reference (the unpatched policy, 0, a threshold); `colour_bar` a scale.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colorbar import Colorbar
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

from steer.report.render import ARROW_RGB, CHEESE_RGB, DIFF_RGB, NA_RGB, NEG_RGB, POS_RGB, TEXT_RGB


def hex_of(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


INK = hex_of(TEXT_RGB)
LINE = hex_of(ARROW_RGB)  # a metric's line, the patched condition
BAND = "#c4d0ec"  # its 25-75% band or interval
BASELINE = "#969696"  # the unpatched reference, dashed
GRID = "#e4e4e4"
CHEESE = hex_of(CHEESE_RGB)
ALARM = hex_of(DIFF_RGB)
MUTED = "#5a5a5a"  # subtitles and footers: read after the data
HIGHLIGHT = "#c85a14"  # the one mark a chart singles out: the default layer, the averaged vector
NA = hex_of(NA_RGB)  # a cell that is undefined
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
DIVERGING = LinearSegmentedColormap.from_list("steer-diverging", [hex_of(NEG_RGB), "#ffffff", hex_of(POS_RGB)])
# Values in [0, 1] (probabilities): white to the diverging scale's blue.
SEQUENTIAL = LinearSegmentedColormap.from_list("steer-sequential", ["#ffffff", hex_of(NEG_RGB)])
DASHES = (0, (4, 3))  # every reference line

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
    # Ticks show the values themselves: an offset ("1e-7 + 1") on a panel whose values barely differ is unreadable,
    # and hides that the effect is tiny.
    "axes.formatter.useoffset": False,
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


def wrap(text: str, width_in: float, size: float, em: float = 0.5) -> str:
    """`text` broken into lines that fit `width_in` inches at font `size`, a character taking `em` of the size
    on average (DejaVu Sans: under 0.5 in these texts, about 0.6 in bold); its own line breaks are kept, and
    names with hyphens are never split."""
    chars = max(20, int(width_in * 72 / (em * size)))
    return "\n".join(
        textwrap.fill(line, chars, break_on_hyphens=False, break_long_words=False) if line else ""
        for line in text.split("\n")
    )


def heading(fig: Figure, title: str, footer: str = "") -> None:
    """The figure's title at its top left and its footer (what the marks mean) at its bottom left, each wrapped
    to the figure's width; constrained layout makes room for both."""
    width = fig.get_figwidth()
    with styled():
        fig.suptitle(wrap(title, width - 0.2, 10, em=0.6), x=0.01, ha="left", fontsize=10, fontweight="bold", color=INK)
        if footer:
            fig.supxlabel(wrap(footer, width - 0.2, 7.5), x=0.01, ha="left", fontsize=7.5, color=MUTED)


def panel_title(ax: Axes, title: str, subtitle: str = "", width_in: float = PANEL_IN[0]) -> None:
    """A panel's bold title at its top left, with a smaller grey subtitle (wrapped to the panel's `width_in`)
    between it and the plot."""
    subtitle = wrap(subtitle, width_in - 0.5, 7.5) if subtitle else ""
    lines = subtitle.count("\n") + 1 if subtitle else 0
    ax.set_title(title, loc="left", fontsize=9, fontweight="bold", color=INK, pad=6 + 10 * lines)
    if subtitle:
        ax.annotate(
            subtitle, (0, 1), xycoords="axes fraction", xytext=(0, 4), textcoords="offset points",
            va="bottom", ha="left", fontsize=7.5, color=MUTED, annotation_clip=False, linespacing=1.1,
        )  # fmt: skip


def dashed(ax: Axes, *, y: float | None = None, x: float | None = None, colour: str = BASELINE) -> None:
    """A dashed reference line across the plot, horizontal at `y` or vertical at `x` (label `_reference`)."""
    style = {"color": colour, "linestyle": DASHES, "linewidth": 1.4, "label": "_reference", "zorder": 1.5}
    if y is not None:
        ax.axhline(y, **style)
    if x is not None:
        ax.axvline(x, **style)


def legend_above(ax: Axes, names: Sequence[str]) -> None:
    """The legend of `ax`'s labelled marks in a block above the plot: two columns for short names, one for long."""
    with styled():
        ncols = 1 if max((len(n) for n in names), default=0) > 28 else 2
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncols=ncols, handlelength=1.0, borderaxespad=0.2)


def colour_bar(
    fig: Figure, mappable: ScalarMappable, ax: Axes | Sequence[Axes], label: str = "", cax: Axes | None = None
) -> Colorbar:
    """A slim colour scale beside `ax` (or in `cax`, where a figure places it by hand), in the charts' ink."""
    with styled():
        if cax is None:
            bar = fig.colorbar(mappable, ax=ax, shrink=0.8, aspect=25, pad=0.02)
        else:
            cax.set_label("<colorbar>")  # as matplotlib names the axes of a colour bar it places itself
            bar = fig.colorbar(mappable, cax=cax)
    bar.outline.set_visible(False)
    bar.ax.tick_params(labelsize=7.5, colors=INK, length=2)
    bar.ax.grid(False)
    if label:
        bar.set_label(label, fontsize=8, color=INK)
    return bar


__all__ = [
    "ALARM",
    "BAND",
    "BASELINE",
    "CHEESE",
    "DASHES",
    "DIVERGING",
    "GRID",
    "HIGHLIGHT",
    "INK",
    "LINE",
    "MUTED",
    "NA",
    "PANEL_IN",
    "RC",
    "SEQUENTIAL",
    "SERIES",
    "VERDICT",
    "WIDTH_IN",
    "colour_bar",
    "dashed",
    "heading",
    "hex_of",
    "legend_above",
    "new_figure",
    "panel_title",
    "styled",
    "wrap",
]
