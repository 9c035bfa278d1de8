"""A launcher for sweeps of many small jobs: compose once per config-group choice, run in warm workers.

Hydra's basic launcher composes every job's config from scratch (the defaults
tree, every YAML file, every merge), which costs far more than one small fit.
But the jobs of a sweep differ mostly in plain values (``seed=3``,
``outliers.fraction=0.2``), and only a few in config-group choices
(``loss=huber``).  This launcher (``hydra/launcher=robustreg``, the default of
robustreg's config):

* composes the config once per distinct set of group choices, with Hydra's
  own loader, and applies each job's value overrides to a copy with Hydra's
  own override code (``ConfigLoaderImpl._apply_overrides_to_config``), then
  fills ``hydra.overrides.task`` and ``hydra.job.override_dirname`` as Hydra
  does; a job with any other kind of override is composed in full;
* runs each job through Hydra's ``run_job`` (callbacks, output folder, job
  return), in this process (``n_jobs: 1``) or in ``n_jobs`` worker processes
  forked after the imports, each held to one BLAS thread;
* survives a worker that dies: its job is reported failed and the pool is
  started again for the jobs that remain;
* never leaves a worker behind: each is killed by the kernel when the
  launching process dies (``PR_SET_PDEATHSIG``, even after SIGKILL), ignores
  Ctrl-C (the launching process stops them), and is killed when the launch
  is interrupted.
"""

import copy
import logging
import multiprocessing
import os
import pickle
import signal
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobRuntime, JobStatus, configure_log, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)


@dataclass
class RobustregLauncherConf:
    _target_: str = "hydra_plugins.robustreg_plugin.launcher.RobustregLauncher"
    # Worker processes; 1 runs the jobs in this process, -1 uses every core.
    n_jobs: int = 1
    # Print a progress line every this many jobs (0: never).
    progress_every: int = 50


ConfigStore.instance().store(group="hydra/launcher", name="robustreg", node=RobustregLauncherConf, provider="robustreg")


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
            task = copy.deepcopy(full)
            with read_write(task), open_dict(task):
                del task["hydra"]
            hydra_cfg = OmegaConf.masked_copy(full, "hydra")
            OmegaConf.set_readonly(hydra_cfg.hydra, False)
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
            ret = JobReturn()
            ret.overrides = list(overrides)
            ret.status = JobStatus.FAILED
            ret.return_value = exc
            ret.working_dir = None
            return ret

    def _split(self, overrides: List[str]):
        """(parsed overrides, group-choice key, value overrides), or a None key when only Hydra's own path fits."""
        parsed = self._parse(overrides)
        simple = all(not o.is_hydra_override() and not o.is_sweep_override() and o.package is None for o in parsed)
        groups = [o for o in parsed if simple and self.loader.repository.group_exists(o.key_or_group)]
        values = [o for o in parsed if o not in groups]
        # Values the hydra node interpolates (the study name) change the paths: compose in full.
        if not simple or any(o.is_add() or o.is_delete() or o.is_force_add() or o.key_or_group == "name" for o in values):
            return parsed, None, values
        return parsed, tuple(o.input_line for o in groups), values

    def prime(self, jobs) -> None:
        """Compose every job's base now, so that forked workers inherit them instead of each composing its own."""
        for _, overrides in jobs:
            try:
                _, key, _ = self._split(overrides)
                if key is not None:
                    self._base(key)
            except Exception:  # reported by the job itself when it runs
                pass

    def _run(self, idx: int, overrides: List[str]) -> JobReturn:
        parsed, key, values = self._split(overrides)
        if key is None:
            return self._run_hydra(idx, overrides)
        base_task, hydra_cfg = self._base(key)
        task_cfg = pickle.loads(base_task)
        ConfigLoaderImpl._apply_overrides_to_config(values, task_cfg)
        h = hydra_cfg.hydra
        conf = h.job.config.override_dirname
        with open_dict(h):
            h.overrides.task = [o.input_line for o in parsed]
            h.job.override_dirname = get_overrides_dirname(
                overrides=parsed, kv_sep=conf.kv_sep, item_sep=conf.item_sep, exclude_keys=list(conf.exclude_keys)
            )
            h.job.id = idx
            h.job.num = idx
            output_dir = os.path.abspath(os.path.join(str(h.sweep.dir), str(h.sweep.subdir)))
            h.runtime.output_dir = output_dir
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
        callbacks.on_job_start(config=task_cfg, task_function=self.task_function)
        try:
            ret.return_value = self.task_function(task_cfg)
            ret.status = JobStatus.COMPLETED
        except Exception as exc:
            ret.return_value = exc
            ret.status = JobStatus.FAILED
        callbacks.on_job_end(config=task_cfg, job_return=ret)
        return ret

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
    from threadpoolctl import threadpool_limits

    _die_with_parent(parent)
    # Ctrl-C reaches the whole process group: the launching process stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Jobs run side by side: one BLAS thread each.
    _WORKER["limits"] = threadpool_limits(limits=1, user_api="blas")


def _kill_workers() -> None:
    for child in multiprocessing.active_children():
        child.kill()


def _run_in_worker(idx: int, overrides: List[str]) -> JobReturn:
    ret = _WORKER["runner"].run(idx, overrides)
    # Only what the parent reads travels back.
    ret.cfg = None
    ret.hydra_cfg = None
    return ret


class RobustregLauncher(Launcher):
    def __init__(self, n_jobs: int = 1, progress_every: int = 50) -> None:
        self.n_jobs = n_jobs
        self.progress_every = progress_every
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def _progress(self, done: int, total: int) -> None:
        if self.progress_every and (done % self.progress_every == 0 or done == total):
            print(f"[{done}/{total} jobs]", flush=True)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        runner = JobRunner(self.hydra_context, self.config, self.task_function)
        jobs = [(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
        n_jobs = (os.cpu_count() or 1) if self.n_jobs == -1 else max(1, self.n_jobs)
        if n_jobs == 1 or len(jobs) == 1:
            runs = []
            for k, (idx, overrides) in enumerate(jobs, 1):
                runs.append(runner.run(idx, overrides))
                self._progress(k, len(jobs))
            return runs
        return self._launch_parallel(jobs, runner, n_jobs)

    def _launch_parallel(self, jobs, runner: JobRunner, n_jobs: int) -> List[JobReturn]:
        # Forked workers share the imports, Hydra's state and the composed bases.
        runner.prime(jobs)
        _WORKER["runner"] = runner
        context = multiprocessing.get_context("fork")
        results: Dict[int, JobReturn] = {}
        queue = list(jobs)
        total = len(jobs)
        try:
            while queue:
                self._one_pool(context, queue, results, n_jobs, total)
        except BaseException:  # Ctrl-C, SIGTERM: no worker outlives the launch
            _kill_workers()
            raise
        return [results[idx] for idx, _ in jobs]

    def _one_pool(self, context, queue, results: Dict[int, JobReturn], n_jobs: int, total: int) -> None:
        """Run jobs from ``queue`` in one pool until it is empty or a worker dies; then run the lost jobs alone."""
        window = 2 * n_jobs  # jobs in flight: what a dying worker can take down with it
        lost = []
        init = (os.getpid(),)
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context, initializer=_worker_init,
                                 initargs=init) as pool:
            futures: Dict[Any, Tuple[int, List[str]]] = {}
            while (queue or futures) and not lost:
                while queue and len(futures) < window and not lost:
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
                        results[idx] = fut.result()
                    except BrokenProcessPool:
                        lost.append((idx, overrides))
                        continue
                    except Exception as exc:  # the job could not be sent or returned
                        results[idx] = _failed(idx, overrides, f"{type(exc).__name__}: {exc}")
                    self._progress(len(results), total)
            lost.extend(futures.values())
        # A worker died and took the jobs in flight with it.  Each is run
        # again alone, so that only the one that kills its worker fails.
        for idx, overrides in sorted(lost):
            results[idx] = self._run_alone(context, idx, overrides)
            self._progress(len(results), total)

    def _run_alone(self, context, idx: int, overrides: List[str]) -> JobReturn:
        with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_worker_init,
                                 initargs=(os.getpid(),)) as pool:
            try:
                return pool.submit(_run_in_worker, idx, overrides).result()
            except BrokenProcessPool:
                return _failed(idx, overrides, "its worker process died (killed, or out of memory)")


def _failed(idx: int, overrides: List[str], message: str) -> JobReturn:
    ret = JobReturn()
    ret.overrides = overrides
    ret.status = JobStatus.FAILED
    ret.return_value = RuntimeError(message)
    ret.working_dir = None
    log.error("job #%d (%s): %s", idx, " ".join(overrides), message)
    print(f"job #{idx} ({' '.join(overrides)}): {message}", file=sys.stderr, flush=True)
    return ret
