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
# # 5. The full 3D model
#
# Chapter 4 conditioned a gradient field on a latent code and learned it on many 2D shapes. This chapter runs
# the same recipe at the paper's scale and in 3D {cite}`cai2020shapegf`: a PointNet encoder {cite}`qi2017pointnet`
# turns a point cloud into a 128-number code $z$, and the official 24-block decoder turns $(x, \sigma, z)$ into
# the displacement $\sigma^2 \nabla_x \log p_\sigma(x \mid z)$ toward the surface. Sampling with annealed
# Langevin dynamics then *decodes* $z$ into as many points as we like.
#
# In this chapter you will
#
# - meet a procedural family of 3D shapes (chairs, tables, airplanes, lamps, ...) that stands in for ShapeNet,
# - count the parameters of each part of the paper's architecture,
# - train the auto-encoder with `gfcore.train`, look at what a run writes to disk and at its training curves,
# - auto-encode held-out shapes, and rotate one reconstruction in an interactive view,
# - upsample: encode 256 points and decode 8,192,
# - start Langevin from three different priors and watch all of them reach the same shape,
# - and sample faster by folding batch norm into the decoder's weights.
#
# **gfcore names used:** `gfcore.data.build_dataset`, `gfcore.data.Shapes3D`, `gfcore.data.shapes3d.CATEGORIES`,
# `gfcore.models.ShapeGF`, `gfcore.models.fold.fold_batchnorm`, `gfcore.models.fold.fast_score_fn`,
# `gfcore.train.AutoEncoderConfig`, `gfcore.train.train_autoencoder`, `gfcore.train.load_model`,
# `gfcore.train.load_checkpoint`, `gfcore.train.RunDir`, `gfcore.evaluation.evaluate_reconstruction`,
# `gfcore.pretrained.load`, `gfcore.pretrained.card`, `gfcore.schedule.lr_factor`,
# `gfcore.metrics.chamfer_distance`, `gfcore.sampling.prior`, `gfcore.sampling.annealed_langevin`,
# `gfcore.schedule.geometric_sigmas`, `gfcore.viz3d.render_clouds`, `gfcore.viz3d.show_image`,
# `gfcore.viz3d.interactive_clouds`.

# %% tags=["remove-output"]
try:
    import gfcore
except ImportError:  # on Colab: install the library from the book's repository (Colab's torch is kept)
    # %pip install -q "gfcore @ git+https://github.com/gfbook/gfbook"
    import gfcore

# %%
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import gfcore.data
import gfcore.evaluation
import gfcore.metrics
import gfcore.models
import gfcore.models.fold
import gfcore.pretrained
import gfcore.sampling
import gfcore.schedule
import gfcore.train
import gfcore.viz3d

generator = gfcore.utils.seed_everything(0)
device = gfcore.utils.default_device()
print(gfcore.mode.describe())

# %% [markdown]
# ```{note}
# This page shows two models. The **live model** is trained in the "Training" section by the code on the page,
# sized by the mode: the stored outputs come from the fast mode on a two-core CPU (the line above says which), a
# decoder 50 times smaller than the paper's trained for 1,000 steps (about a CPU minute), whose samples are blurred.
# `GF_MODE=full` (the default on a GPU) trains the paper's sizes instead. From "The shipped model" on, every
# result and figure is the **shipped model** `gfcore.pretrained.load("shapes3d")`, trained for 16,000 steps on a
# two-core CPU; its card (printed below) says how, and what it achieves on held-out shapes.
# ```
#
# All sizes come from one cell. `full` is the paper's architecture and batch (24 "add" blocks of width 256,
# $z \in \mathbb{R}^{128}$, 32 shapes $\times$ 2,048 points per step) on four categories; `fast` keeps the code
# path and shrinks the numbers.

# %%
CATEGORIES = gfcore.mode.choose(fast=["chair", "airplane"], full=["chair", "table", "airplane", "lamp"])
DATA = dict(categories=CATEGORIES,
            num_points=gfcore.mode.choose(fast=512, full=2048),              # training points per shape
            shapes_per_category=gfcore.mode.choose(fast=100, full=500))      # 80% train, 10% val, 10% test
MODEL = dict(zdim=128,
             hidden=gfcore.mode.choose(fast=64, full=256),
             n_blocks=gfcore.mode.choose(fast=4, full=24),
             block="add")
TRAIN = dict(batch_size=gfcore.mode.choose(fast=8, full=32),
             max_steps=gfcore.mode.choose(fast=1000, full=12000),
             log_every=gfcore.mode.choose(fast=25, full=100),
             val_every=gfcore.mode.choose(fast=200, full=2000),
             val_shapes=gfcore.mode.choose(fast=8, full=16),
             val_num_points=gfcore.mode.choose(fast=512, full=2048),
             val_steps_per_sigma=gfcore.mode.choose(fast=5, full=10),
             ckpt_every=gfcore.mode.choose(fast=500, full=2000))
NUM_TEST = gfcore.mode.choose(fast=20, full=200)           # held-out shapes for the reconstruction metrics
STEPS_PER_SIGMA = gfcore.mode.choose(fast=5, full=10)      # Langevin steps per noise level (official: 10)
NUM_SPARSE, NUM_DENSE = 256, 8192                            # upsampling: points in, points out
NUM_UPSAMPLE = gfcore.mode.choose(fast=4, full=6)          # shapes for the upsampling and prior experiments
RENDER = dict(distance=4.6, elevation=20.0)                  # camera for [-1, 1] shapes (y is up)

# %% [markdown]
# ## The data: a procedural family of 3D shapes
#
# The paper trains on ShapeNet {cite}`yang2019pointflow`, which needs a registration and a multi-gigabyte
# download. This book cannot fetch it, so `gfcore.data.shapes3d` builds a stand-in from primitives: each
# category is a small grammar (a chair is a seat, a back of random height and tilt, four legs or a pedestal,
# armrests or not; an airplane is a fuselage, swept and tapered wings, a tail, 0, 2 or 4 engines; ...), every
# proportion drawn at random. A shape is a 15,000-point cloud sampled uniformly by area, split like ShapeNet's
# PC15k release into a pool of 10,000 training points and 5,000 test points. Each cloud is normalised
# per shape as the official ShapeNet configs do: centred on its bounding box, scaled so the longest side spans
# $[-1, 1]$ (`shift` and `scale` come with every item, to undo it).
#
# Chapter 10 does the same on the real thing: `gfcore.data.ShapeNetPC15k` reads the PC15k folders, and
# `python -m gfcore train --config configs/shapenet-airplane.yaml` reproduces the paper's airplane model.

# %%
print("categories of the family:", gfcore.data.shapes3d.CATEGORIES)
train_set = gfcore.data.build_dataset("shapes3d", "train", **DATA)
test_set = gfcore.data.build_dataset("shapes3d", "test", **{**DATA, "num_points": 2048})
print(train_set)
print(test_set)
item = test_set[0]
print({k: tuple(v.shape) if isinstance(v, torch.Tensor) else v for k, v in item.items()})
per_category = len(test_set) // len(CATEGORIES)              # items are grouped by category
show = [c * per_category + k for k in range(3) for c in range(len(CATEGORIES))][:6]   # test shapes to look at

# %%
per_row = 6
clouds, titles = [], []
for c, name in enumerate(CATEGORIES):
    first = c * (len(train_set) // len(CATEGORIES))
    for k in range(per_row):
        clouds.append(train_set[first + k]["points"])
        titles.append(f"{name} {k}")
image = gfcore.viz3d.render_clouds(clouds, titles=titles, ncols=per_row, window_size=(220, 220), point_size=2.5,
                                 **RENDER)
fig = gfcore.viz3d.show_image(image, title=f"Figure 5.1 - training shapes ({DATA['num_points']} points each), "
                                         "coloured by height")
plt.show()

# %% [markdown]
# Shapes vary a lot inside a category (a pedestal chair and a four-legged one share little geometry) and differ
# between categories. The training split draws a fresh subset of its pool every time an item is read, so the
# network never sees the same cloud twice; the test split always returns the same points (the first 2,048 of the
# test pool), which makes the evaluation repeatable.
#
# ## The architecture
#
# **Encoder.** PointNet applies the same MLP $f$ to every point, pools with a maximum over points (so the order
# of the points does not matter), and maps the pooled feature to the code:
#
# $$
# z \;=\; E(X) \;=\; g\Big(\max_{i=1..N} f(x_i)\Big),
# \qquad f: \mathbb{R}^3 \to \mathbb{R}^{512},\quad g: \mathbb{R}^{512} \to \mathbb{R}^{128}.
# $$ (eq-pointnet-3d)
#
# **Decoder.** Every layer acts on one query point at a time (a $1\times1$ convolution), reading the condition
# $c = [x, z, \sigma] \in \mathbb{R}^{3 + 128 + 1}$ (the raw $\sigma$, no embedding). The official "add"
# variant stacks $K = 24$ pre-activation residual blocks of width $C = 256$, each adding a linear function of
# $c$:
#
# $$
# h_0 = W_{\text{in}}\, c, \qquad
# h_k = h_{k-1} + W_1^{(k)} \operatorname{relu}\!\Big(\mathrm{BN}\big(W_0^{(k)} \operatorname{relu}(\mathrm{BN}(h_{k-1}))\big)\Big)
#       + W_c^{(k)}\, c, \qquad
# D_\theta(x, \sigma, z) = W_{\text{out}} \operatorname{relu}(\mathrm{BN}(h_K)),
# $$ (eq-add-decoder)
#
# and its output $D_\theta = \sigma^2 s_\theta \approx \sigma^2 \nabla_x \log p_\sigma(x \mid z)$ is the displacement from
# $x$ back toward the surface (the [notation](../book/notation.md) page: $s_\theta$ is the score, $D_\theta$ the
# displacement). $W_1^{(k)}$ starts at zero, so a fresh block adds only its condition term $W_c^{(k)} c$ to $h$. The paper's text
# describes conditional batch norm instead (`block="cbn"`, 16 blocks); the released models use "add".
#
# **Loss.** Encoder and decoder train together with denoising score matching at one noise level per shape,
# drawn from the ladder $\sigma \in \{1, \dots, 0.01\}$ (10 levels), in the official code's weighting
# (chapter 2):
#
# $$
# \mathcal{L}(\theta) \;=\; \mathbb{E}_{X,\, \sigma,\, \varepsilon}\;
# \frac{1}{2\sigma}\,\frac{1}{N}\sum_{i=1}^N
# \big\lVert -\sigma\varepsilon_i - D_\theta(x_i + \sigma\varepsilon_i,\, \sigma,\, E(X)) \big\rVert^2,
# \qquad \varepsilon_i \sim \mathcal{N}(0, I).
# $$ (eq-ae-loss-3d)
#
# We build the full-size model (even in fast mode: building it costs nothing) and count its parameters part
# by part.

# %%
def count(module):
    return sum(p.numel() for p in module.parameters())


full_model = gfcore.models.ShapeGF(dim=3, zdim=128, hidden=256, n_blocks=24, block="add")
dec = full_model.decoder
rows = [("encoder (PointNet)", count(full_model.encoder)),
        ("decoder input layer W_in (132 -> 256)", count(dec.inp)),
        ("one block: BN, W0, BN, W1 (256 -> 256)", count(dec.blocks[0]) - count(dec.blocks[0].fc_c)),
        ("one block: W_c (132 -> 256)", count(dec.blocks[0].fc_c)),
        (f"all {len(dec.blocks)} blocks", count(dec.blocks)),
        ("head: BN, W_out (256 -> 3)", count(dec.out_norm) + count(dec.out)),
        ("decoder total", count(dec)),
        ("ShapeGF total", count(full_model))]
for name, n in rows:
    print(f"{name:42s} {n:>10,d}")
fast_model_params = count(gfcore.models.ShapeGF(dim=3, **MODEL))
print(f"\nthe model trained below ({MODEL['n_blocks']} blocks of width {MODEL['hidden']}): "
      f"{fast_model_params:,d} parameters")
del full_model, dec

# %% [markdown]
# | part | parameters | share |
# | --- | ---: | ---: |
# | encoder (PointNet) | 365,184 | 8% |
# | decoder: 24 blocks | 3,999,744 | 91% |
# | decoder: input layer and head | 35,331 | 1% |
# | **ShapeGF** | **4,400,259** | |
#
# The decoder's 4.04M parameters (the reference count of the official model) sit almost entirely in the 24
# pairs of $256 \times 256$ matrices. They also dominate the cost: the decoder runs once per *point* and per
# Langevin step, the encoder once per shape. In fast mode the decoder is $\tfrac{1}{4}$ as wide and 6 times
# shallower, about 50 times smaller.
#
# ## Training
#
# `gfcore.train.train_autoencoder` runs the official recipe (Adam, learning rate $10^{-3}$ flat for half the
# run, then decaying linearly to 1% of it; one $\sigma$ per shape) from an `AutoEncoderConfig`, the same
# dataclass the YAML presets load into. With an `out_dir` it writes the resolved config, a log, and checkpoints
# that restart a run exactly (`resume=True`).

# %%
config = gfcore.train.AutoEncoderConfig(dataset="shapes3d", dataset_kwargs=DATA, dim=3, **MODEL, **TRAIN,
                                        amp="auto", seed=100)
run_dir = tempfile.TemporaryDirectory(prefix="gfbook-ch5-")
out_dir = Path(run_dir.name) / "shapes3d"
start_wall, start_cpu = time.perf_counter(), time.process_time()
result = gfcore.train.train_autoencoder(config, out_dir=out_dir, progress=False)
train_wall, train_cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
model = result.model
print(f"{result.step} steps in {train_wall:.0f} s ({train_cpu:.0f} s of CPU time in this process), "
      f"{result.step / train_wall:.2f} steps/s on {device}")

# %% [markdown]
# The run folder holds everything needed to inspect or continue the run:

# %%
for path in sorted(out_dir.rglob("*")):
    if path.is_file():
        print(f"{str(path.relative_to(out_dir)):28s} {path.stat().st_size / 1024:9.1f} KiB")
print("\n--- config.yaml ---")
print((out_dir / "config.yaml").read_text())

# %% [markdown]
# `config.yaml` is the complete resolved config, so the run can be repeated from it alone. The same training
# from the command line is
#
# ```bash
# python -m gfcore train --config configs/shapes3d.yaml --out runs/shapes3d      # add --resume to continue
# ```
#
# where `configs/shapes3d.yaml` holds the paper's sizes on four categories for 20,000 steps. A run that was
# interrupted continues with `train_autoencoder(config, out_dir=out_dir, resume=True)` (or `--resume`) from
# `checkpoints/last.pt`, replaying the same batches and noise as an uninterrupted run.
#
# **How long does the full mode take?** This book has not yet been run in full mode on a GPU, so we give no GPU
# time here; `python bench/train_step.py` measures the official-size training step (24 "add" blocks, 32 shapes
# $\times$ 2,048 points, forward, backward and Adam) on whatever machine you have, side by side in its fast
# variants (`amp="auto"` trains in bfloat16 on CUDA and on CPUs with bf16 units), and stores the result as JSON
# under `bench/results/`. The full mode runs 12,000 such steps (240 epochs of the 1,600 training shapes). The
# paper trained its ShapeNet
# models for 2,000 epochs; `configs/shapenet-*.yaml` hold that recipe.
#
# A checkpoint stores only tensors and plain containers (it loads with `weights_only=True`), including the
# model's config, so `load_model` rebuilds the network without any code from the run:

# %%
ckpt = gfcore.train.load_checkpoint(gfcore.train.RunDir(out_dir).last)
print("checkpoint keys:", sorted(ckpt))
print("model config:", ckpt["model_config"], "| step", ckpt["step"])
reloaded = gfcore.train.load_model(gfcore.train.RunDir(out_dir).last, device=device)
same = all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), model.state_dict().values()))
print("reloaded weights identical to the trained model:", same)
del ckpt

# %% [markdown]
# ### Training curves
#
# Every log record holds the mean loss *per noise level* since the previous record, and every `val_every`
# steps the reconstruction Chamfer distance of a few validation shapes (in the shapes' original coordinates).

# %%
sigmas = config.sigmas()
logs = [r for r in result.history if "loss_per_sigma" in r]
vals = [r for r in result.history if "val_chamfer" in r]
steps = np.array([r["step"] for r in logs])
per_sigma = np.array([[np.nan if v is None else v for v in r["loss_per_sigma"]] for r in logs])

fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
colors = plt.cm.viridis(np.linspace(0, 1, len(sigmas)))
for j, s in enumerate(sigmas.tolist()):
    axes[0].plot(steps, per_sigma[:, j], color=colors[j], lw=1.2, label=rf"$\sigma={s:.3g}$")
    axes[0].axhline(1.5 * s, color=colors[j], ls=":", lw=0.8)        # the loss of a network that outputs zero
axes[0].set(yscale="log", xlabel="step", ylabel="loss", title="loss per noise level (dotted: output 0)")
axes[0].legend(fontsize=7, ncol=2)
axes[1].plot(steps, per_sigma / per_sigma[:1], lw=0.8, alpha=0.5, color="0.5")
axes[1].plot(steps, np.nanmean(per_sigma / per_sigma[:1], axis=1), color="C3", lw=2, label="mean over levels")
axes[1].set(yscale="log", xlabel="step", ylabel="loss / first logged loss", title="relative progress")
axes[1].legend()
axes[2].plot([r["step"] for r in vals], [r["val_chamfer"] for r in vals], "o-", color="C0")
axes[2].set(yscale="log", xlabel="step", ylabel="Chamfer distance", title="validation reconstruction")
lr_ax = axes[2].twinx()
lr_ax.plot(steps, [gfcore.schedule.lr_factor(config.lr_schedule, s, result.step) * config.lr for s in steps],
           color="0.6", ls="--")
lr_ax.set_ylabel("learning rate (dashed)", color="0.4")
fig.suptitle("Figure 5.2 - training the auto-encoder", y=1.02)
fig.tight_layout()
plt.show()

# %% [markdown]
# A network that always outputs zero has loss $\tfrac{1}{2\sigma}\mathbb{E}\lVert\sigma\varepsilon\rVert^2 =
# 1.5\,\sigma$ (dotted lines), so the levels sit on different lines in the left panel. At the large levels the
# loss soon falls below that baseline: far from the shape the displacement is large and easy to predict. The
# small levels start far above it (a fresh network's output is of order one, while at $\sigma = 0.01$ the
# displacement to predict is about 0.01) and fall the most in relative terms (middle panel), but a short run
# leaves them above the zero baseline: predicting a displacement of 0.01 *correctly* means knowing the surface
# to better than 0.01, the shape's fine detail, and that is the part of the field that takes long training. The
# fast mode stops long before that, which is why its samples below are blurred. The validation Chamfer distance
# (right) falls as the decoder learns to place points on each shape; the learning rate (dashed) decays in the
# second half.
#
# ## The shipped model
#
# The model above was trained live, at the size the mode allows; on a CPU in fast mode that is about a minute of
# training (the training cell prints how long the stored run took) and its samples are blurred. The rest of the chapter uses the model that ships with `gfcore`,
# `gfcore.pretrained.load("shapes3d")`: the same architecture family, trained on all six categories with
# `configs/shapes3d-cpu.yaml` on a two-core CPU. Two choices make that budget enough (chapter 2 and
# `configs/README.md` say more): the decoder is *preconditioned* (`preconditioning="edm"`: it predicts the
# unit-scale noise direction $F_\theta$ from a rescaled input and $\log\sigma$, and
# $D_\theta = \sigma F_\theta$, see the notation page), and it has no batch norm (`norm="none"`), because batch
# statistics mix the noise levels of the shapes in a batch and the eval-mode field then differs from the trained
# one at the small levels. Its card records the data, the preset, the steps, the time and the held-out numbers.

# %%
card = gfcore.pretrained.card("shapes3d")
shipped = gfcore.pretrained.load("shapes3d", device=device)
for key in ("model_config", "dataset_kwargs", "training", "metrics"):
    print(f"{key}: {card[key]}")
model = shipped          # every result below is the shipped model's
CATEGORIES = card["dataset_kwargs"]["categories"]
HELD_OUT = dict(card["dataset_kwargs"], num_points=2048, sample="first")
test_set = gfcore.data.build_dataset(card["dataset"], "test", **HELD_OUT)           # the test-pool samples
per_category = len(test_set) // len(CATEGORIES)
show = [c * per_category + k for k in range(2) for c in range(len(CATEGORIES))]     # 2 shapes per category

# %% [markdown]
# ## Auto-encoding held-out shapes
#
# The test shapes were never seen in training. The official protocol encodes each shape's **train-pool** sample
# (2,048 points), decodes 2,048 new points by annealed Langevin dynamics from the uniform prior, and compares them
# with the shape's **test-pool** sample, an independent set of 2,048 points, in the original coordinates. The
# Chamfer distance (CD, the mean squared distance from each point to the nearest point of the other cloud, both
# ways; chapter 4 introduced it) frames itself with the **oracle**: the train-pool sample
# against the test-pool sample of the same shape, what a perfect model would score with 2,048 random points.
# `gfcore.evaluation.evaluate_reconstruction` runs the protocol.

# %%
inputs_set = gfcore.data.build_dataset(card["dataset"], "test", **{**HELD_OUT, "pool": "train"})
result = gfcore.evaluation.evaluate_reconstruction(shipped, inputs_set, test_set, num_shapes=NUM_TEST,
                                                   emd_method="exact", seed=0)
print(gfcore.evaluation.format_table(result))
cd_ratio, emd_ratio = result["CD/oracle"], result["EMD/oracle"]

# %% [markdown]
# Two controls say whether a reconstruction is *this* shape and not just a plausible one: the category of its
# nearest test reference, and whether it is closer to its own shape's reference than to every other shape of the
# same category.

# %%
ctrl_in = torch.utils.data.default_collate([inputs_set[i] for i in gfcore.evaluation.spread_indices(len(test_set), NUM_TEST)])
ctrl_ref = torch.utils.data.default_collate([test_set[i] for i in gfcore.evaluation.spread_indices(len(test_set), NUM_TEST)])
ctrl_rec = shipped.reconstruct(ctrl_in["points"].to(device), 2048, generator=torch.Generator(device=device).manual_seed(0)).cpu()
dist = gfcore.metrics.pairwise_cd(ctrl_rec, ctrl_ref["points"])
lab = torch.as_tensor(ctrl_ref["label"])
own = torch.arange(len(lab))
category_acc = float((lab[dist.argmin(1)] == lab).float().mean())
same = (lab[:, None] == lab[None, :]) & (own[:, None] != own[None, :])
own_rate = float((dist[own, own] < dist.masked_fill(~same, float("inf")).min(1).values).float().mean())
print(f"{len(lab)} held-out shapes: category recovered {category_acc:.0%}, closer to its own shape than to any "
      f"other of its category {own_rate:.0%}")
print(f"the card, on {card['evaluation']['num_shapes']} test shapes: CD {card['metrics']['CD_over_oracle']:.2f}x "
      f"the oracle, category {card['metrics']['category_accuracy']:.0%}, own shape {card['metrics']['own_shape_rate']:.0%}")

# %% [markdown]
# The shipped model's reconstructions recover every shape's category and are closer to their own shape than to
# any other of its category; their Chamfer distance is 2.5x the oracle's on the card's 60 test shapes (EMD 1.6x),
# short of the 2x this book aims for. For scale, the paper's airplane model, trained for 2,000 epochs on a GPU,
# reaches 1.15x the oracle on ShapeNet airplanes (0.97 vs 0.84 $\times 10^{-4}$) and its chair model 1.77x.
#
# ## The encoder's gap, and closing it
#
# Which half of the model falls short, the encoder or the decoder? Freeze the network and ask the decoder alone:
# for a given input cloud $X$, which code fits it best? The denoising loss of chapter 4 is a function of the code
# too, so we can descend it in $z$, starting from the encoder's guess:
#
# $$
# z^\star = \arg\min_z\; \mathbb{E}_{\sigma, \varepsilon}\, \frac{1}{N} \sum_{i=1}^N
# \frac{1}{2\sigma^2} \big\lVert \sigma\varepsilon_i + D_\theta(x_i + \sigma\varepsilon_i,\, \sigma,\, z) \big\rVert^2
# \qquad \text{starting from } z_0 = E(X),
# $$ (eq-refine-codes)
#
# that is, the training loss of the shipped model (its ladder, NCSN weighting), with $\theta$ fixed and only $z$ free, a few
# hundred Adam steps per shape (`gfcore.models.refine_codes`; `ShapeGF.reconstruct(..., refine_steps=200)`). It
# uses only the input points: the test-pool sample that the reconstruction is scored against is never seen, so
# the protocol stays honest. This is how an auto-decoder such as DeepSDF {cite}`park2019deepsdf` infers a code;
# here it corrects an encoder instead of replacing it. The official ShapeGF does not do it, so the card keeps the
# encoder-only numbers as the model's result and lists the refined ones beside them.

# %%
REFINE_STEPS = 200
refined = gfcore.evaluation.evaluate_reconstruction(shipped, inputs_set, test_set, num_shapes=NUM_TEST,
                                                    emd_method="exact", seed=0, refine_steps=REFINE_STEPS)
print(gfcore.evaluation.format_table(refined))
refined_ratio = refined["CD/oracle"]
print(f"\nthe same {NUM_TEST} shapes: CD {cd_ratio:.2f}x the oracle with the encoder's codes, {refined_ratio:.2f}x "
      f"with {REFINE_STEPS} refinement steps")
card_refined = card["metrics_refined"]
print(f"the card, {card['evaluation']['num_shapes']} test shapes: CD {card['metrics']['CD_over_oracle']:.2f}x -> "
      f"{card_refined['CD_over_oracle']:.2f}x, EMD {card['metrics']['EMD_over_oracle']:.2f}x -> "
      f"{card_refined['EMD_over_oracle']:.2f}x; category {card_refined['category_accuracy']:.0%}, own shape "
      f"{card_refined['own_shape_rate']:.0%} (refined)")

# %% [markdown]
# With the network untouched, better codes alone bring the reconstructions to within 2x the oracle on the card's
# 60 test shapes (1.93x; on this page's 20 shapes 2.0x, from 2.8x): the decoder can draw these shapes more precisely than the encoder asks it to. The gap is the
# encoder's (an *amortisation gap*: one forward pass instead of an optimisation per shape), and it was not the
# finest noise levels: fine-tuning the shipped model on its four finest levels for 4,000 more steps left the
# Chamfer ratio unchanged (`configs/README.md`). The price is time: 200 steps are 200 forward and backward passes
# of the decoder per shape, more than the 100 network calls of the sampler itself. Figure 5.3 shows two test
# shapes of every category, their reconstructions from the encoder's codes (as the official model would make
# them), and from the refined codes, in the normalised coordinates the model works in.

# %%
shown = torch.stack([test_set[i]["points"] for i in show])
recon = model.reconstruct(shown.to(device), 2048, steps_per_sigma=STEPS_PER_SIGMA,
                          generator=torch.Generator(device=device).manual_seed(0)).cpu()
recon_refined = model.reconstruct(shown.to(device), 2048, steps_per_sigma=STEPS_PER_SIGMA, refine_steps=REFINE_STEPS,
                                  generator=torch.Generator(device=device).manual_seed(0)).cpu()
labels = [CATEGORIES[test_set[i]["label"]] for i in show]
image = gfcore.viz3d.render_clouds(list(shown) + list(recon) + list(recon_refined),
                                 titles=[f"input: {n}" for n in labels] + ["encoder's code"] * len(show)
                                 + ["refined code"] * len(show),
                                 ncols=6, window_size=(220, 220), point_size=2.5, **RENDER)
gfcore.viz3d.show_image(image, title="Figure 5.3 - shipped model shapes3d: held-out test shapes (rows 1-2), "
                        "reconstructions from the encoder's codes (rows 3-4) and from refined codes (rows 5-6)")
plt.show()

# %% [markdown]
# Drag to rotate, scroll to zoom: the first table of Figure 5.3, reconstructed from its refined code by the shipped
# model `shapes3d`, in a view that also turns in the static book.

# %%
gfcore.viz3d.interactive_clouds([recon_refined[1]], titles=["shapes3d: table, refined code"],
                              window_size=(380, 380), point_size=3.0, **RENDER)

# %% [markdown]
# ## Sampling faster: batch norm folded away
#
# Decoding calls the decoder once per Langevin step, 100 times for the official schedule, on every point. Two
# facts make those calls cheaper. In eval mode a batch norm is a fixed affine map $a \odot h + b$, which can be
# merged into the neighbouring linear layer; and during sampling $z$ never changes and $\sigma$ changes only
# between levels, so every term $W_z z + w_\sigma \sigma$ of eq. {eq}`eq-add-decoder` can be computed once
# per shape and level instead of once per point and step. `gfcore.models.fold.fold_batchnorm` builds that
# inference copy of the decoder, and `fast_score_fn` wraps it as a score callable for the sampler. It computes
# the same function, to float rounding:

# %%
picked = show[:NUM_UPSAMPLE]                                 # chairs and airplanes, alternating
inputs = torch.stack([test_set[i]["points"] for i in picked]).to(device)
z = model.encode(inputs)
x = gfcore.sampling.prior("uniform", (NUM_UPSAMPLE, 2048, 3), generator=torch.Generator(device=device).manual_seed(0),
                          device=device)
sigma = torch.full((NUM_UPSAMPLE,), 0.1, device=device)
fast_fn = gfcore.models.fold.fast_score_fn(model, z)
with torch.no_grad():
    reference = model.score_fn(z)(x, sigma)
    err = float(((fast_fn(x, sigma) - reference).norm(dim=-1) / reference.norm(dim=-1).clamp_min(1e-6)).max())
print(f"max relative difference of the folded decoder's score: {err:.1e}")

ladder = gfcore.schedule.geometric_sigmas(1.0, 0.01, 10, device=device)
big = gfcore.models.ShapeGF(dim=3, zdim=128, hidden=256, n_blocks=24, block="add").to(device).eval()
z_big = torch.randn(1, 128, device=device)           # timing only: an untrained full-size model costs the same
for name, fn in [("model.score_fn (eval mode)", big.score_fn(z_big)),
                 ("fold.fast_score_fn", gfcore.models.fold.fast_score_fn(big, z_big))]:
    t0 = time.perf_counter()
    gfcore.sampling.annealed_langevin(fn, x[:1], ladder[:2], steps_per_sigma=2)
    print(f"full-size decoder, {name:28s} {(time.perf_counter() - t0) / 4 * 1e3:7.1f} ms per step "
          "(1 shape x 2048 points)")
del big

# %% [markdown]
# How much the fold saves depends on the device and the sizes (on a CPU the matrix products dominate and the
# saving in float32 is modest; on a GPU the many small per-point operations it removes matter more). The larger
# lever on a GPU, and on a CPU with bfloat16 units, is the compute dtype: there `ShapeGF.decode` samples in
# bfloat16 by default (`dtype="auto"`). On a 2-core AMD EPYC, `bench/sample.py` measured that path at 3.0x
# (2,048 points per step) to 5.0x (8,192 points per step) the speed of the official-style float32 sampler for the
# 24-block decoder (on a small, briefly trained model, its samples lay about 1e-4 (Chamfer) from the float32
# sampler's, against 0.47 between two seeds).
# `fast_score_fn(model, z, dtype=torch.bfloat16, compile=True)` adds `torch.compile` (3.3x and 7.0x there, after
# compiling for about half a minute per batch shape). The samplers do not care which score callable they get; the
# sections below sample with `fast_score_fn`.
#
# ## Upsampling: 256 points in, 8,192 out
#
# The decoder is a field over all of space, not a list of points, so the number of points we sample has nothing
# to do with the number the encoder saw. We encode only 256 points of each test shape, decode 8,192, and compare
# both with a dense ground truth: all 15,000 points of the shape's cloud. For scale, we also decode 2,048 points
# from the full 2,048-point input.

# %%
sparse = inputs[:, :NUM_SPARSE]                              # the first 256 of the 2,048 test points
dense = torch.stack([(torch.from_numpy(test_set.raw_cloud(i)) - test_set[i]["shift"]) / test_set[i]["scale"]
                     for i in picked]).to(device)


def seeded(seed):
    return torch.Generator(device=device).manual_seed(seed)


upsampled = model.reconstruct(sparse, NUM_DENSE, steps_per_sigma=STEPS_PER_SIGMA, generator=seeded(0))
recon_2048 = model.reconstruct(inputs, 2048, steps_per_sigma=STEPS_PER_SIGMA, generator=seeded(0))
cd_sparse_input = gfcore.metrics.chamfer_distance(sparse, dense)
cd_upsampled = gfcore.metrics.chamfer_distance(upsampled, dense)
cd_recon_2048 = gfcore.metrics.chamfer_distance(recon_2048, dense)
print(f"Chamfer x 10^4 to the dense ground truth (15,000 points), normalised coordinates, mean of {NUM_UPSAMPLE}:")
print(f"  the {NUM_SPARSE}-point input itself          {cd_sparse_input.mean() * 1e4:8.1f}")
print(f"  {NUM_DENSE} points decoded from {NUM_SPARSE}       {cd_upsampled.mean() * 1e4:8.1f}")
print(f"  2048 points decoded from 2048        {cd_recon_2048.mean() * 1e4:8.1f}")

# %%
panels = [gfcore.viz3d.render_clouds(list(c), ncols=NUM_UPSAMPLE, window_size=(220, 220), point_size=ps, **RENDER)
          for c, ps in [(sparse, 4.5), (upsampled, 1.5), (dense, 1.2)]]
fig, axes = plt.subplots(3, 1, figsize=(8.8, 7.2))
for ax, img, name in zip(axes, panels, [f"input: {NUM_SPARSE} points", f"decoded: {NUM_DENSE} points",
                                        f"ground truth: {dense.shape[1]} points"]):
    ax.imshow(img)
    ax.set_axis_off()
    ax.set_title(name, fontsize=10)
fig.suptitle("Figure 5.4 - upsampling: encode 256 points, decode 8,192", y=1.0)
fig.tight_layout()
plt.show()

# %% [markdown]
# Two things to read here. First, the decoded cloud's distance to the dense truth is about the same whether the
# code came from 256 or from 2,048 input points: the encoder needs only a rough sketch to find the code, and the
# paper reports the same robustness to sparse input (256 vs 2,048 points). Second, the number of points out is
# free: 8,192 here, any number in general. Whether the 8,192 points are *better* than the 256 that went in depends
# on the field's precision. With the paper's model the decoded cloud covers the surface densely and lies closer
# to the truth than the sparse input, whose 256 points leave most of the 15,000 true points far from any of them.
# The numbers above say how the shipped model fares on that second question; the printed ratios, not this text,
# are the record.
#
# ## Different priors, the same shape
#
# Langevin dynamics forgets where it started: at $\sigma = 1$ the injected noise and the broad field carry
# every point into the neighbourhood of the shape whatever its origin. We decode the same codes from the
# official uniform prior on $[-1.5, 1.5]^3$, from a standard Gaussian, and from a single fixed point (every
# sample starts at the origin).

# %%
priors = {"uniform": {}, "gaussian": {}, "fixed": {"points": torch.zeros(3, device=device)}}
from_priors = {name: model.reconstruct(inputs, 2048, steps_per_sigma=STEPS_PER_SIGMA, generator=seeded(1), prior=name,
                                      prior_kwargs=kw)
               for name, kw in priors.items()}
cd_priors = {name: gfcore.metrics.chamfer_distance(pts, dense) for name, pts in from_priors.items()}
print("Chamfer x 10^4 to the dense ground truth, normalised coordinates:")
for name, kw in priors.items():
    start = gfcore.sampling.prior(name, (NUM_UPSAMPLE, 2048, 3), device=device, **kw)
    cd_start = gfcore.metrics.chamfer_distance(start, dense)
    print(f"  prior {name:9s}: before Langevin {cd_start.mean() * 1e4:8.0f}, after {cd_priors[name].mean() * 1e4:6.0f} "
          f"(worst shape {cd_priors[name].max() * 1e4:6.0f})")

starts = [gfcore.sampling.prior(name, (1, 2048, 3), generator=torch.Generator(device=device).manual_seed(1),
                                device=device, **kw)[0] for name, kw in priors.items()]
starts[2] = starts[2] + 0.02 * torch.randn(starts[2].shape, device=device)   # visible as a small blob
rows = [gfcore.viz3d.render_clouds(starts, titles=[f"prior: {n}" for n in priors], window_size=(240, 240),
                                 point_size=2.0, distance=10.0, elevation=20.0),
        gfcore.viz3d.render_clouds([from_priors[name][1] for name in priors], titles=["after Langevin"] * 3,
                                 window_size=(240, 240), point_size=2.5, **RENDER)]
fig, axes = plt.subplots(2, 1, figsize=(7.2, 5.0))
for ax, img in zip(axes, rows):
    ax.imshow(img)
    ax.set_axis_off()
fig.suptitle("Figure 5.5 - three priors (top, seen from farther away) decode the same code to the same shape",
             fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# (The top row's camera is farther back, to fit the Gaussian prior's spread; the fixed prior is drawn blurred,
# since 2,048 copies of one point would be invisible.) The three starts are nothing alike, yet the three results
# look the same and their distances to the truth agree closely: the first, large noise levels wipe out the
# starting configuration before the small levels shape the details.
#
# ## The Langevin trajectory
#
# Finally, what happens in between: the frames below follow one decoding from the uniform prior through the ten
# noise levels, showing the cloud at the end of some of them.

# %%
gen = torch.Generator(device=device).manual_seed(2)
x0 = gfcore.sampling.prior("uniform", (1, 2048, 3), generator=gen, device=device)
_, trajectory = gfcore.sampling.annealed_langevin(gfcore.models.fold.fast_score_fn(model, z[1:2]), x0, ladder,
                                                  steps_per_sigma=STEPS_PER_SIGMA, generator=gen,
                                                  return_trajectory=True)
levels = [0, 1, 3, 5, 7, 9]
frames = [trajectory[0, 0]] + [trajectory[(lv + 1) * STEPS_PER_SIGMA, 0] for lv in levels[1:]]
image = gfcore.viz3d.render_clouds(frames, titles=["prior"] + [f"sigma = {ladder[lv]:.3g}" for lv in levels[1:]],
                                 ncols=6, window_size=(220, 220), point_size=2.0, distance=7.0, elevation=20.0)
gfcore.viz3d.show_image(image, title="Figure 5.6 - annealed Langevin dynamics, end of selected noise levels")
plt.show()

# %% [markdown]
# At the large levels the points gather into a blurred blob of the right size and place; each smaller level
# sharpens it, and the last levels move points by less than their spacing. As in 2D (chapter 3), the noise added
# at every step keeps the points spread over the whole surface instead of piling up at its densest parts.
#
# ## Summary
#
# - The paper's auto-encoder is a PointNet encoder (0.37M parameters) and a 24-block residual decoder (4.04M)
#   that maps $[x, z, \sigma]$ to a displacement toward the surface, eq. {eq}`eq-add-decoder`; both train together
#   with denoising score matching, eq. {eq}`eq-ae-loss-3d`.
# - `gfcore.train.train_autoencoder` trains it from one config, writing `config.yaml`, `metrics.jsonl` and
#   resumable checkpoints; `python -m gfcore train --config ...` is the same from a shell.
# - Reconstruction is encoding followed by Langevin sampling, scored against an independent sample of the same
#   shape beside the oracle. The shipped CPU-trained model recovers every test shape's category and identity at
#   2.5x the oracle's Chamfer distance; refining each code on its own input points, eq. {eq}`eq-refine-codes`,
#   brings it within 2x: its remaining gap is the encoder's, not the decoder's.
# - The output density is free: 256 points in, 8,192 out. The prior is free too: uniform, Gaussian or a single
#   point all reach the shape.
# - In eval mode batch norm folds into the weights and the code's terms are computed once per level: the same
#   field, sampled with less work per step.
#
# ## Exercises
#
# 1. Train with `block="cbn"` and `n_blocks=gfcore.mode.choose(fast=3, full=16)` (the paper's conditional batch
#    norm) and compare the test Chamfer distance. *Check:* count the parameters first; the official 16-block
#    cbn model has 4.39M.
# 2. Encode only 64, then 32 points, and decode 2,048. Where does the reconstruction break? *Check:* plot
#    `chamfer_distance(decoded, dense)` against the number of input points on a log axis.
# 3. Decode with `steps_per_sigma=1, 2, 5, 10`. *Check:* the Chamfer distance to the dense truth should level
#    off; the point where it does is the cheapest schedule worth running.
# 4. Interpolate between the codes of a chair and an airplane, `z = (1 - t) z_chair + t z_plane`, and decode.
#    *Check:* render the clouds for `t = 0, 0.25, ..., 1`; in full mode the middle frames are neither, which is
#    why the paper learns a distribution over codes (a latent GAN) instead of sampling them directly.

# %%
# The science this chapter showed; nbval fails the build if it stops being true.
CD_RATIO_BOUND = 3.0      # shipped model, encoder's codes: held-out Chamfer within 3x the oracle (card: 2.55x)
REFINED_BOUND = 2.0       # ... with refined codes: within 2x (the book's goal; card: 1.93x)
UPSAMPLE_FACTOR = 1.5     # upsampled vs 2048-point reconstruction, Chamfer to the dense ground truth
PRIOR_BOUND = 0.15        # every prior's Chamfer to the dense ground truth, normalised coordinates
print(f"shipped model: CD {cd_ratio:.2f}x the oracle (bound {CD_RATIO_BOUND}), EMD {emd_ratio:.2f}x; category "
      f"{category_acc:.0%}, own shape {own_rate:.0%}; card: {card['metrics']['CD_over_oracle']:.2f}x")
print(f"refined codes: CD {refined_ratio:.2f}x here; card {card_refined['CD_over_oracle']:.2f}x (bound {REFINED_BOUND})")
print(f"upsampled {tuple(upsampled.shape)} from {tuple(sparse.shape)}; Chamfer to dense {cd_upsampled.mean():.2e} "
      f"vs 2048-point reconstruction {cd_recon_2048.mean():.2e} (ratio "
      f"{cd_upsampled.mean() / cd_recon_2048.mean():.2f}, bound {UPSAMPLE_FACTOR})")
print("worst shape per prior:", {k: f"{float(v.max()):.2e}" for k, v in cd_priors.items()},
      f"(bound {PRIOR_BOUND:.0e})")
assert cd_ratio < CD_RATIO_BOUND and card["metrics"]["CD_over_oracle"] < CD_RATIO_BOUND, (cd_ratio, card["metrics"])
assert category_acc >= 0.95 and own_rate >= 0.8, (category_acc, own_rate)
assert refined_ratio < cd_ratio, (refined_ratio, cd_ratio)            # better codes, same network, same shapes
assert card_refined["CD_over_oracle"] <= REFINED_BOUND, card_refined    # the card's test shapes: within 2x
assert card_refined["category_accuracy"] >= 0.95 and card_refined["own_shape_rate"] >= 0.8, card_refined
assert upsampled.shape[1] == NUM_DENSE > sparse.shape[1]
assert cd_upsampled.mean() < UPSAMPLE_FACTOR * cd_recon_2048.mean(), (cd_upsampled.mean(), cd_recon_2048.mean())
assert all(float(cd.max()) < PRIOR_BOUND for cd in cd_priors.values()), cd_priors
assert err < 1e-3, err
print("chapter 5 checks passed")
run_dir.cleanup()
