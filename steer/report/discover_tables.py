"""`steer discover`'s per-family table as Markdown (`families.md`): what the search can say of each family it
searched, at the power it had (`steer.analysis.discover_answer.family_table` makes the entries)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from steer.analysis.discover_answer import detectable_text, effect_text

HEAD = (
    "| rank | family | best screen candidate | moves | screen: change − control [95% CI] (n) | detectable at this n "
    "| best kept; best removed (screen: change − control) | confirmed? | statement |\n"
    "|---|---|---|---|---|---|---|---|---|\n"
)


def _targets_text(by_target: Mapping[str, Mapping[str, Any] | None], place: bool) -> str:
    """A place family's best screen effect beyond the control with the cheese kept and with it removed, each with
    what it moves (the two may move different things)."""
    if not place:
        return "— (kept only)"
    parts = []
    for target, name in (("keep", "kept"), ("remove", "removed")):
        best = by_target.get(target)
        if best is None:
            parts.append(f"{name}: — (no change beyond the control)")
        else:
            shown = effect_text(best["effect_beyond_control"]).split(" [")[0]
            parts.append(f"{name}: {shown} ({best['moves']} {best['direction']})")
    return "; ".join(parts)


def families_markdown(families: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per searched family, in the screen's rank order (families with nothing to rank last)."""
    lines = []
    for name, f in families.items():
        screen = f["screen"]
        if screen is None:
            cells = ["—", "—", "—", "—", "—"]
        else:
            e = screen["effect_beyond_control"]
            cells = [
                f"`{screen['candidate']}`",
                f"{screen['moves']} {screen['direction']}",
                f"{effect_text(e)} ({e['n']})",
                detectable_text(screen["detectable"]),
                _targets_text(f["screen_by_target"], f["place"]),
            ]
        confirmed = f"yes — {f['confirm_reason']}" if f["confirmed"] else f"no — {f['confirm_reason']}"
        rank = "—" if f["rank"] is None else str(f["rank"])
        lines.append(f"| {rank} | `{name}` | {' | '.join(cells)} | {confirmed} | {f['statement']} |")
    return HEAD + "\n".join(lines) + "\n"


__all__ = ["families_markdown"]
