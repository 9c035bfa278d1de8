"""The fast paths give the plain path's results: fused, threaded and X^T X kernels."""

import numpy as np
import pytest

from robustreg import GDRegressor, LOSSES
from robustreg import _gd


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
def test_l2_on_x_transpose_x_equals_the_row_pass(standardize, penalty):
    X, y = _data(seed=3)
    kw = dict(standardize=standardize, penalty=penalty, alpha=0.05, max_iter=300, tol=1e-9)
    gram = GDRegressor("l2", **kw).fit(X, y, coef_reference=np.arange(7.0))
    row = GDRegressor("l2", **kw)
    row._use_gram = False
    row.fit(X, y, coef_reference=np.arange(7.0))
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
