"""`steer steerability configs/steerability-spec.yaml` timed whole, in process: 100 mazes x 21 coefficients x 3
sites (the prefix to each site once per maze, every coefficient through one batched suffix), on every usable
core, with the summaries, predictors, figures and tables. The goal: under 2 minutes on 2 cores.

`python benchmarks/bench_steerability.py` prints its row alone; `make bench` adds it to the table."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from timing import timed

from steer.run.cores import load_average, usable_cores

SPEC = "configs/steerability-spec.yaml"
OUT = Path("outputs/bench/steerability")


def steerability_figures(repeats: int = 1) -> dict[str, Any]:
    """The run's wall seconds (median of `repeats`, `force` so no earlier cell is reused), its size, the cores it
    ran on and the load average before and after (the machine may be shared)."""
    from steer.studies import run_spec

    workers = usable_cores()
    report: dict[str, Any] = {}
    before = load_average()
    seconds = timed(lambda: report.update(run_spec("steerability", SPEC, OUT, force=True, workers=workers)),
                    repeats, warm_up=False)  # fmt: skip
    return {
        "seconds": seconds,
        "mazes": report["summary"]["mazes"],
        "coeffs": len(report["coeffs"]),
        "sites": len(report["layers"]),
        "workers": workers,
        "load_average_start": before,
        "load_average_end": load_average(),
    }


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (
            f"steer steerability, {r['mazes']} mazes x {r['coeffs']} coefficients x {r['sites']} sites",
            f"{r['seconds']:.1f} s",
            f"whole run in process on {r['workers']} workers (load average {r['load_average_start']:.1f} before); "
            "goal < 2 min",
        )
    ]


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent.parent)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    figures = steerability_figures(int(os.environ.get("BENCH_REPEATS", "1")))
    for row in rows(figures):
        print(" | ".join(row))
