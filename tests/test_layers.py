"""The one-way flow of the package, read from its import statements: library -> study -> report."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "robustreg"


def _imports(path: Path) -> set:
    """The robustreg modules a file imports (relative imports resolved), at any depth of the file."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found |= {f"{name}.{a.name}" for a in node.names}
    return {m for m in found if m == "robustreg" or m.startswith("robustreg.")}


def _offending(folder: Path, forbidden) -> dict:
    out = {}
    for path in sorted(folder.rglob("*.py")):
        bad = sorted(m for m in _imports(path) if any(m == f or m.startswith(f + ".") for f in forbidden))
        if bad:
            out[str(path.relative_to(PACKAGE))] = bad
    return out


def test_the_report_reads_records_never_the_losses_or_the_data_sets():
    assert _offending(PACKAGE / "report", ("robustreg.losses", "robustreg.datasets", "robustreg.estimator")) == {}


def test_the_library_never_imports_the_study_layer_or_the_report():
    library = [p for p in PACKAGE.glob("*.py")] + list((PACKAGE / "datasets").rglob("*.py"))
    bad = {}
    for path in library:
        hit = sorted(m for m in _imports(path) if m.startswith(("robustreg.study", "robustreg.report")))
        if hit:
            bad[path.name] = hit
    assert bad == {}


def test_the_checker_sees_relative_imports():
    # The check above can fail: the study layer does import the losses, relatively.
    assert "robustreg.losses" in _imports(PACKAGE / "study" / "job.py")
