"""The classic views (sensitivity, breakdown, efficiency) and the pooled findings, against closed forms."""

import numpy as np
import pandas as pd
import pytest

from robustreg.report.classic import BREAKDOWN_MULTIPLE, breakdown_table, efficiency_table, sensitivity_table
from robustreg.report.findings import seed_halves
from robustreg.report.verdicts import evaluate_claims


def _row(label, seed, err, kind="none", fraction=0.0, magnitude=10.0, noise="gaussian", study="s"):
    return {"job_dir": f"{study}/{label}/{kind}/{fraction}/{magnitude}/{noise}/{seed}", "study": study,
            "dataset": "synthetic", "outliers": kind, "fraction": fraction, "magnitude": magnitude,
            "loss_label": label, "model": "gd", "seed": seed, "status": "ok", "coef_error": err,
            "converged": True, "diverged": False, "dataset_args": {"noise": noise}}


def test_efficiency_is_the_ratio_of_mean_squared_errors_paired_by_seed():
    """An estimator whose error is c times least squares' on every seed has efficiency 1/c^2 exactly,
    and its bootstrap interval collapses on that value."""
    rng = np.random.default_rng(0)
    base = rng.gamma(2.0, 0.1, size=40)
    rows = [_row("l2", s, e) for s, e in enumerate(base)] + [_row("l1", s, 1.25 * e) for s, e in enumerate(base)]
    rows += [_row("tukey", s, e * f) for s, (e, f) in enumerate(zip(base, rng.uniform(0.9, 1.3, size=40)))]
    t = efficiency_table(pd.DataFrame(rows)).set_index("loss_label")
    assert t.loc["l1", "efficiency"] == pytest.approx(1 / 1.25**2, rel=1e-12)
    assert t.loc["l1", "ci_low"] == pytest.approx(1 / 1.25**2, rel=1e-9)
    assert t.loc["l1", "textbook"] == pytest.approx(2 / np.pi)
    assert t.loc["tukey", "ci_low"] < t.loc["tukey", "efficiency"] < t.loc["tukey", "ci_high"]
    assert t.loc["l2", "efficiency"] == 1.0


def test_efficiency_needs_clean_data_and_enough_seeds():
    rows = [_row("l2", s, 0.1) for s in range(5)] + [_row("l1", s, 0.2) for s in range(5)]
    assert efficiency_table(pd.DataFrame(rows)) is None  # 5 seeds < MIN_SEEDS
    rows = [_row("l2", s, 0.1, kind="vertical", fraction=0.1) for s in range(30)]
    assert efficiency_table(pd.DataFrame(rows)) is None  # contaminated


def test_breakdown_fraction_is_the_first_median_above_the_multiple_of_the_clean_error():
    fractions = [0.0, 0.1, 0.2, 0.3, 0.4, 0.45]
    rows = []
    for s in range(3):
        for f in fractions:
            kind = "vertical" if f > 0 else "vertical"
            rows.append(_row("l2", s, 1.0 + 10 * f, kind=kind, fraction=f))  # 3x clean first at f=0.3
            rows.append(_row("tukey", s, 1.0 + 0.1 * f, kind=kind, fraction=f))  # never
    t = breakdown_table(pd.DataFrame(rows)).set_index("loss_label")
    assert BREAKDOWN_MULTIPLE == 3.0
    assert t.loc["l2", "breakdown_fraction"] == 0.3  # 1 + 10 * 0.2 = 3 is not above 3
    assert np.isnan(t.loc["tukey", "breakdown_fraction"])
    assert t.loc["tukey", "largest_fraction"] == 0.45


def test_sensitivity_table_needs_one_fraction_and_three_magnitudes():
    rows = [_row("l2", s, m / 10, kind="vertical", fraction=0.1, magnitude=m) for s in range(3) for m in (1, 10, 100)]
    t = sensitivity_table(pd.DataFrame(rows))
    assert list(t["magnitude"]) == [1.0, 10.0, 100.0]
    assert list(t["coef_error_median"]) == [0.1, 1.0, 10.0]
    rows += [_row("l2", 0, 1.0, kind="vertical", fraction=0.2, magnitude=10)]
    assert sensitivity_table(pd.DataFrame(rows)) is None


def test_seed_halves_are_disjoint_and_keep_single_seed_parts_in_both():
    rows = [_row("l2", s, 0.1, study="a") for s in range(6)] + [_row("l2", 0, 0.1, study="b")]
    runs = pd.DataFrame(rows)
    first, second = seed_halves(runs)
    a1, a2 = set(first.loc[first.study == "a", "seed"]), set(second.loc[second.study == "a", "seed"])
    assert a1 == {0, 2, 4} and a2 == {1, 3, 5}
    assert (first.study == "b").sum() == 1 and (second.study == "b").sum() == 1


def test_pooled_pairs_never_cross_studies():
    """Smooth L1 is lower than L2 in study a and higher in study b: pooled C6 sees two groups (one per study),
    not one pooled group where the two studies' jobs pair across."""
    rows = []
    for s in range(8):
        for study, sl1, l2 in (("a", 0.1, 1.0), ("b", 1.0, 0.1)):
            rows.append(_row("smooth_l1", s, sl1, kind="vertical", fraction=0.2, study=study))
            rows.append(_row("l2", s, l2, kind="vertical", fraction=0.2, study=study))
    runs = pd.DataFrame(rows).assign(convex=True, redescending=False)
    c6 = [v for v in evaluate_claims(runs) if v.claim == "C6"][0]
    assert c6.verdict == "qualified"
    assert "lower in 1 of 2 groups" in c6.evidence
