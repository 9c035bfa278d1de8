"""robustreg's sweeper (``hydra/sweeper=robustreg``, the default of robustreg's config).

Plugin discovery imports this module in every Hydra app of the environment,
so it holds only the config, the thin class and the ``${rr_job_dir:}``
resolver; the work is in ``_sweeper_core.py``, imported on the first sweep.
The sweeper

* refuses, with one line and exit status 2 before anything is written, what
  is wrong with the sweep as a whole: an override that does not parse, a
  sweep it cannot expand (``interval(...)``), a study name that is not a
  plain folder name, a sweep folder that cannot be made;
* writes ``sweep.json`` in the sweep folder before the first job: the study
  and every job's folder and overrides, so a report can tell missing jobs;
* names each job's folder (``hydra.sweep.subdir: ${rr_job_dir:}``) from its
  overrides: one level per ``key=value``, a ``/``, ``\\`` or ``%`` in a value
  percent-encoded, so a folder never lies outside the sweep folder;
* runs every job; a job that fails, whether its config does not compose, its
  fit raised or its worker died, gets a ``failure.json`` with one line saying
  why.  Then it prints ``N of M jobs failed`` with their folders and exits
  with status 1 when any failed;
* with ``fail_fast: true``, starts no job after the first failure (the jobs
  running then finish), and says how many were not run;
* on Ctrl-C or SIGTERM, stops the jobs, says how many are done and exits
  130 (143 for SIGTERM): a rerun of the same command resumes.

It also takes several grids (``hydra.sweeper.grids``), run one after the
other, for studies whose parts differ in more than one setting at once.
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


@dataclass
class RobustregSweeperConf:
    _target_: str = "hydra_plugins.robustreg_plugin.robustreg_sweeper.RobustregSweeper"
    max_batch_size: Optional[int] = None
    # One grid, as Hydra's basic sweeper: key -> comma-separated values or a sweep function.
    params: Optional[Dict[str, str]] = None
    # Several grids, run one after the other (a union of cartesian products);
    # ``params`` then holds what every grid shares.
    grids: Optional[List[Dict[str, Any]]] = None
    # Start no job after the first failure.
    fail_fast: bool = False


ConfigStore.instance().store(group="hydra/sweeper", name="robustreg", node=RobustregSweeperConf, provider="robustreg")


def _job_dir(*, _root_) -> str:
    from ._sweeper_core import job_dir_resolver

    return job_dir_resolver(_root_=_root_)


# ``hydra.sweep.subdir: ${rr_job_dir:}`` resolves wherever a job's config does
# (this process, a joblib or submitit worker): discovery registers it everywhere.
OmegaConf.register_new_resolver("rr_job_dir", _job_dir, replace=True)


class RobustregSweeper(Sweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params=None, grids=None, fail_fast: bool = False):
        super().__init__()
        self.max_batch_size = max_batch_size
        self.params = params or {}
        self.grids = grids
        self.fail_fast = fail_fast
        self.hydra_context: Optional[HydraContext] = None
        self.config: Optional[DictConfig] = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def expand(self, arguments: List[str], parser) -> List[List[str]]:
        """Every job's overrides: each grid's product, command-line values taking precedence."""
        from ._sweeper_core import SweepRun

        return SweepRun(self).expand(arguments, parser)

    def sweep(self, arguments: List[str]) -> Any:
        from ._sweeper_core import SweepRun

        return SweepRun(self).sweep(arguments)
