r"""Tidy tables of a sweep: settings, per-group summaries and paired comparisons.

Intervals
---------
Every interval is a 95% percentile bootstrap interval of a *median*
(:func:`scipy.stats.bootstrap`, ``method="percentile"``, 2000 resamples, a
generator seeded with 0 for every group, so that the numbers do not depend on
the order of the groups).  A non-finite parameter error (a fit whose
coefficients overflowed) counts as :math:`+\infty`: it moves medians and
intervals the way a very large error would; in a paired difference two
infinite errors are a tie (difference 0).

Which jobs
----------
The summary and paired tables compare estimators: they use
:func:`~robustreg.report.collect.estimator_runs` (status ``ok`` or
``diverged``); a ``not_converged`` job is only counted, in the summary's
``not_converged`` column.  The history measures
(:func:`history_metrics`) are computed for every job with a history.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .collect import DONE_STATUSES, NON_SETTING_COLUMNS, done_runs, dynamics_runs, estimator_runs

__all__ = [
    "BASELINE",
    "CONFIDENCE",
    "COVERAGE_STATS",
    "N_RESAMPLES",
    "PAIRED_COLUMNS",
    "PAIRED_STATS",
    "RANDOM_STATE",
    "SUMMARY_STATS",
    "clean_mask",
    "data_columns",
    "label_varying",
    "median_interval",
    "optimizer_columns",
    "paired_table",
    "paired_values",
    "setting_columns",
    "summary_table",
    "varying",
]

CONFIDENCE = 0.95
N_RESAMPLES = 2000
RANDOM_STATE = 0
#: The loss every other loss is compared with in ``paired.csv``.
BASELINE = "l2"
#: Exact least squares: the baseline of the reference solvers.
REFERENCE_BASELINE = "sklearn_ols"
#: Settings that describe the data a job saw (together with the seed).
DATA_SETTINGS = ("study", "dataset", "dataset_params", "outliers", "fraction", "magnitude", "outlier_params")
#: The statistics columns of ``summary.csv``, after its group keys (the last five are left out when no job
#: of the runs table has the measure).
SUMMARY_STATS = ("n", "failed", "diverged", "not_converged", "coef_error_mean", "coef_error_median",
                 "coef_error_ci_low", "coef_error_ci_high", "relative_error_median", "test_rmse_median",
                 "n_iter_median", "max_grad_norm_median", "converged_share")
#: The statistics columns of ``paired.csv`` (the keys of :func:`compare`), after its group keys.
PAIRED_STATS = ("n_pairs", "median", "median_baseline", "median_diff", "ci_low", "ci_high", "win_share",
                "difference")
#: The columns of ``paired.csv`` that every table has: ``loss_label``, ``baseline``, then (between these and
#: the statistics) the group keys of the study, then :data:`PAIRED_STATS`.
PAIRED_COLUMNS = ("loss_label", "baseline", *PAIRED_STATS)
#: The statistics columns of ``coverage.csv``, after its group keys.
COVERAGE_STATS = ("n", "intervals", "coverage", "coverage_slopes")


# ---------------------------------------------------------------- settings
def setting_columns(runs: pd.DataFrame) -> list:
    """Every column that identifies a setting (not an outcome, not a replicate, not bookkeeping)."""
    return [c for c in runs.columns if c not in NON_SETTING_COLUMNS and not c.startswith("_")]


def varying(runs: pd.DataFrame, columns) -> list:
    """The columns among ``columns`` that take more than one value in ``runs`` (missing values count as one value)."""
    out = []
    for c in columns:
        if c in runs and runs[c].astype(object).where(runs[c].notna(), "\0none").nunique() > 1:
            out.append(c)
    return out


def label_varying(runs: pd.DataFrame, columns) -> list:
    """The columns among ``columns`` that take several values for one loss label.

    A setting that only changes with the loss (Tukey's robust start, a
    reference solver's own parameters) is part of what that loss label
    stands for: it neither splits a summary row nor blocks a pairing.
    Missing values (a parameter a model does not have) are ignored.
    """
    if "loss_label" not in runs:
        return varying(runs, columns)
    out = []
    for c in columns:
        if c in runs and c != "loss_label":
            if runs.groupby("loss_label", dropna=False)[c].nunique(dropna=True).gt(1).any():
                out.append(c)
    return out


def data_columns(runs: pd.DataFrame) -> list:
    """The settings that describe the data (dataset, contamination) and vary for some loss."""
    return label_varying(runs, [c for c in DATA_SETTINGS if c in runs])


def optimizer_columns(runs: pd.DataFrame) -> list:
    """The settings that are neither the data nor the loss (the model and its parameters) and vary for some loss."""
    skip = set(DATA_SETTINGS) | {"loss_label"}
    return label_varying(runs, [c for c in setting_columns(runs) if c not in skip])


def clean_mask(runs: pd.DataFrame) -> pd.Series:
    """Jobs on uncontaminated data: outlier kind ``"none"`` or fraction 0."""
    kind = runs["outliers"] if "outliers" in runs else pd.Series("none", index=runs.index)
    frac = runs["fraction"] if "fraction" in runs else pd.Series(0.0, index=runs.index)
    return (kind == "none") | (frac == 0)


def _errors(values) -> np.ndarray:
    """Parameter errors as floats, a non-finite error (NaN, None) counted as +inf."""
    x = np.array(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    x[~np.isfinite(x)] = np.inf
    return x


def group_frames(frame: pd.DataFrame, keys: list):
    """``(key tuple, rows)`` per group of ``keys``: missing keys form their own group, in sorted order; no keys: one group."""
    if not keys:
        yield (), frame
        return
    for key, part in frame.groupby(keys, dropna=False, sort=True, observed=True):
        yield (key if isinstance(key, tuple) else (key,)), part


# ---------------------------------------------------------------- intervals
def median_interval(values, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                    random_state: int = RANDOM_STATE) -> tuple:
    """Percentile bootstrap interval of the median of ``values``.

    Returns ``(low, high)``; ``(nan, nan)`` for fewer than 2 values (no
    interval can be formed from one seed).
    """
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return math.nan, math.nan
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    with warnings.catch_warnings(), np.errstate(invalid="ignore", over="ignore"):
        # Infinite errors make scipy's standard-error estimate NaN; the interval itself is fine.
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.bootstrap(
            (x,), np.median, confidence_level=confidence, n_resamples=n_resamples, method="percentile",
            vectorized=True, rng=np.random.default_rng(random_state),
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


# ---------------------------------------------------------------- summary
def summary_keys(runs: pd.DataFrame) -> list:
    """Group keys of the summary: the loss label, outlier kind, fraction and every other varying setting."""
    settings = setting_columns(runs)
    keys = ["loss_label", "outliers", "fraction"]
    # Settings that vary among the compared jobs; a failed or not-converged job
    # whose record lacks some of them forms its own row rather than widening the table.
    done = estimator_runs(runs)
    rest = [c for c in label_varying(done if len(done) else runs, settings) if c not in keys]
    return [k for k in keys if k in runs] + rest


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per loss x outlier kind x fraction (x every other varying setting).

    Columns: the keys, ``n`` (the compared jobs: :func:`estimator_runs`,
    status ``ok`` or ``diverged``), ``failed``, ``diverged`` (among the
    ``n``), ``not_converged`` (counted only: left out of every statistic but
    ``converged_share``), ``coef_error_mean``, ``coef_error_median``,
    ``coef_error_ci_low`` / ``coef_error_ci_high`` (95% percentile bootstrap
    interval of the median across seeds), ``relative_error_median``,
    ``test_rmse_median``, ``n_iter_median``, ``max_grad_norm_median`` (all
    over the ``n`` jobs) and ``converged_share`` (over every done job of the
    group, :func:`done_runs`: the share with an optimality certificate).
    """
    keyed = runs[runs["status"].isin((*DONE_STATUSES, "failed"))] if "status" in runs else runs
    keys = summary_keys(keyed)
    out = []
    for key, part in group_frames(keyed, keys):
        done = estimator_runs(part)
        err = _errors(done["coef_error"]) if len(done) else np.zeros(0)
        low, high = median_interval(err)
        row = dict(zip(keys, key))
        row.update(
            n=len(done),
            failed=int((part["status"] == "failed").sum()) if "status" in part else 0,
            diverged=int(done["diverged"].fillna(False).astype(bool).sum()) if "diverged" in done else 0,
            not_converged=int((part["status"] == "not_converged").sum()) if "status" in part else 0,
            coef_error_mean=float(np.mean(err)) if err.size else math.nan,
            coef_error_median=float(np.median(err)) if err.size else math.nan,
            coef_error_ci_low=low,
            coef_error_ci_high=high,
        )
        for col, name in (("relative_error", "relative_error_median"), ("test_rmse", "test_rmse_median"),
                          ("n_iter", "n_iter_median"), ("max_grad_norm", "max_grad_norm_median")):
            if col in done:
                vals = pd.to_numeric(done[col], errors="coerce").dropna().to_numpy(dtype=float)
                row[name] = float(np.median(vals)) if vals.size else math.nan
        finished = done_runs(part)
        if "converged" in finished:
            conv = finished["converged"].dropna()
            row["converged_share"] = float(conv.astype(bool).mean()) if len(conv) else math.nan
        out.append(row)
    if not out:  # no job to summarize: the header all the same
        return pd.DataFrame(columns=[*keys, *SUMMARY_STATS])
    table = pd.DataFrame(out)
    return table.reset_index(drop=True)


# ---------------------------------------------------------------- pairing
def _data_and_optimizer_keys(runs: pd.DataFrame) -> tuple:
    """(data keys, optimizer keys): the varying settings a pair must share, seed apart."""
    return data_columns(runs), optimizer_columns(runs)


def paired_values(runs: pd.DataFrame, label: str, baseline: str = BASELINE, value: str = "coef_error",
                  keys: list | None = None, subset=estimator_runs) -> pd.DataFrame:
    """Pair the jobs of loss ``label`` with the jobs of ``baseline`` on the same data and seed.

    Gradient-descent jobs are paired with baseline jobs that share the data,
    the seed and every setting that varies for some loss (for example the
    step size); settings tied to one loss (a robust start used only by
    Tukey's loss) do not block a pair.  ``keys``, when given, replaces
    those shared settings.  ``subset`` chooses the jobs that may be paired:
    :func:`estimator_runs` (the default: a comparison of estimates leaves the
    ``not_converged`` jobs out) or :func:`dynamics_runs` (a comparison of what
    plain gradient descent did, ``not_converged`` included).
    A reference solver is paired with the exact least-squares solver
    (``sklearn_ols``) on the same data and seed when the study has it, else
    with the baseline jobs on the same data and seed when those use a single
    optimizer setting.

    Returns
    -------
    pandas.DataFrame
        The shared keys, ``seed``, ``value`` (of ``label``) and
        ``value_baseline``; one row per pair.
    """
    done = subset(runs)
    data_keys, opt_keys = _data_and_optimizer_keys(done) if keys is None else (keys, [])
    data_keys = [k for k in data_keys if k != "loss_label"]
    a = done[done["loss_label"] == label]
    if a.empty:
        return pd.DataFrame(columns=[*data_keys, *opt_keys, "seed", "value", "value_baseline"])
    is_gd = a["model"].eq("gd") if "model" in a else pd.Series(True, index=a.index)
    parts = []
    gd_part = a[is_gd]
    b = done[done["loss_label"] == baseline]
    on = [*data_keys, *opt_keys, "seed"]
    if not gd_part.empty and not b.empty:
        parts.append(_merge(gd_part, b, on, value))
    ref_part = a[~is_gd]
    if not ref_part.empty:
        ols = done[done["loss_label"] == REFERENCE_BASELINE] if label != REFERENCE_BASELINE else done.iloc[0:0]
        if not ols.empty:
            parts.append(_merge(ref_part, ols, [*data_keys, "seed"], value))
        elif not b.empty:
            # Without an exact least-squares solver, the L2 jobs serve when they are one per data and seed.
            if b.groupby([*data_keys, "seed"], dropna=False).size().max() == 1:
                parts.append(_merge(ref_part, b, [*data_keys, "seed"], value))
    if not parts:
        return pd.DataFrame(columns=[*data_keys, *opt_keys, "seed", "value", "value_baseline"])
    out = pd.concat(parts, ignore_index=True)
    return out


def _merge(a: pd.DataFrame, b: pd.DataFrame, on: list, value: str) -> pd.DataFrame:
    left = a[[*on, value]].rename(columns={value: "value"}).drop_duplicates(on, keep="first")
    right = b[[*on, value]].rename(columns={value: "value_baseline"}).drop_duplicates(on, keep="first")
    # pandas matches missing keys with each other (a parameter a model does not have).
    merged = left.merge(right, on=on, how="inner", sort=True)
    return merged


def paired_differences(pairs: pd.DataFrame) -> np.ndarray:
    """``value - value_baseline`` with two infinite errors a tie (0)."""
    a = _errors(pairs["value"])
    b = _errors(pairs["value_baseline"])
    with np.errstate(invalid="ignore"):
        d = a - b
    d[np.isinf(a) & np.isinf(b)] = 0.0
    return d


def compare(pairs: pd.DataFrame) -> dict:
    """Median paired difference, its 95% bootstrap interval and the share of pairs the loss wins."""
    d = paired_differences(pairs)
    low, high = median_interval(d)
    n = d.size
    if n and low == low and high < 0:
        sign = "lower"
    elif n and low == low and low > 0:
        sign = "higher"
    else:
        sign = "not significant"
    return {
        "n_pairs": int(n),
        "median": float(np.median(_errors(pairs["value"]))) if n else math.nan,
        "median_baseline": float(np.median(_errors(pairs["value_baseline"]))) if n else math.nan,
        "median_diff": float(np.median(d)) if n else math.nan,
        "ci_low": low,
        "ci_high": high,
        "win_share": float(np.mean(d < 0)) if n else math.nan,
        "difference": sign,
    }


def paired_table(runs: pd.DataFrame, baseline: str = BASELINE, value: str = "coef_error") -> pd.DataFrame:
    """Each loss against the baseline (L2) on the same seed and data, per group.

    One row per loss x every varying setting except the loss (the groups of
    the summary): ``n_pairs``, the medians of both, the median paired
    difference (loss minus baseline; negative: the loss is closer to the
    reference) with its 95% bootstrap interval, ``win_share`` (share of
    seeds where the loss has the smaller error) and ``difference``
    (``"lower"``/``"higher"`` when the interval excludes 0).

    Only the jobs of :func:`estimator_runs` are paired (``not_converged``
    jobs are left out).
    """
    done = estimator_runs(runs)
    if done.empty or "loss_label" not in done:
        return pd.DataFrame(columns=list(PAIRED_COLUMNS))
    labels = sorted(l for l in done["loss_label"].dropna().unique() if l != baseline)
    data_keys, opt_keys = _data_and_optimizer_keys(done)
    group_keys = [*data_keys, *opt_keys]
    rows = []
    for label in labels:
        pairs = paired_values(done, label, baseline, value)
        if pairs.empty:
            continue
        gkeys = [k for k in group_keys if k in pairs]
        for key, part in group_frames(pairs, gkeys):
            row = {"loss_label": label, "baseline": _baseline_of(done, label, baseline)}
            row.update(dict(zip(gkeys, key)))
            row.update(compare(part))
            rows.append(row)
    table = pd.DataFrame(rows)
    # The keys a pair row has (all of them when there is none: the header of an empty table).
    present = [k for k in group_keys if k in table] if len(table) else group_keys
    first = ["loss_label", "baseline", *[k for k in ("outliers", "fraction") if k in present]]
    columns = first + [k for k in present if k not in first] + list(PAIRED_STATS)
    if table.empty:
        return pd.DataFrame(columns=columns)
    table = table[columns]
    return table.sort_values([c for c in columns if c not in PAIRED_STATS],
                             kind="mergesort", na_position="last").reset_index(drop=True)


def _baseline_of(done: pd.DataFrame, label: str, baseline: str) -> str:
    part = done[done["loss_label"] == label]
    if "model" in part and not part["model"].eq("gd").all():
        if (done["loss_label"] == REFERENCE_BASELINE).any() and label != REFERENCE_BASELINE:
            return REFERENCE_BASELINE
    return baseline


# ---------------------------------------------------------------- histories
#: A job has settled once its objective stays within this share of its
#: initial gap above the lowest objective of its history.
SETTLE_TOL = 1e-4
#: Histories shorter than this are too short to judge oscillation or settling.
MIN_HISTORY = 10


def history_metrics(histories: pd.DataFrame) -> pd.DataFrame:
    r"""Per-job convergence measures from the long history table.

    With :math:`f_t` the objective at iteration :math:`t` of a history of
    :math:`n` rows, :math:`f_{\min}` its lowest value and
    :math:`h = \lfloor n/2 \rfloor` the start of its second half:

    * ``tail_increase_share``: share of :math:`t \in [h, n)` with
      :math:`f_t > f_{t-1}` (a descent method has 0);
    * ``tail_grad_ratio``: median gradient norm over :math:`[h, n)` divided
      by the gradient norm at the first iteration (a smooth loss that
      converges drives it towards 0; an L1 subgradient does not vanish);
    * ``settle_iter``: the first iteration after which the relative gap
      :math:`(f_t - f_{\min}) / (f_0 - f_{\min})` stays at or below
      ``SETTLE_TOL`` = 1e-4; :math:`+\infty` when the last iteration is still
      above it (the objective never settled); a non-finite objective counts
      as above.
    * ``history_length``: :math:`n`.

    Histories shorter than ``MIN_HISTORY`` = 10 rows get NaN measures
    (``history_length`` is still given).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``job_dir``.
    """
    cols = ["tail_increase_share", "tail_grad_ratio", "settle_iter", "history_length"]
    if histories.empty:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="job_dir"))
    h = histories.sort_values(["job_dir", "iteration"], kind="mergesort")
    codes = h["job_dir"].cat.codes.to_numpy() if hasattr(h["job_dir"], "cat") else pd.factorize(h["job_dir"])[0]
    names = h["job_dir"].cat.categories if hasattr(h["job_dir"], "cat") else pd.Index(pd.unique(h["job_dir"]))
    f = h["objective"].to_numpy(dtype=float)
    g = h["grad_norm"].to_numpy(dtype=float)
    it = h["iteration"].to_numpy()
    n_jobs = len(names)
    counts = np.bincount(codes, minlength=n_jobs)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(f)) - starts[codes]
    half = counts[codes] // 2
    in_tail = pos >= half
    rising = np.zeros(len(f), dtype=bool)
    rising[1:] = f[1:] > f[:-1]
    rising &= pos > 0
    tail_rows = in_tail & (pos > 0)
    inc = np.bincount(codes, weights=(rising & tail_rows).astype(float), minlength=n_jobs)
    den = np.bincount(codes, weights=tail_rows.astype(float), minlength=n_jobs)
    with np.errstate(invalid="ignore", divide="ignore"):
        increase_share = inc / den
    g0 = np.full(n_jobs, np.nan)
    g0[codes[pos == 0]] = g[pos == 0]
    tail_g = pd.Series(g[in_tail]).groupby(codes[in_tail]).median()
    grad_ratio = np.full(n_jobs, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        grad_ratio[tail_g.index.to_numpy()] = tail_g.to_numpy() / g0[tail_g.index.to_numpy()]
    finite = np.where(np.isfinite(f), f, np.nan)
    fmin = pd.Series(finite).groupby(codes).min().reindex(range(n_jobs)).to_numpy()
    f0 = np.full(n_jobs, np.nan)
    f0[codes[pos == 0]] = f[pos == 0]
    span = f0 - fmin
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = (f - fmin[codes]) / np.where(span[codes] > 0, span[codes], np.inf)
    above = ~(gap <= SETTLE_TOL)  # NaN (non-finite objective) counts as above
    last_above = np.full(n_jobs, -1, dtype=np.int64)
    idx = np.flatnonzero(above)
    np.maximum.at(last_above, codes[idx], pos[idx])
    nxt = np.minimum(starts + last_above + 1, len(f) - 1)
    settle = np.where(last_above < 0, 0.0, np.where(last_above == counts - 1, np.inf, it[nxt].astype(float)))
    short = counts < MIN_HISTORY
    out = pd.DataFrame(
        {
            "tail_increase_share": np.where(short, np.nan, increase_share),
            "tail_grad_ratio": np.where(short, np.nan, grad_ratio),
            "settle_iter": np.where(short, np.nan, settle),
            "history_length": counts,
        },
        index=pd.Index(np.asarray(names, dtype=object), name="job_dir"),
    )
    return out


def add_history_metrics(runs: pd.DataFrame, histories: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with the columns of :func:`history_metrics` joined on ``job_dir`` (NaN without a history)."""
    metrics = history_metrics(histories)
    out = runs.drop(columns=[c for c in metrics.columns if c in runs])
    return out.join(metrics, on="job_dir")


# ---------------------------------------------------------------- coverage
def coverage_table(runs: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Interval coverage where the truth is known: per summary group, the share of intervals holding it.

    Over the compared jobs (:func:`estimator_runs`) whose record holds standard
    errors (``bse``) and the data-generating coefficients (``coef_true``:
    synthetic data): each coefficient's normal interval ``estimate +- z *
    std_error`` at ``confidence``.  Columns: the keys, ``n`` (jobs),
    ``intervals`` (coefficients), ``coverage`` (all coefficients, intercept
    included) and ``coverage_slopes``.  Empty when no job qualifies (with the columns all the same: the
    summary's keys and :data:`COVERAGE_STATS`).
    """
    if not {"bse", "coef_true", "coef", "intercept"} <= set(runs.columns):
        return pd.DataFrame(columns=[*summary_keys(runs), *COVERAGE_STATS])
    done = estimator_runs(runs)
    usable = [isinstance(b, list) and isinstance(t, list) and isinstance(c, list)
              for b, t, c in zip(done["bse"], done["coef_true"], done["coef"])]
    done = done[usable]
    if not len(done):
        return pd.DataFrame(columns=[*summary_keys(runs), *COVERAGE_STATS])
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    keys = summary_keys(done)
    out = []
    for key, part in group_frames(done, keys):
        held, held_slopes = [], []
        for coef, intercept, bse, true in zip(part["coef"], part["intercept"], part["bse"], part["coef_true"]):
            est = np.array([intercept, *coef], dtype=float)
            se = np.array([np.nan if b is None else b for b in bse], dtype=float)
            truth = np.asarray(true, dtype=float)
            ok = np.isfinite(se) & np.isfinite(est)
            inside = np.abs(est - truth) <= z * se
            held.extend(inside[ok])
            held_slopes.extend(inside[1:][ok[1:]])
        row = dict(zip(keys, key))
        row.update(n=len(part), intervals=len(held),
                   coverage=float(np.mean(held)) if held else math.nan,
                   coverage_slopes=float(np.mean(held_slopes)) if held_slopes else math.nan)
        out.append(row)
    return pd.DataFrame(out).reset_index(drop=True)
