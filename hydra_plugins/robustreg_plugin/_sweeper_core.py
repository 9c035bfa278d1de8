"""The work of robustreg's sweeper (``robustreg_sweeper.py`` holds its config and its thin class).

Plugin discovery never imports this module (Hydra skips modules whose name
starts with ``_``).
"""

import itertools
import logging
import signal
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from robustreg.study import record

log = logging.getLogger(__name__)

SUBDIR = "${rr_job_dir:}"
_PARSER: List[OverridesParser] = []
_PARSED: Dict[str, Override] = {}  # the override grammar is slow; lines repeat across jobs


def _parse(line: str) -> Override:
    if line not in _PARSED:
        if not _PARSER:
            _PARSER.append(OverridesParser.create())
        _PARSED[line] = _PARSER[0].parse_override(line)
    return _PARSED[line]


def override_dirname(task_overrides, exclude_keys=(), item_sep: str = "/", kv_sep: str = "=",
                     escape: bool = True) -> str:
    """A job's folder relative to its sweep folder: Hydra's override dirname with each part escaped.

    As ``hydra.job.override_dirname``: the task overrides but the excluded
    keys, sorted, ``=`` replaced by ``kv_sep``, joined by ``item_sep``.  With
    ``escape``, each part is escaped by :func:`robustreg.study.record.escape_part`,
    so that a value holding ``/`` or ``../`` (a CSV path) stays one folder level.
    """
    lines = sorted(o.input_line for o in map(_parse, task_overrides)
                   if not o.is_hydra_override() and o.key_or_group not in exclude_keys)
    parts = [line.replace("=", kv_sep) for line in lines]
    return item_sep.join(record.escape_part(p) for p in parts) if escape else item_sep.join(parts)


def job_dirname(task_overrides, exclude_keys=(), item_sep: str = "/", kv_sep: str = "=") -> str:
    """``${rr_job_dir:}``'s value: :func:`override_dirname`, escaped."""
    return override_dirname(task_overrides, exclude_keys, item_sep, kv_sep, escape=True)


def job_dir_resolver(*, _root_) -> str:
    """``${rr_job_dir:}``: :func:`job_dirname` of the job the config belongs to."""
    h = _root_.hydra
    conf = h.job.config.override_dirname
    return job_dirname(list(h.overrides.task), list(conf.exclude_keys), conf.item_sep, conf.kv_sep)


def job_dirs(hydra_cfg, jobs: List[List[str]]) -> List[Optional[str]]:
    """Each job's folder relative to the sweep folder, as the launcher will name it.

    Only when ``hydra.sweep.subdir`` is robustreg's (``${rr_job_dir:}``);
    otherwise None for every job.
    """
    if OmegaConf.to_container(hydra_cfg.sweep, resolve=False).get("subdir") != SUBDIR:
        return [None] * len(jobs)
    conf = hydra_cfg.job.config.override_dirname
    exclude = list(conf.exclude_keys)
    return [job_dirname(job, exclude, conf.item_sep, conf.kv_sep) for job in jobs]


def _output_dir(result) -> Optional[str]:
    """The folder Hydra gave a job, or None (a job whose config did not compose has none)."""
    try:
        return str(result.hydra_cfg.hydra.runtime.output_dir)
    except (AttributeError, OmegaConfBaseException):
        return None


def _refuse(message: str) -> None:
    """Bad input for the sweep as a whole: one line, exit status 2, nothing written."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def product(overrides: List[Override]) -> List[List[str]]:
    """The cartesian product of the overrides (a later value of a key replaces an earlier one)."""
    choices: Dict[str, List[str]] = {}
    for o in overrides:
        key = o.get_key_element()
        if o.is_sweep_override():
            if not o.is_discrete_sweep():
                raise HydraException(f"the robustreg sweeper takes lists, choice() and range(), not {o.input_line}")
            choices[key] = [f"{key}={v}" for v in o.sweep_string_iterator()]
        else:
            choices[key] = [f"{key}={o.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*choices.values())]


class SweepRun:
    """One sweep of :class:`~hydra_plugins.robustreg_plugin.robustreg_sweeper.RobustregSweeper`."""

    def __init__(self, sweeper):
        self.max_batch_size = sweeper.max_batch_size
        self.params = sweeper.params
        self.grids = sweeper.grids
        self.fail_fast = sweeper.fail_fast
        self.hydra_context = sweeper.hydra_context
        self.config: Optional[DictConfig] = sweeper.config
        self.launcher = sweeper.launcher

    def expand(self, arguments: List[str], parser: OverridesParser) -> List[List[str]]:
        """Every job's overrides: each grid's product, command-line values taking precedence."""
        given = {parser.parse_override(a).key_or_group for a in arguments}
        grids = [dict(g) for g in self.grids] if self.grids else [{}]
        jobs, seen = [], set()
        for grid in grids:
            merged = {**(self.params or {}), **grid}
            lines = [f"{k}={v}" for k, v in merged.items() if k not in given] + list(arguments)
            for job in product(parser.parse_overrides(lines)):
                key = tuple(sorted(job))
                if key not in seen:  # two grids may share a job: run it once
                    seen.add(key)
                    jobs.append(job)
        return jobs

    def sweep(self, arguments: List[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        try:
            swept = [o.input_line for o in parser.parse_overrides(list(arguments))
                     if o.key_or_group == "name" and o.is_sweep_override()]
            if swept:
                raise ValueError(f"{swept[0]} sweeps the study name; allowed: one name per sweep "
                                 "(a study is one sweep folder): run one sweep per name")
            jobs = self.expand(arguments, parser)
            study = record.check_study_name(self.config.get("name", None))
            sweep_dir = Path(self.config.hydra.sweep.dir)
            dirs = job_dirs(self.config.hydra, jobs)
        except (HydraException, OmegaConfBaseException, ValueError) as exc:
            from robustreg.study.errors import compose_error

            _refuse(compose_error(exc) if not isinstance(exc, ValueError) else str(exc))
        if not jobs:
            return []
        size = self.max_batch_size or len(jobs)
        batches = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        try:
            sweep_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _refuse(f"hydra.sweep.dir={str(sweep_dir)!r} cannot be made ({exc.strerror}); "
                    "allowed: a folder, or a path where one can be made")
        record.atomic_write_json(sweep_dir / record.SWEEP, record.sweep_manifest(study, zip(dirs, jobs)))
        record.atomic_write(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(self.config))
        log.info("sweep of %d jobs into %s", len(jobs), sweep_dir)

        # What each job folder held before: a record written since is the job's own.
        before = {d: (record.stamp(sweep_dir / d / record.METRICS), record.stamp(sweep_dir / d / record.FAILURE))
                  for d in dirs if d is not None}
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        if self.fail_fast and hasattr(self.launcher, "fail_fast"):
            self.launcher.fail_fast = True  # robustreg's launcher stops within a batch too
        returns: List[Any] = []
        record.code_hash()  # once, here: forked workers inherit it instead of each hashing the code again
        try:
            initial_job_idx = 0
            for batch in batches:
                if self.fail_fast and any(r.status == JobStatus.FAILED for r in returns):
                    break
                returns.extend(self._launch(batch, initial_job_idx))
                initial_job_idx += len(batch)
        except KeyboardInterrupt as exc:
            done = sum((sweep_dir / d / record.METRICS).is_file() for d in dirs if d is not None)
            print(f"interrupted: {done} of {len(jobs)} jobs have a record in {sweep_dir}; "
                  "run the same command again to do the rest (done jobs are skipped)", file=sys.stderr, flush=True)
            sys.exit(143 if isinstance(exc, _Terminated) else 130)
        finally:
            signal.signal(signal.SIGTERM, previous)

        failed = []
        for index, r in enumerate(returns):
            if r.status == JobStatus.FAILED:
                exc = _exception(r)
                message = _one_line(exc)
                # The job's folder (its failure.json), not the working directory the job ran in.
                where = str(sweep_dir / dirs[index]) if dirs[index] is not None else _output_dir(r)
                if dirs[index] is not None:
                    self._record_failure(sweep_dir, dirs[index], study, jobs[index], message, exc,
                                         before[dirs[index]])
                failed.append((where, jobs[index], message))
        not_run = len(jobs) - sum(r.status in (JobStatus.COMPLETED, JobStatus.FAILED) for r in returns)
        if failed:
            lines = [f"{len(failed)} of {len(jobs)} jobs failed:"]
            for where, job, message in failed:
                lines.append(f"  {where or ' '.join(job)}: {message}")
            if not_run:
                lines.append(f"stopped at the first failure (hydra.sweeper.fail_fast=true): {not_run} of "
                             f"{len(jobs)} jobs were not run; run the same command again to go on")
            print("\n".join(lines), file=sys.stderr, flush=True)
            sys.exit(1)
        print(f"all {len(jobs)} jobs done: {sweep_dir}", flush=True)
        return [returns]

    def _launch(self, batch: List[List[str]], initial_job_idx: int) -> List[Any]:
        """The launcher's returns for ``batch``; a launcher that composes every job first is given them one by one.

        Hydra's basic and joblib launchers compose each job's config before
        running any, so one job that does not compose (``loss=hubr`` in a
        list) ends the whole batch.  Then each job is launched alone, and the
        one that does not compose fails by itself, with its record.
        """
        try:
            return list(self.launcher.launch(batch, initial_job_idx=initial_job_idx))
        except (HydraException, OmegaConfBaseException) as exc:
            if len(batch) == 1:
                return [self._failed_return(batch[0], exc)]
        out = []
        for k, job in enumerate(batch):
            try:
                out.extend(self.launcher.launch([job], initial_job_idx=initial_job_idx + k))
            except (HydraException, OmegaConfBaseException) as exc:
                out.append(self._failed_return(job, exc))
        return out

    @staticmethod
    def _failed_return(job: List[str], exc: BaseException):
        ret = JobReturn()
        ret.overrides = list(job)
        ret.status = JobStatus.FAILED
        ret.return_value = exc
        return ret

    def _record_failure(self, sweep_dir: Path, job_dir: str, study, overrides, message: str, exc, before) -> None:
        """A failed job's folder holds its ``failure.json``: written here when the job could not write it.

        A job whose config did not compose, or whose worker died, never reached
        its own writer.  Under the job's lock (a second sweep may be running
        it), and only when neither record file changed since this sweep began:
        a record written since is the job's own (its failure with the
        traceback, or a ``metrics.json`` it finished before its process died).
        """
        folder = sweep_dir / job_dir
        with record.job_lock(folder):
            now = (record.stamp(folder / record.METRICS), record.stamp(folder / record.FAILURE))
            if any(n is not None and n != b for n, b in zip(now, before)):
                return
            record.write_failure(folder, record.failure_record(
                study, job_dir, overrides, message, type(exc).__name__ if exc is not None else "unknown"))


def _exception(result) -> Optional[BaseException]:
    """The exception a failed job raised (public API: ``JobReturn.return_value`` re-raises it).

    Hydra writes "Error executing job with overrides" to stderr as it does; the
    sweep's summary says it once for all jobs instead.
    """
    import contextlib
    import io

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            result.return_value
    except Exception as exc:  # noqa: BLE001 - the job's own exception, whatever it is
        return exc
    return None


def _one_line(exc) -> str:
    if exc is None:
        return "unknown error"
    from robustreg.study.errors import compose_error, explain

    if isinstance(exc, (HydraException, OmegaConfBaseException)):
        return compose_error(exc)
    return explain(exc)
