r"""``GDRegressor``: a linear model fitted by gradient descent on a robust loss.

Scale.  A loss with a tuning constant (Huber's ``delta``, Tukey's ``c``...)
is in units of the error scale: the estimator applies it to
:math:`r / \sigma`.  The ``scale_dependent`` flag of each loss says so:

* scale-free (``scale`` is ignored): ``l1``, ``l2``;
* scale-dependent: ``smooth_l1``, ``huber``, ``pseudo_huber`` (convex),
  ``barron`` (convex for ``alpha >= 1``), and the redescending ``tukey``,
  ``welsch``, ``cauchy``, ``geman_mcclure`` (and ``barron`` with ``alpha < 1``).

Starts.  A convex loss has one minimum, reached from any start.  A
redescending loss is non-convex: gradient descent stops at the local minimum
nearest its start, and from least squares or L1 that minimum still fits the
bad leverage points.  The MM recipe (Yohai, 1987) is a high-breakdown start
(``init="lts"`` or ``init="s"``), a 50%-breakdown scale of its residuals
(``scale="s"``) kept fixed, then the redescending M-step; with the Tukey
biweight (``c = 4.685``) it reproduces ``robustbase::lmrob`` on the classic
data sets, for example::

    GDRegressor("tukey", init="s", scale="s", standardize=True, max_iter=5000)

(standardized features make the small, badly conditioned classic designs
converge in hundreds rather than hundreds of thousands of steps).
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController

from ._gd import Design, GramKernel, RowKernel, soft_threshold
from .losses import LOSSES, L2Loss, Loss, get_loss

__all__ = ["GDRegressor"]

_BLAS = None


def _blas_controller() -> ThreadpoolController:
    # Made once: inspecting the loaded libraries costs milliseconds per call.
    global _BLAS
    if _BLAS is None:
        _BLAS = ThreadpoolController()
    return _BLAS


#: The objective must not grow beyond this factor of its starting value.
DIVERGENCE_FACTOR = 1e10
_INITS = ("zeros", "lstsq", "l1", "lts", "s")


def _weighted_median(values, weights=None):
    """Median with weights, equal to ``np.median`` of the rows repeated ``weights`` times."""
    order = np.argsort(values, kind="stable")
    v = values[order]
    cum = np.cumsum(np.ones(len(v)) if weights is None else weights[order])
    half = cum[-1] / 2.0
    lower = v[np.searchsorted(cum, half, side="left")]
    upper = v[min(np.searchsorted(cum, half, side="right"), len(v) - 1)]
    return float(0.5 * (lower + upper))


class GDRegressor(RegressorMixin, BaseEstimator):
    r"""Linear regression by (proximal, momentum, mini-batch) gradient descent on a robust loss.

    Minimizes

    .. math::

        \frac{\sum_i v_i\, \rho\big((y_i - x_i^\top w - b)/\sigma\big)}{\sum_i v_i}
        + \alpha\Big(\lambda \lVert w\rVert_1 + \tfrac{1-\lambda}{2}\lVert w\rVert_2^2\Big)

    over ``w`` and ``b``, with ``rho`` the loss, ``v`` the sample weights,
    ``sigma`` the residual scale (1 unless ``scale`` is set and the loss is
    scale dependent) and ``lambda = l1_ratio``.  With ``standardize=True``
    the optimizer (and the penalty) works on standardized features; ``coef_``
    and ``intercept_`` are always reported in the original units.

    Parameters
    ----------
    loss : str or Loss, default="l2"
        A name in :data:`robustreg.losses.LOSSES` or a :class:`~robustreg.losses.Loss`.
    learning_rate : {"auto", "constant", "invscaling"}, default="auto"
        Step-size rule, with ``L`` the largest eigenvalue of
        :math:`Z^\top V Z / \sum v` for the design ``Z`` the optimizer sees
        (intercept column included) and ``t`` the iteration (from 0):

        * ``"auto"``, smooth loss: :math:`\eta = \eta_0 \sigma^2 / (\kappa L + \alpha(1-\lambda))`
          with :math:`\kappa` the loss's ``curvature_bound``
          (:math:`\sup \rho''`, so that the gradient is
          :math:`(\kappa L / \sigma^2)`-Lipschitz and :math:`\eta_0 = 1` is
          the classic step :math:`1/\text{Lipschitz}`);
        * ``"auto"``, non-smooth loss (L1, Smooth L1 with ``beta=0``): the
          diminishing subgradient step :math:`\eta_t = \eta_0\, s_0 / (L \sqrt{t+1})`,
          with :math:`s_0` the median absolute residual of the starting fit
          (the step a Huber surrogate of width :math:`s_0` would take); the
          best iterate is returned;
        * ``"auto"``, smooth loss with unbounded curvature
          (``curvature_bound = inf``: Barron with ``alpha > 2``): treated as a
          non-smooth loss (diminishing step, best iterate, second stopping
          rule), with :math:`\eta_t = \eta_0 \sigma^2 / ((\kappa_0 L + \alpha(1-\lambda)) \sqrt{t+1})`,
          :math:`\kappa_0 = \max_i \rho''(r_i^{(0)}/\sigma)` the largest
          curvature on the starting residuals;
        * ``"constant"``: :math:`\eta_t = \eta_0`;
        * ``"invscaling"``: :math:`\eta_t = \eta_0 / (t+1)^{p}`, ``p = power_t``.
    eta0 : float, default=1.0
        Step for ``"constant"`` and ``"invscaling"``; a multiplier of the
        automatic step for ``"auto"``.
    power_t : float, default=0.25
        Exponent of ``"invscaling"``.
    momentum : float in [0, 1), default=0.0
        Heavy-ball momentum; 0 is plain gradient descent.
    nesterov : bool, default=False
        Evaluate the gradient at the extrapolated point (Nesterov).
    batch_size : int or None, default=None
        ``None`` is full-batch gradient descent.  An int runs mini-batch SGD
        with rows shuffled every epoch from ``random_state``; an iteration is
        then one epoch, and the history records the full objective at its start.
    max_iter : int, default=1000
        Maximum number of iterations (epochs for mini-batches).
    tol : float, default=1e-6
        Stopping rule.  Smooth loss, full batch: stop when the norm of the
        gradient mapping :math:`\lVert\theta - \mathrm{prox}(\theta - \eta\nabla F)\rVert/\eta`
        (the gradient without an L1 penalty) falls below ``tol`` times the
        larger of its norms at the start and at zero coefficients (so that a
        start close to the optimum, such as a robust start, does not make
        the rule stricter).  Otherwise (non-smooth loss, or mini-batches):
        stop when the best objective has not decreased by more than
        ``tol * |best|`` during ``n_iter_no_change`` iterations.
    n_iter_no_change : int, default=100
        Window of the second stopping rule.  Subgradient steps on L1 improve
        the objective slowly while the coefficients still move on its flat
        optimum: a short window stops them early.
    fit_intercept : bool, default=True
    standardize : bool, default=False
        Optimize over standardized features (centred when there is an
        intercept, scaled to unit standard deviation); results are reported
        in the original units.
    penalty : {None, "l2", "l1", "elasticnet"}, default=None
    alpha : float, default=1e-4
        Penalty strength (ignored when ``penalty`` is None).  Note that the
        data term is the *mean of rho*: for the L2 loss (``rho = r^2``), this
        model's ``alpha`` is twice scikit-learn's ``Lasso``/``ElasticNet`` ``alpha``.
    l1_ratio : float in [0, 1], default=0.15
        L1 share for ``"elasticnet"`` (``"l1"`` is 1, ``"l2"`` is 0).  The L1
        part takes a proximal (soft-threshold) step, so weights can be exactly zero.
    init : {"zeros", "lstsq", "l1", "lts", "s"} or array-like, default="zeros"
        Starting coefficients (intercept first when an array):

        * ``"zeros"``: all zero;
        * ``"lstsq"``: least squares (weighted by ``sample_weight``);
        * ``"l1"``: least absolute deviations
          (:func:`robustreg.robust_start.lad_fit`), robust to outliers in
          ``y`` but not to leverage points (breakdown 0);
        * ``"lts"``: reweighted least trimmed squares by FAST-LTS
          (:func:`robustreg.robust_start.fast_lts`), 50% breakdown;
        * ``"s"``: the S-estimator by FAST-S
          (:func:`robustreg.robust_start.s_estimator`), 50% breakdown, the
          start of ``robustbase::lmrob``.

        Redescending losses (Tukey, Welsch, Cauchy, Geman-McClure, Barron with
        ``alpha < 1``) are non-convex: the fit is the local minimum nearest the
        start, so they need a high-breakdown start, ``"lts"`` or ``"s"``.
        The starts ``"l1"``, ``"lts"`` and ``"s"`` fit an intercept (they
        require ``fit_intercept=True``) and ignore ``sample_weight``.
    scale : None, float, {"mad", "s"}, default=None
        Residual scale :math:`\sigma` for scale-dependent losses (the loss is
        applied to :math:`r / \sigma`, so its tuning constant is in units of
        :math:`\sigma`), computed once from the residuals :math:`r^{(0)}` of
        the start:

        * ``None``: :math:`\sigma = 1`, raw residuals;
        * a float: that :math:`\sigma`;
        * ``"mad"``: :math:`1.4826\,\operatorname{median}_i |r^{(0)}_i|`
          (:func:`robustreg.robust_start.mad_scale`), as statsmodels' ``RLM``;
        * ``"s"``: the biweight M-scale with 50% breakdown of MM-estimation
          (:func:`robustreg.robust_start.mscale` with ``ddof = p``, the number
          of coefficients: the small-sample form of ``robustbase::lmrob``,
          whose sum is divided by :math:`n - p`); with ``init="s"``, the
          S-estimator's own scale (the same quantity, at the S fit).

        Scale-free losses (L1, L2) ignore it.  A zero scale (an exact fit of
        more than half the rows) is replaced by a tiny positive one, with a
        ``RuntimeWarning``.
    scale_update_every : int or None, default=None
        With ``scale="mad"``, re-estimate sigma from the current residuals
        every this many iterations (as statsmodels' RLM does each IRLS step).
        Ignored otherwise: the ``"s"`` scale stays fixed, as in MM-estimation.
    random_state : int, RandomState or None, default=None
        Seeds mini-batch shuffling and the ``"lts"`` and ``"s"`` starts.
    record_history : bool, default=True
        Keep ``history_``.
    dtype : {"float64", "float32"}, default="float64"
        Precision of the data pass.  ``"float32"`` halves the memory read
        per iteration (X is converted once when given in float64); the
        parameters, sums of partial results and the history stay float64.
    verbose : int, default=0
        Print progress every ``max(1, max_iter // 10)`` iterations when > 0.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : int
        Iterations run.
    n_features_in_ : int
    converged_ : bool
        The stopping rule was met before ``max_iter``.
    diverged_ : bool
        The objective or the weights became non-finite, or the objective grew
        beyond ``1e10`` times its starting value; the last finite iterate is kept.
    objective_ : float
        Final objective at ``coef_, intercept_``.
    scale_ : float
        The sigma used (1.0 when no scale applies).
    lipschitz_ : float
        ``L`` above.
    history_ : pandas.DataFrame or None
        One row per iteration: ``iteration``, ``objective``, ``grad_norm``,
        ``step`` and, when ``coef_reference`` was given, ``coef_error``
        (Euclidean distance of ``w`` from the reference slopes).  The
        objective and gradient are those at the point where the gradient
        was evaluated.
    """

    _parameter_constraints: dict = {
        "loss": [StrOptions(set(LOSSES)), Loss],
        "learning_rate": [StrOptions({"auto", "constant", "invscaling"})],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterov": ["boolean"],
        "batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "fit_intercept": ["boolean"],
        "standardize": ["boolean"],
        "penalty": [None, StrOptions({"l2", "l1", "elasticnet"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "init": [StrOptions(set(_INITS)), "array-like"],
        "scale": [None, Interval(Real, 0, None, closed="neither"), StrOptions({"mad", "s"})],
        "scale_update_every": [None, Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "record_history": ["boolean"],
        "verbose": ["verbose"],
        "dtype": [StrOptions({"float64", "float32"})],
    }

    #: The L2 loss on the full batch iterates on X^T X (O(d^2) per step); set
    #: False on an instance to force the row pass (tests and benchmarks do).
    _use_gram = True

    def __init__(
        self,
        loss="l2",
        *,
        learning_rate="auto",
        eta0=1.0,
        power_t=0.25,
        momentum=0.0,
        nesterov=False,
        batch_size=None,
        max_iter=1000,
        tol=1e-6,
        n_iter_no_change=100,
        fit_intercept=True,
        standardize=False,
        penalty=None,
        alpha=1e-4,
        l1_ratio=0.15,
        init="zeros",
        scale=None,
        scale_update_every=None,
        random_state=None,
        record_history=True,
        verbose=0,
        dtype="float64",
    ):
        self.loss = loss
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.momentum = momentum
        self.nesterov = nesterov
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.init = init
        self.scale = scale
        self.scale_update_every = scale_update_every
        self.random_state = random_state
        self.record_history = record_history
        self.verbose = verbose
        self.dtype = dtype

    # ------------------------------------------------------------------ helpers
    def _penalty_parts(self):
        """(l1 strength, l2 strength) of the penalty."""
        if self.penalty is None:
            return 0.0, 0.0
        ratio = {"l1": 1.0, "l2": 0.0, "elasticnet": self.l1_ratio}[self.penalty]
        return self.alpha * ratio, self.alpha * (1.0 - ratio)

    def _start(self, X, y, sw, coef_init, intercept_init, rng):
        """Starting coefficients in original units, and the S-scale when the start is the S-estimator."""
        d = X.shape[1]
        if coef_init is not None:
            coef = np.asarray(coef_init, dtype=float).reshape(-1)
            if coef.shape != (d,):
                raise ValueError(f"coef_init has shape {coef.shape}; expected ({d},)")
            return coef, float(intercept_init or 0.0) if self.fit_intercept else 0.0, None
        init = self.init
        if isinstance(init, str):
            if init == "zeros":
                return np.zeros(d), 0.0, None
            if init == "lstsq":
                A = np.column_stack([np.ones(len(y)), X]) if self.fit_intercept else X
                root = np.ones(len(y)) if sw is None else np.sqrt(sw)
                sol = np.linalg.lstsq(A * root[:, None], y * root, rcond=None)[0]
                theta = sol if self.fit_intercept else np.concatenate([[0.0], sol])
                return theta[1:], float(theta[0]), None
            if not self.fit_intercept:
                # The robust starts fit an intercept; dropping it would start
                # from a fit of another model.
                raise ValueError(
                    f"init={init!r} is invalid with fit_intercept=False; allowed: 'zeros', 'lstsq' "
                    "or explicit coefficients (the robust starts 'l1', 'lts', 's' fit an intercept)"
                )
            from . import robust_start

            start_scale = None
            if init == "l1":
                theta = robust_start.lad_fit(X, y)
            else:
                # One seed from the estimator's random state: the start is reproducible.
                seed = int(rng.randint(np.iinfo(np.int32).max))
                if init == "lts":
                    theta = robust_start.fast_lts(X, y, random_state=seed).coef
                else:
                    res = robust_start.s_estimator(X, y, random_state=seed)
                    theta, start_scale = res.coef, res.scale
            return theta[1:], float(theta[0]), start_scale
        theta = np.asarray(init, dtype=float).reshape(-1)
        if self.fit_intercept:
            if theta.shape != (d + 1,):
                raise ValueError(f"init has {theta.size} values; expected {d + 1} (intercept first)")
            return theta[1:], float(theta[0]), None
        if theta.shape == (d + 1,):
            return theta[1:], 0.0, None
        if theta.shape != (d,):
            raise ValueError(f"init has {theta.size} values; expected {d}")
        return theta, 0.0, None

    def _initial_scale(self, loss, r, n_coef, start_scale=None):
        """The residual scale sigma of the objective (1.0 when none applies)."""
        if self.scale is None or not loss.scale_dependent:
            return 1.0
        if isinstance(self.scale, str):
            from . import robust_start

            if self.scale == "mad":
                sigma = robust_start.mad_scale(r)
            elif start_scale is not None:
                # The S-estimator's own scale: the minimum M-scale over all fits.
                sigma = start_scale
            else:
                # lmrob's small-sample S-scale divides by n - p; with fewer
                # rows than coefficients the fit is exact anyway.
                sigma = robust_start.mscale(r, ddof=min(n_coef, r.size - 1))
        else:
            sigma = float(self.scale)
        if not sigma > 0 or not math.isfinite(sigma):
            # An exact fit of more than half the rows has zero robust scale.
            tiny = 1e-12 * max(1.0, float(np.max(np.abs(r))) if r.size else 1.0)
            warnings.warn(f"residual scale {sigma!r} is not positive; using {tiny:g}", RuntimeWarning, stacklevel=3)
            sigma = tiny
        return float(sigma)

    # --------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, coef_init=None, intercept_init=None, coef_reference=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; an integer weight k is the same as k copies of the row.
        coef_init : array-like of shape (n_features,), default=None
            Starting slopes; overrides ``init``.
        intercept_init : float, default=None
            Starting intercept (with ``coef_init``).
        coef_reference : array-like of shape (n_features + 1,), default=None
            Coefficients to measure against, intercept first (or only the
            slopes, length n_features).  The history then records
            ``coef_error`` at every iteration.

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, dtype=np.dtype(self.dtype), y_numeric=True)
        y = np.asarray(y, dtype=X.dtype)
        sw = None if sample_weight is None else _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        if sw is not None and not np.sum(sw) > 0:
            raise ValueError("sample_weight sums to zero; at least one weight must be positive")
        n, d = X.shape
        loss = get_loss(self.loss)
        rng = check_random_state(self.random_state)
        ref = None
        if coef_reference is not None:
            ref = np.asarray(coef_reference, dtype=float).reshape(-1)
            if ref.shape == (d + 1,):
                ref = ref[1:]
            elif ref.shape != (d,):
                raise ValueError(f"coef_reference has {ref.size} values; expected {d + 1} (intercept first) or {d}")

        # One BLAS thread: the kernel's matrix-vector products on tall blocks
        # run several times slower with two OpenBLAS threads than with one.
        with _blas_controller().limit(limits=1, user_api="blas"):
            self._fit(X, y, sw, loss, rng, coef_init, intercept_init, ref)
        return self

    def _fit(self, X, y, sw, loss, rng, coef_init, intercept_init, ref):
        design = Design(X, sw, self.fit_intercept, self.standardize)
        self.lipschitz_ = design.lipschitz
        coef0, b0, start_scale = self._start(X, y, sw, coef_init, intercept_init, rng)
        theta = design.from_original(coef0, b0)
        r0 = design.residuals(theta, y)
        sigma = self._initial_scale(loss, r0, X.shape[1] + int(self.fit_intercept), start_scale)
        full_batch = self.batch_size is None or self.batch_size >= X.shape[0]
        use_gram = full_batch and type(loss) is L2Loss and self._use_gram
        kernel = GramKernel(design, y, loss) if use_gram else RowKernel(design, y, loss)
        kernel.sigma = sigma
        l1_strength, l2_strength = self._penalty_parts()
        d = design.d
        # A smooth loss whose curvature is unbounded (Barron with alpha > 2)
        # has no global step size 1/Lipschitz: it is stepped and stopped as a
        # non-smooth loss is.
        curvature = loss.curvature_bound
        smooth = loss.smooth and curvature is not None and math.isfinite(curvature)

        def objective_grad(point, rows=None):
            f, g = kernel.value_grad(point, rows)
            wz = point[:d]
            if l2_strength:
                f += 0.5 * l2_strength * float(wz @ wz)
                g[:d] += l2_strength * wz
            if l1_strength:
                f += l1_strength * float(np.sum(np.abs(wz)))
            return f, g

        def prox(v, step):
            if l1_strength:
                v[:d] = soft_threshold(v[:d], step * l1_strength)
            return v

        L = design.lipschitz if design.lipschitz > 0 else 1.0
        if self.learning_rate == "auto":
            if smooth:
                base_step = self.eta0 * sigma**2 / (curvature * L + l2_strength)
            elif loss.smooth:
                # Unbounded curvature: the largest curvature on the starting
                # residuals (and at 0) bounds it while the residuals stay in that
                # range; the L1 rule below would overshoot, as psi is unbounded.
                kappa0 = float(np.max(loss.psi_deriv(np.append(r0 / sigma, 0.0))))
                base_step = self.eta0 * sigma**2 / (kappa0 * L + l2_strength)
            else:
                s0 = _weighted_median(np.abs(r0), sw) if r0.size else 1.0
                if not s0 > 0:
                    s0 = float(np.std(y)) or 1.0
                base_step = self.eta0 * s0 / L

        def step_at(t):
            if self.learning_rate == "constant":
                return self.eta0
            if self.learning_rate == "invscaling":
                return self.eta0 / (t + 1.0) ** self.power_t
            return base_step if smooth else base_step / math.sqrt(t + 1.0)

        n_hist = self.max_iter if self.record_history else 0
        h_obj = np.full(n_hist, np.nan)
        h_grad = np.full(n_hist, np.nan)
        h_step = np.full(n_hist, np.nan)
        h_err = np.full(n_hist, np.nan) if ref is not None else None

        m = self.momentum
        prev = theta.copy()
        best_theta, best_f = theta.copy(), math.inf
        f0 = None
        grad0 = None
        no_improve = 0
        converged = diverged = False
        last_finite = theta.copy()
        final_f = None
        f_limit = math.inf
        smooth_full = smooth and full_batch
        n_done = 0
        n = X.shape[0]
        batch = None if full_batch else int(self.batch_size)
        report_every = max(1, self.max_iter // 10)

        for t in range(self.max_iter):
            if (
                self.scale == "mad"
                and self.scale_update_every
                and loss.scale_dependent
                and t > 0
                and t % self.scale_update_every == 0
            ):
                from . import robust_start

                new_sigma = robust_start.mad_scale(design.residuals(theta, y))
                if new_sigma > 0:
                    kernel.sigma = sigma = new_sigma
                    best_f = math.inf  # the objective changed with sigma
            eta = step_at(t)
            extrap = theta + m * (theta - prev) if m else theta
            point = extrap if (self.nesterov and m) else theta
            f, g = objective_grad(point)
            gg = float(g @ g)  # one reduction checks every entry of g for inf/nan
            if not (math.isfinite(f) and math.isfinite(gg)) or (f0 is not None and f > f_limit):
                diverged = True
                theta = last_finite
                break
            last_finite = point
            if f0 is None:
                f0 = f
                f_limit = DIVERGENCE_FACTOR * max(f0, np.finfo(float).tiny)
            if batch is None:
                new = prox(extrap - eta * g, eta)
            else:
                new = self._epoch(kernel, theta, prev, eta, prox, l2_strength, d, n, batch, rng)
            if l1_strength:
                # Without heavy-ball momentum the step just taken is the proximal step from point.
                stepped = new if (batch is None and extrap is point) else prox(point - eta * g, eta)
                gnorm = float(np.linalg.norm((point - stepped) / eta))
            else:
                gnorm = math.sqrt(gg)
            if t < n_hist:
                h_obj[t] = f
                h_grad[t] = gnorm
                h_step[t] = eta
                if h_err is not None:
                    w_now, _ = design.to_original(point)
                    h_err[t] = float(np.linalg.norm(w_now - ref))
            if self.verbose and t % report_every == 0:
                print(f"[GDRegressor] iter {t:>6d}  objective {f:.6g}  grad_norm {gnorm:.3g}  step {eta:.3g}")
            n_done = t + 1
            if best_f == math.inf or f < best_f * (1 - self.tol):
                no_improve = 0
            else:
                no_improve += 1
            if not smooth_full and f < best_f:
                best_f, best_theta = f, point
            if smooth_full:
                if grad0 is None:
                    grad0 = gnorm
                    if np.any(point):
                        # The scale of the problem: the gradient at zero coefficients.
                        zero = np.zeros_like(point)
                        _, g_zero = objective_grad(zero)
                        gz = (zero - prox(zero - eta * g_zero, eta)) / eta if l1_strength else g_zero
                        grad0 = max(grad0, float(np.linalg.norm(gz)))
                if gnorm <= self.tol * grad0 or gnorm == 0.0:
                    converged = True
                    theta, final_f = point, f
                    break
            elif no_improve >= self.n_iter_no_change:
                converged = True
                break
            prev, theta = theta, new
        else:
            n_done = self.max_iter

        if not diverged and not smooth_full and best_f < math.inf:
            # Subgradient and stochastic steps are not monotone: keep the best iterate.
            theta, final_f = best_theta, best_f
        self.coef_, self.intercept_ = design.to_original(theta)
        self.intercept_ = float(self.intercept_)
        # The objective is known where the loop stopped at an evaluated point.
        self.objective_ = float(objective_grad(theta)[0] if final_f is None else final_f)
        self.scale_ = float(sigma)
        self.n_iter_ = int(n_done)
        self.diverged_ = bool(diverged)
        self.converged_ = bool(converged and not diverged)
        if self.record_history:
            cols = {
                "iteration": np.arange(n_done),
                "objective": h_obj[:n_done],
                "grad_norm": h_grad[:n_done],
                "step": h_step[:n_done],
            }
            if h_err is not None:
                cols["coef_error"] = h_err[:n_done]
            self.history_ = pd.DataFrame(cols)
        else:
            self.history_ = None
        if diverged:
            warnings.warn(
                f"GDRegressor diverged at iteration {n_done} (loss={loss.name or loss!r}, step={step_at(n_done):.3g}); "
                "the last finite iterate is kept",
                ConvergenceWarning,
                stacklevel=4,
            )
        elif not converged and self.max_iter > 0:
            warnings.warn(
                f"GDRegressor did not converge in max_iter={self.max_iter} iterations (tol={self.tol:g}); "
                "increase max_iter or the step",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _epoch(self, kernel, theta, prev, eta, prox, l2_strength, d, n, batch, rng):
        """One epoch of mini-batch steps over a fresh shuffle of the rows."""
        m = self.momentum
        new = theta.copy()
        vel = theta - prev
        order = rng.permutation(n)
        for a in range(0, n, batch):
            rows = np.sort(order[a : a + batch])
            base = new + m * vel if m else new
            at = base if (self.nesterov and m) else new
            _, gb = kernel.value_grad(at, rows)
            if l2_strength:
                gb[:d] += l2_strength * at[:d]
            nxt = prox(base - eta * gb, eta)
            vel = nxt - new
            new = nxt
        return new

    def predict(self, X):
        """Predict ``X @ coef_ + intercept_``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_ + self.intercept_
