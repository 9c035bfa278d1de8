"""One line for bad input: what the entry point prints and what a failed job records.

* :func:`first_line`: the first non-empty line of an exception's message;
* :func:`explain`: one line for an exception raised while a config becomes
  a job or a job runs (OmegaConf wraps the cause of a failed ``__post_init__``);
* :func:`compose_error`: one line for any exception Hydra raises when a
  config does not compose (an unknown group option, an override that does
  not parse, a key that is not a setting, a value of the wrong type);
* :data:`BAD_INPUT`: the exception types that mean bad input (exit status 2).

None of them ever raises, and each returns exactly one non-empty line.
"""

from __future__ import annotations

from omegaconf.errors import OmegaConfBaseException

from ..datasets import DataError

__all__ = ["BAD_INPUT", "ConfigError", "compose_error", "explain", "first_line"]


class ConfigError(ValueError):
    """A configuration value outside its allowed range (one line: key, value, allowed)."""


#: Exceptions that mean bad input: a single run ends with one line and exit status 2.
BAD_INPUT = (ConfigError, DataError, OmegaConfBaseException)


def first_line(exc: BaseException) -> str:
    """The first non-empty line of ``exc``'s message (its type's name if it has none); never raises."""
    try:
        text = str(exc)
    except Exception:  # a broken __str__
        text = ""
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line
    try:
        return type(exc).__name__
    except Exception:
        return "error"


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost cause through OmegaConf and Hydra wrappers (cycles and depth bounded)."""
    from hydra.errors import HydraException

    cause, seen = exc, set()
    while (
        isinstance(cause, (OmegaConfBaseException, HydraException))
        and cause.__cause__ is not None
        and id(cause) not in seen
        and len(seen) < 50
    ):
        seen.add(id(cause))
        cause = cause.__cause__
    return cause


def explain(exc: BaseException) -> str:
    """One line for an exception: the innermost bad-input message, else the type and first line of the cause."""
    try:
        cause = exc
        seen = set()
        while isinstance(cause, OmegaConfBaseException) and cause.__cause__ is not None and id(cause) not in seen:
            seen.add(id(cause))
            cause = cause.__cause__
        from omegaconf.errors import MissingMandatoryValue

        key = getattr(cause, "full_key", None)
        if isinstance(cause, MissingMandatoryValue) and key:
            return f"{key} is missing (it has no default); allowed: any value, set with {key}=VALUE"
        text = first_line(cause)
        return text if isinstance(cause, BAD_INPUT) else f"{type(cause).__name__}: {text}"
    except Exception:  # never raise while explaining an error
        return first_line(exc)


def _allowed_keys(node) -> list:
    try:
        return [str(k) for k in node.keys()]
    except Exception:
        return []


def _compose_error(exc: BaseException) -> str:
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigKeyError, ValidationError

    if isinstance(exc, MissingConfigException):
        missing = getattr(exc, "missing_cfg_file", None) or ""
        options = getattr(exc, "options", None)
        if missing and options:
            group, _, choice = str(missing).rpartition("/")
            group = group or "config"
            return f"{group}={choice} is invalid; allowed: one of {', '.join(map(str, options))}"
        return first_line(exc)
    if isinstance(exc, OverrideParseException):
        # Its first line names the override, the next one (if any) says what is wrong with it.
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.strip().startswith("See http")]
        return f"an override does not parse: {': '.join(lines) or first_line(exc)} (Hydra's override grammar)"
    cause = _root_cause(exc)
    if isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None)
        node = getattr(cause, "parent_node", None)
        name = getattr(cause, "key", None)
        if key and node is not None and isinstance(cause, ConfigKeyError):
            allowed = _allowed_keys(node)
            if name is not None and str(name) not in allowed:
                return f"{key} is not a setting; allowed: {', '.join(allowed) or 'none'}"
        if key and isinstance(cause, ValidationError):
            value = getattr(cause, "value", None)
            return f"{key}={value} is invalid: {first_line(cause)}"
        if key and node is not None:
            allowed = _allowed_keys(node)
            if name is not None and allowed and str(name) not in allowed:
                return f"{key} is not a setting; allowed: {', '.join(allowed)}"
    if cause is not exc:
        return f"{first_line(exc)}: {first_line(cause)}"
    return first_line(exc)


def compose_error(exc: BaseException) -> str:
    """One line for a config that does not compose: the bad value or key, and what is allowed.

    Handles Hydra's ``MissingConfigException`` (an unknown option of a config
    group: the allowed options), ``OverrideParseException`` and
    ``ConfigCompositionException`` wrapping an OmegaConf error (a key that is
    not a setting: the allowed keys; a value of the wrong type).  Any other
    exception gives its first line.  Never raises.
    """
    try:
        text = _compose_error(exc)
    except Exception:
        text = first_line(exc)
    text = " ".join(str(text).split())
    return text or "the config does not compose"
