"""Robust starting fits and robust scales for non-convex (redescending) losses.

A redescending loss such as Tukey's biweight has many local minima; gradient
descent or IRLS started from least squares stays near least squares when the
data hold bad leverage points.  The remedy of the robust-statistics
literature is a two-stage fit: a high-breakdown start and a robust scale
first, the redescending M-step second (the MM-estimator of Yohai, 1987).
This module gives the first stage:

* :func:`lad_fit`: least absolute deviations (L1 regression), an exact
  linear programme solved with HiGHS.  Robust to outliers in ``y`` only:
  its breakdown point is 0 against leverage points.
* :func:`fast_lts`: least trimmed squares by the FAST-LTS algorithm, 50%
  breakdown, with the reweighting step of ``robustbase::ltsReg``.
* :func:`mscale`: the Tukey-biweight M-scale of residuals (50% breakdown,
  consistent at the normal model), the scale an S- or MM-estimator divides by.
* :func:`mad_scale`: the normalised median absolute deviation.
* :func:`s_estimator`: the S-estimator by FAST-S, the start and scale of
  ``robustbase::lmrob``'s MM-estimator.

Coefficients are always returned intercept first: ``[b0, b1, ..., bd]`` for
``d`` columns of ``X``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from scipy import optimize, sparse, stats

from ._checks import check_int, check_real
from .losses import TukeyBiweightLoss

__all__ = [
    "LTSResult",
    "SResult",
    "fast_lts",
    "lad_fit",
    "mad_scale",
    "mscale",
    "s_estimator",
]

#: :math:`\Phi^{-1}(3/4)`: the MAD of a standard normal sample.
_MAD_NORMAL = float(stats.norm.ppf(0.75))

#: Reweighting cut-off of ``robustbase::ltsReg``: :math:`\Phi^{-1}(0.9875)
#: = \sqrt{\chi^2_{1, 0.975}} \approx 2.2414`.
LTS_REWEIGHT_CUTOFF = float(stats.norm.ppf(0.9875))


# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------


def _check_Xy(X, y) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(A, y)`` with ``A = [1, X]``; one error line for each kind of bad input."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got an array of shape {X.shape}")
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (n_samples,); got an array of shape {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same number of rows; got {X.shape[0]} and {y.shape[0]}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("X and y must be finite; got NaN or infinity")
    n, d = X.shape
    p = d + 1
    if n <= p:
        raise ValueError(f"need more samples than coefficients (d + 1 = {p}); got n_samples={n}")
    A = np.column_stack([np.ones(n), X])
    return A, y


def _check_int(name: str, value, low: int) -> int:
    return check_int(name, value, low=low)


def _check_residuals(r) -> np.ndarray:
    r = np.asarray(r, dtype=float)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"residuals must be a non-empty 1-D array; got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("residuals must be finite; got NaN or infinity")
    return r


# ---------------------------------------------------------------------------
# L1 regression
# ---------------------------------------------------------------------------


def lad_fit(X, y) -> np.ndarray:
    r"""Least absolute deviations (median, L1) regression with an intercept.

    Solves the linear programme

    .. math::

        \min_{\beta, u^+, u^-} \sum_i (u_i^+ + u_i^-) \quad \text{s.t.} \quad
        A\beta + u^+ - u^- = y, \quad u^\pm \ge 0,

    with :math:`A = [\mathbf 1, X]`, using HiGHS through
    :func:`scipy.optimize.linprog`.  The minimiser need not be unique; HiGHS
    returns a vertex (a fit through at least ``d + 1`` points).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,)

    Returns
    -------
    coef : ndarray of shape (n_features + 1,)
        Intercept first.
    """
    A, y = _check_Xy(X, y)
    n, p = A.shape
    eye = sparse.identity(n, format="csr")
    A_eq = sparse.hstack([sparse.csr_matrix(A), eye, -eye], format="csr")
    cost = np.concatenate([np.zeros(p), np.ones(2 * n)])
    bounds = [(None, None)] * p + [(0.0, None)] * (2 * n)
    res = optimize.linprog(cost, A_eq=A_eq, b_eq=y, bounds=bounds, method="highs")
    if not res.success:
        raise RuntimeError(f"the LAD linear programme failed: {res.message}")
    return np.asarray(res.x[:p], dtype=float)


# ---------------------------------------------------------------------------
# Scales
# ---------------------------------------------------------------------------


def weighted_median(values, weights=None) -> float:
    """Median with weights, equal to ``np.median`` of the values repeated ``weights`` times (integer weights)."""
    values = np.asarray(values, dtype=float)
    if weights is None:
        return float(np.median(values))
    order = np.argsort(values, kind="stable")
    v = values[order]
    cum = np.cumsum(np.asarray(weights, dtype=float)[order])
    half = cum[-1] / 2.0
    lower = v[np.searchsorted(cum, half, side="left")]
    upper = v[min(np.searchsorted(cum, half, side="right"), len(v) - 1)]
    return float(0.5 * (lower + upper))


def mad_scale(r, center: float | str = 0.0, weights=None) -> float:
    r"""Normalised median absolute deviation.

    .. math::

        \hat\sigma = \frac{\operatorname{median}_i |r_i - m|}{\Phi^{-1}(3/4)}
                   \approx 1.4826 \operatorname{median}_i |r_i - m|.

    For regression residuals the centre is :math:`m = 0` (the default), as in
    ``statsmodels.robust.scale.mad(r, center=0)``, the default scale of
    ``statsmodels``' ``RLM``; ``center="median"`` gives the usual MAD of a sample.

    Parameters
    ----------
    r : array of shape (n,)
    center : float or "median", default=0.0
    weights : array of shape (n,), optional
        Case weights: an integer weight k counts the residual k times.

    Returns
    -------
    float
        Consistent for :math:`\sigma` at the normal model (centred at ``m``).
    """
    r = _check_residuals(r)
    if isinstance(center, str):
        if center != "median":
            raise ValueError(f"center={center!r} is invalid; allowed: a finite real number or 'median'")
        m = weighted_median(r, weights)
    elif isinstance(center, Real) and not isinstance(center, bool) and math.isfinite(center):
        m = float(center)
    else:
        raise ValueError(f"center={center!r} is invalid; allowed: a finite real number or 'median'")
    return weighted_median(np.abs(r - m), weights) / _MAD_NORMAL


def mscale(
    r, c: float = 1.5476, b: float = 0.5, tol: float = 1e-10, max_iter: int = 200, *, ddof: int = 0
) -> float:
    r"""Tukey-biweight M-scale of residuals.

    The scale :math:`s` solves

    .. math::

        \frac{1}{n - \mathrm{ddof}} \sum_i \rho_c\!\left(\frac{r_i}{s}\right) = b, \qquad
        \rho_c(u) = \min\left(1,\; 1 - \left(1 - (u/c)^2\right)^3\right),

    found by Newton's method on :math:`\log s` from the normalised MAD,
    kept inside a bracket of the root (the left-hand side decreases in
    :math:`s`; a step leaving the bracket bisects it instead).
    The defaults :math:`c = 1.5476`, :math:`b = 0.5` give breakdown point
    :math:`\min(b, 1 - b) = 50\%` and :math:`E_\Phi[\rho_c(Z)] = b`, so that
    :math:`s` is consistent for :math:`\sigma` at the normal model (these are
    the constants of the S-estimator in ``robustbase::lmrob``).  For the
    residuals of a fit with ``p`` coefficients, ``ddof=p`` gives the
    small-sample version of ``lmrob``'s S-scale, which divides by
    :math:`n - p`.

    Parameters
    ----------
    r : array of shape (n,)
        Residuals (centred at zero; no centring is applied).
    c : float, default=1.5476
        Biweight tuning constant, ``c > 0``.
    b : float, default=0.5
        Right-hand side, ``0 < b < 1``.
    tol : float, default=1e-10
        Relative tolerance on :math:`s`.
    max_iter : int, default=200
        Iteration limit.  When the iteration stops (small step or
        ``max_iter``) with the equation off by more than ``tol * b``, the
        root is finished by Brent's method (:func:`scipy.optimize.brentq`).
    ddof : int, default=0
        Subtracted from ``n`` in the mean, ``0 <= ddof < n``.

    Returns
    -------
    float
        The M-scale; ``0.0`` when at most ``b (n - ddof)`` residuals are
        non-zero (then the left-hand side stays at or below ``b`` for every
        :math:`s > 0` and the infimum is 0: an exact fit of the majority).
    """
    r = _check_residuals(r)
    c = _check_real("c", c, 0.0, math.inf)
    b = _check_real("b", b, 0.0, 1.0)
    tol = _check_real("tol", tol, 0.0, math.inf)
    max_iter = _check_int("max_iter", max_iter, 1)
    n = r.size
    ddof = _check_int("ddof", ddof, 0)
    if ddof >= n:
        raise ValueError(f"ddof={ddof} is invalid; allowed: an integer in [0, {n - 1}] for {n} residuals")
    return _mscale(np.abs(r), c, b, n - ddof, tol, max_iter)


def _mscale(a, c, b, m, tol, max_iter, s0=None):
    """M-scale of absolute residuals ``a`` (validated), dividing the sum by ``m``."""
    return float(_mscale_rows(a[None, :], c, b, m, tol, max_iter, None if s0 is None else np.array([s0]))[0])


def _mscale_rows(a, c, b, m, tol, max_iter, s0=None):
    """:func:`_mscale` of each row of ``a`` (absolute residuals, shape (k, n)), all rows at once.

    Newton's method on log s, kept inside a bracket of the root (the left-hand
    side decreases in s): d/d(log s) sum rho(a/s) = -6 sum v (1 - v)^2 with
    v = (a / (c s))^2 < 1 (the biweight's rho and weights of :class:`TukeyBiweightLoss`,
    as functions of v).  A step that leaves the bracket bisects it (in log s)
    instead.  A row still off by more than ``tol * b`` after ``max_iter`` steps
    is finished by Brent's method.
    """
    k = a.shape[0]
    S = np.zeros(k)
    rows = np.flatnonzero(np.count_nonzero(a, axis=1) > b * m)  # the others: an exact fit, scale 0
    if not rows.size:
        return S
    start = np.median(a[rows], axis=1) / _MAD_NORMAL
    if s0 is not None:
        given = np.asarray(s0, dtype=float)[rows]
        start = np.where(given > 0.0, given, start)
    start = np.where(start == 0.0, np.mean(a[rows], axis=1), start)
    S[rows] = start
    lo, hi = np.zeros(k), np.full(k, np.inf)
    live, done = rows, np.zeros(k, dtype=bool)
    for _ in range(max_iter):
        if not live.size:
            break
        s = S[live]
        v = np.square(a[live] / (s[:, None] * c))
        inside = v < 1.0  # False for a NaN v (0 / 0 at an underflowed c s): rho 1 there, slope 0
        f = np.sum(np.where(inside, TukeyBiweightLoss.unit_rho(v), 1.0), axis=1) / m - b
        ok = np.abs(f) <= tol * b
        done[live[ok]] = True
        lo[live] = np.where(f > 0.0, s, lo[live])
        hi[live] = np.where(f > 0.0, hi[live], s)
        slope = -6.0 * np.sum(np.where(inside, v * TukeyBiweightLoss.unit_weights(v), 0.0), axis=1) / m
        with np.errstate(divide="ignore", invalid="ignore"):
            new = s * np.exp(np.clip(-f / slope, -50.0, 50.0))
        l, h = lo[live], hi[live]
        outside = ~((slope < 0.0) & (l < new) & (new < h))
        bisect = np.where(np.isinf(h), 2.0 * s, np.where(l == 0.0, 0.5 * s, np.sqrt(l * h)))
        new = np.where(outside, bisect, new)
        still = ~ok & ~(np.abs(new - s) <= tol * new)
        S[live[~ok]] = new[~ok]
        live = live[still]
    for r in rows[~done[rows]]:  # check the rows that stopped on a small step; Brent where still off
        S[r] = _mscale_finish(a[r], c, b, m, tol, S[r])
    return S


def _mscale_finish(a, c, b, m, tol, s):
    """The M-scale near ``s``: ``s`` itself when within tolerance, else Brent's method on a bracket."""
    rho = TukeyBiweightLoss(c).normalised_rho

    def excess(t):
        return float(np.sum(rho(a / t))) / m - b

    if abs(excess(s)) <= tol * b:
        return s
    lo, hi = s, s
    while excess(lo) < 0.0:
        lo /= 2.0
    while excess(hi) > 0.0:
        hi *= 2.0
    if lo == hi:
        return s
    return float(optimize.brentq(excess, lo, hi, xtol=tol * lo, rtol=max(tol, 4 * np.finfo(float).eps)))


def _check_real(name: str, value, low: float, high: float) -> float:
    """A real number in the open interval (low, high)."""
    return check_real(name, value, low=low, high=high, low_inclusive=False)


# ---------------------------------------------------------------------------
# Least trimmed squares
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LTSResult:
    """Result of :func:`fast_lts`.

    Attributes
    ----------
    coef : ndarray of shape (d + 1,)
        Intercept first.  The reweighted least-squares fit when
        ``reweight=True``, else equal to ``raw_coef``.
    raw_coef : ndarray of shape (d + 1,)
        The raw LTS fit: least squares on the best ``h``-subset found.
    scale : float
        The raw LTS scale, consistency-corrected at the normal model and, by
        default, corrected for small samples (see :func:`fast_lts`); ``0.0``
        for an exact fit.
    support : ndarray of bool, shape (n,)
        The reweighting inliers (``|r| / scale <= 2.2414`` for the raw
        residuals) when ``reweight=True``, else the best ``h``-subset.
    raw_support : ndarray of bool, shape (n,)
        The best ``h``-subset.
    objective : float
        The LTS criterion of ``raw_coef``: the sum of the ``h`` smallest
        squared residuals.
    h : int
        Coverage: the number of squared residuals summed.
    n_starts : int
        Number of random elemental starts tried.
    """

    coef: np.ndarray
    raw_coef: np.ndarray
    scale: float
    support: np.ndarray
    raw_support: np.ndarray
    objective: float
    h: int
    n_starts: int


def _lstsq(A, y):
    # The normal equations are several times faster than an SVD for the many
    # small fits of the concentration steps (h >= n/2 rows, well posed); a
    # singular subset falls back to the SVD.
    G = A.T @ A
    try:
        beta = np.linalg.solve(G, A.T @ y)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(A, y, rcond=None)[0]
    if not np.all(np.isfinite(beta)):
        return np.linalg.lstsq(A, y, rcond=None)[0]
    return beta


def _h_subset(A, y, beta, h):
    """Indices of the h smallest squared residuals of ``beta`` and their sum."""
    r2 = np.square(y - A @ beta)
    idx = np.argpartition(r2, h - 1)[:h]
    return idx, float(r2[idx].sum())


def _csteps(A, y, beta, h, max_steps):
    """Concentration steps (Rousseeuw & Van Driessen 2006, theorem 1).

    Each step fits least squares to the h points with the smallest squared
    residuals; the LTS criterion never increases, so the loop stops when the
    h-subset repeats (or the criterion stops decreasing, against rounding).
    """
    idx, obj = _h_subset(A, y, beta, h)
    mask = np.zeros(y.size, dtype=bool)
    mask[idx] = True
    for _ in range(max_steps):
        beta_new = _lstsq(A[idx], y[idx])
        idx_new, obj_new = _h_subset(A, y, beta_new, h)
        if obj_new > obj:
            break
        beta, obj = beta_new, obj_new
        mask_new = np.zeros(y.size, dtype=bool)
        mask_new[idx_new] = True
        if np.array_equal(mask_new, mask):
            break
        idx, mask = idx_new, mask_new
    return beta, obj, idx


def _h_subsets(A, y, B, h):
    """:func:`_h_subset` for the coefficient vectors in the rows of ``B``: ``(indices, sums)``."""
    r2 = np.square(y - B @ A.T)
    idx = np.argpartition(r2, h - 1, axis=1)[:, :h]
    return idx, np.take_along_axis(r2, idx, axis=1).sum(axis=1)


def _csteps_all(A, y, B, h, max_steps):
    """:func:`_csteps` from every row of ``B`` at once: ``(coefficients, criteria)``.

    The starts of FAST-LTS are many and the fits small, so the steps of all of
    them run as stacked arrays; each start stops as :func:`_csteps` would (its
    criterion increases, or its h-subset repeats).
    """
    B = B.copy()
    idx, obj = _h_subsets(A, y, B, h)
    live = np.arange(len(B))
    for _ in range(max_steps):
        if not live.size:
            break
        sub = idx[live]
        As, ys = A[sub], y[sub]  # (starts, h, p), (starts, h)
        At = As.transpose(0, 2, 1)
        try:
            new = np.linalg.solve(At @ As, (At @ ys[:, :, None]))[:, :, 0]
            bad = ~np.all(np.isfinite(new), axis=1)
        except np.linalg.LinAlgError:  # a singular subset: each start on its own
            new = np.empty((live.size, B.shape[1]))
            bad = np.ones(live.size, dtype=bool)
        for k in np.flatnonzero(bad):
            new[k] = _lstsq(As[k], ys[k])
        idx_new, obj_new = _h_subsets(A, y, new, h)
        better = ~(obj_new > obj[live])  # as _csteps: only an increase stops a start
        keep = live[better]
        B[keep], obj[keep] = new[better], obj_new[better]
        moved = np.any(np.sort(idx_new[better], axis=1) != np.sort(idx[keep], axis=1), axis=1)
        idx[keep] = idx_new[better]
        live = keep[moved]
    return B, obj


def _elemental_start(A, y, order):
    """Exact fit through the rows ``order[:p]``; a singular subset is extended along ``order`` until rank p."""
    n, p = A.shape
    idx = order[:p]
    try:
        beta = np.linalg.solve(A[idx], y[idx])  # exactly singular raises; no rank test (an SVD) needed
        if np.all(np.isfinite(beta)):
            return beta
    except np.linalg.LinAlgError:
        pass
    for k in range(p + 1, n + 1):
        sub = A[order[:k]]
        if np.linalg.matrix_rank(sub) == p:
            return _lstsq(sub, y[order[:k]])
    raise AssertionError("unreachable: A has full column rank")


def _elemental_starts(A, y, rng, n_starts):
    """``n_starts`` random elemental starts: exact fits through p random rows, as a stack.

    Each start takes a random permutation of the rows (one draw of ``n``
    uniforms per start, all drawn at once) and fits its first ``p`` rows; a
    singular subset is extended along the same permutation
    (:func:`_elemental_start`).
    """
    n, p = A.shape
    orders = np.argsort(rng.random((n_starts, n)), axis=1)
    idx = orders[:, :p]
    try:
        starts = np.linalg.solve(A[idx], y[idx][:, :, None])[:, :, 0]
        if np.all(np.isfinite(starts)):
            return starts
    except np.linalg.LinAlgError:
        pass
    return np.array([_elemental_start(A, y, order) for order in orders])


def _lts_consistency(h: int, n: int) -> float:
    r"""Factor making the raw LTS scale consistent at the normal model.

    With :math:`q = \Phi^{-1}\left(\frac{h + n}{2n}\right)`,
    :math:`E[Z^2 \mid |Z| \le q] = 1 - \frac{2n}{h} q \varphi(q)`; the factor
    is its inverse square root (as in ``robustbase::ltsReg``).
    """
    if h >= n:
        return 1.0
    q = stats.norm.ppf((h + n) / (2.0 * n))
    return 1.0 / math.sqrt(1.0 - 2.0 * n / h * q * stats.norm.pdf(q))


# Small-sample correction of the raw LTS scale (Pison, Van Aelst & Willems,
# 2002), for a model with an intercept: the simulated factor is
# 1 / f(alpha, n) with f = 1 - exp(c0) / n**c1, fitted at alpha = 0.5 and
# alpha = 0.875 and interpolated linearly in alpha.  For d = 0 and d = 1 the
# (c0, c1) pairs are tabulated; for d > 1 they follow from the tabulated
# (a, b) at q = 3 and q = 5 through log(-a / d**b) = c0 - c1 log(q d**2).
# These are the constants of robustbase's LTScnp2().
_LTS_CNP2_D0 = {0.5: (0.262024211897096, 0.604756680630497), 0.875: (-0.351584646688712, 1.01646567502486)}
_LTS_CNP2_D1 = {0.5: (0.630869217886906, 0.650789250442946), 0.875: (0.565065391014791, 1.03044199012509)}
_LTS_CNP2_DK = {
    0.5: ((-0.746945886714663, 0.56264937192689, 3.0), (-0.535478048924724, 0.543323462033445, 5.0)),
    0.875: ((-0.458580153984614, 1.12236071104403, 3.0), (-0.267178168108996, 1.1022478781154, 5.0)),
}


def _lts_small_sample_factor(d: int, n: int, h: int) -> float:
    """Small-sample correction factor of the raw LTS scale (>= 1), intercept model with d slopes."""
    n2 = (n + d + 2) // 2
    # alpha such that robustbase's h.alpha.n(alpha, n, d + 1) == h: 0.5 at the default h, 1 at h = n.
    alpha = (h - 2 * n2 + n) / (2.0 * (n - n2)) if n > n2 else 1.0

    def f_at(level):
        if d == 0:
            c0, c1 = _LTS_CNP2_D0[level]
        elif d == 1:
            c0, c1 = _LTS_CNP2_D1[level]
        else:
            (a3, b3, q3), (a5, b5, q5) = _LTS_CNP2_DK[level]
            lhs = np.array([math.log(-a3 / d**b3), math.log(-a5 / d**b5)])
            design = np.array([[1.0, -math.log(q3 * d**2)], [1.0, -math.log(q5 * d**2)]])
            c0, c1 = np.linalg.solve(design, lhs)
        return 1.0 - math.exp(c0) / n**c1

    f500, f875 = f_at(0.5), f_at(0.875)
    if alpha <= 0.875:
        f = f500 + (f875 - f500) / 0.375 * (alpha - 0.5)
    else:
        f = f875 + (1.0 - f875) / 0.125 * (alpha - 0.875)
    if d == 0:
        # As in LTScnp2(): for the location model the tabulated f is square-rooted.
        f = math.sqrt(f)
    if not f > 0.0:
        raise ValueError(
            f"the small-sample correction is undefined for n={n}, d={d}, h={h} (too few samples); "
            "allowed: more samples, or small_sample_correction=False"
        )
    return 1.0 / f


def fast_lts(
    X,
    y,
    *,
    h: int | None = None,
    n_starts: int = 500,
    n_csteps_initial: int = 2,
    n_best: int = 10,
    random_state=0,
    reweight: bool = True,
    small_sample_correction: bool = True,
    max_csteps: int = 100,
) -> LTSResult:
    r"""Least trimmed squares regression by FAST-LTS, with reweighting.

    The LTS estimator minimises the sum of the ``h`` smallest squared
    residuals,

    .. math::

        \hat\beta_\mathrm{LTS} = \arg\min_\beta \sum_{i=1}^{h} (r^2)_{(i)}(\beta),

    and with the default ``h`` has breakdown point close to 50%: it resists
    any configuration of just under half of the points, leverage points
    included.  FAST-LTS (Rousseeuw & Van Driessen, 2006): ``n_starts``
    exact fits through ``p = d + 1`` random points (a singular subset is
    extended by random points until it has rank ``p``), ``n_csteps_initial``
    C-steps from each (all starts at once, as stacked arrays), then C-steps
    to convergence from the ``n_best`` best.
    (The nested subsampling the paper uses for ``n > 600`` is not needed at
    the sizes here; every start uses all points.)

    The raw scale is

    .. math::

        \hat\sigma_0 = k_{h,n} \sqrt{\frac1h \sum_{i=1}^{h} (r^2)_{(i)}},

    where :math:`k_{h,n}` is the product of the factor making it consistent
    at the normal model and, by default, the small-sample correction factor
    of Pison, Van Aelst & Willems (2002), both as in ``robustbase::ltsReg``.
    Reweighting, also as in ``robustbase::ltsReg``: least squares on the
    points with :math:`|r_i| / \hat\sigma_0 \le \Phi^{-1}(0.9875) =
    \sqrt{\chi^2_{1,0.975}} \approx 2.2414`.  With these choices the
    reweighted fit reproduces ``ltsReg``'s published coefficients on the
    classic data sets (the small-sample factor decides which points are
    reweighted on small samples such as ``stackloss``, n = 21).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,)
    h : int, optional
        Coverage, ``floor((n + p + 1) / 2) <= h <= n`` with ``p = d + 1``
        coefficients.  Default ``floor((n + p + 1) / 2)``, which gives the
        highest breakdown point (``robustbase``'s ``alpha = 1/2``).
    n_starts : int, default=500
        Number of random elemental starts.
    n_csteps_initial : int, default=2
        C-steps applied to every start.
    n_best : int, default=10
        Number of best starts iterated to convergence.
    random_state : int, numpy Generator or None, default=0
        Seed of the subset draws; a fixed seed gives identical results.
    reweight : bool, default=True
        Whether to return the reweighted fit as ``coef``.
    small_sample_correction : bool, default=True
        Whether to multiply the raw scale by the small-sample correction
        factor (``robustbase``'s ``use.correction``).
    max_csteps : int, default=100
        Safety limit on the C-steps from each of the ``n_best`` starts.

    Returns
    -------
    LTSResult

    References
    ----------
    P. J. Rousseeuw and K. Van Driessen, "Computing LTS regression for large
    data sets", Data Mining and Knowledge Discovery 12 (2006) 29-45.

    G. Pison, S. Van Aelst and G. Willems, "Small sample corrections for LTS
    and MCD", Metrika 55 (2002) 111-123.
    """
    A, y = _check_Xy(X, y)
    n, p = A.shape
    rank = np.linalg.matrix_rank(A)
    if rank < p:
        raise ValueError(f"[1, X] must have full column rank {p}; got rank {rank} (a constant or collinear column)")
    h_min = (n + p + 1) // 2
    if h is None:
        h = h_min
    if not isinstance(h, Integral) or isinstance(h, bool) or not h_min <= h <= n:
        raise ValueError(f"h={h!r} is invalid; allowed: an integer in [{h_min}, {n}] for n={n}, p={p}")
    h = int(h)
    n_starts = _check_int("n_starts", n_starts, 1)
    n_csteps_initial = _check_int("n_csteps_initial", n_csteps_initial, 0)
    n_best = _check_int("n_best", n_best, 1)
    max_csteps = _check_int("max_csteps", max_csteps, 1)
    if small_sample_correction:
        _lts_small_sample_factor(p - 1, n, h)  # fail before the search when undefined
    rng = np.random.default_rng(random_state)

    starts = _elemental_starts(A, y, rng, n_starts)
    # Starts in groups whose stacked h-subsets take about 32 MB at most.
    group = max(1, (1 << 22) // (n * p))
    steps = [_csteps_all(A, y, starts[k : k + group], h, n_csteps_initial) for k in range(0, n_starts, group)]
    betas, objs = np.concatenate([b for b, _ in steps]), np.concatenate([o for _, o in steps])
    # Stable sort on the criterion only: equal criteria keep their draw order.
    candidates = sorted(zip(objs.tolist(), betas, strict=True), key=lambda t: t[0])

    best = None
    for _, beta in candidates[:n_best]:
        beta, obj, idx = _csteps(A, y, beta, h, max_csteps)
        if best is None or obj < best[1]:
            best = (beta, obj, idx)
    beta, obj, idx = best
    raw_support = np.zeros(n, dtype=bool)
    raw_support[idx] = True
    raw_coef = _lstsq(A[raw_support], y[raw_support])
    resid = y - A @ raw_coef
    objective = float(np.sort(np.square(resid))[:h].sum())
    scale = math.sqrt(objective / h) * _lts_consistency(h, n)
    if small_sample_correction:
        scale *= _lts_small_sample_factor(p - 1, n, h)

    # An exact fit of h points: the scale is zero up to rounding.
    exact_tol = 1e-9 * max(float(np.std(y)), np.finfo(float).tiny)
    if scale <= exact_tol:
        scale = 0.0
        support = np.abs(resid) <= exact_tol
        coef = raw_coef
    else:
        support = np.abs(resid) / scale <= LTS_REWEIGHT_CUTOFF
        coef = _lstsq(A[support], y[support])
    if not reweight:
        coef, support = raw_coef, raw_support
    return LTSResult(
        coef=coef,
        raw_coef=raw_coef,
        scale=float(scale),
        support=support,
        raw_support=raw_support,
        objective=objective,
        h=h,
        n_starts=n_starts,
    )


# ---------------------------------------------------------------------------
# S-estimator
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SResult:
    """Result of :func:`s_estimator`.

    Attributes
    ----------
    coef : ndarray of shape (d + 1,)
        Intercept first: the fit with the smallest M-scale found.
    scale : float
        Its M-scale, :func:`mscale` of its residuals (the S-scale).
    n_starts : int
        Number of random elemental starts tried.
    """

    coef: np.ndarray
    scale: float
    n_starts: int


def _s_refine(A, y, beta, s, c, b, m, n_steps, tol):
    """IRLS steps of FAST-S from one candidate: :func:`_s_refine_all` for one row."""
    B, S = _s_refine_all(A, y, beta[None, :], np.array([s], dtype=float), c, b, m, n_steps, tol)
    return B[0], float(S[0])


def _s_refine_all(A, y, B, S, c, b, m, n_steps, tol):
    """IRLS steps of FAST-S from every row of ``B`` at once (scales ``S``): ``(coefficients, scales)``.

    A step is one M-scale iteration, then weighted least squares with the
    biweight weights :math:`(1 - (r / (c s))^2)_+^2`.  A candidate stops when
    its scale reaches 0 or its coefficients move less than ``tol`` (relative).
    """
    B, S = np.array(B, dtype=float), np.array(S, dtype=float)
    rho = TukeyBiweightLoss(c).normalised_rho
    live = np.flatnonzero(S > 0.0)
    n, p = A.shape
    # Every candidate's A^T W A and A^T W y as two matrix products: rows of A x A^T flattened, and of A y.
    outer, Ay = (A[:, :, None] * A[:, None, :]).reshape(n, p * p), A * y[:, None]
    for _ in range(n_steps):
        if not live.size:
            break
        a = np.abs(y[None, :] - B[live] @ A.T)  # (live, n)
        s = S[live] * np.sqrt(np.sum(rho(a / S[live, None]), axis=1) / (m * b))
        S[live] = s
        pos = s > 0.0
        live, a, s = live[pos], a[pos], s[pos]
        if not live.size:
            break
        w = TukeyBiweightLoss.unit_weights(np.square(a / (s[:, None] * c)))
        gram = (w @ outer).reshape(-1, p, p)
        try:
            new = np.linalg.solve(gram, (w @ Ay)[:, :, None])[:, :, 0]
            bad = ~np.all(np.isfinite(new), axis=1)
        except np.linalg.LinAlgError:  # a singular weighted design: each candidate on its own
            new = np.empty((live.size, B.shape[1]))
            bad = np.ones(live.size, dtype=bool)
        for k in np.flatnonzero(bad):
            sw = np.sqrt(w[k])
            new[k] = _lstsq(A * sw[:, None], y * sw)
        step = np.max(np.abs(new - B[live]), axis=1)
        B[live] = new
        moving = step > tol * np.maximum(1.0, np.max(np.abs(new), axis=1))
        live = live[moving]
    return B, S


def s_estimator(
    X,
    y,
    *,
    c: float = 1.5476,
    b: float = 0.5,
    n_starts: int = 500,
    n_refine_initial: int = 2,
    n_best: int = 5,
    random_state=0,
    ddof: int | None = None,
    max_refine: int = 500,
    tol: float = 1e-10,
) -> SResult:
    r"""S-estimator of regression (Tukey biweight) by FAST-S.

    The S-estimate minimises the M-scale of the residuals,

    .. math::

        \hat\beta_S = \arg\min_\beta s(\beta), \qquad
        \frac{1}{n - \mathrm{ddof}} \sum_i \rho_c\!\left(\frac{y_i - x_i^\top\beta}{s(\beta)}\right) = b,

    with the normalised biweight :math:`\rho_c` of :func:`mscale`; the
    defaults give 50% breakdown and a scale consistent at the normal model.
    :math:`s(\hat\beta_S)` is the scale an MM-estimator keeps fixed.

    FAST-S (Salibian-Barrera & Yohai, 2006): ``n_starts`` exact fits
    through ``p = d + 1`` random points (singular subsets extended as in
    :func:`fast_lts`), each improved by ``n_refine_initial`` IRLS steps
    (one step of the M-scale iteration, then weighted least squares with
    the biweight weights :math:`(1 - (r / (c s))^2)_+^2`); a candidate's
    M-scale is computed only when it beats the ``n_best``-th best scale so
    far; the ``n_best`` best are iterated to convergence and the one with
    the smallest M-scale is returned.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,)
    c : float, default=1.5476
        Biweight constant of the scale, ``c > 0``.
    b : float, default=0.5
        Right-hand side of the scale equation, ``0 < b < 1``.
    n_starts : int, default=500
    n_refine_initial : int, default=2
    n_best : int, default=5
    random_state : int, numpy Generator or None, default=0
        Seed of the subset draws; a fixed seed gives identical results.
    ddof : int, optional
        Subtracted from ``n`` in the scale equation.  Default ``p = d + 1``,
        the small-sample form of ``robustbase::lmrob`` (sum divided by
        :math:`n - p`).
    max_refine : int, default=500
        Limit on the IRLS steps from each of the ``n_best`` candidates.
    tol : float, default=1e-10
        Relative tolerance on the coefficients and on the scale.

    Returns
    -------
    SResult

    References
    ----------
    M. Salibian-Barrera and V. J. Yohai, "A fast algorithm for
    S-regression estimates", Journal of Computational and Graphical
    Statistics 15 (2006) 414-427.
    """
    A, y = _check_Xy(X, y)
    n, p = A.shape
    rank = np.linalg.matrix_rank(A)
    if rank < p:
        raise ValueError(f"[1, X] must have full column rank {p}; got rank {rank} (a constant or collinear column)")
    c = _check_real("c", c, 0.0, math.inf)
    b = _check_real("b", b, 0.0, 1.0)
    n_starts = _check_int("n_starts", n_starts, 1)
    n_refine_initial = _check_int("n_refine_initial", n_refine_initial, 0)
    n_best = _check_int("n_best", n_best, 1)
    max_refine = _check_int("max_refine", max_refine, 1)
    tol = _check_real("tol", tol, 0.0, math.inf)
    if ddof is None:
        ddof = p
    ddof = _check_int("ddof", ddof, 0)
    if ddof >= n:
        raise ValueError(f"ddof={ddof} is invalid; allowed: an integer in [0, {n - 1}] for n={n}")
    m = n - ddof
    rng = np.random.default_rng(random_state)

    def scales_of(B, S=None):
        return _mscale_rows(np.abs(y[None, :] - B @ A.T), c, b, m, tol, 200, S)

    # Every start and its first refinement steps as stacked arrays (the draws of one start after another).
    B = _elemental_starts(A, y, rng, n_starts)
    S = np.median(np.abs(y[None, :] - B @ A.T), axis=1) / _MAD_NORMAL
    zero = np.flatnonzero(S == 0.0)
    if zero.size:
        S[zero] = scales_of(B[zero])
        if np.any(S[zero] == 0.0):
            # An exact fit of more than a fraction 1 - b: the S-scale is 0.
            return SResult(coef=B[zero[np.argmax(S[zero] == 0.0)]], scale=0.0, n_starts=n_starts)
    B, S = _s_refine_all(A, y, B, S, c, b, m, n_refine_initial, tol)
    # The n_best candidates of smallest M-scale (ties: the earlier draw), iterated to convergence together.
    # The M-scale is computed for the n_best of smallest refined scale, whose largest M-scale is t, and
    # then only for the candidates that beat t: a candidate's M-scale is below t iff the scale
    # equation's left-hand side at t is below b.
    full = np.full(n_starts, np.inf)
    first = np.argsort(S, kind="stable")[:n_best]
    full[first] = scales_of(B[first], S[first])
    t = float(np.max(full[first]))
    if t > 0.0:
        rest = np.setdiff1d(np.arange(n_starts), first)
        lhs = np.sum(TukeyBiweightLoss(c).normalised_rho(np.abs(y[None, :] - B[rest] @ A.T) / t), axis=1) / m
        beating = rest[lhs < b]
        full[beating] = scales_of(B[beating], S[beating])
    best = np.lexsort((np.arange(n_starts), full))[:n_best]
    if full[best[0]] == 0.0:
        return SResult(coef=B[best[0]], scale=0.0, n_starts=n_starts)
    B, S = _s_refine_all(A, y, B[best], full[best], c, b, m, max_refine, tol)
    final = scales_of(B, S)
    j = int(np.argmin(final))
    result = (final[j], B[j])
    return SResult(coef=result[1], scale=float(result[0]), n_starts=n_starts)
