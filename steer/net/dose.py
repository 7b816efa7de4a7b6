"""Dose-response measures: how the change D(t) = f(x + t·v) − f(x) at one network site grows with t.

For a site f and an added vector v (t the coefficient), over all squares of one maze:

- ‖D(t)‖, the Frobenius norm over every square's activations at the site;
- the linearity ratio ‖D(t)‖ / (|t| · slope), slope = ‖D(t_min)‖ / |t_min| at the smallest |t| given: 1 while the
  site responds linearly, above 1 where the response grows faster than t, below where it saturates;
- the odd asymmetry ‖D(t) + D(−t)‖ / (‖D(t)‖ + ‖D(−t)‖) for each |t| given with both signs: 0 for an odd
  response (adding and subtracting the vector act as mirror images), 1 when D(t) = D(−t);
- at ReLU sites, the fraction of units whose on/off state (value > 0) differs from t = 0.

`SiteDose` accumulates the sums these need chunk by chunk, so a maze's activations at every t are never held at
once; the ratio functions turn the finished sums into the reported numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

DEFAULT_MAGNITUDES = (0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 5.0, 10.0, 20.0)
# A symmetric log grid: small |t| fixes the slope, the largest shows saturation; both signs give the asymmetry.
DEFAULT_TS = tuple(sorted((*(-m for m in DEFAULT_MAGNITUDES), *DEFAULT_MAGNITUDES)))


def sign_pairs(ts: Sequence[float]) -> list[tuple[float, int, int]]:
    """(|t|, index of −|t|, index of +|t|) for each magnitude given with both signs, smallest first."""
    index = {t: i for i, t in enumerate(ts)}
    return [(m, index[-m], index[m]) for m in sorted({abs(t) for t in ts}) if m > 0 and m in index and -m in index]


@dataclass
class SiteDose:
    """Running sums over a maze's squares at one site: ‖D(t)‖², ‖D(t) + D(−t)‖² and ReLU state flips."""

    ts: tuple[float, ...]
    relu: bool  # count on/off flips (a ReLU output site)
    pairs: list[tuple[float, int, int]] = field(init=False)
    sq: np.ndarray = field(init=False)
    sum_sq: np.ndarray = field(init=False)
    flips: np.ndarray = field(init=False)
    units: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.pairs = sign_pairs(self.ts)
        self.sq = np.zeros(len(self.ts))
        self.sum_sq = np.zeros(len(self.pairs))
        self.flips = np.zeros(len(self.ts))

    def add(self, values: torch.Tensor, k: int) -> None:
        """`values`: (k·n, ...) one site's activations for n squares at each of k coefficients, t = 0 first
        and then `ts` in order (the suffix pass's batch: k blocks of the same n squares).

        Every measure sums over all of a t's elements, whose order does not matter, so the activations are
        viewed as k flat rows in memory order (channels-last included) and reduced along one contiguous axis.
        Reducing the 5-d (t, n, C, H, W) view instead, with index_select of its strided slices, took ~10x as
        long at a block2 site with two threads on busy cores (190 against 18 ms a pass; 9 against 6 ms on one
        thread), more than the suffix pass itself. Each chunk is reduced in float32 (a float64 reduction ran 3x
        slower; one chunk's relative rounding, ~1e-6, is far below what the float32 activations themselves
        carry) and summed over chunks in float64.
        """
        rows = flat_rows(values, k)
        d = rows[1:] - rows[0]
        self.sq += d.square().sum(1).cpu().double().numpy()
        if self.pairs:
            neg = torch.tensor([p[1] for p in self.pairs], device=d.device)
            pos = torch.tensor([p[2] for p in self.pairs], device=d.device)
            both = d.index_select(0, neg) + d.index_select(0, pos)
            self.sum_sq += both.square().sum(1).cpu().double().numpy()
        if self.relu:
            on = rows > 0
            self.flips += (on[1:] != on[0]).sum(1).cpu().numpy()
            self.units += rows.shape[1]

    def result(self) -> dict[str, list[float | None] | None]:
        """The site's measures for this maze: per t norm, linearity ratio, ReLU flip fraction; per |t| asymmetry."""
        norms = np.sqrt(self.sq)
        pair_norms = [(norms[neg], norms[pos]) for _, neg, pos in self.pairs]
        return {
            "norm": [float(v) for v in norms],
            "linearity": linearity_ratios(self.ts, norms),
            "asymmetry": asymmetries(np.sqrt(self.sum_sq), pair_norms),
            "relu_flips": [float(f / self.units) for f in self.flips] if self.relu and self.units else None,
        }


def flat_rows(values: torch.Tensor, k: int) -> torch.Tensor:
    """(k·n, ...) activations as k rows of n·(...) values, without a copy where the memory layout allows."""
    if values.ndim == 4 and values.is_contiguous(memory_format=torch.channels_last):
        values = values.permute(0, 2, 3, 1)  # NHWC order is the channels-last memory order: a view
    return values.reshape(k, -1)


def linearity_ratios(ts: Sequence[float], norms: Sequence[float]) -> list[float | None]:
    """‖D(t)‖ / (|t| · slope), the slope taken at the smallest |t| (the mean over its signs when both are given).

    None throughout when the response at the smallest |t| is zero (no slope to compare with).
    """
    small = min(abs(t) for t in ts)
    slopes = [n / abs(t) for t, n in zip(ts, norms, strict=True) if abs(t) == small]
    slope = float(np.mean(slopes)) if small > 0 else 0.0
    if not slope > 0:
        return [None] * len(ts)
    return [float(n / (abs(t) * slope)) if t != 0 else None for t, n in zip(ts, norms, strict=True)]


def asymmetries(sum_norms: Sequence[float], pair_norms: Sequence[tuple[float, float]]) -> list[float | None]:
    """‖D(t) + D(−t)‖ / (‖D(t)‖ + ‖D(−t)‖) per magnitude; None where neither sign changes anything."""
    out: list[float | None] = []
    for s, (neg, pos) in zip(sum_norms, pair_norms, strict=True):
        total = neg + pos
        out.append(float(s / total) if total > 0 else None)
    return out
