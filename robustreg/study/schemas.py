"""Register robustreg's dataclass schemas in Hydra's ConfigStore.

Each YAML file of a config group extends its schema through its defaults list
(``- /schema/<group>/<name>@_here_``), so a value of the wrong type is
rejected when the config is composed, and ``OmegaConf.to_object`` turns the
composed config into the plain dataclasses of :mod:`robustreg.study.spec`.

The entry point (``experiments/run.py``) registers them before Hydra composes
anything; code that composes robustreg's ``conf/`` with ``hydra.compose``
calls :func:`register_schemas` first.  Hydra's plugin discovery does not
import this module, so other Hydra apps never pay for robustreg's imports.
"""

from hydra.core.config_store import ConfigStore

from robustreg.study.spec import (
    LOSS_CONFS,
    ClassicConf,
    CsvConf,
    DiabetesConf,
    GDConf,
    JobConf,
    OutliersConf,
    ReferenceSolverConf,
    SyntheticConf,
)


def register_schemas() -> None:
    """Store every schema under ``schema/`` in Hydra's ConfigStore (again: the same nodes)."""
    cs = ConfigStore.instance()
    cs.store(group="schema", name="job", node=JobConf, provider="robustreg")
    cs.store(group="schema/dataset", name="synthetic", node=SyntheticConf, provider="robustreg")
    cs.store(group="schema/dataset", name="diabetes", node=DiabetesConf, provider="robustreg")
    cs.store(group="schema/dataset", name="classic", node=ClassicConf, provider="robustreg")
    cs.store(group="schema/dataset", name="csv", node=CsvConf, provider="robustreg")
    cs.store(group="schema/outliers", name="outliers", node=OutliersConf, provider="robustreg")
    for name, node in LOSS_CONFS.items():
        cs.store(group="schema/loss", name=name, node=node, provider="robustreg")
    cs.store(group="schema/model", name="gd", node=GDConf, provider="robustreg")
    cs.store(group="schema/model", name="reference", node=ReferenceSolverConf, provider="robustreg")

