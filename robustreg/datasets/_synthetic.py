"""Synthetic linear-regression data with a known truth."""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg, stats

from ._base import Dataset
from .._checks import check_choice, check_int, check_real, magnitude_limit, max_magnitude

DESIGNS = ("gaussian", "correlated", "uniform")
NOISES = ("gaussian", "laplace", "student_t")


def synthetic(
    n_train=200,
    n_test=1000,
    n_features=5,
    coef=None,
    intercept=1.0,
    design="gaussian",
    rho=0.5,
    condition_number=None,
    noise="gaussian",
    noise_scale=1.0,
    df=3.0,
    coef_scale=1.0,
    seed=0,
) -> Dataset:
    r"""Draw a linear model with known coefficients.

    .. math::

        y_i = b_0 + x_i^\top b + \sigma\, \varepsilon_i ,
        \qquad x_i \sim \text{design}, \quad \varepsilon_i \sim \text{noise}

    Parameters
    ----------
    n_train, n_test : int
        Rows of the training (>= 2) and test (>= 0) parts, drawn independently.
    n_features : int
        Number of features ``d`` (>= 1).
    coef : sequence of float, optional
        The slopes :math:`b` (length ``n_features``).  When omitted they are
        drawn from :math:`N(0, \text{coef\_scale}^2)`.
    intercept : float
        The intercept :math:`b_0`.
    design : {"gaussian", "correlated", "uniform"}
        ``"gaussian"``: independent standard normal features.
        ``"correlated"``: normal features with unit variances and
        correlation matrix :math:`\Sigma`: either Toeplitz,
        :math:`\Sigma_{jk} = \rho^{|j-k|}`, or, when ``condition_number`` is
        given, a random correlation matrix (:func:`scipy.stats.random_correlation`)
        whose eigenvalues are geometrically spaced so that
        :math:`\lambda_{\max}/\lambda_{\min} = \text{condition\_number}`.
        ``"uniform"``: independent :math:`U(-\sqrt3, \sqrt3)` features
        (unit variance, bounded).
    rho : float
        Toeplitz correlation in (-1, 1); used only by ``design="correlated"``
        without ``condition_number``.
    condition_number : float, optional
        Condition number (>= 1) of the population correlation matrix of the
        features, the Hessian of the population least-squares risk in the
        slopes; only with ``design="correlated"``.
    noise : {"gaussian", "laplace", "student_t"}
        Distribution of :math:`\varepsilon`: standard normal, standard
        Laplace (density :math:`\tfrac12 e^{-|e|}`, standard deviation
        :math:`\sqrt2`) or Student t with ``df`` degrees of freedom.
    noise_scale : float
        The scale :math:`\sigma > 0` multiplying the standard draw (the
        standard deviation for Gaussian noise only).
    df : float
        Degrees of freedom (> 0) of Student-t noise.
    coef_scale : float
        Standard deviation (> 0) of drawn slopes.
    seed : int
        Non-negative seed.  Independent streams (spawned from one
        :class:`numpy.random.SeedSequence`) draw the slopes, the correlation
        matrix, the training design, the test design and the two noise
        vectors, so for instance ``n_test`` does not change the training data.

    Returns
    -------
    Dataset
        ``coef_reference`` and ``coef_true`` are the true coefficients
        ``[intercept, *coef]``; ``noise_scale`` is :math:`\sigma`;
        ``y_signal_train`` is the noiseless training response.
    """
    (n_train, n_test, d, coef, intercept, design, rho, condition_number, noise, noise_scale, df, coef_scale,
     seed) = _checked(n_train, n_test, n_features, coef, intercept, design, rho, condition_number, noise,
                      noise_scale, df, coef_scale, seed)

    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    rng_coef, rng_corr, rng_x_train, rng_x_test, rng_e_train, rng_e_test = streams

    given_coef = coef is not None
    if not given_coef:
        coef = rng_coef.normal(0.0, coef_scale, size=d)

    root = None  # symmetric square root of the feature correlation matrix
    if design == "correlated":
        if condition_number is not None:
            corr = _correlation_with_condition(d, condition_number, rng_corr)
        else:
            corr = linalg.toeplitz(rho ** np.arange(d))
        w, v = np.linalg.eigh(corr)
        root = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T

    def draw_design(rng, n):
        if design == "uniform":
            return rng.uniform(-math.sqrt(3.0), math.sqrt(3.0), size=(n, d))
        z = rng.standard_normal((n, d))
        return z if root is None else z @ root

    def draw_noise(rng, n):
        if noise == "gaussian":
            e = rng.standard_normal(n)
        elif noise == "laplace":
            e = rng.laplace(0.0, 1.0, size=n)
        else:
            e = rng.standard_t(df, size=n)
        return noise_scale * e

    X_train = draw_design(rng_x_train, n_train)
    X_test = draw_design(rng_x_test, n_test)
    with np.errstate(over="ignore", invalid="ignore"):
        signal_train, signal_test = X_train @ coef, X_test @ coef
        e_train, e_test = draw_noise(rng_e_train, n_train), draw_noise(rng_e_test, n_test)
        y_signal_train = intercept + signal_train
        y_train = y_signal_train + e_train
        y_test = intercept + signal_test + e_test
    _check_magnitude(
        n_train,
        max_magnitude(y_train, y_test),
        {
            f"intercept={intercept:g}": abs(intercept),
            (f"coef={coef.tolist()!r}" if given_coef else f"coef_scale={coef_scale:g}"):
                max_magnitude(signal_train, signal_test),
            f"noise_scale={noise_scale:g}": max_magnitude(e_train, e_test),
        },
    )

    coef_true = np.concatenate([[intercept], coef])
    if design == "correlated":
        design_text = (f"correlated (condition number {condition_number:g})" if condition_number is not None
                       else f"correlated (Toeplitz rho={rho:g})")
    else:
        design_text = design
    noise_text = f"student_t (df={df:g})" if noise == "student_t" else noise
    return Dataset(
        name="synthetic",
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        feature_names=[f"x{j + 1}" for j in range(d)],
        target_name="y",
        coef_reference=coef_true.copy(),
        reference_method="true coefficients",
        coef_true=coef_true,
        noise_scale=noise_scale,
        source=(f"synthetic linear model: {design_text} design, {noise_text} noise "
                f"with scale {noise_scale:g}, seed {seed}"),
        published={},
        known_outliers=np.zeros(0, dtype=np.intp),
        y_signal_train=y_signal_train,
    )


def synthetic_params(**params) -> dict:
    """The parameters of :func:`synthetic` after its own checks, without drawing any data.

    The keyword arguments are :func:`synthetic`'s (defaults for those not
    given); returns all of them, validated (``coef`` as an array).  Raises
    the ``ValueError`` that :func:`synthetic` would raise for them.
    """
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(synthetic).parameters.items()}
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(defaults)}")
    return dict(zip(defaults, _checked(**{**defaults, **params})))


def _checked(n_train, n_test, n_features, coef, intercept, design, rho, condition_number, noise, noise_scale, df,
             coef_scale, seed) -> dict:
    """Every parameter check of :func:`synthetic`, in one place (the loader and the config schema use it).

    Returns the validated values in the order of the arguments.
    """
    n_train = check_int("n_train", n_train, low=2)
    n_test = check_int("n_test", n_test, low=0)
    d = check_int("n_features", n_features, low=1)
    intercept = check_real("intercept", intercept)
    design = check_choice("design", design, DESIGNS)
    rho = check_real("rho", rho, low=-1.0, high=1.0, low_inclusive=False)
    if condition_number is not None:
        if design != "correlated":
            raise ValueError(
                f"condition_number={condition_number!r} is invalid with design={design!r}; "
                "allowed: condition_number=None, or design='correlated'"
            )
        condition_number = check_real("condition_number", condition_number, low=1.0)
        if d == 1 and condition_number != 1.0:
            raise ValueError(
                f"condition_number={condition_number!r} is invalid with n_features=1; allowed: 1"
            )
    noise = check_choice("noise", noise, NOISES)
    noise_scale = check_real("noise_scale", noise_scale, low=0.0, low_inclusive=False)
    df = check_real("df", df, low=0.0, low_inclusive=False)
    coef_scale = check_real("coef_scale", coef_scale, low=0.0, low_inclusive=False)
    seed = check_int("seed", seed, low=0)
    if coef is not None:
        coef = _check_coef(coef, d)
    return (n_train, n_test, d, coef, intercept, design, rho, condition_number, noise, noise_scale, df, coef_scale,
            seed)


def _check_magnitude(n_train: int, top: float, parts: dict) -> None:
    """Reject data too large for a fit: name the largest of the parts (intercept, slopes, noise) that make ``y``."""
    limit = magnitude_limit(n_train)
    if top <= limit:
        return
    culprit = max(parts, key=lambda k: parts[k] if math.isfinite(parts[k]) else math.inf)
    raise ValueError(
        f"{culprit} is invalid: the responses reach {top:.3g}, beyond {limit:.3g} (sums of squares over "
        f"n_train={n_train} rows must stay finite); allowed: a value whose responses stay within {limit:.3g}"
    )


def _check_coef(coef, d: int) -> np.ndarray:
    try:
        arr = np.asarray(coef, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise ValueError(f"coef={coef!r} is invalid; allowed: a list of {d} finite real numbers (n_features={d})")
    if arr.shape[0] != d:
        raise ValueError(f"coef has {arr.shape[0]} entries but n_features={d}; allowed: a list of {d} numbers")
    return arr


def _correlation_with_condition(d: int, condition_number: float, rng) -> np.ndarray:
    """A random correlation matrix whose eigenvalues span the given ratio.

    Eigenvalues :math:`\\lambda_k \\propto \\kappa^{-k/(d-1)}`, scaled to sum
    to ``d`` (the trace of a correlation matrix); the matrix itself comes
    from the Davies-Higham algorithm in :func:`scipy.stats.random_correlation`.
    """
    if d == 1 or condition_number == 1.0:
        return np.eye(d)
    eigs = condition_number ** (-np.arange(d) / (d - 1))
    eigs *= d / eigs.sum()
    return stats.random_correlation.rvs(eigs, random_state=rng)
