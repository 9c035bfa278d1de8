"""The codebook of report.md: every column of every CSV file the report writes is described, with its unit."""

from __future__ import annotations

import csv
import re

import pandas as pd
import pytest

from robustreg.report import make_report
from robustreg.report.codebook import CODEBOOKS, codebook, codebook_markdown, csv_columns, register
from robustreg.report.tables import coverage_table

from test_report_records import write_sweep


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    root = tmp_path_factory.mktemp("codebook")
    sweep = root / "runs" / "small"
    # Two step rules: model parameters vary, so runs.csv has their columns; one failed and one missing job.
    write_sweep(sweep, losses=("l1", "l2"), kinds=("vertical",), fractions=(0.0, 0.2), seeds=range(2),
                steps=(("auto", 1.0), ("constant", 0.5)))
    out = root / "results" / "small"
    make_report(sweep, out, progress=False, figures=False)
    return out


def _header(path):
    with open(path, newline="") as fh:
        return next(csv.reader(fh))


def _codebook_section(report_md: str) -> dict:
    """``{file name: {column: (meaning, unit)}}`` from the ``## Codebook`` section of report.md."""
    section = report_md.split("\n## Codebook\n", 1)[1]
    assert "\n## " not in section  # the last section
    out, current = {}, None
    for line in section.splitlines():
        head = re.match(r"^### \[([^\]]+)\]\(\1\)$", line)
        if head:
            current = out.setdefault(head.group(1), {})
            continue
        row = re.match(r"^\| `([^`]+)` \| (.+) \| (.*) \|$", line)
        if row and current is not None:
            current[row.group(1)] = (row.group(2), row.group(3))
    return out


def test_every_column_of_every_csv_is_in_the_codebook(reported):
    described = _codebook_section((reported / "report.md").read_text())
    written = sorted(p.name for p in reported.glob("*.csv"))
    assert {"runs.csv", "coefficients.csv", "summary.csv", "paired.csv"} <= set(written)
    assert sorted(described) == written  # one table per CSV file, none for a file that is not there
    for name in written:
        header = _header(reported / name)
        assert header, f"{name} has no header row"
        missing = [c for c in header if c not in described[name]]
        assert not missing, f"{name}: columns without a codebook entry: {missing}"
        assert all(meaning.strip() for meaning, _ in described[name].values())
        assert list(described[name]) == header  # in the file's column order


def test_codebook_gives_units(reported):
    runs = _codebook_section((reported / "report.md").read_text())["runs.csv"]
    assert runs["coef_error"][1] == "coefficient units"
    assert runs["test_rmse"][1] == "units of y"
    assert runs["n_iter"][1] == "iterations"
    assert "fit_seconds" not in runs  # timings stay in the records: a rerun rewrites runs.csv byte for byte
    assert runs["settle_iter"][1] == "iterations"
    assert runs["loss_label"][1] == "" and runs["status"][1] == ""
    for status in ("`ok`", "`not_converged`", "`diverged`", "`failed`", "`missing`"):
        assert status in runs["status"][0]
    # The varying model parameters of this sweep.
    assert {"learning_rate", "eta0"} <= set(runs)


def test_undocumented_column_raises_key_error_naming_it(reported, tmp_path):
    with pytest.raises(KeyError, match="brand_new_metric") as info:
        codebook("runs.csv", ["job_dir", "brand_new_metric", "coef_error"])
    assert "runs.csv" in str(info.value)
    with pytest.raises(KeyError, match="sensitivity_brand_new.csv"):
        codebook("sensitivity_brand_new.csv", ["x"])
    # The report path: a written CSV with a column nobody described.
    runs = pd.read_csv(reported / "runs.csv")
    runs.assign(brand_new_metric=1.0).to_csv(tmp_path / "runs.csv", index=False)
    with pytest.raises(KeyError, match="brand_new_metric"):
        codebook_markdown(csv_columns(tmp_path))


def test_generated_columns_are_described_by_pattern():
    book = codebook("runs.csv", ["dataset.n_train", "dataset.something_new", "outliers.side", "loss.delta",
                                 "model.loss", "min_samples"]).set_index("column")
    assert book.loc["dataset.n_train", "unit"] == "rows"
    assert "something_new" in book.loc["dataset.something_new", "meaning"]
    assert "residual scale" in book.loc["loss.delta", "unit"]
    assert "model.loss" in book.loc["model.loss", "meaning"]  # RANSAC's `loss`, renamed beside the loss column
    assert "sklearn_ransac" in book.loc["min_samples", "meaning"]
    with pytest.raises(KeyError, match="'dataset.'"):
        codebook("runs.csv", ["dataset."])


def test_coverage_columns_are_described():
    rows = [{"job_dir": f"{f}/{s}", "status": "ok", "loss_label": "huber", "outliers": "vertical", "fraction": f,
             "seed": s, "coef_error": 0.0, "diverged": False, "coef": [1.0], "intercept": 0.0, "bse": [0.1, 0.1],
             "coef_true": [0.0, 1.0]} for f in (0.0, 0.2) for s in range(3)]
    table = coverage_table(pd.DataFrame(rows))
    assert len(table) == 2
    assert list(codebook("coverage.csv", table.columns)["column"]) == list(table.columns)


def test_register_adds_a_file_and_refuses_a_second_meaning():
    name = "test_only_breakdown.csv"
    try:
        register(name, {"breakdown_point": ("the smallest fraction at which the error explodes", "")})
        register(name, {"n": ("jobs", "jobs")})  # more columns later
        assert list(codebook(name, ["breakdown_point", "n"])["unit"]) == ["", "jobs"]
        assert f"### [{name}]({name})" in codebook_markdown({name: ["n"]})
        with pytest.raises(ValueError, match="breakdown_point"):
            register(name, {"breakdown_point": ("something else", "")})
        with pytest.raises(ValueError, match="meaning"):
            register(name, {"bad": ("", "")})
    finally:
        CODEBOOKS.pop(name, None)
    assert name not in CODEBOOKS
