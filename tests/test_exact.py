"""The default solver of ``GDRegressor`` returns the exact minimizer of its objective.

What is tested (the specification of ``solver="auto"``, the default):

* For every convex loss (l2, l1, smooth_l1, huber, pseudo_huber) on real and
  badly conditioned designs, ``GDRegressor(loss).fit(X, y)`` with default
  settings lies within 1e-4 (L1) or 1e-5 (smooth losses) standardized units of
  an independent reference minimizer of the same objective
  ``mean_i rho((y_i - x_i.w - b) / sigma)``, and says so (``converged_``).
* For the scale-dependent convex losses, sigma (``scale_``) is the fixed point
  of MASS::rlm / statsmodels' RLM: ``sigma = median_i |r_i| / Phi^-1(3/4)`` at
  the fit itself.
* Huber(1.345) equals statsmodels' RLM and R's MASS::rlm on stackloss.
* ``GDRegressor("tukey")`` with nothing else is the MM-estimator (published
  robustbase::lmrob fits).
* Regression, scale and sign equivariance of every registered loss.
* Honesty: ``converged_`` is True only at the minimizer; without the
  certificate it is False, with a ConvergenceWarning that says how far from
  optimal (and plain gradient descent, ``solver="gd"``, is not called converged).
* Efficiency at the Gaussian model against the textbook asymptotic values.

Distances are in *standardized units* (:func:`std_distance`): slope
differences times ``sd(X_j) / sd(y)``, intercept differences over ``sd(y)``.

The references are written here, from the formulas, and do not use
``robustreg``: least squares by ``numpy.linalg.lstsq``; L1 by the LAD linear
programme solved with HiGHS (and, since a LAD minimizer need not be unique,
the distance to the whole optimal set is itself a linear programme); the
smooth losses by L-BFGS-B in standardized coordinates from least squares with
tight tolerances, polished by Newton steps.  The ``test_reference_*`` tests
check the references against statsmodels (RLM at a fixed scale, QuantReg) and
against R's MASS::rlm; they do not fit a ``GDRegressor``.
"""

from __future__ import annotations

import functools
import math
import re
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import optimize, sparse
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning

import robustreg
from robustreg import GDRegressor
from robustreg.datasets import load_dataset
from robustreg.losses import HuberLoss, get_loss

#: Phi^{-1}(3/4): the MAD of a standard normal sample.
MAD_CONSTANT = 0.6744897501960817

CONVEX = ("l2", "l1", "smooth_l1", "huber", "pseudo_huber")
SCALE_DEPENDENT_CONVEX = ("smooth_l1", "huber", "pseudo_huber")
SMOOTH_CONVEX = ("smooth_l1", "huber", "pseudo_huber")
CLASSIC = ("stackloss", "stars_cyg", "hbk", "telef")
SYNTHETIC = ("ill_conditioned", "wide_scales")
DATASETS = (*CLASSIC, "diabetes", *SYNTHETIC, "sklearn_27777")

#: Tolerances of the specification, in standardized units.
TOL_L1 = 1e-4
TOL_SMOOTH = 1e-5
TOL_SCALE_REL = 1e-6


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def _ill_conditioned(n=400, d=6, cond_gram=1e6, seed=20240601):
    """Correlated Gaussian design whose (centred) X^T X has condition number exactly ``cond_gram``.

    X = sqrt(n) U diag(s) V^T with U the orthonormal basis of a centred
    Gaussian matrix (so its columns are orthogonal to the intercept), V a
    random rotation (which correlates the columns) and singular values s
    log-spaced from 1 down to cond_gram**-0.5.  Gaussian noise plus 5% vertical
    outliers, so that the robust losses have residuals on both sides of their kinks.
    """
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d))
    U, _ = np.linalg.qr(Z - Z.mean(axis=0))
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    s = np.sqrt(n) * np.logspace(0.0, -0.5 * np.log10(cond_gram), d)
    X = (U * s) @ V.T
    w = 3.0 * rng.standard_normal(d)
    e = rng.standard_normal(n)
    out = rng.choice(n, size=n // 20, replace=False)
    e[out] += rng.choice([-1.0, 1.0], size=out.size) * rng.uniform(8.0, 15.0, size=out.size)
    return X, 2.0 + X @ w + e


def _wide_scales(n=300, seed=20240602):
    """Five correlated columns on scales 1e-3, 1e-1, 1e1, 1e3, 1e5 (not centred), Student-t(2) noise, 10% outliers in y."""
    rng = np.random.default_rng(seed)
    scales = np.logspace(-3, 5, 5)
    corr = 0.5 + 0.5 * np.eye(5)
    Z = rng.standard_normal((n, 5)) @ np.linalg.cholesky(corr).T
    X = scales * (1.5 + Z)
    w = rng.uniform(0.5, 2.0, size=5) * rng.choice([-1.0, 1.0], size=5) / scales
    e = rng.standard_t(2, size=n)
    out = rng.choice(n, size=n // 10, replace=False)
    e[out] += rng.uniform(20.0, 40.0, size=out.size)  # vertical outliers, one-sided
    return X, 1.0 + X @ w + e


@functools.lru_cache(maxsize=None)
def _data(name):
    """``(X, y, sample_weight)`` of a named data set (read-only arrays)."""
    sw = None
    if name in CLASSIC:
        ds = load_dataset(name)  # every row is a training row
        X, y = ds.X_train, ds.y_train
    elif name == "diabetes":
        # Original units (age in years, sex coded 1/2, blood serum measures...):
        # the badly scaled form, not scikit-learn's default rescaled one.
        X, y = load_diabetes(return_X_y=True, scaled=False)
    elif name == "ill_conditioned":
        X, y = _ill_conditioned()
    elif name == "wide_scales":
        X, y = _wide_scales()
    elif name == "sklearn_27777":
        # scikit-learn issue #27777 ("HuberRegressor failed with
        # ABNORMAL_TERMINATION_IN_LNSRCH on simple dataset"), its reproducer verbatim:
        #   X = np.array([10, 11, 28]).reshape(-1, 1)
        #   y = np.log(np.array([5000., 5000., 5000.]))
        #   sample_weights = np.array([2., 2., 2.])
        #   HuberRegressor().fit(X, y, sample_weights)
        # A constant response: every loss is minimized by the exact fit
        # w = 0, b = log(5000) (unique: three distinct x), where the MAD
        # scale is 0.
        X = np.array([10.0, 11.0, 28.0]).reshape(-1, 1)
        y = np.log(np.array([5000.0, 5000.0, 5000.0]))
        sw = np.array([2.0, 2.0, 2.0])
    else:
        raise KeyError(name)
    X = np.array(X, dtype=float)
    y = np.array(y, dtype=float)
    for a in (X, y, sw):
        if a is not None:
            a.setflags(write=False)
    return X, y, sw


def _y_unit(y):
    """sd(y); a constant response (#27777) is measured in units of its magnitude instead."""
    sd = float(np.std(y))
    return sd if sd > 0 else max(float(np.max(np.abs(y))), 1.0)


def std_distance(w, b, w_ref, b_ref, X, y):
    """max(max_j |w_j - w*_j| sd(X_j) / sd(y), |b - b*| / sd(y)): the distance of the specification."""
    sy = _y_unit(y)
    dw = np.abs(np.asarray(w, dtype=float) - np.asarray(w_ref, dtype=float)) * np.std(X, axis=0) / sy
    return float(max(np.max(dw, initial=0.0), abs(float(b) - float(b_ref)) / sy))


class _Std:
    """Standardized coordinates: A = [1, (X - mean) / sd], ys = (y - mean) / sd(y), weights v summing to 1."""

    def __init__(self, X, y, sw=None):
        n = len(y)
        self.mx = X.mean(axis=0)
        self.sx = X.std(axis=0)
        self.my = float(y.mean())
        self.sy = _y_unit(y)
        self.A = np.column_stack([np.ones(n), (X - self.mx) / self.sx])
        self.ys = (y - self.my) / self.sy
        self.v = np.full(n, 1.0 / n) if sw is None else np.asarray(sw, dtype=float) / np.sum(sw)

    def to_original(self, theta):
        w = self.sy * theta[1:] / self.sx
        return w, float(self.my + self.sy * theta[0] - w @ self.mx)

    def from_original(self, w, b):
        theta = np.asarray(w, dtype=float) * self.sx / self.sy
        return np.r_[(b + np.asarray(w) @ self.mx - self.my) / self.sy, theta]

    def metric_rows(self):
        """M with (M dtheta)_k the k-th term of :func:`std_distance` (slopes, then the intercept)."""
        p = self.A.shape[1]
        M = np.zeros((p, p))
        M[: p - 1, 1:] = np.eye(p - 1)  # dw_j sd_j / sd_y = dtheta_j
        M[p - 1, 0] = 1.0  # db / sd_y = dtheta_0 - sum_j dtheta_j mean_j / sd_j
        M[p - 1, 1:] = -self.mx / self.sx
        return M


# ---------------------------------------------------------------------------
# Reference minimizers (independent of robustreg)
# ---------------------------------------------------------------------------


def _formulas(loss):
    """rho, psi = rho', psi' of a smooth convex loss, written from its definition (not robustreg.losses)."""
    name, par = loss.name, loss.params()
    if name == "huber":
        d = par["delta"]
        return (
            lambda u: np.where(np.abs(u) <= d, 0.5 * u * u, d * (np.abs(u) - 0.5 * d)),
            lambda u: np.clip(u, -d, d),
            lambda u: (np.abs(u) <= d).astype(float),
        )
    if name == "smooth_l1":
        beta = par["beta"]
        return (
            lambda u: np.where(np.abs(u) < beta, 0.5 * u * u / beta, np.abs(u) - 0.5 * beta),
            lambda u: np.clip(u / beta, -1.0, 1.0),
            lambda u: (np.abs(u) < beta) / beta,
        )
    if name == "pseudo_huber":
        d = par["delta"]
        return (
            lambda u: u * u / (np.sqrt(1.0 + (u / d) ** 2) + 1.0),  # = d^2 (sqrt(1 + (u/d)^2) - 1)
            lambda u: u / np.sqrt(1.0 + (u / d) ** 2),
            lambda u: (1.0 + (u / d) ** 2) ** -1.5,
        )
    raise KeyError(name)


def ref_l2(X, y, sw=None):
    s = _Std(X, y, sw)
    root = np.sqrt(s.v)
    theta = np.linalg.lstsq(s.A * root[:, None], s.ys * root, rcond=None)[0]
    return s.to_original(theta)


def _lad_parts(s):
    n, p = s.A.shape
    eye = sparse.identity(n, format="csr")
    A_eq = sparse.hstack([sparse.csr_matrix(s.A), eye, -eye], format="csr")
    return A_eq, np.r_[np.zeros(p), s.v, s.v]


_HIGHS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


def ref_l1(X, y, sw=None):
    """A LAD minimizer (a vertex, by HiGHS) and the optimal mean absolute residual, in original units."""
    s = _Std(X, y, sw)
    n, p = s.A.shape
    A_eq, cost = _lad_parts(s)
    bounds = [(None, None)] * p + [(0.0, None)] * (2 * n)
    res = optimize.linprog(cost, A_eq=A_eq, b_eq=s.ys, bounds=bounds, method="highs", options=_HIGHS)
    assert res.success, res.message
    w, b = s.to_original(res.x[:p])
    return w, b, float(res.fun) * s.sy


def l1_distance_to_optimal_set(X, y, sw, w, b):
    """Smallest :func:`std_distance` from (w, b) to any LAD minimizer: a linear programme.

    The LAD minimizer need not be unique (it is a face of a polytope); the
    specification's "within 1e-4 of a reference minimizer" is the distance to
    that face.  Variables (theta, u+, u-, t): minimize t subject to
    A theta + u+ - u- = ys, sum v (u+ + u-) <= f* (1 + 1e-12), |M (theta - theta_fit)| <= t.
    """
    s = _Std(X, y, sw)
    n, p = s.A.shape
    _, _, f_star = ref_l1(X, y, sw)
    f_star /= s.sy
    A_eq0, cost0 = _lad_parts(s)
    A_eq = sparse.hstack([A_eq0, sparse.csr_matrix((n, 1))], format="csr")
    M = s.metric_rows()
    theta_fit = s.from_original(w, b)
    zeros = np.zeros((p, 2 * n))
    rows = [
        np.r_[cost0, 0.0][None, :],
        np.hstack([M, zeros, -np.ones((p, 1))]),
        np.hstack([-M, zeros, -np.ones((p, 1))]),
    ]
    b_ub = np.r_[f_star * (1 + 1e-12) + 1e-15, M @ theta_fit, -(M @ theta_fit)]
    cost = np.zeros(p + 2 * n + 1)
    cost[-1] = 1.0
    bounds = [(None, None)] * p + [(0.0, None)] * (2 * n) + [(0.0, None)]
    res = optimize.linprog(
        cost, A_ub=np.vstack(rows), b_ub=b_ub, A_eq=A_eq, b_eq=s.ys, bounds=bounds, method="highs", options=_HIGHS
    )
    assert res.success, res.message
    return float(res.x[-1])


def l1_optimal_set_width(X, y, sw=None):
    """Largest extent, in standardized units, of the LAD optimal face along a coordinate of :func:`std_distance`."""
    s = _Std(X, y, sw)
    n, p = s.A.shape
    _, _, f_star = ref_l1(X, y, sw)
    f_star /= s.sy
    A_eq, cost0 = _lad_parts(s)
    M = s.metric_rows()
    bounds = [(None, None)] * p + [(0.0, None)] * (2 * n)
    width = 0.0
    for k in range(p):
        ends = []
        for sign in (1.0, -1.0):
            c = np.r_[sign * M[k], np.zeros(2 * n)]
            res = optimize.linprog(
                c, A_ub=cost0[None, :], b_ub=[f_star * (1 + 1e-12) + 1e-15], A_eq=A_eq, b_eq=s.ys,
                bounds=bounds, method="highs", options=_HIGHS,
            )
            assert res.success, res.message
            ends.append(sign * res.fun)
        width = max(width, ends[1] - ends[0])  # max minus min of (M theta)_k over the face
    return width


def ref_smooth(loss, X, y, sw, sigma):
    """The minimizer of sum_i v_i rho((y_i - x_i.w - b) / sigma) for a smooth convex loss.

    L-BFGS-B with the exact gradient in standardized coordinates, from least
    squares, gtol 1e-12; then Newton steps with backtracking (the objective is
    at least C^1 and piecewise C^2), until the step is at rounding level.
    Returns (w, b, gradient inf-norm in standardized coordinates, scaled by t).
    """
    rho, psi, dpsi = _formulas(loss)
    s = _Std(X, y, sw)
    t = sigma / s.sy  # the scale in standardized residual units
    A, ys, v = s.A, s.ys, s.v

    def fg(theta):
        u = (ys - A @ theta) / t
        return float(v @ rho(u)), -(A.T @ (v * psi(u))) / t

    root = np.sqrt(v)
    theta = np.linalg.lstsq(A * root[:, None], ys * root, rcond=None)[0]
    res = optimize.minimize(
        fg, theta, jac=True, method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-16, "maxiter": 100_000, "maxfun": 200_000, "maxcor": 50},
    )
    theta = res.x
    f, g = fg(theta)
    for _ in range(200):
        if not np.any(g):
            break
        u = (ys - A @ theta) / t
        H = (A.T * (v * dpsi(u))) @ A / t**2
        step = np.linalg.lstsq(H, g, rcond=None)[0]
        # The full step when it lowers the objective or the gradient (near the optimum the
        # objective changes at rounding level only); else halve it until the objective drops.
        lam, new = 1.0, None
        while lam >= 1e-12:
            cand = theta - lam * step
            fn, gn = fg(cand)
            if fn < f or (lam == 1.0 and np.max(np.abs(gn)) < np.max(np.abs(g))):
                new = cand
                break
            lam *= 0.5
        if new is None:
            break
        theta, f, g = new, fn, gn
    gmax = float(np.max(np.abs(g))) * t  # = max_k |sum_i v_i A_ik psi(u_i)|, psi of order 1
    assert gmax <= 1e-12, f"the reference itself is not at the optimum (gradient {gmax:.3g})"
    w, b = s.to_original(theta)
    return w, b, gmax


def _mad0(r):
    """median_i |r_i| / Phi^-1(3/4): MAD about 0, the scale of MASS::rlm and statsmodels' RLM."""
    return float(np.median(np.abs(r))) / MAD_CONSTANT


def reference(loss_name, X, y, sw, sigma):
    """(w*, b*) of a convex loss at scale sigma (sigma unused for l1, l2)."""
    if loss_name == "l2":
        return ref_l2(X, y, sw)
    if loss_name == "l1":
        return ref_l1(X, y, sw)[:2]
    w, b, _ = ref_smooth(get_loss(loss_name), X, y, sw, sigma)
    return w, b


# ---------------------------------------------------------------------------
# Fits, made once per (loss, data) and shared by the tests that read them
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _default_fit(loss_name, data_name):
    """``GDRegressor(loss).fit(X, y)`` with defaults, and the warnings it emitted."""
    X, y, sw = _data(data_name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = GDRegressor(loss_name).fit(X, y, sample_weight=sw)
    return model, tuple(caught)


def _convergence_warnings(caught):
    return [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


# ---------------------------------------------------------------------------
# The references themselves (no GDRegressor): they must be right for the rest to mean anything
# ---------------------------------------------------------------------------


def test_reference_synthetic_designs_are_as_described():
    X, _ = _ill_conditioned()
    assert X.shape == (400, 6)
    np.testing.assert_allclose(np.linalg.cond(X.T @ X), 1e6, rtol=1e-6)
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-12)
    Xw, _ = _wide_scales()
    mags = np.median(np.abs(Xw), axis=0)
    np.testing.assert_allclose(np.log10(mags), np.arange(-3, 6, 2), atol=0.5)


@pytest.mark.parametrize("name", SMOOTH_CONVEX)
def test_reference_formulas_are_the_losses_of_robustreg(name):
    # "The same objective": the test's own rho, psi, psi' equal robustreg.losses'.
    loss = get_loss(name)
    rho, psi, dpsi = _formulas(loss)
    u = np.r_[np.linspace(-7.0, 7.0, 2801), 1e-9, -1e-9]
    np.testing.assert_allclose(rho(u), loss.rho(u), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(psi(u), loss.psi(u), rtol=1e-13, atol=1e-15)
    away = np.abs(np.abs(u) - next(iter(loss.params().values()))) > 1e-6  # psi' jumps at the kink
    np.testing.assert_allclose(dpsi(u)[away], loss.psi_deriv(u)[away], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("data_name", DATASETS)
def test_reference_huber_agrees_with_statsmodels_rlm_at_fixed_scale(data_name):
    # IRLS of statsmodels (RLM, HuberT, scale fixed) is a different algorithm for the same objective.
    X, y, sw = _data(data_name)
    if sw is not None or np.std(y) == 0:
        pytest.skip("RLM has no sample weights; a constant response has zero scale (checked by the Huber test itself)")
    w0, b0 = ref_l2(X, y)
    sigma = _mad0(y - X @ w0 - b0)
    w, b, gmax = ref_smooth(HuberLoss(1.345), X, y, None, sigma)
    assert gmax < 1e-12
    s = _Std(X, y)
    rlm = sm.RLM(s.ys, s.A, M=sm.robust.norms.HuberT(t=1.345)).fit(
        start_scale=sigma / s.sy, update_scale=False, conv="coefs", tol=1e-14, maxiter=10_000
    )
    w_sm, b_sm = s.to_original(np.asarray(rlm.params))
    assert std_distance(w, b, w_sm, b_sm, X, y) < 1e-9


@pytest.mark.parametrize("data_name", DATASETS)
def test_reference_lad_agrees_with_statsmodels_quantreg(data_name):
    # HiGHS LP vs statsmodels' QuantReg (IRLS, so only to its own tolerance): the objective
    # values agree, and QuantReg's answer is close to the LAD optimal set.
    X, y, sw = _data(data_name)
    if np.std(y) == 0:
        pytest.skip("constant response: QuantReg's IRLS divides by zero residuals")
    w, b, f_star = ref_l1(X, y, sw)
    r = y - X @ w - b
    np.testing.assert_allclose(np.mean(np.abs(r)), f_star, rtol=1e-9)
    s = _Std(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qr = sm.QuantReg(s.ys, s.A).fit(q=0.5, p_tol=1e-12, max_iter=20_000)
    w_q, b_q = s.to_original(np.asarray(qr.params))
    f_q = float(np.mean(np.abs(y - X @ w_q - b_q)))
    assert f_star <= f_q * (1 + 1e-9)
    assert f_q <= f_star * (1 + 1e-6)
    assert l1_distance_to_optimal_set(X, y, sw, w_q, b_q) < 1e-3
    assert l1_distance_to_optimal_set(X, y, sw, w, b) < 1e-9


def test_reference_lad_optimal_sets():
    # Which LAD problems have a non-unique minimizer: telef (a face about 0.4 standardized
    # units wide), none of the others (widths at the level of the LP's 1e-12 objective slack).
    # A point comparison with HiGHS's vertex would fail a correct solver on telef.
    for name in DATASETS:
        X, y, sw = _data(name)
        width = l1_optimal_set_width(X, y, sw)
        if name == "telef":
            assert width > 0.1, width
        else:
            assert width < 1e-6, (name, width)
    X, y, sw = _data("stackloss")
    w, b = ref_l2(X, y)
    assert l1_distance_to_optimal_set(X, y, sw, w, b) > 0.01  # least squares is far from LAD here


def _mass_rlm_huber(X, y, k=1.345, acc=1e-4, maxit=20):
    """MASS::rlm.default (R), scale.est = "MAD", psi = psi.huber, init = "ls", test.vec = "resid".

    Each iteration: scale <- median(abs(resid)) / 0.6745; w <- psi.huber(resid / scale);
    weighted least squares; stop when sqrt(sum((old - new)^2) / sum(old^2)) <= acc.
    The returned scale is the one of the last iteration (from the previous residuals).
    """
    A = np.column_stack([np.ones(len(y)), X])
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    resid = y - A @ coef
    for _ in range(maxit):
        old = resid
        scale = float(np.median(np.abs(resid))) / 0.6745
        wt = np.minimum(1.0, k / np.maximum(np.abs(resid / scale), 1e-300))
        root = np.sqrt(wt)
        coef = np.linalg.lstsq(A * root[:, None], y * root, rcond=None)[0]
        resid = y - A @ coef
        if math.sqrt(np.sum((old - resid) ** 2) / max(1e-20, float(np.sum(old**2)))) <= acc:
            break
    return coef, scale


# R's MASS::rlm(stack.loss ~ ., stackloss) (Huber, k = 1.345, MAD scale), as stored in
# statsmodels/robust/tests/results/results_rlm.py, class Huber (statsmodels 0.15.0):
#   params = [0.82937387, 0.92610818, -0.12784916, -41.02653105]  (slopes, then intercept)
#   scale = 2.4407137948148447
R_MASS_HUBER_STACKLOSS = np.array([-41.02653105, 0.82937387, 0.92610818, -0.12784916])
R_MASS_HUBER_STACKLOSS_SCALE = 2.4407137948148447


def test_reference_r_mass_rlm_values_are_reproduced_by_its_algorithm():
    # The R values are MASS::rlm's IRLS stopped at its default acc = 1e-4 (9
    # iterations, constant 0.6745): not the exact fixed point, which they miss
    # by up to 7e-5 relative (the scale) - hence the 1e-4 tolerance against R below.
    from statsmodels.robust.tests.results import results_rlm

    r = results_rlm.Huber()
    np.testing.assert_allclose(np.r_[r.params[-1], r.params[:-1]], R_MASS_HUBER_STACKLOSS, rtol=1e-12)
    np.testing.assert_allclose(r.scale, R_MASS_HUBER_STACKLOSS_SCALE, rtol=1e-12)
    X, y, _ = _data("stackloss")
    coef, scale = _mass_rlm_huber(X, y)
    np.testing.assert_allclose(coef, R_MASS_HUBER_STACKLOSS, rtol=1e-8)
    np.testing.assert_allclose(scale, R_MASS_HUBER_STACKLOSS_SCALE, rtol=1e-8)


def _statsmodels_rlm_huber_stackloss():
    """statsmodels' RLM with HuberT(1.345) and its MAD scale, iterated to the fixed point."""
    X, y, _ = _data("stackloss")
    res = sm.RLM(y, sm.add_constant(X), M=sm.robust.norms.HuberT(t=1.345)).fit(
        scale_est="mad", conv="coefs", tol=1e-13, maxiter=10_000
    )
    return np.asarray(res.params), float(res.scale), res


def test_reference_statsmodels_rlm_is_a_fixed_point():
    # statsmodels' scale_est="mad" is scale.mad(resid, center=0): median|r| / Phi^-1(3/4) of the current fit.
    X, y, _ = _data("stackloss")
    params, scale, res = _statsmodels_rlm_huber_stackloss()
    assert res.fit_history["iteration"] < 10_000
    np.testing.assert_allclose(scale, _mad0(y - sm.add_constant(X) @ params), rtol=1e-12)
    w, b, _ = ref_smooth(HuberLoss(1.345), X, y, None, scale)
    assert std_distance(w, b, params[1:], params[0], X, y) < 1e-10
    # ... and R's (approximate) values are within 1e-4 of it, relative.
    np.testing.assert_allclose(params, R_MASS_HUBER_STACKLOSS, rtol=1e-4)
    np.testing.assert_allclose(scale, R_MASS_HUBER_STACKLOSS_SCALE, rtol=1e-4)


# ---------------------------------------------------------------------------
# 2. Every convex loss on every data set: the exact minimizer, certified
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("data_name", DATASETS)
@pytest.mark.parametrize("loss_name", CONVEX)
def test_default_fit_is_certified(loss_name, data_name):
    model, caught = _default_fit(loss_name, data_name)
    assert model.converged_
    assert not model.diverged_
    assert _convergence_warnings(caught) == []


@pytest.mark.parametrize("data_name", DATASETS)
@pytest.mark.parametrize("loss_name", CONVEX)
def test_default_fit_is_the_exact_minimizer(loss_name, data_name):
    X, y, sw = _data(data_name)
    model, _ = _default_fit(loss_name, data_name)
    if loss_name == "l1":
        # Distance to the set of LAD minimizers (unique on most sets, a face on some).
        dist = l1_distance_to_optimal_set(X, y, sw, model.coef_, model.intercept_)
        assert dist <= TOL_L1, f"{dist:.3g} standardized units from the nearest LAD minimizer"
        return
    sigma = model.scale_
    assert np.isfinite(sigma) and sigma > 0
    w_ref, b_ref = reference(loss_name, X, y, sw, sigma)
    dist = std_distance(model.coef_, model.intercept_, w_ref, b_ref, X, y)
    assert dist <= TOL_SMOOTH, f"{dist:.3g} standardized units from the reference minimizer (sigma={sigma:.6g})"


def _objective(loss_name, r, sigma, sw):
    """sum_i v_i rho(r_i / sigma), v the normalized sample weights, from the test's own formulas."""
    v = np.full(r.size, 1.0 / r.size) if sw is None else sw / np.sum(sw)
    if loss_name == "l1":
        return float(v @ np.abs(r))
    if loss_name == "l2":
        return float(v @ (r * r))
    return float(v @ _formulas(get_loss(loss_name))[0](r / sigma))


@pytest.mark.parametrize("data_name", DATASETS)
@pytest.mark.parametrize("loss_name", CONVEX)
def test_default_objective_attribute_is_the_objective_at_the_fit(loss_name, data_name):
    X, y, sw = _data(data_name)
    model, _ = _default_fit(loss_name, data_name)
    r = y - X @ model.coef_ - model.intercept_
    sigma = model.scale_ if get_loss(loss_name).scale_dependent else 1.0
    # (On #27777 the fit is exact up to rounding, r ~ 1e-15, and sigma = MAD(r) ~ 3e-15 is
    # at its fixed point: the objective is rho at |r| / sigma ~ 0.67, not 0; still exact here.)
    assert model.objective_ == pytest.approx(_objective(loss_name, r, sigma, sw), rel=1e-8, abs=1e-14)


@pytest.mark.parametrize("data_name", DATASETS)
@pytest.mark.parametrize("loss_name", SCALE_DEPENDENT_CONVEX)
def test_default_scale_is_the_rlm_fixed_point(loss_name, data_name):
    X, y, sw = _data(data_name)
    model, _ = _default_fit(loss_name, data_name)
    r = y - X @ model.coef_ - model.intercept_
    mad = _mad0(r)  # all weights equal where sample weights are given (#27777)
    # The absolute slack (1e-9 sd(y)) only matters for #27777, whose fixed point is
    # sigma = 0 (an exact fit), replaced by a tiny positive scale.
    assert model.scale_ == pytest.approx(mad, rel=TOL_SCALE_REL, abs=1e-9 * _y_unit(y))


def test_secant_scale_step_lands_on_the_fixed_point_of_a_linear_map():
    from robustreg._fit import _secant_scale

    # g(s) = 2 + c (s - 2): the secant through two points of g(s) - s is exact.
    for c in (0.1, 0.5, 0.85, -0.5):
        g = lambda s: 2.0 + c * (s - 2.0)  # noqa: E731
        s0, s1 = 1.0, g(1.0)
        assert _secant_scale(s1, g(s1), (s0, s1)) == pytest.approx(2.0, rel=1e-12)
    # The first step, a map that does not contract, and a step ten times past the plain one are plain.
    assert _secant_scale(1.0, 1.5, None) == 1.5
    g = lambda s: 2.0 + 1.5 * (s - 2.0)  # noqa: E731
    assert _secant_scale(g(1.0), g(g(1.0)), (1.0, g(1.0))) == g(g(1.0))
    g = lambda s: 2.0 + 0.95 * (s - 2.0)  # noqa: E731  (the secant is 20 plain steps away)
    assert _secant_scale(g(1.0), g(g(1.0)), (1.0, g(1.0))) == g(g(1.0))


@pytest.mark.parametrize("data_name", ("stackloss", "hbk", "stars_cyg"))
def test_scale_fixed_point_without_the_tighter_fits_is_the_same_certified_fit(data_name, monkeypatch):
    # Fits tighter than tol that cannot be certified within their cap (here: one iteration)
    # send the fixed point back to fits at tol; it still ends certified, at RLM's scale.
    from robustreg import _fit

    X, y, sw = _data(data_name)
    fast = GDRegressor(HuberLoss(1.345)).fit(X, y, sample_weight=sw)
    monkeypatch.setattr(_fit._Fit, "TIGHT_ITER", 1)
    slow = GDRegressor(HuberLoss(1.345)).fit(X, y, sample_weight=sw)
    assert fast.converged_ and slow.converged_
    for model in (fast, slow):
        assert model.scale_ == pytest.approx(_mad0(y - X @ model.coef_ - model.intercept_), rel=TOL_SCALE_REL)
    assert std_distance(fast.coef_, fast.intercept_, slow.coef_, slow.intercept_, X, y) < 1e-5


# ---------------------------------------------------------------------------
# 3. Huber(1.345) is statsmodels' RLM and R's MASS::rlm
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _huber_1345_stackloss():
    X, y, _ = _data("stackloss")
    return GDRegressor(HuberLoss(1.345)).fit(X, y)


def test_huber_equals_statsmodels_rlm_on_stackloss():
    params, scale, _ = _statsmodels_rlm_huber_stackloss()
    model = _huber_1345_stackloss()
    np.testing.assert_allclose(np.r_[model.intercept_, model.coef_], params, rtol=1e-5)
    np.testing.assert_allclose(model.scale_, scale, rtol=1e-5)
    assert model.converged_


def test_huber_equals_r_mass_rlm_on_stackloss():
    # R MASS::rlm values from statsmodels/robust/tests/results/results_rlm.py, class Huber:
    # intercept -41.02653, slopes 0.829374, 0.926108, -0.127849, scale 2.44071.
    model = _huber_1345_stackloss()
    np.testing.assert_allclose(np.r_[model.intercept_, model.coef_], R_MASS_HUBER_STACKLOSS, rtol=1e-4)
    np.testing.assert_allclose(model.scale_, R_MASS_HUBER_STACKLOSS_SCALE, rtol=1e-4)


def test_huber_loss_name_with_delta_1345_is_the_same_fit():
    # The registry name with its parameter builds the same loss as the instance.
    X, y, _ = _data("stackloss")
    model = GDRegressor(get_loss("huber", delta=1.345)).fit(X, y)
    ref = _huber_1345_stackloss()
    assert std_distance(model.coef_, model.intercept_, ref.coef_, ref.intercept_, X, y) < 1e-8


# ---------------------------------------------------------------------------
# 4. GDRegressor("tukey") with nothing else is the MM-estimator
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("data_name", CLASSIC)
def test_tukey_default_is_the_published_mm_fit(data_name):
    X, y, _ = _data(data_name)
    published = load_dataset(data_name).published["mm"]  # robustbase::lmrob, intercept first
    # random_state only seeds the S-estimator's subsamples; the fit must not depend on it (seeds 0 and 1).
    for seed in (0, 1):
        model = GDRegressor("tukey", random_state=seed).fit(X, y)
        dist = std_distance(model.coef_, model.intercept_, published[1:], published[0], X, y)
        assert dist <= 0.01, f"seed {seed}: {dist:.3g} standardized units from lmrob's MM fit"
        assert model.converged_


# ---------------------------------------------------------------------------
# 5. Equivariance of every registered loss
# ---------------------------------------------------------------------------

EQUIVARIANCE_DATA = ("stackloss", "ill_conditioned")


def _is_redescending(name):
    return bool(get_loss(name).redescending)


@functools.lru_cache(maxsize=None)
def _equivariance_fit(loss_name, data_name, a, seed=7):
    X, y, _ = _data(data_name)
    if a is not None:
        c, b0 = _shift(data_name)
        y = a * y + X @ c + b0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # judged by the distances, not here
        return GDRegressor(loss_name, random_state=seed).fit(X, y)


def _shift(data_name):
    """A fixed vector c (each term moves y by about sd(y)) and a fixed intercept shift b0."""
    X, y, _ = _data(data_name)
    d = X.shape[1]
    signs = np.where(np.arange(d) % 2 == 0, 1.0, -1.0)
    c = signs * np.arange(1, d + 1) / d * np.std(y) / np.std(X, axis=0)
    return c, 3.0 * float(np.std(y)) + 5.0


@pytest.mark.parametrize("a", [100.0, -0.01])
@pytest.mark.parametrize("data_name", EQUIVARIANCE_DATA)
@pytest.mark.parametrize("loss_name", sorted(robustreg.LOSSES))
def test_equivariance(loss_name, data_name, a):
    # fit(X, y') with y' = a y + X c + b0 is (a w + c, a b + b0), within the tolerance in the
    # standardized units of the transformed problem (X, y'), where those coefficients live.
    # (With a = -0.01, y' is mostly X c: sd(y') is ~100 times |a| sd(y), so this is the
    # weaker reading; the message also gives the distance in the units of the original
    # problem, ((w' - c) / a, (b' - b0) / a) against (w, b), which is not bounded here.)
    X, y, _ = _data(data_name)
    c, b0 = _shift(data_name)
    y_moved = a * y + X @ c + b0
    base = _equivariance_fit(loss_name, data_name, None)
    moved = _equivariance_fit(loss_name, data_name, a)
    tol = 1e-4 if _is_redescending(loss_name) else 1e-5
    if loss_name == "l1" and l1_optimal_set_width(X, y) > 1e-6:
        # A LAD problem with a non-unique minimizer: the transform maps its optimal face onto
        # the transformed problem's, but an exact solver may return another point of it.  Both
        # fits must then lie on their faces (not skipped: checked as sets).
        assert l1_distance_to_optimal_set(X, y_moved, None, moved.coef_, moved.intercept_) <= tol
        assert l1_distance_to_optimal_set(X, y, None, base.coef_, base.intercept_) <= tol
        return
    dist = std_distance(moved.coef_, moved.intercept_, a * base.coef_ + c, a * base.intercept_ + b0, X, y_moved)
    back = std_distance((moved.coef_ - c) / a, (moved.intercept_ - b0) / a, base.coef_, base.intercept_, X, y)
    assert dist <= tol, f"{dist:.3g} standardized units of (X, y') from a * fit + (c, b0) ({back:.3g} in units of (X, y))"
    if get_loss(loss_name).scale_dependent:
        assert moved.scale_ == pytest.approx(abs(a) * base.scale_, rel=max(tol, 1e-6))


# ---------------------------------------------------------------------------
# 6. Honesty of converged_ and of the warning
# ---------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?!\w)")


def _informative_numbers(message, loss, max_iter, tol):
    """Numbers in the message other than max_iter, tol and the loss's tuning constants."""
    known = {float(max_iter), float(tol), *map(float, get_loss(loss).params().values())}
    return [x for x in map(float, _NUMBER.findall(message)) if not any(math.isclose(x, k) for k in known)]


def test_max_iter_without_certificate_is_reported_huber():
    X, y, _ = _data("stars_cyg")
    with pytest.warns(ConvergenceWarning) as record:
        model = GDRegressor("huber", max_iter=3).fit(X, y)
    assert not model.converged_
    messages = [str(w.message) for w in record if issubclass(w.category, ConvergenceWarning)]
    # "how far from optimal": a number that is not just max_iter, tol or delta repeated.
    assert any(_informative_numbers(m, "huber", 3, 1e-6) for m in messages), messages


@pytest.mark.parametrize("max_iter", [1, 3])
@pytest.mark.parametrize("data_name", ["stars_cyg", "hbk"])
def test_max_iter_l1_flag_is_honest(data_name, max_iter):
    # A solver that finishes LAD at a vertex may be optimal (and certified) after one iteration.
    # What must hold either way: converged_ True only at a LAD minimizer and without a warning;
    # converged_ False with a ConvergenceWarning that says how far from optimal.
    X, y, _ = _data(data_name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = GDRegressor("l1", max_iter=max_iter).fit(X, y)
    messages = _convergence_warnings(caught)
    dist = l1_distance_to_optimal_set(X, y, None, model.coef_, model.intercept_)
    if model.converged_:
        assert dist <= TOL_L1, f"converged_ is True {dist:.3g} standardized units from the LAD optimum"
        assert messages == []
    else:
        assert any(_informative_numbers(m, "l1", max_iter, 1e-6) for m in messages), messages


def test_plain_gradient_descent_is_not_called_converged_when_it_is_not():
    X, y, _ = _data("hbk")
    with pytest.warns(ConvergenceWarning):
        model = GDRegressor("huber", solver="gd", max_iter=50).fit(X, y)
    assert not model.converged_
    w_ref, b_ref = reference("huber", X, y, None, model.scale_)
    dist = std_distance(model.coef_, model.intercept_, w_ref, b_ref, X, y)
    assert dist > 1e-3, f"only {dist:.3g} from the minimizer: this case no longer shows the flag's honesty"


# ---------------------------------------------------------------------------
# 7. Efficiency at the Gaussian model
# ---------------------------------------------------------------------------

EFF_N = 200
EFF_W = np.array([1.0, -0.5])
EFF_NOISE_SD = 2.0  # not 1, so that a loss applied to raw residuals (scale 1) would show

# (label, estimator factory, textbook asymptotic efficiency, replications).  The
# replications fit the time budget (< 30 s for the three on two cores): an MM fit costs ~0.1 s (its S-estimator start),
# an L1 or Huber fit ~2-3 ms.
EFFICIENCY_CASES = [
    ("l1", lambda seed: GDRegressor("l1"), 2.0 / math.pi, 1500),
    ("huber_1345_mad", lambda seed: GDRegressor(HuberLoss(1.345)), 0.95, 1500),
    ("tukey_mm_4685", lambda seed: GDRegressor("tukey", random_state=seed), 0.95, 120),
]


def _efficiency_sample(factory, reps, seed=12345):
    """Squared slope errors of OLS and of the estimator over ``reps`` seeded replications."""
    rng = np.random.default_rng(seed)
    a, b = np.empty(reps), np.empty(reps)
    for k in range(reps):
        X = rng.standard_normal((EFF_N, EFF_W.size))
        y = 0.5 + X @ EFF_W + EFF_NOISE_SD * rng.standard_normal(EFF_N)
        w_ols, _ = ref_l2(X, y)
        model = factory(k).fit(X, y)
        a[k] = np.sum((w_ols - EFF_W) ** 2)
        b[k] = np.sum((model.coef_ - EFF_W) ** 2)
    return a, b


def _ratio_se(a, b):
    """Delta-method standard error of mean(a) / mean(b) over paired replications."""
    A, B = a.mean(), b.mean()
    grad = np.array([1.0 / B, -A / B**2])
    cov = np.cov(np.vstack([a, b])) / a.size
    return float(np.sqrt(grad @ cov @ grad))


@pytest.mark.parametrize("label, factory, textbook, reps", EFFICIENCY_CASES, ids=[c[0] for c in EFFICIENCY_CASES])
def test_gaussian_efficiency_matches_textbook(label, factory, textbook, reps):
    # Efficiency of E = mean ||w_OLS - w||^2 / mean ||w_E - w||^2 (slopes), n = 200, p = 2,
    # Gaussian design and noise.  Textbook asymptotic values: L1 2/pi = 0.637, Huber(1.345)
    # with MAD scale 0.95, Tukey MM (c = 4.685) 0.95.  Tolerance: 4 standard errors of the
    # ratio (delta method over the paired replications), no allowance for finite-n bias.
    # The bias, measured with independent estimators at n = 200 on the same model
    # (HiGHS LAD and statsmodels RLM Huber/MAD: 20 000 replications; statsmodels
    # RLMDetSMM: 2 000), is small beside the standard errors here:
    #   L1     0.6320 +- 0.0038  (bias -0.005; SE here ~0.014 with 1500 replications)
    #   Huber  0.9428 +- 0.0022  (bias -0.007; SE here ~0.008 with 1500)
    #   MM     0.9369 +- 0.0071  (bias -0.013; SE here ~0.029 with 120)
    # at most 0.9 standard error (Huber), which moves the two-sided 4 SE false-failure
    # rate of a correct estimator from 6e-5 to about 1e-3 (and the seeds fix the outcome).
    # The power is modest (4 SE is +-0.055, +-0.032, +-0.12): this catches a wrong scale
    # or tuning constant or an estimator far from its optimum (Huber(1.345) on raw
    # residuals, scale 1, gives 0.85 here; the old default Tukey fit from zeros 0.60),
    # not a 1% drift.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # an unconverged fit shows in the efficiency
        a, b = _efficiency_sample(factory, reps)
    eff = a.mean() / b.mean()
    se = _ratio_se(a, b)
    assert abs(eff - textbook) <= 4.0 * se, f"efficiency {eff:.4f} +- {se:.4f} (textbook {textbook:.4f}, {reps} reps)"
