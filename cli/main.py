"""The `steer` command line: a thin Typer layer over the study registry (`steer.studies.STUDIES`).

One command per study, built in a loop with the shared options defined once, plus `batch`, `tune`,
`report`, `explore` and `vector info`. Each command
reads a YAML spec, validates it and the checkpoint before doing any work, runs with a progress bar, and
prints where its results went. User errors print one paragraph and exit with code 2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from steer.errors import SteerError, printable
from steer.io import atomic_write_bytes
from steer.net.compiled import describe
from steer.report.claims_text import junit as claims_junit
from steer.run.cores import use_free_cores
from steer.run.executors import check_executor
from steer.run.progress import progress
from steer.run.runner import run_study
from steer.run.session import open_session
from steer.run.study import Study
from steer.studies import STUDIES

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Algebraic value editing (activation steering) experiments on procgen maze policies.",
)
err = Console(stderr=True)
out = Console()

SpecArg = Annotated[Path, typer.Argument(help="YAML experiment spec (see configs/).", show_default=False)]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Output folder (default: outputs/<spec name>/).")]
CkptOpt = Annotated[
    str | None,
    typer.Option("--checkpoint", help="Checkpoint path or known name (overrides the spec and STEER_CHECKPOINT)."),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="Torch device: cpu, or cuda where present.")]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        max=64,
        help="Single-threaded processes to spread seeds over; default one per core (results are identical).",
        show_default=False,
    ),
]
ExecutorOpt = Annotated[
    str,
    typer.Option(
        "--executor",
        help="Where cells run: local (this machine; see --workers) or ray (Ray tasks; needs the ray extra). "
        "The results are byte-identical.",
    ),
]
AddressOpt = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="With --executor ray: the Ray cluster to use (HOST:PORT from `ray start --head`, ray://HOST:PORT, or "
        "auto). Without it a local Ray instance is started for the run and stopped after.",
    ),
]
PickleOpt = Annotated[
    bool,
    typer.Option(
        "--allow-pickle-checkpoint",
        help="Load a legacy pickled checkpoint; this runs code from the file, so use it only for a file you trust.",
    ),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Replace the results of a different run in the output folder; recompute all.")
]


@contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except SteerError as e:
        # The message may quote a file's bytes: control characters are escaped, markup too, as a last defence.
        err.print(f"[bold red]error:[/] {escape(printable(str(e)))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted:[/] finished files were kept; no file was left half-written.")
        raise typer.Exit(130) from None


def _done(folder: Path, files: list[str], extra: str = "") -> None:
    out.print(f"[green]wrote[/] {folder}/ : {', '.join(files)}{extra}", highlight=False, soft_wrap=True)


def _listing(files: list[str], limit: int = 3) -> list[str]:
    return files[:limit] + (["…"] if len(files) > limit else [])


def _report_skipped(report: dict[str, Any]) -> None:
    if report.get("reused_cells"):
        err.print(f"resumed: reused {report['reused_cells']} finished cells from the previous run (--force recomputes)")
    for item in report.get("skipped", []):
        err.print(f"[yellow]skipped seed {item['seed']}:[/] {escape(item['reason'])}", highlight=False, soft_wrap=True)


def _study_command(study: Study) -> Callable[..., None]:
    """The `steer <study>` command: validate the spec, load the checkpoint, run under a progress bar, report."""

    def command(
        spec: SpecArg,
        out_dir: OutOpt = None,
        checkpoint: CkptOpt = None,
        device: DeviceOpt = "cpu",
        force: ForceOpt = False,
        workers: WorkersOpt = None,
        executor: ExecutorOpt = "local",
        address: AddressOpt = None,
        allow_pickle_checkpoint: PickleOpt = False,
    ) -> None:
        with _user_errors():
            use_free_cores()
            parsed = study.load(spec)  # in full, before the checkpoint is loaded
            check_executor(executor, address)
            session = open_session(parsed, checkpoint, device, allow_pickle_checkpoint)
            folder = out_dir or Path("outputs") / parsed.name
            with progress(study.name, study.total_cells(parsed), err) as tick:
                report = run_study(
                    study,
                    parsed,
                    session,
                    folder,
                    tick,
                    force=force,
                    workers=workers,
                    executor=executor,
                    address=address,
                )
            _report_skipped(report)
            err.print(describe(session.policy), highlight=False, soft_wrap=True)
            for line in study.summary(report):
                out.print(line, highlight=False, soft_wrap=True)
            *figures, report_name = study.listing(report)
            _done(folder, [*_listing(figures), report_name, *(t.table.csv for t in study.tables)])

    command.__doc__ = study.help
    command.__name__ = study.name.replace("-", "_")
    return command


for _study in STUDIES.values():
    app.command(_study.name)(_study_command(_study))


@app.command("batch")
def batch(
    batch_file: Annotated[Path, typer.Argument(help="YAML batch file (see configs/reproduce.yaml).")],
    out_dir: OutOpt = None,
    device: DeviceOpt = "cpu",
    force: ForceOpt = False,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    allow_pickle_checkpoint: PickleOpt = False,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write the claims' verdicts as JUnit XML.")] = None,
    seeds: Annotated[
        str | None,
        typer.Option(
            "--seeds",
            metavar="FROM-TO",
            help="Run the whole batch on these mazes instead: every experiment draws its mazes again from FROM "
            "by its own rule, and the claims are judged on this sample alone.",
        ),
    ] = None,
    fresh_replication: Annotated[
        bool,
        typer.Option(
            "--fresh-replication",
            help="Draw the replication sample again on the next untouched seeds (by the same rule), recorded in the "
            "batch's lock before they are measured: what a batch needs after its criteria changed.",
        ),
    ] = False,
) -> None:
    """Run a list and/or grid of experiments, each into its own resumable folder; judge the batch's claims.

    With `samples:` in the batch file every experiment also runs on the replication sample, and a claim holds or
    fails only when both samples say so. Exits 1 when a claim's verdict differs from its `expect:`.
    """
    from steer import batch as batches

    with _user_errors():
        use_free_cores()
        drawn = batches.parse_seed_range(seeds) if seeds is not None else None
        if fresh_replication and drawn is not None:
            raise SteerError(
                "--fresh-replication: --seeds judges one sample alone, with no replication sample to draw again; "
                "give one of the two."
            )
        b = batches.load_batch(batch_file, drawn, fresh=fresh_replication)
        folder = out_dir or Path("outputs") / b.name
        report = batches.run_batch(
            b,
            lambda spec: open_session(spec, None, device, allow_pickle_checkpoint),
            folder,
            force=force,
            workers=workers,
            executor=executor,
            address=address,
            on_start=lambda e: err.print(f"[bold]{escape(e.name)}[/] ({e.command})", highlight=False),
            progress=lambda label, total: progress(label, total, err),
        )
        reused = sum(e["reused_cells"] for e in report["experiments"])
        folders = [e["folder"] + "/" for e in report["experiments"]]
        claims = report.get("claims", [])
        summaries = ["summary.md", "summary.html", "claims.json", "claims.png"] if claims else []
        _done(
            folder,
            [*folders[:6], "batch.json", *summaries],
            f" ({len(report['experiments'])} experiments; {reused} finished cells reused)",
        )
        if junit is not None and claims:
            atomic_write_bytes(junit, claims_junit(claims, b.name))
        if claims and report.get("seal", {}).get("said"):
            out.print(escape(printable(report["seal"]["said"])), highlight=False, soft_wrap=True)
        for row in claims:
            mark = "[green]as expected[/]" if row["as_expected"] else f"[bold red]expected {row['expect']}[/]"
            shown = f"{escape(printable(row['id']))}: [bold]{row['verdict']}[/] · {escape(printable(row['shown']))}"
            if row.get("why"):  # a vacuous or underpowered verdict says why on the line, not only in summary.md
                shown += f" · {escape(printable(row['why']))}"
            out.print(f"{shown} · {mark}", highlight=False, soft_wrap=True)
        unexpected = [r["id"] for r in claims if not r["as_expected"]]
        if unexpected:
            err.print(
                f"[bold red]{len(unexpected)} claim(s) did not get their expected verdict:[/] "
                f"{escape(printable(', '.join(unexpected)))}",
                highlight=False,
            )
            raise typer.Exit(1)


@app.command("tune")
def tune(
    checkpoint: CkptOpt = None,
    again: Annotated[bool, typer.Option("--again", help="Remove this machine's packages and choice first.")] = False,
) -> None:
    """Compile the network's units for this CPU, check them against eager bit for bit, keep the faster path."""
    from steer.net import checkpoints, compiled
    from steer.run.tuning import tune_here

    with _user_errors():
        if again:
            compiled.clear()
        policy = checkpoints.load(checkpoint).policy
        out.print(
            f"tuning in {compiled.package_dir()} (packages are built once per torch version and CPU)",
            highlight=False,
            soft_wrap=True,
        )
        choice = tune_here(policy, log=lambda line: err.print(line, highlight=False))
        out.print(
            f"eager {choice.eager_gflops:.0f} GFLOP/s, compiled units {choice.compiled_gflops:.0f} GFLOP/s on one "
            f"thread ({choice.cpu}, {choice.isa}): chose {choice.path} ({choice.why})",
            highlight=False,
            soft_wrap=True,
        )
        out.print(describe(policy), highlight=False, soft_wrap=True)


@app.command("report")
def report(
    folder: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", help="A run folder a steer command wrote (it holds manifest.json).", show_default=False
        ),
    ],
) -> None:
    """Rebuild report.html in a finished run folder from its manifest and report JSON."""
    from steer.report.html import read_run, write_report_html

    with _user_errors():
        study = STUDIES.get(str(read_run(folder)[0].get("command")))
        page = write_report_html(folder, study.help if study is not None else "")
        _done(folder, [page.name], " (open it in a browser; it needs no network)")


@app.command("explore")
def explore(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. Keep 127.0.0.1 unless others must reach it: the explorer has no login.",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: a free one).")] = 8765,
    checkpoint: CkptOpt = None,
    vectors: Annotated[
        Path | None,
        typer.Option("--vectors", help="A folder of vector files the page may load (besides the working folder)."),
    ] = None,
    device: DeviceOpt = "cpu",
    allow_pickle_checkpoint: PickleOpt = False,
) -> None:
    """Open a local web app: pick a maze and a vector, move the coefficient, edit the maze, watch the field."""
    from steer.explore import app as web

    with _user_errors():
        use_free_cores()
        port = port or web.free_port(host)
        web.check_port(host, port)  # before the checkpoint loads: a busy port is found in a second
        explorer = web.Explorer.open(checkpoint, device, [vectors] if vectors else [], allow_pickle_checkpoint)
        if host not in web.LOCAL_NAMES and host != "::1":
            # Requests must still name this address (or a local name) in their Host header: DNS rebinding guard.
            err.print(
                f"[yellow]note:[/] listening on {escape(host)}: anyone who can reach it can use the explorer. "
                "Requests must address it by that name or a local one; 0.0.0.0 accepts only local names."
            )
        out.print(
            f"steer explore: open [bold]{web.url_for(host, port)}[/] in a browser (Ctrl-C stops it)", highlight=False
        )
        web.serve(explorer, host, port)


vector_app = typer.Typer(no_args_is_help=True, help="Vector files: what one holds.")
app.add_typer(vector_app, name="vector")


@vector_app.command("info")
def vector_info(
    file: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="A vector file (.safetensors, or a legacy .pt).", show_default=False),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON, for scripts.")] = False,
) -> None:
    """Print a vector file's metadata (kind, layer, checkpoint, mode, seeds, pair) and its tensor's shape and norm."""
    import json

    from steer.net.vectors import vector_info as describe_vector

    with _user_errors():
        info = describe_vector(file)
    if as_json:
        typer.echo(json.dumps(info.to_json(), indent=1))
        return
    rows = [(printable(label), printable(value)) for label, value in info.rows()]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:  # aligned by hand: a rich table pads every line to the terminal's width
        out.print(f"[bold]{escape(label.ljust(width))}[/]  {escape(value)}", highlight=False, soft_wrap=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
