"""What every column of every CSV file of a report holds, and in what unit: the ``## Codebook`` of ``report.md``.

One registry, :data:`CODEBOOKS`: file name -> :class:`Codebook`, that is,
named columns (``column -> (meaning, unit)``) and :class:`Pattern` rules for
the columns a study generates (``runs.csv`` has one column per varying
setting: ``dataset.<key>``, ``outliers.<key>``, ``loss.<key>`` or a model
parameter's name).  A unit of ``""`` is a label, a flag or a share (a
dimensionless number).

:func:`codebook` describes the columns of one file and raises ``KeyError``
for a column it has no entry for, so that a new column cannot go
undocumented; :func:`codebook_markdown` is the section of ``report.md``.

A module that writes another CSV file registers its columns when it is
imported, before the report is rendered::

    from .codebook import SETTING_PATTERNS, SETTINGS, register

    register("breakdown.csv", {
        **SETTINGS,  # the setting columns, if its group keys are the summary's
        "breakdown_point": ("the smallest contamination fraction at which ...", ""),
    }, SETTING_PATTERNS)

``register`` adds to a file's entry (call it again to add more columns);
it refuses to give a column a second, different meaning.

Units.  Errors of coefficients are in *coefficient units*: a slope in units
of y per unit of its feature (features of one data set may have different
units, so ``coef_error`` adds them up as they are); an intercept in units of
y.  *Standardized units* are those of the estimator's certificate: slopes
times the features' standard deviations, over the standard deviation of y.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .tables import CONFIDENCE, MIN_HISTORY, N_RESAMPLES, SETTLE_TOL

__all__ = [
    "CODEBOOKS",
    "COEF_UNIT",
    "Codebook",
    "MODEL_PARAMETERS",
    "Pattern",
    "SETTINGS",
    "SETTING_PATTERNS",
    "Y_UNIT",
    "codebook",
    "codebook_markdown",
    "csv_columns",
    "register",
]

#: The unit of coefficients and of their errors (a slope: y per unit of its feature; an intercept: y).
COEF_UNIT = "coefficient units"
#: The unit of the response (and of prediction errors, intercepts, residual scales).
Y_UNIT = "units of y"
#: The history's grad_norm: a gradient norm (solver=gd) or a step length in standardized units (solver=auto).
_GRAD_UNIT = "gradient norm (solver=auto: standardized units)"


@dataclass(frozen=True)
class Pattern:
    """Generated columns named ``<prefix><key>``, one per setting key.

    Attributes
    ----------
    prefix : str
        What every such column's name starts with (``"dataset."``).
    meaning : str
        The meaning of a column whose key has no entry in ``keys``; ``{key}`` stands for the key.
    unit : str
        Its unit.
    keys : dict
        ``key -> (meaning, unit)`` of the keys known in advance (more precise than ``meaning``).
    """

    prefix: str
    meaning: str
    unit: str = ""
    keys: dict = field(default_factory=dict)

    def describe(self, column: str):
        """``(meaning, unit)`` of ``column``, or None when it does not match the prefix."""
        if not column.startswith(self.prefix) or len(column) == len(self.prefix):
            return None
        key = column[len(self.prefix):]
        if key in self.keys:
            return self.keys[key]
        return self.meaning.format(key=key), self.unit


@dataclass
class Codebook:
    """The codebook of one CSV file: named columns, then patterns for generated ones."""

    columns: dict = field(default_factory=dict)
    patterns: list = field(default_factory=list)

    def describe(self, column: str):
        """``(meaning, unit)`` of ``column``, or None when it has no entry."""
        if column in self.columns:
            return self.columns[column]
        for pattern in self.patterns:
            found = pattern.describe(column)
            if found is not None:
                return found
        return None


#: The codebook of every CSV file a report writes, by file name (in the order of the report's section).
CODEBOOKS: dict[str, Codebook] = {}


def _check_entry(name: str, column: str, entry) -> tuple:
    if not (isinstance(entry, tuple) and len(entry) == 2 and all(isinstance(x, str) for x in entry)
            and entry[0].strip()):
        raise ValueError(f"{name}: the entry of column {column!r} must be a (meaning, unit) pair of strings with "
                         f"a meaning; got {entry!r}")
    return entry


def register(name: str, columns: dict | None = None, patterns=()) -> Codebook:
    """Add the columns (``column -> (meaning, unit)``) and patterns of the CSV file ``name`` to :data:`CODEBOOKS`.

    Raises
    ------
    ValueError
        An entry is not a ``(meaning, unit)`` pair of strings, or a column already has another entry.
    """
    book = CODEBOOKS.setdefault(name, Codebook())
    for column, entry in (columns or {}).items():
        entry = _check_entry(name, column, entry)
        if column in book.columns and book.columns[column] != entry:
            raise ValueError(f"{name}: column {column!r} is already described as {book.columns[column]!r}; "
                             f"refusing {entry!r}")
        book.columns[column] = entry
    for pattern in patterns:
        for key, entry in pattern.keys.items():
            _check_entry(name, pattern.prefix + key, entry)
        if pattern not in book.patterns:
            book.patterns.append(pattern)
    return book


def codebook(name: str, columns) -> pd.DataFrame:
    """The codebook of the columns ``columns`` of the CSV file ``name``: one row per column, in their order.

    Returns
    -------
    pandas.DataFrame
        Columns ``column``, ``meaning``, ``unit`` (``""``: a label, a flag or a share).

    Raises
    ------
    KeyError
        ``name`` has no codebook, or a column has no entry (named, with the file, in the message): add it
        with :func:`register`.
    """
    if name not in CODEBOOKS:
        raise KeyError(f"{name} has no codebook: describe its columns with "
                       f"robustreg.report.codebook.register({name!r}, {{column: (meaning, unit)}})")
    book = CODEBOOKS[name]
    rows, missing = [], []
    for column in columns:
        found = book.describe(str(column))
        if found is None:
            missing.append(str(column))
        else:
            rows.append({"column": str(column), "meaning": found[0], "unit": found[1]})
    if missing:
        listed = ", ".join(repr(c) for c in missing)
        raise KeyError(f"{name}: column{'s' if len(missing) > 1 else ''} {listed} "
                       f"{'have' if len(missing) > 1 else 'has'} no codebook entry; describe "
                       f"{'them' if len(missing) > 1 else 'it'} with "
                       f"robustreg.report.codebook.register({name!r}, {{column: (meaning, unit)}})")
    return pd.DataFrame(rows, columns=["column", "meaning", "unit"])


def csv_columns(folder) -> dict:
    """The header row of each CSV file of :data:`CODEBOOKS` found in ``folder``: ``{file name: [columns]}``.

    In the registry's order; files of other names are not looked at (a report folder may hold the user's own).
    """
    folder = Path(folder)
    out = {}
    for name in CODEBOOKS:
        path = folder / name
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as fh:
                out[name] = next(csv.reader(fh), [])
    return out


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def codebook_markdown(files: dict) -> str:
    """The ``## Codebook`` section of ``report.md``: one table per CSV file of ``files`` (``{name: columns}``).

    Raises
    ------
    KeyError
        As :func:`codebook`: a file or a column without an entry.
    """
    lines = ["## Codebook", "",
             "What each column of each CSV file of this report holds. Unit: empty for a label, a flag (`True`/"
             "`False`) or a share; *coefficient units* are those of the coefficients (a slope "
             "in units of y per unit of its feature, an intercept in units of y); an empty cell in a CSV file "
             "is a value that does not apply or was not finite.", ""]
    if not files:
        return "\n".join(lines + ["_(no CSV file)_", ""])
    for name, columns in files.items():
        book = codebook(name, columns)
        lines += [f"### [{name}]({name})", "", "| column | meaning | unit |", "|---|---|---|"]
        lines += [f"| `{_md(c)}` | {_md(m)} | {_md(u)} |" for c, m, u in book.itertuples(index=False)]
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- entries
_STATUS = ("the job's status: `ok` (ran to its end with the optimality certificate of its fit; a reference "
           "solver: without a ConvergenceWarning), "
           "`not_converged` (ran to its end without the certificate and without diverging: `max_iter` reached, "
           "or a reference solver's ConvergenceWarning), `diverged` (non-finite or exploding objective or "
           "coefficients), `failed` (raised an error: see `error`), `missing` (listed in sweep.json, no record)")

#: Parameters of the models, as ``runs.csv`` names their columns (and as summary, paired and coverage
#: tables name their group keys): every :class:`robustreg.GDRegressor` setting, and the parameters of the
#: reference solvers.  A column is given only where the parameter varies in the study.
MODEL_PARAMETERS = {
    "solver": ("GDRegressor's solver: `auto` (the loss's estimator, certified) or `gd` (plain gradient descent, "
               "the article's algorithm); for sklearn_lad, QuantileRegressor's linear-programming solver", ""),
    "learning_rate": ("step-size rule of plain gradient descent: `auto` (1/Lipschitz for a smooth loss, a "
                      "diminishing step otherwise), `constant` or `invscaling`", ""),
    "eta0": ("the step of the `constant` and `invscaling` rules, or the multiplier of the automatic step "
             "(`auto`)", "learning-rate units (multiplier for auto)"),
    "power_t": ("exponent p of the `invscaling` rule, step eta0 / (t + 1)^p", ""),
    "momentum": ("heavy-ball momentum of plain gradient descent (0: none)", ""),
    "nesterov": ("whether the gradient is evaluated at the extrapolated point (Nesterov)", ""),
    "batch_size": ("rows per mini-batch of SGD; empty: full-batch gradient descent", "rows"),
    "max_iter": ("maximum number of iterations (GDRegressor: over every stage of a fit; epochs for "
                 "mini-batches; sklearn_huber: L-BFGS iterations; sklearn_theilsen: its spatial-median "
                 "iterations)", "iterations"),
    "tol": ("GDRegressor: tolerance of the optimality certificate (solver=auto) or of the stopping rule "
            "(solver=gd); a reference solver: its own tolerance", ""),
    "n_iter_no_change": ("window of gradient descent's second stopping rule (no decrease of the best objective "
                         "by more than tol x |best|)", "iterations"),
    "fit_intercept": ("whether an intercept is fitted", ""),
    "standardize": ("whether the penalty (and, for solver=gd, the optimizer) works on standardized features; "
                    "coefficients are reported in the original units", ""),
    "penalty": ("GDRegressor's penalty: empty/`none`, `l2`, `l1` or `elasticnet`", ""),
    "alpha": ("penalty strength (GDRegressor: of `penalty`, added to the mean loss; sklearn_huber: its ridge "
              "penalty; sklearn_lad: its L1 penalty)", ""),
    "l1_ratio": ("L1 share of the `elasticnet` penalty", ""),
    "init": ("the start of the fit: `zeros`, `lstsq`, `l1`, `lts`, `s` or explicit coefficients (the start a "
             "default resolved to, where the record says)", ""),
    "scale": ("the residual-scale setting sigma of a scale-dependent loss: empty/`none` (solver=auto: `mad`, or "
              "`s` for a redescending loss; solver=gd: 1), a number (in units of y), `mad` (MAD fixed point) or "
              "`s` (M-scale of the start); the value used is `fitted_scale`", ""),
    "record_history": ("whether the per-iteration history was recorded", ""),
    "verbose": ("verbosity of the solver's progress output", ""),
    "dtype": ("precision of GDRegressor's data pass: `float64` or `float32`", ""),
    "epsilon": ("sklearn_huber: HuberRegressor's threshold, in units of its jointly estimated scale", ""),
}


def _reference_parameters() -> dict:
    """The other parameters a reference solver may take (from :data:`robustreg.study.solvers.REFERENCE_SOLVERS`)."""
    from ..study.solvers import REFERENCE_SOLVERS

    owners: dict = {}
    for solver, entry in REFERENCE_SOLVERS.items():
        for param in entry.allowed_params():
            owners.setdefault(param, []).append(f"{solver} ({entry.estimator.__name__})")
    return {param: (f"parameter `{param}` of the reference solver {' / '.join(names)}: see scikit-learn", "")
            for param, names in owners.items() if param not in MODEL_PARAMETERS}


_MODEL = {**MODEL_PARAMETERS, **_reference_parameters()}

#: The setting columns: what identifies a job's configuration, and the group keys of the summary, paired and
#: coverage tables (each table has only those that vary in the study).
SETTINGS = {
    "study": ("the study's name (the experiment config's `name`)", ""),
    "dataset": ("the data set: `synthetic`, `diabetes`, `stackloss`, `stars_cyg`, `hbk`, `telef` or `csv`", ""),
    "dataset_params": ("the data-set loader's parameters, as one `key=value, ...` string (its seed left out)", ""),
    "outliers": ("the contamination model of the training rows: `none`, `vertical`, `leverage`, `mixed` or "
                 "`heavy_tail`", ""),
    "fraction": ("share of the training rows corrupted (round(fraction x n_train) rows)", ""),
    "magnitude": ("size m of the outliers: in units of the noise scale sigma for responses (the data's noise "
                  "scale, else the standard deviation of y) and of each feature's standard deviation for "
                  "leverage points; not used by `heavy_tail`", "noise scales (features: standard deviations)"),
    "outlier_params": ("the contamination's other parameters (`side`, `tail`, `df`, `leverage_share`), as one "
                       "`key=value, ...` string (its seed left out)", ""),
    "loss_label": ("the loss: its name, with the tuning constants that differ from the defaults "
                   "(`huber (delta=2)`); a reference solver by its name (`sklearn_huber`)", ""),
    "model": ("the model: `gd` (robustreg.GDRegressor) or a reference solver (`sklearn_ols`, `sklearn_huber`, "
              "`sklearn_lad`, `sklearn_ransac`, `sklearn_theilsen`)", ""),
    **_MODEL,
}

#: The generated setting columns: ``<prefix><key>`` for a setting key (``model.<key>``: a model parameter
#: whose name another column of the runs table already has).
SETTING_PATTERNS = (
    Pattern("dataset.", "data-set loader parameter `{key}` (config key `dataset.{key}`)", "", keys={
        "n_train": ("training rows of the synthetic data", "rows"),
        "n_test": ("test rows of the synthetic data", "rows"),
        "n_features": ("features of the synthetic data", "features"),
        "coef": ("the synthetic data's true slopes (JSON list; empty: drawn from N(0, coef_scale^2))",
                 COEF_UNIT),
        "intercept": ("the synthetic data's true intercept", Y_UNIT),
        "design": ("distribution of the synthetic features: `gaussian`, `correlated` or `uniform`", ""),
        "rho": ("Toeplitz correlation of the `correlated` design", ""),
        "condition_number": ("condition number of the `correlated` design's covariance", ""),
        "noise": ("noise distribution of the synthetic data: `gaussian`, `laplace` or `student_t`", ""),
        "noise_scale": ("scale of the synthetic data's noise (its standard deviation for Gaussian noise)",
                        Y_UNIT),
        "df": ("degrees of freedom of Student-t noise", ""),
        "coef_scale": ("standard deviation of the drawn true slopes", COEF_UNIT),
        "test_size": ("share of the rows held out as the test split", ""),
        "standardize": ("whether the diabetes features are standardized", ""),
        "path": ("the CSV data file", ""),
        "target": ("the CSV column that is the response", ""),
        "features": ("the CSV columns that are the features (JSON list; empty: all others)", ""),
        "delimiter": ("the CSV file's delimiter", ""),
    }),
    Pattern("outliers.", "contamination parameter `{key}` (config key `outliers.{key}`)", "", keys={
        "side": ("sign of the outlier shifts: `symmetric` (random signs) or `one_sided`", ""),
        "tail": ("distribution of the `heavy_tail` draws: `cauchy` or `student_t`", ""),
        "df": ("degrees of freedom of the `heavy_tail` Student-t draws", ""),
        "leverage_share": ("share of the `mixed` outliers that are leverage points", ""),
    }),
    Pattern("loss.", "tuning constant `{key}` of the loss (config key `loss.{key}`), in units of the residual "
            "scale sigma", "sigma (residual scale)", keys={
        "beta": ("Smooth L1's beta: width of the quadratic zone, in units of the residual scale sigma",
                 "sigma (residual scale)"),
        "delta": ("Huber's or pseudo-Huber's delta: where the loss turns linear, in units of the residual "
                  "scale sigma", "sigma (residual scale)"),
        "c": ("the redescending or Barron loss's constant c, in units of the residual scale sigma",
              "sigma (residual scale)"),
        "alpha": ("Barron's shape alpha (2: L2, 1: pseudo-Huber, 0: Cauchy, -2: Geman-McClure)", ""),
    }),
    Pattern("model.", "model parameter `{key}` (config key `model.{key}`; named so because another column has "
            "the name `{key}`)", "", keys={k: (f"{m} (named `model.{k}`: another column has the name `{k}`)", u)
                                           for k, (m, u) in _MODEL.items()}),
)

#: runs.csv, besides the settings: bookkeeping, outcomes, and the history measures.
_RUNS = {
    "job_dir": ("the job's folder, relative to the sweep folder", ""),
    "loss": ("the loss the job minimized (a reference solver: its name)", ""),
    "config_hash": ("SHA-256 of the job's canonical config (and of a CSV data file's content): equal inputs, "
                    "equal hashes", ""),
    "package_version": ("the robustreg version that wrote the record", ""),
    "seed": ("the job seed: the replicate (seeds the data, the contamination and the fit's randomness)", ""),
    "dataset_seed": ("the data-set loader's seed (follows the job seed); empty for the classic data sets", ""),
    "outlier_seed": ("the contamination's seed (follows the job seed)", ""),
    "status": (_STATUS, ""),
    "n_train": ("training rows", "rows"),
    "n_test": ("test rows (0: no test split)", "rows"),
    "n_features": ("features (slopes)", "features"),
    "reference_method": ("how the reference coefficients were obtained (the true coefficients of synthetic "
                         "data, or least squares on the clean training data)", ""),
    "n_corrupted": ("training rows corrupted by the contamination", "rows"),
    "coef_error": ("Euclidean distance of the fitted slopes from the reference slopes (intercept left out); "
                   "empty when not finite", COEF_UNIT),
    "intercept_error": ("absolute difference of the fitted intercept from the reference intercept", Y_UNIT),
    "relative_error": ("coef_error divided by the Euclidean norm of the reference slopes (empty when that is 0)",
                       ""),
    "test_rmse": ("root mean squared prediction error on the (clean) test split; empty without one", Y_UNIT),
    "test_mae": ("mean absolute prediction error on the (clean) test split; empty without one", Y_UNIT),
    "train_objective": ("GDRegressor's final objective on the (contaminated) training data: mean "
                        "rho(r / sigma) plus the penalty; empty for a reference solver",
                        "loss units (L2: y^2; L1: y; others: rho of r / sigma)"),
    "n_iter": ("iterations run (GDRegressor: over every stage of the fit, epochs for mini-batches; a reference "
               "solver: its own count, RANSAC's random trials)", "iterations"),
    "converged": ("whether the fit holds its optimality certificate (GDRegressor.converged_; a reference "
                  "solver: no ConvergenceWarning)", ""),
    "diverged": ("whether the fit diverged: non-finite objective, weights or coefficients, or an objective "
                 "beyond 1e10 times its starting value", ""),
    "fit_seconds": ("wall-clock time of the fit alone (data and contamination excluded)", "seconds"),
    "lipschitz": ("L: the largest eigenvalue of Z'VZ / sum(v) for the design Z the optimizer sees (intercept "
                  "column included); empty for a reference solver", "squared feature units"),
    "initial_step": ("the step of the first iteration (solver=gd: the step size; solver=auto: the step's scale, "
                     "1 for a fixed preconditioner); empty without a history", "learning-rate units"),
    "fitted_scale": ("the residual scale sigma the fit used (1 when none applies; sklearn_huber: its jointly "
                     "estimated scale)", Y_UNIT),
    "optimality": ("the optimality certificate's measure at the fit: for a smooth loss the Newton step's length "
                   "(distance to the minimizer to first order); for L1 the relative duality gap of LAD's "
                   "linear programme; inf where none applies; empty for a reference solver",
                   "standardized units (L1: relative gap)"),
    "max_grad_norm": ("the largest value of the history's `grad_norm`: with solver=gd the norm of the gradient "
                      "(mapping) of the objective; with solver=auto the length of the preconditioned step, in "
                      "standardized units; empty without a history", _GRAD_UNIT),
    "final_grad_norm": ("the history's last `grad_norm` (see max_grad_norm)", _GRAD_UNIT),
    "n_zero_coef": ("fitted slopes exactly 0", "coefficients"),
    "coef_norm": ("Euclidean norm of the fitted slopes", COEF_UNIT),
    "mm_error": ("Euclidean distance of the fitted slopes from the published MM-estimate's (classic data sets "
                 "that have one); empty otherwise", COEF_UNIT),
    "n_warnings": ("warnings raised during the fit", "warnings"),
    "intercept": ("the fitted intercept", Y_UNIT),
    "error": ("a failed job's error: the first line of its message", ""),
    "error_type": ("a failed job's exception class", ""),
    "overrides": ("the sweeper's overrides of a failed or missing job (space separated)", ""),
    "convex": ("whether the loss (or the reference solver's objective) is convex", ""),
    "redescending": ("whether the loss is redescending (psi returns to 0 for large residuals: non-convex)", ""),
    "tail_increase_share": ("over the second half of the history, the share of iterations whose objective "
                            f"rose (a descent method has 0); empty for histories under {MIN_HISTORY} rows", ""),
    "tail_grad_ratio": ("median history `grad_norm` over the second half, divided by its first value; empty for "
                        f"histories under {MIN_HISTORY} rows", ""),
    "settle_iter": ("the first iteration from which on the objective's gap above the lowest objective of the "
                    f"history stays within {SETTLE_TOL:g} of its initial gap (0: from the start); inf: never "
                    f"settled; empty for histories under {MIN_HISTORY} rows", "iterations"),
    "history_length": ("rows of the job's recorded history (0: none)", "rows"),
}

_INTERVAL = f"{100 * CONFIDENCE:g}% percentile bootstrap interval ({N_RESAMPLES} resamples)"

register("runs.csv", {**SETTINGS, **_RUNS}, SETTING_PATTERNS)
register("coefficients.csv", {
    "job_dir": ("the job's folder, relative to the sweep folder (a row of runs.csv)", ""),
    "term": ("the coefficient: `intercept`, then `x0` ... `x{p-1}` in the design's column order", ""),
    "estimate": ("the fitted coefficient", COEF_UNIT),
    "reference": ("the job's reference coefficient (the truth for synthetic data, else a least-squares fit: see "
                  "reference_method in runs.csv)", COEF_UNIT),
    "true": ("the data-generating coefficient, where it is known (synthetic data)", COEF_UNIT),
    "std_error": ("the fit's standard error of the coefficient, where the record holds one", COEF_UNIT),
})
register("coverage.csv", {
    **SETTINGS,
    "n": ("compared jobs (status ok or diverged) with standard errors and true coefficients", "jobs"),
    "intervals": ("coefficient intervals counted (finite estimate and standard error)", "intervals"),
    "coverage": ("share of the 95% normal intervals (estimate +- 1.96 standard errors) holding the true "
                 "coefficient, intercept included", ""),
    "coverage_slopes": ("the same share over the slopes only", ""),
}, SETTING_PATTERNS)
register("summary.csv", {
    **SETTINGS,
    "n": ("compared jobs of the group: status ok or diverged", "jobs"),
    "failed": ("failed jobs of the group", "jobs"),
    "diverged": ("diverged jobs among the n", "jobs"),
    "not_converged": ("not-converged jobs of the group (counted only: left out of every other statistic but "
                      "converged_share)", "jobs"),
    "coef_error_mean": ("mean coef_error over the n jobs (a non-finite error counts as inf)", COEF_UNIT),
    "coef_error_median": ("median coef_error over the n jobs (a non-finite error counts as inf)", COEF_UNIT),
    "coef_error_ci_low": (f"lower end of the {_INTERVAL} of the median coef_error across seeds", COEF_UNIT),
    "coef_error_ci_high": (f"upper end of the {_INTERVAL} of the median coef_error across seeds", COEF_UNIT),
    "relative_error_median": ("median relative_error over the n jobs", ""),
    "test_rmse_median": ("median test_rmse over the n jobs", Y_UNIT),
    "n_iter_median": ("median n_iter over the n jobs", "iterations"),
    "max_grad_norm_median": ("median max_grad_norm over the n jobs", _GRAD_UNIT),
    "converged_share": ("share of the group's done jobs (ok, not_converged, diverged) with the optimality "
                        "certificate", ""),
}, SETTING_PATTERNS)
register("paired.csv", {
    **SETTINGS,
    "baseline": ("the loss compared with: `l2`, or `sklearn_ols` (exact least squares) for a reference solver "
                 "when the study has it", ""),
    "n_pairs": ("pairs: jobs of the loss and of the baseline on the same data, seed and varying settings",
                "pairs"),
    "median": ("median coef_error of the loss over the pairs", COEF_UNIT),
    "median_baseline": ("median coef_error of the baseline over the pairs", COEF_UNIT),
    "median_diff": ("median paired difference of coef_error, loss minus baseline (negative: the loss is closer "
                    "to the reference; two infinite errors are a tie)", COEF_UNIT),
    "ci_low": (f"lower end of the {_INTERVAL} of the median paired difference", COEF_UNIT),
    "ci_high": (f"upper end of the {_INTERVAL} of the median paired difference", COEF_UNIT),
    "win_share": ("share of the pairs where the loss has the smaller coef_error", ""),
    "difference": (f"`lower` or `higher` when the {100 * CONFIDENCE:g}% interval of the median difference "
                   "excludes 0, else `not significant`", ""),
}, SETTING_PATTERNS)
