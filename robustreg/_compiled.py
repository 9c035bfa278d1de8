"""The row pass compiled with numba: one read of X per iteration for large designs.

:class:`robustreg._gd.RowKernel` calls :func:`block_pass` on designs too large
for cache.  For each block of rows it returns what the numpy pass returns
(``sum v rho(u)``, ``X_b^T v psi(u)`` and ``sum v psi(u)`` with
``u = (y - X w - c) / sigma``), but reads each row of X once: the row's
residual, its loss and its share of ``X^T psi`` are computed while the row is
in registers, two rows at a time (four in float32).  The numpy pass reads each
block twice (``X_b w``, then ``X_b^T psi``), and between the two products the
interpreter and the elementwise passes over the residuals take their share.

The loss formulas are those of :mod:`robustreg.losses`, written per element,
for the losses made of arithmetic and square roots (L1, L2, Huber, Smooth L1,
pseudo-Huber, Tukey, Geman-McClure).  Losses built from exp and log (Welsch,
Cauchy, Barron) keep the numpy pass: numpy evaluates those functions in vector
lanes, while compiled code here calls the C library once per element, which
costs more than the second read of X it would save.  So does a user's own loss.

Nothing here is compiled until a large design asks for it, and the machine
code is cached on disk, so a sweep of small fits never pays for numba.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .losses import GemanMcClureLoss, HuberLoss, L1Loss, L2Loss, PseudoHuberLoss, SmoothL1Loss, TukeyBiweightLoss

# Loss codes of the row loop.
_L1, _L2, _HUBER, _SMOOTH_L1, _PSEUDO_HUBER, _TUKEY, _GEMAN_MCCLURE = range(7)


def loss_code(loss):
    """``(code, tuning constant)`` of the compiled pass for ``loss``, or None for the numpy pass."""
    kind = type(loss)
    if kind is L1Loss or (kind is SmoothL1Loss and loss.beta == 0):
        return _L1, 0.0
    if kind is L2Loss:
        return _L2, 0.0
    if kind in (HuberLoss, PseudoHuberLoss):
        return (_HUBER if kind is HuberLoss else _PSEUDO_HUBER), loss.delta
    if kind is SmoothL1Loss:
        return _SMOOTH_L1, loss.beta
    if kind in (TukeyBiweightLoss, GemanMcClureLoss):
        return (_TUKEY if kind is TukeyBiweightLoss else _GEMAN_MCCLURE), loss.c
    return None


# Compiled with numpy's error model (x / 0 is inf, no exception) and without
# the fast-math flags that assume finite values, so NaN and infinity pass through
# as in numpy and divergence is seen.  Reassociation lets the sums run in vector
# lanes; the other flags allow FMA and x / a as x * (1 / a): the same values to
# a few units in the last place.
_FLAGS = {"nogil": True, "cache": True, "error_model": "numpy", "fastmath": {"reassoc", "contract", "arcp"}}


@njit(inline="always", **_FLAGS)
def _rho_psi(code, x, a, one):
    """``(rho(x), psi(x))`` of loss ``code`` with its tuning constant ``a``.

    ``one`` is 1 in the data's precision: every constant derives from it, so
    float32 data is computed in float32.
    """
    two = one + one
    half = one / two
    if code == _L1:
        return abs(x), np.sign(x)
    if code == _L2:
        return x * x, two * x
    if code == _HUBER:
        ax = abs(x)
        return (half * x * x if ax <= a else a * (ax - half * a)), min(max(x, -a), a)
    if code == _SMOOTH_L1:
        ax = abs(x)
        return (half * x * x / a if ax < a else ax - half * a), min(max(x / a, -one), one)
    if code == _PSEUDO_HUBER:
        t = x / a
        root = math.sqrt(one + t * t)
        return a * a * (t * t) / (root + one), x / root
    if code == _TUKEY:
        t = x / a
        inside = one - min(t * t, one)
        return a * a / (two + two + two) * (one - inside * inside * inside), x * (inside * inside)
    # Geman-McClure
    t = x / a
    den = one + t * t
    return half * x * x / den, x / (den * den)


@njit(inline="always", **_FLAGS)
def _row(code, a, one, yi, xw, shift, inv_sigma, sw, i):
    """``(v rho(u), v psi(u))`` of row ``i``, u = (y_i - x_i w - shift) * inv_sigma.

    ``sw`` is None for unit weights: a type of its own, so the test below is
    settled at compile time.
    """
    rho, psi = _rho_psi(code, (yi - xw - shift) * inv_sigma, a, one)
    if sw is not None:
        v = sw[i]
        return v * rho, v * psi
    return rho, psi


@njit(**_FLAGS)
def _rows_by_2(X, y, sw, w, shift, inv_sigma, code, a, lo, hi, g):
    """Rows ``lo <= i < hi`` two at a time: ``(sum v rho, sum v psi)``, and ``g += X^T v psi``."""
    d = X.shape[1]
    one = X.dtype.type(1.0)
    zero = X.dtype.type(0.0)
    tot = 0.0
    gs = 0.0
    acc = np.zeros(d, dtype=X.dtype)  # local: the compiler knows it aliases nothing
    i = lo
    while i + 2 <= hi:
        s0 = zero
        s1 = zero
        for j in range(d):
            s0 += X[i, j] * w[j]
            s1 += X[i + 1, j] * w[j]
        r0, p0 = _row(code, a, one, y[i], s0, shift, inv_sigma, sw, i)
        r1, p1 = _row(code, a, one, y[i + 1], s1, shift, inv_sigma, sw, i + 1)
        tot += r0 + r1
        gs += p0 + p1
        for j in range(d):
            acc[j] += p0 * X[i, j] + p1 * X[i + 1, j]
        i += 2
    while i < hi:
        s0 = zero
        for j in range(d):
            s0 += X[i, j] * w[j]
        r0, p0 = _row(code, a, one, y[i], s0, shift, inv_sigma, sw, i)
        tot += r0
        gs += p0
        for j in range(d):
            acc[j] += p0 * X[i, j]
        i += 1
    for j in range(d):
        g[j] += acc[j]
    return tot, gs


@njit(**_FLAGS)
def _rows_by_4(X, y, sw, w, shift, inv_sigma, code, a, lo, hi, g):
    """As :func:`_rows_by_2`, four rows at a time (for float32, whose vector lanes are twice as many)."""
    d = X.shape[1]
    one = X.dtype.type(1.0)
    zero = X.dtype.type(0.0)
    tot = 0.0
    gs = 0.0
    acc = np.zeros(d, dtype=X.dtype)
    i = lo
    while i + 4 <= hi:
        s0 = zero
        s1 = zero
        s2 = zero
        s3 = zero
        for j in range(d):
            s0 += X[i, j] * w[j]
            s1 += X[i + 1, j] * w[j]
            s2 += X[i + 2, j] * w[j]
            s3 += X[i + 3, j] * w[j]
        r0, p0 = _row(code, a, one, y[i], s0, shift, inv_sigma, sw, i)
        r1, p1 = _row(code, a, one, y[i + 1], s1, shift, inv_sigma, sw, i + 1)
        r2, p2 = _row(code, a, one, y[i + 2], s2, shift, inv_sigma, sw, i + 2)
        r3, p3 = _row(code, a, one, y[i + 3], s3, shift, inv_sigma, sw, i + 3)
        tot += (r0 + r1) + (r2 + r3)
        gs += (p0 + p1) + (p2 + p3)
        for j in range(d):
            acc[j] += (p0 * X[i, j] + p1 * X[i + 1, j]) + (p2 * X[i + 2, j] + p3 * X[i + 3, j])
        i += 4
    for j in range(d):
        g[j] += acc[j]
    t, s = _rows_by_2(X, y, sw, w, shift, inv_sigma, code, a, i, hi, g)
    return tot + t, gs + s


@njit(nogil=True, cache=True, error_model="numpy")
def block_pass(X, y, sw, w, c, inv_sigma, code, const, rows, k0, k1, parts, gXs, gsums):
    """Fill ``parts[k], gXs[k], gsums[k]`` for the blocks ``k0 <= k < k1`` of ``rows`` rows.

    ``sw`` is None for unit weights.  Each row is read once: its residual, its
    loss and its share of ``X^T psi`` are computed while it is in registers, a
    few rows at a time.  Releases the GIL.
    """
    n, d = X.shape
    dt = X.dtype.type
    g = np.empty(d, dtype=X.dtype)
    for k in range(k0, k1):
        a = k * rows
        b = min(a + rows, n)
        g[:] = 0
        if X.itemsize == 8:
            part, gsum = _rows_by_2(X, y, sw, w, dt(c), dt(inv_sigma), code, dt(const), a, b, g)
        else:
            part, gsum = _rows_by_4(X, y, sw, w, dt(c), dt(inv_sigma), code, dt(const), a, b, g)
        parts[k] = part
        gsums[k] = gsum
        for j in range(d):
            gXs[k, j] = g[j]
