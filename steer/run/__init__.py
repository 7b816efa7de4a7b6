"""Specs and running experiments: spec validation, sessions, the study declaration, the one runner, run folders.

Modules: `specs` and `spec_values` (YAML specs and their value parsers), `session` (a loaded checkpoint, mode
and renderer; provenance), `study` (what a `Study` declares), `vector_plan` (resolving a vector spec),
`runner` (cells, the pool of single-threaded workers, resume, the report), `executors` (cells as Ray tasks),
`runs` (run folders: manifest, identity, resume), `cores` (usable and busy cores, the machine),
`progress` (progress bars), `allocator` (glibc malloc tuning).

Imports: `steer.report`, `steer.analysis`, `steer.net`, `steer.maze` and the foundation. The study registry
sits above (`steer.studies`): the runner is handed a `Study`, never looks one up by name.
"""
