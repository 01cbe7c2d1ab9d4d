"""The same question gets the same proof from every door, on a busy machine as on a quiet one.

The app solves in a background thread that shares the process with the Streamlit server;
``planner run`` has the machine to itself. The p-median's short Lagrangian phase before the
Benders path used to be 0.5 s of wall clock: in the app's slower thread it ran a fraction of
the iterations, missed the proof the command line found, and went on to Benders, which
answered with a gap. The phase now has a budget of iterations, so the path, the proof and the
answer do not depend on the clock; and the app's upload door builds the spec and instance the
command line builds.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _apptest import TIMEOUT_S
from _apptest import ok as _ok
from _apptest import wait_for_job as _wait_for_job
from streamlit.testing.v1 import AppTest

import planner
from planner import cli
from planner.models.p_median import p_median

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"
PBF = REPO / "data" / "osm" / "liechtenstein-2026-03-29.osm.pbf"


def _euclidean(seed: int, n: int = 3000, m: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """n customers x m candidates (enough pairs and candidates for the Benders path)."""
    rng = np.random.default_rng(seed)
    customers = rng.uniform(0, 10, (n, 2))
    sites = rng.uniform(0, 10, (m, 2))
    cost = np.sqrt(((customers[:, None, :] - sites[None, :, :]) ** 2).sum(-1)) * 60
    return cost, rng.integers(1, 4, n).astype(float)


@pytest.mark.parametrize("seed", [0, 3])
def test_path_and_proof_do_not_depend_on_the_clock(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine four times slower (every clock reading runs 4x faster) solves the same way.

    Before the fix the slow run spent its 0.5 s on a fifth of the iterations and went on to
    Benders (7-9 s instead of 0.7 s); now both runs take the same path to the same proof.
    """
    cost, weights = _euclidean(seed)
    quiet = p_median(cost, 5, weights=weights, time_limit=60)
    real = time.perf_counter
    start = real()
    monkeypatch.setattr(time, "perf_counter", lambda: start + 4 * (real() - start))
    busy = p_median(cost, 5, weights=weights, time_limit=60)
    monkeypatch.undo()
    assert quiet.optimal
    assert busy.optimal
    assert busy.solver == quiet.solver
    assert busy.extras["lagrangian_iterations"] == quiet.extras["lagrangian_iterations"]
    assert busy.objective == quiet.objective
    np.testing.assert_array_equal(busy.open, quiet.open)
    # brute force on the proof: no single swap improves the answer
    best = np.min(cost[:, busy.open], axis=1) @ weights
    assert best == pytest.approx(busy.objective, rel=1e-12)
    for out in busy.open:
        for into in np.setdiff1d(np.arange(cost.shape[1]), busy.open):
            trial = np.append(busy.open[busy.open != out], into)
            assert np.min(cost[:, trial], axis=1) @ weights >= best - 1e-6


@pytest.mark.slow
@pytest.mark.usefixtures("offline_app")
def test_app_upload_and_cli_build_the_same_spec_and_proof(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An uploaded road file + customer file in the app, and ``planner run`` on the same two
    files: the same spec (up to its name and the road file's copy), the same instance, the
    same path, the same proven plan."""
    demo = planner.load_demo_customers("liechtenstein")
    customers = tmp_path / "customers.csv"
    demo[["customer_id", "lat", "lon", "weight", "segment"]].rename(
        columns={"customer_id": "id"}
    ).to_csv(customers, index=False)

    # the app door: upload both files, Plan -> Run with 5 workshops
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.query_params["region"] = "liechtenstein"
    _wait_for_job(_ok(at.run()), "roads")
    at.file_uploader(key="roads_file").upload(
        "liechtenstein.osm.pbf", PBF.read_bytes(), "application/octet-stream"
    )
    _ok(at.run())
    (use,) = [b for b in at.button if b.label == "Use these roads"]
    use.click()
    _wait_for_job(_ok(at.run()), "roads")
    at.file_uploader(key="customers_file").upload(
        "customers.csv", customers.read_bytes(), "text/csv"
    )
    _ok(at.run())
    at.switch_page("app_pages/plan.py")
    _ok(at.run())
    at.number_input(key="workshops").set_value(5)
    _ok(at.run())
    (run,) = [b for b in at.button if b.label == "Run"]
    run.click()
    _wait_for_job(_ok(at.run()), "plan")
    entry = at.session_state["plan"]
    app_spec, app_result = entry["spec"], entry["result"]
    assert Path(app_spec.region).read_bytes() == PBF.read_bytes()

    # the command-line door on the same two files
    road_file = tmp_path / "liechtenstein.osm.pbf"
    road_file.write_bytes(PBF.read_bytes())
    argv = ["run", "--region", str(road_file), "--customers", str(customers), "--workshops", "5"]
    cli_spec = cli._spec_from_args(
        cli.build_parser().parse_args([*argv, "--out", "x"]), scenario=None
    )
    out = tmp_path / "out"
    assert cli.main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out

    # the same spec, but for its name, the road file's path and where the customers come from
    def question(spec: planner.ScenarioSpec) -> dict[str, object]:
        values = spec.to_dict()
        for key in ("name", "region", "customers"):
            values.pop(key, None)
        return values

    assert question(app_spec) == question(cli_spec)
    # the same proof, by the same path, of the same plan
    sol = app_result.solution
    assert sol.optimal, sol.status
    assert f"{sol.model} with {sol.solver}: proven optimal" in printed
    shortlist = pd.read_csv(out / "shortlist.csv", dtype={"site_id": str})
    assert sorted(shortlist["site_id"]) == sorted(app_result.sites["site_id"].astype(str))
    assert app_result.kpis["customers"] == len(demo)
