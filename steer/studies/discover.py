"""`steer discover`: search families of paired maze edits for vectors that move the agent; keep what replicates.

Two stages, each a run of its own (resumable, on the run's workers or Ray):

1. **screen** (`OUT/screen/`): every candidate (family × layer × coefficient × target, each maze's own vector;
   the cheese kept, and for the place families also removed: `steer.maze.families.Family.build_for`) on the
   first `screen` mazes of the discovery sample, scored by its largest mean |change − the random control's| of
   an exact probability or share of time, less the null floor's; the top `top_k` families (one candidate each)
   and every other family whose screen interval lies wholly above the margin are chosen
   (`steer.analysis.discover_screen.choose`), each family's reason recorded in the screen's report.
2. **confirm** (`OUT/`, this run's own cells): the chosen candidates, the known answers (the cheese vector × −1
   and the top-right vector × +1 with the cheese kept and removed) and the nulls (`null:same`, `null:other_maze`)
   on the rest of the discovery sample and on the disjoint replication sample: each maze's own vector, a
   norm-matched random vector at the same layer and coefficient, the unrelated-maze null at the same layer and
   coefficient (the floor), one fixed source maze's vector (transfer) and a coefficient ladder (where it
   crumbles). The verdicts are `steer.analysis.discover_confirm`'s.

The report (`metrics.json`) holds the ranked table of candidates judged, the known answers, the nulls, one
entry per searched family (`families`: found, its confirm verdict, or not found at the power the screen had,
with that power), every screened candidate with why it was or was not chosen, and the sample sizes and seeds;
`table.md` and `families.md` are its two tables; for the top rows a field figure, an occupancy figure and an
episode GIF.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steer.analysis.discover import (
    EFFECTS,
    Candidate,
    Measuring,
    Settings,
    family_pairs,
    record,
    sign_of,
)
from steer.analysis.discover_answer import NOT_FOUND, answer, family_table
from steer.analysis.discover_confirm import (
    LADDER,
    Claimed,
    confirm_claims,
    confirm_maze,
    judge_claims,
    rank_judged,
    removed_minus_kept,
)
from steer.analysis.discover_screen import (
    KINDS,
    choose,
    null_found_in_screen,
    screen_families,
    screen_maze,
    screen_table,
)
from steer.analysis.metrics import fmt
from steer.analysis.verdicts import SAMPLES
from steer.errors import SteerError, excerpt
from steer.maze.families import FAMILIES, NULLS, SEARCHED, TARGETS, Pair
from steer.report.discover_figs import top_figures
from steer.report.discover_tables import families_markdown, ranked_row, table_markdown
from steer.run.options import (
    Options,
    coeffs_option,
    control_seed_option,
    layers_option,
    option,
    seed_list,
    whole,
)
from steer.run.session import Session, resolve_layer
from steer.run.spec_values import finite_float
from steer.run.specs import Spec
from steer.run.study import CellResult, Report, StageRunner, Study

DEFAULT_LAYERS = ("block2.res1.resadd_out", "block2.res2.resadd_out", "block3.res1.resadd_out")
DEFAULT_COEFFS = (-2.0, -1.0, 1.0, 2.0, 5.0)
# Families the screen sends on by rank (besides every family whose screen interval clears the margin): 12, so
# that a family as far down as the first full search's 12th (wall:ds_to_cheese, never confirmed) is judged.
DEFAULT_TOP_K = 12

# -- the spec's own keys --------------------------------------------------------------------------------


def _families(value: Any, where: str) -> tuple[str, ...]:
    if value == "all":
        return SEARCHED
    if not isinstance(value, list) or not value:
        raise SteerError(f"{where}: expected 'all' or a non-empty list of family names such as [path:top_left].")
    for i, name in enumerate(value):
        if not isinstance(name, str) or name not in FAMILIES:
            raise SteerError(
                f"{where}[{i}]: {excerpt(name)} is not a family of paired maze edits. Families: "
                f"{', '.join(FAMILIES)} (docs/commands.md#discover)."
            )
    return tuple(dict.fromkeys(value))


def _positive(value: Any, where: str) -> float:
    x = finite_float(value, where)
    if x <= 0:
        raise SteerError(f"{where}: {excerpt(value)} must be above 0.")
    return x


def _crumble(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict) or set(value) - {"wall_mass", "entropy"}:
        raise SteerError(f"{where}: expected {{wall_mass: 0.1, entropy: 0.5}} (mean rises that count as crumbling).")
    return {k: _positive(v, f"{where}.{k}") for k, v in value.items()}


@dataclass(frozen=True, kw_only=True)
class DiscoverOptions(Options):
    replication: tuple[int, ...] = option(
        seed_list,
        missing="replication: missing; give the replication sample, disjoint from seeds, e.g. "
        "replication: {from: 1000, count: 32}.",
    )
    screen: int | None = option(whole(2, 1000), default=None, about="the screen's mazes (default: a third, 2-16)")
    families: tuple[str, ...] = option(_families, default=SEARCHED, about="'all' or a list of family names")
    layers: tuple[str, ...] = layers_option(about="sites searched (default: three residual sites)")
    coeffs: tuple[float, ...] = coeffs_option(default=(), about="coefficients searched (default: -2, -1, 1, 2, 5)")
    top_k: int = option(whole(1, 50), default=DEFAULT_TOP_K)
    margin: float = option(_positive, default=Settings.margin)
    precision: float = option(_positive, default=Settings.precision)
    crumble: dict[str, float] = option(_crumble, default={}, about="{wall_mass, entropy}: rises that crumble")
    control_seed: int = control_seed_option()


def settings_of(spec: Spec) -> Settings:
    crumble = spec.options.crumble
    base = Settings()
    return Settings(
        margin=spec.options.margin,
        precision=spec.options.precision,
        crumble_wall=crumble.get("wall_mass", base.crumble_wall),
        crumble_entropy=crumble.get("entropy", base.crumble_entropy),
    )


def _screen_n(spec: Spec) -> int:
    screen = spec.options.screen
    return screen if screen is not None else min(16, max(2, len(spec.seeds) // 3))


def screen_seeds(spec: Spec) -> tuple[int, ...]:
    return spec.seeds[: _screen_n(spec)]


def confirm_seeds(spec: Spec) -> tuple[int, ...]:
    """The confirm stage's cells: the discovery mazes the screen did not use, then the replication sample."""
    return (*spec.seeds[_screen_n(spec) :], *spec.options.replication)


def check(spec: Spec) -> None:
    replication = spec.options.replication
    shared = sorted(set(replication) & set(spec.seeds))
    if shared:
        raise SteerError(
            f"replication: seed {shared[0]} is also in seeds (the discovery sample); a replication needs mazes the "
            "discovery never saw. Draw it from another range, e.g. {from: 1000, count: 32}."
        )
    n = _screen_n(spec)
    if len(spec.seeds) - n < 5:
        raise SteerError(
            f"screen: {n} of the {len(spec.seeds)} discovery seeds screen the candidates, leaving "
            f"{len(spec.seeds) - n} to confirm them; the confirm stage needs at least 5. Give more seeds or a "
            "smaller screen."
        )
    if len(replication) < 5:
        raise SteerError(f"replication: {len(replication)} mazes; a replication needs at least 5.")
    if any(c == 0 for c in spec.options.coeffs):
        raise SteerError("coeffs: 0 is not a coefficient to search (it adds nothing); drop it.")


def measuring(session: Session, spec: Spec) -> Measuring:
    """What measuring on one maze needs, from the session and the spec."""
    return Measuring(session.policy, session.renderer, session.device, spec.batch_size, spec.options.control_seed)


# -- the screen ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScreenPlan:
    spec: Spec
    layers: tuple[str, ...]
    families: tuple[str, ...]  # searched families and the nulls
    coeffs: tuple[float, ...]

    @property
    def layer(self) -> str:
        return ", ".join(self.layers)

    def families_for(self, target: str) -> tuple[str, ...]:
        """The families screened on `target`: all of them with the cheese kept; with it removed, the place
        families and beside them the nulls (whose floor a removed candidate is judged against), or none when no
        place family is searched."""
        have = tuple(f for f in self.families if target in FAMILIES[f].targets)
        return have if target == "keep" or any(FAMILIES[f].place for f in have) else ()

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        return tuple(
            Candidate(f, layer, c, target)
            for f in self.families
            for target in TARGETS
            if f in self.families_for(target)
            for layer in self.layers
            for c in self.coeffs
        )

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        m = measuring(session, self.spec)
        result: dict[str, Any] = {"seed": seed, "maze_dim": session.renderer.level(seed).maze_dim}
        result |= {kind: {} for kind in (*KINDS, "empty")}
        for target in TARGETS:
            families = self.families_for(target)
            if families:
                for kind, values in screen_maze(m, seed, target, families, self.layers, self.coeffs).items():
                    result[kind].update(values)
        return "done", [], result


def _check_layers(spec: Spec, session: Session, families: tuple[str, ...]) -> tuple[str, ...]:
    policy = session.policy
    layers = tuple(
        resolve_layer(policy, name, f"layers[{i}]") for i, name in enumerate(spec.options.layers or DEFAULT_LAYERS)
    )
    spatial = [f for f in families if FAMILIES[f].spatial]
    for i, layer in enumerate(layers):
        shape = tuple(policy.activation_shape(layer))
        if len(shape) != 3 and spatial:
            raise SteerError(
                f"layers[{i}]: {layer!r} has activations of shape {list(shape)}, with no spatial map; the families "
                f"{', '.join(spatial[:4])}{', …' if len(spatial) > 4 else ''} change the maze at a place, and discover "
                "locates each vector's effect on the maze, which needs a convolutional site such as "
                "block2.res1.resadd_out. Use such a layer, or search only the null families there."
            )
    return layers


def _check_families(spec: Spec, session: Session, families: tuple[str, ...]) -> None:
    """A family empty on a maze skips that maze; one empty on every screen maze (or every confirm maze of a
    sample) cannot be judged, and is bad input: said before anything is written."""
    groups = {
        "screen": screen_seeds(spec),
        "discovery": spec.seeds[_screen_n(spec) :],
        "replication": spec.options.replication,
    }
    for group, seeds in groups.items():
        members = dict.fromkeys(families, 0)
        first: dict[str, tuple[int, str]] = {}
        for seed in seeds:
            # With the cheese kept: a place family has a member with it removed exactly where it has one with it
            # kept (a path's squares do not depend on the cheese; a cheese move is built on the level as generated).
            for name, p in family_pairs(session.renderer, seed, "keep", families).items():
                if isinstance(p, Pair):
                    members[name] += 1
                else:
                    first.setdefault(name, (seed, p.reason))
        for name in families:
            if members[name] == 0 and FAMILIES[name].factor != "null":
                seed, why = first[name]
                where = (
                    f"families[{spec.raw['families'].index(name)}]"
                    if isinstance(spec.raw.get("families"), list)
                    else "families"
                )
                raise SteerError(
                    f"{where}: {name} has no member on any of the {len(seeds)} {group} mazes (seed {seed}: {why}). "
                    "Choose seeds where it has one (e.g. seeds: {from: 0, count: 48, where: {decision_square: true, "
                    "smaller_than_world: true}}), or leave the family out."
                )


def _searched(spec: Spec) -> tuple[str, ...]:
    return tuple(f for f in spec.options.families if f not in NULLS)


def plan(spec: Spec, session: Session) -> ScreenPlan:
    families = (*_searched(spec), *NULLS)
    layers = _check_layers(spec, session, families)
    _check_families(spec, session, families)
    return ScreenPlan(spec, layers, families, spec.options.coeffs or DEFAULT_COEFFS)


# -- the screen's report ---------------------------------------------------------------------------------


def screen_report(
    plan: ScreenPlan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    # Read once: each candidate goes over every maze, and the runner's results are decoded as they are read.
    done = list(done)
    rows = screen_table(plan.candidates, done)
    top_k = spec.options.top_k
    margin = settings_of(spec).margin
    chosen = choose(rows, top_k, NULLS, margin)
    empty: dict[str, list[dict[str, Any]]] = {}
    for m in done:
        for name, why in m["empty"].items():
            empty.setdefault(name, []).append({"seed": m["seed"], "reason": why})
    ranked = sorted(rows, key=lambda r: (-r["score"], r["candidate"]))
    place = [f for f in plan.families if FAMILIES[f].place]
    return Report(
        {
            "screen": {
                "seeds": [m["seed"] for m in done],
                "candidates_tried": len(rows),
                "targets": {
                    "keep": "every family, on the levels as generated",
                    "remove": f"the place families ({', '.join(place) or 'none searched'}) and the nulls, on the "
                    "levels without their cheese (steer.maze.families.Family.build_for)",
                },
                "rule": f"the top {top_k} families by their best candidate's score (the largest mean |change − the "
                "random control's change| of a probability or share of time over the screen's mazes, less the "
                "unrelated-maze floor's), one candidate per family (with the cheese kept or removed), ties by name; "
                "and beyond them every family whose best candidate's 95% BCa interval of change − control, in its "
                f"claimed direction, lies wholly above the margin {margin:g} (at least 5 mazes); the nulls are never "
                "chosen",
                "chosen": [r["candidate"] for r in chosen],
                "families": screen_families(rows, chosen, NULLS),
                "candidates": ranked,
                "empty": empty,
            },
            "mazes": [{"seed": m["seed"], "maze_dim": m["maze_dim"], "empty": m["empty"]} for m in done],
        }
    )


SCREEN = Study(
    name="discover-screen",
    help="steer discover's screen: every candidate on a small sample, scored; the top k families and any whose "
    "interval clears the margin chosen.",
    options=DiscoverOptions,
    check=check,
    plan=plan,
    report=screen_report,
    cells=screen_seeds,
    grows=False,
)


# -- the confirm stage -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfirmPlan:
    spec: Spec
    layers: tuple[str, ...]
    claims: tuple[Claimed, ...]
    screen: dict[str, Any]  # the screen's report body

    @property
    def layer(self) -> str:
        return ", ".join(self.layers)

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        claims = confirm_maze(measuring(session, self.spec), seed, self.claims)
        return "done", [], {"seed": seed, "maze_dim": session.renderer.level(seed).maze_dim, "claims": claims}


def stages(plan: ScreenPlan, session: Session, run_stage: StageRunner) -> ConfirmPlan:
    screen = run_stage(SCREEN, plan.spec, "screen")["screen"]
    claims = confirm_claims(session.policy, session.renderer, screen, screen_seeds(plan.spec))
    layers = tuple(dict.fromkeys(c.candidate.layer for c in claims))
    return ConfirmPlan(plan.spec, layers, claims, screen)


def report(
    plan: ConfirmPlan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    done = list(done)  # read once (a few hundred mazes): every claim goes over every maze
    settings = settings_of(spec)
    discovery = set(spec.seeds)
    judged = rank_judged(judge_claims(plan.claims, done, discovery, settings))
    found = [r for r in judged if r["status"] == "found"]
    known = {r["role"].removeprefix("known:"): r for r in judged if r["role"].startswith("known:")}
    nulls = {r["family"].removeprefix("null:"): r for r in judged if r["role"] == "null"}
    families = family_table(plan.screen["candidates"], plan.screen["families"], judged)
    new = [f["confirm"]["candidate"] for f in families.values() if f["new"]]
    relatives = [
        f["confirm"]["candidate"]
        for f in families.values()
        if f["status"] == "found" and FAMILIES[f["family"]].relative is not None
    ]
    unseen = [name for name, f in families.items() if f["status"] == NOT_FOUND]
    said = answer(families)
    figures, files = top_figures(measuring(session, spec), session.title, judged, done, discovery)
    files["table.md"] = table_markdown(judged).encode()
    files["families.md"] = families_markdown(families).encode()
    body = {
        "summary": {
            "answer": said,
            "candidates screened": plan.screen["candidates_tried"],
            "candidates judged": len(judged),
            "families searched": len(families),
            "families confirmed": sum(f["confirmed"] for f in families.values()),
            f"families {NOT_FOUND}": len(unseen),
            "found": len(found),
            "new X-vectors": len(new),
        },
        "answer": {
            "said": said,
            "new": new,
            "relatives": relatives,
            "confirmed": [name for name, f in families.items() if f["confirmed"]],
            NOT_FOUND.replace(" ", "_"): unseen,
        },
        "families": families,
        # The same, one line per family, for the report page (a list of rows is shown as a table there).
        "family_statements": [
            {
                "family": name,
                "rank": f["rank"],
                "confirmed": f["confirmed"],
                "status": f["status"],
                "statement": f["statement"],
            }
            for name, f in families.items()
        ],
        "ranked": [ranked_row(r) for r in judged],
        "table": judged,
        "known": {
            name: {
                "candidate": r["candidate"],
                "status": r["status"],
                **{s: record(r[s]["effect"], sign_of(r)) for s in SAMPLES},
                **{f"{s}_vs_control": record(r[s]["effect_minus_control"], sign_of(r)) for s in SAMPLES},
            }
            for name, r in known.items()
        },
        "top_right_removed_minus_kept": {s: removed_minus_kept(done, discovery, s) for s in SAMPLES},
        "nulls": {
            name: {
                "candidate": r["candidate"],
                "status": r["status"],
                **{s: record(r[s]["effect"], sign_of(r)) for s in SAMPLES},
                "found_in_screen": name == "same" and null_found_in_screen(plan.screen),
            }
            for name, r in nulls.items()
        },
        "screen": plan.screen,
        "samples": {
            "screen": list(screen_seeds(spec)),
            "discovery": [s for s in confirm_seeds(spec) if s in discovery],
            "replication": list(spec.options.replication),
            "control_seed": spec.options.control_seed,
            "transfer": "each candidate's vector from the first screen maze where its family has a member",
        },
        "settings": {
            "margin": settings.margin,
            "precision": settings.precision,
            "crumble": {"wall_mass": settings.crumble_wall, "entropy": settings.crumble_entropy},
            "holm_alpha": settings.alpha,
            "ladder": list(LADDER),
            "effects": list(EFFECTS),
        },
        "mazes": [{"seed": m["seed"], "maze_dim": m["maze_dim"]} for m in done],
    }
    return Report(body, figures, files)


def summary(report: dict[str, Any]) -> list[str]:
    rows = report["table"]
    screen = report["screen"]
    lines = [
        f"screened {screen['candidates_tried']} candidates on {len(screen['seeds'])} mazes; confirmed "
        f"{len(rows)} on {len(report['samples']['discovery'])} discovery + {len(report['samples']['replication'])} "
        "replication mazes"
    ]
    for r in rows:
        e = r["replication"]["effect"]["mean"]
        change = None if e is None else (e if r["direction"] == "up" else -e)
        lines.append(
            f"  {r['status']:>18}: {r['candidate']} moves {r['moves']} {r['direction']} (replication change "
            f"{fmt(change, 3)})"
        )
    known = report["known"]
    if "cheese" in known:
        lines.append(f"known answer: cheese vector x -1 lowers P(reach the cheese): {known['cheese']['status']}")
    if "top_right_kept" in known and "top_right_removed" in known:
        kept, removed = known["top_right_kept"]["replication"], known["top_right_removed"]["replication"]
        lines.append(
            f"known answer: the top-right vector x 1 raises the share of the episode in the top-right region by "
            f"{fmt(kept['value'], 3)} with the cheese kept, by {fmt(removed['value'], 3)} with it removed (replication)"
        )
    lines.append("families (what the search can say of each, at the power it had):")
    for name, f in report["families"].items():
        lines.append(f"  {name}: {f['statement']}")
    lines.append(f"more than the cheese and top-right vectors? {report['answer']['said']}")
    return lines


STUDY = Study(
    name="discover",
    help="Search families of paired maze edits for steering vectors that move the agent; keep what replicates.",
    options=DiscoverOptions,
    check=check,
    plan=plan,
    report=report,
    summary=summary,
    cells=confirm_seeds,
    grows=False,
    stages=stages,
    stage_cells=screen_seeds,
)


__all__ = ["DEFAULT_COEFFS", "DEFAULT_LAYERS", "SCREEN", "STUDY"]
