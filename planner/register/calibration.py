"""Calibrating the market model's distance decay from the user's own job history.

The register says how often each customer came: ``n_i`` jobs in ``E_i`` years. The market
model (:mod:`planner.results.market`) says a customer with ``m`` jobs a year in total brings
us the share

    ``s_i = a f(t_i) / (a f(t_i) + sum_c a_c f(t_ic) + u0)``

where ``t_i`` is the travel time to the site that served it (the site named in ``served_by``,
else its nearest own site), ``t_ic`` the times to the competitors, ``a`` our attractiveness
(competitors 1, or their ``attractiveness``), ``u0`` the attraction of not coming at all and
``f`` the power or exponential decay. :func:`fit_decay` fits ``n_i ~ Poisson(E_i m s_i)`` by
maximum likelihood (scipy's L-BFGS-B with the analytic gradient) over

* ``log m``: the customers' total jobs a year (the market potential),
* the decay parameter (lambda or beta),
* ``log u0``: not coming at all, reported as ``outside_minutes`` (a shop that far),
* ``log a``: our attractiveness against competitors, only when competitor travel times are
  given (without competitors only ``u0 / a`` can be told apart, so ``a`` stays 1).

The 95 % interval of the decay parameter comes from the observed Fisher information (the
Hessian of the log-likelihood, by central differences of the analytic gradient) and the
profile likelihood when the Wald interval would cross zero. Customers with no job in the
window must be in the data: they say who stays away. Assumptions: every customer has the
same yearly potential ``m``, and the decay is the same
for every trip; :func:`calibration_plot` draws the observed jobs per customer-year by travel
time against the fitted curve, so the user can see whether that holds.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from threadpoolctl import threadpool_limits

from planner.errors import InputError
from planner.register.store import JobSource, job_connection
from planner.register.trends import job_window
from planner.results.market import DECAY_FORMS, DEFAULT_DECAY_PARAMETER, MIN_MINUTES, DemandModel

logger = logging.getLogger(__name__)

__all__ = ["Calibration", "calibration_plot", "customer_history", "fit_decay"]

_Z95 = 1.959963984540054


@dataclass(frozen=True)
class Calibration:
    """A fitted decay with its interval and the data it was fitted on.

    Attributes
    ----------
    model
        The fitted :class:`~planner.results.market.DemandModel` (``source='calibrated'``,
        ``interval`` the 95 % interval of the decay parameter).
    estimates
        Name -> fitted value (``potential_jobs_per_year``, ``parameter``, ``outside_utility``,
        ``own_attractiveness``).
    std_errors
        Name -> standard error from the observed information (NaN when not estimable).
    log_likelihood
        At the optimum.
    data
        Per customer: ``jobs``, ``years``, ``travel_min``, ``fitted_jobs``.
    attractiveness_fitted
        Whether our attractiveness was estimated (needs competitors) or held at 1.
    """

    model: DemandModel
    estimates: dict[str, float]
    std_errors: dict[str, float]
    log_likelihood: float
    data: pd.DataFrame
    attractiveness_fitted: bool

    def summary(self) -> pd.DataFrame:
        """One row per estimate: value, standard error, 95 % interval."""
        rows = []
        for name, value in self.estimates.items():
            se = self.std_errors.get(name, math.nan)
            lo, hi = (
                self.model.interval
                if name == "parameter" and self.model.interval is not None
                else (value - _Z95 * se, value + _Z95 * se)
            )
            rows.append(
                {"estimate": name, "value": value, "std_error": se, "ci_low": lo, "ci_high": hi}
            )
        return pd.DataFrame(rows)


def _log_decay(t_min: np.ndarray, form: str, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """``log f(t)`` and its derivative in the decay parameter (inf times give -inf, 0)."""
    t = np.maximum(t_min, MIN_MINUTES)
    finite = np.isfinite(t)
    base = np.where(finite, np.log(t) if form == "power" else t - MIN_MINUTES, 0.0)
    g = np.where(finite, -theta * base, -np.inf)
    return g, np.where(finite, -base, 0.0)


def fit_decay(
    jobs: np.ndarray,
    years: np.ndarray | float,
    travel_min: np.ndarray,
    *,
    competitor_min: np.ndarray | None = None,
    competitor_attractiveness: np.ndarray | None = None,
    form: str = "power",
    fit_attractiveness: bool | None = None,
) -> Calibration:
    """Fit the decay (and our attractiveness where the data allows) by maximum likelihood.

    Parameters
    ----------
    jobs
        Jobs per customer in the window (zeros included).
    years
        Years each customer was observed (or one number for all).
    travel_min
        Minutes from each customer to the site that served it (or its nearest own site).
    competitor_min
        (customers x competitors) minutes, inf where unreachable; None: no competitors.
    competitor_attractiveness
        Per competitor (default 1).
    form
        ``"power"`` or ``"exponential"``.
    fit_attractiveness
        Estimate our attractiveness against the competitors; default: when competitors are
        given.

    Returns
    -------
    Calibration

    Raises
    ------
    InputError
        When there are no jobs or no customers with a finite travel time.
    """
    if form not in DECAY_FORMS:
        raise InputError(f"unknown decay form {form!r}; allowed: {list(DECAY_FORMS)}")
    n = np.asarray(jobs, dtype=float)
    t = np.asarray(travel_min, dtype=float)
    e = np.broadcast_to(np.asarray(years, dtype=float), n.shape).astype(float)
    ok = np.isfinite(t) & np.isfinite(n) & (e > 0)
    if not ok.any() or n[ok].sum() <= 0:
        raise InputError(
            "the calibration needs customers with jobs and a travel time to a site; check "
            "that the job history's customers are in the customer file and reach a site"
        )
    n, t, e = n[ok], t[ok], e[ok]
    comp = None
    if competitor_min is not None and np.asarray(competitor_min).shape[1] > 0:
        comp = np.asarray(competitor_min, dtype=float)[ok]
        ca = (
            np.ones(comp.shape[1])
            if competitor_attractiveness is None
            else np.asarray(competitor_attractiveness, dtype=float)
        )
        log_ca = np.log(np.where(np.isfinite(ca) & (ca > 0), ca, 1.0))
    fit_a = (comp is not None) if fit_attractiveness is None else bool(fit_attractiveness)
    if fit_a and comp is None:
        raise InputError("our attractiveness can only be fitted against competitors")
    log_e = np.log(e)

    def parts(x: np.ndarray) -> tuple[float, np.ndarray]:
        log_m, theta, log_u0 = x[0], x[1], x[2]
        log_a = x[3] if fit_a else 0.0
        g, dg = _log_decay(t, form, theta)
        a_f = np.exp(log_a + g)
        u0 = math.exp(log_u0)
        if comp is not None:
            gc, dgc = _log_decay(comp, form, theta)
            cf = np.exp(gc + log_ca[None, :])
            c_sum = cf.sum(axis=1)
            c_d = (cf * dgc).sum(axis=1)
        else:
            c_sum = np.zeros_like(t)
            c_d = np.zeros_like(t)
        d = a_f + c_sum + u0
        log_mu = log_e + log_m + log_a + g - np.log(d)
        mu = np.exp(log_mu)
        ll = float(np.sum(n * log_mu - mu))
        r = n - mu
        grad = [
            float(r.sum()),
            float(np.sum(r * (dg - (a_f * dg + c_d) / d))),
            float(np.sum(r * (-u0 / d))),
        ]
        if fit_a:
            grad.append(float(np.sum(r * (1.0 - a_f / d))))
        return ll, np.asarray(grad)

    theta0 = DEFAULT_DECAY_PARAMETER[form]
    g0, _ = _log_decay(np.array([30.0]), form, theta0)
    x0 = [math.log(max(n.sum() / e.sum(), 1e-6)) + 0.5, theta0, float(g0[0])]
    bounds = [(-20.0, 20.0), (1e-4, 20.0), (-60.0, 20.0)]
    if fit_a:
        x0.append(0.0)
        bounds.append((-10.0, 10.0))
    scale = max(float(n.sum()), 1.0)

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = parts(x)
        return -ll / scale, -grad / scale

    # tiny problems: BLAS threads only contend (L-BFGS-B is 15x slower on a busy machine)
    with threadpool_limits(limits=1):
        res = optimize.minimize(
            objective,
            np.asarray(x0),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9},
        )
        x = np.asarray(res.x, dtype=float)
        ll, _ = parts(x)
        hess = _hessian(lambda z: parts(z)[1], x)
        cov = _safe_inverse(-hess)
        se = (
            np.sqrt(np.clip(np.diag(cov), 0.0, None))
            if cov is not None
            else np.full(x.size, np.nan)
        )
        theta, se_theta = float(x[1]), float(se[1])
        lo, hi = theta - _Z95 * se_theta, theta + _Z95 * se_theta
        if not np.isfinite(se_theta) or lo <= 0:
            lo, hi = _profile_interval(parts, x, ll, bounds)
    u0 = math.exp(x[2])
    a = math.exp(x[3]) if fit_a else 1.0
    outside_min = _minutes_of_utility(u0, form, theta)
    m = math.exp(x[0])
    g, _ = _log_decay(t, form, theta)
    a_f = a * np.exp(g)
    c_sum = 0.0
    if comp is not None:
        gc, _ = _log_decay(comp, form, theta)
        c_sum = np.exp(gc + log_ca[None, :]).sum(axis=1)
    fitted = e * m * a_f / (a_f + c_sum + u0)
    model = DemandModel(
        form=form,
        parameter=theta,
        own_attractiveness=a,
        outside_minutes=float(min(max(outside_min, 1e-3), 1e6)),
        source="calibrated",
        interval=(float(max(lo, 0.0)), float(hi)),
        details={
            "customers": int(n.size),
            "jobs": round(float(n.sum())),
            "years": float(np.max(e)),
            "potential_jobs_per_year": m,
            "log_likelihood": ll,
            "converged": bool(res.success),
            "attractiveness_fitted": fit_a,
        },
    )
    names = ["potential_jobs_per_year", "parameter", "outside_utility"]
    values = [m, theta, u0]
    ses = [m * float(se[0]), se_theta, u0 * float(se[2])]
    if fit_a:
        names.append("own_attractiveness")
        values.append(a)
        ses.append(a * float(se[3]))
    data = pd.DataFrame({"jobs": n, "years": e, "travel_min": t, "fitted_jobs": fitted})
    if not res.success:
        logger.warning("the decay fit did not converge: %s", res.message)
    return Calibration(
        model=model,
        estimates=dict(zip(names, values, strict=True)),
        std_errors=dict(zip(names, ses, strict=True)),
        log_likelihood=ll,
        data=data,
        attractiveness_fitted=fit_a,
    )


def _minutes_of_utility(u: float, form: str, theta: float) -> float:
    """The travel time whose decay is ``u`` (the inverse of ``f``)."""
    if form == "power":
        return max(u ** (-1.0 / theta), MIN_MINUTES)
    return MIN_MINUTES - math.log(u) / theta


def _hessian(grad: object, x: np.ndarray) -> np.ndarray:
    """Symmetric Hessian by central differences of the analytic gradient."""
    k = x.size
    h = np.empty((k, k))
    for j in range(k):
        step = 1e-5 * max(1.0, abs(x[j]))
        up = x.copy()
        dn = x.copy()
        up[j] += step
        dn[j] -= step
        h[:, j] = (grad(up) - grad(dn)) / (2 * step)  # type: ignore[operator]
    return 0.5 * (h + h.T)


def _safe_inverse(info: np.ndarray) -> np.ndarray | None:
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) < 0):
        return None
    return cov


def _profile_interval(
    parts: object, x: np.ndarray, ll_max: float, bounds: list[tuple[float, float]]
) -> tuple[float, float]:
    """95 % profile-likelihood interval of the decay parameter (index 1)."""
    cut = ll_max - 0.5 * _Z95**2
    free = [i for i in range(x.size) if i != 1]

    def profile(theta: float) -> float:
        def obj(z: np.ndarray) -> tuple[float, np.ndarray]:
            full = x.copy()
            full[free] = z
            full[1] = theta
            ll, grad = parts(full)  # type: ignore[operator]
            return -ll, -grad[free]

        r = optimize.minimize(
            obj, x[free], jac=True, method="L-BFGS-B", bounds=[bounds[i] for i in free]
        )
        return float(-r.fun) - cut

    lo_b, hi_b = bounds[1]
    theta = float(x[1])
    lo = lo_b
    if profile(lo_b) < 0:
        lo = optimize.brentq(profile, lo_b, theta, xtol=1e-6)
    hi = hi_b
    if profile(hi_b) < 0:
        hi = optimize.brentq(profile, theta, hi_b, xtol=1e-6)
    return float(lo), float(hi)


def customer_history(
    jobs: JobSource,
    customers: pd.DataFrame,
    *,
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Jobs and years observed per customer of the register, zeros included.

    Parameters
    ----------
    jobs
        Valid jobs (:func:`planner.inputs.jobs.read_jobs`: ``customer_id``, ``date``,
        optionally ``served_by``) or the stored register (:class:`RegisterStore`); counted in
        SQL either way (:func:`planner.register.store.job_connection`).
    customers
        The register (``customer_id``; optional ``first_contact``).
    as_of
        End of the window (default: the end of the month of the latest job).

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``jobs``, ``years`` (from the first month of the history, or the
        customer's first contact when later, to the end of the window) and ``served_by`` (the
        site that did most of its jobs, ties to the smallest id; None when unknown), in the
        register's order.
    """
    first, last = job_window(jobs, as_of=as_of)
    end = last + pd.offsets.MonthBegin(1)
    window = [first.to_pydatetime(), end.to_pydatetime()]
    with job_connection(jobs) as con:
        columns = {d[0] for d in con.execute("SELECT * FROM jobs LIMIT 0").description}
        counts = con.execute(
            "SELECT CAST(customer_id AS VARCHAR) AS customer_id, count(*) AS k FROM jobs "
            "WHERE date >= ? AND date < ? GROUP BY 1",
            window,
        ).df()
        top = pd.DataFrame({"customer_id": [], "s": []})
        if "served_by" in columns:
            top = con.execute(
                "SELECT customer_id, s FROM ("
                " SELECT CAST(customer_id AS VARCHAR) AS customer_id,"
                "  CAST(served_by AS VARCHAR) AS s,"
                "  row_number() OVER (PARTITION BY CAST(customer_id AS VARCHAR)"
                "   ORDER BY count(*) DESC, CAST(served_by AS VARCHAR)) AS rn"
                " FROM jobs WHERE date >= ? AND date < ? AND served_by IS NOT NULL"
                " GROUP BY 1, 2) WHERE rn = 1",
                window,
            ).df()
    ids = customers["customer_id"].astype(str)
    out = pd.DataFrame({"customer_id": ids.to_numpy()})
    k = counts.set_index("customer_id")["k"]
    out["jobs"] = k.reindex(out["customer_id"]).fillna(0).to_numpy(float)
    start = pd.Series(first, index=out.index)
    if "first_contact" in customers:
        fc = pd.to_datetime(customers["first_contact"], errors="coerce").reset_index(drop=True)
        start = pd.Series(np.where(fc.notna() & (fc > first), fc, first), index=out.index)
        start = pd.to_datetime(start)
    out["years"] = ((end - start).dt.days / 365.25).clip(lower=1 / 12).to_numpy(float)
    found = top.set_index("customer_id")["s"].reindex(out["customer_id"]).to_numpy(object)
    out["served_by"] = pd.Series(
        [None if pd.isna(s) else str(s) for s in found], dtype=object, index=out.index
    )
    return out


def calibration_plot(calibration: Calibration, *, bins: int = 12) -> bytes:
    """PNG: observed jobs per customer-year by travel time (with 95 % intervals) and the fit."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    d = calibration.data
    edges = np.unique(np.quantile(d["travel_min"], np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, d["travel_min"], side="right") - 1, 0, len(edges) - 2)
    g = d.assign(bin=which).groupby("bin")
    jobs = g["jobs"].sum()
    years = g["years"].sum()
    fitted = g["fitted_jobs"].sum()
    mid = g["travel_min"].median()
    rate = jobs / years
    err = _Z95 * np.sqrt(np.maximum(jobs, 1.0)) / years
    fig = Figure(figsize=(7, 4.2), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    ax.errorbar(mid, rate, yerr=err, fmt="o", color="#1f4e79", label="observed (95 % interval)")
    ax.plot(mid, fitted / years, "-", color="#c0392b", label="fitted model")
    ax.set_xlabel("travel time to the serving site (min)")
    ax.set_ylabel("jobs per customer and year")
    ax.set_title(calibration.model.describe(), fontsize=8)
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
