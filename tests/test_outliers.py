"""Contamination models: counts, nesting, reproducibility, geometry and input checks."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from robustreg.datasets import load_dataset
from robustreg.outliers import OUTLIER_KINDS, inject

CORRUPTING = ("vertical", "leverage", "mixed", "heavy_tail")


def _clean(n=200, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.array([1.0, 3.0, 0.5][:d] + [1.0] * max(0, d - 3))
    y = 1.0 + X @ np.arange(1.0, d + 1) + rng.normal(size=n)
    return X, y


def _changed(X, y, X_c, y_c):
    return np.any(X_c != X, axis=1) | (y_c != y)


def _ols(X, y):
    return np.linalg.lstsq(np.column_stack([np.ones(len(X)), X]), y, rcond=None)[0]


def test_kinds():
    assert OUTLIER_KINDS == ("none", "vertical", "leverage", "mixed", "heavy_tail")


# --------------------------------------------------------------------------- counts and masks


@pytest.mark.parametrize("kind", CORRUPTING)
@pytest.mark.parametrize("n", [7, 200, 201])
@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.1, 0.25, 1 / 3, 0.49])
def test_count_is_round_fraction_n_and_mask_is_the_changed_rows(kind, n, fraction):
    X, y = _clean(n)
    X_c, y_c, mask = inject(X, y, kind, fraction, seed=3)
    assert mask.dtype == bool and mask.shape == (n,)
    assert mask.sum() == round(fraction * n)
    np.testing.assert_array_equal(_changed(X, y, X_c, y_c), mask)


@pytest.mark.parametrize("kind, fraction", [("none", 0.3), ("vertical", 0.0), ("leverage", 0.0), ("mixed", 0.001)])
def test_nothing_to_corrupt_returns_unchanged_copies(kind, fraction):
    X, y = _clean(100)
    X_c, y_c, mask = inject(X, y, kind, fraction)
    np.testing.assert_array_equal(X_c, X)
    np.testing.assert_array_equal(y_c, y)
    assert not mask.any() and mask.shape == (100,)
    assert not np.shares_memory(X_c, X) and not np.shares_memory(y_c, y)


# --------------------------------------------------------------------------- nested, paired design


@pytest.mark.parametrize("kind", CORRUPTING)
def test_corruption_is_nested_across_fractions(kind):
    X, y = _clean(300)
    fractions = [0.02, 0.05, 0.1, 0.2, 0.3, 0.45]
    runs = [inject(X, y, kind, f, seed=11) for f in fractions]
    for (Xa, ya, ma), (Xb, yb, mb) in zip(runs, runs[1:]):
        assert np.all(mb[ma]), "rows corrupted at the smaller fraction must stay corrupted"
        np.testing.assert_array_equal(Xa[ma], Xb[ma])
        np.testing.assert_array_equal(ya[ma], yb[ma])
        np.testing.assert_array_equal(Xb[~mb], X[~mb])
        np.testing.assert_array_equal(yb[~mb], y[~mb])


def test_corruption_order_is_shared_by_all_kinds():
    X, y = _clean(150)
    masks = [inject(X, y, kind, 0.2, seed=5)[2] for kind in CORRUPTING]
    for m in masks[1:]:
        np.testing.assert_array_equal(m, masks[0])


def test_same_seed_same_arrays_other_seed_other_rows():
    X, y = _clean(200)
    for kind in CORRUPTING:
        a = inject(X, y, kind, 0.2, seed=9)
        b = inject(X, y, kind, 0.2, seed=9)
        c = inject(X, y, kind, 0.2, seed=10)
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
        assert not np.array_equal(a[2], c[2])


# Builds data, contaminates it with every kind and prints one digest: run here
# and in a fresh interpreter, the digests must agree.
DIGEST_CODE = """
import hashlib
import numpy as np
from robustreg.datasets import load_dataset
from robustreg.outliers import inject

def digest():
    ds = load_dataset("synthetic", n_train=120, n_test=10, n_features=4, noise="student_t", seed=7)
    h = hashlib.sha256()
    for kind in ("vertical", "leverage", "mixed", "heavy_tail"):
        X_c, y_c, mask = inject(ds.X_train, ds.y_train, kind, 0.25, magnitude=8.0, seed=13,
                                noise_scale=ds.noise_scale, y_signal=ds.y_signal_train)
        for a in (X_c, y_c, mask):
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()
"""


def test_same_seed_same_arrays_across_processes(tmp_path):
    namespace = {}
    exec(DIGEST_CODE, namespace)
    here = namespace["digest"]()
    out = subprocess.run(
        [sys.executable, "-c", DIGEST_CODE + "\nprint(digest())"],
        capture_output=True, text=True, check=True, cwd=tmp_path, timeout=120,
    )
    assert out.stdout.strip() == here


def test_dataset_round_trip_leaves_inputs_and_test_split_untouched():
    ds = load_dataset("synthetic", n_train=100, n_test=40, seed=2)
    before = {k: getattr(ds, k).copy() for k in ("X_train", "y_train", "X_test", "y_test", "y_signal_train")}
    for kind in CORRUPTING:
        X_c, y_c, mask = inject(ds.X_train, ds.y_train, kind, 0.3, seed=1,
                                noise_scale=ds.noise_scale, y_signal=ds.y_signal_train)
        assert mask.any()
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(ds, k), v)
    # The clean data of a data seed do not depend on any contamination setting.
    again = load_dataset("synthetic", n_train=100, n_test=40, seed=2)
    np.testing.assert_array_equal(again.X_train, before["X_train"])
    np.testing.assert_array_equal(again.y_test, before["y_test"])


# --------------------------------------------------------------------------- vertical


def test_vertical_shift_is_magnitude_times_noise_scale_and_leaves_X():
    X, y = _clean(200)
    X_c, y_c, mask = inject(X, y, "vertical", 0.3, magnitude=4.0, seed=2, noise_scale=0.5)
    np.testing.assert_array_equal(X_c, X)
    shift = y_c[mask] - y[mask]
    np.testing.assert_allclose(np.abs(shift), 4.0 * 0.5, rtol=1e-12)
    assert (shift > 0).any() and (shift < 0).any()  # symmetric: both signs among 60 rows


def test_vertical_one_sided_and_default_scale_is_std_y():
    X, y = _clean(200)
    _, y_c, mask = inject(X, y, "vertical", 0.2, magnitude=3.0, seed=4, side="one_sided")
    np.testing.assert_allclose(y_c[mask] - y[mask], 3.0 * np.std(y), rtol=1e-12)


# --------------------------------------------------------------------------- leverage


@pytest.mark.parametrize("kind", ["leverage", "mixed"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_leverage_raises_the_largest_eigenvalue_of_the_gram_matrix(kind, seed):
    X, y = _clean(200, seed=seed)
    lam = np.linalg.eigvalsh(X.T @ X / len(X))[-1]
    lams = []
    for magnitude in (5.0, 10.0, 20.0):
        X_c, _, _ = inject(X, y, kind, 0.1, magnitude=magnitude, seed=seed)
        lams.append(np.linalg.eigvalsh(X_c.T @ X_c / len(X))[-1])
    assert lams[0] > lam
    # The leverage rows enter X^T X / n quadratically in the distance.
    assert lams[0] < lams[1] < lams[2]


def test_leverage_points_lie_far_out_on_a_different_linear_model():
    X, y = _clean(400, d=3)
    m, sigma = 10.0, 1.0
    X_c, y_c, mask = inject(X, y, "leverage", 0.1, magnitude=m, seed=6, noise_scale=sigma)
    # Far out: the standardized distance from the clean centre is about m.
    t = (X_c[mask] - X.mean(axis=0)) / X.std(axis=0)
    dist = np.linalg.norm(t, axis=1)
    assert np.all(dist > m / 2) and np.median(dist) == pytest.approx(m, rel=0.2)
    # Different model: remove each row's clean residual, then the corrupted
    # rows lie exactly on one hyperplane, about m^2 * sigma off the clean fit,
    # with slopes off by m * sigma / sd(x) along one direction.
    b = _ols(X, y)
    e = y - (b[0] + X @ b[1:])
    z = y_c[mask] - e[mask]
    A = np.column_stack([np.ones(mask.sum()), X_c[mask]])
    g, *_ = np.linalg.lstsq(A, z, rcond=None)
    np.testing.assert_allclose(A @ g, z, atol=1e-8)
    assert np.linalg.norm((g[1:] - b[1:]) * X.std(axis=0)) == pytest.approx(m * sigma, rel=1e-8)
    off = np.abs(z - (b[0] + X_c[mask] @ b[1:]))
    assert np.mean(off) == pytest.approx(m**2 * sigma, rel=0.2)


@pytest.mark.parametrize("share", [0.0, 0.3, 0.5, 1.0])
def test_mixed_splits_leverage_and_vertical_rows(share):
    X, y = _clean(200)
    X_c, y_c, mask = inject(X, y, "mixed", 0.3, magnitude=5.0, seed=8, noise_scale=2.0, leverage_share=share)
    k = round(0.3 * 200)
    moved = np.any(X_c != X, axis=1)
    assert moved.sum() == math.floor(k * share + 0.5)
    assert not np.any(moved & ~mask)
    vertical = mask & ~moved
    np.testing.assert_allclose(np.abs(y_c[vertical] - y[vertical]), 10.0, rtol=1e-12)


# --------------------------------------------------------------------------- heavy tails


@pytest.mark.parametrize("tail, df, dist", [
    ("cauchy", 1.0, stats.cauchy(scale=0.5)),
    ("student_t", 3.0, stats.t(df=3.0, scale=0.5)),
])
def test_heavy_tail_replaces_the_noise_with_the_stated_distribution(tail, df, dist):
    ds = load_dataset("synthetic", n_train=10000, n_test=0, n_features=2, noise_scale=0.5, seed=4)
    X_c, y_c, mask = inject(ds.X_train, ds.y_train, "heavy_tail", 0.45, seed=3, tail=tail, df=df,
                            noise_scale=ds.noise_scale, y_signal=ds.y_signal_train)
    np.testing.assert_array_equal(X_c, ds.X_train)
    np.testing.assert_array_equal(y_c[~mask], ds.y_train[~mask])
    new_noise = y_c[mask] - ds.y_signal_train[mask]
    assert stats.kstest(new_noise, dist.cdf).pvalue > 1e-3


def test_heavy_tail_without_signal_adds_the_draw_and_one_sided_is_positive():
    X, y = _clean(4000)
    _, y_c, mask = inject(X, y, "heavy_tail", 0.4, seed=2, noise_scale=2.0, side="one_sided")
    added = y_c[mask] - y[mask]
    assert np.all(added > 0)
    assert stats.kstest(added, stats.halfcauchy(scale=2.0).cdf).pvalue > 1e-3


# --------------------------------------------------------------------------- bad input

X10, Y10 = _clean(10)


@pytest.mark.parametrize("args, kwargs, message", [
    ((X10, Y10, "gross", 0.1), {}, "kind='gross' is invalid; allowed: 'none', 'vertical', 'leverage', 'mixed', 'heavy_tail'"),
    ((X10, Y10, "vertical", 0.5), {}, "fraction=0.5 is invalid; allowed: a finite real number in [0, 0.5)"),
    ((X10, Y10, "vertical", -0.1), {}, "fraction=-0.1 is invalid; allowed: a finite real number in [0, 0.5)"),
    ((X10, Y10, "vertical", float("nan")), {}, "fraction=nan is invalid; allowed: a finite real number in [0, 0.5)"),
    ((X10, Y10, "vertical", "0.1"), {}, "fraction='0.1' is invalid; allowed: a finite real number in [0, 0.5)"),
    ((X10, Y10, "vertical", 0.1, 0.0), {}, "magnitude=0.0 is invalid; allowed: a finite real number in (0, inf)"),
    ((X10, Y10, "vertical", 0.1, 10.0, -1), {}, "seed=-1 is invalid; allowed: an integer >= 0"),
    ((X10, Y10, "vertical", 0.1), {"side": "up"}, "side='up' is invalid; allowed: 'symmetric', 'one_sided'"),
    ((X10, Y10, "vertical", 0.1), {"noise_scale": 0.0},
     "noise_scale=0.0 is invalid; allowed: a finite real number in (0, inf)"),
    ((X10, Y10, "heavy_tail", 0.1), {"tail": "normal"}, "tail='normal' is invalid; allowed: 'cauchy', 'student_t'"),
    ((X10, Y10, "heavy_tail", 0.1), {"df": -1.0}, "df=-1.0 is invalid; allowed: a finite real number in (0, inf)"),
    ((X10, Y10, "mixed", 0.1), {"leverage_share": 1.5},
     "leverage_share=1.5 is invalid; allowed: a finite real number in [0, 1]"),
    ((X10, Y10, "heavy_tail", 0.1), {"y_signal": np.zeros(3)},
     "y_signal with shape (3,) is invalid; allowed: shape (10,), one value per row of X"),
    ((X10[:, 0], Y10, "vertical", 0.1), {},
     "X with shape (10,) is invalid; allowed: a 2-D array with at least 1 row and 1 column"),
    ((np.where(np.eye(10, 3) == 1, np.nan, X10), Y10, "vertical", 0.1), {},
     "X contains NaN or infinite values; allowed: finite values only"),
    ((X10, Y10[:9], "vertical", 0.1), {}, "y with shape (9,) is invalid; allowed: shape (10,), one value per row of X"),
    ((X10, np.r_[Y10[:9], np.inf], "vertical", 0.1), {}, "y contains NaN or infinite values; allowed: finite values only"),
    ((X10, np.ones(10), "vertical", 0.1), {},
     "noise_scale=None is invalid when y is constant (std(y) = 0); allowed: a number > 0"),
])
def test_bad_input_gets_its_message(args, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        inject(*args, **kwargs)
