"""How often the calibration's 95 % interval holds the true decay (``fit_decay``, issue 25).

Synthetic job histories with a known decay, fitted by :func:`planner.register.calibration.
fit_decay` as ``planner calibrate`` does: ``n`` customers (default 1,500) with drive times
uniform in 2-45 min to the site that served them and, in the settings with competitors, 4
competitor shops at 2-60 min; our attractiveness 1.3 (competitors 1), not coming at all as
attractive as a shop 25 min away, 2 potential jobs a year, 3 years; jobs Poisson. For each
setting (power decay lambda 1.8 / exponential beta 0.06, with and without competitors) it
prints over ``--seeds`` histories: the share whose interval holds the true value (with its
own 95 % Clopper-Pearson interval: a well-calibrated interval gives 0.95 inside it), the mean
estimate, the estimates' standard deviation against the mean standard error the fit reports,
and the time per fit. ``--profile`` also computes the profile-likelihood interval (the one the
fit falls back to when the Fisher interval would reach zero) for every history.

Command (under the shared CPU lock)::

    flock /tmp/cpu.lock env PYTHONPATH=. /work/venv/bin/python \\
        benchmarks/bench_calibration_coverage.py --seeds 500
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from planner.register import calibration
from planner.results.market import DemandModel, decay

#: (decay form, true parameter, competitors)
SETTINGS = [
    ("power", 1.8, 4),
    ("power", 1.8, 0),
    ("exponential", 0.06, 4),
    ("exponential", 0.06, 0),
]


def history(
    seed: int, *, form: str, theta: float, competitors: int, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(jobs, minutes to the serving site, minutes to each competitor or None)."""
    rng = np.random.default_rng(seed)
    model = DemandModel(form=form, parameter=theta)
    t = rng.uniform(2, 45, n)
    comp = rng.uniform(2, 60, (n, competitors)) if competitors else None
    own = (1.3 if competitors else 1.0) * decay(t, model)
    rest = decay(np.array([25.0]), model)[0]
    if comp is not None:
        rest = rest + decay(comp, model).sum(axis=1)
    jobs = rng.poisson(3.0 * 2.0 * own / (own + rest))
    return jobs, t, comp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=200, help="histories per setting")
    parser.add_argument("--customers", type=int, default=1500)
    args = parser.parse_args()
    print(f"{args.customers} customers, 3 years, {args.seeds} histories per setting\n")
    print(
        "| decay | competitors | inside | 95 % CI of the share | mean estimate | "
        "sd of estimates | mean std. error | s per fit |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for form, theta, k in SETTINGS:
        inside = 0
        estimates, errors = [], []
        spent = 0.0
        for seed in range(args.seeds):
            jobs, t, comp = history(seed, form=form, theta=theta, competitors=k, n=args.customers)
            started = time.perf_counter()
            fit = calibration.fit_decay(jobs, 3.0, t, competitor_min=comp, form=form)
            spent += time.perf_counter() - started
            lo, hi = fit.model.interval or (np.nan, np.nan)
            inside += lo <= theta <= hi
            estimates.append(fit.estimates["parameter"])
            errors.append(fit.std_errors["parameter"])
        ci = stats.binomtest(inside, args.seeds).proportion_ci(confidence_level=0.95)
        name = f"{form} {'lambda' if form == 'power' else 'beta'} = {theta:g}"
        print(
            f"| {name} | {k} | {inside} / {args.seeds} | {ci.low:.3f}-{ci.high:.3f} |"
            f" {np.mean(estimates):.4g} | {np.std(estimates):.3g} | "
            f"{np.mean(errors):.3g} | {spent / args.seeds:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
