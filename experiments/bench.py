"""Speed benchmarks, measured side by side in one run and printed as ratios.

``make bench`` runs it.  Sections:

* ``gd``: per-iteration time of full-batch gradient descent for every loss,
  beside two plain BLAS matrix-vector products (``X @ w`` and ``X.T @ g``) and
  an equivalent PyTorch CPU loop (when ``torch`` is importable), and the peak
  memory of a fit relative to the size of X.

* ``tts``: time to solution.  One fixed Huber objective (``delta = 1.345``
  at a fixed ``sigma = 1``, the noise scale) on n = 1e5, d = 20 with 10%
  vertical outliers, the design whitened and its columns scaled so that
  ``cond(X^T X / n)`` is exactly 1 and 1e4.  Against an exact reference
  minimizer (L-BFGS-B in standardized coordinates, then Newton steps, to
  ~1e-14), the time each solver takes to come within 1e-6 in standardized
  units (max over coefficients of ``|w_j - w*_j| sd(X_j) / sd(y)`` and
  ``|b - b*| / sd(y)``): ``GDRegressor(HuberLoss(1.345), scale=1.0)`` at its
  defaults, and scipy's L-BFGS-B on the raw X (analytic gradient, from
  zero) at the loosest decade ``ftol``/``gtol`` whose result is within
  1e-6; and the time of scikit-learn's ``HuberRegressor`` and statsmodels'
  ``RLM`` (their own estimators, sigma estimated: time only).  L1:
  ``GDRegressor("l1")`` against ``QuantileRegressor(solver="highs")`` at
  n = 1e4 (HiGHS takes minutes at n = 1e5), with the distance between the
  two.  Each solver is timed as the best of ``--repeat`` rounds, the solvers
  interleaved within a round (one round where a run takes over 30 s); the
  ratios are the targets, marked met or not.  BLAS on one thread.
* ``sweeps``: per-job cost of a sweep beside a trivial Hydra task.
* ``aggregation``: collecting job records with histories, as the report does.

Per-iteration times are differences of two fits with different ``max_iter``
(same setup cost), the best of several repeats.  ``--only SECTION`` runs one
section.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
from concurrent.futures import ThreadPoolExecutor

from numba import njit

import robustreg._gd
from robustreg import GDRegressor
from robustreg.estimator import blas_threads
from robustreg.losses import BarronLoss

CONVEX = ["l1", "l2", "smooth_l1", "huber", "pseudo_huber"]
#: Every registered loss; Barron's at a shape of its own (at alpha = 1 it is pseudo-Huber).
BENCHED = CONVEX + ["tukey", "welsch", "cauchy", "geman_mcclure", "barron"]
BENCHED_AS = {"barron": BarronLoss(alpha=-0.5)}
ROOT = Path(__file__).resolve().parents[1]


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _problem(n, d, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = (X @ rng.standard_normal(d) + rng.standard_normal(n)).astype(dtype)
    return X, y


def _fit(X, y, loss, k, use_gram=True, **kw):
    model = GDRegressor(loss, solver="gd", learning_rate="constant", eta0=1e-3, max_iter=k, tol=0.0, record_history=False, **kw)
    model._certify = False  # the end-of-fit certificate is no iteration
    hooks = robustreg._gd._TEST_HOOKS
    saved, hooks["gram"] = hooks["gram"], use_gram  # False: the row pass, even for L2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)
    finally:
        hooks["gram"] = saved


def per_iteration(X, y, loss, repeat, k1=5, k2=25, use_gram=True, **kw):
    """Per-iteration time: the difference of two fits with different ``max_iter`` (same setup cost)."""
    return (_best(lambda: _fit(X, y, loss, k2, use_gram, **kw), repeat)
            - _best(lambda: _fit(X, y, loss, k1, use_gram, **kw), repeat)) / (k2 - k1)


def per_iteration_paired(X, y, loss, one, repeat, k1=5, k2=165, **kw):
    """``(per-iteration time, its ratio to one pass)``, the ratio paired in time.

    Memory bandwidth on a shared machine drifts by tens of percent within
    seconds, so each repeat times the pass right before and after each fit and
    divides by the median of those passes; the ratio reported is the median
    over repeats, the time the best.
    """
    _fit(X, y, loss, 2, **kw)  # first use: loads the compiled pass (and compiles it on a new machine)
    times, ratios = [], []
    for _ in range(repeat):
        passes = [one.time() for _ in range(3)]
        t1 = _timed_call(lambda: _fit(X, y, loss, k1, **kw))
        passes += [one.time() for _ in range(3)]
        t2 = _timed_call(lambda: _fit(X, y, loss, k2, **kw))
        passes += [one.time() for _ in range(3)]
        t = (t2 - t1) / (k2 - k1)
        times.append(t)
        ratios.append(t / float(np.median(passes)))
    return min(times), float(np.median(ratios))


def _timed_call(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def two_matvecs(X, y, repeat, threads):
    w = np.ones(X.shape[1], dtype=X.dtype)
    g = np.ones(X.shape[0], dtype=X.dtype)
    with blas_threads(threads):
        return _best(lambda: (X @ w, X.T @ g), repeat * 3)


def torch_loop(X, y, loss, repeat, k=None):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    fns = {
        "l1": torch.nn.L1Loss(),
        "l2": torch.nn.MSELoss(),
        "smooth_l1": torch.nn.SmoothL1Loss(beta=1.0),
        "huber": torch.nn.HuberLoss(delta=1.0),
        "pseudo_huber": lambda p, t: torch.mean(torch.sqrt(1 + (p - t) ** 2) - 1),
    }
    fn = fns[loss]
    k = k or (20 if X.shape[0] >= 100_000 else 500)

    def run():
        w = torch.zeros(X.shape[1], dtype=Xt.dtype, requires_grad=True)
        b = torch.zeros(1, dtype=Xt.dtype, requires_grad=True)
        opt = torch.optim.SGD([w, b], lr=1e-3)
        for _ in range(k):
            opt.zero_grad()
            out = fn(Xt @ w + b, yt)
            out.backward()
            opt.step()

    return _best(run, repeat) / k


def peak_memory_ratio(X, y, loss, dtype="float64"):
    """(size of X + peak bytes allocated during a fit) / size of X."""
    gc.collect()
    tracemalloc.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GDRegressor(loss, solver="gd", max_iter=3, tol=0.0, dtype=dtype).fit(X, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (X.nbytes + peak) / X.nbytes


@njit(nogil=True, cache=True)
def _read_rows(X, a, b, acc):
    """Sum rows a..b of X into acc: a compiled read of every element, once."""
    for i in range(a, b):
        for j in range(X.shape[1]):
            acc[j] += X[i, j]


class StreamingPass:
    """The fastest single read of X found, timed again whenever asked.

    Candidates: ``X.T @ g`` on 1 or all BLAS threads; the same by row blocks on
    all cores; a compiled loop that adds up the rows, by row blocks on all cores.
    Memory bandwidth on a shared machine drifts, so the GD timings are
    interleaved with new timings of the pass and divided by the fastest pass
    seen in the whole section.
    """

    def __init__(self, X):
        self.X = X
        self.g = np.ones(X.shape[0], dtype=X.dtype)
        rows = max(64, (1 << 21) // (X.itemsize * X.shape[1]))
        self.blocks = [(a, min(a + rows, len(X))) for a in range(0, len(X), rows)]
        n_threads = os.cpu_count() or 1
        cuts = np.linspace(0, len(self.blocks), n_threads + 1).astype(int)
        self.runs = [range(a, b) for a, b in zip(cuts[:-1], cuts[1:])]
        self.pool = ThreadPoolExecutor(n_threads)
        self.best = math.inf
        self.how = ""

    def _blas_part(self, ks):
        acc = np.zeros(self.X.shape[1])
        for k in ks:
            a, b = self.blocks[k]
            acc += self.X[a:b].T @ self.g[a:b]

    def _compiled_part(self, ks):
        acc = np.zeros(self.X.shape[1], dtype=self.X.dtype)
        for k in ks:
            _read_rows(self.X, *self.blocks[k], acc)

    def measure(self, repeat):
        X, g = self.X, self.g
        candidates = {
            "X.T @ g, 1 BLAS thread": (lambda: X.T @ g, 1),
            "X.T @ g, default BLAS threads": (lambda: X.T @ g, None),
            "X.T @ g by row blocks, all cores": (lambda: list(self.pool.map(self._blas_part, self.runs)), 1),
            "compiled row sum by row blocks, all cores": (lambda: list(self.pool.map(self._compiled_part, self.runs)), 1),
        }
        for how, (fn, threads) in candidates.items():
            with blas_threads(threads):
                fn()
                t = _best(fn, repeat)
            if t < self.best:
                self.best, self.how, self._fastest = t, how, (fn, threads)
        return self.best

    def time(self):
        """One timing of the fastest way found."""
        fn, threads = self._fastest
        with blas_threads(threads):
            t = _timed_call(fn)
        self.best = min(self.best, t)
        return t


def in_cache_block(X, y):
    """``(X_b, y_b, w)``: about 256 KB of rows (they stay in the second-level cache) and their least-squares fit."""
    rows = max(64, (256 << 10) // (X.itemsize * X.shape[1]))
    Xc, yc = np.ascontiguousarray(X[:rows]), np.ascontiguousarray(y[:rows])
    return Xc, yc, np.linalg.lstsq(Xc, yc, rcond=None)[0].astype(X.dtype)


def compute_per_row(block, spec):
    """Seconds per row of the compiled pass on one core over ``block`` (see :func:`in_cache_block`).

    The block is passed over again and again at its least-squares fit
    (residuals as near the end of a fit), with no memory traffic: this is the
    pass's arithmetic alone.  A pass over a large X can be no faster than this
    times the rows per core, whatever the memory does.  None where the loss
    has no compiled pass.
    """
    from robustreg import _compiled
    from robustreg.losses import get_loss

    code = _compiled.loss_code(get_loss(spec))
    if code is None:
        return None
    Xc, yc, w = block
    rows, d = Xc.shape
    parts, gXs, gsums = np.empty(1), np.empty((1, d), dtype=Xc.dtype), np.empty(1)
    calls = 4

    def run():
        for _ in range(calls):
            _compiled.block_pass(Xc, yc, None, w, 0.0, 1.0, *code, rows, 0, 1, parts, gXs, gsums)

    run()
    # Many short timings, the best kept: a neighbour on the machine only ever adds time.
    return _best(run, 100) / (calls * rows)


def _time_compute(block, specs, best):
    """One more timing of :func:`compute_per_row` for each ``label: spec``; ``best`` keeps the least."""
    for label, spec in specs.items():
        t_row = compute_per_row(block, spec)
        if t_row is not None:
            best[label] = min(best.get(label, math.inf), t_row)


def bench_gd(sizes, repeat):
    print("## GD kernel: per-iteration time of full-batch gradient descent\n")
    print("Every loss, in float64 and float32; the target is GD <= 1.5x one streaming pass over X at n = 1e6.\n"
          "The pass is the fastest read of X found.  At n = 1e6 each fit is timed between timings of the pass,\n"
          "and '/ one pass' is the median over repeats of the per-iteration time over the median pass around it\n"
          "(memory bandwidth here drifts by tens of percent within seconds); times are the best seen.\n"
          "'compute' is the compiled pass's arithmetic alone: its time per row on one core with the rows in\n"
          "cache, at the least-squares fit (the best of timings spread over the section).  'budget' is the\n"
          "time per row per core that 1.5 passes allow (1.5 x the best pass x the cores / n).  Where compute\n"
          "comes near or over the budget, the pass is bound by arithmetic, not by memory, and no overlap\n"
          "with the read of X can bring it under 1.5 passes.\n")
    for n, d in sizes:
        for dtype in (np.float64, np.float32):
            X, y = _problem(n, d, dtype=dtype)
            name = np.dtype(dtype).name
            mv1 = two_matvecs(X, y, repeat, 1)
            mvd = two_matvecs(X, y, repeat, None)
            mv = min(mv1, mvd)
            one = StreamingPass(X)
            one.measure(repeat * 3)
            results = []
            compute, best_row = {}, {}
            block = in_cache_block(X, y) if n >= 100_000 else None  # the target size only
            cores = os.cpu_count() or 1
            for loss, gram in [(loss, True) for loss in BENCHED] + [("l2", False)]:
                label = loss if loss != "l2" else ("l2 (X^T X path)" if gram else "l2 (row pass)")
                spec = BENCHED_AS.get(loss, loss)
                if gram and loss == "l2":
                    # O(p^2) per iteration: many iterations, no pairing with the pass.
                    t = per_iteration(X, y, spec, repeat, k2=2005, dtype=name)
                    ratio = t / one.best
                elif n >= 100_000:
                    t, ratio = per_iteration_paired(X, y, spec, one, repeat + 2, use_gram=gram, dtype=name)
                else:
                    t = per_iteration(X, y, spec, repeat, k2=1005, use_gram=gram, dtype=name)
                    ratio = t / one.measure(repeat)
                tt = torch_loop(X, y, loss, repeat) if (gram and loss in CONVEX) else None
                mem = peak_memory_ratio(X, y, spec, name) if gram and n >= 100_000 else float("nan")
                results.append((label, t, ratio, tt, mem))
                if n >= 100_000 and not (gram and loss == "l2"):
                    compute[label] = spec
                # The arithmetic of every loss so far, timed again after each fit: the
                # neighbours on a shared machine come and go, and the quietest moment counts.
                _time_compute(block, compute, best_row)
            for _ in range(5):  # and a few rounds more, so that the last loss has as many as the first
                _time_compute(block, compute, best_row)
            print(f"### n = {n:.0e}, d = {d}, {name}  (X is {X.nbytes / 1e6:.0f} MB)\n")
            print(f"two BLAS matvecs X@w + X.T@g: {mv1 * 1e3:.3f} ms with 1 thread, {mvd * 1e3:.3f} ms with the default "
                  f"threads; one streaming pass over X (fastest way found, {one.how}): best {one.best * 1e3:.3f} ms\n")
            budget = 1.5 * one.best * cores / n
            if n >= 100_000:
                print(f"budget per row per core for 1.5 passes ({cores} cores): {budget * 1e9:.2f} ns\n")
            print("| loss | GD per iteration (ms) | / one pass | / two matvecs | PyTorch loop (ms) | PyTorch / GD "
                  "| peak memory / size of X | compute (ns/row, one core) | compute / budget |")
            print("|---|---|---|---|---|---|---|---|---|")
            for label, t, ratio, tt, mem in results:
                cpr = best_row.get(label)
                torch_txt = "" if tt is None else f"{tt * 1e3:.3f}"
                ratio_txt = "" if tt is None else f"{tt / t:.1f}x"
                mem_txt = "" if np.isnan(mem) else f"{mem:.2f}"
                cpr_txt = "" if cpr is None else f"{cpr * 1e9:.2f} | {cpr / budget:.2f}"
                cpr_txt = cpr_txt or " | "
                print(f"| {label} | {t * 1e3:.3f} | {ratio:.2f} | {t / mv:.2f} | {torch_txt} | {ratio_txt} | {mem_txt} "
                      f"| {cpr_txt} |")
            print()
            sys.stdout.flush()
            del X, y, one, block
            gc.collect()


# ---------------------------------------------------------------- time to solution
TTS_DELTA = 1.345  # Huber's constant, in units of sigma
TTS_SIGMA = 1.0  # the fixed sigma: the noise scale of the data below
TTS_TOL = 1e-6  # the distance to the minimizer that counts as solved (standardized units)
TTS_L1_TOL = 1e-4  # L1: the agreement with HiGHS's vertex required
TTS_LONG = 30.0  # seconds: a run longer than this is timed once
#: The decade grid of L-BFGS-B's stopping tolerances searched (0: that test off).
TTS_LBFGS_GRID = [10.0**-k for k in range(3, 17)] + [0.0]


def _tts_problem(n, d, cond, seed=0):
    """``(X, y)``: whitened Gaussian columns times log-spaced scales, so that ``cond(X^T X / n) = cond`` exactly.

    The columns are centred and orthogonalized (``X^T X / n`` is then the
    diagonal of the squared scales, and with the intercept column the
    condition number is the same); the slopes are ``N(0, 1) / scale``, so that
    every feature moves y alike; noise N(0, 1), and 10% of the responses
    shifted up by 10 to 20 noise scales (vertical outliers).
    """
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d))
    Z -= Z.mean(axis=0)
    Q, _ = np.linalg.qr(Z)
    scales = np.logspace(0.0, 0.5 * math.log10(cond), d)
    X = np.ascontiguousarray(Q * (math.sqrt(n) * scales))
    y = X @ (rng.standard_normal(d) / scales) + 0.5 + rng.standard_normal(n)
    bad = rng.random(n) < 0.1
    y[bad] += rng.uniform(10.0, 20.0, int(bad.sum()))
    return X, y


def _huber_value_grad(theta, X, y, delta=TTS_DELTA, sigma=TTS_SIGMA):
    """``mean huber((y - X w - b) / sigma)`` and its gradient in ``theta = (w, b)``: the objective every solver minimizes."""
    r = (y - X @ theta[:-1] - theta[-1]) / sigma
    a = np.abs(r)
    f = float(np.mean(np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))))
    psi = np.clip(r, -delta, delta)
    g = np.empty_like(theta)
    g[:-1] = X.T @ psi
    g[-1] = psi.sum()
    g *= -1.0 / (len(y) * sigma)
    return f, g


def _std_distance(w, b, ref, sx, sy):
    """Max over coefficients of ``|w_j - w*_j| sd(X_j)``, and ``|b - b*|``, over ``sd(y)``."""
    return max(float(np.max(np.abs(np.asarray(w) - ref[0]) * sx)), abs(float(b) - ref[1])) / sy


def huber_reference(X, y, delta=TTS_DELTA, sigma=TTS_SIGMA):
    """The exact minimizer of :func:`_huber_value_grad`: ``((w*, b*), info)``.

    L-BFGS-B in standardized coordinates (centred, unit-variance columns:
    well conditioned whatever X is) with ``gtol = 1e-13``, then Newton steps
    on the quadratic zone's Gram matrix, halved while they do not decrease
    the objective, until a step is below 1e-14 standardized units (Huber's
    objective is piecewise quadratic: Newton ends exactly once the set of
    rows in the quadratic zone stops changing).
    """
    from scipy.optimize import minimize

    n = len(y)
    m, sx, sy = X.mean(axis=0), X.std(axis=0), float(np.std(y))
    Z = np.column_stack([(X - m) / sx, np.ones(n)])

    def value_grad(t):
        return _huber_value_grad(t, Z[:, :-1], y, delta, sigma)

    res = minimize(value_grad, np.zeros(Z.shape[1]), jac=True, method="L-BFGS-B",
                   options=dict(ftol=0.0, gtol=1e-13, maxiter=100_000, maxfun=200_000))
    t = res.x
    last = math.inf
    for k in range(1, 51):
        r = (y - Z @ t) / sigma
        quad = np.abs(r) <= delta
        H = Z[quad].T @ Z[quad] / (n * sigma**2)
        g = -(Z.T @ np.clip(r, -delta, delta)) / (n * sigma)
        step = np.linalg.solve(H, g)
        f0, a = value_grad(t)[0], 1.0
        while value_grad(t - a * step)[0] > f0 and a > 1e-6:
            a *= 0.5
        t = t - a * step
        last = float(np.max(np.abs(step))) / sy
        if last < 1e-14:
            break
    w = t[:-1] / sx
    return (w, float(t[-1] - m @ w)), {"lbfgs_nit": int(res.nit), "newton": k, "last_step": last}


def _lbfgs(X, y, ftol, gtol, callback=None):
    from scipy.optimize import minimize

    return minimize(_huber_value_grad, np.zeros(X.shape[1] + 1), args=(X, y), jac=True, method="L-BFGS-B",
                    callback=callback, options=dict(ftol=ftol, gtol=gtol, maxiter=100_000, maxfun=200_000))


def lbfgs_settings(X, y, ref, target=TTS_TOL):
    """The decade ``(ftol, gtol)`` of :data:`TTS_LBFGS_GRID` that stops L-BFGS-B soonest within ``target`` of ``ref``.

    The tolerances only decide where L-BFGS-B stops, not its path: one run
    with both tests off records every iterate, and the stopping point of each
    setting follows (the first iterate where the objective's relative
    reduction is at most ``ftol`` or the gradient's largest entry at most
    ``gtol``).  Among the settings whose stopping point is within ``target``,
    the one with the fewest iterations (then the loosest) is returned, as
    ``(ftol, gtol, predicted iterations, predicted distance)``; when none is,
    the setting that stops nearest the minimizer, and the caller reports the
    distance reached.  (The caller runs it again to check.)
    """
    sx, sy = X.std(axis=0), float(np.std(y))
    f0, g0 = _huber_value_grad(np.zeros(X.shape[1] + 1), X, y)
    path = [(f0, float(np.max(np.abs(g0))), math.inf)]

    def record(intermediate_result):
        x = intermediate_result.x
        f, g = _huber_value_grad(x, X, y)
        path.append((f, float(np.max(np.abs(g))), _std_distance(x[:-1], x[-1], ref, sx, sy)))

    _lbfgs(X, y, 0.0, 0.0, callback=record)
    options = []
    for ftol in TTS_LBFGS_GRID:
        for gtol in TTS_LBFGS_GRID:
            stop = len(path) - 1  # both tests off: the end of the recorded run
            if path[0][1] <= gtol:
                stop = 0
            else:
                for k in range(1, len(path)):
                    fold, f = path[k - 1][0], path[k][0]
                    if path[k][1] <= gtol or fold - f <= ftol * max(abs(fold), abs(f), 1.0):
                        stop = k
                        break
            options.append((ftol, gtol, stop, path[stop][2]))
    within = [o for o in options if o[3] <= target]
    if within:
        return min(within, key=lambda o: (o[2], -o[0], -o[1]))
    return min(options, key=lambda o: (o[3], o[2]))


def _interleaved(solvers, rounds, long=TTS_LONG):
    """Time ``{name: fn}`` in rounds, the solvers in turn within each round.

    Returns ``{name: (best seconds, rounds run, the last result, the warnings' first lines)}``;
    a solver whose first run takes over ``long`` seconds is not run again.
    """
    out = {}
    for k in range(rounds):
        for name, fn in solvers.items():
            if k and out[name][1] == 1 and out[name][0] > long:
                continue
            gc.collect()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                t = time.perf_counter()
                result = fn()
                t = time.perf_counter() - t
            notes = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:90]}" for w in caught})
            best, done = out.get(name, (math.inf, 0, None, None))[:2]
            out[name] = (min(best, t), done + 1, result, notes)
    return out


def _cond(X):
    return float(np.linalg.cond(X.T @ X / len(X)))


def _fmt_cond(c):
    return f"{c:.3g}"


def bench_tts(quick, repeat):
    import statsmodels.api as sm
    from sklearn.linear_model import HuberRegressor, QuantileRegressor

    from robustreg.losses import HuberLoss

    n, n_l1, d = (10_000, 2_000, 20) if quick else (100_000, 10_000, 20)
    conds = [1.0, 1e4]
    rounds = max(1, repeat)
    print("## Time to solution: exact minimizers of Huber and L1, beside scipy, scikit-learn, statsmodels\n")
    print(f"n = {n:.0e}, d = {d}, 10% vertical outliers (responses shifted up by 10-20 noise scales), whitened "
          "Gaussian columns times log-spaced scales\n(cond(X^T X / n) exactly as stated).  The objective: "
          f"mean huber_{TTS_DELTA}((y - Xw - b) / sigma) at the fixed sigma = {TTS_SIGMA} (the noise scale).  "
          f"Distance: max_j |w_j - w*_j| sd(X_j) / sd(y)\nand |b - b*| / sd(y), to the reference minimizer "
          "(L-BFGS-B in standardized coordinates, gtol 1e-13, then Newton steps).  Times: the best of "
          f"{rounds} rounds,\nthe solvers interleaved within a round (1 round for a run over {TTS_LONG:.0f} s); "
          "BLAS on one thread.  HuberRegressor and RLM are their own\nestimators (sigma estimated jointly or by "
          "the MAD): their times only.  L-BFGS-B runs on the raw X from zero, at the loosest decade\n"
          f"ftol/gtol whose result is within {TTS_TOL:g} (found from one run to the end: the tolerances only "
          "choose where it stops).\n")
    rows, targets = [], []
    t_section = time.perf_counter()

    def ours_huber():
        return GDRegressor(HuberLoss(TTS_DELTA), scale=TTS_SIGMA, record_history=False).fit(X, y)

    with blas_threads(1):
        # First use of every solver (imports, compiled kernels), untimed.
        Xw, yw = _tts_problem(2000, d, 10.0, seed=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            GDRegressor(HuberLoss(TTS_DELTA), scale=TTS_SIGMA, record_history=False).fit(Xw, yw)
            GDRegressor("l1", record_history=False).fit(Xw, yw)
            _lbfgs(Xw, yw, 1e-9, 1e-9)
            HuberRegressor(epsilon=TTS_DELTA, alpha=0.0).fit(Xw, yw)
            sm.RLM(yw, sm.add_constant(Xw), M=sm.robust.norms.HuberT()).fit()
            QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(Xw[:300], yw[:300])

        for cond in conds:
            X, y = _tts_problem(n, d, cond)
            c = _cond(X)
            sx, sy = X.std(axis=0), float(np.std(y))
            ref, info = huber_reference(X, y)
            check = GDRegressor(HuberLoss(TTS_DELTA), scale=TTS_SIGMA, tol=1e-12, record_history=False).fit(X, y)
            print(f"cond {_fmt_cond(c)}: reference after {info['lbfgs_nit']} L-BFGS-B iterations and {info['newton']} "
                  f"Newton steps (last step {info['last_step']:.1e}); GDRegressor at tol = 1e-12 is "
                  f"{_std_distance(check.coef_, check.intercept_, ref, sx, sy):.1e} from it "
                  f"({check.n_iter_} iterations, certificate {check.optimality_:.1e})\n")
            ftol, gtol, nit_pred, _ = lbfgs_settings(X, y, ref)
            huber_max_iter = 10_000
            timed = _interleaved({
                "ours": ours_huber,
                "lbfgs": lambda: _lbfgs(X, y, ftol, gtol),
                "huberreg": lambda: HuberRegressor(epsilon=TTS_DELTA, alpha=0.0, max_iter=huber_max_iter).fit(X, y),
                "rlm": lambda: sm.RLM(y, sm.add_constant(X), M=sm.robust.norms.HuberT()).fit(),
            }, rounds)
            t_ours, k_ours, m, notes = timed["ours"]
            dist_ours = _std_distance(m.coef_, m.intercept_, ref, sx, sy)
            rows.append(("GDRegressor(HuberLoss(1.345), scale=1.0), defaults (solver='auto', tol=1e-6)", c, n, t_ours,
                         k_ours, f"{dist_ours:.1e}",
                         f"n_iter_ {m.n_iter_}, converged_ {m.converged_}, optimality_ {m.optimality_:.1e}"
                         + "".join(f"; {w}" for w in notes)))
            targets.append((f"GDRegressor within {TTS_TOL:g} of the minimizer", c, f"{dist_ours:.1e}",
                            f"<= {TTS_TOL:g}", dist_ours <= TTS_TOL))
            t_lb, k_lb, r, notes = timed["lbfgs"]
            dist_lb = _std_distance(r.x[:-1], r.x[-1], ref, sx, sy)
            pred = "" if r.nit == nit_pred else f" (predicted {nit_pred} iterations)"
            rows.append((f"scipy L-BFGS-B, raw X, ftol={ftol:g}, gtol={gtol:g}", c, n, t_lb, k_lb, f"{dist_lb:.1e}",
                         f"nit {r.nit}{pred}, nfev {r.nfev}; {r.message}" + "".join(f"; {w}" for w in notes)))
            if dist_lb > TTS_TOL:
                rows[-1] = rows[-1][:6] + (rows[-1][6] + f"; NOT within {TTS_TOL:g}: no decade setting reaches it",)
            t_h, k_h, h, notes = timed["huberreg"]
            rows.append((f"sklearn HuberRegressor(epsilon=1.345, alpha=0, max_iter={huber_max_iter})", c, n, t_h, k_h,
                         "(own estimator)", f"n_iter_ {h.n_iter_}, scale_ {h.scale_:.3f}"
                         + "".join(f"; {w}" for w in notes)))
            t_r, k_r, rr, notes = timed["rlm"]
            rows.append(("statsmodels RLM(y, add_constant(X), M=HuberT()).fit()", c, n, t_r, k_r, "(own estimator)",
                         f"{rr.fit_history['iteration']} IRLS iterations, scale {rr.scale:.3f}"
                         + "".join(f"; {w}" for w in notes)))
            targets.append(("L-BFGS-B / ours (ours faster)", c, f"{t_lb / t_ours:.2f}", "> 1", t_lb > t_ours))
            targets.append(("HuberRegressor / ours", c, f"{t_h / t_ours:.2f}", ">= 5", t_h >= 5 * t_ours))
            targets.append(("RLM / ours", c, f"{t_r / t_ours:.2f}", ">= 20", t_r >= 20 * t_ours))
            del X, y
            gc.collect()

        for cond in conds:
            X, y = _tts_problem(n_l1, d, cond)
            c = _cond(X)
            sx, sy = X.std(axis=0), float(np.std(y))
            timed = _interleaved({
                "ours": lambda: GDRegressor("l1", record_history=False).fit(X, y),
                "highs": lambda: QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(X, y),
            }, rounds)
            t_ours, k_ours, m, notes = timed["ours"]
            t_q, k_q, q, qnotes = timed["highs"]
            dist = _std_distance(m.coef_, m.intercept_, (q.coef_, q.intercept_), sx, sy)
            rows.append(("GDRegressor('l1'), defaults (solver='auto', tol=1e-6)", c, n_l1, t_ours, k_ours,
                         f"{dist:.1e} (to HiGHS)",
                         f"n_iter_ {m.n_iter_}, converged_ {m.converged_}, duality gap {m.optimality_:.1e}"
                         + "".join(f"; {w}" for w in notes)))
            rows.append(("sklearn QuantileRegressor(quantile=0.5, alpha=0, solver='highs')", c, n_l1, t_q, k_q,
                         "(the reference)", f"n_iter_ {q.n_iter_}" + "".join(f"; {w}" for w in qnotes)))
            targets.append((f"L1: GDRegressor within {TTS_L1_TOL:g} of HiGHS", c, f"{dist:.1e}", f"<= {TTS_L1_TOL:g}",
                            dist <= TTS_L1_TOL))
            targets.append(("L1: QuantileRegressor / ours", c, f"{t_q / t_ours:.2f}", "> 1", t_q > t_ours))
            del X, y
            gc.collect()

    print("| solver | cond(X^T X / n) | n | time (s) | rounds | distance (std units) | notes |")
    print("|---|---|---|---|---|---|---|")
    for name, c, nn, t, k, dist, note in rows:
        print(f"| {name} | {_fmt_cond(c)} | {nn:.0e} | {t:.3f} | {k} | {dist} | {note} |")
    print()
    print("| target | cond(X^T X / n) | value | target | met |")
    print("|---|---|---|---|---|")
    for name, c, value, goal, met in targets:
        print(f"| {name} | {_fmt_cond(c)} | {value} | {goal} | {'met' if met else 'NOT met'} |")
    if not quick:
        print(f"\nL1 at n = {n_l1:.0e}: HiGHS at n = 1e5 ran over 240 s in a trial (more than a minute), so the L1 "
              "comparison is at the smaller n.")
    print(f"\nSection time: {time.perf_counter() - t_section:.0f} s\n")
    sys.stdout.flush()


TRIVIAL_APP = """
import hydra

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    return 0

if __name__ == "__main__":
    main()
"""


def _timed(cmd, env=None, cwd=None):
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return wall


def _fit_seconds(sweep: Path) -> float:
    return sum(json.loads(p.read_text())["fit_seconds"] for p in sweep.rglob("metrics.json"))


def bench_sweeps(n_jobs_trivial, n_big):
    """Per-job cost of the framework beside a trivial Hydra task, and a sweep of small fits end to end."""
    print("## Sweeps: per-job cost beside Hydra's own, and a sweep of small fits end to end\n")
    run = [sys.executable, str(ROOT / "experiments" / "run.py")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "ROBUSTREG_ROOT": str(tmp)}
        app = tmp / "trivial.py"
        app.write_text(TRIVIAL_APP)
        n = n_jobs_trivial
        # Start-up (imports, the first composition) is paid once per sweep: take the
        # difference between a sweep of n jobs and one of a single job.
        def per_job(cmd_for):
            one = _timed(cmd_for(1, tmp / "a"), env=env, cwd=tmp)
            many = _timed(cmd_for(n, tmp / "b"), env=env, cwd=tmp)
            return (many - one) / (n - 1)

        trivial = per_job(lambda k, d: [sys.executable, str(app), "-m", f"+x=range({k})", f"hydra.sweep.dir={d}"])
        tiny = ["dataset.n_train=50", "dataset.n_test=10", "dataset.n_features=2", "model.max_iter=5", "model.record_history=false"]
        rows = []
        for label, launcher in [
            ("robustreg, Hydra's basic launcher", ["hydra/launcher=basic"]),
            ("robustreg, its own launcher, in process", ["hydra.launcher.n_jobs=1"]),
            ("robustreg, its own launcher, 2 workers", ["hydra.launcher.n_jobs=2"]),
        ]:
            for d in ("a", "b"):
                shutil.rmtree(tmp / d, ignore_errors=True)
            cost = per_job(lambda k, d: run + ["-m", f"seed=range({k})", *tiny, *launcher, f"hydra.sweep.dir={d}"])
            fits = _fit_seconds(tmp / "b") / n
            rows.append((label, cost, fits))
        print(f"trivial Hydra task, basic launcher: {trivial * 1e3:.1f} ms per job ({n} jobs)\n")
        print("| sweep of tiny fits | wall per job (ms) | of which fitting (ms) | overhead beyond the trivial Hydra job (ms) |")
        print("|---|---|---|---|")
        for label, cost, fits in rows:
            print(f"| {label} | {cost * 1e3:.1f} | {fits * 1e3:.1f} | {(cost - fits - trivial) * 1e3:+.1f} |")
        print()
        if n_big:
            study = tmp / "contamination"
            wall = _timed(run + ["experiment=contamination", "hydra.launcher.n_jobs=-1", f"hydra.sweep.dir={study}"],
                          env=env, cwd=tmp)
            print(f"the contamination study ({len(list(study.rglob('metrics.json')))} jobs), own launcher, all cores: "
                  f"{wall:.1f} s end to end\n")
            big = tmp / "big"
            wall = _timed(run + ["-m", f"seed=range({n_big})", "dataset.n_train=2000", "dataset.n_test=200",
                                 "dataset.n_features=10", "loss=huber", f"hydra.sweep.dir={big}"], env=env, cwd=tmp)
            done = len(list(big.rglob("metrics.json")))
            print(f"sweep of {n_big} fits (n_train = 2000, d = 10, huber), own launcher, all cores: "
                  f"{wall:.1f} s end to end, {done} records; the same jobs through the basic launcher would take about "
                  f"{n_big * (rows[0][1]) + _fit_seconds(big):.0f} s (its per-job cost above, plus these fits)\n")


def bench_aggregation(n_records):
    """Collect n_records job records with histories, as the report does."""
    from robustreg.report import collect, write_histories

    print("## Aggregation: reading job records with histories into tables\n")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "ROBUSTREG_ROOT": str(tmp)}
        src = tmp / "src"
        # Histories of 300 iterations each, as a converging sweep writes.
        subprocess.run([sys.executable, str(ROOT / "experiments" / "run.py"), "experiment=smoke", "model.tol=0",
                        "model.n_iter_no_change=1000", f"hydra.sweep.dir={src}"],
                       env=env, cwd=tmp, check=True, capture_output=True)
        templates = [(json.loads(p.read_text()), (p.parent / "history.parquet").read_bytes()) for p in sorted(src.rglob("metrics.json"))]
        sweep = tmp / "sweep"
        rows = 0
        for i in range(n_records):
            rec, hist = templates[i % len(templates)]
            job = f"copy={i // len(templates)}/{rec['job_dir']}"
            folder = sweep / job
            folder.mkdir(parents=True)
            (folder / "metrics.json").write_text(json.dumps({**rec, "job_dir": job, "seed": i}))
            (folder / "history.parquet").write_bytes(hist)
        os.sync()
        t = time.perf_counter()
        coll = collect(sweep, progress=False)
        first = time.perf_counter() - t
        t = time.perf_counter()
        coll = collect(sweep, progress=False)
        second = time.perf_counter() - t
        consolidated = tmp / "histories.parquet"  # what the report writes
        write_histories(coll, consolidated)
        t = time.perf_counter()
        coll = collect(sweep, progress=False, consolidated=consolidated)
        third = time.perf_counter() - t
        rows = len(coll.histories)
        print(f"{n_records} records, {rows} history rows: collected in {first:.2f} s (first read), {second:.2f} s "
              f"(again, every history file read again), {third:.2f} s (with the report's histories.parquet of the "
              "earlier collection: unchanged histories come from that one file)\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["gd", "tts", "sweeps", "aggregation"], default=None)
    args = parser.parse_args(argv)
    sizes = [(10_000, 10)] if args.quick else [(1_000_000, 20), (10_000, 10)]
    if args.only in (None, "gd"):
        bench_gd(sizes, args.repeat)
    if args.only in (None, "tts"):
        bench_tts(args.quick, args.repeat)
    if args.only in (None, "sweeps"):
        bench_sweeps(20 if args.quick else 100, 0 if args.quick else 1000)
    if args.only in (None, "aggregation"):
        bench_aggregation(500 if args.quick else 10_000)


if __name__ == "__main__":
    main()
