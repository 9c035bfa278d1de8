"""The maths of gradient descent on a robust loss, as private pure pieces.

The optimizer works on the design

.. math::

    Z = [X, \\mathbf 1]\\, T, \\qquad
    T = \\begin{pmatrix} \\operatorname{diag}(1/s) & 0 \\\\ -\\mu^\\top/s & 1 \\end{pmatrix}

(the column of ones only with an intercept; :math:`\\mu = 0, s = 1` without
standardization; :class:`Design` keeps them as ``col_center`` and
``col_scale``) but never forms it: :math:`Z\\theta = X w + c` with
:math:`w = \\theta_{1:d}/s` and :math:`c = \\theta_{d+1} - \\mu^\\top w`, and
:math:`Z^\\top g` follows from :math:`X^\\top g` and :math:`\\sum g`.  So a fit
needs no copy of ``X`` of its own.

The smooth part of the objective is

.. math::

    F(\\theta) = \\frac{\\sum_i v_i\\, \\rho(r_i/\\sigma)}{\\sum_i v_i}
        + \\tfrac12 \\alpha (1-\\lambda) \\lVert \\theta_{1:d} \\rVert_2^2,
    \\qquad r = y - Z\\theta,

with sample weights :math:`v`, scale :math:`\\sigma` (1 unless a scale is
used) and the L1 part :math:`\\alpha\\lambda\\lVert\\theta_{1:d}\\rVert_1`
handled by a proximal step.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .losses import L2Loss, Loss

# Bytes of X per block of the fused residual/gradient pass: the block stays
# in cache between ``X_b @ w`` and ``X_b.T @ psi``, and blocks are large
# enough that numpy's per-call overhead stays small.
_BLOCK_BYTES = 1 << 21


# Threads for the row pass of large designs.  Below this size the pass is
# dispatch-bound and threads only add overhead (and sweeps already run jobs
# side by side).
_THREADED_BYTES = 1 << 24
_POOL = {"pid": None, "pool": None}


def _pool_for(design):
    """A thread pool and its size for this design, or (None, 1) for a serial pass."""
    n_threads = min(os.cpu_count() or 1, len(design.blocks) // 4)
    if n_threads < 2 or design.X.nbytes < _THREADED_BYTES:
        return None, 1
    if _POOL["pid"] != os.getpid():  # threads do not survive a fork: make them anew
        _POOL["pool"] = ThreadPoolExecutor(max_workers=os.cpu_count(), thread_name_prefix="robustreg-gd")
        _POOL["pid"] = os.getpid()
    return _POOL["pool"], n_threads


# The compiled row pass (robustreg._compiled) takes over from this size of X
# (C-ordered) up.
_COMPILED_BYTES = 1 << 24

#: Switches for tests and benchmarks only, never changed by the package itself
#: (set them with ``monkeypatch.setitem``):
#:
#: * ``"compiled"``: False keeps the numpy row pass on every design, however large;
#: * ``"gram"``: False makes the L2 loss go by the row pass (:class:`RowKernel`)
#:   instead of :class:`GramKernel` on X^T X (read by ``robustreg._fit``).
_TEST_HOOKS = {"compiled": True, "gram": True}


class Design:
    """The (possibly standardized, intercept-augmented) design seen by the optimizer.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    sample_weight : ndarray of shape (n,) or None
        ``None`` means unit weights (and faster sums).
    fit_intercept, standardize : bool
    """

    def __init__(self, X, sample_weight, fit_intercept: bool, standardize: bool):
        self.X = X
        self.sw = sample_weight
        self.n, self.d = X.shape
        self.fit_intercept = fit_intercept
        #: Number of the optimizer's parameters: the slopes, and the intercept if any.
        self.n_params = self.d + int(fit_intercept)
        self.sw_sum = float(self.n if sample_weight is None else np.sum(sample_weight))
        rows = max(64, _BLOCK_BYTES // max(1, X.itemsize * self.d))
        self.blocks = [(a, min(a + rows, self.n)) for a in range(0, self.n, rows)]
        self.gram_raw = self._raw_gram()  # [X, 1]^T V [X, 1] / sum(v)
        d = self.d
        mean = self.gram_raw[d, :d] if fit_intercept else np.zeros(d)
        #: Columns that are constant (with an intercept): their effect is the
        #: intercept's, so the optimizer gives them no coordinate (coefficient 0).
        self.constant_cols = np.zeros(d, dtype=bool)
        if standardize:
            second = np.diag(self.gram_raw)[:d]
            var = second - mean**2 if fit_intercept else second
            scale = np.sqrt(np.maximum(var, 0.0))
            if fit_intercept and self.n:
                # Exactly, not from the variance (second - mean^2 cancels to rounding noise),
                # and only where the variance leaves room for doubt: no extra pass otherwise.
                doubt = np.flatnonzero(var <= 1e-6 * np.maximum(second, np.finfo(float).tiny))
                if doubt.size:
                    cols = X[:, doubt]
                    self.constant_cols[doubt] = cols.max(axis=0) == cols.min(axis=0)
            # A column with no spread to standardize is left as is.
            scale[self.constant_cols | (scale <= 1e-12 * np.maximum(1.0, np.sqrt(second)))] = 1.0
            col_center, col_scale = (mean if fit_intercept else np.zeros(d)), scale
        else:
            col_center, col_scale = np.zeros(d), np.ones(d)
        #: mu and s of the standardization z = (x - mu) / s of each column (0 and 1 without it).
        self.col_center, self.col_scale = col_center, col_scale
        #: 1/s, and 0 for a constant column.
        self.inv_col_scale = np.where(self.constant_cols, 0.0, 1.0 / self.col_scale)
        self.y_scale = 1.0  # the spread of y that distances are measured in (the estimator sets it)
        T = np.zeros((d + 1, self.n_params))
        T[:d, :d] = np.diag(self.inv_col_scale)
        if fit_intercept:
            T[d, :d] = -self.col_center * self.inv_col_scale
            T[d, d] = 1.0
        self._T = T if fit_intercept else T[:d, :d]
        #: Z^T V Z / sum(v), the Hessian of the mean squared residual / 2.
        self.gram = self._to_optimizer(self.gram_raw)
        #: Largest eigenvalue of Z^T V Z / sum(v): the curvature scale of every loss.
        self.lipschitz = float(np.linalg.eigvalsh(self.gram)[-1]) if self.n_params else 0.0
        #: No standardization (T is the identity): the optimizer's parameters are the coefficients.
        self.params_are_coefs = not standardize
        # A design that fits in cache is dispatch-bound, and OpenBLAS's
        # matrix-vector products on short C-ordered rows run at half speed:
        # one Fortran-ordered copy (one block, at most 2 MiB) halves both
        # products.  With a column of ones beside X, the intercept and
        # sum(psi) come out of the same two products.
        self.X_ones = None
        if len(self.blocks) == 1:
            ones = self.fit_intercept
            self.X_ones = np.empty((self.n, d + int(ones)), dtype=X.dtype, order="F")
            self.X_ones[:, :d] = X
            if ones:
                self.X_ones[:, d] = 1.0
            self.X = self.X_ones[:, :d]  # a view, Fortran-ordered too

    def _to_optimizer(self, A):
        """``T^T A T``: a matrix of the raw columns ``[X, 1]`` in the optimizer's coordinates."""
        A = A if self.fit_intercept else A[: self.d, : self.d]
        M = self._T.T @ A @ self._T
        return 0.5 * (M + M.T)

    def _raw_gram(self, sw=None, total=None):
        """``[X, 1]^T diag(sw) [X, 1] / total`` (``sw`` the sample weights by default)."""
        X, n, d = self.X, self.n, self.d
        if sw is None and total is None:
            sw = self.sw
        G = np.empty((d + 1, d + 1))
        if sw is None:
            G[:d, :d] = X.T @ X
            colsum = X.sum(axis=0, dtype=np.float64)
            total = float(n)
        else:
            G[:d, :d] = 0.0
            colsum = np.zeros(d)
            for a, b in self.blocks:  # block by block: no weighted copy of all of X
                Xb, vb = X[a:b], sw[a:b]
                G[:d, :d] += Xb.T @ (vb[:, None] * Xb)
                colsum += vb @ Xb
            G[d, d] = float(np.sum(sw))
            total = float(np.sum(sw)) if total is None else total
        G[d, :d] = G[:d, d] = colsum
        if sw is None:
            G[d, d] = total
        return G / total

    # --- parameter maps -------------------------------------------------------
    def to_original(self, theta):
        """Map optimizer parameters to ``(coef, intercept)`` in the units of X."""
        if self.params_are_coefs:
            return theta[: self.d], (float(theta[self.d]) if self.fit_intercept else 0.0)
        w = theta[: self.d] * self.inv_col_scale
        b = float(theta[self.d] - self.col_center @ w) if self.fit_intercept else 0.0
        return w, b

    def from_original(self, coef, intercept):
        """Inverse of :meth:`to_original`."""
        theta = np.empty(self.n_params)
        theta[: self.d] = np.where(self.constant_cols, 0.0, np.asarray(coef, dtype=float) * self.col_scale)
        if self.fit_intercept:
            # A constant column's part of the fit is the intercept's.
            theta[self.d] = intercept + self.col_center @ np.asarray(coef, dtype=float)
        return theta

    def residuals(self, theta, y):
        w, b = self.to_original(theta)
        return y - self.X @ w.astype(self.X.dtype, copy=False) - b

    # --- explicit rows and products, for certificates and exact finishes ------
    @property
    def col_mean(self):
        return self.gram_raw[self.d, : self.d] if self.fit_intercept else np.zeros(self.d)

    @property
    def col_sd(self):
        """Standard deviations of the columns of X (1 for a constant column)."""
        mean = self.col_mean
        var = np.diag(self.gram_raw)[: self.d] - mean**2
        sd = np.sqrt(np.maximum(var, 0.0))
        sd[sd <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
        return sd

    def rows(self, idx):
        """The rows ``idx`` of ``Z``, the design in the optimizer's coordinates."""
        Xi = np.asarray(self.X[idx], dtype=np.float64)
        Z = np.empty((len(idx), self.n_params))
        Z[:, : self.d] = (Xi - self.col_center) * self.inv_col_scale
        if self.fit_intercept:
            Z[:, self.d] = 1.0
        return Z

    def target(self, idx, y):
        return np.asarray(y[idx], dtype=np.float64)

    def columns(self, cols):
        """Columns ``cols`` of ``Z`` (index ``d`` is the intercept's), as an (n, k) array."""
        out = np.empty((self.n, len(cols)))
        for k, j in enumerate(cols):
            out[:, k] = 1.0 if j == self.d else (np.asarray(self.X[:, j], dtype=np.float64) - self.col_center[j]) * self.inv_col_scale[j]
        return out

    def zt(self, u):
        """``Z^T u`` in the optimizer's coordinates."""
        gX = np.zeros(self.d)
        for a, b in self.blocks:
            gX += np.asarray(self.X[a:b], dtype=np.float64).T @ u[a:b]
        total = float(np.sum(u))
        g = np.empty(self.n_params)
        g[: self.d] = (gX - self.col_center * total) * self.inv_col_scale
        if self.fit_intercept:
            g[self.d] = total
        return g

    def weighted_gram(self, h):
        """``Z^T V diag(h) Z / sum(v)``, from the raw columns block by block.

        Where most ``h`` are 1 (the quadratic zone of Huber or Smooth L1),
        the Gram matrix already at hand is corrected by the other rows alone.
        """
        h = np.asarray(h, dtype=np.float64)
        if h.size and np.all(h == h[0]):
            return h[0] * self.gram  # a constant curvature (L2): no pass over X
        other = np.flatnonzero(h != 1.0)
        if len(other) <= self.n // 4:
            hv = h[other] - 1.0
            if self.sw is not None:
                hv = hv * self.sw[other]
            Xo = np.asarray(self.X[other], dtype=np.float64)
            D = np.zeros((self.d + 1, self.d + 1))
            D[: self.d, : self.d] = Xo.T @ (hv[:, None] * Xo)
            D[self.d, : self.d] = D[: self.d, self.d] = hv @ Xo
            D[self.d, self.d] = float(np.sum(hv))
            return self._to_optimizer(self.gram_raw + D / self.sw_sum)
        hv = h if self.sw is None else h * self.sw
        return self._to_optimizer(self._raw_gram(hv, self.sw_sum))

    def normal_equations(self, y):
        """Least squares in the optimizer's coordinates from ``Z^T V Z`` and ``Z^T V y`` (one pass)."""
        vy = np.asarray(y, dtype=np.float64) if self.sw is None else self.sw * y
        b = self.zt(vy) / self.sw_sum
        lam, V = np.linalg.eigh(self.gram)
        keep = lam > 1e-12 * max(float(lam[-1]), np.finfo(float).tiny)
        return V[:, keep] @ ((V[:, keep].T @ b) / lam[keep])

    def std_norm(self, v):
        """Euclidean length of a parameter difference in standardized coordinates.

        Slopes times the columns' standard deviations; the intercept as the
        change of the fit at the mean of X.  Divided by sd(y), it is a
        distance in standardized units.
        """
        w = v[: self.d] * self.inv_col_scale
        out = w * self.col_sd
        if self.fit_intercept:
            c = float(v[self.d] - self.col_center @ w) + float(self.col_mean @ w)
            return float(np.sqrt(out @ out + c * c))
        return float(np.linalg.norm(out))


class RowKernel:
    """Objective and gradient by one fused, row-blocked pass over X.

    For each block of rows: ``r_b = y_b - X_b w - c``; ``u_b = r_b / sigma``;
    accumulate ``sum v rho(u_b)`` and ``X_b^T (v psi(u_b))``.  Only block-sized
    temporaries are made.
    """

    def __init__(self, design: Design, y, loss: Loss):
        self.design, self.y, self.loss = design, y, loss
        self.sigma = 1.0
        self._fused = loss.fused_form()
        rows = max((b - a for a, b in design.blocks), default=0)
        self.dtype = design.X.dtype
        self._r = np.empty(rows, dtype=self.dtype)
        self._psi = np.empty(rows, dtype=self.dtype)
        self._extra = []  # buffers of the other threads
        # The compiled pass, for designs too large for cache (see robustreg._compiled).
        self._compiled = None
        X = design.X
        if _TEST_HOOKS["compiled"] and X.nbytes >= _COMPILED_BYTES and X.flags.c_contiguous and len(design.blocks) > 1:
            try:
                from . import _compiled
            except ImportError:  # numba missing on this platform: the numpy pass
                _compiled = None
            self._compiled = None if _compiled is None else _compiled.loss_code(loss)
            if self._compiled is not None:
                self._compiled_pass = _compiled.block_pass
                self._rows = design.blocks[0][1]
                self.y = np.ascontiguousarray(y, dtype=self.dtype)  # the pass reads y in X's precision

    def value_grad(self, theta, rows=None):
        """Return ``(objective, gradient)`` of the data term at ``theta``.

        ``rows`` restricts the sums to a subset of rows (mini-batches).
        """
        D, y = self.design, self.y
        w, c = D.to_original(theta)
        if self.dtype != np.float64:
            # Products in the data's precision: no float64 copy of a block.
            w = w.astype(self.dtype)
        inv_sigma = 1.0 / self.sigma
        if rows is None and D.sw is None and D.X_ones is not None:
            # The common small case, with as few numpy calls as possible:
            # r = y - [X 1] [w; c], then [X 1]^T psi = [X^T psi; sum psi].
            r = self._r
            wc = theta if (D.params_are_coefs and self.dtype == np.float64) else (
                np.append(w, c).astype(self.dtype) if D.fit_intercept else w
            )
            np.matmul(D.X_ones, wc, out=r)
            np.subtract(y, r, out=r)
            if inv_sigma != 1.0:
                r *= inv_sigma
            total, psi, factor = self._fused(r, self._psi)
            g_all = (D.X_ones.T @ psi).astype(np.float64, copy=False)
            if D.fit_intercept:
                return total / D.sw_sum, self._finish(g_all[: D.d], float(g_all[D.d]), factor, D.sw_sum, inv_sigma)
            return total / D.sw_sum, self._finish(g_all, float(np.sum(psi, dtype=np.float64)), factor, D.sw_sum, inv_sigma)
        if rows is None:
            wsum = D.sw_sum
            nb = len(D.blocks)
            parts = np.empty(nb)
            gXs = np.empty((nb, D.d))
            gsums = np.empty(nb)
            pool, n_threads = _pool_for(D)
            run = self._run_blocks
            if self._compiled is not None:
                run = self._run_blocks_compiled
                w = np.ascontiguousarray(w, dtype=self.dtype)
            if pool is None:
                run(0, nb, w, c, inv_sigma, parts, gXs, gsums, 0)
            else:
                # Contiguous runs of blocks, one per thread, each with its own
                # buffers; numpy and the compiled pass release the GIL.
                cuts = np.linspace(0, nb, n_threads + 1).astype(int)
                futures = [
                    pool.submit(run, a, b, w, c, inv_sigma, parts, gXs, gsums, k)
                    for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:]))
                ]
                for f in futures:
                    f.result()
            # Summed in block order whatever the threads did: the same bits every time.
            total = 0.0
            gX = np.zeros(D.d)
            gsum = 0.0
            for k in range(nb):
                total += parts[k]
                gX += gXs[k]
                gsum += gsums[k]
            return total / wsum, self._finish(gX, gsum, 1.0, wsum, inv_sigma)
        Xb, yb = D.X[rows], y[rows]
        vb = None if D.sw is None else D.sw[rows]
        wsum = float(len(rows) if D.sw is None else np.sum(vb))
        part, gX, gsum = self._block(Xb, yb, vb, w, c, inv_sigma, np.empty(len(rows), self.dtype), np.empty(len(rows), self.dtype))
        return part / wsum, self._finish(gX, gsum, 1.0, wsum, inv_sigma)

    def _buffers(self, k):
        if k == 0:
            return self._r, self._psi
        while len(self._extra) < k:
            self._extra.append((np.empty_like(self._r), np.empty_like(self._psi)))
        return self._extra[k - 1]

    def _run_blocks(self, k0, k1, w, c, inv_sigma, parts, gXs, gsums, thread):
        D, y = self.design, self.y
        rbuf, psibuf = self._buffers(thread)
        for k in range(k0, k1):
            a, b = D.blocks[k]
            vb = None if D.sw is None else D.sw[a:b]
            parts[k], gXs[k], gsums[k] = self._block(D.X[a:b], y[a:b], vb, w, c, inv_sigma, rbuf, psibuf)

    def _run_blocks_compiled(self, k0, k1, w, c, inv_sigma, parts, gXs, gsums, thread):
        D, (code, width, shape) = self.design, self._compiled
        self._compiled_pass(
            D.X, self.y, D.sw, w, c, inv_sigma, code, width, shape, self._rows, k0, k1, parts, gXs, gsums
        )

    def _block(self, Xb, yb, vb, w, c, inv_sigma, rbuf, psibuf):
        """``(sum v rho(u), X_b^T v psi(u), sum v psi(u))`` for one block, u = (y - Xw - c)/sigma."""
        m = len(yb)
        r = rbuf[:m]
        out = psibuf[:m]
        np.matmul(Xb, w, out=r)
        np.subtract(yb, r, out=r)
        if c:
            r -= c
        if inv_sigma != 1.0:
            r *= inv_sigma
        if vb is None:
            part, psi, factor = self._fused(r, out)
        else:
            # Weighted sums need rho itself; weights are rare on the hot path.
            part = float(vb @ self.loss.rho(r))
            psi, factor = self.loss.psi(r) * vb, 1.0
        gX = (Xb.T @ psi).astype(np.float64, copy=False)
        if factor != 1.0:
            gX = gX * factor
        return part, gX, factor * float(np.sum(psi, dtype=np.float64))

    def _finish(self, gX, gsum, factor, wsum, inv_sigma):
        """Gradient in the optimizer's coordinates from X^T psi and sum(psi)."""
        D = self.design
        g = np.empty(D.n_params)
        g[: D.d] = gX if D.params_are_coefs else (gX - D.col_center * gsum) * D.inv_col_scale
        if D.fit_intercept:
            g[D.d] = gsum
        g *= -factor * inv_sigma / wsum
        return g


class GramKernel:
    """The L2 loss from sufficient statistics: O(p^2) per iteration after one pass.

    .. math::

        F(\\theta) = \\overline{y^2} - 2\\theta^\\top b + \\theta^\\top G\\theta,
        \\qquad \\nabla F = 2(G\\theta - b),

    with :math:`G = Z^\\top V Z/\\sum v`, :math:`b = Z^\\top V y / \\sum v`.
    Centering y first keeps the cancellation in :math:`F` small.
    """

    def __init__(self, design: Design, y, loss: Loss):
        if not isinstance(loss, L2Loss):
            raise TypeError("GramKernel applies to the L2 loss only")
        D = design
        self.design, self.loss, self.sigma = D, loss, 1.0
        sw = D.sw
        # With an intercept, work with y centred (its mean is absorbed by a
        # shift of the intercept), so that F is not a difference of large numbers.
        ybar = float(np.mean(y) if sw is None else (sw @ y) / D.sw_sum) if D.fit_intercept else 0.0
        yc = y - ybar if ybar else y
        vy = yc if sw is None else sw * yc
        b = np.empty(D.n_params)
        Xty = (D.X.T @ vy) / D.sw_sum
        ysum = float(np.sum(vy)) / D.sw_sum
        b[: D.d] = (Xty - D.col_center * ysum) * D.inv_col_scale
        if D.fit_intercept:
            b[D.d] = ysum
        self.b = b
        self.yy = float(vy @ yc) / D.sw_sum
        self.shift = np.zeros(D.n_params)
        if D.fit_intercept:
            self.shift[D.d] = ybar

    def value_grad(self, theta, rows=None):
        if rows is not None:
            raise ValueError("GramKernel works on the full batch only")
        t = theta - self.shift
        Gt = self.design.gram @ t
        value = self.yy - 2.0 * (t @ self.b) + t @ Gt
        return max(value, 0.0), 2.0 * (Gt - self.b)


def soft_threshold(v, thresh):
    """Proximal map of ``thresh * ||v||_1``: ``sign(v) max(|v| - thresh, 0)``."""
    return np.sign(v) * np.maximum(np.abs(v) - thresh, 0.0)
