"""The `steer` command line: a thin Typer layer over `steer.experiments`.

Each command reads a YAML spec, validates it and the checkpoint before doing any work, runs with a
progress bar, and prints where its results went. User errors print one paragraph and exit with code 2.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from steer import experiments
from steer.errors import SteerError
from steer.specs import Spec, load_spec

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Algebraic value editing (activation steering) experiments on procgen maze policies.",
)
err = Console(stderr=True)
out = Console()

SpecArg = Annotated[Path, typer.Argument(help="YAML experiment spec (see configs/).", show_default=False)]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Output folder [default: outputs/<spec name>].")]
CkptOpt = Annotated[
    str | None,
    typer.Option("--checkpoint", help="Checkpoint path or known name (overrides the spec and STEER_CHECKPOINT)."),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="Torch device: cpu, or cuda where present.")]
WorkersOpt = Annotated[
    int, typer.Option("--workers", min=1, max=64, help="Processes to spread seeds over (results are identical).")
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Replace the results of a different run in the output folder; recompute all.")
]


@contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except SteerError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted:[/] finished files were kept; no file was left half-written.")
        raise typer.Exit(130) from None


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=False, disable=not err.is_terminal and os.environ.get("STEER_PROGRESS") != "1",
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda seed: bar.update(task, advance=1, description=f"{label} (seed {seed})")


def _prepare(spec_path: Path, out_dir: Path | None, checkpoint: str | None, device: str,
             require: tuple[str, ...]) -> tuple[Spec, experiments.Session, Path]:
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    spec = load_spec(spec_path, require=require)
    session = experiments.open_session(spec, checkpoint, device)
    return spec, session, out_dir or Path("outputs") / spec.name


def _done(folder: Path, files: list[str], extra: str = "") -> None:
    out.print(f"[green]wrote[/] {folder}/ : {', '.join(files)}{extra}", highlight=False, soft_wrap=True)


@app.command("compute-vector")
def compute_vector(
    spec: SpecArg, out_dir: OutOpt = None, checkpoint: CkptOpt = None, device: DeviceOpt = "cpu",
    force: ForceOpt = False, workers: WorkersOpt = 1,
) -> None:
    """Compute steering vectors (activation differences of paired mazes) and save them as files."""
    with _user_errors():
        s, session, folder = _prepare(spec, out_dir, checkpoint, device, require=("seeds", "vector"))
        with _progress("compute-vector", len(s.seeds)) as tick:
            report = experiments.run_compute_vector(s, session, folder, tick, force=force, workers=workers)
        _report_skipped(report)
        files = [v["file"] for v in report["vectors"]]
        _done(folder, [*files[:5], "vectors.json"], f" ({len(files)} vectors)")


@app.command("apply")
def apply(
    spec: SpecArg, out_dir: OutOpt = None, checkpoint: CkptOpt = None, device: DeviceOpt = "cpu",
    force: ForceOpt = False, workers: WorkersOpt = 1,
) -> None:
    """Apply a vector with a coefficient to target mazes; write field PNGs, field JSON and metrics.json."""
    with _user_errors():
        s, session, folder = _prepare(spec, out_dir, checkpoint, device, require=("seeds", "vector", "coeff"))
        with _progress("apply", len(s.seeds)) as tick:
            report = experiments.run_apply(s, session, folder, tick, force=force, workers=workers)
        _report_skipped(report)
        _print_summary(report)
        pngs = [f"field-seed{m['seed']}.png" for m in report["mazes"]]
        _done(folder, pngs[:3] + (["…"] if len(pngs) > 3 else []) + ["metrics.json"])


def _report_skipped(report: dict[str, Any]) -> None:
    if report.get("reused_cells"):
        err.print(f"resumed: reused {report['reused_cells']} finished cells from the previous run (--force recomputes)")
    for item in report.get("skipped", []):
        err.print(f"[yellow]skipped seed {item['seed']}:[/] {item['reason']}", highlight=False, soft_wrap=True)


def _print_summary(report: dict[str, Any]) -> None:
    s = report["summary"]

    def med(key: str, side: str) -> str:
        v = s[key][side]["median"]
        return "n/a" if v is None else f"{v:.3f}"

    out.print(
        f"{s['mazes']} mazes ({s['with_decision_square']} with a decision square): median P(cheese | decision "
        f"square) {med('p_cheese_ds', 'original')} -> {med('p_cheese_ds', 'patched')}; median P(top-right | "
        f"decision square) {med('p_top_right_ds', 'original')} -> {med('p_top_right_ds', 'patched')}; "
        f"median mean-TV {s['mean_tv']['median'] if s['mean_tv']['median'] is not None else float('nan'):.3f}",
        highlight=False, soft_wrap=True,
    )


@app.command("batch")
def batch(
    batch_file: Annotated[Path, typer.Argument(help="YAML batch file (see configs/reproduce.yaml).")],
    out_dir: OutOpt = None, device: DeviceOpt = "cpu", force: ForceOpt = False, workers: WorkersOpt = 1,
) -> None:
    """Run a list and/or grid of experiments, each into its own resumable folder."""
    from steer import batch as batches

    with _user_errors():
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        b = batches.load_batch(batch_file)
        folder = out_dir or Path("outputs") / b.name
        report = batches.run_batch(
            b, lambda spec: experiments.open_session(spec, None, device), folder, force=force, workers=workers,
            on_start=lambda e: err.print(f"[bold]{e.name}[/] ({e.command})", highlight=False),
        )
        reused = sum(e["reused_cells"] for e in report["experiments"])
        folders = [e["folder"] + "/" for e in report["experiments"]]
        _done(folder, [*folders[:6], "batch.json"],
              f" ({len(report['experiments'])} experiments; {reused} finished cells reused)")


def _register_studies() -> None:
    # compose, sweep-coeff and transfer live in cli/studies.py; it imports this module's helpers.
    from cli.studies import register

    register(app)


_register_studies()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
