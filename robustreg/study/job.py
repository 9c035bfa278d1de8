"""One experiment job, from a typed spec to a self-describing record on disk.

Data flows one way: spec -> dataset -> outliers -> estimator.fit -> metrics
-> job folder.  What the folder holds, and when a record is current, is
:mod:`robustreg.study.record`'s.  The record's ``status`` is ``ok`` (the fit
holds its optimality certificate, ``GDRegressor.converged_``),
``not_converged`` (no certificate and no divergence: for example ``max_iter``
reached, or a reference solver warned with a
:class:`~sklearn.exceptions.ConvergenceWarning`) or ``diverged``; the
``converged`` and ``diverged`` booleans are kept beside it.

A job whose record is current (same config hash, same code hash, intact
files) is skipped; one whose record is stale or damaged runs again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning

from .. import __version__
from ..datasets import DataError, load_dataset
from ..estimator import GDRegressor
from ..losses import get_loss
from ..outliers import inject
from .errors import ConfigError, explain
from .record import (
    CONFIG,
    FAILURE,
    HISTORY,
    METRICS,
    SCHEMA_VERSION,
    atomic_write,
    atomic_write_json,
    clean,
    code_hash,
    data_digest,
    digest,
    failure_record,
    history_bytes,
    job_lock,
    loss_label,
    read_done,
    to_json,
    write_failure,
)
from .spec import CsvConf, GDConf, JobConf, ReferenceSolverConf, config_keys, dataset_params

log = logging.getLogger(__name__)


# -------------------------------------------------------------------- identity
def retain_freed_memory() -> bool:
    """Have glibc's allocator keep freed memory for the next fit instead of returning it to the kernel.

    By default glibc maps each array over 128 KiB afresh and hands freed heap
    memory back at once: a sweep's next fit then faults every page of its
    temporaries in again.  The S-estimator start of an MM fit (500 starts
    refined as stacked arrays) spent about 4 ms of kernel time per fit on
    that, a sixth of the fit.  Arrays up to 32 MiB come from the heap, and up
    to 128 MiB of freed memory stays with the process.  Called once by the
    job entry point (forked workers inherit it); elsewhere than glibc it does
    nothing.  Returns whether it was applied.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError, TypeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, 128 << 20))


def spec_dict(spec: JobConf) -> dict:
    """The job spec as plain, JSON-safe data."""
    return clean(dataclasses.asdict(spec))


def config_hash(spec: JobConf) -> str:
    """SHA-256 of the canonical JSON of the spec and of a CSV data file's content: equal inputs, equal hashes.

    A CSV edited in place is other data under the same path: its jobs run again.
    """
    identity = spec_dict(spec)
    if isinstance(spec.dataset, CsvConf):
        identity["data_sha256"] = data_digest(spec.dataset.path)
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _identity(spec: JobConf, job_dir: str, digest: str) -> dict:
    """Every input that identifies the job."""
    o = spec.outliers
    outlier_params = {k: v for k, v in vars(o).items() if k not in ("kind", "fraction", "magnitude", "seed")}
    model = spec.model
    model_params = model.estimator_params() if isinstance(model, GDConf) else dict(model.params)
    loss = loss_entry(spec)
    return {
        "schema_version": SCHEMA_VERSION,
        "study": spec.name,
        "job_dir": job_dir,
        "config_hash": digest,
        "code_hash": code_hash(),
        "package_version": __version__,
        "seed": spec.seed,
        "dataset": {"name": spec.dataset.name, "params": dataset_params(spec.dataset)},
        "outliers": {
            "kind": o.kind,
            "fraction": o.fraction,
            "magnitude": o.magnitude,
            "seed": o.seed,
            "params": outlier_params,
        },
        "loss": loss,
        "model": {"name": model.name, "params": model_params,
                  "path_settings": list(GDConf.PATH_SETTINGS) if isinstance(model, GDConf) else []},
    }


def loss_entry(spec: JobConf) -> dict:
    """The record's ``loss``: what the fit minimized, its constants, its label and its flags.

    The label is the loss's name at its default constants (``huber``), else the
    name with the constants (``huber (delta=1.345)``); a reference solver
    minimizes its own objective (the loss group does not apply) and goes by
    its name.  ``convex`` and ``redescending`` are the loss's own flags (a
    reference solver is convex when it minimizes a convex loss exactly).
    """
    model = spec.model
    if not isinstance(model, GDConf):
        from .solvers import REFERENCE_SOLVERS

        solver = REFERENCE_SOLVERS.get(model.name)
        return {"name": model.name, "params": {}, "label": model.name,
                "convex": bool(solver is not None and solver.convex), "redescending": False}
    return describe_loss(spec.loss.name, {k: v for k, v in vars(spec.loss).items() if k != "name"})


def describe_loss(name: str, params: dict) -> dict:
    """:func:`loss_entry` of the loss ``name`` with the constants ``params`` (a gradient-descent job)."""
    try:
        loss, default = get_loss(name, **params), get_loss(name).params()
        at_default = all(k in default and float(default[k]) == float(v) for k, v in params.items())
        flags = {"convex": bool(loss.convex), "redescending": bool(loss.redescending)}
    except (TypeError, ValueError):  # the fit says why; the record still names the job
        at_default, flags = not params, {"convex": None, "redescending": None}
    label = loss_label(name, {} if at_default else params)
    return {"name": name, "params": dict(params), "label": label, **flags}


# ------------------------------------------------------------------------ fit
def _build_model(spec: JobConf):
    """The estimator for the spec, and whether it records a history."""
    model = spec.model
    loss = get_loss(spec.loss.name, **{k: v for k, v in vars(spec.loss).items() if k != "name"})
    if isinstance(model, GDConf):
        return GDRegressor(loss=loss, random_state=spec.seed, **model.estimator_params()), True
    if isinstance(model, ReferenceSolverConf):
        from .solvers import make_reference_solver

        return make_reference_solver(model.name, seed=spec.seed, **model.params), False
    raise TypeError(f"unknown model spec {type(model).__name__}")


def job_status(converged: bool, diverged: bool) -> str:
    """The status of a job that ran to its end: ``diverged``, else ``ok`` or ``not_converged``.

    A fit without its optimality certificate that did not diverge is ``not_converged``:
    its estimate is not the minimizer it stands for, so the report leaves it out
    of estimator comparisons (its history still counts for the dynamics).
    """
    if diverged:
        return "diverged"
    return "ok" if converged else "not_converged"


def load_data(spec: JobConf):
    """The job's data set (:func:`~robustreg.datasets.load_dataset` with the spec's parameters).

    A parameter the loader rejects is named as its config key (``dataset.rho``).
    """
    params = dataset_params(spec.dataset)
    try:
        return load_dataset(spec.dataset.name, **params)
    except DataError:
        raise
    except ValueError as exc:
        raise ConfigError(config_keys("dataset.", str(exc).splitlines()[0], params)) from None


def contaminate(spec: JobConf, ds):
    """The training rows with the spec's outliers injected: ``(X, y, corrupted mask)``.

    A setting the outlier model rejects for these data is named as its config key (``outliers.magnitude``).
    """
    o = spec.outliers
    try:
        return _inject(spec, ds)
    except ValueError as exc:
        raise ConfigError(config_keys("outliers.", str(exc).splitlines()[0], vars(o))) from None


def prepare(spec: JobConf):
    """Everything a job does before its fit: ``(ds, X, y, corrupted mask)``.

    The data set is loaded, the outliers injected, and the model's settings
    that hold only for some data checked (:meth:`~robustreg.study.spec.GDConf.check_data`);
    bad input raises :class:`~robustreg.study.errors.ConfigError` or
    :class:`~robustreg.datasets.DataError` naming the setting.
    """
    ds = load_data(spec)
    X, y, mask = contaminate(spec, ds)
    check_data = getattr(spec.model, "check_data", None)
    if check_data is not None:
        check_data(X, y)
    return ds, X, y, mask


def _inject(spec: JobConf, ds):
    o = spec.outliers
    return inject(
        ds.X_train,
        ds.y_train,
        o.kind,
        o.fraction,
        o.magnitude,
        o.seed,
        side=o.side,
        noise_scale=ds.noise_scale,
        y_signal=ds.y_signal_train,
        tail=o.tail,
        df=o.df,
        leverage_share=o.leverage_share,
    )


def _fit_and_measure(spec: JobConf):
    """Build the data, inject outliers, fit, and measure.

    Returns (outcomes, history, what the data turned out to be: added to the
    record's ``dataset`` and ``outliers`` entries).
    """
    ds, X, y, mask = prepare(spec)
    estimator, has_history = _build_model(spec)
    ref = np.asarray(ds.coef_reference, dtype=float)
    t0 = time.perf_counter()
    # The model's parameters were checked with scikit-learn's own constraints when the spec
    # was made (GDConf, ReferenceSolverConf), and the data are finite by construction (the
    # loaders reject a non-finite value, the outlier models one that would overflow): the fit
    # checks neither again, nor does each inner fit of a meta-estimator (RANSAC's least
    # squares per trial).  The estimators still check the data's shapes.
    with (warnings.catch_warnings(record=True) as caught,
          sklearn.config_context(skip_parameter_validation=True, assume_finite=True)):
        warnings.simplefilter("always")
        if has_history:
            estimator.fit(X, y, coef_reference=ref)
        else:
            estimator.fit(X, y)
    fit_seconds = time.perf_counter() - t0
    for w in caught:
        log.info("%s: %s", w.category.__name__, w.message)

    coef = np.asarray(estimator.coef_, dtype=float).reshape(-1)
    intercept = float(np.asarray(estimator.intercept_, dtype=float).reshape(-1)[0]) if np.size(estimator.intercept_) else 0.0
    coef_error = float(np.linalg.norm(coef - ref[1:]))
    ref_norm = float(np.linalg.norm(ref[1:]))
    finite = bool(np.all(np.isfinite(coef)) and math.isfinite(intercept))
    diverged = bool(getattr(estimator, "diverged_", False)) or not finite
    if ds.n_test:
        pred = ds.X_test @ coef + intercept
        err = ds.y_test - pred
        test_rmse = float(np.sqrt(np.mean(err**2)))
        test_mae = float(np.mean(np.abs(err)))
    else:
        test_rmse = test_mae = None
    history = getattr(estimator, "history_", None) if has_history else None
    grad = history["grad_norm"].to_numpy() if history is not None and len(history) else None
    # Reference solvers minimize objectives of their own: none is recorded for them.
    objective = getattr(estimator, "objective_", None) if has_history else None
    if has_history:
        converged = bool(estimator.converged_)
    else:
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    outcomes = {
        "status": job_status(converged, diverged),
        "coef": coef,
        "intercept": intercept,
        "coef_reference": ref,
        "coef_true": ds.coef_true,
        "coef_error": coef_error,
        "intercept_error": abs(intercept - float(ref[0])),
        "relative_error": coef_error / ref_norm if ref_norm > 0 else None,
        "test_rmse": test_rmse,
        "test_mae": test_mae,
        "train_objective": objective,
        "n_iter": int(np.max(getattr(estimator, "n_iter_", 0))),
        "converged": converged,
        "diverged": diverged,
        "fit_seconds": fit_seconds,
        "lipschitz": getattr(estimator, "lipschitz_", None),
        "initial_step": float(history["step"].iloc[0]) if grad is not None else None,
        "scale": getattr(estimator, "scale_", None),
        "start": getattr(estimator, "init_", None),
        "optimality": getattr(estimator, "optimality_", None),
        # Standard errors, intercept first (robustreg.inference); None for reference
        # solvers and where the fit's covariance is not defined (penalized, weighted, diverged).
        "bse": (np.asarray(estimator.bse_, dtype=float)
                if has_history and getattr(estimator, "cov_type_", None) is not None else None),
        "max_grad_norm": float(np.nanmax(grad)) if grad is not None else None,
        "final_grad_norm": float(grad[-1]) if grad is not None else None,
        "published": {k: np.asarray(v) for k, v in (ds.published or {}).items()},
        # The rows the fit saw, for the classic data sets (small, with published fits): the report draws them.
        "train": {"X": X, "y": y} if ds.published else None,
        "known_outliers": ds.known_outliers,
        # Which rows the fit trusts (GDRegressor.weights_), kept for the data sets with documented outliers.
        "weights": (np.asarray(estimator.weights_, dtype=float)
                    if has_history and len(ds.known_outliers) and getattr(estimator, "weights_", None) is not None
                    else None),
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    }
    data = {
        "dataset": {"n_train": ds.n_train, "n_test": ds.n_test, "n_features": ds.n_features,
                    "reference_method": ds.reference_method, "feature_names": list(ds.feature_names),
                    "target_name": ds.target_name},
        "outliers": {"n_corrupted": int(mask.sum()), "corrupted_rows": np.flatnonzero(mask)},
    }
    return outcomes, history, data


def run_job(spec: JobConf, job_path: Path, job_dir: str | None = None) -> dict:
    """Run one job into ``job_path`` and return its record.

    Parameters
    ----------
    spec : JobConf
        The validated job spec (plain dataclasses).
    job_path : Path
        The job's folder.
    job_dir : str, optional
        The folder's name relative to its sweep folder, stored in the record.

    Returns
    -------
    dict
        The record written to ``metrics.json`` (or found there, when the job
        was already done with the same config hash: then ``record["skipped"]``
        is True in the returned dict only).

    Raises
    ------
    Exception
        Whatever the job raised, after ``failure.json`` was written.
    """
    job_path = Path(job_path)
    config_digest = config_hash(spec)
    # Two sweeps into one folder: the second waits for the job here, then finds it done.
    with job_lock(job_path):
        done, why = read_done(job_path, config_digest)
        if done is not None:
            log.info("done already (same config hash), skipped: %s", job_path)
            return {**done, "skipped": True}
        if why:
            log.info("%s: run again: %s", job_path, why)
        return _run(spec, job_path, job_dir, config_digest)


def _run(spec: JobConf, job_path: Path, job_dir: str | None, config_digest: str) -> dict:
    identity = _identity(spec, job_dir if job_dir is not None else job_path.name, config_digest)
    try:
        outcomes, history, data = _fit_and_measure(spec)
        identity["dataset"].update(data["dataset"])
        identity["outliers"].update(data["outliers"])
        # A stale record of another config or an old failure must not outlive this run.
        for name in (METRICS, FAILURE, HISTORY):
            (job_path / name).unlink(missing_ok=True)
        files = {CONFIG: to_json(spec_dict(spec)).encode()}
        if history is not None:
            files[HISTORY] = history_bytes(history)
        for name, data_bytes in files.items():
            atomic_write(job_path / name, data_bytes)
        record = {**identity, **outcomes, "files": {name: digest(b) for name, b in files.items()}}
        atomic_write_json(job_path / METRICS, record)
        return clean(record)
    except Exception as exc:
        write_failure(job_path, failure_record(
            spec.name, identity["job_dir"], None, explain(exc), type(exc).__name__,
            **{k: v for k, v in identity.items() if k not in ("study", "job_dir", "schema_version")},
            traceback=traceback.format_exc()))
        raise
