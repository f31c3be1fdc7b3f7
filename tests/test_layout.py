"""The house rules of the layout: a cheap ``import gfcore``, no plotting libraries behind the tensor code, the
import contracts of pyproject.toml, files written only by ``train`` and ``cli``, and the README's table of
``gfcore/`` and the package docstring in step with the tree."""
import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gfcore

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gfcore"
PLOTTING = "('matplotlib', 'pyvista', 'vtk')"


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_import_gfcore_loads_no_submodule():
    proc = run_python("import sys, gfcore; print(gfcore.__version__); "
                      "print(sorted(m for m in sys.modules if m.startswith('gfcore')))\n"
                      "print(sorted(m for m in ('torch', 'numpy', 'matplotlib', 'pyvista') "
                      "if m in sys.modules))")
    assert proc.returncode == 0, proc.stderr
    version, loaded, heavy = proc.stdout.splitlines()
    assert version == gfcore.__version__
    assert loaded == "['gfcore', 'gfcore._version']" and heavy == "[]"


def test_tensor_code_loads_no_plotting_library():
    proc = run_python("import gfcore.fields, gfcore.models, gfcore.train, gfcore.sampling, "
                      "gfcore.losses, gfcore.metrics, gfcore.evaluation, gfcore.data, sys\n"
                      f"bad = sorted(m for m in sys.modules if m.startswith({PLOTTING}))\n"
                      "assert not bad, bad")
    assert proc.returncode == 0, proc.stderr


def test_2d_plots_load_no_pyvista():
    proc = run_python("import gfcore.viz, sys\n"
                      "bad = sorted(m for m in sys.modules if m.startswith(('pyvista', 'vtk')))\n"
                      "assert not bad, bad\nassert 'matplotlib' in sys.modules")
    assert proc.returncode == 0, proc.stderr


def test_submodules_load_on_first_use():
    assert set(gfcore.__all__) >= {"fields", "models", "train", "viz", "viz3d", "mode", "evaluation"}
    assert gfcore.mode.current() in ("fast", "full")
    assert "train" in dir(gfcore)
    with pytest.raises(AttributeError, match="no attribute 'config'"):
        gfcore.config  # noqa: B018  (renamed to gfcore.mode)


def test_every_listed_submodule_exists():
    for name in gfcore._SUBMODULES:
        assert (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name / "__init__.py").is_file(), name


@pytest.mark.skipif(shutil.which("lint-imports", path=str(Path(sys.executable).parent)) is None,
                    reason="import-linter is not installed (requirements.txt)")
def test_import_contracts_are_kept():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "broken" in proc.stdout and " 0 broken" in proc.stdout


# -- only train/ and cli.py write files -------------------------------------------------------------------
# Calls that write files; the allowance below names each other module that writes, and why.
WRITERS = {"save", "savez", "savez_compressed", "write_text", "write_bytes", "to_csv", "savefig", "mkdir",
           "replace", "unlink", "rmtree"}
ALLOWED = {
    "gfcore/train", "gfcore/cli",
    "gfcore/surface/io.py",  # write_mesh: exports a mesh the caller asked for (PLY/OBJ)
    "gfcore/viz3d.py",       # to_html: the vtk.js export goes through a temporary file that it deletes
}


def _writes(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name == "open":
            modes = [k.value for k in node.keywords if k.arg == "mode"]
            mode = node.args[1] if len(node.args) > 1 else modes[0] if modes else None
            text = mode.value if isinstance(mode, ast.Constant) and isinstance(mode.value, str) else ""
            if set(text) & set("wax+"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} open(..., {mode.value!r})")
        elif name in WRITERS and isinstance(func, ast.Attribute):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{name}(...)")
    return found


def test_only_train_and_cli_write_files():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if any(rel == a or rel.startswith(a + "/") for a in ALLOWED):
            continue
        offenders += _writes(path)
    assert not offenders, "files written outside gfcore/train and gfcore/cli/:\n" + "\n".join(offenders)
    assert _writes(PACKAGE / "train" / "checkpoint.py")      # the scan does see the writers it allows


# -- the README's table of gfcore/ and the package docstring name what the tree holds -----------------------------
def _readme_table() -> list[str]:
    """The names in the first column of the README's ``| module | holds |`` table (``name.py`` or ``name/``)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("| module | holds |")
    names = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        names += re.findall(r"`([^`]+)`", line.split("|")[1])
    return names


def _tree() -> set[str]:
    """The public top-level modules (``name.py``) and packages (``name/``) of ``gfcore/``."""
    found = set()
    for path in PACKAGE.iterdir():
        if path.name.startswith(("_", ".")):
            continue
        if path.is_file() and path.suffix == ".py":
            found.add(path.name)
        elif path.is_dir() and (path / "__init__.py").is_file():
            found.add(path.name + "/")
    return found


def test_readme_table_lists_the_package_tree():
    listed = _readme_table()
    assert len(listed) >= 10, listed
    assert len(listed) == len(set(listed)), f"listed twice: {sorted({n for n in listed if listed.count(n) > 1})}"
    stale = [n for n in listed if not ((PACKAGE / n[:-1] / "__init__.py").is_file() if n.endswith("/") else
                                       n.endswith(".py") and (PACKAGE / n).is_file())]
    assert not stale, f"README's gfcore table lists what gfcore/ does not hold (a package is `name/`): {stale}"
    missing = sorted(_tree() - set(listed))
    assert not missing, f"README's gfcore table misses {missing}"


def test_package_docstring_names_every_top_level_module():
    missing = sorted(n for n in _tree() if f"``{n.removesuffix('/').removesuffix('.py')}``" not in gfcore.__doc__)
    assert not missing, f"gfcore/__init__.py's docstring does not name {missing}"


def test_the_table_checks_fail_on_a_stale_or_missing_entry(monkeypatch):
    """The check itself: a module renamed into a package, and a new module, are both caught."""
    listed = _readme_table()
    monkeypatch.setattr(sys.modules[__name__], "_readme_table",
                        lambda: [n if n != "surface/" else "surface.py" for n in listed])
    with pytest.raises(AssertionError, match=r"does not hold .*surface\.py"):
        test_readme_table_lists_the_package_tree()
    monkeypatch.setattr(sys.modules[__name__], "_readme_table", lambda: [n for n in listed if n != "fields.py"])
    with pytest.raises(AssertionError, match=r"misses \['fields\.py'\]"):
        test_readme_table_lists_the_package_tree()


def test_no_module_is_over_450_lines():
    """One job per module: a module that grows past about 400 lines is split by job (issue 18 set 450 as the limit)."""
    long = {str(p.relative_to(ROOT)): n for p in sorted(PACKAGE.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > 450}
    assert not long, f"split these modules by job: {long}"
