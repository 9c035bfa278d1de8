"""scikit-learn's own estimator checks, for every registered loss, and the losses' constants in searches."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from robustreg import LOSSES, GDRegressor, get_loss
from robustreg.losses import HuberLoss

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


def _heavy_tailed(seed=0, n=240):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, 1.0 + X @ [2.0, -1.0, 0.5] + rng.standard_t(2, size=n)


def test_a_grid_search_over_a_loss_constant_picks_what_cross_validation_of_each_picks():
    """``loss__delta`` on a loss given by name: the search equals a loop over explicit loss objects."""
    X, y = _heavy_tailed()
    deltas = [0.5, 1.345, 3.0]
    cv = KFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(GDRegressor(loss="huber"), {"loss__delta": deltas}, cv=cv).fit(X, y)
    by_hand = [cross_val_score(GDRegressor(loss=HuberLoss(delta=d)), X, y, cv=cv).mean() for d in deltas]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], by_hand, rtol=1e-12)
    assert search.best_params_ == {"loss__delta": deltas[int(np.argmax(by_hand))]}
    assert search.best_estimator_.loss == HuberLoss(delta=search.best_params_["loss__delta"])


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_clone_and_deep_params_agree_for_every_loss(name):
    est = GDRegressor(loss=get_loss(name))
    deep = est.get_params(deep=True)
    assert {k for k in deep if k.startswith("loss__")} == {f"loss__{k}" for k in get_loss(name).params()}
    copy = clone(est)
    assert copy.loss == est.loss and copy.loss is not est.loss
    assert copy.get_params(deep=True) == deep


def test_a_constant_the_loss_does_not_have_is_one_clear_error():
    with pytest.raises(ValueError, match=r"^beta is not a parameter of HuberLoss; allowed: delta$"):
        GDRegressor(loss="huber").set_params(loss__beta=1.0)
    with pytest.raises(ValueError, match=r"delta=-1.0|delta=-1"):
        GDRegressor(loss="huber").set_params(loss__delta=-1.0)
