"""Closed-form ``kl(p, q)`` = KL(P || Q) against numerical integration of p log(p / q).

Tolerance: scipy.integrate reports an absolute error estimate ``err``; we require
|closed form - integral| <= 1e-9 + 10 err (the integrands are smooth and the limits cut off
< 1e-15 of the mass). For K = 3 Dirichlet the oracle is Monte Carlo: the mean of
log p(x) - log q(x) over N = 200,000 draws from P, accepted within 4 standard errors (a false
alarm rate of 6e-5 at a fixed seed); the test also checks the standard error is below 1% of the
KL, so an error of a few percent in the formula could not pass.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from bayestream.models import beta_binomial, dirichlet, gamma_poisson, normal_gamma

LOG_2PI = math.log(2.0 * math.pi)


def ng_logpdf(mu: float, tau: float, p: np.ndarray) -> float:
    m, k, a, b = p
    log_gamma = a * math.log(b) - math.lgamma(a) + (a - 1.0) * math.log(tau) - b * tau
    return log_gamma + 0.5 * (math.log(k * tau) - LOG_2PI) - 0.5 * k * tau * (mu - m) ** 2


def ng_kl_numeric(p: np.ndarray, q: np.ndarray) -> tuple[float, float]:
    m, k, a, b = p
    t_lo, t_hi = stats.gamma(a, scale=1.0 / b).ppf([1e-16, 1.0 - 1e-16])

    def integrand(mu: float, tau: float) -> float:
        lp = ng_logpdf(mu, tau, p)
        return math.exp(lp) * (lp - ng_logpdf(mu, tau, q))

    def half_width(tau: float) -> float:
        return 9.0 / math.sqrt(k * tau)

    return integrate.dblquad(
        integrand,
        t_lo,
        t_hi,
        lambda t: m - half_width(t),
        lambda t: m + half_width(t),
        epsabs=1e-11,
        epsrel=1e-10,
    )


NG_PAIRS = [
    ([0.0, 1.0, 2.0, 2.0], [0.5, 2.0, 3.0, 1.0]),
    ([1.0, 10.0, 6.0, 3.0], [0.0, 1.0, 2.0, 2.0]),
    ([-0.3, 0.5, 1.5, 0.7], [0.2, 0.4, 1.1, 1.3]),
]


@pytest.mark.parametrize(("p", "q"), NG_PAIRS)
def test_normal_gamma_kl_matches_double_integral(p: list[float], q: list[float]) -> None:
    p_, q_ = np.array(p), np.array(q)
    value, err = ng_kl_numeric(p_, q_)
    assert abs(normal_gamma.kl(p_, q_) - value) <= 1e-9 + 10 * err


def one_dim(logpdf_p, logpdf_q, lo: float, hi: float) -> tuple[float, float]:
    def integrand(x: float) -> float:
        lp = logpdf_p(x)
        return math.exp(lp) * (lp - logpdf_q(x))

    return integrate.quad(integrand, lo, hi, epsabs=1e-12, epsrel=1e-11, limit=200)


def beta_logpdf(a: float, b: float):
    return lambda x: (a - 1) * math.log(x) + (b - 1) * math.log1p(-x) - special.betaln(a, b)


def gamma_logpdf(a: float, b: float):
    return lambda x: a * math.log(b) - math.lgamma(a) + (a - 1) * math.log(x) - b * x


BETA_PAIRS = [((2.0, 3.0), (1.0, 1.0)), ((30.0, 7.0), (25.0, 9.0)), ((1.5, 0.8), (0.6, 2.0))]


@pytest.mark.parametrize(("p", "q"), BETA_PAIRS)
def test_beta_kl_matches_integral(p: tuple[float, float], q: tuple[float, float]) -> None:
    value, err = one_dim(beta_logpdf(*p), beta_logpdf(*q), 0.0, 1.0)
    assert abs(beta_binomial.kl(np.array(p), np.array(q)) - value) <= 1e-9 + 10 * err


GAMMA_PAIRS = [((2.0, 3.0), (1.0, 1.0)), ((50.0, 20.0), (40.0, 18.0)), ((0.7, 0.2), (1.5, 0.9))]


@pytest.mark.parametrize(("p", "q"), GAMMA_PAIRS)
def test_gamma_kl_matches_integral(p: tuple[float, float], q: tuple[float, float]) -> None:
    hi = stats.gamma(p[0], scale=1.0 / p[1]).isf(1e-17)
    value, err = one_dim(gamma_logpdf(*p), gamma_logpdf(*q), 0.0, hi)
    assert abs(gamma_poisson.kl(np.array(p), np.array(q)) - value) <= 1e-9 + 10 * err


@pytest.mark.parametrize(("p", "q"), BETA_PAIRS)
def test_dirichlet_with_two_categories_is_beta(
    p: tuple[float, float], q: tuple[float, float]
) -> None:
    got = dirichlet.kl(np.array(p), np.array(q))
    assert got == pytest.approx(beta_binomial.kl(np.array(p), np.array(q)), rel=1e-12)
    value, err = one_dim(beta_logpdf(*p), beta_logpdf(*q), 0.0, 1.0)
    assert abs(got - value) <= 1e-9 + 10 * err


def test_dirichlet_three_categories_matches_monte_carlo() -> None:
    rng = np.random.default_rng(424242)
    p = np.array([2.0, 5.0, 1.5])
    q = np.array([1.0, 1.0, 1.0])
    x = rng.dirichlet(p, 200_000)
    log_ratio = stats.dirichlet.logpdf(x.T, p) - stats.dirichlet.logpdf(x.T, q)
    estimate = log_ratio.mean()
    se = log_ratio.std(ddof=1) / math.sqrt(log_ratio.size)
    got = dirichlet.kl(p, q)
    assert se < 0.01 * got
    assert abs(got - estimate) < 4.0 * se


FAMILY_KL = [
    (
        normal_gamma.kl,
        lambda r: np.array(
            [r.normal(), r.uniform(0.1, 20), r.uniform(0.3, 30), r.uniform(0.1, 20)]
        ),
    ),
    (beta_binomial.kl, lambda r: r.uniform(0.1, 50, 2)),
    (gamma_poisson.kl, lambda r: r.uniform(0.1, 50, 2)),
    (dirichlet.kl, lambda r: r.uniform(0.1, 50, 5)),
]


@pytest.mark.parametrize(("kl", "draw"), FAMILY_KL)
def test_kl_is_zero_on_the_diagonal_and_positive_off_it(kl, draw) -> None:
    rng = np.random.default_rng(99)
    for _ in range(200):
        p, q = draw(rng), draw(rng)
        assert kl(p, p) == pytest.approx(0.0, abs=1e-12 * (1.0 + p.sum()))
        assert kl(p, q) > 0.0
        # small perturbations: KL ~ quadratic, still non-negative up to rounding
        near = p * (1.0 + 1e-6)
        assert kl(near, p) >= -1e-12
