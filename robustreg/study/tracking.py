"""Job records into MLflow: a Hydra callback for sweeps as they run, and an import of a finished sweep folder.

Optional: it needs the extra ``pip install 'robustreg[mlflow]'`` (``mlflow-skinny``
with SQLAlchemy and Alembic, for a SQLite store).  Nothing else in robustreg
imports this module, and this module imports MLflow only when it logs.

One function, :func:`log_job`, logs ONE job folder (its ``metrics.json``, or
``failure.json``) as one MLflow run:

* params: the record's identifying inputs, flattened with the config's keys
  (``seed``, ``dataset``, ``dataset.n_train``, ``outliers``,
  ``outliers.fraction``, ``loss``, ``loss.delta``, ``model``, ``model.max_iter``...);
  a value is written as in an override (``null``, ``true``, ``0.2``);
* metrics: every scalar outcome (``coef_error``, ``test_rmse``, ``n_iter``,
  ``fit_seconds``..., ``converged`` and ``diverged`` as 0/1, ``n_corrupted``);
* stepped metrics: each column of ``history.parquet`` as ``history/<column>``,
  its step the ``iteration`` column;
* tags: ``robustreg.config_hash`` and ``robustreg.code_hash`` (together, the
  job's identity: a job already logged with both is not logged again),
  ``robustreg.status`` (``ok``, ``diverged``, ``not_converged``, ``failed``),
  ``robustreg.study``, ``robustreg.job_dir``, ``robustreg.job_path``; the run's
  name is the job's folder, relative to its sweep folder.

A done record is a FINISHED run (whatever its ``status``), a failure a FAILED
run.  The identity tags are written last, just before the run is ended, so a
logging cut short leaves no run that passes for the job.

:class:`MLflowCallback` (``hydra/callbacks=mlflow``) calls it at each job's
end, in the job's process; :func:`log_sweep` (``report.py SWEEP --mlflow URI``)
walks a sweep folder.  Writes to a SQLite store are serialized across
processes by a lock file beside it (``<store>.lock``): forked workers log side
by side without "database is locked".
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .record import FAILURE, HISTORY, METRICS, RecordError, damaged_files, read_json

log = logging.getLogger(__name__)

INSTALL_HINT = "MLflow tracking needs the optional extra: pip install 'robustreg[mlflow]'"
TAG = "robustreg."
HISTORY_PREFIX = "history/"
DB_NAME = "mlflow.db"
# MLflow's limits for one log_batch call.
_MAX_METRICS, _MAX_PARAMS, _MAX_TAGS = 1000, 100, 100
# Top-level record numbers that are inputs or bookkeeping, not outcomes.
_NOT_METRICS = {"schema_version", "seed"}
_MAX_PARAM_VALUE = 6000  # characters, MLflow's limit


class TrackingError(RuntimeError):
    """Tracking cannot go on: MLflow missing, a store that does not answer, a deleted experiment."""


# ------------------------------------------------------------------ the store
def require_mlflow(uri: str | None = None) -> None:
    """Raise :class:`TrackingError` with the install hint unless MLflow (and SQLAlchemy for ``sqlite:``) imports."""
    import importlib.util

    needed = ["mlflow"] + (["sqlalchemy", "alembic"] if uri and uri.startswith("sqlite:") else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise TrackingError(f"{INSTALL_HINT} ({', '.join(missing)} not installed)")


def normalize_uri(uri) -> str:
    """A tracking URI as MLflow takes it; a plain path (no ``scheme:``) is an SQLite file: ``sqlite:///<abs path>``."""
    text = str(uri)
    if "://" in text or text.startswith(("sqlite:", "databricks")):
        return text
    return "sqlite:///" + str(Path(text).expanduser().resolve())


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URI (None for another store, or an in-memory database)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def probe(uri: str, timeout: float = 5.0) -> str | None:
    """None if an ``http(s)://`` tracking server answers within ``timeout`` seconds (any HTTP status), else why not.

    MLflow's own client retries a server that is down for minutes; this asks
    once, with the standard library, and holds no connection.  Other stores
    are not probed (None).
    """
    if not uri.startswith(("http://", "https://")):
        return None
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            return None
    except urllib.error.HTTPError:  # it answered
        return None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"the MLflow server {uri} does not answer ({reason})"


class Store:
    """One tracking store, in one process: its client, its experiments, and the lock that serializes SQLite writers."""

    def __init__(self, uri: str):
        require_mlflow(uri)
        self.uri = uri
        self.db = sqlite_path(uri)
        self._lock_path = None
        if self.db is not None:
            self.db = self.db.resolve()
            self.db.parent.mkdir(parents=True, exist_ok=True)
            self._lock_path = self.db.with_name(self.db.name + ".lock")
        self._experiments: dict = {}
        with self.lock():  # a new SQLite store creates its tables here: one process at a time
            from mlflow.tracking import MlflowClient

            try:
                self.client = MlflowClient(tracking_uri=uri)
                self.client.search_experiments(max_results=1)  # a store that does not answer fails here, once
            except Exception as exc:
                first = str(exc).splitlines()[0] if str(exc) else ""
                raise TrackingError(f"cannot open the MLflow store {uri}: {type(exc).__name__}: {first}") from exc

    @contextlib.contextmanager
    def lock(self):
        if self._lock_path is None:
            yield
            return
        import fcntl

        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def experiment_id(self, name: str) -> str:
        """The id of the experiment ``name``, created if new (artifacts beside a SQLite store, not in the cwd)."""
        if name in self._experiments:
            return self._experiments[name]
        from mlflow.exceptions import MlflowException

        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            location = (self.db.parent / "mlartifacts").as_uri() if self.db is not None else None
            try:
                exp_id = self.client.create_experiment(name, artifact_location=location)
            except MlflowException:  # created meanwhile by another process
                exp = self.client.get_experiment_by_name(name)
                if exp is None:
                    raise
                exp_id = exp.experiment_id
        elif exp.lifecycle_stage != "active":
            raise TrackingError(f"the MLflow experiment {name!r} is deleted in {self.uri}; restore it "
                                "(mlflow experiments restore) or log to another experiment_name")
        else:
            exp_id = exp.experiment_id
        self._experiments[name] = exp_id
        return exp_id

    def find(self, exp_id: str, config_hash: str, code_hash: str) -> list:
        """The active runs of the experiment tagged with this config hash and code hash."""
        query = (f"tags.`{TAG}config_hash` = '{config_hash}' and tags.`{TAG}code_hash` = '{code_hash}'")
        return self.client.search_runs([exp_id], filter_string=query, max_results=100)


# One store per (process, URI): a forked worker opens its own, never its parent's connections.
_STORES: dict = {}


def get_store(uri) -> Store:
    key = (os.getpid(), normalize_uri(uri))
    if key not in _STORES:
        _STORES[key] = Store(key[1])
    return _STORES[key]


def default_uri(results_root) -> str:
    """The default store: the SQLite file ``<results root>/runs/mlflow.db``."""
    return "sqlite:///" + str((Path(results_root) / "runs" / DB_NAME).resolve())


# ------------------------------------------------------- a record, flattened
def param_value(value) -> str:
    """A param as an override would write it: ``null``, ``true``/``false``, ``0.2``; a list or mapping as JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    else:
        text = str(value)
    return text if len(text) <= _MAX_PARAM_VALUE else text[:_MAX_PARAM_VALUE - 3] + "..."


def job_params(record: dict) -> dict:
    """The record's identifying inputs, flattened with the config's keys, values as strings."""
    out = {}
    if "seed" in record:
        out["seed"] = record["seed"]
    for group in ("dataset", "outliers", "loss", "model"):
        entry = record.get(group)
        if not isinstance(entry, dict):
            continue
        out[group] = entry.get("kind") if group == "outliers" else entry.get("name")
        if group == "outliers":
            for key in ("fraction", "magnitude", "seed"):
                if key in entry:
                    out[f"outliers.{key}"] = entry[key]
        for key, value in (entry.get("params") or {}).items():
            out[f"{group}.{key}"] = value
    return {k: param_value(v) for k, v in out.items()}


def _number(value):
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def job_metrics(record: dict) -> dict:
    """Every scalar outcome of a done record (booleans as 0/1; a value that was not finite is left out)."""
    out = {}
    for key, value in record.items():
        if key in _NOT_METRICS or not isinstance(value, (bool, int, float)):
            continue
        number = _number(value)
        if number is not None:
            out[key] = number
    n_corrupted = _number((record.get("outliers") or {}).get("n_corrupted"))
    if n_corrupted is not None:
        out["n_corrupted"] = n_corrupted
    return out


def history_metrics(path) -> list:
    """``(key, value, step)`` of every value of ``history.parquet``: ``history/<column>`` stepped by ``iteration``."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    names = table.column_names
    steps = (table.column("iteration").to_numpy(zero_copy_only=False).astype(np.int64) if "iteration" in names
             else np.arange(table.num_rows, dtype=np.int64))
    out = []
    for name in names:
        if name == "iteration":
            continue
        try:
            values = table.column(name).to_numpy(zero_copy_only=False).astype(float)
        except (TypeError, ValueError):  # not a numeric column
            continue
        key = HISTORY_PREFIX + name
        out.extend(zip([key] * len(values), values.tolist(), steps.tolist()))
    return out


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


# ------------------------------------------------------------- one job folder
@dataclass
class Logged:
    """What :func:`log_job` did with one job folder, and why.

    ``outcome`` is ``logged``, ``already`` (a run holds the job), ``skipped``
    (nothing to log: no record yet, or a failure without a config hash) or
    ``damaged`` (a record file that cannot be read, or does not match its digest).
    """

    job_path: Path
    outcome: str
    run_id: str | None = None
    reason: str = ""


def read_record(job_path) -> tuple:
    """``(record, "done" | "failed")`` of a job folder; ``(None, why)`` when there is none, ``(None, "damaged: ...")`` when it is damaged."""
    job_path = Path(job_path)
    for name, kind in ((METRICS, "done"), (FAILURE, "failed")):
        try:
            record = read_json(job_path / name)
        except FileNotFoundError:
            continue
        except RecordError as exc:
            return None, f"damaged: {name}: {exc.reason}"
        if kind == "done":
            bad = damaged_files(job_path, record)
            if bad:
                return None, "damaged: " + "; ".join(bad)
        return record, kind
    return None, "no job record (not run yet, or running)"


def log_job(job_path, tracking_uri, experiment_name: str | None = None, *, job_dir: str | None = None) -> Logged:
    """Log one job folder to the MLflow store at ``tracking_uri`` as one run, unless a run already holds it.

    Parameters
    ----------
    job_path : path
        The job folder (``metrics.json``, ``history.parquet``, ... or ``failure.json``).
    tracking_uri : str
        ``sqlite:///PATH``, a server's ``http(s)://`` URI, or any URI MLflow takes (a plain path is an SQLite file).
    experiment_name : str, optional
        The MLflow experiment; by default the record's study name.
    job_dir : str, optional
        The run's name; by default the record's ``job_dir`` (the folder relative to its sweep folder).

    Raises
    ------
    TrackingError
        MLflow is not installed, or the experiment is deleted.  A damaged
        record (``outcome="damaged"``) or a failure without a config hash
        (``outcome="skipped"``) is not logged; ``reason`` says why.
    """
    job_path = Path(job_path).resolve()
    record, kind = read_record(job_path)
    if record is None:
        if kind.startswith("damaged: "):
            return Logged(job_path, "damaged", reason=kind[len("damaged: "):])
        return Logged(job_path, "skipped", reason=kind)
    config_hash, code_hash = record.get("config_hash"), record.get("code_hash")
    if not config_hash or not code_hash:
        return Logged(job_path, "skipped", reason=f"{FAILURE} holds no config hash (the job's config did not compose)")
    store = get_store(tracking_uri)
    name = experiment_name or record.get("study") or "default"
    with store.lock():
        exp_id = store.experiment_id(name)
        for run in store.find(exp_id, config_hash, code_hash):
            if run.info.status == "FINISHED" or kind == "failed":
                return Logged(job_path, "already", run.info.run_id, f"logged already as run {run.info.run_id}")
        run_id = _log_run(store.client, exp_id, job_path, record, kind, job_dir)
    return Logged(job_path, "logged", run_id)


def _log_run(client, exp_id: str, job_path: Path, record: dict, kind: str, job_dir: str | None) -> str:
    from mlflow.entities import Metric, Param, RunTag

    source = job_path / (METRICS if kind == "done" else FAILURE)
    end_ms = int(source.stat().st_mtime * 1000)
    seconds = _number(record.get("fit_seconds")) or 0.0
    start_ms = end_ms - int(seconds * 1000)
    rel = job_dir or record.get("job_dir") or job_path.name
    run_name = job_path.name if rel in (".", "") else rel
    tags = {
        f"{TAG}study": str(record.get("study")),
        f"{TAG}job_dir": str(rel),
        f"{TAG}job_path": str(job_path),
        f"{TAG}status": str(record.get("status", kind)),
        f"{TAG}package_version": str(record.get("package_version")),
    }
    if kind == "failed":
        tags[f"{TAG}error"] = str(record.get("error", ""))[:5000]
    run = client.create_run(exp_id, start_time=start_ms, tags=tags, run_name=run_name)
    run_id = run.info.run_id
    try:
        params = [Param(k, v) for k, v in job_params(record).items()]
        metrics = [Metric(k, v, end_ms, 0) for k, v in job_metrics(record).items()] if kind == "done" else []
        if kind == "done" and (job_path / HISTORY).is_file():
            metrics += [Metric(k, v, end_ms, s) for k, v, s in history_metrics(job_path / HISTORY)]
        for chunk in _chunks(params, _MAX_PARAMS):
            client.log_batch(run_id, params=chunk)
        for chunk in _chunks(metrics, _MAX_METRICS):
            client.log_batch(run_id, metrics=chunk)
        # The identity last: a run cut short before here is never taken for the job.
        client.log_batch(run_id, tags=[RunTag(f"{TAG}config_hash", record["config_hash"]),
                                       RunTag(f"{TAG}code_hash", record["code_hash"])])
        client.set_terminated(run_id, status="FINISHED" if kind == "done" else "FAILED", end_time=end_ms)
    except BaseException:
        with contextlib.suppress(Exception):
            client.delete_run(run_id)
        raise
    return run_id


# ---------------------------------------------------------- a sweep folder
@dataclass
class SweepImport:
    """What :func:`log_sweep` did: job folders logged, logged already, skipped and damaged (``folder: why``)."""

    sweep_dir: Path
    logged: list = field(default_factory=list)
    already: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    damaged: list = field(default_factory=list)


def job_folders(sweep_dir) -> list:
    """Every folder under ``sweep_dir`` that holds ``metrics.json`` or ``failure.json``, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(sweep_dir):
        dirnames.sort()
        if METRICS in filenames or FAILURE in filenames:
            found.append(Path(dirpath))
    return found


def log_sweep(sweep_dir, tracking_uri, experiment_name: str | None = None, progress=None) -> SweepImport:
    """Log every job record of a sweep folder (one run each, see :func:`log_job`); jobs logged already are left.

    ``progress(done, total)`` is called after each job, if given.
    """
    sweep_dir = Path(sweep_dir).resolve()
    if not sweep_dir.is_dir():
        raise TrackingError(f"{sweep_dir}: not a folder")
    folders = job_folders(sweep_dir)
    if not folders:
        raise TrackingError(f"{sweep_dir}: no job records (metrics.json or failure.json) below it")
    result = SweepImport(sweep_dir)
    require_mlflow(normalize_uri(tracking_uri))
    down = probe(normalize_uri(tracking_uri))
    if down:
        raise TrackingError(down)
    get_store(tracking_uri)  # a store that cannot be opened: one error, before any job
    for k, folder in enumerate(folders, 1):
        rel = folder.relative_to(sweep_dir).as_posix()
        done = log_job(folder, tracking_uri, experiment_name, job_dir=None if rel == "." else rel)
        if done.outcome in ("logged", "already"):
            getattr(result, done.outcome).append(rel)
        else:
            getattr(result, done.outcome).append(f"{rel}: {done.reason}")
        if progress is not None:
            progress(k, len(folders))
    return result


# ----------------------------------------------------------- Hydra callback
try:
    from hydra.experimental.callback import Callback as _Callback
except ImportError:  # pragma: no cover - hydra-core is a dependency
    _Callback = object


class MLflowCallback(_Callback):
    """Hydra callback: at each job's end, log its folder to MLflow (:func:`log_job`), in the job's process.

    ``hydra/callbacks=mlflow`` (``conf/hydra/callbacks/mlflow.yaml``) selects
    it; ``hydra.callbacks.mlflow.tracking_uri`` and
    ``hydra.callbacks.mlflow.experiment_name`` set the store and the
    experiment (by default the SQLite file ``<results root>/runs/mlflow.db``,
    or ``MLFLOW_TRACKING_URI``, and the study name).

    A job that cannot be logged still counts as done: its record is the
    truth, and the callback says, in one warning, how to import it later
    (``report.py SWEEP --mlflow URI``).  A tracking server that does not
    answer at the start is said once, and no job waits for it.  MLflow
    missing stops the run before any job, with the install hint.

    It holds only its settings (it is pickled to joblib's and submitit's
    workers); each process opens its own store when it logs its first job.
    """

    def __init__(self, tracking_uri: str | None = None, experiment_name: str | None = None):
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            root = os.environ.get("ROBUSTREG_ROOT") or str(Path(__file__).resolve().parents[2])
            uri = default_uri(Path(root) / "results")
        self.tracking_uri = normalize_uri(uri)
        self.experiment_name = experiment_name or None
        self.disabled = None  # why jobs are not logged, once the start found the store down
        require_mlflow(self.tracking_uri)

    def _start(self) -> None:
        """In the launching process, before any job: is the server there?  Import MLflow once, for forked workers."""
        self.disabled = probe(self.tracking_uri)
        if self.disabled:
            log.warning("mlflow: %s; no job is logged to it. Log the sweep later with: "
                        "report.py SWEEP_DIR --mlflow %s", self.disabled, self.tracking_uri)
            return
        # Imports only: no store, no connection, no thread crosses the fork.
        import mlflow.entities  # noqa: F401
        import mlflow.tracking  # noqa: F401

    def on_run_start(self, config, **kwargs) -> None:
        self._start()

    def on_multirun_start(self, config, **kwargs) -> None:
        self._start()

    def on_job_end(self, config, job_return, **kwargs) -> None:
        if self.disabled:
            return
        job_path = self._job_path(job_return)
        if job_path is None:
            return
        start = time.perf_counter()
        try:
            done = log_job(job_path, self.tracking_uri, self.experiment_name)
        except Exception as exc:
            log.warning("mlflow: %s not logged to %s: %s: %s; log it later with: report.py SWEEP_DIR --mlflow %s",
                        job_path, self.tracking_uri, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "",
                        self.tracking_uri)
            return
        if done.outcome == "logged":
            log.debug("mlflow: %s logged as run %s (%.2fs)", job_path, done.run_id, time.perf_counter() - start)
        elif done.outcome == "damaged":
            log.warning("mlflow: %s not logged: damaged record: %s", job_path, done.reason)
        elif done.outcome == "skipped":
            log.info("mlflow: %s not logged: %s", job_path, done.reason)

    @staticmethod
    def _job_path(job_return):
        try:
            from hydra.core.hydra_config import HydraConfig

            return Path(HydraConfig.get().runtime.output_dir)
        except Exception:
            working_dir = getattr(job_return, "working_dir", None)
            return Path(working_dir) if working_dir else None
