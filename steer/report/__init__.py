"""Figures and pages: field figures, charts, captions, behaviour and composition figures, HTML reports.

Modules: `render` (maze panels and field figures, Pillow), `charts/` (matplotlib charts: bands, matrices, bar and
interval rows, paired charts, each a function returning a Figure), `style` (their one look), `figures` (saving a
figure in the spec's formats), `captions`, `behaviour_figs` (occupancy maps, episode GIFs), `compose_figs` and
`transfer_figs` (compose-map's and transfer's charts from their report bodies), `retarget_figs`, `html` and
`html_tables` (report.html and summary.html from `templates/`, Jinja2).

Imports: `steer.analysis`, `steer.net`, `steer.maze` and the foundation. It draws results; it runs nothing.
"""
