r"""Observation models: log-likelihoods and predictive tails of one event under the particles.

Each particle ``x_j`` (weight ``w_j``, normalised) is a component of the predictive mixture
``p(y) = sum_j w_j p(y | x_j)``:

- local level: ``y | x_j ~ Normal(x_j, r)`` or Student-t(nu, loc x_j, scale sqrt(r));
- Poisson rate: a count ``y | x_j ~ Poisson(e exp(x_j))`` over exposure ``e``;
- binomial rate: failures ``y | x_j ~ Binomial(n, sigmoid(x_j))`` out of ``n`` trials.

Tail probabilities of the mixture are the weighted sums of the components' tails. Each
component costs one CDF evaluation: the CDF is evaluated on the side where it is small
(``Phi(-|z|)``; for the discrete models the tail away from the mean) and the other side is
its complement, so far tails keep their digits. For the discrete models the point mass is
``exp`` of the log-likelihood the weighting needs anyway, and tails are mid-p.

The Normal local level has its own pass (:func:`normal_pass`): the same quantities computed
with :mod:`.vmath`'s branch-free ``exp`` and normal tail, so its loop runs in SIMD lanes.

A pass writes ``lw_j + log p(y | x_j)`` (NaN mapped to -inf) into ``new`` and returns the
mixture's ``(P(Y < y), P(Y = y), P(Y > y))`` (continuous: ``P(Y = y) = 0``) and the largest
new log-weight. Terms of the log-likelihood that are constant across particles are kept for
the discrete models (the point mass needs them) and dropped for the continuous ones.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._jit import inline
from bayestream.models._outlier import nb_log_pmf_moments
from bayestream.models._special import (
    betainc,
    betaincc,
    gammainc,
    gammaincc,
    gammaln,
    ndtr,
    stdtr,
)
from bayestream.models.particle.codes import MODEL_LOCAL_LEVEL, MODEL_POISSON_RATE, OBS_NORMAL
from bayestream.models.particle.vmath import exp as vexp
from bayestream.models.particle.vmath import normal_sf, sum2, vmax

_NEG_INF = -math.inf


@inline
def log_sigmoid(v: float) -> float:
    """log(1 / (1 + exp(-v))) without overflow."""
    return min(v, 0.0) - math.log1p(math.exp(-abs(v)))


@inline
def normal_pass(
    x: np.ndarray,
    lw: np.ndarray,
    new: np.ndarray,
    lo: np.ndarray,
    up: np.ndarray,
    y: float,
    scale: float,
) -> tuple[float, float, float, float]:
    """Local level with Normal noise: :func:`continuous_pass` for ``OBS_NORMAL`` as one loop
    without libm calls (:mod:`.vmath`), which the compiler vectorises, then the sums.
    ``lo`` and ``up`` are scratch (each particle's share of the lower and upper tails)."""
    p = x.shape[0]
    for j in range(p):
        lwj = lw[j]
        w = vexp(lwj)
        d = (y - x[j]) / scale
        small = w * normal_sf(abs(d))
        large = w - small
        if d < 0.0:
            lo[j] = small
            up[j] = large
        else:
            lo[j] = large
            up[j] = small
        v = lwj - 0.5 * d * d
        if v != v:
            v = _NEG_INF
        new[j] = v
    lower, upper = sum2(lo, up, p)
    return lower, 0.0, upper, vmax(new, p)


@inline
def continuous_pass(
    x: np.ndarray, lw: np.ndarray, new: np.ndarray, y: float, scale: float, obs: int, nu: float
) -> tuple[float, float, float, float]:
    """Local level: Normal or Student-t observation noise of scale ``scale``."""
    lower = 0.0
    upper = 0.0
    top = _NEG_INF
    for j in range(x.shape[0]):
        w = math.exp(lw[j])
        d = (y - x[j]) / scale
        if obs == OBS_NORMAL:
            c = ndtr(-abs(d))
            ll = -0.5 * d * d
        else:
            c = stdtr(nu, -abs(d))
            ll = -0.5 * (nu + 1.0) * math.log1p(d * d / nu)
        if d < 0.0:
            lower += w * c
            upper += w * (1.0 - c)
        else:
            lower += w * (1.0 - c)
            upper += w * c
        v = lw[j] + ll
        if v != v:
            v = _NEG_INF
        new[j] = v
        top = max(top, v)
    return lower, 0.0, upper, top


@inline
def poisson_pass(
    x: np.ndarray, lw: np.ndarray, new: np.ndarray, y: float, exposure: float
) -> tuple[float, float, float, float]:
    """Poisson rate: P(Y < y) = Q(y, lam), P(Y > y) = P(y + 1, lam) (regularised gamma)."""
    log_e = math.log(exposure)
    const = gammaln(y + 1.0)
    lower = 0.0
    at = 0.0
    upper = 0.0
    top = _NEG_INF
    for j in range(x.shape[0]):
        w = math.exp(lw[j])
        lam = exposure * math.exp(x[j])
        ll = -lam - const
        if y > 0.0:
            ll += y * (log_e + x[j])
        if ll != ll:
            ll = _NEG_INF
        pmf = math.exp(ll)
        if lam > y:
            below = gammaincc(y, lam) if y > 0.0 else 0.0
            above = max(1.0 - below - pmf, 0.0)
        else:
            above = gammainc(y + 1.0, lam)
            below = max(1.0 - above - pmf, 0.0)
        lower += w * below
        at += w * pmf
        upper += w * above
        v = lw[j] + ll
        new[j] = v
        top = max(top, v)
    return lower, at, upper, top


@inline
def binomial_pass(
    x: np.ndarray, lw: np.ndarray, new: np.ndarray, y: float, trials: float
) -> tuple[float, float, float, float]:
    """Binomial rate, ``y`` failures with probability p = sigmoid(x):
    P(Y < y) = I_q(n - y + 1, y), P(Y > y) = I_p(y + 1, n - y), q = 1 - p."""
    n = trials
    const = gammaln(n + 1.0) - gammaln(y + 1.0) - gammaln(n - y + 1.0)
    lower = 0.0
    at = 0.0
    upper = 0.0
    top = _NEG_INF
    for j in range(x.shape[0]):
        w = math.exp(lw[j])
        lp = log_sigmoid(x[j])
        lq = log_sigmoid(-x[j])
        ll = const
        if y > 0.0:
            ll += y * lp
        if n - y > 0.0:
            ll += (n - y) * lq
        if ll != ll:
            ll = _NEG_INF
        pmf = math.exp(ll)
        p = math.exp(lp)
        q = math.exp(lq)
        if n * p > y:
            if y <= 0.0:
                below = 0.0
            elif q <= 0.5:
                below = betainc(n - y + 1.0, y, q)
            else:
                below = betaincc(y, n - y + 1.0, p)
            above = max(1.0 - below - pmf, 0.0)
        else:
            if y >= n:
                above = 0.0
            elif p <= 0.5:
                above = betainc(y + 1.0, n - y, p)
            else:
                above = betaincc(n - y, y + 1.0, q)
            below = max(1.0 - above - pmf, 0.0)
        lower += w * below
        at += w * pmf
        upper += w * above
        v = lw[j] + ll
        new[j] = v
        top = max(top, v)
    return lower, at, upper, top


@inline
def valid_count(y: float, size: float, binomial: bool) -> bool:
    """A count the discrete models can weigh: a finite integer in [0, size] (binomial) or
    >= 0 with a finite exposure >= 0 (Poisson)."""
    if not (math.isfinite(y) and math.isfinite(size)) or y < 0.0 or size < 0.0:
        return False
    if y != math.floor(y):
        return False
    if binomial:
        return size == math.floor(size) and y <= size
    return True


@inline
def poisson_cdf(k: float, lam: float) -> float:
    """P(Y <= k) for Y ~ Poisson(lam)."""
    if k < 0.0:
        return 0.0
    return gammaincc(k + 1.0, lam)


@inline
def binomial_cdf(k: float, n: float, lp: float) -> float:
    """P(Y <= k) for Y ~ Binomial(n, p), p = exp(lp)."""
    if k < 0.0:
        return 0.0
    if k >= n:
        return 1.0
    return betaincc(k + 1.0, n - k, math.exp(lp))


@inline
def continuous_constant(obs: int, nu: float, r: float) -> float:
    """The log-density terms the continuous passes drop (the same for every particle)."""
    if obs == OBS_NORMAL:
        return -0.5 * math.log(2.0 * math.pi * r)
    return gammaln(0.5 * (nu + 1.0)) - gammaln(0.5 * nu) - 0.5 * math.log(nu * math.pi * r)


@inline
def outlier_log_density(
    x: np.ndarray,
    lw: np.ndarray,
    w: np.ndarray,
    model: int,
    obs: int,
    nu: float,
    r: float,
    widen: float,
    y: float,
    size: float,
) -> float:
    """log q(y) of the outlier component (:mod:`bayestream.models._outlier`) around the
    particles' predictive: its mean m and variance v from the weighted particles, widened
    ``widen`` times in sd: a Normal (or Student-t with the model's nu) for a local level, a
    Negative Binomial of mean m and variance widen^2 v for a Poisson rate, uniform on 0..n for
    a binomial rate. ``w`` is scratch."""
    if model != MODEL_LOCAL_LEVEL and model != MODEL_POISSON_RATE:
        return -math.log(size + 1.0)
    p = x.shape[0]
    poisson = model == MODEL_POISSON_RATE
    for j in range(p):
        w[j] = vexp(lw[j])
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    for j in range(p):
        v = size * math.exp(x[j]) if poisson else x[j]
        s0 += w[j]
        s1 += w[j] * v
        s2 += w[j] * v * v
    m = s1 / s0
    spread = max(s2 / s0 - m * m, 0.0)
    if poisson:
        if not m > 0.0:
            return 0.0 if y == 0.0 else -math.inf
        return nb_log_pmf_moments(y, m, widen * widen * (m + spread))
    if obs == OBS_NORMAL:
        var = widen * widen * (spread + r)
        return -0.5 * (math.log(2.0 * math.pi * var) + (y - m) ** 2 / var)
    scale2 = widen * widen * (spread + r)
    d2 = (y - m) ** 2 / scale2
    return continuous_constant(obs, nu, scale2) - 0.5 * (nu + 1.0) * math.log1p(d2 / nu)
