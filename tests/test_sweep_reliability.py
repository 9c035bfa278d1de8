"""Sweeps that never lie and never lose: stale inputs, dying workers, orphans, concurrent sweeps,
damaged records, containment and file modes."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from robustreg.study import record

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "experiments" / "run.py"
REPORT = ROOT / "experiments" / "report.py"
PLUGINS = str(Path(__file__).parent / "plugins")
SMALL = ["dataset.n_train=60"]


def _env(root, **extra):
    return {**os.environ, "ROBUSTREG_ROOT": str(root), "HYDRA_FULL_ERROR": "0", "PYTHONPATH": PLUGINS, **extra}


def _start(tmp_path, *args, umask=None):
    def pre():
        os.setsid()  # its own process group: a test can signal the sweep and its workers as a terminal would
        if umask is not None:
            os.umask(umask)

    return subprocess.Popen([sys.executable, str(RUN), *args], cwd=tmp_path, env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=pre)


def _records(sweep):
    return sorted(str(p.parent.relative_to(sweep)) for p in sweep.rglob("metrics.json"))


def _manifest_dirs(sweep):
    return [j["job_dir"] for j in json.loads((sweep / "sweep.json").read_text())["jobs"]]


def _children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead: it only waits to be reaped.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def _wait_for(predicate, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


# ------------------------------------------------------------- stale inputs
def test_an_edited_csv_runs_its_job_again_with_the_new_data(run_cli, tmp_path):
    data = tmp_path / "d.csv"
    rows = "\n".join(f"{x},{2 * x + 1}" for x in range(1, 21))
    data.write_text("x,y\n" + rows + "\n")
    args = ["dataset=csv", "dataset.path=d.csv", "dataset.target=y", "dataset.test_size=0", "outliers=none"]
    first = run_cli(*args, check=0)
    [metrics] = list(tmp_path.rglob("metrics.json"))
    slope = json.loads(metrics.read_text())["coef"][0]
    assert slope == pytest.approx(2.0, abs=1e-6)
    data.write_text("x,y\n" + "\n".join(f"{x},{3 * x + 1}" for x in range(1, 21)) + "\n")
    second = run_cli(*args, check=0)
    assert "skipped" not in second.stdout + second.stderr, first.stdout
    assert json.loads(metrics.read_text())["coef"][0] == pytest.approx(3.0, abs=1e-6)
    third = run_cli(*args, check=0)
    assert "skipped (done)" in third.stdout + third.stderr


def test_the_code_hash_ignores_comments_and_docstrings_but_not_code():
    src = 'def f(x):\n    """Doc."""\n    return x + 1  # one\n'
    same = '# a new comment\ndef f(x):\n    """Another doc, longer."""\n\n    return x + 1  # two\n'
    other = 'def f(x):\n    """Doc."""\n    return x + 2\n'
    assert record._source_digest(src) == record._source_digest(same)
    assert record._source_digest(src) != record._source_digest(other)


def test_the_code_hash_covers_the_plugin_the_entry_point_and_library_versions(monkeypatch):
    files = {p.relative_to(ROOT).as_posix() for p in record.code_files()}
    assert "hydra_plugins/robustreg_plugin/_launcher_core.py" in files
    assert "experiments/run.py" in files
    assert "robustreg/estimator.py" in files and "robustreg/study/record.py" in files
    assert not any(f.startswith("robustreg/report/") for f in files)  # the report does not make records
    assert "robustreg/study/tracking.py" not in files and "robustreg/study/cli.py" not in files
    before = record.code_hash()
    versions = record._versions()
    assert versions["scikit-learn"] and versions["numpy"]
    monkeypatch.setattr(record, "_CODE_HASH", None)
    monkeypatch.setattr(record, "_versions", lambda: {**versions, "scikit-learn": "0.0.1"})
    assert record.code_hash() != before


def test_a_record_from_other_code_is_not_reused(run_cli, tmp_path):
    run_cli(*SMALL, check=0)
    [metrics] = list(tmp_path.rglob("metrics.json"))
    rec = json.loads(metrics.read_text())
    rec["code_hash"] = "0" * 64
    metrics.write_text(json.dumps(rec))
    proc = run_cli(*SMALL, check=0)
    assert "skipped" not in proc.stdout + proc.stderr
    assert json.loads(metrics.read_text())["code_hash"] == record.code_hash()


# ------------------------------------------------------------ dying workers
def test_repeated_worker_kills_end_with_a_summary_and_a_record_for_every_job(tmp_path):
    """Workers SIGKILLed again and again: no traceback, an N-of-M summary, and each job done or failed on disk."""
    sweep = tmp_path / "sweep"
    proc = _start(tmp_path, "-m", "seed=range(24)", *SMALL, "hydra.launcher.n_jobs=2",
                  "+hydra.callbacks.slow._target_=killer.Slow", "+hydra.callbacks.slow.seconds=0.25",
                  f"hydra.sweep.dir={sweep}")
    kills = 0
    deadline = time.monotonic() + 120
    while kills < 6 and proc.poll() is None and time.monotonic() < deadline:
        workers = _children(proc.pid)
        if workers:
            time.sleep(0.3)
            for pid in workers[:1]:
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
        time.sleep(0.2)
    out, err = proc.communicate(timeout=300)
    assert kills >= 4
    assert "Traceback" not in out + err and "BrokenProcessPool" not in err
    jobs = _manifest_dirs(sweep)
    assert len(jobs) == 24
    failed = [d for d in jobs if (sweep / d / "failure.json").is_file()]
    done = [d for d in jobs if (sweep / d / "metrics.json").is_file()]
    assert sorted(failed + done) == sorted(jobs) and not set(failed) & set(done)
    if failed:
        assert proc.returncode == 1 and f"{len(failed)} of 24 jobs failed" in err
        reason = json.loads((sweep / failed[0] / "failure.json").read_text())["error"]
        assert "worker process died" in reason
    else:  # every lost job was run again alone and finished
        assert proc.returncode == 0
    # A rerun does exactly the failed jobs and skips the rest.
    rerun = subprocess.run([sys.executable, str(RUN), "-m", "seed=range(24)", *SMALL, "hydra.launcher.n_jobs=2",
                            f"hydra.sweep.dir={sweep}"], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.count("skipped (done)") == len(done)
    assert _records(sweep) == sorted(jobs)


# ----------------------------------------------------------------- orphans
@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGKILL, None)])
def test_no_worker_outlives_its_sweep(tmp_path, sig, status):
    sweep = tmp_path / "sweep"
    proc = _start(tmp_path, "-m", "seed=range(40)", *SMALL, "hydra.launcher.n_jobs=2",
                  "+hydra.callbacks.slow._target_=killer.Slow", "+hydra.callbacks.slow.seconds=0.5",
                  f"hydra.sweep.dir={sweep}")
    assert _wait_for(lambda: len(_children(proc.pid)) == 2 and _records(sweep), timeout=120)
    workers = _children(proc.pid)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # Ctrl-C in a terminal reaches the whole process group
    else:
        os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=60)
    assert _wait_for(lambda: not any(_alive(w) for w in workers), timeout=10), "a worker outlived its sweep"
    n_done = len(_records(sweep))
    time.sleep(1.0)
    assert len(_records(sweep)) == n_done, "job folders were written after the sweep was gone"
    if status is not None:
        assert proc.returncode == status
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert "Traceback" not in err and len(lines) == 1, err
        assert lines[0].startswith("interrupted: ") and "run the same command again" in lines[0]


# -------------------------------------------------------- concurrent sweeps
def test_two_identical_sweeps_into_one_folder_compute_each_job_once(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "seed=range(12)", "loss=l1,huber", *SMALL, "hydra.launcher.n_jobs=2",
            "+hydra.callbacks.slow._target_=killer.Slow", "+hydra.callbacks.slow.seconds=0.1",
            f"hydra.sweep.dir={sweep}"]
    procs = [_start(tmp_path, *args) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    computed = sum(out.count(": ok ") + out.count(": diverged ") + out.count(": not_converged ") for out, _ in outs)
    skipped = sum(out.count("skipped (done)") for out, _ in outs)
    assert computed == 24 and skipped == 24
    assert len(_records(sweep)) == 24


def test_concurrent_atomic_writes_of_one_file_never_fail(tmp_path):
    target = tmp_path / "sweep.json"
    errors = []

    def write(k):
        try:
            for i in range(50):
                record.atomic_write_json(target, {"writer": k, "i": i})
        except Exception as exc:  # pragma: no cover - the failure this test looks for
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(json.loads(target.read_text())) == {"writer", "i"}
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.json"]  # no temporary file left behind


# ---------------------------------------------------------- damaged records
def test_a_damaged_record_is_named_the_rest_reported_and_a_rerun_repairs_it(run_cli, tmp_path):
    sweep, out = tmp_path / "sweep", tmp_path / "report"
    run_cli("experiment=smoke", f"hydra.sweep.dir={sweep}", check=0)
    jobs = _records(sweep)
    truncated, garbled = sweep / jobs[0] / "history.parquet", sweep / jobs[1] / "metrics.json"
    truncated.write_bytes(truncated.read_bytes()[:100])
    garbled.write_text('{"status": "ok", ')
    rep = subprocess.run([sys.executable, str(REPORT), str(sweep), "--out", str(out), "--no-figures",
                          "--no-progress"], capture_output=True, text=True, env=_env(tmp_path))
    assert rep.returncode == 1
    bad = [ln for ln in rep.stderr.splitlines() if ln.startswith("error: damaged record: ")]
    assert len(bad) == 2 and any(str(truncated) in ln for ln in bad) and any(str(garbled) in ln for ln in bad)
    assert "Traceback" not in rep.stderr
    assert f"expected {len(jobs)}, done {len(jobs) - 2}" in rep.stdout and "missing 2" in rep.stdout
    assert (out / "report.md").is_file() and str(truncated.relative_to(sweep)) in (out / "report.md").read_text()
    rerun = run_cli("experiment=smoke", f"hydra.sweep.dir={sweep}", check=0)
    assert rerun.stdout.count("skipped (done)") == len(jobs) - 2
    rep = subprocess.run([sys.executable, str(REPORT), str(sweep), "--out", str(out), "--no-figures",
                          "--no-progress"], capture_output=True, text=True, env=_env(tmp_path))
    assert rep.returncode == 0 and f"done {len(jobs)}," in rep.stdout, rep.stderr


# ------------------------------------------------------------- containment
def test_a_study_name_cannot_climb_out_of_the_results_root(run_cli, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    for args in (["-m", "name=../../../../outside", "seed=0,1"], ["name=../outside", "seed=0"],
                 ["-m", "name=a/b", "seed=0,1"]):
        proc = run_cli(*args, *SMALL, root=root)
        assert proc.returncode == 2, proc.stderr
        [line] = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert line.startswith("error: name=") and "allowed: a plain folder name" in line
    assert not any(tmp_path.rglob("metrics.json")) and not any(tmp_path.rglob("sweep.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"] and not any(root.iterdir())


def test_a_value_with_slashes_stays_one_folder_inside_the_sweep(run_cli, tmp_path):
    data_dir = tmp_path / "data" / "sub"
    data_dir.mkdir(parents=True)
    (data_dir / "d.csv").write_text("x,y\n" + "\n".join(f"{x},{2 * x + 1 + (x % 3)}" for x in range(1, 31)) + "\n")
    sweep = tmp_path / "results" / "runs" / "s"
    victim = tmp_path / "data" / "metrics.json"
    victim.write_text("{}")  # a file the job must never touch
    proc = run_cli("-m", "name=s", "dataset=csv", "dataset.path=data/sub/../sub/d.csv", "dataset.target=y",
                   "seed=0,1", check=0)
    dirs = _records(sweep)
    job = "dataset.path=data%2Fsub%2F..%2Fsub%2Fd.csv/dataset.target=y/dataset=csv"
    assert dirs == [f"{job}/seed=0", f"{job}/seed=1"]
    assert dirs == sorted(_manifest_dirs(sweep)), proc.stdout
    assert victim.read_text() == "{}"
    assert [p for p in tmp_path.rglob("*.json") if not record.inside(p, sweep)] == [victim]


def test_job_folder_parts_are_escaped_and_bounded():
    assert record.escape_part("dataset.path=../x/y.csv") == "dataset.path=..%2Fx%2Fy.csv"
    assert record.escape_part("a=100%") == "a=100%25"
    assert record.escape_part("a=b\\c") == "a=b%5Cc"
    long = "x=" + "v" * 400
    part = record.escape_part(long)
    assert len(part.encode()) <= 200 and part != record.escape_part("x=" + "v" * 399 + "w")


# ------------------------------------------------------------- permissions
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_every_file_a_sweep_and_its_report_write_follows_the_umask(tmp_path, umask, mode):
    sweep, out = tmp_path / "sweep", tmp_path / "report"
    proc = _start(tmp_path, "-m", "seed=0,1", *SMALL, f"hydra.sweep.dir={sweep}", umask=umask)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    old = os.umask(umask)
    try:
        subprocess.run([sys.executable, str(REPORT), str(sweep), "--out", str(out), "--no-progress"],
                       check=True, capture_output=True, env=_env(tmp_path))
    finally:
        os.umask(old)
    files = [p for p in list(sweep.rglob("*")) + list(out.rglob("*")) if p.is_file()]
    assert any(p.name == "metrics.json" for p in files) and any(p.suffix == ".png" for p in files)
    wrong = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in files
             if p.stat().st_mode & 0o777 != mode}
    assert wrong == {}


# ------------------------------------------------- bad input for a sweep
@pytest.mark.parametrize(
    "args, message",
    [
        (["-m", "=3"], "=3"),
        (["-m", "seed=range(abc)"], "range(abc)"),
        (["-m", "outliers.fraction=interval(0,1)"], "interval(0,1)"),
        (["-m", "model.max_itr=5", "seed=0,1"], "model.max_itr is not a setting; allowed: name, solver,"),
        (["-m", "loss=huber,l1", "loss.delta=2"], "loss.delta is not a setting; allowed: name"),
        (["-m", "outliers.fraction=[0.1", "seed=0,1"], "an override does not parse"),
        (["-m", "seed=0,1", "name=.."], "name='..' is invalid; allowed: a plain folder name"),
        (["-m", "name=ok,../../esc"], "sweeps the study name; allowed: one name per sweep"),
        (["-m", "hydra/launcher=nope", "seed=0,1"], "hydra/launcher=nope is invalid; allowed: one of basic,"),
    ],
)
def test_a_bad_sweep_is_refused_in_one_line_before_anything_is_written(run_cli, tmp_path, args, message):
    proc = run_cli(*args, *SMALL)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_a_results_root_that_is_a_file_is_one_line(run_cli, tmp_path):
    root = tmp_path / "afile"
    root.write_text("not a folder")
    proc = run_cli("-m", "seed=0,1", *SMALL, root=root)
    assert proc.returncode == 2
    [line] = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert line.startswith("error: hydra.sweep.dir=") and "Not a directory" in line
    assert root.read_text() == "not a folder"


@pytest.mark.parametrize("values", ["huber,hubr", "hubr,huber"])
def test_a_bad_group_option_in_a_sweep_fails_its_job_alone_with_a_record_whatever_the_order(run_cli, tmp_path, values):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", f"loss={values}", *SMALL, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 1 and "1 of 2 jobs failed" in proc.stderr and "Traceback" not in proc.stderr
    assert _records(sweep) == ["dataset.n_train=60/loss=huber"]
    failure = json.loads((sweep / "dataset.n_train=60/loss=hubr/failure.json").read_text())
    assert failure["status"] == "failed"
    assert failure["error"].startswith("loss=hubr is invalid; allowed: one of barron, cauchy,")
    assert failure["overrides"] == ["loss=hubr", "dataset.n_train=60"] or "loss=hubr" in failure["overrides"]


@pytest.mark.parametrize("values", ["1,abc", "abc,1"])
def test_a_bad_value_in_a_sweep_fails_its_job_alone_with_a_record_whatever_the_order(run_cli, tmp_path, values):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "loss=huber", f"loss.delta={values}", *SMALL, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 1 and "1 of 2 jobs failed" in proc.stderr and "Traceback" not in proc.stderr
    assert _records(sweep) == ["dataset.n_train=60/loss.delta=1/loss=huber"]
    failure = json.loads((sweep / "dataset.n_train=60/loss.delta=abc/loss=huber/failure.json").read_text())
    assert failure["error"].startswith("loss.delta=abc is invalid")


def test_ctrl_c_during_a_single_run_is_one_line_and_exit_130(tmp_path):
    proc = _start(tmp_path, *SMALL, "+hydra.callbacks.slow._target_=killer.Slow", "+hydra.callbacks.slow.seconds=30")
    assert _wait_for(lambda: any((tmp_path / "results").rglob("*")) if (tmp_path / "results").exists() else False,
                     timeout=60)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in out + err and len(lines) == 1 and lines[0].startswith("interrupted: "), err
    assert not list(tmp_path.rglob("metrics.json"))


@pytest.mark.parametrize(
    "grid, bad, message",
    [
        (["model.dtype=float32", "outliers.magnitude=10,1e39"], "outliers.magnitude=1e+39", "model.dtype='float32' is invalid"),
        (["outliers=leverage", "outliers.magnitude=10,1e300"], "outliers.magnitude=1e+300", "outliers.magnitude"),
    ],
)
def test_a_value_bad_only_for_its_data_fails_its_job_with_a_line_naming_the_setting(run_cli, tmp_path, grid, bad, message):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", *grid, *SMALL, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 1 and "1 of 2 jobs failed" in proc.stderr and "Traceback" not in proc.stderr
    [failure] = list(sweep.rglob("failure.json"))
    assert bad in str(failure.parent)
    error = json.loads(failure.read_text())["error"]
    assert message in error and "infinity" not in error



def test_a_single_run_whose_results_root_is_a_file_is_one_line(run_cli, tmp_path):
    root = tmp_path / "afile"
    root.write_text("not a folder")
    proc = run_cli(*SMALL, root=root)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert line.startswith("error: hydra.run.dir=") and "is a file" in line


@pytest.mark.parametrize("batch", [[], ["hydra.sweeper.max_batch_size=1"]], ids=["one batch", "batches of 1"])
def test_hydras_basic_launcher_fails_a_job_that_does_not_compose_alone(run_cli, tmp_path, batch):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "loss=huber,hubr,l1", *SMALL, "hydra/launcher=basic", *batch, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 1 and "1 of 3 jobs failed" in proc.stderr and "Traceback" not in proc.stderr
    assert _records(sweep) == ["dataset.n_train=60/loss=huber", "dataset.n_train=60/loss=l1"]
    failure = json.loads((sweep / "dataset.n_train=60/loss=hubr/failure.json").read_text())
    assert failure["error"].startswith("loss=hubr is invalid; allowed: one of")


def test_sigterm_to_one_worker_fails_its_job_not_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    proc = _start(tmp_path, "-m", "seed=range(8)", *SMALL, "hydra.launcher.n_jobs=2",
                  "+hydra.callbacks.slow._target_=killer.Slow", "+hydra.callbacks.slow.seconds=1.0",
                  f"hydra.sweep.dir={sweep}")
    assert _wait_for(lambda: len(_children(proc.pid)) == 2, timeout=120)
    time.sleep(0.3)
    os.kill(_children(proc.pid)[0], signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, 1) and "interrupted" not in err and "Traceback" not in err, err
    jobs = _manifest_dirs(sweep)
    assert all((sweep / d / "metrics.json").is_file() or (sweep / d / "failure.json").is_file() for d in jobs)


def test_an_interrupt_does_not_wait_for_the_running_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    proc = _start(tmp_path, "-m", "seed=range(8)", *SMALL, "hydra.launcher.n_jobs=2",
                  "+hydra.callbacks.slow._target_=killer.Slow", "+hydra.callbacks.slow.seconds=20",
                  f"hydra.sweep.dir={sweep}")
    assert _wait_for(lambda: len(_children(proc.pid)) == 2, timeout=120)
    time.sleep(1.0)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - t0 < 10
    assert not list(sweep.rglob("metrics.json"))  # the 20 s jobs were stopped, not waited for
