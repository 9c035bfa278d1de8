"""robustreg: reproducible experiments on robust regression.

The library is plain Python (no Hydra inside): the loss family
(:mod:`robustreg.losses`), the gradient-descent regressor
(:class:`GDRegressor`), data sets and contamination models, and the job and
report machinery that the entry points in ``experiments/`` drive.
"""

from importlib.metadata import PackageNotFoundError, version

from .estimator import GDRegressor
from .losses import LOSSES, Loss, get_loss

try:
    __version__ = version("robustreg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["GDRegressor", "LOSSES", "Loss", "get_loss", "__version__"]
