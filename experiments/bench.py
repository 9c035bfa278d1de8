"""Speed benchmarks, measured side by side in one run and printed as ratios.

``make bench`` runs it.  Sections:

* ``gd``: per-iteration time of full-batch gradient descent for every loss,
  beside two plain BLAS matrix-vector products (``X @ w`` and ``X.T @ g``) and
  an equivalent PyTorch CPU loop (when ``torch`` is importable), and the peak
  memory of a fit relative to the size of X.

Per-iteration times are differences of two fits with different ``max_iter``
(same setup cost), the best of several repeats.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from robustreg import LOSSES, GDRegressor
from robustreg.losses import get_loss

CONVEX = ["l1", "l2", "smooth_l1", "huber", "pseudo_huber"]


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


def per_iteration(X, y, loss, repeat, k1=5, k2=25, use_gram=True, **kw):
    def fit(k):
        model = GDRegressor(loss, learning_rate="constant", eta0=1e-3, max_iter=k, tol=0.0, record_history=False, **kw)
        model._use_gram = use_gram
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)

    return (_best(lambda: fit(k2), repeat) - _best(lambda: fit(k1), repeat)) / (k2 - k1)


def two_matvecs(X, y, repeat, threads):
    w = np.ones(X.shape[1], dtype=X.dtype)
    g = np.ones(X.shape[0], dtype=X.dtype)
    with threadpool_limits(limits=threads, user_api="blas"):
        return _best(lambda: (X @ w, X.T @ g), repeat * 3)


def torch_loop(X, y, loss, repeat, k=20):
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


def peak_memory_ratio(X, y, loss):
    """Peak bytes allocated during a fit (X excluded), over X.nbytes."""
    gc.collect()
    tracemalloc.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GDRegressor(loss, max_iter=3, tol=0.0).fit(X, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (X.nbytes + peak) / X.nbytes


def bench_gd(sizes, repeat):
    print("## GD kernel: per-iteration time of full-batch gradient descent (float64)\n")
    for n, d in sizes:
        X, y = _problem(n, d)
        mv1 = two_matvecs(X, y, repeat, 1)
        mvd = two_matvecs(X, y, repeat, None)
        mv = min(mv1, mvd)
        print(f"### n = {n:.0e}, d = {d}  (X is {X.nbytes / 1e6:.0f} MB)\n")
        print(f"two BLAS matvecs X@w + X.T@g: {mv1 * 1e3:.3f} ms with 1 thread, {mvd * 1e3:.3f} ms with the default threads\n")
        print("| loss | GD per iteration (ms) | / two matvecs | PyTorch loop (ms) | PyTorch / GD | peak memory / size of X |")
        print("|---|---|---|---|---|---|")
        rows = [(name, True) for name in CONVEX] + [("l2", False)]
        for name, gram in rows:
            label = name if name != "l2" else ("l2 (X^T X path)" if gram else "l2 (row pass)")
            t = per_iteration(X, y, name, repeat, use_gram=gram)
            tt = torch_loop(X, y, name, repeat) if gram else None
            mem = peak_memory_ratio(X, y, name) if gram and n >= 100_000 else float("nan")
            torch_txt = "skipped" if tt is None else f"{tt * 1e3:.3f}"
            ratio_txt = "" if tt is None else f"{tt / t:.1f}x"
            mem_txt = "" if np.isnan(mem) else f"{mem:.2f}"
            print(f"| {label} | {t * 1e3:.3f} | {t / mv:.2f} | {torch_txt} | {ratio_txt} | {mem_txt} |")
            sys.stdout.flush()
        print()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [(10_000, 10)] if args.quick else [(1_000_000, 20), (10_000, 10)]
    bench_gd(sizes, args.repeat)


if __name__ == "__main__":
    main()
