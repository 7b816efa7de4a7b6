"""`steer features`' spec, read by both its stages: the options, the checks that need no checkpoint, the corpus
seeds, and the site checked against the network (a hook point with a spatial map).

    seeds: {from: 1000, to: 1019}   # the held-out mazes (faithfulness and quality are measured on these)
    site: block2.res1.resadd_out    # a convolutional site: (channels, H, W)
    corpus: {from: 0, to: 99}       # the mazes the dictionary is fitted on; disjoint from seeds
    fraction: 0.04                  # of each corpus maze's positions (states x H x W, cheese kept and removed)
    k: 8                            # features active per position (TopK): the default dictionary's L0
    ks: [4, 16]                     # further k fitted for the trade-off figure (optional)
    expansion: 8                    # features = expansion x channels
    epochs: 40
    sparsity: batchtopk             # or topk: exactly k per position (BatchTopK: k per position on average)
    seed: 0                         # the fit's and the corpus draw's seed
    dictionary: runs/f/dictionary.safetensors   # optional: measure this dictionary instead of fitting one
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steer.errors import SteerError, excerpt
from steer.run.options import Options, option, seed_list, whole
from steer.run.session import Session
from steer.run.spec_fields import choice_of, finite_float, integer
from steer.run.specs import DEFAULT_LAYER, Spec

MAX_K = 256
MAX_EXPANSION = 64
DEFAULT_CORPUS = tuple(range(100))
SPARSITY = ("batchtopk", "topk")


def _ks(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise SteerError(f"{where}: expected a list of sparsities such as [4, 16], got {excerpt(value)}.")
    return tuple(dict.fromkeys(integer(v, f"{where}[{i}]", 1, MAX_K) for i, v in enumerate(value)))


def _fraction(value: Any, where: str) -> float:
    if isinstance(value, float) and not math.isfinite(value):  # finite_float's own fix speaks of coefficients
        raise SteerError(f"{where}: {value} is not a finite number; give a fraction above 0 and at most 1, e.g. 0.04.")
    f = finite_float(value, where)
    if not 0 < f <= 1:
        raise SteerError(
            f"{where}: {f:g} is not a fraction of the positions; give a number above 0 and at most 1, e.g. 0.04."
        )
    return f


def parse_conv_site(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SteerError(f"{where}: expected a hook name such as {DEFAULT_LAYER}, got {excerpt(value)}.")
    return value.strip()


def parse_dictionary_path(value: Any, where: str, path: Path | None) -> Path:
    """A file name; a relative one is looked up from the working folder first, then beside the spec."""
    if not isinstance(value, str) or not value.strip():
        raise SteerError(f"{where}: expected the path of a dictionary.safetensors file, got {excerpt(value)}.")
    file = Path(value.strip())
    if file.is_absolute() or path is None or file.exists():
        return file
    return path.parent / file


@dataclass(frozen=True, kw_only=True)
class FeaturesOptions(Options):
    site: str = option(parse_conv_site, default=DEFAULT_LAYER, about="the convolutional site the dictionary reads")
    corpus: tuple[int, ...] = option(seed_list, default=DEFAULT_CORPUS, sample=True, about="the mazes it is fitted on")
    fraction: float = option(_fraction, default=0.04, about="of each corpus maze's positions drawn")
    k: int = option(whole(1, MAX_K), default=8, about="features active per position (the default dictionary)")
    ks: tuple[int, ...] = option(_ks, default=(), about="further sparsities fitted for the trade-off")
    expansion: int = option(whole(1, MAX_EXPANSION), default=8, about="features per channel")
    epochs: int = option(whole(1, 1000), default=40, about="passes over the corpus")
    sparsity: str = option(choice_of(SPARSITY), default="batchtopk", about="k per position on average, or exactly")
    seed: int = option(whole(), default=0, about="seeds the fit and the corpus draw")
    dictionary: Path | None = option(
        parse_dictionary_path, default=None, beside=True, about="measure this file, no fit"
    )


def check(spec: Spec) -> None:
    """What needs no checkpoint: no shared `layer` (the site is `site:`), held-out mazes outside the corpus."""
    options: FeaturesOptions = spec.options
    if spec.layer is not None:
        raise SteerError("layer: `steer features` reads the site named under `site:`; use site: <hook name>.")
    if options.dictionary is None:
        shared = sorted(set(spec.seeds) & set(options.corpus))
        if shared:
            raise SteerError(
                f"seeds: {len(shared)} of the held-out mazes are in the corpus too (seed {shared[0]}"
                f"{', …' if len(shared) > 1 else ''}); a dictionary is judged on mazes it was not fitted on. Choose "
                "seeds outside `corpus:` (default: seeds 0-99), e.g. seeds: {from: 1000, to: 1019}."
            )


def corpus_seeds(spec: Spec) -> tuple[int, ...]:
    return () if spec.options.dictionary is not None else spec.options.corpus


def all_ks(options: FeaturesOptions) -> tuple[int, ...]:
    """The default k first, then the trade-off's others."""
    return tuple(dict.fromkeys((options.k, *options.ks)))


def site_of(spec: Spec, session: Session) -> str:
    """The site's display name, refused unless it is a hook point with a spatial map (channels, H, W), and every k
    at most the dictionary's size."""
    policy = session.policy
    name = spec.options.site
    try:
        site = policy.hook_names[policy.site_index(name)]
    except SteerError:
        raise SteerError(
            f"site: {excerpt(name)} is not a hook point of this policy. Convolutional sites include "
            f"{DEFAULT_LAYER}, block2.res2.resadd_out and block3.res1.resadd_out; every name: "
            f"{', '.join(policy.hook_names)}."
        ) from None
    shape = tuple(policy.activation_shape(site))
    if len(shape) != 3:
        raise SteerError(
            f"site: {site} has activations of shape {shape}, not a spatial map (channels, height, width); a "
            f"per-position dictionary reads a convolutional site such as {DEFAULT_LAYER}."
        )
    options: FeaturesOptions = spec.options
    if options.dictionary is None:
        size = options.expansion * shape[0]
        for k in all_ks(options):
            if k > size:
                raise SteerError(
                    f"k: {k} features active per position is more than the dictionary's {size} (expansion "
                    f"{options.expansion} x {shape[0]} channels at {site}); choose k of at most {size}."
                )
    return site
