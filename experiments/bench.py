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
from threadpoolctl import threadpool_limits

from robustreg import GDRegressor
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
    model = GDRegressor(loss, learning_rate="constant", eta0=1e-3, max_iter=k, tol=0.0, record_history=False, **kw)
    model._use_gram = use_gram
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)


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
    with threadpool_limits(limits=threads, user_api="blas"):
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
        GDRegressor(loss, max_iter=3, tol=0.0, dtype=dtype).fit(X, y)
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
            with threadpool_limits(limits=threads, user_api="blas"):
                fn()
                t = _best(fn, repeat)
            if t < self.best:
                self.best, self.how, self._fastest = t, how, (fn, threads)
        return self.best

    def time(self):
        """One timing of the fastest way found."""
        fn, threads = self._fastest
        with threadpool_limits(limits=threads, user_api="blas"):
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
    parser.add_argument("--only", choices=["gd", "sweeps", "aggregation"], default=None)
    args = parser.parse_args(argv)
    sizes = [(10_000, 10)] if args.quick else [(1_000_000, 20), (10_000, 10)]
    if args.only in (None, "gd"):
        bench_gd(sizes, args.repeat)
    if args.only in (None, "sweeps"):
        bench_sweeps(20 if args.quick else 100, 0 if args.quick else 1000)
    if args.only in (None, "aggregation"):
        bench_aggregation(500 if args.quick else 10_000)


if __name__ == "__main__":
    main()
