"""scikit-learn's own estimator checks, for every registered loss."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from robustreg import LOSSES, GDRegressor

# Redescending losses are non-convex and, from the default zero start, are
# not expected to fit scikit-learn's generic data sets; they are checked with
# a high-breakdown start instead.
_ESTIMATORS = [
    GDRegressor(loss=name, max_iter=2000)
    if not LOSSES[name].redescending
    else GDRegressor(loss=name, init="lstsq", scale="mad", max_iter=2000)
    for name in sorted(LOSSES)
]


@parametrize_with_checks(_ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
