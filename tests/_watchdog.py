"""Real CLI processes, run in parallel in the background under a watchdog that bounds each one's time and peak
memory: tests/test_hostile.py's process cases (the bombs and huge inputs).

`with watchdog(processes, max_parallel):` launches the `Watched` processes, at most max_parallel at a time, and
polls them every 20 ms: each is measured, killed past its deadline or RSS_LIMIT_KIB, and reaped, and then its
`done` is set and its `outcome` holds how it ended. Leaving the block stops the watchdog and kills what still runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from _harness import ROOT

RSS_LIMIT_KIB = 1536 * 1024  # 1.5 GiB peak RSS for a CLI process fed a bomb
# Runs the CLI as `python -m cli.main ARGS` would, and at exit writes the process's peak resident set (VmHWM, of
# this image alone) to the file named by the first argument.
_LAUNCH = """
import atexit, runpy, sys
peak = sys.argv.pop(1)

def _write_peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            with open(peak, "w") as f:
                f.write(line.split()[1])

atexit.register(_write_peak)
sys.argv[0] = "steer"
runpy.run_module("cli.main", run_name="__main__", alter_sys=True)
"""


@dataclass
class Outcome:
    """How one run of the CLI ended, in this process or as a real process."""

    code: int | None
    output: str
    seconds: float
    crash: str | None = None  # a traceback (in process) or a killed process
    peak_kib: int | None = None


class Watched:
    """One CLI process: output to a file; killed past its deadline or RSS_LIMIT_KIB; reaped with waitpid.

    Its peak memory is its own image's high-water mark (VmHWM), sampled while it runs and written by the process
    itself at exit (`_LAUNCH`). Not wait4's ru_maxrss: on Linux that carries over the forking parent's resident set
    (the copy made by fork, until exec), so it measured this test session, which grows with the suite.
    """

    def __init__(self, args: list[str], cwd: Path, timeout: float, log: Path) -> None:
        self.args, self.cwd, self.timeout, self.log = args, cwd, timeout, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.start = self.deadline = 0.0
        self.killed: str | None = None
        self.rss_seen = 0
        self.outcome: Outcome | None = None
        self.done = threading.Event()

    def launch(self) -> None:
        self._fh = self.log.open("wb")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.peak_file = self.log.with_suffix(".peak")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, str(self.peak_file), *self.args],
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.start = time.monotonic()
        self.deadline = self.start + self.timeout

    @property
    def running(self) -> bool:
        return self.proc is not None and not self.done.is_set()

    def _rss_kib(self) -> int:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):  # the peak so far, so a spike between two polls counts
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def _kill(self, why: str) -> None:
        assert self.proc is not None
        self.killed = why
        with contextlib.suppress(ProcessLookupError):  # its own session: the CLI and any worker it started
            os.killpg(self.proc.pid, signal.SIGKILL)

    def poll(self) -> None:
        """One watchdog step: measure, kill if over budget, reap if finished."""
        if self.proc is None or self.done.is_set():
            return
        self.rss_seen = max(self.rss_seen, self._rss_kib())
        if self.killed is None and self.rss_seen > RSS_LIMIT_KIB:
            self._kill(f"killed: RSS {self.rss_seen // 1024} MiB passed {RSS_LIMIT_KIB // 1024} MiB")
        elif self.killed is None and time.monotonic() > self.deadline:
            self._kill(f"killed: still running after {self.deadline - self.start:.0f}s")
        pid, status = os.waitpid(self.proc.pid, os.WNOHANG)
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = code  # reaped here; keep Popen from waiting again
        self._fh.close()
        raw = self.log.read_bytes()
        text = raw[:100_000].decode("utf-8", "replace") + (f"… ({len(raw)} bytes)" if len(raw) > 100_000 else "")
        try:  # what the process measured of itself at exit (absent when it was killed)
            own = int(self.peak_file.read_text())
        except (OSError, ValueError):
            own = 0
        peak = max(own, self.rss_seen)
        self.outcome = Outcome(code, text, time.monotonic() - self.start, self.killed, peak or None)
        self.done.set()


@contextlib.contextmanager
def watchdog(processes: Iterable[Watched], max_parallel: int) -> Iterator[None]:
    """Run `processes` under the watchdog while the block runs; then stop it and kill what is still running."""
    watched = list(processes)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set() and not all(w.done.is_set() for w in watched):
            for w in watched:
                w.poll()
            waiting = [w for w in watched if w.proc is None]
            for w in waiting[: max(0, max_parallel - sum(w.running for w in watched))]:
                w.launch()
            time.sleep(0.02)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        for w in watched:
            if w.running:
                assert w.proc is not None
                w._kill("teardown")
                w.proc.wait()
