"""experiments/report.py end to end on a small real sweep: files, counts, figures, errors, determinism."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from test_report_records import write_sweep

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "report.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PDF_MAGIC = b"%PDF-"


def _load_cli():
    spec = importlib.util.spec_from_file_location("report_cli", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_in_process(capsys, *args):
    """The CLI's main() in this process (no interpreter start-up): (exit status, stdout, stderr)."""
    status = _load_cli().main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    sweep = root / "runs" / "small"
    # Under leverage points the constant step 0.5 makes L2 diverge: the diverged path is exercised too.
    n_done = write_sweep(sweep, losses=("l1", "l2", "smooth_l1"), kinds=("leverage",),
                         fractions=(0.0, 0.2), seeds=range(3), steps=(("auto", 1.0), ("constant", 0.5)))
    before = snapshot(sweep)
    out = root / "results" / "small"
    proc = run_cli(sweep, "--out", out, "--index", root / "results", "--no-progress")
    return {"root": root, "sweep": sweep, "out": out, "proc": proc, "before": before, "n_done": n_done}


def test_cli_succeeds_and_prints_counts(reported):
    proc = reported["proc"]
    assert proc.returncode == 0, proc.stderr
    assert "expected 38, done 36, failed 1, diverged 3, not converged 0, missing 1" in proc.stdout


def test_tables_have_expected_rows(reported):
    out = reported["out"]
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 38 and runs["job_dir"].astype(str).is_unique
    assert runs["status"].value_counts()[["failed", "missing"]].tolist() == [1, 1]
    assert {"loss_label", "outliers", "fraction", "learning_rate", "eta0", "coef_error", "test_rmse", "n_iter",
            "converged", "diverged", "seed", "status"} <= set(runs.columns)
    # One column per setting, none packed into a string; coefficients in their own tidy table.
    assert not {"model_params", "dataset_params", "outlier_params", "loss_params", "coef"} & set(runs.columns)
    coefs = pd.read_csv(out / "coefficients.csv")
    assert list(coefs.columns) == ["job_dir", "term", "estimate", "reference", "true", "std_error"]
    done = runs[runs["status"].isin(["ok", "diverged", "not_converged"])]
    assert set(coefs["job_dir"]) <= set(done["job_dir"]) and coefs["term"].iloc[0] == "intercept"
    summary = pd.read_csv(out / "summary.csv")
    # 3 losses x 2 fractions x 2 steps; the failed job belongs to one of these groups.
    assert len(summary) == 12
    assert summary["n"].sum() == 36 and summary["failed"].sum() == 1 and summary["diverged"].sum() == 3
    assert (summary["n"] == 3).all()
    paired = pd.read_csv(out / "paired.csv")
    assert len(paired) == 2 * 2 * 2 and set(paired["loss_label"]) == {"l1", "smooth_l1"}
    assert (paired["n_pairs"] == 3).all()
    hist = pd.read_parquet(out / "histories.parquet")
    done = runs[runs["status"].isin(["ok", "diverged"])]
    assert len(hist) == done["n_iter"].sum()


def test_every_figure_is_a_png_and_a_pdf(reported):
    out = reported["out"]
    text = (out / "report.md").read_text()
    figures = sorted((out / "figures").iterdir())
    stems = {p.stem for p in figures}
    for stem in stems:
        png, pdf = out / "figures" / f"{stem}.png", out / "figures" / f"{stem}.pdf"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
        assert pdf.read_bytes()[:5] == PDF_MAGIC and pdf.stat().st_size > 1000
        assert f"figures/{stem}.png" in text
    kinds = {s.split("-")[0] for s in stems}
    assert kinds == {"error_vs_fraction", "convergence", "grad_norm", "step_map"}
    # The study varies the step: one file per step setting.
    assert {"error_vs_fraction-01", "error_vs_fraction-02", "grad_norm-01", "grad_norm-02"} <= stems
    # What was not drawn is listed with its reason.
    assert "`real_data`: no uncontaminated one-feature real data set" in text
    assert "`penalty`: no penalty with at least two values of alpha" in text


def test_report_lists_failed_and_missing_jobs(reported):
    out, sweep = reported["out"], reported["sweep"]
    sweep_jobs = json.loads((sweep / "sweep.json").read_text())["jobs"]
    failed_dir = next(d for d in sorted(p.name for p in sweep.iterdir() if (p / "failure.json").exists()))
    missing = sweep_jobs[-1]
    assert not (sweep / missing["job_dir"]).exists()
    text = (out / "report.md").read_text()
    section = text[text.index("## Failed, not-converged and missing jobs"):]
    assert f"| {failed_dir} |" in section and "LinAlgError: SVD did not converge" in section
    assert f"| {missing['job_dir']} | {' '.join(missing['overrides'])} |" in section
    assert "| 38 | 36 | 1 | 3 | 0 | 1 |" in text


def test_report_has_claims_with_rules_and_versions(reported):
    text = (reported["out"] / "report.md").read_text()
    for claim in ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8"):
        assert f"| {claim} |" in text and f"- **{claim}**:" in text
    assert "percentile bootstrap of the median" in text
    for lib in ("python", "numpy", "scipy", "scikit-learn", "pandas", "robustreg"):
        assert lib + " " in text.split("## Software", 1)[1]
    digest = json.loads((reported["out"] / "report.json").read_text())
    assert digest["counts"] == {"expected": 38, "done": 36, "failed": 1, "diverged": 3, "not_converged": 0,
                                "missing": 1}
    assert set(digest["verdicts"]) == {f"C{i}" for i in range(1, 9)}


def test_sweep_folder_is_never_written(reported):
    assert snapshot(reported["sweep"]) == reported["before"]


def test_index_links_the_study(reported):
    index = (reported["root"] / "results" / "README.md").read_text()
    assert "[small](small/report.md) | 38 | 36 | 1 | 3 | 0 | 1 |" in index


def test_tables_are_byte_identical_on_a_second_run(reported, tmp_path, capsys):
    again = tmp_path / "again"
    status, _, err = run_in_process(capsys, reported["sweep"], "--out", again, "--no-figures", "--no-progress")
    assert status == 0, err
    for name in ("summary.csv", "paired.csv", "runs.csv"):
        assert (again / name).read_bytes() == (reported["out"] / name).read_bytes(), name
    assert not (again / "figures").exists()
    assert "figures were not requested" in (again / "report.md").read_text()


@pytest.mark.parametrize("make", ["empty", "no_records"])
def test_folder_without_records_is_one_line_exit_2(tmp_path, make):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    if make == "no_records":
        (sweep / "sweep.json").write_text(json.dumps({"schema_version": 1, "jobs": [{"job_dir": "0"}]}))
        (sweep / "0").mkdir()
    out = tmp_path / "out"
    proc = run_cli(sweep, "--out", out)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no job records") and str(sweep) in lines[0]
    assert proc.stdout == "" and not out.exists()


def test_out_inside_sweep_is_refused(reported, capsys):
    before = snapshot(reported["sweep"])
    status, out, err = run_in_process(capsys, reported["sweep"], "--out", reported["sweep"] / "report")
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "inside the sweep folder" in err
    assert snapshot(reported["sweep"]) == before


def test_index_folder_must_exist(reported, tmp_path, capsys):
    out = tmp_path / "out"
    status, _, err = run_in_process(capsys, reported["sweep"], "--out", out, "--index", tmp_path / "nowhere")
    assert status == 2 and err.startswith("error: --index") and "is not a folder" in err
    assert not out.exists()
