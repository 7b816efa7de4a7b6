"""Reading a batch file: its samples, its experiments drawn on each sample, its claims, and the replication
sample its lock lets it measure (steer.analysis.seal). Everything is checked before anything runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steer.analysis import seal
from steer.analysis.claim_specs import Claim, parse_claims
from steer.analysis.seal import Decision, Lock, Replication, decide, lock_path, next_untouched, sealed_text
from steer.batch.draw import Shift, grow_steps, inside, sample_range
from steer.batch.experiments import MAX_EXPERIMENTS, Experiment, expand_grid, experiment, resolve
from steer.errors import SteerError, excerpt
from steer.io import load_yaml
from steer.maze.env import MAX_SEED
from steer.run.specs import Spec, is_plain_name

REPLICATION = "replication"  # the replication sample's experiments run in this subfolder of the batch's
KEYS = ("name", "experiments", "grid", "claims", "samples")


@dataclass(frozen=True)
class Batch:
    name: str
    experiments: tuple[Experiment, ...]
    claims: tuple[Claim, ...] = ()
    # The same experiments drawn again on the replication sample (run into replication/), when the batch has one.
    replication: tuple[Experiment, ...] = ()
    samples: dict[str, Any] | None = None  # {discovery: [from, to], replication: [from, to]} as run
    grow: tuple[int, ...] = ()  # samples.grow: the factors an underpowered claim's experiments grow by, in turn
    path: Path | None = None  # where it was read from, to draw its experiments again at a larger size
    seeds: tuple[int, int] | None = None  # --seeds, as loaded
    factor: int = 1
    # The replication sample this run measures and the lock to write before measuring it (steer.analysis.seal);
    # None without a replication sample (or with --seeds).
    seal: Decision | None = None


@dataclass(frozen=True)
class BatchFile:
    """A batch file's top level, checked: what it names and the samples it states."""

    path: Path
    data: dict[str, Any]
    name: str
    items: list[Any]
    discovery: tuple[int, int] | None
    replication: tuple[int, int] | None
    grow: tuple[int, ...]


def read_batch_file(path: Path) -> BatchFile:
    data = load_yaml(path, "batch")  # bounded: size, aliases, nesting, encoding (steer/io.py)
    if not isinstance(data, dict):
        raise SteerError(f"batch: {excerpt(str(path), 160)} must be a mapping with `experiments:` and/or `grid:`.")
    unknown = [k for k in data if k not in KEYS]
    if unknown:
        raise SteerError(f"{excerpt(unknown[0])}: unknown key. Valid keys of a batch file: {', '.join(KEYS)}.")
    samples = data.get("samples")
    if samples is not None and (not isinstance(samples, dict) or set(samples) - {"discovery", "replication", "grow"}):
        raise SteerError(
            "samples: expected {discovery: {from: A, to: B}, replication: {from: C, to: D}} (disjoint ranges), "
            "and optionally grow: [2, 4]."
        )
    samples = samples or {}
    discovery = sample_range(samples["discovery"], "samples.discovery") if "discovery" in samples else None
    replication = sample_range(samples["replication"], "samples.replication") if "replication" in samples else None
    if replication is not None and discovery is None:
        raise SteerError("samples.discovery: missing; the replication sample is drawn like the discovery one.")
    items = data.get("experiments") or []
    if not isinstance(items, list):
        raise SteerError(f"experiments: expected a list, got {excerpt(items)}.")
    if len(items) > MAX_EXPERIMENTS:
        raise SteerError(
            f"experiments: {len(items)} experiments is more than the {MAX_EXPERIMENTS} allowed in one batch; split "
            "them over several batch files."
        )
    # The name becomes the batch's output folder (outputs/<name>/), so, like a spec's, one plain folder name.
    name = data.get("name")
    if name is not None and not (isinstance(name, str) and is_plain_name(name)):
        raise SteerError(
            f"name: {excerpt(name)} is not a plain folder name; it names the batch's output folder. Use letters, "
            "digits, '.', '_' and '-' only (not '.' or '..'), e.g. name: my-batch."
        )
    stem = path.stem if path.stem not in (".", "..") else "batch"  # a batch file called '...yaml'
    return BatchFile(path, data, name or stem, items, discovery, replication, grow_steps(samples.get("grow")))


def replication_sample(
    f: BatchFile, seeds: tuple[int, int] | None, fresh: bool, sample: Replication | None
) -> tuple[Replication | None, Replication, Lock | None]:
    """(the replication sample this run measures, the one the file states, the lock). None with --seeds or
    without a replication sample; `sample` when growing (already decided); the next untouched one with `fresh`;
    else the lock's fresh sample drawn from the file's, or the file's."""
    resolved = [resolve(item, f"experiments[{i}]", f.path.parent) for i, item in enumerate(f.items)]
    from_file = Replication(f.replication, {r.name: r.data["replication"] for r in resolved if "replication" in r.data})
    if seeds is not None or not (from_file.batch or from_file.rules):
        return None, from_file, None
    lock = Lock.read(lock_path(f.path))
    if sample is not None:
        return sample, from_file, lock
    if fresh:
        return next_untouched(lock, from_file, f.discovery, MAX_SEED), from_file, lock
    return seal.active(lock, from_file), from_file, lock


def _draw(f: BatchFile, shift: Shift | None, own: Mapping[str, Any] | None) -> list[Experiment]:
    exps = [experiment(item, f"experiments[{i}]", f.path.parent, shift, own) for i, item in enumerate(f.items)]
    if f.data.get("grid") is not None:
        exps += expand_grid(f.data["grid"], f.path.parent, shift, own)
    return exps


def _named(exps: Sequence[Experiment]) -> list[tuple[str, Spec]]:
    return [(e.name, e.spec) for e in exps]


def _check_names(exps: list[Experiment], replicated: bool) -> list[str]:
    if not exps:
        raise SteerError("batch: no experiments; give `experiments:` and/or `grid:`.")
    if len(exps) > MAX_EXPERIMENTS:
        raise SteerError(
            f"batch: {len(exps)} experiments is more than the {MAX_EXPERIMENTS} allowed in one batch; split them "
            "over several batch files."
        )
    names = [e.name for e in exps]
    dupes = [n for n, times in Counter(names).items() if times > 1]
    if dupes:
        raise SteerError(f"experiments: the name {dupes[0]!r} is used twice; each experiment needs its own folder.")
    if replicated and REPLICATION in names:
        raise SteerError(
            f"experiments: the name {REPLICATION!r} is the replication sample's folder; rename that experiment."
        )
    return names


def load_batch(
    path: str | Path,
    seeds: tuple[int, int] | None = None,
    factor: int = 1,
    fresh: bool = False,
    sample: Replication | None = None,
) -> Batch:
    """The batch file at `path`; with `seeds` (FROM, TO), every experiment drawn again on those mazes alone;
    with `factor`, every experiment's sample of mazes `factor` times as large (by the same ranges and rules).

    A batch with a replication sample is checked against its lock (steer.analysis.seal) before anything runs:
    the sample it measures is the file's or the lock's fresh one (`sample`, when growing, is the one already
    decided); `fresh` draws the next untouched one (--fresh-replication); criteria changed since the sample was
    opened are refused."""
    f = read_batch_file(Path(path))
    chosen, from_file, lock = replication_sample(f, seeds, fresh, sample)
    discovery, replication = f.discovery, chosen.batch if chosen is not None else f.replication
    if discovery and replication and not (replication[0] > discovery[1] or replication[1] < discovery[0]):
        raise SteerError(
            f"samples: the discovery {discovery[0]}-{discovery[1]} and replication {replication[0]}-{replication[1]} "
            "samples overlap; a replication needs mazes the discovery never saw."
        )
    start = discovery[0] if discovery else 0
    own = dict(chosen.rules) if chosen is not None else None
    if seeds is not None:  # --seeds: this sample alone
        exps = _draw(f, Shift(seeds[0] - start, *seeds, factor), own)
        inside(_named(exps), *seeds, "--seeds")
        discovery, replication = seeds, None
    else:
        exps = _draw(f, None if factor == 1 else Shift(0, *(discovery or (0, MAX_SEED)), factor), own)
        if discovery is not None:
            inside(_named(exps), *discovery, "discovery")
    again: list[Experiment] = []
    if replication is not None:
        again = _draw(f, Shift(replication[0] - start, *replication, factor), own)
        inside(_named(again), *replication, "replication")
    names = _check_names(exps, bool(again))
    if again:
        _no_own_replication(exps)
    claims = parse_claims(f.data.get("claims"), names)
    drawn = {"discovery": list(discovery) if discovery else None}
    if replication is not None:
        drawn["replication"] = list(replication)
    decision = None
    if chosen is not None and sample is None and claims:  # no claims, no criteria to seal (e.g. configs/gallery.yaml)
        decision = _sealing(f, exps, chosen, from_file, lock, fresh)
    if factor == 1:
        for step in f.grow:  # every size a claim may grow to is checked now, before anything runs
            load_batch(path, seeds, step, sample=chosen)
    return Batch(f.name, tuple(exps), claims, tuple(again), drawn, f.grow, f.path, seeds, factor, decision)


def _no_own_replication(exps: Sequence[Experiment]) -> None:
    """A study that draws its own replication sample (`replication:`: discover, choose) keeps its choice apart from
    the mazes it is judged on itself; the batch's replication sample would run it again on other mazes and choose
    again there, so the two are not combined."""
    for e in exps:
        if getattr(e.spec.options, "replication", None):
            raise SteerError(
                f"experiment {e.name!r} ({e.command}) draws its own replication sample (`replication:` in its spec), "
                "and the batch's samples.replication would run it again on other mazes, choosing again there. Put "
                "it in a batch without samples.replication: its claims are judged on its own replication sample, "
                "which the lock seals like the batch's (configs/discover.yaml)."
            )


def _sealing(
    f: BatchFile, exps: list[Experiment], chosen: Replication, from_file: Replication, lock: Lock | None, fresh: bool
) -> Decision:
    """Whether the lock lets this run measure `chosen` under the file's criteria (steer.analysis.seal.decide),
    with the seeds each experiment's own replication rule drew, for the lock's overlap checks."""
    spans = {e.name: _own_span(e.spec) for e in exps if chosen.rules.get(e.name) is not None}
    measured = Replication(chosen.batch, chosen.rules, {k: v for k, v in spans.items() if v is not None})
    text = sealed_text(
        [c for c in f.data.get("claims") or [] if isinstance(c, dict)],
        [{"name": e.name, "command": e.command, "spec": e.raw} for e in exps],
        f.discovery,
        f.grow,
    )
    return decide(lock, lock_path(f.path), f.name, text, measured, from_file, fresh)


def _own_span(spec: Spec) -> tuple[int, int] | None:
    seeds = getattr(spec.options, "replication", None)  # the replication sample a study draws itself (discover)
    return (min(seeds), max(seeds)) if seeds else None
