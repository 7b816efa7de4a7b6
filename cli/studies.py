"""The study commands (`compose`, `sweep-coeff`, `transfer`): a thin Typer layer over `steer.studies`.

`cli.main` adds them with `register(app)` and they reuse its helpers and option types. Because cli.main
imports this module to call `register`, this module never imports cli.main at import time (that would be
circular whichever of the two is imported first): it reaches it as `cli.main` when a command runs, and
Typer reads the `cli.main.SpecArg`-style annotations (strings, PEP 563) only when the app is invoked.

Like `apply`, each command validates its spec, including the checks specific to the command, before the
checkpoint is loaded or the output folder is created.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

import cli
from steer import studies
from steer.specs import Spec, load_spec


def _run_study(
    command: str,
    runner: Callable[..., dict[str, Any]],
    spec: Path,
    out_dir: Path | None,
    checkpoint: str | None,
    device: str,
    force: bool,
    workers: int,
    cells: Callable[[Spec], int] = lambda s: len(s.seeds),
) -> tuple[dict[str, Any], Path]:
    """Validate the spec, load the checkpoint, run the study under a progress bar; the report and its folder."""
    require = studies.REQUIRED[command]
    studies.check_spec(load_spec(spec, require=require), command)  # before _prepare loads the checkpoint
    s, session, folder = cli.main._prepare(spec, out_dir, checkpoint, device, require=require)
    with cli.main._progress(command, cells(s)) as tick:
        report = runner(s, session, folder, tick, force=force, workers=workers)
    cli.main._report_skipped(report)
    return report, folder


def _listing(files: list[str], limit: int = 3) -> list[str]:
    return files[:limit] + (["…"] if len(files) > limit else [])


def _med(stats: dict[str, Any]) -> str:
    return "n/a" if stats.get("median") is None else f"{stats['median']:.3f}"


def _say(text: str) -> None:
    cli.main.out.print(text, highlight=False, soft_wrap=True)


def compose(spec: cli.main.SpecArg, out_dir: cli.main.OutOpt = None, checkpoint: cli.main.CkptOpt = None,
        force: cli.main.ForceOpt = False, workers: cli.main.WorkersOpt = 1,
            device: cli.main.DeviceOpt = "cpu") -> None:
    """Apply several vectors together (each with its own coefficient and layer); measure their additivity."""
    with cli.main._user_errors():
        report, folder = _run_study("compose", studies.run_compose, spec, out_dir, checkpoint, device, force, workers)
        summary = report["summary"]
        _say(f"{summary['mazes']} mazes: median additivity error {_med(summary['additivity_error'])}; median "
             f"P(cheese | decision square) {_med(summary['p_cheese_ds']['original'])} -> "
             f"{_med(summary['p_cheese_ds']['patched'])}")
        pngs = [f"compose-seed{m['seed']}.png" for m in report["mazes"]]
        cli.main._done(folder, [*_listing(pngs), "metrics.json"])


def sweep_coeff(spec: cli.main.SpecArg, out_dir: cli.main.OutOpt = None, checkpoint: cli.main.CkptOpt = None,
        force: cli.main.ForceOpt = False, workers: cli.main.WorkersOpt = 1,
                device: cli.main.DeviceOpt = "cpu") -> None:
    """Apply one vector at each of several coefficients; chart each metric against the coefficient."""
    with cli.main._user_errors():
        report, folder = _run_study("sweep-coeff", studies.run_sweep, spec, out_dir, checkpoint, device, force, workers)
        for row in report["summary"]["by_coeff"]:
            _say(f"coeff {row['coeff']:g}: median mean-TV {_med(row['mean_tv'])}, P(step toward top-right) "
                 f"{_med(row['p_toward_top_right']['patched'])}, entropy {_med(row['entropy'])}, P(into wall) "
                 f"{_med(row['wall_mass'])}")
        cli.main._done(folder, [*report["figures"], "metrics.json"])


def transfer(spec: cli.main.SpecArg, out_dir: cli.main.OutOpt = None, checkpoint: cli.main.CkptOpt = None,
        force: cli.main.ForceOpt = False, workers: cli.main.WorkersOpt = 1,
             device: cli.main.DeviceOpt = "cpu") -> None:
    """Apply vectors computed on source mazes to target mazes; write a source x target effect matrix."""
    with cli.main._user_errors():
        report, folder = _run_study("transfer", studies.run_transfer, spec, out_dir, checkpoint, device, force, workers,
                                    cells=lambda s: len(studies.transfer_seeds(s)[1]))  # one cell per target
        values = [v for row in report["matrices"]["effect"] for v in row if v is not None]
        span = f", from {min(values):+.3f} to {max(values):+.3f}" if values else ""
        _say(f"{len(report['sources'])} x {len(report['targets'])} pairs; effect = change in "
             f"{report['effect_metric']}, defined for {len(values)}{span}")
        cli.main._done(folder, ["transfer-matrix.png", *_listing(report["figures"]), "metrics.json"])


def layer_sweep(spec: cli.main.SpecArg, out_dir: cli.main.OutOpt = None, checkpoint: cli.main.CkptOpt = None,
        force: cli.main.ForceOpt = False, workers: cli.main.WorkersOpt = 1,
                device: cli.main.DeviceOpt = "cpu") -> None:
    """Compute and apply the same vector kind at every layer (or `layers:`); compare the effect per layer."""
    with cli.main._user_errors():
        report, folder = _run_study("layer-sweep", studies.run_layer_sweep, spec, out_dir, checkpoint, device, force,
                                    workers)
        rows = report["summary"]["by_layer"]
        best = [r for r in rows if r["p_cheese_ds"]["patched"]["median"] is not None]
        if best:
            low = min(best, key=lambda r: r["p_cheese_ds"]["patched"]["median"])
            _say(f"{len(rows)} layers, {report['summary']['mazes']} mazes: lowest median P(cheese | decision square) "
                 f"{low['p_cheese_ds']['patched']['median']:.3f} at {low['layer']}")
        cli.main._done(folder, ["layer-sweep.png", "metrics.json"])


def register(app: typer.Typer) -> None:
    """Add the study commands to the `steer` app."""
    import cli.main  # noqa: F401 - loads the helpers the commands reach as cli.main (see the module docstring)

    app.command("compose")(compose)
    app.command("sweep-coeff")(sweep_coeff)
    app.command("transfer")(transfer)
    app.command("layer-sweep")(layer_sweep)
