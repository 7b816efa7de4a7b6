"""Running a batch: plan every experiment, seal the criteria, run both samples, judge the claims, grow the
underpowered claims' samples, then write batch.json, claims.json, summary.md, the claims chart (claims.png and
claims.svg) and summary.html."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steer.analysis.claim_specs import Claim, experiments_of
from steer.analysis.claims import evaluate, replicated
from steer.analysis.seal import seal_text
from steer.batch.experiments import Experiment
from steer.batch.load import REPLICATION, Batch, load_batch
from steer.errors import SteerError
from steer.io import atomic_write_bytes, atomic_write_json, prepare_out_dir
from steer.report.claims_chart import claims_chart
from steer.report.claims_text import markdown
from steer.report.figures import save_figure
from steer.report.html import CLAIMS_CHART, write_summary_html
from steer.run.executors import check_executor, started
from steer.run.runner import run_study
from steer.run.session import Session
from steer.run.specs import Spec
from steer.studies import STUDIES

GROWTH_RULE = (
    "A claim whose interval is wider than its stated precision on either sample (underpowered) has its "
    "experiments drawn again, on both samples, with the next step's factor times as many mazes by the same "
    "ranges and rules, and is judged again; growth stops when no claim is underpowered or the steps run out, and "
    "a claim still too wide at the last step stays underpowered."
)


CHART_FORMATS = ("png", "svg")  # the claims chart: PNG for the page, SVG for a paper or slides

Plan = tuple[Experiment, str, Session, Any]  # an experiment, its folder, its session and its study's plan


@dataclass
class BatchRun:
    """One run of a batch: its sessions (one per checkpoint and mode), the folders it ran and how, and where to."""

    batch: Batch
    out: Path
    open_session: Callable[[Spec], Session]
    options: dict[str, Any]
    sessions: dict[tuple[Any, ...], Session] = field(default_factory=dict)
    index: dict[str, dict[str, Any]] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)

    def plan(self, b: Batch, names: set[str] | None = None) -> list[Plan]:
        """Every experiment of `b` (or those named), on both samples, planned before any runs."""
        runs = [(exp, exp.name) for exp in b.experiments] + [
            (exp, f"{REPLICATION}/{exp.name}") for exp in b.replication
        ]
        plans = []
        for exp, folder in runs:
            if names is not None and exp.name not in names:
                continue
            key = (exp.spec.checkpoint, exp.spec.distribution_mode)
            try:
                if key not in self.sessions:
                    self.sessions[key] = self.open_session(exp.spec)
                plans.append((exp, folder, self.sessions[key], STUDIES[exp.command].plan(exp.spec, self.sessions[key])))
            except SteerError as e:
                raise SteerError(f"experiment {folder!r} ({exp.command}): {e}") from None
        return plans

    def run(self, plans: list[Plan], factor: int) -> None:
        o = self.options
        for exp, folder, session, plan in plans:
            if o["on_start"]:
                o["on_start"](exp if folder == exp.name else Experiment(folder, exp.command, exp.spec))
            study = STUDIES[exp.command]
            # A study whose run identity holds its seeds (transfer, probe) cannot resume a larger sample: in a batch
            # that grows, its folder may hold the grown run of an earlier invocation, so it is computed afresh.
            again = o["force"] or (not study.grows and bool(self.batch.grow))
            progress = o["progress"]
            with progress(folder, study.total_cells(exp.spec)) if progress else nullcontext(None) as tick:
                report = run_study(
                    study,
                    exp.spec,
                    session,
                    self.out / folder,
                    tick,
                    again,
                    o["workers"],
                    plan,
                    o["executor"],
                    o["address"],
                )
            self.index[folder] = {
                "name": exp.name,
                "command": exp.command,
                "folder": folder,
                "sample": REPLICATION if folder != exp.name else "discovery",
                "factor": factor,
                "reused_cells": report.get("reused_cells", 0),
            }

    def judge(self) -> list[dict[str, Any]]:
        rows = evaluate(self.batch.claims, self.out)
        return replicated(rows, evaluate(self.batch.claims, self.out / REPLICATION)) if self.batch.replication else rows

    def grow(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each step of `samples.grow` in turn: the underpowered claims' experiments drawn again at that factor on
        both samples, and every claim judged again; until none is underpowered or the steps run out."""
        b = self.batch
        for factor in b.grow:
            weak = [c for c, r in zip(b.claims, rows, strict=True) if r["verdict"] == "underpowered"]
            if not weak:
                break
            names = set().union(*(experiments_of(c) for c in weak))
            assert b.path is not None
            sample = b.seal.replication if b.seal else None
            self.run(self.plan(load_batch(b.path, b.seeds, factor, sample=sample), names), factor)
            rows = self.judge()
            self.rounds.append({"factor": factor, "claims": [c.id for c in weak], "experiments": sorted(names)})
        return rows


def run_batch(
    batch: Batch,
    open_session: Callable[[Spec], Session],
    out: Path,
    force: bool = False,
    workers: int | None = 1,
    executor: str = "local",
    address: str | None = None,
    on_start: Callable[[Experiment], None] | None = None,
    progress: Callable[[str, int], AbstractContextManager[Callable[[int], None]]] | None = None,
) -> dict[str, Any]:
    """Run every experiment into `out/<name>/`; sessions are opened per distinct checkpoint and mode.

    Four steps: plan every experiment (checkpoint loaded, layers resolved, vector files and source vectors built)
    before the first runs, so a bad layer in the last experiment fails before the first spends any time; seal the
    criteria (the lock written before the replication sample is measured); run and judge; grow the underpowered
    claims' samples; then write the summaries. With `executor="ray"` one Ray connection serves every experiment.
    """
    check_executor(executor, address)
    options = {
        "force": force,
        "workers": workers,
        "executor": executor,
        "address": address,
        "on_start": on_start,
        "progress": progress,
    }
    state = BatchRun(batch, Path(out), open_session, options)
    plans = state.plan(batch)
    state.out = prepare_out_dir(out)
    if batch.seal is not None and batch.seal.write:
        batch.seal.lock.write()
    rows: list[dict[str, Any]] = []
    with started(executor, address):
        state.run(plans, batch.factor)
        if batch.claims:
            rows = state.grow(state.judge())
    return _summarise(state, rows)


def _summarise(state: BatchRun, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """batch.json, and with claims claims.json, summary.md, the claims chart (claims.png, claims.svg) and
    summary.html."""
    batch, out = state.batch, state.out
    result: dict[str, Any] = {"batch": batch.name, "samples": batch.samples, "experiments": list(state.index.values())}
    sealed = seal_text(batch.seal.lock if batch.seal else None, batch.seal.entry if batch.seal else None)
    result["seal"] = sealed
    if batch.grow:
        result["growth"] = {"steps": list(batch.grow), "rule": GROWTH_RULE, "rounds": state.rounds}
    if batch.claims:
        grown = {e["name"]: e["factor"] for e in state.index.values()}
        for claim, row in zip(batch.claims, rows, strict=True):
            row["sample_factor"] = max(grown.get(n, 1) for n in experiments_of(claim))
        result["claims"] = rows
        atomic_write_json(out / "claims.json", rows)
        first = next(iter(state.sessions.values()))
        header = summary_header(batch, state.rounds, sealed["said"], first)
        atomic_write_bytes(out / "summary.md", markdown(rows, header).encode())
        chart = claims_chart(rows, f"{batch.name}: claims")
        save_figure(chart, out / CLAIMS_CHART, CHART_FORMATS)  # before the page, which inlines it
        write_summary_html(out, rows, batch.name, {**first.checkpoint.provenance(), "mode": first.mode}, sealed["said"])
    atomic_write_json(out / "batch.json", result)
    return result


def summary_header(batch: Batch, rounds: list[dict[str, Any]], sealed: str, session: Session) -> str:
    samples = ""
    if batch.replication:
        (d0, d1), (r0, r1) = batch.samples["discovery"], batch.samples["replication"]
        samples = (
            f" Each claim is measured on a discovery sample (the experiments' mazes, seeds {d0}-{d1}) and "
            f"on a disjoint replication sample (the same experiments drawn again from seeds {r0}-{r1} by "
            "their own rules); it holds or fails only when both samples say so, and one holding while the "
            "other fails is 'does not replicate'. Pooled: every maze of both samples."
        )
    if batch.grow:
        grew = "; ".join(f"x{r['factor']}: {', '.join(r['experiments'])}" for r in rounds) or "none was needed"
        samples += f" {GROWTH_RULE} Steps {list(batch.grow)}; grown: {grew}."
    return (
        f"# {batch.name}: claims and verdicts\n\n{sealed}\n\nEach row: the post's sentence, the setting run, the "
        "criterion, the measured effect over mazes (95% bootstrap interval, n, what was left out and why, Wilcoxon "
        "signed-rank p for paired changes, Holm-adjusted p over the batch's findings, the effect detectable at this "
        "n with 80% power), the fractions of mazes moved the claimed way, the opposite way and not at all (95% "
        "Wilson intervals), a control (judged against, maze by maze, unless marked a reference) and the verdict "
        "that follows mechanically from interval and criterion: an interval wholly beyond the threshold decides, "
        f"whatever its width; a straddling one wider than the precision is underpowered.{samples} Default "
        f"checkpoint `{session.checkpoint.name}` (sha256 `{session.checkpoint.sha256[:16]}…`), {session.mode} mode. "
        "Per-maze values: each experiment's metrics.json."
    )


def claim_experiments(claim: Claim) -> set[str]:
    """The experiments a claim reads (steer.analysis.claims.experiments_of)."""
    return experiments_of(claim)
