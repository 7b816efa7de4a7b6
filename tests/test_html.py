"""report.html in every run folder, `steer report DIR`, and make reproduce's summary.html: self-contained pages
(figures inlined, no network), built from what a run folder holds, for any study."""

from __future__ import annotations

import base64
import json
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from _browser import chrome
from typer.testing import CliRunner

from cli.main import app
from steer.report.html import REPORT_HTML, summary_blocks, write_report_html, write_summary_html

runner = CliRunner()


class Tags(HTMLParser):
    """Every tag with its attributes, to check what a page would load."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def assert_self_contained(html: str) -> list[str]:
    """No network reference anywhere; every image inline; no external script or stylesheet. Returns the img srcs."""
    assert "http://" not in html and "https://" not in html
    found = tags(html)
    assert not [a for t, a in found if t == "script" and a.get("src")]
    assert not [a for t, a in found if t == "link"]
    srcs = [a.get("src") or "" for t, a in found if t == "img"]
    assert all(s.startswith("data:image/png;base64,") for s in srcs), srcs
    return srcs


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A real `steer apply` run on seeds 0 and 1 (cheese vector, coefficient -1)."""
    tmp = tmp_path_factory.mktemp("report")
    spec = tmp / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "html-test", "seeds": [0, 1], "vector": {"kind": "cheese"}, "coeff": -1}))
    result = runner.invoke(app, ["apply", str(spec), "--out", str(tmp / "run")])
    assert result.exit_code == 0, result.output
    return tmp / "run"


def test_every_run_writes_a_self_contained_report_html(run_folder: Path) -> None:
    html = (run_folder / REPORT_HTML).read_text()
    manifest = json.loads((run_folder / "manifest.json").read_text())
    report = json.loads((run_folder / "metrics.json").read_text())
    assert REPORT_HTML in manifest["reports"]  # so --force removes it with the other outputs
    srcs = assert_self_contained(html)
    # Every figure once, byte for byte the PNG in the folder.
    assert len(srcs) == len(report["figures"]) == 2
    for name in report["figures"]:
        png = (run_folder / name).read_bytes()
        assert srcs.count("data:image/png;base64," + base64.b64encode(png).decode()) == 1
    assert report["provenance"]["checkpoint"]["sha256"] in html
    assert "kind: cheese" in html and "coeff: -1" in html  # the spec, as YAML
    assert "P(cheese | decision square)" in html  # the summary, labelled from the metric registry
    assert 'href="metrics.json"' in html and 'href="vfield-seed0.json"' in html
    table = [a for t, a in tags(html) if t == "table" and a.get("id") == "rows-mazes"]
    assert table and "sortable" in (table[0].get("class") or "")


def test_steer_report_rebuilds_the_page(run_folder: Path) -> None:
    before = (run_folder / REPORT_HTML).read_bytes()
    (run_folder / REPORT_HTML).unlink()
    result = runner.invoke(app, ["report", str(run_folder)])
    assert result.exit_code == 0, result.output
    assert (run_folder / REPORT_HTML).read_bytes() == before  # built from the folder alone: the same page


def _unfinished(tmp: Path) -> Path:
    folder = tmp / "stopped"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"command": "apply", "status": "interrupted", "cells": {}}))
    return folder


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda tmp: tmp / "nowhere", "does not exist"),
        (lambda tmp: (tmp / "file.txt", (tmp / "file.txt").write_text("x"))[0], "is a file, not a folder"),
        (lambda tmp: (tmp / "empty", (tmp / "empty").mkdir())[0], "has no manifest.json"),
        (
            lambda tmp: (tmp / "bad", (tmp / "bad").mkdir(), (tmp / "bad" / "manifest.json").write_text("{oops"))[0],
            "not valid JSON",
        ),
        (_unfinished, "has not finished"),
    ],
)
def test_steer_report_on_a_bad_folder_is_one_message_and_exit_2(tmp_path: Path, make, says: str) -> None:
    folder = make(tmp_path)
    result = runner.invoke(app, ["report", str(folder)])
    assert result.exit_code == 2
    assert result.output.count("error:") == 1 and "DIR:" in result.output and says in result.output
    assert "Traceback" not in result.output
    assert not (Path(folder) / REPORT_HTML).exists()


def test_any_summary_shape_and_untrusted_values_render(tmp_path: Path) -> None:
    # A study added later: an unknown command, interval keys in its summary, a per-coefficient list, hostile
    # strings and a figure name leading out of the folder. The page shows it all, escaped and confined.
    (tmp_path / "outside.png").write_bytes(b"\x89PNG\r\n\x1a\nsecret")
    run = tmp_path / "run"
    run.mkdir()
    stat = {
        "n": 3,
        "mean": 0.5,
        "median": 0.4,
        "q25": 0.2,
        "q75": 0.7,
        "ci_low": 0.1,
        "ci_high": 0.9,
        "mean_ci": [0.3, 0.6],
    }
    report = {
        "command": "future-study",
        "spec": {"name": "<script>alert(1)</script>", "seeds": [0]},
        "provenance": {"checkpoint": {"name": "x", "sha256": "ab" * 32}},
        "summary": {
            "mazes": 3,
            "p_cheese_ds": {"original": stat, "patched": stat},
            "by_coeff": [{"coeff": 2.0, "mean_tv": stat}],
        },
        "mazes": [
            {"seed": 0, "note": "<img src=x onerror=alert(1)>", "p_cheese_ds": {"original": 1.0, "patched": None}}
        ],
        "figures": ["../outside.png"],
    }
    (run / "metrics.json").write_text(json.dumps(report))
    (run / "manifest.json").write_text(json.dumps({"command": "future-study", "reports": ["metrics.json"]}))
    html = write_report_html(run).read_text()
    assert "<script>alert" not in html and "<img src=x" not in html and "&lt;script&gt;" in html
    assert "secret" not in html and "c2VjcmV0" not in html  # the PNG outside the folder is not inlined
    assert_self_contained(html)
    for column in ("ci_low", "ci_high", "mean_ci"):
        assert f"<th>{column}</th>" in html
    assert "coeff 2" in html  # the list item becomes its own titled block
    _, columns = summary_blocks(report["summary"])
    assert columns[:5] == ["n", "mean", "median", "q25", "q75"] and {"ci_low", "mean_ci"} <= set(columns)


def test_batch_summary_html_inlines_its_figures(tmp_path: Path, run_folder: Path) -> None:
    out = tmp_path / "reproduce"
    (out / "cheese").mkdir(parents=True)
    (out / "cheese" / "field-seed0.png").write_bytes((run_folder / "field-seed0.png").read_bytes())
    (out / "cheese" / REPORT_HTML).write_text("<p>report</p>")
    row = {
        "id": "cheese-subtract",
        "post": "Subtracting the cheese vector <b>works</b>",
        "setting": "seeds 0–99",
        "extra_setting": False,
        "criterion": "95% CI of the mean below -0.3",
        "shown": "mean -0.860 [-0.91, -0.80]",
        "control_shown": "—",
        "steerability_shown": "claimed way 0.91 [0.80, 0.96], opposite 0.02, unmoved 0.07 (n 53)",
        "control_steerability": None,
        "control_steerability_shown": "—",
        "mde": 0.123,
        "wilcoxon_p_holm": 0.004,
        "verdict": "holds",
        "why": "",
        "expect": "holds",
        "as_expected": True,
        "figures": ["cheese/field-seed0.png", "cheese/missing.png", "../outside.png"],
    }
    failed = {**row, "id": "other", "verdict": "inconclusive", "as_expected": False, "figures": []}
    check = {**row, "id": "zero-moves-nothing", "sanity": True, "figures": [], "wilcoxon_p_holm": None}
    checkpoint = {"name": "maze-rr5-easy-160M", "sha256": "e8" * 32, "mode": "easy"}
    sealed = "Criteria sealed before the replication sample was opened: sha256 abc…"
    html = write_summary_html(out, [row, failed, check], "reproduce", checkpoint, sealed).read_text()
    srcs = assert_self_contained(html)
    assert len(srcs) == 1  # the missing figure and the one outside the folder are not inlined
    assert "&lt;b&gt;works&lt;/b&gt;" in html and 'href="cheese/report.html"' in html
    assert "Findings: 1 holds, 1 inconclusive (2 claims). Sanity checks: 1 holds (1)." in html
    assert "expected holds" in html and sealed in html
    assert "claimed way 0.91 [0.80, 0.96]" in html and "Holm p 0.004" in html and "detectable at this n: 0.123" in html
    assert "2 findings have a paired test" in html
    # The sanity check has its own section, after the findings.
    assert html.index('id="claim-other"') < html.index("Checks that the instrument works")
    assert html.index("Checks that the instrument works") < html.index('id="claim-zero-moves-nothing"')


def test_report_opens_from_disk_in_a_browser(run_folder: Path) -> None:
    """file:// in headless Chromium: every image decodes, and clicking a column header sorts the table."""
    with chrome() as d:
        d.get((run_folder / REPORT_HTML).resolve().as_uri())
        widths = d.execute_script("return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == 2 and all(w > 0 for w in widths), widths

        def seeds() -> list[str]:
            return d.execute_script(
                "return Array.from(document.querySelectorAll('#rows-mazes tbody tr')).map(r => r.cells[0].textContent)"
            )

        assert seeds() == ["0", "1"]
        header = d.find_element("css selector", "#rows-mazes thead th")
        header.click()
        header.click()  # ascending, then descending
        deadline = time.monotonic() + 5
        while seeds() != ["1", "0"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seeds() == ["1", "0"]
