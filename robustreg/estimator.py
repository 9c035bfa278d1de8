r"""``GDRegressor``: a linear model fitted by gradient methods on a robust loss.

Two solvers, one setting apart:

* ``solver="auto"`` (the default) returns the loss's estimator: the
  minimizer of its objective, reached on badly conditioned real designs
  without tuning (preconditioned, accelerated proximal gradient; least
  absolute deviations finished exactly at a vertex), and certified: the fit
  says ``converged_=True`` only when an optimality certificate holds.
  Estimator studies (contamination, real data) use it.
* ``solver="gd"`` is plain gradient descent as the article describes it,
  with its step-size rules, momentum and mini-batches: the algorithm the
  dynamics studies (convergence, step size) look at.

Scale.  A loss with a tuning constant (Huber's ``delta``, Tukey's ``c``...)
is in units of the error scale: the estimator applies it to
:math:`r / \sigma`.  The ``scale_dependent`` flag of each loss says so:

* scale-free (``scale`` is ignored): ``l1``, ``l2``;
* scale-dependent: ``smooth_l1``, ``huber``, ``pseudo_huber`` (convex),
  ``barron`` (convex for ``alpha >= 1``), and the redescending ``tukey``,
  ``welsch``, ``cauchy``, ``geman_mcclure`` (and ``barron`` with ``alpha < 1``).

By default a convex scale-dependent loss uses the scale of statsmodels'
``RLM`` and R's ``MASS::rlm`` (the MAD of the fit's own residuals, at the
fixed point of fit and scale), and a redescending loss is the MM-estimator
of ``robustbase::lmrob`` (an S-estimator start and its scale, kept fixed):
so the default fit is scale- and regression-equivariant.  ``scale=1.0``
gives the raw residuals of the article's loss and of PyTorch's
``SmoothL1Loss``/``HuberLoss``.

Starts.  A convex loss has one minimum, reached from any start.  A
redescending loss is non-convex: a descent method stops at the local
minimum nearest its start, and from least squares or L1 that minimum still
fits the bad leverage points; hence the high-breakdown start (Yohai, 1987).
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

from . import _solver, robust_start
from ._fit import _Fit, _standardized
from ._gd import Design
from .inference import conf_int as _conf_int
from .inference import fit_inference as _fit_inference
from .inference import summarize as _summarize
from .losses import LOSSES, Loss, get_loss

__all__ = ["GDRegressor", "blas_threads"]

_BLAS = None


def _blas_controller() -> ThreadpoolController:
    # Made once: inspecting the loaded libraries costs milliseconds per call.
    global _BLAS
    if _BLAS is None:
        _BLAS = ThreadpoolController()
    return _BLAS


def blas_threads(n: int = 1):
    """Limit BLAS to ``n`` threads: the one place robustreg sets them.

    Returns threadpoolctl's limiter: use it as a context (the old limits come
    back on exit), or keep it (the limit holds until ``restore_original_limits()``).
    A fit runs its row passes on one thread (two are several times slower for
    ``X.T @ g`` on tall matrices); the jobs of a sweep run side by side on one each.
    """
    return _blas_controller().limit(limits=n, user_api="blas")


DIVERGENCE_FACTOR = _solver.DIVERGENCE_FACTOR
SOLVERS = ("auto", "gd")
_INITS = ("zeros", "lstsq", "l1", "lts", "s")


class GDRegressor(RegressorMixin, BaseEstimator):
    r"""Linear regression by gradient methods on a robust loss: its estimator, or plain gradient descent.

    Minimizes

    .. math::

        \frac{\sum_i v_i\, \rho\big((y_i - x_i^\top w - b)/\sigma\big)}{\sum_i v_i}
        + \alpha\Big(\lambda \lVert w\rVert_1 + \tfrac{1-\lambda}{2}\lVert w\rVert_2^2\Big)

    over ``w`` and ``b``, with ``rho`` the loss, ``v`` the sample weights,
    ``sigma`` the residual scale (see ``scale``) and ``lambda = l1_ratio``.
    With ``standardize=True`` the penalty (and, for ``solver="gd"``, the
    optimizer) works on standardized features; ``coef_`` and
    ``intercept_`` are always reported in the original units.

    Parameters
    ----------
    loss : str or Loss, default="l2"
        A name in :data:`robustreg.losses.LOSSES` or a :class:`~robustreg.losses.Loss`.
    solver : {"auto", "gd"}, default="auto"
        * ``"auto"``: the estimator.  Accelerated proximal gradient (FISTA)
          with adaptive restart, preconditioned by the curvature bound of the
          loss times the Gram matrix of the standardized design, so that one
          step of length 1 is safe and the conditioning of ``X`` does not
          matter (backtracking where the loss has no curvature bound, Barron
          with ``alpha > 2``).  L1: smoothing continuation (Smooth L1 with
          ``beta -> 0``, warm-started), then an exact finish by simplex
          pivots at a vertex of LAD's linear programme.  Certified: see
          ``tol`` and ``converged_``.
        * ``"gd"``: plain gradient descent (the article's algorithm): the
          settings ``learning_rate`` to ``n_iter_no_change`` and
          ``batch_size`` apply to it alone; by default it starts at zero
          coefficients on raw residuals (``init``, ``scale``).
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
        Maximum number of iterations (epochs for mini-batches), over every
        stage of a fit (scale fixed point, smoothing continuation); with
        ``solver="gd"`` and ``scale="mad"``, of the gradient-descent run (the
        scale's fixed point is found first, with a budget of its own).
    tol : float, default=1e-6
        Certificate.  ``solver="auto"`` stops when it holds: for a smooth
        loss, the Newton step :math:`H^{-1}\nabla F` at the fit (the
        distance to the minimizer to first order) is at most ``tol`` in
        standardized units (slopes times the features' standard
        deviations, intercept as the fit at the mean of X, over the
        standard deviation of y); with an L1 penalty, a proximal-gradient
        bound on that distance; for L1, the relative duality gap of LAD's
        linear programme is at most ``tol`` (with an elastic-net or L2
        penalty, of its convex dual; LAD with a pure L1 penalty is seldom
        certified this way and then says so).  With a scale fixed point,
        also the scale's relative change is below ``tol / 100``.

        ``solver="gd"``, stopping rule.  Smooth loss, full batch: stop when the norm of the
        gradient mapping :math:`\lVert\theta - \mathrm{prox}(\theta - \eta\nabla F)\rVert/\eta`
        (the gradient without an L1 penalty) falls below ``tol`` times the
        larger of its norms at the start and at zero coefficients (so that a
        start close to the optimum, such as a robust start, does not make
        the rule stricter).  Otherwise (non-smooth loss, or mini-batches):
        stop when the best objective has not decreased by more than
        ``tol * |best|`` during ``n_iter_no_change`` iterations.  The fit
        is then certified as above, within ``1000 * tol``.
    n_iter_no_change : int, default=100
        Window of the second stopping rule.  Subgradient steps on L1 improve
        the objective slowly while the coefficients still move on its flat
        optimum: a short window stops them early.
    fit_intercept : bool, default=True
    standardize : bool, default=False
        Apply the penalty to standardized features (centred when there is
        an intercept, scaled to unit standard deviation) and, for
        ``solver="gd"``, optimize over them; results are reported in the
        original units.  (``solver="auto"`` always works in standardized
        coordinates internally: a change of variables that leaves the
        estimator as it is.)
    penalty : {None, "l2", "l1", "elasticnet"}, default=None
    alpha : float, default=1e-4
        Penalty strength (ignored when ``penalty`` is None).  Note that the
        data term is the *mean of rho*: for the L2 loss (``rho = r^2``), this
        model's ``alpha`` is twice scikit-learn's ``Lasso``/``ElasticNet`` ``alpha``.
    l1_ratio : float in [0, 1], default=0.15
        L1 share for ``"elasticnet"`` (``"l1"`` is 1, ``"l2"`` is 0).  The L1
        part takes a proximal (soft-threshold) step, so weights can be exactly zero.
    init : None, {"zeros", "lstsq", "l1", "lts", "s"} or array-like, default=None
        Starting coefficients (intercept first when an array).  ``None``:
        ``"s"`` for a redescending loss (the MM-estimator; least squares
        with ``fit_intercept=False``, as the robust starts fit an intercept)
        and ``"lstsq"`` otherwise with ``solver="auto"``; ``"zeros"`` with
        ``solver="gd"``.

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
        :math:`\sigma`):

        * ``None``: with ``solver="auto"``, ``"s"`` for a redescending loss
          and ``"mad"`` for the others; with ``solver="gd"``, 1;
        * a float: that :math:`\sigma` (``1.0``: raw residuals, the
          article's loss);
        * ``"mad"``: the estimate of statsmodels' ``RLM`` and R's
          ``MASS::rlm``, :math:`\sigma = \operatorname{median}_i |r_i| / \Phi^{-1}(3/4)`
          of the fit's own residuals (:func:`robustreg.robust_start.mad_scale`),
          iterated with the fit to their fixed point (by the exact solver;
          ``solver="gd"`` then descends at that sigma);
        * ``"s"``: from the start's residuals, the biweight M-scale with 50% breakdown of MM-estimation
          (:func:`robustreg.robust_start.mscale` with ``ddof = p``, the number
          of coefficients: the small-sample form of ``robustbase::lmrob``,
          whose sum is divided by :math:`n - p`); with ``init="s"``, the
          S-estimator's own scale (the same quantity, at the S fit).

        Scale-free losses (L1, L2) ignore it.  A zero scale (an exact fit of
        more than half the rows) is replaced by a tiny positive one, with a
        ``RuntimeWarning``.
    random_state : int, RandomState or None, default=None
        Seeds mini-batch shuffling and the ``"lts"`` and ``"s"`` starts.
    record_history : bool, default=True
        Keep ``history_``.
    dtype : {"float64", "float32"}, default="float64"
        Precision of the data pass.  ``"float32"`` halves the memory read
        per iteration (X is converted once when given in float64); the
        parameters, sums of partial results and the history stay float64.
    verbose : int, default=0
        ``solver="gd"``: print progress every ``max(1, max_iter // 10)``
        iterations when > 0.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : int
        Iterations run.
    n_features_in_ : int
    converged_ : bool
        The certificate of ``tol`` holds at the fit (never merely "the
        iterations stopped").  Otherwise a ``ConvergenceWarning`` says how
        far from optimal the fit is.
    init_ : str
        The start used: ``init`` with its default resolved (``"array"`` for
        explicit coefficients, ``"coef_init"`` for ``fit(coef_init=...)``).
    optimality_ : float
        The certificate's measure at the fit (``inf`` where none applies,
        for example an indefinite Hessian of a redescending loss).
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
        was evaluated.  With ``solver="gd"``: the objective, the norm of the
        gradient (mapping) and the step size of gradient descent.  With
        ``solver="auto"``: the objective at the extrapolated point (for L1,
        the Smooth L1 objective of the continuation stage), the length of
        the preconditioned step in standardized units (not a gradient norm)
        and the step's scale (1 for a fixed preconditioner); the stages of a
        fit (scale fixed point, continuation) follow one another.
    bse_ : ndarray of shape (n_features + 1,)
        Standard errors, **intercept first** (``[intercept, *coef_]``; the
        intercept's is NaN with ``fit_intercept=False``), the root diagonal
        of ``cov_params_``.  NaN where not defined, with the reason in
        ``inference_note_``.  See :mod:`robustreg.inference`.
    cov_params_ : ndarray of shape (n_features + 1, n_features + 1)
        Covariance of ``[intercept, *coef_]``: Huber's sandwich with the
        small-sample correction of statsmodels' ``RLM`` (``cov="H1"``) for
        an M-estimate at the MAD (or a fixed) scale; ``robustbase::lmrob``'s
        ``.vcov.avar1`` for the MM-estimator (``scale="s"``); least squares'
        for L2; statsmodels' ``QuantReg`` kernel estimate for L1.  All NaN
        for a penalized fit (``alpha > 0``), with ``sample_weight``, or for a
        diverged fit.
    cov_type_ : {"H1", "avar1", "OLS", "QuantReg"} or None
        Which covariance ``cov_params_`` is (None: not defined).
    inference_note_ : str
        Why ``bse_`` is NaN, or that the fit is not certified
        (``converged_=False``: the numbers are at its last iterate); empty
        otherwise.
    n_downweighted_ : int or None
        Rows whose IRLS weight ``loss.weights(r / scale_)`` is below its
        value at zero residual (None for L1).
    weights_ : ndarray of shape (n_samples,)
        The final IRLS weights of the training rows,
        :math:`\psi(u_i)/u_i` with :math:`u_i = (y_i - x_i^\top w - b) / \sigma`
        and :math:`\sigma` = ``scale_``, relative to the weight at zero
        residual (:func:`robustreg.inference.irls_weights`, the computation
        ``n_downweighted_`` counts from): statsmodels' ``RLMResults.weights``
        (for Huber with the MAD scale, ``RLM(y, [1, X], HuberT(1.345)).fit().weights``
        at the same fit).  1 is full weight; Huber gives
        :math:`\min(1, \delta/|u|)`, Tukey :math:`(1 - (u/c)^2)_+^2`
        (exactly 0 beyond ``c``), L2 1 for every row.  L1 (and Smooth L1
        with ``beta=0``) has no weight at zero to compare with, and
        statsmodels has no L1 norm: its weights are the loss's own
        ``L1Loss.weights``, :math:`1/|r|` in the units of ``1/y`` (L1 is
        scale-free, ``scale_`` is 1): on the rows an exact LAD fit
        interpolates, ``inf`` where the residual is exactly 0 and about
        ``1e14`` where rounding leaves it at about ``1e-14``.  They are not
        multiplied by ``sample_weight``.  All NaN for a diverged fit.
    """

    _parameter_constraints: dict = {
        "loss": [StrOptions(set(LOSSES)), Loss],
        "solver": [StrOptions(set(SOLVERS))],
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
        "init": [None, StrOptions(set(_INITS)), "array-like"],
        "scale": [None, Interval(Real, 0, None, closed="neither"), StrOptions({"mad", "s"})],
        "random_state": ["random_state"],
        "record_history": ["boolean"],
        "verbose": ["verbose"],
        "dtype": [StrOptions({"float64", "float32"})],
    }

    #: ``solver="gd"`` certifies its fit at the end (a pass or more over X);
    #: the benchmark of per-iteration times sets False on an instance.
    _certify = True

    def __init__(
        self,
        loss="l2",
        *,
        solver="auto",
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
        init=None,
        scale=None,
        random_state=None,
        record_history=True,
        verbose=0,
        dtype="float64",
    ):
        self.loss = loss
        self.solver = solver
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

    def _start(self, X, y, sw, coef_init, intercept_init, rng, init):
        """Starting coefficients in original units, and the S-scale when the start is the S-estimator."""
        d = X.shape[1]
        if coef_init is not None:
            coef = np.asarray(coef_init, dtype=float).reshape(-1)
            if coef.shape != (d,):
                raise ValueError(f"coef_init has shape {coef.shape}; expected ({d},)")
            return coef, float(intercept_init or 0.0) if self.fit_intercept else 0.0, None
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

    def _initial_scale(self, scale, r, n_coef, start_scale=None):
        """The residual scale sigma from the start's residuals ``r`` (``scale`` a float or "s")."""
        if isinstance(scale, str):
            if start_scale is not None:
                # The S-estimator's own scale: the minimum M-scale over all fits.
                sigma = start_scale
            else:
                # lmrob's small-sample S-scale divides by n - p; with fewer
                # rows than coefficients the fit is exact anyway.
                sigma = robust_start.mscale(r, ddof=min(n_coef, r.size - 1))
        else:
            sigma = float(scale)
        if not sigma > 0 or not math.isfinite(sigma):
            # An exact fit of more than half the rows has zero robust scale.
            tiny = 1e-12 * max(1.0, float(np.max(np.abs(r))) if r.size else 1.0)
            warnings.warn(f"residual scale {sigma!r} is not positive; using {tiny:g}", RuntimeWarning, stacklevel=3)
            sigma = tiny
        return float(sigma)

    # ------------------------------------------------------------ parameters
    def set_params(self, **params):
        """Set parameters, as scikit-learn does; ``loss__<constant>`` sets a constant of the loss.

        A loss given by name becomes its loss object first, so that
        ``GridSearchCV(GDRegressor(loss="huber"), {"loss__delta": [1.0, 1.345, 2.0]})``
        searches Huber's threshold; ``get_params(deep=True)`` then lists
        ``loss__delta`` too.
        """
        if any(k.startswith("loss__") for k in params):
            name = params.get("loss", self.loss)
            if isinstance(name, str):
                if name not in LOSSES:
                    raise ValueError(f"loss={name!r} is invalid; allowed: one of {', '.join(sorted(LOSSES))}")
                params = {**params, "loss": get_loss(name)}
        return super().set_params(**params)

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
        with blas_threads(1):
            self._fit(X, y, sw, loss, rng, coef_init, intercept_init, ref)
        return self

    def _fit(self, X, y, sw, loss, rng, coef_init, intercept_init, ref):
        exact = self.solver == "auto"
        # The exact solver works in standardized coordinates, a change of
        # variables that leaves the estimator (and the penalty's units) as they are.
        design = Design(X, sw, self.fit_intercept, standardize=exact or self.standardize)
        ybar = float(np.mean(y) if sw is None else sw @ y / design.sw_sum)
        y_sd = float(np.sqrt(np.mean((y - ybar) ** 2) if sw is None else sw @ (y - ybar) ** 2 / design.sw_sum))
        design.y_scale = y_sd if y_sd > 0 and math.isfinite(y_sd) else 1.0
        self.lipschitz_ = design.lipschitz
        init, scale = self._resolved(loss)
        self.init_ = "coef_init" if coef_init is not None else (init if isinstance(init, str) else "array")
        if exact and isinstance(init, str) and init == "lstsq" and coef_init is None:
            # Least squares from the Gram matrix already at hand: one more pass, no factorization of X.
            theta, start_scale = design.normal_equations(y), None
        else:
            coef0, b0, start_scale = self._start(X, y, sw, coef_init, intercept_init, rng, init)
            theta = design.from_original(coef0, b0)
        r0 = design.residuals(theta, y)
        n_coef = X.shape[1] + int(self.fit_intercept)
        sigma = 1.0
        if loss.scale_dependent and scale is not None and scale != "mad":
            sigma = self._initial_scale(scale, r0, n_coef, start_scale)
        history = _solver.History(keep=self.record_history)
        if ref is not None:
            history.track = lambda t: float(np.linalg.norm(design.to_original(t)[0] - ref))
        fit = _Fit(self, design, y, loss, history)
        if loss.scale_dependent and scale == "mad" and exact:
            res, sigma = fit.mad_fixed_point(theta, r0)
        elif loss.scale_dependent and scale == "mad":
            # RLM's scale, found by the exact solver on its own standardized design (its
            # iterations are not the GD run's, nor in its history); then the GD run at that scale.
            coef0, b0 = design.to_original(theta)
            pre = _Fit(self, _standardized(X, sw, self.fit_intercept, design.y_scale), y, loss, _solver.History(keep=False))
            start = pre.design.from_original(coef0, b0)
            scale_res, sigma = pre.mad_fixed_point(start, pre.design.residuals(start, y))
            res = fit.gd(theta, sigma, rng)
            if not scale_res.converged:
                fit.measure_name, fit.tolerance = pre.measure_name, pre.tolerance
                res = _solver.Result(res.theta, res.n_iter, False, res.diverged, res.objective, scale_res.optimality)
        elif exact:
            res = fit.exact(theta, sigma)
        else:
            res = fit.gd(theta, sigma, rng, r0=r0)
        theta = res.theta
        self.coef_, self.intercept_ = design.to_original(theta)
        self.coef_ = np.array(self.coef_, dtype=float)
        self.intercept_ = float(self.intercept_)
        self.objective_ = float(fit.objective(theta, sigma) if res.objective is None else res.objective)
        self.scale_ = float(sigma)
        self.n_iter_ = int(fit.n_iter)
        self.diverged_ = bool(res.diverged)
        self.converged_ = bool(res.converged and not res.diverged)
        self.optimality_ = float(res.optimality)
        if self.record_history:
            n_done = len(history.objective)
            cols = {
                "iteration": np.arange(n_done),
                "objective": np.asarray(history.objective, dtype=float),
                "grad_norm": np.asarray(history.grad_norm, dtype=float),
                "step": np.asarray(history.step, dtype=float),
            }
            if ref is not None:
                cols["coef_error"] = np.asarray(history.coef_error, dtype=float)
            self.history_ = pd.DataFrame(cols)
        else:
            self.history_ = None
        self._set_inference(X, y, sw, loss, scale, r0)
        name = loss.name or repr(loss)
        if res.diverged:
            warnings.warn(
                f"GDRegressor diverged at iteration {self.n_iter_} (loss={name}); the last finite iterate is kept",
                ConvergenceWarning,
                stacklevel=4,
            )
        elif not self.converged_ and self.max_iter > 0:
            warnings.warn(
                f"GDRegressor (loss={name}, solver={self.solver!r}) did not reach its minimizer in "
                f"{self.n_iter_} iterations (max_iter={self.max_iter}): {fit.measure_name} is "
                f"{self.optimality_:.3g}, tolerance {fit.tolerance:.3g}; increase max_iter",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _resolved(self, loss):
        """``(init, scale)`` with the defaults resolved for this loss and solver."""
        init, scale = self.init, self.scale
        exact = self.solver == "auto"
        if init is None:
            if not exact:
                init = "zeros"  # the article's gradient descent starts at zero
            elif loss.redescending and self.fit_intercept:
                init = "s"  # MM: the S-estimator's 50%-breakdown start
            else:
                init = "lstsq"
        if scale is None and loss.scale_dependent:
            if not exact:
                scale = 1.0  # raw residuals: the article's loss
            else:
                scale = "s" if loss.redescending else "mad"
        return init, scale


    # -------------------------------------------------------------- inference
    def _set_inference(self, X, y, sw, loss, scale, r0):
        """Standard errors at the fit (:func:`robustreg.inference.fit_inference`); ``r0``: the start's residuals."""
        inf = _fit_inference(self, X, y, sw, loss, scale, r0)
        self._inference = inf
        self.cov_params_ = inf.cov
        self.bse_ = inf.bse
        self.cov_type_ = inf.cov_type
        self.inference_note_ = inf.note
        self.n_downweighted_ = inf.n_downweighted
        self.weights_ = inf.weights

    def conf_int(self, alpha=0.05):
        """Normal confidence intervals of ``[intercept, *coef_]``, as statsmodels' ``RLMResults.conf_int``.

        Parameters
        ----------
        alpha : float in (0, 1), default=0.05
            ``1 - alpha`` is the coverage.

        Returns
        -------
        ndarray of shape (n_features + 1, 2)
            Rows intercept first, then ``coef_`` in order; columns lower,
            upper: ``estimate -+ z_{1 - alpha/2} * bse_``.  NaN where
            ``bse_`` is (and the intercept's row with ``fit_intercept=False``).
        """
        check_is_fitted(self)
        params = np.r_[self.intercept_ if self.fit_intercept else np.nan, self.coef_]
        return _conf_int(params, self.bse_, alpha)

    def summary(self, alpha=0.05):
        """The coefficient table with standard errors, z, p-values and intervals, and the fit's scale.

        Returns
        -------
        robustreg.inference.InferenceSummary
            ``print(model.summary())`` shows, as statsmodels' summaries do,
            the covariance used, the scale, the rows down-weighted (and
            rejected), whether the fit is certified (``converged_``), and the
            table; ``.table`` is that table as a pandas DataFrame with
            columns ``term, coef, std_err, z, p_value, ci_low, ci_high``
            (intercept first); ``.info`` the header's values.
        """
        check_is_fitted(self)
        return _summarize(self, alpha)

    def predict(self, X):
        """Predict ``X @ coef_ + intercept_``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_ + self.intercept_
