"""The report of a study as Markdown (``report.md``) and the index of studies (``results/README.md``)."""

from __future__ import annotations

import json
import math
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

try:  # POSIX: reports written side by side serialize their index updates
    import fcntl
except ImportError:  # pragma: no cover - no folder locks elsewhere
    fcntl = None

from ..study.record import atomic_write, file_digest

from .codebook import codebook_markdown, csv_columns
from .collect import SUBSETS, estimator_runs
from .tables import CONFIDENCE, N_RESAMPLES, RANDOM_STATE, SETTLE_TOL, clean_mask, setting_columns
from .verdicts import CLAIMS, VERDICTS

__all__ = ["markdown_table", "render_report", "software_versions", "write_index"]

MAX_TABLE_ROWS = 60
MAX_JOB_ROWS = 50
REPORT_JSON = "report.json"


# ------------------------------------------------------------------ helpers
def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.3g}"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    return str(v).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame, max_rows: int | None = MAX_TABLE_ROWS, note: str = "") -> str:
    """A pipe table; numbers in 3 significant digits; a line says how many rows were left out."""
    if frame.empty:
        return "_(none)_\n"
    shown = frame if max_rows is None else frame.head(max_rows)
    cols = list(shown.columns)
    lines = ["| " + " | ".join(_cell(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in shown.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    text = "\n".join(lines) + "\n"
    if max_rows is not None and len(frame) > max_rows:
        text += f"\n_{max_rows} of {len(frame)} rows shown{note}._\n"
    return text


def software_versions() -> dict:
    """Versions of Python and of the libraries the numbers depend on."""
    out = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "pyarrow", "robustreg"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _values(series: pd.Series, limit: int = 12) -> str:
    vals = series.dropna().unique().tolist()
    try:
        vals = sorted(vals)
    except TypeError:
        vals = sorted(vals, key=str)
    shown = [f"{v:.10g}" if isinstance(v, float) else str(v) for v in vals[:limit]]
    text = ", ".join(f"`{v}`" if v != "" else "(empty)" for v in shown)
    if len(vals) > limit:
        text += f", ... ({len(vals)} values)"
    return text or "(none)"


def _grid(runs: pd.DataFrame) -> str:
    """The settings found in the records: those that vary as a list, the fixed ones folded away."""
    known = runs[runs["status"] != "missing"]
    varying_lines, fixed = [], []
    for col in setting_columns(known):
        if col == "study" or known[col].isna().all():
            continue
        if known[col].dropna().nunique() > 1:
            varying_lines.append(f"- `{col}`: {_values(known[col])}")
        else:
            fixed.append(f"`{col}` = {_values(known[col])}")
    seeds = known["seed"].dropna().astype(int).unique() if "seed" in known else []
    if len(seeds):
        varying_lines.append(f"- `seed`: {len(seeds)} seeds ({min(seeds)} to {max(seeds)})")
    text = "Varying settings:\n\n" + ("\n".join(varying_lines) or "- (none)") + "\n"
    if fixed:
        text += ("\n<details><summary>Fixed settings</summary>\n\n" + "; ".join(fixed)
                 + "\n\n</details>\n")
    return text


def _summary_view(summary: pd.DataFrame) -> pd.DataFrame:
    if summary.empty:
        return summary
    keys = [c for c in summary.columns if c not in (
        "n", "failed", "diverged", "not_converged", "coef_error_mean", "coef_error_median", "coef_error_ci_low",
        "coef_error_ci_high", "relative_error_median", "test_rmse_median", "n_iter_median", "converged_share",
        "max_grad_norm_median")]
    view = summary[keys].copy()
    view["n"] = summary["n"]
    view["failed"] = summary["failed"]
    view["diverged"] = summary["diverged"]
    if "not_converged" in summary:
        view["not converged"] = summary["not_converged"]
    view["coef_error median [95% CI]"] = [
        f"{_cell(m)} [{_cell(lo)}, {_cell(hi)}]" if lo == lo else _cell(m)
        for m, lo, hi in zip(summary["coef_error_median"], summary["coef_error_ci_low"],
                             summary["coef_error_ci_high"])
    ]
    view["coef_error mean"] = summary["coef_error_mean"]
    for col, head in (("test_rmse_median", "test RMSE median"), ("n_iter_median", "iterations median")):
        if col in summary:
            view[head] = summary[col]
    return view


def _paired_view(paired: pd.DataFrame) -> pd.DataFrame:
    if paired.empty:
        return paired
    stats_cols = ("n_pairs", "median", "median_baseline", "median_diff", "ci_low", "ci_high", "win_share",
                  "difference")
    keys = [c for c in paired.columns if c not in stats_cols]
    view = paired[keys].copy()
    view["pairs"] = paired["n_pairs"]
    view["median difference [95% CI]"] = [
        f"{_cell(m)} [{_cell(lo)}, {_cell(hi)}]" if lo == lo else _cell(m)
        for m, lo, hi in zip(paired["median_diff"], paired["ci_low"], paired["ci_high"])
    ]
    view["wins"] = [f"{100 * w:.0f}%" if w == w else "" for w in paired["win_share"]]
    view["difference"] = paired["difference"]
    return view


MAX_PIVOTS = 12


def _interval_text(m, lo, hi) -> str:
    return f"{_cell(m)} [{_cell(lo)}, {_cell(hi)}]" if lo == lo else _cell(m)


def _pivots(frame: pd.DataFrame, stats_from: str, cell) -> str:
    """One loss x fraction table per outlier kind (and per combination of other settings)."""
    from .style import label_order

    if frame.empty or not {"loss_label", "outliers", "fraction"} <= set(frame.columns):
        return ""
    keys = list(frame.columns[: list(frame.columns).index(stats_from)])
    extras = [k for k in keys if k not in ("loss_label", "outliers", "fraction", "baseline")]
    frame = frame.assign(_cell=[cell(r) for _, r in frame.iterrows()])
    parts, n = [], 0
    groups = frame.groupby(extras, dropna=False, sort=True) if extras else [((), frame)]
    for combo, part in groups:
        combo = combo if isinstance(combo, tuple) else (combo,)
        for kind, kpart in part.groupby("outliers", sort=True):
            n += 1
            if n > MAX_PIVOTS:
                continue
            wide = kpart.pivot_table(index="loss_label", columns="fraction", values="_cell", aggfunc="first")
            wide = wide.reindex(label_order(wide.index))
            wide.columns = [f"fraction {_cell(float(c))}" for c in wide.columns]
            head = f"**{kind}**" + "".join(f", {k} = {_cell(v)}" for k, v in zip(extras, combo))
            parts.append(head + "\n\n" + markdown_table(wide.reset_index().rename(columns={"loss_label": "loss"}),
                                                        max_rows=None))
    if n > MAX_PIVOTS:
        parts.append(f"_{n - MAX_PIVOTS} more tables in the CSV file._\n")
    return "\n".join(parts)


def _summary_pivots(summary: pd.DataFrame) -> str:
    def cell(r):
        text = _interval_text(r["coef_error_median"], r["coef_error_ci_low"], r["coef_error_ci_high"])
        if r.get("diverged", 0):
            text += f" ({int(r['diverged'])}/{int(r['n'])} diverged)"
        if r.get("not_converged", 0):
            text += f" ({int(r['not_converged'])} not converged, left out)"
        return text

    return _pivots(summary, "n", cell)


def _paired_pivots(paired: pd.DataFrame) -> str:
    def cell(r):
        text = _interval_text(r["median_diff"], r["ci_low"], r["ci_high"])
        return f"**{text}**" if r["difference"] != "not significant" else text

    return _pivots(paired, "n_pairs", cell)


def _coefficient_tables(runs: pd.DataFrame) -> str:
    """Median fitted coefficients per loss on each uncontaminated real data set (one-feature sets are drawn)."""
    from .figures import recorded_names_and_fits

    done = estimator_runs(runs)
    clean = done[clean_mask(done) & (done["dataset"] != "synthetic")]
    parts = []
    for dname in sorted(clean["dataset"].dropna().unique()):
        rows = clean[clean["dataset"] == dname]
        if (rows["n_features"] == 1).all():
            continue  # drawn as a figure
        d = int(rows["n_features"].dropna().iloc[0]) if rows["n_features"].notna().any() else 0
        names, published = recorded_names_and_fits(rows, d)
        table = []
        for label, part in rows.groupby("loss_label", sort=True):
            coefs = np.array([c for c in part["coef"] if c is not None and len(c) == d], dtype=float)
            if not len(coefs):
                continue
            b = float(np.median(part["intercept"].astype(float)))
            row = {"fit": label, "intercept": b, **dict(zip(names, np.median(coefs, axis=0)))}
            if part["mm_error"].notna().any():
                row["distance to MM"] = float(np.median(part["mm_error"]))
            table.append(row)
        for key, coef in published.items():
            table.append({"fit": f"published {key.replace('_', ' ')}", "intercept": coef[0],
                          **dict(zip(names, coef[1:]))})
        if table:
            parts.append(f"**{dname}** (median over jobs; slopes in the units of each feature)\n\n"
                         + markdown_table(pd.DataFrame(table), max_rows=None))
    return "\n".join(parts)


def _not_converged_reason(row) -> str:
    """Why a job is ``not_converged``, in a few words: where it stopped and with what gradient."""
    n_iter = row.get("n_iter")
    n_text = "" if n_iter is None or n_iter is pd.NA or n_iter != n_iter else str(int(n_iter))
    if row.get("model") not in (None, "gd"):
        # A reference solver: its status comes from the ConvergenceWarning it raised.
        return "ConvergenceWarning" + (f" after {n_text} iterations" if n_text else "")
    max_iter = row.get("max_iter")
    text = f"stopped at n_iter {n_text or '?'}"
    if isinstance(max_iter, (int, float, np.integer, np.floating)) and max_iter == max_iter:
        at_limit = n_text and int(n_text) >= int(max_iter)
        text += f" = max_iter {int(max_iter)}" if at_limit else f" (max_iter {int(max_iter)})"
    opt = row.get("optimality")
    if isinstance(opt, (int, float, np.floating)) and opt == opt:
        # The certificate: a distance to the minimizer in standardized units, or LAD's duality gap.
        return text + f", optimality certificate {_cell(float(opt))} above its tolerance"
    grad = row.get("final_grad_norm")
    if isinstance(grad, (int, float, np.floating)) and grad == grad:
        text += f", final gradient norm {_cell(float(grad))}"
    return text + " without an optimality certificate"


def _not_converged_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The ``not_converged`` jobs: job folder, loss (or reference model), data and why."""
    part = runs[runs["status"] == "not_converged"]
    cols = [c for c in ("job_dir", "loss_label", "model", "dataset", "outliers", "fraction", "seed") if c in part]
    table = part[cols].copy()
    table["reason"] = [_not_converged_reason(r) for _, r in part.iterrows()]
    return table


# ------------------------------------------------------------------ report
def render_report(*, study: str, counts: dict, runs: pd.DataFrame, summary: pd.DataFrame,
                  paired: pd.DataFrame, verdicts: list, figures: list, skipped: list, out_dir: Path,
                  sweep_label: str, sweep_files: list, unexpected: list, duplicates: int,
                  damaged: list = (), coverage: pd.DataFrame | None = None, classic: list = ()) -> str:
    """The text of ``report.md``; its last section is the codebook of the CSV files already in ``out_dir``.

    ``classic`` holds the lines of the section on the classic views
    (:func:`robustreg.report.classic.classic_markdown`), put before the software versions.
    """
    out_dir = Path(out_dir)
    lines = [f"# Study `{study}`", ""]
    lines += [
        f"Generated from the job records in `{sweep_label}` by `experiments/report.py`. "
        "Tables: [runs.csv](runs.csv) (one row per job), [summary.csv](summary.csv), [paired.csv](paired.csv); "
        "histories: `histories.parquet`.",
        "",
        "## What was run",
        "",
        "| expected | done | failed | diverged | not converged | missing |",
        "|---|---|---|---|---|---|",
        f"| {counts['expected']} | {counts['done']} | {counts['failed']} | {counts['diverged']} | "
        f"{counts.get('not_converged', 0)} | {counts['missing']} |",
        "",
        "Done jobs include the diverged and the not-converged ones. A not-converged job ended without the "
        "certificate that its fit is the loss's minimizer, and without diverging (gradient descent at `max_iter`, or a reference solver's "
        "`ConvergenceWarning`): it is left out of the error tables, the paired comparisons and the robustness "
        "rules, and kept in the convergence figures and the rules on gradient-descent dynamics (see the rules "
        "below); the jobs are listed under [Failed, not-converged and missing jobs]"
        "(#failed-not-converged-and-missing-jobs).",
        "",
        ("Expected jobs come from " + ", ".join(f"`{s}`" for s in sweep_files) + "."
         if sweep_files else "No `sweep.json` was found: the expected jobs are the jobs found."),
    ]
    if unexpected:
        lines.append(f"{len(unexpected)} record folder(s) are not listed in any `sweep.json`; they are counted.")
    if duplicates:
        lines.append(f"{duplicates} record(s) repeat the config hash of another record (the same job run twice).")
    if damaged:
        lines += ["", f"**{len(damaged)} record file(s) cannot be read**; their jobs are left out of this report "
                  "(counted missing where a `sweep.json` lists them), and the next run of the sweep does them again:",
                  "", *[f"- `{d}`" for d in damaged]]
    lines += ["", _grid(runs), ""]

    if coverage is not None and len(coverage):
        lines += ["## Interval coverage", "",
                  "Where the truth is known (synthetic data) and the fits give standard errors: the share of "
                  "95% normal intervals (estimate ± 1.96 standard errors) that hold the true coefficient, over "
                  "the compared jobs of each group ([coverage.csv](coverage.csv)). Near 0.95, the estimator can "
                  "be trusted to report its own uncertainty; far below, its intervals are too narrow or "
                  "centred on a biased estimate.", "",
                  markdown_table(coverage), ""]
    lines += ["## Claims", "",
              "Each verdict is computed from this study's records by the rule printed below the table.", "",
              "| claim | statement | verdict | evidence in this study |", "|---|---|---|---|"]
    for v in verdicts:
        lines.append(f"| {v.claim} | {_cell(CLAIMS[v.claim])} | **{v.verdict}** | {_cell(v.evidence)} |")
    lines += ["", "<details><summary>Rules</summary>", ""]
    lines += ["Each rule names the jobs each of its parts uses: "
              + "; ".join(f"*{name}* are {text}" for name, text in SUBSETS.items()) + ".", ""]
    for v in verdicts:
        lines.append(f"- **{v.claim}**: " + v.rule.replace("\n", " "))
    lines += ["", "</details>", ""]
    flagged = runs["redescending"].fillna(False).astype(bool) if "redescending" in runs else pd.Series(False, index=runs.index)
    redescending = sorted({str(v) for v in runs.loc[flagged, "loss"].dropna()}) if "loss" in runs else []
    if redescending:
        lines += [f"Redescending losses in this study ({', '.join(redescending)}) are non-convex: their fit depends "
                  "on where gradient descent starts. They need a high-breakdown start (`model.init=lts` or `s`) and "
                  "a robust scale (`model.scale=s`); started from least squares or L1 they stay near that start "
                  "when there are bad leverage points.", ""]

    lines += ["## Parameter error by loss and contamination", "",
              f"`coef_error` is the Euclidean distance of the fitted slopes from the reference slopes "
              f"(coefficient units). Intervals: {100 * CONFIDENCE:g}% percentile bootstrap of the median across "
              f"seeds ({N_RESAMPLES} resamples, generator seeded with {RANDOM_STATE} for each group); a "
              "non-finite error counts as infinite. Not-converged jobs are left out (counted in the "
              "`not converged` column); diverged jobs count.", "",
              "Median `coef_error` [95% CI] by loss and contamination fraction:", "",
              _summary_pivots(summary), "",
              "<details><summary>All columns</summary>", "",
              markdown_table(_summary_view(summary), note="; all rows in [summary.csv](summary.csv)"),
              "</details>", ""]
    lines += ["## Each loss against L2, paired", "",
              "Pairs share the data, the seed and every setting that varies for some loss, such as the step "
              "(reference solvers are paired with exact least squares, `sklearn_ols`, when the study has it); "
              "not-converged jobs are not paired. "
              "Difference: loss minus baseline, so negative means closer "
              "to the reference; `wins`: share of seeds where the loss has the smaller error; `difference`: "
              "`lower`/`higher` when the 95% interval of the median difference excludes 0.", "",
              "Median paired difference [95% CI] by loss and contamination fraction (bold: the interval excludes "
              "0):", "",
              _paired_pivots(paired), "",
              "<details><summary>All columns</summary>", "",
              markdown_table(_paired_view(paired), note="; all rows in [paired.csv](paired.csv)"),
              "</details>", ""]

    lines += ["## Figures", ""]
    if figures:
        for f in figures:
            png, pdf = (Path(p).relative_to(out_dir).as_posix() for p in f.files[:2])
            lines += [f"### {f.title}", "", f"![{f.title}]({png})", "",
                      (f.caption + " " if f.caption else "") + f"[PDF]({pdf})", ""]
    else:
        lines += ["_No figure could be drawn._", ""]
    if skipped:
        lines += ["Not drawn:", ""] + [f"- `{s.name}`: {s.reason}" for s in skipped] + [""]
    coef_tables = _coefficient_tables(runs)
    if coef_tables:
        lines += ["## Real data: fitted coefficients", "", coef_tables, ""]

    lines += ["## Failed, not-converged and missing jobs", ""]
    failed = runs[runs["status"] == "failed"]
    missing = runs[runs["status"] == "missing"]
    not_converged = _not_converged_table(runs)
    if failed.empty and missing.empty and not_converged.empty:
        lines += ["None: every expected job finished and converged or diverged.", ""]
    if len(failed):
        cols = [c for c in ("job_dir", "loss_label", "outliers", "fraction", "seed", "error") if c in failed]
        if "overrides" in failed and failed["overrides"].fillna("").ne("").any():
            cols.append("overrides")  # a job that failed before its settings were known
        lines += [f"Failed ({len(failed)}):", "",
                  markdown_table(failed[cols], max_rows=MAX_JOB_ROWS, note="; all in runs.csv"), ""]
    if len(not_converged):
        lines += [f"Not converged ({len(not_converged)}: done, but left out of the error tables, the paired "
                  "comparisons and the robustness rules):", "",
                  markdown_table(not_converged, max_rows=MAX_JOB_ROWS, note="; all in runs.csv"), ""]
    if len(missing):
        lines += [f"Missing ({len(missing)}: expected, but neither `metrics.json` nor `failure.json`):", "",
                  markdown_table(missing[["job_dir", "overrides"]], max_rows=MAX_JOB_ROWS,
                                 note="; all in runs.csv"), ""]

    lines += ["## Methods", "",
              "- Convergence: the relative objective gap is (f - f*) / |f*| with f* the lowest objective reached "
              "by any job with the same data, seed, loss and objective settings; curves are medians with "
              "interquartile bands over seeds, and a job that stopped keeps its last value.",
              f"- `settle_iter` (rule C5): the first iteration after which the objective stays within "
              f"{SETTLE_TOL:g} of its initial gap above the lowest objective of its history.",
              "- Oscillation (rule C2): over the second half of a history, the share of iterations that raise the "
              "objective and the median gradient norm relative to the first.",
              ""]
    lines += list(classic)
    versions = software_versions()
    recorded = sorted(runs["package_version"].dropna().unique()) if "package_version" in runs else []
    lines += ["## Software", "",
              ", ".join(f"{k} {v}" for k, v in versions.items()) + "."]
    if recorded:
        lines.append(f"The records were written by robustreg {', '.join(recorded)}.")
    lines.append("")
    # Last: the columns of the CSV files written into out_dir before this report (raises KeyError for a
    # column without a codebook entry).
    lines.append(codebook_markdown(csv_columns(out_dir)))
    return "\n".join(lines)


def report_json(study: str, counts: dict, verdicts: list) -> str:
    """The machine-readable digest of a report, read by :func:`write_index`."""
    return json.dumps({"study": study, "counts": counts,
                       "verdicts": {v.claim: v.verdict for v in verdicts}}, indent=1, sort_keys=True) + "\n"


def report_digest(results_dir, study: str) -> str | None:
    """SHA-256 of a study's ``report.json`` (None when there is none): what the findings were computed from."""
    path = Path(results_dir) / study / REPORT_JSON
    return file_digest(path) if path.is_file() else None


def write_index(results_dir) -> Path:
    """(Re)write ``results_dir/README.md``: one line per study report found in its sub-folders.

    A study report is a folder holding ``report.md`` and ``report.json``.
    The line links the report and gives the job counts and verdict tally.
    Reports written side by side each call this after writing their own
    ``report.json``; a lock on the folder makes the last of them see all.
    """
    results_dir = Path(results_dir)
    fd = os.open(results_dir, os.O_RDONLY)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        return _write_index_locked(results_dir)
    finally:
        os.close(fd)  # releases the lock


def _write_index_locked(results_dir: Path) -> Path:
    rows = []
    for sub in sorted(p for p in results_dir.iterdir() if p.is_dir()):
        digest = sub / REPORT_JSON
        if not (digest.is_file() and (sub / "report.md").is_file()):
            continue
        try:
            info = json.loads(digest.read_text())
        except ValueError:
            continue
        c = info.get("counts", {})
        tally = pd.Series(list(info.get("verdicts", {}).values()), dtype=object).value_counts()
        verdict_text = ", ".join(f"{k} {int(tally[k])}" for k in VERDICTS if k in tally)
        rows.append(f"| [{info.get('study', sub.name)}]({sub.name}/report.md) | {c.get('expected', '')} | "
                    f"{c.get('done', '')} | {c.get('failed', '')} | {c.get('diverged', '')} | "
                    f"{c.get('not_converged', '')} | {c.get('missing', '')} | {verdict_text} |")
    text = []
    findings = results_dir / "findings.json"  # robustreg.report.findings.FINDINGS_JSON
    if findings.is_file():
        try:
            info = json.loads(findings.read_text())
        except ValueError:
            info = {}
        stale = [s for s, d in info.get("reports", {}).items()
                 if d != report_digest(results_dir, s)]
        if stale:
            text += [f"> **Stale:** the report of {', '.join(stale)} changed after these findings were computed; "
                     "`make findings` computes them again.", ""]
        text += [info.get("markdown", ""), ""]
    text += ["# Studies" if text else "# Results", "",
             "One report per study, generated by `make report STUDY=NAME` from the job records in "
             "`results/runs/NAME`.", ""]
    if rows:
        text += ["| study | expected | done | failed | diverged | not converged | missing | claims |",
                 "|---|---|---|---|---|---|---|---|", *rows]
    else:
        text.append("_No study report yet._")
    path = results_dir / "README.md"
    atomic_write(path, "\n".join(text) + "\n")
    return path
