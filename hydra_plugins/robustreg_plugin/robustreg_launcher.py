"""robustreg's launcher for sweeps of many small jobs (``hydra/launcher=robustreg``, the default of robustreg's config).

Plugin discovery imports this module in every Hydra app of the environment,
so it holds only the config and the thin class; the work is in
``_launcher_core.py``, imported on the first launch.

Hydra's basic launcher composes every job's config from scratch (the defaults
tree, every YAML file, every merge), which costs far more than one small fit.
But the jobs of a sweep differ mostly in plain values (``seed=3``,
``outliers.fraction=0.2``), and only a few in config-group choices
(``loss=huber``).  What this launcher really does:

* It composes the config once per distinct set of group choices, with
  Hydra's config loader (``load_sweep_config``), and applies each job's plain
  ``key=value`` overrides to a copy with ``OmegaConf.update``, as Hydra's
  loader does.  It fills ``hydra.overrides.task``, ``hydra.job.override_dirname``,
  ``hydra.job.id``/``num`` and ``hydra.runtime.output_dir`` as Hydra does.
* On that fast path it then runs the job itself, not through Hydra's
  ``run_job``: it makes the job's folder, sets ``HydraConfig``, configures
  logging once, and calls the callbacks' ``on_job_start``/``on_job_end``
  around the task function.  The job does not change directory, gets no
  ``.hydra/`` folder and no log file of its own: robustreg's settings
  (``hydra.job.chdir: false``, ``hydra.output_subdir: null``,
  ``hydra/job_logging: stdout``).
* Any job those settings do not describe goes through Hydra's own
  ``run_job``, exactly as with Hydra's basic launcher: ``hydra.job.chdir=true``,
  an ``hydra.output_subdir`` (then ``--experimental-rerun`` works, with
  Hydra's ``PickleJobInfoCallback``), another ``hydra/job_logging``, an
  override that adds, deletes or appends, a Hydra override, or ``name=``.
* Jobs run in this process (``n_jobs: 1``) or in ``n_jobs`` worker processes
  forked after the imports and the compositions, each held to one BLAS thread.
* A worker that dies (killed, out of memory) fails only its job: the jobs it
  took down with it are run again one by one, and the pool is started again
  for the rest.
* No worker outlives the launch: each is killed by the kernel when the
  launching process dies (``PR_SET_PDEATHSIG``, even after SIGKILL), ignores
  Ctrl-C (the launching process stops them), and is killed when the launch is
  interrupted.
* With the sweeper's ``fail_fast``, it starts no job after the first failure;
  the jobs it did not start come back with status ``UNKNOWN``.
"""

from dataclasses import dataclass
from typing import Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class RobustregLauncherConf:
    _target_: str = "hydra_plugins.robustreg_plugin.robustreg_launcher.RobustregLauncher"
    # Worker processes; 1 runs the jobs in this process, -1 uses every core.
    n_jobs: int = 1
    # Print a progress line every this many jobs (0: never).
    progress_every: int = 50


ConfigStore.instance().store(group="hydra/launcher", name="robustreg", node=RobustregLauncherConf, provider="robustreg")


class RobustregLauncher(Launcher):
    def __init__(self, n_jobs: int = 1, progress_every: int = 50) -> None:
        self.n_jobs = n_jobs
        self.progress_every = progress_every
        self.fail_fast = False  # set by robustreg's sweeper
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from ._launcher_core import launch

        return launch(self, job_overrides, initial_job_idx)
