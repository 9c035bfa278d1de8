"""The work of robustreg's SLURM launcher (``robustreg_slurm_launcher.py`` holds its config and its thin class).

Plugin discovery never imports this module (Hydra skips modules whose name
starts with ``_``).  It uses the public APIs of submitit and of
hydra-submitit-launcher: the launcher object itself is what each SLURM job
runs (the plugin's ``__call__``: Hydra's config loader and ``run_job``), so a
job on the cluster runs exactly as with ``hydra/launcher=submitit_slurm``.

What a launch does:

1. Each job's config is composed here (:meth:`JobRunner.compose`) and its
   record checked as the job would check it (:func:`robustreg.study.spec.to_spec`,
   :func:`robustreg.study.job.config_hash`, :func:`robustreg.study.record.read_done`).
   A done job is not submitted: it returns COMPLETED with its record's status,
   coef_error and n_iter.  A job whose config does not compose or is bad is
   not submitted either: it returns FAILED with the exception (a bad value's
   ``failure.json`` is written here, as the job would write it; the sweeper
   writes the others').
2. The other jobs are submitted in job arrays of at most ``max_array_size``
   (:func:`submit_arrays`).
3. Each submitted job's result is collected as it finishes; a job that SLURM
   ended without a result (``scancel``, a time limit, out of memory, a node
   failure) returns FAILED with a :class:`SlurmJobError`: one line naming the
   SLURM job id and state.  Such a job is finished only when SLURM no longer
   lists it: a cancelled job's processes may run on for ``KillWait`` seconds
   (submitit's jobs ignore SIGTERM), and a result written then counts.
4. Then submitit's pickles (``*_submitted.pkl``, ``*_result.pkl``) of the
   finished jobs are deleted, with the logs and submission scripts of the jobs
   that completed; failed jobs keep their ``.out``/``.err`` logs
   (:func:`clean_submitit_folder`).

Ctrl-C or SIGTERM while jobs run cancels (``scancel``) the unfinished SLURM
jobs of this launch, then the sweeper says how many are done.
"""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, setup_globals
from omegaconf import DictConfig, OmegaConf

from ._launcher_core import JobRunner, _job_return, _progress

# How often SLURM's accounting is asked about the jobs still running (seconds).
SACCT_EVERY = 10.0
# States in which a job runs no more (squeue, sacct); any other listed state means it may still write.
ENDED = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
         "REVOKED", "SPECIAL_EXIT", "TIMEOUT"}


class SlurmJobError(RuntimeError):
    """A SLURM job that ended without a result, or that SLURM refused: one line, with its job id and state."""


# ------------------------------------------------------------- the arrays
def submit_arrays(executor, fn, calls: Sequence[Tuple[Any, ...]], max_array_size: int) -> List[Any]:
    """Submit ``fn(*call)`` for each call, in job arrays of at most ``max_array_size`` (``executor.map_array`` each).

    Returns one entry per call, in order: its submitit ``Job``, or the
    exception that the submission of its array raised (that array's calls
    only; the other arrays are still submitted).
    """
    size = max(1, int(max_array_size))
    out: List[Any] = []
    for start in range(0, len(calls), size):
        chunk = calls[start : start + size]
        try:
            jobs = executor.map_array(fn, *zip(*chunk))
        except Exception as exc:  # sbatch refused this array
            jobs = [exc] * len(chunk)
        out.extend(jobs)
    return out


def cluster_max_array_size() -> Optional[int]:
    """The cluster's ``MaxArraySize`` (an array holds at most that many jobs: indices 0 to MaxArraySize - 1), or None."""
    try:
        text = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


def _executor(launcher):
    """submitit's SLURM executor with the launcher's parameters, as hydra-submitit-launcher builds it."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    params = dict(launcher.params)
    init: Dict[str, Any] = {"folder": params["submitit_folder"]}
    if "max_num_timeout" in params:
        init["slurm_max_num_timeout"] = params["max_num_timeout"]
    executor = submitit.AutoExecutor(cluster="slurm", **init)
    generic = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in generic else f"slurm_{k}": v for k, v in params.items()
                                  if k not in ("submitit_folder", "max_num_timeout")})
    return executor


# ------------------------------------------------------------ done or bad
def _conf_dir(hydra_cfg: DictConfig) -> Optional[Path]:
    """The primary config folder (a missing group then names its options)."""
    for source in OmegaConf.select(hydra_cfg, "hydra.runtime.config_sources", default=None) or []:
        if source.get("provider") == "main" and source.get("schema") == "file":
            return Path(str(source.get("path")))
    return None


def _line(job_dir: str, state: str, value: Dict[str, Any]) -> str:
    """The line a job prints at its end (``experiments/run.py``)."""
    error = value.get("coef_error")
    return f"{job_dir}: {state}  coef_error={'nan' if error is None else f'{error:.4g}'}  n_iter={value.get('n_iter')}"


def _returned(overrides: List[str], status: JobStatus, value, output_dir: Optional[str], task_cfg=None) -> JobReturn:
    ret = _job_return(overrides, status, value)
    ret.working_dir = output_dir
    ret.cfg = task_cfg
    if output_dir is not None:
        ret.hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": output_dir}}})
    return ret


def settle(runner: JobRunner, sweep_dir: Path, idx: int, overrides: List[str]) -> Optional[JobReturn]:
    """The return of a job that is not to be submitted (done already, or bad config), or None to submit it."""
    from robustreg.study.job import config_hash
    from robustreg.study import record
    from robustreg.study.errors import explain
    from robustreg.study.spec import to_spec

    try:
        task_cfg, hydra_cfg = runner.compose(idx, overrides)
    except Exception as exc:  # does not compose: the sweeper writes its failure.json
        return _returned(overrides, JobStatus.FAILED, exc, None)
    h = hydra_cfg.hydra
    output_dir = str(h.runtime.output_dir)
    job_dir = os.path.relpath(output_dir, sweep_dir)
    try:
        spec = to_spec(task_cfg, str(h.runtime.cwd), conf_dir=_conf_dir(hydra_cfg))
    except Exception as exc:  # a bad value: its record, as the job would write it
        record.write_failure(output_dir, record.failure_record(
            task_cfg.get("name"), job_dir, list(h.overrides.task), explain(exc), type(exc).__name__))
        return _returned(overrides, JobStatus.FAILED, exc, output_dir)
    try:
        done, _ = record.read_done(output_dir, config_hash(spec))
    except Exception:  # the job will say what is wrong
        return None
    if done is None:
        return None
    value = {k: done.get(k) for k in ("status", "coef_error", "n_iter")}
    print(_line(job_dir, "skipped (done)", value), flush=True)
    return _returned(overrides, JobStatus.COMPLETED, value, output_dir)


# ---------------------------------------------------------------- results
def _trace_line(text: str) -> str:
    """The exception line of a traceback in submitit's ``FailedJobError`` message (else its first line)."""
    lines = [ln.strip() for ln in text.splitlines()]
    end = next((i for i, ln in enumerate(lines) if ln.startswith("You can check full logs")), len(lines))
    body = [ln for ln in lines[:end] if ln and not set(ln) <= {"-"}]
    return body[-1] if body else (lines[0] if lines else "")


def _log_name(job, sweep_dir: Path) -> str:
    path = Path(job.paths.stderr)
    try:
        return os.path.relpath(path, sweep_dir) if sweep_dir in path.parents else str(path)
    except ValueError:
        return str(path)


def _failed(idx: int, overrides: List[str], message: str) -> JobReturn:
    print(f"job #{idx} ({' '.join(overrides)}): {message}", file=sys.stderr, flush=True)
    return _job_return(overrides, JobStatus.FAILED, SlurmJobError(message))


def _result(job, idx: int, overrides: List[str], sweep_dir: Path) -> JobReturn:
    """A finished job's return, from its result pickle; a job without one fails with one line."""
    from submitit.core.utils import FailedJobError, UncompletedJobError

    try:
        ret = job.results()[0]
    except FailedJobError as exc:  # the job's Python raised outside the task (unpickling, an import)
        return _failed(idx, overrides, f"SLURM job {job.job_id} failed: {_trace_line(str(exc))} "
                                       f"(log: {_log_name(job, sweep_dir)})")
    except UncompletedJobError:
        return _ended(job, idx, overrides, sweep_dir)
    except Exception as exc:  # an unreadable result
        return _failed(idx, overrides, f"SLURM job {job.job_id}: its result cannot be read "
                                       f"({type(exc).__name__}: {_trace_line(str(exc))})")
    if not isinstance(ret, JobReturn):
        return _failed(idx, overrides, f"SLURM job {job.job_id} returned {type(ret).__name__}, not a JobReturn")
    return ret


def _ended(job, idx: int, overrides: List[str], sweep_dir: Path) -> JobReturn:
    try:
        state = job.get_info(mode="standard").get("State") or "UNKNOWN"
    except Exception:
        state = "UNKNOWN"
    return _failed(idx, overrides, f"SLURM job {job.job_id} ended without a result: {state} "
                                   f"(log: {_log_name(job, sweep_dir)})")


def _active_ids() -> Optional[Set[str]]:
    """The ids of this user's SLURM jobs that still run or may still write (array tasks one by one), or None."""
    import getpass

    try:
        proc = subprocess.run(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i %T"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    active = set()
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].upper() not in ENDED:
            active.add(parts[0])
    return active


def _cancel(jobs: Iterable[Any]) -> None:
    ids = sorted({job.job_id for job in jobs})
    for start in range(0, len(ids), 200):
        try:
            subprocess.run(["scancel", *ids[start : start + 200]], capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            pass
    if ids:
        print(f"slurm: cancelled {len(ids)} unfinished SLURM jobs of this sweep", file=sys.stderr, flush=True)


def collect(launcher, submitted: Dict[int, Tuple[List[str], Any]], returns: Dict[int, JobReturn], total: int,
            sweep_dir: Path) -> None:
    """Wait for the submitted jobs and put each one's return in ``returns`` as it finishes.

    A job is finished when its result pickle is there, or when SLURM no
    longer lists it (``squeue``): then its state from SLURM's accounting
    (``sacct``) says why it left no result.  A job that accounting says
    completed, or does not know, gets submitit's grace for a slow file
    system (15 s) before it fails.
    """
    unfinished = dict(submitted)
    last_poll = time.monotonic()
    try:
        while unfinished:
            due = time.monotonic() - last_poll >= SACCT_EVERY
            active: Optional[Set[str]] = None
            if due:
                next(iter(unfinished.values()))[1].get_info(mode="force")  # one sacct call for every job
                active = _active_ids()
                last_poll = time.monotonic()
            for idx, (overrides, job) in list(unfinished.items()):
                if job.paths.result_pickle.exists():
                    ret = _result(job, idx, overrides, sweep_dir)
                elif not due:
                    continue
                elif active is not None and job.job_id in active:
                    continue  # pending, running, or cancelled with its processes not yet killed
                elif active is None and not job.done():
                    continue  # no squeue: accounting's word alone
                elif job.paths.result_pickle.exists():
                    ret = _result(job, idx, overrides, sweep_dir)
                elif _state(job) in ENDED - {"COMPLETED"}:
                    ret = _ended(job, idx, overrides, sweep_dir)
                else:
                    ret = _result(job, idx, overrides, sweep_dir)
                _finish(launcher, idx, ret, unfinished, returns, total, sweep_dir)
            if unfinished:
                time.sleep(min(10.0, 1.0 + len(unfinished) / 200))
    except BaseException:  # Ctrl-C, SIGTERM: no SLURM job of this launch runs on
        _cancel(job for _, job in unfinished.values())
        raise


def _state(job) -> str:
    """The job's state in SLURM's accounting, its first word (``CANCELLED`` of ``CANCELLED by 0``)."""
    try:
        words = str(job.state).split()
    except Exception:
        return "UNKNOWN"
    return words[0].upper() if words else "UNKNOWN"


def _finish(launcher, idx: int, ret: JobReturn, unfinished, returns, total: int, sweep_dir: Path) -> None:
    del unfinished[idx]
    returns[idx] = ret
    if ret.status == JobStatus.COMPLETED:
        value = ret.return_value
        output_dir = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir", default=None) if ret.hydra_cfg else None
        if isinstance(value, dict) and output_dir:
            print(_line(os.path.relpath(str(output_dir), sweep_dir), str(value.get("status")), value), flush=True)
    _progress(launcher, len(returns), total)


# ---------------------------------------------------------------- cleanup
def _unlink(path) -> None:
    try:
        Path(path).unlink()
    except OSError:
        pass


def _rmdir(path) -> None:
    try:
        Path(path).rmdir()
    except OSError:  # not empty, or gone
        pass


def clean_submitit_folder(folder: str, finished: Sequence[Tuple[Any, bool]]) -> None:
    """Delete submitit's files of finished jobs: ``(job, completed)`` pairs.

    Every job's ``*_submitted.pkl`` and ``*_result.pkl`` go.  A completed job's
    logs go too, and an array's submission script when each of its jobs
    completed; a failed job keeps its ``.out``/``.err`` logs.  Folders left
    empty are removed, ``submitit_folder``'s own up to its first folder that
    holds no job id.
    """
    from submitit.core.utils import JobPaths

    arrays: Set[str] = set()
    kept: Set[str] = set()
    for job, completed in finished:
        paths = job.paths
        _unlink(paths.submitted_pickle)
        _unlink(paths.result_pickle)
        main = str(job.job_id).split("_")[0]
        arrays.add(main)
        if completed:
            _unlink(paths.stdout)
            _unlink(paths.stderr)
            _rmdir(paths.folder)
        else:
            kept.add(main)
    root = JobPaths.get_first_id_independent_folder(folder)
    links: Dict[str, List[Path]] = {}
    for link in root.glob(".submission_file_*.sh") if root.is_dir() else []:
        if link.is_symlink():
            links.setdefault(os.readlink(link), []).append(link)
    for main in arrays - kept:
        script = JobPaths(folder, job_id=main).submission_file
        for link in links.get(str(script), []):
            _unlink(link)
        _unlink(script)
        _rmdir(script.parent)
    _rmdir(root)


# ----------------------------------------------------------------- launch
def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
    """Run the jobs for :class:`~hydra_plugins.robustreg_plugin.robustreg_slurm_launcher.RobustregSlurmLauncher`."""
    setup_globals()
    assert launcher.config is not None and launcher.hydra_context is not None and launcher.task_function is not None
    config = launcher.config
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in config.hydra.sweep:
        os.chmod(sweep_dir, mode=int(str(config.hydra.sweep.mode), 8))
    jobs = [(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
    total = len(jobs)
    runner = JobRunner(launcher.hydra_context, config, launcher.task_function)
    returns: Dict[int, JobReturn] = {}
    pending: List[Tuple[int, List[str]]] = []
    for idx, overrides in jobs:
        ret = settle(runner, sweep_dir, idx, overrides)
        if ret is None:
            pending.append((idx, overrides))
        else:
            returns[idx] = ret
    n_done = sum(r.status == JobStatus.COMPLETED for r in returns.values())
    n_bad = len(returns) - n_done
    not_sent = f"{n_done} of {total} jobs done already" + (f", {n_bad} with a bad config" if n_bad else "")
    if not pending:
        print(f"slurm: nothing to submit ({not_sent})", flush=True)
        return [returns[idx] for idx, _ in jobs]

    try:
        executor = _executor(launcher)
    except Exception as exc:  # no SLURM here, or a parameter submitit refuses: the sweep as a whole
        print(f"error: hydra/launcher=slurm cannot submit: {type(exc).__name__}: {str(exc).splitlines()[0]}",
              file=sys.stderr, flush=True)
        sys.exit(2)
    size = max(1, int(launcher.max_array_size))
    limit = cluster_max_array_size()
    if limit is not None and 0 < limit < size:
        size = limit
    state = Singleton.get_state()
    calls = [(overrides, "hydra.sweep.dir", idx, f"job_id_for_{idx}", state) for idx, overrides in pending]
    sent = submit_arrays(executor, launcher, calls, size)
    submitted: Dict[int, Tuple[List[str], Any]] = {}
    arrays: Dict[str, int] = {}
    for (idx, overrides), job in zip(pending, sent):
        if isinstance(job, BaseException):
            returns[idx] = _failed(idx, overrides, f"SLURM refused the job's array: {type(job).__name__}: "
                                                   f"{_trace_line(str(job))}")
            continue
        submitted[idx] = (overrides, job)
        main = str(job.job_id).split("_")[0]
        arrays[main] = arrays.get(main, 0) + 1
    listed = ", ".join(f"{main} ({n} job{'s' * (n != 1)})" for main, n in arrays.items())
    print(f"slurm: submitted {len(submitted)} of {total} jobs in {len(arrays)} job array{'s' * (len(arrays) != 1)} "
          f"of at most {size} jobs: {listed or 'none'} ({not_sent})", flush=True)
    try:
        collect(launcher, submitted, returns, total, sweep_dir)
    finally:
        # Interrupted, the jobs not collected were cancelled: their pickles go too, their logs stay.
        finished = [(job, idx in returns and returns[idx].status == JobStatus.COMPLETED)
                    for idx, (_, job) in submitted.items()]
        clean_submitit_folder(str(launcher.params["submitit_folder"]), finished)
    return [returns[idx] for idx, _ in jobs]
