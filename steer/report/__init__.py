"""Figures and pages: field figures, charts, captions, behaviour and composition figures, HTML reports.

Modules: `render` (field figures), `charts` (bar, line, interval and heat-map charts), `captions`,
`behaviour_figs` (occupancy maps, episode GIFs), `compose_figs` (compose-map's per-site maps), `html` and
`html_tables` (report.html and summary.html from `templates/`, Jinja2).

Imports: `steer.analysis`, `steer.net`, `steer.maze` and the foundation. It draws results; it runs nothing.
"""
