"""Batch files: many experiments in one YAML, each run into its own resumable folder, and the claims judged on
them.

    name: my-batch                      # output folder: outputs/<name>/ unless --out
    samples:                            # optional: a discovery and a disjoint replication sample
      discovery: {from: 0, to: 999}
      replication: {from: 1000, to: 1999}
    experiments:
      - name: cheese-100                # folder under the batch folder
        command: apply                  # any study: apply, transfer, behaviour, ...
        spec: cheese-vector.yaml        # a path (relative to this file) or an inline mapping
        set: {coeff: 1}                 # optional: top-level keys that override the spec's
    grid:                               # optional: every combination of the axes becomes an experiment
      command: apply
      spec: {seeds: [0, 1, 2], vector: {kind: cheese}}
      axes: {coeff: [-1, 1], layer: [block2.res1.resadd_out, block3.res1.resadd_out], vector.kind: [cheese]}
    claims: [...]                       # steer.analysis.claims

Every experiment is validated before any runs. Each writes a run folder with a manifest, so re-running the
batch skips the cells that finished (unless --force). The modules, in the order a run goes through them:
`draw` (samples of mazes drawn again), `experiments` (entries resolved and parsed), `load` (the file, its
samples and its lock), `run` (plan, seal, run, judge, grow, summarise).

Imports: the top layer; it may import every layer below (studies, run, report, analysis, ...), and nothing
but the CLI and the public API imports it.
"""

from steer.batch.draw import Shift, parse_seed_range, redraw
from steer.batch.experiments import MAX_EXPERIMENTS, Experiment
from steer.batch.load import REPLICATION, Batch, load_batch
from steer.batch.run import GROWTH_RULE, claim_experiments, run_batch

__all__ = [
    "GROWTH_RULE",
    "MAX_EXPERIMENTS",
    "REPLICATION",
    "Batch",
    "Experiment",
    "Shift",
    "claim_experiments",
    "load_batch",
    "parse_seed_range",
    "redraw",
    "run_batch",
]
