"""Every figure in a folder of runs on one contact sheet, with the list of the formats each was written in.

    python -m steer.report.gallery outputs/gallery docs/img/gallery.png docs/figures.md    # `make gallery`

`make gallery` runs configs/gallery.yaml (a small run of every study that draws a figure, with
`figures: [png, svg, pdf]`) and then this: the sheet tiles every PNG and GIF (its first frame) under the folder,
each labelled `<run>/<file>`, and the block between `<!-- gallery:start -->` and `<!-- gallery:end -->` of the
page lists every figure with the formats found beside it. So the docs' picture of what steer draws is made by
steer, never assembled by hand, and a figure that stopped being written in a format shows in the list.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from steer.io import atomic_write_bytes
from steer.report.figures import FORMATS, png_bytes
from steer.report.render import TEXT_RGB, font

TILE = (420, 300)  # a thumbnail's box, pixels: four across fit a docs page's width at full resolution
LABEL = 20  # pixels above each thumbnail for its name
COLUMNS = 4
START, END = "<!-- gallery:start -->", "<!-- gallery:end -->"


@dataclass(frozen=True)
class Entry:
    """One figure: its file (`run/name.png` or `.gif`) relative to the folder and the formats beside it."""

    path: Path
    formats: tuple[str, ...]

    @property
    def run(self) -> str:
        return self.path.parent.as_posix()


def entries(folder: Path) -> list[Entry]:
    """Every PNG and GIF under `folder` (not the sheet itself), in run then file order, with the formats written
    under the same name (png, svg, pdf; gif for an animation)."""
    shown = sorted(p for p in folder.rglob("*") if p.suffix in (".png", ".gif") and p.is_file())
    found = []
    for p in shown:
        formats = tuple(f for f in (*FORMATS, "gif") if p.with_suffix(f".{f}").is_file())
        found.append(Entry(p.relative_to(folder), formats))
    return found


def contact_sheet(folder: Path, figures: Sequence[Entry]) -> Image.Image:
    """The figures' thumbnails in rows of `COLUMNS`, each under its `run/file` label."""
    width, height = TILE
    rows = -(-len(figures) // COLUMNS)
    sheet = Image.new("RGB", (COLUMNS * width, rows * (height + LABEL)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, entry in enumerate(figures):
        with Image.open(folder / entry.path) as source:
            thumb = source.convert("RGB")  # a GIF's first frame
        thumb.thumbnail((width - 12, height - 8))
        row, col = divmod(k, COLUMNS)
        x, y = col * width, row * (height + LABEL)
        draw.text((x + 6, y + 3), entry.path.as_posix(), fill=TEXT_RGB, font=font(13))
        sheet.paste(thumb, (x + 6, y + LABEL))
        draw.rectangle((x, y, x + width - 1, y + height + LABEL - 1), outline=(210, 210, 210))
    return sheet


def listing(figures: Sequence[Entry]) -> str:
    """A markdown table: each run's figures and the formats each was written in."""
    lines = ["| run | figure | formats |", "|---|---|---|"]
    lines += [f"| `{e.run}` | `{e.path.stem}` | {', '.join(e.formats)} |" for e in figures]
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str:
    """`text` with its gallery block's content replaced by `block`; a page without exactly one block is refused."""
    if text.count(START) != 1 or text.count(END) != 1:
        raise ValueError(f"the page needs one {START} line and one {END} line")
    pattern = re.escape(START) + r".*?" + re.escape(END)
    return re.sub(pattern, lambda _: f"{START}\n\n{block}\n\n{END}", text, flags=re.S)


def main(argv: Sequence[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    folder, sheet_path, page = (Path(a) for a in argv)
    figures = entries(folder)
    # A palette of 256 colours: the sheet is committed to the docs, and at a third of the bytes it reads the same.
    sheet = contact_sheet(folder, figures).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    atomic_write_bytes(sheet_path, png_bytes(sheet))
    page.write_text(replace_block(page.read_text(), listing(figures)))
    print(f"{sheet_path}: {len(figures)} figures from {folder}; {page}: their formats")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
