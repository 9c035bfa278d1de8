"""Collecting job records: a small real sweep written in the job-record format, read back.

``write_sweep`` (used by the other report tests too) fits
:class:`robustreg.GDRegressor` on tiny synthetic problems and writes one
job folder per fit with ``metrics.json`` and ``history.parquet``, a
``sweep.json`` listing one more job that has no record (missing) and one job
folder with ``failure.json`` (failed).
"""

from __future__ import annotations

import importlib
import itertools
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from robustreg import GDRegressor
from robustreg.datasets import load_dataset
from robustreg.outliers import inject
from robustreg.report import NoRecordsError, ReportError, collect
from robustreg.losses import get_loss
from robustreg.study.job import describe_loss
from robustreg.study.spec import GDConf

N_TRAIN, N_TEST, N_FEATURES = 60, 100, 3


def _clean(v):
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_clean(x) for x in (v.tolist() if isinstance(v, np.ndarray) else v)]
    if isinstance(v, (np.floating, float)):
        return float(v) if math.isfinite(float(v)) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def fit_record(study, job_dir, *, loss, kind, fraction, seed, learning_rate="auto", eta0=1.0,
               penalty=None, alpha=1e-4, max_iter=300, magnitude=10.0, dataset="synthetic"):
    """Fit one job the way an experiment job does and return (record, history)."""
    if dataset == "synthetic":
        data_params = {"n_train": N_TRAIN, "n_test": N_TEST, "n_features": N_FEATURES, "seed": seed}
    else:
        data_params = {}
    ds = load_dataset(dataset, **data_params)
    X, y, mask = inject(ds.X_train, ds.y_train, kind, fraction, magnitude, seed, noise_scale=ds.noise_scale,
                        y_signal=ds.y_signal_train)
    # Plain gradient descent: these records are about its dynamics (divergence, steps).
    params = dict(solver="gd", learning_rate=learning_rate, eta0=eta0, max_iter=max_iter, tol=1e-6, penalty=penalty,
                  alpha=alpha, init="zeros")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = GDRegressor(loss, random_state=seed, **params).fit(X, y, coef_reference=ds.coef_reference)
    ref = ds.coef_reference
    coef_error = float(np.linalg.norm(est.coef_ - ref[1:]))
    pred = ds.X_test @ est.coef_ + est.intercept_
    hist = est.history_
    record = {
        "schema_version": 1, "study": study, "job_dir": job_dir, "config_hash": f"{study}/{job_dir}",
        "package_version": "0.1.0", "seed": seed,
        "dataset": {"name": dataset, "params": data_params, "n_train": ds.n_train, "n_test": ds.n_test,
                    "n_features": ds.n_features, "reference_method": ds.reference_method,
                    "feature_names": list(ds.feature_names), "target_name": ds.target_name},
        "outliers": {"kind": kind, "fraction": fraction, "magnitude": magnitude, "seed": seed,
                     "params": {"side": "symmetric"}, "n_corrupted": int(mask.sum()),
                     "corrupted_rows": np.flatnonzero(mask)},
        # As a job writes it: every constant of the loss (its config group holds them all).
        "loss": describe_loss(loss, dict(get_loss(loss).params())),
        "model": {"name": "gd", "params": params, "path_settings": list(GDConf.PATH_SETTINGS)},
        "status": "diverged" if est.diverged_ else "ok",
        "coef": est.coef_, "intercept": est.intercept_, "coef_reference": ref, "coef_true": ds.coef_true,
        "coef_error": coef_error, "intercept_error": abs(est.intercept_ - ref[0]),
        "relative_error": coef_error / np.linalg.norm(ref[1:]),
        "test_rmse": float(np.sqrt(np.mean((ds.y_test - pred) ** 2))) if ds.n_test else None,
        "test_mae": float(np.mean(np.abs(ds.y_test - pred))) if ds.n_test else None,
        "train_objective": est.objective_, "n_iter": est.n_iter_, "converged": est.converged_,
        "diverged": est.diverged_, "fit_seconds": 0.001, "lipschitz": est.lipschitz_,
        "initial_step": float(hist["step"].iloc[0]), "scale": est.scale_,
        "max_grad_norm": float(np.nanmax(hist["grad_norm"])), "final_grad_norm": float(hist["grad_norm"].iloc[-1]),
        "published": dict(ds.published), "known_outliers": ds.known_outliers,
        "train": {"X": X, "y": y} if ds.published else None,
    }
    return _clean(record), hist


def write_job(sweep, job_dir, record, history):
    """One job folder: history.parquet (unless ``history`` is None) and metrics.json, written last."""
    folder = sweep / job_dir
    folder.mkdir(parents=True, exist_ok=True)
    if history is not None:
        history.to_parquet(folder / "history.parquet", index=False)
    (folder / "metrics.json").write_text(json.dumps(record, allow_nan=False))


def write_sweep(sweep, *, study="small", losses=("l1", "l2", "smooth_l1"), fractions=(0.0, 0.2),
                kinds=("vertical", "leverage"), seeds=range(5), steps=(("auto", 1.0),), missing=1, failed=1):
    """Write a small sweep; returns the number of jobs with metrics.json."""
    jobs, n = [], 0
    grid = itertools.product(kinds, fractions, losses, steps, seeds)
    for i, (kind, fraction, loss, (lr, eta0), seed) in enumerate(grid):
        job_dir = f"{i}"
        rec, hist = fit_record(study, job_dir, loss=loss, kind=kind, fraction=fraction, seed=seed,
                               learning_rate=lr, eta0=eta0)
        write_job(sweep, job_dir, rec, hist)
        jobs.append({"job_dir": job_dir, "overrides": [f"loss={loss}", f"outliers={kind}",
                                                       f"outliers.fraction={fraction}", f"seed={seed}"]})
        n += 1
    base = len(jobs)
    for k in range(failed):
        job_dir = f"{base + k}"
        (sweep / job_dir).mkdir(parents=True)
        # A job that raised: its record holds every identifying input, no outcome.
        rec, _ = fit_record(study, job_dir, loss=losses[0], kind=kinds[0], fraction=fractions[-1], seed=99,
                            learning_rate=steps[0][0], eta0=steps[0][1], max_iter=5)
        failure = {k: rec[k] for k in ("schema_version", "study", "job_dir", "config_hash", "seed", "dataset",
                                       "outliers", "loss", "model")}
        failure.update(status="failed", error="LinAlgError: SVD did not converge", error_type="LinAlgError",
                       traceback="Traceback ...")
        (sweep / job_dir / "failure.json").write_text(json.dumps(failure))
        jobs.append({"job_dir": job_dir, "overrides": [f"loss={losses[0]}", "seed=99"]})
    for k in range(missing):
        jobs.append({"job_dir": f"{base + failed + k}", "overrides": ["loss=l2", "seed=99"]})
    (sweep / "sweep.json").write_text(json.dumps({"schema_version": 1, "study": study, "n_jobs": len(jobs),
                                                  "jobs": jobs}))
    return n


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    sweep = tmp_path_factory.mktemp("runs") / "small"
    n_done = write_sweep(sweep, losses=("l1", "l2"), kinds=("vertical",), seeds=range(3))
    return sweep, n_done


def test_collect_counts_every_job(small_sweep):
    sweep, n_done = small_sweep
    coll = collect(sweep, progress=False)
    # 2 losses x 2 fractions x 3 seeds done, 1 failed, 1 missing.
    assert n_done == 12
    assert coll.counts() == {"expected": 14, "done": 12, "failed": 1, "diverged": 0, "not_converged": 0,
                             "missing": 1}
    assert len(coll.runs) == 14
    assert coll.runs["job_dir"].is_unique
    failed = coll.runs[coll.runs["status"] == "failed"].iloc[0]
    assert failed["error"] == "LinAlgError: SVD did not converge"
    assert failed["loss_label"] == "l1" and failed["seed"] == 99
    missing = coll.runs[coll.runs["status"] == "missing"].iloc[0]
    assert missing["overrides"] == "loss=l2 seed=99"
    assert coll.study == "small"


def test_collect_flattens_settings(small_sweep):
    sweep, _ = small_sweep
    runs = collect(sweep, progress=False).done_runs
    assert set(runs["loss_label"]) == {"l1", "l2"}
    assert set(runs["outliers"]) == {"vertical"}
    assert sorted(runs["fraction"].unique()) == [0.0, 0.2]
    # The data seed follows the job seed: it is a replicate, not a setting.
    assert runs["dataset_params"].nunique() == 1 and "seed" not in runs["dataset_params"].iloc[0]
    assert (runs["dataset_seed"] == runs["seed"]).all()
    assert set(runs["learning_rate"]) == {"auto"}
    assert runs["penalty"].eq("none").all()
    for _, row in runs.iterrows():
        rec = json.loads((sweep / row["job_dir"] / "metrics.json").read_text())
        assert row["coef_error"] == rec["coef_error"]
        assert row["n_iter"] == rec["n_iter"]
        assert row["n_zero_coef"] == sum(c == 0.0 for c in rec["coef"])


def test_histories_long_table_matches_files(small_sweep):
    sweep, _ = small_sweep
    coll = collect(sweep, progress=False)
    h = coll.histories
    assert list(h.columns) == ["job_dir", "iteration", "objective", "grad_norm", "step", "coef_error"]
    done = coll.done_runs
    assert set(h["job_dir"].astype(str)) == set(done["job_dir"])
    for job in done["job_dir"].iloc[:3]:
        direct = pd.read_parquet(sweep / job / "history.parquet")
        mine = h[h["job_dir"] == job].drop(columns="job_dir").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, direct[mine.columns], check_dtype=False)
        assert len(mine) == done.loc[done["job_dir"] == job, "n_iter"].iloc[0]


def test_no_sweep_json_expected_is_found(tmp_path):
    sweep = tmp_path / "hand"
    rec, hist = fit_record("hand", "a", loss="l1", kind="none", fraction=0.0, seed=0, max_iter=50)
    write_job(sweep, "deep/a", rec, hist)
    coll = collect(sweep, progress=False)
    assert coll.counts() == {"expected": 1, "done": 1, "failed": 0, "diverged": 0, "not_converged": 0,
                             "missing": 0}
    assert coll.runs["job_dir"].tolist() == ["deep/a"]


def test_diverged_job_is_counted(tmp_path):
    sweep = tmp_path / "div"
    rec, hist = fit_record("div", "a", loss="l2", kind="leverage", fraction=0.3, seed=0,
                           learning_rate="constant", eta0=5.0)
    assert rec["diverged"] is True
    write_job(sweep, "a", rec, hist)
    coll = collect(sweep, progress=False)
    assert coll.counts()["diverged"] == 1 and coll.counts()["done"] == 1


@pytest.mark.parametrize("make", ["missing", "empty", "unrelated"])
def test_no_records_is_one_clear_error(tmp_path, make):
    target = tmp_path / "sweep"
    if make != "missing":
        target.mkdir()
    if make == "unrelated":
        (target / "notes.txt").write_text("hello")
        (target / "sweep.json").write_text(json.dumps({"jobs": [{"job_dir": "0", "overrides": []}]}))
    with pytest.raises(NoRecordsError, match="sweep"):
        collect(target, progress=False)


def test_histories_of_other_shapes_are_normalized(tmp_path):
    sweep = tmp_path / "shapes"
    rec, hist = fit_record("shapes", "a", loss="l1", kind="none", fraction=0.0, seed=0, max_iter=30)
    write_job(sweep, "a", rec, hist)
    rec, hist = fit_record("shapes", "b", loss="l2", kind="none", fraction=0.0, seed=1, max_iter=30)
    # An older writer: 32-bit iterations and no coef_error column.
    hist.drop(columns="coef_error").astype({"iteration": "int32"}).to_parquet(tmp_path / "b.parquet", index=False)
    write_job(sweep, "b", rec, hist)
    (tmp_path / "b.parquet").replace(sweep / "b" / "history.parquet")
    h = collect(sweep, progress=False).histories
    assert h["iteration"].dtype == "int64"
    b = h[h["job_dir"] == "b"]
    assert len(b) == rec["n_iter"] and b["coef_error"].isna().all()
    assert h.loc[h["job_dir"] == "a", "coef_error"].notna().all()


def test_unreadable_history_names_its_file(tmp_path):
    sweep = tmp_path / "bad"
    for name, seed in (("a", 0), ("b", 1)):
        rec, hist = fit_record("bad", name, loss="l1", kind="none", fraction=0.0, seed=seed, max_iter=30)
        write_job(sweep, name, rec, hist)
    (sweep / "b" / "history.parquet").write_bytes(b"not a parquet file")
    (sweep / "c").mkdir()
    (sweep / "c" / "metrics.json").write_text('{"status": ')
    coll = collect(sweep, progress=False)
    # Each bad file named in one line; the rest collected.
    assert len(coll.damaged) == 2
    assert coll.damaged[0].startswith("b/history.parquet: cannot be read")
    assert coll.damaged[1].startswith("c/metrics.json: cannot be read (not a readable JSON record")
    assert list(coll.runs["job_dir"]) == ["a"]
    assert set(coll.histories["job_dir"]) == {"a"} and len(coll.histories) > 0


def _collected_equal(a, b):
    pd.testing.assert_frame_equal(a.histories, b.histories)
    pd.testing.assert_frame_equal(a.runs, b.runs)


def test_consolidated_histories_give_what_the_job_folders_give(tmp_path, monkeypatch):
    """A report's histories.parquet stands in for unchanged history files, and only for those."""
    from robustreg.report import write_histories

    sweep = tmp_path / "runs" / "cons"
    write_sweep(sweep, study="cons", losses=("l1", "huber"), kinds=("vertical",), seeds=range(3))
    first = collect(sweep, progress=False)
    cons = tmp_path / "histories.parquet"
    write_histories(first, cons)
    assert set(first.history_sources) == set(first.histories["job_dir"].unique())

    # Unchanged: everything from the one file, nothing read from the job folders.
    collect_module = importlib.import_module("robustreg.report.collect")
    read = []
    scan = collect_module._scan_histories
    monkeypatch.setattr(collect_module, "_scan_histories",
                        lambda d, folders, damaged: (read.extend(folders), scan(d, folders, damaged))[1])
    again = collect(sweep, progress=False, consolidated=cons)
    assert read == []
    _collected_equal(first, again)

    # One history rewritten, one job removed, one added: those come from their folders.
    rec, hist1 = fit_record("cons", "1", loss="l2", kind="none", fraction=0.0, seed=7, max_iter=40)
    write_job(sweep, "1", rec, hist1)
    removed = sorted(first.history_sources)[-1]
    for name in ("metrics.json", "history.parquet"):
        (sweep / removed / name).unlink()
    rec, hist_new = fit_record("cons", "new", loss="l1", kind="none", fraction=0.0, seed=8, max_iter=25)
    write_job(sweep, "new", rec, hist_new)
    fresh = collect(sweep, progress=False)
    read.clear()
    mixed = collect(sweep, progress=False, consolidated=cons)
    assert sorted(read) == ["1", "new"]
    _collected_equal(fresh, mixed)
    h = mixed.histories
    np.testing.assert_array_equal(h.loc[h["job_dir"] == "1", "objective"], hist1["objective"])
    assert removed not in set(h["job_dir"]) and (h["job_dir"] == "new").sum() == len(hist_new)


@pytest.mark.parametrize("content", [b"not a parquet file", None])
def test_unusable_consolidated_file_is_ignored(tmp_path, content):
    sweep = tmp_path / "runs" / "cons"
    write_sweep(sweep, study="cons", losses=("l1",), kinds=("vertical",), seeds=range(2))
    cons = tmp_path / "histories.parquet"
    if content is None:  # a histories file without the record of its sources
        collect(sweep, progress=False).histories.to_parquet(cons, index=False)
    else:
        cons.write_bytes(content)
    _collected_equal(collect(sweep, progress=False), collect(sweep, progress=False, consolidated=cons))


def test_runs_csv_has_a_column_per_varying_setting_and_coefficients_go_long(tmp_path):
    from robustreg.report import coefficients_table, runs_for_csv

    sweep = tmp_path / "s"
    jobs = {}
    for name, (rho, seed) in {"a": (0.0, 0), "b": (0.5, 1)}.items():
        rec, hist = fit_record("s", name, loss="huber", kind="none", fraction=0.0, seed=seed, max_iter=50)
        rec["dataset"]["params"]["rho"] = rho
        write_job(sweep, name, rec, hist)
        jobs[name] = rec
    coll = collect(sweep, progress=False)
    csv = runs_for_csv(coll.runs)
    assert "dataset.rho" in csv and list(csv["dataset.rho"]) == [0.0, 0.5]
    assert "dataset.n_train" not in csv  # the same in every job: not a column
    assert not any(isinstance(v, str) and "=" in v for v in csv.drop(columns=["job_dir"]).to_numpy().ravel())
    coefs = coefficients_table(coll.runs)
    for name, rec in jobs.items():
        mine = coefs[coefs["job_dir"] == name]
        np.testing.assert_allclose(mine["estimate"], [rec["intercept"], *rec["coef"]])
        assert list(mine["term"]) == ["intercept"] + [f"x{j}" for j in range(len(rec["coef"]))]
