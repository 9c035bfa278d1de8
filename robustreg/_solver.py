r"""The solvers behind :class:`~robustreg.GDRegressor`, as pure functions.

The estimator keeps its parameters, validation and attributes; it hands a
:class:`Problem` (objective, gradient, proximal map) to one of two solvers
and reads back a :class:`Result`, as scikit-learn's ``HuberRegressor``
hands ``_huber_loss_and_gradient`` to L-BFGS.

* :func:`plain_gd` is gradient descent as the article describes it (and its
  momentum, mini-batch and step-size variants): the algorithm studied by the
  convergence and step-size studies.
* :func:`accelerated` finds the estimator: accelerated proximal gradient
  (FISTA, Beck and Teboulle 2009) with adaptive restart (O'Donoghue and
  Candes 2015), in the metric of a fixed preconditioner :math:`P`, so that
  one step is

  .. math::

      \theta^{+} = \operatorname{prox}\big(\vartheta - P^{-1}\nabla F(\vartheta)\big),

  with :math:`P \succeq \nabla^2 F` everywhere (the curvature bound of the
  loss times the design's Gram matrix) or, where the loss has no curvature
  bound, :math:`P` scaled by backtracking.  This is gradient descent in the
  coordinates :math:`P^{1/2}\theta`, where the objective is as well
  conditioned as the loss allows, whatever the design.
* :func:`lad_vertex` and :func:`lad_dual_gap` finish and certify least
  absolute deviations: a fit through ``p`` rows whose linear-programming
  dual is feasible is a minimizer.

Certificates.  A smooth fit is certified by the Newton step
:math:`H^{-1}\nabla F` at the returned point (:func:`newton_distance`): the
distance to the minimizer to first order, measured in standardized units
(coefficients times the features' standard deviations, over the standard
deviation of ``y``), so that it means the same whatever the units of ``X``
and ``y``.  An L1 fit is certified by the relative duality gap of its
linear programme.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from ._gd import soft_threshold

#: The objective must not grow beyond this factor of its starting value.
DIVERGENCE_FACTOR = 1e10


@dataclass
class Problem:
    """A composite objective ``F(theta) + sum_j l1_j |theta_j|`` (slopes only) in the optimizer's coordinates.

    Attributes
    ----------
    value_grad : callable
        ``theta -> (F, grad F)``; with ``rows``, the mini-batch version.
    d : int
        Number of penalized coordinates (the slopes come first).
    l1 : ndarray of shape (d,) or None
        Per-coordinate L1 strengths (``None``: no L1 part).
    std_scale : float
        The standard deviation of ``y``: distances are reported in units of it.
    """

    value_grad: object
    d: int
    l1: np.ndarray | None = None
    std_scale: float = 1.0

    def l1_value(self, theta) -> float:
        return float(self.l1 @ np.abs(theta[: self.d])) if self.l1 is not None else 0.0

    def prox(self, v, step):
        """Proximal map of ``step * l1 * ||.||_1`` (a scalar ``step``)."""
        if self.l1 is not None:
            v[: self.d] = soft_threshold(v[: self.d], step * self.l1)
        return v


@dataclass
class History:
    """Per-iteration records, appended across the stages of one fit."""

    objective: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)
    step: list = field(default_factory=list)
    coef_error: list = field(default_factory=list)
    track: object = None  # theta -> coef_error, or None
    keep: bool = True

    def add(self, f, gnorm, step, theta):
        if not self.keep:
            return
        self.objective.append(f)
        self.grad_norm.append(gnorm)
        self.step.append(step)
        if self.track is not None:
            self.coef_error.append(self.track(theta))


@dataclass
class Result:
    theta: np.ndarray
    n_iter: int
    converged: bool
    diverged: bool
    objective: float | None = None
    #: The certificate's measure at ``theta`` (distance or gap; inf when none holds).
    optimality: float = math.inf


# ----------------------------------------------------------------- preconditioner
def range_basis(K, rtol: float = 1e-12):
    """``(V, lam)``: orthonormal eigenvectors of the symmetric PSD ``K`` spanning its range, and their eigenvalues.

    A rank-deficient Gram matrix (collinear or constant columns, fewer rows
    than columns) leaves directions along which no fitted value moves: every
    loss is flat there, and the solvers and certificates work in the range.
    """
    K = 0.5 * (K + K.T)
    lam, V = np.linalg.eigh(K)
    top = float(lam[-1]) if lam.size else 0.0
    keep = lam > rtol * top if top > 0 else np.zeros(lam.size, dtype=bool)
    return V[:, keep], lam[keep]


class Metric:
    r"""A fixed preconditioner :math:`P = \ell K`, applied by its pseudo-inverse.

    ``K`` is the curvature matrix of the objective's quadratic model (the
    Gram matrix of the design times the loss's curvature bound, plus the L2
    penalty); :math:`\ell` scales it (1 for a bound, adapted by backtracking
    otherwise).  With ``diagonal=True`` the metric is the scalar
    :math:`\lambda_{\max}(K)\,I` (for an L1 penalty, whose proximal map is
    only separable in a diagonal metric).
    """

    def __init__(self, K, diagonal: bool = False):
        K = 0.5 * (K + K.T)
        p = K.shape[0]
        top = float(np.linalg.eigvalsh(K)[-1]) if p else 1.0
        top = top if top > 0 and math.isfinite(top) else 1.0
        self.diagonal = diagonal
        self.lipschitz = top
        self.scale = 1.0
        if diagonal:
            return
        # The pseudo-inverse: along the null directions of a singular Gram
        # matrix (collinear columns, fewer rows than columns) no fitted value
        # moves, and the start's component there is kept.
        self._V, lam = range_basis(K)
        self._inv = 1.0 / lam
        self.K = K

    def solve(self, g):
        if self.diagonal:
            return g / (self.scale * self.lipschitz)
        return self._V @ (self._inv * (self._V.T @ g)) / self.scale

    def inner(self, u, v):
        """``u^T P v``."""
        if self.diagonal:
            return self.scale * self.lipschitz * float(u @ v)
        return self.scale * float(u @ (self.K @ v))

    def norm2(self, v):
        """``v^T P v``."""
        if self.diagonal:
            return self.scale * self.lipschitz * float(v @ v)
        return self.scale * float(v @ (self.K @ v))

    @property
    def step(self) -> float:
        """The scalar step of a diagonal metric (for the proximal map), 1/scale otherwise."""
        return 1.0 / (self.scale * (self.lipschitz if self.diagonal else 1.0))


# ------------------------------------------------------------------- accelerated
def accelerated(
    problem: Problem,
    theta0,
    metric: Metric,
    *,
    max_iter: int,
    tol: float,
    certify=None,
    backtrack: bool = False,
    monotone: bool = False,
    history: History | None = None,
):
    r"""Accelerated proximal gradient with adaptive restart in the metric ``P``.

    Stops when the certificate (``certify(theta) -> measure``, default: the
    step length) is at most ``tol``.  The step length
    :math:`\lVert\theta^+ - \vartheta\rVert_2/\mathrm{sd}(y)` (in standardized
    coordinates, standardized units) is checked every iteration; the
    certificate, which may cost a pass with a Hessian, only when the step is
    below the current threshold, which tightens when the certificate fails.

    ``backtrack`` doubles the metric's scale until the quadratic model bounds
    the objective (losses without a curvature bound); ``monotone`` restarts
    whenever the objective rises (non-convex losses).
    """
    fg = problem.value_grad
    theta = np.array(theta0, dtype=float)
    y = theta.copy()
    t = 1.0
    threshold = tol
    best = math.inf
    f_start = None
    n_done = 0
    cert = math.inf
    for k in range(max_iter):
        f, g = fg(y)
        f += problem.l1_value(y)
        if not (math.isfinite(f) and np.all(np.isfinite(g))) or (f_start is not None and f > f_start):
            return Result(theta, n_done, False, True, None, math.inf)
        if f_start is None:
            f_start = DIVERGENCE_FACTOR * max(abs(f), np.finfo(float).tiny)
        while True:
            new = problem.prox(y - metric.solve(g), metric.step)
            delta = new - y
            if not backtrack:
                break
            f_new = fg(new)[0] + problem.l1_value(new)
            model = f - problem.l1_value(y) + problem.l1_value(new) + float(g @ delta) + 0.5 * metric.norm2(delta)
            if math.isfinite(f_new) and f_new <= model + 1e-12 * abs(f):
                break
            metric.scale *= 2.0
            if metric.scale > 1e30:
                return Result(theta, n_done, False, True, None, math.inf)
        n_done = k + 1
        step_len = float(np.linalg.norm(delta)) / problem.std_scale
        if history is not None:
            history.add(f, step_len, metric.step, y)
        # Gradient restart (O'Donoghue and Candes): the step just taken points uphill
        # from the last iterate, measured with the gradient mapping P (y - new).
        restart = metric.inner(y - new, new - theta) > 0.0 or (monotone and f > best)
        best = min(best, f)
        if restart:
            t_new, y = 1.0, new.copy()
        else:
            t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            y = new + ((t - 1.0) / t_new) * (new - theta)
        theta, t = new, t_new
        if backtrack:
            metric.scale *= 0.9  # let the step grow again where the curvature is lower
        if step_len <= threshold or step_len == 0.0:
            cert = certify(theta) if certify is not None else step_len
            if cert <= tol:
                return Result(theta, n_done, True, False, None, cert)
            threshold *= 0.1
            t, y = 1.0, theta.copy()
    if certify is not None:
        cert = certify(theta)
    return Result(theta, n_done, cert <= tol, False, None, cert)


# ------------------------------------------------------------------ certificates
def newton_distance(design, theta, y, loss, sigma, grad, extra_hessian=None, basis=None) -> float:
    r"""Length of the Newton step :math:`H^{-1}\nabla F(\theta)`, in standardized units.

    :math:`H = Z^\top V \operatorname{diag}(\rho''(r/\sigma)) Z / (\sigma^2 \sum v)`
    (plus ``extra_hessian``, the penalty's), built block by block, and taken
    in the range of the design (``basis``, by default that of its Gram
    matrix plus ``extra_hessian``): along the design's null directions no
    fitted value moves.  Returns ``inf`` where ``H`` has negative curvature
    there (no minimum) or none along a direction that moves the fit.
    """
    H = design.weighted_gram(loss.psi_deriv(design.residuals(theta, y) / sigma)) / sigma**2
    if extra_hessian is not None:
        H = H + extra_hessian
    if not (np.all(np.isfinite(H)) and np.all(np.isfinite(grad))):
        return math.inf
    if basis is None:
        basis, _ = range_basis(design.gram + (0.0 if extra_hessian is None else extra_hessian))
    Hr = basis.T @ H @ basis
    lam, V = np.linalg.eigh(0.5 * (Hr + Hr.T))
    if lam.size == 0:
        return 0.0
    if not lam[0] > 1e-12 * max(float(lam[-1]), 0.0):
        return math.inf  # no curvature, or negative curvature, along a direction that moves the fit
    step = basis @ (V @ ((V.T @ (basis.T @ grad)) / lam))
    return design.std_norm(step) / design.y_scale


def lad_dual_gap(design, theta, y, u, l1=None, l2=None) -> float:
    r"""Relative duality gap of weighted LAD (with an elastic-net penalty) at ``theta``.

    The primal is :math:`P(\theta) = \sum_i v_i|r_i|/\sum v + \lVert l_1\odot w\rVert_1
    + \tfrac12\lVert\sqrt{l_2}\odot w\rVert^2`; its dual
    :math:`D(u) = u^\top y - h^*(Z^\top u)` over :math:`|u_i| \le v_i/\sum v`
    with the intercept's component of :math:`Z^\top u` zero.  A candidate
    ``u`` (for example the smoothed fit's :math:`v\psi/\sum v`) is made
    feasible by projection and scaling; :math:`(P - D)/P` is returned (over
    :math:`10^{-8}\,\mathrm{sd}(y)` where the fit is all but exact), zero at an exact minimizer.
    """
    D = design
    box = (np.ones(D.n) if D.sw is None else D.sw) / D.sw_sum
    r = D.residuals(theta, y)
    w = theta[: D.d]
    primal = float(box @ np.abs(r))
    pen_l1 = np.zeros(D.d) if l1 is None else l1
    pen_l2 = np.zeros(D.d) if l2 is None else l2
    primal += float(pen_l1 @ np.abs(w)) + 0.5 * float(pen_l2 @ (w * w))
    u = np.clip(np.asarray(u, dtype=float), -box, box)
    # Zero the components of Z^T u that no penalty absorbs (the intercept, and
    # every slope without an L1 or L2 part) by projecting u, then scale into the box.
    free = np.flatnonzero((pen_l1 == 0) & (pen_l2 == 0))
    cols = list(free) + ([D.d] if D.fit_intercept else [])
    if cols:
        # On the rows of positive weight only (a row of weight 0 has a box of 0), by the
        # normal equations of those columns: products with Z, no copy of its columns.
        support = box > 0
        u[~support] = 0.0
        h = support / np.where(support, box * D.sw_sum, 1.0)  # weighted_gram's weights become 1 on the support
        G = D.weighted_gram(h)[np.ix_(cols, cols)]
        Vr, lam = range_basis(G)
        c = Vr @ ((Vr.T @ D.zt(u)[cols]) / lam) / D.sw_sum
        full = np.zeros(D.n_params)
        full[cols] = c
        u += D.residuals(full, np.zeros(D.n)) * support  # u - Z_c c on the support
        ratio = float(np.max(np.abs(u[support]) / box[support])) if np.any(support) else 0.0
        if ratio > 1.0:
            u = u / ratio
    s = D.zt(u)[: D.d]
    l1_only = (pen_l1 > 0) & (pen_l2 == 0)
    if np.any(l1_only):
        # Where only an L1 part absorbs Z^T u, the dual needs |(Z^T u)_j| <= l1_j.
        ratio = float(np.max(np.abs(s[l1_only]) / pen_l1[l1_only]))
        if ratio > 1.0:
            u, s = u / ratio, s / ratio
    ridge = pen_l2 > 0
    conj = float(np.sum(np.maximum(np.abs(s[ridge]) - pen_l1[ridge], 0.0) ** 2 / (2.0 * pen_l2[ridge])))
    dual = float(u @ y) - conj
    # Relative to the objective, or to the spread of y where the fit is exact (P = 0).
    return max(primal - dual, 0.0) / max(primal, 1e-8 * D.y_scale, np.finfo(float).tiny)


def lad_vertex(design, theta, y, max_pivots: int | None = None):
    r"""Finish LAD exactly: simplex pivots from the fit through the ``p`` rows nearest ``theta``'s fit.

    A vertex is a fit through ``p`` rows (the basis ``B``).  Its dual
    :math:`u_B` solves :math:`Z_B^\top u_B = -Z_N^\top (v_N \operatorname{sign} r_N)/\sum v`;
    :math:`|u_i| \le v_i/\sum v` on ``B`` certifies the vertex a minimizer.
    Where a basis row violates it, the objective decreases along the edge
    that frees that row; the step along the edge that minimizes the
    (piecewise linear) objective is a weighted median of the rows'
    breakpoints, and the row there enters the basis.

    Returns ``(theta_vertex, u)``, or ``None`` when the nearest rows do not
    determine a fit or the pivots do not end within ``max_pivots``.
    """
    D = design
    weights = (np.ones(D.n) if D.sw is None else np.asarray(D.sw, dtype=float)) / D.sw_sum
    # A rank-deficient design (collinear or constant columns) is pivoted in the
    # range of its Gram matrix: k = rank coordinates, bases of k rows.
    V, _ = range_basis(D.gram)
    full = V.shape[1] == D.n_params
    k_dim = V.shape[1]

    def rows(idx):
        Z = D.rows(idx)
        return Z if full else Z @ V

    def zt(u):
        g = D.zt(u)
        return g if full else V.T @ g

    def lift(phi):
        return phi if full else V @ phi

    r = D.residuals(theta, y)
    order = np.argsort(np.abs(r), kind="stable")
    order = order[weights[order] > 0]
    basis = []
    q = np.zeros((0, k_dim))
    for i in order[: 5 * k_dim + 20]:
        z = rows(np.array([i]))[0]
        v = z - q.T @ (q @ z)
        nv = float(np.linalg.norm(v))
        if nv > 1e-9 * max(1.0, float(np.linalg.norm(z))):
            basis.append(int(i))
            q = np.vstack([q, v / nv])
            if len(basis) == k_dim:
                break
    if len(basis) < k_dim or k_dim == 0:
        return None
    basis = np.array(basis)
    zero = np.zeros(D.n)
    max_pivots = 50 * k_dim + 100 if max_pivots is None else max_pivots
    for _ in range(max_pivots + 1):
        ZB = rows(basis)
        try:
            vertex = lift(np.linalg.solve(ZB, D.target(basis, y)))
            r = D.residuals(vertex, y)
            s = np.sign(r) * weights
            s[basis] = 0.0
            u_b = np.linalg.solve(ZB.T, -zt(s))
        except np.linalg.LinAlgError:
            return None
        excess = np.abs(u_b) / weights[basis]
        k = int(np.argmax(excess))
        if excess[k] <= 1.0 + 1e-10:
            u = s
            u[basis] = u_b
            return vertex, u
        tied = _tied_dual(rows, zt, r, s, weights, basis)
        if tied is not None:
            return vertex, tied
        # Free row basis[k] in the direction that lowers the objective.
        e = np.zeros(k_dim)
        e[k] = -np.sign(u_b[k])
        direction = lift(np.linalg.solve(ZB, e))
        a = -D.residuals(direction, zero)  # Z d: the change of every fitted value per unit step
        a[basis] = 0.0
        a[basis[k]] = e[k]
        # Rows the edge does not move (a duplicate of a basis row, say) have a = 0 up to rounding.
        moving = np.flatnonzero((np.abs(a) > 1e-12 * float(np.max(np.abs(a)))) & (weights > 0))
        t = np.where(moving == basis[k], 0.0, r[moving] / a[moving])
        w = weights[moving] * np.abs(a[moving])
        ordered = np.argsort(t, kind="stable")
        cum = np.cumsum(w[ordered])
        m = ordered[int(np.searchsorted(cum, 0.5 * cum[-1]))]
        entering = int(moving[m])
        if entering == basis[k] or entering in set(basis.tolist()):
            return None
        basis = basis.copy()
        basis[k] = entering
    return None


def _tied_dual(rows, zt, r, s, weights, basis):
    """The dual of a degenerate vertex (more rows than the basis fitted exactly), or ``None``.

    Each row off the basis with a zero residual has a dual value free in its
    box, as the basis rows have: a small linear feasibility problem over those
    rows (HiGHS) finds one that balances the others, where the basis alone
    cannot.  Without such rows there is nothing to find.
    """
    scale = max(float(np.max(np.abs(r))), np.finfo(float).tiny)
    extra = np.flatnonzero((np.abs(r) <= 1e-11 * scale) & (weights > 0))
    extra = np.setdiff1d(extra, basis)
    if extra.size == 0:
        return None
    from scipy.optimize import linprog

    tied = np.concatenate([basis, extra])
    fixed = s.copy()
    fixed[extra] = 0.0
    ZT = rows(tied)
    box = weights[tied]
    res = linprog(np.zeros(tied.size), A_eq=ZT.T, b_eq=-zt(fixed), bounds=np.column_stack([-box, box]), method="highs")
    if res.status != 0:
        return None
    u = fixed
    u[tied] = res.x
    return u


# -------------------------------------------------------------------- plain GD
@dataclass
class GDSettings:
    """The plain gradient-descent settings of :class:`~robustreg.GDRegressor` (``solver="gd"``)."""

    step_at: object  # t -> eta
    momentum: float
    nesterov: bool
    batch_size: int | None
    max_iter: int
    tol: float
    n_iter_no_change: int
    smooth: bool
    verbose: int = 0


def plain_gd(problem: Problem, theta0, s: GDSettings, *, epoch=None, rng=None, history: History | None = None):
    """Gradient descent as the article describes it (momentum, mini-batches and step rules as variants).

    Smooth loss, full batch: stop when the norm of the gradient mapping falls
    below ``tol`` times the larger of its norms at the start and at zero
    coefficients.  Otherwise: stop when the best objective has not decreased
    by more than ``tol * |best|`` during ``n_iter_no_change`` iterations,
    and return the best iterate.  These rules say the iteration stalled; the
    estimator's certificate says whether it is at the minimizer.
    """
    fg = problem.value_grad
    theta = np.array(theta0, dtype=float)
    m = s.momentum
    prev = theta.copy()
    best_theta, best_f = theta.copy(), math.inf
    f0 = grad0 = None
    no_improve = 0
    stalled = diverged = False
    last_finite = theta.copy()
    final_f = None
    f_limit = math.inf
    full_batch = s.batch_size is None
    smooth_full = s.smooth and full_batch
    n_done = 0
    report_every = max(1, s.max_iter // 10)
    l1 = problem.l1 is not None

    def objective_grad(point):
        f, g = fg(point)
        return f + problem.l1_value(point), g

    for t in range(s.max_iter):
        eta = s.step_at(t)
        extrap = theta + m * (theta - prev) if m else theta
        point = extrap if (s.nesterov and m) else theta
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
        if full_batch:
            new = problem.prox(extrap - eta * g, eta)
        else:
            new = epoch(theta, prev, eta)
        if l1:
            # Without heavy-ball momentum the step just taken is the proximal step from point.
            stepped = new if (full_batch and extrap is point) else problem.prox(point - eta * g, eta)
            gnorm = float(np.linalg.norm((point - stepped) / eta))
        else:
            gnorm = math.sqrt(gg)
        if history is not None:
            history.add(f, gnorm, eta, point)
        if s.verbose and t % report_every == 0:
            print(f"[GDRegressor] iter {t:>6d}  objective {f:.6g}  grad_norm {gnorm:.3g}  step {eta:.3g}")
        n_done = t + 1
        if best_f == math.inf or f < best_f * (1 - s.tol):
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
                    gz = (zero - problem.prox(zero - eta * g_zero, eta)) / eta if l1 else g_zero
                    grad0 = max(grad0, float(np.linalg.norm(gz)))
            if gnorm <= s.tol * grad0 or gnorm == 0.0:
                stalled = True
                theta, final_f = point, f
                break
        elif no_improve >= s.n_iter_no_change:
            stalled = True
            break
        prev, theta = theta, new
    else:
        n_done = s.max_iter

    if not diverged and not smooth_full and best_f < math.inf:
        # Subgradient and stochastic steps are not monotone: keep the best iterate.
        theta, final_f = best_theta, best_f
    return Result(theta, n_done, stalled and not diverged, diverged, final_f)
