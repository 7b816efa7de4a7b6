"""Progress while cells run: a rich bar on a terminal, plain lines elsewhere (CI logs, `make reproduce | tee`).

`STEER_PROGRESS=0` turns progress off; `STEER_PROGRESS=bar` forces the bar, `STEER_PROGRESS=lines` the lines.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

OnCell = Callable[[int], None]
LINE_EVERY_S = 5.0  # a plain line at most this often, plus the last cell's


@contextmanager
def progress(label: str, total: int, console: Console) -> Iterator[OnCell]:
    """Yields the callback a runner calls with each finished (or reused) cell's seed."""
    mode = os.environ.get("STEER_PROGRESS", "")
    if mode == "0":
        yield lambda seed: None
    elif mode == "bar" or (mode != "lines" and console.is_terminal):
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task(escape(label), total=total)
            yield lambda seed: bar.update(task, advance=1, description=escape(f"{label} (seed {seed})"))
    else:
        yield _lines(label, total, console)


def _lines(label: str, total: int, console: Console) -> OnCell:
    start = time.monotonic()
    state = {"done": 0, "said": start}

    def tick(seed: int) -> None:
        state["done"] += 1
        now = time.monotonic()
        if now - state["said"] >= LINE_EVERY_S or state["done"] == total:
            state["said"] = now
            console.print(
                f"{label}: {state['done']}/{total} cells (last: seed {seed}), {now - start:.0f} s",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )

    return tick
