"""MLflow tracking (robustreg/study/tracking.py) against a real local store, read back with MLflow's own client.

The smoke study runs with the Hydra callback (``hydra/callbacks=mlflow``) in
two forked workers into a SQLite store under ``tmp_path``; ``report.py SWEEP
--mlflow URI`` imports the same sweep into a fresh store.  Runs, params,
metrics and every step of every history are compared with the job records.
Without the extra, nothing imports MLflow.  The tests that need MLflow skip
when the extra is missing (``pip install -e '.[mlflow]'``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "experiments" / "run.py"
REPORT = ROOT / "experiments" / "report.py"
HAS_MLFLOW = all(importlib.util.find_spec(m) is not None for m in ("mlflow", "sqlalchemy", "alembic"))
# MLflow's SQLAlchemy store uses a loader strategy SQLAlchemy 2.1 deprecates: MLflow's to fix, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
needs_mlflow = pytest.mark.skipif(not HAS_MLFLOW, reason="needs the mlflow extra: pip install -e '.[mlflow]'")
# An interpreter without the extra: MLflow and its SQL libraries cannot be imported.
WITHOUT_EXTRA = """
import runpy, sys
for name in ("mlflow", "sqlalchemy", "alembic"):
    sys.modules[name] = None
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


def _env(root) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # No usage report leaves the machine from a test.
    env.update(ROBUSTREG_ROOT=str(root), HYDRA_FULL_ERROR="0", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    return env


def _run(script, *args, root, cwd, without_extra=False, timeout=600):
    cmd = [sys.executable, *(["-c", WITHOUT_EXTRA] if without_extra else []), str(script), *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env=_env(root), capture_output=True, text=True, timeout=timeout)


def _client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _records(sweep: Path) -> dict:
    return {json.loads(p.read_text())["job_dir"]: (p.parent, json.loads(p.read_text()))
            for p in sorted(sweep.rglob("metrics.json"))}


def _runs(uri, experiment="smoke") -> dict:
    client = _client(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r} in {uri}"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return {r.data.tags["robustreg.job_dir"]: r for r in runs}


def _histories(client, run) -> dict:
    out = {}
    for key in run.data.metrics:
        if key.startswith("history/"):
            points = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
            out[key[len("history/"):]] = ([m.step for m in points], [m.value for m in points])
    return out


def check_store(uri, sweep: Path) -> dict:
    """Every done job of ``sweep`` is one FINISHED run of ``uri`` whose params, metrics, tags and history match it."""
    records = _records(sweep)
    runs = _runs(uri)
    assert sorted(runs) == sorted(records)
    client = _client(uri)
    for job_dir, (folder, rec) in records.items():
        run = runs[job_dir]
        assert run.info.status == "FINISHED"
        assert run.info.run_name == job_dir
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert tags["robustreg.config_hash"] == rec["config_hash"]
        assert tags["robustreg.code_hash"] == rec["code_hash"]
        assert tags["robustreg.status"] == rec["status"]
        assert tags["robustreg.study"] == "smoke"
        # Params: the identifying inputs, under the config's keys, as an override writes them.
        assert params["seed"] == str(rec["seed"])
        assert params["loss"] == rec["loss"]["name"]
        assert params["outliers"] == rec["outliers"]["kind"]
        assert params["outliers.fraction"] == str(rec["outliers"]["fraction"])
        assert params["dataset"] == "synthetic"
        assert params["dataset.n_train"] == "100" and params["dataset.n_test"] == "200"
        assert params["model"] == "gd" and params["model.max_iter"] == "300"
        assert params["model.batch_size"] == "null" and params["model.fit_intercept"] == "true"
        for key, value in rec["loss"]["params"].items():
            assert params[f"loss.{key}"] == str(value)
        # Metrics: the outcomes, exactly.
        for key in ("coef_error", "test_rmse", "test_mae", "intercept_error", "fit_seconds", "train_objective"):
            assert metrics[key] == rec[key], key
        assert metrics["n_iter"] == rec["n_iter"]
        assert metrics["converged"] == float(rec["converged"]) and metrics["diverged"] == float(rec["diverged"])
        assert metrics["n_corrupted"] == rec["outliers"]["n_corrupted"]
        # Stepped metrics: every value of history.parquet, stepped by its iteration.
        table = pq.read_table(folder / "history.parquet").to_pandas()
        history = _histories(client, run)
        assert sorted(history) == sorted(c for c in table.columns if c != "iteration")
        for column, (steps, values) in history.items():
            np.testing.assert_array_equal(steps, table["iteration"].to_numpy())
            np.testing.assert_array_equal(values, table[column].to_numpy(dtype=float))
    return runs


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """The smoke study run with the MLflow callback, in two forked workers, into the default SQLite store."""
    if not HAS_MLFLOW:
        pytest.skip("needs the mlflow extra: pip install -e '.[mlflow]'")
    root = tmp_path_factory.mktemp("tracked")
    proc = _run(RUN, "experiment=smoke", "hydra/callbacks=mlflow", "hydra.launcher.n_jobs=2", root=root, cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    db = root / "results" / "runs" / "mlflow.db"
    return {"root": root, "sweep": root / "results" / "runs" / "smoke", "uri": f"sqlite:///{db}", "db": db,
            "proc": proc}


@needs_mlflow
def test_callback_logs_each_job_of_a_sweep_run_in_forked_workers(tracked):
    assert tracked["db"].is_file()
    assert "not logged" not in tracked["proc"].stdout + tracked["proc"].stderr
    runs = check_store(tracked["uri"], tracked["sweep"])
    assert len(runs) == 8
    assert {r.data.tags["robustreg.job_path"] for r in runs.values()} == {
        str(p.parent) for p in tracked["sweep"].rglob("metrics.json")}


@needs_mlflow
def test_report_imports_a_sweep_folder_into_a_fresh_store_as_the_callback_logged_it(tracked, tmp_path):
    uri = f"sqlite:///{tmp_path / 'imported.db'}"
    before = {p: p.stat().st_mtime_ns for p in tracked["sweep"].rglob("*")}
    proc = _run(REPORT, tracked["sweep"], "--mlflow", uri, root=tmp_path, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "8 job(s) logged, 0 logged already" in proc.stdout
    imported = check_store(uri, tracked["sweep"])
    logged = _runs(tracked["uri"])
    client_a, client_b = _client(uri), _client(tracked["uri"])
    for job_dir, run in imported.items():
        other = logged[job_dir]
        assert run.data.params == other.data.params
        assert run.data.metrics == other.data.metrics
        assert _histories(client_a, run) == _histories(client_b, other)
    # The sweep folder is only read; nothing is written in the repository.
    assert {p: p.stat().st_mtime_ns for p in tracked["sweep"].rglob("*")} == before
    assert not (ROOT / "mlruns").exists() and not (ROOT / "mlartifacts").exists()

    # Idempotent: a second import logs nothing (a plain path is an SQLite file too).
    again = _run(REPORT, tracked["sweep"], "--mlflow", tmp_path / "imported.db", root=tmp_path, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 job(s) logged, 8 logged already" in again.stdout
    assert len(_runs(uri)) == 8


@needs_mlflow
def test_a_sweep_run_again_with_the_callback_logs_no_job_twice(tracked):
    proc = _run(RUN, "experiment=smoke", "hydra/callbacks=mlflow", root=tracked["root"], cwd=tracked["root"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("skipped (done)") == 8
    assert len(check_store(tracked["uri"], tracked["sweep"])) == 8


@needs_mlflow
def test_failed_and_damaged_records(tracked, tmp_path):
    # A job that fails in its run (a missing CSV file) is a FAILED run with its error and inputs.
    root = tmp_path / "failing"
    proc = _run(RUN, "-m", "dataset=csv", "dataset.path=nope.csv", "dataset.target=y", "name=failing",
                root=root, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    sweep = root / "results" / "runs" / "failing"
    (failure,) = sweep.rglob("failure.json")
    uri = f"sqlite:///{tmp_path / 'failed.db'}"
    proc = _run(REPORT, sweep, "--mlflow", uri, root=tmp_path, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run,) = _runs(uri, "failing").values()
    rec = json.loads(failure.read_text())
    assert run.info.status == "FAILED"
    assert run.data.tags["robustreg.status"] == "failed"
    assert run.data.tags["robustreg.config_hash"] == rec["config_hash"]
    assert "nope.csv" in run.data.tags["robustreg.error"]
    assert run.data.params["dataset"] == "csv" and run.data.params["dataset.target"] == "y"
    assert "1 job(s) logged" in proc.stdout
    again = _run(REPORT, sweep, "--mlflow", uri, root=tmp_path, cwd=tmp_path)
    assert "0 job(s) logged, 1 logged already" in again.stdout

    # A damaged record is named and not logged; the others are, and the exit status is 1.
    copy = tmp_path / "smoke"
    shutil.copytree(tracked["sweep"], copy)
    history = sorted(copy.rglob("history.parquet"))[0]
    history.write_bytes(history.read_bytes()[:100])
    proc = _run(REPORT, copy, "--mlflow", tmp_path / "damaged.db", root=tmp_path, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "7 job(s) logged, 0 logged already, 0 skipped, 1 damaged" in proc.stdout
    rel = history.parent.relative_to(copy).as_posix()
    assert f"error: damaged record, not logged: {rel}: history.parquet: damaged" in proc.stderr
    assert len(_runs(f"sqlite:///{tmp_path / 'damaged.db'}")) == 7


def test_nothing_imports_mlflow_without_the_callback(tmp_path):
    """import robustreg, a sweep, its records and a report: MLflow (and SQLAlchemy) never imported."""
    script = f"""
import runpy, sys
import robustreg, robustreg.study.job, robustreg.study.record, robustreg.report
sys.argv = [{str(RUN)!r}, "experiment=smoke", "hydra.launcher.n_jobs=1"]
try:
    runpy.run_path({str(RUN)!r}, run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
sys.argv = [{str(REPORT)!r}, {str(tmp_path / "results" / "runs" / "smoke")!r}, "--out", {str(tmp_path / "out")!r},
            "--no-figures", "--no-progress"]
try:
    runpy.run_path({str(REPORT)!r}, run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("mlflow", "sqlalchemy", "alembic"))
print("LOADED", loaded)
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 8 jobs done" in proc.stdout + proc.stderr
    assert "LOADED []" in proc.stdout


def test_without_the_extra_the_callback_and_the_import_say_how_to_install(tmp_path):
    proc = _run(RUN, "experiment=smoke", "hydra/callbacks=mlflow", root=tmp_path, cwd=tmp_path, without_extra=True)
    assert proc.returncode != 0
    assert "pip install 'robustreg[mlflow]'" in proc.stderr
    assert not list(tmp_path.rglob("metrics.json"))  # stopped before any job

    sweep = tmp_path / "sweep"
    (sweep / "job").mkdir(parents=True)
    (sweep / "job" / "metrics.json").write_text("{}")
    proc = _run(REPORT, sweep, "--mlflow", tmp_path / "x.db", root=tmp_path, cwd=tmp_path, without_extra=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: MLflow tracking needs the optional extra: pip install 'robustreg[mlflow]'")
    assert not (tmp_path / "x.db").exists()


@needs_mlflow
def test_a_server_that_does_not_answer_is_said_once_and_no_job_waits(tmp_path):
    import socket

    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    proc = _run(RUN, "experiment=smoke", "hydra/callbacks=mlflow", f"hydra.callbacks.mlflow.tracking_uri={uri}",
                root=tmp_path, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert out.count(f"the MLflow server {uri} does not answer") == 1
    assert f"report.py SWEEP_DIR --mlflow {uri}" in out
    assert len(list(tmp_path.rglob("metrics.json"))) == 8
    proc = _run(REPORT, tmp_path / "results" / "runs" / "smoke", "--mlflow", uri, root=tmp_path, cwd=tmp_path,
                timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: the MLflow server {uri} does not answer")


def test_flattening_of_a_record():
    from robustreg.study.tracking import job_metrics, job_params, normalize_uri

    rec = {"schema_version": 1, "seed": 3, "study": "s", "status": "diverged", "coef_error": None, "n_iter": 7,
           "converged": False, "diverged": True, "fit_seconds": 0.5, "coef": [1.0, 2.0],
           "dataset": {"name": "csv", "params": {"path": "a/b.csv", "features": ["x1", "x2"], "test_size": 0.25}},
           "outliers": {"kind": "none", "fraction": 0.0, "magnitude": 10.0, "seed": 3, "params": {"side": None},
                        "n_corrupted": 0},
           "loss": {"name": "huber", "params": {"delta": 1.345}},
           "model": {"name": "gd", "params": {"penalty": None, "standardize": True}}}
    assert job_params(rec) == {
        "seed": "3", "dataset": "csv", "dataset.path": "a/b.csv", "dataset.features": '["x1","x2"]',
        "dataset.test_size": "0.25", "outliers": "none", "outliers.fraction": "0.0", "outliers.magnitude": "10.0",
        "outliers.seed": "3", "outliers.side": "null", "loss": "huber", "loss.delta": "1.345", "model": "gd",
        "model.penalty": "null", "model.standardize": "true"}
    # A value that was not finite (None in the record) is left out; booleans are 0/1.
    assert job_metrics(rec) == {"n_iter": 7.0, "converged": 0.0, "diverged": 1.0, "fit_seconds": 0.5,
                                "n_corrupted": 0.0}
    assert normalize_uri("http://h:5000") == "http://h:5000"
    assert normalize_uri("sqlite:///x.db") == "sqlite:///x.db"
    assert normalize_uri("/tmp/x.db") == "sqlite:////tmp/x.db"
