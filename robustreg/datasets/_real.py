"""Real data: the classic robust-regression sets, diabetes and user CSV files."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np

from ._base import Dataset, DataError, check_split, least_squares, split_indices
from ._tables import numeric_columns, read_text_table, select_columns

# Published fits, intercept first, copied from data/README.md (robustbase
# 0.95-0 and MASS 7.3-58): least squares, MM (lmrob, 50% breakdown, 95%
# efficiency) and reweighted LTS.
_CLASSIC = {
    "stackloss": {
        "file": "stackloss.csv",
        "known_outliers": [1, 3, 4, 21],
        "published": {
            "least_squares": [-39.92, 0.716, 1.295, -0.152],
            "mm": [-41.52, 0.939, 0.580, -0.113],
            "lts": [-37.65, 0.798, 0.577, -0.067],
        },
        "source": (
            "Brownlee (1965), Statistical Theory and Methodology in Science and Engineering; "
            "R datasets::stackloss. Known outliers: rows 1, 3, 4, 21 (1-based)."
        ),
    },
    "stars_cyg": {
        "file": "stars_cyg.csv",
        "known_outliers": [11, 20, 30, 34],
        "published": {
            "least_squares": [6.79, -0.413],
            "mm": [-4.97, 2.253],
            "lts": [-8.50, 3.046],
        },
        "source": (
            "Rousseeuw & Leroy (1987), Robust Regression and Outlier Detection, table 3 of chapter 2 "
            "(Hertzsprung-Russell diagram of the star cluster CYG OB1); R robustbase::starsCYG. "
            "Known outliers: rows 11, 20, 30, 34 (1-based; red giants, bad leverage points; "
            "LTS also flags 7 and 9)."
        ),
    },
    "hbk": {
        "file": "hbk.csv",
        "known_outliers": list(range(1, 11)),
        "published": {
            "least_squares": [-0.388, 0.239, -0.335, 0.383],
            "mm": [-0.189, 0.085, 0.041, -0.054],
            "lts": [-0.181, 0.081, 0.040, -0.052],
        },
        "source": (
            "Hawkins, Bradu & Kass (1984), Technometrics 26 (artificial data with planted outliers); "
            "R robustbase::hbk. Known outliers: rows 1-10 (1-based; bad leverage points); "
            "rows 11-14 are good leverage points."
        ),
    },
    "telef": {
        "file": "telef.csv",
        "known_outliers": [15, 16, 17, 18, 19, 20],
        "published": {
            "least_squares": [-26.01, 0.504],
            "mm": [-5.24, 0.110],
            "lts": [-5.16, 0.1085],
        },
        "source": (
            "Rousseeuw & Leroy (1987), Robust Regression and Outlier Detection, Belgian telephone calls; "
            "R robustbase::telef. Known outliers: rows 15-20 (1-based; years 1964-69, recorded in "
            "minutes instead of calls; LTS flags 14-21)."
        ),
    },
}

CLASSIC_NAMES = tuple(_CLASSIC)


def _read_packaged(filename: str) -> str:
    return resources.files(__package__).joinpath("data", filename).read_text(encoding="utf-8")


def _load_classic(name: str) -> Dataset:
    info = _CLASSIC[name]
    frame = read_text_table(_read_packaged(info["file"]), info["file"], ",")
    target = frame.columns[-1]  # the response is the last column in every shipped file
    features = select_columns(frame, info["file"], target, None)
    X = numeric_columns(frame, features, info["file"])
    y = numeric_columns(frame, [target], info["file"])[:, 0]
    d = X.shape[1]
    return Dataset(
        name=name,
        X_train=X,
        y_train=y,
        X_test=np.empty((0, d)),
        y_test=np.empty(0),
        feature_names=features,
        target_name=target,
        coef_reference=least_squares(X, y),
        reference_method="least squares on all rows (no test split)",
        coef_true=None,
        noise_scale=None,
        source=info["source"],
        published={k: np.array(v, dtype=np.float64) for k, v in info["published"].items()},
        known_outliers=np.array(info["known_outliers"], dtype=np.intp) - 1,
        y_signal_train=None,
    )


def stackloss() -> Dataset:
    """Brownlee's stack-loss data: 21 rows, 3 features, response ``stack_loss``.

    All rows are training rows (no test split).  Known outliers: 0-based
    rows 0, 2, 3, 20.  ``published`` holds the least-squares, MM and
    reweighted-LTS fits of ``data/README.md``.
    """
    return _load_classic("stackloss")


def stars_cyg() -> Dataset:
    """Hertzsprung-Russell data of the star cluster CYG OB1: 47 rows, 1 feature.

    Response ``log_light`` against ``log_te``.  Known outliers (the four red
    giants, bad leverage points): 0-based rows 10, 19, 29, 33.
    """
    return _load_classic("stars_cyg")


def hbk() -> Dataset:
    """Hawkins-Bradu-Kass artificial data: 75 rows, 3 features.

    Known outliers: 0-based rows 0-9 (bad leverage points); rows 10-13 are
    good leverage points (outlying in the features but on the model) and are
    not listed.
    """
    return _load_classic("hbk")


def telef() -> Dataset:
    """Belgian international telephone calls 1950-1973: 24 rows, 1 feature (``year``).

    Known outliers: 0-based rows 14-19 (1964-69, recorded in minutes
    instead of calls).
    """
    return _load_classic("telef")


def diabetes(test_size=0.25, seed=0, standardize=True) -> Dataset:
    """The diabetes data of Efron et al. (2004), shipped with scikit-learn.

    442 patients, 10 baseline features, response: disease progression one
    year after baseline.  Loaded offline with
    :func:`sklearn.datasets.load_diabetes` in original units
    (``scaled=False``).

    Parameters
    ----------
    test_size : float
        Share of rows in the test part, in [0, 1); ``ceil(test_size * 442)``
        rows.
    seed : int
        Seed of the train/test permutation.
    standardize : bool
        Centre each feature and divide it by its standard deviation, both
        computed on the training part only, then applied to both parts, so
        that the features have comparable scales for gradient descent.
        The response stays in its original units.

    Returns
    -------
    Dataset
        ``coef_reference`` is the least-squares fit (with intercept) on the
        clean training data, in the units of the returned features.
    """
    from sklearn.datasets import load_diabetes

    test_size, seed = check_split(test_size, seed)
    if not isinstance(standardize, bool):
        raise ValueError(f"standardize={standardize!r} is invalid; allowed: True, False")
    bunch = load_diabetes(scaled=False)
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.float64)
    train, test = split_indices(len(y), test_size, seed)
    X_train, X_test = X[train], X[test]
    if standardize:
        mean = X_train.mean(axis=0)
        std = X_train.std(axis=0)
        X_train = (X_train - mean) / std
        X_test = (X_test - mean) / std
    return Dataset(
        name="diabetes",
        X_train=X_train,
        y_train=y[train],
        X_test=X_test,
        y_test=y[test],
        feature_names=list(bunch.feature_names),
        target_name="progression",
        coef_reference=least_squares(X_train, y[train]),
        reference_method="least squares on the clean training data",
        source=(
            "Efron, Hastie, Johnstone & Tibshirani (2004), Least angle regression, Annals of Statistics 32; "
            "scikit-learn sklearn.datasets.load_diabetes"
            + (" (features standardized with training-part mean and standard deviation)" if standardize else "")
        ),
    )


def csv(path, target, features=None, delimiter=",", test_size=0.25, seed=0) -> Dataset:
    """A regression data set from a CSV file with a header line.

    Parameters
    ----------
    path : str or os.PathLike
        The file (UTF-8 text).
    target : str
        Header name of the response column.
    features : list of str, optional
        Header names of the feature columns; by default every column but
        the target.  Columns not selected may hold anything.
    delimiter : str
        One-character field separator.
    test_size : float
        Share of rows in the test part, in [0, 1); 0 keeps every row for
        training.
    seed : int
        Seed of the train/test permutation.

    Returns
    -------
    Dataset
        Named after the file stem; ``coef_reference`` is the least-squares
        fit on the training part.

    Raises
    ------
    DataError
        One line naming the file and the problem: missing or empty file,
        unknown column (with the available ones), a missing, non-numeric or
        non-finite value (with its column and 1-based data row, the header
        not counted), fewer rows than ``n_features + 2`` (in the file or in
        the training part), a value too large for a fit (see
        :func:`~robustreg._checks.magnitude_limit`), a constant
        feature or target, or linearly dependent features.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path={path!r} is invalid; allowed: a file path (str or os.PathLike)")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValueError(f"delimiter={delimiter!r} is invalid; allowed: a one-character string")
    test_size, seed = check_split(test_size, seed)
    display = os.fspath(path)
    file = Path(path)
    if not file.exists():
        raise DataError(f"{display}: file not found")
    if not file.is_file():
        raise DataError(f"{display}: not a regular file")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{display}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{display}: cannot be read ({exc.strerror})") from None

    frame = read_text_table(text, display, delimiter)
    features = select_columns(frame, display, target, features)
    X = numeric_columns(frame, features, display)
    y = numeric_columns(frame, [target], display)[:, 0]
    n, d = X.shape
    if n < d + 2:
        raise DataError(f"{display}: {n} data rows for {d} features; at least n_features + 2 = {d + 2} needed")
    _check_design(X, features, display, "")
    _check_target(y, target, display, "")

    train, test = split_indices(n, test_size, seed)
    if len(train) < d + 2:
        raise DataError(
            f"{display}: the training part has {len(train)} rows (test_size={test_size:g}); "
            f"at least n_features + 2 = {d + 2} needed"
        )
    where = f" in the training part (test_size={test_size:g}, seed={seed})"
    _check_design(X[train], features, display, where)
    _check_target(y[train], target, display, where)
    return Dataset(
        name=file.stem,
        X_train=X[train],
        y_train=y[train],
        X_test=X[test],
        y_test=y[test],
        feature_names=features,
        target_name=target,
        coef_reference=least_squares(X[train], y[train]),
        reference_method="least squares on the clean training data",
        source=f"CSV file {display}",
    )


def _check_target(y: np.ndarray, target: str, display: str, where: str) -> None:
    """Reject a constant response: it has no noise scale, and every fit is the same flat line."""
    if np.ptp(y) == 0:
        raise DataError(f"{display}: the target column {target!r} is constant ({y[0]:g}){where}; "
                        "allowed: a target that varies")


def _check_design(X: np.ndarray, features: list[str], display: str, where: str) -> None:
    """Reject constant or linearly dependent features: the reference fit would not be unique."""
    for j, name in enumerate(features):
        if np.ptp(X[:, j]) == 0:
            raise DataError(f"{display}: feature column {name!r} is constant ({X[0, j]:g}){where}")
    # The rank of [1, X] is that of [1, standardized X]: standardizing first
    # keeps columns of very different scales from looking dependent.
    A = np.column_stack([np.ones(len(X)), (X - X.mean(axis=0)) / X.std(axis=0)])
    rank = np.linalg.matrix_rank(A)
    if rank < A.shape[1]:
        raise DataError(
            f"{display}: the features are linearly dependent{where} "
            f"(rank {rank} of {A.shape[1]} columns with the intercept)"
        )
