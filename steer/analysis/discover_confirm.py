"""`steer discover`'s confirm stage: the claims it judges (`confirm_claims`), each measured on one maze beside its
control, the floor, its transfer source and a coefficient ladder (`confirm_maze`), and judged on two samples the
screen never saw (`judge_claims`). A module of its own (beside `steer.analysis.discover`, whose effects and
records it reads) because its verdicts are the search's findings, decided by rules stated before the run
(`Settings`), never by the screen's numbers.

The confirm stage measures each chosen claim again on mazes the screen never saw: the effect e = sign × change
per maze, the same for a norm-matched random vector at the same layer and coefficient (c), and for the
unrelated-maze null (the floor). On a sample the candidate

- holds when the 95% BCa interval of mean(e − c) lies above the margin, the interval of mean(e) lies above the
  floor (the mean |change| the null moves the same quantity by), and the policy does not crumble at the
  candidate's coefficient (mean wall mass or entropy rising by more than the thresholds);
- fails when the interval of mean(e − c) lies at or below the margin, or it clears the margin but not the
  floor, or the policy crumbles; inconclusive when the interval straddles the margin; underpowered when it
  straddles the margin and its half-width is wider than the precision (direction first: an interval wholly on
  one side of the margin decides whatever its width, `steer.analysis.verdicts.verdict`); vacuous below 5 mazes.

It is found when it holds on both samples (`steer.analysis.verdicts.combined_verdict`), and its Holm-adjusted
Wilcoxon p of e against c stays below 0.05 on both.

A little over 400 lines: a dictionary feature's claim (a fixed vector per maze, `steer.analysis.discover_features`)
takes a branch beside the maze families' in the steps it shares with them; split apart, each step would be read
twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from steer.analysis.claims import steerability
from steer.analysis.controls import random_seed
from steer.analysis.discover import (
    LABELS,
    Candidate,
    Measuring,
    Settings,
    changes,
    control_vector,
    crumble_numbers,
    exact_numbers,
    facing_slice,
    family_pairs,
    fields_by_key,
    interval_summary,
    level_for,
    mean_or_none,
    pair_vectors,
    record,
    rounded,
)
from steer.analysis.discover_features import FeatureFamilies, family_doc, is_feature
from steer.analysis.stats import holm, min_detectable_effect, wilcoxon_p
from steer.analysis.verdicts import MIN_MAZES, SAMPLES, combined_verdict, verdict
from steer.maze.env import MazeRenderer
from steer.maze.families import Empty, Pair, regions
from steer.net.policy import ImpalaPolicy
from steer.net.vfield import DEFAULT_SITE, FacingField, Patch, facing_inputs

LADDER = (1.0, 2.0, 5.0, 10.0, 20.0)  # sizes of the coefficient at which crumbling is looked for


@dataclass(frozen=True)
class Claimed:
    """A candidate the confirm stage judges: the effect it claims (its primary effect and sign) and its role."""

    candidate: Candidate
    primary: str
    sign: int
    role: str  # chosen | known:<name> | null
    source_seed: int | None = None  # the transfer variant's fixed source maze
    source: torch.Tensor | None = field(default=None, repr=False, compare=False)  # its vector at the layer


KNOWN = (
    ("cheese", Candidate("cheese_at:own", DEFAULT_SITE, -1.0, "keep"), "p_reach_cheese", -1),
    ("top_right_kept", Candidate("path:top_right", DEFAULT_SITE, 1.0, "keep"), "time_in_top_right", 1),
    ("top_right_removed", Candidate("path:top_right", DEFAULT_SITE, 1.0, "remove"), "time_in_top_right", 1),
)
NULL_CLAIMS = (
    ("same", Candidate("null:same", DEFAULT_SITE, 1.0, "keep"), "time_in_top_right", 1),
    ("other_maze", Candidate("null:other_maze", DEFAULT_SITE, 1.0, "keep"), "time_in_top_right", 1),
)


# -- the claims ------------------------------------------------------------------------------------------


def transfer_source(
    policy: ImpalaPolicy,
    renderer: MazeRenderer,
    seeds: Sequence[int],
    cand: Candidate,
    features: FeatureFamilies | None = None,
) -> tuple[int | None, torch.Tensor | None]:
    """The first of `seeds` (the screen's mazes) where the candidate's family has a member, and its vector there. A
    feature's vector is the same on every maze unless it sits at each maze's own square (`per_maze`): only then
    has it a transfer, the first screen maze's."""
    if is_feature(cand.family):
        if features is None or not features.per_maze or not seeds:
            return None, None
        return seeds[0], features.vector(cand.family, renderer.level(seeds[0]))[0]
    for seed in seeds:
        pair = family_pairs(renderer, seed, cand.target, (cand.family,))[cand.family]
        if isinstance(pair, Pair):
            return seed, pair_vectors(policy, renderer, [pair], (cand.layer,))[0][cand.layer]
    return None, None


def confirm_claims(
    policy: ImpalaPolicy,
    renderer: MazeRenderer,
    screen: Mapping[str, Any],
    seeds: Sequence[int],
    features: FeatureFamilies | None = None,
) -> tuple[Claimed, ...]:
    """What the confirm stage judges: the screen's chosen candidates (one that is a known answer is judged once,
    as that answer; a feature family's with `features`), the known answers and the nulls; each but the nulls with
    its transfer source among the screen's mazes (`seeds`)."""
    rows = {r["candidate"]: r for r in screen["candidates"]}
    claimed: list[tuple[Candidate, str, int, str]] = []
    known = {cand: name for name, cand, _, _ in KNOWN}
    for key in screen["chosen"]:
        r = rows[key]
        cand = Candidate(r["family"], r["layer"], r["coeff"], r["target"])
        if cand not in known:
            claimed.append((cand, r["primary"], r["sign"], "chosen"))
    claimed += [(cand, primary, sign, f"known:{name}") for name, cand, primary, sign in KNOWN]
    claimed += [(cand, primary, sign, "null") for _, cand, primary, sign in NULL_CLAIMS]
    claims = []
    for cand, primary, sign, role in claimed:
        source_seed, source = (
            transfer_source(policy, renderer, seeds, cand, features) if role != "null" else (None, None)
        )
        claims.append(Claimed(cand, primary, sign, role, source_seed, source))
    return tuple(claims)


# -- one maze ---------------------------------------------------------------------------------------------

# A confirm pass's key: (claim key, what, ladder coefficient); what: own | control | transfer | ladder | floor
ClaimKey = tuple[str, str, float | None]


def _claim_passes(
    c: Claimed, layer: str, v: torch.Tensor, other: torch.Tensor | None, control: torch.Tensor
) -> list[tuple[ClaimKey, list[Patch]]]:
    """One claim's patched passes at its layer, by key: its own vector `v` and its norm-matched random `control` at
    its coefficient, its transfer source's vector, the coefficient ladder (not for the nulls) and the floor, the
    unrelated maze's vector `other` scaled to v's norm (where that maze has a member here)."""
    cand, key = c.candidate, c.candidate.key
    passes: list[tuple[ClaimKey, list[Patch]]] = [
        ((key, "own", None), [(layer, v, cand.coeff)]),
        ((key, "control", None), [(layer, control, cand.coeff)]),
    ]
    if c.source is not None:
        passes.append(((key, "transfer", None), [(layer, c.source, cand.coeff)]))
    if c.role != "null":
        sign = 1.0 if cand.coeff > 0 else -1.0
        passes += [((key, "ladder", sign * size), [(layer, v, sign * size)]) for size in LADDER]
    if other is not None:
        scale = float(v.norm()) / max(float(other.norm()), 1e-12)
        passes.append(((key, "floor", None), [(layer, other * scale, cand.coeff)]))
    return passes


def _claim_numbers(
    original: FacingField, fields: Mapping[ClaimKey, FacingField], regs: Mapping[str, Sequence[Any]]
) -> dict[str, dict[str, Any]]:
    """The passes' numbers by claim key: own, control, transfer and floor the rounded changes of every effect;
    ladder, by coefficient, the rounded crumble signals."""
    before = exact_numbers(original, regs)
    measured: dict[str, dict[str, Any]] = {}
    for (key, what, coeff), f in fields.items():
        if what == "ladder":
            crumble = crumble_numbers(facing_slice(original), facing_slice(f))
            measured.setdefault(key, {}).setdefault("ladder", {})[str(coeff)] = rounded(crumble)
        else:
            numbers = changes(before, exact_numbers(f, regs), facing_slice(original), facing_slice(f))
            measured.setdefault(key, {})[what] = rounded(numbers)
    return measured


def _confirm_target(
    m: Measuring, seed: int, target: str, claims: Sequence[Claimed], features: FeatureFamilies | None
) -> dict[str, dict[str, Any]]:
    """`confirm_maze` for the claims of one target (the cheese kept or removed)."""
    level = level_for(m.renderer, seed, target)
    edits = [c.candidate.family for c in claims if not is_feature(c.candidate.family)]
    families = tuple(dict.fromkeys([*edits, "null:other_maze"]))
    pairs = family_pairs(m.renderer, seed, target, families)
    built = [name for name in families if isinstance(pairs[name], Pair)]
    layers = tuple(dict.fromkeys(c.candidate.layer for c in claims))
    vecs = dict(zip(built, pair_vectors(m.policy, m.renderer, [pairs[n] for n in built], layers), strict=True))
    inputs = facing_inputs(m.renderer, level, m.device)
    regs = regions(level)
    noise_seed = random_seed(m.control_seed, seed)
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        here = [c for c in claims if c.candidate.layer == layer]
        other = vecs["null:other_maze"][layer] if "null:other_maze" in vecs else None
        passes: list[tuple[ClaimKey, list[Patch]]] = []
        for c in here:
            name = c.candidate.family
            if is_feature(name):  # a fixed vector on every maze: the feature at its positions here
                assert features is not None
                v, positions = features.vector(name, level)
                passes += _claim_passes(c, layer, v, other, control_vector(layer, v, noise_seed, positions))
                continue
            pair = pairs[name]
            if isinstance(pair, Empty):
                out[c.candidate.key] = {"empty": pair.reason}
            else:
                v = vecs[name][layer]
                passes += _claim_passes(c, layer, v, other, control_vector(layer, v, noise_seed, None))
        if not passes:
            continue
        original, fields = fields_by_key(m.policy, inputs, passes, m.batch_size)
        measured = _claim_numbers(original, fields, regs)
        for c in here:
            if c.candidate.key in measured:
                rec = measured[c.candidate.key]
                rec.setdefault("floor", None)
                rec.setdefault("transfer", None)
                out[c.candidate.key] = rec
    return out


def confirm_maze(
    m: Measuring, seed: int, claims: Sequence[Claimed], features: FeatureFamilies | None = None
) -> dict[str, dict[str, Any]]:
    """Every claim on one maze, by claim key: {own, control, transfer, ladder, floor} (transfer and floor None
    where it has none), or {empty: why} where its family has no member here; a feature family's claims need the
    `features` they were screened with."""
    out: dict[str, dict[str, Any]] = {}
    for target in sorted({c.candidate.target for c in claims}):
        out.update(_confirm_target(m, seed, target, [c for c in claims if c.candidate.target == target], features))
    return out


# -- the verdicts -----------------------------------------------------------------------------------------


def _half(ci: Sequence[float] | None) -> float:
    return 0.0 if ci is None else (ci[1] - ci[0]) / 2


def judge_sample(rows: Sequence[Mapping[str, Any]], primary: str, sign: int, settings: Settings) -> dict[str, Any]:
    """One candidate on one sample: `rows` are its per-maze records {own, control, floor, transfer, crumble}."""
    keep = [r for r in rows if r["own"].get(primary) is not None and r["control"].get(primary) is not None]
    e = np.array([sign * r["own"][primary] for r in keep], dtype=np.float64)
    c = np.array([sign * r["control"][primary] for r in keep], dtype=np.float64)
    d = e - c
    floor_values = [abs(r["floor"][primary]) for r in keep if r.get("floor") and r["floor"].get(primary) is not None]
    floor = float(np.mean(floor_values)) if floor_values else 0.0
    transfer = np.array(
        [sign * r["transfer"][primary] for r in keep if r.get("transfer") and r["transfer"].get(primary) is not None],
        dtype=np.float64,
    )
    effect, control, versus = interval_summary(e), interval_summary(c), interval_summary(d)
    means = {
        name: mean_or_none([r["own"].get(name) for r in rows])
        for name in ("mean_steps", "mean_tv", "wall_mass", "entropy")
    }
    crumbles = bool(
        (means["wall_mass"] or 0.0) > settings.crumble_wall or (means["entropy"] or 0.0) > settings.crumble_entropy
    )
    state = verdict(versus, {"above": settings.margin, "precision": settings.precision})
    why = {
        "holds": None,
        "fails": f"the effect does not exceed the random control's by {settings.margin:g}",
        "inconclusive": f"the interval of effect − control straddles the margin {settings.margin:g}",
        "underpowered": f"the interval of effect − control straddles the margin {settings.margin:g} and its "
        f"half-width {_half(versus['mean_ci']):.3f} is wider than the precision {settings.precision:g}",
        "vacuous": f"fewer than {MIN_MAZES} mazes to measure",
    }[state]
    if state == "holds" and (effect["mean_ci"] is None or effect["mean_ci"][0] <= floor):
        state, why = "fails", f"the effect does not clear the unrelated-maze null floor ({floor:.3f})"
    if state != "vacuous" and crumbles:
        state, why = "fails", "the policy crumbles at this coefficient (wall mass or entropy rises past the threshold)"
    return {
        "n": len(keep),
        "effect": effect,
        "control": control,
        "effect_minus_control": {**versus, "wilcoxon_p": wilcoxon_p(e, c), "detectable": min_detectable_effect(d)},
        "floor": floor,
        "transfer": interval_summary(transfer) if len(transfer) else None,
        "steerability": steerability({"paired": True, "per_maze": list(e)}, {"above": 0}),
        "means": means,
        "crumbles": crumbles,
        "verdict": state,
        "why": why,
    }


def crumble_coefficient(ladder: Sequence[Mapping[str, Any]], settings: Settings) -> float | None:
    """The smallest coefficient (by size) of the ladder where the mean rise of wall mass or entropy over mazes
    passes its threshold; None when none does. `ladder`: per maze, {coefficient: {wall_mass, entropy}}."""
    if not ladder:
        return None
    coeffs = sorted({float(c) for m in ladder for c in m}, key=abs)
    for coeff in coeffs:
        rows = [m[str(coeff)] if str(coeff) in m else m.get(coeff) for m in ladder]
        rows = [r for r in rows if r is not None]
        wall = mean_or_none([r["wall_mass"] for r in rows]) or 0.0
        ent = mean_or_none([r["entropy"] for r in rows]) or 0.0
        if wall > settings.crumble_wall or ent > settings.crumble_entropy:
            return coeff
    return None


def final_verdicts(judged: list[dict[str, Any]], settings: Settings) -> None:
    """Holm over the candidates on each sample, then one verdict from both samples (in place)."""
    for sample in SAMPLES:
        ps = [(i, j[sample]["effect_minus_control"]["wilcoxon_p"]) for i, j in enumerate(judged)]
        have = [(i, p) for i, p in ps if p is not None]
        adjusted = holm([p for _, p in have])
        for j in judged:
            j[sample]["holm_p"] = None
        for (i, _), q in zip(have, adjusted, strict=True):
            judged[i][sample]["holm_p"] = q
    for j in judged:
        d, r = j["discovery"], j["replication"]
        state, said = combined_verdict(d["verdict"], r["verdict"])
        holm_ok = all((j[s]["holm_p"] is not None and j[s]["holm_p"] < settings.alpha) for s in SAMPLES)
        if state == "holds" and not holm_ok:
            state, said = "inconclusive", "holds on both samples, but not after Holm's adjustment over the candidates"
        j["verdict"] = state
        j["verdict_said"] = said
        reasons = [f"{s}: {j[s]['why']}" for s in SAMPLES if j[s]["why"]]
        j["why"] = "; ".join(reasons) if state != "holds" else None
        j["status"] = "found" if state == "holds" else state


def _sample_mazes(done: Sequence[Mapping[str, Any]], discovery: set[int], sample: str) -> list[Mapping[str, Any]]:
    """The confirm stage's mazes of one sample: discovery (their seeds in `discovery`) or replication."""
    return [m for m in done if (m["seed"] in discovery) == (sample == "discovery")]


def judge_claims(
    claims: Sequence[Claimed],
    done: Sequence[Mapping[str, Any]],
    discovery: set[int],
    settings: Settings,
    features: FeatureFamilies | None = None,
) -> list[dict[str, Any]]:
    """One row per claim, in order: judged on each sample of the confirm stage's mazes (`done`; `discovery`, the
    discovery sample's seeds), where it crumbles, the mazes its family had no member on; then Holm over the
    claims and one verdict from both samples (`final_verdicts`)."""
    out = []
    for c in claims:
        key = c.candidate.key
        by_sample: dict[str, Any] = {}
        empty: list[dict[str, Any]] = []
        ladders: list[dict[str, Any]] = []
        for sample in SAMPLES:
            rows = []
            for m in _sample_mazes(done, discovery, sample):
                rec = m["claims"].get(key)
                if rec is not None and "empty" in rec:
                    empty.append({"seed": m["seed"], "reason": rec["empty"]})
                elif rec is not None:
                    rows.append(rec)
                    if "ladder" in rec:
                        ladders.append(rec["ladder"])
            by_sample[sample] = judge_sample(rows, c.primary, c.sign, settings)
        out.append(
            {
                "candidate": key,
                **c.candidate.to_json(),
                "role": c.role,
                "what": family_doc(c.candidate.family, features),  # what the pair differs in, or the feature
                "moves": LABELS[c.primary],
                "primary": c.primary,
                "direction": "up" if c.sign > 0 else "down",
                "transfer_source_seed": c.source_seed,
                "crumbles_at": crumble_coefficient(ladders, settings),
                "skipped_mazes": empty,
                **by_sample,
            }
        )
    final_verdicts(out, settings)
    return out


def rank_judged(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The judged rows ranked: by status (found first), then by the discovery effect (largest first), then key."""
    order = {"found": 0, "does not replicate": 1, "inconclusive": 2, "underpowered": 3, "fails": 4, "vacuous": 5}

    def effect(r: dict[str, Any]) -> float:
        return -(r["discovery"]["effect"]["mean"] or 0.0)

    return sorted(rows, key=lambda r: (order.get(r["status"], 9), effect(r), r["candidate"]))


def removed_minus_kept(done: Sequence[Mapping[str, Any]], discovery: set[int], sample: str) -> dict[str, Any]:
    """Per maze of a sample, the top-right vector's change of the share of time in the top-right region with the
    cheese removed minus with it kept (the same mazes), as a {value, ci} record."""
    kept, removed = (c for name, c, _, _ in KNOWN if name.startswith("top_right"))
    diffs = []
    for m in _sample_mazes(done, discovery, sample):
        a, b = m["claims"].get(removed.key, {}), m["claims"].get(kept.key, {})
        x, y = (a.get("own") or {}).get("time_in_top_right"), (b.get("own") or {}).get("time_in_top_right")
        if x is not None and y is not None:
            diffs.append(x - y)
    return record(interval_summary(np.array(diffs, dtype=np.float64)))


__all__ = [
    "KNOWN",
    "LADDER",
    "NULL_CLAIMS",
    "Claimed",
    "confirm_claims",
    "confirm_maze",
    "crumble_coefficient",
    "final_verdicts",
    "judge_claims",
    "judge_sample",
    "rank_judged",
    "removed_minus_kept",
    "transfer_source",
]
