"""What `steer discover` can say of each family it searched, at the power it had, and its answer to "more than
the cheese and top-right vectors?". A module of its own (beside `steer.analysis.discover`) because it reads both
stages' results, the screen's rows (`steer.analysis.discover_screen`) and the confirm stage's verdicts
(`steer.analysis.discover_confirm`), and states them: not finding a family's effect at the screen's n is not its
absence, so every statement gives the n and the smallest effect it detects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from steer.analysis.discover import KNOWN_FAMILIES, LABELS, record, sign_of
from steer.analysis.discover_features import FACTOR, is_feature
from steer.analysis.verdicts import SAMPLES
from steer.maze.families import FAMILIES

STATUS_ORDER = ("found", "does not replicate", "inconclusive", "underpowered", "fails", "vacuous")
NOT_FOUND = "not found at this power"  # a family the screen ranked but did not send on to be confirmed
NOT_TESTED = "not tested"  # a family with no effect to measure on the screen's mazes


def effect_text(rec: Mapping[str, Any] | None) -> str:
    """'+0.031 [-0.010, +0.080]' of a {value, ci} record; '—' without a value."""
    if rec is None or rec.get("value") is None:
        return "—"
    ci = rec.get("ci")
    return f"{rec['value']:+.3f}" + ("" if ci is None else f" [{ci[0]:+.3f}, {ci[1]:+.3f}]")


def detectable_text(x: float | None) -> str:
    return "— (fewer than 3 mazes, or no spread)" if x is None else f"{x:.3f}"


def _screen_summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """A screened candidate as the family table shows it: its effect beyond the control as the change itself
    (a {value, ci, n} record, signed), and the smallest effect its n detects with 80% power."""
    sign = row["sign"]
    return {
        "candidate": row["candidate"],
        "target": row["target"],
        "layer": row["layer"],
        "coeff": row["coeff"],
        "moves": LABELS[row["primary"]],
        "primary": row["primary"],
        "direction": "up" if sign > 0 else "down",
        "score": row["score"],
        "effect_beyond_control": record(row["screen_interval"], sign),
        "detectable": row["detectable"],
    }


def _not_new(name: str) -> str | None:
    """Why a found family is not a new X-vector, or None when it would be."""
    if is_feature(name):
        return "a dictionary feature, not a pair of maze edits; counted among the features"
    if name in KNOWN_FAMILIES:
        return f"{name} is a known vector's own pair (a rediscovery)"
    if FAMILIES[name].relative:
        return FAMILIES[name].relation or f"a relative of the {FAMILIES[name].relative} vector"
    return None


def _best_by_target(screened: Sequence[Mapping[str, Any]], name: str, targets: Sequence[str]) -> dict[str, Any]:
    """A family's best screened candidate with the cheese kept and with it removed (`targets`), as the family table
    shows it; None for a target where no candidate moved anything beyond its control (or had no member)."""
    by_target: dict[str, dict[str, Any] | None] = {}
    for target in targets:
        have = [
            r
            for r in screened
            if r["family"] == name and r["target"] == target and r["primary"] is not None and r["sign"] is not None
        ]
        by_target[target] = _screen_summary(min(have, key=lambda r: (-r["score"], r["candidate"]))) if have else None
    return by_target


def _confirm_summary(j: Mapping[str, Any]) -> dict[str, Any]:
    """A confirmed family's judged row as the family table shows it: its changes and changes beyond the control on
    both samples as records, and the smallest effect each sample's n detects."""
    sign = sign_of(j)
    return {
        "candidate": j["candidate"],
        "role": j["role"],
        "status": j["status"],
        "why": j["why"],
        **{s: record(j[s]["effect"], sign) for s in SAMPLES},
        **{f"{s}_vs_control": record(j[s]["effect_minus_control"], sign) for s in SAMPLES},
        "detectable": {s: j[s]["effect_minus_control"]["detectable"] for s in SAMPLES},
    }


def _status_statement(
    f: Mapping[str, Any],
    screen: Mapping[str, Any] | None,
    j: Mapping[str, Any] | None,
    confirm: Mapping[str, Any] | None,
) -> tuple[str, str]:
    """A family's status and its statement in a line: `not tested` without a screen row; `not found at this power`
    with the screen's effect, n and detectable effect when not confirmed (`j` None); else the confirm verdict with
    the replication's."""
    if screen is None:
        return NOT_TESTED, "not tested: " + f["why"].removeprefix("not confirmed: ")
    if j is None or confirm is None:
        e = screen["effect_beyond_control"]
        return NOT_FOUND, (
            f"{NOT_FOUND} (not confirmed; screen rank {f['rank']}): screen effect beyond control "
            f"{effect_text(e)} on {screen['moves']} (n {e['n']}), detectable at this n: "
            f"{detectable_text(screen['detectable'])}"
        )
    status = j["status"]
    rep = confirm["replication_vs_control"]
    measured = (
        f"replication effect beyond control {effect_text(rep)} on {LABELS[j['primary']]} (n {rep['n']}), "
        f"detectable at this n: {detectable_text(confirm['detectable']['replication'])}"
    )
    if status != "found":
        return status, f"confirmed, {status} ({j['why'] or j['verdict_said']}): {measured}"
    note = _not_new(f["family"])
    return status, f"found ({note}, not new): {measured}" if note else f"found, new: {measured}"


def family_table(
    screened: Sequence[Mapping[str, Any]], families: Sequence[Mapping[str, Any]], judged: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """One entry per searched family, in the screen's rank order: what the search can say of it at the power it
    had. `screened`: the screen's rows after `choose`; `families`: `screen_families`; `judged`: the confirm
    stage's rows after `final_verdicts`. Its status is `found` or the confirm verdict when it was confirmed, else
    `not found at this power` (the screen's effect beyond the control, its interval and n, and the smallest
    effect that n detects: not finding is not absence), or `not tested`; `statement` says it in a line."""
    rows = {r["candidate"]: r for r in screened}
    by_key = {j["candidate"]: j for j in judged}
    out: dict[str, dict[str, Any]] = {}
    for f in families:
        name = f["family"]
        feature = is_feature(name)
        fam = None if feature else FAMILIES[name]
        best = rows.get(f["candidate"]) if f["candidate"] else None
        screen = None if best is None else {**_screen_summary(best), "rank": f["rank"]}
        j = by_key.get(f["candidate"]) if f["confirm"] else None
        confirm = None if screen is None or j is None else _confirm_summary(j)
        status, statement = _status_statement(f, screen, j, confirm)
        if feature and screen is None and "crumbles" not in f["why"]:  # screened, nothing moved beyond its control
            statement = (
                f"{NOT_TESTED} beyond the screen: on the screen's mazes its change equals its random control's on "
                "every probability and share of time (no effect to claim)"
            )
        if feature and screen is not None:  # its site is the dictionary's, whatever `layers` lists
            statement = f"at {screen['layer']} (the dictionary's site): {statement}"
        targets = ("keep",) if fam is None else fam.targets
        out[name] = {
            "family": name,
            "factor": FACTOR if fam is None else fam.factor,
            "place": False if fam is None else fam.place,
            "targets": list(targets),
            "rank": f["rank"],
            "status": status,
            "new": status == "found" and _not_new(name) is None,
            "statement": statement,
            "screen": screen,
            "screen_by_target": _best_by_target(screened, name, targets),
            "confirmed": bool(f["confirm"]),
            "confirm_reason": f["why"],
            "confirm": confirm,
        }
    return out


def _families_text(n: int) -> str:
    return f"{n} famil{'y' if n == 1 else 'ies'}"


def answer(families: Mapping[str, Mapping[str, Any]]) -> str:
    """The search's answer to "more than the cheese and top-right vectors?", saying what was tested and at what
    power: what replicated among the families confirmed, and how small an effect the families it did not
    confirm could have had unseen. Never a bare "no": not finding is not absence."""
    rows = [r for name, r in families.items() if not is_feature(name)]
    features = [r for name, r in families.items() if is_feature(name)]
    new = [r for r in rows if r["new"]]
    confirmed = [r for r in rows if r["confirmed"]]
    unseen = [r for r in rows if r["status"] == NOT_FOUND]
    untested = [r for r in rows if r["status"] == NOT_TESTED]
    place = [r for r in rows if r["place"]]
    if not rows:  # a search of dictionary features only
        return "no family of maze edits searched; " + _features_said(features)
    verdicts = ", ".join(f"{k} {s}" for s in STATUS_ORDER if (k := sum(r["status"] == s for r in confirmed)))
    if new:
        said = f"yes: {len(new)} new X-vector{'s' if len(new) != 1 else ''} replicated ("
        said += ", ".join(r["confirm"]["candidate"] for r in new) + ")"
    else:
        said = f"no new X-vector replicated among the {_families_text(len(confirmed))} confirmed"
    said += (
        f" (of {len(rows)} searched, {len(place)} of them place families screened with the cheese kept and removed; "
        f"confirmed: {verdicts or 'none'})"
    )
    old = [r for r in confirmed if r["status"] == "found" and not r["new"]]
    if old:
        said += "; found but not new: " + ", ".join(f"{r['family']} ({_not_new(r['family'])})" for r in old)
    if unseen:
        ns = sorted({r["screen"]["effect_beyond_control"]["n"] for r in unseen})
        at = f"n {ns[0]}" if len(ns) == 1 else f"n {ns[0]}–{ns[-1]}"
        det = sorted(r["screen"]["detectable"] for r in unseen if r["screen"]["detectable"] is not None)
        if det:
            span = f"{det[0]:.3f}" if det[0] == det[-1] else f"{det[0]:.3f}–{det[-1]:.3f}"
            power = f"smallest effects beyond the control detectable at the screen's {at}: {span}"
            if len(det) < len(unseen):
                power += f"; {len(unseen) - len(det)} with too few mazes or no spread to say"
        else:
            power = f"the screen's {at} gives no detectable effect"
        said += f"; {_families_text(len(unseen))} {NOT_FOUND} ({power})"
    if untested:
        said += f"; {len(untested)} not tested (no effect to measure on the screen's mazes)"
    if features:
        said += "; " + _features_said(features)
    return said


def _features_said(features: Sequence[Mapping[str, Any]]) -> str:
    """The features' clause of the answer: how many have an effect beyond their random control that replicates,
    of how many screened and confirmed, and the screen's power for the rest."""
    found = [r["family"] for r in features if r["status"] == "found"]
    confirmed = [r for r in features if r["confirmed"]]
    unseen = [r for r in features if r["status"] == NOT_FOUND]
    said = (
        f"dictionary features: {len(found)} of {len(features)} screened replicate an effect beyond their random "
        f"control ({len(confirmed)} confirmed"
    )
    said += f": {', '.join(found)})" if found else ")"
    det = sorted(r["screen"]["detectable"] for r in unseen if r["screen"]["detectable"] is not None)
    if det:
        said += (
            f", {len(unseen)} {NOT_FOUND} (smallest effects beyond the control detectable at the screen's n: "
            f"{det[0]:.3f}–{det[-1]:.3f})"
        )
    return said


__all__ = [
    "NOT_FOUND",
    "NOT_TESTED",
    "STATUS_ORDER",
    "answer",
    "detectable_text",
    "effect_text",
    "family_table",
]
