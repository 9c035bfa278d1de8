"""Read the job records of a sweep folder into one tidy table per kind of data.

A sweep folder holds one folder per job (at any depth).  A finished job has
``metrics.json`` (and, for gradient descent, ``history.parquet``); a failed
job has ``failure.json``; ``sweep.json`` lists the jobs that were expected.
:func:`collect` reads them all into a :class:`Collection`: one row per job
(done, failed or missing) and one long table of the per-iteration histories.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..study.record import (FAILURE, HISTORY, METRICS, SWEEP, atomic_write, digest, history_table, loss_label,
                             manifest_jobs)
from ..study.record import read_json as _read_json

__all__ = [
    "Collection",
    "NoRecordsError",
    "ReportError",
    "collect",
    "compact_params",
    "done_runs",
    "dynamics_runs",
    "estimator_runs",
    "write_histories",
    "NON_SETTING_COLUMNS",
    "OUTCOME_COLUMNS",
]

#: Schema metadata key of a consolidated histories file (the report's
#: ``histories.parquet``): which history file each job's rows came from.
HISTORY_SOURCES = b"robustreg.history_sources"
#: Jobs that ran to their end (a ``metrics.json``): the fit met its stopping
#: rule (``ok``), stopped without meeting it nor diverging (``not_converged``),
#: or diverged.
DONE_STATUSES = ("ok", "not_converged", "diverged")
#: Done jobs whose estimate enters comparisons of estimators (errors, pairs,
#: robustness): a not-converged fit is left out; a diverged one stays (its
#: error counts as infinite where it is not finite).
ESTIMATOR_STATUSES = ("ok", "diverged")
#: What each subset of :func:`estimator_runs` / :func:`dynamics_runs` is, as the report prints it.
SUBSETS = {
    "estimator jobs": "the done jobs whose estimate is compared: status `ok` or `diverged` (a diverged fit "
                      "counts with its error, infinite when not finite); `not_converged` jobs are left out",
    "dynamics jobs": "the done jobs that ran plain gradient descent (`model.solver=gd`, the article's "
                     "algorithm), `not_converged` included: what it did on the way (its history, gradient norms, "
                     "iterations, divergence); the exact solver's iterations never enter them",
}
HISTORY_COLUMNS = ("iteration", "objective", "grad_norm", "step", "coef_error")

#: Parameters that only draw a replicate (their value follows the job seed);
#: they are kept in their own columns, never in a setting.
_REPLICATE_KEYS = ("seed", "random_state")

#: Per-job outcomes: what a fit produced (never used to group jobs).
OUTCOME_COLUMNS = (
    "status", "coef_error", "intercept_error", "relative_error", "test_rmse", "test_mae",
    "train_objective", "n_iter", "converged", "diverged", "fit_seconds", "lipschitz",
    "initial_step", "fitted_scale", "optimality", "max_grad_norm", "final_grad_norm", "n_zero_coef",
    "coef_norm", "mm_error", "error", "error_type", "n_warnings",
    "tail_increase_share", "tail_grad_ratio", "settle_iter", "history_length",
)

#: Columns that neither identify a setting nor are outcomes: bookkeeping,
#: replicate indices, derived descriptions and list-valued fields.
NON_SETTING_COLUMNS = frozenset(OUTCOME_COLUMNS) | {
    "job_dir", "config_hash", "package_version", "seed", "dataset_seed", "outlier_seed",
    "loss", "loss_params", "model_params", "n_train", "n_test", "n_features",
    "reference_method", "n_corrupted", "coef", "intercept", "coef_reference", "coef_true",
    "published", "known_outliers", "overrides", "convex", "redescending", "dataset_args", "outlier_args",
    "loss_args", "bse", "weights", "feature_names", "target_name", "train", "path_settings",
}


#: The per-job lists and dicts of the runs table (arguments, coefficients, weights): no claim rule reads them.
LIST_COLUMNS = ("dataset_args", "outlier_args", "loss_args", "coef", "coef_reference", "coef_true", "bse",
                "published", "known_outliers", "weights", "feature_names", "train", "path_settings")
#: What runs.csv does not carry: the packed settings strings (settings go one per column) and the lists
#: (coefficients go to coefficients.csv).
PACKED_COLUMNS = ("dataset_params", "outlier_params", "loss_params", "model_params", "target_name", *LIST_COLUMNS)


def estimator_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The jobs whose fitted estimate is compared with others: status ``ok`` or ``diverged``.

    Used by the summary and paired tables, the error figures and the
    robustness parts of the claim rules.  A ``not_converged`` job (it ended
    without the certificate that its fit is the loss's minimizer) is left out: its estimate is not the fit
    of its loss.  A diverged job stays, as it always has: its parameter error
    counts (as infinite when it is not finite).
    """
    if "status" not in runs:
        return runs
    return runs[runs["status"].isin(ESTIMATOR_STATUSES)]


def done_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Every job that ran to its end (``ok``, ``not_converged``, ``diverged``)."""
    if "status" not in runs:
        return runs
    return runs[runs["status"].isin(DONE_STATUSES)]


#: The solver settings of plain gradient descent (``model.solver``); a record
#: without the setting predates the exact solver and ran plain gradient descent.
PLAIN_GD_SOLVERS = ("gd",)


def dynamics_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The done jobs that ran plain gradient descent (``model.solver=gd``), ``not_converged`` included.

    What the article's algorithm did: used by the convergence and
    gradient-norm figures and by the rules on gradient-descent dynamics
    (oscillation, stability, explosion, speed).  The exact solver's
    iterations are another algorithm's and never enter them.
    """
    done = done_runs(runs)
    if "model" not in done:
        return done
    gd = done["model"] == "gd"
    if "solver" in done:
        gd &= done["solver"].isna() | done["solver"].isin(PLAIN_GD_SOLVERS)
    return done[gd]


def derived_status(converged, diverged) -> str:
    """The status of a done record that has none (older records), from its ``converged`` and ``diverged`` flags.

    The rule of :func:`robustreg.study.job.job_status`; a record without a
    ``converged`` flag (``None``) reads as ``ok``.
    """
    if diverged:
        return "diverged"
    return "not_converged" if converged is False else "ok"


class ReportError(ValueError):
    """A sweep folder or report option that cannot be used (one line: what and why)."""


class NoRecordsError(ReportError):
    """The sweep folder holds no job record."""


@dataclass
class Collection:
    """Everything read from one sweep folder.

    Attributes
    ----------
    sweep_dir : Path
        The folder that was read.
    runs : pandas.DataFrame
        One row per job, sorted by ``job_dir``: the done jobs (``status``
        ``"ok"``, ``"not_converged"`` or ``"diverged"``), the failed ones (``"failed"``, with
        ``error``) and the expected jobs without any record (``"missing"``,
        with the sweeper's ``overrides``; their settings are unknown).
        Settings are flattened: ``dataset``, ``dataset_params``,
        ``outliers`` (the kind), ``fraction``, ``magnitude``,
        ``outlier_params``, ``loss``, ``loss_params``, ``loss_label``,
        ``model`` and one column per model parameter (``learning_rate``,
        ``eta0``, ``penalty``, ``alpha``, ``init``, ``scale`` ...).
    histories : pandas.DataFrame
        One row per recorded iteration of every done job: ``job_dir``
        (categorical), ``iteration``, ``objective``, ``grad_norm``, ``step``,
        ``coef_error``.
    expected : int
        Jobs listed in ``sweep.json`` (the jobs found when there is none).
    sweep_files : list of str
        The ``sweep.json`` files read, relative to ``sweep_dir``.
    unexpected : list of str
        Records in folders that no ``sweep.json`` lists (counted as found).
    duplicates : int
        Record folders whose ``config_hash`` repeats an earlier one.
    damaged : list of str
        One line per record file that cannot be read (``<job folder>/<file>:
        why``).  Its job is left out (``missing`` when a ``sweep.json``
        lists it): the next run of the sweep does it again.
    history_sources : dict
        ``job_dir -> [size, mtime_ns, inode]`` of each ``history.parquet``
        read: stored with a consolidated histories file (see
        :func:`write_histories`) so that the next :func:`collect` can take the
        unchanged histories from it.
    """

    sweep_dir: Path
    runs: pd.DataFrame
    histories: pd.DataFrame
    expected: int
    sweep_files: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    duplicates: int = 0
    history_sources: dict = field(default_factory=dict)
    damaged: list = field(default_factory=list)

    @property
    def study(self) -> str:
        """The study name of the records (names joined with ``+`` when several)."""
        names = sorted({s for s in self.runs["study"].dropna().unique() if s})
        return "+".join(names) if names else self.sweep_dir.name

    @property
    def done_runs(self) -> pd.DataFrame:
        """The jobs that ran to their end (``ok``, ``not_converged`` or ``diverged``): :func:`done_runs`."""
        return done_runs(self.runs)

    @property
    def done(self) -> int:
        return int(self.runs["status"].isin(DONE_STATUSES).sum())

    @property
    def failed(self) -> int:
        return int((self.runs["status"] == "failed").sum())

    @property
    def diverged(self) -> int:
        return int((self.runs["status"] == "diverged").sum())

    @property
    def not_converged(self) -> int:
        return int((self.runs["status"] == "not_converged").sum())

    @property
    def missing(self) -> int:
        return int((self.runs["status"] == "missing").sum())

    def counts(self) -> dict:
        """``expected``, ``done``, ``failed``, ``diverged``, ``not_converged`` and ``missing`` job counts.

        ``done`` counts every job that ran to its end: ``diverged`` and
        ``not_converged`` jobs are among them.
        """
        return {
            "expected": int(self.expected),
            "done": self.done,
            "failed": self.failed,
            "diverged": self.diverged,
            "not_converged": self.not_converged,
            "missing": self.missing,
        }


# ------------------------------------------------------------------- helpers
def _fmt_value(v) -> str:
    """A short, stable text for a parameter value (floats with up to 10 significant digits)."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.10g}"
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, separators=(",", ":"), sort_keys=True)
    return str(v)


def compact_params(params: dict | None, drop=()) -> str:
    """Parameters as one sorted, compact string, e.g. ``"beta=0.5, delta=1"``; ``""`` when none."""
    if not params:
        return ""
    try:
        key = (tuple(params.items()), tuple(drop))
        return _compact_cached(key)
    except TypeError:  # a list value: not hashable
        return _compact(params, drop)


def _compact(params: dict, drop) -> str:
    return ", ".join(f"{k}={_fmt_value(params[k])}" for k in sorted(params) if k not in drop)


@lru_cache(maxsize=4096)
def _compact_cached(key) -> str:
    # Sweeps repeat the same few parameter sets thousands of times.
    items, drop = key
    return _compact(dict(items), drop)


def _as_float(v):
    """A record float: ``None`` (a non-finite value in strict JSON) becomes NaN."""
    if v is None:
        return math.nan
    return float(v)


def _identity_row(rec: dict) -> dict:
    """The identifying settings of a metrics or failure record, flattened."""
    dataset = rec.get("dataset") or {}
    outliers = rec.get("outliers") or {}
    loss = rec.get("loss") or {}
    model = rec.get("model") or {}
    dparams = dataset.get("params") or {}
    oparams = outliers.get("params") or {}
    lparams = loss.get("params") or {}
    mparams = model.get("params") or {}
    if mparams.get("init", "") is None and rec.get("start"):
        # The start the estimator resolved its default to (the MM-estimator's "s", least squares...).
        mparams = {**mparams, "init": rec["start"]}
    row = {
        "study": rec.get("study"),
        "config_hash": rec.get("config_hash"),
        "package_version": rec.get("package_version"),
        "seed": rec.get("seed"),
        "dataset": dataset.get("name"),
        "dataset_params": compact_params(dparams, drop=_REPLICATE_KEYS),
        "dataset_seed": dparams.get("seed"),
        "dataset_args": dparams,
        "outliers": outliers.get("kind"),
        "fraction": _as_float(outliers.get("fraction")),
        "magnitude": _as_float(outliers.get("magnitude")),
        "outlier_params": compact_params(oparams, drop=_REPLICATE_KEYS),
        "outlier_args": oparams,
        "outlier_seed": outliers.get("seed", oparams.get("seed")),
        "loss": loss.get("name"),
        "loss_params": compact_params(lparams),
        "loss_args": lparams,
        "model": model.get("name"),
        "model_params": compact_params(mparams, drop=_REPLICATE_KEYS),
        "_model_params": {k: v for k, v in mparams.items() if k not in _REPLICATE_KEYS},
        "_loss_params": lparams,
        # What the job wrote of its loss (robustreg.study.job.loss_entry).
        "_loss_entry": {k: loss.get(k) for k in ("label", "convex", "redescending")},
        "path_settings": model.get("path_settings") or [],
    }
    return row


def _metrics_row(rec: dict) -> dict:
    row = _identity_row(rec)
    dataset = rec.get("dataset") or {}
    outliers = rec.get("outliers") or {}
    coef = rec.get("coef")
    # Plain Python on a few numbers per job: numpy's per-call overhead dominates at 10,000 jobs.
    coef_vals = [_as_float(c) for c in coef] if coef is not None else None
    published = rec.get("published") or {}
    mm = published.get("mm")
    mm_error = math.nan
    if coef_vals is not None and mm is not None and len(mm) == len(coef_vals) + 1:
        mm_error = math.hypot(*(c - _as_float(m) for c, m in zip(coef_vals, mm[1:])))
    # Records written before the status key existed: derived from the two flags.
    status = rec.get("status") or derived_status(rec.get("converged"), rec.get("diverged"))
    row.update(
        status=status,
        n_train=dataset.get("n_train"),
        n_test=dataset.get("n_test"),
        n_features=dataset.get("n_features"),
        reference_method=dataset.get("reference_method"),
        n_corrupted=outliers.get("n_corrupted"),
        coef_error=_as_float(rec.get("coef_error")),
        intercept_error=_as_float(rec.get("intercept_error")),
        relative_error=_as_float(rec.get("relative_error")),
        test_rmse=_as_float(rec.get("test_rmse")),
        test_mae=_as_float(rec.get("test_mae")),
        train_objective=_as_float(rec.get("train_objective")),
        n_iter=rec.get("n_iter"),
        converged=bool(rec.get("converged")),
        diverged=bool(rec.get("diverged")) or status == "diverged",
        fit_seconds=_as_float(rec.get("fit_seconds")),
        lipschitz=_as_float(rec.get("lipschitz")),
        initial_step=_as_float(rec.get("initial_step")),
        fitted_scale=_as_float(rec.get("scale")),
        optimality=_as_float(rec.get("optimality")),
        max_grad_norm=_as_float(rec.get("max_grad_norm")),
        final_grad_norm=_as_float(rec.get("final_grad_norm")),
        n_zero_coef=sum(c == 0.0 for c in coef_vals) if coef_vals is not None else None,
        coef_norm=math.hypot(*coef_vals) if coef_vals is not None else math.nan,
        mm_error=mm_error,
        n_warnings=len(rec.get("warnings") or ()),
        coef=coef,
        intercept=_as_float(rec.get("intercept")),
        coef_reference=rec.get("coef_reference"),
        coef_true=rec.get("coef_true"),
        bse=rec.get("bse"),
        published=published,
        known_outliers=rec.get("known_outliers") or [],
        weights=rec.get("weights"),
        feature_names=dataset.get("feature_names"),
        target_name=dataset.get("target_name"),
        train=rec.get("train"),
    )
    return row


def _failure_row(rec: dict) -> dict:
    row = _identity_row(rec)
    error = str(rec.get("error") or "").strip().splitlines()
    row.update(
        status="failed",
        error=error[0] if error else "(no message)",
        error_type=rec.get("error_type"),
        overrides=" ".join(rec.get("overrides") or []),
    )
    return row


def _loss_label(loss, model, lparams) -> str:
    """A label for a record that does not carry one (written before records held it): the loss's name with
    its constants (``"huber (delta=1)"``); reference solvers by model name."""
    if model is not None and model != "gd":
        return str(model)
    if loss is None:
        return "unknown"
    return loss_label(loss, lparams or {})


_ABSENT = object()


def _typed_column(values: list):
    """One model-parameter column.

    Numeric when every value given is a number (``None`` -> NaN), boolean
    when every one is a bool, else text (``None`` -> ``"none"``).  A job
    whose model has no such parameter gets a missing value.
    """
    given = [v for v in values if v is not _ABSENT]
    present = [v for v in given if v is not None]
    if present and all(isinstance(v, bool) for v in present) and len(present) == len(given):
        return pd.array([None if v is _ABSENT else v for v in values], dtype="boolean")
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pd.array([math.nan if v is _ABSENT or v is None else float(v) for v in values], dtype="float64")
    return pd.array([None if v is _ABSENT else _fmt_value(v) for v in values], dtype=object)


def _find_records(sweep_dir: Path):
    """Relative folders holding metrics.json / failure.json / history.parquet, and sweep.json files."""
    metrics, failures, histories, sweeps = [], [], set(), []
    base = str(sweep_dir)
    cut = len(base.rstrip(os.sep)) + 1
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        names = set(filenames)
        rel = dirpath[cut:].replace(os.sep, "/") if len(dirpath) >= cut else "."
        if METRICS in names:
            metrics.append(rel)
            if HISTORY in names:
                histories.add(rel)
        elif FAILURE in names:
            failures.append(rel)
        if SWEEP in names:
            sweeps.append(rel)
    return metrics, failures, histories, sweeps


@lru_cache(maxsize=1)
def _history_schema():
    import pyarrow as pa

    return pa.schema([(c, pa.int64() if c == "iteration" else pa.float64()) for c in HISTORY_COLUMNS])


def _normalize_history(table):
    """A history table with exactly the expected columns and types (missing ones as nulls)."""
    import pyarrow as pa

    cols = []
    for col in _history_schema():
        if col.name in table.column_names:
            cols.append(table.column(col.name).cast(col.type))
        else:
            cols.append(pa.nulls(table.num_rows, col.type))
    return pa.Table.from_arrays(cols, schema=_history_schema())


#: Where the history scan leaves the SHA-256 of each file it read, beside the damaged ones
#: (no job folder is named with a NUL).
_DIGESTS = "\0digests"


def _read_history_chunk(sweep_dir: str, folders: list, damaged: dict):
    """Histories of a run of folders: (one Arrow table, rows per folder).

    A file that cannot be read gets no rows, and its folder a line in ``damaged``.
    """
    import pyarrow as pa

    tables = []
    for rel in folders:
        path = os.path.join(sweep_dir, rel, HISTORY)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            table = history_table(data)
        except (OSError, pa.ArrowException) as exc:
            damaged[rel] = f"{rel}/{HISTORY}: cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            table = _history_schema().empty_table()
        else:
            damaged.setdefault(_DIGESTS, {})[rel] = digest(data)
        if table.schema != _history_schema():
            table = _normalize_history(table)
        tables.append(table)
    lengths = [t.num_rows for t in tables]
    return (pa.concat_tables(tables) if tables else None), lengths


def _scan_histories(sweep_dir: str, folders: list, damaged: dict):
    """The histories of ``folders``, file by file: (one Arrow table, rows per folder).

    Runs of folders are read on every core: Arrow decodes without the GIL.
    """
    import pyarrow as pa

    if not folders:
        return None, []
    n_threads = max(1, min(os.cpu_count() or 1, len(folders) // 200))
    if n_threads == 1:
        return _read_history_chunk(sweep_dir, folders, damaged)
    cuts = np.linspace(0, len(folders), n_threads + 1).astype(int)
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        parts = list(pool.map(lambda ab: _read_history_chunk(sweep_dir, folders[ab[0]:ab[1]], damaged),
                              zip(cuts[:-1], cuts[1:])))
    tables = [t for t, _ in parts if t is not None]
    lengths = [n for _, part_lengths in parts for n in part_lengths]
    return (pa.concat_tables(tables) if tables else None), lengths


def _file_key(path: str) -> list:
    """What identifies one version of a file: size, modification time (ns) and inode."""
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _read_consolidated(path: str):
    """``(table, {job_dir: (source key, offset, length)})`` of a consolidated histories file, or None."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = json.loads(pq.read_schema(path).metadata[HISTORY_SOURCES])
        table = pq.read_table(path, columns=list(HISTORY_COLUMNS))
        if table.schema != _history_schema():
            return None
    except (OSError, KeyError, TypeError, ValueError, pa.ArrowException):
        return None  # none, or not one this version wrote: read the job folders
    index, offset = {}, 0
    for folder, key, length in zip(meta["folders"], meta["keys"], meta["lengths"]):
        index[folder] = (key, offset, length)
        offset += length
    return (table, index) if offset == table.num_rows else None


def write_histories(collection: "Collection", path) -> None:
    """Write ``collection.histories`` to one parquet file, with where each job's rows came from.

    :func:`collect` given this file as ``consolidated`` takes from it the
    histories whose ``history.parquet`` has not changed since, and reads only
    the others from their folders.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    hist = collection.histories
    lengths = hist["job_dir"].value_counts(sort=False).reindex(hist["job_dir"].cat.categories, fill_value=0)
    folders = [f for f in lengths.index if f in collection.history_sources]
    meta = {
        "folders": folders,
        "keys": [collection.history_sources[f] for f in folders],
        "lengths": [int(lengths[f]) for f in folders],
    }
    table = pa.Table.from_pandas(hist, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), HISTORY_SOURCES: json.dumps(meta)})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    atomic_write(path, sink.getvalue().to_pybytes())  # never a half-written file under the real name


def _histories(sweep_dir: str, folders: list, damaged: dict, consolidated=None):
    """All histories as ``(table, rows per folder, source keys)``, in the order of ``folders``.

    A history whose file is unchanged (same size, modification time and inode)
    since ``consolidated`` was written comes from that one file; the others
    are read from their folders.  So a sweep's histories are read file by file
    once, and from one file after that, however many jobs it has.
    """
    import pyarrow as pa

    if not folders:
        return None, [], []
    keys = []
    for rel in folders:
        try:
            keys.append(_file_key(os.path.join(sweep_dir, rel, HISTORY)))
        except OSError as exc:
            damaged[rel] = f"{rel}/{HISTORY}: cannot be read ({exc.strerror})"
            keys.append(None)
    cache = _read_consolidated(str(consolidated)) if consolidated and os.path.exists(consolidated) else None
    index = cache[1] if cache else {}
    stale = [rel for rel, key in zip(folders, keys) if rel not in index or index[rel][0] != key]
    if cache and not stale and list(index) == folders:
        return cache[0], [index[rel][2] for rel in folders], keys  # the file as it is
    new_table, new_lengths = _scan_histories(sweep_dir, stale, damaged)
    if len(stale) == len(folders):  # nothing to reuse
        # One chunk per file otherwise, which is slow to convert.
        return new_table.combine_chunks(), new_lengths, keys
    fresh, offset = {}, 0
    for rel, length in zip(stale, new_lengths):
        fresh[rel] = (offset, length)
        offset += length
    pieces, lengths = [], []
    for rel in folders:
        if rel in fresh:
            start, length = fresh[rel]
            pieces.append(new_table.slice(start, length))
        else:
            _, start, length = index[rel]
            pieces.append(cache[0].slice(start, length))
        lengths.append(length)
    return pa.concat_tables(pieces).combine_chunks(), lengths, keys


def _finish_histories(folders: list, table, lengths: list) -> pd.DataFrame:
    """One long table of the per-iteration histories, ``job_dir`` as a categorical column."""
    if table is None:
        frame = pd.DataFrame({c: np.zeros(0, dtype="int64" if c == "iteration" else float) for c in HISTORY_COLUMNS})
        frame.insert(0, "job_dir", pd.Categorical([], categories=folders))
        return frame
    frame = table.to_pandas()
    codes = np.repeat(np.arange(len(folders), dtype=np.int32), np.asarray(lengths, dtype=np.int64))
    frame.insert(0, "job_dir", pd.Categorical.from_codes(codes, categories=folders))
    return frame


def _progress_factory(enabled: bool):
    if not enabled:
        return lambda it, **kw: it
    from tqdm.auto import tqdm

    def wrap(it, **kw):
        return tqdm(it, leave=False, mininterval=0.5, disable=len(it) < 200, **kw)

    return wrap


# --------------------------------------------------------------------- main
def collect(sweep_dir, progress: bool = True, consolidated=None) -> Collection:
    """Read every job record under ``sweep_dir`` into one :class:`Collection`.

    The sweep folder is only read.

    Parameters
    ----------
    sweep_dir : str or Path
        A sweep folder: job folders at any depth, each with ``metrics.json``
        (done) or ``failure.json`` (failed); optionally ``sweep.json`` files
        listing the expected jobs.
    progress : bool, default=True
        Show tqdm progress bars (on stderr) for sweeps of 200 jobs or more.
    consolidated : str or Path, optional
        A histories file written by :func:`write_histories` from an earlier
        collection of this sweep (the report's ``histories.parquet``): the
        histories whose files have not changed since are taken from it.

    Returns
    -------
    Collection

    Raises
    ------
    NoRecordsError
        When ``sweep_dir`` is not a folder or holds no job record.
    A record that cannot be read is named in ``Collection.damaged``, and the
    rest is collected.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise NoRecordsError(f"sweep folder {str(sweep_dir)!r} does not exist or is not a folder")
    wrap = _progress_factory(progress)
    metric_dirs, failure_dirs, history_dirs, sweep_dirs = _find_records(sweep_dir)
    if not metric_dirs and not failure_dirs:
        raise NoRecordsError(
            f"no job records (metrics.json or failure.json) under {str(sweep_dir)!r}; "
            "pass the folder of a sweep that has run"
        )

    history_folders = sorted(history_dirs)
    damaged: dict = {}  # job folder -> one line on what is wrong with its record
    hist_damaged: dict = {}
    # The Arrow scan runs in C++ threads without the GIL, beside the JSON parsing here.
    with ThreadPoolExecutor(max_workers=1) as pool:
        scan = pool.submit(_histories, str(sweep_dir), history_folders, hist_damaged, consolidated)
        rows, duplicates = _read_records(sweep_dir, metric_dirs, failure_dirs, wrap, damaged)
        table, lengths, keys = scan.result()
    digests = hist_damaged.pop(_DIGESTS, {})
    for rel, row in ((r["job_dir"], r) for r in rows):
        # A done record lists the files it wrote: one that is gone, or whose
        # content is not what was written, leaves the record incomplete.
        listed = (row.get("_files") or {}).get(HISTORY) if row.get("status") != "failed" else None
        if listed is not None and rel not in history_dirs:
            damaged.setdefault(rel, f"{rel}/{HISTORY}: missing (listed in {METRICS})")
        elif listed is not None and rel in digests and digests[rel] != listed:
            damaged.setdefault(rel, f"{rel}/{HISTORY}: damaged (its SHA-256 differs from the one in {METRICS})")
    for rel, line in hist_damaged.items():
        damaged.setdefault(rel, line)
    histories = _finish_histories(history_folders, table, lengths)
    if damaged:
        # A damaged job is reported as not done; the next run of its sweep does it again.
        rows = [r for r in rows if r["job_dir"] not in damaged]
        histories = histories[~histories["job_dir"].isin(list(damaged))]
        histories["job_dir"] = histories["job_dir"].cat.remove_categories(
            [c for c in damaged if c in histories["job_dir"].cat.categories])
        keep = [i for i, rel in enumerate(history_folders) if rel not in damaged]
        history_folders, keys = [history_folders[i] for i in keep], [keys[i] for i in keep]
    for r in rows:
        r.pop("_files", None)
    coll = _assemble(sweep_dir, rows, duplicates, sweep_dirs, histories, damaged)
    coll.history_sources = dict(zip(history_folders, keys))
    return coll


def _bad_record(rel: str, name: str, exc: BaseException) -> str:
    text = getattr(exc, "reason", None) or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return f"{rel}/{name}: cannot be read ({text})"


def _read_records(sweep_dir: Path, metric_dirs: list, failure_dirs: list, wrap, damaged: dict):
    rows = []
    hashes = {}
    duplicates = 0
    for rel in wrap(metric_dirs, desc="records", unit="job"):
        try:
            rec = _read_json(os.path.join(sweep_dir, rel, METRICS))
            row = _metrics_row(rec)
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
            damaged[rel] = _bad_record(rel, METRICS, exc)
            continue
        row["job_dir"] = rel
        row["_files"] = rec.get("files")
        digest = row.get("config_hash")
        if digest:
            duplicates += digest in hashes
            hashes.setdefault(digest, rel)
        rows.append(row)
    for rel in failure_dirs:
        try:
            rec = _read_json(os.path.join(sweep_dir, rel, FAILURE))
            row = _failure_row(rec)
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
            damaged[rel] = _bad_record(rel, FAILURE, exc)
            continue
        row["job_dir"] = rel
        rows.append(row)
    return rows, duplicates


def _assemble(sweep_dir: Path, rows: list, duplicates: int, sweep_dirs: list, histories: pd.DataFrame,
              damaged: dict):
    # Expected jobs: the union of every sweep.json (job_dir relative to its own folder).
    expected_jobs: dict[str, str] = {}
    sweep_files = []
    for rel in sweep_dirs:
        name = SWEEP if rel == "." else f"{rel}/{SWEEP}"
        try:
            sweep = _read_json(os.path.join(sweep_dir, rel, SWEEP))
            jobs = [(os.path.normpath(os.path.join(rel, job_dir)).replace(os.sep, "/"), " ".join(overrides))
                    for job_dir, overrides in manifest_jobs(sweep)]
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
            damaged[name] = _bad_record(rel, SWEEP, exc).replace("./", "", 1)
            continue
        sweep_files.append(name)
        expected_jobs.update(jobs)
    found = {r["job_dir"] for r in rows}
    for job_rel, overrides in sorted(expected_jobs.items()):
        if job_rel not in found:
            rows.append({"job_dir": job_rel, "status": "missing", "overrides": overrides})
    unexpected = sorted(found - set(expected_jobs)) if expected_jobs else []
    expected = len(expected_jobs) + len(unexpected) if expected_jobs else len(found)

    runs = _build_runs(rows)
    return Collection(
        sweep_dir=sweep_dir,
        runs=runs,
        histories=histories,
        expected=expected,
        sweep_files=sweep_files,
        unexpected=unexpected,
        duplicates=duplicates,
        damaged=sorted(damaged.values()),
    )


_FIRST_COLUMNS = [
    "job_dir", "study", "dataset", "dataset_params", "outliers", "fraction", "magnitude", "outlier_params",
    "loss", "loss_params", "loss_label", "model",
]


def _build_runs(rows: list) -> pd.DataFrame:
    """The runs table: settings first, model parameters flattened, sorted by job folder."""
    rows = sorted(rows, key=lambda r: r["job_dir"])
    model_params = [r.pop("_model_params", None) or {} for r in rows]
    loss_params = [r.pop("_loss_params", None) or {} for r in rows]
    entries = [r.pop("_loss_entry", None) or {} for r in rows]
    runs = pd.DataFrame.from_records(rows)
    for col in ("study", "dataset", "dataset_params", "outliers", "outlier_params", "loss", "loss_params",
                "model", "model_params", "status", "error", "error_type", "overrides"):
        if col not in runs:
            runs[col] = None
    for col in ("fraction", "magnitude", "coef_error"):
        if col not in runs:
            runs[col] = math.nan
    labels, convex, redescending = [], [], []
    for entry, row, lp in zip(entries, rows, loss_params):
        if row.get("status") == "missing":
            labels.append(None)
            convex.append(None)
            redescending.append(None)
            continue
        labels.append(entry.get("label") or _loss_label(row.get("loss"), row.get("model"), lp))
        convex.append(entry.get("convex"))
        redescending.append(entry.get("redescending"))
    runs["loss_label"] = labels
    runs["convex"] = pd.array(convex, dtype="boolean")
    runs["redescending"] = pd.array(redescending, dtype="boolean")
    keys = sorted({k for mp in model_params for k in mp})
    taken = set(runs.columns)
    for key in keys:
        col = key if key not in taken else f"model.{key}"
        runs[col] = _typed_column([mp.get(key, _ABSENT) for mp in model_params])
    for col in ("converged", "diverged"):
        if col in runs:
            runs[col] = pd.array([None if v is None or v != v else bool(v) for v in runs[col]], dtype="boolean")
    for col in ("seed", "n_iter", "n_zero_coef", "n_train", "n_test", "n_features", "n_corrupted", "n_warnings",
                "dataset_seed", "outlier_seed"):
        if col in runs:
            runs[col] = pd.array([None if v is None or v != v else int(v) for v in runs[col]], dtype="Int64")
    ordered = [c for c in _FIRST_COLUMNS if c in runs] + [c for c in runs if c not in _FIRST_COLUMNS]
    return runs[ordered].reset_index(drop=True)
