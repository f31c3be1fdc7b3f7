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
# # 1. Shapes as distributions
#
# ShapeGF {cite}`cai2020shapegf` starts from one idea: **a shape is a probability distribution** whose mass
# lies on its surface. A point cloud is then nothing more than a set of samples from that distribution, and
# generating a shape means sampling from it. To sample, ShapeGF learns the *gradient of the log-density*
# (the *score*), which for a smoothed shape points from anywhere in space back toward the surface.
#
# In this chapter you will
#
# - draw 2D shapes as point sets sampled uniformly along their outlines,
# - smooth them with a Gaussian of width $\sigma$ and look at the resulting density,
# - derive the closed-form gradient field of the smoothed shape and see that it is an *attention* over the points,
# - watch what $\sigma$ does to the field, and check the formula against finite differences.
#
# The box at the end of the chapter lists the `gfcore` functions it uses.

# %% tags=["remove-output"]
try:
    import gfcore
except ImportError:  # on Colab: install the library from the book's repository (Colab's torch is kept)
    # %pip install -q "gfcore @ git+https://github.com/gfbook/gfbook"
    import gfcore

# %%
import inspect
import time

import matplotlib.pyplot as plt
import torch

import gfcore.data.shapes2d
import gfcore.viz

generator = gfcore.utils.seed_everything(0)
device = gfcore.utils.default_device()
print(gfcore.mode.describe())

# %% [markdown]
# All sizes of this chapter come from one cell. `GF_MODE=fast` (what CI runs, about a minute on a two-core CPU)
# and `GF_MODE=full` (the default on a GPU; the outputs on this page, four to six minutes on a busy two-core CPU)
# run the same code; only the numbers change. `GF_MODE=paper` runs the full sizes: this 2D chapter has no
# paper-scale setting.

# %%
NUM_POINTS = gfcore.mode.choose(fast=400, full=2000)   # points sampled on each shape
RESOLUTION = gfcore.mode.choose(fast=24, full=40)      # field plots: RESOLUTION x RESOLUTION arrows
NUM_QUERIES = gfcore.mode.choose(fast=2000, full=20000)  # random queries for the checks
TIMING_QUERIES = gfcore.mode.choose(fast=20000, full=100000)  # exercise 1.5: queries for the timing
SLIDER_SIGMAS = torch.logspace(-1.7, -0.2, gfcore.mode.choose(fast=8, full=12)).tolist()

# %% [markdown]
# ## A shape is a distribution on its outline
#
# Let $\mathcal{S} \subset \mathbb{R}^d$ be the surface of a shape (in 2D: its outline). ShapeGF treats the
# shape as the uniform distribution $P$ on $\mathcal{S}$: sampling $P$ gives points spread evenly along the
# outline. A point cloud $X = \{x_i\}_{i=1}^N$ is $N$ such samples. `gfcore.data.shapes2d` draws them for a few
# procedural outlines and for any text glyph of matplotlib's bundled font, sampling uniformly *by arc length*
# (so long straight edges get as many points per unit length as tight curves).

# %%
names = ["circle", "square", "star", "heart", "spiral", "glyph:A", "glyph:g", "glyph:8"]
clouds = {name: gfcore.data.shapes2d.sample(name, NUM_POINTS, generator=generator) for name in names}

fig, axes = plt.subplots(1, len(names), figsize=(2.0 * len(names), 2.3))
for ax, name in zip(axes, names):
    gfcore.viz.plot_points(ax, clouds[name], s=1.5, color="C0")
    gfcore.viz.setup_axes(ax, (-1.1, 1.1, -1.1, 1.1), title=name)
fig.suptitle(f"Figure 1.1 - {NUM_POINTS} points sampled uniformly along each outline", y=1.02)
plt.show()

# %% [markdown]
# Each panel is one sample from one distribution. A second call gives *different points on the same shape*:
# the shape is the distribution, not the points. That is what lets ShapeGF produce clouds of any size.
#
# ## Smoothing: from a thin shape to a density everywhere
#
# The uniform distribution on a curve has no density in the plane (all its mass sits on a set of zero area), so
# its log-density has no gradient we could follow from far away. ShapeGF convolves it with an isotropic Gaussian
# of width $\sigma$. For the sampled points this gives a mixture of $N$ Gaussians,
#
# $$
# A_\sigma(x) \;=\; \frac{1}{N}\sum_{i=1}^N \mathcal{N}\!\left(x;\, x_i,\, \sigma^2 I\right)
#   \;=\; \frac{1}{N}\sum_{i=1}^N \frac{1}{(2\pi\sigma^2)^{d/2}}
#   \exp\!\left(-\frac{\lVert x - x_i\rVert^2}{2\sigma^2}\right),
# $$ (eq-smoothed-density)
#
# which approaches the smoothed shape $Q_\sigma$ as $N$ grows. `gfcore.fields.smoothed_log_density` evaluates
# $\log A_\sigma$ with a log-sum-exp, so it stays finite even a long way from every point, where each
# exponential on its own underflows to zero.

# %%
star = clouds["star"]
grid_x, xx, yy = gfcore.viz.grid((-1.5, 1.5, -1.5, 1.5), 160)
density_sigmas = [0.03, 0.1, 0.3]
log_density = {s: gfcore.fields.smoothed_log_density(grid_x, star, s).reshape(xx.shape) for s in density_sigmas}

fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
for ax, s in zip(axes, density_sigmas):
    im = ax.imshow(log_density[s].numpy(), origin="lower", extent=(-1.5, 1.5, -1.5, 1.5), cmap="magma",
                   vmin=float(log_density[s].max()) - 12, vmax=float(log_density[s].max()))
    gfcore.viz.setup_axes(ax, (-1.5, 1.5, -1.5, 1.5), title=rf"$\log A_\sigma(x)$, $\sigma = {s}$")
    fig.colorbar(im, ax=ax, shrink=0.8)
fig.suptitle("Figure 1.2 - the log-density of the smoothed star for three widths", y=1.02)
plt.show()

# %% [markdown]
# With a small $\sigma$ the density is a thin ridge along the outline and drops by many orders of magnitude a
# short distance away; with a large $\sigma$ the star melts into a blob whose maximum sits near its centre of
# mass. Small $\sigma$ keeps the detail, large $\sigma$ reaches far. Both facts will matter.
#
# ## The gradient field in closed form
#
# Differentiating the logarithm of {eq}`eq-smoothed-density` gives the score of the smoothed point set,
#
# $$
# \nabla_x \log A_\sigma(x) \;=\; \frac{1}{\sigma^2}\Big(-x + \sum_{i=1}^N w_i(x)\, x_i\Big),
# \qquad
# w_i(x) \;=\; \operatorname{softmax}_i\!\left(-\frac{\lVert x - x_i\rVert^2}{2\sigma^2}\right).
# $$ (eq-closed-form-score)
#
# Read it as: *move from $x$ toward a weighted average of the points, where nearby points weigh more*. The
# weights are a softmax over the points, i.e. an **attention** of the query $x$ over keys and values $x_i$. Since
# $-\lVert x - x_i\rVert^2 = -\lVert x\rVert^2 + 2\,x\cdot x_i - \lVert x_i\rVert^2$ and the first term is the same
# for every $i$, the logits are $(x\cdot x_i - \lVert x_i\rVert^2/2)/\sigma^2$: a dot product between
# $[x/\sigma^2, 1/\sigma^2]$ and $[x_i, -\lVert x_i\rVert^2/2]$. That is why gfcore can hand the field to
# PyTorch's fused attention kernel on a GPU, which never builds the $M \times N$ matrix of weights.
#
# The library computes the field in one of two ways with the same result: `method="attention"` (the fused
# kernel) and `method="direct"`, which is {eq}`eq-closed-form-score` written out and is the reference the tests
# hold the fast path to. Here is the direct path, shown from the library rather than rewritten: two small helpers
# compute the logits $-\lVert x - x_i\rVert^2/2\sigma^2$ and the weighted mean $\sum_i w_i(x)\, x_i$ (a softmax
# over the points, then a matrix product with them), chunked over the queries so that memory stays bounded; the
# last lines of `smoothed_score` pick a path and return $(\sum_i w_i x_i - x)/\sigma^2$.

# %%
for helper in (gfcore.fields._logits, gfcore.fields._mean_direct):
    print(inspect.getsource(helper))
source = inspect.getsource(gfcore.fields.smoothed_score)
print("def smoothed_score(...):  # ... argument checks, then:")
print(source[source.index('    if method == "attention":'):])

# %% [markdown]
# Multiplying the score by $\sigma^2$ gives the *displacement* $\sigma^2 \nabla_x \log A_\sigma(x) = \sum_i w_i x_i - x$
# from $x$ to the weighted average of the points, a vector with units of length. The official ShapeGF network
# predicts exactly this quantity; the book writes a network's displacement $D_\theta = \sigma^2 s_\theta$, where
# $s_\theta$ is its score (see the [notation](../book/notation.md) page).
#
# Here is the field of the star for three widths. Streamlines show the direction; colour shows
# $\log_{10}$ of the magnitude $\lVert\nabla_x \log A_\sigma(x)\rVert$, read off each panel's colour bar.

# %%
field_sigmas = [0.03, 0.1, 0.3]
fig, axes = plt.subplots(1, 3, figsize=(12, 3.9))
for ax, s in zip(axes, field_sigmas):
    stream = gfcore.viz.plot_field(ax, lambda x, sig: gfcore.fields.smoothed_score(x, star, sig), sigma=s,
                                   resolution=RESOLUTION)
    fig.colorbar(stream.lines, ax=ax, shrink=0.8, label=r"$\log_{10}\,|\nabla_x \log A_\sigma(x)|$")
    gfcore.viz.plot_points(ax, star, s=1, color="C3")
    ax.set_title(rf"$\nabla_x \log A_\sigma$, $\sigma = {s}$")
fig.suptitle("Figure 1.3 - the closed-form gradient field of the star", y=1.02)
plt.show()

# %% [markdown]
# At $\sigma = 0.03$ the streamlines run straight onto the nearest part of the outline: the field is sharp near
# the shape, but far away it is dominated by whichever few points happen to be closest. At $\sigma = 0.3$ the
# field is smooth everywhere and points inward, but it no longer resolves the star's tips: streams end near the
# middle. No single $\sigma$ is right for every place; chapters 2 and 3 use a whole ladder of them.
#
# ## What $\sigma$ does: a slider
#
# In a live notebook (Colab or Jupyter) the widget below redraws the field as you move $\sigma$. The published
# book is static, so the animation under it plays the same sweep.

# %%
gfcore.viz.field_sigma_slider(star, SLIDER_SIGMAS, resolution=RESOLUTION)

# %%
gfcore.viz.to_html(gfcore.viz.animate_sigma(star, SLIDER_SIGMAS, resolution=RESOLUTION))

# %% [markdown]
# ## Checking the formula
#
# Two checks, which also end this chapter as asserts.
#
# **The closed form is the gradient of the log-density.** A central finite difference of
# `smoothed_log_density` in float64 must match `smoothed_score` to many digits.

# %%
queries = (torch.rand(NUM_QUERIES, 2, generator=generator, dtype=torch.float64) * 3 - 1.5)
star64 = star.double()
h = 1e-5
fd_errors = {}
for s in [0.03, 0.1, 0.3]:
    score = gfcore.fields.smoothed_score(queries, star64, s)
    fd = torch.stack([(gfcore.fields.smoothed_log_density(queries + h * e, star64, s)
                       - gfcore.fields.smoothed_log_density(queries - h * e, star64, s)) / (2 * h)
                      for e in torch.eye(2, dtype=torch.float64)], dim=-1)
    fd_errors[s] = float(((fd - score).norm(dim=-1) / score.norm(dim=-1).clamp_min(1e-8)).max())
    print(f"sigma = {s:4}: max relative error of the closed form vs finite differences = {fd_errors[s]:.2e}")

# %% [markdown]
# **The field points toward the shape, and $\sigma^2 \lVert\nabla \log A_\sigma\rVert$ measures the distance to
# it.** For a query at distance $r \gg \sigma$ from the outline, the weights concentrate on the nearest points, so
# $\sigma^2 \nabla \log A_\sigma(x)$ is (almost) the vector to the nearest point on the shape. We compare its
# direction and length with the true nearest-point vector, computed against a dense outline. This observation is
# what lets ShapeGF turn a learned field into a distance function and then into a surface.

# %%
outline = gfcore.data.shapes2d.dense("star", 20000, dtype=torch.float64)
queries32 = queries.float()
dist = gfcore.fields.distance_to_points(queries32, outline.float())
nearest = outline.float()[torch.cdist(queries32, outline.float()).argmin(dim=1)]
to_shape = nearest - queries32
sigma_check = 0.05
disp = sigma_check**2 * gfcore.fields.smoothed_score(queries32, star, sigma_check)
band = dist > 3 * sigma_check        # far enough from the outline for the nearest-point picture to hold
cosine = torch.nn.functional.cosine_similarity(disp[band], to_shape[band], dim=-1)
ratio = disp[band].norm(dim=-1) / dist[band]
print(f"{int(band.sum())} queries farther than 3 sigma from the star (sigma = {sigma_check})")
print(f"median cosine(sigma^2 * score, vector to nearest outline point) = {cosine.median():.4f}")
print(f"fraction with cosine > 0.9: {(cosine > 0.9).float().mean():.3f}")
print(f"median |sigma^2 * score| / distance = {ratio.median():.3f}")

fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8))
axes[0].hist(cosine.numpy(), bins=50, color="C0", log=True)
axes[0].set(xlabel="cosine similarity", ylabel="queries (log scale)", title="direction")
axes[1].scatter(dist[band].numpy(), disp[band].norm(dim=-1).numpy(), s=2, alpha=0.5)
axes[1].plot([0, float(dist.max())], [0, float(dist.max())], "k--", lw=1, label="y = x")
axes[1].set(xlabel="distance to the star", ylabel=r"$\sigma^2\,|\nabla \log A_\sigma|$", title="length")
axes[1].legend()
fig.suptitle(rf"Figure 1.4 - $\sigma^2\nabla\log A_\sigma$ vs the vector to the nearest outline point, "
             rf"$\sigma={sigma_check}$", y=1.03)
plt.show()

# %% [markdown]
# The directions agree almost everywhere and the length follows the distance along the diagonal. The exceptions
# sit on the *medial axis* of the star (points equally far from two parts of the outline, such as the centre and
# the lines between neighbouring tips), where the nearest points pull in different directions and their average
# lies in between. The same bifurcations are where surfaces extracted from gradient fields go wrong.
#
# ## Summary
#
# - A shape is the uniform distribution on its surface; a point cloud is a sample of it.
# - Smoothing with a Gaussian of width $\sigma$ gives a density everywhere, eq. {eq}`eq-smoothed-density`.
# - Its score has the closed form {eq}`eq-closed-form-score`: an attention-weighted pull toward the points,
#   divided by $\sigma^2$. Multiplied by $\sigma^2$ it is a displacement toward the shape.
# - Small $\sigma$: sharp but only reliable near the shape. Large $\sigma$: reaches far but blurs the detail.
#
# ## Exercises
#
# Five exercises, from a one-line check to a small experiment. Each says what you should observe (*Check*); its
# worked solution is folded under it (click to open), runs when the chapter runs, and the chapter's last cell
# asserts what each solution finds.
#
# **Exercise 1.1** (the far field). Show that for $\sigma \to \infty$ the field tends to $(\bar x - x)/\sigma^2$,
# with $\bar x$ the centroid of the points. *Check:* `smoothed_score(x, star, s) * s**2` approaches
# `star.mean(0) - x`, with a relative error that falls a hundredfold each time $\sigma$ grows tenfold.
#
# :::{dropdown} Solution 1.1
# In {eq}`eq-closed-form-score` the logits are $(x\cdot x_i - \lVert x_i\rVert^2/2)/\sigma^2$ (the term
# $-\lVert x\rVert^2/2\sigma^2$ is the same for every $i$ and cancels in the softmax). As $\sigma \to \infty$ they all
# tend to $0$, so every weight tends to $1/N$ and $\sum_i w_i x_i \to \bar x$: $\sigma^2 \nabla_x \log A_\sigma(x) \to
# \bar x - x$. Expanding the softmax to first order, $w_i = \tfrac1N\,(1 + (\ell_i - \bar\ell)) + O(\sigma^{-4})$ with
# $\ell_i$ the logits, so the error is of order $1/\sigma^2$: ten times the width, a hundred times less error.
# The cell below measures it in float64 at three widths.
# :::

# %% tags=["hide-cell"]
far_x = torch.rand(500, 2, generator=generator, dtype=torch.float64) * 3 - 1.5
far_limit = star64.mean(0) - far_x
sol1_errors = {}
for s in [5.0, 50.0, 500.0]:
    scaled = gfcore.fields.smoothed_score(far_x, star64, s) * s**2
    sol1_errors[s] = float(((scaled - far_limit).norm(dim=-1) / far_limit.norm(dim=-1)).max())
    print(f"sigma = {s:5}: max relative error of sigma^2 * score vs (centroid - x) = {sol1_errors[s]:.1e}")

# %% [markdown]
# **Exercise 1.2** (the attention, by hand). Write {eq}`eq-closed-form-score` yourself in three lines of PyTorch,
# with `torch.cdist` and `torch.softmax`, and compare it with `gfcore.fields.smoothed_score` at
# $\sigma = 0.1$. *Check:* in float64 the two agree to about $10^{-13}$ relative error, i.e. to round-off.
#
# :::{dropdown} Solution 1.2
# The weights are a softmax over the points (dimension 1 of the $M \times N$ matrix of squared distances) of
# $-\lVert x - x_i\rVert^2/2\sigma^2$; the weighted mean is a matrix product of the weights with the points; the
# score is that mean minus $x$, over $\sigma^2$. This builds the whole $M \times N$ matrix at once, which is what
# the library's chunking (and, on a GPU, the fused attention kernel) avoids for large inputs.
# :::

# %% tags=["hide-cell"]
s = 0.1
weights = torch.softmax(-torch.cdist(queries, star64).square() / (2 * s**2), dim=1)   # (M, N), rows sum to 1
by_hand = (weights @ star64 - queries) / s**2                                         # (M, 2)
library = gfcore.fields.smoothed_score(queries, star64, s)
sol2_error = float(((by_hand - library).norm(dim=-1) / library.norm(dim=-1)).max())
print(f"max relative difference, by hand vs gfcore, float64: {sol2_error:.1e}")

# %% [markdown]
# **Exercise 1.3** (how many points?). The closed form uses the sampled points, not the outline. At
# $\sigma = 0.03$, compare the field of $N = 50, 100, \dots, 1600$ random points on the star with the field of a
# dense, evenly spaced outline (`gfcore.data.shapes2d.dense`), at queries between $\sigma$ and $3\sigma$ from the
# outline. *Check:* the mean cosine similarity is close to 1 while the average spacing between points (the
# outline's length over $N$) is well below $\sigma$, and drops quickly once the spacing exceeds about $\sigma$:
# the field then ripples between neighbouring points.
#
# :::{dropdown} Solution 1.3
# `gfcore.data.shapes2d.outline_length` gives the star's perimeter, so the average spacing of $N$ points is its
# length over $N$. Near the outline the softmax weights only a few neighbours, those within about $\sigma$; when
# points are farther apart than that, a query sees one or two of them, and the field points at those points
# rather than at the outline between them. The table below shows the agreement for each $N$, with the spacing in
# units of $\sigma$.
# :::

# %% tags=["hide-cell"]
s = 0.03
star_dense = gfcore.data.shapes2d.dense("star", 20000)
perimeter = gfcore.data.shapes2d.outline_length(gfcore.data.shapes2d.outline("star"))
near_x = star_dense[torch.randint(len(star_dense), (4000,), generator=generator)] + s * torch.randn(
    4000, 2, generator=generator)
near_d = gfcore.fields.distance_to_points(near_x, star_dense)
near_x = near_x[(near_d > s) & (near_d < 3 * s)]
reference_field = gfcore.fields.smoothed_score(near_x, star_dense, s)
sol3_cosine = {}
print(f"{len(near_x)} queries between sigma and 3 sigma from the star; perimeter {perimeter:.2f}")
print(f"{'N':>5} | {'spacing / sigma':>15} | {'mean cosine':>11}")
for n in [50, 100, 200, 400, 800, 1600]:
    sparse = gfcore.data.shapes2d.sample("star", n, generator=generator)
    cos = torch.nn.functional.cosine_similarity(gfcore.fields.smoothed_score(near_x, sparse, s), reference_field,
                                                dim=-1)
    sol3_cosine[perimeter / n / s] = float(cos.mean())
    print(f"{n:5d} | {perimeter / n / s:15.2f} | {float(cos.mean()):11.3f}")

# %% [markdown]
# **Exercise 1.4** (the medial axis). The centre of the star is the same distance from all five inner corners.
# Compare the length of $\sigma^2 \nabla_x \log A_\sigma$ at the centre with the distance from the centre to the
# outline, at $\sigma = 0.05$, for the dense outline and for the `NUM_POINTS` random points; do the same for a point
# $0.3$ outside a tip. *Check:* outside the tip the length matches the distance; at the centre it is far shorter
# than the distance (about zero for the symmetric dense outline), because the pulls toward the five corners
# cancel.
#
# :::{dropdown} Solution 1.4
# $\sigma^2 \nabla_x \log A_\sigma(x) = \sum_i w_i x_i - x$: outside a tip the weights sit on the few points of the
# tip, so the displacement reaches the outline. At the centre the nearest points lie in five directions at the
# same distance; with the evenly spaced dense outline they get equal weights and the weighted mean is the centre
# itself. Random points break the symmetry a little, the closest few win the softmax and the mean moves toward
# them, but it stays well inside the star. This is the bifurcation of Figure 1.4, at its most extreme.
# :::

# %% tags=["hide-cell"]
s = 0.05
centre, outside_tip = torch.zeros(1, 2), torch.tensor([[0.0, 0.9 + 0.3]])  # the star's top tip is at (0, 0.9)
sol4 = {}
for where, x in [("centre", centre), ("outside a tip", outside_tip)]:
    distance = float(gfcore.fields.distance_to_points(x, star_dense))
    for cloud_name, cloud in [("dense outline", star_dense), (f"{NUM_POINTS} random points", star)]:
        length = float((s**2 * gfcore.fields.smoothed_score(x, cloud, s)).norm())
        sol4[where, cloud_name] = length / distance
        print(f"{where:13} | {cloud_name:17} | distance {distance:.3f} | |sigma^2 score| {length:.3f} | "
              f"ratio {length / distance:.3f}")

# %% [markdown]
# **Exercise 1.5** (two ways to compute one field). Compute the field of the star at `TIMING_QUERIES` random
# queries with `method="direct"` and with `method="attention"`, and time both. *Check:* the two agree to float32
# round-off: the displacements $\sigma^2 \nabla_x \log A_\sigma$ differ by a few millionths at most (the star is
# about 2 wide); which path is faster depends on the machine (`bench/field.py` measures it properly).
#
# :::{dropdown} Solution 1.5
# The attention path rewrites the logits as the dot product of $[x/\sigma^2, 1/\sigma^2]$ with
# $[x_i, -\lVert x_i\rVert^2/2]$ and hands them to `torch.nn.functional.scaled_dot_product_attention`; the direct
# path subtracts squared distances. Both are exact in real arithmetic, so they differ only by float32 rounding.
# Compare the displacements (in units of length), not the relative error of the field: where the field nearly
# vanishes (on the medial axis, exercise 1.4) the mean and $x$ nearly cancel, and a rounding error of a millionth
# becomes a large fraction of a tiny vector. The cell prints both; the median relative difference is what
# float32 round-off looks like.
# :::

# %% tags=["hide-cell"]
timing_x = torch.rand(TIMING_QUERIES, 2, generator=generator) * 3 - 1.5
sol5_fields, sol5_seconds = {}, {}
for method in ["direct", "attention"]:
    tic = time.perf_counter()
    sol5_fields[method] = gfcore.fields.smoothed_score(timing_x, star, 0.1, method=method)
    sol5_seconds[method] = time.perf_counter() - tic
    print(f"{method:9}: {sol5_seconds[method]:.2f} s for {TIMING_QUERIES} queries x {NUM_POINTS} points")
difference = (sol5_fields["attention"] - sol5_fields["direct"]).norm(dim=-1)
sol5_displacement = 0.1**2 * difference.max().item()
sol5_relative = (difference / sol5_fields["direct"].norm(dim=-1))
print(f"largest difference of the displacements sigma^2 * score: {sol5_displacement:.1e}")
print(f"relative difference of the fields: median {sol5_relative.median():.1e}, largest {sol5_relative.max():.1e} "
      f"(where |sigma^2 * score| = {0.1**2 * sol5_fields['direct'].norm(dim=-1)[sol5_relative.argmax()]:.1e})")

# %%
# The science this chapter showed, and what each exercise's solution found; nbval fails the build if it stops being
# true.
assert max(fd_errors.values()) < 1e-4, fd_errors
assert cosine.median() > 0.95, float(cosine.median())
assert (cosine > 0.9).float().mean() > 0.85, float((cosine > 0.9).float().mean())
assert 0.8 < ratio.median() < 1.2, float(ratio.median())
# 1.1: the far field tends to (centroid - x) / sigma^2, with an error of order 1 / sigma^2
assert sol1_errors[50.0] < 1e-3 and sol1_errors[500.0] < sol1_errors[50.0] / 50, sol1_errors
# 1.2: the closed form by hand is the library's, to float64 round-off
assert sol2_error < 1e-10, sol2_error
# 1.3: spacing well below sigma -> the sampled field is the outline's; spacing above 2 sigma -> it is not
assert all(c > 0.95 for k, c in sol3_cosine.items() if k < 0.6), sol3_cosine
assert all(c < 0.9 for k, c in sol3_cosine.items() if k > 2), sol3_cosine
assert list(sol3_cosine.values()) == sorted(sol3_cosine.values()), sol3_cosine   # more points, better agreement
# 1.4: outside a tip the displacement reaches the outline; at the centre (medial axis) the pulls cancel
assert all(0.8 < r < 1.2 for (where, _), r in sol4.items() if where == "outside a tip"), sol4
assert all(r < 0.5 for (where, _), r in sol4.items() if where == "centre"), sol4
assert sol4["centre", "dense outline"] < 0.01, sol4
# 1.5: the fused attention path computes the direct path's field, to float32 round-off
assert sol5_displacement < 1e-5 and sol5_relative.median() < 1e-5, (sol5_displacement, sol5_relative.median())
print("chapter 1 checks passed")

# %% [markdown]
# :::{admonition} You can now
# :class: tip
# - sample a 2D shape as a point cloud and smooth it into a density, eq. {eq}`eq-smoothed-density`;
# - write the closed-form gradient field {eq}`eq-closed-form-score` as an attention over the points, and check it
#   against finite differences;
# - say what $\sigma$ trades off (detail near the shape against reach far from it), and how many points a given
#   $\sigma$ needs;
# - read $\sigma^2 \nabla_x \log A_\sigma$ as a displacement toward the shape, and find where it fails (the medial
#   axis).
#
# **In the library:** `gfcore.data.shapes2d` (`sample`, `dense`, `outline`, `outline_length`), `gfcore.fields`
# (`smoothed_log_density`, `smoothed_score`, `distance_to_points`), `gfcore.viz` (`grid`, `plot_field`,
# `plot_points`, `setup_axes`, `field_sigma_slider`, `animate_sigma`, `to_html`), `gfcore.mode` (`choose`,
# `describe`), `gfcore.utils` (`seed_everything`, `default_device`).
# :::
