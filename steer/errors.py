"""User-facing errors.

Everything a user can get wrong (a spec, a layer name, a seed, a checkpoint) raises `SteerError` with a
message that names the field, the value and the fix. The CLI prints that message and exits non-zero;
anything else reaching the top is a bug and keeps its traceback.

Values in messages go through `excerpt`: a value read from a file may be megabytes long (or a YAML alias
structure that expands to billions of items), and a message must stay one readable paragraph.
"""

from __future__ import annotations

import reprlib
from typing import Any

EXCERPT_LIMIT = 80


class SteerError(Exception):
    """An error caused by user input, with a message meant to be read by that user."""


def _short_repr(limit: int) -> reprlib.Repr:
    # Bounded at every level, so building the text costs little whatever the value holds (and a recursive
    # list ends in '...' instead of recursing).
    r = reprlib.Repr()
    r.maxlevel = 3
    r.maxtuple = r.maxlist = r.maxset = r.maxfrozenset = r.maxdeque = r.maxarray = 8
    r.maxdict = 6
    r.maxstring = r.maxother = limit
    r.maxlong = 40
    return r


def excerpt(value: Any, limit: int = EXCERPT_LIMIT) -> str:
    """`repr(value)` cut to about `limit` characters; a cut text ends in '…' followed by the full size.

    Strings and bytes keep their head (`'abc…' (1000000 characters)`); containers show their first items
    and their length (`[0, 1, 2, ...] (a list of 5000 items)`). The cost is bounded by `limit`, not by the
    value, so it is safe on untrusted data.
    """
    if isinstance(value, str | bytes | bytearray):
        unit = "characters" if isinstance(value, str) else "bytes"
        text = repr(value[:limit])
        if len(value) <= limit and len(text) <= limit + 3:  # + quotes and a b'' prefix
            return text
        return f"{text[:limit]}… ({len(value)} {unit})"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        # repr() of a huge int is slow, and refused past 4300 digits.
        return f"an integer of {value.bit_length()} bits"
    try:
        text = _short_repr(limit).repr(value)
    except Exception:  # a broken __repr__ must not hide the error being reported
        text = f"<{type(value).__name__}>"
    sized = isinstance(value, list | tuple | dict | set | frozenset)
    cut = len(text) > limit
    if cut:
        text = text[:limit] + "…"
    if sized and (cut or "..." in text):
        kind = {list: "a list", tuple: "a tuple", dict: "a mapping"}.get(type(value), type(value).__name__)
        n = len(value)
        noun = ("entry" if n == 1 else "entries") if isinstance(value, dict) else ("item" if n == 1 else "items")
        text += f" ({kind} of {n} {noun})"
    return text


def shown_key(key: Any) -> str:
    """A mapping key read from a file, as text for a message: as is when a short printable string (`seeds`),
    else `excerpt`'s repr, so a key holding terminal escapes, bidi controls or a megabyte of text is shown
    escaped and short (`'\\x1b]0;pwned\\x07'`), never raw."""
    if isinstance(key, str) and key and len(key) <= 60 and key.isprintable() and key.strip() == key:
        return key
    return excerpt(key, 60)


def printable(text: str) -> str:
    """`text` as one paragraph of printable characters: line breaks and tabs become spaces, any other
    control or format character (ESC, BEL, bidi overrides) its escape (`\\x1b`), so no message can move the
    cursor, retitle the terminal or reorder what follows it."""
    return "".join(
        c if c.isprintable() else " " if c in "\n\r\t" else c.encode("unicode_escape").decode("ascii") for c in text
    )
