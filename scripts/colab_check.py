"""The Colab check: every chapter runs as a Colab reader runs it (`make colab-check`).

For each `notebooks/NN_*.ipynb`: copy it alone into an empty folder and execute it (GF_MODE=fast) in a fresh
virtual environment that holds only what Colab preinstalls (torch, numpy, scipy, pandas, matplotlib, scikit-learn,
scikit-image, tqdm, pyyaml, ipywidgets, mlxtend, a Jupyter kernel, a current pip), not gfcore. The chapter's own
install cell must then bring in gfcore and every extra the chapter uses; its GitHub address is pointed at this
clone (`file://`), so the check runs offline and tests the working tree.

    python scripts/colab_check.py [--venv DIR] [--keep] [NN ...]

Prints one line per chapter and exits 1 when a chapter failed (its last output lines are shown). Not part of CI:
it installs packages and executes every chapter, about half an hour on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What Colab preinstalls that the book could touch (torch: the CPU build this project pins, so no CUDA download).
COLAB_PACKAGES = ["torch==2.13.0", "numpy", "scipy", "pandas", "matplotlib", "scikit-learn", "scikit-image", "tqdm",
                  "pyyaml", "ipywidgets", "mlxtend", "ipykernel", "nbclient", "nbformat"]
INSTALL_URL = re.compile(r"git\+https://github\.com/gfbook/gfbook")

EXECUTE = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=-1, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[1])
"""


def make_venv(path: Path) -> Path:
    """A fresh venv with Colab's packages only; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    py = path / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *COLAB_PACKAGES], check=True)
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = subprocess.run([str(py), "-c", "import gfcore"], capture_output=True, cwd=path, env=clean)
    if probe.returncode == 0:
        raise RuntimeError(f"{path} already has gfcore: the check needs a venv without it")
    return py


def point_install_cell_here(nb_path: Path) -> int:
    """Rewrite the install cell's GitHub address to this clone; returns how many places were rewritten."""
    nb = json.loads(nb_path.read_text())
    count = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        new, n = INSTALL_URL.subn(f"file://{ROOT}", src)
        if n:
            cell["source"], count = new, count + n
    nb_path.write_text(json.dumps(nb, indent=1))
    return count


def uninstall_gfcore(py: Path) -> None:
    """Each chapter starts without gfcore, as a fresh Colab runtime does."""
    subprocess.run([str(py), "-m", "pip", "uninstall", "-q", "-y", "gfcore"], capture_output=True)


def run_chapter(py: Path, notebook: Path) -> tuple[bool, float, str]:
    uninstall_gfcore(py)
    with tempfile.TemporaryDirectory(prefix="colab_") as folder:
        folder = Path(folder)
        copy = folder / notebook.name
        shutil.copy(notebook, copy)
        if point_install_cell_here(copy) == 0:
            return False, 0.0, "no install cell pointing at the book's repository"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(GF_MODE="fast", PATH=f"{py.parent}{os.pathsep}{env.get('PATH', '')}")
        env.pop("MPLBACKEND", None)
        t0 = time.perf_counter()
        proc = subprocess.run([str(py), "-c", EXECUTE, str(copy), str(folder)], cwd=folder, env=env,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        return proc.returncode == 0, seconds, "\n".join(tail)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("chapters", nargs="*", help="chapter numbers (default: all)")
    ap.add_argument("--venv", default=None, help="where to make the Colab-like venv (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the venv")
    args = ap.parse_args(argv)
    notebooks = sorted(ROOT.glob("notebooks/[0-9][0-9]_*.ipynb"))
    if args.chapters:
        notebooks = [nb for nb in notebooks if nb.name[:2] in {c.zfill(2) for c in args.chapters}]
    venv = Path(args.venv) if args.venv else Path(tempfile.mkdtemp(prefix="colab_venv_"))
    if venv.exists() and any(venv.iterdir()):
        raise SystemExit(f"{venv} is not empty: give a new folder")
    print(f"colab-check: a Colab-like venv in {venv} ({', '.join(COLAB_PACKAGES)})", flush=True)
    py = make_venv(venv)
    failed = []
    try:
        for nb in notebooks:
            ok, seconds, tail = run_chapter(py, nb)
            print(f"  {'ok  ' if ok else 'FAIL'} {seconds:6.0f} s  {nb.name}", flush=True)
            if not ok:
                failed.append(nb.name)
                print("       " + tail.replace("\n", "\n       "), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(venv, ignore_errors=True)
    print(f"colab-check: {len(notebooks) - len(failed)}/{len(notebooks)} chapters ran from an empty folder")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
