"""Summary, paired comparisons and history measures against direct numpy / scipy computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from robustreg.report import style
from robustreg.report.style import PALETTE, STYLES, overlap_note, style_map
from robustreg.report.tables import (
    COVERAGE_STATS,
    PAIRED_COLUMNS,
    PAIRED_STATS,
    SETTLE_TOL,
    SUMMARY_STATS,
    compare,
    coverage_table,
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
    palette = set(PALETTE.values())
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


# ---------------------------------------------------------------- empty tables keep their header
def _written_tables(runs, tmp_path):
    """``write_tables`` on ``runs`` (no histories) into ``tmp_path``."""
    from robustreg.report import write_tables
    from robustreg.report.collect import Collection

    runs = runs.assign(coef=[[0.5, -0.5]] * len(runs), intercept=1.0)
    histories = pd.DataFrame({"job_dir": pd.Categorical([]), "iteration": np.zeros(0, dtype="int64"),
                              **{c: np.zeros(0) for c in ("objective", "grad_norm", "step", "coef_error")}})
    coll = Collection(sweep_dir=tmp_path, runs=runs, histories=histories, expected=len(runs))
    summary, paired = summary_table(runs), paired_table(runs)
    write_tables(runs, summary, paired, coll, tmp_path)
    return summary, paired


def test_paired_csv_without_l2_baseline_has_its_header(tmp_path):
    runs = _runs()
    runs = runs[runs["loss_label"] != "l2"].reset_index(drop=True)
    _, paired = _written_tables(runs, tmp_path)
    assert paired.empty
    read = pd.read_csv(tmp_path / "paired.csv")
    assert len(read) == 0
    # The columns a pair row would have: loss, baseline, the varying keys, then the statistics.
    assert list(read.columns) == ["loss_label", "baseline", "fraction", "eta0", *PAIRED_STATS]
    assert list(read.columns) == list(paired.columns)
    # Every other CSV has its header row too.
    for name in ("runs.csv", "coefficients.csv", "summary.csv"):
        assert len(pd.read_csv(tmp_path / name).columns) > 1, name


def test_paired_columns_are_the_same_with_and_without_pairs():
    runs = _runs()
    with_pairs = paired_table(runs)
    without = paired_table(runs[runs["loss_label"] != "l2"])
    assert list(with_pairs.columns) == list(without.columns)
    assert tuple(with_pairs.columns[-len(PAIRED_STATS):]) == PAIRED_STATS
    assert tuple(compare(pd.DataFrame({"value": [1.0, 2.0], "value_baseline": [2.0, 2.0]}))) == PAIRED_STATS
    # Nothing to compare at all: the columns every paired table has.
    assert list(paired_table(runs.iloc[0:0])) == list(PAIRED_COLUMNS)


def test_empty_summary_and_coverage_keep_their_columns():
    runs = _runs()
    summary = summary_table(runs.assign(status="missing"))
    assert summary.empty and tuple(summary.columns[-len(SUMMARY_STATS):]) == SUMMARY_STATS
    assert list(summary.columns[:3]) == ["loss_label", "outliers", "fraction"]
    coverage = coverage_table(runs)  # no standard errors in these records
    assert coverage.empty and tuple(coverage.columns[-len(COVERAGE_STATS):]) == COVERAGE_STATS


# ---------------------------------------------------------------- colours
def _relative_luminance(color: str) -> float:
    """WCAG 2.1 relative luminance of an sRGB colour ``#RRGGBB``."""
    channels = [int(color.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast_with_white(color: str) -> float:
    return (1.0 + 0.05) / (_relative_luminance(color) + 0.05)


def test_contrast_formula_on_known_values():
    assert _contrast_with_white("#000000") == pytest.approx(21.0)
    assert _contrast_with_white("#FFFFFF") == pytest.approx(1.0)
    assert _contrast_with_white("#767676") == pytest.approx(4.54, abs=0.01)  # the usual 4.5:1 grey


def test_every_colour_reads_on_white():
    colours = {s["color"] for s in STYLES.values()} | set(style._SPARE) | set(PALETTE.values())
    ratios = {c: _contrast_with_white(c) for c in colours}
    assert min(ratios.values()) >= 3.0, {c: round(r, 2) for c, r in ratios.items() if r < 3}
    # The spare colours too, as style_map hands them out.
    spares = style_map([f"mystery{i}" for i in range(len(style._SPARE))])
    assert all(_contrast_with_white(s["color"]) >= 3.0 for s in spares.values())


# ---------------------------------------------------------------- overlapping lines
def test_huber_is_delta_times_smooth_l1_with_beta_delta():
    """The identity overlap_note relies on."""
    from robustreg.losses import get_loss

    r = np.linspace(-6, 6, 241)
    for d in (0.5, 1.0, 2.0):
        huber, smooth = get_loss("huber", delta=d), get_loss("smooth_l1", beta=d)
        np.testing.assert_allclose(huber.rho(r), d * smooth.rho(r), rtol=1e-12, atol=1e-15)
        barron, pseudo = get_loss("barron", alpha=1.0, c=d), get_loss("pseudo_huber", delta=d)
        np.testing.assert_allclose(pseudo.rho(r), d * d * barron.rho(r), rtol=1e-9, atol=1e-15)


def test_overlap_note_smooth_l1_and_huber():
    from robustreg.losses import get_loss

    defaults_equal = get_loss("huber").delta == get_loss("smooth_l1").beta
    labels = ["l1", "l2", "smooth_l1", "huber", "tukey"]
    # A label at its loss's default constants: the constants come from the records (here, the loss library).
    constants = {name: (name, get_loss(name).params()) for name in labels}
    note = overlap_note(labels, constants)
    if defaults_equal:
        assert "smooth_l1 and huber are the same loss" in note and "drawn last hides" in note
    else:
        assert note is None
    # Without the constants, a bare name says nothing of them: no claim is made.
    assert overlap_note(labels) is None
    note = overlap_note(["smooth_l1 (beta=2)", "huber (delta=2)"])
    assert "same minimizer" in note and "factor 2" in note
    # Other constants: other estimators, nothing to say.
    assert overlap_note(["smooth_l1", "huber (delta=1.345)"]) is None
    assert overlap_note(["smooth_l1 (beta=2)", "huber"]) is None
    assert overlap_note(["l1", "l2", "tukey", "welsch"]) is None
    assert overlap_note([]) is None


def test_overlap_note_reference_solvers():
    note = overlap_note(["l2", "sklearn_ols"])
    assert "sklearn_ols" in note and "l2" in note and "drawn last hides" in note
    note = overlap_note(["huber", "sklearn_huber"])
    assert "another estimator" in note and "hides" not in note
    # A solver without its loss in the figure: its colour is its own there.
    assert overlap_note(["l1", "sklearn_ols"]) is None
    assert STYLES["sklearn_ols"]["color"] == STYLES["l2"]["color"]
