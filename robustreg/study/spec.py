"""The job's typed spec, and a composed Hydra config turned into it, checked short of the fit.

The spec is plain dataclasses (:class:`JobConf` and its parts).
:func:`robustreg.study.schemas.register_schemas` registers them as Hydra
schemas, so that a wrong type is rejected when the config is composed.
:func:`to_spec` turns each job's composed config into these objects, as
``OmegaConf.to_object`` would, running ``__post_init__``.  Every value range is
checked there, before a job writes anything, with one line (a
:class:`~robustreg.study.errors.ConfigError`) naming the key, the value and
what is allowed.  The entry point (``experiments/run.py``) checks a single
run's spec with :func:`check_job` before Hydra makes its folder, so bad
input leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from dataclasses import dataclass, field, make_dataclass
from typing import Any, List, Optional

from omegaconf import DictConfig, OmegaConf
from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

from ..losses import LOSSES
from ..datasets import CLASSIC_NAMES, check_split
from ..outliers import check_params as check_outlier_params
from .errors import ConfigError
from .record import check_study_name

__all__ = [
    "ConfigError",
    "CsvConf",
    "ClassicConf",
    "DiabetesConf",
    "GDConf",
    "JobConf",
    "LOSS_CONFS",
    "OutliersConf",
    "ReferenceSolverConf",
    "SyntheticConf",
    "check_job",
    "to_spec",
    "unknown_setting",
]


def _fail(key, value, allowed):
    raise ConfigError(f"{key}={value!r} is invalid; allowed: {allowed}")


def _loader_check(prefix: str, check, **params) -> None:
    """Run a library stage's own parameter check; its one-line error names each parameter as its config key."""
    try:
        check(**params)
    except ValueError as exc:
        raise ConfigError(config_keys(prefix, str(exc).splitlines()[0], params)) from None


def _check_seed(key, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        _fail(key, value, "an integer >= 0")


def config_keys(prefix: str, message: str, names) -> str:
    """``message`` (one line of a library check) with each parameter name in ``names`` written as a config key.

    A name counts where it is followed by ``=`` or `` has `` (``coef has 2
    entries``, ``rho=1.0 is invalid``), so prose is left as it is.
    """
    names = sorted(map(str, names), key=len, reverse=True)
    if not names:
        return message
    pattern = rf"(?<![\w.'\"])({'|'.join(map(re.escape, names))})(?==| has )"
    return re.sub(pattern, lambda m: prefix + m.group(1), message)


def _allowed_part(message: str) -> str:
    """What scikit-learn's parameter validation says is allowed: the text between "must be" and ". Got"."""
    return message.split(" must be ", 1)[-1].rsplit(". Got", 1)[0]


def _seed_range(allowed: str) -> str:
    """The integer part of what scikit-learn allows for ``random_state``: all a config's seed can be."""
    return (re.findall(r"an int in the range \[[^\]]*\]", allowed) or [allowed])[0]


def dataset_params(conf) -> dict:
    """The loader keyword arguments of a dataset schema (everything but its name)."""
    return {k: v for k, v in vars(conf).items() if k != "name"}


# ----------------------------------------------------------------------- data
@dataclass
class SyntheticConf:
    """Parameters of :func:`robustreg.datasets.synthetic` (see its docstring)."""

    name: str = "synthetic"
    n_train: int = 200
    n_test: int = 1000
    n_features: int = 5
    coef: Optional[List[float]] = None
    intercept: float = 1.0
    design: str = "gaussian"
    rho: float = 0.5
    condition_number: Optional[float] = None
    noise: str = "gaussian"
    noise_scale: float = 1.0
    df: float = 3.0
    coef_scale: float = 1.0
    seed: int = 0

    def __post_init__(self):
        from ..datasets import synthetic_params

        # Every range is the loader's: its own checks, without drawing any data.
        _loader_check("dataset.", synthetic_params, **dataset_params(self))


@dataclass
class DiabetesConf:
    name: str = "diabetes"
    test_size: float = 0.25
    standardize: bool = True
    seed: int = 0

    def __post_init__(self):
        _loader_check("dataset.", check_split, test_size=self.test_size, seed=self.seed)


@dataclass
class ClassicConf:
    """A classic data set (stackloss, stars_cyg, hbk, telef): all rows, no parameters."""

    name: str = "stackloss"

    def __post_init__(self):
        if self.name not in CLASSIC_NAMES:
            _fail("dataset.name", self.name, ", ".join(CLASSIC_NAMES))


@dataclass
class CsvConf:
    """A user CSV file: ``path`` (relative paths are taken from where the command was run) and ``target``."""

    name: str = "csv"
    path: str = "???"
    target: str = "???"
    features: Optional[List[str]] = None
    delimiter: str = ","
    test_size: float = 0.25
    seed: int = 0

    def __post_init__(self):
        _loader_check("dataset.", check_split, test_size=self.test_size, seed=self.seed)


# -------------------------------------------------------------------- outliers
@dataclass
class OutliersConf:
    """Parameters of :func:`robustreg.outliers.inject`."""

    kind: str = "vertical"
    fraction: float = 0.1
    magnitude: float = 10.0
    side: str = "symmetric"
    tail: str = "cauchy"
    df: float = 1.0
    leverage_share: float = 0.5
    seed: int = 0

    def __post_init__(self):
        if self.kind == "none":
            # No contamination is contamination at level 0, whatever a sweep set.
            self.fraction = 0.0
        # The contamination model's own checks (robustreg.outliers.check_params), named as config keys.
        _loader_check("outliers.", check_outlier_params, **vars(self))


# ------------------------------------------------------------------------ loss
def _loss_conf(name, cls):
    """A schema for one registered loss: its name plus its constructor's tuning constants."""
    fields = [("name", str, field(default=name))]
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        fields.append((p.name, float, field(default=float(p.default))))

    def post_init(self):
        if self.name != name:
            _fail("loss.name", self.name, name)
        params = {k: v for k, v in vars(self).items() if k != "name"}
        try:
            cls(**params)
        except ValueError as exc:
            raise ConfigError(f"loss.{exc}") from None

    conf = make_dataclass(f"{cls.__name__}Conf", fields, namespace={"__post_init__": post_init})
    # A module-level name, so that configs holding it can be pickled (worker processes).
    conf.__module__ = __name__
    globals()[conf.__name__] = conf
    return conf


#: One schema per registered loss, keyed by registry name.
LOSS_CONFS = {name: _loss_conf(name, cls) for name, cls in sorted(LOSSES.items())}


# ----------------------------------------------------------------------- model
@dataclass
class GDConf:
    """Every :class:`robustreg.GDRegressor` setting (``random_state`` is the job seed)."""

    name: str = "gd"
    solver: str = "auto"
    learning_rate: str = "auto"
    eta0: float = 1.0
    power_t: float = 0.25
    momentum: float = 0.0
    nesterov: bool = False
    batch_size: Optional[int] = None
    max_iter: int = 1000
    tol: float = 1e-6
    n_iter_no_change: int = 100
    fit_intercept: bool = True
    standardize: bool = False
    penalty: Optional[str] = None
    alpha: float = 1e-4
    l1_ratio: float = 0.15
    init: Any = None
    scale: Any = None
    record_history: bool = True
    verbose: int = 0
    dtype: str = "float64"

    def __post_init__(self):
        from ..estimator import GDRegressor

        params = self.estimator_params()
        constraints = GDRegressor._parameter_constraints
        for key, value in params.items():
            try:
                validate_parameter_constraints({key: constraints[key]}, {key: value}, caller_name="GDRegressor")
            except InvalidParameterError as exc:
                msg = str(exc).split(" must be ", 1)[-1].rsplit(". Got", 1)[0]
                _fail(f"model.{key}", value, msg)

    #: The settings that change gradient descent's path, not the objective it minimizes (written in each record).
    PATH_SETTINGS = ("learning_rate", "eta0", "power_t", "momentum", "nesterov", "batch_size", "max_iter", "tol",
                     "n_iter_no_change", "verbose", "record_history")

    def estimator_params(self) -> dict:
        params = {k: v for k, v in vars(self).items() if k != "name"}
        if isinstance(params["init"], (list, tuple)):
            params["init"] = [float(v) for v in params["init"]]
        return params

    def check_seed(self, seed) -> None:
        """The job seed is the estimator's ``random_state``: checked by its own constraint."""
        from ..estimator import GDRegressor

        constraint = {"random_state": GDRegressor._parameter_constraints["random_state"]}
        try:
            validate_parameter_constraints(constraint, {"random_state": seed}, caller_name="GDRegressor")
        except InvalidParameterError as exc:
            _fail("seed", seed, _seed_range(_allowed_part(str(exc))))

    def check_data(self, X, y) -> None:
        """The settings whose validity depends on the (contaminated) training data, checked short of fitting.

        An explicit ``init`` (its length, and robust starts without an
        intercept) by the estimator's own start; with ``dtype="float32"``,
        that the data stay within the range of a float32 pass
        (:func:`robustreg._checks.magnitude_limit`).
        """
        import numpy as np

        from .._checks import magnitude_limit, max_magnitude
        from ..estimator import GDRegressor

        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if self.init is not None and (not isinstance(self.init, str) or not self.fit_intercept):
            estimator = GDRegressor(**self.estimator_params())
            try:
                # An explicit or unfitted start is checked before any work: no fit happens here.
                estimator._start(X, y, None, None, None, None, estimator.init)
            except ValueError as exc:
                raise ConfigError(config_keys("model.", str(exc).splitlines()[0], vars(self))) from None
        if self.dtype != "float64":
            limit = magnitude_limit(len(X), np.dtype(self.dtype))
            top = max_magnitude(X, y)
            if top > limit:
                raise ConfigError(
                    f"model.dtype={self.dtype!r} is invalid for these data: the training data (outliers included) "
                    f"reach {top:.3g}, beyond {limit:.3g}, where sums of squares over {len(X)} rows overflow "
                    f"{self.dtype}; allowed: 'float64', or data of magnitude at most {limit:.3g}"
                )


@dataclass
class ReferenceSolverConf:
    """A scikit-learn reference solver run through the same job record (no history)."""

    name: str = "sklearn_ols"
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        from .solvers import REFERENCE_SOLVERS

        if self.name not in REFERENCE_SOLVERS:
            _fail("model.name", self.name, ", ".join(REFERENCE_SOLVERS))
        if not isinstance(self.params, dict):
            _fail("model.params", self.params, "a mapping of parameter names to values")
        self._solver()

    def _solver(self, seed: int = 0):
        """The solver's own checks of ``params`` (and of ``seed``, its ``random_state``), as config keys."""
        from .solvers import ParameterError, make_reference_solver

        try:
            return make_reference_solver(self.name, seed=seed, **self.params)
        except ParameterError as exc:
            if exc.unknown:
                raise ConfigError(f"model.params.{exc.param} is not a parameter of {self.name}; "
                                  f"allowed: {exc.allowed}") from None
            if exc.param == "random_state":
                _fail("seed", seed, _seed_range(exc.allowed))
            _fail(f"model.params.{exc.param}", exc.value, exc.allowed)

    def check_seed(self, seed) -> None:
        """The job seed is ``random_state`` of the randomized solvers: checked by scikit-learn's own constraint."""
        self._solver(seed)


# ------------------------------------------------------------------------- job
@dataclass
class JobConf:
    """One job: a study name, a seed, a dataset, an outlier model, a loss and a model."""

    name: str = "default"
    seed: int = 0
    dataset: Any = None
    outliers: Any = None
    loss: Any = None
    model: Any = None

    def __post_init__(self):
        _check_seed("seed", self.seed)
        check_seed = getattr(self.model, "check_seed", None)
        if check_seed is not None:
            check_seed(self.seed)


# ------------------------------------------------- from a Hydra config



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
    spec = _instantiate(cfg, OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))
    if isinstance(spec.dataset, CsvConf) and original_cwd and not os.path.isabs(spec.dataset.path):
        spec.dataset.path = os.path.join(original_cwd, spec.dataset.path)
    return spec


def _instantiate(node: DictConfig, plain):
    """``OmegaConf.to_object(node)`` from its resolved container ``plain``: each schema node's dataclass, built.

    A quarter faster than ``to_object``, which checks every value again on its
    way (the composed config was checked against its schema when it was made);
    the dataclasses' ``__post_init__`` checks run all the same.
    """
    kind = OmegaConf.get_type(node)
    if not (dataclasses.is_dataclass(kind) and isinstance(plain, dict)):
        return plain
    values = {}
    for key, value in plain.items():
        child = node._get_node(key) if isinstance(value, dict) else None
        values[key] = _instantiate(child, value) if isinstance(child, DictConfig) else value
    return kind(**values)


def check_job(spec: JobConf) -> None:
    """Raise :class:`ConfigError` or :class:`~robustreg.datasets.DataError` for a job that cannot run; no fit.

    Runs what the job runs before its fit (:func:`robustreg.study.job.prepare`):
    the stages that own the values check them.
    """
    import warnings

    import numpy as np

    from .job import prepare

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        prepare(spec)
