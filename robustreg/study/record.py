"""The job record on disk: its file names, one atomic writer, the hashes that say a record is current, and its checks.

A job folder holds

* ``metrics.json``: every input that identifies the job and every outcome;
  written last, and only by a job that ran to its end: it is the job's done
  marker.  Its ``files`` entry holds the SHA-256 of every other file the job
  wrote, so a damaged file is found (and the job done again) rather than read;
* ``history.parquet``: the per-iteration history (gradient-descent models only);
* ``config.json``: the job spec as plain JSON;
* or ``failure.json`` (identifying inputs, message, traceback) and no ``metrics.json``;
* ``.lock``: held while a process runs the job, so that two sweeps into one
  folder never compute it twice.

A sweep folder holds ``sweep.json``, the manifest of its jobs.

A record is current when its config hash (the spec, and the content of a CSV
data file) and its code hash (the code that computes a record, and the
versions of the libraries it runs on) are those of the job about to run.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import math
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
METRICS, FAILURE, HISTORY, CONFIG, SWEEP, LOCK = (
    "metrics.json", "failure.json", "history.parquet", "config.json", "sweep.json", ".lock")

# The libraries whose versions a record depends on.
DEPENDENCIES = ("numpy", "scipy", "scikit-learn", "pandas", "pyarrow", "numba", "threadpoolctl", "hydra-core",
                "omegaconf")


class RecordError(ValueError):
    """A record file that cannot be read: ``path: reason``, with ``reason`` alone on the exception."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.reason = reason


# ------------------------------------------------------------------ writing
def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def clean(value):
    """JSON-safe plain values: numpy scalars and arrays to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biu" or (value.dtype.kind == "f" and np.isfinite(value).all()):
            return value.tolist()  # already plain (bool, int, finite float), at any depth
        return [clean(v) for v in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def atomic_write(path, data) -> None:
    """Write ``data`` (bytes or text) to ``path``: a uniquely named temporary file in the same folder, then a rename.

    Readers see the old file or the new one, never a part; writers side by side
    never share a temporary name.  The file's mode follows the umask, as
    ``open()`` would make it (``mkstemp`` alone would make it 0600).
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_json(obj) -> str:
    """A record's JSON text: one top-level key per line, each value compact (json's C encoder; an indent would
    take its Python one, several times slower for the arrays of a record)."""
    obj = clean(obj)
    if not isinstance(obj, dict) or not obj:
        return _ENCODER.encode(obj) + "\n"
    encode = _ENCODER.encode
    return "{\n" + ",\n".join(f"{encode(k)}: {encode(v)}" for k, v in obj.items()) + "\n}\n"


_ENCODER = json.JSONEncoder(allow_nan=False)


def atomic_write_json(path, obj) -> None:
    atomic_write(path, to_json(obj))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def history_bytes(history) -> bytes:
    """The history frame as Parquet bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # From the columns' arrays: half the time of Table.from_pandas, and no pandas metadata (the index is a range).
    table = pa.table({name: history[name].to_numpy() for name in history.columns})
    sink = pa.BufferOutputStream()
    # A few hundred rows: uncompressed, without statistics or dictionaries, is three times
    # faster to write (and to read back) and hardly larger.
    pq.write_table(table, sink, compression="none", write_statistics=False, use_dictionary=False)
    return sink.getvalue().to_pybytes()


def loss_label(name: str, shown: dict) -> str:
    """A loss label: ``name`` alone, or with the constants ``shown`` (``"huber (delta=1.345)"``), sorted by key."""
    if not shown:
        return str(name)

    def text(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return f"{v:g}"
        if isinstance(v, (list, tuple, dict)):
            return json.dumps(v, separators=(",", ":"), sort_keys=True)
        return "none" if v is None else str(v)

    return f"{name} ({', '.join(f'{k}={text(v)}' for k, v in sorted(shown.items()))})"


def history_table(data: bytes):
    """The history of :func:`history_bytes` back as an Arrow table (raises what pyarrow raises for a damaged file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # ParquetFile on an in-memory buffer is several times faster per small file than read_table.
    return pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)


def sweep_manifest(study: str, jobs) -> dict:
    """The manifest of a sweep (``sweep.json``): its study and, per job, its folder and its overrides.

    ``jobs`` is a list of ``(job_dir, overrides)``; a job_dir may be None (a
    launcher that names folders its own way).
    """
    jobs = list(jobs)
    return {"schema_version": SCHEMA_VERSION, "study": study, "n_jobs": len(jobs),
            "jobs": [{"job_dir": d, "overrides": list(o)} for d, o in jobs]}


def manifest_jobs(manifest: dict) -> list:
    """``(job_dir, overrides)`` of each job a manifest lists, but those without a folder name (a launcher that
    names folders its own way); raises KeyError, TypeError for a damaged manifest."""
    return [(str(job["job_dir"]), list(job.get("overrides") or [])) for job in manifest.get("jobs") or []
            if job["job_dir"] is not None]


@contextlib.contextmanager
def job_lock(job_path):
    """Hold the job folder's lock: a second process running the same job waits here, then finds it done."""
    import fcntl

    job_path = Path(job_path)
    job_path.mkdir(parents=True, exist_ok=True)
    fd = os.open(job_path / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock, as the death of the process would


# ------------------------------------------------------------------ reading
def read_json(path) -> dict:
    """A record file's JSON object, or :class:`RecordError` naming the file and what is wrong."""
    try:
        with open(path, "rb") as fh:
            obj = json.loads(fh.read())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise RecordError(path, f"not a readable JSON record ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(obj, dict):
        raise RecordError(path, "not a JSON object")
    return obj


def damaged_files(job_path, record: dict) -> list:
    """The files a done record lists whose content no longer matches its digest: ``name: reason`` each."""
    bad = []
    for name, expected in (record.get("files") or {}).items():
        try:
            actual = file_digest(Path(job_path) / name)
        except FileNotFoundError:
            bad.append(f"{name}: missing (listed in {METRICS})")
            continue
        except OSError as exc:
            bad.append(f"{name}: cannot be read ({exc.strerror})")
            continue
        if actual != expected:
            bad.append(f"{name}: damaged (its SHA-256 differs from the one in {METRICS})")
    return bad


def read_done(job_path, config_digest: str):
    """The record of a finished job with this config hash, made by this code, with intact files; or (None, why)."""
    path = Path(job_path) / METRICS
    try:
        record = read_json(path)
    except FileNotFoundError:
        return None, None
    except RecordError as exc:
        return None, f"{METRICS}: {exc.reason}"
    if record.get("config_hash") != config_digest:
        return None, "its record holds another config hash"
    if record.get("code_hash") != code_hash():
        return None, "its record was made by other code or library versions"
    bad = damaged_files(job_path, record)
    if bad:
        return None, "; ".join(bad)
    return record, None


# ------------------------------------------------------------------- hashes
def data_digest(path) -> str | None:
    """SHA-256 of a data file's content (None when it cannot be read: the loader then says why)."""
    try:
        return file_digest(path)
    except OSError:
        return None


def _source_digest(text: str) -> str:
    """The digest of a module's code: its syntax tree without docstrings, so comments and prose do not count."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return digest(ast.dump(tree).encode())


def code_files() -> list:
    """The files whose content a record depends on: the library but its report, robustreg's Hydra plugin, the entry point.

    ``experiments/run.py`` is there in a checkout (an editable install); an
    installed wheel has none.
    """
    package = Path(__file__).resolve().parents[1]
    project = package.parent
    # What reads records or wraps the entry points does not shape them.
    readers = {"report", "tracking.py", "cli.py"}
    files = [p for p in package.rglob("*")
             if p.suffix in (".py", ".csv") and "__pycache__" not in p.parts
             and not readers & set(p.relative_to(package).parts)]
    # robustreg's own Hydra plugin (not the other plugins of an installed environment).
    import importlib.util

    spec = importlib.util.find_spec("hydra_plugins.robustreg_plugin")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            files += sorted(Path(folder).glob("*.py"))
    run = project / "experiments" / "run.py"
    if run.is_file():
        files.append(run)
    return sorted(set(files))


def _versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in DEPENDENCIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


_CODE_HASH: str | None = None


def code_hash() -> str:
    """SHA-256 over the code a record depends on (:func:`code_files`, docstrings and comments aside) and the library versions."""
    global _CODE_HASH
    if _CODE_HASH is None:
        root = Path(__file__).resolve().parents[2]
        h = hashlib.sha256()
        for path in code_files():
            h.update(path.relative_to(root).as_posix().encode() if root in path.parents else path.name.encode())
            data = path.read_bytes()
            h.update((_source_digest(data.decode()) if path.suffix == ".py" else digest(data)).encode())
        h.update(json.dumps(_versions(), sort_keys=True).encode())
        _CODE_HASH = h.hexdigest()
    return _CODE_HASH


# ------------------------------------------------------------- job folders
# Characters a job folder's name never holds as they are: the path separators
# and the escape character itself.  Each is written %XX, as in a URL.
_ESCAPE = {"%": "%25", "/": "%2F", "\\": "%5C", "\0": "%00"}
_MAX_PART = 200  # bytes; file systems allow 255 per path component


def escape_part(text: str) -> str:
    """One path component for one ``key=value`` override, whatever the value holds.

    ``/``, ``\\`` and ``%`` are percent-encoded, so a value never adds a folder
    level or climbs out with ``..``; a part longer than 200 bytes keeps its
    first 150 bytes and ends with ``~`` and 16 hex digits of its SHA-256.
    """
    out = "".join(_ESCAPE.get(c, c) for c in text)
    if out in (".", ".."):
        out = out.replace(".", "%2E")
    if len(out.encode()) > _MAX_PART:
        # Cut by bytes (a character may take several), never inside one.
        out = out.encode()[:150].decode(errors="ignore") + "~" + digest(text.encode())[:16]
    return out


def inside(path, folder) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both resolved)."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def check_study_name(name) -> str:
    """A study name is one plain folder name: its sweep folder is ``<results root>/runs/<name>``, never elsewhere."""
    text = str(name)
    if not text or text in (".", "..") or any(c in text for c in "/\\\0") or text != text.strip():
        raise ValueError(f"name={text!r} is invalid; allowed: a plain folder name (letters, digits, '.', '_', '-'; "
                         "no '/' and not '..')")
    return text


def failure_record(study, job_dir, overrides, message: str, error_type: str, **extra) -> dict:
    """The ``failure.json`` of a job that did not run to its end (written by whoever saw it fail).

    ``extra`` adds what the writer knows besides: the job's identifying inputs
    and traceback when the job itself failed.
    """
    return {"schema_version": SCHEMA_VERSION, "study": study, "job_dir": job_dir, "status": "failed",
            "overrides": list(overrides) if overrides is not None else None, "error": message,
            "error_type": error_type, **extra}


def write_failure(job_path, failure: dict) -> None:
    """Make ``failure.json`` the job's record: an older ``metrics.json`` is removed first, so the two never coexist."""
    job_path = Path(job_path)
    (job_path / METRICS).unlink(missing_ok=True)
    atomic_write_json(job_path / FAILURE, failure)


def stamp(path):
    """What identifies one version of a file (modification time in ns, inode, size), or None when it is absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)
