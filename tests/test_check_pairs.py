"""scripts/check_pairs.py: every notebooks/*.ipynb has a notebooks/*.py twin with the same inputs."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PY_SOURCE = """\
# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A title
#
# Some text.

# %% tags=["hide-input"]
x = 1 + 1
print(x)
"""


def _load_script():
    spec = importlib.util.spec_from_file_location("check_pairs", ROOT / "scripts" / "check_pairs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cp():
    return _load_script()


def _ipynb(cells, *, outputs=True):
    """A notebook as Jupyter writes it, with outputs and extra metadata that must be ignored."""
    nb_cells = []
    for i, (cell_type, source, tags) in enumerate(cells):
        cell = {"cell_type": cell_type, "id": f"cell-{i}", "metadata": {"tags": tags} if tags else {}}
        cell["source"] = source
        if cell_type == "code":
            cell["execution_count"] = i + 1 if outputs else None
            cell["outputs"] = (
                [{"name": "stdout", "output_type": "stream", "text": ["2\n"]}] if outputs else []
            )
            cell["metadata"]["execution"] = {"iopub.status.busy": "2020-01-01T00:00:00"}
        nb_cells.append(cell)
    return {
        "cells": nb_cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python", "version": "3.11.7"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


MATCHING = [
    ("markdown", "# A title\n\nSome text.", None),
    ("code", "x = 1 + 1\nprint(x)", ["hide-input"]),
]


def _write(directory: Path, stem: str, py: str | None, nb: dict | None):
    if py is not None:
        (directory / f"{stem}.py").write_text(py)
    if nb is not None:
        (directory / f"{stem}.ipynb").write_text(json.dumps(nb, indent=1))


def test_matching_pair_passes(cp, tmp_path):
    _write(tmp_path, "01_demo", PY_SOURCE, _ipynb(MATCHING))
    assert cp.check_pairs(tmp_path) == []
    assert cp.main([str(tmp_path)]) == 0


def test_pair_made_by_jupytext_passes(cp, tmp_path):
    jupytext = pytest.importorskip("jupytext")
    (tmp_path / "02_demo.py").write_text(PY_SOURCE)
    jupytext.write(jupytext.read(tmp_path / "02_demo.py"), tmp_path / "02_demo.ipynb")
    assert cp.check_pairs(tmp_path) == []


def test_changed_source_fails_naming_file_and_cell(cp, tmp_path, capsys):
    cells = [MATCHING[0], ("code", "x = 1 + 2\nprint(x)", ["hide-input"])]
    _write(tmp_path, "01_demo", PY_SOURCE, _ipynb(cells))
    problems = cp.check_pairs(tmp_path)
    assert len(problems) == 1
    assert "01_demo.ipynb" in problems[0] and "cell 2" in problems[0]
    assert cp.main([str(tmp_path)]) == 1
    assert "01_demo.ipynb" in capsys.readouterr().err


def test_changed_cell_type_and_tags_and_count_fail(cp, tmp_path):
    _write(tmp_path, "a", PY_SOURCE, _ipynb([("code", MATCHING[0][1], None), MATCHING[1]]))
    _write(tmp_path, "b", PY_SOURCE, _ipynb([MATCHING[0], ("code", MATCHING[1][1], None)]))
    _write(tmp_path, "c", PY_SOURCE, _ipynb(MATCHING + [("code", "y = 3", None)]))
    problems = cp.check_pairs(tmp_path)
    assert len(problems) == 3
    assert "a.ipynb: cell 1" in problems[0]
    assert "b.ipynb: cell 2 tags" in problems[1]
    assert "c.ipynb: 3 cells" in problems[2]


def test_orphans_fail(cp, tmp_path):
    _write(tmp_path, "01_only_py", PY_SOURCE, None)
    _write(tmp_path, "02_only_ipynb", None, _ipynb(MATCHING))
    problems = cp.check_pairs(tmp_path)
    assert len(problems) == 2
    assert "01_only_py.py: no paired 01_only_py.ipynb" in problems[0]
    assert "02_only_ipynb.ipynb: no paired 02_only_ipynb.py" in problems[1]
    assert cp.main([str(tmp_path)]) == 1


def test_outputs_do_not_matter(cp, tmp_path):
    _write(tmp_path, "01_demo", PY_SOURCE, _ipynb(MATCHING, outputs=False))
    assert cp.check_pairs(tmp_path) == []
