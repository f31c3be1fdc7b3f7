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
# # 3. Annealed Langevin dynamics
#
# Chapters 1 and 2 gave us a gradient field: in closed form, and learned by a network. ShapeGF
# {cite}`cai2020shapegf` turns a field into a point cloud by letting points *flow* along it, with a little noise
# at every step, while the field sharpens from coarse to fine. This is annealed Langevin dynamics
# {cite}`song2019ncsn`, and it is the whole of ShapeGF's sampler.
#
# In this chapter you will
#
# - write down Langevin dynamics {cite}`welling2011langevin` and its annealed form, ShapeGF's Algorithm 1,
# - sample a star from the closed-form field and from a learned one, and watch a trajectory,
# - measure sample quality: distance to the outline, outline coverage, and how evenly the outline is covered,
# - see what goes wrong with a step size that is too small or too large,
# - compare noise schedules (geometric, linear, few or many levels, no annealing at all) and the three priors,
# - sample 100 and 10,000 points from the same field.
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
if device.type == "cpu":
    torch.set_num_threads(1)  # tiny 2D problems: one thread is as fast, and far faster on a busy machine
print(gfcore.mode.describe())

# %% [markdown]
# All sizes of this chapter come from one cell; `GF_MODE=fast` (what CI runs, about a minute and a half on a
# two-core CPU) and `GF_MODE=full` (the default on a GPU; the outputs on this page, about eight minutes on a busy
# two-core CPU) run the same code. `GF_MODE=paper` runs the full sizes: this 2D chapter has no paper-scale setting.

# %%
NUM_POINTS = gfcore.mode.choose(fast=1024, full=2048)    # points on the star that define the closed-form field
NUM_SAMPLES = gfcore.mode.choose(fast=1000, full=2000)   # points moved by the sampler in each experiment
MANY_SAMPLES = gfcore.mode.choose(fast=2000, full=10000) # the "any number of points" experiment
STEPS_PER_SIGMA = 10                                       # as the official code
# the learned field: chapter 2's recipe, value for value
TRAIN_STEPS = gfcore.mode.choose(fast=1500, full=3000)   # Adam steps
HIDDEN = gfcore.mode.choose(fast=64, full=128)           # width of ToyScoreNet's hidden layers
BATCH, POINTS_PER_ITEM = 32, gfcore.mode.choose(fast=32, full=128)  # 32 noisy copies x points per copy
LEARNING_RATE = 5e-3
COVER_RADIUS = 0.02                                        # an outline point is covered if a sample is this close

# %% [markdown]
# ## Langevin dynamics
#
# To sample a density $p$ whose score $\nabla_x \log p$ we know, Langevin dynamics {cite}`welling2011langevin`
# repeats a gradient step on $\log p$ plus Gaussian noise,
#
# $$
# x_{t+1} \;=\; x_t + \frac{\alpha}{2}\,\nabla_x \log p(x_t) + \sqrt{\alpha}\; \epsilon_t, \qquad
# \epsilon_t \sim \mathcal N(0, I).
# $$ (eq-langevin)
#
# As $\alpha \to 0$ and the number of steps grows, $x_t$ is distributed as $p$. The gradient pulls points toward
# high density; the noise keeps them from all collapsing onto the single highest peak, so they spread out the way
# the density does. Two problems appear for a shape. Far from the outline a small-$\sigma$ field is tiny in
# density and poorly learned (chapter 2); and a sharp density is slow to explore, so the points end up wherever
# the nearest piece of outline happens to be rather than spread along all of it.
#
# ## Annealing: ShapeGF's Algorithm 1
#
# Song and Ermon's remedy {cite}`song2019ncsn` is to run {eq}`eq-langevin` on a sequence of smoothed densities,
# from the widest $\sigma_1$ to the sharpest $\sigma_L$, a few steps each, with a step size that shrinks with
# the level. ShapeGF uses exactly this, drawing the noise first and taking the gradient step at the noised point:
#
# $$
# \alpha_i = \eta\,\frac{\sigma_i^2}{\sigma_L^2}, \qquad
# x' = x + \sqrt{\alpha_i}\;\epsilon, \qquad
# x \leftarrow x' + \frac{\alpha_i}{2}\, s(x', \sigma_i), \qquad i = 1, \dots, L,\ \ T \text{ steps each,}
# $$ (eq-annealed-langevin)
#
# with a fresh $\epsilon \sim \mathcal N(0, I)$ at every step, and $s$ any score function: the closed form
# $\nabla_x \log A_\sigma$ of chapter 1 or a network's $s_\theta$ of chapter 2.
#
# Some summaries of the paper write the noise term as $\sqrt{\alpha\,\sigma_i}/\sigma_k$; that is not
# dimensionally consistent (the noise must have units of length, like $\sqrt{\alpha_i}$ does). gfcore uses
# $\sqrt{\alpha_i}$, as NCSN and the official ShapeGF code do. The official setting is $\eta = 2\sigma_L^2$, so
# $\alpha_i = 2\sigma_i^2$ and the gradient step is $x' + \sigma_i^2\, s(x', \sigma_i)$, the point plus the
# displacement $\sigma_i^2 s$: for the official network, which outputs the displacement
# $D_\theta = \sigma^2 s_\theta$ itself, the step is $x' + D_\theta(x', \sigma_i, z)$; with the closed-form field of
# chapter 1 it is a jump from $x'$ straight to the attention-weighted mean of the nearby points. The loop in
# `gfcore.sampling.annealed_langevin`:

# %%
source = inspect.getsource(gfcore.sampling.annealed_langevin)
print(source[source.index("    bar = tqdm"):source.index("    bar.close()\n    return")])

# %% [markdown]
# Figure 3.1 draws the idea on the star, from the real closed-form field and the real sampler (a short ladder of
# four levels, so that each fits in a panel). Each panel shades the log-density of the star smoothed at that
# level; a dozen samples start in the box, and the arrows show where the ten Langevin steps of each level take
# them. At $\sigma_1 = 1$ the density is one broad blob and the samples gather into it from wherever they
# started; each smaller $\sigma$ reveals more of the outline, and the samples, already close, move onto it.

# %%
fig, ax = plt.subplots(figsize=(11, 3.4))
gfcore.diagrams.draw_annealing(sigmas=(1.0, 0.3, 0.1, 0.03), num_samples=12, ax=ax)
ax.set_title("Figure 3.1 - annealing: the same samples under a ladder of four sigmas (closed-form field of the star)")
plt.show()

# %% [markdown]
# The samples follow the density as it sharpens: each level starts them where the previous one left them, close
# enough to the outline for the sharper field to be reliable there.
#
# ## Sampling the star with the closed-form field
#
# The sampler takes a *score callable*, never a model, so the closed-form field is a one-line lambda.[^official-field]
# We start `NUM_SAMPLES` points uniformly in the box $[-1.5, 1.5]^2$ (the official prior, `gfcore.sampling.prior`)
# and anneal over the official ladder, ten levels from $\sigma_1 = 1$ to $\sigma_L = 0.01$, ten steps each.
#
# [^official-field]: The official ShapeGF code also has a closed-form field, in a helper used only to draw
#     pictures, and it weighs the points with $\operatorname{softmax}_i(-\lVert x - x_i\rVert^2/\sigma^2)$ instead of
#     the $\operatorname{softmax}_i(-\lVert x - x_i\rVert^2/2\sigma^2)$ of chapter 1's closed form, and divides by
#     $\sigma^2$ as chapter 1 does. That is the field of the point set smoothed with a Gaussian of width
#     $\sigma/\sqrt 2$, at half its magnitude. `gfcore.fields.smoothed_score` is the exact gradient of the
#     log-density smoothed at width $\sigma$, the quantity the network is trained to match.

# %%
points = gfcore.data.shapes2d.sample("star", NUM_POINTS, generator=generator).to(device)
closed_form = lambda x, s: gfcore.fields.smoothed_score(x, points, s)  # noqa: E731
sigmas = gfcore.schedule.geometric_sigmas(1.0, 0.01, 10, device=device)

x0 = gfcore.sampling.prior("uniform", (1, NUM_SAMPLES, 2), device=device)
start = time.perf_counter()
samples, trajectory = gfcore.sampling.annealed_langevin(closed_form, x0, sigmas, steps_per_sigma=STEPS_PER_SIGMA,
                                                         return_trajectory=True)
print(f"{len(sigmas) * STEPS_PER_SIGMA} steps for {NUM_SAMPLES} points in {time.perf_counter() - start:.2f} s; "
      f"trajectory {tuple(trajectory.shape)}")

# %%
snapshots = [0, 10, 30, 50, 70, 100]
fig, axes = plt.subplots(1, len(snapshots), figsize=(2.3 * len(snapshots), 2.8))
for ax, t in zip(axes, snapshots):
    gfcore.viz.plot_points(ax, points.cpu(), s=1, color="0.75", alpha=0.5)
    gfcore.viz.plot_points(ax, trajectory[t, 0].cpu(), s=1.5, color="C0")
    label = "prior" if t == 0 else rf"step {t}, $\sigma={sigmas[(t - 1) // STEPS_PER_SIGMA].item():.2g}$"
    gfcore.viz.setup_axes(ax, title=label)
fig.suptitle("Figure 3.2 - annealed Langevin dynamics on the closed-form field of the star (grey)", y=1.02)
plt.show()

# %% [markdown]
# At the first level ($\sigma = 1$) the star is one big blob, and the points gather into a cloud around its
# centre, the noise keeping them spread out. As $\sigma$ shrinks the tips appear, then the edges, and at the end
# the points sit on the outline. The same run as an animation (it plays in the static book too):

# %%
def title(t):
    return "prior" if t == 0 else f"step {t}, sigma = {sigmas[(t - 1) // STEPS_PER_SIGMA].item():.3f}"


anim = gfcore.viz.animate_trajectory(trajectory[:, 0, :400].cpu(), points=points.cpu(), title_fn=title,
                                     max_frames=51, interval=120)
gfcore.viz.to_html(anim)

# %% [markdown]
# ## Measuring sample quality
#
# Three numbers describe how good a set of samples is, all measured against a dense, evenly spaced outline
# (`gfcore.data.shapes2d.dense`):
#
# - **mean distance** from each sample to the outline (`gfcore.fields.distance_to_points`): are the samples *on*
#   the shape?
# - **outline coverage**: the fraction of outline points with a sample within `COVER_RADIUS`: is every part of the
#   shape reached?
# - **imbalance**: cut the outline into 50 arcs of equal length and count the samples per arc; the imbalance is
#   the total-variation distance between these counts and the uniform distribution ($0$ is perfectly even; it
#   is not exactly $0$ even for ideal samples, because the counts fluctuate).
#
# Outline coverage is a property of one set of samples of one shape. It is not the **COV** of PointFlow's
# protocol for generative models {cite}`yang2019pointflow`, which is also called "coverage": the fraction of
# *reference shapes* that are the nearest neighbour of at least one *generated shape*.

# %%
dense = gfcore.data.shapes2d.dense("star", 2000, device=device)


def quality(x):
    """Mean distance to the outline, outline coverage, imbalance along it, for samples x (B, M, 2)."""
    x = x.reshape(-1, 2)
    distance = gfcore.fields.distance_to_points(x, dense).mean().item()
    outline_coverage = (gfcore.fields.distance_to_points(dense, x) < COVER_RADIUS).float().mean().item()
    arc = torch.cdist(x, dense).argmin(dim=1) * 50 // len(dense)      # which of 50 equal arcs is nearest
    share = torch.bincount(arc, minlength=50).float() / len(x)
    return {"distance": distance, "outline coverage": outline_coverage,
            "imbalance": 0.5 * (share - 1 / 50).abs().sum().item()}


def show(results):
    print(f"{'':28} | {'mean distance':>13} | {'outline coverage':>16} | {'imbalance':>9}")
    for name, q in results.items():
        print(f"{name:28} | {q['distance']:13.3g} | {q['outline coverage']:16.3f} | {q['imbalance']:9.3f}")


ideal = gfcore.data.shapes2d.sample("star", NUM_SAMPLES, generator=generator).to(device)
results = {"ideal (samples of the star)": quality(ideal), "closed-form field": quality(samples)}
show(results)

# %% [markdown]
# The closed-form samples are nearly as good as points drawn directly from the shape: a mean distance of a small
# fraction of $\sigma_L$, and outline coverage and imbalance close to those of the ideal reference.
#
# ## Sampling from a learned field
#
# Now the same sampler with a network in place of the lambda. We train `gfcore.models.ToyScoreNet` exactly as
# chapter 2 trained its first network, with the same loop and the same values: the same star points (drawn first
# from the same seed), network width, ladder (six levels down to $\sigma_L = 0.05$), NCSN's weighting, batch,
# learning rate, number of steps and seed. Run in the same mode on the same machine, it is the very network of
# chapter 2's Figure 2.2 (the stored pages differ: this one shows full mode, chapter 2's page fast mode).
# We sample over the ladder it was trained on.

# %%
train_sigmas = gfcore.schedule.geometric_sigmas(1.0, 0.05, 6, device=device)
torch.manual_seed(0)
net = gfcore.models.ToyScoreNet(hidden=HIDDEN).to(device)
opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
for _ in range(TRAIN_STEPS):
    batch = points[torch.randint(len(points), (BATCH, POINTS_PER_ITEM), device=device)]
    loss = gfcore.losses.dsm_loss(net, batch, train_sigmas, weighting="ncsn").mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
net.eval()

x0 = gfcore.sampling.prior("uniform", (1, NUM_SAMPLES, 2), device=device)
learned = gfcore.sampling.annealed_langevin(net, x0, train_sigmas, steps_per_sigma=STEPS_PER_SIGMA)
same_ladder = gfcore.sampling.annealed_langevin(closed_form, x0, train_sigmas, steps_per_sigma=STEPS_PER_SIGMA)
results["closed form, sigma_L = 0.05"] = quality(same_ladder)
results["learned, sigma_L = 0.05"] = quality(learned)
show(results)

# %%
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
for ax, (x, name) in zip(axes, [(samples, r"closed form, $\sigma_L = 0.01$"),
                                (same_ladder, r"closed form, $\sigma_L = 0.05$"),
                                (learned, r"ToyScoreNet, $\sigma_L = 0.05$")]):
    gfcore.viz.plot_points(ax, x[0].cpu(), s=1.5, color="C0")
    gfcore.viz.setup_axes(ax, (-1.1, 1.1, -1.1, 1.1), title=name)
fig.suptitle(f"Figure 3.3 - {NUM_SAMPLES} samples from three fields", y=1.02)
plt.show()

# %% [markdown]
# Ending the ladder at $0.05$ instead of $0.01$ leaves the closed-form samples visibly fuzzier: the last
# Langevin step adds noise of size $\sqrt{\alpha_L} = \sqrt 2\,\sigma_L$, and the final gradient step only pulls
# points back to a $\sigma_L$-blurred outline (the notches get rounded). The learned field's samples are fuzzier
# still: its smallest levels are the ones chapter 2 found hardest to learn, and the final step inherits their
# errors, leaving some stray points inside the star. The overall shape and the tips are right.
#
# ## Step size
#
# With $\alpha_i = \eta\,\sigma_i^2/\sigma_L^2$, near the shape the gradient step of
# {eq}`eq-annealed-langevin` moves a point a fraction $k = \eta / (2\sigma_L^2)$ of the way to the weighted mean
# of its neighbours, at every level. $k = 1$ (the official $\eta = 2\sigma_L^2$) jumps there; $k < 1$ moves
# part way; $1 < k < 2$ overshoots and oscillates; $k > 2$ overshoots by more than it corrects, and the points
# fly away exponentially fast.

# %%
step_results, step_samples = {}, {}
x0 = gfcore.sampling.prior("uniform", (1, NUM_SAMPLES, 2), device=device)
for k in [0.02, 0.2, 1.0, 1.8, 2.2]:
    eta = k * 2 * sigmas[-1].item() ** 2
    step_samples[k] = gfcore.sampling.annealed_langevin(closed_form, x0, sigmas, steps_per_sigma=STEPS_PER_SIGMA,
                                                        step_size=eta)
    step_results[f"k = {k}  (eta = {eta:.1e})"] = quality(step_samples[k])
show(step_results)

fig, axes = plt.subplots(1, len(step_samples), figsize=(2.3 * len(step_samples), 2.8))
for ax, (k, x) in zip(axes, step_samples.items()):
    gfcore.viz.plot_points(ax, points.cpu(), s=1, color="0.75", alpha=0.5)
    gfcore.viz.plot_points(ax, x[0].cpu(), s=1.5, color="C0")
    gfcore.viz.setup_axes(ax, title=rf"$\eta = {k}\times 2\sigma_L^2$")
fig.suptitle("Figure 3.4 - the same sampler with five step sizes", y=1.02)
plt.show()

# %% [markdown]
# The smallest step never reaches the outline in 100 steps: the points are still a smeared-out star. A tenth of
# the official step gets close but ends a little off the outline. The official step puts the points on the
# outline. Just below $k = 2$ the samples land near the outline but with a halo of overshoot noise, and just
# above it the run falls apart: part of the points are thrown far outside the box (hence the astronomical mean
# distance) and the rest sit in clumps off the outline. The useful range
# is narrow, and it is set by $\sigma_L$: this is why $\eta$ is specified relative to $\sigma_L^2$.
#
# ## Noise schedules
#
# Five schedules, each given the same budget of 100 steps: the official geometric ladder, a linear ladder
# (`gfcore.schedule.linear_sigmas`, same end points), a geometric ladder with only 3 or with 30 levels, and **no
# annealing**: 100 steps at $\sigma_L$ alone.

# %%
schedules = {
    "geometric, 10 levels": gfcore.schedule.geometric_sigmas(1.0, 0.01, 10, device=device),
    "linear, 10 levels": gfcore.schedule.linear_sigmas(1.0, 0.01, 10, device=device),
    "geometric, 3 levels": gfcore.schedule.geometric_sigmas(1.0, 0.01, 3, device=device),
    "geometric, 30 levels": gfcore.schedule.geometric_sigmas(1.0, 0.01, 30, device=device),
    "no annealing (sigma_L only)": sigmas[-1:],
}
schedule_samples, schedule_results = {}, {}
for name, ladder in schedules.items():
    schedule_samples[name] = gfcore.sampling.annealed_langevin(closed_form, x0, ladder,
                                                               steps_per_sigma=100 // len(ladder))
    schedule_results[name] = quality(schedule_samples[name])
show(schedule_results)

# %% [markdown]
# With the exact field, every schedule that starts wide and ends at $\sigma_L$ does about equally well here;
# the star is simple and the field is exact, so even three levels suffice. Without annealing the points still
# end *on* the outline (the distance is as small as with annealing) but they are **distributed wrongly**: each
# point falls onto the nearest piece of outline and stays there, so the tips, which collect the points of a wide
# wedge of the box, get too many and the notches too few. The imbalance column shows it, and the priors below
# make it dramatic.
#
# ## Three priors
#
# `gfcore.sampling.prior` offers the official uniform box, a standard Gaussian, and fixed starting points; here
# every sample starts from the same point, the origin (inside the star). Each prior is run with and without
# annealing.

# %%
priors = {"uniform": {}, "gaussian": {}, "fixed": {"points": torch.zeros(2, device=device)}}
prior_samples, prior_results = {}, {}
for kind, options in priors.items():
    start_points = gfcore.sampling.prior(kind, (1, NUM_SAMPLES, 2), device=device, **options)
    for name, ladder, steps in [("annealed", sigmas, STEPS_PER_SIGMA), ("no annealing", sigmas[-1:], 100)]:
        x = gfcore.sampling.annealed_langevin(closed_form, start_points, ladder, steps_per_sigma=steps)
        prior_samples[kind, name] = (start_points, x)
        prior_results[f"{kind}, {name}"] = quality(x)
show(prior_results)

# %%
fig, axes = plt.subplots(2, 3, figsize=(9, 6.2))
for col, kind in enumerate(priors):
    for row, name in enumerate(["annealed", "no annealing"]):
        start_points, x = prior_samples[kind, name]
        ax = axes[row, col]
        gfcore.viz.plot_points(ax, start_points[0, :300].cpu(), s=3, color="0.55", alpha=0.35)
        gfcore.viz.plot_points(ax, x[0].cpu(), s=1.5, color="C0" if name == "annealed" else "C1")
        gfcore.viz.setup_axes(ax, (-2.2, 2.2, -2.2, 2.2), title=f"{kind} prior, {name}")
fig.suptitle("Figure 3.5 - three priors (grey: starting points) with and without annealing", y=1.0)
fig.tight_layout()
plt.show()

# %% [markdown]
# With annealing the three priors give indistinguishable results: the first, widest level forgets where the
# points started, which is the robustness to the prior that the paper reports. Without annealing the prior
# shows through. From the uniform box and the Gaussian the samples do land on the outline, but the tips get far
# more than their share; the scatter plot hides this, the imbalance column does not. From a single point the
# samples all fall onto the nearest stretches of outline, the inner edges, and only diffuse a little way along
# them, leaving the tips empty.
#
# ## Any number of points
#
# The field does not know how many points will be sampled from it: the same call gives 100 or
# `MANY_SAMPLES` points.

# %%
count_samples = {}
for m in [100, MANY_SAMPLES]:
    x0_m = gfcore.sampling.prior("uniform", (1, m, 2), device=device)
    count_samples[m] = gfcore.sampling.annealed_langevin(closed_form, x0_m, sigmas, steps_per_sigma=STEPS_PER_SIGMA)
count_results = {f"{m} samples": quality(x) for m, x in count_samples.items()}
show(count_results)

fig, axes = plt.subplots(1, 2, figsize=(7, 3.6))
for ax, (m, x) in zip(axes, count_samples.items()):
    gfcore.viz.plot_points(ax, x[0].cpu(), s=6 if m == 100 else 0.5, color="C0")
    gfcore.viz.setup_axes(ax, (-1.1, 1.1, -1.1, 1.1), title=f"{m} samples")
fig.suptitle("Figure 3.6 - one field, any number of points", y=1.02)
plt.show()

# %% [markdown]
# Both sets lie on the outline (the same small mean distance); only the outline coverage differs, because 100 points
# cannot come within `COVER_RADIUS` of every part of an outline this long. ShapeGF uses this to *upsample*: a
# shape encoded from a sparse cloud can be decoded at any density (chapter 5).
#
# ## Summary
#
# - Langevin dynamics {eq}`eq-langevin` turns a score into samples; annealing {eq}`eq-annealed-langevin` runs it
#   from wide to sharp $\sigma$, with step sizes $\alpha_i = \eta\,\sigma_i^2/\sigma_L^2$ and noise
#   $\sqrt{\alpha_i}$, noise first, as ShapeGF's Algorithm 1.
# - The official $\eta = 2\sigma_L^2$ makes each gradient step a jump to the attention-weighted mean of the
#   neighbours; much smaller steps do not arrive, steps above twice that diverge.
# - Judge samples by distance *and* outline coverage *and* evenness: without annealing points land on the outline but in
#   the wrong proportions, badly so from a concentrated prior.
# - With annealing the prior does not matter, and any number of points comes from one field.
# - A learned field samples the shape too, with fuzz set by how well its smallest levels were learned.
#
# ## Exercises
#
# Five exercises, from a one-line check to a small search. Each says what you should observe (*Check*); its worked
# solution is folded under it (click to open), runs when the chapter runs, and the chapter's last cell asserts what
# each solution finds.
#
# **Exercise 3.1** (the official step is a jump). With the official $\eta = 2\sigma_L^2$, check numerically that
# one gradient step of {eq}`eq-annealed-langevin` on the closed-form field, $x' + \tfrac{\alpha_i}{2} s(x', \sigma_i)$,
# lands exactly on the attention-weighted mean $\sum_j w_j(x')\, x_j$ of chapter 1, at every level. *Check:* in
# float64 the two agree to round-off.
#
# :::{dropdown} Solution 3.1
# $\alpha_i/2 = \eta\,\sigma_i^2 / (2\sigma_L^2) = \sigma_i^2$, and $\sigma_i^2 \nabla_x \log A_{\sigma_i}(x') =
# \sum_j w_j(x')\,x_j - x'$ by {eq}`eq-closed-form-score`, so the step is $x' + \sum_j w_j x_j - x' = \sum_j w_j x_j$.
# The cell computes the weights with a softmax, as in exercise 1.2, and compares.
# :::

# %% tags=["hide-cell"]
points64, x_noisy = points.double(), gfcore.sampling.prior("uniform", (1, 500, 2), device=device,
                                                           dtype=torch.float64)[0]
sol1_error = 0.0
for s in sigmas.tolist():
    alpha = 2 * sigmas[-1].item() ** 2 * s**2 / sigmas[-1].item() ** 2        # eta * sigma_i^2 / sigma_L^2
    step = x_noisy + alpha / 2 * gfcore.fields.smoothed_score(x_noisy, points64, s)
    weights = torch.softmax(-torch.cdist(x_noisy, points64).square() / (2 * s**2), dim=1)
    sol1_error = max(sol1_error, (step - weights @ points64).abs().max().item())
print(f"largest difference between the gradient step and the weighted mean, over the ladder: {sol1_error:.1e}")

# %% [markdown]
# **Exercise 3.2** (no noise). Turn off the noise (`noise=False`) in the annealed run from the uniform prior.
# *Check:* the mean distance stays small, but the outline coverage collapses and the imbalance approaches its
# maximum of 1: all samples end in the same few places.
#
# :::{dropdown} Solution 3.2
# Exercise 3.1 says why. At the first level, $\sigma_1 = 1$, every gradient step sends a point to the weighted
# mean of nearly the whole star, so after one step all samples sit at almost the same place, near the centre. With
# noise they are scattered again before the next step; without it they stay together and travel as one clump for
# the rest of the ladder. The field does its job (the clump ends on the outline, a small mean distance); the
# noise is what spreads the samples over the whole shape.
# :::

# %% tags=["hide-cell"]
x0 = gfcore.sampling.prior("uniform", (1, NUM_SAMPLES, 2), device=device)
sol2 = {}
for noise in [True, False]:
    x = gfcore.sampling.annealed_langevin(closed_form, x0, sigmas, steps_per_sigma=STEPS_PER_SIGMA, noise=noise)
    sol2[noise] = quality(x)
    distinct = len(torch.unique((x[0] / 0.01).round(), dim=0))
    print(f"noise={noise!s:5}: " + ", ".join(f"{k} {v:.3g}" for k, v in sol2[noise].items())
          + f"; {distinct} distinct positions at a 0.01 grid")

# %% [markdown]
# **Exercise 3.3** (the spiral). Sample the `"spiral"` from its closed-form field, with and without annealing, from
# the uniform prior, and count the share of samples on the inner half of the spiral (by arc length). *Check:*
# without annealing the inner half gets too few samples (the outer turn captures most of the box), and the
# imbalance shows it; with annealing the share is close to one half.
#
# :::{dropdown} Solution 3.3
# `quality` measures against the star's outline, so the cell defines the same measures for any dense outline.
# `gfcore.data.shapes2d.dense` orders its points along the outline, from the centre of the spiral outwards, so the
# first half of them is the inner half of the arc. Without annealing each sample falls onto the nearest turn, and
# from the uniform box most of the box is nearest to the outer turn. At $\sigma_1 = 1$ the whole spiral is one blob
# and the samples gather in it; the later levels share them out along the arms in proportion to their length.
# :::

# %% tags=["hide-cell"]
def quality_on(outline, x):
    """Mean distance to outline, imbalance over 50 equal arcs, and the share of x on the first half of the arc."""
    x = x.reshape(-1, 2)
    arc = torch.cdist(x, outline).argmin(dim=1)
    share = torch.bincount(arc * 50 // len(outline), minlength=50).float() / len(x)
    return {"distance": gfcore.fields.distance_to_points(x, outline).mean().item(),
            "imbalance": 0.5 * (share - 1 / 50).abs().sum().item(),
            "inner share": (arc < len(outline) // 2).float().mean().item()}


spiral = gfcore.data.shapes2d.sample("spiral", NUM_POINTS, generator=generator).to(device)
spiral_dense = gfcore.data.shapes2d.dense("spiral", 2000, device=device)
spiral_field = lambda x, s: gfcore.fields.smoothed_score(x, spiral, s)  # noqa: E731
sol3 = {"ideal": quality_on(spiral_dense, gfcore.data.shapes2d.sample("spiral", NUM_SAMPLES, generator=generator)
                            .to(device))}
for name, ladder, steps in [("annealed", sigmas, STEPS_PER_SIGMA), ("no annealing", sigmas[-1:], 100)]:
    sol3[name] = quality_on(spiral_dense, gfcore.sampling.annealed_langevin(spiral_field, x0, ladder,
                                                                           steps_per_sigma=steps))
for name, q in sol3.items():
    print(f"{name:12}: " + ", ".join(f"{k} {v:.3g}" for k, v in q.items()))

# %% [markdown]
# **Exercise 3.4** (a last denoising step). Add a final gradient step without noise at $\sigma_L$ to the
# learned-field run, `x + sigma_L**2 * net(x, sigma_L)`. *Check:* the mean distance of the learned samples drops;
# look at the outline coverage too.
#
# :::{dropdown} Solution 3.4
# The sampler's last update is a gradient step from a noised point $x'$, so its output still carries what the
# network got wrong at $x'$. One more step from there, without adding noise, moves each sample again toward
# what the network takes for the outline; with the official step it is the network's estimate of the
# weighted mean of the nearby points (exercise 3.1). It is the "denoising" step that many diffusion samplers end
# with (for the closed-form field it changes little: its samples are on the outline already). It is not free:
# nearby samples are pulled toward the same weighted mean, which can bunch them up; the cell prints whether the
# coverage fell.
# :::

# %% tags=["hide-cell"]
s_last = train_sigmas[-1].item()
with torch.no_grad():
    denoised = learned + s_last**2 * net(learned, torch.full((1,), s_last, device=device))
sol4 = {"learned": quality(learned), "learned + denoising step": quality(denoised)}
for name, q in sol4.items():
    print(f"{name:24}: " + ", ".join(f"{k} {v:.3g}" for k, v in q.items()))
change = sol4["learned + denoising step"]["outline coverage"] - sol4["learned"]["outline coverage"]
print(f"the extra step {'lowers' if change < 0 else 'raises'} the outline coverage by {abs(change):.3f}")

# %% [markdown]
# **Exercise 3.5** (the largest step). Find, by bisection, the largest $k = \eta/(2\sigma_L^2)$ for which the
# closed-form run of the step-size section still ends on the outline (mean distance below $0.1$). *Check:* it lies
# just above 2, and a step a little larger sends the samples off to infinity.
#
# :::{dropdown} Solution 3.5
# Near the outline, with the field of a locally straight piece of it, a gradient step maps the distance $r$ to the
# outline to $(1 - k)\,r$: for $k < 2$ the factor has magnitude below one and the error shrinks, for $k > 2$ it
# grows by $|1 - k| > 1$ per step, a hundred steps in a row. The noise and the curvature of the outline move the
# threshold a little. Bisection keeps an interval $[k_{\text{ok}}, k_{\text{bad}}]$ with a converging and a
# diverging end and halves it; six rounds from $[1, 3]$ locate the threshold to $2/2^6 \approx 0.03$.
# :::

# %% tags=["hide-cell"]
def ends_on_outline(k, x_start):
    x = gfcore.sampling.annealed_langevin(closed_form, x_start, sigmas, steps_per_sigma=STEPS_PER_SIGMA,
                                          step_size=k * 2 * sigmas[-1].item() ** 2)
    return gfcore.fields.distance_to_points(x.reshape(-1, 2).clamp(-1e3, 1e3), dense).mean().item()


x_small = gfcore.sampling.prior("uniform", (1, 300, 2), device=device)
k_ok, k_bad = 1.0, 3.0
for _ in range(6):
    k_mid = (k_ok + k_bad) / 2
    distance = ends_on_outline(k_mid, x_small)
    print(f"k = {k_mid:.4f}: mean distance {distance:.3g}")
    k_ok, k_bad = (k_mid, k_bad) if distance < 0.1 else (k_ok, k_mid)
sol5 = {"k_ok": k_ok, "k_bad": k_bad, "distance past k_bad + 0.05": ends_on_outline(k_bad + 0.05, x_small)}
print(f"largest converging k found: {k_ok:.3f} (diverges at {k_bad:.3f}); at k = {k_bad + 0.05:.3f} the mean "
      f"distance is {sol5['distance past k_bad + 0.05']:.3g}")

# %%
# The science this chapter showed, and what each exercise's solution found; nbval fails the build if it stops
# being true.
cf, lf = results["closed-form field"], results["learned, sigma_L = 0.05"]
assert cf["distance"] < 0.005 and cf["outline coverage"] > 0.95, cf              # closed form: on the outline, all of it
assert lf["distance"] < 0.06 and lf["outline coverage"] > 0.4, lf                # learned field: close, looser threshold
assert step_results[next(iter(step_results))]["distance"] > 0.05         # too small a step does not arrive
assert list(step_results.values())[-1]["distance"] > 10                  # too large a step diverges
for kind in priors:                                                      # annealing beats no annealing
    a, b = prior_results[f"{kind}, annealed"], prior_results[f"{kind}, no annealing"]
    assert a["imbalance"] < b["imbalance"] - 0.1 and a["outline coverage"] >= b["outline coverage"], (kind, a, b)
    assert a["distance"] < 0.005, (kind, a)                              # ... and every prior works with it
assert prior_results["fixed, no annealing"]["outline coverage"] < 0.8            # one starting point, no annealing: gaps
assert count_results[f"{MANY_SAMPLES} samples"]["outline coverage"] > 0.99       # many samples cover everything
# 3.1: with eta = 2 sigma_L^2 a gradient step on the closed form is a jump to the weighted mean
assert sol1_error < 1e-10, sol1_error
# 3.2: without noise the samples reach the outline but bunch up
assert sol2[False]["distance"] < 0.01 and sol2[False]["imbalance"] > 0.5, sol2
assert sol2[False]["outline coverage"] < 0.2 < 0.9 < sol2[True]["outline coverage"], sol2
# 3.3: spiral without annealing: the inner half is short of samples; annealed: about its share
assert sol3["no annealing"]["inner share"] < 0.4 < sol3["annealed"]["inner share"] < 0.6, sol3
assert sol3["no annealing"]["imbalance"] > sol3["annealed"]["imbalance"] + 0.1, sol3
# 3.4: a last noise-free step brings the learned samples closer to the outline
assert sol4["learned + denoising step"]["distance"] < sol4["learned"]["distance"], sol4
# 3.5: the largest stable step is just above k = 2, and past it the samples fly off
assert 1.9 < sol5["k_ok"] < 2.25 and sol5["distance past k_bad + 0.05"] > 1, sol5
print("chapter 3 checks passed")

# %% [markdown]
# :::{admonition} You can now
# :class: tip
# - write annealed Langevin dynamics {eq}`eq-annealed-langevin` (ShapeGF's Algorithm 1) and say what its step size
#   and noise do;
# - sample a 2D shape from a closed-form or a learned field with any prior and any number of points;
# - measure samples by distance, outline coverage and imbalance, and see why all three are needed;
# - choose a step size and a noise schedule, and tell when annealing matters (concentrated priors, shapes with
#   arms).
#
# **In the library:** `gfcore.sampling` (`annealed_langevin`, `prior`), `gfcore.schedule` (`geometric_sigmas`,
# `linear_sigmas`), `gfcore.fields` (`smoothed_score`, `distance_to_points`), `gfcore.models.ToyScoreNet`,
# `gfcore.losses.dsm_loss`, `gfcore.data.shapes2d` (`sample`, `dense`), `gfcore.diagrams.draw_annealing`,
# `gfcore.viz` (`plot_points`, `setup_axes`, `animate_trajectory`, `to_html`), `gfcore.mode` (`choose`,
# `describe`), `gfcore.utils` (`seed_everything`, `default_device`).
# :::
