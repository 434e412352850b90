"""An anomaly record's predictive interval: the central interval, at the rule's widest credible
level, of the predictive the event was scored against (before its update), equal to
scipy.stats' on the closed-form posterior of the events before it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import optimize, stats

from bayestream.models import beta_binomial, gamma_poisson, normal_gamma
from bayestream.models._protocol import OUT_PRED_HI, OUT_PRED_LO, OUT_TAIL
from bayestream.schema.records import ENCODER
from tests.conftest import batch, event, make_engine

RNG_SEED = 20261204
N = 200


def _anomaly_of_last(rules: list[dict], messages: list[bytes]) -> dict:  # type: ignore[type-arg]
    """The JSON anomaly record of the last message (which must be one)."""
    engine = make_engine(rules)
    out = engine.process(batch(messages))
    assert out.applied == len(messages)
    last = [a for a in out.anomalies if a.ts == json.loads(messages[-1])["ts"]]
    assert len(last) == 1, "the last event is an anomaly"
    return json.loads(ENCODER.encode(last[0]))  # type: ignore[no-any-return]


def _counts(values: np.ndarray, field: str, sizes: np.ndarray) -> list[bytes]:
    """One stream's count events, a second apart, each with its trials or exposure."""
    return [
        event("k", "m", 1000.0 + i, int(v), **{field: size.item()})
        for i, (v, size) in enumerate(zip(values, sizes, strict=True))
    ]


def test_normal_gamma_interval_is_the_student_t_predictive_before_the_update() -> None:
    rng = np.random.default_rng(RNG_SEED)
    x = rng.normal(10.0, 2.0, N)
    prior = {"mu": 0.0, "kappa": 1.0, "alpha": 2.0, "beta": 2.0}
    rule = {"metric": "m", "family": "normal_gamma", "prior": prior, "credible_levels": [0.5, 0.9]}
    messages = [event("k", "m", 1000.0 + i, float(v)) for i, v in enumerate(x)]
    messages.append(event("k", "m", 1000.0 + N, 60.0))
    record = _anomaly_of_last([rule], messages)
    mu, kappa, alpha, beta = normal_gamma.posterior(np.array(list(prior.values())), x)
    scale = np.sqrt(beta * (kappa + 1.0) / (alpha * kappa))
    expected = stats.t.interval(0.9, 2.0 * alpha, loc=mu, scale=scale)  # the widest level
    assert list(record["predictive_interval"]) == ["0.9"]
    np.testing.assert_allclose(record["predictive_interval"]["0.9"], expected, rtol=1e-10)


def test_log_transform_interval_is_back_transformed() -> None:
    rng = np.random.default_rng(RNG_SEED + 1)
    x = rng.lognormal(3.0, 0.3, N)
    rule = {"metric": "m", "family": "normal_gamma", "transform": "log"}
    messages = [event("k", "m", 1000.0 + i, float(v)) for i, v in enumerate(x)]
    messages.append(event("k", "m", 1000.0 + N, 2000.0))
    record = _anomaly_of_last([rule], messages)
    mu, kappa, alpha, beta = normal_gamma.posterior(np.array([0.0, 1.0, 1.0, 1.0]), np.log(x))
    scale = np.sqrt(beta * (kappa + 1.0) / (alpha * kappa))
    expected = np.exp(stats.t.interval(0.95, 2.0 * alpha, loc=mu, scale=scale))
    np.testing.assert_allclose(record["predictive_interval"]["0.95"], expected, rtol=1e-10)


def test_beta_binomial_interval_is_the_beta_binomial_predictive_quantiles() -> None:
    rng = np.random.default_rng(RNG_SEED + 2)
    trials = rng.integers(20, 60, N)
    successes = rng.binomial(trials, 0.1)
    rule = {"metric": "m", "family": "beta_binomial", "prior": {"alpha": 1.0, "beta": 9.0}}
    messages = _counts(successes, "trials", trials)
    messages.append(event("k", "m", 1000.0 + N, 30, trials=40))
    record = _anomaly_of_last([rule], messages)
    a, b = beta_binomial.posterior(np.array([1.0, 9.0]), successes, trials)
    expected = [stats.betabinom.ppf(q, 40, a, b) for q in (0.025, 0.975)]
    assert record["predictive_interval"] == {"0.95": expected}


def test_gamma_poisson_interval_is_the_negative_binomial_predictive_quantiles() -> None:
    rng = np.random.default_rng(RNG_SEED + 3)
    exposure = rng.uniform(0.5, 2.0, N)
    counts = rng.poisson(5.0 * exposure)
    rule = {"metric": "m", "family": "gamma_poisson", "prior": {"alpha": 2.0, "beta": 1.0}}
    messages = _counts(counts, "exposure", exposure)
    messages.append(event("k", "m", 1000.0 + N, 40, exposure=1.5))
    record = _anomaly_of_last([rule], messages)
    a, b = gamma_poisson.posterior(np.array([2.0, 1.0]), counts, exposure)
    expected = [stats.nbinom.ppf(q, a, b / (b + 1.5)) for q in (0.025, 0.975)]
    assert record["predictive_interval"] == {"0.95": expected}


@pytest.mark.parametrize(
    "selection", [{}, {"anomaly_probability_threshold": 0.5}, {"fdr": 0.05}], ids=str
)
def test_every_anomaly_has_an_interval_and_ordinary_events_skip_it(selection: dict) -> None:  # type: ignore[type-arg]
    rng = np.random.default_rng(RNG_SEED + 4)
    x = rng.normal(0.0, 1.0, 2000)
    x[rng.choice(2000, 40, replace=False)] = 25.0  # poisoned values
    rule = {"metric": "m", "family": "normal_gamma", "robust": True, **selection}
    engine = make_engine([rule])
    out = engine.process(batch([event("k", "m", 1000.0 + i, float(v)) for i, v in enumerate(x)]))
    assert len(out.anomalies) >= 30
    for record in out.anomalies:
        assert record.predictive_interval is not None
        lo, hi = record.predictive_interval["0.95"]
        assert lo is not None and hi is not None and lo < hi
    # the cost is paid only past the selection's cut-off: never at an ordinary tail probability
    computed = ~np.isnan(out.scores[:, OUT_PRED_LO])
    assert computed.sum() >= len(out.anomalies)
    assert not computed[out.scores[:, OUT_TAIL] > 0.1].any()
    assert np.array_equal(computed, ~np.isnan(out.scores[:, OUT_PRED_HI]))


def test_category_anomalies_have_no_interval() -> None:
    rule = {
        "metric": "m",
        "family": "dirichlet",
        "prior": {"categories": ["a", "b"], "alpha": 1.0},
    }
    messages = [event("k", "m", 1000.0 + i, "a") for i in range(500)]
    messages.append(event("k", "m", 1500.0, "b"))
    record = _anomaly_of_last([rule], messages)
    assert "predictive_interval" not in record


def test_particle_interval_is_the_mixture_predictive_before_the_update() -> None:
    """The last event comes at the same event time as the one before it, so the particles do
    not move (dt = 0): the interval is the normal mixture of the state before it, solved here
    with scipy's root finder."""
    p = 128
    rule = {
        "metric": "m",
        "family": "particle",
        "model": "local_level",
        "particles": p,
        "process_noise": 0.01,
        "observation_noise": 1.0,
        "initial": {"mean": 0.0, "sd": 10.0},
    }
    rng = np.random.default_rng(RNG_SEED + 5)
    x = rng.normal(5.0, 1.0, N)
    engine = make_engine([rule])
    engine.process(batch([event("k", "m", 1000.0 + i, float(v)) for i, v in enumerate(x)]))
    state = next(engine.state_rows())
    particles, log_w = state.params[:p], state.params[p : 2 * p]
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    out = engine.process(batch([event("k", "m", 1000.0 + N - 1, 40.0)]))
    assert len(out.anomalies) == 1
    interval = out.anomalies[0].predictive_interval
    assert interval is not None

    def cdf(v: float) -> float:
        return float(np.sum(w * stats.norm.cdf(v, loc=particles, scale=1.0)))

    expected = [
        optimize.brentq(lambda v, u=u: cdf(v) - u, -100.0, 100.0, xtol=1e-13)
        for u in (0.025, 0.975)
    ]
    np.testing.assert_allclose(interval["0.95"], expected, rtol=1e-9, atol=1e-9)
