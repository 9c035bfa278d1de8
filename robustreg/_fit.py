"""How :class:`~robustreg.GDRegressor` drives its solvers: problem, metric, stages, certificates.

The estimator keeps its parameters, validation and attributes; ``_Fit``
turns its settings into the pure pieces of :mod:`robustreg._solver` (the
objective of a loss at a scale, the preconditioner, the certificate) and
runs the stages of one fit: the exact solver, the RLM scale's fixed point,
the LAD continuation and its exact finish, or plain gradient descent.
"""

from __future__ import annotations

import math

import numpy as np

from . import _gd, _solver, robust_start
from ._gd import Design, GramKernel, RowKernel
from .losses import L2Loss, SmoothL1Loss


def _standardized(X, sw, fit_intercept, y_scale):
    design = Design(X, sw, fit_intercept, standardize=True)
    design.y_scale = y_scale
    return design


def _secant_scale(sigma: float, new: float, last) -> float:
    """The next scale of the fixed point sigma = MAD(fit at sigma): a secant step, or the plain step ``new``.

    The plain iteration converges linearly (about ten fits on typical data);
    the secant step on ``MAD(sigma) - sigma`` through the last two scales
    reaches it in about half as many.  The secant step is taken only when it
    goes the plain step's way and at most ten times as far; the certificate
    is unchanged (the last plain step moves sigma by at most ``tol / 100``).
    """
    if last is None:
        return new
    step = new - sigma
    prev_sigma, prev_new = last
    slope = (step - (prev_new - prev_sigma)) / (sigma - prev_sigma) if sigma != prev_sigma else 0.0
    if not slope < 0:  # not a contraction there: no extrapolation
        return new
    secant = sigma - step / slope
    ratio = (secant - sigma) / step
    return secant if 0 < ratio <= 10 and secant > 0 else new


class _Fit:
    """One fit's problem-building and solver calls; the estimator's settings read from it."""

    def __init__(self, est, design, y, loss, history):
        self.est, self.design, self.y, self.loss, self.history = est, design, y, loss, history
        self.n_iter = 0
        self.measure_name = "the certificate"
        self.tolerance = est.tol
        l1, l2 = est._penalty_parts()
        # Penalty strengths per optimizer coordinate: theta_j = w_j s_j.
        units = np.ones(design.d) if (est.standardize or design.params_are_coefs) else 1.0 / design.col_scale
        self.l1 = l1 * units if l1 else None
        self.l2 = l2 * units**2 if l2 else None

    def budget(self):
        return max(self.est.max_iter - self.n_iter, 0)

    def kernel(self, loss, sigma):
        D = self.design
        # The L2 loss on the full batch iterates on X^T X: O(p^2) per step after one pass.
        full_batch = self.est.solver == "auto" or self.est.batch_size is None or self.est.batch_size >= D.n
        use_gram = type(loss) is L2Loss and full_batch and _gd._TEST_HOOKS["gram"]
        kernel = GramKernel(D, self.y, loss) if use_gram else RowKernel(D, self.y, loss)
        kernel.sigma = sigma
        return kernel

    def problem(self, loss, sigma):
        kernel = self.kernel(loss, sigma)
        d, l2 = self.design.d, self.l2

        def value_grad(theta, rows=None):
            f, g = kernel.value_grad(theta, rows)
            if l2 is not None:
                w = theta[:d]
                f += 0.5 * float(l2 @ (w * w))
                g[:d] += l2 * w
            return f, g

        return _solver.Problem(value_grad, d, self.l1, self.design.y_scale), kernel

    def objective(self, theta, sigma):
        prob, _ = self.problem(self.loss, sigma)
        return prob.value_grad(theta)[0] + prob.l1_value(theta)

    def _penalty_hessian(self):
        D = self.design
        H = np.zeros((D.n_params, D.n_params))
        if self.l2 is not None:
            H[np.arange(D.d), np.arange(D.d)] = self.l2
        return H

    def metric(self, curvature, sigma):
        K = curvature / sigma**2 * self.design.gram + self._penalty_hessian()
        return _solver.Metric(K, diagonal=self.l1 is not None)

    # ------------------------------------------------------------ exact solver
    def exact(self, theta, sigma, tol=None, max_iter=None):
        """The loss's minimizer at this sigma (a local one for a redescending loss), certified.

        ``max_iter`` caps this solve's iterations below the fit's remaining budget.
        """
        loss, est = self.loss, self.est
        tol = est.tol if tol is None else tol
        cap = self.n_iter + (self.budget() if max_iter is None else min(max_iter, self.budget()))
        if not loss.smooth:
            return self.lad(theta, loss, tol)
        prob, _ = self.problem(loss, sigma)
        self.measure_name = "the Newton step to the minimizer, in standardized units,"
        self.tolerance = tol

        last = {}

        def certify(t):
            if self.l1 is not None:
                # With an L1 penalty the minimizer sits on a kink: the proximal
                # gradient step, in the local-curvature metric, bounds the distance.
                return self._prox_distance(prob, t, sigma)
            f, g = prob.value_grad(t)
            last["theta"], last["f"] = t, f
            return _solver.newton_distance(self.design, t, self.y, loss, sigma, g, self._penalty_hessian())

        # The IRLS metric needs backtracking, whose test a float32 row pass (objective rounded
        # at ~1e-7) cannot pass reliably: that pass keeps the fixed metric of the curvature bound.
        if not loss.irls_majorizes or self.l1 is not None or self.design.X.dtype != np.float64:
            curvature = loss.curvature_bound
            backtrack = curvature is None or not math.isfinite(curvature)
            if backtrack:
                r = self.design.residuals(theta, self.y) / sigma
                curvature = max(float(np.max(loss.psi_deriv(np.append(r, 0.0)))), 1e-12)
            metric = self.metric(curvature, sigma)
            res = _solver.accelerated(
                prob, theta, metric, max_iter=cap - self.n_iter, tol=tol, certify=certify,
                backtrack=backtrack, monotone=not loss.convex, history=self.history,
            )
            self.n_iter += res.n_iter
        else:
            res = self._irls_rounds(prob, theta, sigma, tol, certify, cap)
        if last.get("theta") is res.theta:
            res.objective = last["f"]  # evaluated by the certificate: no further pass
        return res

    # Iterations between two refreshes of the IRLS metric.
    IRLS_ROUND = 20

    def _irls_rounds(self, prob, theta, sigma, tol, certify, cap):
        """The loss's minimizer in the metric of its IRLS weights, refreshed every few iterations.

        The weighted Gram matrix ``Z^T diag(psi(r)/r) Z / sigma^2`` is the
        curvature of the quadratic that majorizes the objective at the current
        residuals (``loss.irls_majorizes``): the IRLS step of statsmodels' RLM
        and of lmrob.  Rows the loss discounts (weight psi(r)/r near 0) leave
        the metric, so bad leverage points, which dominate the plain Gram
        matrix, no longer slow the steps along their direction (an MM fit at
        leverage 1,000 noise scales: 1,000 iterations uncertified before, 5
        now).  Backtracking keeps every step under the model; the objective
        never rises.
        """
        D, loss = self.design, self.loss
        res = _solver.Result(theta, 0, False, False)
        while True:
            budget = cap - self.n_iter
            if budget <= 0:
                return res
            w = loss.weights(D.residuals(theta, self.y) / sigma)
            K = D.weighted_gram(w) / sigma**2 + self._penalty_hessian()
            metric = _solver.Metric(K)
            res = _solver.accelerated(
                prob, theta, metric, max_iter=min(budget, self.IRLS_ROUND), tol=tol, certify=certify,
                backtrack=True, monotone=True, history=self.history,
            )
            self.n_iter += res.n_iter
            if res.converged or res.diverged:
                return res
            theta = res.theta

    def _prox_distance(self, prob, theta, sigma):
        D = self.design
        h = self.loss.psi_deriv(D.residuals(theta, self.y) / sigma)
        H = D.weighted_gram(h) / sigma**2 + self._penalty_hessian()
        top = float(np.linalg.eigvalsh(H)[-1])
        low = float(np.linalg.eigvalsh(H)[0])
        if not low > 0:
            return math.inf
        _, g = prob.value_grad(theta)
        stepped = prob.prox(theta - g / top, 1.0 / top)
        # A proximal-gradient step of length s at curvature in [low, top] is
        # at most (top / low) s from the minimizer of a strongly convex composite.
        return (top / low) * D.std_norm(stepped - theta) / D.y_scale

    def lad(self, theta, loss, tol):
        """Least absolute deviations by smoothing continuation, finished at a vertex and certified by the dual."""
        D, y = self.design, self.y
        self.measure_name = "the relative duality gap of the LAD linear programme"
        self.tolerance = tol
        box = (np.ones(D.n) if D.sw is None else D.sw) / D.sw_sum
        r = D.residuals(theta, y)
        beta = self.mad(r) or D.y_scale
        floor = 1e-12 * D.y_scale
        gap = math.inf
        res = _solver.Result(theta, 0, False, False)
        while self.budget() > 0:
            smooth = SmoothL1Loss(beta=beta)
            prob, _ = self.problem(smooth, 1.0)
            metric = self.metric(1.0 / beta, 1.0)
            res = _solver.accelerated(
                prob, theta, metric, max_iter=self.budget(), tol=1e-7 * beta / D.y_scale,
                history=self.history,
            )
            self.n_iter += res.n_iter
            if res.diverged:
                return res
            theta = res.theta
            if self.l1 is None and self.l2 is None:
                finish = _solver.lad_vertex(D, theta, y)
                if finish is not None:
                    vertex, u = finish
                    gap = _solver.lad_dual_gap(D, vertex, y, u)
                    if gap <= tol:
                        return _solver.Result(vertex, res.n_iter, True, False, None, gap)
            u = box * smooth.psi(D.residuals(theta, y))
            gap = _solver.lad_dual_gap(D, theta, y, u, self.l1, self.l2)
            if gap <= tol:
                return _solver.Result(theta, res.n_iter, True, False, None, gap)
            if beta <= floor:
                break
            beta = max(beta * 0.1, floor)
        return _solver.Result(theta, res.n_iter, False, False, None, gap)

    def mad(self, r):
        """RLM's scale of residuals ``r``, with the sample weights as case weights."""
        return robust_start.mad_scale(r, weights=self.design.sw)

    #: Iterations a fit tighter than tol may take in the scale's fixed point.
    TIGHT_ITER = 50

    def mad_fixed_point(self, theta, r0, max_outer=200):
        """RLM's estimate: the fit at sigma and sigma = MAD of that fit's residuals, iterated to their fixed point.

        Certified when the fit at the final sigma is, and the last fixed-point
        step moved sigma by at most ``tol / 100`` (relative).  The steps are
        secant steps where they are safe (:func:`_secant_scale`), and the fits
        between them are made as exact as the scale has become (down to
        ``tol / 100``, at most ``TIGHT_ITER`` iterations each): about half the
        fits of the plain iteration.
        """
        D = self.design
        sigma = self.mad(r0)
        if not sigma > 0:
            sigma = self.est._initial_scale(0.0, r0, D.n_params)  # warns, and takes a tiny positive scale
        tol = self.est.tol
        res, moved = _solver.Result(theta, 0, False, False), math.inf
        last = None  # the previous (sigma, MAD of its fit's residuals)
        inner, tighten = tol, True
        for _ in range(max_outer):
            res = self.exact(theta, sigma, tol=inner, max_iter=None if inner == tol else self.TIGHT_ITER)
            if not (res.converged or res.diverged) and inner < tol and self.budget() > 0:
                # A fit tighter than tol not certified within its cap: back to fits at tol.
                inner, tighten = tol, False
                res = self.exact(res.theta, sigma, tol=tol)
            theta = res.theta
            if res.diverged:
                return res, sigma
            new = self.mad(D.residuals(theta, self.y))
            if not new > 0:
                # More than half the rows fitted exactly: the scale's fixed point is 0, and
                # the fit at this (tiny) sigma is that exact fit.
                return res, sigma
            moved = abs(new - sigma) / sigma
            if moved <= 1e-2 * tol:
                # One more solve at the final sigma keeps fit and scale consistent.
                return self.exact(theta, new, tol=tol), new
            sigma, last = _secant_scale(sigma, new, last), (sigma, new)
            # Fits as exact as the scale is: a fit stopped at tol moves the MAD by about
            # tol, which would drown the last steps of the fixed point in noise.
            if tighten:
                inner = min(tol, max(1e-4 * moved, 1e-2 * tol))
            if self.budget() == 0:
                break
        self.measure_name = "the scale's relative change in the last fixed-point step"
        self.tolerance = 1e-2 * tol
        return _solver.Result(theta, res.n_iter, False, False, None, moved), sigma

    # -------------------------------------------------------------- plain GD
    def gd(self, theta, sigma, rng, r0=None):
        """Plain gradient descent; certified afterwards as the exact solver is (within 1000 tol)."""
        est, loss, D = self.est, self.loss, self.design
        prob, kernel = self.problem(loss, sigma)
        _, l2_strength = est._penalty_parts()
        curvature = loss.curvature_bound
        smooth = loss.smooth and curvature is not None and math.isfinite(curvature)
        if r0 is None:
            r0 = D.residuals(theta, self.y)
        L = D.lipschitz if D.lipschitz > 0 else 1.0
        base_step = 1.0
        if est.learning_rate == "auto":
            if smooth:
                base_step = est.eta0 * sigma**2 / (curvature * L + l2_strength)
            elif loss.smooth:
                # Unbounded curvature: the largest curvature on the starting
                # residuals (and at 0) bounds it while the residuals stay in that
                # range; the L1 rule below would overshoot, as psi is unbounded.
                kappa0 = float(np.max(loss.psi_deriv(np.append(r0 / sigma, 0.0))))
                base_step = est.eta0 * sigma**2 / (kappa0 * L + l2_strength)
            else:
                s0 = robust_start.weighted_median(np.abs(r0), D.sw) if r0.size else 1.0
                if not s0 > 0:
                    s0 = float(np.std(self.y)) or 1.0
                base_step = est.eta0 * s0 / L

        def step_at(t):
            if est.learning_rate == "constant":
                return est.eta0
            if est.learning_rate == "invscaling":
                return est.eta0 / (t + 1.0) ** est.power_t
            return base_step if smooth else base_step / math.sqrt(t + 1.0)

        full_batch = est.batch_size is None or est.batch_size >= D.n
        settings = _solver.GDSettings(
            step_at=step_at, momentum=est.momentum, nesterov=est.nesterov,
            batch_size=None if full_batch else int(est.batch_size), max_iter=self.budget(), tol=est.tol,
            n_iter_no_change=est.n_iter_no_change, smooth=smooth, verbose=est.verbose,
        )

        def epoch(th, prev, eta):
            return _epoch(kernel, prob, th, prev, eta, self.l2, D.d, D.n, settings, rng)

        res = _solver.plain_gd(prob, theta, settings, epoch=epoch, history=self.history)
        self.n_iter += res.n_iter
        if res.diverged:
            return res
        # The stopping rule says the iteration stalled; the certificate says where.
        self.tolerance = 1e3 * est.tol
        if not est._certify:
            return _solver.Result(res.theta, res.n_iter, False, False, res.objective)
        cert = self.certificate(res.theta, sigma, prob)
        return _solver.Result(res.theta, res.n_iter, res.converged and cert <= self.tolerance, False, res.objective, cert)

    def certificate(self, theta, sigma, prob):
        loss, D = self.loss, self.design
        if not loss.smooth:
            self.measure_name = "the relative duality gap of the LAD linear programme"
            if self.l1 is None and self.l2 is None:
                # The dual of the LAD vertex nearest the fit, when it is optimal: the gap
                # is then the fit's true relative excess objective.
                # A few pivots from a near-optimal iterate; more would cost more than the fit.
                finish = _solver.lad_vertex(D, theta, self.y, max_pivots=D.n_params + 10)
                if finish is not None:
                    return _solver.lad_dual_gap(D, theta, self.y, finish[1])
            box = (np.ones(D.n) if D.sw is None else D.sw) / D.sw_sum
            r = D.residuals(theta, self.y)
            scale = self.mad(r) or D.y_scale
            u = box * SmoothL1Loss(beta=1e-3 * scale).psi(r)
            return _solver.lad_dual_gap(D, theta, self.y, u, self.l1, self.l2)
        self.measure_name = "the Newton step to the minimizer, in standardized units,"
        if self.l1 is not None:
            return self._prox_distance(prob, theta, sigma)
        _, g = prob.value_grad(theta)
        return _solver.newton_distance(D, theta, self.y, loss, sigma, g, self._penalty_hessian())


def _epoch(kernel, prob, theta, prev, eta, l2, d, n, s, rng):
    """One epoch of mini-batch steps over a fresh shuffle of the rows."""
    m = s.momentum
    new = theta.copy()
    vel = theta - prev
    order = rng.permutation(n)
    for a in range(0, n, s.batch_size):
        rows = np.sort(order[a : a + s.batch_size])
        base = new + m * vel if m else new
        at = base if (s.nesterov and m) else new
        _, gb = kernel.value_grad(at, rows)
        if l2 is not None:
            gb[:d] += l2 * at[:d]
        nxt = prob.prox(base - eta * gb, eta)
        vel = nxt - new
        new = nxt
    return new
