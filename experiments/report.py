"""Turn a sweep folder of job records into tables, figures, claim verdicts and report.md.

    python experiments/report.py results/runs/contamination --out results/contamination
    python experiments/report.py results/runs/contamination --out results/contamination --index results

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
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
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
