"""The classic views of robust statistics, from a study's runs table: sensitivity, breakdown, efficiency.

* :func:`sensitivity_table`: the median parameter error against the size
  of the outliers at one contamination fraction (the empirical sensitivity
  curve), per estimator and outlier kind;
* :func:`breakdown_table`: each estimator's empirical breakdown fraction,
  the first contamination fraction at which its median error exceeds
  :data:`BREAKDOWN_MULTIPLE` times its clean median error;
* :func:`efficiency_table`: on clean data, each estimator's relative
  efficiency against least squares (the ratio of mean squared slope errors,
  paired by seed) with a bootstrap interval over the seeds, beside the
  textbook asymptotic value where there is one (:data:`TEXTBOOK`).

Each returns ``None`` when the study has no jobs of that design, and is
drawn by :func:`draw_classic` (``sensitivity.png``, ``breakdown.png``,
``efficiency.png``).  Only estimator jobs (status ``ok`` or ``diverged``)
are used: a not-converged fit is not its loss's estimate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .codebook import COEF_UNIT, register
from .collect import estimator_runs
from .markdown import markdown_table
from .style import label_order
from .tables import _errors, clean_mask, median_interval

__all__ = ["BREAKDOWN_MULTIPLE", "CLASSIC_FILES", "classic_markdown", "TEXTBOOK", "breakdown_table", "classic_tables", "draw_classic",
           "efficiency_table", "sensitivity_table", "weights_table"]

#: An estimator has broken down at a fraction when its median error there exceeds this multiple of its
#: median error on clean data (fraction 0) of the same study and outlier kind.
BREAKDOWN_MULTIPLE = 3.0
#: Least number of seeds per estimator and noise for an efficiency.
MIN_SEEDS = 20
N_BOOTSTRAP = 2000
#: Textbook asymptotic efficiencies relative to least squares, keyed by (loss label, noise):
#: the value and its source.  Huber's with a known scale; Smooth L1 (beta = 1) at the MAD scale is
#: Huber's loss with delta = 1.
TEXTBOOK = {
    ("l1", "gaussian"): (2.0 / math.pi, "2/pi: the median's efficiency at the normal"),
    ("l1", "laplace"): (2.0, "2: the median against the mean at the Laplace"),
    ("huber (delta=1.345)", "gaussian"): (0.95, "Huber (1964), k = 1.345"),
    ("huber", "gaussian"): (0.903, "Huber (1964), k = 1"),
    ("smooth_l1", "gaussian"): (0.903, "Huber (1964), k = 1 (Smooth L1, beta = 1, is Huber's loss at delta = 1)"),
    ("tukey", "gaussian"): (0.95, "MM with Tukey's biweight, c = 4.685 (Yohai 1987)"),
}


#: Panel titles of the classic figures, more explicit than the study figures' kind names.
_PANEL_TITLES = {"vertical": "vertical outliers (response)", "leverage": "bad leverage points (x and y)"}


def _noise(runs: pd.DataFrame) -> pd.Series:
    """The noise distribution of each synthetic job (from its data-set arguments); None elsewhere."""
    args = runs["dataset_args"] if "dataset_args" in runs else pd.Series([None] * len(runs), index=runs.index)
    return pd.Series([a.get("noise") if isinstance(a, dict) else None for a in args], index=runs.index)


def _median_row(err: np.ndarray) -> dict:
    lo, hi = median_interval(err)
    return {"n": int(err.size), "coef_error_median": float(np.median(err)), "ci_low": lo, "ci_high": hi}


# ------------------------------------------------------------------- tables
def sensitivity_table(runs: pd.DataFrame) -> pd.DataFrame | None:
    """Median coef_error per estimator x outlier kind x magnitude, at the study's one contamination fraction.

    ``None`` unless the contaminated estimator jobs share one fraction and take at least three magnitudes.
    """
    est = estimator_runs(runs)
    cont = est[~clean_mask(est)]
    if cont.empty or cont["fraction"].nunique() != 1 or cont["magnitude"].nunique() < 3:
        return None
    rows = []
    for (label, kind, mag), part in cont.groupby(["loss_label", "outliers", "magnitude"], sort=True):
        rows.append({"loss_label": label, "outliers": kind, "fraction": float(part["fraction"].iloc[0]),
                     "magnitude": float(mag), **_median_row(_errors(part["coef_error"]))})
    return pd.DataFrame(rows)


def _fraction_medians(est: pd.DataFrame) -> pd.DataFrame:
    """Median coef_error per estimator x outlier kind x fraction (fraction 0 counted under every kind)."""
    rows = []
    for kind in sorted(est.loc[~clean_mask(est), "outliers"].dropna().unique()):
        part = est[(est["outliers"] == kind) | clean_mask(est)]
        frac = part["fraction"].where(~clean_mask(part), 0.0)
        for (label, f), g in part.groupby([part["loss_label"], frac], sort=True):
            rows.append({"loss_label": label, "outliers": kind, "fraction": float(f),
                         **_median_row(_errors(g["coef_error"]))})
    return pd.DataFrame(rows)


def breakdown_table(runs: pd.DataFrame, factor: float = BREAKDOWN_MULTIPLE) -> pd.DataFrame | None:
    """Each estimator's empirical breakdown fraction under each outlier kind.

    ``breakdown_fraction`` is the first tested fraction whose median error
    exceeds ``factor`` times the median error at fraction 0; empty (NaN)
    when none up to ``largest_fraction`` does (it holds over the whole
    range tested).  ``None`` unless the study has clean jobs and at least
    five contaminated fractions reaching 0.4 or more.
    """
    est = estimator_runs(runs)
    cont = est[~clean_mask(est)]
    if cont.empty or cont["fraction"].nunique() < 5 or cont["fraction"].max() < 0.4 or not clean_mask(est).any():
        return None
    med = _fraction_medians(est)
    rows = []
    for (label, kind), part in med.groupby(["loss_label", "outliers"], sort=True):
        part = part.sort_values("fraction")
        clean = part[part["fraction"] == 0]
        if clean.empty:
            continue
        base = float(clean["coef_error_median"].iloc[0])
        over = part[(part["fraction"] > 0) & (part["coef_error_median"] > factor * base)]
        rows.append({"loss_label": label, "outliers": kind, "clean_error_median": base, "factor": factor,
                     "breakdown_fraction": float(over["fraction"].iloc[0]) if len(over) else math.nan,
                     "largest_fraction": float(part["fraction"].max()),
                     "error_median_at_largest": float(part["coef_error_median"].iloc[-1])})
    return pd.DataFrame(rows)


def _bootstrap_ratio(base: np.ndarray, est: np.ndarray, rng) -> tuple:
    """Percentile bootstrap interval (95%) of mean(base^2) / mean(est^2), seeds resampled in pairs."""
    idx = rng.integers(0, base.size, size=(N_BOOTSTRAP, base.size))
    b2, e2 = np.square(base)[idx].mean(axis=1), np.square(est)[idx].mean(axis=1)
    ratios = b2 / e2
    return float(np.quantile(ratios, 0.025)), float(np.quantile(ratios, 0.975))


def efficiency_table(runs: pd.DataFrame, baseline: str = "l2") -> pd.DataFrame | None:
    """Relative efficiency against least squares on clean data, per estimator x noise distribution.

    ``efficiency = mean(coef_error_L2^2) / mean(coef_error^2)`` over the seeds
    where both fits exist (paired by seed), with a 95% percentile bootstrap
    interval over those seeds (fixed bootstrap seed) and the textbook
    asymptotic value of :data:`TEXTBOOK`.  ``None`` unless the study's jobs
    are all clean and have least-squares fits with at least ``MIN_SEEDS``
    seeds per noise distribution.
    """
    est = estimator_runs(runs)
    if est.empty or not clean_mask(est).all() or "seed" not in est:
        return None
    est = est.assign(_noise=_noise(est).fillna("data"))
    rows = []
    for noise, part in est.groupby("_noise", sort=True):
        base = part[part["loss_label"] == baseline].drop_duplicates("seed").set_index("seed")["coef_error"]
        if base.size < MIN_SEEDS:
            continue
        rng = np.random.default_rng(0)
        for label in label_order(part["loss_label"].dropna().unique()):
            mine = part[part["loss_label"] == label].drop_duplicates("seed").set_index("seed")["coef_error"]
            seeds = base.index.intersection(mine.index)
            if seeds.size < MIN_SEEDS:
                continue
            b, e = _errors(base[seeds]), _errors(mine[seeds])
            ratio = float(np.mean(np.square(b)) / np.mean(np.square(e)))
            lo, hi = _bootstrap_ratio(b, e, rng) if np.all(np.isfinite(e)) else (math.nan, math.nan)
            book = TEXTBOOK.get((label, noise))
            rows.append({"loss_label": label, "noise": noise, "n_seeds": int(seeds.size), "efficiency": ratio,
                         "ci_low": lo, "ci_high": hi, "textbook": book[0] if book else math.nan,
                         "textbook_source": book[1] if book else ""})
    return pd.DataFrame(rows) if rows else None


def _weighted_fits(runs: pd.DataFrame) -> pd.DataFrame:
    """Clean estimator jobs whose record holds the fit's weights (GD fits of data sets with documented outliers).

    L1's weights, 1 / |r|, have no scale and are infinite at the rows the fit
    passes through: they are left out.
    """
    est = estimator_runs(runs)
    if "weights" not in est or est.empty:
        return est.iloc[0:0]
    has = est["weights"].map(lambda w: isinstance(w, list) and len(w) > 0)
    est = est[has & clean_mask(est) & (est["loss_label"] != "l1")]
    return est


def weights_table(runs: pd.DataFrame) -> pd.DataFrame | None:
    """Per data set and estimator, the fit's weights on its documented outliers and on the other rows.

    ``weight`` is psi(u)/u at the fit's scaled residual u (1 for least
    squares; 0 for a row a redescending loss rejects).  ``None`` when no
    job recorded weights.
    """
    fits = _weighted_fits(runs)
    rows = []
    for (name, label), part in fits.groupby(["dataset", "loss_label"], sort=True):
        rec = part.iloc[0]
        w = np.asarray([np.nan if v is None else v for v in rec["weights"]], dtype=float)
        bad = np.zeros(w.size, dtype=bool)
        bad[[int(i) for i in rec["known_outliers"] if int(i) < w.size]] = True
        rows.append({"dataset": name, "loss_label": label, "n_rows": int(w.size), "n_outliers": int(bad.sum()),
                     "outlier_weight_mean": float(np.mean(w[bad])) if bad.any() else math.nan,
                     "outlier_weight_max": float(np.max(w[bad])) if bad.any() else math.nan,
                     "other_weight_mean": float(np.mean(w[~bad])) if (~bad).any() else math.nan,
                     "other_weight_min": float(np.min(w[~bad])) if (~bad).any() else math.nan,
                     "n_zero_weight": int(np.sum(w == 0.0))})
    return pd.DataFrame(rows) if rows else None


#: The classic tables: file name -> the function that builds it.
_TABLES = {"sensitivity.csv": sensitivity_table, "breakdown.csv": breakdown_table,
           "efficiency.csv": efficiency_table, "weights.csv": weights_table}
CLASSIC_FILES = tuple(_TABLES)


_LABEL = ("the estimator: a loss label (its name, with its tuning constant when not the default) or a "
          "scikit-learn reference solver", "")
_KIND = ("the outlier kind: vertical (response only) or leverage (bad leverage points, x and y)", "")
_MEDIAN = {"n": ("jobs in the group (seeds)", "jobs"),
           "coef_error_median": ("median over the seeds of the parameter error ||w - w*|| (slopes)", COEF_UNIT),
           "ci_low": ("lower end of the 95% bootstrap interval of that median", COEF_UNIT),
           "ci_high": ("upper end of the 95% bootstrap interval of that median", COEF_UNIT)}
register("sensitivity.csv", {"loss_label": _LABEL, "outliers": _KIND,
                             "fraction": ("the contamination fraction (share of training rows)", ""),
                             "magnitude": ("the outliers' magnitude", "noise scales"), **_MEDIAN})
register("breakdown.csv", {
    "loss_label": _LABEL, "outliers": _KIND,
    "clean_error_median": ("median parameter error at fraction 0", COEF_UNIT),
    "factor": ("the multiple of the clean median error that counts as broken down", ""),
    "breakdown_fraction": ("the first tested fraction whose median error exceeds factor x the clean one; "
                           "empty: none up to largest_fraction", ""),
    "largest_fraction": ("the largest contamination fraction tested", ""),
    "error_median_at_largest": ("median parameter error at the largest fraction", COEF_UNIT)})
register("efficiency.csv", {
    "loss_label": _LABEL, "noise": ("the noise distribution of the clean synthetic data", ""),
    "n_seeds": ("seeds with both this estimator's and least squares' fit", "seeds"),
    "efficiency": ("mean squared slope error of least squares / that of this estimator, paired by seed", ""),
    "ci_low": ("lower end of the 95% percentile bootstrap interval (seeds resampled)", ""),
    "ci_high": ("upper end of that interval", ""),
    "textbook": ("the textbook asymptotic efficiency relative to least squares; empty: none given", ""),
    "textbook_source": ("where the textbook value comes from", "")})
register("weights.csv", {
    "dataset": ("the classic data set", ""), "loss_label": _LABEL,
    "n_rows": ("training rows", "rows"), "n_outliers": ("documented outliers among them", "rows"),
    "outlier_weight_mean": ("mean final weight psi(u)/u of the documented outliers", ""),
    "outlier_weight_max": ("largest final weight of a documented outlier", ""),
    "other_weight_mean": ("mean final weight of the other rows", ""),
    "other_weight_min": ("smallest final weight of the other rows", ""),
    "n_zero_weight": ("rows at weight exactly 0 (rejected by a redescending loss)", "rows")})


def classic_tables(runs: pd.DataFrame) -> dict:
    """The classic tables this study has data for: file name -> DataFrame."""
    out = {}
    for name, fn in _TABLES.items():
        table = fn(runs)
        if table is not None and len(table):
            out[name] = table
    return out


# ------------------------------------------------------------------ figures
def _line(ax, x, y, styles, label, **extra):
    st = styles.get(label, {})
    ax.plot(x, y, label=label, color=st.get("color"), marker=st.get("marker"), linestyle=st.get("linestyle", "-"),
            markersize=5, linewidth=1.5, **extra)


def _kind_panels(kinds):
    """One log-scale error panel per outlier kind, side by side, sharing the y axis: ``(figure, axes)``."""
    fig = Figure(figsize=(4.4 * len(kinds) + 1.8, 4.4), layout="constrained")
    axes = fig.subplots(1, len(kinds), squeeze=False, sharey=True)[0]
    for ax, kind in zip(axes, kinds):
        ax.set_yscale("log")
        ax.set_title(_PANEL_TITLES.get(kind, kind))
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("median parameter error ||w - w*||")
    return fig, axes


def _legend(axes) -> None:
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)


def _sensitivity_figure(table: pd.DataFrame, styles: dict) -> Figure:
    kinds = sorted(table["outliers"].unique())
    fig, axes = _kind_panels(kinds)
    for ax, kind in zip(axes, kinds):
        part = table[table["outliers"] == kind]
        for label in label_order(part["loss_label"].unique()):
            rows = part[part["loss_label"] == label].sort_values("magnitude")
            _line(ax, rows["magnitude"], rows["coef_error_median"], styles, label)
        ax.set_xscale("log")
        ax.set_xlabel("outlier magnitude (noise scales)")
    _legend(axes)
    frac = table["fraction"].iloc[0]
    fig.suptitle(f"Sensitivity curve: error against outlier size at fraction {frac:g}", fontsize=11)
    return fig


def _breakdown_figure(est: pd.DataFrame, table: pd.DataFrame, styles: dict) -> Figure:
    med = _fraction_medians(est)
    kinds = sorted(med["outliers"].unique())
    fig, axes = _kind_panels(kinds)
    for ax, kind in zip(axes, kinds):
        part = med[med["outliers"] == kind]
        for label in label_order(part["loss_label"].unique()):
            rows = part[part["loss_label"] == label].sort_values("fraction")
            _line(ax, rows["fraction"], rows["coef_error_median"], styles, label)
            bd = table[(table["loss_label"] == label) & (table["outliers"] == kind)]["breakdown_fraction"]
            if len(bd) and np.isfinite(bd.iloc[0]):
                at = rows[rows["fraction"] == bd.iloc[0]]["coef_error_median"]
                ax.plot([bd.iloc[0]], [at.iloc[0]], marker="o", markersize=11, markerfacecolor="none",
                        markeredgecolor=styles.get(label, {}).get("color", "black"), linestyle="none")
        ax.set_xlabel("contamination fraction (share of training rows)")
    _legend(axes)
    fig.suptitle(f"Breakdown: a ring marks the first fraction where the median error exceeds "
                 f"{BREAKDOWN_MULTIPLE:g}x its clean error", fontsize=10)
    return fig


def _efficiency_figure(table: pd.DataFrame, styles: dict) -> Figure:
    noises = list(dict.fromkeys(table["noise"]))
    labels = label_order(table["loss_label"].unique())
    fig = Figure(figsize=(3.6 * len(noises) + 1.0, 0.42 * len(labels) + 1.8), layout="constrained")
    axes = fig.subplots(1, len(noises), squeeze=False, sharey=True)[0]
    for ax, noise in zip(axes, noises):
        part = table[table["noise"] == noise].set_index("loss_label")
        for y, label in enumerate(labels):
            if label not in part.index:
                continue
            row = part.loc[label]
            color = styles.get(label, {}).get("color", "black")
            ax.errorbar([row["efficiency"]], [y], xerr=[[row["efficiency"] - row["ci_low"]],
                                                        [row["ci_high"] - row["efficiency"]]],
                        fmt=styles.get(label, {}).get("marker", "o"), color=color, capsize=3)
            if np.isfinite(row["textbook"]):
                ax.plot([row["textbook"]], [y], marker="|", markersize=16, color="black", linestyle="none")
        ax.axvline(1.0, color="#777777", linewidth=0.8, linestyle=":")
        ax.set_title(f"{noise} noise")
        ax.set_xlabel("efficiency relative to least squares")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(labels)), labels)
    axes[0].invert_yaxis()
    fig.suptitle("Efficiency on clean data (95% bootstrap intervals over seeds; | marks the textbook value)",
                 fontsize=10)
    return fig


def _weights_figure(fits: pd.DataFrame, styles: dict) -> Figure:
    sets = sorted(fits["dataset"].unique())
    labels = label_order(fits["loss_label"].unique())
    fig = Figure(figsize=(7.5, 2.3 * len(sets) + 0.8), layout="constrained")
    axes = fig.subplots(len(sets), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, sets):
        part = fits[fits["dataset"] == name]
        outliers = [int(i) for i in part["known_outliers"].iloc[0]]
        for i in outliers:
            ax.axvspan(i + 0.5, i + 1.5, color="#DDDDDD", zorder=0, linewidth=0)
        for k, label in enumerate(labels):
            rows = part[part["loss_label"] == label]
            if rows.empty:
                continue
            w = np.asarray([np.nan if v is None else v for v in rows["weights"].iloc[0]], dtype=float)
            st = styles.get(label, {})
            shift = (k - (len(labels) - 1) / 2) * 0.12
            ax.plot(np.arange(1, w.size + 1) + shift, w, linestyle="none", marker=st.get("marker", "o"),
                    color=st.get("color"), markersize=4, label=label)
        ax.set_ylim(-0.05, 1.08)
        ax.set_xlim(0.3, len(part["weights"].iloc[0]) + 0.7)
        ax.set_title(f"{name} (grey: documented outliers)", fontsize=9)
        ax.set_ylabel("weight psi(u)/u")
        ax.grid(True, axis="y", alpha=0.3)
    axes[-1].set_xlabel("observation (row number)")
    axes[0].legend(loc="lower left", bbox_to_anchor=(0.0, 1.12), ncol=len(labels), fontsize=8, frameon=False)
    return fig


def draw_classic(runs: pd.DataFrame, out, tables: dict | None = None) -> None:
    """Draw the sensitivity, breakdown and efficiency figures this study has data for (into ``out``, a
    :class:`robustreg.report.figures._Out`)."""
    tables = classic_tables(runs) if tables is None else tables
    if "sensitivity.csv" in tables:
        t = tables["sensitivity.csv"]
        out.save(_sensitivity_figure(t, out.styles), "sensitivity", "Sensitivity curve",
                 "Median parameter error over the seeds against the outliers' magnitude (log-log), at the "
                 f"study's fraction {t['fraction'].iloc[0]:g}. A bounded influence levels off; an unbounded one "
                 "grows with the magnitude; a redescending loss rejects far outliers and returns toward its "
                 "clean error. Table: [sensitivity.csv](sensitivity.csv).")
    if "breakdown.csv" in tables:
        out.save(_breakdown_figure(estimator_runs(runs), tables["breakdown.csv"], out.styles), "breakdown",
                 "Empirical breakdown",
                 "Median parameter error against the contamination fraction (log scale); a ring marks each "
                 f"estimator's breakdown fraction (median error above {BREAKDOWN_MULTIPLE:g} times its clean "
                 "median error). Table: [breakdown.csv](breakdown.csv).")
    if "efficiency.csv" in tables:
        out.save(_efficiency_figure(tables["efficiency.csv"], out.styles), "efficiency", "Efficiency",
                 "Relative efficiency against least squares on clean data: mean squared slope error of L2 over "
                 "that of the estimator, paired by seed, with 95% bootstrap intervals; black bars mark the "
                 "textbook asymptotic values. Table: [efficiency.csv](efficiency.csv).")
    if "weights.csv" in tables:
        out.save(_weights_figure(_weighted_fits(runs), out.styles), "weights", "Which rows each fit trusts",
                 "Each fit's final weight psi(u)/u per observation of the classic data sets, at its scaled "
                 "residual u (least squares: 1 everywhere; L1, whose weights 1/|r| have no scale, is left out); "
                 "grey bands mark the documented outliers. Table: [weights.csv](weights.csv).",
                 overlap=False)  # markers side by side, each label shifted: none hides another


# ----------------------------------------------------------------- markdown
def _md_table(frame: pd.DataFrame, columns: dict) -> list:
    """:func:`~robustreg.report.markdown.markdown_table` of ``frame``'s ``columns`` (name -> header), as lines."""
    return markdown_table(frame[list(columns)].rename(columns=columns), max_rows=None).rstrip("\n").split("\n")


def classic_markdown(tables: dict) -> list:
    """The report's section on the classic views (lines), or nothing when the study has none."""
    if not tables:
        return []
    lines = ["## Classic views of robustness", ""]
    if "sensitivity.csv" in tables:
        t = tables["sensitivity.csv"]
        wide = t.pivot_table(index=["outliers", "loss_label"], columns="magnitude", values="coef_error_median")
        wide = wide.reset_index()
        cols = {"outliers": "outliers", "loss_label": "estimator", **{m: f"m={m:g}" for m in wide.columns[2:]}}
        lines += [f"**Sensitivity** ([sensitivity.csv](sensitivity.csv)): median parameter error at fraction "
                  f"{t['fraction'].iloc[0]:g}, by outlier magnitude m (noise scales).", ""]
        lines += _md_table(wide, cols) + [""]
    if "breakdown.csv" in tables:
        t = tables["breakdown.csv"]
        lines += [f"**Empirical breakdown** ([breakdown.csv](breakdown.csv)): the first fraction at which the "
                  f"median error exceeds {BREAKDOWN_MULTIPLE:g} times the clean median error; empty: not up to the "
                  "largest fraction tested.", ""]
        lines += _md_table(t, {"outliers": "outliers", "loss_label": "estimator",
                               "clean_error_median": "clean median error", "breakdown_fraction": "breakdown at",
                               "largest_fraction": "largest tested",
                               "error_median_at_largest": "median error there"}) + [""]
    if "efficiency.csv" in tables:
        t = tables["efficiency.csv"]
        lines += ["**Efficiency** ([efficiency.csv](efficiency.csv)): relative to least squares on clean data, "
                  "mean squared slope error of L2 over the estimator's, paired by seed; 95% bootstrap interval; "
                  "the textbook asymptotic value where there is one.", ""]
        lines += _md_table(t, {"noise": "noise", "loss_label": "estimator", "n_seeds": "seeds",
                               "efficiency": "efficiency", "ci_low": "95% low", "ci_high": "95% high",
                               "textbook": "textbook", "textbook_source": "source"}) + [""]
    if "weights.csv" in tables:
        t = tables["weights.csv"]
        lines += ["**Which rows each fit trusts** ([weights.csv](weights.csv)): the final weights psi(u)/u on "
                  "the documented outliers and on the other rows.", ""]
        lines += _md_table(t, {"dataset": "data set", "loss_label": "estimator", "n_outliers": "outliers",
                               "outlier_weight_max": "largest outlier weight",
                               "other_weight_mean": "mean weight of the others",
                               "n_zero_weight": "rows at weight 0"}) + [""]
    return lines
