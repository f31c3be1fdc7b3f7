"""Score networks: the toy 2D network (chapter 2) and the paper's encoder and decoders (chapters 4-5)."""
from gfcore.models.decoder import ScoreDecoder
from gfcore.models.encoder import PointNetEncoder
from gfcore.models.latent_gan import LatentCritic, LatentGenerator, sample_shapes
from gfcore.models.refine import refine_codes
from gfcore.models.shapegf import ShapeGF
from gfcore.models.toy import ToyScoreNet

__all__ = ["LatentCritic", "LatentGenerator", "PointNetEncoder", "ScoreDecoder", "ShapeGF", "ToyScoreNet",
           "refine_codes", "sample_shapes"]
