"""The :class:`Dataset` record, the train/test split and the reference fit."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._checks import check_int, check_real


class DataError(ValueError):
    """Bad data or a bad data file.

    The message is one line that names the file (or data set) and the problem.
    """


@dataclass(kw_only=True)
class Dataset:
    """A regression data set split into a training and a test part.

    Coefficient vectors are stored intercept first: ``[b0, b1, ..., bd]``
    for the model :math:`y = b_0 + x^\\top b_{1:d} + \\varepsilon`.

    Attributes
    ----------
    name : str
        Registry name of the data set (the file stem for CSV files).
    X_train, y_train : ndarray
        Training design, float64 of shape ``(n_train, d)``, and response.
    X_test, y_test : ndarray
        Test design of shape ``(n_test, d)`` and response.  The classic
        sets have no test split: shapes ``(0, d)`` and ``(0,)``.
    feature_names : list of str
        One name per column of ``X_train``.
    target_name : str
        Name of the response.
    coef_reference : ndarray
        Length ``d + 1``, intercept first: the coefficients that parameter
        error is measured against (see ``reference_method``).
    reference_method : str
        How ``coef_reference`` was obtained, for example
        ``"true coefficients"`` or ``"least squares on the clean training data"``.
    coef_true : ndarray or None
        Generating coefficients, intercept first, when known (synthetic data).
    noise_scale : float or None
        Scale parameter of the noise when known (synthetic data).
    source : str
        Citation or provenance.
    published : dict of str to ndarray
        Published fits, intercept first, keyed ``"least_squares"``, ``"mm"``
        and ``"lts"`` for the classic sets; empty otherwise.
    known_outliers : ndarray of int
        0-based training-row indices of the documented outliers (empty if none).
    y_signal_train : ndarray or None
        Noiseless response :math:`b_0 + X_{train} b_{1:d}` of synthetic data,
        so that a contamination model can replace the noise; ``None`` otherwise.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    feature_names: list[str]
    target_name: str
    coef_reference: np.ndarray
    reference_method: str
    coef_true: np.ndarray | None = None
    noise_scale: float | None = None
    source: str = ""
    published: dict[str, np.ndarray] = field(default_factory=dict)
    known_outliers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    y_signal_train: np.ndarray | None = None

    def __post_init__(self):
        self.X_train = np.asarray(self.X_train, dtype=np.float64)
        self.y_train = np.asarray(self.y_train, dtype=np.float64)
        self.X_test = np.asarray(self.X_test, dtype=np.float64)
        self.y_test = np.asarray(self.y_test, dtype=np.float64)
        self.coef_reference = np.asarray(self.coef_reference, dtype=np.float64)
        self.known_outliers = np.asarray(self.known_outliers, dtype=np.intp)
        if self.coef_true is not None:
            self.coef_true = np.asarray(self.coef_true, dtype=np.float64)
        if self.y_signal_train is not None:
            self.y_signal_train = np.asarray(self.y_signal_train, dtype=np.float64)
        self.published = {k: np.asarray(v, dtype=np.float64) for k, v in self.published.items()}
        self.feature_names = list(self.feature_names)
        d = self.X_train.shape[1] if self.X_train.ndim == 2 else -1
        problems = []
        if self.X_train.ndim != 2 or self.X_test.ndim != 2 or self.X_test.shape[1] != d:
            problems.append(f"X_train {self.X_train.shape} and X_test {self.X_test.shape} must be 2-D with equal columns")
        if self.y_train.shape != (len(self.X_train),) or self.y_test.shape != (len(self.X_test),):
            problems.append("y_train / y_test must be 1-D with one entry per row of X_train / X_test")
        if len(self.feature_names) != d:
            problems.append(f"{len(self.feature_names)} feature names for {d} columns")
        for label, coef in [("coef_reference", self.coef_reference), ("coef_true", self.coef_true),
                            *(("published " + k, v) for k, v in self.published.items())]:
            if coef is not None and coef.shape != (d + 1,):
                problems.append(f"{label} has shape {coef.shape}, expected ({d + 1},) (intercept first)")
        if self.y_signal_train is not None and self.y_signal_train.shape != self.y_train.shape:
            problems.append("y_signal_train must have the shape of y_train")
        if problems:
            raise DataError(f"{self.name}: " + "; ".join(problems))

    @property
    def n_train(self) -> int:
        """Number of training rows."""
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test rows (0 for the classic sets)."""
        return int(self.X_test.shape[0])

    @property
    def n_features(self) -> int:
        """Number of features ``d`` (the intercept not counted)."""
        return int(self.X_train.shape[1])

    def metadata(self) -> dict:
        """What identifies the data set in a job record, as plain Python values."""
        return {
            "name": self.name,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "n_features": self.n_features,
            "source": self.source,
            "reference_method": self.reference_method,
        }


def least_squares(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ordinary least-squares coefficients with an intercept, intercept first.

    .. math::

        \\hat b = \\arg\\min_b \\lVert y - [\\mathbf 1, X]\\, b \\rVert_2^2

    solved with :func:`numpy.linalg.lstsq` (an SVD, so no normal equations).
    """
    A = np.column_stack([np.ones(len(X)), X])
    return np.linalg.lstsq(A, y, rcond=None)[0]


def check_split(test_size, seed) -> tuple[float, int]:
    """Validate ``test_size`` in [0, 1) and ``seed`` (a non-negative integer)."""
    test_size = check_real("test_size", test_size, low=0.0, high=1.0)
    seed = check_int("seed", seed, low=0)
    return test_size, seed


def split_indices(n: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test row indices, each sorted in file order.

    The test part has ``ceil(test_size * n)`` rows (scikit-learn's
    ``train_test_split`` convention), drawn by one permutation from
    ``numpy.random.default_rng(seed)``; ``test_size = 0`` keeps every row
    for training.
    """
    # Rounding first keeps e.g. 0.3 * 10 = 3.0000000000000004 from giving 4.
    n_test = math.ceil(round(test_size * n, 9))
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])
