"""The network: checkpoints, the Impala policy as named sites, hooks, steering vectors, vector fields.

Modules: `checkpoints` (finding and loading, weights only), `policy` (the Impala CNN, hook names, prefix and
suffix passes), `hooks` (recording and patching), `vectors` (vector kinds, maze pairs, `SteeringVector`,
vector files), `vfield` (batched vector fields), `dose` (dose-response sums), `reference` (an independent
procgen-tools-style pipeline: the exactness oracle and the naive baseline).

Imports: `steer.maze` and the foundation (`steer.errors`, `steer.io`, `steer.version`).
"""
