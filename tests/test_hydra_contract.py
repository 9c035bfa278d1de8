"""Hydra's per-job contract, held to Hydra's basic launcher; plugin discovery stays light; fail-fast."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "experiments" / "run.py"
PLUGINS = str(Path(__file__).parent / "plugins")


def _run(tmp_path, *args, check=None):
    env = {**os.environ, "ROBUSTREG_ROOT": str(tmp_path), "HYDRA_FULL_ERROR": "0", "PYTHONPATH": PLUGINS}
    proc = subprocess.run([sys.executable, str(RUN), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    if check is not None:
        assert proc.returncode == check, proc.stdout + proc.stderr
    return proc


def _layout(sweep: Path) -> dict:
    """Each job folder's files (but the record's own), and the folder the job ran in, relative to the sweep."""
    out = {}
    for cwd in sorted(sweep.rglob("cwd.txt")):
        job = cwd.parent
        files = sorted(p.relative_to(job).as_posix() for p in job.rglob("*") if p.is_file()
                       and p.name not in ("cwd.txt", ".lock"))
        ran_in = os.path.relpath(cwd.read_text(), sweep)
        out[job.relative_to(sweep).as_posix()] = (files, ran_in)
    return out


@pytest.mark.parametrize(
    "settings",
    [
        ["hydra.job.chdir=true"],
        ["hydra.output_subdir=.hydra"],
        ["hydra/job_logging=default"],
        ["hydra.job.chdir=true", "hydra.output_subdir=.hydra", "hydra/job_logging=default"],
    ],
    ids=["chdir", "output_subdir", "job_logging", "all"],
)
def test_per_job_settings_are_honoured_as_by_hydras_basic_launcher(tmp_path, settings):
    grid = ["-m", "seed=0,1", "dataset.n_train=60", "+hydra.callbacks.cwd._target_=killer.RecordCwd", *settings]
    layouts = {}
    for launcher in ("basic", "robustreg"):
        sweep = tmp_path / launcher
        extra = ["hydra.launcher.n_jobs=2"] if launcher == "robustreg" else []
        _run(tmp_path, *grid, f"hydra/launcher={launcher}", *extra, f"hydra.sweep.dir={sweep}", check=0)
        layouts[launcher] = _layout(sweep)
    assert len(layouts["basic"]) == 2
    assert layouts["robustreg"] == layouts["basic"]
    files, ran_in = next(iter(layouts["basic"].values()))
    if "hydra.job.chdir=true" in settings:
        assert ran_in != ".." and not ran_in.startswith("..")  # in its own folder
    if "hydra.output_subdir=.hydra" in settings:
        assert {".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml"} <= set(files)
    if "hydra/job_logging=default" in settings:
        assert "run.log" in files


def test_a_job_reruns_from_its_pickled_config(tmp_path):
    """``--experimental-rerun`` needs ``.hydra/config.pickle``: Hydra's PickleJobInfoCallback and an output_subdir."""
    sweep = tmp_path / "sweep"
    _run(tmp_path, "-m", "seed=0,1", "dataset.n_train=60", "hydra.output_subdir=.hydra",
         "+hydra.callbacks.pickle._target_=hydra.experimental.callbacks.PickleJobInfoCallback",
         f"hydra.sweep.dir={sweep}", check=0)
    [pickle] = [p for p in sweep.rglob("config.pickle") if "seed=1" in str(p)]
    metrics = pickle.parent.parent / "metrics.json"
    before = json.loads(metrics.read_text())
    metrics.unlink()
    proc = _run(tmp_path, "--experimental-rerun", str(pickle), check=0)
    after = json.loads(metrics.read_text())
    assert after["coef"] == before["coef"] and after["seed"] == 1, proc.stderr


def test_plugin_discovery_imports_nothing_heavy():
    """Every Hydra app of the environment discovers robustreg's plugin: it must not pay for robustreg."""
    code = ("from hydra.core.plugins import Plugins; Plugins.instance(); import sys; "
            "print(sorted({m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(eval(out))
    assert "hydra_plugins" in loaded
    assert not loaded & {"robustreg", "sklearn", "scipy", "pandas", "numpy", "matplotlib", "numba"}


def test_the_plugins_use_only_public_hydra_apis():
    for path in (ROOT / "hydra_plugins").rglob("*.py"):
        text = path.read_text()
        assert "hydra._internal" not in text and "_return_value" not in text, path.name


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_fail_fast_starts_no_job_after_the_first_failure(tmp_path, n_jobs):
    sweep = tmp_path / "sweep"
    proc = _run(tmp_path, "-m", "outliers.fraction=0.7,0.1", "seed=range(4)", "dataset.n_train=60",
                "hydra.sweeper.fail_fast=true", f"hydra.launcher.n_jobs={n_jobs}", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "stopped at the first failure (hydra.sweeper.fail_fast=true)" in proc.stderr
    failed = list(sweep.rglob("failure.json"))
    done = list(sweep.rglob("metrics.json"))
    # The first job fails; at most the jobs already in flight then run.
    assert 1 <= len(failed) <= 2 * n_jobs and len(failed) + len(done) < 8
    assert f"were not run" in proc.stderr
    rerun = _run(tmp_path, "-m", "outliers.fraction=0.7,0.1", "seed=range(4)", "dataset.n_train=60",
                 f"hydra.launcher.n_jobs={n_jobs}", f"hydra.sweep.dir={sweep}")
    assert rerun.returncode == 1 and "4 of 8 jobs failed" in rerun.stderr
    assert len(list(sweep.rglob("metrics.json"))) == 4


def test_the_hydra_node_resolves_alone(tmp_path):
    """``--cfg hydra --resolve`` prints the hydra node without the task's keys: its paths must still resolve."""
    proc = _run(tmp_path, "--cfg", "hydra", "--resolve", "experiment=smoke", check=0)
    assert f"dir: {tmp_path}/results/runs/smoke\n" in proc.stdout
    proc = _run(tmp_path, "--cfg", "hydra", "--resolve", "name=mine", "seed=3", check=0)
    assert f"dir: {tmp_path}/results/runs/mine/single/seed=3\n" in proc.stdout


def _script(name):
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.skip(f"{name} is not installed in this environment (pip install -e . installs it)")
    return str(path)


def test_the_console_script_runs_the_entry_point_and_has_completion(tmp_path):
    env = {**os.environ, "ROBUSTREG_ROOT": str(tmp_path), "HYDRA_FULL_ERROR": "0"}
    run = _script("robustreg-run")
    proc = subprocess.run([run, "dataset.n_train=60", "seed=4"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    [metrics] = list(tmp_path.rglob("metrics.json"))
    assert json.loads(metrics.read_text())["seed"] == 4
    install = subprocess.run([run, "-sc", "install=bash"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert install.stdout.rstrip().endswith("-F hydra_bash_completion robustreg-run")
    query = subprocess.run([run, "-sc", "query=bash"], cwd=tmp_path, capture_output=True, text=True,
                           env={**env, "COMP_LINE": "robustreg-run loss=hu", "COMP_POINT": "21"})
    assert query.stdout.split() == ["loss=huber"]
    report = subprocess.run([_script("robustreg-report"), "--help"], capture_output=True, text=True)
    assert report.returncode == 0 and report.stdout.startswith("usage: robustreg-report")


def test_help_lists_the_groups_a_user_chooses_from_and_hides_the_schemas(tmp_path):
    proc = _run(tmp_path, "--help", check=0)
    groups = proc.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    listed = [ln.split(":")[0] for ln in groups.splitlines() if ":" in ln and not ln.startswith("Compose")]
    assert listed == sorted(p.name for p in (ROOT / "conf").iterdir() if p.is_dir() and p.name != "hydra")
    assert "schema" not in proc.stdout
    assert "loss: barron, cauchy," in groups
