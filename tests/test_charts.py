"""The charts' one look, apart from any study: a maze square and a chart cell of equal value get the same colour,
drawing a chart leaves a notebook's own matplotlib settings as they were, and the gallery lists every figure with
the formats written beside it. Each chart's numbers are tested on a real run in its study's tests (test_studies,
test_dose, test_compmap, test_mean_compare, ...)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest

from steer.report import gallery
from steer.report.charts import heatmap
from steer.report.figures import save_figure
from steer.report.render import diverging
from steer.report.style import DIVERGING


def test_maze_squares_and_chart_cells_share_the_diverging_colours() -> None:
    limit = 0.8
    for value in np.linspace(-1.2, 1.2, 49):  # past the limit too: both clip
        square = np.array(diverging(float(value), limit))
        cell = np.array(DIVERGING(0.5 + 0.5 * np.clip(value / limit, -1, 1))[:3]) * 255
        assert np.abs(square - cell).max() <= 2.5, value  # the colour map's 256 steps, rounding


def test_a_chart_leaves_the_callers_settings_alone() -> None:
    before = dict(matplotlib.rcParams)
    with matplotlib.rc_context({"font.size": 17, "axes.grid": False}):
        fig = heatmap("t", ["a", "b"], ["x"], [[0.5], [-0.25]])
        assert matplotlib.rcParams["font.size"] == 17
    ax = fig.axes[0]
    assert {t.get_fontsize() for t in ax.get_yticklabels()} == {8.0}  # steer's style inside the figure
    assert dict(matplotlib.rcParams) == before


def test_the_gallery_lists_each_figure_with_its_formats_and_tiles_it(tmp_path: Path) -> None:
    runs = tmp_path / "gallery"
    for run in ("one", "two"):
        (runs / run).mkdir(parents=True)
    save_figure(heatmap("t", ["a"], ["x"], [[0.5]]), runs / "one" / "heat.png", ("png", "svg", "pdf"))
    save_figure(heatmap("t", ["a"], ["x"], [[0.5]]), runs / "two" / "plain.png")
    found = gallery.entries(runs)
    assert [(e.path.as_posix(), e.formats) for e in found] == [
        ("one/heat.png", ("png", "svg", "pdf")),
        ("two/plain.png", ("png",)),
    ]
    sheet = gallery.contact_sheet(runs, found)
    assert sheet.size == (gallery.COLUMNS * gallery.TILE[0], gallery.TILE[1] + gallery.LABEL)  # one row of two
    page = f"intro\n{gallery.START}\nold list\n{gallery.END}\nafter\n"
    new = gallery.replace_block(page, gallery.listing(found))
    assert "old list" not in new and "| `one` | `heat` | png, svg, pdf |" in new and new.endswith("after\n")
    with pytest.raises(ValueError, match="one <!-- gallery:start -->"):
        gallery.replace_block("a page without the block", "x")
