"""Measurements and statistics: the metric registry, intervals and tests, exact and sampled behaviour, controls.

Modules: `metrics` (each metric declared once, and the one summariser), `stats` (bootstrap intervals and
paired tests, scipy), `chain` (exact behaviour from the (square, facing) Markov chain), `episodes` (sampled
episodes), `controls` (the norm-matched random vector and the input-edit reference), `comparison` (a mean
vector against single-maze vectors), `probing` (linear probes, scikit-learn), `claims` (claims, criteria and
verdicts).

Imports: `steer.net`, `steer.maze` and the foundation. Figures are drawn in `steer.report`, not here.
"""
