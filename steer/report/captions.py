"""Captions and panels the studies' figures share: what a panel's headline number is, and the diff panel."""

from __future__ import annotations

from typing import Any

from steer.analysis.metrics import fmt, mean_tv
from steer.maze.layout import Maze
from steer.net.vfield import VectorField
from steer.report.render import Panel

DIFF_RGB = (200, 30, 40)  # arrows of a difference field


def headline(maze: Maze, m: dict[str, Any], side: str) -> str:
    """The caption number of a panel: P(cheese | decision square) where the maze has one."""
    if m["decision_square"] is not None:
        return f"P(cheese | ds) {fmt(m['p_cheese_ds'][side])}"
    if maze.cheese is not None:
        return f"P(to cheese) {fmt(m['p_toward_cheese'][side])}"
    return f"P(to top-right) {fmt(m['p_toward_top_right'][side])}"


def diff_panel(original: VectorField, patched: VectorField, caption: str | None = None) -> Panel:
    """Patched − original arrows, captioned with the mean TV distance unless told otherwise."""
    text = caption or f"difference (patched - original)\nmean TV distance {mean_tv(original, patched):.2f}"
    return Panel(original.maze, original.positions, patched.arrows - original.arrows, text, color=DIFF_RGB)
