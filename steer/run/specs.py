"""YAML experiment specs, validated in full before any work starts.

Every error names the field path (`vector.kind`, `seeds[3]`), the value found and what would be valid.
This module holds the `Spec`, the tables of keys and the whole-spec parse; the parsers of single values
(seeds, edits, vectors, coefficients, ...) are in steer/run/spec_values.py.

    name: cheese-vector                 # optional; names the output folder
    allow_other_checkpoint: false       # optional; true: accept vector files made with another checkpoint/mode
    checkpoint: maze-rr5-easy-160M      # optional; a known name or a path (--checkpoint overrides)
    distribution_mode: easy             # optional; default: the mode the checkpoint was trained in
    layer: block2.res1.resadd_out       # optional; any hook name of the policy
    seeds: [0, 1, 2]                    # or {from: 0, to: 99} (inclusive), or a rule {from: 0, count: 24, where: …}
    target_edits: [remove_cheese]       # optional; edits applied to every target maze
    coeff: -1                           # apply: the coefficient
    vector:                             # an inline pair spec ...
      kind: cheese                      #   cheese | top_right | custom
      source_seed: 0                    #   optional; default: each target maze's own vector
      # source_seeds: {from: 0, to: 99} #   or: the mean of the pair's vectors over these mazes
      mouse: [6, 6]                     #   optional; default: the level's start square
      a: [{cheese: [10, 4]}]            #   custom only: edits for the two observations
      b: []
    # ... or a saved vector:  vector: {file: outputs/vectors/cheese-seed0.pt}

Keys several studies share (each study in steer/studies/ declares which it accepts; a study may also
declare keys only it reads, with their parsers, which land in `Spec.extra`):

    vectors:                            # compose: vectors applied together, each with its coefficient
      - {vector: {kind: cheese}, coeff: -1, layer: block2.res1.resadd_out, label: "-cheese"}
      - {vector: {file: top-right.pt}, coeff: 1}   # layer and label are optional
    coeffs: [-1, 0.5, 1, 2]             # sweep-coeff; or {from: -2, to: 2, step: 0.5} (inclusive)
    grid_seeds: [0, 28]                 # sweep-coeff: seeds whose fields are drawn at every coefficient
                                        #   (default: the first seed)
    sources: [0, 2, 28]                 # transfer: seeds the vectors come from (default: seeds)
    targets: [0, 2, 28]                 # transfer: seeds they are applied to (default: seeds)
    show: [[0, 2], [0, 28]]             # transfer: [source, target] pairs to draw as fields
    layers: all                         # layer-sweep: 'all' or a list of hook names
    controls: [random, input_edit]      # apply: a norm-matched random vector and the input edit, beside the effect
    control_seed: 0                     # apply: seeds the random vectors (with each maze's seed)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from steer.errors import SteerError, excerpt, shown_key
from steer.io import load_yaml
from steer.maze.env import MODES
from steer.net.vectors import Edit
from steer.run.spec_values import (
    CONTROL_NAMES,
    MAX_COEFF,
    MAX_COEFFS,
    MAX_SEEDS,
    ComposeItem,
    DrawnSeeds,
    VectorSpec,
    _beside_spec,
    _Fields,
    coefficient,
    finite_float,
    parse_coeffs,
    parse_compose_items,
    parse_controls,
    parse_edits,
    parse_layers,
    parse_metrics,
    parse_pairs,
    parse_seeds,
    parse_vector,
)

# What this module offers. The value parsers and their limits moved to steer/run/spec_values.py; they are listed
# here too so that studies and tests keep importing them from steer.run.specs.
__all__ = [
    "COMMON_KEYS",
    "CONTROL_NAMES",
    "DEFAULT_LAYER",
    "MAX_COEFF",
    "MAX_COEFFS",
    "MAX_SEEDS",
    "TOP_KEYS",
    "ComposeItem",
    "Spec",
    "VectorSpec",
    "check_keys",
    "coefficient",
    "finite_float",
    "is_plain_name",
    "load_spec",
    "parse_coeffs",
    "parse_compose_items",
    "parse_controls",
    "parse_edits",
    "parse_layers",
    "parse_pairs",
    "parse_seeds",
    "parse_spec",
    "parse_vector",
]


DEFAULT_LAYER = "block2.res1.resadd_out"


@dataclass(frozen=True)
class Spec:
    path: Path | None
    name: str
    seeds: tuple[int, ...]
    layer: str | None = None  # None: not given (a vector file's layer, else DEFAULT_LAYER)
    checkpoint: str | None = None
    distribution_mode: str | None = None
    target_edits: tuple[Edit, ...] = ()
    vector: VectorSpec | None = None
    coeff: float | None = None
    batch_size: int = 64  # 64 observations per forward pass ran fastest on small CPUs
    allow_other_checkpoint: bool = False  # apply vector files made with another checkpoint or mode
    controls: tuple[str, ...] = ()  # random and/or input_edit (steer/analysis/controls.py)
    metrics: tuple[str, ...] = ()  # behaviour metrics to compute too (costly: both facings of every square)
    control_seed: int = 0  # seeds the random controls (with each maze's seed)
    vectors: tuple[ComposeItem, ...] = ()
    coeffs: tuple[float, ...] = ()
    sources: tuple[int, ...] = ()
    targets: tuple[int, ...] = ()
    show: tuple[tuple[int, int], ...] = ()
    grid_seeds: tuple[int, ...] = ()  # sweep-coeff; empty: the first seed
    layers: tuple[str, ...] = ()  # layer-sweep; empty: every hook point
    extra: dict[str, Any] = field(default_factory=dict)  # keys a study reads alone, parsed by its own parsers
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def identity(self, keep_seeds: bool = False) -> dict[str, Any]:
        """What the spec asks for, normalised (numbers as parsed, ranges expanded, paths as text).

        Equivalent specs (`coeff: -1` and `-1.0`, a seed list and the same range) give the same identity. It
        leaves out the `name` (it only names the folder) and, unless `keep_seeds`, the seeds: a run's cells
        are recorded one by one, so a run given more seeds reuses the finished ones.
        """
        skip = {"path", "name", "raw", *(() if keep_seeds else ("seeds",))}
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name not in skip}

    @property
    def effective_layer(self) -> str:
        """The layer a vector built from a pair is computed and added at."""
        return self.layer or DEFAULT_LAYER


def _plain(value: Any) -> Any:
    """A parsed spec value as JSON-able data."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def check_seed_modes(spec: Spec, mode: str) -> None:
    """Seeds a rule drew by looking at the mazes were drawn in one mode; the run must be in that mode too."""

    def walk(value: Any, where: str) -> None:
        if isinstance(value, DrawnSeeds):
            if value.mode != mode:
                raise SteerError(
                    f"{where}: this seed rule looked at {value.mode}-mode mazes, but the run is in {mode} mode; "
                    f"add mode: {mode} to the rule."
                )
        elif is_dataclass(value) and not isinstance(value, type):
            for f in fields(value):
                walk(getattr(value, f.name), f"{where}.{f.name}" if where else f.name)
        elif isinstance(value, tuple | list):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]")
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}" if where else str(k))

    walk(spec, "")


def _seeds(data: dict[str, Any], own: Mapping[str, Any]) -> tuple[int, ...]:
    """`seeds`, which a transfer spec may leave out when it names its `targets`."""
    if data.get("seeds") is None and data.get("targets") is not None and "targets" not in own:
        return parse_seeds(data["targets"], "targets")
    if data.get("seeds") is None and data.get("sources") is not None:
        raise SteerError(
            "targets: missing; transfer applies the vectors of `sources` to `targets` (or give `seeds` for both)."
        )
    return parse_seeds(data.get("seeds"))


def _optional(data: dict[str, Any], key: str, parse: Any, *args: Any) -> Any:
    return parse(data[key], *args) if data.get(key) is not None else ()


# Keys this module parses; each study accepts COMMON_KEYS and the ones it lists.
TOP_KEYS = (
    "name",
    "checkpoint",
    "distribution_mode",
    "layer",
    "seeds",
    "target_edits",
    "vector",
    "coeff",
    "batch_size",
    "allow_other_checkpoint",
    "vectors",
    "coeffs",
    "sources",
    "targets",
    "show",
    "layers",
    "grid_seeds",
    "controls",
    "control_seed",
    "metrics",
)
COMMON_KEYS = (
    "name",
    "checkpoint",
    "distribution_mode",
    "layer",
    "target_edits",
    "batch_size",
    "allow_other_checkpoint",
)


def check_keys(spec: Spec, command: str, allowed: tuple[str, ...]) -> None:
    """Refuse keys another command reads: here they would be silently ignored, which hides mixed-up specs."""
    for key in spec.raw:
        if key not in allowed:
            raise SteerError(
                f"{shown_key(key)}: `steer {command}` does not use this key. Its keys are: {', '.join(allowed)}."
            )


def is_plain_name(name: str) -> bool:
    """One plain folder name: ASCII letters, digits, '.', '_' and '-', not '.' or '..' (never a path)."""
    return name not in (".", "..") and bool(name) and all(c.isascii() and (c.isalnum() or c in "._-") for c in name)


def parse_spec(
    data: Any, path: Path | None = None, require: tuple[str, ...] = (), own: Mapping[str, Any] | None = None
) -> Spec:
    """A spec from parsed YAML. `own`: keys one study reads alone, each with its parser `(value, where)`."""
    own = own or {}
    f = _Fields(data, "", (*TOP_KEYS, *(k for k in own if k not in TOP_KEYS)))
    for key in require:
        if not f.has(key):
            raise SteerError(f"{key}: missing; this command needs it. See configs/ for examples.")
    shared = {k: v for k, v in data.items() if k not in own}
    vector = _beside_spec(parse_vector(data["vector"]), path) if f.has("vector") else None
    # The name becomes the output folder (outputs/<name>/), so it must be one plain folder name, never a path.
    name = f.get_str("name") or (path.stem if path else "experiment")
    if f.has("name") and not is_plain_name(name):
        raise SteerError(
            f"name: {excerpt(name)} is not a plain folder name; it names the output folder. Use letters, digits, "
            "'.', '_' and '-' only (not '.' or '..'), e.g. name: cheese-vector."
        )
    if name in (".", ".."):  # the stem of a spec file called '...yaml'
        name = "experiment"
    return Spec(
        path=path,
        name=name,
        seeds=_seeds(data, own),
        layer=f.get_str("layer"),
        checkpoint=f.get_str("checkpoint"),
        distribution_mode=f.get_choice("distribution_mode", MODES),
        target_edits=parse_edits(data.get("target_edits"), "target_edits"),
        vector=vector,
        coeff=f.get_float("coeff"),
        batch_size=f.get_int("batch_size", 64, 1, 65536) or 64,
        allow_other_checkpoint=f.get_bool("allow_other_checkpoint"),
        controls=_optional(shared, "controls", parse_controls),
        metrics=_optional(shared, "metrics", parse_metrics),
        control_seed=f.get_int("control_seed", 0) or 0,
        vectors=_optional(shared, "vectors", parse_compose_items, path),
        coeffs=_optional(data, "coeffs", parse_coeffs),
        sources=_optional(shared, "sources", parse_seeds, "sources"),
        targets=_optional(shared, "targets", parse_seeds, "targets"),
        show=_optional(shared, "show", parse_pairs),
        grid_seeds=_optional(shared, "grid_seeds", parse_seeds, "grid_seeds"),
        layers=_optional(shared, "layers", parse_layers),
        extra={k: parse(data[k], k) for k, parse in own.items() if data.get(k) is not None},
        raw=data,
    )


def load_spec(path: str | Path, require: tuple[str, ...] = (), own: Mapping[str, Any] | None = None) -> Spec:
    path = Path(path)
    # The one bounded YAML reader (size, aliases, nesting, encoding): a spec may come from anyone.
    data = load_yaml(path, "spec", hint="See configs/ for example specs.")
    if data is None:
        raise SteerError(f"spec: {excerpt(str(path), 160)} is empty. See configs/ for example specs.")
    return parse_spec(data, path, require, own)
