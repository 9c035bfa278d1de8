"""robustreg's SLURM launcher (``hydra/launcher=slurm``): hydra-submitit-launcher's ``SlurmLauncher``, for sweeps that resume.

Plugin discovery imports this module in every Hydra app of the environment,
so it holds only the config and the thin class; the work is in
``_slurm_core.py``, imported on the first launch.  What it adds to the
plugin's launcher (``hydra/launcher=submitit_slurm``):

* Jobs already done are not submitted.  Before anything goes to SLURM, each
  job's config is composed here (as robustreg's launcher composes it) and
  its record checked as the job itself would check it (same config hash,
  same code hash, intact files): a done job comes back COMPLETED from its
  record and prints its ``skipped (done)`` line, without a SLURM job and its
  Python start.  A job whose config does not compose or is bad is not
  submitted either: it fails here, with its one-line ``failure.json``.
* The rest goes in job arrays of at most ``max_array_size`` jobs (SLURM
  refuses an array larger than its ``MaxArraySize``, 1001 by default; a
  smaller ``MaxArraySize`` reported by ``scontrol`` is honoured too).
  ``array_parallelism`` holds for each array.
* A job that SLURM ended without a result (``scancel``, a time limit, out of
  memory, a node failure) fails alone, with one line naming its SLURM job id
  and state (``CANCELLED by 0``, ``TIMEOUT``, ``OUT_OF_MEMORY``...): the
  sweep goes on, prints its ``N of M jobs failed`` summary, and the job gets
  its ``failure.json``; never a traceback.
* After the jobs have finished, submitit's pickles (``*_submitted.pkl``,
  ``*_result.pkl``, about 110 KB a job) are deleted, and so are the logs and
  submission scripts of the jobs that completed; a failed job keeps its
  ``.out``/``.err`` logs (and its array its submission script) under
  ``submitit_folder``.
* Ctrl-C or SIGTERM while jobs run cancels the SLURM jobs of this launch that
  have not finished (the records of finished ones stay; a rerun does the rest).
"""

from dataclasses import dataclass
from typing import Any, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher


@dataclass
class RobustregSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.robustreg_plugin.robustreg_slurm_launcher.RobustregSlurmLauncher"
    # The largest job array submitted at once (SLURM's MaxArraySize is 1001 by default).
    max_array_size: int = 1000
    # Print a progress line every this many finished jobs (0: never).
    progress_every: int = 50


ConfigStore.instance().store(group="hydra/launcher", name="robustreg_slurm", node=RobustregSlurmConf,
                             provider="robustreg")


class RobustregSlurmLauncher(SlurmLauncher):
    def __init__(self, max_array_size: int = 1000, progress_every: int = 50, **params: Any) -> None:
        super().__init__(**params)
        self.max_array_size = max_array_size
        self.progress_every = progress_every

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from ._slurm_core import launch

        return launch(self, job_overrides, initial_job_idx)

