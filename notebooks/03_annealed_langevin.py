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
# **gfcore names used:** `gfcore.sampling.annealed_langevin`, `gfcore.sampling.prior`,
# `gfcore.schedule.geometric_sigmas`, `gfcore.schedule.linear_sigmas`, `gfcore.fields.smoothed_score`,
# `gfcore.fields.distance_to_points`, `gfcore.models.ToyScoreNet`, `gfcore.losses.dsm_loss`,
# `gfcore.data.shapes2d.sample`, `gfcore.data.shapes2d.dense`, `gfcore.viz.plot_points`,
# `gfcore.viz.setup_axes`, `gfcore.viz.animate_trajectory`, `gfcore.viz.to_html`, `gfcore.mode.choose`,
# `gfcore.mode.describe`, `gfcore.utils.seed_everything`, `gfcore.utils.default_device`.

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
# All sizes of this chapter come from one cell; `GF_MODE=fast` and `GF_MODE=full` run the same code.

# %%
NUM_POINTS = gfcore.mode.choose(fast=1024, full=2048)    # points on the star that define the closed-form field
NUM_SAMPLES = gfcore.mode.choose(fast=1000, full=2000)   # points moved by the sampler in each experiment
MANY_SAMPLES = gfcore.mode.choose(fast=2000, full=10000) # the "any number of points" experiment
STEPS_PER_SIGMA = 10                                       # as the official code
# the learned field: chapter 2's recipe, value for value
TRAIN_STEPS = gfcore.mode.choose(fast=1500, full=3000)   # Adam steps
HIDDEN = gfcore.mode.choose(fast=64, full=128)           # width of ToyScoreNet's hidden layers
BATCH, POINTS_PER_ITEM = 32, gfcore.mode.choose(fast=64, full=128)  # 32 noisy copies x points per copy
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
fig.suptitle("Figure 3.1 - annealed Langevin dynamics on the closed-form field of the star (grey)", y=1.02)
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
# learning rate, number of steps and seed. On the same machine it is the very network of chapter 2's Figure 2.2.
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
fig.suptitle(f"Figure 3.2 - {NUM_SAMPLES} samples from three fields", y=1.02)
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
fig.suptitle("Figure 3.3 - the same sampler with five step sizes", y=1.02)
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
fig.suptitle("Figure 3.4 - three priors (grey: starting points) with and without annealing", y=1.0)
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
fig.suptitle("Figure 3.5 - one field, any number of points", y=1.02)
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
# 1. Turn off the noise (`noise=False`) in the annealed run with the uniform prior. *Check:* the mean distance
#    stays small but the imbalance grows: without noise, annealing alone no longer spreads the points evenly.
# 2. Sample the `"spiral"` with and without annealing from the uniform prior. *Check:* without annealing the
#    inner turns get too few points (the outer turn captures most of the box), which the imbalance shows.
# 3. Add a final *denoising* step to the learned-field run: one gradient step with no noise at $\sigma_L$,
#    `x + sigma_L**2 * net(x, sigma_L)`. *Check:* the mean distance of the learned samples drops.
# 4. Find the largest $k$ for which the step-size experiment still converges. *Check:* the mean distance stays
#    below $0.1$ up to about $k = 2$ and explodes just above it.

# %%
# The science this chapter showed; nbval fails the build if it stops being true.
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
print("chapter 3 checks passed")

# %% [markdown]
# **gfcore names used:** `gfcore.sampling.annealed_langevin`, `gfcore.sampling.prior`,
# `gfcore.schedule.geometric_sigmas`, `gfcore.schedule.linear_sigmas`, `gfcore.fields.smoothed_score`,
# `gfcore.fields.distance_to_points`, `gfcore.models.ToyScoreNet`, `gfcore.losses.dsm_loss`,
# `gfcore.data.shapes2d.sample`, `gfcore.data.shapes2d.dense`, `gfcore.viz.plot_points`,
# `gfcore.viz.setup_axes`, `gfcore.viz.animate_trajectory`, `gfcore.viz.to_html`,
# `gfcore.utils.seed_everything`, `gfcore.utils.default_device`, `gfcore.mode.choose`,
# `gfcore.mode.describe`.
