"""A composed Hydra config becomes a job spec (plain, validated dataclasses), checked short of the fit.

The entry point (``experiments/run.py``) turns each job's config into a spec
here, and checks a single run's spec with :func:`check_job` before Hydra
makes its folder, so bad input leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import os

from omegaconf import DictConfig, OmegaConf

from ..config import ConfigError, CsvConf, JobConf
from .record import check_study_name

GROUPS = ("dataset", "outliers", "loss", "model")


def unknown_setting(cfg: DictConfig, path: str = "") -> str | None:
    """One line for a key that no schema declares (appended with ``+``), or None.

    OmegaConf would drop such a key at the top level without a word (a
    misspelt ``+sede=3`` would run seed 0) and pass it on below.
    """
    kind = OmegaConf.get_type(cfg)
    allowed = [f.name for f in dataclasses.fields(kind)] if dataclasses.is_dataclass(kind) else None
    for key in cfg:
        if allowed is not None and key not in allowed:
            return f"{path}{key} is not a setting; allowed: {', '.join(allowed)}"
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_none():
            found = unknown_setting(node, f"{path}{key}.")
            if found:
                return found
    return None


def to_spec(cfg: DictConfig, original_cwd: str | None = None, conf_dir=None) -> JobConf:
    """The composed config (without its ``hydra`` node) as plain, validated dataclasses.

    ``original_cwd`` anchors a relative CSV path; ``conf_dir`` (the config
    folder) lets a missing group name its options.
    """
    unknown = unknown_setting(cfg)
    if unknown:
        raise ConfigError(unknown)
    for group in GROUPS:
        if cfg.get(group) is None:  # deleted with ~group
            options = sorted(p.stem for p in (conf_dir / group).glob("*.yaml")) if conf_dir is not None else []
            listed = f", one of {', '.join(options)}" if options else ""
            raise ConfigError(f"{group} is missing (a job needs one); allowed: {group}=NAME{listed}")
    try:
        check_study_name(cfg.get("name"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    # The seed feeds the data and outlier seeds: name it, not its copies, when it is bad.
    JobConf(name=str(cfg.get("name")), seed=cfg.get("seed"))
    spec = OmegaConf.to_object(cfg)
    if isinstance(spec.dataset, CsvConf) and original_cwd and not os.path.isabs(spec.dataset.path):
        spec.dataset.path = os.path.join(original_cwd, spec.dataset.path)
    return spec


def check_job(spec: JobConf) -> None:
    """Raise :class:`ConfigError` or :class:`~robustreg.datasets.DataError` for a job that cannot run; no fit.

    Runs what the job runs before its fit (:func:`robustreg.experiment.prepare`):
    the stages that own the values check them.
    """
    import warnings

    import numpy as np

    from ..experiment import prepare

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        prepare(spec)
