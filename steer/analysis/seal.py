"""Sealed criteria: what a batch's verdicts depend on, fixed before its replication sample is opened.

`steer batch` keeps a lock beside the batch file (`configs/<batch>.lock`, JSON, meant to be committed). It
records the text of everything a verdict depends on (each claim's measure, criterion and precision, control and
its role, precondition and sanity flag; every experiment's spec as resolved from the batch file; the discovery
sample and the growth steps) with its sha256, and every replication sample the batch has opened, under which
criteria. A replication sample is the batch's `samples.replication` range and the `replication:` seeds any
experiment draws itself (`steer discover`).

The rule (`decide`):

- a replication sample opened under these criteria is judged again freely;
- a replication sample opened under other criteria is refused: after a criterion changes, a replication needs
  mazes no version of the procedure has seen. `--fresh-replication` draws them (`fresh`): the next seeds after
  every sample the batch has opened, by the same rule (a range keeps its length, a seed rule its count and
  filters), recorded in the lock before anything is measured;
- a sample new to the lock (first run, or a range changed by hand) is recorded before it is measured, and is
  refused when it overlaps a sample opened under other criteria.

What the lock cannot see: code. A change to steer that changes what a metric measures is not in the text; the
docs say so (docs/statistics.md#sealed-criteria).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steer.errors import SteerError, excerpt
from steer.io import atomic_write_bytes

LOCK_FORMAT = 1
# The keys of a claim that its verdict depends on (its sentence, setting, figures and expected verdict do not).
SEALED_CLAIM_KEYS = ("id", "measure", "criterion", "control", "control_role", "precondition", "sanity")
ABOUT = (
    "Written by steer batch before it measures a replication sample: the criteria (claims, experiments' specs, "
    "the discovery sample and growth steps) and every replication sample opened under them. Commit it beside "
    "the batch file. docs/statistics.md#sealed-criteria"
)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def same(a: Any, b: Any) -> bool:
    """Whether two texts say the same once both are what JSON keeps: a lock stores its texts as JSON, where a
    YAML mapping's integer keys (`per_maze_dim: {3: 3}`) come back as strings."""
    return canonical(json.loads(json.dumps(a))) == canonical(json.loads(json.dumps(b)))


def digest(text: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(text).encode()).hexdigest()


def sealed_text(
    claims: Sequence[Mapping[str, Any]],
    experiments: Sequence[Mapping[str, Any]],
    discovery: Sequence[int] | None,
    grow: Sequence[int],
) -> dict[str, Any]:
    """The text the lock seals: `experiments` are {name, command, spec} with each spec as resolved from the batch
    file (spec files read, `set:` applied), less its own replication seeds (the sample, not the procedure)."""
    return {
        "claims": [{k: c[k] for k in SEALED_CLAIM_KEYS if k in c} for c in claims],
        "experiments": [{**e, "spec": {k: v for k, v in e["spec"].items() if k != "replication"}} for e in experiments],
        "samples": {"discovery": list(discovery) if discovery else None, "grow": list(grow)},
    }


@dataclass(frozen=True)
class Replication:
    """A replication sample: the batch's range (`samples.replication`), and per experiment that draws its own
    (`replication:` in its spec), the rule as run and the lowest and highest seed it drew."""

    batch: tuple[int, int] | None = None
    rules: Mapping[str, Any] = field(default_factory=dict)  # experiment -> its replication rule
    seeds: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # experiment -> [lowest, highest] drawn

    def to_json(self) -> dict[str, Any]:
        return {
            "batch": list(self.batch) if self.batch else None,
            "experiments": {n: {"rule": self.rules[n], "seeds": list(self.seeds.get(n, ()))} for n in self.rules},
        }

    @staticmethod
    def from_json(value: Mapping[str, Any]) -> Replication:
        exps = value.get("experiments") or {}
        return Replication(
            tuple(value["batch"]) if value.get("batch") else None,
            {n: e["rule"] for n, e in exps.items()},
            {n: tuple(e["seeds"]) for n, e in exps.items() if e.get("seeds")},
        )

    def same_draw(self, other: Replication) -> bool:
        """The same sample: the same range and the same rules (the seeds drawn follow from them)."""
        return self.batch == other.batch and same(dict(self.rules), dict(other.rules))

    def spans(self) -> list[tuple[int, int]]:
        return ([self.batch] if self.batch else []) + list(self.seeds.values())

    def overlaps(self, other: Replication) -> bool:
        return any(a <= d and c <= b for a, b in self.spans() for c, d in other.spans())

    def shown(self) -> str:
        parts = [f"seeds {self.batch[0]}-{self.batch[1]}"] if self.batch else []
        parts += [f"{n}: seeds {lo}-{hi}" for n, (lo, hi) in self.seeds.items()]
        return "; ".join(parts) or "none"


@dataclass
class Lock:
    path: Path
    batch: str
    sealed: dict[str, Any]  # {sha256, text}: the criteria now sealed
    samples: list[dict[str, Any]]  # every replication sample opened, oldest first
    texts: dict[str, Any]  # sha256 -> the criteria text a sample was opened under

    @staticmethod
    def read(path: Path) -> Lock | None:
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            return Lock(path, data["batch"], data["sealed"], list(data["samples"]), dict(data.get("texts") or {}))
        except (ValueError, KeyError, TypeError) as e:
            raise SteerError(
                f"{excerpt(path.name)}: not a lock steer can read ({excerpt(str(e), 80)}); it records the criteria "
                "sealed before the replication sample. Restore it from version control rather than deleting it."
            ) from None

    def write(self) -> None:
        data = {
            "lock": LOCK_FORMAT,
            "about": ABOUT,
            "batch": self.batch,
            "sealed": self.sealed,
            "samples": self.samples,
            "texts": self.texts,
        }
        atomic_write_bytes(self.path, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode())


@dataclass(frozen=True)
class Decision:
    """What a run of the batch does with its replication sample: which sample it measures, and the lock to
    write before measuring it (None: the lock already says so)."""

    replication: Replication
    lock: Lock
    write: bool
    entry: dict[str, Any]  # the lock's record of this sample


def lock_path(batch_file: Path) -> Path:
    return batch_file.with_suffix(".lock")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def active(lock: Lock | None, from_file: Replication) -> Replication:
    """The replication sample a run measures: the file's, unless the lock's latest sample was drawn fresh from
    this same file's sample (then that fresh sample)."""
    if lock is None or not lock.samples:
        return from_file
    last = lock.samples[-1]
    drawn_from = last.get("drawn_from")
    if drawn_from is not None and Replication.from_json(drawn_from).same_draw(from_file):
        return Replication.from_json(last["replication"])
    return from_file


def decide(
    lock: Lock | None,
    path: Path,
    batch: str,
    text: dict[str, Any],
    replication: Replication,
    from_file: Replication,
    fresh: bool,
) -> Decision:
    """Whether the batch may measure `replication` under the criteria `text` (module docstring): the decision,
    or a SteerError saying why not and what to do. `fresh`: `replication` was just drawn by --fresh-replication."""
    sha = digest(text)
    lock = lock or Lock(path, batch, {"sha256": sha, "text": text}, [], {})
    same = [s for s in lock.samples if Replication.from_json(s["replication"]).same_draw(replication)]
    if same and not fresh:
        entry = same[-1]
        if entry.get("sha256") == sha:
            return Decision(replication, lock, False, entry)
        raise SteerError(_refusal(lock, entry, text, replication, path))
    clash = [
        s
        for s in lock.samples
        if s.get("sha256") != sha and Replication.from_json(s["replication"]).overlaps(replication)
    ]
    if clash:
        raise SteerError(_refusal(lock, clash[-1], text, replication, path))
    entry = {
        "replication": replication.to_json(),
        "sha256": sha,
        "sealed": True,
        "opened": now(),
    }
    if fresh:
        entry["drawn_from"] = from_file.to_json()
    samples = [*lock.samples, entry]
    texts = dict(lock.texts)
    texts[sha] = text
    return Decision(replication, Lock(path, batch, {"sha256": sha, "text": text}, samples, texts), True, entry)


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    """What differs between two sealed texts: the claims and experiments changed, added or removed, by id."""
    if before is None:
        return ["the criteria it was opened under were not recorded (it was opened before locks existed)"]
    out = []
    for part, key in (("claims", "id"), ("experiments", "name")):
        old = {x.get(key): x for x in before.get(part, [])}
        new = {x.get(key): x for x in after.get(part, [])}
        word = "claim" if part == "claims" else "experiment"
        out += [f"{word} {k} changed" for k in new if k in old and not same(old[k], new[k])]
        out += [f"{word} {k} added" for k in new if k not in old]
        out += [f"{word} {k} removed" for k in old if k not in new]
    if not same(before.get("samples"), after.get("samples")):
        out.append("the discovery sample or growth steps changed")
    return out


def _refusal(lock: Lock, entry: Mapping[str, Any], text: dict[str, Any], replication: Replication, path: Path) -> str:
    was = lock.texts.get(entry.get("sha256") or "")
    changed = "; ".join(changes(was, text)[:6]) or "the criteria differ"
    return (
        f"{excerpt(path.name)}: the replication sample ({replication.shown()}) was opened on {entry.get('opened')} "
        f"under other criteria than the batch file states now ({changed}). Judging it again under changed criteria "
        "would let the criteria follow the data. Run with --fresh-replication to draw the next untouched seeds by the "
        "same rule (recorded in the lock before they are measured), or restore the criteria it was sealed under."
    )


def next_untouched(
    lock: Lock | None, from_file: Replication, discovery: tuple[int, int] | None, top: int
) -> Replication:
    """The fresh sample --fresh-replication draws: past every seed any sample of this batch has opened (and the
    discovery sample), a range keeping its length and a rule its count and filters."""
    opened = [Replication.from_json(s["replication"]) for s in (lock.samples if lock else [])] + [from_file]
    highest = max([hi for r in opened for _, hi in r.spans()] + ([discovery[1]] if discovery else []), default=-1)
    batch = None
    if from_file.batch is not None:
        length = from_file.batch[1] - from_file.batch[0]
        batch = (highest + 1, highest + 1 + length)
        if batch[1] > top:
            raise SteerError(f"--fresh-replication: the next untouched range {batch[0]}-{batch[1]} runs past {top}.")
    rules = {}
    for name, rule in from_file.rules.items():
        if not (isinstance(rule, dict) and "from" in rule):
            raise SteerError(
                f"--fresh-replication: experiment {name!r} names its replication mazes as a list, which cannot be "
                "drawn again; write it as a rule {from: A, count: N, where: {...}}."
            )
        moved = {**rule, "from": highest + 1}
        if "to" in rule:
            moved["to"] = highest + 1 + int(rule["to"]) - int(rule["from"])
        rules[name] = moved
    return Replication(batch, rules, {})


def seal_text(lock: Lock | None, entry: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a summary says of the criteria: sealed before this replication sample or not, and the samples the
    batch opened before under other criteria, with what changed since."""
    if lock is None or entry is None:
        return {"sealed": False, "said": "No replication sample: nothing to seal."}
    shown = Replication.from_json(entry["replication"]).shown()
    earlier = [s for s in lock.samples if s is not entry and s.get("sha256") != entry.get("sha256")]
    if entry.get("sealed") and entry.get("sha256") == lock.sealed["sha256"]:
        said = (
            f"Criteria sealed before the replication sample was opened: sha256 {entry['sha256'][:12]}… recorded in "
            f"{lock.path.name} on {entry['opened']}, before the replication sample ({shown}) was first measured"
            + (" (drawn fresh, past every sample opened before)." if entry.get("drawn_from") else ".")
        )
    else:
        said = f"Not sealed: the replication sample ({shown}) was opened before its criteria were recorded."
    for s in earlier:
        was = Replication.from_json(s["replication"]).shown()
        what = "; ".join(changes(lock.texts.get(s.get("sha256") or ""), lock.sealed["text"])[:8])
        said += f" Earlier replication sample {was}, opened {s.get('opened')} under other criteria: {what}."
        if s.get("note"):
            said += f" ({s['note']})"
    return {"sealed": bool(entry.get("sealed")), "sha256": entry.get("sha256"), "said": said}


__all__ = [
    "Decision",
    "Lock",
    "Replication",
    "active",
    "changes",
    "decide",
    "digest",
    "lock_path",
    "next_untouched",
    "seal_text",
    "sealed_text",
]
