"""Data sets: shipped files, published fits, synthetic designs, the CSV loader and its errors."""

from __future__ import annotations

import json
import math
import re
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

from robustreg.datasets import DATASETS, DataError, Dataset, load_dataset

CLASSIC_SHAPES = {"stackloss": (21, 3), "stars_cyg": (47, 1), "hbk": (75, 3), "telef": (24, 1)}
# Published (1-based) known outliers, from the data README's sources.
CLASSIC_OUTLIERS_1BASED = {
    "stackloss": [1, 3, 4, 21],
    "stars_cyg": [11, 20, 30, 34],
    "hbk": list(range(1, 11)),
    "telef": list(range(15, 21)),
}


def _data_file(name: str):
    return resources.files("robustreg.datasets").joinpath("data", name)


def _published_table() -> dict[str, dict[str, list[str]]]:
    """The 'Reference fits' table of the packaged README, as printed strings."""
    text = _data_file("README.md").read_text(encoding="utf-8")
    section = text.split("## Reference fits", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in CLASSIC_SHAPES:
            table[cells[0]] = {
                key: [v.strip() for v in cell.split(",")]
                for key, cell in zip(("least_squares", "mm", "lts"), cells[1:])
            }
    return table


def _ols(X, y):
    A = np.column_stack([np.ones(len(X)), X])
    return np.linalg.lstsq(A, y, rcond=None)[0]


# --------------------------------------------------------------------------- registry


def test_registry_names():
    assert set(DATASETS) == {"synthetic", "diabetes", "stackloss", "stars_cyg", "hbk", "telef", "csv"}


def test_unknown_dataset_lists_allowed_names():
    with pytest.raises(ValueError, match=re.escape(
        "unknown dataset 'iris'; allowed: csv, diabetes, hbk, stackloss, stars_cyg, synthetic, telef"
    )):
        load_dataset("iris")


def test_unknown_parameter_is_named():
    with pytest.raises(ValueError, match=re.escape(
        "dataset 'stackloss' got unknown parameter(s) seed; allowed: none"
    )):
        load_dataset("stackloss", seed=1)


def test_missing_csv_parameters_are_named():
    with pytest.raises(ValueError, match=r"dataset 'csv' requires parameter\(s\) path, target; allowed: path, target"):
        load_dataset("csv")


# --------------------------------------------------------------------------- classic sets


@pytest.mark.parametrize("name", sorted(CLASSIC_SHAPES))
def test_classic_set_loads_with_documented_shape(name):
    ds = load_dataset(name)
    n, d = CLASSIC_SHAPES[name]
    raw = pd.read_csv(_data_file(f"{name}.csv").open("r"))
    assert isinstance(ds, Dataset)
    assert ds.X_train.shape == (n, d) and ds.X_train.dtype == np.float64
    assert ds.y_train.shape == (n,)
    assert ds.X_test.shape == (0, d) and ds.y_test.shape == (0,)
    assert (ds.n_train, ds.n_test, ds.n_features) == (n, 0, d)
    assert ds.feature_names == list(raw.columns[:-1])
    assert ds.target_name == raw.columns[-1]
    np.testing.assert_array_equal(ds.X_train, raw.iloc[:, :-1].to_numpy(float))
    np.testing.assert_array_equal(ds.y_train, raw.iloc[:, -1].to_numpy(float))
    assert ds.coef_true is None and ds.noise_scale is None and ds.y_signal_train is None


@pytest.mark.parametrize("name", sorted(CLASSIC_SHAPES))
def test_ols_reproduces_published_least_squares_to_printed_precision(name):
    ds = load_dataset(name)
    printed = _published_table()[name]["least_squares"]
    ols = _ols(ds.X_train, ds.y_train)
    assert len(printed) == ds.n_features + 1
    for value, text in zip(ols, printed):
        decimals = len(text.split(".")[1]) if "." in text else 0
        # Within half a unit of the last printed digit (tiny slack for binary rounding).
        assert abs(value - float(text)) <= 0.5 * 10.0**-decimals + 1e-12, (name, value, text)
    # The reference is the least-squares fit itself, so it matches too.
    np.testing.assert_allclose(ds.coef_reference, ols, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CLASSIC_SHAPES))
def test_published_fits_match_the_readme_table(name):
    ds = load_dataset(name)
    table = _published_table()[name]
    assert set(ds.published) == {"least_squares", "mm", "lts"}
    for key, printed in table.items():
        np.testing.assert_array_equal(ds.published[key], [float(v) for v in printed])


@pytest.mark.parametrize("name", sorted(CLASSIC_SHAPES))
def test_known_outliers_are_the_published_rows_0_based(name):
    ds = load_dataset(name)
    np.testing.assert_array_equal(ds.known_outliers, np.array(CLASSIC_OUTLIERS_1BASED[name]) - 1)


def test_stars_cyg_outliers_are_the_four_red_giants():
    # The red giants are the four coolest stars (smallest log surface temperature).
    ds = load_dataset("stars_cyg")
    coolest = np.argsort(ds.X_train[:, 0], kind="stable")[:4]
    assert set(coolest) == set(ds.known_outliers)


def test_telef_outliers_are_the_years_1964_to_1969():
    ds = load_dataset("telef")
    np.testing.assert_array_equal(ds.X_train[ds.known_outliers, 0], np.arange(64, 70))


def test_metadata_is_plain_and_complete():
    md = load_dataset("stackloss").metadata()
    assert set(md) == {"name", "n_train", "n_test", "n_features", "source", "reference_method"}
    assert (md["name"], md["n_train"], md["n_test"], md["n_features"]) == ("stackloss", 21, 0, 3)
    assert "Brownlee (1965)" in md["source"]
    assert json.loads(json.dumps(md)) == md


# --------------------------------------------------------------------------- diabetes


def test_diabetes_split_and_reference():
    ds = load_dataset("diabetes", test_size=0.25, seed=3)
    raw = load_diabetes(scaled=False)
    assert ds.n_test == math.ceil(0.25 * 442) and ds.n_train + ds.n_test == 442
    assert ds.n_features == 10 and ds.feature_names == list(raw.feature_names)
    # Every patient is in exactly one part.
    np.testing.assert_array_equal(np.sort(np.r_[ds.y_train, ds.y_test]), np.sort(raw.target))
    # Standardized with the training part's statistics.
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(ds.X_train.std(axis=0), 1.0, rtol=1e-12)
    ref = LinearRegression().fit(ds.X_train, ds.y_train)
    np.testing.assert_allclose(ds.coef_reference, np.r_[ref.intercept_, ref.coef_], rtol=1e-8, atol=1e-8)
    assert ds.reference_method == "least squares on the clean training data"
    assert ds.published == {} and ds.known_outliers.size == 0


def test_diabetes_unstandardized_rows_are_the_raw_rows_and_split_is_seeded():
    raw = load_diabetes(scaled=False)
    a = load_dataset("diabetes", seed=5, standardize=False)
    b = load_dataset("diabetes", seed=5, standardize=False)
    c = load_dataset("diabetes", seed=6, standardize=False)
    rows = {tuple(r) for r in np.column_stack([raw.data, raw.target])}
    assert {tuple(r) for r in np.column_stack([a.X_train, a.y_train])} <= rows
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.y_train, c.y_train)
    whole = load_dataset("diabetes", test_size=0.0, standardize=False)
    assert whole.n_test == 0 and whole.X_test.shape == (0, 10)
    np.testing.assert_array_equal(whole.X_train, raw.data)


@pytest.mark.parametrize("test_size, message", [
    (1.0, "test_size=1.0 is invalid; allowed: a finite real number in [0, 1)"),
    (-0.1, "test_size=-0.1 is invalid; allowed: a finite real number in [0, 1)"),
])
def test_diabetes_bad_test_size(test_size, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_dataset("diabetes", test_size=test_size)


# --------------------------------------------------------------------------- synthetic


def test_synthetic_reference_is_the_true_coefficients():
    ds = load_dataset("synthetic", n_train=50, n_test=20, n_features=3, coef=[2.0, -1.0, 0.5], intercept=-3.0)
    np.testing.assert_array_equal(ds.coef_true, [-3.0, 2.0, -1.0, 0.5])
    np.testing.assert_array_equal(ds.coef_reference, ds.coef_true)
    assert ds.reference_method == "true coefficients"
    np.testing.assert_allclose(ds.y_signal_train, -3.0 + ds.X_train @ np.array([2.0, -1.0, 0.5]))
    assert ds.X_train.shape == (50, 3) and ds.X_test.shape == (20, 3) and ds.y_test.shape == (20,)
    assert ds.noise_scale == 1.0


def test_synthetic_drawn_coefficients_follow_coef_scale():
    ds = load_dataset("synthetic", n_features=400, n_train=2, n_test=0, coef_scale=3.0)
    slopes = ds.coef_true[1:]
    assert stats.kstest(slopes, stats.norm(scale=3.0).cdf).pvalue > 1e-3


def test_synthetic_is_seeded_and_test_size_does_not_touch_training_data():
    a = load_dataset("synthetic", seed=4)
    b = load_dataset("synthetic", seed=4, n_test=10)
    c = load_dataset("synthetic", seed=5)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    np.testing.assert_array_equal(a.coef_true, b.coef_true)
    assert not np.array_equal(a.X_train, c.X_train)


@pytest.mark.parametrize("noise, dist", [
    ("gaussian", stats.norm(scale=2.0)),
    ("laplace", stats.laplace(scale=2.0)),
    ("student_t", stats.t(df=3.0, scale=2.0)),
])
def test_synthetic_noise_has_the_stated_distribution(noise, dist):
    ds = load_dataset("synthetic", n_train=5000, n_test=0, noise=noise, noise_scale=2.0, df=3.0, seed=1)
    noise_draws = ds.y_train - ds.y_signal_train
    assert stats.kstest(noise_draws, dist.cdf).pvalue > 1e-3


def test_gaussian_design_is_standard_normal():
    X = load_dataset("synthetic", n_train=20000, n_test=0, n_features=3).X_train
    for j in range(3):
        assert stats.kstest(X[:, j], "norm").pvalue > 1e-3
    # The sample correlation of independent columns has sd 1/sqrt(n) = 0.007.
    off = np.corrcoef(X.T)[np.triu_indices(3, 1)]
    assert np.all(np.abs(off) < 0.03)


def test_uniform_design_is_bounded_with_unit_variance():
    X = load_dataset("synthetic", design="uniform", n_train=20000, n_test=0, n_features=2).X_train
    s3 = math.sqrt(3.0)
    assert X.min() >= -s3 and X.max() <= s3
    for j in range(2):
        assert stats.kstest(X[:, j], stats.uniform(loc=-s3, scale=2 * s3).cdf).pvalue > 1e-3


@pytest.mark.parametrize("rho", [0.5, -0.3, 0.9])
def test_toeplitz_design_has_correlation_rho_to_the_lag(rho):
    X = load_dataset("synthetic", design="correlated", rho=rho, n_train=20000, n_test=0, n_features=4).X_train
    R = np.corrcoef(X.T)
    # The sd of a sample correlation is (1 - r^2) / sqrt(n) <= 0.007 here; 0.03 is > 4 sd.
    for lag in (1, 2, 3):
        assert np.allclose(np.diag(R, lag), rho**lag, atol=0.03), (lag, np.diag(R, lag))
    np.testing.assert_allclose(X.std(axis=0), 1.0, atol=0.03)


@pytest.mark.parametrize("kappa", [1.0, 10.0, 100.0])
def test_condition_number_design(kappa):
    X = load_dataset("synthetic", design="correlated", condition_number=kappa,
                     n_train=40000, n_test=0, n_features=4).X_train
    cov = np.cov(X.T)
    # Unit variances, and the sample eigenvalues are within about
    # sqrt(2 / n) = 0.7% of the population ones: 5% is over 3 sd on the ratio.
    np.testing.assert_allclose(np.diag(cov), 1.0, atol=0.03)
    assert np.linalg.cond(cov) == pytest.approx(kappa, rel=0.05)


@pytest.mark.parametrize("params, message", [
    ({"n_train": 1}, "n_train=1 is invalid; allowed: an integer >= 2"),
    ({"n_train": 2.5}, "n_train=2.5 is invalid; allowed: an integer >= 2"),
    ({"n_test": -1}, "n_test=-1 is invalid; allowed: an integer >= 0"),
    ({"n_features": 0}, "n_features=0 is invalid; allowed: an integer >= 1"),
    ({"n_features": 3, "coef": [1.0, 2.0]}, "coef has 2 entries but n_features=3; allowed: a list of 3 numbers"),
    ({"n_features": 2, "coef": [1.0, float("nan")]}, "coef=[1.0, nan] is invalid; allowed: a list of 2 finite"),
    ({"intercept": float("inf")}, "intercept=inf is invalid; allowed: a finite real number"),
    ({"design": "toeplitz"}, "design='toeplitz' is invalid; allowed: 'gaussian', 'correlated', 'uniform'"),
    ({"rho": 1.0}, "rho=1.0 is invalid; allowed: a finite real number in (-1, 1)"),
    ({"design": "correlated", "condition_number": 0.5},
     "condition_number=0.5 is invalid; allowed: a finite real number in [1, inf)"),
    ({"condition_number": 10.0},
     "condition_number=10.0 is invalid with design='gaussian'; allowed: condition_number=None, or design='correlated'"),
    ({"design": "correlated", "condition_number": 10.0, "n_features": 1},
     "condition_number=10.0 is invalid with n_features=1; allowed: 1"),
    ({"noise": "cauchy"}, "noise='cauchy' is invalid; allowed: 'gaussian', 'laplace', 'student_t'"),
    ({"noise_scale": 0.0}, "noise_scale=0.0 is invalid; allowed: a finite real number in (0, inf)"),
    ({"df": 0}, "df=0 is invalid; allowed: a finite real number in (0, inf)"),
    ({"coef_scale": -1.0}, "coef_scale=-1.0 is invalid; allowed: a finite real number in (0, inf)"),
    ({"seed": -1}, "seed=-1 is invalid; allowed: an integer >= 0"),
    ({"seed": True}, "seed=True is invalid; allowed: an integer >= 0"),
])
def test_synthetic_bad_parameters(params, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_dataset("synthetic", **params)


# --------------------------------------------------------------------------- CSV


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = 1.0 + X @ np.array([2.0, -1.0, 0.5]) + rng.normal(scale=0.1, size=40)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["label"] = [f"id{i}" for i in range(40)]  # a non-numeric column that is not used
    df["target"] = y
    return df


def test_csv_round_trip_without_split(tmp_path, frame):
    path = tmp_path / "toy.csv"
    frame.to_csv(path, index=False)
    ds = load_dataset("csv", path=str(path), target="target", features=["a", "b", "c"], test_size=0.0)
    np.testing.assert_array_equal(ds.X_train, frame[["a", "b", "c"]].to_numpy())
    np.testing.assert_array_equal(ds.y_train, frame["target"].to_numpy())
    assert ds.name == "toy" and ds.target_name == "target" and ds.feature_names == ["a", "b", "c"]
    assert ds.X_test.shape == (0, 3)
    ref = LinearRegression().fit(frame[["a", "b", "c"]], frame["target"])
    np.testing.assert_allclose(ds.coef_reference, np.r_[ref.intercept_, ref.coef_], rtol=1e-9)


def test_csv_split_partitions_the_rows(tmp_path, frame):
    path = tmp_path / "toy.csv"
    frame.drop(columns="label").to_csv(path, index=False, sep=";")
    ds = load_dataset("csv", path=path, target="target", delimiter=";", test_size=0.25, seed=2)
    assert ds.feature_names == ["a", "b", "c"]
    assert ds.n_test == 10 and ds.n_train == 30
    whole = {tuple(r) for r in frame[["a", "b", "c", "target"]].to_numpy()}
    train = {tuple(r) for r in np.column_stack([ds.X_train, ds.y_train])}
    test = {tuple(r) for r in np.column_stack([ds.X_test, ds.y_test])}
    assert train | test == whole and not train & test
    ref = LinearRegression().fit(ds.X_train, ds.y_train)
    np.testing.assert_allclose(ds.coef_reference, np.r_[ref.intercept_, ref.coef_], rtol=1e-9)
    again = load_dataset("csv", path=path, target="target", delimiter=";", test_size=0.25, seed=2)
    np.testing.assert_array_equal(ds.X_test, again.X_test)


GOOD = "x1,x2,y\n1,5,1.5\n2,3,2.5\n3,8,2.0\n4,1,5.0\n5,6,4.5\n"


@pytest.mark.parametrize("content, params, message", [
    ("", {}, "the file is empty"),
    ("x1,x2,y\n", {}, "0 data rows for 2 features; at least n_features + 2 = 4 needed"),
    (GOOD, {"target": "z"}, "target column 'z' not found; available columns: 'x1', 'x2', 'y'"),
    (GOOD, {"features": ["x1", "w"]}, "feature column 'w' not found; available columns: 'x1', 'x2', 'y'"),
    (GOOD, {"features": ["x1", "y"]}, "the target column 'y' is also listed as a feature"),
    (GOOD.replace("3,8,2.0", "3,eight,2.0"), {},
     "non-numeric value 'eight' in column 'x2', data row 3 (1-based, header not counted)"),
    (GOOD.replace("4,1,5.0", "4,1,"), {}, "missing value in column 'y', data row 4 (1-based, header not counted)"),
    (GOOD.replace("5,6,4.5", "5,6"), {}, "missing value in column 'y', data row 5 (1-based, header not counted)"),
    (GOOD.replace("2,3,2.5", "2,nan,2.5"), {},
     "non-finite value 'nan' (NaN and infinity are not allowed) in column 'x2', data row 2"),
    (GOOD.replace("5,6,4.5", "5,6,-inf"), {},
     "non-finite value '-inf' (NaN and infinity are not allowed) in column 'y', data row 5"),
    ("x1,x2,y\n1,5,1\n2,3,2\n3,8,2\n", {}, "3 data rows for 2 features; at least n_features + 2 = 4 needed"),
    (GOOD.replace("1,5,", "7,5,").replace("2,3,", "7,3,").replace("3,8,", "7,8,").replace("4,1,", "7,1,")
     .replace("5,6,", "7,6,"), {}, "feature column 'x1' is constant (7)"),
    ("x1,x2,y\n1,2,1\n2,4,3\n3,6,2\n4,8,5\n5,10,4\n", {},
     "the features are linearly dependent (rank 2 of 3 columns with the intercept)"),
    ("x1,x1,y\n1,5,1\n2,3,2\n3,8,2\n4,1,5\n", {}, "duplicated column name(s) 'x1' in the header"),
    (GOOD, {"test_size": 0.5}, "the training part has 2 rows (test_size=0.5); at least n_features + 2 = 4 needed"),
    (GOOD + "6,2,3,9\n", {}, "cannot be parsed as CSV with delimiter ','"),
])
def test_csv_errors_name_the_file_and_the_problem(tmp_path, content, params, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    kwargs = {"target": "y", "test_size": 0.0} | params
    with pytest.raises(DataError) as info:
        load_dataset("csv", path=str(path), **kwargs)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    assert message in text


def test_csv_missing_file(tmp_path):
    path = tmp_path / "absent.csv"
    with pytest.raises(DataError, match=re.escape(f"{path}: file not found")):
        load_dataset("csv", path=path, target="y")


def test_csv_directory_is_not_a_file(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"{tmp_path}: not a regular file")):
        load_dataset("csv", path=tmp_path, target="y")


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


@pytest.mark.parametrize("params, message", [
    ({"delimiter": ";;"}, "delimiter=';;' is invalid; allowed: a one-character string"),
    ({"test_size": 1.5}, "test_size=1.5 is invalid; allowed: a finite real number in [0, 1)"),
    ({"seed": -2}, "seed=-2 is invalid; allowed: an integer >= 0"),
    ({"path": 3}, "path=3 is invalid; allowed: a file path (str or os.PathLike)"),
])
def test_csv_bad_parameters(tmp_path, params, message):
    path = tmp_path / "ok.csv"
    path.write_text(GOOD)
    kwargs = {"path": str(path), "target": "y"} | params
    with pytest.raises(ValueError, match=re.escape(message)):
        load_dataset("csv", **kwargs)
