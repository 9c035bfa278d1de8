"""Real-data and penalty figures, coefficient tables and the claim on penalties, from real fits."""

from __future__ import annotations

import pytest

from robustreg.datasets import load_dataset
from robustreg.report import make_report

from test_report_records import fit_record, write_job

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PDF_MAGIC = b"%PDF-"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
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
    return make_report(sweep, root / "results" / "mixed", progress=False)


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
