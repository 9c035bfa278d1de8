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
"""


import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra._internal.config_loader_impl import get_overrides_dirname
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

SUBDIR = "${hydra.job.override_dirname}"


@dataclass
class RobustregSweeperConf:
    _target_: str = "hydra_plugins.robustreg_plugin.sweeper.RobustregSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="robustreg", node=RobustregSweeperConf, provider="robustreg")


def job_dirs(hydra_cfg, jobs: List[List[str]], parser: OverridesParser) -> List[Optional[str]]:
    """Each job's folder relative to the sweep folder, as Hydra will name it.

    Only when ``hydra.sweep.subdir`` is the override dirname (robustreg's
    layout); otherwise None for every job.
    """
    if OmegaConf.to_container(hydra_cfg.sweep, resolve=False).get("subdir") != SUBDIR:
        return [None] * len(jobs)
    conf = hydra_cfg.job.config.override_dirname
    out = []
    for job in jobs:
        task = [o for o in parser.parse_overrides(job) if not o.is_hydra_override()]
        out.append(
            get_overrides_dirname(task, exclude_keys=list(conf.exclude_keys), item_sep=conf.item_sep, kv_sep=conf.kv_sep)
        )
    return out


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    tmp.replace(path)


class RobustregSweeper(BasicSweeper):
    def sweep(self, arguments: List[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        params_conf = self._parse_config()
        params_conf.extend(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(params_conf)
        self.overrides = self.split_arguments(overrides, self.max_batch_size)
        jobs = [list(job) for batch in self.overrides for job in batch]
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
        for batch in self.overrides:
            results = self.launcher.launch(batch, initial_job_idx=initial_job_idx)
            initial_job_idx += len(batch)
            returns.append(results)

        failed = []
        index = 0
        for results in returns:
            for r in results:
                if r.status == JobStatus.FAILED:
                    where = r.working_dir or (str(sweep_dir / dirs[index]) if dirs[index] is not None else None)
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
