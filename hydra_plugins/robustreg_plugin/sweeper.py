"""A sweeper that runs every job, reports every failure, and writes a manifest.

Hydra's basic sweeper composes each job's config once to validate it and the
launcher composes it again; then it re-raises only the first failure.  This
one (``hydra/sweeper=robustreg``, the default of robustreg's config):

* composes only the first job up front, so a composition error (an unknown
  option, a value of the wrong type) is reported once, before anything runs;
* writes ``sweep.json`` in the sweep folder before the first job: the study
  and every job's folder and overrides, so a report can tell missing jobs;
* runs all jobs, then prints ``N of M jobs failed`` with their folders and
  exits with status 1 when any failed.

It also takes several grids (``hydra.sweeper.grids``), run one after the
other, for studies whose parts differ in more than one setting at once.
"""

import itertools
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra._internal.config_loader_impl import get_overrides_dirname
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobStatus
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

log = logging.getLogger(__name__)

SUBDIR = "${hydra.job.override_dirname}"


@dataclass
class RobustregSweeperConf:
    _target_: str = "hydra_plugins.robustreg_plugin.sweeper.RobustregSweeper"
    max_batch_size: Optional[int] = None
    # One grid, as Hydra's basic sweeper: key -> comma-separated values or a sweep function.
    params: Optional[Dict[str, str]] = None
    # Several grids, run one after the other (a union of cartesian products);
    # ``params`` then holds what every grid shares.
    grids: Optional[List[Dict[str, Any]]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="robustreg", node=RobustregSweeperConf, provider="robustreg")


def job_dirs(hydra_cfg, jobs: List[List[str]], parser: OverridesParser) -> List[Optional[str]]:
    """Each job's folder relative to the sweep folder, as Hydra will name it.

    Only when ``hydra.sweep.subdir`` is the override dirname (robustreg's
    layout); otherwise None for every job.
    """
    if OmegaConf.to_container(hydra_cfg.sweep, resolve=False).get("subdir") != SUBDIR:
        return [None] * len(jobs)
    conf = hydra_cfg.job.config.override_dirname
    parsed: Dict[str, Override] = {}  # the override grammar is slow; lines repeat across jobs
    out = []
    for job in jobs:
        for line in job:
            if line not in parsed:
                parsed[line] = parser.parse_override(line)
        task = [parsed[line] for line in job if not parsed[line].is_hydra_override()]
        out.append(
            get_overrides_dirname(task, exclude_keys=list(conf.exclude_keys), item_sep=conf.item_sep, kv_sep=conf.kv_sep)
        )
    return out


def _output_dir(result) -> Optional[str]:
    """The folder Hydra gave a job, or None (a job whose config did not compose has none)."""
    try:
        return str(result.hydra_cfg.hydra.runtime.output_dir)
    except (AttributeError, OmegaConfBaseException):
        return None


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    tmp.replace(path)


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


class RobustregSweeper(Sweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params=None, grids=None):
        super().__init__()
        self.max_batch_size = max_batch_size
        self.params = params or {}
        self.grids = grids
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
        jobs = self.expand(arguments, parser)
        size = self.max_batch_size or len(jobs) or 1
        batches = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        if not jobs:
            return []

        # One composition up front: a bad option or type fails here, once.
        self.validate_batch_is_legal(jobs[:1])

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        dirs = job_dirs(self.config.hydra, jobs, parser)
        study = self.config.get("name", None)
        manifest = {
            "schema_version": 1,
            "study": study,
            "n_jobs": len(jobs),
            "jobs": [{"job_dir": d, "overrides": job} for d, job in zip(dirs, jobs)],
        }
        _write_json(sweep_dir / "sweep.json", manifest)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        log.info("sweep of %d jobs into %s", len(jobs), sweep_dir)

        returns = []
        initial_job_idx = 0
        for batch in batches:
            results = self.launcher.launch(batch, initial_job_idx=initial_job_idx)
            initial_job_idx += len(batch)
            returns.append(results)

        failed = []
        index = 0
        for results in returns:
            for r in results:
                if r.status == JobStatus.FAILED:
                    # The job's folder (its failure.json), not the working directory the job ran in.
                    where = str(sweep_dir / dirs[index]) if dirs[index] is not None else _output_dir(r)
                    failed.append((where, jobs[index], r._return_value))
                index += 1
        if failed:
            lines = [f"{len(failed)} of {len(jobs)} jobs failed:"]
            for where, job, exc in failed:
                msg = f"{type(exc).__name__}: {exc}".splitlines()[0] if exc is not None else "unknown error"
                lines.append(f"  {where or ' '.join(job)}: {msg}")
            print("\n".join(lines), file=sys.stderr, flush=True)
            sys.exit(1)
        print(f"all {len(jobs)} jobs done: {sweep_dir}", flush=True)
        return returns
