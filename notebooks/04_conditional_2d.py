# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4. Conditional fields in 2D
#
# Chapters 1 to 3 learned the gradient field of **one** shape and sampled it. A shape generator needs the fields of
# **many** shapes. ShapeGF {cite}`cai2020shapegf` gets them from a single network $g_\theta(x, \sigma, z)$ that
# takes, besides the query point $x$ and the noise level $\sigma$, a *latent code* $z$ saying which shape is meant.
# The code comes from an encoder that reads a point cloud of the shape, and encoder and field are trained together
# with the multi-$\sigma$ denoising score matching loss of chapter 2. The result is an auto-encoder whose decoder is
# not a fixed set of points but a field: it can be sampled with any number of points.
#
# In this chapter you will
#
# - turn real handwritten MNIST digits into 2D point clouds (the paper's MNIST-CP setting),
# - meet the encoder (PointNet {cite}`qi2017pointnet`) and the decoder with conditional batch norm
#   {cite}`devries2017cbn`, with the equations they compute,
# - train both end to end with `gfcore.train.train_autoencoder`,
# - reconstruct held-out digits from 256 input points as 2,048 output points, draw the field of one latent code,
#   and walk along a straight line between two codes,
# - measure all of it with the Chamfer distance against an untrained model and against the best achievable value.
#
# **gfcore names used:** `gfcore.data.build_dataset`, `gfcore.data.Digits2D`, `gfcore.models.ShapeGF`,
# `gfcore.train.AutoEncoderConfig`, `gfcore.train.train_autoencoder`, `gfcore.metrics.chamfer_distance`,
# `gfcore.viz.plot_points`, `gfcore.viz.setup_axes`, `gfcore.viz.plot_field`.
#
# ```{note}
# The outputs stored in this book for this chapter come from **fast mode on a 2-core CPU** (a few minutes): a
# small decoder trained for a few hundred steps. The numbers quoted in the text are from that run. Run the notebook on
# a GPU (`GF_MODE=full`, the default there, under 15 minutes) for the model of `configs/digits2d.yaml` trained for
# thousands of steps: sharper reconstructions and smoother interpolations. The closing checks hold in both modes.
# ```

# %% tags=["remove-output"]
try:
    import gfcore
except ImportError:  # on Colab: install the library from the book's repository (Colab's torch is kept)
    # %pip install -q "gfcore[data] @ git+https://github.com/gfbook/gfbook"
    import gfcore

# %%
import time

import matplotlib.pyplot as plt
import torch

import gfcore.data
import gfcore.metrics
import gfcore.models
import gfcore.train
import gfcore.viz

generator = gfcore.utils.seed_everything(0)
device = gfcore.utils.default_device()
print(gfcore.config.describe())
