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
# # 9. Experiments
#
# The paper {cite}`cai2020shapegf` makes claims beyond its tables: the model is robust to sparse input, to the
# prior Langevin starts from, and it samples any number of points; it trains on a ladder of noise levels rather
# than one. This chapter re-runs those findings with the book's own models, each beside the paper's statement,
# and says where ours agree, where they differ and why. It also answers a question that the paper leaves open and
# that users have asked of the official code: **is the learned field a gradient at all?**
#
# In this chapter you will measure sparse-input reconstruction and upsampling, the effect of the prior and the
# cost-quality curve of the sampler (steps per level, number of levels), train small models to compare a ladder of
# noise levels with a single one and the two decoders of the paper, measure how far learned fields are from
# gradient fields, and learn a field on one real scanned shape.

# %% tags=["remove-output"]
try:
    import gfcore
except ImportError:  # on Colab: install the library from the book's repository (Colab's torch is kept)
    # %pip install -q "gfcore[viz3d,data] @ git+https://github.com/gfbook/gfbook"
    import gfcore

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import gfcore.data
import gfcore.evaluation
import gfcore.fields
import gfcore.losses
import gfcore.metrics
import gfcore.models
import gfcore.pretrained
import gfcore.sampling
import gfcore.schedule
import gfcore.surface
import gfcore.train
import gfcore.viz3d

generator = gfcore.utils.seed_everything(0)
device = gfcore.utils.default_device()
if device.type == "cpu":
    torch.set_num_threads(1)  # small networks and batches: one thread is fastest, and far faster on a busy machine
print(gfcore.mode.describe())

# %% [markdown]
# ```{note}
# Which models? The 3D experiments use the **shipped model `shapes3d`** (`gfcore.pretrained.load("shapes3d")`,
# chapter 5's recipe, 16,000 steps on a two-core CPU) and the 2D ones the **shipped model `digits2d`** (chapter 4).
# The experiments that need several trainings with one thing changed (ladder or single level, add or CBN decoder,
# official or preconditioned parameterisation) train **small live models** on the digits while the page runs,
# all with the same budget; the bunny of the last section gets its own small live field (ShapeGF's decoder with one
# constant code, as the official single-shape configs train it). Every figure names its model.
# ```
#
# All sizes come from one cell. `GF_MODE=fast` (CI) uses a few shapes, short Langevin runs and live models of
# 100 steps: about 80 seconds of CPU time (measured; five minutes of wall time on a two-core machine busy with other
# jobs). `GF_MODE=full`, the run this page shows, uses a dozen shapes per experiment, the official ten steps per
# level, live models of 1,500 steps and a bunny field of 4,000 steps: 50 minutes on a two-core CPU with one thread,
# beside other jobs (measured; the bunny's field takes 30 of them). Where the text quotes a fast-mode number, it says
# so. `GF_MODE=paper` takes the paper's sizes where they apply (2,048 decoded points,
# every input size, 16,384 upsampled points, 60 shapes), for a GPU (an estimate: minutes).

# %%
SHAPES = gfcore.mode.choose(fast=3, full=12, paper=60)               # shipped shapes3d: test shapes per experiment
INPUT_SIZES = gfcore.mode.choose(fast=[64, 256, 2048], full=[64, 128, 256, 512, 1024, 2048])
DECODE_POINTS = gfcore.mode.choose(fast=1024, full=2048)             # points decoded per shape (paper: 2,048)
DENSITIES = gfcore.mode.choose(fast=[1024, 4096], full=[2048, 4096, 8192, 16384])   # upsampling from one code
STEPS = gfcore.mode.choose(fast=5, full=10)                          # Langevin steps per level (official: 10)
STEP_GRID = gfcore.mode.choose(fast=[1, 3, 10], full=[1, 2, 3, 5, 10, 20])    # steps per level, 10 levels
LEVEL_GRID = gfcore.mode.choose(fast=[2, 3, 5, 10], full=[2, 3, 5, 10, 20])   # levels, 10 steps per level
DIGIT_POINTS = gfcore.mode.choose(fast=128, full=256)                # live digit models: points per digit
DIGIT_SHAPES = gfcore.mode.choose(fast=400, full=4000)               # ... training digits
LIVE_STEPS = gfcore.mode.choose(fast=100, full=1500)                 # ... Adam steps of every live model
LIVE_SIZE = gfcore.mode.choose(fast=dict(zdim=32, hidden=64, batch_size=8),
                               full=dict(zdim=64, hidden=128, batch_size=16))
ADD_BLOCKS, CBN_BLOCKS = gfcore.mode.choose(fast=(3, 2), full=(6, 4))   # the paper's 24 : 16 ratio
EVAL_DIGITS = gfcore.mode.choose(fast=8, full=64)                    # held-out digits for the 2D measurements
JAC_POINTS = gfcore.mode.choose(fast=256, full=1024)                 # points per shape for the Jacobians
MAP_RES = gfcore.mode.choose(fast=48, full=96)                       # pixels per side of the asymmetry map
BUNNY_POINTS = gfcore.mode.choose(fast=3000, full=10000, paper=20000)   # points on the bunny: the training set
BUNNY_STEPS = gfcore.mode.choose(fast=400, full=4000)                # Adam steps of the bunny's field
BUNNY_NET = gfcore.mode.choose(fast=dict(hidden=128, n_blocks=4), full=dict(hidden=128, n_blocks=8))
BUNNY_BATCH = gfcore.mode.choose(fast=(8, 512), full=(16, 1024))      # ... copies of the shape x points per step
BUNNY_DENSITIES = gfcore.mode.choose(fast=[1024, 4096], full=[2048, 8192, 16384])
BUNNY_GRID = gfcore.mode.choose(fast=40, full=64, paper=128)         # marching-cubes grid points per axis
BUNNY_SIGMA = 0.08                                                   # the level at which both fields are meshed
RENDER = dict(distance=4.6, elevation=20.0)                          # camera for [-1, 1] shapes (y is up)
SHIPPED_3D, SHIPPED_2D = "shipped model shapes3d", "shipped model digits2d"


def seeded(seed):
    """A generator on the device, so every experiment draws the same noise in every run."""
    return torch.Generator(device=device).manual_seed(seed)


# %% [markdown]
# ## The 3D test shapes
#
# Every 3D experiment uses held-out test shapes of the shipped model's data, spread over its six categories. As
# in the official protocol, what the encoder sees comes from each shape's **train pool** (10,000 points), and what
# the result is scored against is the **test pool** (5,000 other points of the same surface), which the model never
# sees. The Chamfer distance (squared distances, the two directions' means summed, chapter 6) is reported in the
# normalised coordinates the model works in, always beside the **oracle**: as many points of the train pool as were
# decoded, scored against the same test pool, which is what a perfect model would get.

# %%
card3d = gfcore.pretrained.card("shapes3d")
model3d = gfcore.pretrained.load("shapes3d", device=device).eval()
test3d = gfcore.data.build_dataset(card3d["dataset"], "test", **{**card3d["dataset_kwargs"], "sample": "first"})
picked = gfcore.evaluation.spread_indices(len(test3d), SHAPES)
clouds = torch.stack([(torch.from_numpy(test3d.raw_cloud(i)) - test3d[i]["shift"]) / test3d[i]["scale"]
                      for i in picked]).float().to(device)
train_pool, truth = clouds[:, test3d.pools["train"]], clouds[:, test3d.pools["test"]]
names3d = [test3d.categories[test3d[i]["label"]] for i in picked]
print(f"{SHAPES} test shapes ({', '.join(names3d)}): train pool {tuple(train_pool.shape)}, "
      f"test pool {tuple(truth.shape)}")


def cd3d(x):
    """Chamfer distance of (SHAPES, M, 3) points to the test pools, per shape."""
    return gfcore.metrics.chamfer_distance(x, truth)


oracle3d = cd3d(train_pool[:, :DECODE_POINTS])
print(f"oracle ({DECODE_POINTS} train-pool points vs the test pool): CD x1e4 = {1e4 * oracle3d.mean():.2f}")

# %% [markdown]
# ## Sparse input
#
# **The paper:** reconstruction is robust to sparse input (256 against 2,048 input points; as summarised in
# `reference.md`, not checked against its tables). **Here:** we encode the first $n$ train-pool points of each
# shape for $n$ from 64 to 2,048 and decode the same number of points from every code, with the same noise.

# %%
with torch.no_grad():
    codes = {n: model3d.encode(train_pool[:, :n]) for n in INPUT_SIZES}
start = time.perf_counter()
decoded = model3d.decode(torch.cat(list(codes.values())), DECODE_POINTS, steps_per_sigma=STEPS,
                         generator=seeded(0)).split(SHAPES)
decoded = dict(zip(INPUT_SIZES, decoded))
cd_sparse = {n: cd3d(x) for n, x in decoded.items()}
cd_input = {n: cd3d(train_pool[:, :n]) for n in INPUT_SIZES}
print(f"decoded {len(INPUT_SIZES) * SHAPES} shapes in {time.perf_counter() - start:.0f} s")
print(f"{'input points':>12} | {'CD x1e4 decoded':>15} | {'/ oracle':>8} | {'CD x1e4 of the input itself':>27}")
for n in INPUT_SIZES:
    print(f"{n:12d} | {1e4 * cd_sparse[n].mean():15.2f} | {cd_sparse[n].mean() / oracle3d.mean():8.2f} | "
          f"{1e4 * cd_input[n].mean():27.2f}")

# %%
fig, ax = plt.subplots(figsize=(6.4, 3.8))
ax.plot(INPUT_SIZES, [1e4 * cd_sparse[n].mean() for n in INPUT_SIZES], "o-", label=f"{DECODE_POINTS} points decoded")
ax.plot(INPUT_SIZES, [1e4 * cd_input[n].mean() for n in INPUT_SIZES], "s--", color="0.5",
        label="the input points themselves")
ax.axhline(1e4 * oracle3d.mean(), color="k", ls=":", label=f"oracle ({DECODE_POINTS} true points)")
ax.set(xscale="log", yscale="log", xlabel="points given to the encoder", ylabel=r"Chamfer to the test pool $\times 10^4$")
ax.set_xticks(INPUT_SIZES, [str(n) for n in INPUT_SIZES])
ax.legend(fontsize=8)
fig.suptitle(f"Figure 9.1 - sparse input ({SHIPPED_3D}; mean of {SHAPES} test shapes)", fontsize=10)
plt.show()

# %%
shown = [train_pool[0, :n] for n in INPUT_SIZES] + [decoded[n][0] for n in INPUT_SIZES]
image = gfcore.viz3d.render_clouds(shown, ncols=len(INPUT_SIZES), window_size=(200, 200), point_size=3.0,
                                   titles=[f"{n} in" for n in INPUT_SIZES] + [f"decoded from {n}" for n in INPUT_SIZES],
                                   **RENDER)
gfcore.viz3d.show_image(image, title=f"Figure 9.2 - a {names3d[0]}: the encoder's input (top) and "
                                     f"{DECODE_POINTS} points decoded from it (bottom), {SHIPPED_3D}")
plt.show()

# %% [markdown]
# The decoded clouds barely change between 2,048 and a few hundred input points (Chamfer $\times 10^4$: 32.76 from
# 2,048, 31.50 from 512, 34.27 from 256), while the input clouds themselves lose most of the surface (the dashed line
# rises steeply, from 12.02 to 62.99 at 256 points): the PointNet encoder takes a maximum over points, and a sketch
# of the shape already fixes most of the code. Below that the distance rises, a little at 128 points (37.30) and to
# twice the 2,048-point value at 64 (65.41), where the code is visibly less sure (in Figure 9.2 the chair decoded
# from 64 points stands on four legs instead of its swivel base). **Agrees with the paper** down to 256 points;
# below that, ours degrade, and the paper does not claim otherwise. Exercise 2 goes further down.
#
# ## Upsampling: any number of points from one code
#
# **The paper:** the decoder is a field, so one code can be sampled at any density. **Here:** we decode the code of
# each shape's 2,048-point input at several densities and split the Chamfer distance into its two directions:
# *accuracy* (mean squared distance of each decoded point to the true surface, here the test pool) and
# *completeness* (of each true point to the nearest decoded point).

# %%
z_full = codes[2048]
up_rows = {}
for m in DENSITIES:
    x = model3d.decode(z_full, m, steps_per_sigma=STEPS, generator=seeded(1))
    row = {"accuracy": gfcore.metrics.nearest_distance(x, truth).mean(1),
           "completeness": gfcore.metrics.nearest_distance(truth, x).mean(1), "cloud": x[0]}
    if m <= train_pool.shape[1]:                                  # the oracle needs m true points
        oracle = train_pool[:, :m]
        row["oracle accuracy"] = gfcore.metrics.nearest_distance(oracle, truth).mean(1)
        row["oracle completeness"] = gfcore.metrics.nearest_distance(truth, oracle).mean(1)
    up_rows[m] = row
print(f"{'points':>7} | {'accuracy x1e4':>13} | {'oracle':>7} | {'completeness x1e4':>17} | {'oracle':>7}")
for m, row in up_rows.items():
    oa = f"{1e4 * row['oracle accuracy'].mean():7.2f}" if "oracle accuracy" in row else f"{'-':>7}"
    oc = f"{1e4 * row['oracle completeness'].mean():7.2f}" if "oracle completeness" in row else f"{'-':>7}"
    print(f"{m:7d} | {1e4 * row['accuracy'].mean():13.2f} | {oa} | {1e4 * row['completeness'].mean():17.2f} | {oc}")

# %%
image = gfcore.viz3d.render_clouds([row["cloud"] for row in up_rows.values()] + [truth[0]], ncols=len(DENSITIES) + 1,
                                   titles=[f"{m} points" for m in DENSITIES] + ["test pool (5,000)"],
                                   window_size=(220, 220), point_size=1.5, **RENDER)
gfcore.viz3d.show_image(image, title=f"Figure 9.3 - one code of a {names3d[0]}, decoded at several densities "
                                     f"({SHIPPED_3D})")
plt.show()

# %% [markdown]
# More points cover the surface more densely, so completeness improves with every doubling (from 13.83 at 2,048
# points to 3.24 at 16,384, $\times 10^{-4}$), while accuracy, how far each point lies from the surface, stays about
# where it was (18.02 to 18.56): the decoder puts every point equally well, however many we ask for. Against the
# oracle, accuracy is where the model falls short, about five times the oracle's 3.5 (its points lie a little off
# the surface, the blur of a CPU-trained model); completeness is much closer, 1.6 to 2.4 times the oracle's.
# **Agrees with the paper**: density is free, and the quality of each point does not depend on it.
#
# ## The prior
#
# **The paper:** sampling is robust to the prior: uniform, Gaussian or a fixed point. **Here:** the same codes
# decoded from the official uniform prior on $[-1.5, 1.5]^3$, a standard Gaussian, and every point starting at the
# origin.

# %%
priors = {"uniform": {}, "gaussian": {}, "fixed": {"points": torch.zeros(3, device=device)}}
cd_prior = {name: cd3d(model3d.decode(z_full, DECODE_POINTS, steps_per_sigma=STEPS, prior=name, prior_kwargs=kw,
                                      generator=seeded(2)))
            for name, kw in priors.items()}
for name, v in cd_prior.items():
    print(f"prior {name:8s}: CD x1e4 {1e4 * v.mean():6.2f} ({v.mean() / oracle3d.mean():.2f}x the oracle); "
          f"per shape {[round(1e4 * float(c), 2) for c in v]}")

# %% [markdown]
# The three agree to within 1% on average (31.78, 31.71 and 31.49 $\times 10^{-4}$) and to within 9% shape by shape
# (uniform and Gaussian within 2%; the fixed point differs most, 27.03 against 29.31 on one airplane): the first
# levels, at $\sigma = 1$, spread any start over the shape's neighbourhood before the small levels draw the detail
# (chapter 5, Figure 5.5, shows the starts). **Agrees with the paper.**
#
# ## Steps, levels and time: the sampler's cost-quality curve
#
# The official sampler takes 10 steps on each of 10 levels, 100 network calls per point. A user who needs speed
# wants to know what fewer calls cost. We vary the steps per level on the official ten levels, and the number of
# levels (geometric from 1 to 0.01) at ten steps each, and time every setting (`ShapeGF.decode`, the fast folded
# sampler, in the compute dtype it picks on this machine).

# %%
settings = sorted({(10, s) for s in STEP_GRID} | {(levels, 10) for levels in LEVEL_GRID})
cost = {}
for levels, steps in settings:
    ladder = gfcore.schedule.geometric_sigmas(1.0, 0.01, levels)
    start = time.perf_counter()
    x = model3d.decode(z_full, DECODE_POINTS, sigmas=ladder, steps_per_sigma=steps, generator=seeded(3))
    cost[levels, steps] = {"calls": levels * steps, "seconds": time.perf_counter() - start, "cd": cd3d(x).mean()}
print(f"{'levels':>6} | {'steps/level':>11} | {'calls':>5} | {'seconds':>7} | {'CD x1e4':>7} | {'/ oracle':>8}")
for (levels, steps), row in cost.items():
    print(f"{levels:6d} | {steps:11d} | {row['calls']:5d} | {row['seconds']:7.2f} | {1e4 * row['cd']:7.2f} | "
          f"{row['cd'] / oracle3d.mean():8.2f}")

# %%
fig, ax = plt.subplots(figsize=(6.6, 3.9))
for label, keys, marker in (("10 levels, steps per level varied", [(10, s) for s in STEP_GRID], "o-"),
                            ("10 steps per level, levels varied", [(lv, 10) for lv in LEVEL_GRID], "s--")):
    ax.plot([cost[k]["seconds"] for k in keys], [1e4 * cost[k]["cd"] for k in keys], marker, label=label)
    for k in keys:
        ax.annotate(f"{k[0]}x{k[1]}", (cost[k]["seconds"], 1e4 * cost[k]["cd"]), fontsize=7,
                    textcoords="offset points", xytext=(4, 4))
ax.axhline(1e4 * oracle3d.mean(), color="k", ls=":", label="oracle")
ax.set(xscale="log", yscale="log", xlabel=f"seconds to decode {SHAPES} shapes x {DECODE_POINTS} points ({device.type})",
       ylabel=r"Chamfer to the test pool $\times 10^4$")
ax.legend(fontsize=8)
fig.suptitle(f"Figure 9.4 - the sampler's cost and quality, labelled levels x steps ({SHIPPED_3D})", fontsize=10)
plt.show()

# %% [markdown]
# Time is proportional to the number of calls (the seconds were measured on a machine shared with other jobs, so read
# them as relative). Quality, on the other hand, hardly moves: for this model even one step per level lands close to
# the official 100 calls (3.08 against 2.71 times the oracle, with ten times fewer calls), and three steps per level
# already match them (2.64). The reason is the official step size $\alpha_i = 2\sigma_i^2$: a step adds noise of
# standard deviation $\sqrt2\,\sigma_i$ and then moves the point by $\sigma_i^2 s(x, \sigma_i)$, which for an exact
# score is a full denoising jump to the expected clean point (Tweedie's formula), not a small step. One step per level
# therefore already ends near the shape; further steps re-noise and re-denoise, which spreads the points along the
# surface more than it moves them closer to it. The paper reports no such curve; it uses 10 x 10 for auto-encoding and
# 5 levels x 10 steps for generation (chapter 7). On this model both are safe choices, and ten times fewer calls cost
# little; a model with a less accurate field at the fine levels would need the repeated steps more. The levels are
# another matter: with only two, the sampler jumps from $\sigma = 1$ straight to $\sigma = 0.01$, and the points never
# get drawn in from the prior (the 2 x 10 row lands at 29.82 times the oracle, eleven times further from the shape
# than the official 10 x 10). Three levels are already enough here (2.87): what the ladder must not skip is the range
# of scales, not the calls.
#
# ## Noise levels: a ladder against a single sigma
#
# **The paper** trains on ten levels from 1 to 0.01 and samples by annealing through them; chapter 2 showed in 2D,
# with the closed form beside it, why one small level is not enough. Here the claim is tested with the conditional
# model: two live digit models trained with the **same budget** (steps, batch, architecture), one on the ladder and
# one on its finest level only, $\sigma = 0.01$. Live models of this chapter are small ShapeGF auto-encoders on
# handwritten digits (chapter 4's data), trained by `gfcore.train.train_autoencoder`; the runs below also provide
# the decoders and parameterisations compared later.

# %%
digits_train = gfcore.data.build_dataset("digits2d", "train", num_points=DIGIT_POINTS, num_shapes=DIGIT_SHAPES)
digits_in, digits_ref = gfcore.evaluation.protocol_data("digits2d", "val", num_points=DIGIT_POINTS,
                                                        num_shapes=EVAL_DIGITS)
val_points = torch.stack([digits_in[i]["points"] for i in range(EVAL_DIGITS)]).to(device)
LIVE = dict(dim=2, **LIVE_SIZE, norm="none", max_steps=LIVE_STEPS, val_every=None, log_every=LIVE_STEPS // 4,
            amp="auto", seed=100, device=device.type)
RECIPES = {
    "add, preconditioned": dict(block="add", n_blocks=ADD_BLOCKS, preconditioning="edm", weighting="ncsn"),
    "add, preconditioned, single sigma": dict(block="add", n_blocks=ADD_BLOCKS, preconditioning="edm",
                                              weighting="ncsn", sigma_max=0.01, sigma_min=0.01, num_sigmas=1),
    "cbn, preconditioned": dict(block="cbn", n_blocks=CBN_BLOCKS, preconditioning="edm", weighting="ncsn"),
    "add, official": dict(block="add", n_blocks=ADD_BLOCKS, preconditioning="none", weighting="shapegf"),
    "cbn, official": dict(block="cbn", n_blocks=CBN_BLOCKS, preconditioning="none", weighting="shapegf"),
}
live, live_seconds = {}, {}
for name, recipe in RECIPES.items():
    start = time.perf_counter()
    result = gfcore.train.train_autoencoder(gfcore.train.AutoEncoderConfig(**LIVE, **recipe), train_set=digits_train,
                                            progress=False)
    live[name], live_seconds[name] = result.model.eval(), time.perf_counter() - start
    print(f"live model '{name}': {sum(p.numel() for p in result.model.parameters()):,} parameters, "
          f"{LIVE_STEPS} steps in {live_seconds[name]:.0f} s")
LADDER = gfcore.schedule.geometric_sigmas(1.0, 0.01, 10, device=device)

# %% [markdown]
# **Compared at the same sigma.** The held-out denoising loss at every level of the ladder (NCSN weighting, in
# which a network that outputs zero scores 1 at every level), on the validation digits:

# %%
def per_level_loss(model, weighting="ncsn", repeats=4):
    """Held-out DSM loss of a model at each level of LADDER, averaged over `repeats` noise draws."""
    g = seeded(4)
    with torch.no_grad():
        return np.array([np.mean([float(model.loss(val_points, s.view(1), weighting=weighting, generator=g).mean())
                                  for _ in range(repeats)]) for s in LADDER])


LADDER_M, SINGLE_M = "add, preconditioned", "add, preconditioned, single sigma"
level_loss = {name: per_level_loss(live[name]) for name in (LADDER_M, SINGLE_M)}
print("sigma          " + " ".join(f"{s:7.3f}" for s in LADDER.tolist()))
for name, row in level_loss.items():
    print(f"{name[:14]:14} " + " ".join(f"{v:7.3f}" for v in row))

# %% [markdown]
# **Compared through sampling.** The ladder model decodes with the official sampler (10 levels x 10 steps); the
# single-level model can only sample at its own level, so it gets the same 100 calls at $\sigma = 0.01$. Both start
# from the uniform prior, and both are scored under the official protocol beside the oracle.

# %%
recon_ladder = gfcore.evaluation.evaluate_reconstruction(live[LADDER_M], digits_in, digits_ref, emd_method=None)
single_sigmas = torch.tensor([0.01], device=device)
recon_single = gfcore.evaluation.evaluate_reconstruction(live[SINGLE_M], digits_in, digits_ref, emd_method=None,
                                                         sigmas=single_sigmas, steps_per_sigma=100)
print(f"ladder model, 10 x 10 steps      : CD {recon_ladder['CD/oracle']:6.2f}x the oracle")
print(f"single-sigma model, 100 at 0.01  : CD {recon_single['CD/oracle']:6.2f}x the oracle")
with torch.no_grad():
    z_val = {name: live[name].encode(val_points[:4]) for name in (LADDER_M, SINGLE_M)}
    samples_2d = {LADDER_M: live[LADDER_M].decode(z_val[LADDER_M], 512, generator=seeded(5)),
                  SINGLE_M: live[SINGLE_M].decode(z_val[SINGLE_M], 512, sigmas=single_sigmas, steps_per_sigma=100,
                                                  generator=seeded(5))}

# %%
fig = plt.figure(figsize=(12, 3.6))
ax = fig.add_subplot(1, 3, 1)
for name, row in level_loss.items():
    ax.plot(LADDER.cpu(), row, "o-", label=name)
ax.axhline(1.0, color="k", ls=":", label="output zero")
ax.set(xscale="log", yscale="log", xlabel=r"$\sigma$", ylabel="held-out DSM loss", title="at each level")
ax.legend(fontsize=7)
for k, name in enumerate((LADDER_M, SINGLE_M)):
    ax = fig.add_subplot(1, 3, 2 + k)
    for j, pts in enumerate(samples_2d[name].cpu()):
        ax.scatter(pts[:, 0] + 3.2 * (j % 2), pts[:, 1] - 3.2 * (j // 2), s=1, color=f"C{k}")
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title("sampled: " + ("ladder, 10 x 10" if k == 0 else "single sigma, 100 at 0.01"), fontsize=9)
fig.suptitle(f"Figure 9.5 - live digit models, {LIVE_STEPS} steps each: a ladder of levels against the finest "
             "level alone", y=1.02)
plt.show()

# %% [markdown]
# At its own level the single-sigma model is no better than the ladder model, although it spent all its steps there:
# at this budget both are still at the zero-output line at $\sigma = 0.01$ (0.993 each). At every larger level it
# stays near that line (0.91 to 0.98), because it never saw them, while the ladder model is far below it at the large
# levels (0.180 at $\sigma = 1$). Through sampling, that is fatal (26.81 times the oracle, against the ladder model's
# 2.82): at $\sigma = 0.01$ a Langevin step moves a point by about 0.01, and the field away from the digit is
# untrained, so in 100 steps the points starting from the uniform prior never reach the shape. The ladder's large
# levels carry them there. **Agrees with the paper** (and with chapter 2's 2D demonstration).
#
# **What the finest level does to detail.** The ladder ends at 0.01. Stopping the annealing earlier shows what the
# last levels add. The shipped digit model, its official sampler cut after the level shown (and, for comparison, the
# held-out loss of its last training window at each level, from its card: 1 is the zero-output line):

# %%
card2d = gfcore.pretrained.card("digits2d")
model2d = gfcore.pretrained.load("digits2d", device=device).eval()
sh_in, sh_ref = gfcore.evaluation.protocol_data("digits2d", "test", num_points=512, **card2d["dataset_kwargs"])
ladder_full = gfcore.schedule.geometric_sigmas(1.0, 0.01, 10)
cuts = {float(ladder_full[k - 1]): k for k in (4, 6, 8, 10)}
finest = {}
for s_end, k in cuts.items():
    finest[s_end] = gfcore.evaluation.evaluate_reconstruction(model2d, sh_in, sh_ref, num_shapes=EVAL_DIGITS,
                                                              emd_method=None, sigmas=ladder_full[:k])
    print(f"ends at sigma = {s_end:.3f} ({k} levels): CD {finest[s_end]['CD/oracle']:.2f}x the oracle")
card_loss = card2d["history"][-1]["loss_per_sigma"]
print("card, loss per level at the last step:", " ".join(f"{s:.3f}: {v:.2f}" for s, v in zip(ladder_full.tolist(),
                                                                                            card_loss)))
with torch.no_grad():
    z2 = model2d.encode(torch.stack([sh_in[i]["points"] for i in range(3)]).to(device))
    cut_samples = {s_end: model2d.decode(z2, 512, sigmas=ladder_full[:k], generator=seeded(6)).cpu()
                   for s_end, k in cuts.items()}

# %%
fig, axes = plt.subplots(3, len(cuts), figsize=(2.2 * len(cuts), 6.4))
for col, (s_end, pts) in enumerate(cut_samples.items()):
    for row in range(3):
        axes[row, col].scatter(pts[row, :, 0], pts[row, :, 1], s=1.5, color="C0")
        axes[row, col].set(xlim=(-1.4, 1.4), ylim=(-1.4, 1.4), aspect="equal")
        axes[row, col].set_axis_off()
    axes[0, col].set_title(f"ends at {s_end:.3f}\n{finest[s_end]['CD/oracle']:.2f}x oracle", fontsize=9)
fig.suptitle(f"Figure 9.6 - the annealing stopped after the level shown ({SHIPPED_2D}, held-out test digits)",
             y=1.0)
plt.show()

# %% [markdown]
# Stopped at $\sigma \approx 0.2$, the strokes are thick and the distance is well above the full ladder's (2.59
# against 1.75 times the oracle). From about $\sigma = 0.08$ on, though, the finer levels change little for this
# model: the Chamfer ratios of the last three columns (1.73, 1.73, 1.75) are within about 1% of each other. The card
# says why: at the finest levels the shipped model's loss is still at the zero-output line (0.99-1.00 against 1), that
# is, it never learned them in its CPU budget, so those levels add noise and take it away again without adding detail.
# **Differs from the paper**, whose models, trained about a hundred times longer, use the finest levels to sharpen
# corners and thin parts; chapter 5's shipped 3D model and `configs/README.md` tell the same story of the fine levels
# as the last thing a model learns.
#
# ## Is the learned field a gradient?
#
# ShapeGF's decoder outputs a vector at every point. The closed-form field is the gradient of a log-density,
# $\nabla_x \log p_\sigma$, and the model is trained to match it, but nothing in the network forces its output to be
# a gradient of anything. A gradient field has a **symmetric** Jacobian (it is a Hessian); its antisymmetric part,
# the curl, is zero. `gfcore.fields.jacobian_asymmetry` measures, per point,
#
# $$
# a(x) = \frac{\lVert J - J^\top \rVert_F}{2\,\lVert J \rVert_F}, \qquad J = \frac{\partial s(x, \sigma)}{\partial x},
# $$ (eq-ch9-asymmetry)
#
# 0 for a gradient field and 1 for a pure rotation. Whether the score should be parameterised as the gradient of a
# network's energy, at the price of a second backward pass, or directly, as ShapeGF does, is an open design choice
# in score-based models {cite}`salimans2021should`. We measure it for both shipped models, the four live models
# (add and CBN decoders, official and preconditioned parameterisations) and the closed form of the same points, at
# points where the sampler goes at each level: the shape's points plus noise of that level.

# %%
def asymmetry_by_level(score_fn, shapes, seed=7):
    """Median asymmetry at every level of LADDER, at points shapes + sigma * noise (shapes: (B, N, d))."""
    g, out = seeded(seed), []
    for s in LADDER.tolist():
        x = shapes + s * torch.randn(shapes.shape, generator=g, device=device)
        out.append(float(gfcore.fields.jacobian_asymmetry(score_fn, x, s).median()))
    return np.array(out)


digit_shapes = val_points[:, :JAC_POINTS]
shapes3d_q = train_pool[:, :JAC_POINTS]
with torch.no_grad():
    z_live = {name: m.encode(val_points) for name, m in live.items()}
    z_ship2d, z_ship3d = model2d.encode(val_points), model3d.encode(train_pool[:, :2048])
asym = {"closed form (digits)": asymmetry_by_level(lambda x, s: gfcore.fields.smoothed_score(x, digit_shapes, s),
                                                   digit_shapes),
        "closed form (3D shapes)": asymmetry_by_level(lambda x, s: gfcore.fields.smoothed_score(x, shapes3d_q, s),
                                                      shapes3d_q),
        SHIPPED_2D: asymmetry_by_level(model2d.score_fn(z_ship2d), digit_shapes),
        SHIPPED_3D: asymmetry_by_level(model3d.score_fn(z_ship3d), shapes3d_q)}
for name in ("add, preconditioned", "cbn, preconditioned", "add, official", "cbn, official"):
    asym[f"live: {name}"] = asymmetry_by_level(live[name].score_fn(z_live[name]), digit_shapes)
print(f"{'median asymmetry at sigma':34} " + " ".join(f"{s:7.3f}" for s in LADDER.tolist()))
for name, row in asym.items():
    print(f"{name:34} " + " ".join(f"{v:7.1e}" if v < 1e-3 else f"{v:7.3f}" for v in row))

# %%
fig, ax = plt.subplots(figsize=(7.4, 4.0))
for k, (name, row) in enumerate(asym.items()):
    ax.plot(LADDER.cpu(), np.maximum(row, 1e-6), marker="o" if "closed" in name else ".",
            color="k" if "closed" in name else f"C{k}", ls=":" if "3D" in name else "-", label=name, ms=4)
ax.set(xscale="log", yscale="log", xlabel=r"$\sigma$", ylabel="median asymmetry near the shape",
       ylim=(5e-7, 1))
ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
fig.suptitle("Figure 9.7 - how far from a gradient field: shipped models, live models (digits) and the closed form "
             "(0, drawn at 1e-6)",
             fontsize=10)
plt.show()

# %% [markdown]
# The closed form's asymmetry is exactly 0 at every level in this run (rounding can leave $10^{-17}$), drawn at the
# bottom of the plot: autograd differentiates the same softmax-weighted mean for both orders, so its Hessian comes out
# symmetric. Every learned field is not a gradient: near the shape the antisymmetric part of its Jacobian is a few
# percent of the whole for the preconditioned models, shipped and live, growing as $\sigma$ shrinks for all four (from
# 0.016-0.030 at $\sigma = 1$ to 0.084-0.104 at the finest level). The live models in the official parameterisation
# start lower at the largest levels (0.015 and 0.011) but grow fastest, to 0.25 and 0.21 at the finest: their fields
# are the least trained of the four at this budget (the decoders' table below). That does not stop the sampler:
# Langevin dynamics only follows the vectors, and what matters is that they point to the shape. But it means the
# learned "score" is not the gradient of any log-density, so a likelihood cannot be read off it by integrating along a
# path (the result would depend on the path). Where is the asymmetry large? A map of the shipped digit model around
# one digit, at two levels:

# %%
xs = torch.linspace(-1.6, 1.6, MAP_RES, device=device)
grid_pts = torch.stack(torch.meshgrid(xs, xs.flip(0), indexing="xy"), dim=-1).reshape(1, -1, 2)
digit = val_points[:1]
map_sigmas = (0.0464, 0.2154)
maps = {s: gfcore.fields.jacobian_asymmetry(model2d.score_fn(z_ship2d[:1]), grid_pts, s)[0] for s in map_sigmas}
dist = gfcore.fields.distance_to_points(grid_pts, digit)[0]
bands = {}
for s, a in maps.items():
    near, far = dist < s, dist > 3 * s
    bands[s] = {"near": float(a[near].median()), "far": float(a[far].median())}
    print(f"sigma = {s}: median asymmetry within sigma of the digit {bands[s]['near']:.3f}, "
          f"beyond 3 sigma {bands[s]['far']:.3f}")

fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
for ax, (s, a) in zip(axes, maps.items()):
    im = ax.imshow(a.reshape(MAP_RES, MAP_RES).cpu().numpy(), extent=(-1.6, 1.6, -1.6, 1.6), cmap="magma",
                   vmin=0, vmax=0.6)
    ax.scatter(digit[0, :, 0].cpu(), digit[0, :, 1].cpu(), s=1, color="c")
    ax.set_title(rf"$\sigma$ = {s}", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="asymmetry")
fig.suptitle(f"Figure 9.8 - where the learned field is not a gradient ({SHIPPED_2D}, one validation digit in cyan)",
             fontsize=10)
plt.show()

# %% [markdown]
# At both levels the field is about as far from a gradient near the strokes, where training put its noisy samples,
# as beyond three $\sigma$ of the digit, where few training samples at that level went: the printed medians differ by
# less than 10% (0.051 within $\sigma$ and 0.055 beyond $3\sigma$ at $\sigma = 0.2154$; 0.073 and 0.067 at
# $\sigma = 0.0464$), and which band is larger changes with the level. Far out, the map shows broad bright bands.
# The brightest pixels, at both levels, sit inside the digit where strokes come close together or cross, where two
# parts of the digit pull in different directions. The paper does not discuss this; the official code inherits it.
#
# ## Two decoders, two parameterisations, one budget
#
# **The paper** describes a decoder with conditional batch norm (CBN); the released models use the "add" decoder,
# which adds a linear function of $[x, z, \sigma]$ to every residual block. At the paper's sizes the two have about
# the same number of parameters (24 add blocks: 4.04M; 16 CBN blocks: 4.39M). The live models above used the same
# ratio of blocks, the same width and the same budget; each in the official parameterisation (the network outputs
# the displacement from the raw $\sigma$, official loss weighting) and the preconditioned one (chapter 5).

# %%
dec_table = {}
for name in ("add, preconditioned", "cbn, preconditioned", "add, official", "cbn, official"):
    m = live[name]
    rec = gfcore.evaluation.evaluate_reconstruction(m, digits_in, digits_ref, emd_method=None)
    dec_table[name] = {"params": sum(p.numel() for p in m.decoder.parameters()), "seconds": live_seconds[name],
                       "ncsn loss": float(per_level_loss(m).mean()), "CD/oracle": rec["CD/oracle"]}
print(f"{'live model':22} | {'decoder params':>14} | {'train s':>7} | {'held-out loss':>13} | {'CD / oracle':>11}")
for name, row in dec_table.items():
    print(f"{name:22} | {row['params']:14,d} | {row['seconds']:7.0f} | {row['ncsn loss']:13.3f} | "
          f"{row['CD/oracle']:11.2f}")

# %% [markdown]
# (The held-out loss is the NCSN-weighted loss averaged over the ten levels, the same yardstick for all four, in which
# a network that outputs zero scores 1.) With the same budget and the preconditioned parameterisation the two decoders
# land together (held-out loss 0.729 and 0.728, CD 2.82 and 2.74 times the oracle), and the parameterisation matters
# more than the decoder: the official one, which must output displacements of every scale from the raw $\sigma$,
# learns more slowly in this budget (loss 0.777 with add, 0.745 with CBN) and reconstructs worse (5.33 and 3.90 times
# the oracle; reference.md, "Training on a CPU", measured the same, more starkly, in 3D). Only there does the decoder
# make a visible difference, CBN ahead of add. The paper's choice between add and CBN was made at GPU budgets; at
# small budgets, what the network is asked to output matters more than how it is conditioned.
#
# ## One real shape: the Stanford bunny
#
# The official code also fits a field to a single shape. We do the same on a real scan that no one here modelled:
# the Stanford bunny {cite}`turk1994zippered`, which the `pymeshfix` wheel ships (`gfcore.data.bundled_mesh`). The
# field is ShapeGF's decoder (add blocks, preconditioned, no batch norm) with a one-number code held at zero: with one
# shape there is nothing to encode, which is what the official single-shape configs amount to. It is trained by
# denoising score matching on the official ladder (NCSN weighting), on a fixed set of points sampled from the mesh.
# Its rival is the **closed form of the same points** (chapter 1), which needs no training.

# %%
raw_v, raw_f = gfcore.data.bundled_mesh("bunny")
bunny_v = gfcore.data.normalize.shape_bbox(torch.from_numpy(raw_v))[0].float()
bunny_f = torch.from_numpy(raw_f)
bunny_pts = gfcore.data.sample_mesh(bunny_v, bunny_f, BUNNY_POINTS, generator=torch.Generator().manual_seed(0)).to(device)
bunny_truth = gfcore.data.sample_mesh(bunny_v, bunny_f, 10000, generator=torch.Generator().manual_seed(1)).to(device)[None]
torch.manual_seed(0)
bunny_model = gfcore.models.ShapeGF(dim=3, zdim=1, block="add", preconditioning="edm", norm="none",
                                    **BUNNY_NET).to(device)
zero_code = torch.zeros(BUNNY_BATCH[0], 1, device=device)
opt = torch.optim.Adam(bunny_model.decoder.parameters(), lr=1e-3)   # the encoder is never used
g = seeded(8)
start = time.perf_counter()
for step in range(BUNNY_STEPS):
    for group in opt.param_groups:                                  # the official schedule: flat, then linear decay
        group["lr"] = 1e-3 * gfcore.schedule.lr_factor("official", step, BUNNY_STEPS)
    batch = bunny_pts[torch.randint(BUNNY_POINTS, BUNNY_BATCH, generator=g, device=device)]
    loss = gfcore.losses.dsm_loss(bunny_model.score_fn(zero_code), batch, LADDER, weighting="ncsn",
                                  generator=g).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
bunny_model.eval()
net = bunny_model.score_fn(zero_code[:1])                           # the learned field: (x (1, M, 3), sigma) -> score
bunny_seconds = time.perf_counter() - start
print(f"bunny: {len(bunny_v)} vertices; field trained on {BUNNY_POINTS} points for {BUNNY_STEPS} steps in "
      f"{bunny_seconds:.0f} s (last loss {loss.item():.3f})")


def closed_bunny(x, s):
    return gfcore.fields.smoothed_score(x, bunny_pts, s)


bunny_rows = {}
for m in BUNNY_DENSITIES:
    x0 = gfcore.sampling.prior("uniform", (1, m, 3), generator=seeded(9), device=device)
    row = {}
    for name, fn in (("learned", net), ("closed form", closed_bunny)):
        with torch.no_grad():
            x = gfcore.sampling.annealed_langevin(fn, x0, LADDER, steps_per_sigma=STEPS, generator=seeded(10))
        row[name] = {"cd": float(gfcore.metrics.chamfer_distance(x, bunny_truth)),
                     "to training points": float(gfcore.metrics.nearest_distance(x, bunny_pts[None], squared=False)
                                                 .median()), "cloud": x[0]}
    row["oracle"] = float(gfcore.metrics.chamfer_distance(
        gfcore.data.sample_mesh(bunny_v, bunny_f, m, generator=torch.Generator().manual_seed(2)).to(device)[None],
        bunny_truth))
    bunny_rows[m] = row
print(f"{'points':>6} | {'CD x1e4 learned':>15} | {'closed form':>11} | {'oracle':>7} | "
      f"median distance to a training point: learned, closed form")
for m, row in bunny_rows.items():
    print(f"{m:6d} | {1e4 * row['learned']['cd']:15.2f} | {1e4 * row['closed form']['cd']:11.2f} | "
          f"{1e4 * row['oracle']:7.2f} | {row['learned']['to training points']:.4f}, "
          f"{row['closed form']['to training points']:.4f}")

# %%
start = time.perf_counter()
bunny_meshes = {name: gfcore.surface.marching_cubes(fn, sigma=BUNNY_SIGMA, resolution=BUNNY_GRID, bounds=1.1,
                                                    project_steps=2, device=device)
                for name, fn in (("learned", net), ("closed form", closed_bunny))}
mesh_floor = float(gfcore.metrics.chamfer_distance(
    gfcore.data.sample_mesh(bunny_v, bunny_f, 10000, generator=torch.Generator().manual_seed(3))[None].to(device),
    bunny_truth))
mesh_cd = {name: float(gfcore.metrics.chamfer_distance(
    gfcore.data.sample_mesh(v, f, 10000, generator=torch.Generator().manual_seed(4)).float()[None].to(device),
    bunny_truth)) for name, (v, f) in bunny_meshes.items()}
print(f"meshes on a {BUNNY_GRID}^3 grid at sigma = {BUNNY_SIGMA} in {time.perf_counter() - start:.0f} s: CD x1e4 "
      + ", ".join(f"{k} {1e4 * v:.2f}" for k, v in mesh_cd.items()) + f" (two samplings of the scan: {1e4 * mesh_floor:.2f})")

# %%
big = max(BUNNY_DENSITIES)
clouds_img = gfcore.viz3d.render_clouds([bunny_rows[big]["learned"]["cloud"], bunny_rows[big]["closed form"]["cloud"]],
                                        titles=[f"learned field, {big} points", f"closed form, {big} points"],
                                        window_size=(260, 260), point_size=1.5, distance=5.0, elevation=15.0)
meshes_img = gfcore.viz3d.render_meshes([bunny_meshes["learned"], bunny_meshes["closed form"], (bunny_v, bunny_f)],
                                        titles=["learned field, mesh", "closed form, mesh", "the scan"],
                                        window_size=(260, 260), distance=5.0, elevation=15.0)
fig, axes = plt.subplots(2, 1, figsize=(9, 6.4))
for ax, img in zip(axes, (clouds_img, meshes_img)):
    ax.imshow(img)
    ax.set_axis_off()
fig.suptitle(f"Figure 9.9 - the bunny from a live field trained on {BUNNY_POINTS} of its points "
             f"({BUNNY_STEPS} steps) and from the closed form of the same points", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# Both fields sample the bunny at any density and mesh it, and they do it differently. The closed form is exact for
# its points: its samples sit on top of the training points (the median distance to the nearest one is 0.005, half
# the finest $\sigma$), so at small $\sigma$ it *reproduces the point set*. Asked for more points than it has, it
# repeats them: at 16,384 points, past its 10,000, its Chamfer distance is 1.33 times the oracle's, against 1.10 at
# 2,048. The learned field's samples lie *between* the training points (median distance 0.015, three times
# further): it has learned a surface rather than a list, and after 4,000 steps it samples the bunny a little more
# closely than the closed form at every density (at 16,384 points, 5.44 against 6.34 and the oracle 4.77, all
# $\times 10^{-4}$). Fast mode's field (400 steps on 3,000 points) is still blurred and loses to the closed form by 2
# to 2.5 times: training time is what buys the detail. Meshed at $\sigma = 0.08$ (chapter 8's extraction, outer sheet
# projected onto the surface), the two fields give meshes equally far from the scan (22.2 and 21.8, against 5.9 for
# two samplings of the scan itself), and they look alike (Figure 9.9): both are smoother than the scan, and both turn
# its second ear into a thin fin. At this level and on a $64^3$ grid, the extraction limits the mesh, not the field.
# That is the trade the paper makes: a field that generalises between points (and across shapes, with a code), paid
# for in training.
#
# ## Summary
#
# - Sparse input: codes from a few hundred points reconstruct as well as codes from 2,048, as the paper says; below
#   that, the shipped model degrades gracefully.
# - Density and prior are free: one code decodes to any number of points with the same accuracy per point, and the
#   uniform, Gaussian and fixed-point priors give the same shapes.
# - The sampler's cost is its number of network calls; a few steps per level already approach the official 10 x 10
#   (Figure 9.4 is the table to choose from).
# - A ladder of noise levels is what lets sampling start far from the shape; the finest levels add detail only once
#   learned, and the shipped digit model's are not (stopping the sampler at $\sigma = 0.077$ loses nothing).
# - Learned fields are not gradient fields {eq}`eq-ch9-asymmetry`; their curl is a few percent of the Jacobian near
#   the shape and about as large far from it, grows as $\sigma$ shrinks, and is largest where strokes come close
#   together. The closed form is a gradient to rounding.
# - At a small budget, the parameterisation matters more than add against CBN.
# - On one real scan, a small learned field fills in between its training points where the closed form repeats
#   them, and with enough training it samples the shape at least as closely.
#
# ## Exercises
#
# Each exercise has a worked solution below it (click to open); the solutions run with the chapter, and its
# closing checks test what each one claims.
#
# **Exercise 1 (warm-up).** What does an asymmetry of 0.05 look like? Add a rotation to the closed form of the
# validation digits, $s_t(x) = s(x, \sigma) + t\, R\, (x - c)/\sigma^2$ with $R$ the 90-degree rotation and $c$ the
# digit's centre, at $\sigma = 0.0464$, and measure the median asymmetry for a few $t$. *Check:* 0 at $t = 0$,
# growing with $t$; the shipped digit model's value at this level (Figure 9.7) corresponds to a small $t$, a swirl
# of a few percent of the pull toward the shape.
#
# :::{dropdown} Solution 1
# The closed form's Jacobian is symmetric; the added term's Jacobian is $t R / \sigma^2$, antisymmetric. Their
# norms add in squares (the two parts are orthogonal), so the asymmetry is $\lVert A\rVert / \sqrt{\lVert S
# \rVert^2 + \lVert A \rVert^2}$ with $\lVert A \rVert \propto t$: it starts linear in $t$ and tends to 1. The
# closed form's $S$ near the shape is of order $1/\sigma^2$, so $t$ reads directly as "rotation per unit of pull".
# In full mode the shipped digit model's 0.058 at this level lies between $t = 0.02$ (0.044) and $t = 0.05$
# (0.109): a swirl of about three percent of the pull.
# :::

# %% tags=["hide-cell"]
rot = torch.tensor([[0.0, -1.0], [1.0, 0.0]], device=device)
centre = digit_shapes.mean(dim=1, keepdim=True)
x1 = digit_shapes + 0.0464 * torch.randn(digit_shapes.shape, generator=seeded(11), device=device)
sol1 = {}
for t in (0.0, 0.02, 0.05, 0.1, 0.3):
    def swirl(x, s, t=t):
        return gfcore.fields.smoothed_score(x, digit_shapes, s) + t * (x - centre) @ rot.T / s.view(-1, 1, 1) ** 2
    sol1[t] = float(gfcore.fields.jacobian_asymmetry(swirl, x1, 0.0464).median())
print("t -> median asymmetry:", {t: round(v, 4) for t, v in sol1.items()},
      f"| shipped digits2d at this level: {asym[SHIPPED_2D][6]:.3f}")

# %% [markdown]
# **Exercise 2.** Go below the paper's range: encode 32 and 16 points of the same 3D shapes and decode as in
# Figure 9.1. *Check:* at 16 points the reconstruction is clearly worse than from 2,048, and it is no longer always
# closest to its own shape, but the category mostly survives: the test shape nearest to each reconstruction is of
# the right category far more often than chance.
#
# :::{dropdown} Solution 2
# `model3d.encode(train_pool[:, :16])`, then `model3d.decode(...)` with the same settings; compare the Chamfer
# distances with `cd_sparse[2048]`, and build the matrix of distances from every reconstruction to every test pool
# (`gfcore.metrics.pairwise_cd`): its row minimum names the nearest test shape. Chance is the share of test shapes in
# a shape's own category (two of twelve in full mode). Sixteen points are a few samples of a chair's seat and legs; a
# maximum over so few features is noisy, and the code drifts toward the middle of the category, so a reconstruction
# often lands nearer another test shape than its own: in full mode 7 of the 12 find their own shape (58%) and 9 their
# category (75%, against chance 17%), while from 32 points 11 of 12 still do both (92%).
# :::

# %% tags=["hide-cell"]
labels3d = torch.tensor([test3d[i]["label"] for i in picked])
same_category = labels3d[:, None] == labels3d[None, :]               # (SHAPES, SHAPES)
chance = float(same_category.float().mean())                        # a random test shape is of the right category
sol2 = {}
for n in (32, 16):
    with torch.no_grad():
        x = model3d.decode(model3d.encode(train_pool[:, :n]), DECODE_POINTS, steps_per_sigma=STEPS,
                           generator=seeded(0))
    nearest = gfcore.metrics.pairwise_cd(x, truth[:, :DECODE_POINTS]).argmin(dim=1).cpu()
    sol2[n] = {"cd": float(cd3d(x).mean()), "own": float((nearest == torch.arange(SHAPES)).float().mean()),
               "category": float((labels3d[nearest] == labels3d).float().mean())}
    print(f"{n:3d} input points: CD x1e4 {1e4 * sol2[n]['cd']:.2f} (from 2048: {1e4 * cd_sparse[2048].mean():.2f}); "
          f"nearest test shape is its own for {sol2[n]['own']:.0%}, of its category for {sol2[n]['category']:.0%} "
          f"(chance {chance:.0%})")

# %% [markdown]
# **Exercise 3.** Run the shipped digit model's sampler without the Langevin noise (`noise=False` in
# `gfcore.sampling.annealed_langevin`: annealed gradient ascent), with the same ladder and steps. *Check:* the
# points collapse onto a few lines and clumps, and the Chamfer distance to the references is larger than with noise.
#
# :::{dropdown} Solution 3
# Without noise every point climbs to the nearest ridge of the density and stays there: nothing spreads the points
# along the strokes, and the completeness half of the Chamfer distance suffers. The noise injected at every step is
# what makes Langevin dynamics a *sampler* rather than an optimiser (chapter 3). In full mode the Chamfer distance
# is 0.0020 with noise and 0.6153 without, some three hundred times larger.
# :::

# %% tags=["hide-cell"]
ref3 = torch.stack([sh_ref[i]["points"] for i in range(3)]).to(device)
x0 = gfcore.sampling.prior("uniform", (3, 512, 2), generator=seeded(12), device=device)
sol3 = {}
for noise in (True, False):
    x = gfcore.sampling.annealed_langevin(model2d.score_fn(z2), x0, ladder_full, noise=noise, generator=seeded(13))
    sol3[noise] = float(gfcore.metrics.chamfer_distance(x, ref3).mean())
print(f"CD with noise {sol3[True]:.4f}, without {sol3[False]:.4f} (normalised coordinates)")

# %% [markdown]
# **Exercise 4 (harder).** Does training make the field *more* of a gradient? Build a fresh, untrained model with the
# live "add, preconditioned" recipe (same seed) and measure its asymmetry as in Figure 9.7. *Check:* the untrained
# field is much further from a gradient than the trained one at every level: denoising score matching pulls the
# network toward a gradient field, since its target, the score of the perturbation kernel, is one.
#
# :::{dropdown} Solution 4
# `gfcore.models.ShapeGF(**config.model_kwargs())` with the live config builds the untrained network (a fresh
# `torch.manual_seed` fixes its weights); encode the same digits with it and call `asymmetry_by_level`. A random
# network's Jacobian has no reason to be symmetric; the DSM loss is minimised by the true score, a gradient, so
# training removes most of the curl, and what is left is where the data did not constrain it. In full mode the
# untrained field's median asymmetry is 0.165 to 0.252 across the levels, the trained one's 0.021 to 0.104.
# :::

# %% tags=["hide-cell"]
torch.manual_seed(100)
fresh_cfg = gfcore.train.AutoEncoderConfig(**LIVE, **RECIPES["add, preconditioned"])
fresh = gfcore.models.ShapeGF(**fresh_cfg.model_kwargs()).to(device).eval()
with torch.no_grad():
    z_fresh = fresh.encode(val_points)
sol4 = asymmetry_by_level(fresh.score_fn(z_fresh), digit_shapes)
print("untrained:", " ".join(f"{v:.3f}" for v in sol4))
print("trained:  ", " ".join(f"{v:.3f}" for v in asym["live: add, preconditioned"]))

# %%
# The findings this chapter re-ran; nbval fails the build if they stop being true. Every number is measured here.
cd_at = {n: float(cd_sparse[n].mean()) for n in INPUT_SIZES}
assert cd_at[256] < 1.5 * cd_at[2048], cd_at                              # sparse input: little loss at 256 points
assert all(cd_at[n] < 2.0 * cd_at[2048] for n in INPUT_SIZES if n >= 256), cd_at
completeness = [float(up_rows[m]["completeness"].mean()) for m in DENSITIES]
accuracy = [float(up_rows[m]["accuracy"].mean()) for m in DENSITIES]
assert all(b < a for a, b in zip(completeness, completeness[1:])), completeness   # more points cover more
assert max(accuracy) < 1.3 * min(accuracy), accuracy                               # ... each placed as well
prior_means = [float(v.mean()) for v in cd_prior.values()]
assert max(prior_means) < 1.25 * min(prior_means), cd_prior                         # the prior does not matter
assert cost[10, 10]["cd"] < 3 * oracle3d.mean(), (cost[10, 10], oracle3d)           # the official sampler is close
three_up = [row["cd"] for (levels, _), row in cost.items() if levels >= 3]
assert max(three_up) < 1.5 * cost[10, 10]["cd"], cost                              # ... and 10 calls nearly so,
assert cost[2, 10]["cd"] > 3 * cost[10, 10]["cd"], cost    # but not 2 levels: one jump from sigma = 1 to 0.01
assert recon_single["CD/oracle"] > 5 * recon_ladder["CD/oracle"], (recon_single, recon_ladder)   # ladder needed
assert level_loss[SINGLE_M][0] > level_loss[LADDER_M][0] + 0.3, level_loss          # single never saw sigma = 1
cut_ratios = [finest[s]["CD/oracle"] for s in cuts]
assert cut_ratios[0] > 1.3 * cut_ratios[-1], cut_ratios                             # stopping at 0.2 leaves blur
assert max(cut_ratios[1:]) < 1.15 * min(cut_ratios[1:]), cut_ratios                 # the finest levels add little
assert min(card_loss[-3:]) > 0.95, card_loss                                        # ... because never learned
assert max(asym["closed form (digits)"].max(), asym["closed form (3D shapes)"].max()) < 1e-4, asym  # a gradient
learned_asym = [v for k, v in asym.items() if "closed" not in k]
assert all(row.max() > 100 * asym["closed form (digits)"].max() for row in learned_asym), asym      # not gradients
# not a gradient near the strokes nor far from them: both bands far above the closed form's 0 (or 1e-17), and of
# one order (which band is larger depends on the digit and the level: full mode's digit reverses it at the small one)
assert all(min(b.values()) > 0.01 and max(b.values()) < 3 * min(b.values()) for b in bands.values()), bands
for name in ("add, preconditioned", "cbn, preconditioned"):
    assert dec_table[name]["ncsn loss"] < 0.9, dec_table                            # both decoders learned
assert min(dec_table[n]["ncsn loss"] for n in ("add, official", "cbn, official")) > \
    max(dec_table[n]["ncsn loss"] for n in ("add, preconditioned", "cbn, preconditioned")), dec_table
big_rows = bunny_rows[big]
assert big_rows["learned"]["cd"] < 10 * big_rows["oracle"], big_rows                # the learned field is the bunny
# the closed form copies its training points, the learned field places samples between them ...
assert big_rows["closed form"]["to training points"] < 0.5 * big_rows["learned"]["to training points"], big_rows
# ... so past its own point count the closed form falls behind the oracle: it repeats points instead of adding them
small_rows = bunny_rows[min(BUNNY_DENSITIES)]
if big > BUNNY_POINTS:
    assert big_rows["closed form"]["cd"] / big_rows["oracle"] > \
        small_rows["closed form"]["cd"] / small_rows["oracle"], bunny_rows
assert max(mesh_cd.values()) < 20 * big_rows["oracle"], (mesh_cd, big_rows["oracle"])  # both meshes are the bunny
# The exercises' solutions.
ts = list(sol1)
assert sol1[0.0] < 1e-4 and all(sol1[a] < sol1[b] for a, b in zip(ts, ts[1:])), sol1                # 1
assert sol2[16]["cd"] > 2 * cd_at[2048] and sol2[16]["category"] > 2 * chance, (sol2, cd_at, chance)  # 2
assert sol3[False] > sol3[True], sol3                                                                # 3
assert all(sol4 > asym["live: add, preconditioned"]), (sol4, asym["live: add, preconditioned"])     # 4
print("chapter 9 checks passed")

# %% [markdown]
# :::{admonition} You can now
# :class: tip
# - test a claim of the paper with a model and a protocol you can name, beside an oracle computed in the same run;
# - choose a sampler's steps and levels from a measured cost-quality curve;
# - explain why ShapeGF trains on a ladder of noise levels, and what its finest level does;
# - measure how far a learned score is from a gradient field, and where;
# - fit a field to a single real shape and compare it with the closed form of the same points.
# :::
#
# :::{admonition} In the library
# :class: note
# `gfcore.pretrained`: `load`, `card`; `gfcore.models`: `ShapeGF` (`encode`, `decode`, `score_fn`, `loss`),
# `ToyScoreNet`; `gfcore.train`: `AutoEncoderConfig`, `train_autoencoder`; `gfcore.evaluation`:
# `evaluate_reconstruction`, `protocol_data`, `spread_indices`; `gfcore.fields`: `jacobian_asymmetry`,
# `smoothed_score`, `distance_to_points`; `gfcore.sampling`: `prior`, `annealed_langevin`;
# `gfcore.schedule.geometric_sigmas`; `gfcore.losses.dsm_loss`; `gfcore.metrics`: `chamfer_distance`,
# `nearest_distance`, `pairwise_cd`; `gfcore.data`: `build_dataset`, `bundled_mesh`, `sample_mesh`,
# `normalize.shape_bbox`; `gfcore.surface.marching_cubes`; `gfcore.viz3d`: `render_clouds`, `render_meshes`,
# `show_image`; `gfcore.mode.choose`.
# :::
