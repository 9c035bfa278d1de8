"""Fit one configuration, or sweep many with ``-m``: the Hydra entry point.

    python experiments/run.py loss=huber outliers.fraction=0.2 seed=3
    python experiments/run.py -m loss=l1,l2,smooth_l1 outliers.fraction=0,0.1,0.2 seed=range(10)
    python experiments/run.py experiment=contamination     # or +experiment=contamination

A thin wrapper: the config becomes plain dataclasses (``OmegaConf.to_object``,
which checks every value range) and :func:`robustreg.study.job.run_job` does
the rest.  Bad input ends a single run with one line and exit status 2
(:func:`preflight` checks the overrides and values before Hydra makes the
job's folder); in a sweep, the job's failure is recorded and the other jobs
go on.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from robustreg.estimator import blas_threads
from robustreg.study.job import retain_freed_memory, run_job
from robustreg.study import record
from robustreg.study.errors import BAD_INPUT, compose_error
from robustreg.study.errors import explain as _explain
from robustreg.study.schemas import register_schemas
from robustreg.study.spec import check_job
from robustreg.study.spec import to_spec as _to_spec

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("robustreg.run")

# Paths come from the config, never from the working directory: the results
# root is this checkout's folder unless ROBUSTREG_ROOT says otherwise.
OmegaConf.register_new_resolver("rr_root", lambda: os.environ.get("ROBUSTREG_ROOT", str(ROOT)), replace=True)


def _study(*, _root_):
    """``${rr_study:}``: the study name (``name``), also where the hydra node is shown alone.

    ``--cfg hydra`` prints the hydra node without the task's keys; Hydra still
    holds the whole config behind it (``HydraConfig``), one level up.
    """
    if "name" in _root_:
        return _root_["name"]
    from hydra.core.hydra_config import HydraConfig

    return OmegaConf.select(HydraConfig.get(), "..name")


CONF = ROOT / "conf"


def _groups() -> str:
    """``${rr_groups:}``: the config groups a user chooses from, for ``--help`` (not the internal ``schema/*``)."""
    lines = []
    for group in sorted(p for p in CONF.iterdir() if p.is_dir() and p.name != "hydra"):
        options = sorted(f.stem for f in group.glob("*.yaml"))
        lines.append(f"{group.name}: {', '.join(options)}")
    return "\n".join(lines)


OmegaConf.register_new_resolver("rr_study", _study, replace=True)
OmegaConf.register_new_resolver("rr_groups", _groups, replace=True)
register_schemas()
retain_freed_memory()


def to_spec(cfg: DictConfig, original_cwd: str | None = None):
    return _to_spec(cfg, original_cwd, conf_dir=CONF)


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
        record.write_failure(job_path, record.failure_record(
            cfg.get("name"), job_dir, hc.overrides.task, message, type(exc).__name__))
        raise
    try:
        if multirun:
            # Jobs of a sweep may run side by side (joblib, submitit, robustreg's
            # workers): each is held to one BLAS thread.
            with blas_threads(1):
                rec = run_job(spec, job_path, job_dir)
        else:
            rec = run_job(spec, job_path, job_dir)
    except Exception as exc:
        if not multirun:
            print(f"error: {_explain(exc)} (record: {job_path / record.FAILURE})", file=sys.stderr)
            sys.exit(2 if isinstance(exc, BAD_INPUT) else 1)
        raise
    state = "skipped (done)" if rec.get("skipped") else rec["status"]
    error = rec["coef_error"]  # None when not finite (a diverged fit)
    log.info(
        "%s: %s  coef_error=%s  n_iter=%s  %s",
        job_dir, state, "nan" if error is None else f"{error:.4g}", rec["n_iter"], "" if multirun else job_path,
    )
    return {k: rec[k] for k in ("status", "coef_error", "n_iter")}


def study_override(args: list) -> list:
    """The command line with ``+experiment=NAME`` (the form of Hydra's docs) read as ``experiment=NAME``.

    The defaults list names ``experiment`` (empty unless a study is chosen), so
    that a study's values come after this file's own; Hydra would refuse to
    append a second ``experiment`` and end with "Multiple values for experiment".
    """
    return [a[1:] if a.startswith("+experiment=") else a for a in args]


MULTIRUN_FLAGS = ("-m", "--multirun")


def _unmakeable(folder: Path) -> str | None:
    """One line when ``folder`` cannot be made because a file stands in its way, else None."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir():
        return None
    return (f"hydra.run.dir={str(folder)!r} cannot be made: {str(existing)!r} is a file; "
            "allowed: a folder, or a path where one can be made (see ROBUSTREG_ROOT)")


def preflight(args: list) -> str | None:
    """``None`` if the command line makes valid work, else one line saying why not.

    Checked before Hydra makes any folder, so bad input leaves nothing
    behind.  Hydra would report an override that does not compose in several
    lines (its search path, a hint to append with ``+``), and a sweep
    override without ``-m`` or an override without a key in a traceback.

    * Every override must parse and name a setting.
    * A sweep (``-m``, or a study, a multirun by its config): the overrides
      that are not sweeps must compose, as Hydra composes the sweep's own
      config from them; what is bad for some jobs only is the sweep's to
      record, job by job.
    * A single run: the overrides compose, the values pass their schemas, and
      :func:`~robustreg.study.spec.check_job` runs the data, outlier and model
      checks short of the fit.

    Hydra's other flags (``--cfg``, ``--help``, ...) are left to Hydra.
    """
    flags = [a for a in args if a.startswith("-")]
    if any(f not in MULTIRUN_FLAGS for f in flags):
        return None
    multirun = bool(flags)
    args = [a for a in args if a not in MULTIRUN_FLAGS]
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    def composed(overrides):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3", job_name="run"):
            return compose("config", overrides=overrides, return_hydra_config=True)

    try:
        parsed = OverridesParser.create().parse_overrides(args)
        for o in parsed:
            if not o.key_or_group:  # Hydra would end in a traceback
                return f"the override {o.input_line!r} names no setting; allowed: KEY=VALUE, +KEY=VALUE or ~KEY"
        sweeps = [o for o in parsed if o.is_sweep_override()]
        plain = [o.input_line for o in parsed if not o.is_sweep_override()]
        if multirun or sweeps:
            cfg = composed(plain)
            if multirun or cfg.hydra.mode == RunMode.MULTIRUN:
                return None  # the sweeper checks the sweep as a whole, and each job
            # A sweep needs a multirun: -m, or a study, a multirun by its config.
            return (f"{sweeps[0].input_line} is a sweep, and this is a single run; allowed: one value, "
                    "or a sweep with -m (--multirun) or in a study (experiment=NAME)")
        cfg = composed(args)
    except (HydraException, OmegaConfBaseException) as exc:
        return compose_error(exc)
    if cfg.hydra.mode == RunMode.MULTIRUN:
        return None
    problem = _unmakeable(Path(str(cfg.hydra.run.dir)))
    if problem:
        return problem
    with open_dict(cfg):
        del cfg["hydra"]
    try:
        spec = to_spec(cfg)
    except Exception as exc:  # as main() would have it: one line, exit status 2
        return _explain(exc)
    try:
        check_job(spec)
    except BAD_INPUT as exc:
        return _explain(exc)
    except Exception:  # not bad input: the run itself records it
        return None
    return None


if __name__ == "__main__":
    if "PROG" in globals():  # run by the console script robustreg-run
        sys.argv[0] = PROG  # noqa: F821 - given by robustreg.study.cli
    sys.argv[1:] = study_override(sys.argv[1:])
    problem = preflight(sys.argv[1:])
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    try:
        main()
    except KeyboardInterrupt:  # a single run (a sweep says more, and exits itself)
        print("interrupted: the job did not finish and left no record; run the same command again",
              file=sys.stderr)
        sys.exit(130)
