"""YAML experiment specs, validated in full before any work starts.

Every error names the field path (`vector.kind`, `seeds[3]`), the value found and what would be valid.
This module holds the `Spec`, the tables of keys and the whole-spec parse; the parsers of single values
(seeds, edits, vectors, coefficients, ...) are in steer/run/spec_values.py, spec_fields.py and seed_rules.py.

    name: cheese-vector                 # optional; names the output folder
    allow_other_checkpoint: false       # optional; true: accept vector files made with another checkpoint/mode
    figures: [png, svg]                 # optional; the charts' formats (png always; svg, pdf for papers)
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
    # ... or a saved vector:  vector: {file: outputs/vectors/vector-cheese-seed0.safetensors}

What every study shares is here (`Spec`: the name, checkpoint, mode, layer, seeds, target edits, batch size);
what a study reads alone is its options dataclass (steer/run/options.py), parsed into `Spec.options`: `vector`,
`coeff`, `coeffs`, `controls`, `vectors`, `sources`/`targets`, ... each declared once there and chosen by the
studies that read them.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from steer.errors import SteerError, excerpt, shown_key
from steer.io import load_yaml
from steer.maze.env import MODES
from steer.net.vectors import Edit
from steer.report.figures import FORMATS
from steer.run.options import NoOptions, Options, known_keys
from steer.run.seed_rules import DrawnSeeds, parse_seeds
from steer.run.spec_fields import _Fields, parse_names
from steer.run.spec_values import parse_edits

__all__ = [
    "COMMON_KEYS",
    "DEFAULT_LAYER",
    "Spec",
    "check_keys",
    "check_seed_modes",
    "is_plain_name",
    "load_spec",
    "parse_spec",
    "spec_keys",
]


DEFAULT_LAYER = "block2.res1.resadd_out"


@dataclass(frozen=True)
class Spec:
    """What every study shares; the rest is the study's own `options` (steer/run/options.py)."""

    path: Path | None
    name: str
    seeds: tuple[int, ...]
    layer: str | None = None  # None: not given (a vector file's layer, else DEFAULT_LAYER)
    checkpoint: str | None = None
    distribution_mode: str | None = None
    target_edits: tuple[Edit, ...] = ()
    batch_size: int = 64  # 64 observations per forward pass ran fastest on small CPUs
    allow_other_checkpoint: bool = False  # apply vector files made with another checkpoint or mode
    figures: tuple[str, ...] = ("png",)  # the formats charts are saved in; PNG always (the run's page shows it)
    options: Any = field(default_factory=NoOptions)  # the study's Options dataclass
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def identity(self, keep_seeds: bool = False) -> dict[str, Any]:
        """What the spec asks for, normalised (numbers as parsed, ranges expanded, paths as text), the study's
        options beside the shared keys.

        Equivalent specs (`coeff: -1` and `-1.0`, a seed list and the same range) give the same identity. It
        leaves out the `name` (it only names the folder) and, unless `keep_seeds`, the seeds: a run's cells
        are recorded one by one, so a run given more seeds reuses the finished ones.
        """
        skip = {"path", "name", "raw", "options", *(() if keep_seeds else ("seeds",))}
        if self.figures == ("png",):  # the default: runs and locks from before the key existed keep their identity
            skip.add("figures")
        shared = {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name not in skip}
        return {**shared, **_plain(self.options)}

    @property
    def effective_layer(self) -> str:
        """The layer a vector built from a pair is computed and added at."""
        return self.layer or DEFAULT_LAYER


def _plain(value: Any) -> Any:
    """A parsed spec value as JSON-able data."""
    if is_dataclass(value) and not isinstance(value, type):
        omit = getattr(value, "OMIT_WHEN_NONE", ())  # fields added later: absent while unset, old identities kept
        return {
            f.name: _plain(getattr(value, f.name))
            for f in fields(value)
            if not (f.name in omit and getattr(value, f.name) is None)
        }
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


def _seeds(data: dict[str, Any], options: type[Options]) -> tuple[int, ...]:
    """`seeds`, which a study whose options have `targets` (transfer) may leave out when it names them."""
    if data.get("seeds") is None and data.get("targets") is not None and "targets" in options.key_names():
        return parse_seeds(data["targets"], "targets")
    if data.get("seeds") is None and data.get("sources") is not None:
        raise SteerError(
            "targets: missing; transfer applies the vectors of `sources` to `targets` (or give `seeds` for both)."
        )
    return parse_seeds(data.get("seeds"))


# Keys every study accepts (beside `seeds` and its options' keys).
COMMON_KEYS = (
    "name",
    "checkpoint",
    "distribution_mode",
    "layer",
    "target_edits",
    "batch_size",
    "allow_other_checkpoint",
    "figures",
)


def check_keys(data: Mapping[str, Any], command: str, allowed: tuple[str, ...]) -> None:
    """Refuse a key this study does not read: one another command reads would be silently ignored here, which
    hides a mixed-up spec; any other is unknown."""
    for key in data:
        if key in allowed:
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.75)
        hint = f" Did you mean `{close[0]}`?" if close else ""  # `seed` for `seeds` is the usual slip
        if key in known_keys():
            raise SteerError(
                f"{shown_key(key)}: `steer {command}` does not use this key.{hint} Its keys are: {', '.join(allowed)}."
            )
        raise SteerError(f"{shown_key(key)}: unknown key.{hint} Valid keys: {', '.join(allowed)}.")


def is_plain_name(name: str) -> bool:
    """One plain folder name: ASCII letters, digits, '.', '_' and '-', not '.' or '..' (never a path)."""
    return name not in (".", "..") and bool(name) and all(c.isascii() and (c.isalnum() or c in "._-") for c in name)


def spec_keys(options: type[Options]) -> tuple[str, ...]:
    """The keys a spec for a study with these options may have, in the order a reader meets them."""
    return (*COMMON_KEYS, "seeds", *options.key_names())


def parse_spec(
    data: Any, path: Path | None = None, options: type[Options] = NoOptions, command: str = "this command"
) -> Spec:
    """A spec from parsed YAML: its keys checked against the study's, the shared ones parsed here, the study's
    own by its `options` dataclass."""
    allowed = spec_keys(options)
    f = _Fields(data, "", tuple(data) if isinstance(data, dict) else ())  # a mapping; its keys are checked below
    check_keys(f.data, command, allowed)
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
        seeds=_seeds(data, options),
        layer=f.get_str("layer"),
        checkpoint=f.get_str("checkpoint"),
        distribution_mode=f.get_choice("distribution_mode", MODES),
        target_edits=parse_edits(data.get("target_edits"), "target_edits"),
        batch_size=f.get_int("batch_size", 64, 1, 65536) or 64,
        allow_other_checkpoint=f.get_bool("allow_other_checkpoint"),
        figures=parse_figures(data.get("figures")),
        options=options.parse(data, path, command),
        raw=data,
    )


def parse_figures(value: Any, where: str = "figures") -> tuple[str, ...]:
    """`figures`: the formats every chart is saved in, PNG first and always (the run's page inlines it)."""
    if value is None:
        return ("png",)
    names = parse_names(value, where, FORMATS, "[png, svg]", "is not a format steer saves; use png, svg or pdf.")
    return ("png", *(n for n in FORMATS if n in names and n != "png"))


def load_spec(path: str | Path, options: type[Options] = NoOptions, command: str = "this command") -> Spec:
    path = Path(path)
    # The one bounded YAML reader (size, aliases, nesting, encoding): a spec may come from anyone.
    data = load_yaml(path, "spec", hint="See configs/ for example specs.")
    if data is None:
        raise SteerError(f"spec: {excerpt(str(path), 160)} is empty. See configs/ for example specs.")
    return parse_spec(data, path, options, command)
