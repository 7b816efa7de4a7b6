"""`steer choose`: pick where (the site) and how strongly (the coefficient) to steer with a vector, by an objective
stated in the spec and under limits on damage, on the discovery mazes alone; then judge the chosen setting against
the reference setting (the posts') on the replication mazes.

    seeds: {from: 0, to: 29}                  # the discovery mazes: the only ones the choice looks at
    replication: {from: 1000, to: 1049}       # the mazes the chosen setting is judged on (disjoint from seeds)
    vector: {kind: top_right}                 # a bare kind: the mean of its pair over the discovery mazes
    layers: [block2.res1.resadd_out, block3.res1.resadd_out]
    coeffs: [0.5, 1, 2, 3]
    target: p_top_right_ds                    # default: the kind's (p_cheese_ds, p_top_right_ds)
    direction: up                             # default: the posts' (down for cheese, up for top_right)
    objective: mean_change                    # or fraction_moved
    limits: {wall_mass: 0.05, entropy: 0.3}   # each optional: also mean_tv_unaffected, mean_steps, steps_to_cheese,
                                              #   p_timeout
    unaffected: [remove_cheese]               # a maze the vector should leave alone (for mean_tv_unaffected)
    compare_with: {layer: block2.res1.resadd_out, coeff: 1}   # default: the posts' setting for the kind

Two stages, each a run of its own (resumable, on the run's workers or Ray):

1. **grid** (`OUT/grid/`, `steer.studies.choose_grid`): every setting and the reference on each discovery maze;
   per setting the objective and each damage measure with 95% intervals; the feasible settings (every limited
   measure's interval at or below its limit); the chosen one (the best feasible).
2. **replication** (`OUT/`, this run's own cells): the chosen and the reference setting on each replication maze,
   per maze records under `chosen` and `reference` (what a batch's claims read), and the chosen minus the
   reference over mazes with intervals.

The choice is made once, from the grid stage's report, before any replication maze is rendered; a change to the
replication sample changes neither the grid nor the choice. It writes `choice.json` and the chosen vector
(`chosen-vector.safetensors`; none when no setting is feasible).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steer.analysis.choose import DAMAGES, Setting, summarise_setting, versus_reference
from steer.analysis.metrics import fmt
from steer.net.vectors import SteeringVector
from steer.report.choose_figs import choice_chart
from steer.report.tables import MAZE_COLUMNS, Column, Table, maze_keys
from steer.run.session import Session
from steer.run.specs import Spec
from steer.run.study import CellResult, Finished, Report, StageRunner, Study, StudyTable
from steer.studies.choose_grid import GRID, GRID_MAZES, ChoosePlan, plan, record_row
from steer.studies.choose_spec import ChooseOptions, check

VECTOR_FILE = "chosen-vector.safetensors"


@dataclass(frozen=True)
class ReplicationPlan:
    """The replication stage's work: the chosen setting (None when none was feasible) and the reference on each
    replication maze; the grid stage's choice it was made from."""

    base: ChoosePlan
    chosen: Setting | None
    choice: dict[str, Any]  # the grid stage's report's `choice`

    @property
    def spec(self) -> Spec:
        return self.base.spec

    @property
    def layer(self) -> str:
        return self.base.layer

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        settings = tuple(dict.fromkeys(s for s in (self.chosen, self.base.reference) if s is not None))
        m = self.base.measure(session, seed, settings)
        records = m.pop("records")
        m["chosen"] = records[self.chosen.label] if self.chosen is not None else None
        m["reference"] = records[self.base.reference.label]
        return "done", [], m


def stages(plan: ChoosePlan, session: Session, run_stage: StageRunner) -> ReplicationPlan:
    """Runs the grid into `OUT/grid/` and plans the replication stage from its choice alone."""
    choice = run_stage(GRID, plan.spec, "grid")["choice"]
    row = choice["chosen"]
    return ReplicationPlan(plan, None if row is None else Setting(row["site"], row["coeff"]), choice)


def _limits_text(limits: Mapping[str, float]) -> str:
    return ", ".join(f"{k} <= {v:g}" for k, v in limits.items()) or "none"


def choice_record(plan: ReplicationPlan) -> dict[str, Any]:
    """choice.json: the setting chosen (or none), its objective and damage on the discovery mazes, the goal and
    limits, the grid's size and the seeds the choice looked at."""
    base, choice = plan.base, plan.choice
    goal = base.goal
    chosen = choice["chosen"]
    return {
        "setting": None if chosen is None else {"site": chosen["site"], "coeff": chosen["coeff"]},
        "objective": None if chosen is None else {"value": chosen["objective"], "ci": chosen["objective_ci"]},
        "damage": None if chosen is None else chosen["damage"],
        "said": _said(chosen, base.reference, choice["reference"], [s.coeff for s in base.settings]),
        "goal": {
            "target": goal.target,
            "direction": "up" if goal.sign > 0 else "down",
            "objective": goal.objective,
            "limits": dict(goal.limits),
            "rule": "feasible: the upper end of each limited measure's 95% bootstrap interval of the mean at or "
            "below its limit; chosen: the feasible setting with the largest objective (ties: smaller |coeff|, then "
            "the spec's order)",
        },
        "reference": base.reference.to_json(),
        "grid": {
            "sites": list(dict.fromkeys(s.site for s in base.settings)),
            "coeffs": list(dict.fromkeys(s.coeff for s in base.settings)),
            "settings": len(base.settings),
            "feasible": choice["feasible"],
        },
        "vector": base.vector,
        "seeds_looked_at": choice["mazes_looked_at"],
    }


def _said(
    chosen: Mapping[str, Any] | None, reference: Setting, ref_row: Mapping[str, Any], coeffs: Sequence[float]
) -> str:
    if chosen is None:
        return "no setting of the grid meets the limits on the discovery mazes: none chosen"
    same = (chosen["site"], chosen["coeff"]) == (reference.site, reference.coeff)
    return (
        f"chose {chosen['site']} x {chosen['coeff']:g} (objective {fmt(chosen['objective'], 3)})"
        + (", the reference setting itself" if same else f"; the reference's objective {fmt(ref_row['objective'], 3)}")
        + ("" if ref_row["feasible"] else " (the reference breaks a limit)")
        + _at_edge(chosen["coeff"], coeffs)
    )


def _at_edge(coeff: float, coeffs: Sequence[float]) -> str:
    """A choice at the grid's largest |coefficient| on its side says so: a better feasible one may lie beyond it."""
    same_side = [abs(c) for c in coeffs if c * coeff > 0]
    if len(same_side) > 1 and abs(coeff) == max(same_side):
        return (
            f"; at the grid's largest coefficient on its side ({coeff:g}): a stronger setting may do better within the"
            " limits, so widen coeffs to find the best"
        )
    return ""


def _vector_bytes(plan: ReplicationPlan) -> bytes | None:
    """The chosen vector as its file's bytes: `SteeringVector.save` to a `.safetensors` name, read back, so the
    runner writes it atomically and lists it with the run's files."""
    if plan.chosen is None:
        return None
    source = plan.base.vectors[plan.chosen.site]
    meta = {
        **source.meta,
        "coeff": plan.chosen.coeff,
        "chosen_by": "steer choose",
        "goal": {"target": plan.base.goal.target, "objective": plan.base.goal.objective},
    }
    vec = SteeringVector(layer=plan.chosen.site, tensor=source.tensor, kind=source.kind, meta=meta)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / VECTOR_FILE
        vec.save(path)
        return path.read_bytes()


def report(
    plan: ReplicationPlan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    done = list(done)
    base, choice = plan.base, plan.choice
    goal = base.goal
    replication = {
        "reference": summarise_setting([m["reference"] for m in done], goal, base.damages),
        "chosen": None if plan.chosen is None else summarise_setting([m["chosen"] for m in done], goal, base.damages),
        "chosen_minus_reference": None if plan.chosen is None else versus_reference(done, goal, base.damages),
    }
    record = choice_record(plan)
    body = {
        "summary": {
            "said": record["said"],
            "settings searched": len(base.settings),
            "feasible": choice["feasible"],
            "discovery mazes": len(choice["mazes_looked_at"]),
            "replication mazes": len(done),
        },
        "choice": record,
        "grid": choice["grid"],
        "reference_on_discovery": choice["reference"],
        "replication": replication,
        "samples": {"discovery": list(spec.seeds), "replication": list(spec.options.replication)},
        "mazes": done,
    }
    title = f"steer choose · {base.kind} vector · {len(choice['mazes_looked_at'])} discovery mazes · {session.title}"
    way = "up" if goal.sign > 0 else "down"
    what = (
        f"mean change of {goal.target}, signed so that + is {way} (the way wanted)"
        if goal.objective == "mean_change"
        else f"fraction of mazes moving {goal.target} {way} by more than 0.01"
    )
    chart = choice_chart(choice["grid"], choice["chosen"], choice["reference"], title, what, _limits_text(goal.limits))
    files: dict[str, Any] = {"choice.json": (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()}
    vector = _vector_bytes(plan)
    if vector is not None:
        files[VECTOR_FILE] = vector
    return Report(body, {"choose-grid.png": chart}, files)


def summary(report: dict[str, Any]) -> list[str]:
    choice = report["choice"]
    lines = [
        f"{choice['grid']['settings']} settings on {len(choice['seeds_looked_at'])} discovery mazes, "
        f"{choice['grid']['feasible']} within the limits ({_limits_text(choice['goal']['limits'])})",
        choice["said"],
    ]
    vs = report["replication"]["chosen_minus_reference"]
    if vs is not None:
        gain = vs["gain"]
        lines.append(
            f"replication ({gain['n']} mazes): chosen minus reference, {choice['goal']['target']} "
            f"{choice['goal']['direction']}: {fmt(gain['value'], 3)} "
            f"[{fmt(gain['ci'][0] if gain['ci'] else None, 3)}, {fmt(gain['ci'][1] if gain['ci'] else None, 3)}]"
        )
        for d in ("wall_mass", "entropy"):
            e = vs[f"{d}_excess"]
            lines.append(f"  {d} rise, chosen minus reference: {fmt(e['value'], 4)}")
    return lines


MAZES = Table(
    "mazes",
    "one row per replication maze and setting (the chosen and the reference): the target and each damage measure",
    (*GRID_MAZES.columns[: 1 + len(MAZE_COLUMNS)], Column("setting_role", "str", "", "chosen or reference"),
     Column("site", "str", "", "the setting's site"), Column("coeff", "float", "x vector", "the setting's coefficient"),
     *GRID_MAZES.columns[2 + len(MAZE_COLUMNS):]),
)  # fmt: skip


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    plan: ReplicationPlan = f.plan
    target = plan.base.goal.target
    for m in f.done:
        keys = {"seed": m["seed"], **maze_keys(m)}
        for role, setting in (("chosen", plan.chosen), ("reference", plan.base.reference)):
            if setting is None or m.get(role) is None:
                continue
            yield {
                **keys,
                "setting_role": role,
                "site": setting.site,
                "coeff": setting.coeff,
                **record_row(target, m[role]),
            }


GRID_TABLE = Table(
    "grid",
    "one row per setting of the grid (site x coefficient) over the discovery mazes: the objective, each damage "
    "measure's mean and the upper end of its interval, feasible and chosen",
    (
        Column("site", "str", "", "the setting's site"),
        Column("coeff", "float", "x vector", "the setting's coefficient"),
        Column("objective", "float", "", "mean change of the target in the wanted direction, or the fraction moved"),
        Column("objective_low", "float", "", "95% interval of the objective, lower end"),
        Column("objective_high", "float", "", "95% interval of the objective, upper end"),
        Column("n", "int", "mazes", "discovery mazes where the target is defined"),
        *(
            Column(f"{d}{part}", "float", unit, f"{about}: {what}")
            for d, (about, unit) in DAMAGES.items()
            for part, what in (("_mean", "mean over mazes"), ("_high", "upper end of its 95% interval"))
        ),
        Column("feasible", "bool", "", "every limited measure's upper end at or below its limit"),
        Column("violations", "str", "", "the limits it breaks, '; '-separated"),
        Column("chosen", "bool", "", "the setting chosen"),
    ),
)


def grid_table_rows(f: Finished) -> Iterator[dict[str, Any]]:
    chosen = f.body["choice"]["setting"]
    for r in f.body["grid"]:
        lo, hi = r["objective_ci"] or (None, None)
        row = {
            "site": r["site"],
            "coeff": r["coeff"],
            "objective": r["objective"],
            "objective_low": lo,
            "objective_high": hi,
            "n": r["change"]["n"],
            "feasible": r["feasible"],
            "violations": "; ".join(r["violations"]),
            "chosen": chosen is not None and (chosen["site"], chosen["coeff"]) == (r["site"], r["coeff"]),
        }
        for d in DAMAGES:
            s = r["damage"].get(d)
            row[f"{d}_mean"] = None if s is None else s["mean"]
            row[f"{d}_high"] = None if s is None or s["mean_ci"] is None else s["mean_ci"][1]
        yield row


def _cells(spec: Spec) -> tuple[int, ...]:
    return spec.options.replication


def _discovery(spec: Spec) -> tuple[int, ...]:
    return spec.seeds


STUDY = Study(
    name="choose",
    help="Choose the site and coefficient for a vector by an objective under limits on damage (discovery mazes), "
    "then judge it against the posts' setting on replication mazes.",
    options=ChooseOptions,
    check=check,
    plan=plan,
    report=report,
    summary=summary,
    cells=_cells,
    grows=False,
    stages=stages,
    stage_cells=_discovery,
    tables=(StudyTable(MAZES, maze_rows), StudyTable(GRID_TABLE, grid_table_rows)),
)


__all__ = ["STUDY", "VECTOR_FILE", "ReplicationPlan"]
