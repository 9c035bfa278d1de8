"""Judge each claim once, on the records of every given study together, and write the findings page.

    python experiments/findings.py results/runs/real_data results/runs/contamination ... --out results

Reads the studies' sweep folders (only read) and their reports in ``--out``
(each study's ``histories.parquet`` lends its histories), writes
``--out/README.md`` (the findings, then the index of studies),
``--out/findings.json`` and ``--out/figures/loss_shapes.png``.  A folder that
is not a sweep ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robustreg.report import ReportError
from robustreg.report.findings import make_findings


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="findings.py", description=__doc__.splitlines()[0])
    p.add_argument("sweeps", type=Path, nargs="+", help="the studies' sweep folders (results/runs/NAME)")
    p.add_argument("--out", type=Path, default=Path("results"), help="the results folder (default: results)")
    p.add_argument("--no-figures", action="store_true", help="do not draw the loss-shape figure")
    args = p.parse_args(argv)
    for sweep in args.sweeps:
        if not sweep.is_dir():
            print(f"error: sweep folder {str(sweep)!r} does not exist; allowed: a folder of job records", file=sys.stderr)
            return 2
    if not args.out.is_dir():
        print(f"error: --out {str(args.out)!r} is not a folder; allowed: the results folder of the reports",
              file=sys.stderr)
        return 2
    try:
        findings = make_findings(args.sweeps, args.out, figures=not args.no_figures)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for f in findings:
        stable = "stable" if f.stable else f"unstable ({f.halves[0].verdict} / {f.halves[1].verdict})"
        print(f"  {f.claim}: {f.pooled.verdict}, {stable}")
    print(f"findings: {args.out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
