"""Judging claims: each claim's measure on each sample, judged against its control where it has one, the
verdict by the one rule (steer.analysis.verdicts), the mazes moved, what was left out, Holm over the batch's
findings, and two samples combined. The claims as the batch file states them, and the check that each can
fail, are steer.analysis.claim_specs'; the measures, steer.analysis.claim_measures'.

A measurement is a statistic over mazes with its 95% bootstrap interval (BCa; over transfer pairs a two-way
cluster bootstrap over source and target mazes; for two groups of different mazes a two-group bootstrap).
Beside the verdict each row gives the minimum detectable effect at its n (80% power), the per-maze
steerability (the fractions of mazes moved the claimed way, the opposite way and not at all, with Wilson
intervals, and the control's), what was left out and why, and Holm-adjusted p-values over the batch's findings
(the sanity checks are not in that family).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steer.analysis.claim_measures import beyond_control, measure, summarise
from steer.analysis.claim_specs import Claim, experiments_of, null_value
from steer.analysis.claim_types import ClaimRow, Criterion, Summary
from steer.analysis.metrics import fmt
from steer.analysis.stats import holm, proportion
from steer.analysis.verdicts import combined_verdict, describe_criterion, underpowered_reason, verdict

# A maze whose change is smaller than this, in absolute value, counts as unmoved in the steerability fractions
# (the metrics claims measure changes of are probabilities).
UNMOVED = 0.01


# -- judging ---------------------------------------------------------------------------------------


def steerability(result: Summary | None, criterion: Criterion) -> dict[str, Any] | None:
    """For a paired change: the fractions of mazes moved the claimed way, the opposite way and not at all (a
    change under UNMOVED), each with its Wilson interval. The claimed way is the criterion's side (above: up,
    below: down); a `within` claim claims no direction, so its mazes are counted up and down."""
    if result is None or not result.get("paired"):
        return None
    x = np.array(result["per_maze"], dtype=np.float64)
    up, down = int(np.sum(x > UNMOVED)), int(np.sum(x < -UNMOVED))
    n = len(x)
    claimed = "up" if "above" in criterion else "down" if "below" in criterion else None
    counts = {"up": up, "down": down}
    if claimed is None:
        moved = {"up": proportion(up, n), "down": proportion(down, n)}
    else:
        other = "down" if claimed == "up" else "up"
        moved = {"claimed_way": proportion(counts[claimed], n), "opposite_way": proportion(counts[other], n)}
    return {"claimed": claimed, **moved, "unmoved": proportion(n - up - down, n), "unmoved_below": UNMOVED}


def steerability_text(st: Mapping[str, Any] | None) -> str:
    """ "moved the claimed way 0.91 [0.80, 0.96], the opposite way 0.02, unmoved 0.07 (n 53)", or "—"."""
    if st is None:
        return "—"

    def part(p: Mapping[str, Any], name: str, ci: bool = False) -> str:
        shown = fmt(p["fraction"], 2)
        return f"{name} {shown} [{p['ci'][0]:.2f}, {p['ci'][1]:.2f}]" if ci and p["ci"] else f"{name} {shown}"

    if st["claimed"] is None:
        moved = f"{part(st['up'], 'up')}, {part(st['down'], 'down')}"
    else:
        moved = f"{part(st['claimed_way'], 'claimed way', True)}, {part(st['opposite_way'], 'opposite')}"
    return f"{moved}, unmoved {fmt(st['unmoved']['fraction'], 2)} (n {st['unmoved']['n']})"


def excluded_text(result: Summary | None) -> str:
    """ "; 47 left out: p_cheese_ds undefined (e.g. no decision square) 47", or "" when none was."""
    excluded = (result or {}).get("excluded") or {}
    flat = (result or {}).get("flat")
    parts = [f"{k} {v}" for k, v in excluded.items()]
    text = f"; {sum(excluded.values())} left out: {', '.join(parts)}" if parts else ""
    return text + (f"; {flat} flat (rho 0)" if flat else "")


def shown_text(result: Summary | None, stat: str = "mean") -> str:
    if result is None:
        return "—"
    ci = result.get(f"{stat}_ci")
    interval = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
    n = f"n {result.get('n', 0)}" if not result.get("n_groups") else "n " + " and ".join(map(str, result["n_groups"]))
    p = f", Wilcoxon p {result['wilcoxon_p']:.2g}" if result.get("wilcoxon_p") is not None else ""
    p += f", Mann-Whitney p {result['mann_whitney_p']:.2g}" if result.get("mann_whitney_p") is not None else ""
    return f"{stat} {fmt(result.get(stat), 3)}{interval} ({n}{p}{excluded_text(result)})"


def evaluate(claims: Sequence[Claim], out: Path) -> list[ClaimRow]:
    """Every claim's measurement, control, precondition and verdict, from the experiments' metrics.json."""
    names = set()
    for c in claims:
        names |= experiments_of(c)
    reports = {name: json.loads((out / name / "metrics.json").read_text()) for name in sorted(names)}
    rows = [_judge(reports, claim) for claim in claims]
    _add_holm(rows)
    return rows


def _judge(reports: Mapping[str, Any], claim: Claim) -> ClaimRow:
    stat = claim.criterion.get("statistic", "mean")
    effect = measure(reports, claim.measure)
    control = measure(reports, claim.control) if claim.control else None
    judged = beyond_control(reports, claim.measure, claim.control) if claim.against_control else effect
    got = verdict(judged, claim.criterion)
    why = met = ""
    if claim.precondition is not None:
        pre = measure(reports, claim.precondition["measure"])
        pre_stat = claim.precondition["criterion"].get("statistic", "mean")
        pre_text = (
            f"{claim.precondition.get('reason', '')} "
            f"({describe_criterion(claim.precondition['criterion'])}; measured {shown_text(pre, pre_stat)})"
        )
        if verdict(pre, claim.precondition["criterion"]) != "holds":
            got = "vacuous"
            why = f"precondition not met: {pre_text}"
        else:
            met = f"; precondition met: {pre_text}"  # shown too, so a reader sees how far from failing it was
    if got == "vacuous" and not why:
        why = f"fewer than {claim.criterion.get('min_n', 5)} mazes to measure"
    if got == "underpowered":
        why = underpowered_reason(judged[f"{stat}_ci"], claim.criterion)
    shown = shown_text(judged, stat)
    if claim.against_control:
        shown = f"beyond the control: {shown}; the effect itself {shown_text(effect, stat)}"
    shown += met
    steer_of, control_steer = steerability(effect, claim.criterion), steerability(control, claim.criterion)
    return {
        "id": claim.id,
        "post": claim.post,
        "setting": claim.setting,
        "extra_setting": claim.extra,
        "sanity": claim.sanity,
        "criterion": describe_criterion(claim.criterion),
        "judged_on": "the measure minus its control, per maze" if claim.against_control else "the measure",
        "null": null_value(claim),
        "statistic": stat,
        "measured": judged,
        "effect": effect if claim.against_control else None,
        "shown": shown,
        "control": control,
        "control_role": claim.control_role if claim.control else None,
        "control_shown": shown_text(control, stat) if control else "—",
        "steerability": steer_of,
        "steerability_shown": steerability_text(steer_of),
        "control_steerability": control_steer,
        "control_steerability_shown": steerability_text(control_steer),
        "mde": judged.get("mde"),
        "verdict": got,
        "why": why,
        "expect": claim.expect,
        "as_expected": claim.expect is None or claim.expect == got,
        "figures": list(claim.figures),
    }


SAMPLE_FIELDS = (
    "measured",
    "effect",
    "shown",
    "control",
    "control_shown",
    "steerability",
    "steerability_shown",
    "control_steerability",
    "control_steerability_shown",
    "mde",
    "wilcoxon_p_holm",
    "verdict",
    "why",
)


def replicated(discovery: list[ClaimRow], replication: list[ClaimRow]) -> list[ClaimRow]:
    """Each claim's rows from the two samples as one: both samples side by side, the pooled estimate (every maze
    of both samples), and the combined verdict; `expect` is checked against the combined verdict."""
    out = []
    for d, r in zip(discovery, replication, strict=True):
        stat = d["statistic"]
        row = {k: v for k, v in d.items() if k not in SAMPLE_FIELDS}
        row["discovery"] = {k: d[k] for k in SAMPLE_FIELDS}
        row["replication"] = {k: r[k] for k in SAMPLE_FIELDS}
        pooled_values = np.array(d["measured"].get("per_maze", []) + r["measured"].get("per_maze", []))
        if len(pooled_values):
            pooled = summarise(pooled_values, None)
            pooled.pop("per_maze")
            row["pooled"] = {"measured": pooled, "shown": shown_text(pooled, stat)}
        else:  # a reported number or two groups have no per-maze values to pool: each sample's own stands
            row["pooled"] = {"measured": None, "shown": "— (each sample's own: no per-maze values to pool)"}
        verdict_, why = combined_verdict(d["verdict"], r["verdict"])
        reasons = [f"{name}: {x['why']}" for name, x in (("discovery", d), ("replication", r)) if x["why"]]
        row["verdict"], row["why"] = verdict_, "; ".join([why, *reasons]) if why else "; ".join(reasons)
        row["as_expected"] = d["expect"] is None or d["expect"] == verdict_
        # Where a reader of one sample's keys looks (the console, JUnit, the control column): both samples' texts,
        # and the discovery sample's numbers.
        row.update({k: d[k] for k in SAMPLE_FIELDS if k not in ("shown", "steerability_shown", "verdict", "why")})
        row["shown"] = f"discovery {d['shown']}; replication {r['shown']}"
        row["steerability_shown"] = f"discovery {d['steerability_shown']}; replication {r['steerability_shown']}"
        out.append(row)
    return out


def _add_holm(rows: list[ClaimRow]) -> None:
    """Holm-adjusted p-values over every finding of the batch that has a paired test: the family is the batch's
    claims, less its sanity checks (which are not findings)."""
    tested = [r for r in rows if r["measured"].get("wilcoxon_p") is not None and not r["sanity"]]
    for r, p in zip(tested, holm([r["measured"]["wilcoxon_p"] for r in tested]), strict=True):
        r["wilcoxon_p_holm"] = p
    for r in rows:
        r.setdefault("wilcoxon_p_holm", None)


def two_samples(rows: Sequence[ClaimRow]) -> bool:
    """Whether the rows were judged on a discovery and a replication sample (`replicated`)."""
    return bool(rows) and "replication" in rows[0]


__all__ = [
    "UNMOVED",
    "evaluate",
    "replicated",
    "shown_text",
    "steerability",
    "two_samples",
]
