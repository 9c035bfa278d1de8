"""Redescending losses by gradient descent: robust starts, robust scales, MM fits of the classic sets."""

import json
import math
import warnings

import numpy as np
import pytest
from scipy import optimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import QuantileRegressor
from statsmodels.robust.scale import mad as sm_mad

from robustreg import GDRegressor
from robustreg.study.spec import LOSS_CONFS, ClassicConf, GDConf, JobConf, OutliersConf
from robustreg.datasets import load_dataset, synthetic
from robustreg.study.job import run_job
from robustreg.losses import BarronLoss, TukeyBiweightLoss
from robustreg.outliers import inject

CLASSIC = ("stackloss", "stars_cyg", "hbk", "telef")
#: The MM settings: Tukey biweight (95% efficiency), a 50%-breakdown start and scale.
MM = dict(loss="tukey", scale="s", standardize=True, max_iter=5000, random_state=0)
#: Largest standardized gap to the published MM fit that counts as reaching it.
MM_TOL = 0.05


def standardized_gaps(X, y, coef, intercept, target):
    """Gaps to ``target`` (intercept first) in units of sd(y): the fitted values at the
    mean of x for the intercept, ``|diff_j| sd(x_j)`` for slope ``j``."""
    sx, sy = X.std(axis=0, ddof=1), y.std(ddof=1)
    xbar = X.mean(axis=0)
    target = np.asarray(target, dtype=float)
    at_mean = abs(intercept + xbar @ coef - target[0] - xbar @ target[1:]) / sy
    return np.concatenate([[at_mean], np.abs(np.asarray(coef) - target[1:]) * sx / sy])


# ------------------------------------------------------------- classic sets
@pytest.mark.parametrize("init", ["lts", "s"])
@pytest.mark.parametrize("name", CLASSIC)
def test_tukey_from_a_high_breakdown_start_reaches_the_published_mm_fit(name, init):
    ds = load_dataset(name)
    X, y = ds.X_train, ds.y_train
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = GDRegressor(init=init, **MM).fit(X, y)
    assert model.converged_
    gd_gap = standardized_gaps(X, y, model.coef_, model.intercept_, ds.published["mm"])
    ls = ds.published["least_squares"]
    ls_gap = standardized_gaps(X, y, ls[1:], ls[0], ds.published["mm"])
    assert gd_gap.max() < MM_TOL, gd_gap
    # The tolerance separates the fits: least squares misses on every set.
    assert ls_gap.max() > 0.15, ls_gap


@pytest.mark.parametrize("init", ["l1", "lstsq"])
@pytest.mark.parametrize("name", ["stars_cyg", "hbk"])
def test_tukey_from_a_non_robust_start_stays_with_the_leverage_points(name, init):
    # Bad leverage points: L1 and least squares fit them, and the biweight's
    # local minimum nearest those starts still does.
    ds = load_dataset(name)
    X, y = ds.X_train, ds.y_train
    model = GDRegressor(init=init, **MM).fit(X, y)
    assert standardized_gaps(X, y, model.coef_, model.intercept_, ds.published["mm"]).max() > 0.5


@pytest.mark.parametrize("name", CLASSIC)
def test_mm_fit_through_the_job_record(name, tmp_path):
    spec = JobConf(
        name="mm",
        seed=0,
        dataset=ClassicConf(name=name),
        outliers=OutliersConf(kind="none", fraction=0.0),
        loss=LOSS_CONFS["tukey"](),
        model=GDConf(init="lts", scale="s", standardize=True, max_iter=5000),
    )
    run_job(spec, tmp_path)
    rec = json.loads((tmp_path / "metrics.json").read_text())
    assert rec["status"] == "ok" and rec["converged"]
    assert rec["loss"]["params"] == {"c": 4.685} and rec["model"]["params"]["scale"] == "s"
    ds = load_dataset(name)
    gap = standardized_gaps(ds.X_train, ds.y_train, np.array(rec["coef"]), rec["intercept"], rec["published"]["mm"])
    assert gap.max() < MM_TOL, gap
    assert rec["scale"] > 0 and (tmp_path / "history.parquet").exists()


def test_default_tukey_job_is_mm_and_the_report_reads_its_start(tmp_path):
    """A Tukey job with no init or scale records the start it resolved to, and C8 counts it as robust."""
    from robustreg.report import collect
    from robustreg.report.verdicts import ROBUST_INITS

    spec = JobConf(name="mm", seed=0, dataset=ClassicConf(name="stars_cyg"),
                   outliers=OutliersConf(kind="none", fraction=0.0), loss=LOSS_CONFS["tukey"](), model=GDConf())
    run_job(spec, tmp_path / "sweep" / "a")
    rec = json.loads((tmp_path / "sweep" / "a" / "metrics.json").read_text())
    assert rec["model"]["params"]["init"] is None and rec["start"] == "s"
    ds = load_dataset("stars_cyg")
    gap = standardized_gaps(ds.X_train, ds.y_train, np.array(rec["coef"]), rec["intercept"], rec["published"]["mm"])
    assert gap.max() < MM_TOL, gap
    runs = collect(tmp_path / "sweep", progress=False).runs
    assert runs["init"].tolist() == ["s"] and "s" in ROBUST_INITS


# ------------------------------------------------------- synthetic leverage
def _clean_fit(X, y, mask):
    """Least squares on the uncorrupted rows only: what a fit that ignores the outliers gives."""
    A = np.column_stack([np.ones(len(y)), X])
    return np.linalg.lstsq(A[~mask], y[~mask], rcond=None)[0]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("fraction", [0.1, 0.3])
def test_injected_leverage_points_only_a_high_breakdown_start_resists(seed, fraction):
    ds = synthetic(n_train=200, n_test=0, n_features=5, seed=seed)
    X, y, mask = inject(
        ds.X_train, ds.y_train, "leverage", fraction, 10.0, seed=seed, noise_scale=ds.noise_scale, y_signal=ds.y_signal_train
    )
    clean = _clean_fit(X, y, mask)
    dist = {}
    for init in ("lts", "l1", "lstsq"):
        model = GDRegressor(init=init, **{**MM, "random_state": seed}).fit(X, y)
        dist[init] = np.linalg.norm(model.coef_ - clean[1:])
        if init == "lts":
            assert np.linalg.norm(model.coef_ - ds.coef_true[1:]) < 0.35
    assert dist["lts"] < 0.1, dist
    assert dist["l1"] > 0.6 and dist["lstsq"] > 0.6, dist


def test_thirty_percent_bad_leverage_cluster_only_a_high_breakdown_start_resists():
    # 30% of the rows moved into a cluster 5 sd out along one direction, with
    # responses 50 noise sd above the clean plane: the classic bad-leverage
    # pattern (as the giants of stars_cyg), which pulls L1 as much as least squares.
    ds = synthetic(n_train=200, n_test=0, n_features=5, seed=4)
    X, y = ds.X_train.copy(), ds.y_train.copy()
    rng = np.random.default_rng(4)
    k = 60
    u = rng.standard_normal(5)
    u /= np.linalg.norm(u)
    X[:k] = X.mean(axis=0) + X.std(axis=0) * (5.0 * u + 0.5 * rng.standard_normal((k, 5)))
    y[:k] = ds.coef_true[0] + X[:k] @ ds.coef_true[1:] + 50.0 + rng.standard_normal(k)
    mask = np.arange(200) < k
    clean = _clean_fit(X, y, mask)
    dist = {}
    for init in ("lts", "l1", "lstsq"):
        dist[init] = np.linalg.norm(GDRegressor(init=init, **MM).fit(X, y).coef_ - clean[1:])
    assert dist["lts"] < 0.05, dist
    assert dist["l1"] > 2.0 and dist["lstsq"] > 2.0, dist


# ------------------------------------------------------------------ starts
def test_lts_start_is_the_published_reweighted_lts_fit():
    ds = load_dataset("stars_cyg")
    model = GDRegressor("tukey", init="lts", max_iter=0, random_state=0).fit(ds.X_train, ds.y_train)
    np.testing.assert_allclose([model.intercept_, *model.coef_], ds.published["lts"], atol=5e-3)


def test_l1_start_is_the_median_regression():
    ds = synthetic(n_train=60, n_test=0, n_features=2, noise="student_t", seed=2)
    model = GDRegressor("tukey", init="l1", max_iter=0).fit(ds.X_train, ds.y_train)
    ref = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(ds.X_train, ds.y_train)
    np.testing.assert_allclose([model.intercept_, *model.coef_], [ref.intercept_, *ref.coef_], atol=1e-6)


@pytest.mark.parametrize("init", ["l1", "lts", "s"])
def test_robust_starts_need_an_intercept(init):
    X = np.arange(20.0).reshape(10, 2)
    message = f"init='{init}' is invalid with fit_intercept=False; allowed: 'zeros', 'lstsq'"
    with pytest.raises(ValueError, match=message):
        GDRegressor("tukey", init=init, fit_intercept=False).fit(X, X[:, 0])


# ------------------------------------------------------------------ scales
def _biweight_mscale_equation(r, s, n_coef, c=1.5476):
    """Left side minus right side of the S-scale equation (1/(n-p)) sum rho_c(r/s) = 1/2."""
    u2 = np.minimum((r / (c * s)) ** 2, 1.0)
    return np.sum(1.0 - (1.0 - u2) ** 3) / (len(r) - n_coef) - 0.5


def test_mad_scale_is_the_normalised_mad_of_the_start_residuals():
    ds = load_dataset("stackloss")
    X, y = ds.X_train, ds.y_train
    model = GDRegressor("huber", init="lstsq", scale="mad", max_iter=0).fit(X, y)
    A = np.column_stack([np.ones(len(y)), X])
    r = y - A @ np.linalg.lstsq(A, y, rcond=None)[0]
    assert model.scale_ == pytest.approx(sm_mad(r, center=0.0), rel=1e-10)


@pytest.mark.parametrize("init", ["lstsq", "lts", "s"])
def test_s_scale_solves_the_small_sample_m_scale_equation(init):
    ds = load_dataset("stackloss")
    X, y = ds.X_train, ds.y_train
    model = GDRegressor("tukey", init=init, scale="s", max_iter=0, random_state=0).fit(X, y)
    r = y - X @ model.coef_ - model.intercept_  # max_iter=0: the start's residuals
    p = X.shape[1] + 1
    root = optimize.brentq(lambda s: _biweight_mscale_equation(r, s, p), 1e-3, 1e3, xtol=1e-12)
    assert model.scale_ == pytest.approx(root, rel=1e-6)


def test_s_start_has_the_smallest_m_scale():
    ds = load_dataset("hbk")
    X, y = ds.X_train, ds.y_train
    s = {}
    for init in ("s", "lts", "l1", "lstsq"):
        s[init] = GDRegressor("tukey", init=init, scale="s", max_iter=0, random_state=0).fit(X, y).scale_
    assert s["s"] <= min(s["lts"], s["l1"], s["lstsq"]) * (1 + 1e-9), s


def test_scale_free_losses_ignore_the_scale():
    ds = load_dataset("stackloss")
    for loss in ("l1", "l2"):
        assert GDRegressor(loss, init="lstsq", scale="s", max_iter=0).fit(ds.X_train, ds.y_train).scale_ == 1.0


# ------------------------------------------------------ unbounded curvature
@pytest.mark.parametrize("alpha, init, scale", [(3.0, "zeros", None), (4.0, "zeros", None), (4.0, "lstsq", "mad")])
def test_barron_above_two_takes_a_positive_diminishing_step_to_the_minimum(alpha, init, scale):
    # curvature_bound is infinite for alpha > 2: the fixed step sigma^2 / (kappa L) would be 0.
    loss = BarronLoss(alpha=alpha, c=1.0)
    assert loss.curvature_bound == math.inf
    ds = synthetic(n_train=200, n_test=0, n_features=3, seed=1)
    X, y, _ = inject(
        ds.X_train, ds.y_train, "vertical", 0.1, 10.0, seed=1, noise_scale=ds.noise_scale, y_signal=ds.y_signal_train
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow, no invalid value
        warnings.simplefilter("ignore", ConvergenceWarning)  # diminishing steps stall short of 1e-6
        model = GDRegressor(loss, solver="gd", init=init, scale=scale, max_iter=20_000, tol=1e-9, n_iter_no_change=100).fit(X, y)
    assert not model.diverged_
    # The stall rule stopped it; the certificate says how far it is: within the 1e-2 checked below, not 1e-9.
    assert 0 < model.optimality_ < 1e-2 and not model.converged_
    steps = model.history_["step"].to_numpy()
    assert np.all(np.isfinite(steps)) and steps[0] > 0
    np.testing.assert_allclose(steps * np.sqrt(np.arange(1, len(steps) + 1)), steps[0], rtol=1e-12)

    # The loss is convex for alpha >= 1: its minimiser, by BFGS on the same objective.
    A = np.column_stack([np.ones(len(y)), X])
    s = model.scale_

    def objective(theta):
        return float(np.mean(loss.rho((y - A @ theta) / s)))

    def gradient(theta):
        return -A.T @ loss.psi((y - A @ theta) / s) / (s * len(y))

    ref = optimize.minimize(objective, np.zeros(A.shape[1]), jac=gradient, method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose([model.intercept_, *model.coef_], ref.x, atol=1e-2)
    assert model.objective_ == pytest.approx(ref.fun, rel=1e-4)


@pytest.mark.parametrize("alpha", [3.0, 4.0])
def test_barron_above_two_exact_solver_backtracks_to_the_minimum(alpha):
    """No curvature bound: the default solver backtracks, and certifies the BFGS minimizer."""
    loss = BarronLoss(alpha=alpha, c=1.0)
    ds = synthetic(n_train=200, n_test=0, n_features=3, seed=1)
    X, y, _ = inject(
        ds.X_train, ds.y_train, "vertical", 0.1, 10.0, seed=1, noise_scale=ds.noise_scale, y_signal=ds.y_signal_train
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = GDRegressor(loss, scale=1.0).fit(X, y)
    assert model.converged_ and model.optimality_ <= 1e-6
    A = np.column_stack([np.ones(len(y)), X])

    def objective(theta):
        return float(np.mean(loss.rho(y - A @ theta)))

    def gradient(theta):
        return -A.T @ loss.psi(y - A @ theta) / len(y)

    ref = optimize.minimize(objective, np.zeros(A.shape[1]), jac=gradient, method="BFGS", options={"gtol": 1e-12})
    np.testing.assert_allclose([model.intercept_, *model.coef_], ref.x, atol=1e-6 * np.std(y))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("magnitude", [300.0, 1000.0])
def test_mm_fit_certified_with_far_bad_leverage_and_equal_to_statsmodels_irls(seed, magnitude):
    # Bad leverage points hundreds of noise sd out dominate the plain Gram matrix; the biweight
    # rejects them (weight 0), so the exact solver steps in the metric of the IRLS weights.  With the
    # defaults (MM: S start and scale, max_iter=1000) the fit is certified, and statsmodels' RLM (its
    # own IRLS, scale held at ours, started from least squares on the clean rows) finds the same fit.
    import statsmodels.api as sm

    ds = synthetic(n_train=100, n_test=0, n_features=3, seed=seed)
    X, y, mask = inject(ds.X_train, ds.y_train, "leverage", 0.1, magnitude, seed=seed,
                        noise_scale=ds.noise_scale, y_signal=ds.y_signal_train)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = GDRegressor(loss="tukey", random_state=seed).fit(X, y)
    assert model.converged_ and model.n_iter_ < 100
    A = sm.add_constant(X)
    rlm = sm.RLM(y, A, M=sm.robust.norms.TukeyBiweight(c=TukeyBiweightLoss().c)).fit(
        start_params=_clean_fit(X, y, mask), scale_est="mad", update_scale=False,
        conv="coefs", tol=1e-13, maxiter=10_000, start_scale=model.scale_,
    )
    params = np.asarray(rlm.params)
    # Gaps in units of sd(y), as standardized_gaps measures them (x at its clean spread).
    sx, sy = X[~mask].std(axis=0), np.std(y)
    assert abs(model.intercept_ - params[0]) / sy < 1e-6
    assert np.max(np.abs(model.coef_ - params[1:]) * sx / sy) < 1e-6, (model.coef_, params[1:])
    assert np.all(model.weights_[mask] == 0.0)  # every far leverage point rejected
