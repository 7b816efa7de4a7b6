"""`steer retarget`'s `feature: {file, index, value}`: a dictionary feature clamped at each target square, beside
the channels.

With the key, every target also runs
- `feature`: the feature's code set to `value` at the target's activation position (the position the channels
  are set at), the rest of the map and of the channel vector exact (`steer.net.feature_vectors.clamped`);
- `feature_random`: its norm-matched random control, at the same position, each observation's channel vector moved
  by the same norm as the clamp moves it, |value - code| (times the decoder row's norm, 1 for a fitted dictionary),
  along a random unit direction in channel space drawn per maze from `control_seed`;
- `feature_elsewhere` (with `elsewhere: true`): the feature clamped at the same other open square the channels'
  `elsewhere` control uses for that target.

The dictionary is read and refused (another checkpoint, a site other than the run's layer, an index out of range)
by the same check `vector: {feature: ...}` uses (`steer.run.feature_plan.checked_feature`), before the run folder
opens. The key is left out of the run's identity while unset, so runs from before it keep theirs; its file's
sha256 is in the identity when set (`FILES`), so a changed dictionary is a new run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from steer.analysis.feature_clamp import FeatureCondition, FeatureScale, feature_scale, random_direction
from steer.analysis.retarget import Condition
from steer.errors import SteerError
from steer.maze.layout import Maze, Square
from steer.net.feature_vectors import feature_direction
from steer.net.sae import TopKSAE
from steer.net.vfield import facing_inputs
from steer.run.feature_plan import checked_feature, top_channels
from steer.run.session import Session
from steer.run.spec_fields import _Fields
from steer.run.spec_values import _beside
from steer.run.specs import Spec

USAGE = "feature: {file: dictionary.safetensors, index: 56, value: 3.0}"
FEATURE_CONDITIONS = ("feature", "feature_random", "feature_elsewhere")


@dataclass(frozen=True)
class ClampSpec:
    """`feature: {file, index, value}`: the dictionary file, the feature's index in it, the code to clamp it to."""

    file: Path
    index: int
    value: float

    FILES = ("file",)  # read by steer.run.runner.option_files: the file's sha256 goes into the run's identity


def parse_clamp(value: Any, where: str, path: Path | None, number: Callable[[Any, str], float]) -> ClampSpec:
    """Every key checked that needs no dictionary: a file name, an index from 0, and a value read by `number`
    (retarget's own parser of `value`: finite, within float32's range)."""
    f = _Fields(value, where, ("file", "index", "value"))
    name = f.get_str("file")
    if name is None:
        raise SteerError(f"{where}.file: missing; give the dictionary file a `steer features` run wrote, e.g. {USAGE}.")
    index = f.get_int("index")
    if index is None:
        raise SteerError(f"{where}.index: missing; give the feature's index in the dictionary, e.g. {USAGE}.")
    if not f.has("value"):
        raise SteerError(f"{where}.value: missing; give the code to clamp the feature to, e.g. {USAGE}.")
    return ClampSpec(_beside(Path(name), path, where), index, number(f.data["value"], f.where("value")))


@dataclass(frozen=True)
class ClampPlan:
    """A checked feature: the dictionary's module and what the report says of it."""

    spec: ClampSpec
    sae: TopKSAE
    meta: dict[str, Any]

    def conditions(
        self, seed: int, control_seed: int, elsewhere: tuple[Square, ...] | None
    ) -> dict[str, FeatureCondition]:
        """The feature's conditions on one maze (`elsewhere`: the channels' elsewhere squares, None where that
        control is not run)."""
        s = self.spec
        direction = random_direction(self.sae.d_in, control_seed, seed)
        out = {
            "feature": FeatureCondition(self.sae, s.index, s.value),
            "feature_random": FeatureCondition(self.sae, s.index, s.value, direction),
        }
        if elsewhere is not None:
            out["feature_elsewhere"] = FeatureCondition(self.sae, s.index, s.value, at=elsewhere)
        return out

    def scale(self, session: Session, generated: Maze, layer: str, batch_size: int) -> FeatureScale:
        """The feature's natural scale on a maze as generated (with its cheese, whatever the run does with it: a
        cheese feature's scale is what it reaches when there is a cheese to track), over every open square, both
        facings, every position of the site's map."""
        inputs = facing_inputs(session.renderer, generated, next(session.policy.parameters()).device)
        return feature_scale(session.policy, inputs, layer, self.sae, self.spec.index, batch_size)


def plan_clamp(session: Session, spec: Spec, clamp: ClampSpec) -> ClampPlan:
    """The dictionary read and refused for this run (before any output), under the field `feature`."""
    d, site, _ = checked_feature(session, clamp.file, clamp.index, "feature", spec.effective_layer, "layer", False)
    meta = {
        "dictionary": str(clamp.file),
        "dictionary_sha256": d.sha256,
        "index": clamp.index,
        "value": clamp.value,
        "site": site,
        # the channels the decoder row is mostly made of (a unit row: each weight is its cosine with that channel)
        "top_channels": top_channels(feature_direction(d.sae, clamp.index)),
    }
    return ClampPlan(clamp, d.sae, meta)


def feature_report(plan: ClampPlan, done: list[dict[str, Any]]) -> dict[str, Any]:
    """metrics.json's `feature`: the dictionary and feature, and its natural scale over the mazes (per maze in each
    maze's `feature_scale`), with `value` as a multiple of it."""
    maxima = [m["feature_scale"]["max"] for m in done if m.get("feature_scale")]
    active = [m["feature_scale"]["mean_active"] for m in done if (m.get("feature_scale") or {}).get("mean_active")]
    mean_max = float(np.mean(maxima)) if maxima else None
    mean_active = float(np.mean(active)) if active else None
    value = plan.spec.value
    return {
        **plan.meta,
        "natural_scale": {
            "what": "per maze, the feature's code over the maze as generated, with its cheese (every open square, both "
            "facings, every position of the site's map, unpatched): its largest, and its mean where above 0; here the "
            "means over mazes",
            "mazes": len(maxima),
            "max": mean_max,
            "mean_active": mean_active,
            "value_multiple_of_max": value / mean_max if mean_max else None,
            "value_multiple_of_mean_active": value / mean_active if mean_active else None,
        },
    }


def with_feature(
    patched: dict[str, Condition | FeatureCondition], plan: ClampPlan | None, seed: int, control_seed: int
) -> dict[str, Condition | FeatureCondition]:
    """The channels' conditions with the feature's beside them (the same elsewhere squares as the channels')."""
    if plan is None:
        return patched
    elsewhere = patched.get("elsewhere")
    return {**patched, **plan.conditions(seed, control_seed, elsewhere.at if elsewhere is not None else None)}
