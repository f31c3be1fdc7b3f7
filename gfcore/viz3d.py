"""3D pictures: off-screen pyvista (VTK) renders of point clouds and meshes, and views that rotate in the book.

Renders come back as RGB arrays, shown with matplotlib (:func:`show_image`); :func:`interactive_clouds` and
:func:`interactive_meshes` export the scene with vtk.js (pyvista's trame export) into one self-contained HTML
page that rotates in Jupyter and in the static book, with no server and no network. VTK draws off-screen with EGL
(no display needed) unless the caller chose another window (``VTK_DEFAULT_OPENGL_WINDOW``). pyvista is imported
on the first render, so importing this module is cheap; the 2D plots are :mod:`gfcore.viz`.

Taught in chapter 5 (The full 3D model) and chapter 8 (From gradients to surfaces).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from gfcore import _checks

__all__ = ["render_clouds", "render_meshes", "show_image", "interactive_clouds", "interactive_meshes", "to_html",
           "scene", "set_camera", "CAMERA"]

CAMERA = {"azimuth": 35.0, "elevation": 20.0, "distance": 4.6}
"""The default camera: degrees around the up axis and above the horizon, and the distance from the origin
(frames shapes in ``[-1, 1]^3``)."""


def _pyvista():
    import os

    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    try:
        import pyvista
    except ImportError as err:  # pragma: no cover - pyvista is in requirements.txt
        raise ImportError("3D renders need pyvista: pip install pyvista trame-pyvista") from err
    return pyvista


def _clouds_list(clouds) -> list[np.ndarray]:
    if isinstance(clouds, (torch.Tensor, np.ndarray)) and np.ndim(clouds) == 2:
        clouds = [clouds]
    out = [_checks.numpy_points(f"clouds[{i}]", c, dims=3).astype(np.float32) for i, c in enumerate(clouds)]
    if not out:
        raise ValueError("clouds is empty: pass one (N, 3) cloud or a list of them")
    return out


def _meshes_list(meshes) -> list[tuple[np.ndarray, np.ndarray]]:
    if isinstance(meshes, tuple) and len(meshes) == 2 and np.ndim(meshes[1]) == 2:
        meshes = [meshes]
    meshes = [(_checks.numpy_points(f"meshes[{i}] vertices", v, dims=3), np.asarray(f, dtype=np.int64))
              for i, (v, f) in enumerate(meshes)]
    if not meshes:
        raise ValueError("meshes is empty: pass one (vertices, faces) pair or a list of them")
    for i, (v, f) in enumerate(meshes):
        if f.ndim != 2 or f.shape[1] != 3 or f.size == 0 or f.min() < 0 or f.max() >= len(v):
            raise ValueError(f"meshes[{i}] faces must be (F, 3) indices into {len(v)} vertices, "
                             f"got shape {f.shape}")
    return meshes


def set_camera(plotter, azimuth: float, elevation: float, distance: float) -> None:
    """Look at the origin from ``azimuth``/``elevation`` degrees at ``distance``, with ``y`` up (ShapeNet)."""
    az, el = math.radians(azimuth), math.radians(elevation)
    eye = (distance * math.sin(az) * math.cos(el), distance * math.sin(el), distance * math.cos(az) * math.cos(el))
    plotter.camera_position = [eye, (0.0, 0.0, 0.0), (0.0, 1.0, 0.0)]


def scene(clouds=None, *, meshes=None, titles=None, ncols: int | None = None, window_size=(320, 320),
          point_size: float = 4.0, colors=None, azimuth: float = CAMERA["azimuth"],
          elevation: float = CAMERA["elevation"], distance: float = CAMERA["distance"], off_screen: bool = True):
    """An off-screen ``pyvista.Plotter`` with one panel per cloud (or per mesh), white, camera set.

    Args:
        clouds: an ``(N, 3)`` cloud or a list of them; or ``None`` with ``meshes``.
        meshes: ``(vertices (V, 3), faces (F, 3))`` or a list of such pairs.
        titles: optional text per panel.
        ncols: panels per row (default: all in one row).
        window_size: pixels per panel.
        point_size: sphere size of the points.
        colors: one colour per panel (default: points coloured by height, meshes light steel blue).
        azimuth, elevation, distance: the camera (:data:`CAMERA`).

    Returns:
        ``pyvista.Plotter`` (the caller closes it).

    Raises:
        ValueError: no panels, bad clouds or faces, ``titles`` of the wrong length.

    Taught in chapter 5.
    """
    if (clouds is None) == (meshes is None):
        raise ValueError("pass clouds or meshes (one of the two)")
    clouds = _clouds_list(clouds) if clouds is not None else None
    meshes = _meshes_list(meshes) if meshes is not None else None
    pv = _pyvista()
    n = len(clouds) if meshes is None else len(meshes)
    ncols = min(ncols or n, n)
    nrows = math.ceil(n / ncols)
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles has {len(titles)} entries for {n} panels")
    plotter = pv.Plotter(off_screen=off_screen, shape=(nrows, ncols), border=False,
                         window_size=(window_size[0] * ncols, window_size[1] * nrows))
    plotter.set_background("white")
    for i in range(n):
        plotter.subplot(i // ncols, i % ncols)
        if meshes is None:
            pts = clouds[i]
            color = colors[i % len(colors)] if colors is not None else None
            opts = {"color": color} if color is not None else {"scalars": pts[:, 1], "cmap": "viridis",
                                                                "show_scalar_bar": False}
            plotter.add_points(pts, render_points_as_spheres=True, point_size=point_size, **opts)
        else:
            verts, faces = meshes[i]
            cells = np.hstack([np.full((len(faces), 1), 3), faces]).astype(np.int64).ravel()
            mesh = pv.PolyData(np.asarray(verts, dtype=np.float32), cells)
            plotter.add_mesh(mesh, color=(colors or ["lightsteelblue"])[i % len(colors or [1])],
                             smooth_shading=True)
        if titles is not None:
            plotter.add_text(str(titles[i]), font_size=10, color="black")
        set_camera(plotter, azimuth, elevation, distance)
    for j in range(n, nrows * ncols):  # empty trailing panels
        plotter.subplot(j // ncols, j % ncols)
    return plotter


def _screenshot(plotter) -> np.ndarray:
    try:
        return plotter.screenshot(return_img=True)
    finally:
        plotter.close()


def render_clouds(clouds, *, titles=None, ncols: int | None = None, window_size=(320, 320),
                  point_size: float = 4.0, colors=None, azimuth: float = CAMERA["azimuth"],
                  elevation: float = CAMERA["elevation"], distance: float = CAMERA["distance"]) -> np.ndarray:
    """Render one or several ``(N, 3)`` point clouds side by side, off-screen, as an RGB image.

    Points are drawn as shaded spheres, coloured by height (``y``, the up axis as in ShapeNet) unless ``colors``
    gives one colour per cloud. The camera looks at the origin from ``azimuth``/``elevation`` degrees.

    Args:
        clouds: an ``(N, 3)`` cloud or a list of them (tensors on any device, or arrays).
        titles, ncols, window_size, point_size, colors, azimuth, elevation, distance: see :func:`scene`.

    Returns:
        ``(H, W, 3)`` uint8 image; show it with :func:`show_image`.

    Raises:
        ValueError: see :func:`scene`.

    Taught in chapter 5.
    """
    return _screenshot(scene(clouds, titles=titles, ncols=ncols, window_size=window_size, point_size=point_size,
                             colors=colors, azimuth=azimuth, elevation=elevation, distance=distance))


def render_meshes(meshes, *, titles=None, ncols: int | None = None, window_size=(320, 320), colors=None,
                  azimuth: float = CAMERA["azimuth"], elevation: float = CAMERA["elevation"],
                  distance: float = CAMERA["distance"]) -> np.ndarray:
    """Render triangle meshes ``[(vertices (V, 3), faces (F, 3)), ...]`` off-screen, as :func:`render_clouds`.

    Returns:
        ``(H, W, 3)`` uint8 image.

    Raises:
        ValueError: faces that are not ``(F, 3)`` indices into the vertices.

    Taught in chapter 8.
    """
    return _screenshot(scene(meshes=meshes, titles=titles, ncols=ncols, window_size=window_size, colors=colors,
                             azimuth=azimuth, elevation=elevation, distance=distance))


def show_image(image: np.ndarray, *, title: str | None = None, figsize=None):
    """Show a rendered ``(H, W, 3)`` image in a matplotlib figure without axes; returns the figure.

    Raises:
        ValueError: not an ``(H, W, 3)`` or ``(H, W, 4)`` image.

    Taught in chapter 5.
    """
    import matplotlib.pyplot as plt

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(f"image must be (H, W, 3) or (H, W, 4), got shape {image.shape}")
    h, w = image.shape[:2]
    fig, ax = plt.subplots(figsize=figsize or (w / 100, h / 100 + (0.35 if title else 0)), dpi=100)
    ax.imshow(image)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.tight_layout(pad=0.1)
    return fig


def to_html(plotter, *, close: bool = True):
    """A ``pyvista.Plotter`` as an interactive vtk.js view: ``IPython.display.HTML`` of an ``<iframe srcdoc>``.

    The scene is exported with pyvista's trame export (one self-contained HTML file, about 1 MB with the
    viewer), so the view needs no server and no network.

    Args:
        plotter: e.g. from :func:`scene`.
        close: close the plotter afterwards.

    Returns:
        ``IPython.display.HTML`` sized like the plotter's window.

    Taught in chapter 5.
    """
    import html
    import logging
    import os
    import tempfile

    from IPython.display import HTML

    width, height = plotter.window_size
    asyncio_log = logging.getLogger("asyncio")  # trame may try to fetch an optional viewer: quiet offline
    level = asyncio_log.level
    asyncio_log.setLevel(logging.CRITICAL)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "scene.html")
            exporter = plotter.trame.export_html if hasattr(plotter, "trame") else plotter.export_html
            exporter(path)
            with open(path, encoding="utf-8") as f:
                page = f.read()
    finally:
        asyncio_log.setLevel(level)
        if close:
            plotter.close()
    return HTML(f'<div><iframe srcdoc="{html.escape(page, quote=True)}" width="{width}" height="{height + 10}" '
                f'style="border:0" title="interactive 3D view"></iframe></div>')


def interactive_clouds(clouds, *, titles=None, ncols: int | None = None, window_size=(360, 360),
                       point_size: float = 4.0, colors=None, azimuth: float = CAMERA["azimuth"],
                       elevation: float = CAMERA["elevation"], distance: float = CAMERA["distance"]):
    """A view of ``(N, 3)`` clouds that the reader can rotate and zoom, in Jupyter and in the static book.

    Args:
        clouds, titles, ncols, window_size, point_size, colors, azimuth, elevation, distance: see :func:`scene`.

    Returns:
        ``IPython.display.HTML`` (see :func:`to_html`).

    Taught in chapter 5.
    """
    return to_html(scene(clouds, titles=titles, ncols=ncols, window_size=window_size, point_size=point_size,
                         colors=colors, azimuth=azimuth, elevation=elevation, distance=distance))


def interactive_meshes(meshes, *, titles=None, ncols: int | None = None, window_size=(360, 360), colors=None,
                       azimuth: float = CAMERA["azimuth"], elevation: float = CAMERA["elevation"],
                       distance: float = CAMERA["distance"]):
    """Triangle meshes in a view that rotates, as :func:`interactive_clouds`.

    Returns:
        ``IPython.display.HTML``.

    Taught in chapter 8.
    """
    return to_html(scene(meshes=meshes, titles=titles, ncols=ncols, window_size=window_size, colors=colors,
                         azimuth=azimuth, elevation=elevation, distance=distance))
