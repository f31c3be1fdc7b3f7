"""tmp"""
from gfcore.metrics.chamfer import chamfer_distance
from gfcore.metrics.transport import emd
