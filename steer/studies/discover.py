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

The command is three modules, the name repeating along the layers (docs/layout.md): this one (the confirm stage,
the report and the console summary), `discover_screen` (the screen, a study of its own, and the plan both
stages start from) and `discover_spec` (the spec both read).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steer.analysis.discover import EFFECTS, LABELS, Settings, record, sign_of
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
from steer.analysis.discover_features import FeatureFamilies, feature_counts, is_feature
from steer.analysis.discover_screen import null_found_in_screen
from steer.analysis.metrics import fmt
from steer.analysis.verdicts import SAMPLES
from steer.maze.families import FAMILIES
from steer.report.discover_figs import top_figures
from steer.report.discover_tables import families_markdown, ranked_row, table_markdown
from steer.report.tables import MAZE_COLUMNS, SEED, Column, Table
from steer.run.session import Session
from steer.run.specs import Spec
from steer.run.study import CellResult, Finished, Report, StageRunner, Study, StudyTable
from steer.studies.discover_screen import SCREEN, ScreenPlan, plan
from steer.studies.discover_spec import DiscoverOptions, check, confirm_seeds, measuring, screen_seeds, settings_of

# -- the confirm stage -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfirmPlan:
    """The confirm stage's work: every claim on each confirm maze; the screen's report it was chosen from."""

    spec: Spec
    layers: tuple[str, ...]
    claims: tuple[Claimed, ...]
    screen: dict[str, Any]  # the screen's report body
    features: FeatureFamilies | None = None  # the feature families the screen searched (and scaled), if any

    @property
    def layer(self) -> str:
        return ", ".join(self.layers)

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        claims = confirm_maze(measuring(session, self.spec), seed, self.claims, self.features)
        return "done", [], {"seed": seed, "maze_dim": session.renderer.level(seed).maze_dim, "claims": claims}


def stages(plan: ScreenPlan, session: Session, run_stage: StageRunner) -> ConfirmPlan:
    """Runs the screen into `OUT/screen/` and plans the confirm stage from its report."""
    screen = run_stage(SCREEN, plan.spec, "screen")["screen"]
    claims = confirm_claims(session.policy, session.renderer, screen, screen_seeds(plan.spec), plan.features)
    layers = tuple(dict.fromkeys(c.candidate.layer for c in claims))
    return ConfirmPlan(plan.spec, layers, claims, screen, plan.features)


def _answer_sections(
    screen: Mapping[str, Any], judged: Sequence[Mapping[str, Any]], families: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The report's first keys: its counts (`summary`), the answer and what it names, the per-family entries, and
    the same one line per family for the report page (a list of rows is shown as a table there)."""
    new = [f["confirm"]["candidate"] for f in families.values() if f["new"]]
    relatives = [
        f["confirm"]["candidate"]
        for f in families.values()
        if f["status"] == "found" and not is_feature(f["family"]) and FAMILIES[f["family"]].relative is not None
    ]
    unseen = [name for name, f in families.items() if f["status"] == NOT_FOUND]
    said = answer(families)
    return {
        "summary": {
            "answer": said,
            "candidates screened": screen["candidates_tried"],
            "candidates judged": len(judged),
            "families searched": len(families),
            "families confirmed": sum(f["confirmed"] for f in families.values()),
            f"families {NOT_FOUND}": len(unseen),
            "found": sum(r["status"] == "found" for r in judged),
            "new X-vectors": len(new),
            **(
                {}
                if "features" not in screen
                else {
                    "features found (beyond their random control, replicated)": feature_counts(
                        families, screen["features"]
                    )["found"]
                }
            ),
        },
        "answer": {
            "said": said,
            "new": new,
            "relatives": relatives,
            "confirmed": [name for name, f in families.items() if f["confirmed"]],
            NOT_FOUND.replace(" ", "_"): unseen,
        },
        "families": families,
        "family_statements": [
            {k: f[k] for k in ("family", "rank", "confirmed", "status", "statement")} for f in families.values()
        ],
    }


def _records(row: Mapping[str, Any], *, versus_control: bool) -> dict[str, Any]:
    """A judged row's change on each sample as a record, and with `versus_control` its change − control too."""
    sign = sign_of(row)
    out = {s: record(row[s]["effect"], sign) for s in SAMPLES}
    if versus_control:
        out |= {f"{s}_vs_control": record(row[s]["effect_minus_control"], sign) for s in SAMPLES}
    return out


def _known_and_nulls(judged: Sequence[Mapping[str, Any]], screen: Mapping[str, Any]) -> dict[str, Any]:
    """The known answers' and the nulls' entries, by name (`cheese`, `top_right_kept`, …; `same`, `other_maze`)."""
    known = {r["role"].removeprefix("known:"): r for r in judged if r["role"].startswith("known:")}
    nulls = {r["family"].removeprefix("null:"): r for r in judged if r["role"] == "null"}
    return {
        "known": {
            name: {"candidate": r["candidate"], "status": r["status"], **_records(r, versus_control=True)}
            for name, r in known.items()
        },
        "nulls": {
            name: {
                "candidate": r["candidate"],
                "status": r["status"],
                **_records(r, versus_control=False),
                "found_in_screen": name == "same" and null_found_in_screen(screen),
            }
            for name, r in nulls.items()
        },
    }


def _samples_and_settings(spec: Spec, settings: Settings) -> dict[str, Any]:
    """The samples' seeds and the rules the verdicts were judged by."""
    discovery = set(spec.seeds)
    return {
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
    }


def report(
    plan: ConfirmPlan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    """The confirm stage's report: every claim judged and ranked, each family's statement and the answer, the
    known answers and the nulls, the screen's report, the samples and settings; its tables and figures."""
    done = list(done)  # read once (a few hundred mazes): every claim goes over every maze
    settings = settings_of(spec)
    discovery = set(spec.seeds)
    judged = rank_judged(judge_claims(plan.claims, done, discovery, settings, plan.features))
    families = family_table(plan.screen["candidates"], plan.screen["families"], judged)
    m = measuring(session, spec)
    figures, files = top_figures(m, session.title, judged, done, discovery, spec.figures, plan.features)
    files["table.md"] = table_markdown(judged).encode()
    files["families.md"] = families_markdown(families).encode()
    sections = _known_and_nulls(judged, plan.screen)
    body = {
        **_answer_sections(plan.screen, judged, families),
        "ranked": [ranked_row(r) for r in judged],
        "table": judged,
        "known": sections["known"],
        "top_right_removed_minus_kept": {s: removed_minus_kept(done, discovery, s) for s in SAMPLES},
        "nulls": sections["nulls"],
        **(
            {}
            if "features" not in plan.screen
            else {"features": {**feature_counts(families, plan.screen["features"]), **plan.screen["features"]}}
        ),
        "screen": plan.screen,
        **_samples_and_settings(spec, settings),
        "mazes": [{"seed": m["seed"], "maze_dim": m["maze_dim"]} for m in done],
    }
    return Report(body, figures, files)


def summary(report: dict[str, Any]) -> list[str]:
    """The console's lines: the samples, each claim's status and replication change, the known answers, each
    family's statement and the answer."""
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
    if "features" in report:
        f = report["features"]
        lines.append(
            f"dictionary features ({f['place']}, at {f['site']}): {f['found']} of {f['screened']} screened replicate "
            f"an effect beyond their random control ({f['confirmed']} confirmed, {f['dead_skipped']} dead skipped)"
        )
    lines.append(f"more than the cheese and top-right vectors? {report['answer']['said']}")
    return lines


def _effect_unit(name: str) -> str:
    if name.startswith("time_in_"):
        return "fraction of steps"
    return {"mean_steps": "steps", "mean_tv": "TV, 0 to 1", "entropy": "nats"}.get(name, "probability")


MAZES = Table(
    "mazes",
    "one row per confirm maze, claim and condition: the claim's effects on the maze (patched - original)",
    (
        SEED,
        MAZE_COLUMNS[0],
        Column("sample", "str", "", "discovery or replication"),
        Column("claim", "str", "", "the candidate: family @ layer x coefficient (and cheese removed, if so)"),
        Column(
            "condition",
            "str",
            "",
            "own (the maze's own vector of the family), control (a random vector of its norm), transfer (another "
            "maze's vector), floor (the unrelated-maze null: another maze's pair), ladder (own at multiples of "
            "the coefficient: wall_mass and entropy), empty (the family has no member on this maze)",
        ),
        Column("coeff", "float", "x vector", "ladder: the coefficient (the claim's times 1, 2, 5, 10, 20)"),
        Column("empty", "str", "", "empty: why the family has no member on this maze"),
        *(Column(name, "float", _effect_unit(name), f"{LABELS[name]}, patched - original") for name in EFFECTS),
    ),
)


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    discovery = set(f.spec.seeds)
    for m in f.done:
        keys = {"seed": m["seed"], "maze_dim": m["maze_dim"]}
        keys["sample"] = "discovery" if m["seed"] in discovery else "replication"
        for claim, r in m["claims"].items():
            if "empty" in r:
                yield {**keys, "claim": claim, "condition": "empty", "empty": r["empty"]}
                continue
            for condition in ("own", "control", "transfer", "floor"):
                if r.get(condition) is not None:
                    yield {**keys, "claim": claim, "condition": condition, **r[condition]}
            for coeff, values in (r.get("ladder") or {}).items():
                yield {**keys, "claim": claim, "condition": "ladder", "coeff": float(coeff), **values}


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
    tables=(StudyTable(MAZES, maze_rows),),
)


__all__ = ["STUDY"]
