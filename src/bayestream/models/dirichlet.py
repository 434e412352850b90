r"""Dirichlet-Categorical: one of K configured categories per event.

Model: x | pi ~ Categorical(pi); pi ~ Dirichlet(alpha_1..alpha_K). Update: alpha_x += 1.

Posterior predictive: P(next = k) = alpha_k / A with A = sum(alpha). A categorical outcome has
no order, so its tail probability (the same for every ``tail`` side) is the predictive mass of
outcomes no more probable than the one observed, mid-p:

    tail(x) = sum_{k: P(k) < P(x)} P(k) + 1/2 sum_{k: P(k) = P(x)} P(k).

Marginals are Beta(alpha_k, A - alpha_k): per-category mean, sd and equal-tailed intervals.
There are no predictive quantiles for a categorical outcome.

Parameters in state rows: ``[alpha_1, ..., alpha_K]``; ``x`` carries the category index.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._divergence import kl_dirichlet
from bayestream.models._jit import inline, kernel
from bayestream.models._skeleton import make_update
from bayestream.models._special import betaincinv
from bayestream.models._stream import forget_linear

kl = kl_dirichlet  # closed-form KL between two posteriors (drift detection)


def posterior(prior: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Closed-form batch posterior ``alpha`` from category indices."""
    return prior + np.bincount(categories.astype(np.int64), minlength=prior.shape[0])


@inline
def tail_probability(alpha: np.ndarray, k: int) -> float:
    """Mid-p predictive mass of categories no more probable than category ``k``."""
    total = alpha.sum()
    mine = alpha[k]
    less = 0.0
    same = 0.0
    for j in range(alpha.shape[0]):
        if alpha[j] < mine:
            less += alpha[j]
        elif alpha[j] == mine:
            same += alpha[j]
    return (less + 0.5 * same) / total  # type: ignore[no-any-return]


# --- per-event steps (the update kernel is the shared skeleton, :mod:`._skeleton`) ---------


@inline
def score(
    theta: np.ndarray, x: float, size: float, side: int, widen: float
) -> tuple[float, float, float, float]:
    """(tail, PIT, log q/p, window value) of category ``x``: the tail is the same for every
    side, the PIT is NaN (categories have no order), the outlier component is uniform over the
    K categories (``widen`` is not used)."""
    k = int(x)
    tail = tail_probability(theta, k)
    log_ratio = math.log(theta.sum() / theta.shape[0]) - math.log(theta[k])
    return tail, np.nan, log_ratio, x


@inline
def interval(theta: np.ndarray, size: float, upper: float) -> tuple[float, float]:
    """None: a category has no predictive interval (the rule's settings never ask for one)."""
    return np.nan, np.nan


@inline
def observe(theta: np.ndarray, x: float, size: float, w: float) -> None:
    """alpha_x' = alpha_x + w."""
    theta[int(x)] += w


update = make_update("dirichlet", forget_linear, score, interval, observe)
"""Apply a batch's events in order (:func:`bayestream.models._skeleton._update`)."""


@kernel
def summarize(
    params: np.ndarray,
    obs_size: np.ndarray,
    slots: np.ndarray,
    levels: np.ndarray,
    quantiles: np.ndarray,
    out_mean: np.ndarray,
    out_sd: np.ndarray,
    out_lo: np.ndarray,
    out_hi: np.ndarray,
    out_q: np.ndarray,
) -> None:
    """Per-category marginal mean, sd and intervals: out_mean, out_sd ``[m, K]``,
    out_lo, out_hi ``[m, L, K]``; out_q is filled with NaN."""
    width = out_mean.shape[1]
    for r in range(slots.shape[0]):
        s = slots[r]
        total = 0.0
        for k in range(width):
            total += params[s, k]
        for k in range(width):
            a = params[s, k]
            b = total - a
            mean = a / total
            out_mean[r, k] = mean
            out_sd[r, k] = math.sqrt(mean * (1.0 - mean) / (total + 1.0))
            for j in range(levels.shape[0]):
                out_lo[r, j, k] = betaincinv(a, b, 0.5 - 0.5 * levels[j])
                out_hi[r, j, k] = betaincinv(a, b, 0.5 + 0.5 * levels[j])
        for j in range(quantiles.shape[0]):
            out_q[r, j] = np.nan
