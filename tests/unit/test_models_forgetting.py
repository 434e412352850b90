"""Forgetting, lateness, expiry and n_eff: the ``_stream`` semantics inside every kernel.

Hand-worked cases use dt = h, so d = 1/2 exactly and results are exact in binary (asserted
to 1e-15). The randomised comparison against ``naive.NaiveStreams`` (exact rational
arithmetic, Normal-Gamma decay through natural parameters) allows 1e-11 relative: a few ulp
per operation, and forgetting keeps old rounding from accumulating.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bayestream.models import APPLIED, LATE, beta_binomial, dirichlet, gamma_poisson, normal_gamma
from tests import naive

MODULES = {
    "normal_gamma": normal_gamma,
    "beta_binomial": beta_binomial,
    "gamma_poisson": gamma_poisson,
    "dirichlet": dirichlet,
}
H = 60.0


def natural(p: np.ndarray) -> np.ndarray:
    mu, k, a, b = p
    return np.array([k, k * mu, a, b + 0.5 * k * mu * mu])


# (family, event 1 (x, size), event 2 (x, size), evidence of event 2 in the row's parameters)
LINEAR = [
    ("beta_binomial", (3.0, 5.0), (1.0, 4.0), np.array([1.0, 3.0])),
    ("gamma_poisson", (7.0, 2.0), (2.0, 0.5), np.array([2.0, 0.5])),
    ("dirichlet", (1.0, 1.0), (3.0, 1.0), np.array([0.0, 0.0, 0.0, 1.0])),
]


@pytest.mark.parametrize(("family", "e1", "e2", "evidence2"), LINEAR)
def test_one_half_life_halves_the_evidence(family, e1, e2, evidence2) -> None:
    prior = naive.PRIORS[family]
    module = MODULES[family]
    rows = naive.Rows(prior, 1)
    naive.apply(module, rows, [0], [100.0], [e1[0]], [e1[1]], half_life=H)
    post1 = rows.params[0].copy()
    tail, status = naive.apply(
        module, rows, [0], [100.0 + H], [e2[0]], [e2[1]], half_life=H, side=naive.TWO_SIDED
    )
    decayed = prior + 0.5 * (post1 - prior)
    np.testing.assert_allclose(rows.params[0], decayed + evidence2, rtol=1e-15)
    assert status[0] == APPLIED and rows.n_eff[0] == 1.5 and rows.last_ts[0] == 100.0 + H
    # the tail of event 2 is computed under the decayed posterior, before event 2
    fresh = naive.Rows(decayed, 1)
    expected, _ = naive.apply(module, fresh, [0], [0.0], [e2[0]], [e2[1]], side=naive.TWO_SIDED)
    assert tail[0] == pytest.approx(expected[0], rel=1e-13)


def test_normal_gamma_forgets_linearly_in_natural_parameters() -> None:
    prior = naive.PRIORS["normal_gamma"]
    rows = naive.Rows(prior, 1)
    naive.apply(normal_gamma, rows, [0, 0, 0], [0.0, 1.0, 2.0], [4.0, -1.0, 2.5])
    post1 = rows.params[0].copy()
    x2 = 7.25
    tail, _ = naive.apply(normal_gamma, rows, [0], [2.0 + H], [x2], half_life=H)
    decayed = natural(prior) + 0.5 * (natural(post1) - natural(prior))
    # one observation adds (1, x, 1/2, x^2/2) to the natural parameters
    np.testing.assert_allclose(
        natural(rows.params[0]), decayed + np.array([1.0, x2, 0.5, 0.5 * x2 * x2]), rtol=1e-14
    )
    k, k_mu, a, b_plus = decayed
    before = np.array([k_mu / k, k, a, b_plus - 0.5 * k_mu * k_mu / k])
    assert tail[0] == pytest.approx(naive.ng_tail(before, x2, naive.UPPER), rel=1e-12)


@pytest.mark.parametrize("family", list(MODULES))
def test_half_life_in_events(family: str) -> None:
    rng = np.random.default_rng(4)
    x, size = naive.draw_events(family, rng, 6)
    ts = np.array([5.0, 5.0, 1e9, 3.0, 7.0, 7.0])  # time plays no part
    rows = naive.Rows(naive.PRIORS[family], 1)
    naive.apply(MODULES[family], rows, np.zeros(6), ts, x, size, half_life=2.0, per_event=True)
    ref = naive.NaiveStreams(family, naive.PRIORS[family], half_life=2.0, per_event=True)
    for i in range(6):
        ref.event(0, ts[i], x[i], size[i])
    np.testing.assert_allclose(rows.params[0], ref.params(0), rtol=1e-13)
    d = 2.0**-0.5
    assert rows.n_eff[0] == pytest.approx(sum(d**j for j in range(6)), rel=1e-15)


@pytest.mark.parametrize("family", list(MODULES))
def test_a_long_silence_relaxes_to_the_prior(family: str) -> None:
    prior = naive.PRIORS[family]
    x, size = naive.draw_events(family, np.random.default_rng(8), 30)
    rows = naive.Rows(prior, 1)
    naive.apply(MODULES[family], rows, np.zeros(30), np.arange(30.0), x, size, half_life=H)
    tail, _ = naive.apply(
        MODULES[family], rows, [0], [29.0 + 2000 * H], [x[0]], [size[0]], half_life=H
    )
    fresh = naive.Rows(prior, 1)
    tail_fresh, _ = naive.apply(MODULES[family], fresh, [0], [0.0], [x[0]], [size[0]])
    assert tail[0] == tail_fresh[0]  # predictive = prior predictive (d = 2^-2000 = 0)
    np.testing.assert_array_equal(rows.params, fresh.params)
    assert rows.n_eff[0] == 1.0


def test_out_of_order_within_lateness_applies_without_decay() -> None:
    prior = naive.PRIORS["gamma_poisson"]
    rows = naive.Rows(prior, 1)
    kw = {"half_life": H, "max_lateness": 30.0}
    naive.apply(gamma_poisson, rows, [0], [1000.0], [4.0], [1.0], **kw)
    _, status = naive.apply(gamma_poisson, rows, [0], [975.0], [2.0], [1.0], **kw)
    assert status[0] == APPLIED
    np.testing.assert_array_equal(rows.params[0], prior + np.array([6.0, 2.0]))  # dt clipped to 0
    assert rows.last_ts[0] == 1000.0 and rows.n_eff[0] == 2.0
    naive.apply(gamma_poisson, rows, [0], [1000.0 + H], [1.0], [1.0], **kw)  # dt from 1000
    np.testing.assert_allclose(rows.params[0], prior + np.array([3.0 + 1.0, 1.0 + 1.0]), rtol=1e-15)


@pytest.mark.parametrize("family", list(MODULES))
def test_too_late_is_marked_and_changes_nothing(family: str) -> None:
    rng = np.random.default_rng(12)
    x, size = naive.draw_events(family, rng, 3)
    rows = naive.Rows(naive.PRIORS[family], 2)
    naive.apply(MODULES[family], rows, [0, 1], [500.0, 500.0], x[:2], size[:2], half_life=H)
    before = [a.copy() for a in (rows.params, rows.last_ts, rows.n_eff, rows.obs_size)]
    tail, status = naive.apply(
        MODULES[family], rows, [0], [469.0], x[2:], size[2:], half_life=H, max_lateness=30.0
    )
    assert status[0] == LATE and LATE != APPLIED and math.isnan(tail[0])
    for got, want in zip(
        (rows.params, rows.last_ts, rows.n_eff, rows.obs_size), before, strict=True
    ):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("family", list(MODULES))
def test_expired_row_restarts_from_the_prior(family: str) -> None:
    prior = naive.PRIORS[family]
    x, size = naive.draw_events(family, np.random.default_rng(13), 5)
    rows = naive.Rows(prior, 2)
    naive.apply(MODULES[family], rows, [0, 0, 1, 1], [1.0, 2.0, 1.0, 2.0], x[:4], size[:4])
    tail, _ = naive.apply(
        MODULES[family],
        rows,
        [0, 1],
        [100.0, 100.0],
        [x[4]] * 2,
        [size[4]] * 2,
        expire_before=[50.0, 1.0],
    )
    fresh = naive.Rows(prior, 1)
    tail_fresh, _ = naive.apply(MODULES[family], fresh, [0], [0.0], [x[4]], [size[4]])
    assert tail[0] == tail_fresh[0]
    np.testing.assert_array_equal(rows.params[0], fresh.params[0])
    assert rows.n_eff[0] == 1.0 and rows.last_ts[0] == 100.0
    # row 1's newest event (t = 2) is not older than expire_before = 1: kept
    assert rows.n_eff[1] == 3.0 and not np.array_equal(rows.params[1], fresh.params[0])


@pytest.mark.parametrize("family", list(MODULES))
def test_random_streams_match_the_naive_semantics(family: str) -> None:
    rng = np.random.default_rng(2024)
    n_rows, m = 5, 400
    prior = naive.PRIORS[family]
    x, size = naive.draw_events(family, rng, m)
    slots = rng.integers(0, n_rows, m)
    ts = np.cumsum(rng.exponential(20.0, m)) + rng.normal(0.0, 25.0, m)  # some out of order
    ts[rng.random(m) < 0.05] -= 200.0  # some too late
    expire = np.where(rng.random(m) < 0.03, ts - 60.0, -np.inf)  # some expiries
    kw = {"half_life": 90.0, "max_lateness": 40.0}
    rows = naive.Rows(prior, n_rows)
    tail, status = naive.apply(
        MODULES[family], rows, slots, ts, x, size, side=naive.TWO_SIDED, expire_before=expire, **kw
    )
    ref = naive.NaiveStreams(family, prior, **kw)
    n_late = 0
    for i in range(m):
        predictive = ref.event(int(slots[i]), ts[i], x[i], size[i], expire[i])
        if predictive is None:
            n_late += 1
            assert status[i] == LATE and math.isnan(tail[i])
            continue
        assert status[i] == APPLIED
        want = naive.oracle_tail(family, predictive, x[i], size[i], naive.TWO_SIDED)
        assert tail[i] == pytest.approx(want, rel=1e-9)
    assert 5 < n_late < m // 5
    for r in range(n_rows):
        np.testing.assert_allclose(rows.params[r], ref.params(r), rtol=1e-11, atol=1e-12)
        assert rows.n_eff[r] == pytest.approx(ref.n_eff(r), rel=1e-12)
