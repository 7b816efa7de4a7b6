"""Compiled units of the policy: AOTInductor packages of its residual-stream blocks, used only where exact.

Why: on the CPUs measured, eager PyTorch runs each convolution near the matrix peak but loses a fifth to a half
of the network's time between them (max-pooling, ReLUs, adds, allocation, Python), and how much differs by CPU
(docs/speed.md). Inductor generates fused C++ for that glue and calls the same oneDNN convolutions and matrix
products as eager, so its results are bit for bit eager's; `tune` checks that on real observations of both modes
before a machine uses them, and never assumes it.

The units cut the network at its residual stream, the sites steering acts on: per block `conv` + `maxpool`, per
residual block `relu1` .. `resadd`, and the head `relu3` .. `fc_value`. A pass whose hooks sit on unit
boundaries (`block2.res1.resadd_out`, `block3.maxpool`, ...) runs the units; a unit with a hook or a kept value
inside runs eagerly, site by site (`ImpalaPolicy.run`). The weights are inputs, not constants, so one package
serves every checkpoint of its shape (the 160M, 2M and 0.75M snapshots share seven packages), and the batch is a
dynamic dimension, so no batch size compiles again.

Packages are built once per machine by `steer tune` (75 s on one core of a 2-core AMD EPYC; `make bench` runs it) into
`cache_dir()`, keyed by torch's version, the CPU and the ISA torch dispatches to, and loaded through torch's C++
package loader in milliseconds, so a worker process pays nothing (a warm `torch.compile` cache still costs about
3 s per process). Where the compiler, the packages or the choice are missing, or `STEER_EXECUTION=eager`, the
network runs eagerly as before; `describe()` is the one line that says which path runs.

Over 400 lines on purpose: build, check, load and choose are one contract (bits identical to eager), read best
in one place.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from steer.errors import SteerError
from steer.io import atomic_write_json
from steer.net.policy import FusedUnit, ImpalaPolicy

Kind = Literal["convpool", "res", "head"]
# Bumped when a unit's code or the package layout changes, so stale packages are never loaded.
FORMAT = 1
EXECUTION_ENV = "STEER_EXECUTION"  # auto (default): the tuned choice; eager; compiled
# The choice must beat eager by more than run-to-run noise (a few percent on a quiet machine) to be taken.
MARGIN = 1.03
_MAX_BATCH = 1 << 16


# -- the units --------------------------------------------------------------------------------------------


class ConvPool(nn.Module):
    """`block{b}.conv` then `block{b}.maxpool`, as the policy's sites compute them."""

    def forward(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.conv2d(x, w, b, padding=1), kernel_size=3, stride=2, padding=1)


class Res(nn.Module):
    """`relu1, conv1, relu2, conv2, resadd` of one residual block."""

    def forward(
        self, x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor
    ) -> torch.Tensor:
        return torch.add(F.conv2d(F.relu(F.conv2d(F.relu(x), w1, b1, padding=1)), w2, b2, padding=1), x)


class Head(nn.Module):
    """`relu3, flatten, fc, relufc`, then both heads."""

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        b: torch.Tensor,
        wp: torch.Tensor,
        bp: torch.Tensor,
        wv: torch.Tensor,
        bv: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(F.linear(torch.flatten(F.relu(x), start_dim=1), w, b))
        return F.linear(h, wp, bp), F.linear(h, wv, bv)


_MODULES: dict[Kind, Callable[[], nn.Module]] = {"convpool": ConvPool, "res": Res, "head": Head}


@dataclass(frozen=True)
class Unit:
    """A run of sites computed as one package: from `input`'s value to `outputs`, reading `params`."""

    kind: Kind
    first: str
    outputs: tuple[str, ...]
    input: str
    params: tuple[str, ...]  # names in the policy's state_dict, in the module's argument order
    in_shape: tuple[int, ...]  # one observation's input shape

    def key(self, policy: ImpalaPolicy) -> str:
        """The package's name: its kind and every shape it was compiled for (not the weights' values)."""
        state = policy.state_dict()
        shapes = "_".join("x".join(map(str, state[p].shape)) for p in self.params)
        return f"{self.kind}-{'x'.join(map(str, self.in_shape))}-{shapes}"


def units(policy: ImpalaPolicy) -> list[Unit]:
    """The policy's units, in order, with one observation's input shape at each."""
    shapes = {k: tuple(policy.activation_shape(k)) for k in policy.hook_names}
    out: list[Unit] = []
    stream, stream_shape = "input", (3, 64, 64)
    for b in (1, 2, 3):
        p = f"embedder.block{b}"
        out.append(
            Unit(
                "convpool",
                f"block{b}.conv",
                (f"block{b}.maxpool",),
                stream,
                (f"{p}.conv.weight", f"{p}.conv.bias"),
                stream_shape,
            )
        )
        stream, stream_shape = f"block{b}.maxpool", shapes[f"block{b}.maxpool"]
        for r in (1, 2):
            q = f"{p}.res{r}"
            params = (f"{q}.conv1.weight", f"{q}.conv1.bias", f"{q}.conv2.weight", f"{q}.conv2.bias")
            out.append(
                Unit("res", f"block{b}.res{r}.relu1", (f"block{b}.res{r}.resadd",), stream, params, stream_shape)
            )
            stream = f"block{b}.res{r}.resadd"
    head = (
        "embedder.fc.weight",
        "embedder.fc.bias",
        "fc_policy.weight",
        "fc_policy.bias",
        "fc_value.weight",
        "fc_value.bias",
    )
    out.append(Unit("head", "relu3", ("fc_policy", "fc_value"), stream, head, stream_shape))
    return out


# -- where packages live ----------------------------------------------------------------------------------


def cache_dir() -> Path:
    """`STEER_CACHE_DIR`, else `$XDG_CACHE_HOME/steer`, else `~/.cache/steer`."""
    if os.environ.get("STEER_CACHE_DIR"):
        return Path(os.environ["STEER_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "steer"


def cpu_model() -> str:
    """The CPU's model name, family and model numbers (from /proc/cpuinfo), e.g. "AMD EPYC (family 25 model 17)".

    Kernels (oneDNN's and inductor's) are chosen per CPU, so packages and choices are kept per CPU model.
    """
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']} model {fields['model']})"
    return name


def package_dir() -> Path:
    """This machine's packages and choice: one folder per torch version, CPU, ISA and unit format."""
    ident = f"{torch.__version__}|{cpu_model()}|{torch.backends.cpu.get_cpu_capability()}|{platform.machine()}|{FORMAT}"
    return cache_dir() / "aoti" / hashlib.sha256(ident.encode()).hexdigest()[:16]


def _package(directory: Path, key: str) -> Path:
    return directory / f"{key}.pt2"


# -- loading ----------------------------------------------------------------------------------------------


def _loader(path: Path) -> Callable[[list[torch.Tensor]], list[torch.Tensor]]:
    """Load a package through torch's C++ loader (milliseconds; the Python one imports inductor, ~1 s)."""
    aoti = getattr(torch._C, "_aoti", None)
    if aoti is not None and hasattr(aoti, "AOTIModelPackageLoader"):
        # (path, model name, run single-threaded, runners, device index): one runner; calls queue for it.
        loader = aoti.AOTIModelPackageLoader(str(path), "model", False, 1, -1)
        return loader.run
    from torch._inductor import aoti_load_package  # an older torch: the slower public loader

    runner = aoti_load_package(str(path))
    return lambda args: list(runner(*args))


def _fused(policy: ImpalaPolicy, unit: Unit, run: Callable[[list[torch.Tensor]], list[torch.Tensor]]) -> FusedUnit:
    state = dict(policy.named_parameters())
    params = [state[p] for p in unit.params]

    def fn(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs = run([x, *params])
        # Eager keeps the residual stream channels-last; so must a unit, or a later eager convolution would
        # pick another oneDNN kernel (and other bits) for its input.
        return tuple(o.contiguous(memory_format=torch.channels_last) if o.ndim == 4 else o for o in outs)

    return FusedUnit(unit.first, unit.outputs, unit.input, unit.in_shape, fn)


@dataclass(frozen=True)
class Choice:
    """What `tune` measured on this machine and chose."""

    path: Literal["compiled", "eager"]
    why: str
    exact: bool
    speedup: float  # eager seconds / compiled seconds on the tuning workload
    eager_gflops: float
    compiled_gflops: float
    cpu: str
    isa: str
    torch: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_choice(directory: Path | None = None) -> Choice | None:
    """The choice `tune` recorded for this machine, or None (never tuned, or an unreadable file)."""
    path = (directory or package_dir()) / "choice.json"
    try:
        data = json.loads(path.read_text())
        return Choice(**{k: data[k] for k in Choice.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def execution_setting() -> str:
    value = os.environ.get(EXECUTION_ENV, "auto").strip().lower() or "auto"
    if value not in ("auto", "eager", "compiled"):
        raise SteerError(
            f"{EXECUTION_ENV}: {value[:40]!r} is not an execution path. Use auto (the path `steer tune` chose on this "
            "machine; eager if it never ran), eager, or compiled."
        )
    return value


def attach(policy: ImpalaPolicy, device: str = "cpu", directory: Path | None = None, force: bool = False) -> str:
    """Give `policy` this machine's compiled units if they are the chosen path; returns the path that runs.

    `force` attaches present packages whatever the choice (tests and `tune` compare the paths). Any failure to
    load leaves the policy eager: the compiled path is only ever an exact, faster way to the same numbers.
    """
    policy.use_units([])
    setting = "compiled" if force else execution_setting()
    if setting == "eager" or torch.device(device).type != "cpu":
        return "eager"
    directory = directory or package_dir()
    if setting == "auto":
        choice = read_choice(directory)
        if choice is None or choice.path != "compiled":
            return "eager"
    try:
        fused = [_fused(policy, u, _loader(_package(directory, u.key(policy)))) for u in units(policy)]
    except (OSError, RuntimeError):  # a package missing, truncated or built by another torch
        return "eager"
    policy.use_units(fused)
    return "compiled"


def describe(policy: ImpalaPolicy, directory: Path | None = None) -> str:
    """One line: which path runs the network here, and why."""
    directory = directory or package_dir()
    choice = read_choice(directory)
    setting = os.environ.get(EXECUTION_ENV, "auto")
    if policy.fused_units:
        gain = f", {choice.speedup:.2f}x eager on this CPU" if choice else ""
        return f"network: compiled units (AOTInductor, bit-identical to eager{gain}; {EXECUTION_ENV}={setting})"
    if setting.strip().lower() == "eager":
        return f"network: eager PyTorch ({EXECUTION_ENV}=eager)"
    if choice is None:
        return "network: eager PyTorch (`steer tune` has not run on this machine: it tries compiled units once)"
    if choice.path == "eager":
        return f"network: eager PyTorch (chosen by `steer tune` here: {choice.why})"
    return "network: eager PyTorch (the compiled units chosen here could not be loaded; run `steer tune` again)"


# -- building and choosing --------------------------------------------------------------------------------


def _compile(kind: Kind, in_shape: tuple[int, ...], param_shapes: tuple[tuple[int, ...], ...], path: str) -> float:
    """Export and compile one unit into `path` (atomically); returns the seconds it took. Runs in a worker."""
    start = time.perf_counter()
    torch.set_num_threads(1)  # inductor sizes its loops' parallelism at compile time; cells run on one thread
    example = torch.zeros(2, *in_shape).contiguous(memory_format=torch.channels_last)
    # The weights are inputs: zeros of their shapes (and layout: conv weights are channels-last) compile the same.
    params = [
        torch.zeros(s).contiguous(memory_format=torch.channels_last) if len(s) == 4 else torch.zeros(s)
        for s in param_shapes
    ]
    batch = torch.export.Dim("batch", min=1, max=_MAX_BATCH)
    with torch.no_grad():
        program = torch.export.export(
            _MODULES[kind](), (example, *params), dynamic_shapes=({0: batch}, *(None for _ in params))
        )
        target = Path(path)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            staged = Path(tmp) / target.name
            torch._inductor.aoti_compile_and_package(program, package_path=str(staged))
            os.replace(staged, target)  # atomic: a worker never loads a half-written package
    return time.perf_counter() - start


def build(
    policy: ImpalaPolicy, directory: Path | None = None, log: Callable[[str], None] = print, workers: int = 1
) -> list[Path]:
    """Compile every unit of `policy` that has no package yet, on `workers` processes; returns all its packages.

    Raises SteerError naming the cause when this machine cannot compile (no C++ compiler, an inductor error).
    """
    directory = directory or package_dir()
    directory.mkdir(parents=True, exist_ok=True)
    state = policy.state_dict()
    todo = {}
    for unit in units(policy):
        path = _package(directory, unit.key(policy))
        if not path.exists():
            todo[unit.key(policy)] = (
                unit.kind,
                unit.in_shape,
                tuple(tuple(state[p].shape) for p in unit.params),
                str(path),
            )
    if todo:
        # Spawned processes: inductor's compile is mostly a C++ compiler's time, which a second core halves.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max(1, min(workers, len(todo))), mp_context=context) as pool:
            jobs = {key: pool.submit(_compile, *job) for key, job in todo.items()}
            for key, job in jobs.items():
                try:
                    log(f"compiled {key} in {job.result():.1f} s")
                except Exception as e:  # inductor raises many types: each means "cannot compile here"
                    pool.shutdown(wait=False, cancel_futures=True)
                    text = str(e).strip()
                    detail = text.splitlines()[0][:200] if text else type(e).__name__
                    raise SteerError(
                        f"inductor could not compile the unit {key} on this machine ({detail}); it needs a C++ "
                        "compiler (g++) and Python's headers. The network runs eagerly."
                    ) from None
    return [_package(directory, u.key(policy)) for u in units(policy)]


def exactness(policy: ImpalaPolicy, observations: Sequence[torch.Tensor], site: str) -> tuple[bool, float]:
    """Do the compiled units give eager's bits? Logits of full passes and of a prefix/suffix split at `site`,
    at batch sizes that cover a full batch, odd remainders and one observation. Returns (all equal, max gap)."""
    gap, equal = 0.0, True
    keep = frozenset({"fc_policy", "fc_value"})
    start = policy.resolve(site)
    for obs in observations:
        for size in sorted({len(obs), 64, 37, 1}):
            x = obs[:size]
            with torch.inference_mode():
                outs = []
                for fused in (False, True):
                    saved = policy.fused_units
                    if not fused:
                        policy.use_units([])
                    try:
                        prefix = policy.run({"input": x}, stop=start, keep=policy.prefix_needs(start))
                        suffix = policy.run(prefix, start=start, keep=keep)
                        whole = policy.run({"input": x}, keep=keep)
                    finally:
                        policy.use_units(saved)
                    outs.append([whole["fc_policy"], whole["fc_value"], suffix["fc_policy"], prefix[start]])
            for a, b in zip(*outs, strict=True):
                equal = equal and torch.equal(a, b)
                gap = max(gap, float((a - b).abs().max()))
    return equal, gap


def seconds_per_pass(policy: ImpalaPolicy, obs: torch.Tensor, batch: int = 64, repeats: int = 7) -> float:
    """Median seconds of full passes over `obs` in batches, on one thread, after a warm-up."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    keep = frozenset({"fc_policy"})
    try:
        with torch.inference_mode():
            times = []
            for i in range(repeats + 1):
                start = time.perf_counter()
                for j in range(0, len(obs), batch):
                    policy.run({"input": obs[j : j + batch]}, keep=keep)
                if i:
                    times.append(time.perf_counter() - start)
        return statistics.median(times)
    finally:
        torch.set_num_threads(before)


def tune(
    policy: ImpalaPolicy,
    observations: Sequence[torch.Tensor],
    site: str,
    flops_per_obs: float,
    directory: Path | None = None,
    log: Callable[[str], None] = print,
    workers: int = 1,
) -> Choice:
    """Build the units, check them against eager on `observations`, time both, and record the faster exact path.

    `observations` are real frames (the caller renders them: this layer knows no mazes); the first one is timed.
    """
    directory = directory or package_dir()
    common = {"cpu": cpu_model(), "isa": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}
    policy.use_units([])
    eager_s = seconds_per_pass(policy, observations[0])
    eager_gflops = len(observations[0]) * flops_per_obs / eager_s / 1e9
    try:
        build(policy, directory, log, workers)
    except SteerError as e:
        choice = Choice("eager", str(e), False, 1.0, eager_gflops, 0.0, **common)
    else:
        attach(policy, directory=directory, force=True)
        exact, gap = exactness(policy, observations, site)
        compiled_s = seconds_per_pass(policy, observations[0])
        compiled_gflops = len(observations[0]) * flops_per_obs / compiled_s / 1e9
        speedup = eager_s / compiled_s
        if not exact:
            path, why = "eager", f"the compiled units differ from eager by up to {gap:.1e} on this CPU"
        elif speedup < MARGIN:
            path, why = "eager", f"the compiled units are exact but only {speedup:.2f}x eager here"
        else:
            path, why = "compiled", f"exact and {speedup:.2f}x eager"
        choice = Choice(path, why, exact, speedup, eager_gflops, compiled_gflops, **common)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_json(directory / "choice.json", choice.to_json())
    attach(policy, directory=directory)
    return choice


def clear(directory: Path | None = None) -> None:
    """Remove this machine's packages and choice (the next `steer tune` builds them again)."""
    shutil.rmtree(directory or package_dir(), ignore_errors=True)
