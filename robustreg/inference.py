r"""Inference for linear M-estimates: standard errors, confidence intervals, a summary table.

:class:`~robustreg.GDRegressor` sets, at the end of every fit, ``bse_``,
``cov_params_``, ``cov_type_``, ``inference_note_``, ``weights_`` (the final
IRLS weights, :func:`irls_weights`) and ``n_downweighted_`` from the
functions here, and offers ``conf_int()`` and ``summary()``.  Every
array is **intercept first** (``[intercept, coef_0, ..., coef_{d-1}]``); with
``fit_intercept=False`` the intercept's entries are NaN (it is not estimated).

Which covariance (``cov_type_``), by fit:

* ``"H1"`` -- every M-estimate with a smooth loss (Huber, Smooth L1,
  pseudo-Huber, Barron, and the redescending losses at a scale that is not
  an M-scale of the start): Huber's sandwich with the small-sample
  correction of statsmodels' ``RLM(...).fit(cov="H1")`` (its default),
  :func:`m_covariance`.  With the default MAD scale this is
  ``RLM(y, [1, X], M).fit(scale_est="mad").bse`` at the same fit.
* ``"avar1"`` -- the MM-estimator (a redescending loss with ``scale="s"``,
  the default: S-estimator start, its scale kept fixed; any loss with
  ``scale="s"``): ``robustbase::lmrob``'s default ``cov = ".vcov.avar1"``,
  :func:`mm_covariance`, with the S-scale's biweight :math:`\chi` and the
  start's residuals.
* ``"OLS"`` -- the L2 loss: :math:`\hat\sigma^2 (A^\top A)^{-1}`,
  :math:`\hat\sigma^2 = \sum r_i^2 / (n - p)`, as statsmodels' ``OLS``
  (:func:`ols_covariance`).
* ``"QuantReg"`` -- the L1 loss (LAD, the median regression): the kernel
  sparsity estimate of statsmodels' ``QuantReg(...).fit(q=0.5)`` (its
  defaults, Epanechnikov kernel, Hall-Sheather bandwidth;
  :func:`lad_covariance`).
* ``None`` -- not defined, NaN, with the reason in ``inference_note_``: a
  penalized fit (``penalty`` with ``alpha > 0``: a penalized estimate is
  biased and, with an L1 part, not a smooth function of the data, so no
  sandwich is its covariance), ``sample_weight`` (not implemented: statsmodels'
  RLM, the reference, has no weights), a diverged fit, at most ``p`` rows,
  a rank-deficient design, or a loss without :math:`\psi'`.

A fit without its certificate (``converged_=False``) still gets the numbers,
at its last iterate; ``summary()`` says that they are not certified.

Confidence intervals and p-values use the normal distribution, as
statsmodels' ``RLM`` does (``lmrob`` and ``OLS`` print t(n - p) p-values;
their standard errors are the ones here).

The sums over rows run block by block on the design in centred, scaled
coordinates (``[1, (X - mean) / sd]``), and the covariance is mapped back to
the original units: no copy of ``X`` is made, and the intercept's
covariance does not suffer from columns far from zero.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from . import robust_start
from .losses import L1Loss, L2Loss, Loss, SmoothL1Loss

__all__ = [
    "Inference",
    "InferenceSummary",
    "conf_int",
    "downweighted",
    "fit_inference",
    "irls_weights",
    "lad_covariance",
    "m_covariance",
    "mm_covariance",
    "ols_covariance",
    "summarize",
    "Undefined",
]

#: The S-scale's biweight constant and right-hand side, as robustreg's
#: :func:`~robustreg.robust_start.mscale` uses them (robustbase: 1.54764, 1/2).
S_CHI_C = float(inspect.signature(robust_start.mscale).parameters["c"].default)
S_CHI_B = float(inspect.signature(robust_start.mscale).parameters["b"].default)

#: Rows per block of the sums over rows (about 4 MiB of float64 per block at 100 columns).
_BLOCK_ELEMENTS = 1 << 19


class Undefined(ValueError):
    """The covariance is not defined for this fit; the message says why."""


# --------------------------------------------------------------------------- design
class _Design:
    r"""The design :math:`A = [1, X]` (intercept first) as :math:`Z = [1, (X - m) / s]`, by row blocks.

    :math:`A \beta = Z \theta` with :math:`\beta = M \theta`, so a covariance
    of :math:`\theta` maps to :math:`M C M^\top` in the original units.
    """

    def __init__(self, X, fit_intercept: bool):
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-d; got shape {X.shape}")
        self.X, (self.n, self.d) = X, X.shape
        self.fit_intercept = bool(fit_intercept)
        self.p = self.d + int(self.fit_intercept)
        self.rows = max(64, _BLOCK_ELEMENTS // max(1, self.d))
        # One pass, moments about the first row (any centre and scale make M exact;
        # these only condition the sums).
        shift = np.asarray(X[0], dtype=np.float64) if (self.fit_intercept and self.n) else np.zeros(self.d)
        s1, s2 = np.zeros(self.d), np.zeros(self.d)
        for a, b in self._spans():
            Xb = np.asarray(X[a:b], dtype=np.float64) - shift
            s1 += Xb.sum(axis=0)
            s2 += np.einsum("ij,ij->j", Xb, Xb)
        n = max(self.n, 1)
        if self.fit_intercept:
            mean = shift + s1 / n
            var = np.maximum(s2 / n - (s1 / n) ** 2, 0.0)
        else:
            mean, var = np.zeros(self.d), s2 / n
        sd = np.sqrt(var)
        sd[~(sd > 1e-12 * np.maximum(1.0, np.abs(mean))) | ~np.isfinite(sd)] = 1.0
        self.mean, self.sd = mean, sd
        M = np.zeros((self.p, self.p))
        k = int(self.fit_intercept)
        M[k:, k:] = np.diag(1.0 / sd)
        if self.fit_intercept:
            M[0, 0] = 1.0
            M[0, 1:] = -mean / sd
        self.M = M

    def _spans(self):
        for a in range(0, self.n, self.rows):
            yield a, min(a + self.rows, self.n)

    def blocks(self):
        """``(a, b, Z[a:b])`` in float64."""
        k = int(self.fit_intercept)
        for a, b in self._spans():
            Z = np.empty((b - a, self.p))
            if k:
                Z[:, 0] = 1.0
            Z[:, k:] = (np.asarray(self.X[a:b], dtype=np.float64) - self.mean) / self.sd
            yield a, b, Z

    def gram(self, h=None):
        r""":math:`Z^\top \operatorname{diag}(h) Z` (``h = 1`` by default)."""
        G = np.zeros((self.p, self.p))
        for a, b, Z in self.blocks():
            G += Z.T @ (Z if h is None else Z * h[a:b, None])
        return 0.5 * (G + G.T)

    def zt(self, v):
        r""":math:`Z^\top v`."""
        g = np.zeros(self.p)
        for a, b, Z in self.blocks():
            g += Z.T @ v[a:b]
        return g

    def residuals(self, y, coef, intercept=0.0):
        """``y - X coef - intercept`` in float64."""
        y = np.asarray(y, dtype=np.float64)
        coef = np.asarray(coef, dtype=np.float64)
        r = np.empty(self.n)
        for a, b in self._spans():
            r[a:b] = y[a:b] - np.asarray(self.X[a:b], dtype=np.float64) @ coef - intercept
        return r

    def to_original(self, C):
        """A covariance in the coordinates of ``Z`` mapped to the original units, intercept first."""
        out = self.M @ C @ self.M.T
        return 0.5 * (out + out.T)


def _inverse_spd(G, what="the design's Gram matrix A'A"):
    """Inverse of a symmetric positive definite matrix; :class:`Undefined` when it is (nearly) singular."""
    lam, V = np.linalg.eigh(G)
    if not (lam.size and np.all(np.isfinite(lam)) and lam[0] > 1e-12 * lam[-1] > 0):
        raise Undefined(f"{what} is singular (rank-deficient or constant columns)")
    return (V / lam) @ V.T


def _inverse(G, what):
    """Inverse of a symmetric matrix that need not be definite (X'WX with psi' < 0 somewhere)."""
    if not np.all(np.isfinite(G)) or np.linalg.cond(G) > 1e12:
        raise Undefined(f"{what} is singular or nearly so")
    inv = np.linalg.inv(G)
    return 0.5 * (inv + inv.T)


def _as_design(X, fit_intercept):
    return X if isinstance(X, _Design) else _Design(X, fit_intercept)


def _check_rows(D, r):
    r = np.asarray(r, dtype=np.float64).reshape(-1)
    if r.shape != (D.n,):
        raise ValueError(f"residuals have {r.size} values; expected {D.n}")
    if D.n <= D.p:
        raise Undefined(f"{D.n} rows for {D.p} coefficients: no residual degrees of freedom")
    return r


def _psi_parts(loss: Loss, u):
    try:
        psi = np.asarray(loss.psi(u), dtype=np.float64)
        dpsi = np.asarray(loss.psi_deriv(u), dtype=np.float64)
    except NotImplementedError as exc:
        raise Undefined(f"the loss has no psi' ({exc})") from None
    if not (np.all(np.isfinite(psi)) and np.all(np.isfinite(dpsi))):
        raise Undefined("psi or psi' is not finite at the fit's scaled residuals")
    return psi, dpsi


# ---------------------------------------------------------------- covariances
def m_covariance(X, resid, scale, loss: Loss, *, fit_intercept=True, cov="H1", kappa_ddof=0):
    r"""Huber's sandwich covariance of an M-estimate, as statsmodels' ``RLMResults.bcov_scaled``.

    With :math:`u_i = r_i / s`, :math:`m = \operatorname{mean}_i \psi'(u_i)`,
    :math:`K = 1 + \frac{p}{n}\,\operatorname{var}_i \psi'(u_i) / m^2` and
    :math:`A = [1, X]` (``p`` columns):

    * ``"H1"`` (statsmodels' default): :math:`K^2\, \frac{\sum_i \psi(u_i)^2/(n-p)\; s^2}{m^2}\, (A^\top A)^{-1}`;
    * ``"H2"``: :math:`K\, \frac{\sum_i \psi(u_i)^2/(n-p)\; s^2}{m}\, W^{-1}`, :math:`W = A^\top \operatorname{diag}(\psi'(u)) A`;
    * ``"H3"``: :math:`K^{-1}\, \sum_i \psi(u_i)^2/(n-p)\; s^2\, W^{-1} A^\top A\, W^{-1}`.

    These are statsmodels' formulas (``robust_linear_model.py``; its
    ``(df_model + 1) / nobs`` is ``p / n``, with or without a constant, and
    ``df_resid = n - p``).  The scale is treated as known.  ``kappa_ddof=1``
    takes the variance of :math:`\psi'` with ``n - 1``, as R's
    ``MASS:::summary.rlm`` does (R's ``var``); its standard errors are
    then :math:`K\sqrt{S}/m` times the root diagonal of
    :math:`(A^\top A)^{-1}` with the same :math:`S`: H1 with R's :math:`K`.

    Parameters
    ----------
    X : array of shape (n, d)
        The features (without a constant column when ``fit_intercept``).
    resid : array of shape (n,)
        ``y - X coef - intercept`` at the fit.
    scale : float
        The scale the loss was applied with.
    loss : Loss
    fit_intercept : bool, default=True
    cov : {"H1", "H2", "H3"}, default="H1"
    kappa_ddof : {0, 1}, default=0

    Returns
    -------
    ndarray of shape (p, p)
        Intercept first when ``fit_intercept``.

    Raises
    ------
    Undefined
        No residual degrees of freedom, a singular design, a loss without
        :math:`\psi'`, or :math:`m \le 0`.
    """
    cov = str(cov).upper()
    if cov not in ("H1", "H2", "H3"):
        raise ValueError(f"cov={cov!r} is invalid; allowed: 'H1', 'H2', 'H3'")
    D = _as_design(X, fit_intercept)
    r = _check_rows(D, resid)
    s = float(scale)
    if not (s > 0 and math.isfinite(s)):
        raise Undefined(f"the scale {s!r} is not positive")
    n, p = D.n, D.p
    psi, dpsi = _psi_parts(loss, r / s)
    m = float(np.mean(dpsi))
    if not m > 0:
        raise Undefined(f"mean psi'(r/scale) at the fit is {m:.3g}, not positive")
    k = 1.0 + p / n * float(np.var(dpsi, ddof=kappa_ddof)) / m**2
    spsi = float(np.sum(psi**2)) / (n - p) * s**2
    G = D.gram()
    if cov == "H1":
        C = k**2 * spsi / m**2 * _inverse_spd(G)
    else:
        W_inv = _inverse(D.gram(dpsi), "A' diag(psi') A")
        if cov == "H2":
            C = k * spsi / m * W_inv
        else:
            C = spsi / k * (W_inv @ G @ W_inv)
    return D.to_original(C)


def ols_covariance(X, resid, *, fit_intercept=True):
    r"""Least squares' covariance :math:`\hat\sigma^2 (A^\top A)^{-1}`, :math:`\hat\sigma^2 = \sum_i r_i^2/(n-p)`.

    statsmodels' ``OLS(y, [1, X]).fit().cov_params()`` at the same fit.
    """
    D = _as_design(X, fit_intercept)
    r = _check_rows(D, resid)
    s2 = float(r @ r) / (D.n - D.p)
    return D.to_original(s2 * _inverse_spd(D.gram()))


def lad_covariance(X, resid, y, *, fit_intercept=True):
    r"""Least absolute deviations (the median regression): statsmodels' ``QuantReg(y, [1, X]).fit(q=0.5)`` covariance.

    Its defaults, ``vcov="robust"``, ``kernel="epa"``,
    ``bandwidth="hsheather"``; at ``q = 1/2`` the robust and the iid forms
    coincide: :math:`\frac{1}{4 \hat f(0)^2} (A^\top A)^{-1}`, with the
    density of the errors at zero
    :math:`\hat f(0) = \frac{1}{n h} \sum_i K(r_i / h)`, Epanechnikov
    :math:`K(u) = \frac34 (1 - u^2)_+`, and
    :math:`h = \min(\operatorname{sd}(y), \operatorname{IQR}(r)/1.34)\,
    (\Phi^{-1}(\frac12 + h_n) - \Phi^{-1}(\frac12 - h_n))`, the Hall-Sheather
    :math:`h_n = n^{-1/3} z_{0.975}^{2/3} (1.5\, \phi(0)^2)^{1/3}` (statsmodels
    uses the standard deviation of ``y``, with ``n`` in the denominator).
    """
    D = _as_design(X, fit_intercept)
    r = _check_rows(D, resid)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    n = D.n
    q = 0.5
    hs = n ** (-1.0 / 3) * stats.norm.ppf(0.975) ** (2.0 / 3) * (1.5 * stats.norm.pdf(0.0) ** 2) ** (1.0 / 3)
    if not q + hs < 1.0:
        raise Undefined(f"Hall-Sheather bandwidth {hs:.3g} is too wide for {n} rows")
    iqr = float(np.percentile(r, 75) - np.percentile(r, 25))
    h = min(float(np.std(y)), iqr / 1.34) * (stats.norm.ppf(q + hs) - stats.norm.ppf(q - hs))
    if not h > 0:
        raise Undefined("the kernel bandwidth is 0 (constant y or more than half of the residuals equal)")
    u = r / h
    fhat = float(np.sum(0.75 * (1.0 - u**2) * (np.abs(u) <= 1.0))) / (n * h)
    if not fhat > 0:
        raise Undefined("the kernel density of the residuals at 0 is 0")
    return D.to_original((q / fhat) ** 2 * _inverse_spd(D.gram()))


def _chi(u, c):
    """The S-scale's biweight rho, normalised to a maximum of 1 (robustbase's ``Mchi``)."""
    inside = 1.0 - np.minimum(np.square(u / c), 1.0)
    return 1.0 - inside**3


def _chi_deriv(u, c):
    inside = 1.0 - np.minimum(np.square(u / c), 1.0)
    return 6.0 * u / c**2 * inside**2


def _posdefify(C):
    """robustbase's fix of ``.vcov.avar1`` (``posdef.meth="posdefify"``): negative eigenvalues to 0, diagonal kept."""
    lam, Q = np.linalg.eigh(C)
    neg = lam < 0
    if not np.any(neg):
        return C, 0
    diag = np.diag(C).copy()
    lam = np.where(neg, 0.0, lam)
    out = (Q * lam) @ Q.T
    with np.errstate(divide="ignore", invalid="ignore"):
        D = np.sqrt(np.maximum(diag, 0.0) / np.diag(out))
    D[~np.isfinite(D)] = 0.0
    return D[:, None] * out * D[None, :], int(np.sum(neg))


def mm_covariance(X, resid, start_resid, scale, loss: Loss, *, fit_intercept=True, c_chi=S_CHI_C, bb=0.5):
    r"""Covariance of an MM-estimate: ``robustbase::lmrob``'s default ``vcov`` (``cov = ".vcov.avar1"``).

    The final M-step with :math:`\psi` (the loss) at the scale :math:`s`
    kept fixed, that scale an M-scale of the start's residuals
    :math:`r^0` with the biweight :math:`\chi` of constant ``c_chi``
    normalised to :math:`\chi(\infty) = 1` (the S-scale).  With
    :math:`u = r/s`, :math:`u^0 = r^0/s`, :math:`A = [1, X]`:

    .. math::

        \mathbf{A} = s\, (A^\top \operatorname{diag}(\psi'(u)) A)^{-1}, \qquad
        a = \mathbf{A}\, A^\top(\psi'(u) \odot u) \,/\, \operatorname{mean}(\chi'(u^0) \odot u^0),

        V = \tfrac1n\Big(n\,\mathbf{A} A^\top \operatorname{diag}(\psi(u)^2) A\, \mathbf{A}
            - a\, g^\top \mathbf{A} - \mathbf{A}\, g\, a^\top
            + \operatorname{mean}(\chi(u^0)^2 - b^2)\, a a^\top\Big), \quad
        g = A^\top (\psi(u) \odot \chi(u^0)),

    with ``b = bb = 1/2`` as in robustbase (whatever the scale equation's
    right-hand side), then robustbase's ``posdefify`` when :math:`V` has a
    negative eigenvalue.  This is the code of ``.vcov.avar1`` in
    robustbase 0.99-6 (``R/lmrob.MM.R``; unchanged since 0.92): the
    asymptotic covariance of Croux, Dhaene & Hoorelbeke (2003), in which
    the S-scale's own variability enters through ``a``.  It is not the
    ``.vcov.w`` form (a Huber sandwich at the scale, with corrections),
    which lmrob uses for other estimators and for ``setting="KS2014"``.

    With lmrob's constants (``loss = TukeyBiweightLoss(c=4.685061)``,
    ``c_chi = 1.54764``) at lmrob's fit, the standard errors are lmrob's
    printed ones (``tests/test_inference.py``).  robustreg's defaults are
    ``c = 4.685`` and ``c_chi = 1.5476``: its MM fit and these errors
    differ from lmrob's by about 1e-5 relative.

    Parameters
    ----------
    X : array of shape (n, d)
    resid : array of shape (n,)
        Residuals of the MM fit.
    start_resid : array of shape (n,)
        Residuals of the start whose M-scale is ``scale`` (the S-estimate).
    scale : float
    loss : Loss
        The M-step's loss (for lmrob's MM, Tukey's biweight).
    fit_intercept : bool, default=True
    c_chi : float, default=S_CHI_C
        The S-scale's biweight constant (robustreg's 1.5476; robustbase's 1.54764).
    bb : float, default=0.5
    """
    D = _as_design(X, fit_intercept)
    r = _check_rows(D, resid)
    r0 = _check_rows(D, start_resid)
    s = float(scale)
    if not (s > 0 and math.isfinite(s)):
        raise Undefined(f"the scale {s!r} is not positive")
    n = D.n
    u, u0 = r / s, r0 / s
    psi, dpsi = _psi_parts(loss, u)
    den = float(np.mean(_chi_deriv(u0, c_chi) * u0))
    if not den > 0:
        raise Undefined("mean chi'(r0/s) r0/s is not positive (an exact fit of the start)")
    Am = _inverse(D.gram(dpsi), "A' diag(psi') A") * s
    a = Am @ D.zt(dpsi * u) / den
    chi0 = _chi(u0, c_chi)
    g = D.zt(psi * chi0)
    u1 = Am @ D.gram(psi**2) @ (n * Am)
    u2 = np.outer(a, g) @ Am
    u3 = Am @ np.outer(g, a)
    u4 = float(np.mean(chi0**2 - bb**2)) * np.outer(a, a)
    V = D.to_original((u1 - u2 - u3 + u4) / n)
    return _posdefify(V)[0]


# ------------------------------------------------------------ weights, intervals
def _is_lad(loss: Loss) -> bool:
    """L1, or Smooth L1 with ``beta = 0`` (the same loss): weights ``1/|u|``, infinite at 0."""
    return isinstance(loss, L1Loss) or (isinstance(loss, SmoothL1Loss) and loss.beta == 0)


def _weight_at_zero(loss: Loss) -> float | None:
    """``loss.weights(0)``, or None when it is not a finite positive number (L1: infinite)."""
    try:
        w0 = float(np.asarray(loss.weights(np.zeros(1)), dtype=np.float64)[0])
    except NotImplementedError:
        return None
    return w0 if (w0 > 0 and math.isfinite(w0)) else None


def irls_weights(resid, scale, loss: Loss) -> np.ndarray:
    r"""The IRLS weights :math:`\psi(u)/u`, :math:`u = r / s`, as statsmodels' ``RLMResults.weights``.

    ``loss.weights(u)`` divided by its value at :math:`u = 0`, so that 1 is
    full weight and a row is down-weighted when its weight is below 1.
    statsmodels' norms (and robustreg's Huber, pseudo-Huber and the
    redescending losses) are scaled so that :math:`\psi'(0) = 1`: for them
    this is :math:`\psi(u)/u` itself, for example
    :math:`\min(1, \delta/|u|)` for Huber and :math:`(1 - (u/c)^2)_+^2` for
    Tukey.  L2 (:math:`\psi = 2u`, ``weights`` 2) gives 1 for every row,
    statsmodels' ``LeastSquares``; Smooth L1 (``weights(0) = 1/beta``) gives
    Huber's :math:`\min(1, \beta/|u|)`; Barron is divided by its
    :math:`1/c^2`.

    L1 (and Smooth L1 with ``beta = 0``) has no finite weight at zero to
    divide by, and statsmodels' RLM has no L1 norm: its weights are
    ``loss.weights(u)`` as they are, :math:`1/|u|` with ``inf`` where
    :math:`u = 0` and very large where rounding leaves a residual of an
    interpolated row at about 1e-14 (LAD's IRLS weights; for L1,
    ``scale = 1`` and they are in the units of ``1/y``).  A loss whose weight at zero is not a finite
    positive number otherwise gets NaN.

    Parameters
    ----------
    resid : array of shape (n,)
        Residuals ``y - X coef - intercept``.
    scale : float
        The scale the loss was applied with (1 for a scale-free loss).
    loss : Loss

    Returns
    -------
    ndarray of shape (n,)
    """
    u = np.asarray(resid, dtype=np.float64).reshape(-1) / float(scale)
    w = np.asarray(loss.weights(u), dtype=np.float64)
    if _is_lad(loss):
        return w
    w0 = _weight_at_zero(loss)
    if w0 is None:
        return np.full(u.shape, np.nan)
    return w / w0


def _count_downweighted(weights, loss: Loss):
    """``(down-weighted, rejected)`` counts of :func:`irls_weights`' output; ``(None, None)`` for L1."""
    if _is_lad(loss) or _weight_at_zero(loss) is None:
        return None, None
    return int(np.sum(weights < 1.0 - 1e-12)), int(np.sum(weights <= 0.0))


def downweighted(resid, scale, loss: Loss):
    """``(down-weighted, rejected)`` row counts: IRLS weight ``weights(r/scale)`` below its value at 0, and equal to 0.

    The weights are :func:`irls_weights` (relative to the weight at zero
    residual, which is 1 for every registered loss but L2, 2 and constant:
    no row is down-weighted, and Barron, :math:`1/c^2`).  Returns
    ``(None, None)`` for L1, whose weights :math:`1/|r|` have no scale.
    """
    return _count_downweighted(irls_weights(resid, scale, loss), loss)


def conf_int(params, bse, alpha=0.05):
    """Normal intervals ``params -+ z_{1 - alpha/2} bse``, as statsmodels' RLM; shape ``(len(params), 2)``."""
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha!r} is invalid; allowed: a real number in (0, 1)")
    params = np.asarray(params, dtype=np.float64)
    half = stats.norm.ppf(1.0 - alpha / 2.0) * np.asarray(bse, dtype=np.float64)
    return np.column_stack([params - half, params + half])


# -------------------------------------------------------------- the estimator's
_DESCRIPTIONS = {
    "H1": "Huber sandwich H1 (statsmodels RLM's default)",
    "avar1": "MM asymptotic covariance (robustbase lmrob's .vcov.avar1)",
    "OLS": "least squares, sigma^2 (A'A)^-1 (statsmodels OLS)",
    "QuantReg": "LAD kernel sparsity (statsmodels QuantReg, epa, Hall-Sheather)",
}


@dataclass
class Inference:
    """What a fit's inference holds: covariance, standard errors, why not, and the weights' counts."""

    cov: np.ndarray
    bse: np.ndarray
    cov_type: str | None
    note: str
    n_obs: int
    n_downweighted: int | None
    n_rejected: int | None
    scale_kind: str
    resid_se: float | None = None
    #: The final IRLS weights per training row (:func:`irls_weights`); NaN for a diverged fit.
    weights: np.ndarray | None = None


def _scale_kind(loss, scale):
    if not loss.scale_dependent:
        return "none (scale-free loss)"
    if isinstance(scale, str):
        return {"mad": "MAD of the residuals at the fit, RLM's fixed point",
                "s": "M-scale of the start's residuals, kept fixed; the S-scale for MM"}[scale]
    return "fixed" if scale is not None else "fixed at 1"


def fit_inference(est, X, y, sample_weight, loss: Loss, scale, start_resid) -> Inference:
    """The inference of a fitted :class:`~robustreg.GDRegressor` (called at the end of its ``fit``).

    ``scale`` is the resolved setting (``"mad"``, ``"s"``, a float or None)
    and ``start_resid`` the residuals of the start (used by the MM covariance).
    Never raises for a fit that is merely unusual: the reason goes to ``note``.
    """
    n, d = X.shape
    p = d + int(est.fit_intercept)
    nan_cov = np.full((d + 1, d + 1), np.nan)
    coef = np.asarray(est.coef_, dtype=np.float64)
    intercept = float(est.intercept_)
    kind = _scale_kind(loss, scale)
    finite = bool(np.all(np.isfinite(coef)) and math.isfinite(intercept))
    with np.errstate(all="ignore"):
        D = _Design(X, est.fit_intercept)
        r = D.residuals(y, coef, intercept) if finite else None
        sigma = float(est.scale_) if loss.scale_dependent else 1.0
        n_down = n_rej = None
        weights = np.full(n, np.nan)
        if r is not None and sigma > 0:
            try:
                w = irls_weights(r, sigma, loss)
            except NotImplementedError:  # a user's loss without psi'
                w = None
            if w is not None:
                n_down, n_rej = _count_downweighted(w, loss)
                if not est.diverged_:
                    weights = w
        resid_se = float(np.sqrt(r @ r / (n - p))) if (r is not None and n > p and isinstance(loss, L2Loss)) else None

        def undefined(why):
            return Inference(nan_cov, np.full(d + 1, np.nan), None, why, n, n_down, n_rej, kind, resid_se, weights)

        if est.diverged_ or not finite:
            return undefined("the fit diverged: no covariance at a diverged iterate")
        l1, l2 = est._penalty_parts()
        if l1 or l2:
            return undefined(f"penalized fit (penalty={est.penalty!r}, alpha={est.alpha:g}): a penalized "
                             "estimate is biased and, with an L1 part, not smooth in the data; no sandwich applies")
        if sample_weight is not None:
            return undefined("sample_weight given: standard errors of weighted fits are not implemented "
                             "(statsmodels' RLM, the reference, has no weights)")
        try:
            if isinstance(loss, L2Loss):
                cov_type, C = "OLS", ols_covariance(D, r)
            elif _is_lad(loss):
                cov_type, C = "QuantReg", lad_covariance(D, r, y)
            elif loss.scale_dependent and scale == "s":
                if start_resid is None:
                    raise Undefined("the start's residuals are not known")
                cov_type, C = "avar1", mm_covariance(D, r, start_resid, sigma, loss)
            else:
                cov_type, C = "H1", m_covariance(D, r, sigma, loss)
        except (Undefined, np.linalg.LinAlgError) as exc:
            return undefined(str(exc))
        if not np.all(np.isfinite(C)):
            return undefined(f"the {cov_type} covariance is not finite at this fit")
    full = nan_cov.copy()
    k = 1 - int(est.fit_intercept)  # the intercept's row is NaN when it is not estimated
    full[k:, k:] = C
    with np.errstate(invalid="ignore"):
        bse = np.sqrt(np.diag(full))
    note = "" if est.converged_ else "not certified: the fit did not reach its minimizer (converged_=False)"
    return Inference(full, bse, cov_type, note, n, n_down, n_rej, kind, resid_se, weights)


class InferenceSummary:
    """The result of ``GDRegressor.summary()``: a coefficient table and a few lines about the fit.

    As statsmodels' ``results.summary()``, it prints as text (``print(s)``,
    ``s.as_text()``) and shows as HTML in a notebook; ``s.table`` is the
    pandas DataFrame (columns ``term, coef, std_err, z, p_value, ci_low,
    ci_high``, intercept first), ``s.info`` a dict of the header's values
    (``loss``, ``cov_type``, ``scale``, ``scale_kind``, ``n_obs``,
    ``n_downweighted``, ``n_rejected``, ``certified``, ``note``, ``alpha``).
    """

    def __init__(self, table: pd.DataFrame, info: dict):
        self.table = table
        self.info = info

    def _header(self):
        i = self.info
        lines = [f"GDRegressor: loss={i['loss']}, solver={i['solver']!r}"]
        cov = i["cov_type"]
        lines.append(f"Covariance: {cov} -- {_DESCRIPTIONS[cov]}" if cov else f"Covariance: not defined ({i['note']})")
        if i["scale_kind"].startswith("none"):
            scale = "none (scale-free loss)"
            if i.get("resid_se") is not None:
                scale += f"; residual standard error {i['resid_se']:.6g}"
        else:
            scale = f"{i['scale']:.6g} ({i['scale_kind']})"
        lines.append(f"Scale: {scale}")
        if i["n_downweighted"] is None:
            dw = "not applicable (L1 weights 1/|r| have no scale)"
        else:
            dw = f"{i['n_downweighted']} of {i['n_obs']} rows (weight below its value at 0)"
            if i["n_rejected"]:
                dw += f", {i['n_rejected']} rejected (weight 0)"
        lines.append(f"Down-weighted: {dw}")
        if i["certified"]:
            lines.append("Certified: yes (converged_=True)")
        else:
            lines.append("Certified: NO -- the fit did not reach its minimizer (converged_=False); "
                         "the numbers are at its last iterate")
        return lines

    def as_text(self) -> str:
        level = 100 * (1 - self.info["alpha"])
        table = self.table.to_string(index=False, float_format=lambda v: f"{v:.6g}", na_rep="nan")
        width = max(len(line) for line in table.splitlines())
        footer = f"z and p-values from the normal distribution (as statsmodels RLM); {level:g}% intervals."
        return "\n".join([*self._header(), "=" * width, table, "=" * width, footer])

    def as_html(self) -> str:
        import html

        head = "<br>".join(html.escape(line) for line in self._header())
        return f"<p>{head}</p>" + self.table.to_html(index=False, float_format=lambda v: f"{v:.6g}", na_rep="nan")

    _repr_html_ = as_html

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()


def summarize(est, alpha=0.05) -> InferenceSummary:
    """The :class:`InferenceSummary` of a fitted :class:`~robustreg.GDRegressor`."""
    inf: Inference = est._inference
    params = np.r_[est.intercept_ if est.fit_intercept else np.nan, np.asarray(est.coef_, dtype=float)]
    bse = inf.bse
    with np.errstate(divide="ignore", invalid="ignore"):
        z = params / bse
        pvalue = 2.0 * stats.norm.sf(np.abs(z))
    ci = conf_int(params, bse, alpha)
    names = getattr(est, "feature_names_in_", None)
    names = [str(v) for v in names] if names is not None else [f"x{j}" for j in range(len(params) - 1)]
    table = pd.DataFrame({
        "term": ["intercept", *names],
        "coef": params, "std_err": bse, "z": z, "p_value": pvalue, "ci_low": ci[:, 0], "ci_high": ci[:, 1],
    })
    if not est.fit_intercept:
        table = table.iloc[1:].reset_index(drop=True)
    info = {
        "loss": repr(est.loss) if isinstance(est.loss, Loss) else str(est.loss),
        "solver": est.solver,
        "cov_type": inf.cov_type,
        "scale": float(est.scale_),
        "scale_kind": inf.scale_kind,
        "resid_se": inf.resid_se,
        "n_obs": inf.n_obs,
        "n_downweighted": inf.n_downweighted,
        "n_rejected": inf.n_rejected,
        "certified": bool(est.converged_),
        "note": inf.note,
        "alpha": float(alpha),
    }
    return InferenceSummary(table, info)
