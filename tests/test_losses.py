"""The convex loss family: derivatives, symmetry, reference values, validation."""

import numpy as np
import pytest
from scipy.special import huber as scipy_huber

from robustreg.losses import (
    LOSSES,
    HuberLoss,
    L1Loss,
    L2Loss,
    PseudoHuberLoss,
    SmoothL1Loss,
    get_loss,
)

CONVEX = {
    "l1": L1Loss(),
    "l2": L2Loss(),
    "smooth_l1": SmoothL1Loss(beta=0.7),
    "huber": HuberLoss(delta=1.3),
    "pseudo_huber": PseudoHuberLoss(delta=0.8),
}
# Kinks where psi jumps or rho'' jumps: keep numeric derivatives away from them.
KINKS = {"l1": [0.0], "smooth_l1": [-0.7, 0.7], "huber": [-1.3, 1.3]}
GRID = np.linspace(-5, 5, 401) + 1e-3


def _away_from_kinks(name, r, margin=1e-4):
    keep = np.ones_like(r, dtype=bool)
    for k in KINKS.get(name, []):
        keep &= np.abs(r - k) > margin
    return r[keep]


@pytest.mark.parametrize("name", sorted(CONVEX))
def test_psi_is_numeric_derivative_of_rho(name):
    loss = CONVEX[name]
    r = _away_from_kinks(name, GRID)
    h = 1e-6
    numeric = (loss.rho(r + h) - loss.rho(r - h)) / (2 * h)
    np.testing.assert_allclose(loss.psi(r), numeric, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["l2", "smooth_l1", "huber", "pseudo_huber"])
def test_psi_deriv_is_numeric_derivative_of_psi(name):
    loss = CONVEX[name]
    r = _away_from_kinks(name, GRID, margin=1e-3)
    h = 1e-6
    numeric = (loss.psi(r + h) - loss.psi(r - h)) / (2 * h)
    np.testing.assert_allclose(loss.psi_deriv(r), numeric, rtol=1e-5, atol=1e-6)
    # The curvature bound used for step sizes is the supremum of rho''.
    assert loss.curvature_bound == pytest.approx(np.max(loss.psi_deriv(np.linspace(-5, 5, 100001))))


@pytest.mark.parametrize("name", sorted(CONVEX))
def test_rho_zero_symmetry_and_weights(name):
    loss = CONVEX[name]
    assert loss.rho(np.array([0.0]))[0] == 0.0
    assert loss.psi(np.array([0.0]))[0] == 0.0
    np.testing.assert_array_equal(loss.rho(GRID), loss.rho(-GRID))
    np.testing.assert_array_equal(loss.psi(GRID), -loss.psi(-GRID))
    np.testing.assert_allclose(loss.weights(GRID), loss.psi(GRID) / GRID, rtol=1e-12)
    assert loss(GRID) == pytest.approx(np.mean(loss.rho(GRID)))


@pytest.mark.parametrize("name", ["l2", "smooth_l1", "huber", "pseudo_huber"])
def test_weight_at_zero_is_the_limit(name):
    loss = CONVEX[name]
    eps = 1e-7
    assert loss.weights(np.array([0.0]))[0] == pytest.approx(loss.psi(np.array([eps]))[0] / eps, rel=1e-6)


@pytest.mark.parametrize("beta", [0.1, 1.0, 2.5])
def test_smooth_l1_matches_scipy_huber(beta):
    # scipy.special.huber(delta, r) = 0.5 r^2 if |r| <= delta else delta (|r| - delta/2);
    # PyTorch's SmoothL1Loss(beta) is that divided by beta.
    loss = SmoothL1Loss(beta=beta)
    np.testing.assert_allclose(loss.rho(GRID), scipy_huber(beta, GRID) / beta, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("delta", [0.1, 1.0, 2.5])
def test_huber_matches_scipy_and_is_delta_times_smooth_l1(delta):
    loss = HuberLoss(delta=delta)
    np.testing.assert_allclose(loss.rho(GRID), scipy_huber(delta, GRID), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(loss.rho(GRID), delta * SmoothL1Loss(beta=delta).rho(GRID), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(loss.psi(GRID), delta * SmoothL1Loss(beta=delta).psi(GRID), rtol=1e-13)


def test_smooth_l1_tends_to_l1_and_beta_zero_is_exactly_l1():
    l1 = L1Loss()
    np.testing.assert_array_equal(SmoothL1Loss(beta=0).rho(GRID), l1.rho(GRID))
    np.testing.assert_array_equal(SmoothL1Loss(beta=0).psi(GRID), l1.psi(GRID))
    assert SmoothL1Loss(beta=0).psi(np.array([0.0]))[0] == 0.0
    assert not SmoothL1Loss(beta=0).smooth and SmoothL1Loss(beta=0).curvature_bound is None
    for beta in [1e-2, 1e-4, 1e-6]:
        # |SmoothL1_beta - L1| <= beta / 2 everywhere.
        assert np.max(np.abs(SmoothL1Loss(beta=beta).rho(GRID) - l1.rho(GRID))) <= beta / 2 + 1e-15


def test_pseudo_huber_closed_form_and_limits():
    delta = 0.8
    loss = PseudoHuberLoss(delta=delta)
    # The direct formula cancels near 0 (absolute error ~1e-16), hence atol.
    np.testing.assert_allclose(loss.rho(GRID), delta**2 * (np.sqrt(1 + (GRID / delta) ** 2) - 1), rtol=1e-12, atol=1e-14)
    small = np.array([1e-5])
    assert loss.rho(small)[0] == pytest.approx(0.5 * small[0] ** 2, rel=1e-8)  # quadratic near 0
    big = np.array([1e6])
    assert loss.psi(big)[0] == pytest.approx(delta, rel=1e-8)  # psi bounded by delta


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SmoothL1Loss(beta=-1), "beta=-1"),
        (lambda: HuberLoss(delta=0), "delta=0"),
        (lambda: HuberLoss(delta=float("nan")), "delta=nan"),
        (lambda: PseudoHuberLoss(delta=-0.5), "delta=-0.5"),
        (lambda: SmoothL1Loss(beta="a"), "beta='a'"),
    ],
)
def test_invalid_parameters_raise_with_name_value_and_range(make, message):
    with pytest.raises(ValueError, match="allowed") as info:
        make()
    assert message in str(info.value)


def test_registry_builds_and_validates_names():
    for name in ["l1", "l2", "smooth_l1", "huber", "pseudo_huber"]:
        assert name in LOSSES
        assert get_loss(name).name == name
    assert get_loss("huber", delta=2.0).delta == 2.0
    with pytest.raises(ValueError, match="unknown loss 'foo'; allowed: .*huber"):
        get_loss("foo")


# Every registered loss at its default constant, and Barron's shapes on both sides of alpha = 2.
_IRLS_CASES = [(name, {}) for name in sorted(LOSSES)] + [
    ("barron", {"alpha": a}) for a in (-np.inf, -2.0, 0.0, 0.5, 1.0, 2.0, 3.5)]


@pytest.mark.parametrize("name, params", _IRLS_CASES)
def test_irls_majorizes_means_the_weighted_quadratic_lies_above_rho(name, params):
    # irls_majorizes claims rho(r) <= rho(r0) + w(r0) (r^2 - r0^2) / 2 with w = psi/r, at every r0 and r:
    # checked on a grid that reaches far into the tails; a loss that does not claim it is not checked.
    loss = LOSSES[name](**params)
    if not loss.irls_majorizes:
        assert name in ("l1", "l2") or (name == "barron" and params.get("alpha", 1.0) > 2.0)
        return
    r0 = np.r_[np.linspace(-12.0, 12.0, 241), 1e-6, 50.0, -300.0][:, None]
    r = np.r_[np.linspace(-15.0, 15.0, 601), 1e3, -1e3][None, :]
    bound = loss.rho(r0) + 0.5 * loss.weights(r0) * (r**2 - r0**2)
    gap = loss.rho(np.broadcast_to(r, bound.shape)) - bound
    assert np.max(gap) <= 1e-12 * (1.0 + np.max(np.abs(bound))), np.unravel_index(np.argmax(gap), gap.shape)
