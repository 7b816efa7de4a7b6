"""`steer discover`'s screen: every candidate measured on one maze beside its control and the floor
(`screen_maze`), each candidate's score, its interval and detectable effect, and the choice of what goes on to
be confirmed. A module of its own (beside `steer.analysis.discover`, whose candidates and effects it
reads) because the screen only chooses: its numbers are never a verdict, which is `discover_confirm`'s job.

The screen ranks candidates by their largest mean |change − the random control's change| of a probability or
share (P(reach the cheese), P(visit a region), the share of time in a region) less the same for the null floor
(an unrelated maze's vector scaled to the candidate's norm); that effect, with its sign, becomes the
candidate's claim. Beside the score each candidate gets the 95% BCa interval over the screen's mazes of its
per-maze (change − control) on that effect, in the claimed direction, and the smallest effect that n detects
with 80% power (`steer.analysis.stats.min_detectable_effect`). The screen is optimistic by construction (the
effect and its sign are picked on the same mazes), so its interval only chooses what goes on, never a verdict.
The top k families by their best candidate go on to be confirmed, and so does every family whose best
candidate's screen interval lies wholly above the margin (`choose`); every family, confirmed or not, gets a
plain statement of what the search says of it at the power it had (`steer.analysis.discover_answer`): not
finding a family's effect at the screen's n is not its absence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from steer.analysis.controls import random_seed
from steer.analysis.discover import (
    EFFECTS,
    PROBABILITIES,
    SCREEN_KINDS,
    Candidate,
    Measuring,
    ScreenKey,
    Settings,
    control_vector,
    exact_numbers,
    family_pairs,
    fields_by_key,
    interval_summary,
    level_for,
    mean_or_none,
    minus_or_none,
    pair_vectors,
    screen_passes,
    screen_records,
)
from steer.analysis.stats import min_detectable_effect
from steer.analysis.verdicts import MIN_MAZES, verdict
from steer.maze.families import Empty, Pair, regions
from steer.net.vfield import FacingField, Patch, facing_inputs

# -- one maze ---------------------------------------------------------------------------------------------

# The reason a crumbling candidate was passed over begins with this (`choose` with `crumble`)
CRUMBLES = "rejected: crumbles the policy on the screen's mazes"


def _screen_passes(
    vectors: Mapping[str, Mapping[str, torch.Tensor]], layer: str, coeffs: Sequence[float], noise_seed: int
) -> list[tuple[ScreenKey, list[Patch]]]:
    """The patched passes at one layer, by key: each family's own vector beside its control (one random direction
    per maze and layer, scaled to its norm) and, where the unrelated-maze null has a member here, that maze's
    vector scaled to its norm (the floor), at every coefficient."""
    other = vectors.get("null:other_maze")
    floor = other[layer] if other is not None else None
    passes: list[tuple[ScreenKey, list[Patch]]] = []
    for name, v in vectors.items():
        control = control_vector(layer, v[layer], noise_seed, None)
        passes += screen_passes(name, layer, v[layer], control, floor, coeffs)
    return passes


def screen_maze(
    m: Measuring, seed: int, target: str, families: Sequence[str], layers: Sequence[str], coeffs: Sequence[float]
) -> dict[str, dict[str, Any]]:
    """Every candidate of `families` on one maze with the cheese kept or removed (`target`), beside its control and
    floor: {effects, controls, floors}, each by candidate key, the rounded changes of every effect; `empty`, by
    family (its name, with "(cheese removed)" for `remove`), why it has no member here."""
    level = level_for(m.renderer, seed, target)
    pairs = family_pairs(m.renderer, seed, target, families)
    built = {name: p for name, p in pairs.items() if isinstance(p, Pair)}
    vectors = dict(zip(built, pair_vectors(m.policy, m.renderer, list(built.values()), layers), strict=True))
    inputs = facing_inputs(m.renderer, level, m.device)
    regs = regions(level)
    noise_seed = random_seed(m.control_seed, seed)
    out: dict[str, dict[str, Any]] = {kind: {} for kind in SCREEN_KINDS}
    before: dict[str, float | None] | None = None
    base: FacingField | None = None
    for layer in layers:
        passes = _screen_passes(vectors, layer, coeffs, noise_seed)
        original, fields = fields_by_key(m.policy, inputs, passes, m.batch_size)
        if base is None:  # every layer's changes are from the first pass's original
            base, before = original, exact_numbers(original, regs)
        assert before is not None
        screen_records(out, fields, base, before, regs, layer, target)
    suffix = "" if target == "keep" else " (cheese removed)"
    out["empty"] = {name + suffix: p.reason for name, p in pairs.items() if isinstance(p, Empty)}
    return out


# -- the screen's table ------------------------------------------------------------------------------------


def _beyond_control(have: Sequence[Mapping[str, Any]], key: str, what: str) -> dict[str, float | None]:
    """Mean over mazes of `what`'s change (a candidate's own, or its floor's) minus its random control's."""
    pairs = [(m.get(what, {}).get(key), m["controls"][key]) for m in have]
    return {
        name: mean_or_none([minus_or_none(x[name], c[name]) for x, c in pairs if x is not None])
        for name in PROBABILITIES
    }


def _signed_beyond(have: Sequence[Mapping[str, Any]], key: str, primary: str, sign: int) -> np.ndarray:
    """Per maze, sign × (the candidate's change − its random control's) of `primary`: the screen's effect in its
    claimed direction, maze by maze (the values its interval and its detectable effect are of)."""
    d = [minus_or_none(m["effects"][key].get(primary), m["controls"][key].get(primary)) for m in have]
    return np.array([sign * v for v in d if v is not None], dtype=np.float64)


def screen_table(candidates: Sequence[Candidate], mazes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per candidate: its mean change of every effect over the screen's mazes where the family has a member; per
    probability or share, its mean change beyond its random control (`beyond`) and the unrelated-maze floor's
    (`floor`: the other maze's vector scaled to the candidate's norm, beyond the same control); its score, the
    largest |beyond| − |floor| (what the confirm stage asks of it: clear the control and the floor), and that
    effect with the sign of its change beyond the control (its claim); the 95% BCa interval over mazes of that
    effect beyond the control in the claimed direction (`screen_interval`, what `choose` reads) and the smallest
    effect its n detects with 80% power (`detectable`)."""
    rows = []
    for cand in candidates:
        have = [m for m in mazes if m["effects"].get(cand.key) is not None]
        per = [m["effects"][cand.key] for m in have]
        means = {name: mean_or_none([p[name] for p in per]) for name in EFFECTS}

        beyond, floor = _beyond_control(have, cand.key, "effects"), _beyond_control(have, cand.key, "floors")
        specific = {name: abs(v) - abs(floor[name] or 0.0) for name, v in beyond.items() if v is not None}
        score, primary = max(((v, k) for k, v in specific.items()), default=(0.0, None))
        sign = None if primary is None or not beyond[primary] else (1 if beyond[primary] > 0 else -1)
        d = _signed_beyond(have, cand.key, primary, sign) if primary is not None and sign is not None else None
        rows.append(
            {
                **cand.to_json(),
                "candidate": cand.key,
                "mazes": len(per),
                "mean_change": means,
                "mean_change_beyond_control": beyond,
                "floor_beyond_control": floor,
                "score": score,
                "primary": primary,
                "sign": sign,
                "screen_interval": None if d is None else interval_summary(d),
                "detectable": None if d is None else min_detectable_effect(d),
            }
        )
    return rows


def _interval_text(summary: Mapping[str, Any] | None) -> str:
    """'[+0.120, +0.410] (n 16)' of a summary in the claimed direction; 'no interval (n 1)' without one."""
    if summary is None:
        return "no interval (n 0)"
    ci = summary["mean_ci"]
    shown = "no interval" if ci is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"
    return f"{shown} (n {summary['n']})"


def clears_margin(row: Mapping[str, Any], margin: float) -> bool:
    """Whether a screened candidate's interval of (change − control), in its claimed direction, lies wholly above
    the margin: the one verdict rule (`steer.analysis.verdicts.verdict`), so fewer than 5 mazes never do."""
    summary = row.get("screen_interval")
    return summary is not None and verdict(summary, {"above": margin}) == "holds"


def crumbles_in_screen(row: Mapping[str, Any], settings: Settings | None) -> str | None:
    """Why a screened candidate crumbles the policy on the screen's mazes (its mean rise of P(move into a wall) or of
    the action entropy reaches the threshold the confirm stage fails it at), or None: it does not, or `settings` is
    None (a screen that keeps crumbling candidates)."""
    if settings is None:
        return None
    change = row["mean_change"]
    wall, entropy = change.get("wall_mass"), change.get("entropy")
    said = []
    if wall is not None and wall >= settings.crumble_wall:
        said.append(f"P(move into a wall) up {wall:.3f} >= {settings.crumble_wall:g}")
    if entropy is not None and entropy >= settings.crumble_entropy:
        said.append(f"entropy up {entropy:.3f} >= {settings.crumble_entropy:g} nats")
    return "; ".join(said) or None


def _best_per_family(
    rows: Sequence[dict[str, Any]], exclude: Sequence[str], crumble: Settings | None
) -> dict[str, dict[str, Any]]:
    """Each family's best row by score (ties by name), the nulls (`exclude`), rows with no effect to measure and,
    given `crumble`, rows that crumble the policy on the screen's mazes left out; every row's `rank` reset to
    None."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        row["rank"] = None
        if row["family"] in exclude or row["primary"] is None or row["sign"] is None:
            continue
        if crumbles_in_screen(row, crumble) is not None:
            continue
        have = best.get(row["family"])
        if have is None or (row["score"], have["candidate"]) > (have["score"], row["candidate"]):
            best[row["family"]] = row
    return best


def _below_cut(row: Mapping[str, Any], families: int, top_k: int, cut: float, margin: float) -> str:
    """Why a family's best row was not chosen: its score below the top k's cut, and its screen interval not wholly
    above the margin (or too few mazes to clear it)."""
    n = (row.get("screen_interval") or {}).get("n", 0)
    decides = (
        f"does not lie wholly above the margin {margin:g}"
        if n >= MIN_MAZES
        else f"cannot clear the margin at n {n} (fewer than {MIN_MAZES} mazes)"
    )
    return (
        f"rejected: rank {row['rank']} of {families} families, score {row['score']:.3f} below the top "
        f"{top_k}'s cut ({cut:.3f}), and its screen interval of change − control in its claimed direction "
        f"{_interval_text(row.get('screen_interval'))} {decides}"
    )


def choose(
    rows: Sequence[dict[str, Any]],
    top_k: int,
    exclude: Sequence[str],
    margin: float,
    crumble: Settings | None = None,
) -> list[dict[str, Any]]:
    """The candidates the confirm stage judges, one per family (its best by score, ties by name): the families'
    top k by that score, then every other family whose best candidate's screen interval lies wholly above the
    margin (`clears_margin`: a screen that already excludes the margin must not be cut off by the top k), in
    rank order. The nulls (`exclude`) are never chosen. Given `crumble` (the spec's `skip_crumbling`), a
    candidate that crumbles the policy on the screen's mazes is never its family's best: a vector that moves the
    agent only by breaking it would fail the confirm stage anyway, and would take the place of the family's
    strongest candidate that steers. Every row gets the reason it was or was not chosen (`screen`); each
    family's best row gets its family's rank (`rank`; None on every other row)."""
    best = _best_per_family(rows, exclude, crumble)
    ranked = sorted(best.values(), key=lambda r: (-r["score"], r["candidate"]))
    for rank, row in enumerate(ranked, start=1):
        row["rank"] = rank
    top = ranked[:top_k]
    beyond = [r for r in ranked[top_k:] if clears_margin(r, margin)]
    cut = top[-1]["score"] if len(top) == top_k else None
    keys = {r["candidate"] for r in top}
    extra = {r["candidate"] for r in beyond}
    families = len(ranked)
    for row in rows:
        iv = _interval_text(row.get("screen_interval"))
        if row["candidate"] in keys:
            row["screen"] = f"chosen: rank {row['rank']} of {families} families, within the top {top_k}"
        elif row["candidate"] in extra:
            row["screen"] = (
                f"chosen: rank {row['rank']} of {families} families, beyond the top {top_k}, because its screen "
                f"interval of change − control in its claimed direction {iv} lies wholly above the margin {margin:g}"
            )
        elif row["family"] in exclude:
            row["screen"] = "null family: measured beside every candidate, never chosen"
        elif row["primary"] is None or row["sign"] is None:
            row["screen"] = "rejected: no effect to measure (the family had no member on the screen's mazes)"
        elif (why := crumbles_in_screen(row, crumble)) is not None:
            row["screen"] = f"{CRUMBLES}: {why}"
        elif best.get(row["family"]) is not row:
            row["screen"] = f"rejected: not its family's best candidate ({best[row['family']]['candidate']})"
        else:
            assert cut is not None  # a family's best row not chosen lies below a full top k
            row["screen"] = _below_cut(row, families, top_k, cut, margin)
    return top + beyond


def screen_families(
    rows: Sequence[Mapping[str, Any]], chosen: Sequence[Mapping[str, Any]], exclude: Sequence[str]
) -> list[dict[str, Any]]:
    """Per searched family (the nulls left out), after `choose`: its rank, its best candidate, whether it goes on
    to be confirmed and why (its best row's reason), best-ranked first; families with nothing to rank last."""
    picked = {r["candidate"] for r in chosen}
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = row["family"]
        if name in exclude:
            continue
        entry = out.setdefault(
            name,
            {
                "family": name,
                "rank": None,
                "candidate": None,
                "confirm": False,
                "why": "not confirmed: no effect to measure (the family had no member on the screen's mazes)",
            },
        )
        if entry["rank"] is None and row["screen"].startswith(CRUMBLES):
            entry["why"] = (
                "not confirmed: every candidate with an effect to measure crumbles the policy on the screen's mazes"
            )
        if row.get("rank") is not None:
            confirm = row["candidate"] in picked
            entry.update(
                rank=row["rank"],
                candidate=row["candidate"],
                confirm=confirm,
                why=row["screen"] if confirm else "not confirmed: " + row["screen"].removeprefix("rejected: "),
            )
    return sorted(out.values(), key=lambda e: (e["rank"] is None, e["rank"] or 0, e["family"]))


def null_found_in_screen(screen: Mapping[str, Any]) -> bool:
    """Whether the same-maze null (a zero vector) scored above 0 in the screen (it never should)."""
    return any(r["family"] == "null:same" and r["score"] > 0 for r in screen["candidates"])


__all__ = [
    "CRUMBLES",
    "choose",
    "clears_margin",
    "crumbles_in_screen",
    "null_found_in_screen",
    "screen_families",
    "screen_maze",
    "screen_table",
]
