"""Every claim rule on constructed job tables whose answer is known, each verdict reached."""

from __future__ import annotations

import itertools
import math

import pandas as pd

from robustreg.report.verdicts import (
    CLAIMS,
    RULES,
    VERDICTS,
    c1_l1_bounded_gradient,
    c2_l1_fixed_step_oscillates,
    c3_l2_stable,
    c4_l2_not_robust_explodes,
    c5_smooth_l1_fast_and_bounded,
    c6_smooth_l1_beats_l2,
    c7_penalty_sparsity,
    c8_leverage_breakdown,
    evaluate_claims,
)

SEEDS = range(8)
CONVEX = {"l1", "l2", "smooth_l1", "huber", "pseudo_huber", "sklearn_ols"}
REDESCENDING = {"tukey", "welsch", "cauchy"}


def job(**kw) -> dict:
    """One finished gradient-descent job with neutral outcomes; keywords override."""
    row = {
        "job_dir": None, "status": "ok", "study": "t", "dataset": "synthetic", "dataset_params": "n_train=100",
        "outliers": "none", "fraction": 0.0, "magnitude": 10.0, "outlier_params": "side=symmetric",
        "loss_label": "l2", "model": "gd", "learning_rate": "auto", "eta0": 1.0, "init": "zeros",
        "penalty": "none", "alpha": 1e-4, "seed": 0, "coef_error": 0.2, "diverged": False, "converged": True,
        "n_iter": 50, "max_grad_norm": 1.0, "tail_increase_share": 0.0, "tail_grad_ratio": 1e-6,
        "settle_iter": 30.0, "n_zero_coef": 0, "coef_norm": 1.0, "n_features": 5, "mm_error": math.nan,
    }
    row.update(kw)
    label = row["loss_label"]
    row.setdefault("convex", label.split(" ")[0] in CONVEX)
    row.setdefault("redescending", label.split(" ")[0] in REDESCENDING)
    return row


def table(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["job_dir"] = [f"j{i}" for i in range(len(frame))]
    return frame


def grid(labels, cells, seeds=SEEDS, **common):
    """Jobs for every label x (kind, fraction) cell x seed; ``common`` values may be callables of (label, kind, fraction, seed)."""
    rows = []
    for label, (kind, frac), seed in itertools.product(labels, cells, seeds):
        kw = {k: (v(label, kind, frac, seed) if callable(v) else v) for k, v in common.items()}
        rows.append(job(loss_label=label, outliers=kind, fraction=frac, seed=seed, **kw))
    return rows


def noise(seed, scale=0.01):
    return scale * ((seed * 7919) % 11 - 5) / 5


# ------------------------------------------------------------------------ C1
def c1_table(lev_grad=1.0, lev_l1=0.3, vert_l1=0.3, diverge=False):
    def err(label, kind, frac, seed):
        if frac == 0:
            return 0.2 + noise(seed)
        if label == "l2":
            return 1.0 + noise(seed)
        return (lev_l1 if kind == "leverage" else vert_l1) + noise(seed)

    def grad(label, kind, frac, seed):
        if label == "l2":
            return 5.0 * (20 if frac and kind == "leverage" else 1)
        return lev_grad if kind == "leverage" and frac else 1.0

    cells = [("none", 0.0), ("vertical", 0.2)] + ([("leverage", 0.2)] if lev_grad is not None else [])
    rows = grid(["l1", "l2"], cells, coef_error=err, max_grad_norm=grad)
    if diverge:
        rows[0]["diverged"] = True
    return table(rows)


def test_c1_verdicts():
    assert c1_l1_bounded_gradient(table(grid(["l1"], [("none", 0.0)]))).verdict == "not tested"
    assert c1_l1_bounded_gradient(c1_table(lev_grad=None)).verdict == "supported"
    assert c1_l1_bounded_gradient(c1_table(lev_grad=1.5, lev_l1=0.3)).verdict == "supported"
    # Under leverage points the L1 gradient grows with |x| and L1 is no better than L2.
    v = c1_l1_bounded_gradient(c1_table(lev_grad=4.0, lev_l1=1.0))
    assert v.verdict == "qualified"
    assert "leverage" in v.evidence and "x4" in v.evidence
    # Bounded and better than L2 under leverage, yet its error grew 4 times: not a robust solution there.
    v = c1_l1_bounded_gradient(c1_table(lev_grad=1.5, lev_l1=0.8))
    assert v.verdict == "qualified" and "L1 error growth x3.96" in v.evidence
    assert c1_l1_bounded_gradient(c1_table(lev_grad=None, diverge=True)).verdict == "contradicted"
    # L1 worse than L2 under vertical outliers contradicts "robust solution".
    assert c1_l1_bounded_gradient(c1_table(lev_grad=None, vert_l1=2.0)).verdict == "contradicted"


# ------------------------------------------------------------------------ C2
def c2_table(osc=True, dimin=True, dimin_err=0.2, dimin_converged=True):
    rows = grid(["l1"], [("none", 0.0)], learning_rate="constant", eta0=0.1,
                tail_increase_share=0.4 if osc else 0.0, tail_grad_ratio=0.2 if osc else 1e-5,
                coef_error=0.2)
    if dimin:
        rows += grid(["l1"], [("none", 0.0)], learning_rate="auto", tail_increase_share=0.3, tail_grad_ratio=0.1,
                     coef_error=dimin_err, converged=dimin_converged)
    return table(rows)


def test_c2_verdicts():
    assert c2_l1_fixed_step_oscillates(table(grid(["l1"], [("none", 0.0)]))).verdict == "not tested"
    assert c2_l1_fixed_step_oscillates(c2_table(osc=False)).verdict == "contradicted"
    assert c2_l1_fixed_step_oscillates(c2_table(dimin=False)).verdict == "supported"
    assert c2_l1_fixed_step_oscillates(c2_table(dimin_err=0.21)).verdict == "qualified"
    # A diminishing step that ends farther from the reference does not qualify the claim.
    assert c2_l1_fixed_step_oscillates(c2_table(dimin_err=0.5)).verdict == "supported"
    assert c2_l1_fixed_step_oscillates(c2_table(dimin_converged=False)).verdict == "supported"
    # Histories too short to judge (NaN measures) are not evidence.
    short = c2_table(dimin=False).assign(tail_increase_share=math.nan)
    assert c2_l1_fixed_step_oscillates(short).verdict == "not tested"


# ------------------------------------------------------------------------ C3
def test_c3_verdicts():
    clean = grid(["l2"], [("none", 0.0)])
    assert c3_l2_stable(table(clean)).verdict == "supported"
    assert c3_l2_stable(table(grid(["l2"], [("vertical", 0.2)]))).verdict == "not tested"
    assert c3_l2_stable(table(grid(["l2"], [("none", 0.0)], learning_rate="constant"))).verdict == "not tested"
    slow = table(clean).assign(converged=[False] + [True] * (len(clean) - 1))
    assert c3_l2_stable(slow).verdict == "qualified"
    broke = table(clean).assign(diverged=[True] + [False] * (len(clean) - 1))
    assert c3_l2_stable(broke).verdict == "contradicted"
    # Jobs on contaminated data or with another loss do not count.
    other = table(clean + grid(["l1", "l2"], [("vertical", 0.2)], diverged=True, converged=False))
    assert c3_l2_stable(other).verdict == "supported"


# ------------------------------------------------------------------------ C4
def c4_table(growth=5.0, diverge_kind=None, clean_diverges=False):
    rows = []
    for step in (("auto", 1.0), ("constant", 0.5)):
        def diverged(label, kind, frac, seed, step=step):
            if step[0] != "constant":
                return False
            if frac == 0:
                return clean_diverges
            return kind == diverge_kind

        rows += grid(["l2"], [("none", 0.0), ("vertical", 0.2), ("leverage", 0.2)],
                     learning_rate=step[0], eta0=step[1], diverged=diverged,
                     coef_error=lambda l, k, f, s: (0.2 if f == 0 else 0.2 * growth) + noise(s))
    return table(rows)


def test_c4_verdicts():
    assert c4_l2_not_robust_explodes(table(grid(["l2"], [("none", 0.0)]))).verdict == "not tested"
    assert c4_l2_not_robust_explodes(c4_table(growth=1.0)).verdict == "contradicted"
    v = c4_l2_not_robust_explodes(c4_table(diverge_kind="leverage"))
    assert v.verdict == "qualified" and "diverged under leverage at a clean-stable step" in v.evidence
    assert c4_l2_not_robust_explodes(c4_table(diverge_kind=None)).verdict == "qualified"
    assert c4_l2_not_robust_explodes(c4_table(diverge_kind="vertical")).verdict == "supported"
    # A step that diverges on clean data already is not "stable on clean data".
    v = c4_l2_not_robust_explodes(c4_table(diverge_kind="vertical", clean_diverges=True))
    assert v.verdict == "qualified"
    # Not robust is not shown, but the step explodes under contamination: qualified.
    assert c4_l2_not_robust_explodes(c4_table(growth=1.0, diverge_kind="leverage")).verdict == "qualified"


# ------------------------------------------------------------------------ C5
def c5_table(sl1_settle=20.0, l1_settle=math.inf, l2_diverges=True, sl1_diverges=False):
    def settle(label, kind, frac, seed):
        return {"smooth_l1": sl1_settle, "l1": l1_settle, "l2": 10.0}[label] + seed

    def diverged(label, kind, frac, seed):
        if kind != "leverage":
            return False
        return (label == "l2" and l2_diverges) or (label == "smooth_l1" and sl1_diverges)

    return table(grid(["l1", "l2", "smooth_l1"], [("none", 0.0), ("leverage", 0.2)], settle_iter=settle,
                      diverged=diverged, learning_rate="constant", eta0=0.5))


def test_c5_verdicts():
    assert c5_smooth_l1_fast_and_bounded(c5_table()).verdict == "supported"
    assert c5_smooth_l1_fast_and_bounded(c5_table(l2_diverges=False)).verdict == "qualified"
    assert c5_smooth_l1_fast_and_bounded(c5_table(sl1_diverges=True)).verdict == "qualified"
    assert c5_smooth_l1_fast_and_bounded(c5_table(sl1_settle=200.0, l1_settle=50.0)).verdict == "qualified"
    assert c5_smooth_l1_fast_and_bounded(
        c5_table(sl1_settle=200.0, l1_settle=50.0, l2_diverges=False)).verdict == "contradicted"
    few = table(grid(["l1", "smooth_l1"], [("none", 0.0)], seeds=range(3)))
    assert c5_smooth_l1_fast_and_bounded(few).verdict == "not tested"


# ------------------------------------------------------------------------ C6
def c6_table(vertical_gain=0.5, leverage_gain=0.0):
    def err(label, kind, frac, seed):
        base = 1.0 + noise(seed, 0.05)
        if label == "smooth_l1":
            return base - {"vertical": vertical_gain, "leverage": leverage_gain}.get(kind, 0.0)
        return base

    return table(grid(["l2", "smooth_l1"], [("none", 0.0), ("vertical", 0.2), ("leverage", 0.2)],
                      coef_error=err))


def test_c6_verdicts():
    assert c6_smooth_l1_beats_l2(c6_table(0.5, 0.3)).verdict == "supported"
    v = c6_smooth_l1_beats_l2(c6_table(0.5, 0.0))
    assert v.verdict == "qualified" and "1 of 2 groups" in v.evidence
    assert c6_smooth_l1_beats_l2(c6_table(0.0, 0.0)).verdict == "contradicted"
    assert c6_smooth_l1_beats_l2(c6_table(-0.5, -0.5)).verdict == "contradicted"
    clean_only = table(grid(["l2", "smooth_l1"], [("none", 0.0)]))
    assert c6_smooth_l1_beats_l2(clean_only).verdict == "not tested"
    few = table(grid(["l2", "smooth_l1"], [("vertical", 0.2)], seeds=range(4)))
    assert c6_smooth_l1_beats_l2(few).verdict == "not tested"


# ------------------------------------------------------------------------ C7
def c7_table(l1_zeros=(0, 2, 4), l2_zeros=(0, 0, 0), l2_norms=(2.0, 1.5, 1.0), with_l2=True):
    rows = []
    for alpha, z1, z2, n2 in zip((0.01, 0.1, 1.0), l1_zeros, l2_zeros, l2_norms):
        rows += grid(["l2"], [("none", 0.0)], penalty="l1", alpha=alpha, n_zero_coef=z1, coef_norm=1.0)
        if with_l2:
            rows += grid(["l2"], [("none", 0.0)], penalty="l2", alpha=alpha, n_zero_coef=z2, coef_norm=n2)
    return table(rows)


def test_c7_verdicts():
    assert c7_penalty_sparsity(table(grid(["l2"], [("none", 0.0)]))).verdict == "not tested"
    assert c7_penalty_sparsity(table(grid(["l2"], [("none", 0.0)]))).evidence == "no job with the L1 penalty"
    assert c7_penalty_sparsity(c7_table()).verdict == "supported"
    assert c7_penalty_sparsity(c7_table(with_l2=False)).verdict == "supported"
    assert c7_penalty_sparsity(c7_table(l1_zeros=(0, 0, 0))).verdict == "contradicted"
    assert c7_penalty_sparsity(c7_table(l2_zeros=(0, 0, 1))).verdict == "qualified"
    assert c7_penalty_sparsity(c7_table(l2_norms=(1.0, 1.0, 1.0))).verdict == "qualified"
    no_penalty_columns = table(grid(["l2"], [("none", 0.0)])).drop(columns=["penalty", "alpha"])
    assert c7_penalty_sparsity(no_penalty_columns).verdict == "not tested"


# ------------------------------------------------------------------------ C8
def c8_table(convex_err=1.0, tukey_err=0.1, tukey_init="lts", l1_err=None):
    def err(label, kind, frac, seed):
        if frac == 0:
            return 0.2
        if label == "tukey":
            return tukey_err + noise(seed)
        if label == "l1" and l1_err is not None:
            return l1_err + noise(seed)
        return convex_err + noise(seed)

    rows = grid(["l1", "l2", "smooth_l1", "huber"], [("none", 0.0), ("leverage", 0.1), ("leverage", 0.3)],
                coef_error=err)
    rows += grid(["tukey"], [("none", 0.0), ("leverage", 0.1), ("leverage", 0.3)], coef_error=err,
                 init=tukey_init)
    return table(rows)


def test_c8_verdicts():
    assert c8_leverage_breakdown(c8_table()).verdict == "supported"
    assert c8_leverage_breakdown(c8_table(tukey_err=0.5)).verdict == "qualified"
    assert c8_leverage_breakdown(c8_table(l1_err=0.2)).verdict == "qualified"
    assert c8_leverage_breakdown(c8_table(tukey_err=1.2)).verdict == "contradicted"
    # A redescending loss from a non-robust start is not what the claim is about.
    assert c8_leverage_breakdown(c8_table(tukey_init="zeros")).verdict == "not tested"
    no_redescending = table(grid(["l1", "l2"], [("leverage", 0.2)]))
    assert c8_leverage_breakdown(no_redescending).verdict == "not tested"


def test_c8_classic_leverage_set_uses_distance_to_mm():
    rows = grid(["l1", "l2"], [("none", 0.0)], seeds=[0], dataset="stars_cyg", dataset_params="",
                mm_error=lambda l, k, f, s: 3.0)
    rows += grid(["tukey"], [("none", 0.0)], seeds=[0], dataset="stars_cyg", dataset_params="", init="lts",
                 mm_error=0.4)
    v = c8_leverage_breakdown(table(rows))
    assert v.verdict == "supported" and "stars_cyg" in v.evidence
    # telef's outliers are vertical: it is not a leverage setting.
    assert c8_leverage_breakdown(table(rows).assign(dataset="telef")).verdict == "not tested"


# --------------------------------------------------------------------- shared
def test_every_rule_has_its_claim_and_states_each_verdict():
    assert [r.__name__.split("_")[0].upper() for r in RULES] == list(CLAIMS)
    for rule in RULES:
        doc = rule.__doc__.lower()
        for word in ("not tested", "supported", "contradicted", "qualified"):
            assert word + ":" in doc, (rule.__name__, word)


def test_empty_study_tests_nothing():
    empty = table([job()]).iloc[0:0]
    verdicts = evaluate_claims(empty)
    assert [v.claim for v in verdicts] == list(CLAIMS)
    assert {v.verdict for v in verdicts} == {"not tested"}
    assert all(v.verdict in VERDICTS and v.rule for v in verdicts)


def test_failed_and_reference_jobs_are_ignored_by_gd_rules():
    rows = c4_table(diverge_kind="vertical")
    extra = table([job(loss_label="l2", status="failed", outliers="vertical", fraction=0.2, coef_error=math.nan),
                   job(loss_label="sklearn_ols", model="sklearn_ols", outliers="vertical", fraction=0.2,
                       learning_rate=None, eta0=math.nan, diverged=False)])
    both = pd.concat([rows, extra], ignore_index=True)
    both["job_dir"] = [f"j{i}" for i in range(len(both))]
    assert c4_l2_not_robust_explodes(both).verdict == "supported"


def _worst_ratio_by_frames(runs, kind, column, context, subset=None):
    """The worst-ratio definition written frame by frame with pandas (the reference for the row-array version)."""
    import numpy as np

    from robustreg.report.tables import clean_mask, group_frames

    def median(values):
        x = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
        return float(np.median(np.where(np.isnan(x), np.inf, x)))

    ratios = []
    for _, part in group_frames(runs, context):
        clean = part[clean_mask(part)]
        hit = part[(part["outliers"] == kind) & (part["fraction"] > 0)]
        if not hit.empty:
            hit = hit[hit["fraction"] == hit["fraction"].max()]
            if hit["magnitude"].notna().any():
                hit = hit[hit["magnitude"] == hit["magnitude"].max()]
        if subset is not None:
            clean, hit = subset(clean), subset(hit)
        if clean.empty or hit.empty:
            continue
        base, top = median(clean[column]), median(hit[column])
        ratios.append(top / base if base > 1e-9 * abs(top) and math.isfinite(base) else (math.inf if top > 0 else 1.0))
    return max(ratios) if ratios else math.nan


def test_worst_ratio_equals_its_frame_by_frame_definition():
    import numpy as np

    from robustreg.report.collect import dynamics_runs, estimator_runs
    from robustreg.report.verdicts import _worst_ratio

    rng = np.random.default_rng(4)
    checked = 0
    for trial in range(10):
        n = int(rng.integers(1, 120))
        rows = [job(
            outliers=str(rng.choice(["none", "vertical", "leverage"])),
            fraction=float(rng.choice([0.0, 0.1, 0.2, 0.4])),
            magnitude=float(rng.choice([1.0, 10.0, np.nan])),
            eta0=float(rng.choice([0.1, 1.0, np.nan])),
            dataset=str(rng.choice(["a", "b"])),
            status=str(rng.choice(["ok", "ok", "not_converged", "diverged", "failed"])),
            model=str(rng.choice(["gd", "gd", "sklearn_huber"])),
            coef_error=float(rng.choice([rng.exponential(), np.nan, np.inf, 0.0])),
            max_grad_norm=float(rng.exponential()),
            seed=int(s),
        ) for s in range(n)]
        runs = pd.DataFrame(rows)
        if trial % 3 == 0:
            runs.index = rng.permutation(n) + 1000  # the pooled frames' index is not 0..n-1 everywhere
        for kind, column, context, subset in itertools.product(
                ("vertical", "leverage"), ("coef_error", "max_grad_norm"),
                ([], ["dataset"], ["dataset", "eta0"]), (None, estimator_runs, dynamics_runs)):
            got = _worst_ratio(runs, kind, column, context, subset)
            want = _worst_ratio_by_frames(runs, kind, column, context, subset)
            assert (math.isnan(got) and math.isnan(want)) or got == want, (trial, kind, column, context, subset)
            checked += not math.isnan(want)
    assert checked > 100  # most cases measure a ratio (of 360)
