"""Judge each claim once, on the records of every given study together, and write the findings page.

    python experiments/findings.py results/runs/real_data results/runs/contamination ... --out results
    python experiments/findings.py results/runs/* --out results --report contamination --report real_data

Reads the studies' sweep folders (only read) and their reports in ``--out``
(each study's ``histories.parquet`` lends its histories), writes
``--out/README.md`` (the findings, then the index of studies),
``--out/findings.json`` and ``--out/figures/loss_shapes.png``.  With
``--report NAME``, that study's report is written first (as
``report.py`` writes it, into ``--out/NAME``), and the report and the
findings read its records once.  A folder that is not a sweep ends with one
line on stderr and exit status 2; a record file that cannot be read is named
on stderr, the rest is judged, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robustreg.losses import registered_losses
from robustreg.report import ReportError
from robustreg.report.findings import make_findings


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="findings.py", description=__doc__.splitlines()[0])
    p.add_argument("sweeps", type=Path, nargs="+", help="the studies' sweep folders (results/runs/NAME)")
    p.add_argument("--out", type=Path, default=Path("results"), help="the results folder (default: results)")
    p.add_argument("--report", action="append", default=[], metavar="NAME",
                   help="write this study's report first, into --out/NAME (repeat for several)")
    p.add_argument("--no-figures", action="store_true", help="draw no figure (the loss shapes, the reports' figures)")
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
        done = make_findings(args.sweeps, args.out, figures=not args.no_figures, reports=args.report,
                             losses=registered_losses())
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in done.reports:
        print(line)
    for f in done.findings:
        stable = "stable" if f.stable else f"unstable ({f.halves[0].verdict} / {f.halves[1].verdict})"
        print(f"  {f.claim}: {f.pooled.verdict}, {stable}")
    print(f"findings: {args.out / 'README.md'}")
    for line in done.damaged:
        print(f"error: damaged record: {line}", file=sys.stderr)
    if done.damaged:
        print(f"error: {len(done.damaged)} record file(s) cannot be read; the rest is judged. "
              "Run the sweep again to redo their jobs.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
