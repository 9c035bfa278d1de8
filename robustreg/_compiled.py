"""The row pass compiled with numba: one read of X per iteration for large designs.

:class:`robustreg._gd.RowKernel` calls :func:`block_pass` on designs too large
for cache.  For each block of rows of the design it returns what the numpy pass
returns (``sum v rho(u)``, ``X_b^T v psi(u)`` and ``sum v psi(u)`` with
``u = (y - X w - c) / sigma``), but works through the block in chunks small
enough for the core's own cache: ``X_c w`` streams the chunk from memory, the
loss maps the residuals in place, and ``X_c^T psi`` reads the chunk again from
cache.  Both products are BLAS calls made from compiled code, with no
interpreter between them, so a full-batch iteration costs little more than one
read of X.

The loss formulas are those of :mod:`robustreg.losses`, written per element,
for the losses made of arithmetic and square roots (L1, L2, Huber, Smooth L1,
pseudo-Huber, Tukey, Geman-McClure).  Any other loss keeps the numpy pass.  Nothing here is compiled until a large design asks for it, and the
machine code is cached on disk, so a sweep of small fits never pays for numba.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .losses import GemanMcClureLoss, HuberLoss, L1Loss, L2Loss, PseudoHuberLoss, SmoothL1Loss, TukeyBiweightLoss

# Bytes of X per chunk: the chunk stays in the core's L2 cache between the two
# products.
CHUNK_BYTES = 1 << 18

# Loss codes of the element loop.
_L1, _L2, _HUBER, _SMOOTH_L1, _PSEUDO_HUBER, _TUKEY, _GEMAN_MCCLURE = range(7)


def loss_code(loss):
    """``(code, constant)`` of the compiled element loop for ``loss``, or None.

    Losses built from exp and log (Welsch, Cauchy, Barron) are left to the numpy
    pass: numpy evaluates those functions in vector lanes, compiled code here
    one element at a time, which costs more than the second read it saves.
    """
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


@njit(**_FLAGS)
def _chunk_loss(code, a, y, i0, r, q, m, shift, inv_sigma):
    """Turn ``r = X_c w`` into psi(u) in place, u = (y - r - shift) * inv_sigma; rho(u) into q.

    Returns ``(sum rho, sum psi)`` of the chunk.
    """
    one = r.dtype.type(1.0)
    tot = r.dtype.type(0.0)
    gs = r.dtype.type(0.0)
    for j in range(m):
        rho, psi = _rho_psi(code, (y[i0 + j] - r[j] - shift) * inv_sigma, a, one)
        q[j] = rho
        r[j] = psi
        tot += rho
        gs += psi
    return tot, gs


@njit(**_FLAGS)
def _weigh(q, p, sw, i0, m):
    """``(sum v rho, sum v psi)`` of a chunk, with ``p`` scaled by the weights ``v`` in place."""
    tot = q.dtype.type(0.0)
    gs = q.dtype.type(0.0)
    for j in range(m):
        v = sw[i0 + j]
        tot += v * q[j]
        p[j] = v * p[j]
        gs += p[j]
    return tot, gs


@njit(nogil=True, cache=True, error_model="numpy")
def block_pass(X, y, sw, w, c, inv_sigma, code, const, rows, chunk, k0, k1, parts, gXs, gsums):
    """Fill ``parts[k], gXs[k], gsums[k]`` for the blocks ``k0 <= k < k1`` of ``rows`` rows.

    ``sw`` is an empty array for unit weights.  Within a block, chunks of
    ``chunk`` rows go through ``r = X_c w``, the loss, and ``X_c^T psi``;
    sums run in float64 across chunks.
    """
    n, d = X.shape
    dt = X.dtype.type
    r = np.empty(chunk, dtype=X.dtype)
    q = np.empty(chunk, dtype=X.dtype)
    cc = dt(c)
    s = dt(inv_sigma)
    a0 = dt(const)
    weighted = sw.shape[0] > 0
    for k in range(k0, k1):
        a = k * rows
        b = min(a + rows, n)
        part = 0.0
        gsum = 0.0
        g = np.zeros(d)
        for i0 in range(a, b, chunk):
            m = min(chunk, b - i0)
            Xc = X[i0 : i0 + m]
            rc = r[:m]
            np.dot(Xc, w, rc)
            tot, gs = _chunk_loss(code, a0, y, i0, r, q, m, cc, s)
            if weighted:
                tot, gs = _weigh(q, r, sw, i0, m)
            part += tot
            gsum += gs
            g += np.dot(Xc.T, rc)
        parts[k] = part
        gsums[k] = gsum
        gXs[k, :] = g
