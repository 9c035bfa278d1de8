"""Summary, paired comparisons and history measures against direct numpy / scipy computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from robustreg.report.style import OKABE_ITO, STYLES, style_map
from robustreg.report.tables import (
    SETTLE_TOL,
    history_metrics,
    median_interval,
    paired_table,
    summary_table,
)


def _runs(seed=0):
    """Three losses x two fractions x 7 seeds, plus two step sizes; errors drawn at random."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in ("l1", "l2", "smooth_l1"):
        for frac in (0.0, 0.2):
            for eta0 in (0.1, 1.0):
                for s in range(7):
                    rows.append({
                        "job_dir": f"{label}-{frac}-{eta0}-{s}", "status": "ok", "study": "t",
                        "dataset": "synthetic", "outliers": "vertical", "fraction": frac, "magnitude": 10.0,
                        "loss_label": label, "model": "gd", "learning_rate": "constant", "eta0": eta0, "seed": s,
                        "coef_error": float(rng.gamma(2.0, 0.3 if label != "l2" else 0.6)),
                        "diverged": False, "converged": True, "n_iter": int(rng.integers(10, 100)),
                        "test_rmse": float(rng.uniform(1, 2)),
                    })
    return pd.DataFrame(rows)


def test_summary_matches_numpy_and_scipy():
    runs = _runs()
    summary = summary_table(runs)
    assert len(summary) == 3 * 2 * 2
    assert list(summary.columns[:4]) == ["loss_label", "outliers", "fraction", "eta0"]
    for _, row in summary.iterrows():
        sel = runs[(runs["loss_label"] == row["loss_label"]) & (runs["fraction"] == row["fraction"])
                   & (runs["eta0"] == row["eta0"])]
        err = sel["coef_error"].to_numpy()
        assert row["n"] == 7 and row["diverged"] == 0 and row["failed"] == 0
        assert row["coef_error_median"] == np.median(err)
        assert row["coef_error_mean"] == pytest.approx(np.mean(err), rel=1e-12)
        ci = stats.bootstrap((err,), np.median, method="percentile", n_resamples=2000,
                             rng=np.random.default_rng(0)).confidence_interval
        assert (row["coef_error_ci_low"], row["coef_error_ci_high"]) == pytest.approx((ci.low, ci.high))
        assert row["coef_error_ci_low"] <= row["coef_error_median"] <= row["coef_error_ci_high"]
        assert row["n_iter_median"] == np.median(sel["n_iter"])
        assert row["test_rmse_median"] == np.median(sel["test_rmse"])


def test_summary_does_not_depend_on_row_order():
    runs = _runs()
    shuffled = runs.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(summary_table(runs), summary_table(shuffled))
    pd.testing.assert_frame_equal(paired_table(runs), paired_table(shuffled))


def test_paired_matches_direct_merge():
    runs = _runs()
    paired = paired_table(runs)
    assert set(paired["loss_label"]) == {"l1", "smooth_l1"} and (paired["baseline"] == "l2").all()
    assert len(paired) == 2 * 2 * 2
    for _, row in paired.iterrows():
        key = (runs["fraction"] == row["fraction"]) & (runs["eta0"] == row["eta0"])
        a = runs[key & (runs["loss_label"] == row["loss_label"])].set_index("seed")["coef_error"]
        b = runs[key & (runs["loss_label"] == "l2")].set_index("seed")["coef_error"]
        d = (a - b).sort_index().to_numpy()
        assert row["n_pairs"] == 7
        assert row["median_diff"] == np.median(d)
        assert row["win_share"] == np.mean(d < 0)
        ci = stats.bootstrap((d,), np.median, method="percentile", n_resamples=2000,
                             rng=np.random.default_rng(0)).confidence_interval
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
        expected = "lower" if ci.high < 0 else "higher" if ci.low > 0 else "not significant"
        assert row["difference"] == expected


def test_reference_solvers_pair_with_exact_least_squares():
    rows = []
    for label, model in (("l2", "gd"), ("sklearn_ols", "sklearn_ols"), ("sklearn_huber", "sklearn_huber")):
        for s in range(5):
            rows.append({"job_dir": f"{label}{s}", "status": "ok", "outliers": "vertical", "fraction": 0.2,
                         "loss_label": label, "model": model, "seed": s,
                         "eta0": 1.0 if model == "gd" else math.nan,
                         "epsilon": 1.35 if model == "sklearn_huber" else math.nan,
                         "coef_error": {"l2": 1.0, "sklearn_ols": 2.0, "sklearn_huber": 0.5}[label] + s / 100,
                         "diverged": False})
    paired = paired_table(pd.DataFrame(rows)).set_index("loss_label")
    assert paired.loc["sklearn_huber", "baseline"] == "sklearn_ols"
    assert paired.loc["sklearn_huber", "median_diff"] == pytest.approx(-1.5)
    assert paired.loc["sklearn_ols", "baseline"] == "l2"
    assert paired.loc["sklearn_ols", "median_diff"] == pytest.approx(1.0)


def test_non_finite_error_counts_as_infinite():
    runs = _runs()
    mask = (runs["loss_label"] == "l2") & (runs["fraction"] == 0.2) & (runs["eta0"] == 1.0)
    runs.loc[runs[mask].index[:4], "coef_error"] = math.nan
    runs.loc[runs[mask].index[:4], "diverged"] = True
    row = summary_table(runs).query("loss_label == 'l2' and fraction == 0.2 and eta0 == 1.0").iloc[0]
    assert row["diverged"] == 4
    assert row["coef_error_median"] == math.inf and row["coef_error_mean"] == math.inf
    assert row["coef_error_ci_high"] == math.inf
    pair = paired_table(runs).query("loss_label == 'l1' and fraction == 0.2 and eta0 == 1.0").iloc[0]
    assert pair["win_share"] >= 4 / 7 and pair["median_diff"] == -math.inf


def test_interval_degenerate_cases():
    assert all(math.isnan(v) for v in median_interval([1.0]))
    assert median_interval([2.0, 2.0, 2.0]) == (2.0, 2.0)


def _history(job, objective, grad=None):
    n = len(objective)
    return pd.DataFrame({"job_dir": job, "iteration": np.arange(n), "objective": objective,
                         "grad_norm": np.ones(n) if grad is None else grad, "step": 0.1,
                         "coef_error": 0.0})


def test_history_metrics_by_hand():
    n = 40
    descent = 1.0 + 2.0 ** -np.arange(n)
    zigzag = 1.0 + 0.1 * (np.arange(n) % 2)          # rises at every other step, never settles
    zigzag[0] = 2.0
    grad = np.r_[np.full(n // 2, 4.0), np.full(n - n // 2, 1.0)]
    hist = pd.concat([_history("a", descent, grad), _history("b", zigzag), _history("c", descent[:5])])
    hist["job_dir"] = hist["job_dir"].astype("category")
    m = history_metrics(hist)
    assert m.loc["a", "tail_increase_share"] == 0.0
    assert m.loc["a", "tail_grad_ratio"] == 1.0 / 4.0
    gap = (descent - descent.min()) / (descent[0] - descent.min())
    assert m.loc["a", "settle_iter"] == np.flatnonzero(gap > SETTLE_TOL)[-1] + 1
    assert m.loc["b", "tail_increase_share"] == 0.5
    assert m.loc["b", "settle_iter"] == math.inf
    assert m.loc["c", "history_length"] == 5 and math.isnan(m.loc["c", "settle_iter"])


def test_style_map_one_look_per_loss():
    labels = ["l1", "l2", "smooth_l1", "huber", "huber (delta=2)", "tukey", "sklearn_huber", "mystery"]
    styles = style_map(labels)
    assert set(styles) == set(labels)
    palette = set(OKABE_ITO.values())
    assert all(s["color"] in palette for s in styles.values())
    assert len({styles[l]["color"] for l in ("l1", "l2", "smooth_l1")}) == 3
    assert styles["huber (delta=2)"]["color"] == STYLES["huber"]["color"]
    assert styles["huber (delta=2)"]["linestyle"] != STYLES["huber"]["linestyle"]
    looks = {(s["color"], s["marker"], str(s["linestyle"])) for s in styles.values()}
    assert len(looks) == len(labels)
    # The same label looks the same whatever else the study holds.
    assert style_map(["l1", "tukey"])["tukey"] == styles["tukey"]


def test_coverage_counts_the_intervals_that_hold_the_truth():
    from robustreg.report.tables import coverage_table

    rng = np.random.default_rng(3)
    rows, held = [], {0.0: [], 0.2: []}
    for frac in (0.0, 0.2):
        for s in range(25):
            true = [1.0, 2.0, -1.0]
            est = list(np.array(true) + rng.normal(scale=0.3 if frac else 0.1, size=3))
            bse = [0.1, 0.1, 0.1]
            held[frac].extend(abs(e - t) <= 1.959963984540054 * b for e, t, b in zip(est, true, bse))
            rows.append({"job_dir": f"{frac}/{s}", "status": "ok", "loss_label": "huber", "loss": "huber",
                         "outliers": "vertical", "fraction": frac, "magnitude": 10.0, "seed": s, "coef_error": 0.0,
                         "diverged": False, "coef": est[1:], "intercept": est[0], "bse": bse, "coef_true": true})
    table = coverage_table(pd.DataFrame(rows))
    assert list(table["fraction"]) == [0.0, 0.2] and list(table["n"]) == [25, 25]
    assert list(table["intervals"]) == [75, 75]
    for frac, row in zip((0.0, 0.2), table.itertuples()):
        assert row.coverage == pytest.approx(np.mean(held[frac]))
    assert table["coverage"].iloc[0] > 0.85 > table["coverage"].iloc[1]  # bias/noise beyond the SE: too narrow
