"""steer: algebraic value editing (activation steering) for procgen maze policies.

What a notebook needs, in the order data flows (spec → mazes → vectors → patched passes → fields →
metrics → files):

    import steer
    ck = steer.load_checkpoint()                          # the default checkpoint; or a name or .pth path
    renderer = steer.MazeRenderer("easy")
    maze = renderer.level(0)                              # a Maze: edits, paths, decision square
    vec = steer.compute_vector(ck.policy, renderer, maze, steer.PairSpec("cheese"), "block2.res1.resadd_out")
    inputs = steer.FieldInputs.render(renderer, maze)
    original = steer.vector_field(ck.policy, inputs)
    patched = steer.vector_field(ck.policy, inputs, [(vec.layer, vec.tensor, -1.0)])
    steer.maze_metrics(original, patched)["p_cheese_ds"]  # {"original": …, "patched": …}

    with vec.apply(ck.policy, coeff=-1):                  # or patch every forward pass in a block
        ...
    vec.save("cheese.safetensors")                        # readable without steer; steer.vector_info(path)

    steer.run_spec("apply", "configs/demo.yaml", out="outputs/demo")   # a whole study, as the CLI runs it
    run = steer.load_run("outputs/demo")                               # a finished run (or batch) folder
    run.mazes, run.figure("field-seed1"), steer.compare_runs([run, …])  # its tables as DataFrames, its figures
    steer.STUDIES, steer.METRICS, steer.VECTOR_KINDS                   # the registries
    steer.FAMILIES                                  # families of paired maze edits (`steer discover`)
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from steer.version import __version__

# Names are imported when first used (PEP 562): `import steer` and every worker process that imports a submodule
# would otherwise load every study, scikit-learn and scipy.stats first (about a second per process).
_WHERE: dict[str, tuple[str, str]] = {
    "METRICS": ("steer.analysis.metrics", "METRICS"),
    "Metric": ("steer.analysis.metrics", "Metric"),
    "describe": ("steer.analysis.metrics", "describe"),
    "maze_metrics": ("steer.analysis.metrics", "maze_metrics"),
    "summarize": ("steer.analysis.metrics", "summarize"),
    "SteerError": ("steer.errors", "SteerError"),
    "MazeRenderer": ("steer.maze.env", "MazeRenderer"),
    "FAMILIES": ("steer.maze.families", "FAMILIES"),
    "Maze": ("steer.maze.layout", "Maze"),
    "Checkpoint": ("steer.net.checkpoints", "Checkpoint"),
    "load_checkpoint": ("steer.net.checkpoints", "load"),
    "VECTOR_KINDS": ("steer.net.vectors", "KINDS"),
    "PairSpec": ("steer.net.vectors", "PairSpec"),
    "SteeringVector": ("steer.net.vectors", "SteeringVector"),
    "VectorInfo": ("steer.net.vectors", "VectorInfo"),
    "VectorKind": ("steer.net.vectors", "VectorKind"),
    "compute_vector": ("steer.net.vectors", "compute_vector"),
    "vector_info": ("steer.net.vectors", "vector_info"),
    "FieldInputs": ("steer.net.vfield", "FieldInputs"),
    "VectorField": ("steer.net.vfield", "VectorField"),
    "vector_field": ("steer.net.vfield", "vector_field"),
    "vector_fields": ("steer.net.vfield", "vector_fields"),
    "Run": ("steer.run.results", "Run"),
    "compare_runs": ("steer.run.results", "compare_runs"),
    "load_run": ("steer.run.results", "load_run"),
    "run_study": ("steer.run.runner", "run_study"),
    "Session": ("steer.run.session", "Session"),
    "open_session": ("steer.run.session", "open_session"),
    "Spec": ("steer.run.specs", "Spec"),
    "load_spec": ("steer.run.specs", "load_spec"),
    "Report": ("steer.run.study", "Report"),
    "Study": ("steer.run.study", "Study"),
    "VectorPlan": ("steer.run.vector_plan", "VectorPlan"),
    "plan_vector": ("steer.run.vector_plan", "plan_vector"),
    "STUDIES": ("steer.studies", "STUDIES"),
    "run_spec": ("steer.studies", "run_spec"),
    "study_for": ("steer.studies", "study_for"),
}

if TYPE_CHECKING:  # the names, for type checkers and editors
    from steer.analysis.metrics import METRICS, Metric, describe, maze_metrics, summarize
    from steer.errors import SteerError
    from steer.maze.env import MazeRenderer
    from steer.maze.families import FAMILIES
    from steer.maze.layout import Maze
    from steer.net.checkpoints import Checkpoint
    from steer.net.checkpoints import load as load_checkpoint
    from steer.net.vectors import KINDS as VECTOR_KINDS
    from steer.net.vectors import PairSpec, SteeringVector, VectorInfo, VectorKind, compute_vector, vector_info
    from steer.net.vfield import FieldInputs, VectorField, vector_field, vector_fields
    from steer.run.results import Run, compare_runs, load_run
    from steer.run.runner import run_study
    from steer.run.session import Session, open_session
    from steer.run.specs import Spec, load_spec
    from steer.run.study import Report, Study
    from steer.run.vector_plan import VectorPlan, plan_vector
    from steer.studies import STUDIES, run_spec, study_for

__all__ = [
    "FAMILIES",
    "METRICS",
    "STUDIES",
    "VECTOR_KINDS",
    "Checkpoint",
    "FieldInputs",
    "Maze",
    "MazeRenderer",
    "Metric",
    "PairSpec",
    "Report",
    "Run",
    "Session",
    "Spec",
    "SteerError",
    "SteeringVector",
    "Study",
    "VectorField",
    "VectorInfo",
    "VectorKind",
    "VectorPlan",
    "__version__",
    "compare_runs",
    "compute_vector",
    "describe",
    "load_checkpoint",
    "load_run",
    "load_spec",
    "maze_metrics",
    "open_session",
    "plan_vector",
    "run_spec",
    "run_study",
    "study_for",
    "summarize",
    "vector_field",
    "vector_fields",
    "vector_info",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'steer' has no attribute {name!r}")
    module, attr = _WHERE[name]
    value = getattr(import_module(module), attr)
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
