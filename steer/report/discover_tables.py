"""`steer discover`'s tables: the ranked table of the candidates judged (`table.md`, and its rows as the report page
shows them) and the per-family table (`families.md`: what the search can say of each family it searched, at the
power it had; `steer.analysis.discover_answer.family_table` makes the entries). Its figures are
`steer.report.discover_figs`; the name repeats along the layers (docs/layout.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from steer.analysis.discover import record, sign_of
from steer.analysis.discover_answer import detectable_text, effect_text
from steer.analysis.metrics import fmt
from steer.analysis.verdicts import SAMPLES

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


def moved_text(st: Mapping[str, Any] | None) -> str:
    """The fractions of mazes moved the claimed way and the opposite way, e.g. '0.83 / 0.00'; '—' without them."""
    if not st:
        return "—"
    return (
        f"{st['claimed_way']['fraction']:.2f} / {st['opposite_way']['fraction']:.2f}"
        if st["claimed_way"]["fraction"] is not None
        else "—"
    )


def _signed(summary: dict[str, Any], sign: int) -> str:
    """A mean and its interval as the change itself (the effect is stored in the claimed direction)."""
    mean, ci = summary["mean"], summary["mean_ci"] or [summary["mean"]] * 2
    low, high = sorted((sign * ci[0], sign * ci[1]))
    return f"{sign * mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def _sample_text(s: dict[str, Any], sign: int) -> str:
    """One sample's cell of the ranked table: the change [95% CI], the same beyond the control, and n."""
    e, d = s["effect"], s["effect_minus_control"]
    if e["mean"] is None:
        return "— (n 0)"
    return f"{_signed(e, sign)}; − control {_signed(d, sign)} (n {e['n']})"


def table_markdown(rows: list[dict[str, Any]]) -> str:
    """The ranked table as Markdown (docs/results.md and the report's table.md)."""
    head = (
        "| # | candidate | pair differs in | moves | status | discovery: change [95% CI]; − control | replication: "
        "change; − control | control (disc.) | null floor (disc. / repl.) | moved claimed / opposite (repl.) | "
        "transfer (repl.) "
        "| crumbles at |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for i, r in enumerate(rows, start=1):
        d, rep = r["discovery"], r["replication"]
        sign = sign_of(r)
        t = rep["transfer"]
        transfer = "—" if not t or t["mean"] is None else f"{sign * t['mean']:+.3f}"
        ctrl = None if d["control"]["mean"] is None else sign * d["control"]["mean"]
        crumbles = "—" if r["crumbles_at"] is None else f"{r['crumbles_at']:g}"
        lines.append(
            f"| {i} | `{r['candidate']}` ({r['role']}) | {r['what']} | {r['moves']} {r['direction']} | "
            f"**{r['status']}**{' — ' + r['why'] if r['why'] else ''} | {_sample_text(d, sign)} | "
            f"{_sample_text(rep, sign)} | "
            f"{fmt(ctrl, 3)} | {d['floor']:.3f} / {rep['floor']:.3f} | {moved_text(rep['steerability'])} | "
            f"{transfer} | {crumbles} |"
        )
    return head + "\n".join(lines) + "\n"


def ranked_row(r: dict[str, Any]) -> dict[str, Any]:
    """One row of the ranked table, as the report page shows it (changes signed; full records in `table`)."""
    sign = sign_of(r)
    out: dict[str, Any] = {
        "candidate": r["candidate"],
        "role": r["role"],
        "moves": f"{r['moves']} {r['direction']}",
        "status": r["status"],
        "why": r["why"],
    }
    for s in SAMPLES:
        e = record(r[s]["effect"], sign)
        out[f"{s} change"] = e["value"]
        out[f"{s} CI"] = e["ci"]
        out[f"{s} minus control"] = record(r[s]["effect_minus_control"], sign)["value"]
        out[f"{s} n"] = e["n"]
    out["null floor"] = r["discovery"]["floor"]
    st = r["replication"]["steerability"]
    out["moved claimed way (repl.)"] = st["claimed_way"]["fraction"] if st else None
    t = r["replication"]["transfer"]
    out["transfer (repl.)"] = None if not t or t["mean"] is None else sign * t["mean"]
    out["crumbles at"] = r["crumbles_at"]
    return out


__all__ = ["families_markdown", "moved_text", "ranked_row", "table_markdown"]
