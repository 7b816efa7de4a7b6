"""Saving a figure in the formats a spec asks for (`figures: [png, svg, pdf]`), byte for byte the same on every
run of the same numbers.

A figure is a matplotlib `Figure` (the charts: steer/report/style.py gives them one look; made without pyplot,
so nothing needs closing) or a Pillow image (the maze panels, drawn pixel by pixel). PNG is always written: the
run's page inlines it. A matplotlib figure is also written as SVG and PDF when asked, with the metadata that
would change from run to run (dates, the software's version) left out and SVG's ids drawn from a fixed salt, so
a resumed run and a run on Ray write the same bytes. A Pillow image has no vector form of its own; a study that
wants one draws a matplotlib twin and saves that.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from steer.io import atomic_write_bytes

FORMATS = ("png", "svg", "pdf")
DPI = 150
# What each format would otherwise stamp with the date or the library's version.
_METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}


def _freeze_layout(fig: Any) -> None:
    """Keep the geometry `fig` was just drawn with. Constrained layout starts from the axes' current positions,
    so a second draw of the same figure can move them by a fraction of a point: without this, a chart's SVG
    (its second save) would be laid out a little differently from its PNG, and a figure saved again would not
    give the same bytes. A figure laid out by hand, or frozen already, is left as it is."""
    engine = fig.get_layout_engine()
    if engine is not None and type(engine).__name__ != "PlaceHolderLayoutEngine":
        fig.set_layout_engine("none")


def figure_bytes(fig: Any, fmt: str) -> bytes:
    """One matplotlib figure as `fmt` (png, svg or pdf), deterministic: the same numbers give the same bytes,
    and a figure saved again gives what it gave the first time (its layout is computed at its first save and
    kept); the figure is left open."""
    import matplotlib

    from steer.report.style import RC

    buf = io.BytesIO()
    # The style's keys read when saving (text kept as text in SVG, TrueType in PDF), wherever the figure is saved.
    saving = {k: v for k, v in RC.items() if k.startswith(("svg.", "pdf.", "savefig."))}
    with matplotlib.rc_context({**saving, "svg.hashsalt": "steer", "pdf.compression": 6}):
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=_METADATA[fmt])
    _freeze_layout(fig)
    return buf.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    # zlib's default level without `optimize`: 3x faster to write (it was a third of a 100-seed apply's time)
    # for files about 10% larger.
    image.save(buf, format="PNG")
    return buf.getvalue()


def is_figure(value: Any) -> bool:
    """A matplotlib figure (imported lazily: a worker that draws only maze panels never loads matplotlib)."""
    return type(value).__module__.startswith("matplotlib.") and hasattr(value, "savefig")


def save_figure(value: Any, path: Path, formats: Sequence[str] = ("png",)) -> list[str]:
    """Write `value` at `path` (its name ends in .png) and, for a matplotlib figure, beside it in each other
    format of `formats`; returns the names written, the PNG first."""
    path = Path(path)
    if not is_figure(value):
        atomic_write_bytes(path, png_bytes(value))
        return [path.name]
    written = []
    for fmt in ("png", *(f for f in formats if f != "png")):
        target = path.with_suffix(f".{fmt}")
        atomic_write_bytes(target, figure_bytes(value, fmt))
        written.append(target.name)
    return written


def as_image(value: Any) -> Image.Image:
    """A figure as a Pillow image (a matplotlib figure rendered to PNG first): for tiling figures together."""
    if not is_figure(value):
        return value
    return Image.open(io.BytesIO(figure_bytes(value, "png"))).convert("RGB")


__all__ = ["DPI", "FORMATS", "as_image", "figure_bytes", "is_figure", "png_bytes", "save_figure"]
