"""Loss functions of the residual, as a family of small classes on one base.

Every loss is a function :math:`\\rho` of the residual :math:`r = y - \\hat y`
(the sign convention of robust statistics; every loss here is symmetric, so
the article's :math:`r = f(x) - y` gives the same values).  Each class gives

* ``rho(r)``: the elementwise loss,
* ``psi(r)``: its derivative :math:`\\rho'(r)` (a subgradient at kinks,
  with ``psi(0) = 0``),
* ``psi_deriv(r)``: :math:`\\rho''(r)` where it is defined,
* ``weights(r)``: :math:`\\psi(r) / r` with its limit at :math:`r = 0`
  (the IRLS weights),
* ``curvature_bound``: :math:`\\sup_r \\rho''(r)`, or ``None`` where
  :math:`\\rho` is not smooth; gradient descent uses it for its step size,
* flags ``convex``, ``smooth``, ``redescending`` and ``scale_dependent``,
* ``__call__(r)``: the mean loss :math:`\\frac1n \\sum_i \\rho(r_i)`,
* ``fused_form()`` and ``compiled_form()``: what the fast row passes of
  :mod:`robustreg._gd` compute the loss by (the formulas below, rewritten for
  speed: they live here, next to ``rho`` and ``psi``).

The layout follows ``statsmodels.robust.norms``.  Names registered in
:data:`LOSSES` build a loss with :func:`get_loss`; the same registry
validates names everywhere else (configs, the estimator).
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from ._checks import check_real

__all__ = [
    "LOSSES",
    "BarronLoss",
    "CauchyLoss",
    "GemanMcClureLoss",
    "HuberLoss",
    "L1Loss",
    "L2Loss",
    "Loss",
    "PseudoHuberLoss",
    "SmoothL1Loss",
    "TukeyBiweightLoss",
    "WelschLoss",
    "get_loss",
    "registered_losses",
    "register_loss",
]

#: Registry of loss names to loss classes.  Filled by :func:`register_loss`.
LOSSES: dict[str, type["Loss"]] = {}


def register_loss(name: str):
    """Class decorator: register a :class:`Loss` subclass under ``name``."""

    def decorator(cls):
        if name in LOSSES:
            raise ValueError(f"loss name {name!r} is already registered")
        cls.name = name
        LOSSES[name] = cls
        return cls

    return decorator


def get_loss(loss, **params) -> "Loss":
    """Build a loss from a registry name (with its parameters) or pass an instance through.

    Parameters
    ----------
    loss : str or Loss
        A name in :data:`LOSSES` or a :class:`Loss` instance.
    **params
        Constructor arguments (for example ``beta`` or ``delta``).

    Raises
    ------
    ValueError
        When the name is not registered; the message lists the known names.
    """
    if isinstance(loss, Loss):
        if params:
            raise ValueError("parameters cannot be given with a loss instance")
        return loss
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; allowed: {', '.join(sorted(LOSSES))}")
    return LOSSES[loss](**params)


def registered_losses() -> dict:
    """Every registered loss at its default constants, keyed by its registry name."""
    return {name: cls() for name, cls in LOSSES.items()}


def _check_param(name: str, value, *, low: float, low_inclusive: bool, high: float = math.inf):
    """Validate a real tuning constant (:func:`robustreg._checks.check_real`); the error names parameter, value and range."""
    return check_real(name, value, low=low, high=high, low_inclusive=low_inclusive)


def _own(loss, method):
    """``loss.method`` when the loss's own class defines it, else None.

    A fast form is a rewriting of its class's ``rho`` and ``psi``; a subclass
    (a user's own loss) may change those, so it does not inherit the forms.
    """
    return getattr(loss, method) if method in type(loss).__dict__ else None


class Loss:
    """Base class of the loss family.

    Subclasses implement :meth:`rho`, :meth:`psi` and, where defined,
    :meth:`psi_deriv`; :meth:`weights` defaults to ``psi(r) / r`` with the
    limit ``psi_deriv(0)`` at zero.  The built-in losses also define
    ``_fused`` and ``_compiled_form``, the fast forms of :meth:`fused_form`
    and :meth:`compiled_form`.
    """

    name: str = ""
    convex: bool = True
    smooth: bool = True
    redescending: bool = False
    #: True when the loss has a tuning constant measured in units of the
    #: residual, so that it should be applied to r / sigma.
    scale_dependent: bool = False
    curvature_bound: float | None = None
    #: True when :math:`\rho(r) = g(r^2)` with :math:`g` concave: the IRLS quadratic
    #: :math:`\rho(r_0) + \tfrac12 w(r_0)(r^2 - r_0^2)`, :math:`w = \psi(r)/r`, then lies
    #: above :math:`\rho` everywhere (Huber, Smooth L1, pseudo-Huber, the redescending losses,
    #: Barron's for alpha <= 2), and the exact solver steps in the metric of these weights.
    irls_majorizes: bool = False

    def rho(self, r):
        raise NotImplementedError

    def psi(self, r):
        raise NotImplementedError

    def psi_deriv(self, r):
        raise NotImplementedError(f"psi_deriv is not defined for {type(self).__name__}")

    def weights(self, r):
        r = np.asarray(r, dtype=float)
        out = np.empty_like(r)
        nz = r != 0
        out[nz] = self.psi(r[nz]) / r[nz]
        if np.any(~nz):
            out[~nz] = self._weight_at_zero()
        return out

    def _weight_at_zero(self) -> float:
        return float(self.psi_deriv(np.zeros(1))[0])

    def params(self) -> dict:
        """The tuning constants, as a plain dict (for job records)."""
        return {}

    def fused_form(self):
        """The numpy row pass's kernel for this loss: ``kernel(r, out) -> (sum rho(r), psi_array, factor)``.

        ``psi(r) = factor * psi_array``; ``out`` is a buffer of ``r``'s shape
        and dtype that the kernel may fill and return as ``psi_array``.  A
        built-in loss touches as few vectors as it can; any other loss gets
        :meth:`_rho_psi_sum`, its own ``rho`` and ``psi``.
        """
        return _own(self, "_fused") or self._rho_psi_sum

    def _rho_psi_sum(self, r, out):
        # psi in the data's precision: a float64 psi would make X_b^T psi copy X_b to float64.
        return float(np.sum(self.rho(r))), self.psi(r).astype(r.dtype, copy=False), 1.0

    def compiled_form(self):
        """``(formula, width, shape)`` for the compiled row pass (:mod:`robustreg._compiled`), or None.

        ``formula`` names the loss's formulas there, ``width`` is its width
        constant (delta, beta or c; 0 for L1 and L2) and ``shape`` Barron's
        alpha (0 for the others).  None for a loss of a user's own (a subclass
        of a built-in loss included): it keeps the numpy pass.
        """
        own = _own(self, "_compiled_form")
        return None if own is None else own()

    def get_params(self, deep: bool = True) -> dict:
        """The tuning constants (scikit-learn's protocol).

        So ``GDRegressor(loss="huber")`` in a ``GridSearchCV`` searches
        ``{"loss__delta": [...]}``, and ``clone`` copies a loss object.
        """
        return self.params()

    def set_params(self, **params) -> "Loss":
        """Set tuning constants, checked as the constructor checks them; returns the loss."""
        current = self.params()
        for key in params:
            if key not in current:
                allowed = ", ".join(current) or "none (this loss has no tuning constant)"
                raise ValueError(f"{key} is not a parameter of {type(self).__name__}; allowed: {allowed}")
        fresh = type(self)(**{**current, **params})  # the constructor's checks
        self.__dict__.update(fresh.__dict__)
        return self

    def __call__(self, r) -> float:
        return float(np.mean(self.rho(np.asarray(r, dtype=float))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.params() == other.params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.params().items()))))


@register_loss("l1")
class L1Loss(Loss):
    r"""Absolute loss (the article's mean absolute error).

    .. math::

        \rho(r) = |r|, \qquad \psi(r) = \operatorname{sign}(r), \quad \psi(0) = 0.

    Not differentiable at zero: ``curvature_bound`` is ``None`` and
    ``psi_deriv`` is zero away from zero and undefined (``nan``) at zero.
    """

    smooth = False
    curvature_bound = None

    def rho(self, r):
        return np.abs(r)

    def psi(self, r):
        return np.sign(r)

    def psi_deriv(self, r):
        r = np.asarray(r, dtype=float)
        return np.where(r == 0, np.nan, 0.0)

    def weights(self, r):
        r = np.asarray(r, dtype=float)
        with np.errstate(divide="ignore"):
            return np.where(r == 0, np.inf, 1.0 / np.abs(np.where(r == 0, 1.0, r)))

    def _fused(self, r, out):
        np.sign(r, out=out)  # into another buffer: in-place sign is much slower
        return float(out @ r), out, 1.0  # sign(r) r = |r|

    def _compiled_form(self):
        return "l1", 0.0, 0.0


@register_loss("l2")
class L2Loss(Loss):
    r"""Squared loss (the article's mean squared error, PyTorch's ``MSELoss``).

    .. math::

        \rho(r) = r^2, \qquad \psi(r) = 2r, \qquad \rho''(r) = 2.
    """

    curvature_bound = 2.0

    def rho(self, r):
        return np.square(r)

    def psi(self, r):
        return 2.0 * np.asarray(r, dtype=float)

    def psi_deriv(self, r):
        return np.full(np.shape(r), 2.0)

    def weights(self, r):
        return np.full(np.shape(r), 2.0)

    def _fused(self, r, out):
        return float(r @ r), r, 2.0

    def _compiled_form(self):
        return "l2", 0.0, 0.0


@register_loss("smooth_l1")
class SmoothL1Loss(Loss):
    r"""Smooth L1 loss, exactly as PyTorch's ``SmoothL1Loss(beta)``.

    .. math::

        \rho(r) = \begin{cases} \tfrac{1}{2} r^2 / \beta & |r| < \beta \\
                                |r| - \tfrac{1}{2}\beta & \text{otherwise} \end{cases}
        \qquad
        \psi(r) = \begin{cases} r / \beta & |r| < \beta \\
                                \operatorname{sign}(r) & \text{otherwise} \end{cases}

    ``beta = 0`` is exactly :class:`L1Loss` (no division by zero).  The
    curvature bound is :math:`1/\beta`.

    Parameters
    ----------
    beta : float, default=1.0
        Width of the quadratic zone, ``beta >= 0``.
    """

    scale_dependent = True

    def __init__(self, beta: float = 1.0):
        self.beta = _check_param("beta", beta, low=0.0, low_inclusive=True)
        self.smooth = self.beta > 0
        self.irls_majorizes = self.smooth
        self.curvature_bound = 1.0 / self.beta if self.beta > 0 else None

    def params(self):
        return {"beta": self.beta}

    def rho(self, r):
        r = np.asarray(r, dtype=float)
        a = np.abs(r)
        if self.beta == 0:
            return a
        return np.where(a < self.beta, 0.5 * r * r / self.beta, a - 0.5 * self.beta)

    def psi(self, r):
        r = np.asarray(r, dtype=float)
        if self.beta == 0:
            return np.sign(r)
        return np.clip(r / self.beta, -1.0, 1.0)

    def psi_deriv(self, r):
        r = np.asarray(r, dtype=float)
        if self.beta == 0:
            return np.where(r == 0, np.nan, 0.0)
        return np.where(np.abs(r) < self.beta, 1.0 / self.beta, 0.0)

    def weights(self, r):
        if self.beta == 0:
            return L1Loss().weights(r)
        return super().weights(r)

    def _fused(self, r, out):
        if self.beta == 0:
            return L1Loss._fused(self, r, out)
        # SmoothL1(beta) = Huber(beta) / beta.
        inv = 1.0 / self.beta
        return _huber_sum(r, out, self.beta) * inv, out, inv

    def _compiled_form(self):
        return ("l1", 0.0, 0.0) if self.beta == 0 else ("smooth_l1", self.beta, 0.0)


def _huber_sum(r, out, delta):
    """``sum Huber_delta(r)``, with ``out`` set to its psi, ``clip(r, -delta, delta)``."""
    np.minimum(r, delta, out=out)
    np.maximum(out, -delta, out=out)
    # rho = psi (r - psi/2) for the clipped psi, on both branches.
    return float(out @ r) - 0.5 * float(out @ out)


@register_loss("huber")
class HuberLoss(Loss):
    r"""Huber loss, exactly as PyTorch's ``HuberLoss(delta)``.

    .. math::

        \rho(r) = \begin{cases} \tfrac{1}{2} r^2 & |r| \le \delta \\
                                \delta (|r| - \tfrac{1}{2}\delta) & \text{otherwise} \end{cases}
        \qquad \psi(r) = \operatorname{clip}(r, -\delta, \delta)

    so that :math:`\mathrm{Huber}_\delta = \delta \cdot \mathrm{SmoothL1}_{\beta=\delta}`.
    The curvature bound is 1.

    Parameters
    ----------
    delta : float, default=1.0
        The threshold between the quadratic and linear zones, ``delta > 0``.
    """

    scale_dependent = True
    curvature_bound = 1.0
    irls_majorizes = True

    def __init__(self, delta: float = 1.0):
        self.delta = _check_param("delta", delta, low=0.0, low_inclusive=False)

    def params(self):
        return {"delta": self.delta}

    def rho(self, r):
        r = np.asarray(r, dtype=float)
        a = np.abs(r)
        return np.where(a <= self.delta, 0.5 * r * r, self.delta * (a - 0.5 * self.delta))

    def psi(self, r):
        return np.clip(np.asarray(r, dtype=float), -self.delta, self.delta)

    def psi_deriv(self, r):
        return np.where(np.abs(np.asarray(r, dtype=float)) <= self.delta, 1.0, 0.0)

    def _fused(self, r, out):
        return _huber_sum(r, out, self.delta), out, 1.0

    def _compiled_form(self):
        return "huber", self.delta, 0.0


@register_loss("pseudo_huber")
class PseudoHuberLoss(Loss):
    r"""Pseudo-Huber (Charbonnier) loss, a smooth approximation of Huber.

    .. math::

        \rho(r) = \delta^2 \left(\sqrt{1 + (r/\delta)^2} - 1\right), \qquad
        \psi(r) = \frac{r}{\sqrt{1 + (r/\delta)^2}}, \qquad
        \rho''(r) = \left(1 + (r/\delta)^2\right)^{-3/2} \le 1.

    Parameters
    ----------
    delta : float, default=1.0
        Transition scale, ``delta > 0``.
    """

    scale_dependent = True
    curvature_bound = 1.0
    irls_majorizes = True

    def __init__(self, delta: float = 1.0):
        self.delta = _check_param("delta", delta, low=0.0, low_inclusive=False)

    def params(self):
        return {"delta": self.delta}

    def rho(self, r):
        u = np.asarray(r, dtype=float) / self.delta
        # delta^2 (sqrt(1+u^2) - 1) written as delta^2 u^2 / (sqrt(1+u^2) + 1): no cancellation near 0.
        return self.delta**2 * (u * u) / (np.sqrt(1.0 + u * u) + 1.0)

    def psi(self, r):
        r = np.asarray(r, dtype=float)
        u = r / self.delta
        return r / np.sqrt(1.0 + u * u)

    def psi_deriv(self, r):
        u = np.asarray(r, dtype=float) / self.delta
        return (1.0 + u * u) ** -1.5

    def _fused(self, r, out):
        # rho = delta^2 (sqrt(1 + u^2) - 1), psi = r / sqrt(1 + u^2), from one sqrt in ``out``.
        d2 = self.delta**2
        np.multiply(r, r, out=out)
        out *= 1.0 / d2
        out += 1.0
        np.sqrt(out, out=out)
        total = d2 * (float(np.sum(out)) - len(r))
        np.divide(r, out, out=out)
        return total, out, 1.0

    def _compiled_form(self):
        return "pseudo_huber", self.delta, 0.0


# ---------------------------------------------------------------------------
# Redescending losses
# ---------------------------------------------------------------------------


class _RedescendingLoss(Loss):
    r"""What the redescending losses with one width constant ``c`` share.

    Each is written in the scaling of ``statsmodels.robust.norms``,
    :math:`\rho(r) \approx r^2/2` near zero, so that :math:`\rho''(0) = 1`
    is the supremum of :math:`\rho''` and the default tuning constants give
    95% efficiency at the normal model when the residuals are divided by the
    error scale.

    These losses are non-convex: a minimiser depends on the starting point, and
    gradient descent from least squares or L1 stays near that start when there
    are bad leverage points.  Start one from a high-breakdown fit (for example
    :func:`robustreg.robust_start.fast_lts`) and apply it to the residuals
    divided by a robust scale, :math:`\rho(r / \hat\sigma)` (for example
    :func:`robustreg.robust_start.mscale` of the starting residuals): the
    tuning constant ``c`` is in units of the error scale.
    """

    convex = False
    redescending = True
    scale_dependent = True
    curvature_bound = 1.0
    irls_majorizes = True

    def _set_width(self, c):
        self.c = _check_param("c", c, low=0.0, low_inclusive=False)

    def params(self):
        return {"c": self.c}


@register_loss("tukey")
class TukeyBiweightLoss(_RedescendingLoss):
    r"""Tukey's biweight (bisquare) loss, in the scaling of ``statsmodels``' ``TukeyBiweight``.

    With :math:`u = r / c`,

    .. math::

        \rho(r) = \begin{cases} \frac{c^2}{6}\left(1 - (1 - u^2)^3\right) & |u| \le 1 \\
                                \frac{c^2}{6} & |u| > 1 \end{cases}
        \qquad
        \psi(r) = \begin{cases} r (1 - u^2)^2 & |u| \le 1 \\ 0 & |u| > 1 \end{cases}

    .. math::

        \psi'(r) = (1 - u^2)(1 - 5u^2) \ \text{ for } |u| \le 1, \qquad
        \sup_r \rho''(r) = \psi'(0) = 1.

    Residuals beyond :math:`c` get weight zero (:math:`\psi` redescends to 0).
    The default :math:`c = 4.685` gives 95% efficiency at the normal model;
    :math:`c = 1.5476` gives the 50%-breakdown S-scale.

    Non-convex: start it from a high-breakdown fit, on the residuals divided
    by a robust scale (see :class:`_RedescendingLoss`).

    Parameters
    ----------
    c : float, default=4.685
        Rejection point, ``c > 0``, in units of the error scale.
    """

    def __init__(self, c: float = 4.685):
        self._set_width(c)

    @staticmethod
    def unit_rho(u2):
        """:math:`\\rho / \\rho(\\infty) = 1 - (1 - u^2)^3`, 1 beyond ``c``, of ``u2`` = :math:`u^2 = (r/c)^2`.

        The normalised biweight of :func:`robustreg.robust_start.mscale`.
        """
        inside = 1.0 - np.minimum(u2, 1.0)
        return 1.0 - inside**3

    @staticmethod
    def unit_weights(u2):
        """The weights :math:`\\psi(r)/r = (1 - u^2)_+^2` of ``u2`` = :math:`u^2 = (r/c)^2`."""
        inside = 1.0 - np.minimum(u2, 1.0)
        return inside**2

    def normalised_rho(self, r):
        """:math:`\\rho(r) / \\rho(\\infty)`, from 0 to 1 (see :meth:`unit_rho`)."""
        return self.unit_rho(np.square(np.asarray(r, dtype=float) / self.c))

    def rho(self, r):
        return self.c**2 / 6.0 * self.normalised_rho(r)

    def psi(self, r):
        r = np.asarray(r, dtype=float)
        return r * self.unit_weights(np.square(r / self.c))

    def psi_deriv(self, r):
        u2 = np.square(np.asarray(r, dtype=float) / self.c)
        return np.where(u2 <= 1.0, (1.0 - u2) * (1.0 - 5.0 * u2), 0.0)

    def weights(self, r):
        return self.unit_weights(np.square(np.asarray(r, dtype=float) / self.c))

    def _compiled_form(self):
        return "tukey", self.c, 0.0


@register_loss("welsch")
class WelschLoss(_RedescendingLoss):
    r"""Welsch (Leclerc) loss, a Gaussian-shaped redescending loss.

    With :math:`u = r / c`,

    .. math::

        \rho(r) = \frac{c^2}{2}\left(1 - e^{-u^2}\right), \qquad
        \psi(r) = r\, e^{-u^2}, \qquad
        \psi'(r) = (1 - 2u^2)\, e^{-u^2}, \qquad
        \sup_r \rho''(r) = 1.

    :math:`\rho` is bounded by :math:`c^2/2`; :math:`\psi` redescends to 0
    without ever being exactly 0.  The default :math:`c = 2.985` gives 95%
    efficiency at the normal model.  It is Barron's loss with
    :math:`\alpha = -\infty` and :math:`c_\mathrm{Barron} = c/\sqrt 2`, times
    :math:`c_\mathrm{Barron}^2`.

    Non-convex: start it from a high-breakdown fit, on the residuals divided
    by a robust scale (see :class:`_RedescendingLoss`).

    Parameters
    ----------
    c : float, default=2.985
        Width, ``c > 0``, in units of the error scale.
    """

    def __init__(self, c: float = 2.985):
        self._set_width(c)

    def rho(self, r):
        u2 = np.square(np.asarray(r, dtype=float) / self.c)
        # -expm1 keeps full precision for small residuals.
        return -0.5 * self.c**2 * np.expm1(-u2)

    def psi(self, r):
        r = np.asarray(r, dtype=float)
        return r * np.exp(-np.square(r / self.c))

    def psi_deriv(self, r):
        u2 = np.square(np.asarray(r, dtype=float) / self.c)
        return (1.0 - 2.0 * u2) * np.exp(-u2)

    def weights(self, r):
        return np.exp(-np.square(np.asarray(r, dtype=float) / self.c))

    def _compiled_form(self):
        return "welsch", self.c, 0.0


@register_loss("cauchy")
class CauchyLoss(_RedescendingLoss):
    r"""Cauchy (Lorentzian) loss, the negative log-likelihood of a Cauchy error.

    With :math:`u = r / c`,

    .. math::

        \rho(r) = \frac{c^2}{2}\log\left(1 + u^2\right), \qquad
        \psi(r) = \frac{r}{1 + u^2}, \qquad
        \psi'(r) = \frac{1 - u^2}{(1 + u^2)^2}, \qquad
        \sup_r \rho''(r) = 1.

    :math:`\rho` is unbounded (it grows like :math:`\log r`) but :math:`\psi`
    redescends to 0 like :math:`c^2 / r`.  This is ``statsmodels``'
    ``StudentT(c, df=1)``.  The default :math:`c = 2.385` gives 95% efficiency
    at the normal model.

    Non-convex: start it from a high-breakdown fit, on the residuals divided
    by a robust scale (see :class:`_RedescendingLoss`).

    Parameters
    ----------
    c : float, default=2.385
        Width, ``c > 0``, in units of the error scale.
    """

    def __init__(self, c: float = 2.385):
        self._set_width(c)

    def rho(self, r):
        u2 = np.square(np.asarray(r, dtype=float) / self.c)
        return 0.5 * self.c**2 * np.log1p(u2)

    def psi(self, r):
        r = np.asarray(r, dtype=float)
        return r / (1.0 + np.square(r / self.c))

    def psi_deriv(self, r):
        u2 = np.square(np.asarray(r, dtype=float) / self.c)
        return (1.0 - u2) / np.square(1.0 + u2)

    def weights(self, r):
        return 1.0 / (1.0 + np.square(np.asarray(r, dtype=float) / self.c))

    def _compiled_form(self):
        return "cauchy", self.c, 0.0


@register_loss("geman_mcclure")
class GemanMcClureLoss(_RedescendingLoss):
    r"""Geman-McClure loss.

    With :math:`u = r / c`,

    .. math::

        \rho(r) = \frac{r^2 / 2}{1 + u^2}, \qquad
        \psi(r) = \frac{r}{(1 + u^2)^2}, \qquad
        \psi'(r) = \frac{1 - 3u^2}{(1 + u^2)^3}, \qquad
        \sup_r \rho''(r) = 1.

    :math:`\rho` is bounded by :math:`c^2/2`; :math:`\psi` redescends to 0
    like :math:`c^4 / r^3`.  It is Barron's loss with :math:`\alpha = -2` and
    :math:`c_\mathrm{Barron} = c/2`, times :math:`c_\mathrm{Barron}^2`.  The
    default :math:`c = 1` is the unit-width form common in computer vision;
    its efficiency at the normal model is only about 44%, and
    :math:`c = 3.787` gives 95%.

    Non-convex: start it from a high-breakdown fit, on the residuals divided
    by a robust scale (see :class:`_RedescendingLoss`).

    Parameters
    ----------
    c : float, default=1.0
        Width, ``c > 0``, in units of the error scale.
    """

    def __init__(self, c: float = 1.0):
        self._set_width(c)

    def rho(self, r):
        r = np.asarray(r, dtype=float)
        return 0.5 * r * r / (1.0 + np.square(r / self.c))

    def psi(self, r):
        r = np.asarray(r, dtype=float)
        return r / np.square(1.0 + np.square(r / self.c))

    def psi_deriv(self, r):
        u2 = np.square(np.asarray(r, dtype=float) / self.c)
        return (1.0 - 3.0 * u2) / (1.0 + u2) ** 3

    def weights(self, r):
        return 1.0 / np.square(1.0 + np.square(np.asarray(r, dtype=float) / self.c))

    def _compiled_form(self):
        return "geman_mcclure", self.c, 0.0


@register_loss("barron")
class BarronLoss(Loss):
    r"""Barron's general and adaptive robust loss (Barron, CVPR 2019).

    With :math:`u = r / c` and shape :math:`\alpha`,

    .. math::

        \rho(r) = \frac{|\alpha - 2|}{\alpha}
                  \left( \left( \frac{u^2}{|\alpha - 2|} + 1 \right)^{\alpha/2} - 1 \right),

    with its limits

    .. math::

        \rho(r) = \begin{cases}
            \tfrac12 u^2 & \alpha = 2 \\
            \log\left(\tfrac12 u^2 + 1\right) & \alpha = 0 \\
            1 - e^{-u^2/2} & \alpha = -\infty.
        \end{cases}

    Its derivatives, valid for every :math:`\alpha` (limits at 2 and
    :math:`-\infty` taken the same way), with :math:`t = u^2 / |\alpha - 2| + 1`:

    .. math::

        \psi(r) = \frac{r}{c^2}\, t^{\alpha/2 - 1}, \qquad
        \psi'(r) = \frac{1}{c^2}\, t^{\alpha/2 - 2}
                   \left( 1 + \frac{(\alpha - 1)\, u^2}{|\alpha - 2|} \right).

    Near zero :math:`\rho \approx u^2/2` for every :math:`\alpha`; so
    :math:`c^2 \rho` is, for :math:`\alpha = 2, 1, 0, -2, -\infty`:
    :math:`\tfrac12 r^2`, :class:`PseudoHuberLoss` with :math:`\delta = c`,
    :class:`CauchyLoss` with :math:`\sqrt2 c`, :class:`GemanMcClureLoss` with
    :math:`2c`, :class:`WelschLoss` with :math:`\sqrt2 c`.  Here
    :math:`\rho` is kept in Barron's own scaling (without the factor
    :math:`c^2`), so ``curvature_bound`` is :math:`1/c^2` for
    :math:`\alpha \le 2` (attained at 0) and infinite for :math:`\alpha > 2`
    (:math:`\rho` grows like :math:`|r|^\alpha`).

    The loss is convex for :math:`\alpha \ge 1` and redescending
    (:math:`\psi \to 0` like :math:`|r|^{\alpha - 1}`) for :math:`\alpha < 1`;
    there it is non-convex: start it from a high-breakdown fit, on the
    residuals divided by a robust scale (see :class:`_RedescendingLoss`).

    Parameters
    ----------
    alpha : float, default=1.0
        Shape, any real number or ``float('-inf')``.
    c : float, default=1.0
        Scale of the quadratic bowl, ``c > 0``, in units of the error scale.

    References
    ----------
    J. T. Barron, "A General and Adaptive Robust Loss Function", CVPR 2019.
    """

    smooth = True
    scale_dependent = True

    def __init__(self, alpha: float = 1.0, c: float = 1.0):
        ok = isinstance(alpha, Real) and not isinstance(alpha, bool)
        if ok:
            alpha = float(alpha)
            ok = math.isfinite(alpha) or alpha == -math.inf
        if not ok:
            raise ValueError(f"alpha={alpha!r} is invalid; allowed: a finite real number or float('-inf')")
        self.alpha = alpha
        self.c = _check_param("c", c, low=0.0, low_inclusive=False)
        self.convex = alpha >= 1.0
        self.redescending = alpha < 1.0
        self.irls_majorizes = alpha <= 2.0
        self.curvature_bound = 1.0 / self.c**2 if alpha <= 2.0 else math.inf

    def params(self):
        return {"alpha": self.alpha, "c": self.c}

    def _u2(self, r):
        return np.square(np.asarray(r, dtype=float) / self.c)

    def rho(self, r):
        u2 = self._u2(r)
        a = self.alpha
        if a == 2.0:
            return 0.5 * u2
        if a == 0.0:
            return np.log1p(0.5 * u2)
        if a == -math.inf:
            return -np.expm1(-0.5 * u2)
        b = abs(a - 2.0)
        # expm1/log1p: exact near alpha = 0 and for small residuals.
        return b / a * np.expm1(0.5 * a * np.log1p(u2 / b))

    def weights(self, r):
        u2 = self._u2(r)
        a = self.alpha
        if a == 2.0:
            return np.full(u2.shape, 1.0 / self.c**2)
        if a == -math.inf:
            return np.exp(-0.5 * u2) / self.c**2
        b = abs(a - 2.0)
        return np.exp((0.5 * a - 1.0) * np.log1p(u2 / b)) / self.c**2

    def psi(self, r):
        return np.asarray(r, dtype=float) * self.weights(r)

    def psi_deriv(self, r):
        u2 = self._u2(r)
        a = self.alpha
        if a == 2.0:
            return np.full(u2.shape, 1.0 / self.c**2)
        if a == -math.inf:
            return (1.0 - u2) * np.exp(-0.5 * u2) / self.c**2
        b = abs(a - 2.0)
        return np.exp((0.5 * a - 2.0) * np.log1p(u2 / b)) * (1.0 + (a - 1.0) * u2 / b) / self.c**2

    def _compiled_form(self):
        # The special shapes, where rho has a formula of its own, have formulas of their own there too.
        special = {0.0: "barron_0", 2.0: "barron_2", -math.inf: "barron_neg_inf"}
        return special.get(self.alpha, "barron"), self.c, self.alpha
