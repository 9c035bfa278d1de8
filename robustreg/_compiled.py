"""The row pass compiled with numba: one read of X per iteration for large designs.

:class:`robustreg._gd.RowKernel` calls :func:`block_pass` on designs too large
for cache.  For each block of rows it returns what the numpy pass returns
(``sum v rho(u)``, ``X_b^T v psi(u)`` and ``sum v psi(u)`` with
``u = (y - X w - c) / sigma``), but reads each row of X once: the row's
residual, its loss and its share of ``X^T psi`` are computed while the row is
in registers, two rows at a time (four in float32).  The numpy pass reads each
block twice (``X_b w``, then ``X_b^T psi``), and between the two products the
interpreter and the elementwise passes over the residuals take their share.

The loss formulas are those of :mod:`robustreg.losses`, written per element;
each loss names its formula here and gives its constants
(:meth:`robustreg.losses.Loss.compiled_form`).  Those made of arithmetic and
square roots (L1, L2, Huber, Smooth L1, pseudo-Huber, Tukey, Geman-McClure)
are computed row by row as above.  Those built from exp and log (Welsch,
Cauchy, Barron) go a chunk of rows at a time (:func:`_rows_chunked`): the residuals of a few kilobytes of rows, then the
loss on all of them in vector lanes (:func:`_loss_chunk`, with exp, expm1 and
log1p written out below, since compiled code here can only call the C
library's one element at a time), then ``X^T psi`` from the rows still in the
first-level cache.  A user's own loss keeps the numpy pass.

Nothing here is compiled until a large design asks for it, and the machine
code is cached on disk, so a sweep of small fits never pays for numba.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

# Loss codes, one for each formula a loss's compiled_form names.  Those from
# _WELSCH on are built from exp and log: they go through the chunked pass, whose
# loss loop runs in vector lanes.
_FORMULAS = ("l1", "l2", "huber", "smooth_l1", "pseudo_huber", "tukey", "geman_mcclure",
             "welsch", "cauchy", "barron", "barron_0", "barron_2", "barron_neg_inf")
(_L1, _L2, _HUBER, _SMOOTH_L1, _PSEUDO_HUBER, _TUKEY, _GEMAN_MCCLURE,
 _WELSCH, _CAUCHY, _BARRON, _BARRON_0, _BARRON_2, _BARRON_NEG_INF) = range(len(_FORMULAS))
_CODES = {name: code for code, name in enumerate(_FORMULAS)}


def loss_code(loss):
    """``(code, width, shape)`` of the compiled pass for ``loss``, or None for the numpy pass.

    From :meth:`robustreg.losses.Loss.compiled_form`: ``width`` is the loss's
    width constant (delta, beta or c), ``shape`` Barron's alpha.
    """
    form = loss.compiled_form()
    if form is None:
        return None
    formula, width, shape = form
    return _CODES[formula], width, shape


# Compiled with numpy's error model (x / 0 is inf, no exception) and without
# the fast-math flags that assume finite values, so NaN and infinity pass through
# as in numpy and divergence is seen.  Reassociation lets the sums run in vector
# lanes; the other flags allow FMA and x / a as x * (1 / a): the same values to
# a few units in the last place.
_FLAGS = {"nogil": True, "cache": True, "error_model": "numpy", "fastmath": {"reassoc", "contract", "arcp"}}


@njit(inline="always", **_FLAGS)
def _rho_psi(code, x, width, one):
    """``(rho(x), psi(x))`` of loss ``code`` with its width constant (delta, beta or c).

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
        delta = width
        ax = abs(x)
        return (half * x * x if ax <= delta else delta * (ax - half * delta)), min(max(x, -delta), delta)
    if code == _SMOOTH_L1:
        beta = width
        ax = abs(x)
        return (half * x * x / beta if ax < beta else ax - half * beta), min(max(x / beta, -one), one)
    if code == _PSEUDO_HUBER:
        delta = width
        t = x / delta
        root = math.sqrt(one + t * t)
        return delta * delta * (t * t) / (root + one), x / root
    c = width
    if code == _TUKEY:
        t = x / c
        inside = one - min(t * t, one)
        return c * c / (two + two + two) * (one - inside * inside * inside), x * (inside * inside)
    # Geman-McClure
    t = x / c
    den = one + t * t
    return half * x * x / den, x / (den * den)


@njit(inline="always", **_FLAGS)
def _row(code, width, one, yi, xw, shift, inv_sigma, sw, i):
    """``(v rho(u), v psi(u))`` of row ``i``, u = (y_i - x_i w - shift) * inv_sigma.

    ``sw`` is None for unit weights: a type of its own, so the test below is
    settled at compile time.
    """
    rho, psi = _rho_psi(code, (yi - xw - shift) * inv_sigma, width, one)
    if sw is not None:
        v = sw[i]
        return v * rho, v * psi
    return rho, psi


@njit(**_FLAGS)
def _rows_by_2(X, y, sw, w, shift, inv_sigma, code, width, lo, hi, g):
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
        r0, p0 = _row(code, width, one, y[i], s0, shift, inv_sigma, sw, i)
        r1, p1 = _row(code, width, one, y[i + 1], s1, shift, inv_sigma, sw, i + 1)
        tot += r0 + r1
        gs += p0 + p1
        for j in range(d):
            acc[j] += p0 * X[i, j] + p1 * X[i + 1, j]
        i += 2
    while i < hi:
        s0 = zero
        for j in range(d):
            s0 += X[i, j] * w[j]
        r0, p0 = _row(code, width, one, y[i], s0, shift, inv_sigma, sw, i)
        tot += r0
        gs += p0
        for j in range(d):
            acc[j] += p0 * X[i, j]
        i += 1
    for j in range(d):
        g[j] += acc[j]
    return tot, gs


@njit(**_FLAGS)
def _rows_by_4(X, y, sw, w, shift, inv_sigma, code, width, lo, hi, g):
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
        r0, p0 = _row(code, width, one, y[i], s0, shift, inv_sigma, sw, i)
        r1, p1 = _row(code, width, one, y[i + 1], s1, shift, inv_sigma, sw, i + 1)
        r2, p2 = _row(code, width, one, y[i + 2], s2, shift, inv_sigma, sw, i + 2)
        r3, p3 = _row(code, width, one, y[i + 3], s3, shift, inv_sigma, sw, i + 3)
        tot += (r0 + r1) + (r2 + r3)
        gs += (p0 + p1) + (p2 + p3)
        for j in range(d):
            acc[j] += (p0 * X[i, j] + p1 * X[i + 1, j]) + (p2 * X[i + 2, j] + p3 * X[i + 3, j])
        i += 4
    for j in range(d):
        g[j] += acc[j]
    t, s = _rows_by_2(X, y, sw, w, shift, inv_sigma, code, width, i, hi, g)
    return tot + t, gs + s


# --- exp and log in vector lanes ------------------------------------------------------
# Compiled code here can call the C library's exp and log only one element at a
# time.  The losses built from them (Welsch, Cauchy, Barron) get these instead:
# plain arithmetic on the bits of a float, which the compiler runs in vector
# lanes.  Both are within a few units in the last place of numpy's, NaN and
# infinity included (tests/test_kernels.py).  They are compiled without
# reassociation, which would undo the split of ln 2 below; x / a may become
# x * (1 / a).
_EXACT = {"nogil": True, "cache": True, "error_model": "numpy", "fastmath": {"contract", "arcp"}}

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 = _LN2_HI + _LN2_LO; k * _LN2_HI is exact for |k| < 2^11
_LN2_LO = 1.90821492927058770002e-10
_SQRT2 = 1.4142135623730951
# Series coefficients, highest power first: expm1(r) = r + r^2 (1/2! + r/3! + ... + r^11/13!);
# log m = 2 atanh(s) = 2s + s z (2/3 + 2z/5 + ... + 2z^10/23), z = s^2.
_EXPM1_SERIES = tuple(1.0 / math.factorial(k) for k in range(13, 1, -1))
_ATANH_SERIES = tuple(2.0 / k for k in range(23, 1, -2))


@njit(inline="always", **_EXACT)
def _horner(x, coefficients):
    """The polynomial with these coefficients (highest power first) at ``x``."""
    p = 0.0
    for c in coefficients:
        p = c + x * p
    return p


def _bitcast(src, dst):
    """An intrinsic that reads the bits of a ``src`` value as a ``dst`` value (same width)."""

    @intrinsic
    def cast(typingctx, value):
        if value != src:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(dst))

        return dst(src), codegen

    return cast


_as_float = _bitcast(types.int64, types.float64)
_as_bits = _bitcast(types.float64, types.int64)


@njit(inline="always", **_EXACT)
def _exp_parts(x):
    """``(s1, s2, q)`` with ``exp(x) = s1 s2 (1 + q)``: ``x = k ln 2 + r``, ``|r| <= ln 2 / 2``.

    ``q = expm1(r)`` by its Taylor series to ``r^13`` (the remainder is below
    1e-17 of it); ``2^k = s1 s2``, two normal numbers, so that subnormal and
    huge results come out right.
    """
    xc = -746.0 if x < -746.0 else x  # exp is 0 below, inf above; NaN stays NaN
    xc = 710.0 if xc > 710.0 else xc
    z = xc * _LOG2E
    z = z if z == z else 0.0  # NaN: any k will do, r is NaN
    k = math.floor(z + 0.5)
    kf = float(k)
    r = (xc - kf * _LN2_HI) - kf * _LN2_LO
    q = r + r * (r * _horner(r, _EXPM1_SERIES))
    k1 = k >> 1
    return _as_float((k1 + 1023) << 52), _as_float((k - k1 + 1023) << 52), q


@njit(inline="always", **_EXACT)
def _expm1(x):
    """``(exp(x), expm1(x))`` of a float64: ``expm1(x) = 2^k q + (2^k - 1)``, exact in 2^k - 1."""
    s1, s2, q = _exp_parts(x)
    e = (q * s1 + s1) * s2
    s = s1 * s2  # 2^k, exact where it is used
    return e, (s * q + (s - 1.0) if (s > 1e-300 and s < 1e300) else e - 1.0)


@njit(inline="always", **_EXACT)
def _log1p(t):
    """``(log(1 + t), 1 / (1 + t))`` of a float64 ``t >= 0`` (or NaN).

    ``u = 1 + t = 2^e m`` with ``sqrt(1/2) <= m < sqrt(2)``; ``log m = 2 atanh(s)``,
    ``s = (m - 1) / (m + 1)``, by its series to ``s^23``; the rounding of
    ``u`` is added back as ``(t - (u - 1)) / u``.  One division,
    ``1 / (m (m + 1))``, serves both quotients and ``1 / u``.
    """
    u = 1.0 + t
    bits = _as_bits(u)
    e = ((bits >> 52) & 0x7FF) - 1023
    m = _as_float((bits & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = m > _SQRT2
    m = 0.5 * m if big else m
    e = e + 1 if big else e
    mp1 = m + 1.0
    inv = 1.0 / (m * mp1)
    s = (m - 1.0) * (m * inv)
    h = e >> 1  # 1 / u = 2^-e / m, 2^-e as two normal numbers
    inv_u = ((mp1 * inv) * _as_float((1023 - h) << 52)) * _as_float((1023 - (e - h)) << 52)
    z = s * s
    ef = float(e)
    res = ef * _LN2_HI + ((2.0 * s + s * (z * _horner(z, _ATANH_SERIES))) + (ef * _LN2_LO + (t - (u - 1.0)) * inv_u))
    if t < math.inf:
        return res, inv_u
    return t + t, (0.0 if t == math.inf else t)  # inf and NaN as numpy has them


@njit(**_EXACT)
def _loss_chunk(code, width, shape, x, m, rho, psi):
    """``rho[i], psi[i]`` of ``x[i]``, ``i < m``, for the losses built from exp and log.

    ``width`` is the loss's c, ``shape`` Barron's alpha.  The formulas are
    those of :mod:`robustreg.losses`; each loop runs in vector lanes.
    """
    c = width
    if code == _WELSCH:
        h = -0.5 * c * c
        for i in range(m):
            t = x[i] / c
            e, em1 = _expm1(-(t * t))
            rho[i] = h * em1
            psi[i] = x[i] * e
    elif code == _CAUCHY:
        h = 0.5 * c * c
        for i in range(m):
            t = x[i] / c
            u2 = t * t
            L, inv = _log1p(u2)
            rho[i] = h * L
            psi[i] = x[i] * inv
    elif code == _BARRON_2:
        w = 1.0 / c**2
        for i in range(m):
            t = x[i] / c
            rho[i] = 0.5 * (t * t)
            psi[i] = x[i] * w
    elif code == _BARRON_NEG_INF:
        w = 1.0 / c**2
        for i in range(m):
            t = x[i] / c
            e, em1 = _expm1(-0.5 * (t * t))
            rho[i] = -em1
            psi[i] = x[i] * (e * w)
    elif code == _BARRON_0:  # rho = log1p(u^2 / 2), psi = x / c^2 / (1 + u^2 / 2)
        w = 1.0 / c**2
        for i in range(m):
            t = x[i] / c
            L, inv = _log1p(0.5 * (t * t))
            rho[i] = L
            psi[i] = x[i] * (w * inv)
    else:  # Barron, alpha finite: L = log1p(u^2 / |alpha - 2|)
        # psi = x / c^2 exp((alpha / 2 - 1) L) = x / c^2 exp(alpha L / 2) / (1 + u^2 / |alpha - 2|):
        # one exp for rho and psi.  For alpha > 2, exp(alpha L / 2) overflows (and psi with it)
        # a little before numpy's psi does, at residuals beyond 1e300^(1/alpha) c: only in divergence.
        alpha = shape
        w = 1.0 / c**2
        s = abs(alpha - 2.0)
        lead = s / alpha
        for i in range(m):
            t = x[i] / c
            L, inv = _log1p((t * t) / s)
            e, em1 = _expm1(0.5 * alpha * L)
            rho[i] = lead * em1
            psi[i] = x[i] * (w * (e * inv))


_CHUNK_BYTES = 4096  # rows of X per chunk: they stay in the first-level cache for their second read


@njit(inline="always")
def _chunk_rows(itemsize, d):
    """Rows per chunk: about _CHUNK_BYTES of X, a multiple of 16 (whole vectors in the loss loop)."""
    return max(16, _CHUNK_BYTES // (itemsize * max(d, 1)) // 16 * 16)


@njit(**_FLAGS)
def _rows_chunked(X, y, sw, w, shift, inv_sigma, code, width, shape, lo, hi, g, x, rho, psi):
    """As :func:`_rows_by_2`, for the losses built from exp and log, a chunk of rows at a time.

    For each chunk: the residuals (two rows at a time), then the loss on all of
    them in vector lanes (in float64, as numpy's losses compute), then
    ``X^T psi`` from the rows still in cache.  ``x``, ``rho``, ``psi`` are
    float64 buffers of at least a chunk.
    """
    d = X.shape[1]
    dt = X.dtype.type
    zero = dt(0.0)
    chunk = min(len(x), _chunk_rows(X.itemsize, d))
    tot = 0.0
    gs = 0.0
    acc = np.zeros(d, dtype=X.dtype)
    for start in range(lo, hi, chunk):
        m = min(chunk, hi - start)
        i = 0
        while i + 2 <= m:
            s0 = zero
            s1 = zero
            for j in range(d):
                s0 += X[start + i, j] * w[j]
                s1 += X[start + i + 1, j] * w[j]
            x[i] = (y[start + i] - s0 - shift) * inv_sigma
            x[i + 1] = (y[start + i + 1] - s1 - shift) * inv_sigma
            i += 2
        if i < m:
            s0 = zero
            for j in range(d):
                s0 += X[start + i, j] * w[j]
            x[i] = (y[start + i] - s0 - shift) * inv_sigma
        _loss_chunk(code, width, shape, x, m, rho, psi)
        if sw is not None:
            for i in range(m):
                rho[i] *= sw[start + i]
                psi[i] *= sw[start + i]
        i = 0
        while i + 2 <= m:
            tot += rho[i] + rho[i + 1]
            gs += psi[i] + psi[i + 1]
            p0 = dt(psi[i])
            p1 = dt(psi[i + 1])
            for j in range(d):
                acc[j] += p0 * X[start + i, j] + p1 * X[start + i + 1, j]
            i += 2
        if i < m:
            tot += rho[i]
            gs += psi[i]
            p0 = dt(psi[i])
            for j in range(d):
                acc[j] += p0 * X[start + i, j]
    for j in range(d):
        g[j] += acc[j]
    return tot, gs


@njit(nogil=True, cache=True, error_model="numpy")
def block_pass(X, y, sw, w, shift, inv_sigma, code, width, shape, rows, k0, k1, parts, gXs, gsums):
    """Fill ``parts[k], gXs[k], gsums[k]`` for the blocks ``k0 <= k < k1`` of ``rows`` rows.

    The residuals are ``(y - X w - shift) * inv_sigma``; ``(code, width,
    shape)`` is the loss (:func:`loss_code`).  ``sw`` is None for unit weights.
    Each row is read from memory once: its residual, its loss and its share of
    ``X^T psi`` are computed while it is in registers, a few rows at a time, or,
    for the losses built from exp and log, while its chunk is in the
    first-level cache.  Releases the GIL.
    """
    n, d = X.shape
    dt = X.dtype.type
    g = np.empty(d, dtype=X.dtype)
    size = _chunk_rows(X.itemsize, d)
    x = np.empty(size)
    rho = np.empty(size)
    psi = np.empty(size)
    for k in range(k0, k1):
        lo = k * rows
        hi = min(lo + rows, n)
        g[:] = 0
        if code >= _WELSCH:
            part, gsum = _rows_chunked(X, y, sw, w, dt(shift), dt(inv_sigma), code, width, shape, lo, hi, g, x, rho, psi)
        elif X.itemsize == 8:
            part, gsum = _rows_by_2(X, y, sw, w, dt(shift), dt(inv_sigma), code, dt(width), lo, hi, g)
        else:
            part, gsum = _rows_by_4(X, y, sw, w, dt(shift), dt(inv_sigma), code, dt(width), lo, hi, g)
        parts[k] = part
        gsums[k] = gsum
        for j in range(d):
            gXs[k, j] = g[j]
