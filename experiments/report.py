"""Turn a sweep folder of job records into tables, figures, claim verdicts and report.md.

    python experiments/report.py results/runs/contamination --out results/contamination
    python experiments/report.py results/runs/contamination --out results/contamination --index results
    python experiments/report.py results/runs/contamination --mlflow sqlite:///results/runs/mlflow.db

A plain command-line program: it reads records and composes no config.  The
sweep folder is only read.  A folder without job records, or an output
folder inside the sweep folder, ends with one line on stderr and exit
status 2, and nothing is written.  A record file that cannot be read is named
on stderr, one line each; the rest is reported, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robustreg.report import ReportError, make_report


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=globals().get("PROG", "report.py"),  # robustreg-report, as the console script
        description="Tables, figures, claim verdicts and report.md for one sweep folder.",
    )
    p.add_argument("sweep", type=Path, help="the sweep folder (job folders with metrics.json / failure.json)")
    p.add_argument("--out", type=Path, default=None,
                   help="report folder (default: results/<study> under the current folder)")
    p.add_argument("--index", type=Path, default=None, metavar="RESULTS_DIR",
                   help="afterwards, rewrite RESULTS_DIR/README.md, the index of study reports")
    p.add_argument("--no-figures", action="store_true", help="write the tables and report.md only")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--mlflow", default=None, metavar="URI",
                   help="instead of the report, log the sweep's job records to the MLflow store URI "
                        "(sqlite:///PATH, http://HOST:PORT, or an SQLite file's path), one run per job; "
                        "jobs logged already are left (needs: pip install 'robustreg[mlflow]')")
    return p


def _to_mlflow(args) -> int:
    """``--mlflow URI``: the sweep folder's job records into MLflow (robustreg.study.tracking), no report."""
    from robustreg.study.tracking import TrackingError, log_sweep, normalize_uri

    uri = normalize_uri(args.mlflow)
    bar = None

    def progress(k, total):
        nonlocal bar
        if bar is None:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, leave=False, unit="job", desc="mlflow", mininterval=0.5, disable=total < 50)
        bar.update(1)

    try:
        done = log_sweep(args.sweep, uri, progress=None if args.no_progress else progress)
    except TrackingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the store failed midway: the jobs logged stay, the next import goes on from them
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"error: mlflow: {type(exc).__name__}: {first}; run the same command again to go on", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    print(f"mlflow: {len(done.logged)} job(s) logged, {len(done.already)} logged already, "
          f"{len(done.skipped)} skipped, {len(done.damaged)} damaged: {uri}")
    for line in done.skipped:
        print(f"  skipped: {line}")
    for line in done.damaged:
        print(f"error: damaged record, not logged: {line}", file=sys.stderr)
    return 1 if done.damaged else 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.mlflow is not None:
        return _to_mlflow(args)
    try:
        report = make_report(args.sweep, args.out, progress=not args.no_progress, index_dir=args.index,
                             figures=not args.no_figures)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = report.collection.counts()
    print(
        f"{report.collection.study}: expected {counts['expected']}, done {counts['done']}, "
        f"failed {counts['failed']}, diverged {counts['diverged']}, not converged {counts['not_converged']}, "
        f"missing {counts['missing']}"
    )
    for v in report.verdicts:
        print(f"  {v.claim}: {v.verdict}")
    print(f"report: {report.out_dir / 'report.md'} ({len(report.figures)} figures)")
    for line in report.collection.damaged:
        print(f"error: damaged record: {report.collection.sweep_dir / line}", file=sys.stderr)
    if report.collection.damaged:
        print(f"error: {len(report.collection.damaged)} record file(s) cannot be read; the rest is reported. "
              "Run the sweep again to redo their jobs.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
