"""What a study is: the declaration one module in `steer/studies/` makes, and the runner executes.

A study declares its command name, its options (a frozen dataclass of the keys it reads beside the shared ones,
each with its parser, default and the message a missing one gets: steer/run/options.py), its checks (run before
anything is loaded), a `plan` (vectors resolved, before the run folder opens) whose `cell` computes one seed, how the
report and figures are built from the finished cells, and its console summary. Everything else (validation
order, provenance, the run folder, resume, workers, atomic files, marking the run complete) is written once,
in `steer.run.runner`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PIL import Image

if TYPE_CHECKING:  # a worker that draws only maze panels never imports matplotlib
    from matplotlib.figure import Figure

from steer.errors import SteerError
from steer.io import Writer
from steer.net.vfield import NonFiniteError
from steer.report.tables import Table
from steer.run.options import NoOptions, Options
from steer.run.session import Session
from steer.run.specs import Spec, load_spec, parse_spec, spec_keys

CellResult = tuple[str, list[str], dict[str, Any]]  # ("done" | "skipped", files written, the cell's result)
# Runs an earlier stage of a study: (the stage's study, its spec, a subfolder name of the run) -> its report, with
# the stage's run folder under STAGE_FOLDER (for a step that reads the stage's files).
StageRunner = Callable[["Study", Spec, str], dict[str, Any]]
STAGE_FOLDER = "stage_folder"


class Plan(Protocol):
    """A study's resolved work: picklable (worker processes get a copy), one `cell` per seed."""

    layer: str  # the injection layer(s), for provenance

    def cell(self, session: Session, seed: int, out: Path) -> CellResult: ...


def run_cell(plan: Plan, session: Session, seed: int, out: Path) -> CellResult:
    """One cell, wherever it runs (this process, a worker, a Ray task); an error that stops the run names the
    maze it happened on."""
    try:
        return plan.cell(session, seed, out)
    except NonFiniteError as e:
        raise SteerError(f"seed {seed}: {e}") from None


@dataclass(frozen=True)
class Report:
    """What a study adds to the common report keys, and the figures drawn from all cells."""

    body: dict[str, Any]
    # name.png -> a Pillow image (maze panels) or a matplotlib Figure (charts: saved in each of the spec's formats)
    figures: dict[str, Image.Image | Figure] = field(default_factory=dict)
    # Other files drawn from all cells (discover's table.md): bytes, or a function that writes them piece by piece
    # (steer.io.Writer). A tidy table is declared under `Study.tables` instead, and the runner writes it.
    files: dict[str, bytes | Writer] = field(default_factory=dict)


@dataclass(frozen=True)
class Finished:
    """What a study's tables are made from: its plan, the spec, the finished cells' results (seed order, read as
    they are used: a table of 10,000 mazes is written a maze at a time), the report body the study built from
    them, and the run folder (for a cell's own files, e.g. retarget's per-target records)."""

    plan: Any
    spec: Spec
    done: Sequence[dict[str, Any]]
    body: Mapping[str, Any]
    folder: Path


@dataclass(frozen=True)
class StudyTable:
    """A table a study writes beside its report (`steer.report.tables`): its declaration and its rows."""

    table: Table
    rows: Callable[[Finished], Iterable[Mapping[str, Any]]]


def _no_checks(spec: Spec) -> None:
    return None


def _seeds(spec: Spec) -> tuple[int, ...]:
    return spec.seeds


def _no_lines(report: dict[str, Any]) -> list[str]:
    return []


def _no_cells(spec: Spec) -> tuple[int, ...]:
    return ()


@dataclass(frozen=True)
class Study:
    name: str  # the command: `steer <name>`
    help: str  # one line: the command's help
    plan: Callable[[Spec, Session], Plan]
    # (plan, session, spec, done results in seed order, skipped ones): `done` is a Sequence read as it is used
    report: Callable[[Plan, Session, Spec, Sequence[dict[str, Any]], list[dict[str, Any]]], Report]
    check: Callable[[Spec], None] = _no_checks  # checks that need no checkpoint
    cells: Callable[[Spec], tuple[int, ...]] = _seeds  # the seeds that are cells (transfer: its targets)
    summary: Callable[[dict[str, Any]], list[str]] = _no_lines  # console lines from the report
    options: type[Options] = NoOptions  # the keys it reads beside the shared ones (steer.run.options)
    # True when every cell depends on its own seed alone, so a run given more seeds reuses the finished cells;
    # False when the seeds feed every cell (transfer's sources default to its seeds).
    grows: bool = True
    report_name: str = "metrics.json"
    # A study in stages (steer discover): `stages(plan, session, run_stage)` runs its earlier stages, each a run of
    # its own (resumable, on the same workers or Ray) into a subfolder of this run's folder, and returns the plan
    # of the final stage, whose cells are `cells`. `stage_cells`: the earlier stages' cells, for progress.
    stages: Callable[[Any, Session, StageRunner], Any] | None = None
    stage_cells: Callable[[Spec], tuple[int, ...]] = _no_cells
    # The tidy tables beside the report (mazes.csv: a row per maze and condition; per-target tables and the like),
    # written by the runner from the finished cells, in CSV and (with pyarrow) Parquet; docs/outputs.md lists them.
    tables: tuple[StudyTable, ...] = ()

    def total_cells(self, spec: Spec) -> int:
        """Cells a run of `spec` computes in all, its stages' included (the progress bar's total)."""
        return len(self.stage_cells(spec)) + len(self.cells(spec))

    @property
    def allowed_keys(self) -> tuple[str, ...]:
        return spec_keys(self.options)

    def load(self, path: str | Path) -> Spec:
        """Read a YAML spec file for this study, checked in full."""
        spec = load_spec(path, self.options, self.name)
        self.check(spec)
        return spec

    def parse(self, data: Any, path: Path | None = None) -> Spec:
        """A spec for this study, checked in full: its keys, its options (a missing required one gets the
        option's own message) and the study's own checks."""
        spec = parse_spec(data, path, self.options, self.name)
        self.check(spec)
        return spec

    def validate(self, spec: Spec) -> None:
        """What `run_study` checks of the spec it is handed: parsed for this study (its options are this study's),
        and the study's own checks."""
        if not isinstance(spec.options, self.options):
            raise SteerError(
                f"spec {spec.name!r}: parsed for another command ({type(spec.options).__name__}), not for "
                f"`steer {self.name}`; parse it with this study (Study.parse or Study.load)."
            )
        self.check(spec)

    def listing(self, report: dict[str, Any]) -> list[str]:
        """The files the console names when the run ends."""
        return [*report.get("figures", []), self.report_name]


def seed_list(seeds: Sequence[int]) -> str:
    """Seeds for a message: the first ten."""
    return ", ".join(map(str, seeds[:10])) + (", …" if len(seeds) > 10 else "")


def check_show(spec: Spec) -> None:
    """Every seed a study's `show` names (the mazes it draws) is one of the run's seeds."""
    for i, seed in enumerate(spec.options.show):
        if seed not in spec.seeds:
            raise SteerError(f"show[{i}]: seed {seed} is not one of the seeds ({seed_list(spec.seeds)}).")
