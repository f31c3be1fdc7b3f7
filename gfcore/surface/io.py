"""Meshes out of gfcore: PLY/OBJ files and ``pyvista.PolyData``. The one module of ``gfcore.surface`` that
writes files (``write_mesh``, on request) and imports pyvista (``to_polydata``, inside the function).

Taught in chapter 8 (From gradients to surfaces).
"""
from __future__ import annotations

import os

import numpy as np
import torch

from gfcore import _checks


def _mesh_arrays(vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    v = vertices.detach().cpu().numpy() if isinstance(vertices, torch.Tensor) else np.asarray(vertices)
    f = faces.detach().cpu().numpy() if isinstance(faces, torch.Tensor) else np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] == 0 or not np.issubdtype(v.dtype, np.floating):
        raise ValueError(f"vertices must be a non-empty floating (V, 3) array, got shape {v.shape}, "
                         f"{v.dtype}")
    if not np.isfinite(v).all():
        raise ValueError("vertices contain NaN or inf")
    if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] == 0 or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"faces must be a non-empty integer (F, 3) array, got shape {f.shape}, {f.dtype}")
    if f.min() < 0 or f.max() >= len(v):
        raise ValueError(f"faces index vertices 0..{len(v) - 1}, got indices {f.min()}..{f.max()}")
    return v, f.astype(np.int64)


def write_mesh(path, vertices, faces) -> str:
    """Write a triangle mesh as ASCII PLY (``.ply``) or Wavefront OBJ (``.obj``), by the file's suffix.

    Args:
        path: the file to write (its folder must exist).
        vertices: ``(V, 3)`` floating tensor or array.
        faces: ``(F, 3)`` integer vertex indices (0-based; OBJ's 1-based indices are written for you).

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: an unknown suffix, malformed arrays, indices out of range.

    Taught in chapter 8 (From gradients to surfaces).
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    _checks.choice("path suffix", suffix, (".ply", ".obj"))
    v, f = _mesh_arrays(vertices, faces)
    vtext = "\n".join(" ".join(f"{c:.7g}" for c in row) for row in v)
    if suffix == ".ply":
        header = ["ply", "format ascii 1.0", "comment written by gfcore.surface", f"element vertex {len(v)}",
                  "property float x", "property float y", "property float z", f"element face {len(f)}",
                  "property list uchar int vertex_indices", "end_header"]
        ftext = "\n".join(f"3 {a} {b} {c}" for a, b, c in f)
        text = "\n".join(header) + "\n" + vtext + "\n" + ftext + "\n"
    else:
        text = ("# written by gfcore.surface\n" + "\n".join("v " + line for line in vtext.split("\n")) + "\n"
                + "\n".join(f"f {a + 1} {b + 1} {c + 1}" for a, b, c in f) + "\n")
    with open(path, "w", encoding="ascii") as fh:
        fh.write(text)
    return path


def to_polydata(vertices, faces):
    """A ``pyvista.PolyData`` of a triangle mesh (pyvista is imported here, only when called).

    Args:
        vertices: ``(V, 3)``; faces: ``(F, 3)`` indices.

    Returns:
        ``pyvista.PolyData``.

    Raises:
        ImportError: pyvista is not installed. ValueError: malformed arrays.

    Taught in chapter 8 (From gradients to surfaces).
    """
    v, f = _mesh_arrays(vertices, faces)
    try:
        import pyvista
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("to_polydata needs pyvista: pip install pyvista") from err
    cells = np.hstack([np.full((len(f), 1), 3, dtype=np.int64), f]).ravel()
    return pyvista.PolyData(v.astype(np.float32), cells)
