"""The console scripts ``robustreg-run`` and ``robustreg-report``: the checkout's entry points under a name of their own.

``robustreg-run ARGS`` is ``python experiments/run.py ARGS`` and
``robustreg-report ARGS`` is ``python experiments/report.py ARGS``.  A
command of its own is what Hydra's shell completion binds to:

    eval "$(robustreg-run -sc install=bash)"

The entry points live in the checkout (beside ``conf/``), which the
project's editable install (``make install``) keeps in place.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _entry(name: str, prog: str) -> None:
    script = ROOT / "experiments" / name
    if not script.is_file():
        print(f"error: {script} not found; the console scripts run a checkout's entry points "
              "(install the project with `pip install -e .` from its checkout)", file=sys.stderr)
        sys.exit(2)
    # As `python script.py`; PROG gives the script its command's name back
    # (runpy sets sys.argv[0] to the script's path, and Hydra's completion
    # binds to the command named there).
    runpy.run_path(str(script), init_globals={"PROG": prog}, run_name="__main__")


def run() -> None:
    """``robustreg-run``: one fit, or a sweep with ``-m``."""
    _entry("run.py", "robustreg-run")


def report() -> None:
    """``robustreg-report``: tables, figures and report of a sweep folder."""
    _entry("report.py", "robustreg-report")
