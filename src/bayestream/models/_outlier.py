r"""The anomaly probability: a two-component mixture per event.

Each observation is, a priori, an outlier with probability ``epsilon`` (``outlier_rate``) and
otherwise a draw from the stream's posterior predictive ``p``. Outliers come from a broad
component ``q``: the predictive widened ``c`` times (``outlier_scale``) where the predictive has
a scale, a uniform distribution where the support is finite. By Bayes' rule

    P(outlier | x) = epsilon q(x) / (epsilon q(x) + (1 - epsilon) p(x)),

computed from the log density ratio ``log q(x) - log p(x)`` so that far tails neither overflow
nor round to 0/0. The outlier components, per observation kind:

- real values (Normal-Gamma): a Student-t with the predictive's degrees of freedom and
  location and ``c`` times its scale; the ratio needs no Gamma functions:
  log q/p = -log c + (nu + 1)/2 [log(1 + z^2/nu) - log(1 + z^2/(c^2 nu))];
- counts over an exposure (Gamma-Poisson): a Negative Binomial with the predictive's mean m and
  ``c^2`` times its variance v (size m^2 / (c^2 v - m), success probability m / (c^2 v));
- successes out of n trials (Beta-Binomial): uniform on 0..n;
- categories (Dirichlet): uniform over the K categories.

An event that may become an anomaly record (its tail probability or anomaly probability past
the rule's cut-offs, ``S_IVL_*``) also gets the central interval of the predictive it was
scored against, so that a record can say what was expected; the others skip that cost.

Robust updating (Box & Tiao's contaminated model, in its usual one-pass form) adds each event
to the posterior with weight ``1 - P(outlier | x)``: pseudo-counts grow by the weight, so an
event that is surely an outlier changes nothing and an ordinary one counts in full.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._jit import inline
from bayestream.models._protocol import S_IVL_PROB, S_IVL_TAIL, S_IVL_UPPER
from bayestream.models._special import gammaln


@inline
def wants_interval(settings: np.ndarray, tail: float, prob: float) -> bool:
    """Does this event's record need its predictive interval (it may be an anomaly)? Never
    with the cut-offs off (zeros, as in a settings vector that does not set them)."""
    if not settings[S_IVL_UPPER] > 0.5:
        return False
    cut = settings[S_IVL_PROB]
    return tail <= settings[S_IVL_TAIL] or (cut > 0.0 and prob >= cut)  # type: ignore[no-any-return]


@inline
def mixture_probability(log_ratio: float, rate: float) -> float:
    """P(outlier | x) from ``log q(x) - log p(x)`` and the prior outlier rate."""
    if math.isnan(log_ratio):
        return 1.0  # an observation no component can score is not trusted
    lr = math.log(rate) - math.log1p(-rate) + log_ratio
    if lr > 0.0:
        return 1.0 / (1.0 + math.exp(-lr))
    e = math.exp(lr)
    return e / (1.0 + e)


@inline
def t_log_ratio(z: float, df: float, scale: float) -> float:
    """log q/p for a standard Student-t ``p`` and the same ``t`` widened by ``scale``."""
    u = z * z / df
    return -math.log(scale) + 0.5 * (df + 1.0) * (math.log1p(u) - math.log1p(u / (scale * scale)))


@inline
def nb_log_pmf_moments(k: float, mean: float, var: float) -> float:
    """log P(X = k) of the Negative Binomial with this mean and variance (var > mean > 0)."""
    p = mean / var
    size = mean * p / (1.0 - p)
    return (
        gammaln(k + size)
        - gammaln(size)
        - gammaln(k + 1.0)
        + size * math.log(p)
        + k * math.log1p(-p)
    )
