"""Reading numeric tables from CSV: every problem becomes one :class:`DataError` line."""

from __future__ import annotations

import csv as _csv
import io

import numpy as np
import pandas as pd

from ._base import DataError
from .._checks import magnitude_limit

_NON_FINITE_WORDS = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def read_text_table(text: str, display: str, delimiter: str) -> pd.DataFrame:
    """Parse CSV text into a frame of strings (one column per header name).

    Values stay strings so that :func:`numeric_columns` can say which cell
    is bad and why.  Blank lines are skipped.
    """
    if not text.strip():
        raise DataError(f"{display}: the file is empty")
    header = next(_csv.reader(io.StringIO(text.lstrip("\r\n")), delimiter=delimiter))
    names = [h.strip() for h in header]
    duplicated = sorted({h for h in names if names.count(h) > 1})
    if duplicated:
        raise DataError(f"{display}: duplicated column name(s) {', '.join(map(repr, duplicated))} in the header")
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            skip_blank_lines=True,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        detail = " ".join(str(exc).split())
        raise DataError(f"{display}: cannot be parsed as CSV with delimiter {delimiter!r}: {detail}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def select_columns(frame: pd.DataFrame, display: str, target: str, features) -> list[str]:
    """Check the target and feature names against the header; return the feature list."""
    available = list(frame.columns)
    listing = ", ".join(repr(c) for c in available)
    if not isinstance(target, str) or target not in available:
        raise DataError(f"{display}: target column {target!r} not found; available columns: {listing}")
    if features is None:
        features = [c for c in available if c != target]
    else:
        if isinstance(features, str):
            features = [features]
        features = list(features)
        for name in features:
            if not isinstance(name, str) or name not in available:
                raise DataError(f"{display}: feature column {name!r} not found; available columns: {listing}")
        if target in features:
            raise DataError(f"{display}: the target column {target!r} is also listed as a feature")
        repeated = sorted({f for f in features if features.count(f) > 1})
        if repeated:
            raise DataError(f"{display}: feature column(s) {', '.join(map(repr, repeated))} listed more than once")
    if not features:
        raise DataError(f"{display}: no feature columns (the file has only the target column {target!r})")
    return features


def numeric_columns(frame: pd.DataFrame, columns: list[str], display: str) -> np.ndarray:
    """The named columns as a float64 array; the first bad cell raises :class:`DataError`.

    Rows are reported as 1-based data rows: data row 1 is the first
    non-blank line after the header.  Values must be finite and at most
    :func:`magnitude_limit` in magnitude (so that a fit's sums of squares
    over the rows stay finite).
    """
    out = np.empty((len(frame), len(columns)), dtype=np.float64)
    limit = magnitude_limit(len(frame))
    for j, name in enumerate(columns):
        raw = frame[name].astype(str).str.strip()
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            cell = raw.iloc[i]
            where = f"column {name!r}, data row {i + 1} (1-based, header not counted)"
            if not isinstance(cell, str) or cell == "":  # an empty cell or a short row
                problem = "missing value"
            elif cell.lower() in _NON_FINITE_WORDS or np.isinf(values[i]):
                problem = f"non-finite value {cell!r} (NaN and infinity are not allowed)"
            else:
                problem = f"non-numeric value {cell!r}"
            raise DataError(f"{display}: {problem} in {where}")
        huge = np.flatnonzero(np.abs(values) > limit)
        if huge.size:
            i = int(huge[0])
            raise DataError(
                f"{display}: value {raw.iloc[i]!r} in column {name!r}, data row {i + 1} (1-based, header not "
                f"counted) is too large; allowed: finite values of magnitude at most {limit:.3g} "
                f"(sums of squares over {len(frame)} rows must stay finite)"
            )
        out[:, j] = values
    return out
