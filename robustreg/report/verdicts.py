"""Verdicts on the article's claims, computed from a study's job table by explicit rules.

One small function per claim.  Each takes the runs table (one row per job,
as built by :func:`robustreg.report.collect` and
:func:`robustreg.report.tables.add_history_metrics`), looks only at the jobs
that bear on its claim, and returns a :class:`Verdict`: ``"supported"``,
``"qualified"``, ``"contradicted"`` or ``"not tested"`` (this study has no
job that bears on the claim), the evidence it measured, and its rule (the
function's docstring, which the report prints).

Conventions shared by the rules:

* two subsets of the finished jobs, chosen by
  :func:`robustreg.report.collect.estimator_runs` and
  :func:`~robustreg.report.collect.dynamics_runs`: *estimator jobs* (status
  ``ok`` or ``diverged``: a ``not_converged`` fit is left out) for what a
  rule says about estimates (errors, robustness, paired comparisons,
  fitted weights), and *dynamics jobs* (the done jobs of plain gradient
  descent, ``model.solver=gd``, ``not_converged`` included) for what it says about gradient descent (gradient norms,
  oscillation, convergence, divergence, iterations); each rule names the
  subset each of its parts uses;
* *clean* jobs have outlier kind ``none`` or fraction 0; *contaminated*
  jobs are the others;
* the *strongest* contamination of a kind is its highest fraction (and,
  among those, its highest magnitude);
* a *setting* is every varying setting but the contamination and the loss
  (for example the step size); ratios "contaminated / clean" are taken
  within a setting and the largest is reported;
* losses are named by their labels: ``l1``, ``l2``, ``smooth_l1`` are the
  article's losses with their default tuning constants;
* "significantly lower" means the 95% bootstrap interval of the median
  paired difference (same data, same seed, same optimizer settings) lies
  below 0; paired comparisons need at least ``MIN_PAIRS`` = 5 pairs.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .collect import done_runs, dynamics_runs, estimator_runs
from .tables import (clean_mask, compare, group_frames, label_varying, paired_differences, paired_values,
                     setting_columns)

__all__ = ["CLAIMS", "RULES", "VERDICTS", "Verdict", "evaluate_claims", "rule_text"]

SUPPORTED, QUALIFIED, CONTRADICTED, NOT_TESTED = "supported", "qualified", "contradicted", "not tested"
VERDICTS = (SUPPORTED, QUALIFIED, CONTRADICTED, NOT_TESTED)

MIN_PAIRS = 5
NOT_ROBUST_RATIO = 3.0
GRAD_GROWTH_LIMIT = 2.0
OSC_INCREASE_SHARE = 0.1
OSC_GRAD_FLOOR = 0.01
DIMINISHING_TOLERANCE = 1.1
BREAKDOWN_FACTOR = 3.0
#: Outlier kinds that move only the response.
RESPONSE_KINDS = ("vertical", "heavy_tail")
DIMINISHING_STEPS = ("auto", "invscaling")
#: Starting fits of high breakdown point (a redescending loss needs one).
ROBUST_INITS = ("lts", "s")
#: Classic data sets whose documented outliers are bad leverage points.
LEVERAGE_SETS = ("stars_cyg", "hbk")

#: The claims, in the article's words (C8 is what a careful experiment adds).
CLAIMS = {
    "C1": "L1 has a stable, bounded gradient for any input, so it never causes gradient explosion and gives a "
          "robust solution.",
    "C2": "L1 is not differentiable at zero; gradient descent that lands there cannot continue (with a fixed "
          "step it oscillates instead of converging).",
    "C3": "L2 is smooth everywhere, easy to differentiate, and gives a stable solution.",
    "C4": "L2 is not robust: points far from the truth give large losses and large gradients, which can make "
          "gradient descent explode; with unbounded features the learning rate must be tuned carefully.",
    "C5": "Smooth L1 behaves like L2 for small residuals (smaller gradients near the optimum, so it converges "
          "faster than L1) and like L1 for large ones (bounded gradients, no explosion).",
    "C6": "Smooth L1 is more robust to outliers than L2.",
    "C7": "An L1 penalty on the weights produces sparse weights; an L2 penalty keeps weights small and evenly "
          "spread.",
    "C8": "No convex loss resists bad leverage points; a redescending loss started from a robust fit does "
          "(not in the article).",
}


@dataclass(frozen=True)
class Verdict:
    """The verdict on one claim."""

    claim: str
    verdict: str
    evidence: str
    rule: str

    def as_dict(self) -> dict:
        return {"claim": self.claim, "text": CLAIMS[self.claim], "verdict": self.verdict,
                "evidence": self.evidence, "rule": self.rule}


def rule_text(func) -> str:
    """The rule of a verdict function: its docstring, as one paragraph per line."""
    doc = inspect.cleandoc(func.__doc__ or "")
    paragraphs = [" ".join(p.split()) for p in doc.split("\n\n") if p.strip()]
    return "\n".join(paragraphs)


def _verdict(func, verdict: str, evidence) -> Verdict:
    claim = func.__name__.split("_")[0].upper()
    text = "; ".join(evidence) if isinstance(evidence, (list, tuple)) else str(evidence)
    return Verdict(claim, verdict, text, rule_text(func))


# ------------------------------------------------------------------ helpers
def _g(x) -> str:
    """A number in 3 significant digits (``inf``, ``nan`` spelled out)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.3g}"


def _gd(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["model"] == "gd"] if "model" in runs else runs


def _estimator_gd(runs: pd.DataFrame) -> pd.DataFrame:
    """The gradient-descent estimator jobs (``ok`` or ``diverged``)."""
    return _gd(estimator_runs(runs))


def _dynamics_gd(runs: pd.DataFrame) -> pd.DataFrame:
    """The done plain gradient-descent jobs (``model.solver=gd``), ``not_converged`` included."""
    return _gd(dynamics_runs(runs))


#: Why a rule on gradient-descent dynamics is not tested in an estimator study.
NO_PLAIN_GD = ("no plain gradient-descent job (model.solver=gd): an estimator study; the convergence and "
               "step_size studies test what gradient descent does")


def _done_gd(runs: pd.DataFrame) -> pd.DataFrame:
    """Every done GDRegressor job, whatever its solver."""
    return _gd(done_runs(runs))


def _left_out(frame: pd.DataFrame, what: str, part: str) -> list:
    """Evidence naming the not-converged jobs among ``frame`` that ``part`` leaves out (none: no text)."""
    n = int((frame["status"] == "not_converged").sum()) if "status" in frame else 0
    return [f"{n} {what} job(s) did not converge: left out of {part}"] if n else []


def _label(runs: pd.DataFrame, label: str) -> pd.DataFrame:
    return runs[runs["loss_label"] == label]


def _contaminated(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[~clean_mask(runs)]


def _kinds(runs: pd.DataFrame) -> list:
    return sorted(_contaminated(runs)["outliers"].dropna().unique()) if len(runs) else []


def _strongest(runs: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The jobs under the strongest ``kind`` contamination: the largest fraction, then the largest magnitude."""
    return runs.iloc[_strongest_rows(_levels(runs, kind), np.arange(len(runs)))]


def _levels(runs: pd.DataFrame, kind: str):
    """Row arrays of the contamination levels: (rows contaminated by ``kind``, fraction, magnitude or None)."""
    frac = pd.to_numeric(runs["fraction"], errors="coerce").to_numpy(dtype=float)
    hit = (runs["outliers"] == kind).to_numpy(dtype=bool) & (frac > 0)
    mag = pd.to_numeric(runs["magnitude"], errors="coerce").to_numpy(dtype=float) if "magnitude" in runs else None
    return hit, frac, mag


def _strongest_rows(levels, rows: np.ndarray) -> np.ndarray:
    """Of the row positions ``rows``, those of :func:`_strongest` (``levels`` from :func:`_levels`)."""
    hit, frac, mag = levels
    rows = rows[hit[rows]]
    if rows.size:
        rows = rows[frac[rows] == frac[rows].max()]
        if mag is not None and not np.all(np.isnan(mag[rows])):
            rows = rows[mag[rows] == np.nanmax(mag[rows])]
    return rows


def _strength(part: pd.DataFrame) -> str:
    frac = part["fraction"].iloc[0]
    mag = part["magnitude"].iloc[0] if "magnitude" in part else math.nan
    return f"fraction {_g(frac)}" + (f", magnitude {_g(mag)}" if mag == mag else "")


def _context_columns(runs: pd.DataFrame) -> list:
    """Varying settings other than the contamination and the loss (the step, the data set ...)."""
    skip = {"outliers", "fraction", "magnitude", "outlier_params", "loss_label"}
    return label_varying(runs, [c for c in setting_columns(runs) if c not in skip])


def _median(values) -> float:
    """Median with a missing or non-finite outcome counted as +inf (a fit that overflowed)."""
    x = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    x = np.where(np.isnan(x), np.inf, x)
    return float(np.median(x)) if x.size else math.nan


def _worst_ratio(runs: pd.DataFrame, kind: str, column: str, context: list, subset=None) -> float:
    """Largest over settings of median(column) under the strongest ``kind`` / median(column) on clean data.

    The strongest contamination is found among all of ``runs``; ``subset``,
    when given, then chooses the jobs whose values are measured (so a level
    whose jobs all fall out of the subset is skipped, not replaced by a weaker one).
    ``subset`` keeps or drops rows one by one (``estimator_runs``, ``dynamics_runs``).
    The settings are the groups of ``context`` (:func:`group_frames`), each
    measured through row arrays made once (:func:`_strongest_rows`).
    """
    n = len(runs)
    if n == 0:
        return math.nan
    kept = np.ones(n, dtype=bool)
    if subset is not None:
        kept[:] = False
        kept[subset(runs.assign(_row=np.arange(n)))["_row"].to_numpy(dtype=int)] = True
    clean = clean_mask(runs).to_numpy(dtype=bool)
    levels = _levels(runs, kind)
    values = runs[column].to_numpy()
    if context:
        groups = runs.groupby(context, dropna=False, sort=True, observed=True).indices.values()
    else:
        groups = [np.arange(n)]
    ratios = []
    for rows in groups:
        base_rows = rows[clean[rows] & kept[rows]]
        top_rows = _strongest_rows(levels, rows)
        top_rows = top_rows[kept[top_rows]]
        if base_rows.size == 0 or top_rows.size == 0:
            continue
        base = _median(values[base_rows])
        top = _median(values[top_rows])
        # A clean error at rounding level (the reference is this loss's own clean fit) grew without bound.
        if base > 1e-9 * abs(top) and math.isfinite(base):
            ratios.append(top / base)
        elif top > 0:
            ratios.append(math.inf)
        else:
            ratios.append(1.0)
    return max(ratios) if ratios else math.nan


def _shared_settings(runs: pd.DataFrame) -> list:
    """The keys two jobs of different losses must share to be paired (with the seed): the contamination and
    every setting that varies for some loss."""
    always = [c for c in ("outliers", "fraction") if c in runs]
    return always + [c for c in label_varying(runs, setting_columns(runs)) if c not in always]


def _compare_at(runs: pd.DataFrame, label: str, baseline: str, value: str = "coef_error") -> dict | None:
    """Paired comparison of two losses' estimates (estimator jobs only)."""
    pairs = paired_values(runs, label, baseline, value, keys=_shared_settings(runs), subset=estimator_runs)
    if len(pairs) < MIN_PAIRS:
        return None
    return compare(pairs)


def _cmp_text(c: dict | None, a: str, b: str) -> str:
    if c is None:
        return f"fewer than {MIN_PAIRS} {a}/{b} pairs"
    return (f"median coef_error {a} {_g(c['median'])} vs {b} {_g(c['median_baseline'])}, paired difference "
            f"{_g(c['median_diff'])} [{_g(c['ci_low'])}, {_g(c['ci_high'])}] ({c['difference']}, n={c['n_pairs']})")


# --------------------------------------------------------------------- rules
def c1_l1_bounded_gradient(runs: pd.DataFrame) -> Verdict:
    """C1 uses the L1 and L2 gradient-descent jobs.
    For every contaminated outlier kind, at its strongest contamination, it measures (a) the growth of L1's
    largest gradient norm over the clean jobs of the same setting (median max_grad_norm, contaminated / clean),
    (b) the growth of L1's parameter error over the clean jobs (median coef_error, contaminated / clean) and
    (c) L1's parameter error against L2's (paired). L1 is robust under a kind when its error grew less than
    3 times and is significantly lower than L2's (without L2 jobs: when its error grew less than 3 times).
    Jobs: the gradient growth (a) uses the dynamics jobs (plain gradient descent, not_converged included);
    the divergence count every done job; the robustness parts (b) and (c) use the estimator jobs (ok or diverged; not_converged left out).

    Not tested: no L1 job on contaminated data.

    Contradicted: an L1 job diverged; or, under response outliers (vertical, heavy_tail), L1's gradient grew
    more than 2 times, or its error grew 3 times or more, or its error is significantly higher than L2's.

    Supported: under every contaminated kind the gradient grew at most 2 times and L1 is robust.

    Qualified: otherwise, typically bounded and robust under response outliers but not under leverage points,
    where the gradient x * sign(r) grows with |x| and L1's error grows with the leverage.
    """
    gd = _done_gd(runs)
    l1, l2 = _label(gd, "l1"), _label(gd, "l2")
    if _contaminated(l1).empty:
        return _verdict(c1_l1_bounded_gradient, NOT_TESTED, "no L1 job on contaminated data")
    context = _context_columns(gd)
    evidence, contradicted, qualified = [], False, False
    n_div = int(l1["diverged"].fillna(False).astype(bool).sum())
    evidence.append(f"L1 diverged in {n_div} of {len(l1)} jobs")
    evidence += _left_out(pd.concat([l1, l2]), "L1/L2", "the error growth and the L1/L2 pairs")
    contradicted |= n_div > 0
    for kind in _kinds(l1):
        top = _strongest(l1, kind)
        ratio = _worst_ratio(l1, kind, "max_grad_norm", context, subset=dynamics_runs)
        ratio_l2 = _worst_ratio(l2, kind, "max_grad_norm", context, subset=dynamics_runs) if len(l2) else math.nan
        err_ratio = _worst_ratio(l1, kind, "coef_error", context, subset=estimator_runs)
        if ratio == ratio:
            text = f"{kind} ({_strength(top)}): L1 max-gradient growth x{_g(ratio)}"
            if ratio_l2 == ratio_l2:
                text += f" (L2 x{_g(ratio_l2)})"
        else:
            text = f"{kind} ({_strength(top)}): gradient growth not tested (no plain gradient-descent job)"
        text += f", L1 error growth x{_g(err_ratio)}"
        bounded = ratio == ratio and ratio <= GRAD_GROWTH_LIMIT
        holds = err_ratio == err_ratio and err_ratio < NOT_ROBUST_RATIO
        breaks = err_ratio == err_ratio and not holds
        if len(estimator_runs(l2)):
            cmp = _compare_at(_strongest(gd, kind), "l1", "l2")
            text += "; " + _cmp_text(cmp, "L1", "L2")
            robust = holds and cmp is not None and cmp["difference"] == "lower"
            worse = breaks or (cmp is not None and cmp["difference"] == "higher")
        else:
            robust, worse = holds, breaks
        evidence.append(text)
        if kind in RESPONSE_KINDS and ((ratio == ratio and not bounded) or worse):
            contradicted = True
        if not (bounded and robust):
            qualified = True
    verdict = CONTRADICTED if contradicted else QUALIFIED if qualified else SUPPORTED
    return _verdict(c1_l1_bounded_gradient, verdict, evidence)


def c2_l1_fixed_step_oscillates(runs: pd.DataFrame) -> Verdict:
    """C2 uses the L1 gradient-descent jobs with at least 10 recorded iterations.
    A job oscillates when, over the second half of its history, at least 10% of the iterations raise the
    objective and the median gradient norm stays above 1% of its first value (a converging smooth descent has
    no rises and a vanishing gradient).

    Not tested: no plain gradient-descent job (an estimator study), or no L1 job with a constant step
    (learning_rate "constant").

    Contradicted: fewer than half of the constant-step L1 jobs oscillate.

    Qualified: at least half oscillate, but L1 jobs with a diminishing step (learning_rate "auto" or
    "invscaling") on the same data and seed meet their stopping rule with a parameter error at most 1.1 times
    the constant-step job's in at least half of the pairs: the fixed step oscillates, yet gradient descent on
    L1 does converge with a diminishing step.

    Supported: at least half oscillate, and no diminishing-step L1 job does better (or there is none).

    Jobs: the dynamics jobs (plain gradient descent, not_converged included: a job that oscillates does not converge).
    """
    gd = _dynamics_gd(runs)
    if gd.empty:
        return _verdict(c2_l1_fixed_step_oscillates, NOT_TESTED, NO_PLAIN_GD)
    l1 = _label(gd, "l1")
    if "learning_rate" not in l1 or "tail_increase_share" not in l1:
        return _verdict(c2_l1_fixed_step_oscillates, NOT_TESTED,
                        "no L1 job with a constant step and a recorded history")
    const = l1[(l1["learning_rate"] == "constant") & l1["tail_increase_share"].notna()]
    if const.empty:
        return _verdict(c2_l1_fixed_step_oscillates, NOT_TESTED,
                        "no L1 job with a constant step and a recorded history")
    osc = (const["tail_increase_share"] >= OSC_INCREASE_SHARE) & (const["tail_grad_ratio"] >= OSC_GRAD_FLOOR)
    share = float(osc.mean())
    evidence = [
        f"{int(osc.sum())} of {len(const)} constant-step L1 jobs oscillate (median share of rising steps in the "
        f"second half {_g(const['tail_increase_share'].median())}, median gradient-norm ratio "
        f"{_g(const['tail_grad_ratio'].median())})"
    ]
    if share < 0.5:
        return _verdict(c2_l1_fixed_step_oscillates, CONTRADICTED, evidence)
    dimin = l1[l1["learning_rate"].isin(DIMINISHING_STEPS)]
    if dimin.empty:
        evidence.append("no diminishing-step L1 job in this study")
        return _verdict(c2_l1_fixed_step_oscillates, SUPPORTED, evidence)
    keys = [c for c in _shared_settings(gd) if c in ("study", "dataset", "dataset_params", "outliers", "fraction",
                                               "magnitude", "outlier_params")] + ["seed"]
    pairs = const[[*keys, "coef_error"]].merge(
        dimin[[*keys, "coef_error", "converged"]], on=keys, suffixes=("_const", "_dimin"))
    if pairs.empty:
        evidence.append("no diminishing-step L1 job on the same data and seed")
        return _verdict(c2_l1_fixed_step_oscillates, SUPPORTED, evidence)
    ok = pairs["converged"].fillna(False).astype(bool) & (
        pairs["coef_error_dimin"] <= DIMINISHING_TOLERANCE * pairs["coef_error_const"])
    evidence.append(
        f"diminishing step converged with an error at most {DIMINISHING_TOLERANCE:g} x the constant-step error in "
        f"{int(ok.sum())} of {len(pairs)} pairs (median coef_error {_g(_median(pairs['coef_error_dimin']))} vs "
        f"{_g(_median(pairs['coef_error_const']))})")
    verdict = QUALIFIED if ok.mean() >= 0.5 else SUPPORTED
    return _verdict(c2_l1_fixed_step_oscillates, verdict, evidence)


def c3_l2_stable(runs: pd.DataFrame) -> Verdict:
    """C3 uses the L2 gradient-descent jobs with the automatic step (learning_rate "auto", 1/L from the
    design) on clean data.

    Not tested: no such job (none in an estimator study: plain gradient descent only).

    Contradicted: one of them diverged.

    Qualified: none diverged, but some did not meet the stopping rule within max_iter.

    Supported: every one of them converged.

    Jobs: the dynamics jobs (plain gradient descent, not_converged included).
    """
    gd = _dynamics_gd(runs)
    if gd.empty:
        return _verdict(c3_l2_stable, NOT_TESTED, NO_PLAIN_GD)
    l2 = _label(gd, "l2")
    if "learning_rate" in l2:
        l2 = l2[l2["learning_rate"] == "auto"]
    else:
        l2 = l2.iloc[0:0]
    l2 = l2[clean_mask(l2)]
    if l2.empty:
        return _verdict(c3_l2_stable, NOT_TESTED, "no L2 job with the automatic step on clean data")
    n = len(l2)
    div = int(l2["diverged"].fillna(False).astype(bool).sum())
    conv = int(l2["converged"].fillna(False).astype(bool).sum())
    evidence = [f"{conv} of {n} L2 auto-step jobs on clean data converged, {div} diverged, median "
                f"{_g(_median(l2['n_iter']))} iterations"]
    verdict = CONTRADICTED if div else SUPPORTED if conv == n else QUALIFIED
    return _verdict(c3_l2_stable, verdict, evidence)


def c4_l2_not_robust_explodes(runs: pd.DataFrame) -> Verdict:
    """C4 uses the L2 gradient-descent jobs.
    Not robust: under some contaminated kind, at its strongest contamination, L2's median parameter error is
    at least 3 times its clean error in the same setting. Explosion: L2 jobs diverge under contamination at a
    step setting where no clean L2 job diverged.

    Not tested: no L2 job on both clean and contaminated data.

    Contradicted: L2 is not shown to be non-robust (error growth below 3 under every kind) and never diverges
    under contamination at a clean-stable step.

    Supported: L2 is not robust and it diverges at a clean-stable step under response outliers (vertical,
    heavy_tail): large residuals alone make gradient descent explode.

    Qualified: otherwise, typically L2 is not robust and diverges at a clean-stable step only under leverage
    points (outliers in x raise the largest eigenvalue of X^T X / n, hence the step limit), or never.

    Jobs: the robustness part (error growth) uses the estimator jobs (ok or diverged; not_converged left out);
    the explosion part uses the dynamics jobs (plain gradient descent, not_converged included).
    """
    gd = _done_gd(runs)
    l2 = _label(gd, "l2")
    if l2[clean_mask(l2)].empty or _contaminated(l2).empty:
        return _verdict(c4_l2_not_robust_explodes, NOT_TESTED, "no L2 job on both clean and contaminated data")
    context = _context_columns(gd)
    evidence, not_robust = _left_out(l2, "L2", "the error growth"), False
    for kind in _kinds(l2):
        ratio = _worst_ratio(l2, kind, "coef_error", context, subset=estimator_runs)
        evidence.append(f"{kind} ({_strength(_strongest(l2, kind))}): L2 error growth x{_g(ratio)}")
        not_robust |= ratio == ratio and ratio >= NOT_ROBUST_RATIO
    diverging = set()
    n_stable = 0
    for key, part in group_frames(dynamics_runs(l2), context):
        clean = part[clean_mask(part)]
        if clean.empty or clean["diverged"].fillna(False).astype(bool).any():
            continue
        n_stable += 1
        cont = _contaminated(part)
        hit = cont[cont["diverged"].fillna(False).astype(bool)]
        for kind in hit["outliers"].unique():
            diverging.add(kind)
            evidence.append(
                f"diverged under {kind} at a clean-stable step"
                + (f" ({', '.join(f'{c}={v}' for c, v in zip(context, key))})" if context else "")
                + f": {int((hit['outliers'] == kind).sum())} of {int((cont['outliers'] == kind).sum())} jobs")
    if dynamics_runs(l2).empty:
        evidence.append("the explosion part is not tested: no plain gradient-descent L2 job")
    elif not diverging:
        evidence.append(f"no divergence under contamination at the {n_stable} clean-stable step setting(s)")
    if not not_robust and not diverging:
        verdict = CONTRADICTED
    elif not_robust and diverging & set(RESPONSE_KINDS):
        verdict = SUPPORTED
    else:
        verdict = QUALIFIED
    return _verdict(c4_l2_not_robust_explodes, verdict, evidence)


def c5_smooth_l1_fast_and_bounded(runs: pd.DataFrame) -> Verdict:
    """C5 uses the Smooth L1, L1 and L2 gradient-descent jobs.
    Faster: paired with L1 (same data, seed and optimizer settings), Smooth L1 settles in significantly fewer
    iterations (settle_iter: the first iteration after which the objective stays within 1e-4 of its initial gap
    above its lowest value; never settling counts as infinitely many). No explosion: Smooth L1 did not diverge
    in any pair where L2 diverged (same data, seed and optimizer settings).

    Not tested: no plain gradient-descent job (an estimator study), or fewer than 5 Smooth L1 / L1 pairs.

    Supported: faster, and no Smooth L1 divergence where L2 diverged (with at least one such pair).

    Qualified: faster but the no-explosion part fails or is not tested (L2 never diverged); or not faster
    but the no-explosion part holds.

    Contradicted: not faster, and the no-explosion part fails or is not tested.

    Jobs: the dynamics jobs (plain gradient descent, not_converged included: a job that never settles counts as
    infinitely slow).
    """
    gd = _dynamics_gd(runs)
    if gd.empty:
        return _verdict(c5_smooth_l1_fast_and_bounded, NOT_TESTED, NO_PLAIN_GD)
    if "settle_iter" not in gd:
        return _verdict(c5_smooth_l1_fast_and_bounded, NOT_TESTED, "no recorded histories")
    keys = _shared_settings(gd)
    pairs = paired_values(gd, "smooth_l1", "l1", "settle_iter", keys=keys, subset=dynamics_runs)
    if len(pairs) < MIN_PAIRS:
        return _verdict(c5_smooth_l1_fast_and_bounded, NOT_TESTED, f"fewer than {MIN_PAIRS} Smooth L1 / L1 pairs")
    c = compare(pairs)
    faster = c["difference"] == "lower"
    evidence = [
        f"iterations to settle: Smooth L1 median {_g(c['median'])} vs L1 {_g(c['median_baseline'])}, paired "
        f"difference {_g(c['median_diff'])} [{_g(c['ci_low'])}, {_g(c['ci_high'])}] (n={c['n_pairs']}, Smooth L1 "
        f"faster in {_g(100 * float(np.mean(paired_differences(pairs) < 0)))}% of pairs)"
    ]
    div = paired_values(gd, "smooth_l1", "l2", "diverged", keys=keys, subset=dynamics_runs)
    div = div[div["value_baseline"].fillna(False).astype(bool)] if len(div) else div
    if div.empty:
        bounded = None
        evidence.append("L2 never diverged in a pair with Smooth L1: the no-explosion part is not tested")
    else:
        n_sl1 = int(div["value"].fillna(False).astype(bool).sum())
        bounded = n_sl1 == 0
        evidence.append(f"where L2 diverged ({len(div)} pairs), Smooth L1 diverged in {n_sl1}")
    if faster and bounded:
        verdict = SUPPORTED
    elif faster or bounded:
        verdict = QUALIFIED
    else:
        verdict = CONTRADICTED
    return _verdict(c5_smooth_l1_fast_and_bounded, verdict, evidence)


def c6_smooth_l1_beats_l2(runs: pd.DataFrame) -> Verdict:
    """C6 pairs the Smooth L1 and L2 gradient-descent jobs on contaminated data (same data, seed and optimizer
    settings) and compares their parameter errors in each group of outlier kind x fraction x other setting
    that has at least 5 pairs.

    Not tested: no such group.

    Supported: Smooth L1's error is significantly lower (median paired difference below 0, 95% interval
    excluding 0) in every group.

    Qualified: significantly lower in some groups but not in all.

    Contradicted: significantly lower in none.

    Jobs: the estimator jobs (ok or diverged; not_converged left out).
    """
    gd = _estimator_gd(runs)
    cont = _contaminated(gd)
    keys = _shared_settings(cont)
    pairs = paired_values(cont, "smooth_l1", "l2", keys=keys, subset=estimator_runs)
    groups = []
    gkeys = ["outliers", "fraction", *[k for k in label_varying(cont, keys) if k not in ("outliers", "fraction")]]
    for key, part in group_frames(pairs, gkeys):
        if len(part) >= MIN_PAIRS:
            groups.append((part, compare(part)))
    if not groups:
        return _verdict(c6_smooth_l1_beats_l2, NOT_TESTED,
                        f"no contaminated group with at least {MIN_PAIRS} Smooth L1 / L2 pairs")
    lower = [g for g in groups if g[1]["difference"] == "lower"]
    evidence = [f"Smooth L1 significantly lower in {len(lower)} of {len(groups)} groups"]
    every = _contaminated(_done_gd(runs))
    evidence += _left_out(every[every["loss_label"].isin(["smooth_l1", "l2"])], "Smooth L1/L2", "the pairs")
    lines = []
    for part, c in groups:
        where = f"{part['outliers'].iloc[0]} @ {_g(part['fraction'].iloc[0])}"
        other = [f"{k}={_g(part[k].iloc[0]) if isinstance(part[k].iloc[0], float) else part[k].iloc[0]}"
                 for k in gkeys[2:]]
        where += f" ({', '.join(other)})" if other else ""
        lines.append(f"{where}: difference {_g(c['median_diff'])} [{_g(c['ci_low'])}, {_g(c['ci_high'])}]")
    if len(lines) > 8:
        lines = lines[:8] + [f"... {len(groups) - 8} more groups in paired.csv"]
    evidence += lines
    verdict = SUPPORTED if len(lower) == len(groups) else QUALIFIED if lower else CONTRADICTED
    return _verdict(c6_smooth_l1_beats_l2, verdict, evidence)


def c7_penalty_sparsity(runs: pd.DataFrame) -> Verdict:
    """C7 uses the gradient-descent jobs with a penalty (alpha > 0); exact zeros are counted in the fitted
    weights (the L1 penalty takes a proximal soft-threshold step). "Evenly spread" is not measured.

    Not tested: no job with the L1 penalty.

    Contradicted: at every alpha the median L1-penalty job has no exact zero.

    Supported: at some alpha the median L1-penalty job has exact zeros, and the L2-penalty jobs (if any) have
    no exact zero and a median weight norm at the largest alpha below the one at the smallest alpha (or below
    the unpenalized jobs').

    Qualified: L1 gives zeros, but an L2-penalty job has an exact zero or the L2 penalty does not shrink the
    weights.

    Jobs: the estimator jobs (ok or diverged; not_converged left out): the claim is about the fitted weights.
    """
    gd = _estimator_gd(runs)
    if "penalty" not in gd or "alpha" not in gd:
        return _verdict(c7_penalty_sparsity, NOT_TESTED, "no job with a penalty")
    alpha = pd.to_numeric(gd["alpha"], errors="coerce")
    l1p = gd[(gd["penalty"] == "l1") & (alpha > 0)]
    if l1p.empty:
        return _verdict(c7_penalty_sparsity, NOT_TESTED, "no job with the L1 penalty")
    z1 = l1p.groupby("alpha")["n_zero_coef"].median()
    d = l1p["n_features"].dropna()
    evidence = ["L1 penalty: median exact zeros by alpha " +
                ", ".join(f"{_g(a)}: {_g(float(z))}" for a, z in z1.items()) +
                (f" (of {int(d.iloc[0])} weights)" if len(d) else "")]
    if not (z1 > 0).any():
        return _verdict(c7_penalty_sparsity, CONTRADICTED, evidence)
    l2p = gd[(gd["penalty"] == "l2") & (alpha > 0)]
    if l2p.empty:
        evidence.append("no L2-penalty job: that half is not tested")
        return _verdict(c7_penalty_sparsity, SUPPORTED, evidence)
    zeros2 = int((l2p["n_zero_coef"] > 0).sum())
    norms = l2p.groupby("alpha")["coef_norm"].median()
    free = gd[gd["penalty"].isin(["none", None]) | gd["penalty"].isna() | (alpha == 0)]
    if len(norms) >= 2:
        shrinks = norms.iloc[-1] < norms.iloc[0]
        shrink_text = f"median weight norm {_g(norms.iloc[0])} at alpha {_g(norms.index[0])} -> " \
                      f"{_g(norms.iloc[-1])} at alpha {_g(norms.index[-1])}"
    elif len(free):
        base = _median(free["coef_norm"])
        shrinks = norms.iloc[-1] < base
        shrink_text = f"median weight norm {_g(norms.iloc[-1])} vs {_g(base)} without penalty"
    else:
        shrinks = True
        shrink_text = "shrinkage not measurable (one alpha, no unpenalized job)"
    evidence.append(f"L2 penalty: {zeros2} of {len(l2p)} jobs with an exact zero; {shrink_text}")
    verdict = SUPPORTED if zeros2 == 0 and shrinks else QUALIFIED
    return _verdict(c7_penalty_sparsity, verdict, evidence)


def c8_leverage_breakdown(runs: pd.DataFrame) -> Verdict:
    """C8 compares, in each leverage setting, the median parameter error of every convex loss (L1, L2,
    Smooth L1, Huber, pseudo-Huber, Barron with alpha >= 1, and the exact convex reference solvers) with that of
    the redescending losses (Tukey, Welsch, Cauchy, Geman-McClure, Barron with alpha < 1) started from a robust
    fit (init "lts" or "s", the MM-estimator's default); each loss is taken at its best optimizer setting. Leverage settings: each data set under
    leverage contamination at its strongest (error: coef_error), and the classic sets with bad leverage points
    (stars_cyg, hbk) uncontaminated (error: distance of the slopes to the published MM fit).

    Not tested: no leverage setting with both a convex loss and a redescending loss from a robust start.

    Supported: in every setting, every convex loss has an error more than 3 times the best redescending one.

    Contradicted: in every setting, the best redescending loss is no better than the best convex loss.

    Qualified: otherwise.

    Jobs: the estimator jobs (ok or diverged; not_converged left out); the strongest leverage contamination is
    that of every done job.
    """
    every = done_runs(runs)
    settings, considered = [], []
    lev = every[every["outliers"] == "leverage"] if "outliers" in every else every.iloc[0:0]
    for name, part in group_frames(lev, ["dataset"] if "dataset" in lev else []):
        top = _strongest(part, "leverage")
        if len(top):
            considered.append(top)
            settings.append((f"{name[0] if name else 'data'} leverage {_strength(top)}", estimator_runs(top),
                             "coef_error"))
    if "dataset" in every and "mm_error" in every:
        for name in LEVERAGE_SETS:
            part = every[(every["dataset"] == name) & clean_mask(every) & every["mm_error"].notna()]
            if len(part):
                considered.append(part)
                settings.append((f"{name} (distance to published MM fit)", estimator_runs(part), "mm_error"))
    opt = [c for c in _context_columns(every) if c not in ("study", "dataset", "dataset_params")]
    results = []
    for where, part, col in settings:
        convex = part[part["convex"].fillna(False).astype(bool)]
        red = part[part["redescending"].fillna(False).astype(bool)]
        if "init" in red:
            red = red[red["init"].isin(ROBUST_INITS)]
        else:
            red = red.iloc[0:0]
        if convex.empty or red.empty:
            continue
        best = {}
        for frame in (convex, red):
            for key, g in group_frames(frame, ["loss_label", *[c for c in opt if c != "loss_label"]]):
                best[key[0]] = min(best.get(key[0], math.inf), _median(g[col]))
        conv = {k: v for k, v in best.items() if k in set(convex["loss_label"])}
        reds = {k: v for k, v in best.items() if k in set(red["loss_label"])}
        r_label = min(reds, key=reds.get)
        results.append((where, conv, r_label, reds[r_label]))
    if not results:
        return _verdict(c8_leverage_breakdown, NOT_TESTED,
                        "no leverage setting with both a convex loss and a redescending loss from a robust start")
    evidence, all_k, all_none = [], True, True
    evidence += _left_out(pd.concat(considered), "leverage-setting", "the comparison")
    for where, conv, r_label, r_err in results:
        worst_ratio = min(conv.values()) / r_err if r_err > 0 else math.inf
        evidence.append(f"{where}: best redescending {r_label} {_g(r_err)}; convex " +
                        ", ".join(f"{k} {_g(v)}" for k, v in sorted(conv.items(), key=lambda kv: kv[1])))
        all_k &= worst_ratio > BREAKDOWN_FACTOR
        all_none &= r_err >= min(conv.values())
    verdict = SUPPORTED if all_k else CONTRADICTED if all_none else QUALIFIED
    return _verdict(c8_leverage_breakdown, verdict, evidence)


#: The rules, in claim order.
RULES = (
    c1_l1_bounded_gradient,
    c2_l1_fixed_step_oscillates,
    c3_l2_stable,
    c4_l2_not_robust_explodes,
    c5_smooth_l1_fast_and_bounded,
    c6_smooth_l1_beats_l2,
    c7_penalty_sparsity,
    c8_leverage_breakdown,
)


def evaluate_claims(runs: pd.DataFrame) -> list:
    """Every rule of :data:`RULES` on ``runs``: a list of :class:`Verdict`, C1 to C8."""
    # The rules select rows many times over: text columns held as Python objects are taken about twice as
    # fast as pandas' string columns, with the same values.
    runs = runs.astype({c: object for c, t in runs.dtypes.items() if isinstance(t, pd.StringDtype)})
    return [rule(runs) for rule in RULES]
