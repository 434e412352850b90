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
from bayestream.models._drift import drift_step, reset_posterior
from bayestream.models._jit import inline, kernel
from bayestream.models._outlier import mixture_probability
from bayestream.models._protocol import (
    OUT_PIT,
    OUT_PROB,
    OUT_TAIL,
    S_DRIFT,
    S_EXTRA,
    S_OUTLIER_RATE,
    S_ROBUST,
    S_ROBUST_MIN,
    S_RUN_RESET,
)
from bayestream.models._special import betaincinv
from bayestream.models._stream import APPLIED, LATE, begin_event, forget_linear, outlier_run

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


@kernel
def update(
    params: np.ndarray,
    last_ts: np.ndarray,
    n_eff: np.ndarray,
    obs_size: np.ndarray,
    prior: np.ndarray,
    half_life: float,
    per_event: bool,
    side: int,
    max_lateness: float,
    settings: np.ndarray,
    slots: np.ndarray,
    ts: np.ndarray,
    x: np.ndarray,
    size: np.ndarray,
    expire_before: np.ndarray,
    out: np.ndarray,
    out_status: np.ndarray,
) -> None:
    """Apply events in order (``x`` a category index); see normal_gamma.update. The PIT is
    NaN: categories have no order."""
    robust = settings[S_ROBUST] == 1.0
    robust_min = settings[S_ROBUST_MIN]
    run_reset = settings[S_RUN_RESET]
    rate = settings[S_OUTLIER_RATE]
    extra = int(settings[S_EXTRA])
    drift = settings[S_DRIFT] == 1.0
    width = prior.shape[0]
    sw = width + 1
    cur_post, ref_post, scratch = np.empty(width + sw), np.empty(width + sw), np.empty(sw)
    for i in range(slots.shape[0]):
        s = slots[i]
        fresh = not last_ts[s] >= expire_before[i]  # never seen, or idle past its TTL
        d = begin_event(
            params,
            last_ts,
            n_eff,
            prior,
            s,
            ts[i],
            half_life,
            per_event,
            max_lateness,
            expire_before[i],
        )
        if d < 0.0:
            out_status[i] = LATE
            continue
        forget_linear(params, prior, s, d)
        k = int(x[i])
        alpha = params[s, :width]
        tail = tail_probability(alpha, k)
        pit = np.nan
        # outliers: uniform over the K categories
        prob = mixture_probability(math.log(alpha.sum() / width) - math.log(alpha[k]), rate)
        out[i, OUT_TAIL] = tail
        out[i, OUT_PIT] = pit
        out[i, OUT_PROB] = prob
        params[s, extra] = prob
        outlier_run(params, n_eff, prior, s, extra, prob, run_reset)  # (a restart: in full)
        out_status[i] = APPLIED
        obs_size[s] = size[i]
        row = params[s]
        if drift and drift_step(
            row, settings, fresh, ts[i], x[i], size[i], out, i, cur_post, ref_post
        ):
            n_eff[s] = reset_posterior(row, settings, prior, scratch)
            continue
        w = 1.0 - prob if robust and n_eff[s] >= robust_min else 1.0
        params[s, k] += w
        n_eff[s] += w


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
