"""The claims chart (steer/report/claims_chart.py): drawn by every batch with claims beside summary.html, which
opens with it, and by the docs' claims blocks from their committed snapshots. Its axes' data are checked against
the claims' own numbers: one row per claim in summary.md's order, each interval, each threshold, each colour."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from _harness import ROOT
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D

from cli.main import app
from steer.analysis.verdicts import criterion_of, describe_criterion
from steer.report import headline
from steer.report.claims_chart import claims_chart
from steer.report.figures import figure_bytes
from steer.report.style import VERDICT

# A small batch of its own: the cheese vector on 8 mazes with a random control, a claim that holds, one that
# fails, one on too few mazes, a sanity check with a band.
CHEESE = {"experiment": "minus", "metric": "p_cheese_ds", "kind": "change"}
CLAIMS = [
    {
        "id": "cheese-down",
        "post": "Subtracting the cheese vector lowers P(cheese).",
        "setting": "8 mazes",
        "measure": CHEESE,
        "control": {**CHEESE, "source": "controls.random"},
        "criterion": {"below": -0.3},
    },
    {"id": "cheese-up", "post": "It raises P(cheese).", "setting": "8 mazes", "measure": CHEESE,
     "criterion": {"above": 0.05}},
    {
        "id": "random-moves-little",
        "post": "A random vector of the same norm moves P(cheese) little.",
        "setting": "8 mazes",
        "measure": {**CHEESE, "source": "controls.random"},
        "criterion": {"within": [-0.5, 0.5]},
        "sanity": True,
    },
]  # fmt: skip
ORDER = ["cheese-down", "cheese-up", "random-moves-little"]  # findings, then the sanity checks


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    tmp = tmp_path_factory.mktemp("claims-chart")
    spec = {"seeds": {"from": 0, "to": 7}, "vector": {"kind": "cheese"}, "coeff": -1, "controls": ["random"]}
    path = tmp / "batch.yaml"
    path.write_text(
        yaml.safe_dump(
            {"name": "small", "experiments": [{"name": "minus", "command": "apply", "spec": spec}], "claims": CLAIMS}
        )
    )
    out = tmp / "out"
    result = CliRunner().invoke(app, ["batch", str(path), "--out", str(out), "--workers", "1"])
    assert result.exit_code in (0, 1), result.output  # 1: a verdict other than expected (none is stated here)
    return out


def _rows_axes(fig) -> list:
    return [ax for ax in fig.axes if (ax.get_gid() or "").startswith("claim-")]


def _line(ax, gid: str) -> Line2D:
    (line,) = [x for x in ax.lines if x.get_gid() == gid]
    return line


def check_chart(fig, rows: Sequence[Mapping[str, Any]]) -> None:
    """The chart's axes against the rows: one axis per claim in order (findings, then sanity checks), each sample's
    interval and point, the criterion's threshold(s), the null, the verdicts' colours, n."""
    ordered = [r for r in rows if not r.get("sanity")] + [r for r in rows if r.get("sanity")]
    axes = _rows_axes(fig)
    assert [ax.get_gid() for ax in axes] == [f"claim-{r['id']}" for r in ordered]
    texts = [t.get_text() for t in fig.texts]
    for ax, r in zip(axes, ordered, strict=True):
        cid, stat = r["id"], r["statistic"]
        samples = [(s, r[s]) for s in ("discovery", "replication") if s in r] or [("sample", r)]
        lo, hi = ax.get_xlim()
        for name, x in samples:
            ci = x["measured"][f"{stat}_ci"]
            line = _line(ax, f"claim-{cid}-{name}")
            assert list(line.get_xdata()) == ci
            assert to_hex(line.get_color()) == VERDICT[x["verdict"]]
            point = _line(ax, f"claim-{cid}-{name}-point")
            assert list(point.get_xdata()) == [x["measured"][stat]]
            assert lo < min(ci) and max(ci) < hi  # the interval is inside its row's own axis
            groups = x["measured"].get("n_groups")  # two groups of mazes (a contrast): each group's n
            assert "n " + ("+".join(map(str, groups)) if groups else str(x["measured"]["n"])) in texts
        criterion = criterion_of(r["criterion"])
        assert criterion is not None
        edges = criterion.get("within") or [criterion.get("above", criterion.get("below"))]
        for k, t in enumerate(edges):
            assert list(_line(ax, f"claim-{cid}-threshold{k}").get_xdata()) == [t, t]
            assert lo < t < hi
        assert list(_line(ax, f"claim-{cid}-null").get_xdata()) == [r["null"], r["null"]]
        badge = [t for t in fig.texts if t.get_text() == r["verdict"] and t.get_bbox_patch() is not None]
        assert badge and all(to_hex(t.get_bbox_patch().get_facecolor()) == VERDICT[r["verdict"]] for t in badge)


def test_a_batch_draws_its_claims_chart_and_summary_html_opens_with_it(batch: Path) -> None:
    rows = json.loads((batch / "claims.json").read_text())
    assert [r["id"] for r in rows] == [c["id"] for c in CLAIMS]
    assert {r["verdict"] for r in rows} >= {"holds", "fails"}  # the colours differ where the verdicts do
    # The thresholds are the batch file's own criteria, read back from the rows.
    for r, c in zip(rows, CLAIMS, strict=True):
        assert {k: v for k, v in criterion_of(r["criterion"]).items() if k != "statistic"} == c["criterion"]
    fig = claims_chart(rows, "small: claims")
    check_chart(fig, rows)
    assert [ax.get_gid() for ax in _rows_axes(fig)] == [f"claim-{i}" for i in ORDER]
    band = [p for p in _rows_axes(fig)[2].patches if p.get_gid() == "claim-random-moves-little-band"]
    assert band and band[0].get_x() == -0.5 and band[0].get_width() == 1.0  # the sanity check's band, shaded
    # The files: the same bytes as the chart drawn again from claims.json; the SVG keeps each row's id.
    png, svg = (batch / "claims.png").read_bytes(), (batch / "claims.svg").read_text()
    assert png == figure_bytes(claims_chart(rows, "small: claims"), "png")
    assert all(f'id="claim-{i}"' in svg for i in ORDER)
    # summary.html inlines it above the claims' table, and links both files.
    page = (batch / "summary.html").read_text()
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    assert page.count(uri) == 1 and page.index(uri) < page.index('<table class="claims">')
    assert 'href="claims.png"' in page and 'href="claims.svg"' in page


def test_the_chart_of_a_two_sample_batch_shows_both_samples_of_every_claim() -> None:
    """The committed reproduce snapshot (a real run's claims.json, without its per-maze values): 21 claims judged
    on a discovery and a replication sample, several verdicts and a median claim."""
    rows = json.loads((ROOT / "docs" / "claims" / "reproduce.json").read_text())["claims"]
    assert "replication" in rows[0] and len({r["verdict"] for r in rows}) >= 4
    fig = claims_chart(rows, "reproduce: claims")
    check_chart(fig, rows)
    assert figure_bytes(fig, "svg") == figure_bytes(claims_chart(rows, "reproduce: claims"), "svg")


@pytest.mark.parametrize(
    "criterion",
    [
        {"statistic": "mean", "above": 0.05},
        {"statistic": "median", "below": -0.3, "precision": 0.15},
        {"statistic": "mean", "within": [-0.01, 0.01], "precision": 1e-05},
        {"statistic": "mean", "below": -7.25},
    ],
)
def test_a_criterion_is_read_back_from_the_sentence_the_engine_writes(criterion: dict) -> None:
    assert criterion_of(describe_criterion(criterion)) == criterion
    assert criterion_of("the mean goes down") is None


def test_headline_draws_the_chart_from_the_snapshot_and_each_block_shows_it(
    batch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, end = headline.markers("small")
    (tmp_path / "docs").mkdir()
    for page in headline.PAGES:
        (tmp_path / page).write_text(f"# page\n{start}\nold\n{end}\n")
    monkeypatch.chdir(tmp_path)
    assert headline.main([str(batch / "claims.json")]) == 0
    first = {p.name: p.read_bytes() for p in sorted((tmp_path / "docs" / "claims").iterdir())}
    assert set(first) == {"small.json", "small.png", "small.svg"}
    snap = json.loads(first["small.json"])
    assert first["small.png"] == figure_bytes(claims_chart(snap["claims"], "small: claims"), "png")
    readme, results = ((tmp_path / p).read_text() for p in headline.PAGES)
    assert "](docs/claims/small.png)" in readme and "(docs/claims/small.svg)" in readme
    assert "](claims/small.png)" in results and "(claims/small.svg)" in results  # docs/results.md's own folder
    assert headline.main([str(batch / "claims.json")]) == 0  # again: the same bytes
    assert {p.name: p.read_bytes() for p in sorted((tmp_path / "docs" / "claims").iterdir())} == first


def test_every_committed_claims_block_shows_its_committed_chart() -> None:
    for snap in sorted((ROOT / "docs" / "claims").glob("*.json")):
        for page in headline.PAGES:
            text = (ROOT / page).read_text()
            if f"<!-- claims:{snap.stem}:start -->" not in text:
                continue
            for fmt in headline.CHART_FORMATS:
                image = ROOT / "docs" / "claims" / f"{snap.stem}.{fmt}"
                assert image.is_file(), image
                assert f"({os.path.relpath(image, (ROOT / page).parent)})" in text
