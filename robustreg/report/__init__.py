"""The report step: job records of a sweep -> tables, figures, claim verdicts and ``report.md``.

>>> from robustreg.report import make_report
>>> result = make_report("results/runs/contamination", "results/contamination")  # doctest: +SKIP

writes, into the output folder:

* ``runs.csv``: one row per job (done, failed and missing; a done job's
  status is ``ok``, ``not_converged`` or ``diverged``), one column per
  setting that varies;
* ``coefficients.csv``: one row per fitted coefficient of every done job
  (job, term, estimate, reference, true value, standard error);
* ``coverage.csv``: where the truth is known and the fits give standard
  errors, the share of 95% intervals holding the true coefficient, per loss
  x outlier kind x fraction;
* ``summary.csv``: per loss x outlier kind x fraction (x other varying
  settings), over the jobs whose estimates are compared (not-converged jobs
  are only counted);
* ``paired.csv``: each loss against L2 on the same data and seed (not-converged
  jobs left out);
* ``histories.parquet``: every recorded iteration of every job (the next
  report of the same sweep reads from it the histories that have not changed);
* ``figures/*.png`` and ``figures/*.pdf``;
* ``report.md`` (and ``report.json``, its digest for the index of studies).

The sweep folder itself is only read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..study.record import atomic_write
from .collect import NON_SETTING_COLUMNS, PACKED_COLUMNS, Collection, NoRecordsError, ReportError, collect, done_runs, write_histories
from .classic import CLASSIC_FILES, classic_markdown, classic_tables, draw_classic
from .figures import Skipped, _Out, draw_figures
from .markdown import REPORT_JSON, render_report, report_json, write_index
from .style import loss_constants, style_map
from .tables import (
    DATA_SETTINGS,
    add_history_metrics,
    coverage_table,
    paired_table,
    setting_columns,
    summary_table,
    varying,
)
from .verdicts import CLAIMS, RULES, Verdict, evaluate_claims

__all__ = [
    "CLAIMS",
    "RULES",
    "Collection",
    "NoRecordsError",
    "Report",
    "ReportError",
    "Verdict",
    "coefficients_table",
    "collect",
    "evaluate_claims",
    "make_report",
    "paired_table",
    "runs_for_csv",
    "summary_table",
    "write_histories",
    "write_index",
    "write_tables",
]

FLOAT_FORMAT = "%.6g"


@dataclass
class Report:
    """What :func:`make_report` produced."""

    collection: Collection
    out_dir: Path
    runs: pd.DataFrame
    summary: pd.DataFrame
    paired: pd.DataFrame
    verdicts: list
    figures: list
    skipped: list

    @property
    def files(self) -> list:
        names = ["runs.csv", "coefficients.csv", "summary.csv", "paired.csv", "histories.parquet", "report.md",
                 REPORT_JSON]
        return [self.out_dir / n for n in names] + [p for f in self.figures for p in f.files]


def _csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write(path, frame.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n"))


#: The settings written to runs.csv, one column per key, named as the config key: (prefix, runs column of dicts).
_SETTING_DICTS = (("dataset", "dataset_args"), ("outliers", "outlier_args"), ("loss", "loss_args"))
_PACKED = PACKED_COLUMNS


def _cell(value):
    """A setting's value as one CSV cell: lists as compact JSON, None as empty."""
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), separators=(",", ":"))
    return value


def runs_for_csv(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs table as written to ``runs.csv``: one column per setting that varies, no packed strings.

    A data set's, outlier model's or loss's parameter is the column
    ``dataset.<key>``, ``outliers.<key>``, ``loss.<key>``; a model parameter
    keeps its own name (``alpha``, ``learning_rate``...).  Settings that take
    one value in the whole sweep are left out (``report.md`` gives them);
    coefficients are in ``coefficients.csv``.
    """
    frame = runs.copy()
    known = frame["status"] != "missing"
    skip = set(DATA_SETTINGS) | {"loss_label"}
    varying_params = set(varying(frame[known], [c for c in setting_columns(frame[known]) if c not in skip]))
    # Model parameters that never vary are dropped.
    constant = [c for c in frame.columns
                if c not in NON_SETTING_COLUMNS and c not in DATA_SETTINGS and c not in ("loss_label", "model")
                and c not in varying_params]
    expanded = {}
    for prefix, column in _SETTING_DICTS:
        if column not in frame:
            continue
        dicts = [d if isinstance(d, dict) else {} for d in frame[column]]
        for key in sorted({k for d in dicts for k in d if k not in ("seed", "random_state")}):
            values = pd.Series([_cell(d.get(key)) for d in dicts], index=frame.index, dtype=object)
            if varying(pd.DataFrame({key: values[known]}), [key]):
                expanded[f"{prefix}.{key}"] = values
    # Timings differ from run to run: they stay in the records, so that a rerun rewrites runs.csv byte for byte.
    frame = frame.drop(columns=constant + [c for c in (*_PACKED, "fit_seconds") if c in frame])
    at = list(frame.columns).index("model") + 1 if "model" in frame else len(frame.columns)
    for k, (name, values) in enumerate(expanded.items()):
        frame.insert(at + k, name, values)
    return frame


def coefficients_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per fitted coefficient of every done job: ``job_dir, term, estimate, reference, true, std_error``.

    ``term`` is ``intercept``, then ``x0`` ... ``x{p-1}`` in the design's column
    order; ``reference`` is the job's reference coefficient (the truth, or a
    published fit), ``true`` the data-generating one where it is known, and
    ``std_error`` the fit's standard error where the record holds one.
    """
    rows = []
    done = done_runs(runs)
    for job, coef, intercept, ref, true, bse in zip(
            done["job_dir"], done["coef"], done["intercept"], done.get("coef_reference", [None] * len(done)),
            done.get("coef_true", [None] * len(done)), done.get("bse", [None] * len(done))):
        if not isinstance(coef, list):
            continue
        estimates = [intercept, *coef]
        for j, est in enumerate(estimates):
            rows.append({
                "job_dir": job,
                "term": "intercept" if j == 0 else f"x{j - 1}",  # as GDRegressor.summary() names them
                "estimate": est,
                "reference": ref[j] if isinstance(ref, list) and j < len(ref) else None,
                "true": true[j] if isinstance(true, list) and j < len(true) else None,
                "std_error": bse[j] if isinstance(bse, list) and j < len(bse) else None,
            })
    columns = ["job_dir", "term", "estimate", "reference", "true", "std_error"]
    return pd.DataFrame(rows, columns=columns).astype({c: float for c in columns[2:]})


def write_tables(runs: pd.DataFrame, summary: pd.DataFrame, paired: pd.DataFrame, collection: Collection,
                 out_dir: Path) -> None:
    """Write ``runs.csv``, ``coefficients.csv``, ``coverage.csv`` (when some job qualifies), ``summary.csv``,
    ``paired.csv`` and ``histories.parquet`` into ``out_dir``.

    Every CSV file starts with its header row, even when it has no rows (``paired.csv`` of a study without
    an L2 baseline): ``pandas.read_csv`` reads it as an empty table with its columns.

    Raises
    ------
    ValueError
        A table has no columns (it would be written as a file without a header).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    coverage = coverage_table(runs)
    tables = {"runs.csv": runs_for_csv(runs), "coefficients.csv": coefficients_table(runs),
              "coverage.csv": coverage if len(coverage) else None, "summary.csv": summary, "paired.csv": paired}
    for name, frame in tables.items():
        if frame is not None and frame.columns.empty:
            raise ValueError(f"{name}: the table has no columns, so the file would have no header row")
    for name, frame in tables.items():
        if frame is not None:
            _csv(frame, out_dir / name)
        else:  # no longer: an earlier report's table must not outlive it
            (out_dir / name).unlink(missing_ok=True)
    write_histories(collection, out_dir / "histories.parquet")


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def make_report(sweep_dir, out_dir=None, progress: bool = True, index_dir=None, figures: bool = True,
                n_jobs: int | None = None) -> Report:
    """Collect a sweep folder and write its tables, figures and ``report.md`` into ``out_dir``.

    Parameters
    ----------
    sweep_dir : str or Path
        The sweep folder (read only).
    out_dir : str or Path or None
        The report folder (created; must not lie inside ``sweep_dir``);
        ``None`` is ``results/<study>`` under the current folder.
    progress : bool, default=True
        Show progress bars while collecting large sweeps.
    index_dir : str or Path, optional
        A results folder whose ``README.md`` index of studies is rewritten afterwards.
    figures : bool, default=True
        Draw the figures (False writes the tables and the report only).
    n_jobs : int, optional
        Processes drawing the figures side by side (default: one per core).

    Raises
    ------
    NoRecordsError
        The sweep folder holds no job record (nothing is written).
    ReportError
        ``out_dir`` lies inside the sweep folder, or a record cannot be read.
    """
    sweep_dir = Path(sweep_dir)
    if index_dir is not None and not Path(index_dir).is_dir():
        # The index folder may be created by this report (--out results/NAME --index results).
        if out_dir is None or not _inside(Path(out_dir), Path(index_dir)):
            raise ReportError(f"--index {str(index_dir)!r} is not a folder; allowed: an existing results folder "
                              "or one that holds --out")
    if out_dir is not None and sweep_dir.is_dir() and _inside(Path(out_dir), sweep_dir):
        raise ReportError(f"--out {str(out_dir)!r} lies inside the sweep folder {str(sweep_dir)!r}; "
                          "allowed: a folder outside it (the records are never written to)")
    # An earlier report's histories file lends the histories that have not changed since.
    consolidated = None if out_dir is None else Path(out_dir) / "histories.parquet"
    coll = collect(sweep_dir, progress=progress, consolidated=consolidated)
    out_dir = Path("results") / coll.study if out_dir is None else Path(out_dir)
    if _inside(out_dir, sweep_dir):
        raise ReportError(f"the report folder {str(out_dir)!r} lies inside the sweep folder {str(sweep_dir)!r}; "
                          "pass --out with a folder outside it")
    runs = add_history_metrics(coll.runs, coll.histories)
    summary = summary_table(runs)
    paired = paired_table(runs)
    verdicts = evaluate_claims(runs)
    styles = style_map(runs["loss_label"].dropna().unique())

    out_dir.mkdir(parents=True, exist_ok=True)
    write_tables(runs, summary, paired, coll, out_dir)
    classic = classic_tables(runs)
    for name in CLASSIC_FILES:  # a table of an earlier report must not outlive it
        if name in classic:
            _csv(classic[name], out_dir / name)
        else:
            (out_dir / name).unlink(missing_ok=True)
    if figures:
        drawn, skipped = draw_figures(runs, coll.histories, out_dir, styles, n_jobs=n_jobs)
        more = _Out(out_dir, styles, constants=loss_constants(runs))
        draw_classic(runs, more, classic)
        drawn, skipped = drawn + more.figures, skipped + more.skipped
    else:
        drawn, skipped = [], [Skipped("all figures", "figures were not requested (--no-figures)")]
    sweep_label = os.path.relpath(sweep_dir.resolve(), out_dir.resolve()).replace(os.sep, "/")
    text = render_report(
        study=coll.study, counts=coll.counts(), runs=runs, summary=summary, paired=paired, verdicts=verdicts,
        figures=drawn, skipped=skipped, out_dir=out_dir, sweep_label=sweep_label,
        sweep_files=coll.sweep_files, unexpected=coll.unexpected, duplicates=coll.duplicates,
        damaged=coll.damaged, coverage=coverage_table(runs), classic=classic_markdown(classic),
    )
    atomic_write(out_dir / "report.md", text)
    atomic_write(out_dir / REPORT_JSON, report_json(coll.study, coll.counts(), verdicts))
    if index_dir is not None:
        write_index(index_dir)
    return Report(coll, out_dir, runs, summary, paired, verdicts, drawn, skipped)
