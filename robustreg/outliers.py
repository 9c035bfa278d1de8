r"""Contamination models: corrupt a share of the training rows.

:func:`inject` replaces ``round(fraction * n)`` rows of a training set by
outliers of one of the kinds in :data:`OUTLIER_KINDS`:

``"none"``
    nothing changes;
``"vertical"``
    response outliers: :math:`y_i \leftarrow y_i + s_i\, m\, \sigma`;
``"leverage"``
    bad leverage points: the features are moved :math:`m` standard
    deviations out along a seeded direction and the response follows a
    different linear model;
``"mixed"``
    a share ``leverage_share`` of the corrupted rows are leverage points,
    the others vertical outliers;
``"heavy_tail"``
    the noise of the corrupted rows is replaced by Cauchy or Student-t draws.

Here :math:`m` is ``magnitude``, :math:`\sigma` the noise scale
(``noise_scale`` when given, else the standard deviation of ``y``) and
:math:`s_i = \pm 1` a seeded random sign (``side="symmetric"``) or
:math:`+1` (``side="one_sided"``).

Nested, paired design
---------------------
For a given ``seed`` one permutation of the rows and the corruption values
of *every* row are drawn before ``fraction`` is looked at; the corrupted
rows are the first ``round(fraction * n)`` rows of the permutation.  Hence,
for one seed, the rows corrupted at a smaller fraction are a subset of
those corrupted at a larger one, with identical corrupted values, and the
comparison across fractions (and across losses, which never see the seed)
is paired.  Each purpose (order, signs, direction, spread, heavy-tail
draws) has its own stream spawned from ``numpy.random.SeedSequence(seed)``,
so changing ``kind`` does not change the order in which rows are corrupted.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import check_choice, check_int, check_real, magnitude_limit, max_magnitude
from .datasets import least_squares

__all__ = ["OUTLIER_KINDS", "SIDES", "TAILS", "check_params", "inject"]

#: Contamination models understood by :func:`inject`.
OUTLIER_KINDS = ("none", "vertical", "leverage", "mixed", "heavy_tail")
#: Sign conventions of the outlier shifts.
SIDES = ("symmetric", "one_sided")
#: Heavy-tailed replacement noise of ``kind="heavy_tail"``.
TAILS = ("cauchy", "student_t")


def check_params(kind, fraction, magnitude=10.0, seed=0, *, side="symmetric", tail="cauchy", df=1.0,
                 leverage_share=0.5) -> dict:
    """The contamination settings of :func:`inject` after its own checks, without any data: a dict of them.

    Raises the one-line ``ValueError`` that :func:`inject` would raise for them.
    """
    return {
        "kind": check_choice("kind", kind, OUTLIER_KINDS),
        "fraction": check_real("fraction", fraction, low=0.0, high=0.5),
        "magnitude": check_real("magnitude", magnitude, low=0.0, low_inclusive=False),
        "seed": check_int("seed", seed, low=0),
        "side": check_choice("side", side, SIDES),
        "tail": check_choice("tail", tail, TAILS),
        "df": check_real("df", df, low=0.0, low_inclusive=False),
        "leverage_share": check_real("leverage_share", leverage_share, low=0.0, high=1.0, high_inclusive=True),
    }


def inject(
    X,
    y,
    kind,
    fraction,
    magnitude=10.0,
    seed=0,
    *,
    side="symmetric",
    noise_scale=None,
    y_signal=None,
    tail="cauchy",
    df=1.0,
    leverage_share=0.5,
):
    r"""Corrupt ``round(fraction * n)`` rows of a training set.

    The inputs are never modified; corrupted copies are returned.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Training features (``d >= 1``), finite.
    y : array_like of shape (n,)
        Training responses, finite.
    kind : {"none", "vertical", "leverage", "mixed", "heavy_tail"}
        The contamination model (see the module documentation).
    fraction : float
        Share of corrupted rows, in [0, 0.5).  The number of corrupted rows
        is ``round(fraction * n)`` (Python's ``round``).
    magnitude : float
        :math:`m > 0`: the size of the outliers in units of :math:`\sigma`
        (responses) and of the per-feature standard deviation (features).
        Not used by ``"heavy_tail"``, whose size is set by the tail itself.
    seed : int
        Non-negative seed of the contamination; independent of the data seed.
    side : {"symmetric", "one_sided"}
        ``"symmetric"``: each corrupted row gets a seeded random sign
        :math:`s_i = \pm 1`; ``"one_sided"``: :math:`s_i = +1` for all (and
        heavy-tail draws are replaced by their absolute values).
    noise_scale : float, optional
        :math:`\sigma > 0`.  Default: the standard deviation of ``y``.
    y_signal : array_like of shape (n,), optional
        Noiseless responses (known for synthetic data).  With
        ``"heavy_tail"`` the corrupted responses become ``y_signal + draw``,
        so the heavy-tailed draw replaces the noise; without it the draw is
        added to ``y``.
    tail : {"cauchy", "student_t"}
        Distribution of the heavy-tail draws: standard Cauchy or Student t
        with ``df`` degrees of freedom.
    df : float
        Degrees of freedom (> 0) of ``tail="student_t"``.
    leverage_share : float
        Share in [0, 1] of the corrupted rows of ``"mixed"`` that are
        leverage points: among the first ``k`` corrupted rows,
        ``floor(k * leverage_share + 1/2)`` are, for every ``k``, so the
        split is nested as well.

    Returns
    -------
    X_c : ndarray of shape (n, d)
        Features after contamination (float64 copy).
    y_c : ndarray of shape (n,)
        Responses after contamination (float64 copy).
    mask : ndarray of bool, shape (n,)
        True for the corrupted rows.

    Notes
    -----
    Vertical outliers:

    .. math::

        y_i \leftarrow y_i + s_i\, m\, \sigma .

    Leverage points, with :math:`\bar x`, :math:`\operatorname{sd}(x)` the
    per-feature mean and standard deviation of the clean ``X`` (a zero
    standard deviation is taken as 1), :math:`u` a seeded unit direction,
    :math:`z_i \sim N(0, I_d)` a seeded spread, and :math:`\hat b` the
    least-squares fit (with intercept) to the clean data with residuals
    :math:`e_i`:

    .. math::

        t_i = s_i\, m\, u + z_i, \qquad
        x_i \leftarrow \bar x + \operatorname{sd}(x) \odot t_i, \qquad
        y_i \leftarrow \hat b_0 + x_i^\top \hat b_{1:d} + e_i + m\,\sigma\, u^\top t_i .

    The corrupted rows follow the linear model
    :math:`\hat b_0 + x^\top \hat b_{1:d} + m\,\sigma\, u^\top ((x - \bar x) / \operatorname{sd}(x))`
    (plus the clean residual), whose slopes differ from the clean fit by
    :math:`m\sigma/\operatorname{sd}(x)` along :math:`u`; at the cloud of
    leverage points its response is about :math:`m^2 \sigma` away from the
    clean fit.  So the points are bad leverage points for every magnitude:
    the clean rows do not fit their plane, and a high-breakdown fit tells
    the two planes apart.  The cloud sits :math:`m` standard deviations out, so
    the largest eigenvalue of :math:`X^\top X / n` grows (roughly by
    ``fraction`` times :math:`m^2` times a feature variance), which is what
    lowers the stable step size of gradient descent on the squared loss.

    Heavy-tailed noise, with :math:`T_i` a standard Cauchy or
    :math:`t_{\text{df}}` draw (:math:`|T_i|` when one-sided):

    .. math::

        y_i \leftarrow y^{\text{signal}}_i + \sigma\, T_i
        \quad (\text{or } y_i + \sigma\, T_i \text{ without } y^{\text{signal}}).

    Raises
    ------
    ValueError
        One line naming the bad argument, its value and what is allowed.
    """
    X = _as_matrix(X)
    n, d = X.shape
    y = _as_vector("y", y, n)
    p = check_params(kind, fraction, magnitude, seed, side=side, tail=tail, df=df, leverage_share=leverage_share)
    kind, fraction, magnitude, seed = p["kind"], p["fraction"], p["magnitude"], p["seed"]
    side, tail, df, leverage_share = p["side"], p["tail"], p["df"], p["leverage_share"]
    if noise_scale is not None:
        noise_scale = check_real("noise_scale", noise_scale, low=0.0, low_inclusive=False)
    if y_signal is not None:
        y_signal = _as_vector("y_signal", y_signal, n)

    X_c = X.copy()
    y_c = y.copy()
    mask = np.zeros(n, dtype=bool)
    k = round(fraction * n)
    if kind == "none" or k == 0:
        return X_c, y_c, mask

    sigma = noise_scale if noise_scale is not None else float(np.std(y))
    if sigma == 0.0:
        raise ValueError("noise_scale=None is invalid when y is constant (std(y) = 0); allowed: a number > 0")

    # Everything below is drawn for all n rows before `k` is used, so that
    # the corruption is nested across fractions (see the module docstring).
    rng_order, rng_sign, rng_direction, rng_spread, rng_tail = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    order = rng_order.permutation(n)
    signs = rng_sign.choice(np.array([-1.0, 1.0]), size=n)
    if side == "one_sided":
        signs = np.ones(n)

    chosen = order[:k]
    mask[chosen] = True
    if kind == "vertical":
        vertical, leverage = chosen, chosen[:0]
    elif kind == "leverage":
        vertical, leverage = chosen[:0], chosen
    elif kind == "mixed":
        # Position j in the corruption order is a leverage point when the
        # running count floor(j * share + 1/2) steps up: nested in k and
        # exact in count.
        j = np.arange(k)
        is_leverage = np.floor((j + 1) * leverage_share + 0.5) > np.floor(j * leverage_share + 0.5)
        vertical, leverage = chosen[~is_leverage], chosen[is_leverage]
    else:  # heavy_tail
        if tail == "cauchy":
            draws = rng_tail.standard_cauchy(n)
        else:
            draws = rng_tail.standard_t(df, size=n)
        if side == "one_sided":
            draws = np.abs(draws)
        base = y_signal if y_signal is not None else y
        with np.errstate(over="ignore", invalid="ignore"):
            y_c[chosen] = base[chosen] + sigma * draws[chosen]
        if max_magnitude(y_c[chosen]) > magnitude_limit(n):
            raise ValueError(
                f"kind='heavy_tail' is invalid for these data: its draws times the noise scale {sigma:g} reach "
                f"{max_magnitude(y_c[chosen]):.3g}, beyond {magnitude_limit(n):.3g} (sums of squares over {n} rows "
                "must stay finite); allowed: data with a smaller noise scale"
            )
        return X_c, y_c, mask

    if leverage.size:
        direction = rng_direction.standard_normal(d)
        direction /= np.linalg.norm(direction)
        spread = rng_spread.standard_normal((n, d))
        centre = X.mean(axis=0)
        sd = X.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        coef = least_squares(X, y)
        residual = y - (coef[0] + X @ coef[1:])

    def corrupt(m):
        """The corrupted values at magnitude ``m``: vertical responses, leverage features and responses."""
        y_v = y[vertical] + signs[vertical] * m * sigma
        if not leverage.size:
            return y_v, X[:0], y[:0]
        t = signs[leverage, None] * m * direction + spread[leverage]
        X_l = centre + sd * t
        # Slopes off by m sigma / sd(x) along u: bad leverage points that pull
        # harder the further out they sit, instead of a bounded tilt.
        y_l = coef[0] + X_l @ coef[1:] + residual[leverage] + m * sigma * (t @ direction)
        return y_v, X_l, y_l

    with np.errstate(over="ignore", invalid="ignore"):
        y_v, X_l, y_l = corrupt(magnitude)
    if max_magnitude(y_v, X_l, y_l) > magnitude_limit(n):
        raise ValueError(_too_large(magnitude, n, corrupt))
    y_c[vertical] = y_v
    X_c[leverage] = X_l
    y_c[leverage] = y_l
    return X_c, y_c, mask


def _too_large(magnitude: float, n: int, corrupt) -> str:
    """Why ``magnitude`` makes outliers too large for a fit, with the largest magnitude these data allow."""
    limit = magnitude_limit(n)

    def fits(m):
        with np.errstate(over="ignore", invalid="ignore"):
            return max_magnitude(*corrupt(m)) <= limit

    # The outliers grow with m (linearly, or as m^2 for leverage points): bisect on log m.
    lo, hi = math.log(1e-300), math.log(magnitude)
    if not fits(math.exp(lo)):
        allowed = "none: the clean data are already at the limit"
    else:
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if fits(math.exp(mid)) else (lo, mid)
        largest = math.exp(lo)
        unit = 10.0 ** (math.floor(math.log10(largest)) - 2)  # three digits, rounded down
        allowed = f"a number in (0, {math.floor(largest / unit) * unit:.3g}] for these data"
    return (f"magnitude={magnitude!r} is invalid: the outliers would reach values beyond {limit:.3g} (sums of "
            f"squares over {n} rows must stay finite); allowed: {allowed}")


def _as_matrix(X) -> np.ndarray:
    try:
        arr = np.array(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"X of type {type(X).__name__} is invalid; allowed: a 2-D array of real numbers") from None
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"X with shape {arr.shape} is invalid; allowed: a 2-D array with at least 1 row and 1 column")
    if not np.all(np.isfinite(arr)):
        raise ValueError("X contains NaN or infinite values; allowed: finite values only")
    return arr


def _as_vector(name: str, v, n: int) -> np.ndarray:
    try:
        arr = np.array(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} of type {type(v).__name__} is invalid; allowed: a 1-D array of real numbers") from None
    if arr.shape != (n,):
        raise ValueError(f"{name} with shape {arr.shape} is invalid; allowed: shape ({n},), one value per row of X")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; allowed: finite values only")
    return arr
