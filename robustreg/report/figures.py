r"""Figures of a study, each as PNG and PDF.

Each figure is drawn only when the study holds the data for it; otherwise
the reason is recorded and listed in the report.  Figures are built on
:class:`matplotlib.figure.Figure` objects (the Agg canvas, no pyplot state),
every loss keeps the look of :func:`robustreg.report.style.style_map`, and
settings that vary besides those on the axes (for example the step size)
get one figure file per combination.

Convergence curves are summarized across seeds by the median and the
interquartile band at each iteration; a job that stopped earlier keeps its
last value (its fit is final).  The objective gap is relative:

.. math::

    \frac{f_t - f^\star}{|f^\star|}

with :math:`f^\star` the lowest objective reached by any job with the same
data, seed, loss and objective settings (every setting but the optimizer's
step settings), so jobs that differ only in their step share one
:math:`f^\star`; gaps below :math:`10^{-16}` (machine precision) are drawn at
:math:`10^{-16}`.

Which jobs: the figures of what gradient descent did (convergence, gradient
norm, the divergence share of the step map) draw the done jobs of plain
gradient descent (``model.solver=gd``), ``not_converged`` included
(:func:`~robustreg.report.collect.dynamics_runs`);
the figures of estimates (error against contamination, the step map's median
error, real-data lines, penalty weights) draw only the jobs whose estimate is
compared (:func:`~robustreg.report.collect.estimator_runs`).
"""

from __future__ import annotations

import io
import math
import multiprocessing
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogFormatter, NullLocator

from ..study.record import atomic_write
from .collect import done_runs, dynamics_runs, estimator_runs
from .style import label_order, loss_constants, overlap_note
from .tables import clean_mask, label_varying, median_interval, setting_columns

__all__ = ["FigureRecord", "Skipped", "draw_figures", "path_settings"]

#: Settings that only describe contamination; clean jobs match any of their values.
CONTAMINATION_DETAILS = ("magnitude", "outlier_params")
#: At most this many files per kind of figure (one per combination of other varying settings).
MAX_FACETS = 3
GAP_FLOOR = 1e-16
DPI = 150
_PDF_META = {"CreationDate": None, "ModDate": None}
_PNG_META = {"Software": None}
KIND_NAMES = {
    "none": "clean",
    "vertical": "vertical outliers",
    "leverage": "leverage points",
    "mixed": "mixed outliers",
    "heavy_tail": "heavy-tailed noise",
}


@dataclass
class FigureRecord:
    """A drawn figure: its name, its files (PNG first) and what it shows."""

    name: str
    files: list
    title: str
    caption: str = ""


@dataclass
class Skipped:
    """A figure not drawn, and why."""

    name: str
    reason: str


def _render(fig: Figure, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, **kwargs)
    return buf.getvalue()


@dataclass
class _Out:
    out_dir: Path
    styles: dict
    figures: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    constants: dict = field(default_factory=dict)  # loss label -> (loss, constants): style.loss_constants

    def save(self, fig: Figure, stem: str, title: str, caption: str = "", overlap: bool = True) -> None:
        """Write the figure as PNG and PDF; with ``overlap``, name in the caption the drawn lines that may hide
        one another (Huber and Smooth L1 at beta = delta ...): False for a figure whose marks never coincide."""
        _tidy_log_axes(fig)
        if overlap:
            drawn = {text.split(": ")[0] for ax in fig.axes for text in ax.get_legend_handles_labels()[1]}
            note = overlap_note([label for label in drawn if label in self.styles], self.constants)
            if note:
                caption = f"{caption} {note}".strip()
        fig_dir = self.out_dir / "figures"
        fig_dir.mkdir(parents=True, exist_ok=True)
        png, pdf = fig_dir / f"{stem}.png", fig_dir / f"{stem}.pdf"
        atomic_write(png, _render(fig, "png", dpi=DPI, metadata=_PNG_META))
        # The layout is settled by the first save; keep it rather than solve it again.
        fig.set_layout_engine("none")
        atomic_write(pdf, _render(fig, "pdf", metadata=_PDF_META))
        self.figures.append(FigureRecord(stem, [png, pdf], title, caption))

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append(Skipped(name, reason))


# ------------------------------------------------------------------ helpers
_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def _log_label(x, pos=None) -> str:
    """A log-axis tick label in plain text: 0.001 ... 10000 as numbers, other powers of ten as 10 with a superscript."""
    if not x > 0 or not math.isfinite(x):
        return ""
    e = math.log10(x)
    if abs(e - round(e)) < 1e-9:
        e = int(round(e))
        return f"{x:g}" if -3 <= e <= 4 else "10" + str(e).translate(_SUPERSCRIPT)
    return f"{x:.2g}"


class _MinorLogLabels(LogFormatter):
    """The stock choice of which minor log ticks to label, in plain text such as 0.3 or 6e-05."""

    def _num_to_string(self, x, vmin, vmax):
        return _log_label(x)


def _tidy_log_axes(fig: Figure) -> None:
    """Plain-text tick labels on log axes (mathtext is slow to lay out); minor ticks only on short ranges."""
    for ax in fig.axes:
        for axis, lim, scale in ((ax.xaxis, ax.get_xlim(), ax.get_xscale()),
                                 (ax.yaxis, ax.get_ylim(), ax.get_yscale())):
            if scale != "log":
                continue
            lo, hi = sorted(lim)
            axis.set_major_formatter(FuncFormatter(_log_label))
            if lo > 0 and hi / lo > 100:
                axis.set_minor_locator(NullLocator())
            else:
                # Few decades: label the minor ticks too, or the axis may carry no label at all.
                axis.set_minor_formatter(_MinorLogLabels(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _kind_name(kind) -> str:
    return KIND_NAMES.get(kind, str(kind))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


_PARAM_STRINGS = ("dataset_params", "outlier_params", "model_params")


def _split_params(text) -> dict:
    """``"a=1, b=x"`` -> ``{"a": "1", "b": "x"}`` (the compact parameter strings of the runs table)."""
    if not isinstance(text, str) or not text:
        return {}
    return dict(item.split("=", 1) if "=" in item else (item, "") for item in text.split(", "))


def _describe(combo: dict, combos: list) -> str:
    """A short text for one combination of settings: only what differs between the combinations."""
    parts = []
    for c, v in combo.items():
        if c in _PARAM_STRINGS:
            mine = _split_params(v)
            others = [_split_params(o[c]) for o in combos]
            keys = sorted(k for k in set(mine) | {k for o in others for k in o}
                          if len({o.get(k) for o in others}) > 1)
            parts += [f"{k}={mine[k]}" for k in keys if k in mine]
        elif c == "dataset":
            parts.append(str(v))
        else:
            parts.append(f"{c}={_fmt(v)}")
    return ", ".join(parts)


@dataclass
class _Facet:
    """Jobs sharing one combination of the settings that vary besides those a figure shows."""

    index: int
    description: str
    rows: pd.DataFrame

    def stem(self, name: str, n_facets: int) -> str:
        return name if n_facets == 1 else f"{name}-{self.index + 1:02d}"


def _facets(runs: pd.DataFrame, exclude) -> list:
    """One :class:`_Facet` per combination of the settings that vary beyond ``exclude`` and the loss.

    A job without a setting (a reference solver has no step) joins every
    facet; a clean job joins every value of the contamination details.
    """
    skip = set(exclude) | {"loss_label", "model"}
    extras = label_varying(runs, [c for c in setting_columns(runs) if c not in skip])
    if not extras:
        return [_Facet(0, "", runs)]
    combos = runs[extras].dropna().drop_duplicates().sort_values(extras, kind="mergesort")
    records = [dict(r) for _, r in combos.iterrows()]
    clean = clean_mask(runs)
    out = []
    for i, combo in enumerate(records):
        mask = pd.Series(True, index=runs.index)
        for c in extras:
            match = runs[c].isna() | (runs[c] == combo[c])
            if c in CONTAMINATION_DETAILS:
                match |= clean
            mask &= match
        out.append(_Facet(i, _describe(combo, records), runs[mask]))
    return out


def _capped(out: "_Out", name: str, facets: list) -> list:
    """The first ``MAX_FACETS`` facets; the rest are listed as not drawn."""
    if len(facets) > MAX_FACETS:
        out.skip(f"{name} (more settings)", f"{len(facets) - MAX_FACETS} further setting combinations not drawn "
                 "(see summary.csv)")
    return facets[:MAX_FACETS]


def _legend(fig: Figure, axes, styles: dict, labels=None, extra_handles=()) -> None:
    """One legend for the whole figure, below the panels (never over the data)."""
    handles, names = [], []
    for ax in np.atleast_1d(axes).ravel():
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in names and not l.startswith("_"):
                handles.append(h)
                names.append(l)
    order = label_order(names) if labels is None else [l for l in labels if l in names]
    order += [l for l in names if l not in order]
    handles = [handles[names.index(l)] for l in order] + [h for h, _ in extra_handles]
    order = order + [l for _, l in extra_handles]
    if handles:
        fig.legend(handles, order, loc="outside lower center", ncol=min(len(order), 5), frameon=False,
                   fontsize="small")


def _line_kw(styles: dict, label: str) -> dict:
    st = styles.get(label, {"color": "#000000", "marker": "o", "linestyle": "-"})
    return {"color": st["color"], "marker": st["marker"], "linestyle": st["linestyle"]}


def _errors(values) -> np.ndarray:
    x = np.array(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    x[~np.isfinite(x)] = np.inf
    return x


def _log_if_wide(ax, values, axis="y") -> None:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and v.max() / v.min() > 20:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


# ------------------------------------------------------------ error vs fraction
def _error_vs_fraction(runs: pd.DataFrame, out: _Out) -> None:
    name = "error_vs_fraction"
    done = estimator_runs(runs)
    kinds = sorted(k for k in done.loc[~clean_mask(done), "outliers"].dropna().unique())
    if not kinds:
        out.skip(name, "no contaminated jobs")
        return
    hit = done[~clean_mask(done)]
    if hit["fraction"].nunique() == 1 and hit["magnitude"].nunique() >= 3:
        out.skip(name, "one contamination fraction (the sensitivity figure draws error against magnitude)")
        return
    facets = _facets(done, exclude=("outliers", "fraction"))
    for facet in _capped(out, name, facets):
        part, desc = facet.rows, facet.description
        if clean_mask(part).all():
            continue  # nothing contaminated under this setting (a data set used as it is)
        stem = facet.stem(name, len(facets))
        kinds = sorted(k for k in part.loc[~clean_mask(part), "outliers"].dropna().unique())
        fig = Figure(figsize=(max(7.0, 4.2 * len(kinds) + 0.6), 4.4), layout="constrained")
        axes = fig.subplots(1, len(kinds), squeeze=False, sharey=True)[0]
        all_vals = []
        for ax, kind in zip(axes, kinds):
            rows = part[(part["outliers"] == kind) | clean_mask(part)]
            if not (rows["outliers"] == kind).any():
                continue
            if (rows["outliers"] == kind).any() and ((rows["outliers"] == kind) & (rows["fraction"] == 0)).any():
                rows = rows[rows["outliers"] == kind]  # this kind has its own fraction-0 jobs
            frac = rows["fraction"].where(~clean_mask(rows), 0.0)
            for label in label_order(rows["loss_label"].dropna().unique()):
                sel = rows["loss_label"] == label
                pts = []
                for f in sorted(frac[sel].unique()):
                    err = _errors(rows.loc[sel & (frac == f), "coef_error"])
                    lo, hi = median_interval(err)
                    pts.append((f, float(np.median(err)), lo, hi))
                pts = np.array(pts, dtype=float)
                ax.plot(pts[:, 0], pts[:, 1], label=label, markersize=5, **_line_kw(out.styles, label))
                ok = np.isfinite(pts[:, 2]) & np.isfinite(pts[:, 3])
                if ok.sum() >= 2:
                    ax.fill_between(pts[ok, 0], pts[ok, 2], pts[ok, 3], color=out.styles[label]["color"],
                                    alpha=0.15, linewidth=0)
                all_vals.extend(pts[:, 1:].ravel().tolist())
            ax.set_title(_kind_name(kind))
            ax.set_xlabel("contamination fraction (share of training rows)")
            ax.grid(True, alpha=0.3)
        axes[0].set_ylabel("parameter error ||w - w_ref||_2\n(coefficient units; median, 95% CI)")
        _log_if_wide(axes[0], all_vals)
        title = "Parameter error against contamination fraction" + (f" ({desc})" if desc else "")
        fig.suptitle(title, fontsize="medium")
        _legend(fig, axes, out.styles)
        out.save(fig, stem, title, "Median over seeds with its 95% percentile bootstrap interval; "
                 "fraction 0 is the clean data.")


# ---------------------------------------------------------------- convergence
def path_settings(runs: pd.DataFrame) -> set:
    """The optimizer settings that change the path, not the objective, as the records name them."""
    values = runs["path_settings"] if "path_settings" in runs else ()
    return {s for v in values if isinstance(v, list) for s in v}


def _objective_reference(runs: pd.DataFrame, histories: pd.DataFrame) -> pd.Series:
    """f* per job: the lowest objective among jobs with the same data, seed, loss and objective settings."""
    path = path_settings(runs)
    keys = [c for c in setting_columns(runs) if c not in path] + ["seed"]
    best = histories.groupby("job_dir", observed=True)["objective"].min()
    f = runs.set_index("job_dir")["train_objective"].astype(float)
    low = pd.concat([f, best.reindex(f.index)], axis=1).min(axis=1, skipna=True)
    frame = runs[keys].copy()
    frame["low"] = low.reindex(runs["job_dir"]).to_numpy()
    frame = frame.astype({k: object for k in keys})
    frame[keys] = frame[keys].where(frame[keys].notna(), "\0")
    ref = frame.groupby(keys, dropna=False)["low"].transform("min")
    return pd.Series(ref.to_numpy(), index=runs["job_dir"].to_numpy())


_MAX_POINTS = 400


def _clean_and_strongest(part: pd.DataFrame) -> list:
    """Panels (title, rows): the clean jobs, then each outlier kind at its strongest contamination."""
    panels = []
    clean = part[clean_mask(part)]
    if len(clean):
        panels.append(("clean", clean))
    for kind in sorted(part.loc[~clean_mask(part), "outliers"].dropna().unique()):
        rows = part[(part["outliers"] == kind) & (part["fraction"] > 0)]
        top = rows[rows["fraction"] == rows["fraction"].max()]
        panels.append((f"{_kind_name(kind)}, fraction {top['fraction'].iloc[0]:g}", top))
    return panels


def _histories_of(done: pd.DataFrame, histories: pd.DataFrame):
    """(history copy keyed by str job_dir, the done jobs that have one, job -> row positions)."""
    hist = histories.copy()
    hist["job_dir"] = hist["job_dir"].astype(str)
    with_hist = done[done["job_dir"].isin(set(hist["job_dir"].unique()))]
    return hist, with_hist, hist.groupby("job_dir", sort=False).indices


def _rows_of(hist: pd.DataFrame, positions: dict, jobs) -> pd.DataFrame:
    """The history rows of some jobs, through a job -> row positions index (no string scan per call)."""
    parts = [positions[j] for j in sorted(jobs) if j in positions]
    return hist.iloc[np.concatenate(parts)] if parts else hist.iloc[:0]


def _band(hist: pd.DataFrame, value: str):
    """Median and quartiles at each iteration across jobs (a finished job keeps its last value)."""
    wide = hist.drop_duplicates(["iteration", "job_dir"]).pivot(index="iteration", columns="job_dir", values=value)
    if wide.empty:
        return None
    wide = wide.reindex(np.arange(int(wide.index.max()) + 1)).ffill()
    if len(wide) > _MAX_POINTS:
        # The iteration axis is logarithmic: log-spaced samples draw the same
        # curve with a fraction of the points (and of the drawing time), and
        # the quantiles need computing at those iterations only.
        wide = wide.iloc[np.unique(np.geomspace(1, len(wide), _MAX_POINTS).astype(int) - 1)]
    arr = wide.to_numpy(dtype=float)
    levels = [0.25, 0.5, 0.75]
    q = np.empty((len(levels), len(arr)))
    # Iterations every job has reached, in one vectorized call; nanquantile
    # (one call per iteration) for the others.  Both give the same values.
    full = ~np.isnan(arr).any(axis=1)
    q[:, full] = np.quantile(arr[full], levels, axis=1)
    if not full.all():
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an iteration no job has reached
            q[:, ~full] = np.nanquantile(arr[~full], levels, axis=1)
    return wide.index.to_numpy(), q


def _marker_spacing(styles: dict, label: str):
    """Markers at equal visual distances, shifted per label so that coinciding curves stay distinguishable."""
    k = sorted(styles).index(label) if label in styles else 0
    return (0.015 * (k % 6), 0.12)


def _plot_band(ax, x, q, label, styles, floor=None):
    lo, med, hi = q
    if floor is not None:
        lo, med, hi = (np.maximum(v, floor) for v in (lo, med, hi))
    kw = _line_kw(styles, label)
    ax.plot(x + 1, med, label=label, color=kw["color"], linestyle=kw["linestyle"], marker=kw["marker"],
            markevery=_marker_spacing(styles, label) if len(x) > 1 else None, markersize=4, linewidth=1.4)
    ax.fill_between(x + 1, lo, hi, color=kw["color"], alpha=0.15, linewidth=0)


def _convergence(runs: pd.DataFrame, histories: pd.DataFrame, out: _Out) -> None:
    name = "convergence"
    done = dynamics_runs(runs)
    if histories.empty:
        out.skip(name, "no job recorded a history (reference solvers only)")
        return
    if done.empty:
        out.skip(name, "no plain gradient-descent job (model.solver=gd): an estimator study draws no dynamics")
        return
    hist, with_hist, positions = _histories_of(done, histories)
    fstar = _objective_reference(with_hist, histories)
    ref = fstar.reindex(hist["job_dir"]).to_numpy()
    with np.errstate(all="ignore"):
        hist["gap"] = (hist["objective"].to_numpy() - ref) / np.maximum(np.abs(ref), np.finfo(float).tiny)
    facets = _facets(with_hist, exclude=("outliers", "fraction"))
    for facet in _capped(out, name, facets):
        part, desc = facet.rows, facet.description
        for kind in sorted(part["outliers"].dropna().unique()):
            rows = part[part["outliers"] == kind]
            fracs = sorted(rows["fraction"].unique())
            stem = facet.stem(f"{name}-{kind}", len(facets))
            fig = Figure(figsize=(max(7.0, 3.8 * len(fracs) + 0.8), 6.6), layout="constrained")
            axes = fig.subplots(2, len(fracs), squeeze=False, sharex=True)
            for j, f in enumerate(fracs):
                sel = rows[rows["fraction"] == f]
                for label in label_order(sel["loss_label"].dropna().unique()):
                    jobs = set(sel.loc[sel["loss_label"] == label, "job_dir"])
                    h = _rows_of(hist, positions, jobs)
                    for i, value in enumerate(("gap", "coef_error")):
                        band = _band(h, value)
                        if band is not None:
                            _plot_band(axes[i, j], band[0], band[1], label, out.styles,
                                       floor=GAP_FLOOR if value == "gap" else None)
                head = "clean (fraction 0)" if kind == "none" or f == 0 else f"{_kind_name(kind)}, fraction {f:g}"
                axes[0, j].set_title(head)
                for i in range(2):
                    axes[i, j].set_xscale("log")
                    axes[i, j].set_yscale("log")
                    axes[i, j].grid(True, alpha=0.3)
                axes[1, j].set_xlabel("iteration + 1")
            axes[0, 0].set_ylabel("relative objective gap\n(f - f*) / |f*|")
            axes[1, 0].set_ylabel("parameter error ||w - w_ref||_2\n(coefficient units)")
            title = f"Convergence: {_kind_name(kind)}" + (f" ({desc})" if desc else "")
            fig.suptitle(title + "\nmedian and interquartile band over seeds", fontsize="medium")
            _legend(fig, axes, out.styles)
            out.save(fig, stem, title, "f* is the lowest objective of any job with the same data, seed, loss and "
                     "objective settings; a job that stopped keeps its last value.")


def _grad_norm(runs: pd.DataFrame, histories: pd.DataFrame, out: _Out) -> None:
    name = "grad_norm"
    done = dynamics_runs(runs)
    if histories.empty:
        out.skip(name, "no job recorded a history (reference solvers only)")
        return
    if done.empty:
        out.skip(name, "no plain gradient-descent job (model.solver=gd): an estimator study draws no dynamics")
        return
    hist, with_hist, positions = _histories_of(done, histories)
    facets = _facets(with_hist, exclude=("outliers", "fraction"))
    for facet in _capped(out, name, facets):
        part, desc, stem = facet.rows, facet.description, facet.stem(name, len(facets))
        panels = _clean_and_strongest(part)
        fig = Figure(figsize=(max(7.0, 3.8 * len(panels) + 0.8), 4.4), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
        for ax, (head, rows) in zip(axes, panels):
            for label in label_order(rows["loss_label"].dropna().unique()):
                jobs = set(rows.loc[rows["loss_label"] == label, "job_dir"])
                band = _band(_rows_of(hist, positions, jobs), "grad_norm")
                if band is not None:
                    _plot_band(ax, band[0], band[1], label, out.styles)
            ax.set_title(head)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
            ax.set_xlabel("iteration + 1")
        axes[0].set_ylabel("gradient norm ||grad F||_2\n(objective units per coefficient unit)")
        title = "Gradient norm against iteration" + (f" ({desc})" if desc else "")
        fig.suptitle(title + "\nmedian and interquartile band over seeds", fontsize="medium")
        _legend(fig, axes, out.styles)
        out.save(fig, stem, title, "Rising curves are explosions, flat ones oscillation or stalling, falling "
                 "ones convergence; the strongest contamination of each kind is shown.")


# ------------------------------------------------------------------ step map
def _step_map(runs: pd.DataFrame, out: _Out) -> None:
    name = "step_map"
    done = dynamics_runs(runs)
    gd = done[done["model"] == "gd"] if "model" in done else done
    steps = [c for c in ("learning_rate", "eta0") if c in gd]
    if not steps or not label_varying(gd, steps):
        out.skip(name, "the study does not vary the step (learning_rate / eta0)")
        return
    gd = gd.copy()
    shown = [c for c in steps if gd[c].nunique() > 1]  # a rule shared by every job goes to the axis label
    fixed = [c for c in steps if c not in shown]
    gd["_step"] = ["\n".join(_fmt(r[c]) for c in shown) for _, r in gd[shown].iterrows()]
    order = gd.sort_values(shown, kind="mergesort")["_step"].drop_duplicates().tolist()
    axis_label = " / ".join(shown) + "".join(f" ({c} {_fmt(gd[c].iloc[0])})" for c in fixed)
    facets = _facets(gd, exclude=("outliers", "fraction", *steps))
    for facet in _capped(out, name, facets):
        part, desc, stem = facet.rows, facet.description, facet.stem(name, len(facets))
        if not label_varying(part, steps):
            continue
        panels = _clean_and_strongest(part)
        labels = label_order(part["loss_label"].dropna().unique())
        cols = [s for s in order if s in set(part["_step"])]
        # One panel per row: the step axis stays wide enough for its numbers.
        fig = Figure(figsize=(max(6.0, 0.85 * len(cols) + 2.8), len(panels) * (0.42 * len(labels) + 1.1) + 1.2),
                     layout="constrained")
        axes = fig.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
        image = None
        for ax, (head, rows) in zip(axes, panels):
            share = np.full((len(labels), len(cols)), np.nan)
            med = np.full((len(labels), len(cols)), np.nan)
            for i, label in enumerate(labels):
                for j, s in enumerate(cols):
                    cell = rows[(rows["loss_label"] == label) & (rows["_step"] == s)]
                    if len(cell):
                        share[i, j] = cell["diverged"].fillna(False).astype(bool).mean()
                        compared = estimator_runs(cell)
                        # A cell whose every job stopped unconverged has no error to show (NaN: "n/c").
                        med[i, j] = np.median(_errors(compared["coef_error"])) if len(compared) else np.nan
            image = ax.imshow(np.ma.masked_invalid(share), cmap="cividis", vmin=0, vmax=1, aspect="auto")
            for i in range(len(labels)):
                for j in range(len(cols)):
                    if np.isfinite(share[i, j]):
                        text = (f"{med[i, j]:.2g}" if np.isfinite(med[i, j]) else
                                "n/c" if np.isnan(med[i, j]) else "inf")
                        ax.text(j, i, text, ha="center", va="center", fontsize="small",
                                color="white" if share[i, j] < 0.5 else "black")
            ax.set_yticks(range(len(labels)), labels)
            ax.set_title(head, fontsize="medium")
        axes[-1].set_xticks(range(len(cols)), cols)
        axes[-1].set_xlabel(axis_label)
        fig.colorbar(image, ax=list(axes), label="share of seeds that diverged", shrink=0.8)
        title = "Step size map: divergence by loss and step" + (f" ({desc})" if desc else "")
        fig.suptitle(title + "\nnumber: median final parameter error (coefficient units)", fontsize="medium")
        out.save(fig, stem, title, "Colour: share of seeds that diverged (every done plain-GD job); number: median final "
                 "parameter error of the jobs that converged or diverged (n/c: none did, every seed stopped "
                 "without converging).")


# ------------------------------------------------------------------ real data
@dataclass(frozen=True)
class RecordedData:
    """A classic data set as its jobs recorded it: the rows the fit saw, the documented outliers, the published fits."""

    X: np.ndarray
    y: np.ndarray
    known_outliers: list
    published: dict
    feature_names: list
    target_name: str


def recorded_names_and_fits(rows: pd.DataFrame, n_features: int) -> tuple:
    """``(feature names, published fits)`` of the data set of the first of ``rows``, as its record holds them.

    Names the record does not hold (or not ``n_features`` of them) are ``x0``, ``x1`` ...
    """
    first = rows.iloc[0]
    names = first.get("feature_names")
    names = list(names) if isinstance(names, list) and len(names) == n_features else [
        f"x{j}" for j in range(n_features)]
    published = first.get("published")
    return names, {k: np.asarray(v, dtype=float) for k, v in (published if isinstance(published, dict) else {}).items()}


def recorded_data(rows: pd.DataFrame) -> RecordedData | None:
    """The data set of the first of ``rows`` as its record holds it (None for a record without its rows)."""
    first = rows.iloc[0]
    train = first["train"] if "train" in rows else None
    if not isinstance(train, dict) or train.get("X") is None:
        return None
    X, y = np.asarray(train["X"], dtype=float), np.asarray(train["y"], dtype=float)
    names, published = recorded_names_and_fits(rows, X.shape[1])
    return RecordedData(X, y, list(first.get("known_outliers") or []), published, names,
                        str(first.get("target_name") or "y"))


def _line_text(b: float, w: float) -> str:
    return f"{b:.3g} {'-' if w < 0 else '+'} {abs(w):.3g} x"


def _real_data(runs: pd.DataFrame, out: _Out) -> None:
    name = "real_data"
    done = estimator_runs(runs)
    clean = done[clean_mask(done) & (done["dataset"] != "synthetic")]
    sets = sorted(d for d in clean["dataset"].dropna().unique()
                  if (clean.loc[clean["dataset"] == d, "n_features"] == 1).all())
    if not sets:
        out.skip(name, "no uncontaminated one-feature real data set (such as stars_cyg or telef) in the study")
        return
    for dname in sets:
        rows = clean[clean["dataset"] == dname]
        ds = recorded_data(rows)
        if ds is None:
            out.skip(f"{name}-{dname}", f"the records of {dname} do not hold the rows the fit saw")
            continue
        fig = Figure(figsize=(6.4, 5.2), layout="constrained")
        ax = fig.subplots()
        x = ds.X[:, 0]
        y = ds.y
        bad = np.zeros(len(y), dtype=bool)
        bad[ds.known_outliers] = True
        ax.scatter(x[~bad], y[~bad], s=18, color="#555555", label="data", zorder=3)
        ax.scatter(x[bad], y[bad], s=60, facecolors="none", edgecolors="#000000", marker="o", linewidths=1.4,
                   label="documented outliers", zorder=4)
        span = np.linspace(x.min() - 0.05 * np.ptp(x), x.max() + 0.05 * np.ptp(x), 50)
        for label in label_order(rows["loss_label"].dropna().unique()):
            part = rows[rows["loss_label"] == label]
            coefs = np.array([c[0] for c in part["coef"] if c], dtype=float)
            b = float(np.median(part["intercept"].astype(float)))
            w = float(np.median(coefs))
            kw = _line_kw(out.styles, label)
            ax.plot(span, b + w * span, color=kw["color"], linestyle=kw["linestyle"], linewidth=1.6,
                    marker=kw["marker"], markersize=5, markevery=_marker_spacing(out.styles, label),
                    label=f"{label}: {_line_text(b, w)}")
        for key, style, text in (("least_squares", (0, (1, 1)), "least squares (published)"),
                                 ("mm", (0, (6, 2)), "MM (published)")):
            if key in ds.published:
                b, w = ds.published[key]
                ax.plot(span, b + w * span, color="#000000", linestyle=style, linewidth=1.2,
                        label=f"{text}: {_line_text(b, w)}")
        pad = 0.15 * np.ptp(y)
        ax.set_ylim(y.min() - pad, y.max() + pad)
        ax.set_xlabel(f"{ds.feature_names[0]}")
        ax.set_ylabel(f"{ds.target_name}")
        title = f"{dname}: the fitted line of each loss (published data)"
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=2, frameon=False,
                   fontsize="small")
        out.save(fig, f"{name}-{dname}", title, "Median intercept and slope over the jobs of each loss, beside "
                 "the published least-squares and MM fits; circled points are the documented outliers.")


# ------------------------------------------------------------------ penalty
_PENALTY_STYLE = {
    "l1": {"color": "#D55E00", "marker": "o", "linestyle": "-"},
    "l2": {"color": "#0072B2", "marker": "s", "linestyle": "-"},
    "elasticnet": {"color": "#009E73", "marker": "^", "linestyle": "--"},
}


def _penalty(runs: pd.DataFrame, out: _Out) -> None:
    name = "penalty"
    done = estimator_runs(runs)
    if "penalty" not in done or "alpha" not in done:
        out.skip(name, "no job with a penalty")
        return
    gd = done[(done["model"] == "gd") & done["penalty"].isin(list(_PENALTY_STYLE))]
    gd = gd[pd.to_numeric(gd["alpha"], errors="coerce") > 0]
    if gd.empty or gd.groupby("penalty")["alpha"].nunique().max() < 2:
        out.skip(name, "no penalty with at least two values of alpha")
        return
    labels = label_order(gd["loss_label"].dropna().unique())
    fig = Figure(figsize=(max(6.0, 3.9 * len(labels) + 0.8), 6.4), layout="constrained")
    axes = fig.subplots(2, len(labels), squeeze=False, sharex=True)
    for j, label in enumerate(labels):
        part = gd[gd["loss_label"] == label]
        for pen in [p for p in _PENALTY_STYLE if p in set(part["penalty"])]:
            rows = part[part["penalty"] == pen]
            for i, value in enumerate(("n_zero_coef", "coef_norm")):
                g = rows.groupby("alpha")[value]
                med, lo, hi = g.median(), g.quantile(0.25), g.quantile(0.75)
                st = _PENALTY_STYLE[pen]
                axes[i, j].plot(med.index, med.to_numpy(dtype=float), label=f"{pen} penalty", **st)
                axes[i, j].fill_between(med.index, lo.to_numpy(dtype=float), hi.to_numpy(dtype=float),
                                        color=st["color"], alpha=0.15, linewidth=0)
        axes[0, j].set_title(f"loss: {label}")
        for i in range(2):
            axes[i, j].set_xscale("log")
            axes[i, j].grid(True, alpha=0.3)
        axes[1, j].set_xlabel("penalty strength alpha")
    n_feat = gd["n_features"].dropna()
    axes[0, 0].set_ylabel("exactly-zero weights\n(count" + (f" of {int(n_feat.max())})" if len(n_feat) else ")"))
    axes[1, 0].set_ylabel("weight norm ||w||_2\n(coefficient units)")
    title = "Penalty: exact zeros and weight size against alpha"
    fig.suptitle(title + "\nmedian and interquartile band over seeds", fontsize="medium")
    _legend(fig, axes, {}, labels=[f"{p} penalty" for p in _PENALTY_STYLE])
    out.save(fig, name, title, "The L1 penalty takes a proximal (soft-threshold) step, so weights reach exactly 0.")


# ------------------------------------------------------------------ entry
def draw_figures(runs: pd.DataFrame, histories: pd.DataFrame, out_dir, styles: dict, n_jobs: int | None = None):
    """Draw every figure the study has data for into ``out_dir/figures``.

    Parameters
    ----------
    runs : pandas.DataFrame
        The runs table (done, failed and missing jobs; only done jobs are
        drawn, each figure from the subset of them it is about).
    histories : pandas.DataFrame
        The long history table.
    out_dir : Path
        The report folder.
    styles : dict
        Loss label -> style, from :func:`robustreg.report.style.style_map`.
    n_jobs : int, optional
        Processes drawing the figure kinds side by side (default: one per core).

    Returns
    -------
    (list of FigureRecord, list of Skipped)
    """
    out = _Out(Path(out_dir), styles, constants=loss_constants(runs))
    fig_dir = Path(out_dir) / "figures"
    if fig_dir.is_dir():
        # Figures of an earlier report of this folder must not linger beside the new ones.
        for old in sorted(fig_dir.glob("*.png")) + sorted(fig_dir.glob("*.pdf")):
            old.unlink()
    runs = done_runs(runs)
    if runs.empty:
        out.skip("all figures", "no job finished")
        return out.figures, out.skipped
    _SHARED["data"] = (runs, histories, Path(out_dir), styles, out.constants)
    try:
        n_workers = min(len(_KINDS), n_jobs or os.cpu_count() or 1)
        if n_workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            # Figure kinds are independent: draw them side by side.  Forked
            # workers inherit the tables; only the figure lists travel back.
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=context) as pool:
                results = list(pool.map(_draw_kind, range(len(_KINDS))))
        else:
            results = [_draw_kind(k) for k in range(len(_KINDS))]
    finally:
        _SHARED.clear()
    for figures, skipped in results:  # in the kinds' order, whoever finished first
        out.figures.extend(figures)
        out.skipped.extend(skipped)
    return out.figures, out.skipped


_SHARED: dict = {}


def _draw_kind(k: int):
    runs, histories, out_dir, styles, constants = _SHARED["data"]
    out = _Out(out_dir, styles, constants=constants)
    fn, needs_histories = _KINDS[k]
    if needs_histories:
        fn(runs, histories, out)
    else:
        fn(runs, out)
    return out.figures, out.skipped


_KINDS = [
    (_error_vs_fraction, False),
    (_convergence, True),
    (_grad_norm, True),
    (_step_map, False),
    (_real_data, False),
    (_penalty, False),
]
