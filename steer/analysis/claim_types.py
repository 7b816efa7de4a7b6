"""The records a claim flows through, typed: a measure and a criterion as the batch file states them, the summary
of a measured number, one sample's verdict and a judged claim's row (what claims.json, summary.md, summary.html
and the docs' tables read). They are TypedDicts, not classes: claims.json is these records as JSON, and a reader
of the file meets exactly these keys."""

from __future__ import annotations

from typing import Any, TypedDict


class Criterion(TypedDict, total=False):
    """One of above / below / within on the mean or the median, and the precision that can decide it."""

    statistic: str  # mean | median
    above: float
    below: float
    within: list[float]  # [lo, hi]
    precision: float  # the largest 95% half-width that can tell "no effect" from a small one
    min_n: int


class Measure(TypedDict, total=False):
    """What a claim measures in an experiment's metrics.json (steer.analysis.claim_measures)."""

    experiment: str
    metric: str
    kind: str  # change | value | versus | contrast | trend | reported
    scale: str  # raw | headroom | logit
    side: str  # patched | original
    source: str  # a dotted sub-record: controls.random, by_channel.10, ...
    where: list[dict[str, Any]]  # the claim's subset of mazes
    coeff: float  # a sweep's row
    layer: str  # a layer sweep's row
    pairs: str  # own | same_dim | other_dim (transfer pairs)
    coeffs: list[float]  # a trend's coefficients
    minus: Measure  # versus, contrast: the other measure
    plus: Measure  # versus: an asymmetry's other side
    path: str  # reported: the {value, ci} record
    n: str  # reported: its number of mazes
    no_effect: float  # a value's or a reported number's null


class Summary(TypedDict, total=False):
    """A number over mazes: n and its statistics with 95% intervals (steer.analysis.metrics.describe), and for a
    claim's measure how it was bootstrapped, the effect detectable at n, its test, and what was left out."""

    n: int
    mean: float | None
    median: float | None
    q25: float | None
    q75: float | None
    mean_ci: list[float] | None
    median_ci: list[float] | None
    interval: str  # the bootstrap used
    mde: float | None  # the effect detectable at n with 80% power
    paired: bool
    wilcoxon_p: float | None
    mann_whitney_p: float | None  # a contrast of two groups
    n_groups: list[int]  # a contrast: each group's n
    groups: dict[str, list[float]]
    per_maze: list[float]
    excluded: dict[str, int]  # reason: mazes left out
    n_excluded: int
    flat: int  # a trend's mazes with no change, in n at rho 0
    what: str
    scale: str


class SampleVerdict(TypedDict, total=False):
    """A claim on one sample: the judged number, the effect and its control, the mazes moved, the verdict."""

    measured: Summary  # the judged number (the measure minus its control, when judged against one)
    effect: Summary | None  # the measure itself, when judged against a control
    shown: str
    control: Summary | None
    control_shown: str
    steerability: dict[str, Any] | None
    steerability_shown: str
    control_steerability: dict[str, Any] | None
    control_steerability_shown: str
    mde: float | None
    wilcoxon_p_holm: float | None
    verdict: str
    why: str


class ClaimRow(SampleVerdict, total=False):
    """A judged claim: its statement, and on two samples each sample's verdict, the pooled estimate and the
    combined verdict (steer.analysis.claims.replicated)."""

    id: str
    post: str
    setting: str
    extra_setting: bool
    sanity: bool
    criterion: str  # in words
    judged_on: str
    null: float
    statistic: str
    control_role: str | None
    expect: str | None
    as_expected: bool
    figures: list[str]
    discovery: SampleVerdict
    replication: SampleVerdict
    pooled: dict[str, Any]
    sample_factor: int


__all__ = ["ClaimRow", "Criterion", "Measure", "SampleVerdict", "Summary"]
