"""Reference solvers: scikit-learn's linear regressors, run through the same job record.

A reference solver is fitted on the same (contaminated) training data as
:class:`robustreg.GDRegressor` and measured the same way, so the report can
set a gradient-descent fit beside an established solver of the same
estimator (or of a classic robust one).  One registry,
:data:`REFERENCE_SOLVERS`, feeds both construction and validation.

====================  ==========================================  =============================================
name                  estimator                                   defaults set here (overridable in ``params``)
====================  ==========================================  =============================================
``sklearn_ols``       ``LinearRegression``: least squares         none
``sklearn_huber``     ``HuberRegressor``: Huber M-estimator with  ``epsilon=1.35``, ``alpha=0.0`` (no ridge
                      a scale estimated jointly                   penalty), ``max_iter=1000``
``sklearn_lad``       ``QuantileRegressor`` at the median:        ``alpha=0.0`` (no L1 penalty),
                      least absolute deviations (L1)              ``solver="highs"``; ``quantile=0.5`` is fixed
``sklearn_ransac``    ``RANSACRegressor`` around least squares    ``random_state`` is the job seed (fixed)
``sklearn_theilsen``  ``TheilSenRegressor``: spatial median of    ``random_state`` is the job seed (fixed)
                      exact fits through random subsets
====================  ==========================================  =============================================

Every fitted solver has ``coef_`` and ``intercept_`` in the original units
(RANSAC's come from its final least-squares fit on the consensus set).  None
of them records a per-iteration history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from numbers import Integral

from sklearn.base import BaseEstimator
from sklearn.linear_model import (
    HuberRegressor,
    LinearRegression,
    QuantileRegressor,
    RANSACRegressor,
    TheilSenRegressor,
)
from sklearn.utils._param_validation import InvalidParameterError

from .errors import ConfigError

__all__ = ["REFERENCE_SOLVERS", "ParameterError", "RANSACLinearRegressor", "ReferenceSolver", "make_reference_solver"]


class ParameterError(ConfigError):
    """A parameter a reference solver does not take, or a value it rejects.

    Attributes
    ----------
    param : str
        The parameter's name (``random_state`` for a bad seed of a randomized solver).
    value : object
        The value given.
    allowed : str
        What is allowed: the parameter names (``unknown``), or the values scikit-learn accepts.
    unknown : bool
        The solver takes no parameter of that name (or it is fixed).
    """

    def __init__(self, message: str, param: str, value, allowed: str, unknown: bool = False):
        super().__init__(message)
        self.param, self.value, self.allowed, self.unknown = param, value, allowed, unknown


class RANSACLinearRegressor(RANSACRegressor):
    """``RANSACRegressor`` around least squares, with the linear fit's attributes.

    ``coef_``, ``intercept_`` are those of the final least-squares fit on the
    consensus set (``estimator_``); ``n_iter_`` is ``n_trials_``, the number
    of random subsets drawn.
    """

    @property
    def coef_(self):
        return self.estimator_.coef_

    @property
    def intercept_(self):
        return self.estimator_.intercept_

    @property
    def n_iter_(self):
        return self.n_trials_


@dataclass(frozen=True)
class ReferenceSolver:
    """One entry of :data:`REFERENCE_SOLVERS`.

    Attributes
    ----------
    estimator : type
        The scikit-learn estimator class.
    defaults : dict
        Constructor arguments set here, overridable through ``params``.
    fixed : dict
        Constructor arguments that define the solver and cannot be overridden.
    seeded : bool
        ``random_state`` is the job seed.
    convex : bool
        The solver minimizes a convex loss exactly (its estimate is that loss's estimator).
    """

    estimator: type[BaseEstimator]
    defaults: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    seeded: bool = False
    convex: bool = False

    def allowed_params(self) -> list[str]:
        """Names a job's ``params`` may set: the constructor's, less the fixed and the seed."""
        # Callables and nested estimators cannot come from a config file.
        not_from_config = {"estimator", "is_data_valid", "is_model_valid", "random_state"}
        return sorted(set(self.estimator().get_params()) - set(self.fixed) - not_from_config)


#: Registry of reference-solver names; :func:`make_reference_solver` builds and validates from it.
REFERENCE_SOLVERS: dict[str, ReferenceSolver] = {
    "sklearn_ols": ReferenceSolver(LinearRegression, convex=True),
    # sklearn's default alpha=1e-4 adds a ridge penalty and max_iter=100 can
    # stop L-BFGS early on contaminated data: the plain Huber M-estimate needs neither.
    "sklearn_huber": ReferenceSolver(HuberRegressor, defaults={"epsilon": 1.35, "alpha": 0.0, "max_iter": 1000},
                                     convex=True),
    "sklearn_lad": ReferenceSolver(
        QuantileRegressor, defaults={"alpha": 0.0, "solver": "highs"}, fixed={"quantile": 0.5}, convex=True
    ),
    "sklearn_ransac": ReferenceSolver(RANSACLinearRegressor, seeded=True),
    "sklearn_theilsen": ReferenceSolver(TheilSenRegressor, seeded=True),
}


def make_reference_solver(name: str, seed: int = 0, **params) -> BaseEstimator:
    """An unfitted reference solver, its arguments checked.

    Parameters
    ----------
    name : str
        A key of :data:`REFERENCE_SOLVERS`.
    seed : int, default=0
        The job seed, ``random_state`` of the randomized solvers (RANSAC,
        Theil-Sen); ignored by the others.
    **params
        Constructor arguments overriding the defaults (see the module table
        and :meth:`ReferenceSolver.allowed_params`).

    Returns
    -------
    estimator
        A scikit-learn regressor; after ``fit`` it has ``coef_`` and ``intercept_``.

    Raises
    ------
    robustreg.study.errors.ConfigError
        (a ``ValueError``) for an unknown name or a bad seed;
        :class:`ParameterError` (a ``ConfigError``) for an unknown or fixed
        parameter, or a parameter value (``random_state``: the seed)
        scikit-learn rejects.
    """
    if not isinstance(name, str) or name not in REFERENCE_SOLVERS:
        raise ConfigError(f"reference solver name={name!r} is invalid; allowed: {', '.join(REFERENCE_SOLVERS)}")
    solver = REFERENCE_SOLVERS[name]
    if not isinstance(seed, Integral) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed={seed!r} is invalid; allowed: an integer >= 0")
    allowed = solver.allowed_params()
    for key in params:
        if key not in allowed:
            listing = ", ".join(allowed) or "none"
            raise ParameterError(f"{name}: parameter {key!r} is invalid; allowed: {listing}", key, params[key],
                                 listing, unknown=True)
    kwargs = {**solver.defaults, **params, **solver.fixed}
    if solver.seeded:
        kwargs["random_state"] = int(seed)
    estimator = solver.estimator(**kwargs)
    try:
        # Check the values now, before any data are loaded, not at fit time.
        estimator._validate_params()
    except InvalidParameterError as exc:
        text = str(exc).splitlines()[0]
        found = re.match(r"The '(\w+)' parameter of \w+ must be (.*)\. Got .* instead\.$", text)
        if found is None:
            raise ConfigError(f"{name}: {text}") from None
        param, allowed = found.groups()
        raise ParameterError(f"{name}: {text}", param, kwargs.get(param), allowed) from None
    return estimator
