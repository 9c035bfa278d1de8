"""robustreg: reproducible experiments on robust regression.

The library is plain Python (no Hydra inside): the loss family
(:mod:`robustreg.losses`), the gradient-descent regressor
(:class:`GDRegressor`), data sets and contamination models, and the job and
report machinery that the entry points in ``experiments/`` drive.
"""

from importlib.metadata import PackageNotFoundError, version

from .losses import LOSSES, Loss, get_loss


def __getattr__(name):
    # The estimator (and scikit-learn with it) is imported on first use: the
    # report and the job records need the losses only.
    if name == "GDRegressor":
        from .estimator import GDRegressor

        return GDRegressor
    raise AttributeError(f"module 'robustreg' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"GDRegressor"})

try:
    __version__ = version("robustreg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["GDRegressor", "LOSSES", "Loss", "get_loss", "__version__"]
