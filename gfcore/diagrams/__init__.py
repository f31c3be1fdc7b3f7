"""Schematic figures of the method, drawn by code (matplotlib): no image file is drawn by hand.

One module per diagram, each with one public function ``draw_<name>(..., ax=None) -> matplotlib Figure`` that
draws into ``ax`` (or a new figure) and returns the figure; the chapter that introduces the idea shows it as a
numbered figure. The shared look (boxes, arrows, point-cloud glyphs, colours, fonts) lives in
:mod:`gfcore.diagrams._draw`.

Like :mod:`gfcore.viz`, this package loads matplotlib; the tensor code of ``gfcore`` never imports it.
"""
from gfcore.diagrams._draw import COLORS, FONT, Box, arrow, box, canvas, cloud, note
from gfcore.diagrams.annealing import draw_annealing
from gfcore.diagrams.autoencoder import draw_autoencoder
from gfcore.diagrams.generation import draw_generation
from gfcore.diagrams.surface import draw_unsigned_distance

__all__ = ["COLORS", "FONT", "Box", "arrow", "box", "canvas", "cloud", "note", "draw_annealing", "draw_autoencoder",
           "draw_generation", "draw_unsigned_distance"]
