"""Regression data sets: synthetic data with a known truth, the classic
robust-regression sets, diabetes and CSV files.

Every loader returns a :class:`Dataset` with a training and a test part
and a reference coefficient vector (intercept first) against which
parameter error is measured.  Contamination is not applied here: the
clean data depend only on the loader's own parameters and seed, and
:func:`robustreg.outliers.inject` corrupts the training part afterwards.

==============  =====================================================  ===========================================
name            loader parameters                                      reference
==============  =====================================================  ===========================================
``synthetic``   see :func:`synthetic`                                  true coefficients
``diabetes``    ``test_size``, ``seed``, ``standardize``               least squares on the clean training data
``stackloss``   none (all 21 rows train, no test split)                least squares on all rows
``stars_cyg``   none (47 rows)                                         least squares on all rows
``hbk``         none (75 rows)                                         least squares on all rows
``telef``       none (24 rows)                                         least squares on all rows
``csv``         ``path``, ``target``, ``features``, ``delimiter``,     least squares on the clean training data
                ``test_size``, ``seed``
==============  =====================================================  ===========================================

The classic data files and their provenance, known outliers and published
fits are in ``robustreg/datasets/data/README.md``.
"""

from __future__ import annotations

import inspect
from typing import Callable

from ._base import Dataset, DataError, check_split, least_squares
from ._real import CLASSIC_NAMES, csv, diabetes, hbk, stackloss, stars_cyg, telef
from ._synthetic import DESIGNS, NOISES, synthetic, synthetic_params

__all__ = [
    "CLASSIC_NAMES",
    "DATASETS",
    "DESIGNS",
    "NOISES",
    "DataError",
    "Dataset",
    "check_split",
    "csv",
    "diabetes",
    "hbk",
    "least_squares",
    "load_dataset",
    "stackloss",
    "stars_cyg",
    "synthetic",
    "synthetic_params",
    "telef",
]

#: Registry of data-set names to loaders; :func:`load_dataset` validates against it.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "synthetic": synthetic,
    "diabetes": diabetes,
    "stackloss": stackloss,
    "stars_cyg": stars_cyg,
    "hbk": hbk,
    "telef": telef,
    "csv": csv,
}


def load_dataset(name: str, **params) -> Dataset:
    """Load the data set registered as ``name`` with the loader's parameters.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the registered ones), an
        unknown parameter or a missing required one (the message lists the
        loader's parameters); the loaders raise their own errors for bad
        values, and :class:`DataError` for bad data.
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(sorted(DATASETS))}")
    loader = DATASETS[name]
    signature = inspect.signature(loader)
    accepted = list(signature.parameters)
    listing = ", ".join(accepted) if accepted else "none"
    unknown = [p for p in params if p not in signature.parameters]
    if unknown:
        raise ValueError(
            f"dataset {name!r} got unknown parameter(s) {', '.join(unknown)}; allowed: {listing}"
        )
    missing = [
        p.name for p in signature.parameters.values() if p.default is inspect.Parameter.empty and p.name not in params
    ]
    if missing:
        raise ValueError(f"dataset {name!r} requires parameter(s) {', '.join(missing)}; allowed: {listing}")
    return loader(**params)
