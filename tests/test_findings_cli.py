"""experiments/findings.py end to end on two small studies: the reports it writes, the pool, its errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from test_report_records import write_sweep

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_cli", ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(capsys, name: str, *args):
    status = _load(name).main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("findings")
    sweeps = []
    for study, kinds in (("alpha", ("vertical",)), ("beta", ("leverage",))):
        sweep = root / "runs" / study
        write_sweep(sweep, study=study, kinds=kinds, seeds=range(4), missing=0, failed=0,
                    losses=("l1", "l2", "smooth_l1", "huber"))
        sweeps.append(sweep)
    return root, sweeps


def test_reports_written_by_the_findings_step_are_those_of_report_py(studies, tmp_path, capsys):
    root, sweeps = studies
    before = {s.name: snapshot(s) for s in sweeps}
    alone, pooled = tmp_path / "alone", tmp_path / "pooled"
    for sweep in sweeps:
        status, _, err = run(capsys, "report", sweep, "--out", alone / sweep.name, "--no-progress")
        assert status == 0, err
    pooled.mkdir()
    status, out, err = run(capsys, "findings", *sweeps, "--out", pooled, "--report", "alpha", "--report", "beta")
    assert status == 0, err
    assert out.count("report: ") == 2 and "C1: " in out
    for sweep in sweeps:
        for name in ("report.md", "runs.csv", "summary.csv", "paired.csv", "coefficients.csv", "report.json"):
            assert (pooled / sweep.name / name).read_bytes() == (alone / sweep.name / name).read_bytes(), name
        figures = sorted(p.name for p in (alone / sweep.name / "figures").iterdir())
        assert figures and sorted(p.name for p in (pooled / sweep.name / "figures").iterdir()) == figures
        assert snapshot(sweep) == before[sweep.name]  # the sweep folders are only read
    # Huber and Smooth L1 at their default constants are one loss: the captions say so where their lines meet.
    text = (pooled / "alpha" / "report.md").read_text()
    assert "smooth_l1 and huber are the same loss" in text
    info = json.loads((pooled / "findings.json").read_text())
    assert sorted(info["reports"]) == ["alpha", "beta"]
    assert [f["claim"] for f in info["findings"]] == [f"C{k}" for k in range(1, 9)]
    # Without --report the findings read the reports already there: the same page.
    page = (pooled / "README.md").read_bytes()
    status, out, err = run(capsys, "findings", *sweeps, "--out", pooled, "--no-figures")
    assert status == 0, err
    assert "report: " not in out
    assert (pooled / "README.md").read_bytes() == page


def test_report_of_a_study_not_given_is_one_line_exit_2(studies, tmp_path, capsys):
    _, sweeps = studies
    status, out, err = run(capsys, "findings", *sweeps, "--out", tmp_path, "--report", "gamma")
    assert status == 2 and out == ""
    assert err.strip().splitlines() == [
        "error: --report gamma is not one of the given studies; allowed: alpha, beta"]
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_record_is_named_and_the_rest_judged(studies, tmp_path, capsys):
    _, sweeps = studies
    damaged = tmp_path / "runs" / "alpha"
    write_sweep(damaged, study="alpha", kinds=("vertical",), seeds=range(4), missing=0, failed=0)
    (damaged / "0" / "metrics.json").write_text("{not json")
    out_dir = tmp_path / "results"
    out_dir.mkdir()
    status, out, err = run(capsys, "findings", damaged, sweeps[1], "--out", out_dir, "--no-figures",
                           "--report", "alpha", "--report", "beta")
    assert status == 1
    assert f"error: damaged record: {damaged / '0'}" in err
    assert (out_dir / "README.md").is_file() and (out_dir / "alpha" / "report.md").is_file()
