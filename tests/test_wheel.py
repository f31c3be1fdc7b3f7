"""Packaging: the wheel built from the sources holds the shipped weights and model cards of ``gfcore/pretrained``,
and installed on its own (no editable checkout on the path) it runs ``python -m gfcore --help``/``--version`` and
lists the shipped models. Offline: ``pip wheel`` without build isolation or an index, ``pip install --target``."""
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import gfcore

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.name for p in (ROOT / "gfcore" / "pretrained").iterdir() if p.suffix in (".pt", ".json"))


def _pip(*args, cwd):
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    proc = subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (so the build leaves nothing in the working tree)."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("the build backend (setuptools, pyproject.toml [build-system]) is not installed here")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT / "gfcore", src / "gfcore", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    _pip("wheel", str(src), "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp / "dist"), cwd=tmp)
    (built,) = (tmp / "dist").glob("gfcore-*.whl")
    return built


def test_the_wheel_holds_the_shipped_weights_and_cards(wheel):
    assert len(SHIPPED) >= 2 and any(n.endswith(".pt") for n in SHIPPED), SHIPPED
    assert wheel.name.startswith(f"gfcore-{gfcore.__version__}-")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        inside = sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("gfcore/pretrained/")
                        and n.endswith((".pt", ".json")))
        assert inside == SHIPPED
        for name in SHIPPED:   # the files themselves, not empty stand-ins
            assert zf.getinfo(f"gfcore/pretrained/{name}").file_size == (ROOT / "gfcore" / "pretrained" /
                                                                       name).stat().st_size
    assert "gfcore/__main__.py" in names and ("gfcore/cli/__init__.py" in names or "gfcore/cli.py" in names)


def test_the_installed_wheel_runs_the_cli_and_lists_the_shipped_models(wheel, tmp_path):
    site = tmp_path / "site"
    _pip("install", "--no-deps", "--no-index", "--target", str(site), str(wheel), cwd=tmp_path)
    # the installed copy, not the checkout: run from an empty folder with only the target dir added to the path
    env = {**os.environ, "PYTHONPATH": str(site), "MPLBACKEND": "Agg"}

    def python(*args):
        proc = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    out = python("-c", "import gfcore, gfcore.pretrained; print(gfcore.__file__); "
                       "print(','.join(gfcore.pretrained.available()))")
    where, models = out.splitlines()
    assert Path(where).resolve().is_relative_to(site.resolve()), where
    assert models.split(",") == sorted({Path(n).stem for n in SHIPPED})
    helptext = python("-m", "gfcore", "--help")
    assert all(cmd in helptext for cmd in ("train", "sample", "eval", "mesh")), helptext
    assert python("-m", "gfcore", "--version").split() == ["gfcore", gfcore.__version__]
