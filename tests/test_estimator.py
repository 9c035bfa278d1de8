"""GDRegressor against independent solvers: lstsq, L-BFGS-B, HiGHS, Lasso."""

import warnings

import numpy as np
import pytest
from scipy.optimize import linprog, minimize
from scipy.special import huber as scipy_huber
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso

from robustreg import GDRegressor


def _design(n, d, cond, seed):
    """A design with condition number ``cond`` (singular values log-spaced), shifted and scaled."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.normal(size=(n, d)))
    V, _ = np.linalg.qr(rng.normal(size=(d, d)))
    svals = np.sqrt(n) * np.logspace(0, -np.log10(cond), d)
    X = U @ np.diag(svals) @ V.T
    return X


def _problem(n=300, d=4, cond=1.0, seed=0, noise="normal"):
    rng = np.random.default_rng(seed + 100)
    X = _design(n, d, cond, seed) if cond > 1 else rng.normal(size=(n, d))
    X = X * rng.uniform(0.5, 3.0, size=d) + rng.uniform(-2, 2, size=d)
    w = rng.normal(size=d)
    e = rng.standard_t(2, size=n) if noise == "t" else rng.normal(size=n)
    return X, 1.5 + X @ w + e


@pytest.mark.parametrize("cond", [1.0, 100.0])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("standardize", [False, True])
def test_l2_full_batch_equals_lstsq(cond, fit_intercept, standardize):
    X, y = _problem(cond=cond, seed=int(cond))
    if cond > 1:
        assert np.linalg.cond(X - X.mean(0) if fit_intercept else X) > 50
    A = np.column_stack([np.ones(len(y)), X]) if fit_intercept else X
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    # Nesterov momentum keeps ill-conditioned problems within a few thousand steps.
    model = GDRegressor(
        "l2", fit_intercept=fit_intercept, standardize=standardize, max_iter=200_000, tol=1e-12,
        momentum=0.9 if cond > 1 else 0.0, nesterov=cond > 1,
    ).fit(X, y)
    got = np.r_[model.intercept_, model.coef_] if fit_intercept else model.coef_
    assert model.converged_ and not model.diverged_
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-9 * np.max(np.abs(ref)))
    if not fit_intercept:
        assert model.intercept_ == 0.0


def _smooth_objective(name, r):
    if name == "huber":
        return scipy_huber(1.0, r)
    if name == "smooth_l1":
        return scipy_huber(0.5, r) / 0.5
    return 0.7**2 * (np.sqrt(1 + (r / 0.7) ** 2) - 1)


@pytest.mark.parametrize("name, params", [("smooth_l1", {"beta": 0.5}), ("huber", {"delta": 1.0}), ("pseudo_huber", {"delta": 0.7})])
@pytest.mark.parametrize("standardize, solver", [(False, "auto"), (True, "auto"), (False, "gd"), (True, "gd")])
def test_smooth_losses_reach_the_lbfgs_optimum(name, params, standardize, solver):
    from robustreg.losses import get_loss

    X, y = _problem(noise="t", seed=3)
    A = np.column_stack([np.ones(len(y)), X])

    def f(theta):
        return np.mean(_smooth_objective(name, y - A @ theta))

    h = 1e-7

    def grad(theta):  # central differences of the test's own objective
        return np.array([(f(theta + h * e) - f(theta - h * e)) / (2 * h) for e in np.eye(len(theta))])

    theta0 = np.linalg.lstsq(A, y, rcond=None)[0]
    ref = minimize(f, theta0, jac=grad, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10_000})
    # scale=1.0: the raw residuals of the test's objective.
    model = GDRegressor(get_loss(name, **params), solver=solver, scale=1.0, standardize=standardize, max_iter=100_000, tol=1e-10).fit(X, y)
    ours = f(np.r_[model.intercept_, model.coef_])
    assert ours <= ref.fun * (1 + 1e-6)
    assert ours >= ref.fun * (1 - 1e-6)  # not below the optimum: same objective
    assert model.objective_ == pytest.approx(ours, rel=1e-12)


def _lad_optimum(X, y):
    """Least absolute deviations by linear programming (HiGHS): min sum(u+v), A theta + u - v = y."""
    n, p = X.shape[0], X.shape[1] + 1
    A = np.column_stack([np.ones(n), X])
    c = np.r_[np.zeros(p), np.ones(2 * n)] / n
    A_eq = np.hstack([A, np.eye(n), -np.eye(n)])
    bounds = [(None, None)] * p + [(0, None)] * (2 * n)
    res = linprog(c, A_eq=A_eq, b_eq=y, bounds=bounds, method="highs")
    assert res.status == 0
    return res.fun


@pytest.mark.parametrize("standardize", [False, True])
def test_l1_reaches_the_lad_optimum(standardize):
    X, y = _problem(n=200, noise="t", seed=5)
    fstar = _lad_optimum(X, y)
    model = GDRegressor("l1", standardize=standardize, max_iter=20_000, tol=1e-7, n_iter_no_change=200).fit(X, y)
    assert model.objective_ == pytest.approx(np.mean(np.abs(y - model.predict(X))), rel=1e-12)
    assert fstar <= model.objective_ <= fstar * (1 + 1e-3)


def test_l1_penalty_matches_lasso_objective_and_zero_set():
    rng = np.random.default_rng(7)
    n, d = 200, 10
    X = rng.normal(size=(n, d))
    w = np.r_[3.0, -2.0, 1.5, np.zeros(d - 3)]
    y = 0.5 + X @ w + rng.normal(size=n)
    a = 0.1
    lasso = Lasso(alpha=a, tol=1e-14, max_iter=100_000).fit(X, y)
    # Lasso: 1/(2n)||r||^2 + a||w||_1; ours: mean r^2 + alpha||w||_1, so alpha = 2a.
    model = GDRegressor("l2", penalty="l1", alpha=2 * a, max_iter=100_000, tol=1e-12).fit(X, y)

    def obj(coef, b):
        return np.mean((y - X @ coef - b) ** 2) + 2 * a * np.sum(np.abs(coef))

    assert obj(model.coef_, model.intercept_) == pytest.approx(obj(lasso.coef_, lasso.intercept_), rel=1e-8)
    zeros_lasso = np.flatnonzero(lasso.coef_ == 0)
    assert len(zeros_lasso) >= 3
    np.testing.assert_array_equal(np.flatnonzero(model.coef_ == 0), zeros_lasso)
    np.testing.assert_allclose(model.coef_, lasso.coef_, atol=1e-6)


def test_l2_penalty_matches_ridge_closed_form():
    X, y = _problem(seed=11)
    alpha = 0.3
    n = len(y)
    Xc, yc = X - X.mean(0), y - y.mean()
    # mean r^2 + alpha/2 ||w||^2  =>  (Xc^T Xc / n + alpha/2 I) w = Xc^T yc / n
    w = np.linalg.solve(Xc.T @ Xc / n + 0.5 * alpha * np.eye(X.shape[1]), Xc.T @ yc / n)
    model = GDRegressor("l2", penalty="l2", alpha=alpha, max_iter=50_000, tol=1e-12).fit(X, y)
    np.testing.assert_allclose(model.coef_, w, rtol=1e-7)
    assert model.intercept_ == pytest.approx(y.mean() - X.mean(0) @ w, rel=1e-7)


def test_minibatch_sgd_is_bit_for_bit_deterministic():
    X, y = _problem(n=500, seed=2)
    kw = dict(solver="gd", batch_size=32, max_iter=30, learning_rate="invscaling", eta0=0.01, random_state=42)
    a = GDRegressor("huber", **kw).fit(X, y)
    b = GDRegressor("huber", **kw).fit(X, y)
    c = GDRegressor("huber", **{**kw, "random_state": 43}).fit(X, y)
    assert np.array_equal(a.coef_, b.coef_) and a.intercept_ == b.intercept_
    assert a.history_.equals(b.history_)
    assert not np.array_equal(a.coef_, c.coef_)


def test_minibatch_sgd_approaches_the_full_batch_fit():
    X, y = _problem(n=2000, seed=4)
    full = GDRegressor("l2", max_iter=5000, tol=1e-12).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sgd = GDRegressor("l2", solver="gd", batch_size=64, max_iter=200, learning_rate="invscaling", eta0=0.01, power_t=0.5, random_state=0).fit(X, y)
    assert np.max(np.abs(sgd.coef_ - full.coef_)) < 0.05


def test_divergence_is_detected_recorded_and_warned_never_raised():
    X, y = _problem(seed=9)
    A = np.column_stack([np.ones(len(y)), X])
    L = np.linalg.eigvalsh(A.T @ A / len(y))[-1]
    limit = 2.0 / (2.0 * L)  # rho = r^2 has curvature 2: stable for steps below 2 / (2 L)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        model = GDRegressor("l2", solver="gd", learning_rate="constant", eta0=100 * limit, max_iter=1000).fit(X, y)
    assert model.diverged_ and not model.converged_
    assert np.all(np.isfinite(model.coef_)) and np.isfinite(model.intercept_)
    assert model.n_iter_ < 1000
    assert np.all(np.isfinite(model.history_["objective"]))
    # Just below the limit the same step converges.
    stable = GDRegressor("l2", solver="gd", learning_rate="constant", eta0=0.9 * limit, max_iter=20_000, tol=1e-10).fit(X, y)
    assert stable.converged_ and not stable.diverged_


def test_not_converging_warns_and_history_has_one_row_per_iteration():
    X, y = _problem(seed=1)
    ref = np.linalg.lstsq(np.column_stack([np.ones(len(y)), X]), y, rcond=None)[0]
    with pytest.warns(ConvergenceWarning, match="did not reach its minimizer"):
        model = GDRegressor("l2", solver="gd", max_iter=5, tol=0.0).fit(X, y, coef_reference=ref)
    assert not model.converged_ and not model.diverged_ and model.n_iter_ == 5
    h = model.history_
    assert list(h.columns) == ["iteration", "objective", "grad_norm", "step", "coef_error"]
    assert len(h) == 5 and list(h["iteration"]) == [0, 1, 2, 3, 4]
    # Gradient descent on a convex quadratic with step 1/(2L) decreases the objective and the error.
    assert np.all(np.diff(h["objective"]) < 0)
    assert h["coef_error"].iloc[0] == pytest.approx(np.linalg.norm(ref[1:]))


def test_standardize_reports_original_units_and_auto_step_uses_intercept_column():
    X, y = _problem(seed=6)
    X = X * np.array([1000.0, 0.001, 1.0, 50.0])
    a = GDRegressor("huber", standardize=True, max_iter=20_000, tol=1e-12).fit(X, y)
    assert a.converged_
    np.testing.assert_allclose(a.predict(X), X @ a.coef_ + a.intercept_)
    A = np.column_stack([X, np.ones(len(y))])
    b = GDRegressor("huber", solver="gd", max_iter=1).fit(X, y)
    assert b.lipschitz_ == pytest.approx(np.linalg.eigvalsh(A.T @ A / len(y))[-1], rel=1e-10)


def test_bad_parameters_are_rejected_with_their_names():
    X, y = _problem(seed=0)
    with pytest.raises(ValueError, match="'loss' parameter of GDRegressor must be"):
        GDRegressor("foo").fit(X, y)
    with pytest.raises(ValueError, match="'max_iter' parameter"):
        GDRegressor(max_iter=-1).fit(X, y)
    with pytest.raises(ValueError, match="coef_reference has 2 values"):
        GDRegressor().fit(X, y, coef_reference=[1, 2])


# ------------------------------------------------ the estimator on awkward designs
def _lad_objective(X, y, coef, intercept, sw=None):
    r = np.abs(y - X @ coef - intercept)
    return float(np.mean(r) if sw is None else sw @ r / np.sum(sw))


def test_zero_weights_are_rows_removed_and_integer_weights_rows_repeated():
    X, y = _problem(n=120, noise="t", seed=11)
    sw = np.ones(len(y))
    sw[:12] = 0.0
    sw[12:20] = 3.0
    repeated = np.r_[np.arange(12, 20).repeat(2), np.arange(12, len(y))]
    for loss in ("l1", "huber", "l2"):
        a = GDRegressor(loss).fit(X, y, sample_weight=sw)
        b = GDRegressor(loss).fit(X[repeated], y[repeated])
        assert a.converged_ and b.converged_, loss
        # The MAD scale takes the weights as case weights, as the fit does.
        assert a.scale_ == pytest.approx(b.scale_, rel=1e-12), loss
        if loss == "l1":  # LAD may have several minimizers: compare the objective
            assert _lad_objective(X, y, a.coef_, a.intercept_, sw) == pytest.approx(
                _lad_objective(X[repeated], y[repeated], b.coef_, b.intercept_), rel=1e-12)
        else:
            np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-6)


def test_a_constant_column_gets_no_coefficient_and_changes_no_fit():
    X, y = _problem(n=150, noise="t", seed=12)
    Xc = np.column_stack([X, np.full(len(y), 1000.3)])
    for loss in ("l2", "l1", "huber", "pseudo_huber"):
        with_col = GDRegressor(loss).fit(Xc, y)
        without = GDRegressor(loss).fit(X, y)
        assert with_col.converged_, loss
        assert with_col.coef_[-1] == 0.0
        np.testing.assert_allclose(with_col.predict(Xc), without.predict(X), atol=1e-9)


@pytest.mark.parametrize("loss", ["l2", "l1", "huber"])
def test_rank_deficient_designs_are_fitted_and_certified(loss):
    rng = np.random.default_rng(13)
    # Fewer rows than columns: every loss fits the rows exactly.
    X, y = rng.normal(size=(5, 8)), rng.normal(size=5)
    wide = GDRegressor(loss).fit(X, y)
    assert wide.converged_ and np.max(np.abs(wide.predict(X) - y)) < 1e-9
    # A column twice another: the fit is that of the design without it.
    X, y = _problem(n=150, noise="t", seed=13)
    twin = GDRegressor(loss).fit(np.column_stack([X, 2.0 * X[:, 0]]), y)
    alone = GDRegressor(loss).fit(X, y)
    assert twin.converged_
    fitted = twin.predict(np.column_stack([X, 2.0 * X[:, 0]]))
    if loss == "l1":
        assert _lad_objective(X, y, alone.coef_, alone.intercept_) == pytest.approx(
            float(np.mean(np.abs(y - fitted))), rel=1e-10)
    else:
        np.testing.assert_allclose(fitted, alone.predict(X), atol=1e-7)


def test_explicit_array_start_and_scale_budget_are_honest():
    X, y = _problem(n=100, noise="t", seed=14)
    assert GDRegressor("huber", init=np.zeros(X.shape[1] + 1)).fit(X, y).converged_
    # Too few iterations for the scale's fixed point: not converged, whatever the last inner fit.
    with pytest.warns(ConvergenceWarning, match="scale"):
        short = GDRegressor("huber", max_iter=14).fit(X, y)
    assert not short.converged_
