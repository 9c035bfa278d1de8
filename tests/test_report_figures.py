"""What the figures draw (axes, lines, legends, plotted values), coefficient tables and the claim on penalties,
from real fits: a mixed study (real data, penalties) and a contaminated synthetic study with histories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from robustreg.datasets import load_dataset
from robustreg.report import figures, make_report

from test_report_records import fit_record, write_job, write_sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PDF_MAGIC = b"%PDF-"
#: The statuses whose estimate the report compares (``not_converged`` is left out of the error figures).
COMPARED = ("ok", "diverged")


def _make_report_recording(sweep, out):
    """``make_report`` with every Figure it saves recorded: (report, {stem: Figure})."""
    saved = []
    save = figures._Out.save

    def recording_save(self, fig, stem, title, caption=""):
        saved.append((stem, fig))
        return save(self, fig, stem, title, caption)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(figures._Out, "save", recording_save)
        # Draw in this process: figures drawn in forked workers would never reach the recorder.
        mp.setattr(figures.os, "cpu_count", lambda: 1)
        report = make_report(sweep, out, progress=False)
    drawn = dict(saved)
    assert len(drawn) == len(saved), "a figure stem was saved twice"
    assert set(drawn) == {f.name for f in report.figures}
    return report, drawn


def _data_lines(ax) -> list:
    """The labelled lines of an axes (markers such as breakdown rings carry a private ``_`` label)."""
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def _legend_texts(fig) -> list:
    """Every legend entry of a figure: figure legends and axes legends."""
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [t.get_text() for lg in legends for t in lg.get_texts()]


def _line_text(b, w) -> str:
    return f"{b:.3g} {'-' if w < 0 else '+'} {abs(w):.3g} x"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("figs")
    sweep = root / "runs" / "mixed"
    i = 0
    # Without histories (as reference solvers write them): the convergence figures are not drawn here.
    for dataset in ("stars_cyg", "hbk"):
        for loss in ("l1", "l2"):
            rec, _ = fit_record("mixed", str(i), loss=loss, kind="none", fraction=0.0, seed=0, dataset=dataset,
                                max_iter=3000)
            write_job(sweep, str(i), rec, None)
            i += 1
    for penalty in ("l1", "l2"):
        for alpha in (0.01, 0.1, 1.0):
            for seed in (0, 1):
                rec, _ = fit_record("mixed", str(i), loss="l2", kind="none", fraction=0.0, seed=seed,
                                    penalty=penalty, alpha=alpha, max_iter=2000)
                write_job(sweep, str(i), rec, None)
                i += 1
    return _make_report_recording(sweep, root / "results" / "mixed")


@pytest.fixture(scope="module")
def report(mixed):
    return mixed[0]


@pytest.fixture(scope="module")
def drawn(mixed):
    return mixed[1]


def _check(path):
    magic = PNG_MAGIC if path.suffix == ".png" else PDF_MAGIC
    data = path.read_bytes()
    assert data[: len(magic)] == magic and len(data) > 1000, path


def test_real_data_and_penalty_figures_exist(report):
    names = {f.name: f for f in report.figures}
    assert set(names) == {"real_data-stars_cyg", "penalty"}
    for fig in names.values():
        assert [p.suffix for p in fig.files] == [".png", ".pdf"]
        for path in fig.files:
            _check(path)
    skipped = {s.name: s.reason for s in report.skipped}
    assert skipped["error_vs_fraction"] == "no contaminated jobs"
    assert "no job recorded a history" in skipped["convergence"]
    assert "does not vary the step" in skipped["step_map"]


def test_real_data_figure_draws_the_data_and_each_fitted_line(report, drawn):
    ds = load_dataset("stars_cyg")
    fig = drawn["real_data-stars_cyg"]
    [ax] = fig.axes
    assert ax.get_xlabel() == ds.feature_names[0] and ax.get_ylabel() == ds.target_name
    assert ax.get_title() == "stars_cyg: the fitted line of each loss (published data)"
    # The points: every training row once, the documented outliers apart.
    clean_pts, outlier_pts = (c.get_offsets() for c in ax.collections[:2])
    assert len(outlier_pts) == len(ds.known_outliers) > 0
    pts = np.concatenate([clean_pts, outlier_pts])
    want = np.column_stack([ds.X_train[:, 0], ds.y_train])
    np.testing.assert_array_equal(pts[np.lexsort(pts.T[::-1])], want[np.lexsort(want.T[::-1])])
    np.testing.assert_array_equal(np.sort(outlier_pts[:, 1]), np.sort(ds.y_train[ds.known_outliers]))
    # One line per loss of the stars_cyg jobs, at that loss's fitted intercept and slope, then the published fits.
    rows = report.runs[report.runs["dataset"] == "stars_cyg"]
    fits = {r["loss_label"]: (r["intercept"], r["coef"][0]) for _, r in rows.iterrows()}
    assert sorted(fits) == ["l1", "l2"] and fits["l1"] != fits["l2"]
    fits["least squares (published)"] = tuple(ds.published["least_squares"])
    fits["MM (published)"] = tuple(ds.published["mm"])
    lines = ax.get_lines()
    assert len(lines) == len(fits) == 4
    drawn_fits = {}
    for line in lines:
        name, text = line.get_label().split(": ")
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        w = (y[-1] - y[0]) / (x[-1] - x[0])
        b = y[0] - w * x[0]
        np.testing.assert_allclose(y, b + w * x, rtol=1e-12, atol=1e-12)  # a straight line
        assert text == _line_text(*fits[name])
        drawn_fits[name] = (b, w)
    assert set(drawn_fits) == set(fits)
    for name, (b, w) in fits.items():
        assert drawn_fits[name] == pytest.approx((b, w), rel=1e-9, abs=1e-9), name
    # The legend (below the panel, a figure legend): the points, then each line's label.
    assert _legend_texts(fig) == ["data", "documented outliers"] + [line.get_label() for line in lines]


def test_penalty_figure_draws_the_median_zeros_and_norm_at_each_alpha(report, drawn):
    fig = drawn["penalty"]
    top, bottom = fig.axes  # one loss (l2): a column of two panels
    assert top.get_title() == "loss: l2"
    assert top.get_ylabel() == "exactly-zero weights\n(count of 3)"
    assert bottom.get_ylabel() == "weight norm ||w||_2\n(coefficient units)"
    assert bottom.get_xlabel() == "penalty strength alpha" and top.get_xscale() == bottom.get_xscale() == "log"
    assert _legend_texts(fig) == ["l1 penalty", "l2 penalty"]
    runs = report.runs[report.runs["penalty"].isin(["l1", "l2"])]
    # The weight norm is the norm of the recorded coefficients.
    np.testing.assert_allclose(runs["coef_norm"], [np.linalg.norm(c) for c in runs["coef"]], rtol=1e-12)
    for ax, value in ((top, "n_zero_coef"), (bottom, "coef_norm")):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert sorted(lines) == ["l1 penalty", "l2 penalty"]
        for pen in ("l1", "l2"):
            rows = runs[runs["penalty"] == pen]
            med = rows.groupby("alpha")[value].median()
            assert list(med.index) == [0.01, 0.1, 1.0]
            line = lines[f"{pen} penalty"]
            np.testing.assert_array_equal(line.get_xdata(), med.index.to_numpy())
            np.testing.assert_allclose(line.get_ydata(), med.to_numpy(dtype=float), rtol=1e-12)
    zeros = {line.get_label(): list(line.get_ydata()) for line in top.get_lines()}
    assert zeros["l1 penalty"][-1] > 0 and zeros["l2 penalty"] == [0, 0, 0]


def test_coefficient_table_for_multi_feature_real_data(report):
    text = (report.out_dir / "report.md").read_text()
    section = text[text.index("## Real data: fitted coefficients"):]
    hbk = load_dataset("hbk")
    assert "**hbk**" in section and "**stars_cyg**" not in section
    header = "| fit | intercept | " + " | ".join(hbk.feature_names) + " | distance to MM |"
    assert header in section
    mm = hbk.published["mm"]
    assert "| published mm | " + " | ".join(f"{v:.3g}" for v in mm) + " |" in section
    # Least squares by gradient descent lands on the published least-squares fit.
    l2 = report.runs.query("dataset == 'hbk' and loss_label == 'l2'").iloc[0]
    assert [round(c, 2) for c in l2["coef"]] == pytest.approx(list(hbk.published["least_squares"][1:]), abs=0.01)


def test_penalty_claim_from_real_fits(report):
    verdict = {v.claim: v for v in report.verdicts}["C7"]
    # The L1 penalty's proximal step sets weights exactly to 0 at large alpha; the L2 penalty never does.
    assert verdict.verdict == "supported", verdict.evidence
    runs = report.runs
    l1 = runs[(runs["penalty"] == "l1") & (runs["alpha"] == 1.0)]
    l2 = runs[runs["penalty"] == "l2"]
    assert (l1["n_zero_coef"] > 0).all() and (l2["n_zero_coef"] == 0).all()
    assert all(sum(c == 0.0 for c in coef) == n for coef, n in zip(l1["coef"], l1["n_zero_coef"]))


def test_convergence_band_is_the_quantiles_of_every_job_at_each_drawn_iteration():
    """Median and quartiles across jobs, a finished job holding its last value, a job not yet started
    left out; on the log-spaced iterations drawn when there are many."""
    import numpy as np
    import pandas as pd

    from robustreg.report import figures

    rng = np.random.default_rng(0)
    lengths = {"a": 3000, "b": 40, "c": 1200, "d": 2500}
    rows = [(it, job, float(rng.lognormal())) for job, n in lengths.items() for it in range(n)]
    rows += [(it, "late", 1.0 + it) for it in range(100, 2000)]  # its first record is at iteration 100
    hist = pd.DataFrame(rows, columns=["iteration", "job_dir", "objective"])
    x, q = figures._band(hist, "objective")
    assert len(x) <= figures._MAX_POINTS and x[0] == 0 and x[-1] == 2999 and np.all(np.diff(x) > 0)
    wide = hist.pivot(index="iteration", columns="job_dir", values="objective").reindex(np.arange(3000)).ffill()
    ref = np.nanquantile(wide.to_numpy()[x], [0.25, 0.5, 0.75], axis=1)
    np.testing.assert_array_equal(q, ref)
    # Before iteration 100 the late job is not counted; after iteration 40 job b holds its last value.
    assert q[1, 0] == np.median(wide.loc[0, ["a", "b", "c", "d"]])


# ------------------------------------------------- a contaminated synthetic study (with histories)
FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.45)
KIND_TITLES = {"leverage": "leverage points", "vertical": "vertical outliers"}


@pytest.fixture(scope="module")
def contaminated(tmp_path_factory):
    root = tmp_path_factory.mktemp("contaminated")
    sweep = root / "runs" / "contaminated"
    write_sweep(sweep, study="contaminated", losses=("l1", "l2"), kinds=("vertical", "leverage"),
                fractions=FRACTIONS, seeds=range(3), missing=0, failed=0)
    return _make_report_recording(sweep, root / "results" / "contaminated")


def _compared(runs, kind, label):
    return runs[(runs["outliers"] == kind) & (runs["loss_label"] == label) & runs["status"].isin(COMPARED)]


def test_contaminated_study_draws_its_figures(contaminated):
    report, drawn = contaminated
    assert sorted(drawn) == ["breakdown", "convergence-leverage", "convergence-vertical", "error_vs_fraction",
                             "grad_norm"]
    for fig in report.figures:
        assert [p.suffix for p in fig.files] == [".png", ".pdf"]
        for path in fig.files:
            _check(path)


def test_error_vs_fraction_draws_the_median_coef_error_of_each_loss(contaminated):
    report, drawn = contaminated
    fig = drawn["error_vs_fraction"]
    runs, summary = report.runs, report.summary
    assert [ax.get_title() for ax in fig.axes] == ["leverage points", "vertical outliers"]
    assert fig.axes[0].get_ylabel() == "parameter error ||w - w_ref||_2\n(coefficient units; median, 95% CI)"
    assert sorted(_legend_texts(fig)) == ["l1", "l2"]
    for ax, kind in zip(fig.axes, ("leverage", "vertical")):
        assert ax.get_xlabel() == "contamination fraction (share of training rows)"
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert sorted(lines) == ["l1", "l2"] and len(ax.get_lines()) == 2
        for label, line in lines.items():
            jobs = _compared(runs, kind, label)
            want = jobs.groupby("fraction")["coef_error"].median()
            assert list(want.index) == list(FRACTIONS) and (jobs.groupby("fraction").size() == 3).all()
            np.testing.assert_array_equal(line.get_xdata(), want.index.to_numpy())
            np.testing.assert_allclose(line.get_ydata(), want.to_numpy(), rtol=1e-12)
            # The same medians as the summary table's.
            table = summary[(summary["loss_label"] == label) & (summary["outliers"] == kind)].sort_values("fraction")
            np.testing.assert_allclose(line.get_ydata(), table["coef_error_median"].to_numpy(), rtol=1e-12)
            # Fraction 0: the median error of this loss's clean jobs.
            clean = jobs.loc[jobs["fraction"] == 0, "coef_error"]
            assert line.get_ydata()[0] == pytest.approx(np.median(clean), rel=1e-12)
        # The two losses are told apart (least squares breaks down under contamination, L1 less so).
        assert lines["l2"].get_ydata()[-1] > lines["l1"].get_ydata()[-1]


def test_breakdown_figure_draws_the_fraction_medians_and_rings_the_breakdown(contaminated):
    report, drawn = contaminated
    fig = drawn["breakdown"]
    table = pd.read_csv(report.out_dir / "breakdown.csv")
    assert [ax.get_title() for ax in fig.axes] == ["bad leverage points (x and y)", "vertical outliers (response)"]
    assert fig.axes[0].get_ylabel() == "median parameter error ||w - w*||"
    assert sorted(_legend_texts(fig)) == ["l1", "l2"]
    runs = report.runs
    for ax, kind in zip(fig.axes, ("leverage", "vertical")):
        assert ax.get_xlabel() == "contamination fraction (share of training rows)"
        lines = {line.get_label(): line for line in _data_lines(ax)}
        assert sorted(lines) == ["l1", "l2"]
        rings = {}
        for ring in ax.get_lines():
            if ring.get_label().startswith("_"):
                [owner] = [lab for lab, line in lines.items() if line.get_color() == ring.get_markeredgecolor()]
                rings[owner] = (ring.get_xdata()[0], ring.get_ydata()[0])
        for label, line in lines.items():
            want = _compared(runs, kind, label).groupby("fraction")["coef_error"].median()
            np.testing.assert_array_equal(line.get_xdata(), want.index.to_numpy())
            np.testing.assert_allclose(line.get_ydata(), want.to_numpy(), rtol=1e-12)
            row = table[(table["loss_label"] == label) & (table["outliers"] == kind)].iloc[0]
            assert line.get_ydata()[0] == pytest.approx(row["clean_error_median"], rel=1e-5)
            assert line.get_ydata()[-1] == pytest.approx(row["error_median_at_largest"], rel=1e-5)
            # A ring exactly where the table puts the breakdown, on the line; none where it holds.
            if np.isfinite(row["breakdown_fraction"]):
                x, y = rings.pop(label)
                assert x == pytest.approx(row["breakdown_fraction"])
                assert y == pytest.approx(want[x], rel=1e-12) and y > 3 * want[0.0]
                assert (want[want.index < x] <= 3 * want[0.0]).all()
        assert not rings, f"rings not in breakdown.csv: {rings}"


def test_convergence_figures_draw_one_band_per_loss_in_every_panel(contaminated):
    report, drawn = contaminated
    runs = report.runs
    hist = pd.read_parquet(report.out_dir / "histories.parquet")
    hist["job_dir"] = hist["job_dir"].astype(str)
    for kind, name in KIND_TITLES.items():
        fig = drawn[f"convergence-{kind}"]
        n = len(FRACTIONS)
        assert len(fig.axes) == 2 * n
        top, bottom = fig.axes[:n], fig.axes[n:]
        assert [ax.get_title() for ax in top] == ["clean (fraction 0)"] + [f"{name}, fraction {f:g}"
                                                                          for f in FRACTIONS[1:]]
        assert top[0].get_ylabel() == "relative objective gap\n(f - f*) / |f*|"
        assert bottom[0].get_ylabel() == "parameter error ||w - w_ref||_2\n(coefficient units)"
        assert all(ax.get_xlabel() == "iteration + 1" for ax in bottom)
        assert sorted(_legend_texts(fig)) == ["l1", "l2"]
        for ax in fig.axes:
            assert sorted(line.get_label() for line in ax.get_lines()) == ["l1", "l2"]
        # The parameter-error band starts at the median of the jobs' first recorded errors and ends at the
        # median of their last ones (a job that stopped earlier holds its last value).
        for ax, f in zip(bottom, FRACTIONS):
            for line in ax.get_lines():
                jobs = runs[(runs["outliers"] == kind) & (runs["fraction"] == f)
                            & (runs["loss_label"] == line.get_label())]
                h = hist[hist["job_dir"].isin(jobs["job_dir"].astype(str))].sort_values(["job_dir", "iteration"])
                ends = h.groupby("job_dir")["coef_error"]
                assert len(jobs) == 3 == ends.ngroups
                assert line.get_xdata()[0] == 1 and line.get_xdata()[-1] == jobs["history_length"].max()
                assert line.get_ydata()[0] == pytest.approx(np.median(ends.first()), rel=1e-12)
                assert line.get_ydata()[-1] == pytest.approx(np.median(ends.last()), rel=1e-12)


def test_grad_norm_figure_draws_the_median_gradient_norm_of_each_loss(contaminated):
    report, drawn = contaminated
    fig = drawn["grad_norm"]
    runs = report.runs
    top = max(FRACTIONS)
    assert [ax.get_title() for ax in fig.axes] == ["clean", f"leverage points, fraction {top:g}",
                                                   f"vertical outliers, fraction {top:g}"]
    assert fig.axes[0].get_ylabel() == "gradient norm ||grad F||_2\n(objective units per coefficient unit)"
    assert sorted(_legend_texts(fig)) == ["l1", "l2"]
    hist = pd.read_parquet(report.out_dir / "histories.parquet")
    hist["job_dir"] = hist["job_dir"].astype(str)
    for ax, sel in zip(fig.axes, (runs["fraction"] == 0,
                                  (runs["outliers"] == "leverage") & (runs["fraction"] == top),
                                  (runs["outliers"] == "vertical") & (runs["fraction"] == top))):
        assert ax.get_xlabel() == "iteration + 1"
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert sorted(lines) == ["l1", "l2"]
        for label, line in lines.items():
            jobs = runs[sel & (runs["loss_label"] == label)]
            first = hist[hist["job_dir"].isin(jobs["job_dir"].astype(str)) & (hist["iteration"] == 0)]
            assert len(first) == len(jobs) > 0
            x, y = line.get_xdata(), line.get_ydata()
            assert x[0] == 1 and y[0] == pytest.approx(np.median(first["grad_norm"]), rel=1e-12)
            assert y[-1] == pytest.approx(np.median(jobs["final_grad_norm"]), rel=1e-9)
