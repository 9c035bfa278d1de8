"""The parameter checks of the library, written once: losses, data loaders, contamination models, robust starts.

Each check raises :class:`ValueError` with one line that names the
parameter, the value it got and what is allowed.  The study layer's config
schemas call the stage that owns each value (a loss, a loader, the
contamination model), never a copy of its ranges.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np


def check_real(name, value, *, low=-math.inf, high=math.inf, low_inclusive=True, high_inclusive=False) -> float:
    """Return ``value`` as a float when it is a finite real number in the given interval."""
    ok = isinstance(value, Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = (
            math.isfinite(v)
            and (v >= low if low_inclusive else v > low)
            and (v <= high if high_inclusive else v < high)
        )
    if not ok:
        left = "[" if low_inclusive and math.isfinite(low) else "("
        right = "]" if high_inclusive and math.isfinite(high) else ")"
        raise ValueError(
            f"{name}={value!r} is invalid; allowed: a finite real number in {left}{low:g}, {high:g}{right}"
        )
    return v


def check_int(name, value, *, low: int, high: int | None = None) -> int:
    """Return ``value`` as an int when it is an integer (not a bool) in ``[low, high]``."""
    ok = isinstance(value, Integral) and not isinstance(value, bool)
    if ok:
        ok = value >= low and (high is None or value <= high)
    if not ok:
        upper = "" if high is None else f" and <= {high}"
        raise ValueError(f"{name}={value!r} is invalid; allowed: an integer >= {low}{upper}")
    return int(value)


def check_choice(name, value, choices) -> str:
    """Return ``value`` when it is one of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is invalid; allowed: {', '.join(repr(c) for c in choices)}")
    return value


def magnitude_limit(n_rows: int, dtype=np.float64) -> float:
    """The largest magnitude of a data value that a fit in ``dtype`` can hold over ``n_rows`` rows.

    :math:`\\sqrt{\\text{max}(\\text{dtype}) / n}`: below it, a sum of ``n``
    squares (the Gram matrix, the squared residuals) stays finite.  The data
    loaders, the contamination models and the float32 data pass share it.
    """
    return math.sqrt(float(np.finfo(dtype).max) / max(int(n_rows), 1))


def max_magnitude(*arrays) -> float:
    """The largest absolute value in the arrays (inf if any is non-finite, 0 if all are empty)."""
    top = 0.0
    with np.errstate(invalid="ignore"):
        for a in arrays:
            a = np.asarray(a, dtype=np.float64)
            if a.size:
                m = float(np.max(np.abs(a)))
                top = max(top, m if math.isfinite(m) else math.inf)
    return top
