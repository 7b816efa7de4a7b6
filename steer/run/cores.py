"""How many cores steer may use, and how many of them are free right now.

Why it matters: torch's OpenMP threads split every layer evenly and wait for each other at its end. When
another process holds one of the cores, the thread that shares it is descheduled for whole time slices and
every layer waits for it: a field took 16x longer on this project's 2-core machine, where one thread
(which the scheduler simply moves to the free core) is only ~1.7x slower than two. So steer runs its cells in
single-threaded worker processes by default (`steer.run.runner`), runs a cell in its own process single-threaded
too, and gives the rest of its in-process work (plans, reports, the explorer) only the cores that are not busy
when it starts.

Single-threaded cells also make a run's bytes independent of where it ran on one machine: float32 sums over
large tensors (the norms compose, dose-response and layer-sweep report) are split between threads and round
differently (about 1e-7 relative), and on some CPUs (seen on an Intel Ice Lake) so do convolutions.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from steer.net.compiled import cpu_model


def usable_cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def machine() -> dict[str, str | int]:
    """What a figure was measured on: the CPU, the vector ISA torch's kernels dispatch to, the usable cores."""
    return {
        "cpu": cpu_model(),
        "isa": torch.backends.cpu.get_cpu_capability(),
        "cores": usable_cores(),
        "arch": platform.machine(),
    }


def load_average() -> float | None:
    """The 1-minute load average, or None where the system does not tell."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def busy_elsewhere(samples: int = 3, gap_s: float = 0.01) -> int:
    """Processes other than this one running now: the least of a few samples of the kernel's runnable count.

    /proc/loadavg's fourth field is "runnable/total" scheduling entities at this instant, this thread
    included; the least of three samples ignores a process that only flickers. 0 where it cannot be read.
    """
    least = None
    for i in range(samples):
        try:
            running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0
        least = running if least is None else min(least, running)
        if i + 1 < samples:
            time.sleep(gap_s)
    return max(0, (least or 1) - 1)


def use_free_cores() -> int:
    """Set torch's thread count to the usable cores that no other process is running on; returns it."""
    threads = max(1, usable_cores() - busy_elsewhere())
    torch.set_num_threads(threads)
    return threads


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread for the block (cells: the same bits as in a worker process), then as before."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
