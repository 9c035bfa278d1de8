"""The Hydra layer: configs compose, schemas reject bad values, sweeps isolate failures and resume."""

import inspect
import re
import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra_plugins.robustreg_plugin.robustreg_sweeper import RobustregSweeper
from omegaconf import OmegaConf

from robustreg import GDRegressor
from robustreg.study.spec import GDConf, JobConf, OutliersConf
from robustreg.datasets import DATASETS, load_dataset
from robustreg.losses import LOSSES
from robustreg.outliers import OUTLIER_KINDS

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def _compose(overrides=()):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize(
    "group, names",
    [
        ("dataset", sorted(DATASETS)),
        ("outliers", list(OUTLIER_KINDS)),
        ("loss", sorted(LOSSES)),
        ("model", sorted(p.stem for p in (CONF / "model").glob("*.yaml"))),
    ],
)
def test_every_group_option_composes_into_plain_dataclasses(group, names):
    for name in names:
        extra = ["dataset.path=x.csv", "dataset.target=y"] if (group, name) == ("dataset", "csv") else []
        cfg = _compose([f"{group}={name}", *extra])
        spec = OmegaConf.to_object(cfg)
        assert isinstance(spec, JobConf)
        if group == "outliers":
            assert isinstance(spec.outliers, OutliersConf) and spec.outliers.kind == name
        else:
            assert getattr(spec, group).name == name


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_declares_its_grid(experiment):
    text = (CONF / "experiment" / f"{experiment}.yaml").read_text()
    assert text.startswith("# @package _global_")
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    stated = re.search(r"= (\d+) jobs", " ".join(header))
    assert stated, "the header comment states the job count"
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    assert cfg.hydra.sweeper.params or cfg.hydra.sweeper.grids
    sweeper = RobustregSweeper(
        max_batch_size=None,
        params=OmegaConf.to_container(cfg.hydra.sweeper.params) if cfg.hydra.sweeper.params else None,
        grids=OmegaConf.to_container(cfg.hydra.sweeper.grids) if cfg.hydra.sweeper.grids else None,
    )
    jobs = sweeper.expand([f"experiment={experiment}"], OverridesParser.create())
    assert len(jobs) == int(stated.group(1))
    # Every job composes into valid specs: one job per distinct set of keys and group choices.
    seen = set()
    for job in jobs:
        shape = tuple(sorted(o.split("=")[0] if "." in o.split("=")[0] or o.startswith("seed=") else o for o in job))
        if shape in seen:
            continue
        seen.add(shape)
        OmegaConf.to_object(_compose(job))
    assert cfg.name == experiment or experiment.startswith(cfg.name)
    cfg = _compose([f"experiment={experiment}"])
    OmegaConf.to_object(cfg)


def test_drift_model_config_holds_exactly_the_estimator_parameters():
    keys = set(OmegaConf.load(CONF / "model" / "gd.yaml").keys()) - {"defaults", "name"}
    params = set(inspect.signature(GDRegressor).parameters) - {"loss", "random_state"}
    assert keys == params
    assert set(GDConf.__dataclass_fields__) - {"name"} == params


def test_drift_path_settings_are_estimator_parameters():
    params = set(inspect.signature(GDRegressor).parameters)
    assert set(GDConf.PATH_SETTINGS) <= params
    # The settings that define the objective are not path settings.
    assert not {"loss", "penalty", "alpha", "l1_ratio", "fit_intercept", "standardize", "scale"} & set(
        GDConf.PATH_SETTINGS)


def test_a_classic_data_set_record_holds_its_rows_names_and_published_fits(tmp_path):
    from robustreg.study.job import run_job
    from robustreg.study.spec import LOSS_CONFS, ClassicConf

    spec = JobConf(name="t", seed=0, dataset=ClassicConf(name="stars_cyg"), outliers=OutliersConf(fraction=0.0),
                   loss=LOSS_CONFS["tukey"](), model=GDConf())
    rec = run_job(spec, tmp_path / "job", "job")
    ds = load_dataset("stars_cyg")
    assert rec["loss"]["label"] == "tukey" and rec["loss"]["redescending"] is True and rec["loss"]["convex"] is False
    assert rec["dataset"]["feature_names"] == list(ds.feature_names)
    assert rec["dataset"]["target_name"] == ds.target_name
    np.testing.assert_array_equal(np.asarray(rec["train"]["X"]), ds.X_train)
    np.testing.assert_array_equal(np.asarray(rec["train"]["y"]), ds.y_train)
    assert set(rec["published"]) == set(ds.published)


def test_drift_every_registered_name_has_a_config_file():
    for name, cls in LOSSES.items():
        loss_file = CONF / "loss" / f"{name}.yaml"
        assert loss_file.exists(), f"conf/loss/{name}.yaml missing"
        constants = set(OmegaConf.load(loss_file).keys()) - {"defaults", "name"}
        assert constants == set(cls().params())
    for name in DATASETS:
        assert (CONF / "dataset" / f"{name}.yaml").exists()
    for kind in OUTLIER_KINDS:
        assert (CONF / "outliers" / f"{kind}.yaml").exists()


def test_schema_rejects_wrong_types_at_composition():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="outliers.fraction=abc"):
        _compose(["outliers.fraction=abc"])
    with pytest.raises(ConfigCompositionException, match="model.max_iter=ten"):
        _compose(["model.max_iter=ten"])


# ------------------------------------------------------------ through the CLI
def _records(sweep: Path, name="metrics.json"):
    return sorted(p.relative_to(sweep).parent.as_posix() for p in sweep.rglob(name))


def test_single_run_writes_a_self_describing_record(run_cli, tmp_path):
    proc = run_cli("loss=huber", "loss.delta=2.0", "outliers.fraction=0.2", "seed=3", "dataset.n_train=80", check=0)
    [metrics] = list(tmp_path.rglob("metrics.json"))
    rec = json.loads(metrics.read_text())
    # The record says what the report needs of the loss: its label (the constants shown: not the default),
    # and its flags, the loss's own.
    assert rec["loss"] == {"name": "huber", "params": {"delta": 2.0}, "label": "huber (delta=2)",
                           "convex": LOSSES["huber"]().convex, "redescending": LOSSES["huber"]().redescending}
    assert rec["loss"]["convex"] is True and rec["loss"]["redescending"] is False
    assert rec["model"]["path_settings"] == list(GDConf.PATH_SETTINGS)
    assert rec["train"] is None  # a synthetic set: its rows follow from its recorded parameters
    assert rec["outliers"]["kind"] == "vertical" and rec["outliers"]["fraction"] == 0.2
    assert rec["outliers"]["n_corrupted"] == 16 == len(rec["outliers"]["corrupted_rows"])
    assert rec["seed"] == 3 and rec["dataset"]["params"]["seed"] == 3 and rec["dataset"]["n_train"] == 80
    assert rec["model"]["name"] == "gd" and rec["model"]["params"]["learning_rate"] == "auto"
    # Huber (convex) by the default gradient descent on 80 rows with 16 vertical outliers converges: "ok".
    assert rec["status"] == "ok" and rec["converged"] is True and rec["diverged"] is False
    assert len(rec["coef"]) == 5 and len(rec["coef_reference"]) == 6 and len(rec["config_hash"]) == 64
    # The reference is the data set's own (regenerated from the recorded parameters), and the errors are
    # the distances of the recorded fit from it.
    ds = load_dataset(rec["dataset"]["name"], **rec["dataset"]["params"])
    coef, ref = np.asarray(rec["coef"]), np.asarray(rec["coef_reference"])
    np.testing.assert_array_equal(ref, ds.coef_reference)
    assert rec["dataset"]["feature_names"] == list(ds.feature_names) and len(ds.feature_names) == 5
    assert rec["coef_error"] == pytest.approx(np.linalg.norm(coef - ref[1:]), rel=1e-12)
    assert rec["intercept_error"] == pytest.approx(abs(rec["intercept"] - ref[0]), rel=1e-12)
    assert rec["relative_error"] == pytest.approx(rec["coef_error"] / np.linalg.norm(ref[1:]), rel=1e-12)
    # Test metrics: the recorded fit's predictions on the data set's (clean) test rows.
    resid = ds.y_test - (ds.X_test @ coef + rec["intercept"])
    assert rec["test_rmse"] == pytest.approx(np.sqrt(np.mean(resid**2)), rel=1e-12)
    assert rec["test_mae"] == pytest.approx(np.mean(np.abs(resid)), rel=1e-12)
    assert (metrics.parent / "history.parquet").exists() and (metrics.parent / "config.json").exists()
    assert str(metrics.parent) in proc.stdout
    assert not list(metrics.parent.glob(".*tmp"))  # atomic writes leave no temporaries


def test_smoke_study_writes_the_expected_records(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli("experiment=smoke", f"hydra.sweep.dir={sweep}", check=0)
    manifest = json.loads((sweep / "sweep.json").read_text())
    assert manifest["study"] == "smoke" and manifest["n_jobs"] == 8
    expected = sorted(job["job_dir"] for job in manifest["jobs"])
    assert _records(sweep) == expected
    assert "loss=huber/outliers.fraction=0.2/seed=1" in expected
    assert "all 8 jobs done" in proc.stdout
    rec = json.loads((sweep / expected[0] / "metrics.json").read_text())
    assert rec["study"] == "smoke" and rec["job_dir"] == expected[0]


def test_a_study_chosen_with_plus_runs_the_same_jobs(run_cli, tmp_path):
    """``+experiment=NAME``, as Hydra's docs write it, runs the study that ``experiment=NAME`` runs."""
    plain, plus = tmp_path / "plain", tmp_path / "plus"
    run_cli("experiment=smoke", f"hydra.sweep.dir={plain}", check=0)
    proc = run_cli("+experiment=smoke", f"hydra.sweep.dir={plus}", check=0)
    assert "all 8 jobs done" in proc.stdout
    assert _records(plus) == _records(plain)
    for job in _records(plain):
        a, b = (json.loads((root / job / "metrics.json").read_text()) for root in (plain, plus))
        assert a["coef_error"] == b["coef_error"] and a["study"] == b["study"] == "smoke"


def test_a_study_takes_a_sweep_of_its_own_without_m(run_cli, tmp_path):
    """A study is a multirun by its config: ``seed=2,3`` sweeps it, with no ``-m`` and no refusal."""
    sweep = tmp_path / "sweep"
    proc = run_cli("experiment=smoke", "seed=2,3", "loss=l1", f"hydra.sweep.dir={sweep}", check=0)
    assert "all 4 jobs done" in proc.stdout
    assert _records(sweep) == [f"loss=l1/outliers.fraction={f}/seed={s}" for f in ("0.0", "0.2") for s in (2, 3)]


def test_a_failed_job_leaves_the_others_complete_and_the_exit_non_zero(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "dataset.n_features=2,0,3", "dataset.n_train=60", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 1
    assert "1 of 3 jobs failed" in proc.stderr
    # The line names the failed job's folder, where its failure.json lies.
    assert f"  {sweep / 'dataset.n_features=0/dataset.n_train=60'}: dataset.n_features=0 is invalid; allowed:" in proc.stderr
    assert _records(sweep) == ["dataset.n_features=2/dataset.n_train=60", "dataset.n_features=3/dataset.n_train=60"]
    failure = json.loads((sweep / "dataset.n_features=0/dataset.n_train=60/failure.json").read_text())
    assert failure["status"] == "failed" and "dataset.n_features=0" in failure["error"]
    assert not (sweep / "dataset.n_features=0/dataset.n_train=60/metrics.json").exists()


def test_a_setting_no_schema_declares_fails_every_job_it_reaches(run_cli, tmp_path):
    """A misspelt ``+sede=3`` would otherwise be dropped and every job run with seed 0."""
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "loss=l1,l2", "+sede=3", "dataset.n_train=60", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 1 and "2 of 2 jobs failed" in proc.stderr
    assert _records(sweep) == []
    for loss in ("l1", "l2"):
        failure = json.loads((sweep / f"+sede=3/dataset.n_train=60/loss={loss}/failure.json").read_text())
        assert failure["error"] == "sede is not a setting; allowed: name, seed, dataset, outliers, loss, model"


def test_an_interrupted_sweep_resumes_without_recomputing_done_jobs(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    run_cli("experiment=smoke", f"hydra.sweep.dir={sweep}", check=0)
    done = _records(sweep)
    lost = done[::3]  # as if the sweep had been killed before these finished
    for job in lost:
        (sweep / job / "metrics.json").unlink()
    kept = {job: (sweep / job / "metrics.json").stat().st_mtime_ns for job in done if job not in lost}
    proc = run_cli("experiment=smoke", f"hydra.sweep.dir={sweep}", check=0)
    assert _records(sweep) == done
    for job, mtime in kept.items():
        assert (sweep / job / "metrics.json").stat().st_mtime_ns == mtime, f"{job} was recomputed"
    assert proc.stdout.count("skipped (done)") == len(kept)


def _outcomes(sweep):
    out = {}
    for job in _records(sweep):
        rec = json.loads((sweep / job / "metrics.json").read_text())
        rec.pop("fit_seconds")
        out[job] = rec
    return out


def test_joblib_and_basic_launchers_give_identical_metrics(run_cli, tmp_path):
    run_cli("experiment=smoke", f"hydra.sweep.dir={tmp_path / 'basic'}", check=0)
    run_cli("experiment=smoke", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path / 'joblib'}", check=0)
    basic, joblib = _outcomes(tmp_path / "basic"), _outcomes(tmp_path / "joblib")
    assert len(basic) == 8 and basic == joblib


def test_submitit_local_runs_the_smoke_study(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    run_cli("experiment=smoke", "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}", check=0, timeout=600)
    assert len(_records(sweep)) == 8


def test_smoke_study_summary_regenerates_byte_for_byte(run_cli, tmp_path):
    """Same config and seeds, same numbers: two independent sweeps and reports, identical tables."""
    import subprocess
    import sys

    tables = []
    for k, launcher in enumerate(["hydra.launcher.n_jobs=1", "hydra.launcher.n_jobs=2"]):
        sweep, out = tmp_path / f"sweep{k}", tmp_path / f"report{k}"
        run_cli("experiment=smoke", launcher, f"hydra.sweep.dir={sweep}", check=0)
        subprocess.run(
            [sys.executable, str(ROOT / "experiments" / "report.py"), str(sweep), "--out", str(out), "--no-figures", "--no-progress"],
            check=True, capture_output=True,
        )
        tables.append({name: (out / name).read_bytes() for name in ("summary.csv", "paired.csv")})
    assert tables[0]["summary.csv"].count(b"\n") > 4
    assert tables[0] == tables[1]


def test_a_job_whose_config_does_not_compose_fails_alone(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "loss=l1,foo", "dataset.n_train=60", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 1
    assert "1 of 2 jobs failed" in proc.stderr and "loss=foo is invalid; allowed: one of barron," in proc.stderr
    assert _records(sweep) == ["dataset.n_train=60/loss=l1"]
    failure = json.loads((sweep / "dataset.n_train=60/loss=foo/failure.json").read_text())
    assert failure["error"].startswith("loss=foo is invalid; allowed: one of barron,")


def test_a_killed_worker_fails_only_its_job(run_cli, tmp_path, monkeypatch):
    """Hydra's joblib launcher ends the whole sweep when a worker is SIGKILLed; this launcher does not."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent / "plugins"))
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m", "seed=range(6)", "dataset.n_train=60", "hydra.launcher.n_jobs=2",
        "+hydra.callbacks.killer._target_=killer.KillOnSeed", "+hydra.callbacks.killer.seed=2",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 1
    assert "1 of 6 jobs failed" in proc.stderr and "worker process died" in proc.stderr
    assert _records(sweep) == [f"dataset.n_train=60/seed={s}" for s in (0, 1, 3, 4, 5)]
    failure = json.loads((sweep / "dataset.n_train=60/seed=2/failure.json").read_text())
    assert failure["status"] == "failed" and "worker process died" in failure["error"]
