"""Shared fixtures: the tests never write inside the repository."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from robustreg.study.schemas import register_schemas

# Tests compose robustreg's conf/ with hydra.compose, as the entry point does after registering these.
register_schemas()

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "experiments" / "run.py"


@pytest.fixture
def run_cli(tmp_path):
    """Run ``experiments/run.py`` with results under ``tmp_path`` (never the repository)."""

    def run(*args, root=None, check=None, timeout=300):
        env = {**os.environ, "ROBUSTREG_ROOT": str(root or tmp_path), "HYDRA_FULL_ERROR": "0"}
        proc = subprocess.run(
            [sys.executable, str(RUN), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
        )
        if check is not None:
            assert proc.returncode == check, proc.stdout + proc.stderr
        return proc

    return run
