"""Surfaces from a gradient field: unsigned distance, ray casting, marching cubes, projection.

ShapeGF (Cai et al. 2020) points out that its field defines the surface implicitly, with no mesh in training,
and names the failure cases (points where the gradient vanishes; the double surface of marching cubes); the
official code released no extraction. This module is the book's construction from the field alone.

A score ``s(x, sigma) = grad_x log p_sigma(x)`` of a shape smoothed at a small ``sigma`` points to the shape,
and ``sigma^2 s(x, sigma)`` is the displacement from ``x`` to the kernel-weighted mean of the surface near it.
Its length estimates the **unsigned distance** to the surface, with no mesh and no inside/outside:

    u(x) = sigma^2 |s(x, sigma)|  ~  dist(x, surface),      x + sigma^2 s(x, sigma)  ~  nearest surface point.

Every function here takes a *score callable* ``score_fn(x (B, M, d), sigma (B,)) -> (B, M, d)``, so the
closed-form field (``lambda x, s: gfcore.fields.smoothed_score(x, points, s)``) and a trained model
(``model.score_fn(z)``) are interchangeable. Calls are batched over shapes, chunked over points (bounded
memory) and run under ``torch.no_grad`` on the device of their inputs (``device=`` for the grid functions):

- ``distance``: :func:`unsigned_distance`, :func:`unsigned_distance_grid` (dense, or exact only in a narrow band
  around the surface, which is far cheaper), :func:`project_to_surface` (noise-free steps along the field);
- ``raycast``: :func:`raycast` (sphere tracing with ``u``, refined along the field, normals from the field),
  :func:`camera_rays` and :func:`render_depth` (depth and normal images from a pinhole camera, no mesh at all);
- ``mesh``: :func:`marching_cubes` (scikit-image at a small positive level of ``u``; the double surface and the
  remedy; :func:`mesh_from_grid` is its extraction half) and :func:`mesh_from_model` (one shape of a trained
  auto-encoder);
- ``io``: :func:`write_mesh` (PLY/OBJ) and :func:`to_polydata` (pyvista, imported when called).

Every name is re-exported here: call them as ``gfcore.surface.<name>``.

Taught in chapter 8 (From gradients to surfaces).
"""

from gfcore.surface._common import DEFAULT_CHUNK, KEEP
from gfcore.surface.distance import project_to_surface, unsigned_distance, unsigned_distance_grid
from gfcore.surface.io import to_polydata, write_mesh
from gfcore.surface.mesh import marching_cubes, mesh_from_grid, mesh_from_model
from gfcore.surface.raycast import DepthImage, RayHits, camera_rays, raycast, render_depth

__all__ = ["unsigned_distance", "unsigned_distance_grid", "project_to_surface", "raycast", "camera_rays",
           "render_depth", "RayHits", "DepthImage", "marching_cubes", "mesh_from_grid", "mesh_from_model",
           "write_mesh", "to_polydata", "KEEP", "DEFAULT_CHUNK"]
