"""robustreg's SLURM launcher (``hydra/launcher=slurm``).

The array split, the cleanup of submitit's folder and the launcher's config
are tested everywhere.  The tests on a cluster run only with
``ROBUSTREG_SLURM=1`` (``make test-slurm``), as root on a Debian system: a
module fixture starts a one-node cluster with ``tests/cluster/start-slurm.sh``
(Debian packages, about 15 s the first time) and stops what it started at the
end; they are skipped, with the reason, where that cannot be done.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "experiments" / "run.py"
PLUGINS = str(Path(__file__).parent / "plugins")
CLUSTER = Path(__file__).parent / "cluster"


# ------------------------------------------------------------ no cluster needed
class _Executor:
    """submitit's executor as the launcher uses it: ``map_array``, one array per call."""

    def __init__(self, refuse=()):
        self.arrays = []
        self.refuse = set(refuse)

    def map_array(self, fn, *iterables):
        calls = list(zip(*iterables))
        self.arrays.append(calls)
        if len(self.arrays) in self.refuse:
            raise RuntimeError("sbatch: error: Batch job submission failed: Invalid job array specification")
        return [f"{len(self.arrays)}_{i}" for i in range(len(calls))]


def test_a_sweep_is_split_into_arrays_of_at_most_max_array_size():
    from hydra_plugins.robustreg_plugin._slurm_core import submit_arrays

    calls = [(f"seed={i}", i) for i in range(2500)]
    ex = _Executor()
    jobs = submit_arrays(ex, print, calls, 1000)
    assert [len(a) for a in ex.arrays] == [1000, 1000, 500]
    assert [c for a in ex.arrays for c in a] == calls  # every job once, in order
    assert jobs[0] == "1_0" and jobs[999] == "1_999" and jobs[1000] == "2_0" and jobs[-1] == "3_499"
    for n, sizes in ((1000, [1000]), (1001, [1000, 1]), (1, [1])):
        ex = _Executor()
        submit_arrays(ex, print, calls[:n], 1000)
        assert [len(a) for a in ex.arrays] == sizes


def test_an_array_that_sbatch_refuses_fails_its_jobs_only():
    from hydra_plugins.robustreg_plugin._slurm_core import submit_arrays

    ex = _Executor(refuse={2})
    jobs = submit_arrays(ex, print, [(i,) for i in range(25)], 10)
    assert [len(a) for a in ex.arrays] == [10, 10, 5]
    assert all(isinstance(j, RuntimeError) for j in jobs[10:20])
    assert jobs[:10] == [f"1_{i}" for i in range(10)] and jobs[20:] == [f"3_{i}" for i in range(5)]


def test_submitits_pickles_go_and_failed_jobs_keep_their_logs(tmp_path):
    """Array 7: one job completed, one failed; array 9: its one job completed."""
    import submitit

    from hydra_plugins.robustreg_plugin._slurm_core import clean_submitit_folder

    folder = tmp_path / ".submitit" / "%j"
    root = tmp_path / ".submitit"
    jobs = {}
    for job_id in ("7_0", "7_1", "9_0"):
        job = submitit.SlurmJob(folder=folder, job_id=job_id)
        p = job.paths
        for f in (p.submitted_pickle, p.result_pickle, p.stdout, p.stderr):
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("x")
        jobs[job_id] = job
    for main in ("7", "9"):
        script = root / main / f"{main}_submission.sh"
        script.parent.mkdir(parents=True)
        script.write_text("#!/bin/bash\n")
        (root / f".submission_file_{main}abc.sh").symlink_to(script)
    clean_submitit_folder(str(folder), [(jobs["7_0"], True), (jobs["7_1"], False), (jobs["9_0"], True)])
    left = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    assert left == [".submission_file_7abc.sh", "7", "7/7_submission.sh", "7_1", "7_1/7_1_0_log.err",
                    "7_1/7_1_0_log.out"]
    clean_submitit_folder(str(folder), [])
    assert root.is_dir()  # not empty: kept


def test_hydra_launcher_slurm_is_robustregs_launcher(tmp_path):
    env = {**os.environ, "ROBUSTREG_ROOT": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(RUN), "experiment=smoke", "hydra/launcher=slurm", "--cfg", "hydra",
                           "--package", "hydra.launcher"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "_target_: hydra_plugins.robustreg_plugin.robustreg_slurm_launcher.RobustregSlurmLauncher" in out
    assert "max_array_size: 1000" in out and "cpus_per_task: 1" in out and "timeout_min: 30" in out


# ------------------------------------------------------------------ the cluster
def _controller_up() -> bool:
    if not shutil.which("scontrol"):
        return False
    try:
        return "UP" in subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture(scope="module")
def slurm():
    """A one-node SLURM cluster with the partition ``debug``: started here (and stopped at the end), or already up."""
    if os.environ.get("ROBUSTREG_SLURM") != "1":
        pytest.skip("starts a one-node SLURM cluster (root, Debian packages): set ROBUSTREG_SLURM=1 "
                    "or run make test-slurm")
    if os.geteuid() != 0:
        pytest.skip("a SLURM cluster is started by root only (tests/cluster/start-slurm.sh)")
    if not (shutil.which("apt-get") and shutil.which("dpkg-query")):
        pytest.skip("no apt-get/dpkg-query: tests/cluster/start-slurm.sh installs Debian packages")
    started = not _controller_up()
    if started:
        proc = subprocess.run(["bash", str(CLUSTER / "start-slurm.sh")], capture_output=True, text=True,
                              timeout=900)
        if proc.returncode != 0:
            tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
            pytest.skip(f"tests/cluster/start-slurm.sh could not start a cluster here (exit {proc.returncode}): {tail}")
    sinfo = subprocess.run(["sinfo", "-h", "-p", "debug", "-o", "%a"], capture_output=True, text=True, timeout=60)
    if "up" not in sinfo.stdout:
        pytest.skip(f"the SLURM cluster here has no partition 'debug' that is up: {sinfo.stdout + sinfo.stderr}")
    try:
        yield
    finally:
        if started:
            subprocess.run(["bash", str(CLUSTER / "stop-slurm.sh")], capture_output=True, text=True, timeout=300)


def _env(tmp_path):
    return {**os.environ, "ROBUSTREG_ROOT": str(tmp_path), "HYDRA_FULL_ERROR": "0", "PYTHONPATH": PLUGINS}


def _run(tmp_path, *args, timeout=600):
    return subprocess.run([sys.executable, str(RUN), *args], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=timeout)


def _sacct(name: str) -> list:
    """``[job id, state]`` of every SLURM job (array tasks one by one) with this job name."""
    out = subprocess.run(["sacct", "-n", "-X", "-P", "--name", name, "-S", "2000-01-01", "-o", "JobID,State"],
                         capture_output=True, text=True, timeout=60).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def _sacct_settled(name: str, n: int, wait: float = 20.0) -> list:
    """:func:`_sacct` once accounting lists ``n`` jobs (slurmdbd may lag the jobs by a moment)."""
    deadline = time.monotonic() + wait
    rows = _sacct(name)
    while len(rows) < n and time.monotonic() < deadline:
        time.sleep(1)
        rows = _sacct(name)
    return rows


def test_the_smoke_study_runs_on_slurm_and_a_rerun_submits_nothing(slurm, tmp_path):
    name = f"rr-{uuid.uuid4().hex[:8]}"
    args = ["experiment=smoke", "hydra/launcher=slurm", "hydra.launcher.partition=debug",
            f"hydra.launcher.name={name}", "hydra.launcher.max_array_size=5"]
    t0 = time.monotonic()
    first = _run(tmp_path, *args)
    first_s = time.monotonic() - t0
    out = first.stdout + first.stderr
    assert first.returncode == 0, out
    sweep = tmp_path / "results" / "runs" / "smoke"
    expected = sorted(j["job_dir"] for j in json.loads((sweep / "sweep.json").read_text())["jobs"])
    records = {p.parent.relative_to(sweep).as_posix(): json.loads(p.read_text()) for p in sweep.rglob("metrics.json")}
    assert len(expected) == 8 and sorted(records) == expected
    assert all(r["status"] in ("ok", "not_converged", "diverged") for r in records.values())
    # Eight jobs in arrays of at most five; each prints its line here.
    assert "slurm: submitted 8 of 8 jobs in 2 job arrays of at most 5 jobs" in first.stdout, out
    assert all(f"{d}: {records[d]['status']}  coef_error=" in first.stdout for d in expected), out
    assert "all 8 jobs done" in first.stdout and "Traceback" not in out
    rows = _sacct_settled(name, 8)
    assert len(rows) == 8 and {r[1] for r in rows} == {"COMPLETED"}, rows
    assert len({r[0].split("_")[0] for r in rows}) == 2, rows
    # submitit's pickles, logs and scripts of completed jobs are gone.
    assert not list(sweep.rglob("*.pkl")) and not (sweep / ".submitit").exists()

    mtimes = {p: p.stat().st_mtime_ns for p in sweep.rglob("metrics.json")}
    t0 = time.monotonic()
    second = _run(tmp_path, *args)
    second_s = time.monotonic() - t0
    out = second.stdout + second.stderr
    assert second.returncode == 0, out
    assert "slurm: nothing to submit (8 of 8 jobs done already)" in second.stdout, out
    assert second.stdout.count("skipped (done)") == 8 and "all 8 jobs done" in second.stdout
    assert len(_sacct(name)) == 8  # no new SLURM job
    assert {p: p.stat().st_mtime_ns for p in sweep.rglob("metrics.json")} == mtimes
    assert second_s < first_s / 2, (first_s, second_s)
    print(f"smoke on SLURM: {first_s:.1f} s; rerun, nothing submitted: {second_s:.1f} s")


def test_a_scancelled_job_fails_alone_with_its_reason_and_a_rerun_does_it(slurm, tmp_path):
    """Four jobs: two with a bad value (never submitted), two slow ones on SLURM, of which one is scancelled."""
    name = f"rr-{uuid.uuid4().hex[:8]}"
    sweep = tmp_path / "sweep"
    args = ["-m", "seed=0,1", "outliers.fraction=0.1,0.7", "dataset.n_train=60", "hydra/launcher=slurm",
            "hydra.launcher.partition=debug", f"hydra.launcher.name={name}", f"hydra.sweep.dir={sweep}"]
    # Every job sleeps 50 s first (the callback travels to the SLURM job with the launcher's
    # pickle; killer is importable there through PYTHONPATH, which sbatch passes on).  A
    # cancelled job ignores SIGTERM (submitit's jobs do) and is killed KillWait (30 s) later.
    slow = ["+hydra.callbacks.slow._target_=killer.Slow", "+hydra.callbacks.slow.seconds=50"]
    proc = subprocess.Popen([sys.executable, str(RUN), *args, *slow], cwd=tmp_path, env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            running = subprocess.run(["squeue", "-h", "-r", "--name", name, "-t", "RUNNING", "-o", "%i"],
                                     capture_output=True, text=True, timeout=60).stdout.split()
            # Jobs are submitted in sweep order: array task 1 is seed=1 (outliers.fraction=0.1).
            victim = next((j for j in running if j.endswith("_1")), None)
            time.sleep(0.5)
        assert victim is not None, "the job of seed=1 never ran"
        subprocess.run(["scancel", victim], check=True, timeout=60)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
            subprocess.run(["scancel", "--name", name], timeout=60)
    assert proc.returncode == 1, out + err
    assert "slurm: submitted 2 of 4 jobs in 1 job array" in out and "2 with a bad config" in out, out
    assert "3 of 4 jobs failed:" in err and "Traceback" not in out + err, out + err
    assert len(_sacct_settled(name, 2)) == 2  # the jobs with a bad value never went to SLURM
    for seed in (0, 1):
        bad = json.loads((sweep / "dataset.n_train=60" / "outliers.fraction=0.7" / f"seed={seed}" /
                          "failure.json").read_text())
        assert bad["error"] == "outliers.fraction=0.7 is invalid; allowed: a finite real number in [0, 0.5)", bad
    jobs = sweep / "dataset.n_train=60" / "outliers.fraction=0.1"
    failure = json.loads((jobs / "seed=1" / "failure.json").read_text())
    assert failure["status"] == "failed" and failure["error_type"] == "SlurmJobError"
    assert f"SLURM job {victim} ended without a result: CANCELLED" in failure["error"], failure
    assert "\n" not in failure["error"] and failure["error"] in err
    assert not (jobs / "seed=1" / "metrics.json").exists()
    assert (jobs / "seed=0" / "metrics.json").is_file()
    # No pickle is left; the cancelled job keeps its logs, the completed one's are gone.
    assert not list(sweep.rglob("*.pkl"))
    logs = sorted(p.name for p in (sweep / ".submitit").rglob("*_log.*"))
    assert logs == [f"{victim}_0_log.err", f"{victim}_0_log.out"], logs

    rerun = _run(tmp_path, *args)
    out = rerun.stdout + rerun.stderr
    assert rerun.returncode == 1 and "2 of 4 jobs failed:" in rerun.stderr, out
    assert "slurm: submitted 1 of 4 jobs in 1 job array" in rerun.stdout, out
    assert "(1 of 4 jobs done already, 2 with a bad config)" in rerun.stdout, out
    assert (jobs / "seed=1" / "metrics.json").is_file() and not (jobs / "seed=1" / "failure.json").exists()
