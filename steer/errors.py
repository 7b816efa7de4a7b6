"""User-facing errors.

Everything a user can get wrong (a spec, a layer name, a seed, a checkpoint) raises `SteerError` with a
message that names the field, the value and the fix. The CLI prints that message and exits non-zero;
anything else reaching the top is a bug and keeps its traceback.
"""

from __future__ import annotations


class SteerError(Exception):
    """An error caused by user input, with a message meant to be read by that user."""
