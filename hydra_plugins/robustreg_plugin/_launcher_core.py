"""The work of robustreg's launcher (``robustreg_launcher.py`` holds its config and its thin class).

Plugin discovery never imports this module (Hydra skips modules whose name
starts with ``_``), so a Hydra app that does not use the launcher pays nothing
for it.
"""

import copy
import gc
import logging
import multiprocessing
import os
import pickle
import signal
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobRuntime, JobStatus, configure_log, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from ._sweeper_core import SUBDIR, job_dirname, override_dirname

log = logging.getLogger(__name__)


class JobRunner:
    """Runs jobs from their overrides, composing once per set of group choices.

    Lives in the launching process (``n_jobs: 1``) or in each worker.
    """

    def __init__(self, hydra_context: HydraContext, master: DictConfig, task_function: TaskFunction):
        self.hydra_context = hydra_context
        self.loader = hydra_context.config_loader
        self.master = master
        self.task_function = task_function
        self.parser = OverridesParser.create(config_loader=self.loader)
        self.cache: Dict[Tuple[str, ...], Tuple[bytes, DictConfig]] = {}
        self.parsed: Dict[str, Any] = {}
        self.groups: Dict[str, set] = {}
        self.fast: Dict[Tuple[str, ...], bool] = {}  # per set of group choices: may its jobs take the fast path?
        self.naming: Dict[Tuple[str, ...], tuple] = {}  # per set of group choices: what job folders are named from
        self.logging_ready = False

    def _parse(self, overrides: List[str]) -> List[Any]:
        # The override grammar is slow to run, and a sweep repeats each line many times.
        for line in overrides:
            if line not in self.parsed:
                self.parsed[line] = self.parser.parse_override(line)
        return [self.parsed[line] for line in overrides]

    def _base(self, key: Tuple[str, ...]) -> Tuple[bytes, DictConfig]:
        """(task config, pickled, and hydra config) composed by Hydra for these group choices.

        Each job unpickles its own copy of the task config: six times faster
        than a deep copy of it, schema and flags included.
        """
        if key not in self.cache:
            full = self.loader.load_sweep_config(self.master, list(key))
            task, hydra_cfg = _task_and_hydra(full)
            # The hydra node alone cannot see the task's keys (``${name}`` in
            # the sweep folder): resolve those paths here, in the full config.
            with open_dict(hydra_cfg.hydra):
                hydra_cfg.hydra.sweep.dir = str(full.hydra.sweep.dir)
                hydra_cfg.hydra.run.dir = str(OmegaConf.select(full, "hydra.run.dir", default=""))
            self.cache[key] = (pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL), hydra_cfg)
        return self.cache[key]

    def run(self, idx: int, overrides: List[str]) -> JobReturn:
        try:
            return self._run(idx, overrides)
        except Exception as exc:  # the job's config could not be composed: the job fails, not the sweep
            return _job_return(overrides, JobStatus.FAILED, exc)

    def _is_group(self, key: str) -> bool:
        """Whether ``key`` names a config group (``loss``, ``hydra/launcher``), through the loader's public API."""
        parent, _, name = key.rpartition("/")
        if parent not in self.groups:
            self.groups[parent] = set(self.loader.list_groups(parent))
        return name in self.groups[parent]

    def _split(self, overrides: List[str]):
        """(parsed overrides, group-choice key, value overrides), or a None key when only Hydra's own path fits."""
        parsed = self._parse(overrides)
        simple = all(not o.is_hydra_override() and not o.is_sweep_override() and o.package is None for o in parsed)
        groups = [o for o in parsed if simple and self._is_group(o.key_or_group)]
        values = [o for o in parsed if o not in groups]
        # Values the hydra node interpolates (the study name) change the paths: compose in full.
        if not simple or any(o.is_add() or o.is_delete() or o.is_force_add() or o.key_or_group == "name" for o in values):
            return parsed, None, values
        return parsed, tuple(o.input_line for o in groups), values

    def prime(self, jobs, n_jobs: int = 1) -> None:
        """Compose every job's base now, so that forked workers inherit them instead of each composing its own.

        With ``n_jobs > 1`` and several bases, ``n_jobs`` forked processes
        compose them (a composition takes Hydra a tenth of a second or more)
        and send them back.
        """
        keys = []
        for _, overrides in jobs:
            try:
                _, key, _ = self._split(overrides)
            except Exception:  # reported by the job itself when it runs
                continue
            if key is not None and key not in self.cache and key not in keys:
                keys.append(key)
        if n_jobs > 1 and len(keys) >= 2 * n_jobs:
            _WORKER["runner"] = self
            chunks = [keys[k::n_jobs] for k in range(n_jobs)]
            context = multiprocessing.get_context("fork")
            try:
                with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context, initializer=_worker_init,
                                         initargs=(os.getpid(),)) as pool:
                    for part in pool.map(_compose_in_worker, chunks):
                        self.cache.update(part)
            except BrokenProcessPool:  # what is missing is composed below, here
                pass
            except BaseException:
                _kill_workers()
                raise
        for key in keys:
            try:
                self._base(key)
            except Exception:  # reported by the job itself when it runs
                pass

    def _run(self, idx: int, overrides: List[str]) -> JobReturn:
        parsed, key, values = self._split(overrides)
        if key is not None and key not in self.fast:
            self.fast[key] = _fast_path_holds(self._base(key)[1])
        if key is None or not self.fast[key]:
            return self._run_hydra(idx, overrides)
        task_cfg, hydra_cfg = self._fast(idx, parsed, key, values)
        h = hydra_cfg.hydra
        output_dir = str(h.runtime.output_dir)
        # What HydraConfig.set_config does, without its deep copy of the hydra node
        # (hydra_cfg is that node's copy already, and the job only reads it).
        OmegaConf.set_readonly(h, True)
        HydraConfig.instance().cfg = hydra_cfg
        if not self.logging_ready:
            configure_log(h.job_logging, h.verbose)
            self.logging_ready = True
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        callbacks = self.hydra_context.callbacks
        ret = JobReturn()
        ret.working_dir = output_dir
        ret.task_name = JobRuntime.instance().get("name")
        ret.overrides = list(overrides)
        ret.cfg = task_cfg
        ret.hydra_cfg = hydra_cfg
        callbacks.on_job_start(config=task_cfg, task_function=self.task_function)
        try:
            ret.return_value = self.task_function(task_cfg)
            ret.status = JobStatus.COMPLETED
        except Exception as exc:
            ret.return_value = exc
            ret.status = JobStatus.FAILED
        callbacks.on_job_end(config=task_cfg, job_return=ret)
        return ret

    def _fast(self, idx: int, parsed, key, values) -> Tuple[DictConfig, DictConfig]:
        """The fast path's composition: the base of these group choices, the job's values, Hydra's job fields."""
        base_task, hydra_cfg = self._base(key)
        task_cfg = pickle.loads(base_task)
        _apply_values(values, task_cfg)
        h = hydra_cfg.hydra
        if key not in self.naming:  # the same for every job of these group choices
            conf = h.job.config.override_dirname
            own = OmegaConf.to_container(h.sweep, resolve=False).get("subdir") == SUBDIR
            self.naming[key] = (str(h.sweep.dir), list(conf.exclude_keys), conf.item_sep, conf.kv_sep, own)
        sweep_dir, exclude, item_sep, kv_sep, own_subdir = self.naming[key]
        lines = [o.input_line for o in parsed]
        OmegaConf.set_readonly(h, False)  # frozen while the previous job ran
        with open_dict(h):
            # The list node's own setter: assigning a new list would validate it against the schema again.
            h.overrides._get_node("task")._set_value(lines)
            h.job.override_dirname = override_dirname(lines, exclude, item_sep, kv_sep, escape=False)
            h.job.id = idx
            h.job.num = idx
            # robustreg's ``${rr_job_dir:}`` computed as its resolver would, without the interpolation grammar.
            subdir = job_dirname(lines, exclude, item_sep, kv_sep) if own_subdir else str(h.sweep.subdir)
            h.runtime.output_dir = os.path.abspath(os.path.join(sweep_dir, subdir))
        return task_cfg, hydra_cfg

    def compose(self, idx: int, overrides: List[str]) -> Tuple[DictConfig, DictConfig]:
        """A job's task config (no ``hydra`` node) and hydra config, composed as its run would compose them; nothing run.

        The fast path's composition where the overrides allow it, else Hydra's
        config loader in full.  ``hydra.runtime.output_dir`` holds the job's
        folder (``hydra.sweep.dir`` / ``hydra.sweep.subdir``).  On the fast
        path the hydra config is shared by the jobs of one set of group
        choices: the next call overwrites it.  Raises what composition raises.
        """
        parsed, key, values = self._split(overrides)
        if key is None:
            full = self.loader.load_sweep_config(self.master, list(overrides))
            with open_dict(full):
                full.hydra.job.id = idx
                full.hydra.job.num = idx
            output_dir = os.path.abspath(os.path.join(str(full.hydra.sweep.dir), str(full.hydra.sweep.subdir)))
            task_cfg, hydra_cfg = _task_and_hydra(full)
            with open_dict(hydra_cfg.hydra):
                hydra_cfg.hydra.runtime.output_dir = output_dir
            return task_cfg, hydra_cfg
        return self._fast(idx, parsed, key, values)

    def _run_hydra(self, idx: int, overrides: List[str]) -> JobReturn:
        """Hydra's own path, for overrides the fast path does not cover."""
        config = self.loader.load_sweep_config(self.master, list(overrides))
        with open_dict(config):
            config.hydra.job.id = idx
            config.hydra.job.num = idx
        ret = run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        self.logging_ready = False
        return ret


def _task_and_hydra(full: DictConfig) -> Tuple[DictConfig, DictConfig]:
    """A composed config split in two: the task's (no ``hydra`` node) and a writable copy of the hydra node."""
    task = copy.deepcopy(full)
    with read_write(task), open_dict(task):
        del task["hydra"]
    hydra_cfg = OmegaConf.masked_copy(full, "hydra")
    OmegaConf.set_readonly(hydra_cfg.hydra, False)
    return task, hydra_cfg


def _fast_path_holds(hydra_cfg: DictConfig) -> bool:
    """Whether a job may skip Hydra's own ``run_job``: only with robustreg's per-job settings.

    ``hydra.job.chdir=true`` (run in the job's folder), an ``hydra.output_subdir``
    (``.hydra/*.yaml``, which ``--experimental-rerun`` reads) and any
    ``hydra/job_logging`` but robustreg's ``stdout`` (a ``<job>.log`` per job)
    are Hydra's to honour, as are ``hydra.job.env_set`` (environment variables
    set for the job) and ``hydra.callbacks`` (which receive the whole config):
    such jobs go through ``run_job`` as with Hydra's basic launcher.
    """
    h = hydra_cfg.hydra
    logging_choice = OmegaConf.select(h, "runtime.choices.hydra/job_logging", default=None)
    return (not h.job.chdir and h.output_subdir is None and logging_choice == "stdout"
            and not h.job.env_set and not h.callbacks)


def _apply_values(values, cfg: DictConfig) -> None:
    """Apply plain ``key=value`` overrides to a composed config, as Hydra's config loader does."""
    from hydra.errors import ConfigCompositionException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    for o in values:
        try:
            OmegaConf.update(cfg, o.key_or_group, o.value(), merge=True)
        except (ConfigAttributeError, ConfigKeyError) as ex:
            raise ConfigCompositionException(
                f"Could not override '{o.key_or_group}'. To append to your config use +{o.input_line}") from ex


# State of a worker process, inherited through the fork.
_WORKER: Dict[str, Any] = {}


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to kill this process when its parent dies (Linux); exit now if it is already gone."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent's interrupt handling still stops the workers
        pass
    if os.getppid() != parent:
        os._exit(1)


def _worker_init(parent: int) -> None:
    from robustreg.estimator import blas_threads

    _die_with_parent(parent)
    # Ctrl-C reaches the whole process group: the launching process stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The sweep's own SIGTERM handler is inherited through the fork: a worker
    # sent SIGTERM dies as if killed (its job fails), it does not end the sweep.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Jobs run side by side: one BLAS thread each.
    _WORKER["limits"] = blas_threads(1)


def _settle_heap() -> None:
    """Move what the launch has built so far (imports, Hydra's state) out of the garbage collector's sight.

    A job allocates many short-lived config objects, and each full collection
    would walk every long-lived object again (and, in a forked worker, copy
    each page it touches).  ``gc.freeze`` leaves those to the end of the process.
    """
    gc.collect()
    gc.freeze()


def _kill_workers() -> None:
    for child in multiprocessing.active_children():
        child.kill()


def _compose_in_worker(keys) -> Dict[Tuple[str, ...], Tuple[bytes, DictConfig]]:
    """The bases of ``keys`` composed in a worker, for :meth:`JobRunner.prime` (a failing one is left out)."""
    runner = _WORKER["runner"]
    out = {}
    for key in keys:
        try:
            out[key] = runner._base(key)
        except Exception:  # the job says why when it runs
            pass
    return out


def _run_in_worker(idx: int, overrides: List[str]) -> JobReturn:
    ret = _WORKER["runner"].run(idx, overrides)
    # Only what the parent reads travels back.
    ret.cfg = None
    ret.hydra_cfg = None
    return ret


def _progress(launcher, done: int, total: int) -> None:
    if launcher.progress_every and (done % launcher.progress_every == 0 or done == total):
        print(f"[{done}/{total} jobs]", flush=True)


def _job_return(overrides: List[str], status: JobStatus, value) -> JobReturn:
    """The return of a job that never reached Hydra's ``run_job`` (no config, no folder)."""
    ret = JobReturn()
    ret.overrides = list(overrides)
    ret.status = status
    ret.return_value = value
    ret.working_dir = None
    return ret


def _not_run(idx: int, overrides: List[str]) -> JobReturn:
    """A job the launch stopped before (``fail_fast``): neither done nor failed."""
    return _job_return(overrides, JobStatus.UNKNOWN, None)


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
    """Run the jobs for :class:`~hydra_plugins.robustreg_plugin.robustreg_launcher.RobustregLauncher`."""
    setup_globals()
    assert launcher.config is not None and launcher.hydra_context is not None and launcher.task_function is not None
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    Path(str(launcher.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    runner = JobRunner(launcher.hydra_context, launcher.config, launcher.task_function)
    jobs = [(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
    n_jobs = (os.cpu_count() or 1) if launcher.n_jobs == -1 else max(1, launcher.n_jobs)
    if n_jobs == 1 or len(jobs) == 1:
        _settle_heap()
        runs: List[JobReturn] = []
        for k, (idx, overrides) in enumerate(jobs, 1):
            if launcher.fail_fast and any(r.status == JobStatus.FAILED for r in runs):
                runs.append(_not_run(idx, overrides))
                continue
            runs.append(runner.run(idx, overrides))
            _progress(launcher, k, len(jobs))
        return runs
    return _Parallel(launcher, runner, n_jobs).run(jobs)


class _Parallel:
    """Jobs in forked worker processes, surviving the death of any of them."""

    def __init__(self, launcher, runner: "JobRunner", n_jobs: int):
        self.launcher = launcher
        self.runner = runner
        self.n_jobs = n_jobs
        self.stopped = False  # fail_fast: a job failed, start no other

    def _progress(self, done: int, total: int) -> None:
        _progress(self.launcher, done, total)

    def _note(self, ret: JobReturn) -> JobReturn:
        if self.launcher.fail_fast and ret.status == JobStatus.FAILED:
            self.stopped = True
        return ret

    def run(self, jobs) -> List[JobReturn]:
        runner, n_jobs = self.runner, self.n_jobs
        # Forked workers share the imports, Hydra's state and the composed bases.
        runner.prime(jobs, n_jobs)
        _settle_heap()  # after the bases are composed, before the workers fork
        _WORKER["runner"] = runner
        context = multiprocessing.get_context("fork")
        results: Dict[int, JobReturn] = {}
        queue = list(jobs)
        total = len(jobs)
        try:
            while queue and not self.stopped:
                self._one_pool(context, queue, results, n_jobs, total)
        except BaseException:  # Ctrl-C, SIGTERM: no worker outlives the launch
            _kill_workers()
            raise
        return [results[idx] if idx in results else _not_run(idx, o) for idx, o in jobs]

    def _one_pool(self, context, queue, results: Dict[int, JobReturn], n_jobs: int, total: int) -> None:
        """Run jobs from ``queue`` in one pool until it is empty or a worker dies; then run the lost jobs alone."""
        window = 2 * n_jobs  # jobs in flight: what a dying worker can take down with it
        lost = []
        init = (os.getpid(),)
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context, initializer=_worker_init,
                                 initargs=init) as pool:
            try:
                futures: Dict[Any, Tuple[int, List[str]]] = {}
                while (queue or futures) and not lost:
                    while queue and len(futures) < window and not lost and not self.stopped:
                        idx, overrides = queue.pop(0)
                        try:
                            futures[pool.submit(_run_in_worker, idx, overrides)] = (idx, overrides)
                        except BrokenProcessPool:  # a worker died since the last wait
                            lost.append((idx, overrides))
                    if not futures:
                        break
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for fut in done:
                        idx, overrides = futures.pop(fut)
                        try:
                            results[idx] = self._note(fut.result())
                        except BrokenProcessPool:
                            lost.append((idx, overrides))
                            continue
                        except Exception as exc:  # the job could not be sent or returned
                            results[idx] = self._note(_failed(idx, overrides, f"{type(exc).__name__}: {exc}"))
                        self._progress(len(results), total)
                lost.extend(futures.values())
            except BaseException:
                # Ctrl-C or SIGTERM: the workers go now, before the pool waits for their jobs.
                _kill_workers()
                raise
        # A worker died and took the jobs in flight with it.  Each is run
        # again alone, so that only the one that kills its worker fails.
        for idx, overrides in sorted(lost):
            if self.stopped:  # fail_fast: a job failed, start no other
                results[idx] = _not_run(idx, overrides)
                continue
            results[idx] = self._note(self._run_alone(context, idx, overrides))
            self._progress(len(results), total)

    def _run_alone(self, context, idx: int, overrides: List[str]) -> JobReturn:
        with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_worker_init,
                                 initargs=(os.getpid(),)) as pool:
            try:
                return pool.submit(_run_in_worker, idx, overrides).result()
            except BrokenProcessPool:
                return _failed(idx, overrides, "its worker process died (killed, or out of memory)")
            except BaseException:
                _kill_workers()  # before the pool waits for the job
                raise


def _failed(idx: int, overrides: List[str], message: str) -> JobReturn:
    ret = _job_return(overrides, JobStatus.FAILED, RuntimeError(message))
    log.error("job #%d (%s): %s", idx, " ".join(overrides), message)
    print(f"job #{idx} ({' '.join(overrides)}): {message}", file=sys.stderr, flush=True)
    return ret
