"""A Hydra callback for the tests: the job with one seed kills its own process, as the OOM killer would."""

import os
from pathlib import Path
import signal

from hydra.experimental.callback import Callback


class KillOnSeed(Callback):
    def __init__(self, seed: int):
        self.seed = seed

    def on_job_start(self, config, **kwargs):
        if config.seed == self.seed:
            os.kill(os.getpid(), signal.SIGKILL)


class Slow(Callback):
    """Each job sleeps first, so that a test can signal a sweep while its jobs run."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_job_start(self, config, **kwargs):
        import time

        time.sleep(self.seconds)


class RecordCwd(Callback):
    """Each job writes the folder it ran in to ``cwd.txt`` in its output folder."""

    def on_job_start(self, config, **kwargs):
        from hydra.core.hydra_config import HydraConfig

        out = Path(HydraConfig.get().runtime.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "cwd.txt").write_text(os.getcwd())
