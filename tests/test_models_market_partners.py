"""max_capture_partners: partners compete unless contracted; exact against brute force for
every objective, with required and excluded partners."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from planner.errors import InfeasibleError, InputError
from planner.models import SolveProgress, max_capture, max_capture_partners


def captured(u: np.ndarray, o: np.ndarray, w: np.ndarray, subset) -> float:
    """Jobs won with the partners of ``subset`` contracted, every other partner a competitor:
    the choice set is the same shops whatever we contract (computed from the definition)."""
    ours = np.zeros(u.shape[1], dtype=bool)
    ours[list(subset)] = True
    won = u[:, ours].sum(axis=1)
    rivals = o + u[:, ~ours].sum(axis=1)  # uncontracted partners are competitors
    return float(np.sum(w * won / (rivals + won)))


def subsets(m: int, sizes, required=frozenset(), excluded=frozenset()):
    for k in sizes:
        for s in itertools.combinations(range(m), k):
            if set(required) <= set(s) and not set(s) & set(excluded):
                yield s


def instance(rng: np.random.Generator, n: int, m: int):
    u = rng.uniform(0.0, 2.0, size=(n, m)) ** 2
    u[rng.random((n, m)) < 0.3] = 0.0
    o = rng.uniform(0.2, 3.0, size=n)
    w = rng.integers(0, 6, size=n).astype(float)
    return u, o, w


def sides(rng: np.random.Generator, m: int) -> tuple[list[int], list[int]]:
    cols = rng.permutation(m).tolist()
    return sorted(cols[: rng.integers(0, 2)]), sorted(cols[2 : 2 + rng.integers(0, 3)])


@pytest.mark.parametrize("seed", range(12))
def test_p_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    u, o, w = instance(rng, 9, 7)
    req, exc = sides(rng, 7)
    for p in range(max(len(req), 1), 7 - len(exc) + 1):
        sol = max_capture_partners(u, p, w, outside=o, required=req, excluded=exc)
        best = max(captured(u, o, w, s) for s in subsets(7, [p], req, exc))
        assert sol.optimal
        assert sol.gap == 0.0
        assert sol.status == "optimal"
        assert sol.objective == pytest.approx(best, rel=1e-12, abs=1e-12)
        assert sol.objective == pytest.approx(captured(u, o, w, sol.open), rel=1e-12, abs=1e-12)
        assert sol.upper_bound == sol.lower_bound == sol.objective
        assert sol.n_open == p
        assert set(req) <= set(sol.open)
        assert not set(exc) & set(sol.open)
        assert sol.extras["site_jobs"].sum() == pytest.approx(sol.objective)
        # no cannibalisation: a partner's jobs are lost only to it as a competitor
        assert np.allclose(sol.extras["site_marginal_jobs"], sol.extras["site_jobs"])


@pytest.mark.parametrize("seed", range(12))
def test_target_share_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    u, o, w = instance(rng, 9, 7)
    if w.sum() == 0:
        w[0] = 1.0
    req, exc = sides(rng, 7)
    allowed = [j for j in range(7) if j not in exc]
    most = captured(u, o, w, allowed) / w.sum()
    for frac in (0.05, 0.3, 0.6, 0.9, 1.0):
        share = frac * most
        if share <= 0:
            continue
        sol = max_capture_partners(
            u, None, w, outside=o, target_share=share, required=req, excluded=exc
        )
        need = share * w.sum()
        k_best, v_best = None, None
        for k in range(max(len(req), 1), len(allowed) + 1):
            vals = [captured(u, o, w, s) for s in subsets(7, [k], req, exc)]
            ok = [v for v in vals if v >= need - 1e-9 * max(w.sum(), 1.0)]
            if ok:
                k_best, v_best = k, max(ok)
                break
        assert sol.n_open == k_best, (seed, frac)
        assert sol.objective == pytest.approx(v_best, rel=1e-12)
        assert sol.extras["share"] >= share - 1e-9
        assert sol.extras["min_sites_proven"]
        assert set(req) <= set(sol.open)
        assert not set(exc) & set(sol.open)
    with pytest.raises(InfeasibleError, match="cannot be reached"):
        max_capture_partners(
            u, None, w, outside=o, target_share=min(1.0, most * 1.01 + 1e-6), excluded=exc
        )


@pytest.mark.parametrize("seed", range(12))
def test_profit_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    u, o, w = instance(rng, 9, 7)
    req, exc = sides(rng, 7)
    fixed = rng.uniform(0.0, 1.5, size=7)
    margin = float(rng.uniform(0.5, 4.0))
    for p_max in (None, max(len(req), 1), 3 if len(req) <= 3 else None):
        sol = max_capture_partners(
            u, p_max, w, outside=o, fixed_cost=fixed, margin=margin, required=req, excluded=exc
        )
        sizes = range(1, (p_max or 7) + 1)
        best = max(
            margin * captured(u, o, w, s) - float(fixed[list(s)].sum())
            for s in subsets(7, sizes, req, exc)
        )
        assert sol.objective == pytest.approx(best, rel=1e-12, abs=1e-12)
        assert sol.extras["profit"] == sol.objective
        assert sol.extras["fixed_cost"] == pytest.approx(float(fixed[sol.open].sum()))
        assert 1 <= sol.n_open <= (p_max or 7)


def test_the_share_is_below_max_captures_when_partners_compete() -> None:
    """The same partners contracted: counting the others as competitors wins fewer jobs than
    max_capture's model, where a partner not contracted does not exist."""
    rng = np.random.default_rng(7)
    u, o, w = instance(rng, 12, 6)
    w += 1.0
    for p in (1, 3, 5):
        ours = max_capture_partners(u, p, w, outside=o)
        old = max_capture(u, p, w, outside=o)
        assert ours.objective < old.objective
        # max_capture's figure for our own choice overstates it
        util = u[:, ours.open].sum(axis=1)
        assert ours.objective < float(np.sum(w * util / (o + util)))
    # with every partner contracted there is no one left to compete: both models agree
    every = max_capture_partners(u, 6, w, outside=o)
    assert every.objective == pytest.approx(max_capture(u, 6, w, outside=o).objective)


def test_progress_assignment_and_nothing_to_win() -> None:
    u = np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [2.0, 0.0, 1.0]])
    reports: list[SolveProgress] = []
    sol = max_capture_partners(u, 2, [1.0, 1.0, 2.0], outside=1.0, progress=reports.append)
    assert len(reports) == 1
    assert reports[0].gap == 0.0
    assert reports[0].objective == pytest.approx(4.0 - sol.objective)
    assert sol.assignment.tolist()[1] == -1
    assert all(a in sol.open for a in sol.assignment if a >= 0)
    zero = max_capture_partners(np.zeros((3, 4)), 2, outside=np.ones(3), required=[3])
    assert zero.optimal
    assert zero.objective == 0.0
    assert zero.n_open == 2
    assert 3 in zero.open
    prof = max_capture_partners(
        np.zeros((3, 4)), None, outside=np.ones(3), fixed_cost=[3.0, 1.0, 2.0, 5.0], margin=1.0
    )
    assert prof.objective == -1.0
    assert prof.open.tolist() == [1]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"utility": [[1.0, -2.0]], "p": 1, "outside": [1.0]}, InputError, "negative"),
        ({"utility": [[1.0, 2.0]], "p": 1, "outside": [0.0]}, InputError, "outside"),
        ({"utility": [[1.0, 2.0]], "p": 3, "outside": [1.0]}, InfeasibleError, "p=3"),
        ({"utility": [[1.0, 2.0]], "outside": [1.0]}, InputError, "say what to optimise"),
        (
            {"utility": [[1.0, 2.0]], "outside": [1.0], "fixed_cost": 1.0},
            InputError,
            "margin",
        ),
        (
            {"utility": [[1.0, 2.0]], "outside": [1.0], "target_share": 0.9},
            InfeasibleError,
            "cannot be reached",
        ),
        (
            {"utility": [[1.0, 2.0]], "p": 1, "outside": [1.0], "required": [0], "excluded": [0]},
            InfeasibleError,
            "both required and excluded",
        ),
        ({"utility": [[1.0, 2.0]], "p": 1, "outside": [1.0], "time_limit": 0}, InputError, "time"),
    ],
)
def test_bad_input_is_rejected(kwargs, error, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        max_capture_partners(**kwargs)
