"""Reference solvers: the registry, its checks, and runs through the job record."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from robustreg.study.spec import (
    LOSS_CONFS,
    ClassicConf,
    ConfigError,
    JobConf,
    OutliersConf,
    ReferenceSolverConf,
    SyntheticConf,
)
from robustreg.datasets import load_dataset
from robustreg.study.job import run_job
from robustreg.study.solvers import REFERENCE_SOLVERS, make_reference_solver

CONF_MODEL = Path(__file__).resolve().parents[1] / "conf" / "model"


def _job(model, dataset=None, outliers=None, seed=0):
    return JobConf(
        name="reference",
        seed=seed,
        dataset=dataset or SyntheticConf(n_train=80, n_test=200, n_features=3, seed=seed),
        outliers=outliers or OutliersConf(kind="vertical", fraction=0.1, seed=seed),
        loss=LOSS_CONFS["l2"](),
        model=model,
    )


@pytest.mark.parametrize("name", sorted(REFERENCE_SOLVERS))
def test_every_reference_solver_writes_a_record_without_history(name, tmp_path):
    record = run_job(_job(ReferenceSolverConf(name=name)), tmp_path)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["model"]["name"] == name == record["model"]["name"]
    assert on_disk["status"] == "ok"
    assert math.isfinite(on_disk["coef_error"]) and math.isfinite(on_disk["test_rmse"])
    assert len(on_disk["coef"]) == 3 and math.isfinite(on_disk["intercept"])
    assert not (tmp_path / "history.parquet").exists()
    assert (tmp_path / "config.json").exists() and not (tmp_path / "failure.json").exists()


def test_ols_through_the_record_is_least_squares(tmp_path):
    # The classic sets' reference coefficients are least squares on all rows.
    spec = _job(ReferenceSolverConf(name="sklearn_ols"), ClassicConf("stackloss"), OutliersConf(kind="none"))
    run_job(spec, tmp_path)
    rec = json.loads((tmp_path / "metrics.json").read_text())
    assert rec["coef_error"] < 1e-8 and rec["intercept_error"] < 1e-8
    published = rec["published"]["least_squares"]  # Brownlee's stackloss, rounded to 3 decimals
    np.testing.assert_allclose([rec["intercept"], *rec["coef"]], published, atol=5e-3)


def test_lad_reaches_the_published_l1_fit_of_stars_cyg(tmp_path):
    # Rousseeuw & Leroy's star cluster: the L1 line is 8.15 - 0.693 x (pulled by the giants).
    spec = _job(ReferenceSolverConf(name="sklearn_lad"), ClassicConf("stars_cyg"), OutliersConf(kind="none"))
    run_job(spec, tmp_path)
    rec = json.loads((tmp_path / "metrics.json").read_text())
    np.testing.assert_allclose([rec["intercept"], *rec["coef"]], [8.15, -0.693], atol=5e-3)


def test_randomized_solvers_take_the_job_seed():
    ds = load_dataset("stars_cyg")
    for name in ("sklearn_ransac", "sklearn_theilsen"):
        a = make_reference_solver(name, seed=5)
        assert a.get_params()["random_state"] == 5
        fits = [make_reference_solver(name, seed=5).fit(ds.X_train, ds.y_train) for _ in range(2)]
        assert np.array_equal(fits[0].coef_, fits[1].coef_) and fits[0].intercept_ == fits[1].intercept_
    assert make_reference_solver("sklearn_lad").get_params()["quantile"] == 0.5


def test_ransac_exposes_the_consensus_least_squares_fit():
    ds = load_dataset("telef")
    model = make_reference_solver("sklearn_ransac", seed=0).fit(ds.X_train, ds.y_train)
    inliers = model.inlier_mask_
    A = np.column_stack([np.ones(inliers.sum()), ds.X_train[inliers]])
    expected = np.linalg.lstsq(A, ds.y_train[inliers], rcond=None)[0]
    np.testing.assert_allclose([model.intercept_, *model.coef_], expected, rtol=1e-8, atol=1e-10)
    assert model.n_iter_ == model.n_trials_ >= 1


@pytest.mark.parametrize(
    "name, seed, params, message",
    [
        ("sklearn_foo", 0, {}, "reference solver name='sklearn_foo' is invalid; allowed: sklearn_ols, sklearn_huber, "
         "sklearn_lad, sklearn_ransac, sklearn_theilsen"),
        ("sklearn_huber", 0, {"delta": 1.0}, "sklearn_huber: parameter 'delta' is invalid; allowed: alpha, epsilon, "
         "fit_intercept, max_iter, tol, warm_start"),
        ("sklearn_lad", 0, {"quantile": 0.9}, "sklearn_lad: parameter 'quantile' is invalid; allowed: alpha, "
         "fit_intercept, solver, solver_options"),
        ("sklearn_ransac", 0, {"random_state": 3}, "sklearn_ransac: parameter 'random_state' is invalid"),
        ("sklearn_huber", 0, {"epsilon": 0.5}, "sklearn_huber: The 'epsilon' parameter of HuberRegressor must be a "
         "float in the range [1.0, inf). Got 0.5 instead."),
        ("sklearn_theilsen", -1, {}, "seed=-1 is invalid; allowed: an integer >= 0"),
    ],
)
def test_bad_solver_settings_are_one_clear_line(name, seed, params, message):
    with pytest.raises(ConfigError) as info:
        make_reference_solver(name, seed=seed, **params)
    assert isinstance(info.value, ValueError)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_bad_solver_name_is_rejected_before_the_job_starts(tmp_path):
    with pytest.raises(ConfigError, match="model.name='sklearn_foo' is invalid; allowed: sklearn_ols, "):
        ReferenceSolverConf(name="sklearn_foo")
    with pytest.raises(ConfigError, match="sklearn_foo"):
        make_reference_solver("sklearn_foo")


def test_drift_every_solver_has_a_config_file_with_valid_params():
    files = {p.stem for p in CONF_MODEL.glob("sklearn_*.yaml")}
    assert files == set(REFERENCE_SOLVERS)
    for name in REFERENCE_SOLVERS:
        cfg = OmegaConf.load(CONF_MODEL / f"{name}.yaml")
        assert cfg.name == name
        assert "/schema/model/reference@_here_" in cfg.defaults
        params = OmegaConf.to_container(cfg.params)
        built = make_reference_solver(name, seed=0, **params).get_params()
        # The file states the registry's own defaults, so the record shows the settings used.
        assert {k: built[k] for k in params} == params == REFERENCE_SOLVERS[name].defaults
