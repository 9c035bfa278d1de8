"""The fast paths give the plain path's results: fused, threaded and X^T X kernels."""

import math

import numpy as np
import pytest
from numba import njit
from sklearn.exceptions import ConvergenceWarning

from robustreg import LOSSES, GDRegressor, _compiled, _gd


def _data(n=3000, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 2, size=d) + 1.0
    y = X @ rng.normal(size=d) + 2.0 + rng.standard_t(2, size=n)
    return X, y


def _plain_value_grad(loss, X, y, theta, sigma=1.0):
    """The objective and gradient written out with the loss's own rho and psi (no fusion, no blocks)."""
    r = (y - X @ theta[:-1] - theta[-1]) / sigma
    psi = loss.psi(r)
    g = -np.r_[X.T @ psi, psi.sum()] / (sigma * len(y))
    return np.mean(loss.rho(r)), g


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_fused_kernel_equals_rho_and_psi_written_out(name, monkeypatch):
    monkeypatch.setattr(_gd, "_BLOCK_BYTES", 8 * 6 * 256)  # many blocks
    X, y = _data()
    loss = LOSSES[name]()
    design = _gd.Design(X, None, fit_intercept=True, standardize=False)
    assert len(design.blocks) > 4
    kernel = _gd.RowKernel(design, y, loss)
    kernel.sigma = 1.7
    theta = np.linspace(-1, 1, 7)
    f, g = kernel.value_grad(theta)
    f_ref, g_ref = _plain_value_grad(loss, X, y, theta, sigma=1.7)
    assert f == pytest.approx(f_ref, rel=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=1e-11, atol=1e-14 * np.abs(g_ref).max())


@pytest.mark.parametrize("name", ["l1", "huber", "pseudo_huber", "tukey"])
def test_threaded_pass_is_bit_for_bit_the_serial_pass(name, monkeypatch):
    X, y = _data(n=20_000)
    monkeypatch.setattr(_gd, "_BLOCK_BYTES", 8 * 6 * 500)
    serial = GDRegressor(name, max_iter=50, tol=0.0, init="lstsq" if name == "tukey" else "zeros").fit(X, y)
    monkeypatch.setattr(_gd, "_THREADED_BYTES", 0)
    monkeypatch.setattr(_gd.os, "cpu_count", lambda: 3)
    design = _gd.Design(X, None, True, False)
    assert _gd._pool_for(design)[1] == 3
    threaded = GDRegressor(name, max_iter=50, tol=0.0, init="lstsq" if name == "tukey" else "zeros").fit(X, y)
    assert np.array_equal(serial.coef_, threaded.coef_) and serial.intercept_ == threaded.intercept_
    assert serial.history_.equals(threaded.history_)


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("penalty", [None, "l2", "l1"])
def test_l2_on_x_transpose_x_equals_the_row_pass(standardize, penalty, monkeypatch):
    X, y = _data(seed=3)
    kw = dict(solver="gd", standardize=standardize, penalty=penalty, alpha=0.05, max_iter=300, tol=1e-9)
    gram = GDRegressor("l2", **kw).fit(X, y, coef_reference=np.arange(7.0))
    monkeypatch.setitem(_gd._TEST_HOOKS, "gram", False)
    row = GDRegressor("l2", **kw).fit(X, y, coef_reference=np.arange(7.0))
    np.testing.assert_allclose(gram.coef_, row.coef_, rtol=1e-10)
    assert gram.n_iter_ == row.n_iter_
    for col in ["objective", "grad_norm", "step", "coef_error"]:
        # Near the optimum the gradient is a difference of large sums: compare it on
        # the scale of the starting gradient (rounding is ~1e-16 of that scale).
        atol = 1e-12 * row.history_[col].abs().max()
        np.testing.assert_allclose(gram.history_[col], row.history_[col], rtol=1e-9, atol=atol, err_msg=col)


@pytest.mark.parametrize("name", ["l1", "l2", "huber", "pseudo_huber"])
def test_float32_pass_agrees_with_float64_to_single_precision(name):
    X, y = _data(n=5000, seed=5)
    kw = dict(max_iter=3000, tol=1e-7, n_iter_no_change=100)
    f64 = GDRegressor(name, **kw).fit(X, y)
    f32 = GDRegressor(name, dtype="float32", **kw).fit(X.astype(np.float32), y)
    assert f32.coef_.dtype == np.float64  # parameters stay float64
    scale = np.abs(f64.coef_).max()
    np.testing.assert_allclose(f32.coef_, f64.coef_, atol=2e-3 * scale)
    assert f32.objective_ == pytest.approx(f64.objective_, rel=1e-4)


# --- the compiled row pass (robustreg._compiled) -------------------------------------

COMPILED_LOSSES = sorted(LOSSES)  # every registered loss has a compiled form
# Barron's special shapes have branches of their own; 3.5 is convex and grows like |r|^3.5.
BARRON_SHAPES = [
    {"alpha": 0.0}, {"alpha": 2.0}, {"alpha": -math.inf}, {"alpha": -0.5},
    {"alpha": 3.5, "c": 2.0}, {"alpha": -7.0, "c": 0.3},
]


def _kernels(X, y, loss, sample_weight=None, standardize=True, sigma=1.0):
    """The numpy and the compiled row pass on one many-block design."""
    design = _gd.Design(X, sample_weight, True, standardize)
    numpy_pass = _gd.RowKernel(design, y, loss)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_gd, "_COMPILED_BYTES", 0)
        compiled = _gd.RowKernel(design, y, loss)
    assert numpy_pass._compiled is None
    for k in (numpy_pass, compiled):
        k.sigma = sigma
    return numpy_pass, compiled


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    ("name", "params"), [(name, {}) for name in COMPILED_LOSSES] + [("barron", kw) for kw in BARRON_SHAPES]
)
def test_compiled_pass_equals_the_numpy_pass(name, params, weighted, monkeypatch):
    monkeypatch.setattr(_gd, "_BLOCK_BYTES", 8 * 6 * 255)  # many blocks, odd row counts
    X, y = _data()
    sw = np.random.default_rng(1).uniform(0.2, 3.0, len(y)) if weighted else None
    loss = LOSSES[name](**params)
    numpy_pass, compiled = _kernels(X, y, loss, sw, sigma=1.7)
    assert compiled._compiled is not None
    theta = np.linspace(-1, 1, 7)
    f0, g0 = numpy_pass.value_grad(theta)
    f1, g1 = compiled.value_grad(theta)
    assert f1 == pytest.approx(f0, rel=1e-12)
    np.testing.assert_allclose(g1, g0, rtol=1e-11, atol=1e-13 * np.abs(g0).max())
    # And both against rho and psi written out (unweighted).
    if not weighted:
        design = _gd.Design(X, None, True, False)
        plain = _gd.RowKernel(design, y, loss)
        with monkeypatch.context() as mp:
            mp.setattr(_gd, "_COMPILED_BYTES", 0)
            k = _gd.RowKernel(design, y, loss)
        k.sigma = 1.7
        f_ref, g_ref = _plain_value_grad(loss, X, y, theta, sigma=1.7)
        f2, g2 = k.value_grad(theta)
        assert plain._compiled is None and k._compiled is not None
        assert f2 == pytest.approx(f_ref, rel=1e-12)
        np.testing.assert_allclose(g2, g_ref, rtol=1e-11, atol=1e-14 * np.abs(g_ref).max())


@pytest.mark.parametrize("name", COMPILED_LOSSES)
def test_compiled_pass_in_float32_agrees_to_single_precision(name, monkeypatch):
    monkeypatch.setattr(_gd, "_BLOCK_BYTES", 4 * 6 * 256)
    X, y = _data()
    X32 = X.astype(np.float32)
    numpy_pass, compiled = _kernels(X32, y, LOSSES[name]())
    assert compiled._compiled is not None and compiled.dtype == np.float32
    theta = np.linspace(-1, 1, 7)
    f0, g0 = numpy_pass.value_grad(theta)
    f1, g1 = compiled.value_grad(theta)
    assert f1 == pytest.approx(f0, rel=1e-5)
    np.testing.assert_allclose(g1, g0, rtol=1e-4, atol=1e-5 * np.abs(g0).max())


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", ["l1", "huber", "pseudo_huber", "tukey", "welsch", "cauchy", "barron"])
def test_fit_with_the_compiled_pass_equals_the_plain_fit(name, monkeypatch):
    """Whole gradient-descent runs (history included) agree to 1e-12 relative, threaded or not."""
    X, y = _data(n=20_000, seed=4)
    monkeypatch.setattr(_gd, "_BLOCK_BYTES", 8 * 6 * 500)
    kw = dict(solver="gd", max_iter=200, tol=0.0, init="zeros", momentum=0.9, nesterov=True)
    loss = LOSSES[name](**({"alpha": -0.5} if name == "barron" else {}))
    monkeypatch.setitem(_gd._TEST_HOOKS, "compiled", False)
    if loss.redescending:  # from a fit, on the residual scale
        # RLM's scale comes from the exact solver, to its tolerance (its path may differ at rounding
        # level between passes); both runs take that one scale, so that they are the same run.
        kw.update(init="lstsq")
        kw.update(scale=GDRegressor(loss, scale="mad", **kw).fit(X, y).scale_)
    plain = GDRegressor(loss, **kw).fit(X, y)
    monkeypatch.setitem(_gd._TEST_HOOKS, "compiled", True)
    monkeypatch.setattr(_gd, "_COMPILED_BYTES", 0)
    calls = []
    block_pass = _compiled.block_pass
    monkeypatch.setattr(_compiled, "block_pass", lambda *args: (calls.append(1), block_pass(*args))[1])
    fast = GDRegressor(loss, **kw).fit(X, y)
    assert len(calls) >= 200  # the fit did run on the compiled pass
    np.testing.assert_allclose(fast.coef_, plain.coef_, rtol=1e-12)
    assert fast.intercept_ == pytest.approx(plain.intercept_, rel=1e-12)
    assert fast.n_iter_ == plain.n_iter_
    np.testing.assert_allclose(fast.history_["objective"], plain.history_["objective"], rtol=1e-12)
    # Threads change nothing: each block is summed on its own, blocks in order.
    monkeypatch.setattr(_gd, "_THREADED_BYTES", 0)
    monkeypatch.setattr(_gd.os, "cpu_count", lambda: 3)
    threaded = GDRegressor(loss, **kw).fit(X, y)
    assert np.array_equal(threaded.coef_, fast.coef_) and threaded.intercept_ == fast.intercept_
    assert threaded.history_.equals(fast.history_)


def test_compiled_pass_lets_nan_and_inf_through(monkeypatch):
    """A diverging fit on the compiled pass is seen as diverged, as on the numpy pass."""
    monkeypatch.setattr(_gd, "_BLOCK_BYTES", 8 * 6 * 256)
    X, y = _data()
    _, compiled = _kernels(X, y, LOSSES["huber"]())
    with np.errstate(all="ignore"):
        f, g = compiled.value_grad(np.full(7, np.nan))
        assert np.isnan(f) and np.all(np.isnan(g))
        f, _ = compiled.value_grad(np.full(7, np.inf))
        assert not np.isfinite(f)
    monkeypatch.setattr(_gd, "_COMPILED_BYTES", 0)
    monkeypatch.setitem(_gd._TEST_HOOKS, "gram", False)  # the row pass, compiled
    model = GDRegressor("l2", solver="gd", learning_rate="constant", eta0=10.0, max_iter=500)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        model.fit(X, y)
    assert model.diverged_ and np.all(np.isfinite(model.coef_))


@njit
def _expm1_loop(x, e, m):
    for i in range(len(x)):
        e[i], m[i] = _compiled._expm1(x[i])


@njit
def _log1p_loop(t, out, inv):
    for i in range(len(t)):
        out[i], inv[i] = _compiled._log1p(t[i])


def _ulps(got, want):
    """Distance in units of the last place of ``want``; 0 where both are the same non-finite value."""
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(invalid="ignore"):
        return np.where(same, 0.0, np.abs(got - want) / np.spacing(np.abs(want)))


def test_vector_exp_expm1_and_log1p_are_numpys_to_a_few_ulps():
    """The compiled losses' exp, expm1 and log1p against numpy's, over the whole range, NaN and inf included."""
    rng = np.random.default_rng(0)
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, 709.78, 709.79, -708.5, -745.1, -746.0, 0.5 * math.log(2), 1e-300]
    x = np.concatenate(
        [rng.uniform(-760, 720, 50_000), rng.uniform(-2, 2, 50_000), rng.uniform(-1e-9, 1e-9, 1000), specials]
    )
    e, m = np.empty_like(x), np.empty_like(x)
    _expm1_loop(x, e, m)
    with np.errstate(over="ignore"):
        want_e, want_m = np.exp(x), np.expm1(x)
    tiny = np.finfo(float).tiny
    normal = np.abs(want_e) >= tiny  # below, results are subnormal: compare absolutely, in subnormal steps
    assert _ulps(e, want_e)[normal].max() <= 2
    assert np.abs(e - want_e)[~normal & (want_e >= 0)].max() <= 2 * 5e-324
    inf = np.isinf(want_e)
    assert np.array_equal(np.isnan(e), np.isnan(want_e)) and np.array_equal(e[inf], want_e[inf])
    assert _ulps(m, want_m).max() <= 2
    t = np.concatenate([rng.uniform(0, 1e-12, 1000), rng.uniform(0, 3, 50_000), 10 ** rng.uniform(-300, 308, 50_000),
                        [0.0, np.nan, np.inf, 1e-320, 2.0**-53, 1e308, np.finfo(float).max]])
    out, inv = np.empty_like(t), np.empty_like(t)
    _log1p_loop(t, out, inv)
    assert _ulps(out, np.log1p(t)).max() <= 3
    want_inv = 1.0 / (1.0 + t)
    normal = want_inv >= tiny
    assert _ulps(inv, want_inv)[normal].max() <= 3
    assert np.abs(inv - want_inv)[~normal & ~np.isnan(t)].max() <= 2 * 5e-324 and np.isnan(inv[np.isnan(t)]).all()


def test_a_users_own_loss_keeps_the_numpy_pass(monkeypatch):
    monkeypatch.setattr(_gd, "_COMPILED_BYTES", 0)
    monkeypatch.setattr(_gd, "_BLOCK_BYTES", 8 * 6 * 256)
    X, y = _data()
    design = _gd.Design(X, None, True, False)

    class Mine(type(LOSSES["welsch"]())):
        """A subclass is a loss of its own: its formulas may differ."""

    class MyHuber(type(LOSSES["huber"]())):
        """Nor does it inherit the fused numpy kernel: it gets its own rho and psi."""

    for name in LOSSES:
        assert _gd.RowKernel(design, y, LOSSES[name]())._compiled is not None
    assert _gd.RowKernel(design, y, Mine())._compiled is None
    mine = MyHuber()
    assert _gd.RowKernel(design, y, mine)._fused == mine._rho_psi_sum and mine.compiled_form() is None
    assert _gd.RowKernel(design, y, LOSSES["smooth_l1"](beta=0.0))._compiled == (_compiled._L1, 0.0, 0.0)
    # Fortran-ordered designs and the "compiled" test hook off keep it too.
    assert _gd.RowKernel(_gd.Design(np.asfortranarray(X), None, True, False), y, LOSSES["huber"]())._compiled is None
    monkeypatch.setitem(_gd._TEST_HOOKS, "compiled", False)
    assert _gd.RowKernel(design, y, LOSSES["huber"]())._compiled is None
