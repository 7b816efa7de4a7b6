"""`steer explore`: the API (Starlette's TestClient) and the page in a real headless Chromium. Real checkpoint,
real procgen; easy seed 0 (a 3x3 maze) keeps it quick."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from _browser import chrome
from _harness import LAYER
from typer.testing import CliRunner

from cli.main import app
from steer.explore.app import Explorer, Running, create_app
from steer.maze.env import MazeRenderer
from steer.net.vectors import PairSpec, compute_vector
from steer.net.vfield import FieldInputs, vector_field
from steer.studies import STUDIES

starlette_testclient = pytest.importorskip("starlette.testclient", reason="Starlette's TestClient needs httpx")

PORT = 8123  # the TestClient's requests say Host 127.0.0.1:8123; no socket is opened
CHEESE = {"kind": "cheese"}


@pytest.fixture(scope="module")
def vectors(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("vectors")


@pytest.fixture(scope="module")
def explorer(ckpt, vectors) -> Explorer:
    return Explorer(ckpt, [vectors])


@pytest.fixture(scope="module")
def client(explorer):
    return starlette_testclient.TestClient(create_app(explorer, port=PORT), base_url=f"http://127.0.0.1:{PORT}")


def field(client, **params) -> dict:
    response = client.post("/api/field", json={"seed": 0, "coeff": -1, "vector": CHEESE, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_field_json_for_a_seed(client, easy: MazeRenderer) -> None:
    view = field(client)
    maze = easy.level(0)
    assert view["maze"]["world_dim"] == 15 and len(view["maze"]["walls"]) == 15
    assert view["maze"]["cheese"] == list(maze.cheese) and view["maze"]["decision_square"] == [6, 6]
    assert len(view["positions"]) == len(maze.open_squares()) - 1  # every open square but the cheese's
    assert len(view["original"]["arrows"]) == len(view["patched"]["arrows"]) == len(view["positions"])
    m = view["metrics"]
    assert m["p_cheese_ds"]["original"] > 0.99 and m["p_cheese_ds"]["patched"] < 0.5
    assert view["layer"] == LAYER


def test_the_view_carries_the_exact_episode_statistics_of_both_policies(client, ckpt, easy: MazeRenderer) -> None:
    from steer.analysis.chain import maze_behaviours
    from steer.analysis.metrics import BEHAVIOUR_METRICS
    from steer.net.vectors import PairSpec, compute_vector

    view = field(client, coeff=-2)
    maze = easy.level(0)
    vec = compute_vector(ckpt.policy, easy, maze, PairSpec("cheese"), LAYER)
    before, after = maze_behaviours(ckpt.policy, easy, maze, [(), [(LAYER, vec.tensor, -2.0)]])
    episode = view["episode"]
    assert set(episode) == set(BEHAVIOUR_METRICS)
    assert episode["p_reach_cheese"]["original"] == pytest.approx(before.p_cheese, abs=1e-5)
    assert episode["p_reach_cheese"]["patched"] == pytest.approx(after.p_cheese, abs=1e-5)
    assert episode["mean_steps"]["patched"] == pytest.approx(after.mean_steps, rel=1e-4)


def test_a_coefficient_change_reruns_only_the_suffix_and_matches_vector_field(client, ckpt, easy) -> None:
    first, second = field(client, coeff=-1), field(client, coeff=2.5)
    assert second["timing"]["maze_cached"] and second["timing"]["vector_cached"]
    assert first["original"] == second["original"]
    assert not np.allclose(first["patched"]["arrows"], second["patched"]["arrows"], atol=1e-3)
    maze = easy.level(0)
    vec = compute_vector(ckpt.policy, easy, maze, PairSpec("cheese"), LAYER)
    direct = vector_field(ckpt.policy, FieldInputs.render(easy, maze), [(LAYER, vec.tensor, 2.5)])
    assert [tuple(p) for p in second["positions"]] == list(direct.positions)
    np.testing.assert_allclose(second["patched"]["arrows"], direct.arrows, atol=1e-6)


def test_a_wall_edit_changes_the_field(client) -> None:
    before = field(client)
    square = [8, 6]  # seed 0's maze is a U: start [6, 6], cheese [7, 6], this dead end above the cheese
    assert square in before["positions"]
    after = field(client, target_edits=[{"wall": square}])
    assert after["maze"]["walls"][8][6] == "#" and square not in after["positions"]
    assert after["original"]["arrows"] != before["original"]["arrows"][: len(after["positions"])]
    back = field(client, target_edits=[{"wall": square}, {"open": square}])
    assert back["original"] == before["original"]


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"coeff": "lots"}, "coeff"),
        ({"coeff": float("inf")}, "coeff"),
        ({"seed": -3}, "seed"),
        ({"seed": "zero"}, "seed"),
        ({"layer": "block2.res9"}, "layer"),
        ({"distribution_mode": "medium"}, "distribution_mode"),
        ({"vector": {"kind": "sideways"}}, "vector.kind"),
        ({"vector": {"kind": "cheese", "source_seed": 2**40}}, "vector.source_seed"),
        ({"target_edits": [{"wall": [99, 0]}]}, "target_edits[0]"),
        ({"target_edits": [{"teleport": [1, 1]}]}, "target_edits[0]"),
        ({"vector": {"file": "../../etc/passwd"}}, "vector.file"),
        ({"vector": {"file": "/etc/passwd"}}, "vector.file"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_parameter(client, params: dict, names: str) -> None:
    body = {"seed": 0, "coeff": -1, "vector": CHEESE, **params}
    if body["coeff"] == float("inf"):
        response = client.post(
            "/api/field",
            content='{"seed": 0, "coeff": 1e999, "vector": {"kind": "cheese"}}',
            headers={"content-type": "application/json"},
        )
    else:
        response = client.post("/api/field", json=body)
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith(names) or message.startswith(repr(names)), message
    assert "Traceback" not in message


def test_a_body_that_is_not_json_is_a_400(client) -> None:
    response = client.post("/api/field", content=b"{seed: 0", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"].startswith("request:")
    response = client.post("/api/field", content=b"x" * 70_000)
    assert response.status_code == 400 and "larger than" in response.json()["error"]


def test_vector_files_only_from_allowed_folders(client, explorer, ckpt, easy, vectors: Path, tmp_path) -> None:
    vec = compute_vector(
        ckpt.policy,
        easy,
        easy.level(2),
        PairSpec("cheese"),
        LAYER,
        {"checkpoint_sha256": ckpt.sha256, "source_seed": 2},
    )
    vec.save(vectors / "v.pt")
    vec.save(vectors / "v.safetensors")
    views = [field(client, vector={"file": str(vectors / name)}) for name in ("v.pt", "v.safetensors")]
    assert views[0]["vector"]["source_seed"] == 2 and views[0]["layer"] == LAYER
    assert views[0]["patched"] == views[1]["patched"]  # both formats, the same field
    listed = client.get("/api/vectors").json()["files"]
    assert str(vectors / "v.pt") in listed and str(vectors / "v.safetensors") in listed
    vec.save(tmp_path / "outside.pt")
    (vectors / "link.pt").symlink_to(tmp_path / "outside.pt")  # a link leading out of the folder
    for name in (str(tmp_path / "outside.pt"), str(vectors / "link.pt"), str(vectors / ".." / "x" / "v.pt")):
        response = client.post("/api/field", json={"seed": 0, "coeff": -1, "vector": {"file": name}})
        assert response.status_code == 400 and "outside the folders" in response.json()["error"], name


def test_requests_not_addressed_to_the_local_address_are_refused(explorer) -> None:
    app = create_app(explorer, port=PORT)
    for base in (f"http://evil.example:{PORT}", "http://127.0.0.1:9999", f"http://10.0.0.5:{PORT}"):
        response = starlette_testclient.TestClient(app, base_url=base).get("/")
        assert response.status_code == 403, base
    ok = starlette_testclient.TestClient(app, base_url=f"http://localhost:{PORT}")
    assert ok.get("/").status_code == 200
    cross = ok.post("/api/field", json={"seed": 0}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403


def test_the_page_is_served_with_a_strict_content_policy(client) -> None:
    response = client.get("/")
    assert response.status_code == 200 and "<canvas" in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "http://" not in response.text and "https://" not in response.text
    assert client.get("/nothing").status_code == 404


def test_save_as_spec_round_trips_through_steer_apply(client, tmp_path: Path) -> None:
    params = {
        "seed": 0,
        "coeff": -0.7,
        "layer": LAYER,
        "vector": {"kind": "cheese", "source_seed": 2},
        "target_edits": [{"open": [5, 6]}, {"cheese": [8, 6]}],
    }
    view = client.post("/api/field", json=params).json()
    response = client.post("/api/spec", json=params)
    assert response.status_code == 200 and "explore-seed0.yaml" in response.headers["content-disposition"]
    data = yaml.safe_load(response.text)
    spec = STUDIES["apply"].parse(data)
    assert (
        spec.seeds == (0,)
        and spec.options.coeff == -0.7
        and spec.target_edits == (("open", (5, 6)), ("cheese", (8, 6)))
    )
    path = tmp_path / "saved.yaml"
    path.write_text(response.text)
    result = CliRunner().invoke(app, ["apply", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (maze,) = json.loads((tmp_path / "out" / "metrics.json").read_text())["mazes"]
    for key in ("p_cheese_ds", "p_top_right_ds"):
        for side in ("original", "patched"):
            assert maze[key][side] == pytest.approx(view["metrics"][key][side], abs=1e-6), (key, side)
    assert maze["mean_tv"] == pytest.approx(view["metrics"]["mean_tv"], abs=1e-6)


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url + "api/field", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_the_page_draws_what_the_server_computes(explorer) -> None:
    """Real Chromium: load the page, move the slider, click a square to wall it; what the canvases show is the
    field the API returns for the same parameters."""
    with chrome() as d, Running(explorer) as url:
        d.get(url)

        def wait_drawn(count: int) -> dict:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                drawn = d.execute_script("return document.body.dataset.busy === '0' && window.lastDrawn || null")
                if drawn and drawn["count"] >= count:
                    return drawn
                assert not d.execute_script("return document.body.dataset.error"), "the page shows an error"
                time.sleep(0.05)
            raise AssertionError("the page did not draw in 30 s")

        def assert_drawn_matches_api(drawn: dict) -> dict:
            view = _post(url, drawn["request"])
            for panel in ("original", "patched"):
                shown = drawn["panels"][panel]
                assert [s[:2] for s in shown] == view["positions"]
                np.testing.assert_array_equal([s[2:] for s in shown], view[panel]["arrows"])
            return view

        first = wait_drawn(1)
        assert first["request"]["coeff"] == -1
        before = d.execute_script("return document.getElementById('canvas-patched').toDataURL()")
        slider = d.find_element("id", "coeff")
        from selenium.webdriver.common.keys import Keys

        slider.send_keys(*[Keys.ARROW_RIGHT] * 5)  # -1 -> -0.5, one step of 0.1 per key
        deadline = time.monotonic() + 30
        while (drawn := wait_drawn(2))["request"]["coeff"] != pytest.approx(-0.5) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert drawn["request"]["coeff"] == pytest.approx(-0.5)
        assert d.execute_script("return document.getElementById('canvas-patched').toDataURL()") != before
        assert_drawn_matches_api(drawn)

        square = [8, 6]
        canvas = d.find_element("id", "canvas-original")
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)  # as a user scrolls to it
        at = d.execute_script("return window.explorer.centerOf(8, 6)")
        size = canvas.size
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(d).move_to_element_with_offset(
            canvas, at["x"] - size["width"] / 2, at["y"] - size["height"] / 2
        ).click().perform()
        deadline = time.monotonic() + 30
        while not (drawn := wait_drawn(drawn["count"]))["request"]["target_edits"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert drawn["request"]["target_edits"] == [{"wall": square}]
        view = assert_drawn_matches_api(drawn)
        assert square not in view["positions"] and view["maze"]["walls"][8][6] == "#"
        numbers = d.execute_script("return document.querySelector('tr[data-metric=p_cheese_ds]').textContent")
        assert f"{view['metrics']['p_cheese_ds']['patched']:.3f}" in numbers


def test_steer_explore_refuses_a_vectors_option_that_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(app, ["explore", "--port", "0", "--vectors", str(tmp_path / "file")])
    assert result.exit_code == 2 and "--vectors:" in result.output and "is not a folder" in result.output


def test_steer_explore_refuses_a_busy_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = CliRunner().invoke(app, ["explore", "--port", str(port)])
    assert result.exit_code == 2 and "--port:" in result.output and "Traceback" not in result.output
