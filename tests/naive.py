"""Naive reference implementations for the model kernels (the stumpy ``tests/naive.py`` idea).

Everything here is written for obviousness, not speed, and independently of
``bayestream.models``:

- posteriors are updated one event at a time in exact rational arithmetic
  (:class:`fractions.Fraction`), so the only rounding is the float decay factor ``d`` itself;
- Normal-Gamma forgetting goes through the natural parameters
  ``(kappa, kappa mu, alpha, beta + kappa mu^2 / 2)``, not the kernel's closed-form weights;
- the stream semantics (decay, lateness, expiry, ``n_eff``) are re-implemented from the
  docstring of ``bayestream.models._stream`` with plain dicts;
- predictive tails come from ``scipy.stats`` distributions (the oracle), discrete tails by
  summing pmf terms with :func:`math.fsum`, never through ``1 - cdf``.

The small :class:`Rows` / :func:`apply` harness at the end drives a kernel the way the engine
does (columnar arrays, one call for many interleaved streams).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from scipy import stats

from bayestream.models._protocol import (
    N_OUT,
    N_SETTINGS,
    OUT_TAIL,
    S_EXTRA,
    S_OUTLIER_RATE,
    S_OUTLIER_SCALE,
    S_ROBUST,
    Events,
    RuleConstants,
    extra_prior,
)
from bayestream.models._protocol import Rows as KernelRows

INF = math.inf
UPPER, LOWER, TWO_SIDED = 0, 1, 2


# --- exact sequential posteriors ------------------------------------------------------------


def ng_step(p: list[Fraction], x: float) -> list[Fraction]:
    mu, k, a, b = p
    xf = Fraction(x)
    return [
        (k * mu + xf) / (k + 1),
        k + 1,
        a + Fraction(1, 2),
        b + k * (xf - mu) ** 2 / (2 * (k + 1)),
    ]


def ng_decay(p: list[Fraction], p0: list[Fraction], d: Fraction) -> list[Fraction]:
    def natural(q: list[Fraction]) -> list[Fraction]:
        mu, k, a, b = q
        return [k, k * mu, a, b + k * mu * mu / 2]

    eta = [d * e + (1 - d) * e0 for e, e0 in zip(natural(p), natural(p0), strict=True)]
    k = eta[0]
    mu = eta[1] / k
    return [mu, k, eta[2], eta[3] - k * mu * mu / 2]


def bb_step(p: list[Fraction], x: float, size: float) -> list[Fraction]:
    return [p[0] + Fraction(x), p[1] + Fraction(size) - Fraction(x)]


def gp_step(p: list[Fraction], x: float, size: float) -> list[Fraction]:
    return [p[0] + Fraction(x), p[1] + Fraction(size)]


def dir_step(p: list[Fraction], x: float) -> list[Fraction]:
    out = list(p)
    out[int(x)] += 1
    return out


def linear_decay(p: list[Fraction], p0: list[Fraction], d: Fraction) -> list[Fraction]:
    return [q0 + d * (q - q0) for q, q0 in zip(p, p0, strict=True)]


def step(family: str, p: list[Fraction], x: float, size: float) -> list[Fraction]:
    if family == "normal_gamma":
        return ng_step(p, x)
    if family == "beta_binomial":
        return bb_step(p, x, size)
    if family == "gamma_poisson":
        return gp_step(p, x, size)
    return dir_step(p, x)


def decay(family: str, p: list[Fraction], p0: list[Fraction], d: Fraction) -> list[Fraction]:
    return ng_decay(p, p0, d) if family == "normal_gamma" else linear_decay(p, p0, d)


def sequential(
    family: str, prior: np.ndarray, xs: np.ndarray, sizes: np.ndarray | None = None
) -> np.ndarray:
    """Posterior after all of ``xs`` in order, no forgetting, exact arithmetic."""
    p = [Fraction(float(v)) for v in prior]
    sizes = np.ones(len(xs)) if sizes is None else sizes
    for x, size in zip(xs, sizes, strict=True):
        p = step(family, p, float(x), float(size))
    return np.array([float(v) for v in p])


# --- stream semantics -----------------------------------------------------------------------


@dataclass
class NaiveStreams:
    """Rows of one rule, re-implemented from the ``_stream`` docstring."""

    family: str
    prior: np.ndarray
    half_life: float = INF
    per_event: bool = False
    max_lateness: float = INF
    rows: dict[int, tuple[list[Fraction], float | None, Fraction]] = field(default_factory=dict)

    def _fresh(self) -> tuple[list[Fraction], float | None, Fraction]:
        return [Fraction(float(v)) for v in self.prior], None, Fraction(0)

    def event(
        self, row: int, t: float, x: float, size: float = 1.0, expire_before: float = -INF
    ) -> np.ndarray | None:
        """Apply one event; return the predictive (decayed) posterior, or None when LATE."""
        p, newest, n_eff = self.rows.get(row, self._fresh())
        if newest is not None and newest < expire_before:
            p, newest, n_eff = self._fresh()
        if newest is None:
            newest = t
        elif t < newest - self.max_lateness:
            return None
        else:
            dt = 1.0 if self.per_event else max(t - newest, 0.0)
            d = Fraction(2.0 ** (-dt / self.half_life))
            p = decay(self.family, p, self._fresh()[0], d)
            n_eff = n_eff * d
            newest = max(newest, t)
        predictive = np.array([float(v) for v in p])
        self.rows[row] = (step(self.family, p, x, size), newest, n_eff + 1)
        return predictive

    def params(self, row: int) -> np.ndarray:
        return np.array([float(v) for v in self.rows.get(row, self._fresh())[0]])

    def n_eff(self, row: int) -> float:
        return float(self.rows.get(row, self._fresh())[2])


# --- predictive tails (scipy.stats is the oracle) -------------------------------------------


def pick(lower: float, upper: float, side: int) -> float:
    if side == UPPER:
        return upper
    if side == LOWER:
        return lower
    return min(1.0, 2.0 * min(lower, upper))


def ng_predictive(p: np.ndarray) -> stats.rv_continuous:
    mu, k, a, b = p
    return stats.t(df=2.0 * a, loc=mu, scale=math.sqrt(b * (k + 1.0) / (a * k)))


def ng_tail(p: np.ndarray, x: float, side: int) -> float:
    dist = ng_predictive(p)
    return pick(float(dist.cdf(x)), float(dist.sf(x)), side)


def discrete_mid_p(pmf: np.ndarray, x: int, side: int) -> float:
    """Mid-p tail from the whole pmf on 0..len-1 (tails summed term by term)."""
    at = float(pmf[x])
    lower = math.fsum(pmf[:x]) + 0.5 * at
    upper = math.fsum(pmf[x + 1 :]) + 0.5 * at
    return pick(lower, upper, side)


def bb_tail(p: np.ndarray, x: int, n: int, side: int) -> float:
    pmf = stats.betabinom(n, p[0], p[1]).pmf(np.arange(n + 1))
    return discrete_mid_p(pmf, x, side)


def gp_tail(p: np.ndarray, x: int, e: float, side: int) -> float:
    dist = stats.nbinom(p[0], p[1] / (p[1] + e))
    at = float(dist.pmf(x))
    lower = (float(dist.cdf(x - 1)) if x > 0 else 0.0) + 0.5 * at
    upper = float(dist.sf(x)) + 0.5 * at
    return pick(lower, upper, side)


def nb_mid_p_recurrence(x: int, e: float, a: float, b: float) -> tuple[float, float]:
    """Mid-p (lower, upper) of the Negative Binomial predictive without ever forming p:
    P(0) = (b / (b + e))^a = exp(-a log1p(e / b)), P(k + 1) = P(k) (k + a) / (k + 1) q with
    q = e / (b + e). For a small mean (P(0) not underflowing) every term is good to ~k ulp."""
    q = e / (b + e)
    term = math.exp(-a * math.log1p(e / b))
    mode = (a - 1.0) * q / (1.0 - q)
    below: list[float] = []
    above: list[float] = []
    at = 0.0
    k = 0
    while True:
        if k < x:
            below.append(term)
        elif k == x:
            at = term
        else:
            above.append(term)
            if k > mode and term < 1e-30 * math.fsum(above):
                break
        term *= (k + a) / (k + 1.0) * q
        k += 1
    return math.fsum(below) + 0.5 * at, math.fsum(above) + 0.5 * at


def dir_tail(p: np.ndarray, x: int) -> float:
    probs = [a / math.fsum(p) for a in p]
    mine = probs[x]
    return math.fsum(q for q in probs if q < mine) + 0.5 * math.fsum(q for q in probs if q == mine)


def oracle_tail(family: str, p: np.ndarray, x: float, size: float, side: int) -> float:
    """The predictive tail of ``x`` under posterior ``p``, from the references above."""
    if family == "normal_gamma":
        return ng_tail(p, x, side)
    if family == "beta_binomial":
        return bb_tail(p, int(x), int(size), side)
    if family == "gamma_poisson":
        return gp_tail(p, int(x), size, side)
    return dir_tail(p, int(x))


# --- harness: drive a kernel like the engine does ---------------------------------------------

PRIORS = {
    "normal_gamma": np.array([1.0, 2.0, 3.0, 2.5]),
    "beta_binomial": np.array([2.0, 3.0]),
    "gamma_poisson": np.array([3.0, 1.5]),
    "dirichlet": np.array([1.0, 2.0, 0.5, 1.5]),
}


def draw_events(family: str, rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``m`` plausible observations ``(x, size)`` for ``family``."""
    if family == "normal_gamma":
        return rng.normal(1.5, 2.0, m), np.ones(m)
    if family == "beta_binomial":
        size = rng.integers(1, 30, m).astype(float)
        return rng.binomial(size.astype(np.int64), 0.3).astype(float), size
    if family == "gamma_poisson":
        size = rng.uniform(0.2, 3.0, m)
        return rng.poisson(2.0 * size).astype(float), size
    return rng.choice(4, m, p=[0.1, 0.4, 0.2, 0.3]).astype(float), np.ones(m)


@dataclass
class Rows:
    """Columnar state for ``n`` streams of one rule, all starting at the prior."""

    prior: np.ndarray
    n: int
    params: np.ndarray = field(init=False)
    last_ts: np.ndarray = field(init=False)
    n_eff: np.ndarray = field(init=False)
    obs_size: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.prior = np.ascontiguousarray(self.prior, dtype=np.float64)
        # the kernels' rows: the family's parameters, then the extra columns of a new stream
        self.full = np.tile(np.append(self.prior, extra_prior()), (self.n, 1))
        self.params = self.full[:, : self.prior.shape[0]]
        self.last_ts = np.full(self.n, np.nan)
        self.n_eff = np.zeros(self.n)
        self.obs_size = np.zeros(self.n)


def apply(
    module,
    rows: Rows,
    slots,
    ts,
    x,
    size=None,
    *,
    half_life: float = INF,
    per_event: bool = False,
    side: int = UPPER,
    max_lateness: float = INF,
    expire_before=None,
    robust: bool = False,
    outlier_rate: float = 0.001,
    outlier_scale: float = 10.0,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``module.update`` over events; return (tail, status) per event. The plain
    conjugate update unless ``robust``; pass ``out`` (``[m, N_OUT]``) to see every column."""
    slots = np.asarray(slots, dtype=np.int64)
    m = slots.shape[0]
    ts = np.asarray(ts, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    size = np.ones(m) if size is None else np.asarray(size, dtype=np.float64)
    expire = np.full(m, -np.inf) if expire_before is None else np.asarray(expire_before, float)
    out = np.full((m, N_OUT), np.nan) if out is None else out
    status = np.empty(m, dtype=np.int8)
    settings = np.zeros(N_SETTINGS)
    settings[S_ROBUST] = 1.0 if robust else 0.0
    settings[S_OUTLIER_RATE] = outlier_rate
    settings[S_OUTLIER_SCALE] = outlier_scale
    settings[S_EXTRA] = rows.prior.shape[0]
    module.update(
        KernelRows(rows.full, rows.last_ts, rows.n_eff, rows.obs_size),
        RuleConstants(rows.prior, settings, float(half_life), bool(per_event), int(side),
                      float(max_lateness)),
        Events(slots, ts, x, size, expire),
        out,
        status,
    )  # fmt: skip
    return out[:, OUT_TAIL].copy(), status


def summarize(module, rows: Rows, levels, quantiles) -> tuple[np.ndarray, ...]:
    """Run ``module.summarize`` over every row; return (mean, sd, lo, hi, q)."""
    levels = np.asarray(levels, dtype=np.float64)
    quantiles = np.asarray(quantiles, dtype=np.float64)
    width = rows.params.shape[1] if module.__name__.endswith("dirichlet") else 1
    m = rows.n
    out = (
        np.empty((m, width)),
        np.empty((m, width)),
        np.empty((m, levels.size, width)),
        np.empty((m, levels.size, width)),
        np.empty((m, quantiles.size)),
    )
    module.summarize(
        rows.full, rows.obs_size, np.arange(m, dtype=np.int64), levels, quantiles, *out
    )
    return out
