"""Shapes as point clouds: procedural 2D outlines and glyphs (``shapes2d``), real handwritten digits
(``digits2d``), printed characters in several fonts (``glyphs2d``), surfaces with exact areas and the one
triangle sampler (``primitives``), a procedural 3D shape family built from them (``shapes3d``), mesh surface
sampling and bundled meshes (``meshes``), the ShapeNetCore.v2.PC15k loader (``shapenet``), and the
normalisations they share (``normalize``).

Every dataset follows one contract (``gfcore.data.base``): items are dicts ``{"points": (N, d), "shift": (1,
d), "scale": (1, 1), "idx": int, "label": int}`` with ``raw = points * scale + shift``; training splits draw
points afresh on every access, evaluation splits return fixed points. ``build_dataset(name, split, **kwargs)``
builds one by name from :data:`DATASETS`.

Taught in chapters 1 and 4 (2D shapes, glyphs and digits), 5 (3D shapes) and 10 (ShapeNet).
"""
from gfcore.data import base, digits2d, glyphs2d, meshes, normalize, primitives, shapenet, shapes2d, shapes3d
from gfcore.data.base import PointCloudDataset
from gfcore.data.digits2d import Digits2D
from gfcore.data.glyphs2d import Glyphs2D
from gfcore.data.meshes import bundled_mesh, sample_mesh
from gfcore.data.shapenet import ShapeNetPC15k
from gfcore.data.shapes3d import Shapes3D

DATASETS = {"digits2d": Digits2D, "glyphs2d": Glyphs2D, "shapes3d": Shapes3D, "shapenet": ShapeNetPC15k}


def build_dataset(name: str, split: str = "train", **kwargs) -> PointCloudDataset:
    """Build a dataset by name: ``build_dataset("shapes3d", "val", categories=["chair"], num_points=2048)``.

    Args:
        name: a key of :data:`DATASETS` (``"digits2d"``, ``"glyphs2d"``, ``"shapes3d"``, ``"shapenet"``).
        split: ``"train"``, ``"val"`` or ``"test"``.
        **kwargs: the dataset class's keyword arguments (``shapenet`` needs ``root``).

    Raises:
        ValueError: unknown name (the message lists the valid ones), or any error of the dataset itself.

    Taught in chapters 4, 5 and 10.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {sorted(DATASETS)}")
    if "split" in kwargs:
        raise ValueError("pass the split as build_dataset's second argument, not in kwargs")
    return DATASETS[name](split=split, **kwargs)


__all__ = ["DATASETS", "Digits2D", "Glyphs2D", "PointCloudDataset", "ShapeNetPC15k", "Shapes3D", "base",
           "build_dataset", "bundled_mesh", "digits2d", "glyphs2d", "meshes", "normalize", "primitives",
           "sample_mesh", "shapenet", "shapes2d", "shapes3d"]
