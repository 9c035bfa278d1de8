"""Fit one configuration, or sweep many with ``-m``: the Hydra entry point.

    python experiments/run.py loss=huber outliers.fraction=0.2 seed=3
    python experiments/run.py -m loss=l1,l2,smooth_l1 outliers.fraction=0,0.1,0.2 seed=range(10)
    python experiments/run.py experiment=contamination     # or +experiment=contamination

A thin wrapper: the config becomes plain dataclasses (``OmegaConf.to_object``,
which checks every value range) and :func:`robustreg.experiment.run_job` does
the rest.  Bad input ends a single run with one line and exit status 2
(:func:`preflight` checks the overrides and values before Hydra makes the
job's folder); in a sweep, the job's failure is recorded and the other jobs
go on.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException, ValidationError

from robustreg.config import ConfigError, CsvConf, JobConf
from robustreg.datasets import DataError
from robustreg.experiment import FAILURE, atomic_write_json, one_blas_thread, run_job

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("robustreg.run")

# Paths come from the config, never from the working directory: the results
# root is this checkout's folder unless ROBUSTREG_ROOT says otherwise.
OmegaConf.register_new_resolver("rr_root", lambda: os.environ.get("ROBUSTREG_ROOT", str(ROOT)), replace=True)

BAD_INPUT = (ConfigError, DataError, OmegaConfBaseException)


def unknown_setting(cfg: DictConfig, path: str = "") -> str | None:
    """One line for a key that no schema declares (appended with ``+``), or None.

    OmegaConf would drop such a key at the top level without a word (a
    misspelt ``+sede=3`` would run seed 0) and pass it on below.
    """
    kind = OmegaConf.get_type(cfg)
    allowed = [f.name for f in dataclasses.fields(kind)] if dataclasses.is_dataclass(kind) else None
    for key in cfg:
        if allowed is not None and key not in allowed:
            return f"{path}{key} is not a setting; allowed: {', '.join(allowed)}"
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_none():
            found = unknown_setting(node, f"{path}{key}.")
            if found:
                return found
    return None


def to_spec(cfg: DictConfig, original_cwd: str | None = None) -> JobConf:
    """The composed config as plain, validated dataclasses."""
    unknown = unknown_setting(cfg)
    if unknown:
        raise ConfigError(unknown)
    # The seed feeds the data and outlier seeds: name it, not its copies, when it is bad.
    JobConf(name=str(cfg.get("name")), seed=cfg.get("seed"))
    spec = OmegaConf.to_object(cfg)
    if isinstance(spec.dataset, CsvConf) and original_cwd and not os.path.isabs(spec.dataset.path):
        spec.dataset.path = os.path.join(original_cwd, spec.dataset.path)
    return spec


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _explain(exc: BaseException) -> str:
    """One line for an exception: OmegaConf wraps the cause of a failed __post_init__."""
    cause = exc
    while isinstance(cause, OmegaConfBaseException) and cause.__cause__ is not None:
        cause = cause.__cause__
    text = _first_line(cause)
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


def compose_error(exc: BaseException) -> str:
    """One line for an override that does not compose: the bad value, and what is allowed."""
    from hydra.errors import MissingConfigException, OverrideParseException

    cause = exc.__cause__
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and exc.options:
        group, _, choice = exc.missing_cfg_file.rpartition("/")
        return f"{group}={choice} is invalid; allowed: one of {', '.join(exc.options)}"
    if isinstance(exc, OverrideParseException):
        return f"an override does not parse: {_first_line(exc)} (Hydra's override grammar)"
    key = getattr(cause, "full_key", None)
    node = getattr(cause, "parent_node", None)
    if key and node is not None and str(getattr(cause, "key", "")) not in node:
        return f"{key} is not a setting; allowed: {', '.join(map(str, node.keys()))}"
    if key and isinstance(cause, ValidationError):
        return f"{key}={cause.value} is invalid: {_first_line(cause)}"
    return f"{_first_line(exc)}: {_first_line(cause)}" if cause is not None else _first_line(exc)


def preflight(args: list) -> str | None:
    """``None`` if a single run's overrides make a valid job, else one line saying why not.

    Checked before Hydra makes the job's folder, so bad input leaves nothing
    behind.  Hydra would report an override that does not compose in several
    lines (its search path, a hint to append with ``+``).  Sweeps (``-m``, or
    a study, which is a multirun by its config) and Hydra's other flags are
    left to Hydra and the sweep: it records a job that does not compose or
    holds a bad value, and goes on with the others.
    """
    if any(a.startswith("-") for a in args):
        return None
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        if any(o.is_sweep_override() for o in OverridesParser.create().parse_overrides(args)):
            return None
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3", job_name="run"):
            cfg = compose("config", overrides=args, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        return compose_error(exc)
    if cfg.hydra.mode == RunMode.MULTIRUN:
        return None
    with open_dict(cfg):
        del cfg["hydra"]
    try:
        to_spec(cfg)
    except Exception as exc:  # as main() would have it: one line, exit status 2
        return _explain(exc)
    return None


if __name__ == "__main__":
    sys.argv[1:] = study_override(sys.argv[1:])
    problem = preflight(sys.argv[1:])
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    main()
