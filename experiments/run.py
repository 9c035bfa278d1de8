"""Fit one configuration, or sweep many with ``-m``: the Hydra entry point.

    python experiments/run.py loss=huber outliers.fraction=0.2 seed=3
    python experiments/run.py -m loss=l1,l2,smooth_l1 outliers.fraction=0,0.1,0.2 seed=range(10)
    python experiments/run.py experiment=contamination     # or +experiment=contamination

A thin wrapper: the config becomes plain dataclasses (``OmegaConf.to_object``,
which checks every value range) and :func:`robustreg.experiment.run_job` does
the rest.  Bad input ends a single run with one line and exit status 2; in a
sweep, the job's failure is recorded and the other jobs go on.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from robustreg.config import ConfigError, CsvConf, JobConf
from robustreg.datasets import DataError
from robustreg.experiment import FAILURE, atomic_write_json, one_blas_thread, run_job

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("robustreg.run")

# Paths come from the config, never from the working directory: the results
# root is this checkout's folder unless ROBUSTREG_ROOT says otherwise.
OmegaConf.register_new_resolver("rr_root", lambda: os.environ.get("ROBUSTREG_ROOT", str(ROOT)), replace=True)

BAD_INPUT = (ConfigError, DataError, OmegaConfBaseException)


def to_spec(cfg: DictConfig, original_cwd: str | None = None) -> JobConf:
    """The composed config as plain, validated dataclasses."""
    # The seed feeds the data and outlier seeds: name it, not its copies, when it is bad.
    JobConf(name=str(cfg.get("name")), seed=cfg.get("seed"))
    spec = OmegaConf.to_object(cfg)
    if isinstance(spec.dataset, CsvConf) and original_cwd and not os.path.isabs(spec.dataset.path):
        spec.dataset.path = os.path.join(original_cwd, spec.dataset.path)
    return spec


def _explain(exc: BaseException) -> str:
    """One line for an exception: OmegaConf wraps the cause of a failed __post_init__."""
    cause = exc
    while isinstance(cause, OmegaConfBaseException) and cause.__cause__ is not None:
        cause = cause.__cause__
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return text if isinstance(cause, BAD_INPUT) else f"{type(cause).__name__}: {text}"


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig):
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    job_path = Path(hc.runtime.output_dir)
    base = Path(hc.sweep.dir) if multirun else job_path
    job_dir = os.path.relpath(job_path, base) if multirun else "."
    try:
        spec = to_spec(cfg, hc.runtime.cwd)
    except Exception as exc:
        message = _explain(exc)
        if not multirun:
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)
        atomic_write_json(
            job_path / FAILURE,
            {"schema_version": 1, "study": cfg.get("name"), "job_dir": job_dir, "status": "failed",
             "overrides": list(hc.overrides.task), "error": message, "error_type": type(exc).__name__},
        )
        raise
    try:
        if multirun:
            # Jobs of a sweep may run side by side (joblib, submitit, robustreg's
            # workers): each is held to one BLAS thread.
            with one_blas_thread():
                record = run_job(spec, job_path, job_dir)
        else:
            record = run_job(spec, job_path, job_dir)
    except Exception as exc:
        if not multirun:
            print(f"error: {_explain(exc)} (record: {job_path / FAILURE})", file=sys.stderr)
            sys.exit(2 if isinstance(exc, BAD_INPUT) else 1)
        raise
    state = "skipped (done)" if record.get("skipped") else record["status"]
    log.info(
        "%s: %s  coef_error=%.4g  n_iter=%s  %s",
        job_dir, state, record["coef_error"], record["n_iter"], "" if multirun else job_path,
    )
    return {k: record[k] for k in ("status", "coef_error", "n_iter")}


def study_override(args: list) -> list:
    """The command line with ``+experiment=NAME`` (the form of Hydra's docs) read as ``experiment=NAME``.

    The defaults list names ``experiment`` (empty unless a study is chosen), so
    that a study's values come after this file's own; Hydra would refuse to
    append a second ``experiment`` and end with "Multiple values for experiment".
    """
    return [a[1:] if a.startswith("+experiment=") else a for a in args]


if __name__ == "__main__":
    sys.argv[1:] = study_override(sys.argv[1:])
    main()
