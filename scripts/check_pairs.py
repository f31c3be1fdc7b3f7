"""Check that every chapter's two files agree: notebooks/NN_name.py (edited) and notebooks/NN_name.ipynb (shown).

Every notebooks/*.ipynb needs a notebooks/*.py twin and vice versa, and their inputs must match cell by cell:
same cell types, same sources, same tags. Outputs, execution counts, cell ids and other metadata are ignored.

Usage: python scripts/check_pairs.py [DIRECTORY]   (default: notebooks/ beside this script's parent)
Exit status 0 when all pairs agree, 1 otherwise, with one line per problem.

To repair a pair after editing the .py file:  jupytext --to ipynb --update notebooks/NN_name.py
(keeps the stored outputs of unchanged cells), or re-execute it with `make book-exec`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jupytext

_BLANK = re.compile(r"^\s*$")


def _norm(source: str) -> list[str]:
    """Lines without trailing whitespace and without blank lines at the end (jupytext's allowance)."""
    lines = [line.rstrip() for line in source.splitlines()]
    while lines and _BLANK.match(lines[-1]):
        lines.pop()
    return lines


def _first_difference(a: str, b: str) -> str | None:
    """None when the sources agree, else where they first differ (1-based line numbers)."""
    la, lb = _norm(a), _norm(b)
    if la == lb:
        return None
    for k, (x, y) in enumerate(zip(la, lb), start=1):
        if x != y:
            return f"line {k}: .py has {x[:80]!r}, .ipynb has {y[:80]!r}"
    k = min(len(la), len(lb)) + 1
    if len(la) > len(lb):
        return f"line {k}: .py has {la[k - 1][:80]!r}, .ipynb has nothing"
    return f"line {k}: .py has nothing, .ipynb has {lb[k - 1][:80]!r}"


def _tags(cell) -> list[str]:
    return sorted(cell.get("metadata", {}).get("tags", []) or [])


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:80]
    return "<empty>"


def compare_pair(py_path: Path, ipynb_path: Path) -> str | None:
    """Compare the inputs of one pair; return a message about the first difference, or None when they agree."""
    nb_py = jupytext.read(py_path)
    nb_ipynb = jupytext.read(ipynb_path)
    cells_py, cells_nb = nb_py.cells, nb_ipynb.cells
    for i, (a, b) in enumerate(zip(cells_py, cells_nb), start=1):
        if a.cell_type != b.cell_type:
            return (
                f"{ipynb_path}: cell {i} is a {b.cell_type} cell but the {py_path.name} twin has a "
                f"{a.cell_type} cell ({_first_line(a.source)!r})"
            )
        difference = _first_difference(a.source, b.source)
        if difference:
            return f"{ipynb_path}: cell {i} ({a.cell_type}) differs from {py_path.name} at {difference}"
        if _tags(a) != _tags(b):
            return f"{ipynb_path}: cell {i} tags {_tags(b)} differ from {py_path.name} tags {_tags(a)}"
    if len(cells_py) != len(cells_nb):
        n = min(len(cells_py), len(cells_nb)) + 1
        extra = cells_py[n - 1] if len(cells_py) > len(cells_nb) else cells_nb[n - 1]
        where = py_path.name if len(cells_py) > len(cells_nb) else ipynb_path.name
        return (
            f"{ipynb_path}: {len(cells_nb)} cells but {py_path.name} has {len(cells_py)}; "
            f"first unmatched cell {n} is in {where} ({_first_line(extra.source)!r})"
        )
    return None


def check_pairs(directory: str | Path) -> list[str]:
    """Return the list of problems found in `directory` (empty when every pair agrees)."""
    directory = Path(directory)
    if not directory.is_dir():
        return [f"{directory}: no such directory"]
    problems: list[str] = []
    py_files = {p.stem: p for p in sorted(directory.glob("*.py")) if not p.name.startswith(("_", "."))}
    nb_files = {p.stem: p for p in sorted(directory.glob("*.ipynb"))}
    for stem in sorted(set(py_files) | set(nb_files)):
        if stem not in nb_files:
            problems.append(
                f"{py_files[stem]}: no paired {stem}.ipynb (create it with "
                f"`jupytext --to ipynb {py_files[stem]}`, then execute it)"
            )
        elif stem not in py_files:
            problems.append(
                f"{nb_files[stem]}: no paired {stem}.py (create it with "
                f"`jupytext --to py:percent {nb_files[stem]}`)"
            )
        else:
            try:
                message = compare_pair(py_files[stem], nb_files[stem])
            except Exception as err:  # unreadable file: report it like any other problem
                message = f"{nb_files[stem]}: could not compare with {stem}.py: {type(err).__name__}: {err}"
            if message:
                problems.append(message)
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    directory = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "notebooks"
    problems = check_pairs(directory)
    if problems:
        print(f"check_pairs: {len(problems)} problem(s) in {directory}:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print(
            "Fix: edit the .py file, then `jupytext --to ipynb --update notebooks/NN_name.py` "
            "(or `make book-exec` to re-execute).",
            file=sys.stderr,
        )
        return 1
    n = len(list(directory.glob("*.ipynb")))
    print(f"check_pairs: {n} notebook pair(s) in {directory} agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
