"""The findings page: each claim judged once, on the records of every default study together.

:func:`make_findings` collects the sweep folders of the given studies,
pools their runs tables (the study is a setting: pairs, ratios and
settings never cross studies), and applies the rules of
:mod:`robustreg.report.verdicts` to the pool.  Each pooled verdict is
computed again on two disjoint halves of the seeds (even and odd seeds of
each study; a study part that has one seed only, such as a classic data
set fitted as it is, is deterministic and goes into both halves): a verdict
that differs between the halves is shown as unstable, with both results.

The page, ``results/README.md``, gives first the answer (one row per claim:
verdict, stability, why, evidence), then the headline figures, the price of
robustness (efficiency against empirical breakdown), each claim's evidence
by study with links to the figures and tables behind it, and the studies'
index.  Its text is kept in ``findings.json`` beside it, so that the index
of studies, rewritten after each study's report, keeps it (and says when a
study's report changed after the findings were computed).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..study.record import SWEEP, atomic_write, read_json
from .collect import collect
from .markdown import report_digest, write_index
from .tables import add_history_metrics
from .verdicts import CLAIMS, NOT_TESTED, RULES, Verdict, evaluate_claims

__all__ = ["FINDINGS_JSON", "Finding", "FindingsRun", "make_findings", "pooled_verdicts", "seed_halves", "why_sentence"]

FINDINGS_JSON = "findings.json"
#: The figures (file stems, globbed in each study's figures/ folder) and tables that show each claim's evidence.
EVIDENCE = {
    "C1": (("error_vs_fraction", "grad_norm", "sensitivity", "breakdown"), ("paired.csv", "summary.csv")),
    "C2": (("convergence", "step_map"), ("runs.csv",)),
    "C3": (("convergence", "step_map"), ("runs.csv",)),
    "C4": (("error_vs_fraction", "step_map", "sensitivity", "breakdown"), ("summary.csv",)),
    "C5": (("convergence", "step_map"), ("paired.csv", "runs.csv")),
    "C6": (("error_vs_fraction", "sensitivity", "breakdown"), ("paired.csv",)),
    "C7": (("penalty",), ("summary.csv",)),
    "C8": (("error_vs_fraction", "real_data", "weights", "sensitivity", "breakdown"), ("summary.csv",)),
}
#: The headline figures: (study, figure stem, what it shows).
HEADLINES = (
    ("contamination", "error_vs_fraction", "Parameter error against contamination"),
    ("sensitivity", "sensitivity", "Sensitivity curve: error against outlier size"),
    ("breakdown", "breakdown", "Empirical breakdown"),
    ("efficiency", "efficiency", "The price of robustness on clean data"),
    ("real_data", "weights", "Which rows each fit trusts on the classic data sets"),
    (None, "loss_shapes", "rho, psi and the weight psi(r)/r of every loss"),
)


@dataclass(frozen=True)
class Finding:
    """One claim's pooled verdict, its verdicts on the two seed halves, and the per-study verdicts behind it."""

    claim: str
    pooled: Verdict
    halves: tuple
    per_study: dict  # study -> Verdict

    @property
    def stable(self) -> bool:
        return self.halves[0].verdict == self.halves[1].verdict

    def as_dict(self) -> dict:
        return {"claim": self.claim, "verdict": self.pooled.verdict, "stable": self.stable,
                "halves": [h.verdict for h in self.halves], "why": why_sentence(self.pooled),
                "evidence": self.pooled.evidence,
                "studies": {s: v.verdict for s, v in self.per_study.items()}}


def why_sentence(verdict: Verdict) -> str:
    """The paragraph of the verdict's rule that decided it (``"Qualified: ..."``), without its label."""
    head = verdict.verdict.capitalize() + ":"
    for paragraph in verdict.rule.split("\n"):
        if paragraph.startswith(head):
            text = paragraph[len(head):].strip()
            # A bare "otherwise." says nothing on its own: the measurements that led there follow.
            return text if len(text) > 30 else f"{text} {'; '.join(verdict.evidence.split('; ')[:2])}."
    return verdict.evidence.split("; ")[0]


def seed_halves(runs: pd.DataFrame) -> tuple:
    """Two disjoint halves of the seeds: even and odd seeds of each study part that varies the seed.

    A part (study x data set) with one seed is deterministic and goes into both halves.
    """
    seed = pd.to_numeric(runs["seed"], errors="coerce").fillna(0).astype(int)
    keys = [c for c in ("study", "dataset") if c in runs]
    n_seeds = runs.assign(_seed=seed).groupby(keys, dropna=False)["_seed"].transform("nunique")
    single = n_seeds <= 1
    return runs[single | (seed % 2 == 0)], runs[single | (seed % 2 == 1)]


def pooled_verdicts(runs: pd.DataFrame) -> list:
    """The rules on the pooled runs table (with a ``study`` column), and on each half of its seeds."""
    first, second = seed_halves(runs)
    whole, a, b = evaluate_claims(runs), evaluate_claims(first), evaluate_claims(second)
    return [(w, (x, y)) for w, x, y in zip(whole, a, b)]


def _study_part(sweep_dir: Path, results_dir: Path, report: bool, figures: bool):
    """One study's part of the pool: ``(study, runs table, its verdicts, report line, damaged record files)``.

    With ``report``, the study's report is written first (into ``results_dir/<sweep folder>``, its
    figures drawn in this process) and lends its table and verdicts; otherwise the records are collected
    (the report's histories file lends the histories).  Job folders are prefixed by the study.
    """
    if report:
        from . import make_report

        rep = make_report(sweep_dir, results_dir / sweep_dir.name, progress=False, figures=figures, n_jobs=1)
        coll, runs, verdicts = rep.collection, rep.runs, rep.verdicts
        line = f"report: {rep.out_dir / 'report.md'} ({len(rep.figures)} figures)"
    else:
        coll = collect(sweep_dir, progress=False, consolidated=results_dir / sweep_dir.name / "histories.parquet")
        runs = add_history_metrics(coll.runs, coll.histories)
        verdicts, line = evaluate_claims(runs), None
    runs = runs.assign(study=coll.study, job_dir=coll.study + "/" + runs["job_dir"].astype(str))
    return coll.study, runs, verdicts, line, [str(coll.sweep_dir / d) for d in coll.damaged]


def _size(sweep_dir: Path) -> int:
    """The number of jobs of a sweep (its manifest), to start the largest studies first."""
    try:
        return int(read_json(sweep_dir / SWEEP).get("n_jobs", 0))
    except (OSError, ValueError, AttributeError, TypeError):
        return 0


def _figures(results_dir: Path, study: str, stems) -> list:
    out = []
    for stem in stems:
        out += sorted((results_dir / study / "figures").glob(f"{stem}*.png"))
    return out


def _links(results_dir: Path, study: str, claim: str) -> str:
    stems, tables = EVIDENCE[claim]
    figs = _figures(results_dir, study, stems)
    parts = [f"[{p.stem}]({study}/figures/{p.name})" for p in figs[:4]]
    if len(figs) > 4:
        parts.append(f"{len(figs) - 4} more in [{study}/report.md]({study}/report.md#figures)")
    parts += [f"[{t}]({study}/{t})" for t in tables if (results_dir / study / t).is_file()]
    return ", ".join(parts)


def _price_table(results_dir: Path) -> list:
    """Efficiency at the normal against empirical breakdown, one row per estimator (from the two studies' tables)."""
    eff_path, bd_path = results_dir / "efficiency" / "efficiency.csv", results_dir / "breakdown" / "breakdown.csv"
    if not (eff_path.is_file() and bd_path.is_file()):
        return []
    eff = pd.read_csv(eff_path)
    eff = eff[eff["noise"] == "gaussian"].set_index("loss_label")
    bd = pd.read_csv(bd_path)
    labels = list(dict.fromkeys([*eff.index, *bd["loss_label"]]))

    def g(x):
        return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"

    def brk(label, kind):
        row = bd[(bd["loss_label"] == label) & (bd["outliers"] == kind)]
        if row.empty:
            return ""
        f = row["breakdown_fraction"].iloc[0]
        return f"none up to {g(row['largest_fraction'].iloc[0])}" if pd.isna(f) else g(float(f))

    lines = ["| estimator | efficiency at the normal [95% interval] | textbook | breaks down at (vertical) | "
             "breaks down at (leverage) |", "|---|---|---|---|---|"]
    for label in labels:
        e = eff.loc[label] if label in eff.index else None
        eff_text = "" if e is None else f"{g(e['efficiency'])} [{g(e['ci_low'])}, {g(e['ci_high'])}]"
        book = "" if e is None else g(e["textbook"])
        lines.append(f"| {label} | {eff_text} | {book} | {brk(label, 'vertical')} | {brk(label, 'leverage')} |")
    return lines


def render_findings(findings: list, results_dir: Path, studies: list) -> str:
    """The findings part of ``results/README.md`` (markdown)."""
    n_half = "even and odd seeds"
    lines = ["# Findings", "",
             "Each claim of the article judged once, on the job records of every default study together "
             f"({', '.join(f'[{s}]({s}/report.md)' for s in studies)}). The study is a setting: jobs are paired and "
             "compared only within a study. The rules are those printed in each study's report "
             "(`robustreg.report.verdicts`). **Stable** means the same verdict on two disjoint halves of the seeds "
             f"({n_half}; a classic data set fitted as it is has one seed and is in both).", "",
             "| claim | verdict | stable on seed halves | why | evidence |", "|---|---|---|---|---|"]
    for f in findings:
        stable = "yes" if f.stable else f"**no**: {f.halves[0].verdict} / {f.halves[1].verdict}"
        bearing = [s for s, v in f.per_study.items() if v.verdict != NOT_TESTED]
        links = ", ".join(f"[{s}](#{f.claim.lower()}-evidence)" for s in bearing) or "no study tests it"
        lines.append(f"| **{f.claim}** {CLAIMS[f.claim]} | **{f.pooled.verdict}** | {stable} | "
                     f"{why_sentence(f.pooled)} | {links} |")
    lines += ["", "## Headline figures", ""]
    for study, stem, title in HEADLINES:
        rel = f"figures/{stem}.png" if study is None else f"{study}/figures/{stem}.png"
        if (results_dir / rel).is_file():
            lines += [f"**{title}**" + (f" ([{study}]({study}/report.md))" if study else ""), "",
                      f"![{title}]({rel})", ""]
    price = _price_table(results_dir)
    if price:
        lines += ["## The price of robustness", "",
                  "Efficiency on clean Gaussian data ([efficiency](efficiency/report.md)) against the empirical "
                  "breakdown fraction ([breakdown](breakdown/report.md)): the first contamination fraction at which "
                  "the median error exceeds 3 times the clean one. A blank: the estimator is not in that study.", "",
                  *price, ""]
    lines += ["## Evidence by claim", ""]
    for f in findings:
        lines += [f'<a id="{f.claim.lower()}-evidence"></a>', f"### {f.claim}: {f.pooled.verdict}", "",
                  f"Pooled: {f.pooled.evidence}", ""]
        if not f.stable:
            lines += [f"Seed halves: even seeds **{f.halves[0].verdict}** ({f.halves[0].evidence}); odd seeds "
                      f"**{f.halves[1].verdict}** ({f.halves[1].evidence}).", ""]
        for study, v in f.per_study.items():
            if v.verdict == NOT_TESTED:
                continue
            links = _links(results_dir, study, f.claim)
            lines.append(f"- [{study}]({study}/report.md) ({v.verdict}): {v.evidence}"
                         + (f". Shown in: {links}" if links else ""))
        untested = [s for s, v in f.per_study.items() if v.verdict == NOT_TESTED]
        if untested:
            lines.append(f"- not tested in: {', '.join(untested)}")
        lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True)
class FindingsRun:
    """What :func:`make_findings` produced: the findings, the reports it wrote, and the damaged record files."""

    findings: list
    reports: list  # one line per report written
    damaged: list  # record files that could not be read (their jobs are left out)


def make_findings(sweep_dirs, results_dir, figures: bool = True, reports=(), losses=None) -> FindingsRun:
    """Pool the studies' records, judge each claim, and rewrite ``results_dir/README.md`` with the findings.

    ``reports`` names the studies (sweep folder names) whose report is written first, as
    :func:`robustreg.report.make_report` writes it: the report and the pool then read the records once.
    Studies are handled side by side in forked workers (the largest first; only tables travel back).
    ``losses`` (label -> loss) are drawn in the loss-shape figure, with ``figures``.
    """
    from .collect import ReportError

    results_dir = Path(results_dir)
    sweeps = [Path(s) for s in sweep_dirs]
    names = [s.name for s in sweeps]
    unknown = sorted(set(reports) - set(names))
    if unknown:
        raise ReportError(f"--report {unknown[0]} is not one of the given studies; allowed: {', '.join(names)}")
    from .shapes import draw_loss_shapes

    tasks = [(s, results_dir, s.name in reports, figures) for s in sweeps]
    shapes_wanted = figures and losses is not None
    n_workers = min(len(tasks) + shapes_wanted, os.cpu_count() or 1)
    if n_workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=multiprocessing.get_context("fork")) as pool:
            order = sorted(range(len(tasks)), key=lambda k: -_size(sweeps[k]))
            futures = {k: pool.submit(_study_part, *tasks[k]) for k in order}
            if shapes_wanted:
                shapes = pool.submit(draw_loss_shapes, results_dir, losses)
            parts = [futures[k].result() for k in range(len(tasks))]
            if shapes_wanted:
                shapes.result()
    else:
        parts = [_study_part(*t) for t in tasks]
        if shapes_wanted:
            draw_loss_shapes(results_dir, losses)
    studies = [study for study, *_ in parts]
    frames = [runs for _, runs, *_ in parts]
    pooled = pd.concat(frames, ignore_index=True, sort=False)
    per_study = {study: {v.claim: v for v in verdicts} for study, _, verdicts, *_ in parts}
    findings = [Finding(whole.claim, whole, halves, {s: per_study[s][whole.claim] for s in studies})
                for whole, halves in pooled_verdicts(pooled)]
    text = render_findings(findings, results_dir, studies)
    info = {"markdown": text, "findings": [f.as_dict() for f in findings],
            "reports": {s: report_digest(results_dir, s) for s in studies}}
    atomic_write(results_dir / FINDINGS_JSON, json.dumps(info, indent=1, sort_keys=True) + "\n")
    write_index(results_dir)
    return FindingsRun(findings, [line for *_, line, _ in parts if line], [d for *_, damaged in parts for d in damaged])


assert len(RULES) == len(EVIDENCE)
