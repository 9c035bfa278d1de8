"""Bad input on the command line of a single run: one clear line, exit status 2, nothing written.

The promise (README, "Bad input"): a bad config value, data file or argument
gets ONE line on stderr, ``error: ...``, naming the bad value or key (and,
where there is a rule, what is allowed); the exit status is 2; there is no
traceback; and, for a single run, nothing is written (no job folder, no
``failure.json``): :func:`experiments.run.preflight` finds it before Hydra
makes the job's folder.

One table, one subprocess per case, run a few at a time (a module fixture)
and checked one test per case.  Sweeps (``-m``) are in
tests/test_sweep_reliability.py: a sweep refuses what is wrong with it as a
whole, and records a bad job's failure and goes on.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "experiments" / "run.py"

# Data files written into the run's working directory (tmp_path) for every case.
CSV = {
    "ok.csv": "x1,x2,y\n1,2,3.1\n2,1,4.9\n3,1,4.2\n4,2,6.3\n5,3,7.2\n6,1,6.8\n7,2,8.1\n8,3,9.4\n",
    "empty.csv": "",
    "no_target.csv": "x1,x2,z\n1,2,3\n2,1,5\n3,1,4\n4,2,6\n5,3,7\n",
    "text.csv": "x1,x2,y\n1,2,3\n2,oops,5\n3,1,4\n4,2,6\n5,3,7\n",
    "constant_y.csv": "x1,x2,y\n1,2,3\n2,1,3\n3,5,3\n4,2,3\n5,3,3\n6,1,3\n",
    "few.csv": "x1,x2,y\n1,2,3\n2,1,5\n",
    "nan.csv": "x1,x2,y\n1,2,3\n2,nan,5\n3,1,4\n4,2,6\n5,3,7\n",
    "huge.csv": "x1,x2,y\n1,2,3\n2,1,5\n3,1e308,4\n4,2,6\n5,3,7\n",
    "constant_x.csv": "x1,x2,y\n1,7,3\n2,7,5\n3,7,4\n4,7,6\n5,7,7\n",
    "dependent.csv": "x1,x2,y\n1,2,3\n2,4,5\n3,6,4\n4,8,6\n5,10,7\n",
}


def csv(name, *more):
    return ["dataset=csv", f"dataset.path={name}", "dataset.target=y", "dataset.test_size=0", *more]


# (overrides, a piece of the error line: the bad value or key)
CASES = [
    # -- an unknown option of each config group
    (["dataset=foo"], "dataset=foo is invalid; allowed: one of classic, csv, diabetes"),
    (["loss=hubr"], "loss=hubr is invalid; allowed: one of barron"),
    (["model=adam"], "model=adam is invalid; allowed: one of gd, sklearn_huber"),
    (["outliers=foo"], "outliers=foo is invalid; allowed: one of heavy_tail"),
    (["experiment=nope"], "experiment=nope is invalid; allowed: one of breakdown, contamination, convergence, efficiency"),
    (["hydra/launcher=nope"], "hydra/launcher=nope is invalid; allowed: one of basic"),
    # -- a key that is not a setting, in each group
    (["dataset.foo=1"], "dataset.foo is not a setting; allowed: name, n_train"),
    (["outliers.magnitud=3"], "outliers.magnitud is not a setting; allowed: kind, fraction"),
    (["loss=huber", "loss.beta=1"], "loss.beta is not a setting; allowed: name, delta"),
    (["loss.delta=1"], "loss.delta is not a setting; allowed: name"),
    (["model.max_itr=5"], "model.max_itr is not a setting; allowed: name, solver"),
    (["+sede=3"], "sede is not a setting; allowed: name, seed, dataset, outliers, loss, model"),
    (["+model.max_itr=5"], "model.max_itr is not a setting; allowed: name, solver, learning_rate,"),
    (["hydra.foo=1"], "hydra.foo is not a setting"),
    (["model=sklearn_huber", "model.params.delta=1"], "model.params.delta is not a setting; allowed: epsilon"),
    (["model=sklearn_ols", "+model.params.foo=1"], "model.params.foo is not a parameter of sklearn_ols; allowed:"),
    (["model=sklearn_ransac", "+model.params.random_state=3"], "model.params.random_state is not a parameter"),
    # -- a value of the wrong type
    (["outliers.fraction=abc"], "outliers.fraction=abc is invalid: Value 'abc' of type 'str' could not be converted"),
    (["seed=abc"], "seed=abc is invalid"),
    (["model.max_iter=abc"], "model.max_iter=abc is invalid"),
    (["model.nesterov=maybe"], "model.nesterov=maybe is invalid"),
    (["dataset.coef=abc"], "dataset.coef=abc is invalid"),
    (["name=[1]"], "name=[1] is invalid"),
    (["loss=huber", "loss.delta=abc"], "loss.delta=abc is invalid"),
    (["dataset=diabetes", "dataset.standardize=abc"], "dataset.standardize=abc is invalid"),
    (["model=sklearn_huber", "model.params=3"], "model.params=3 is invalid"),
    (["hydra.launcher.n_jobs=abc"], "hydra.launcher.n_jobs=abc is invalid"),
    (["model=sklearn_theilsen", "+model.params.n_subsamples=abc"], "model.params.n_subsamples='abc' is invalid"),
    # -- a missing group or a missing mandatory value
    (["~dataset"], "dataset is missing"),
    (["dataset=csv"], "dataset.path is missing"),
    # -- overrides that do not parse, or sweep without -m
    (["outliers.fraction=[0.1"], "an override does not parse: no viable alternative at input '[0.1'"),
    (["seed=range(abc)"], "seed=range(abc)"),
    (["=3"], "'=3' names no setting"),
    (["outliers.fraction=interval(0,1)"], "outliers.fraction=interval(0,1) is a sweep"),
    (["loss=l1,l2"], "loss=l1,l2 is a sweep"),
    # -- the job seed
    (["seed=-1"], "seed=-1 is invalid; allowed: an integer >= 0"),
    (["seed=1e30"], "seed=1e+30 is invalid"),
    (["seed=99999999999"], "seed=99999999999 is invalid; allowed: an int in the range [0, 4294967295]"),
    (["model=sklearn_ransac", "seed=99999999999"], "seed=99999999999 is invalid; allowed: an int in the range"),
    # -- synthetic data
    (["dataset.n_train=1"], "dataset.n_train=1 is invalid; allowed: an integer >= 2"),
    (["dataset.n_test=-1"], "dataset.n_test=-1 is invalid"),
    (["dataset.n_features=0"], "dataset.n_features=0 is invalid"),
    (["dataset.noise=cauchy"], "dataset.noise='cauchy' is invalid; allowed: 'gaussian', 'laplace', 'student_t'"),
    (["dataset.design=foo"], "dataset.design='foo' is invalid; allowed: 'gaussian', 'correlated', 'uniform'"),
    (["dataset.design=correlated", "dataset.rho=1"], "dataset.rho=1.0 is invalid; allowed: a finite real number"),
    (["dataset.noise_scale=0"], "dataset.noise_scale=0.0 is invalid; allowed: a finite real number in (0, inf)"),
    (["dataset.noise_scale=1e300"], "dataset.noise_scale=1e+300 is invalid: the responses reach"),
    (["dataset.df=0"], "dataset.df=0.0 is invalid"),
    (["dataset.coef_scale=0"], "dataset.coef_scale=0.0 is invalid"),
    (["dataset.intercept=inf"], "dataset.intercept=inf is invalid"),
    (["dataset.coef=[1,2]"], "dataset.coef has 2 entries but dataset.n_features=5"),
    (["dataset.design=correlated", "dataset.condition_number=0.5"], "dataset.condition_number=0.5 is invalid"),
    (["dataset.condition_number=10"], "dataset.condition_number=10.0 is invalid with dataset.design='gaussian'"),
    (["dataset.seed=-1"], "dataset.seed=-1 is invalid"),
    # -- real data sets
    (["dataset=diabetes", "dataset.test_size=1"], "dataset.test_size=1.0 is invalid; allowed: a finite real number in [0, 1)"),
    (["dataset=stackloss", "dataset.name=iris"], "dataset.name='iris' is invalid; allowed: stackloss"),
    # -- CSV files
    (csv("missing.csv"), "missing.csv: file not found"),
    (csv("."), ".: not a regular file"),
    (csv("empty.csv"), "empty.csv: the file is empty"),
    (csv("no_target.csv"), "no_target.csv: target column 'y' not found; available columns: 'x1', 'x2', 'z'"),
    (csv("text.csv"), "text.csv: non-numeric value 'oops' in column 'x2', data row 2"),
    (csv("constant_y.csv"), "constant_y.csv: the target column 'y' is constant (3)"),
    (csv("few.csv"), "few.csv: 2 data rows for 2 features; at least n_features + 2 = 4 needed"),
    (csv("nan.csv"), "nan.csv: non-finite value 'nan' (NaN and infinity are not allowed) in column 'x2', data row 2"),
    (csv("huge.csv"), "huge.csv: value '1e308' in column 'x2', data row 3 (1-based, header not counted) is too large"),
    (csv("constant_x.csv"), "constant_x.csv: feature column 'x2' is constant (7)"),
    (csv("dependent.csv"), "dependent.csv: the features are linearly dependent"),
    (csv("ok.csv", "dataset.features=[x1,x9]"), "ok.csv: feature column 'x9' not found"),
    (csv("ok.csv", "dataset.delimiter=ab"), "dataset.delimiter='ab' is invalid; allowed: a one-character string"),
    (csv("ok.csv", "dataset.test_size=0.9"), "ok.csv: the training part has 0 rows (test_size=0.9)"),
    # -- outliers
    (["outliers.fraction=0.5"], "outliers.fraction=0.5 is invalid; allowed: a finite real number in [0, 0.5)"),
    (["outliers.magnitude=0"], "outliers.magnitude=0.0 is invalid"),
    (["outliers=leverage", "outliers.magnitude=1e300"], "outliers.magnitude=1e+300 is invalid: the outliers would"),
    (["outliers=vertical", "outliers.magnitude=1e200"], "outliers.magnitude=1e+200 is invalid: the outliers would"),
    (["outliers.kind=foo"], "outliers.kind='foo' is invalid"),
    (["outliers.side=up"], "outliers.side='up' is invalid; allowed: 'symmetric', 'one_sided'"),
    (["outliers=heavy_tail", "outliers.tail=normal"], "outliers.tail='normal' is invalid"),
    (["outliers.df=0"], "outliers.df=0.0 is invalid"),
    (["outliers=mixed", "outliers.leverage_share=1.5"], "outliers.leverage_share=1.5 is invalid"),
    (["outliers.seed=-1"], "outliers.seed=-1 is invalid"),
    # -- the loss's constants, for each loss that has one
    (["loss=huber", "loss.delta=0"], "loss.delta=0.0 is invalid; allowed: a finite real number in (0, inf)"),
    (["loss=smooth_l1", "loss.beta=-1"], "loss.beta=-1.0 is invalid"),
    (["loss=pseudo_huber", "loss.delta=-2"], "loss.delta=-2.0 is invalid"),
    (["loss=tukey", "loss.c=0"], "loss.c=0.0 is invalid"),
    (["loss=welsch", "loss.c=-1"], "loss.c=-1.0 is invalid"),
    (["loss=cauchy", "loss.c=0"], "loss.c=0.0 is invalid"),
    (["loss=geman_mcclure", "loss.c=0"], "loss.c=0.0 is invalid"),
    (["loss=barron", "loss.c=0"], "loss.c=0.0 is invalid"),
    (["loss=barron", "loss.alpha=inf"], "loss.alpha=inf is invalid"),
    # -- the gradient-descent model
    (["model.solver=newton"], "model.solver='newton' is invalid"),
    (["model.learning_rate=fast"], "model.learning_rate='fast' is invalid"),
    (["model.eta0=0"], "model.eta0=0.0 is invalid"),
    (["model.momentum=1"], "model.momentum=1.0 is invalid"),
    (["model.batch_size=0"], "model.batch_size=0 is invalid"),
    (["model.max_iter=-1"], "model.max_iter=-1 is invalid; allowed: an int in the range [0, inf)"),
    (["model.tol=-1e-3"], "model.tol=-0.001 is invalid"),
    (["model.penalty=l3"], "model.penalty='l3' is invalid"),
    (["model.penalty=l1", "model.alpha=-1"], "model.alpha=-1.0 is invalid"),
    (["model.penalty=elasticnet", "model.l1_ratio=2"], "model.l1_ratio=2.0 is invalid"),
    (["model.init=abc"], "model.init='abc' is invalid"),
    (["model.init=[1,2]"], "model.init has 2 values; expected 6 (intercept first)"),
    (["model.fit_intercept=false", "model.init=lts"], "model.init='lts' is invalid with model.fit_intercept=False"),
    (["loss=huber", "model.scale=0"], "model.scale=0 is invalid"),
    (["model.dtype=float16"], "model.dtype='float16' is invalid"),
    (["model.dtype=float32", "outliers.magnitude=1e39"], "model.dtype='float32' is invalid for these data"),
    # -- the reference solvers' parameters (scikit-learn's own validation)
    (["model=sklearn_huber", "model.params.epsilon=0.5"],
     "model.params.epsilon=0.5 is invalid; allowed: a float in the range [1.0, inf)"),
    (["model=sklearn_lad", "model.params.solver=simplex"], "model.params.solver='simplex' is invalid"),
    (["model=sklearn_lad", "model.params.alpha=-1"], "model.params.alpha=-1 is invalid"),
    (["model=sklearn_ransac", "+model.params.min_samples=-1"], "model.params.min_samples=-1 is invalid"),
    (["model=sklearn_ols", "+model.params.positive=3"], "model.params.positive=3 is invalid"),
]


IDS = [" ".join(args) for args, _ in CASES]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case run as the user would, each in a folder of its own: ``id -> (process, folder)``."""

    # The folders are made here, one after another: tmp_path_factory is not thread-safe (its first
    # call makes the session's base folder, and two threads making it at once fail).
    folders = [tmp_path_factory.mktemp(f"case{k}") for k in range(len(CASES))]
    for folder in folders:
        for name, text in CSV.items():
            (folder / name).write_text(text)

    def run(k):
        args, _ = CASES[k]
        env = {**os.environ, "ROBUSTREG_ROOT": str(folders[k]), "HYDRA_FULL_ERROR": "0"}
        proc = subprocess.run([sys.executable, str(RUN), *args], cwd=folders[k], env=env, capture_output=True,
                              text=True, timeout=300)
        return IDS[k], (proc, folders[k])

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        return dict(pool.map(run, range(len(CASES))))


@pytest.mark.parametrize("overrides, piece", CASES, ids=IDS)
def test_bad_input_is_one_line_exit_2_and_nothing_written(outcomes, overrides, piece):
    proc, tmp_path = outcomes[" ".join(overrides)]
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    [line] = lines
    assert line.startswith("error: ")
    assert piece in line
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert not (tmp_path / "results").exists()
