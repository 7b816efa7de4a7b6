"""The vector twin of the field figures (steer/report/field_vector.py): `figures: [png, svg, pdf]` writes each
cell's field figure also as SVG and PDF, listed with the cell's files and reused on resume; the twin's arrows are
the field's arrows; the default spec writes the PNG alone, as before."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from _cli import run

from steer.report.field_vector import field_twin
from steer.report.figures import figure_bytes
from steer.report.render import Panel, cell_size, field_figure

SEEDS = [0, 1]
SPEC = {"seeds": SEEDS, "vector": {"kind": "cheese"}, "coeff": -1}


def _apply(tmp: Path, name: str, **extra: object) -> Path:
    spec = tmp / f"{name}.yaml"
    spec.write_text(yaml.safe_dump({"name": name, **SPEC, **extra}))
    result = run("apply", spec, "--out", tmp / name, "--workers", "1")
    assert result.exit_code == 0, result.output
    return tmp / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """The same apply run twice: with the default figures (PNG) and with `figures: [png, svg, pdf]`."""
    tmp = tmp_path_factory.mktemp("field-vector")
    return _apply(tmp, "plain"), _apply(tmp, "vector", figures=["png", "svg", "pdf"])


def _cell_files(folder: Path) -> dict[str, list[str]]:
    cells = json.loads((folder / "manifest.json").read_text())["cells"]
    return {k: c["files"] for k, c in cells.items()}


def test_svg_and_pdf_are_written_for_each_cell_and_listed_with_its_files(runs) -> None:
    plain, vector = runs
    for s in SEEDS:
        stem = f"field-seed{s}"
        assert _cell_files(vector)[f"seed-{s}"] == [
            f"vfield-seed{s}.json",
            *(f"{stem}.{f}" for f in ("png", "svg", "pdf")),
        ]
        assert (vector / f"{stem}.svg").read_text().startswith("<?xml")
        assert (vector / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
        # The PNG is Pillow's either way, byte for byte.
        assert (vector / f"{stem}.png").read_bytes() == (plain / f"{stem}.png").read_bytes()
    # The default spec: the PNG alone, the cell's files as before.
    assert not list(plain.glob("*.svg")) and not list(plain.glob("*.pdf"))
    assert _cell_files(plain) == {f"seed-{s}": [f"vfield-seed{s}.json", f"field-seed{s}.png"] for s in SEEDS}


def _arrow_count(svg: str, gid: str) -> int:
    """The paths of the group with id `gid` in a matplotlib SVG (one per segment of a LineCollection)."""
    group = re.search(rf'<g id="{gid}">(.*?)</g>', svg, re.S)
    assert group is not None, gid
    return group[1].count("<path ")


def test_the_svg_draws_one_arrow_per_square_the_field_moves(runs, easy) -> None:
    _, vector = runs
    for s in SEEDS:
        field = json.loads((vector / f"vfield-seed{s}.json").read_text())
        svg = (vector / f"field-seed{s}.svg").read_text()
        cell = cell_size(easy.level(s))
        for k, side in enumerate(("original", "patched")):
            arrows = np.array(field[side]["arrows"])
            long = int((np.hypot(*arrows.T) * cell * 0.45 >= 1.0).sum())  # shorter than a pixel: a dot
            assert _arrow_count(svg, f"panel-{k}-arrows") == long
        assert 'id="panel-2"' in svg  # the difference panel


def test_the_twin_s_arrows_are_the_field_s_arrows_at_the_png_s_scale(runs, easy) -> None:
    _, vector = runs
    field = json.loads((vector / "vfield-seed1.json").read_text())
    maze = easy.level(1)
    positions = [tuple(p) for p in field["positions"]]
    panels = [Panel(maze, positions, np.array(field[side]["arrows"]), side) for side in ("original", "patched")]
    fig = field_figure("seed 1", panels, footer="legend")
    twin = field_twin(fig)
    half = cell_size(maze) * 0.45
    for k, panel in enumerate(panels):
        (ax,) = [a for a in twin.axes if a.get_gid() == f"panel-{k}"]
        (shafts,) = [c for c in ax.collections if c.get_gid() == f"panel-{k}-arrows"]
        moving = [a for a in panel.arrows if np.hypot(*a) * half >= 1.0]
        segments = shafts.get_segments()
        assert len(segments) == len(moving) > 0
        for (start, tip), (ax_, ay) in zip(segments, moving, strict=True):
            # Pixels, y down: the arrow's x to the right, its y up; one cell-half at certainty.
            np.testing.assert_allclose((tip - start) / half, [ax_, -ay], atol=1e-9)
    # The twin is the PNG's size at steer's DPI, its bytes the same on every draw.
    image = fig.image()
    assert tuple(round(v * 150) for v in twin.get_size_inches()) == image.size
    assert figure_bytes(twin, "svg") == figure_bytes(field_twin(fig), "svg")


def test_a_resumed_run_reuses_the_svg_and_pdf(runs, tmp_path: Path) -> None:
    _, vector = runs
    before = {p.name: p.read_bytes() for p in sorted(vector.glob("field-seed*"))}
    spec = vector.parent / "vector.yaml"
    result = run("apply", spec, "--out", vector, "--workers", "1")
    assert result.exit_code == 0, result.output
    assert json.loads((vector / "metrics.json").read_text())["reused_cells"] == len(SEEDS)
    assert {p.name: p.read_bytes() for p in sorted(vector.glob("field-seed*"))} == before
