"""The ``not_converged`` job status end to end.

A job that has no optimality certificate and did not diverge is written with status
``not_converged``; the report counts and lists it, leaves it out of the
comparisons of estimates (summary and paired tables, error figures, the
robustness parts of the claim rules) and keeps it in what gradient descent did
(histories, convergence figures, the rules on dynamics).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from robustreg.study.spec import LOSS_CONFS, GDConf, JobConf, OutliersConf, ReferenceSolverConf, SyntheticConf
from robustreg.study.job import job_status, run_job
from robustreg.report import collect, figures, make_report
from robustreg.report.collect import dynamics_runs, estimator_runs
from robustreg.report.style import style_map
from robustreg.report.tables import add_history_metrics, paired_table, paired_values, summary_table
from robustreg.report.verdicts import (
    RULES,
    c1_l1_bounded_gradient,
    c2_l1_fixed_step_oscillates,
    c3_l2_stable,
    c4_l2_not_robust_explodes,
    c5_smooth_l1_fast_and_bounded,
    c6_smooth_l1_beats_l2,
    rule_text,
)

from test_report_records import fit_record, write_job
from test_report_verdicts import c1_table, c2_table, c4_table, c5_table, c6_table, grid, table


# ------------------------------------------------------------------ the record
def _spec(model, loss="l2", seed=0):
    return JobConf(
        name="nc",
        seed=seed,
        dataset=SyntheticConf(n_train=60, n_test=50, n_features=3, seed=seed),
        outliers=OutliersConf(kind="vertical", fraction=0.1, seed=seed),
        loss=LOSS_CONFS[loss](),
        model=model,
    )


def test_job_status_from_the_two_flags():
    assert job_status(converged=True, diverged=False) == "ok"
    assert job_status(converged=False, diverged=False) == "not_converged"
    assert job_status(converged=False, diverged=True) == "diverged"


def test_gd_job_stopped_at_max_iter_is_written_not_converged(tmp_path):
    # Huber's fit takes more than two iterations (least squares may take a single exact step).
    record = run_job(_spec(GDConf(max_iter=2), loss="huber"), tmp_path / "short")
    on_disk = json.loads((tmp_path / "short" / "metrics.json").read_text())
    for rec in (record, on_disk):
        assert rec["status"] == "not_converged"
        assert rec["converged"] is False and rec["diverged"] is False
        assert rec["n_iter"] == 2
    # Done all the same: its history is written beside it.
    assert len(pd.read_parquet(tmp_path / "short" / "history.parquet")) == 2
    full = run_job(_spec(GDConf(max_iter=5000)), tmp_path / "full")
    assert full["status"] == "ok" and full["converged"] is True


def test_reference_solver_that_warns_is_written_not_converged(tmp_path):
    record = run_job(_spec(ReferenceSolverConf(name="sklearn_huber", params={"max_iter": 1})), tmp_path)
    assert any(w.startswith("ConvergenceWarning") for w in record["warnings"])
    assert record["status"] == "not_converged"
    assert record["converged"] is False and record["diverged"] is False


@pytest.mark.parametrize(
    "fields, status",
    [
        ({"converged": False, "diverged": False}, "not_converged"),
        ({"converged": True, "diverged": False}, "ok"),
        ({"converged": False, "diverged": True}, "diverged"),
        ({}, "ok"),  # no flag at all: nothing says it did not converge
        ({"status": "ok", "converged": False, "diverged": False}, "ok"),  # a written status is kept
    ],
)
def test_record_status_is_read_or_derived_from_the_flags(tmp_path, fields, status):
    rec, hist = fit_record("old", "a", loss="l1", kind="none", fraction=0.0, seed=0, max_iter=20)
    for key in ("status", "converged", "diverged"):
        rec.pop(key)
    rec.update(fields)
    write_job(tmp_path / "old", "a", rec, hist)
    coll = collect(tmp_path / "old", progress=False)
    assert coll.runs["status"].tolist() == [status]
    assert coll.counts()["not_converged"] == int(status == "not_converged")
    assert coll.counts()["done"] == 1


# ------------------------------------------------------------------- a sweep
#: (loss, fraction, seed) of the jobs written as cut off at max_iter.
CUT_SHORT = {("l1", 0.2, 0), ("l2", 0.0, 1)}
#: Their parameter error: far above every other job's, so that any table holding it shows it.
NC_ERROR = 50.0
SEEDS = range(6)


@pytest.fixture(scope="module")
def nc_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("nc")
    sweep = root / "runs" / "nc"
    cut = {}
    i = 0
    for loss in ("l1", "l2"):
        for fraction in (0.0, 0.2):
            for seed in SEEDS:
                job_dir = f"{i:02d}"
                rec, hist = fit_record("nc", job_dir, loss=loss, kind="vertical", fraction=fraction, seed=seed)
                if (loss, fraction, seed) in CUT_SHORT:
                    # As run_job writes a job that stopped at max_iter without converging.
                    rec.update(status="not_converged", converged=False, diverged=False, coef_error=NC_ERROR,
                               n_iter=rec["model"]["params"]["max_iter"], final_grad_norm=0.5)
                    cut[(loss, fraction, seed)] = job_dir
                write_job(sweep, job_dir, rec, hist)
                i += 1
    coll = collect(sweep, progress=False)
    runs = add_history_metrics(coll.runs, coll.histories)
    return {"root": root, "sweep": sweep, "coll": coll, "runs": runs, "cut": cut}


def test_sweep_counts_not_converged_jobs(nc_sweep):
    coll, cut = nc_sweep["coll"], nc_sweep["cut"]
    counts = coll.counts()
    assert counts["done"] == 24 and counts["not_converged"] == 2
    nc = coll.runs[coll.runs["status"] == "not_converged"]
    assert sorted(nc["job_dir"]) == sorted(cut.values())
    assert set(estimator_runs(coll.runs)["job_dir"]).isdisjoint(cut.values())
    assert set(cut.values()) <= set(dynamics_runs(coll.runs)["job_dir"])


def test_not_converged_jobs_are_absent_from_summary_and_paired_tables(nc_sweep):
    runs = nc_sweep["runs"]
    summary = summary_table(runs).set_index(["loss_label", "fraction"])
    for (loss, fraction, seed) in CUT_SHORT:
        row = summary.loc[(loss, fraction)]
        others = runs[(runs["loss_label"] == loss) & (runs["fraction"] == fraction) & (runs["seed"] != seed)]
        assert row["n"] == 5 and row["not_converged"] == 1
        assert row["coef_error_median"] == np.median(others["coef_error"])
        assert row["coef_error_mean"] == pytest.approx(np.mean(others["coef_error"]), rel=1e-12)
    # The groups without a cut-off job keep all six.
    assert summary.loc[("l1", 0.0), "n"] == 6 and summary.loc[("l1", 0.0), "not_converged"] == 0
    assert (summary["coef_error_mean"] < NC_ERROR / 6).all()

    paired = paired_table(runs).set_index("fraction")
    assert paired.loc[0.2, "n_pairs"] == 5 and paired.loc[0.0, "n_pairs"] == 5
    pairs = paired_values(runs, "l1", "l2")
    assert sorted(pairs.loc[pairs["fraction"] == 0.2, "seed"]) == [1, 2, 3, 4, 5]
    assert sorted(pairs.loc[pairs["fraction"] == 0.0, "seed"]) == [0, 2, 3, 4, 5]
    assert NC_ERROR not in set(pairs["value"]) | set(pairs["value_baseline"])


def test_not_converged_jobs_keep_their_histories(nc_sweep):
    coll, runs, cut = nc_sweep["coll"], nc_sweep["runs"], nc_sweep["cut"]
    h = coll.histories
    for job_dir in cut.values():
        direct = pd.read_parquet(nc_sweep["sweep"] / job_dir / "history.parquet")
        assert (h["job_dir"] == job_dir).sum() == len(direct) > 0
        assert runs.loc[runs["job_dir"] == job_dir, "history_length"].iloc[0] == len(direct)


def test_convergence_figures_draw_not_converged_jobs_error_figure_does_not(nc_sweep, tmp_path, monkeypatch):
    runs, histories, cut = nc_sweep["runs"], nc_sweep["coll"].histories, nc_sweep["cut"]
    drawn, errors = set(), []
    rows_of, errors_of = figures._rows_of, figures._errors
    monkeypatch.setattr(figures, "_rows_of", lambda hist, pos, jobs: (drawn.update(jobs), rows_of(hist, pos, jobs))[1])
    monkeypatch.setattr(figures, "_errors", lambda values: (errors.extend(values), errors_of(values))[1])
    out = figures._Out(tmp_path, style_map(runs["loss_label"].dropna().unique()))
    figures._convergence(runs, histories, out)
    figures._grad_norm(runs, histories, out)
    assert set(cut.values()) <= drawn
    assert {f.name for f in out.figures} == {"convergence-vertical", "grad_norm"}
    figures._error_vs_fraction(runs, out)
    assert "error_vs_fraction" in {f.name for f in out.figures}
    assert len(errors) == 24 - 2 and NC_ERROR not in errors


def test_report_counts_and_lists_not_converged_jobs(nc_sweep):
    out = nc_sweep["root"] / "report"
    report = make_report(nc_sweep["sweep"], out, progress=False, figures=False)
    c = report.collection.counts()
    text = (out / "report.md").read_text()
    assert "| expected | done | failed | diverged | not converged | missing |" in text
    assert f"| 24 | 24 | 0 | {c['diverged']} | 2 | 0 |" in text
    section = text[text.index("## Failed, not-converged and missing jobs"):text.index("## Methods")]
    assert "Not converged (2:" in section
    assert "| job_dir | loss_label | model | dataset | outliers | fraction | seed | reason |" in section
    for (loss, fraction, seed), job_dir in nc_sweep["cut"].items():
        assert (f"| {job_dir} | {loss} | gd | synthetic | vertical | {fraction:.3g} | {seed} | stopped at n_iter 300 "
                "= max_iter 300, final gradient norm 0.5 without an optimality certificate |") in section
    assert "*estimator jobs* are" in text and "*dynamics jobs* are" in text
    assert json.loads((out / "report.json").read_text())["counts"]["not_converged"] == 2
    summary = pd.read_csv(out / "summary.csv")
    assert summary["not_converged"].sum() == 2 and summary["n"].sum() == 22
    runs_csv = pd.read_csv(out / "runs.csv", dtype={"job_dir": str})
    assert sorted(runs_csv.loc[runs_csv["status"] == "not_converged", "job_dir"]) == sorted(nc_sweep["cut"].values())


# ------------------------------------------------------------------- tables
def test_summary_counts_not_converged_and_measures_the_others():
    rows = table(grid(["l1", "l2"], [("vertical", 0.2)], seeds=range(7),
                      coef_error=lambda label, kind, frac, seed: 0.1 * (seed + 1)))
    nc = (rows["loss_label"] == "l1") & (rows["seed"] == 6)
    rows.loc[nc, ["status", "converged", "coef_error"]] = ["not_converged", False, 100.0]
    row = summary_table(rows).set_index("loss_label").loc["l1"]
    assert row["n"] == 6 and row["not_converged"] == 1 and row["diverged"] == 0
    assert row["coef_error_median"] == pytest.approx(0.35) and row["coef_error_mean"] == pytest.approx(0.35)
    # The share that met the stopping rule is over every done job of the group.
    assert row["converged_share"] == pytest.approx(6 / 7)
    assert paired_table(rows).iloc[0]["n_pairs"] == 6


# ------------------------------------------------------------------ verdicts
def _with_not_converged(frame: pd.DataFrame, rows: list, status="not_converged") -> pd.DataFrame:
    """``frame`` and the jobs ``rows``, with ``status`` (and ``converged`` False)."""
    extra = table(rows).assign(status=status, converged=False)
    both = pd.concat([frame, extra], ignore_index=True)
    both["job_dir"] = [f"j{i}" for i in range(len(both))]
    return both


def test_c1_robustness_ignores_not_converged_jobs():
    base = c1_table(lev_grad=None)
    assert c1_l1_bounded_gradient(base).verdict == "supported"
    # Poor L1 estimates on seeds without an L2 partner: they would move only the L1 error growth.
    poor = grid(["l1"], [("vertical", 0.2)], seeds=range(8, 16), coef_error=5.0)
    v = c1_l1_bounded_gradient(_with_not_converged(base, poor))
    assert v.verdict == "supported" and "L1 error growth x1.49" in v.evidence and "(lower, n=8)" in v.evidence
    assert "L1 error growth x1.49" in c1_l1_bounded_gradient(base).evidence
    assert "8 L1/L2 job(s) did not converge" in v.evidence
    # The same jobs counted as estimates break the claim: the rule can tell them apart.
    assert c1_l1_bounded_gradient(_with_not_converged(base, poor, status="ok")).verdict == "contradicted"


def test_c1_gradient_growth_keeps_not_converged_jobs():
    base = c1_table(lev_grad=None)
    rising = grid(["l1"], [("vertical", 0.2)], seeds=range(8, 16), max_grad_norm=10.0)
    v = c1_l1_bounded_gradient(_with_not_converged(base, rising))
    assert v.verdict == "contradicted" and "L1 max-gradient growth x5.5" in v.evidence


def test_c4_robustness_ignores_and_explosion_keeps_not_converged_jobs():
    base = c4_table(growth=1.0)
    assert c4_l2_not_robust_explodes(base).verdict == "contradicted"
    poor = grid(["l2"], [("vertical", 0.2)], seeds=range(8, 16), learning_rate="auto", eta0=1.0, coef_error=5.0)
    v = c4_l2_not_robust_explodes(_with_not_converged(base, poor))
    assert v.verdict == "contradicted" and "8 L2 job(s) did not converge: left out of the error growth" in v.evidence
    assert c4_l2_not_robust_explodes(_with_not_converged(base, poor, status="ok")).verdict == "qualified"
    # The explosion part counts every done job: one of the eight jobs that explode stopped unconverged instead.
    exploding = c4_table(growth=5.0, diverge_kind="vertical")
    one = exploding.index[exploding["diverged"] & (exploding["seed"] == 0)]
    assert len(one) == 1
    exploding.loc[one, ["status", "converged", "diverged"]] = ["not_converged", False, False]
    v = c4_l2_not_robust_explodes(exploding)
    assert v.verdict == "supported" and "diverged under vertical at a clean-stable step" in v.evidence
    assert ": 7 of 8 jobs" in v.evidence


def test_c6_ignores_not_converged_jobs():
    base = c6_table(0.5, 0.3)
    assert c6_smooth_l1_beats_l2(base).verdict == "supported"
    seeds = range(8, 16)
    partners = table(grid(["l2"], [("vertical", 0.2), ("leverage", 0.2)], seeds=seeds, coef_error=1.0))
    poor = grid(["smooth_l1"], [("vertical", 0.2), ("leverage", 0.2)], seeds=seeds, coef_error=10.0)
    both = pd.concat([base, partners], ignore_index=True)
    v = c6_smooth_l1_beats_l2(_with_not_converged(both, poor))
    assert v.verdict == "supported" and "Smooth L1 significantly lower in 2 of 2 groups" in v.evidence
    assert "16 Smooth L1/L2 job(s) did not converge: left out of the pairs" in v.evidence
    assert c6_smooth_l1_beats_l2(_with_not_converged(both, poor, status="ok")).verdict != "supported"


def test_dynamics_rules_keep_not_converged_jobs():
    # C2: a constant-step L1 job that oscillates is one that does not converge.
    osc = c2_table(dimin=False).assign(status="not_converged", converged=False)
    assert c2_l1_fixed_step_oscillates(osc).verdict == "supported"
    # C3: an L2 job that did not meet its stopping rule qualifies "stable".
    clean = table(grid(["l2"], [("none", 0.0)]))
    clean.loc[0, ["status", "converged"]] = ["not_converged", False]
    v = c3_l2_stable(clean)
    assert v.verdict == "qualified" and "7 of 8 L2 auto-step jobs" in v.evidence
    # C5: iterations to settle are paired over every done job.
    slow = c5_table()
    slow.loc[slow["loss_label"].isin(["l1", "smooth_l1"]), ["status", "converged"]] = ["not_converged", False]
    assert c5_smooth_l1_fast_and_bounded(slow).verdict == "supported"


def test_every_rule_says_which_jobs_it_uses():
    uses = {}
    for rule in RULES:
        text = rule_text(rule)
        assert "Jobs:" in text, rule.__name__
        uses[rule.__name__.split("_")[0]] = {s for s in ("estimator jobs", "dynamics jobs") if s in text}
    assert uses == {
        "c1": {"estimator jobs", "dynamics jobs"},
        "c2": {"dynamics jobs"},
        "c3": {"dynamics jobs"},
        "c4": {"estimator jobs", "dynamics jobs"},
        "c5": {"dynamics jobs"},
        "c6": {"estimator jobs"},
        "c7": {"estimator jobs"},
        "c8": {"estimator jobs"},
    }


# --------------------------------------------- the exact solver is no dynamics
def test_exact_solver_jobs_are_estimates_never_dynamics():
    """A job of solver="auto" enters comparisons of estimates, never the rules on gradient descent."""
    runs = c5_table()
    assert len(dynamics_runs(runs)) == len(runs)  # the fixture's jobs are plain GD (no solver column)
    exact = runs.assign(solver="auto")
    assert dynamics_runs(exact).empty
    assert len(estimator_runs(exact)) == len(estimator_runs(runs))
    for rule in (c2_l1_fixed_step_oscillates, c3_l2_stable, c5_smooth_l1_fast_and_bounded):
        v = rule(exact)
        assert v.verdict == "not tested" and "no plain gradient-descent job" in v.evidence, rule.__name__
    assert c5_smooth_l1_fast_and_bounded(runs.assign(solver="gd")).verdict == c5_smooth_l1_fast_and_bounded(runs).verdict
    # C1 and C4 keep their robustness parts on exact fits and say the dynamics part was not tested.
    c1 = c1_l1_bounded_gradient(c1_table().assign(solver="auto"))
    assert c1.verdict != "not tested" and "gradient growth not tested" in c1.evidence
    c4 = c4_l2_not_robust_explodes(c4_table().assign(solver="auto"))
    assert "explosion part is not tested" in c4.evidence and "L2 error growth" in c4.evidence
