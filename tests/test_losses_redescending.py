"""The redescending losses and Barron's general loss: derivatives, limits, references, validation."""

import math

import numpy as np
import pytest
from scipy.differentiate import derivative
from statsmodels.robust import norms as sm_norms

from robustreg.losses import (
    LOSSES,
    BarronLoss,
    CauchyLoss,
    GemanMcClureLoss,
    L2Loss,
    PseudoHuberLoss,
    TukeyBiweightLoss,
    WelschLoss,
    get_loss,
)

NEG_INF = float("-inf")

# Every new loss, with default and non-default constants; Barron over its
# special shapes, generic shapes on both sides of 0, 1 and 2, and values
# within rounding of the removable singularities at 0 and 2.
CASES = {
    "tukey": TukeyBiweightLoss(),
    "tukey_c2": TukeyBiweightLoss(c=2.0),
    "welsch": WelschLoss(),
    "welsch_c1.5": WelschLoss(c=1.5),
    "cauchy": CauchyLoss(),
    "cauchy_c0.7": CauchyLoss(c=0.7),
    "geman_mcclure": GemanMcClureLoss(),
    "geman_mcclure_c2.5": GemanMcClureLoss(c=2.5),
    "barron_2": BarronLoss(alpha=2.0, c=1.3),
    "barron_2+1e-9": BarronLoss(alpha=2.0 + 1e-9, c=1.3),
    "barron_3": BarronLoss(alpha=3.0, c=1.3),
    "barron_1.5": BarronLoss(alpha=1.5, c=0.8),
    "barron_1": BarronLoss(alpha=1.0, c=1.3),
    "barron_0.5": BarronLoss(alpha=0.5, c=1.3),
    "barron_1e-9": BarronLoss(alpha=1e-9, c=1.3),
    "barron_0": BarronLoss(alpha=0.0, c=1.3),
    "barron_-1e-9": BarronLoss(alpha=-1e-9, c=1.3),
    "barron_-2": BarronLoss(alpha=-2.0, c=0.9),
    "barron_-5": BarronLoss(alpha=-5.0, c=1.3),
    "barron_-inf": BarronLoss(alpha=NEG_INF, c=1.3),
}
# Tukey's psi' jumps at |r| = c (rho is only twice differentiable there).
KINKS = {"tukey": [-4.685, 4.685], "tukey_c2": [-2.0, 2.0]}
GRID = np.linspace(-8, 8, 321) + 1e-3


def _away_from_kinks(name, r, margin=0.1):
    keep = np.ones_like(r, dtype=bool)
    for k in KINKS.get(name, []):
        keep &= np.abs(r - k) > margin
    return r[keep]


def _scale_of(loss):
    # rho'' is of order psi_deriv(0) = curvature at zero; tolerances follow it.
    return float(loss.psi_deriv(np.zeros(1))[0])


@pytest.mark.parametrize("name", sorted(CASES))
def test_psi_is_derivative_of_rho(name):
    loss = CASES[name]
    r = _away_from_kinks(name, GRID)
    # scipy's adaptive finite differences; the small first step keeps the stencil off the kinks.
    numeric = derivative(loss.rho, r, initial_step=1e-2).df
    np.testing.assert_allclose(loss.psi(r), numeric, rtol=1e-7, atol=1e-8 * _scale_of(loss))


@pytest.mark.parametrize("name", sorted(CASES))
def test_psi_deriv_is_derivative_of_psi(name):
    loss = CASES[name]
    r = _away_from_kinks(name, GRID)
    numeric = derivative(loss.psi, r, initial_step=1e-2).df
    np.testing.assert_allclose(loss.psi_deriv(r), numeric, rtol=1e-7, atol=1e-8 * _scale_of(loss))


@pytest.mark.parametrize("name", sorted(CASES))
def test_rho_zero_symmetry_and_weights(name):
    loss = CASES[name]
    zero = np.zeros(1)
    assert loss.rho(zero)[0] == 0.0
    assert loss.psi(zero)[0] == 0.0
    np.testing.assert_array_equal(loss.rho(GRID), loss.rho(-GRID))
    np.testing.assert_array_equal(loss.psi(GRID), -loss.psi(-GRID))
    assert np.all(loss.rho(GRID[GRID != 0]) > 0)
    np.testing.assert_allclose(loss.weights(GRID), loss.psi(GRID) / GRID, rtol=1e-12)
    # The weight at zero is the limit of psi(r) / r, which is rho''(0).
    eps = 1e-7
    assert loss.weights(zero)[0] == pytest.approx(loss.psi(np.array([eps]))[0] / eps, rel=1e-9)
    assert loss.weights(zero)[0] == pytest.approx(loss.psi_deriv(zero)[0], rel=1e-12)
    assert loss(GRID) == pytest.approx(np.mean(loss.rho(GRID)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_curvature_bound_is_sup_of_rho_second_derivative(name):
    loss = CASES[name]
    fine = np.linspace(-50, 50, 400_001)  # includes r = 0
    # rho'' from finite differences of psi, so that the bound is checked
    # against the loss itself and not against psi_deriv alone.
    rho2 = derivative(loss.psi, fine[::40], initial_step=1e-2).df
    if loss.curvature_bound == math.inf:
        # alpha > 2: rho grows like |r|^alpha, rho'' without bound.
        assert loss.alpha > 2
        assert loss.psi_deriv(np.array([1e6]))[0] > loss.psi_deriv(np.array([1e3]))[0] > loss.psi_deriv(np.zeros(1))[0]
        return
    assert loss.curvature_bound == pytest.approx(np.max(loss.psi_deriv(fine)), rel=1e-12)
    assert np.all(loss.psi_deriv(fine) <= loss.curvature_bound * (1 + 1e-12))
    assert np.all(rho2 <= loss.curvature_bound * (1 + 1e-7))


@pytest.mark.parametrize("name", sorted(CASES))
def test_flags_match_shape_of_psi(name):
    loss = CASES[name]
    assert loss.smooth is True and loss.scale_dependent is True
    # Convex exactly when rho'' >= 0 everywhere.
    wide = np.linspace(-200, 200, 40_001)
    assert loss.convex == bool(np.all(loss.psi_deriv(wide) >= -1e-15))
    # Redescending: psi tends to 0 far out.  Otherwise psi stays away from 0.
    peak = np.max(np.abs(loss.psi(wide)))
    far = abs(loss.psi(np.array([1e8]))[0])
    if loss.redescending:
        assert far < 1e-3 * peak
    else:
        assert far >= 0.99 * peak


def test_flags_of_named_losses():
    for cls in (TukeyBiweightLoss, WelschLoss, CauchyLoss, GemanMcClureLoss):
        loss = cls()
        assert (loss.convex, loss.redescending, loss.curvature_bound) == (False, True, 1.0)
    assert (BarronLoss(alpha=1.0).convex, BarronLoss(alpha=1.0).redescending) == (True, False)
    assert (BarronLoss(alpha=0.999).convex, BarronLoss(alpha=0.999).redescending) == (False, True)


def test_tukey_matches_statsmodels():
    r = np.linspace(-9, 9, 721)
    for c in (4.685, 1.5476, 3.0):
        ours, ref = TukeyBiweightLoss(c=c), sm_norms.TukeyBiweight(c=c)
        np.testing.assert_allclose(ours.rho(r), ref.rho(r), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(ours.psi(r), ref.psi(r), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(ours.weights(r), ref.weights(r), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(ours.psi_deriv(r), ref.psi_deriv(r), rtol=1e-13, atol=1e-15)
        assert ours.rho(np.array([10 * c]))[0] == pytest.approx(ref.max_rho())


def test_cauchy_matches_statsmodels_student_t_with_one_degree_of_freedom():
    # statsmodels' StudentT(c, df): rho = c^2 df / 2 log(1 + (r/c)^2 / df), so df = 1 is Cauchy.
    r = np.linspace(-9, 9, 721)
    for c in (2.385, 0.7):
        ours, ref = CauchyLoss(c=c), sm_norms.StudentT(c=c, df=1)
        np.testing.assert_allclose(ours.rho(r), ref.rho(r), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ours.psi(r), ref.psi(r), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(ours.weights(r), ref.weights(r), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(ours.psi_deriv(r), ref.psi_deriv(r), rtol=1e-12, atol=1e-14)


def test_welsch_and_geman_mcclure_closed_form_values():
    # statsmodels has neither; check the formulas at r = c, where u = 1.
    c = 2.985
    w = WelschLoss(c=c)
    one = np.array([c])
    assert w.rho(one)[0] == pytest.approx(c**2 / 2 * (1 - math.exp(-1)), rel=1e-14)
    assert w.psi(one)[0] == pytest.approx(c * math.exp(-1), rel=1e-14)
    assert w.psi_deriv(one)[0] == pytest.approx(-math.exp(-1), rel=1e-14)
    assert w.rho(np.array([1e3]))[0] == pytest.approx(c**2 / 2, rel=1e-14)  # bounded
    g = GemanMcClureLoss(c=c)
    assert g.rho(one)[0] == pytest.approx(c**2 / 4, rel=1e-14)
    assert g.psi(one)[0] == pytest.approx(c / 4, rel=1e-14)
    assert g.psi_deriv(one)[0] == pytest.approx(-2 / 8, rel=1e-14)
    assert g.rho(np.array([1e8]))[0] == pytest.approx(c**2 / 2, rel=1e-9)  # bounded


def test_default_tuning_constants_give_95_percent_efficiency():
    # Asymptotic efficiency at the normal model: E[psi']^2 / E[psi^2].  The
    # defaults are the literature's 95% constants (statsmodels' table for Tukey).
    from scipy import integrate, stats

    def efficiency(loss):
        phi = stats.norm.pdf
        num = integrate.quad(lambda z: loss.psi_deriv(np.array([z]))[0] * phi(z), -40, 40, points=[-5, 5])[0]
        den = integrate.quad(lambda z: loss.psi(np.array([z]))[0] ** 2 * phi(z), -40, 40, points=[-5, 5])[0]
        return num**2 / den

    for loss in (TukeyBiweightLoss(), WelschLoss(), CauchyLoss(), GemanMcClureLoss(c=3.787)):
        assert efficiency(loss) == pytest.approx(0.95, abs=1e-3)
    assert sm_norms.TukeyBiweight.get_tuning(eff=0.95)[0] == pytest.approx(TukeyBiweightLoss().c, abs=1e-3)
    # Geman-McClure's unit default is far less efficient, as its docstring says.
    assert efficiency(GemanMcClureLoss()) == pytest.approx(0.44, abs=0.01)


def _barron_paper(x, alpha, c):
    """Barron (2019), eq. (1), written out literally for generic alpha (not 0, 2, -inf)."""
    b = abs(alpha - 2.0)
    return b / alpha * (((x / c) ** 2 / b + 1.0) ** (alpha / 2.0) - 1.0)


@pytest.mark.parametrize("alpha", [3.0, 1.5, 0.5, -0.5, -3.0, -20.0])
def test_barron_matches_formula_of_the_paper(alpha):
    x = np.linspace(-6, 6, 241)
    np.testing.assert_allclose(BarronLoss(alpha=alpha, c=1.3).rho(x), _barron_paper(x, alpha, 1.3), rtol=1e-11)


# c^2 * Barron(alpha, c) is each classic loss in its own scaling (all equal r^2/2 near 0):
#   alpha =  2   : r^2 / 2                    (= L2Loss / 2)
#   alpha =  1   : PseudoHuberLoss(delta=c)    (Charbonnier)
#   alpha =  0   : CauchyLoss(c * sqrt(2))
#   alpha = -2   : GemanMcClureLoss(2 c)
#   alpha = -inf : WelschLoss(c * sqrt(2))
BARRON_SPECIAL = [
    (2.0, lambda c: L2Loss(), 0.5),
    (1.0, lambda c: PseudoHuberLoss(delta=c), 1.0),
    (0.0, lambda c: CauchyLoss(c=c * math.sqrt(2)), 1.0),
    (-2.0, lambda c: GemanMcClureLoss(c=2 * c), 1.0),
    (NEG_INF, lambda c: WelschLoss(c=c * math.sqrt(2)), 1.0),
]


@pytest.mark.parametrize("alpha,named,factor", BARRON_SPECIAL, ids=["L2", "pseudo_huber", "cauchy", "gm", "welsch"])
@pytest.mark.parametrize("c", [0.5, 1.0, 2.0])
def test_barron_special_cases_are_the_classic_losses(alpha, named, factor, c):
    x = np.linspace(-10, 10, 401)
    barron, ref = BarronLoss(alpha=alpha, c=c), named(c)
    np.testing.assert_allclose(c**2 * barron.rho(x), factor * ref.rho(x), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(c**2 * barron.psi(x), factor * ref.psi(x), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(c**2 * barron.psi_deriv(x), factor * ref.psi_deriv(x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "alpha,limit,tol",
    [(2.0 + 1e-9, 2.0, 1e-7), (2.0 - 1e-9, 2.0, 1e-7), (1e-9, 0.0, 1e-7), (-1e-9, 0.0, 1e-7), (-1e6, NEG_INF, 1e-5)],
)
def test_barron_is_continuous_in_alpha_at_its_singularities(alpha, limit, tol):
    # Differences relative to the size of each function on the grid; for
    # alpha = -1e6 the exact gap to alpha = -inf is of order u^4 / |alpha|.
    x = np.linspace(-8, 8, 321)
    near, at = BarronLoss(alpha=alpha, c=1.3), BarronLoss(alpha=limit, c=1.3)
    for f in ("rho", "psi", "psi_deriv"):
        ref = getattr(at, f)(x)
        assert np.max(np.abs(getattr(near, f)(x) - ref)) <= tol * np.max(np.abs(ref))


def test_barron_curvature_bound_and_flags():
    assert BarronLoss(alpha=0.0, c=2.0).curvature_bound == pytest.approx(0.25)
    assert BarronLoss(alpha=2.0, c=2.0).curvature_bound == pytest.approx(0.25)
    assert BarronLoss(alpha=2.5).curvature_bound == math.inf
    assert BarronLoss(alpha=2.5).convex and not BarronLoss(alpha=2.5).redescending
    assert not BarronLoss(alpha=NEG_INF).convex and BarronLoss(alpha=NEG_INF).redescending


def test_registry_and_params():
    expected = {
        "tukey": (TukeyBiweightLoss, {"c": 4.685}),
        "welsch": (WelschLoss, {"c": 2.985}),
        "cauchy": (CauchyLoss, {"c": 2.385}),
        "geman_mcclure": (GemanMcClureLoss, {"c": 1.0}),
        "barron": (BarronLoss, {"alpha": 1.0, "c": 1.0}),
    }
    for name, (cls, params) in expected.items():
        assert LOSSES[name] is cls
        loss = get_loss(name)
        assert isinstance(loss, cls) and loss.params() == params
    assert get_loss("barron", alpha=NEG_INF, c=2.0).params() == {"alpha": NEG_INF, "c": 2.0}
    assert get_loss("tukey", c=3.0) == TukeyBiweightLoss(c=3.0)
    assert repr(BarronLoss(alpha=-2.0, c=0.5)) == "BarronLoss(alpha=-2.0, c=0.5)"


@pytest.mark.parametrize("cls", [TukeyBiweightLoss, WelschLoss, CauchyLoss, GemanMcClureLoss, BarronLoss])
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "2", True])
def test_invalid_c_is_rejected_with_its_value(cls, bad):
    with pytest.raises(ValueError, match=r"^c=.* is invalid; allowed: a finite real number in \(0, inf\)$") as info:
        cls(c=bad)
    assert repr(float(bad) if isinstance(bad, float) else bad) in str(info.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1", None, False])
def test_invalid_barron_alpha_is_rejected_with_its_value(bad):
    with pytest.raises(ValueError, match=r"^alpha=.* is invalid; allowed: a finite real number or float\('-inf'\)$"):
        BarronLoss(alpha=bad)
