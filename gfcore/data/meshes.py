"""Triangle meshes as point clouds: uniform surface sampling, and meshes that ship inside installed packages.

``sample_mesh`` is how PC15k-style clouds are made from meshes: choose a triangle with probability
proportional to its area, then a uniform point inside it (barycentric coordinates, reflected into the
triangle); it is the package's one triangle sampler, :func:`gfcore.data.primitives.sample_triangles`, behind a
torch interface.

``bundled_mesh(name)`` reads meshes stored in the installed wheels themselves, so nothing is downloaded:

- pyvista (``pyvista/examples/``): ``"airplane"`` (1,335 vertices), ``"ant"`` (486), ``"nut"`` (523),
  ``"sphere"`` (422), ``"globe"`` (540).
- pymeshfix (``pymeshfix/examples/``, when installed): ``"bunny"`` (the Stanford bunny scan, 50,000 vertices).

Taught in chapter 8 (From gradients to surfaces) and chapter 10 (data).
"""
from __future__ import annotations

import os

import numpy as np
import torch

from gfcore import _checks
from gfcore.data import primitives

_PYVISTA_FILES = {"airplane": "airplane.ply", "ant": "ant.ply", "nut": "nut.ply", "sphere": "sphere.ply",
                  "globe": "globe.vtk"}
_PYMESHFIX_FILES = {"bunny": "StanfordBunny.ply"}
BUNDLED_MESHES = tuple(_PYVISTA_FILES) + tuple(_PYMESHFIX_FILES)


def _as_tensor(name, value, *, floating: bool) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(value).__name__}")
    if t.dim() != 2 or t.shape[1] != 3 or t.shape[0] == 0:
        letter = "V" if floating else "F"
        raise ValueError(f"{name} must be a non-empty ({letter}, 3) array, got {tuple(t.shape)}")
    if floating and not t.is_floating_point():
        t = t.double()
    if not floating and (t.is_floating_point() or t.dtype == torch.bool):
        raise TypeError(f"{name} must hold integer vertex indices, got dtype {t.dtype}")
    return t


def _triangles(vertices, faces) -> tuple[np.ndarray, torch.dtype]:
    """``(F, 3, 3)`` float64 corners of a checked mesh, and the vertices' floating dtype."""
    v = _as_tensor("vertices", vertices, floating=True).detach().cpu()
    f = _as_tensor("faces", faces, floating=False).cpu().long()
    if int(f.min()) < 0 or int(f.max()) >= v.shape[0]:
        raise ValueError(f"faces index vertices 0..{v.shape[0] - 1}, "
                         f"got indices {int(f.min())}..{int(f.max())}")
    if not torch.isfinite(v).all():
        raise ValueError("vertices contain NaN or inf")
    return v.double()[f].numpy(), v.dtype


def triangle_areas(vertices, faces) -> torch.Tensor:
    """Areas of the triangles of a mesh: ``(F,)`` in ``vertices``' floating dtype (float64 for integer vertices),
    from ``vertices`` ``(V, 3)`` and ``faces`` ``(F, 3)``.

    Raises:
        TypeError, ValueError: malformed arrays, indices out of range, NaN/inf vertices.

    Taught in chapter 10.
    """
    tri, dtype = _triangles(vertices, faces)
    return torch.from_numpy(primitives.triangle_areas(tri)).to(dtype)


def sample_mesh(vertices, faces, num_points: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Points uniform on a triangle mesh's surface, in random order (:func:`gfcore.data.primitives.sample_triangles`:
    counts per triangle in proportion to its area, barycentric points inside).

    Args:
        vertices: ``(V, 3)`` float tensor or array.
        faces: ``(F, 3)`` integer vertex indices.
        num_points: ``N``.
        generator: optional CPU ``torch.Generator``; it seeds the draws (default: torch's global RNG).

    Returns:
        ``(N, 3)`` tensor in ``vertices``' floating dtype (float64 for integer vertices), on the CPU.

    Raises:
        TypeError, ValueError: malformed arrays, indices out of range, a mesh of zero area.

    Taught in chapter 10.
    """
    _checks.int_at_least("num_points", num_points, 1)
    tri, dtype = _triangles(vertices, faces)
    areas = primitives.triangle_areas(tri)
    if not float(areas.sum()) > 0:
        raise ValueError("the mesh has zero area")
    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))
    points = primitives.sample_triangles(tri, num_points, rng, areas=areas)
    return torch.from_numpy(points[rng.permutation(num_points)]).to(dtype)


def bundled_mesh_path(name: str) -> str:
    """The file of a bundled mesh inside its installed package.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
        ImportError: the package that carries it is not installed.
    """
    if name in _PYVISTA_FILES:
        try:
            import pyvista.examples.examples as ex
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(f"bundled mesh {name!r} ships with pyvista: pip install pyvista") from err
        return os.path.join(os.path.dirname(os.path.realpath(ex.__file__)), _PYVISTA_FILES[name])
    if name in _PYMESHFIX_FILES:
        try:
            import pymeshfix.examples as ex
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(f"bundled mesh {name!r} ships with pymeshfix: pip install pymeshfix") from err
        return os.path.join(os.path.dirname(os.path.realpath(ex.__file__)), _PYMESHFIX_FILES[name])
    raise ValueError(f"unknown bundled mesh {name!r}; valid names: {list(BUNDLED_MESHES)}")


def bundled_mesh(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A triangle mesh shipped inside an installed package (no download): ``(vertices (V, 3), faces (F, 3))``.

    Names: :data:`BUNDLED_MESHES` (pyvista's ``airplane``, ``ant``, ``nut``, ``sphere``, ``globe``;
    pymeshfix's ``bunny``). The file is read with pyvista and triangulated. Vertices are float64 in the file's
    own units (not normalised), faces int64.

    Raises:
        ValueError: unknown name.
        ImportError: pyvista (needed to read every file) or the carrying package is missing.
        FileNotFoundError: the package is installed but the file is not in it.

    Taught in chapter 8.
    """
    path = bundled_mesh_path(name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"bundled mesh {name!r} should be at {path}, which does not exist")
    try:
        import pyvista as pv
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("reading bundled meshes needs pyvista: pip install pyvista") from err
    mesh = pv.read(path)
    if not isinstance(mesh, pv.PolyData):
        mesh = mesh.extract_surface()
    mesh = mesh.triangulate()
    faces = np.asarray(mesh.faces).reshape(-1, 4)
    if not (faces[:, 0] == 3).all():  # pragma: no cover - triangulate guarantees it
        raise ValueError(f"bundled mesh {name!r} did not triangulate")
    return np.asarray(mesh.points, dtype=np.float64), faces[:, 1:].astype(np.int64)
