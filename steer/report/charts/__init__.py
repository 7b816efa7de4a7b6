"""The charts of study figures: matplotlib functions that take typed series and return a `Figure`.

Each chart is a function of numbers to a `matplotlib.figure.Figure`, with no file I/O: a study puts it in
`Report.figures` (the runner saves it in the spec's formats, steer/report/figures.py) and a notebook shows
or restyles it. All share one look (steer/report/style.py).

- `bands`: metrics against a shared x, median line over a 25-75% band, small multiples (`band_charts`,
  `BandSeries`): sweeps, behaviour, dose-response, P(reach) by distance.
- `matrix`: matrices with their values written in (`heatmap`: signed effects on a symmetric diverging scale;
  `probability_map`: values in [0, 1] with their n): transfer, dose asymmetry, compose-map, the cheese map.
- `rows`: one row per label (`bar_rows`: layer sweeps, probes; `interval_rows`, `IntervalSeries`: estimates
  with intervals: behaviour-stats, compose-map's depth, retarget's by-distance).
- `paired`: several vectors' effects on each target maze (`paired_chart`): apply's and transfer's comparisons.

The maze panels (vector fields, occupancy, channel and reach maps) are Pillow images: steer/report/render.py.
"""

from steer.report.charts.bands import BandSeries, band_charts, draw_band
from steer.report.charts.matrix import heatmap, probability_map
from steer.report.charts.paired import paired_chart
from steer.report.charts.rows import IntervalSeries, bar_rows, interval_rows

__all__ = [
    "BandSeries",
    "IntervalSeries",
    "band_charts",
    "bar_rows",
    "draw_band",
    "heatmap",
    "interval_rows",
    "paired_chart",
    "probability_map",
]
