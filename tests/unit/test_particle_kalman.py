"""Against the exact Kalman filter on the Gaussian local-level model.

Model: x_0 ~ N(m0, s0^2); x_t = x_{t-1} + N(0, q) per event; y_t ~ N(x_t, r). The first event
has dt = 0 (no propagation), as the kernel does. K independent streams, P particles each.

Error bounds. A weighted particle mean has variance ~ v / ESS (v the posterior variance);
errors of earlier events are carried forward, contracted by (1 - K_t) per event (the Kalman
gain), so in steady state the mean's MC variance is at most c v / ESS with
c = 2 / (1 - (1 - K)^2) (the factor 2 covers the extra variance resampling adds, at most one
more v / P per resampling). With q = 0.1, r = 1: K = 0.27, c = 4.3. Over K streams the mean of
z^2 = (m_pf - m_kf)^2 / (v / ESS) must be below c (plus 4 standard errors of a mean of
chi-square-like terms, c sqrt(2 / K)), the mean of z within 4 sqrt(c / K) of 0 (no bias), and
the relative error of the variance has sd <= sqrt(2 c / ESS). A filter ignoring the data, or
with the wrong q, fails by orders of magnitude (checked below).
"""

from __future__ import annotations

import numpy as np

from bayestream.models import particle as pf
from tests.unit.particle_harness import Config, Rows

K, T, P = 200, 30, 1024
Q, R, M0, S0 = 0.1, 1.0, 0.5, 1.0


def kalman(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and variance after all events, per stream (y has shape [K, T])."""
    m = np.full(y.shape[0], M0)
    v = np.full(y.shape[0], S0**2)
    for t in range(y.shape[1]):
        if t > 0:
            v = v + Q
        gain = v / (v + R)
        m = m + gain * (y[:, t] - m)
        v = (1.0 - gain) * v
    return m, v


def simulate(rng: np.random.Generator) -> np.ndarray:
    x = M0 + S0 * rng.standard_normal(K)
    y = np.empty((K, T))
    for t in range(T):
        if t > 0:
            x = x + np.sqrt(Q) * rng.standard_normal(K)
        y[:, t] = x + np.sqrt(R) * rng.standard_normal(K)
    return y


def run(y: np.ndarray, q: float = Q, scheme: int = pf.RESAMPLE_SYSTEMATIC) -> dict[str, np.ndarray]:
    cfg = Config(p=P, q=q, r=R, init_mean=M0, init_sd=S0, resampling=scheme)
    rows = Rows(cfg, K, seed=31)
    slots = np.tile(np.arange(K), T)
    ts = np.repeat(np.arange(T, dtype=float), K)
    rows.update(slots, ts, y.T.ravel())
    return rows.summarize()


def steady_gain() -> float:
    v = (-Q + np.sqrt(Q * Q + 4 * Q * R)) / 2.0
    return float(v / R)


def check(out: dict[str, np.ndarray], m: np.ndarray, v: np.ndarray) -> None:
    c = 2.0 / (1.0 - (1.0 - steady_gain()) ** 2)
    ess = out["ess"]
    z = (out["latent_mean"] - m) / np.sqrt(v / ess)
    assert np.mean(z**2) < c * (1.0 + 4.0 * np.sqrt(2.0 / K)), np.mean(z**2)
    assert abs(np.mean(z)) < 4.0 * np.sqrt(c / K), np.mean(z)
    rel = out["latent_sd"] ** 2 / v - 1.0
    bound = np.sqrt(2.0 * c / ess.mean())
    assert abs(np.mean(rel)) < 4.0 * bound / np.sqrt(K), np.mean(rel)
    assert np.sqrt(np.mean(rel**2)) < bound * (1.0 + 4.0 / np.sqrt(2 * K)), rel.std()


def test_matches_the_kalman_filter() -> None:
    y = simulate(np.random.default_rng(7))
    m, v = kalman(y)
    for scheme in (pf.RESAMPLE_SYSTEMATIC, pf.RESAMPLE_STRATIFIED, pf.RESAMPLE_RESIDUAL):
        check(run(y, scheme=scheme), m, v)


def test_the_bounds_reject_a_wrong_filter() -> None:
    y = simulate(np.random.default_rng(8))
    m, v = kalman(y)
    out = run(y, q=4 * Q)  # wrong state noise
    c = 2.0 / (1.0 - (1.0 - steady_gain()) ** 2)
    z = (out["latent_mean"] - m) / np.sqrt(v / out["ess"])
    rel = out["latent_sd"] ** 2 / v - 1.0
    assert np.mean(z**2) > 3 * c or abs(np.mean(rel)) > 10 * np.sqrt(2 * c / out["ess"].mean())
