"""Forecasts over horizons (engine/forecasts.py) against closed forms in scipy, and the records
that carry them (JSON lines = Python records, the schema)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft202012Validator
from scipy import optimize, stats

from bayestream import Engine, RawBatch, parse_config
from bayestream.models._protocol import GAP_WEIGHT
from bayestream.schema.contract import json_schema

HORIZONS = [60.0, 300.0, 3600.0]
QS = [0.05, 0.5, 0.9, 0.99]


def _run(rule: dict[str, Any], events: list[dict[str, Any]]) -> tuple[Engine, dict[str, Any]]:
    engine = Engine(parse_config({"rule": [{"metric": "m", "robust": False, **rule}]}))
    msgs = [json.dumps({"key": "k", "metric": "m", **e}).encode() for e in events]
    out = engine.process(RawBatch.from_messages(msgs))
    line = out.posteriors.json_lines().decode().splitlines()[-1]
    record = json.loads(line)
    assert list(out.posteriors)[-1].to_dict() == record  # the JSON writer = the records
    Draft202012Validator(json_schema("posteriors")).validate(record)
    return engine, record


def _gap(ts: np.ndarray) -> float:
    """The stream's typical spacing as the engine keeps it (X_GAP)."""
    gap = math.nan
    for d in np.diff(ts):
        gap = d if math.isnan(gap) else gap + GAP_WEIGHT * (d - gap)
    return gap


def _forecast_rule(**rule: Any) -> dict[str, Any]:
    return {"forecast_horizons_seconds": HORIZONS, "forecast_quantiles": QS, **rule}


@pytest.mark.parametrize("transform", ["none", "log"])
def test_normal_gamma_forecasts_the_forgotten_predictive(transform: str) -> None:
    """The posterior forgotten over the horizon (d = 2^(-H/h) toward the prior), its
    Student-t predictive's quantiles (exp-ed with the log transform)."""
    rng = np.random.default_rng(4)
    values = np.exp(rng.normal(3.0, 0.4, 200))
    ts = 1_000.0 + np.cumsum(rng.uniform(5, 15, 200))
    prior = {"mu": 1.0, "kappa": 0.5, "alpha": 2.0, "beta": 1.5}
    rule = _forecast_rule(family="normal_gamma", half_life_seconds=900.0, prior=prior)
    events = [{"ts": t, "value": v} for t, v in zip(ts, values, strict=True)]
    engine, record = _run({**rule, "transform": transform}, events)
    mu, kappa, alpha, beta = next(engine.state_rows()).params[:4]
    mu0, kappa0, alpha0, beta0 = prior.values()
    for h in HORIZONS:
        d = 2.0 ** (-h / 900.0)
        w1, w0 = d * kappa, (1 - d) * kappa0
        k = w1 + w0
        m = (w1 * mu + w0 * mu0) / k
        a = d * alpha + (1 - d) * alpha0
        b = d * beta + (1 - d) * beta0 + 0.5 * w1 * w0 / k * (mu - mu0) ** 2
        t = stats.t(2 * a, m, math.sqrt(b * (k + 1) / (a * k)))
        expected = t.ppf(QS)
        if transform == "log":
            expected = np.exp(expected)
        got = record["forecast"][str(int(h))]
        assert got["at"] == ts[-1] + h
        np.testing.assert_allclose([got["quantiles"][str(q)] for q in QS], expected, rtol=1e-9)


def test_gamma_poisson_forecasts_the_total_count_over_the_horizon() -> None:
    """Counts per 10 s of exposure: over H seconds the total is Negative Binomial(a, b/(b+H))."""
    rng = np.random.default_rng(5)
    counts = rng.poisson(7.0, 300)
    events = [{"ts": 10.0 * i, "value": int(c), "exposure": 10.0} for i, c in enumerate(counts)]
    engine, record = _run(_forecast_rule(family="gamma_poisson"), events)
    a, b = next(engine.state_rows()).params[:2]
    for h in HORIZONS:
        expected = stats.nbinom(a, b / (b + h)).ppf(QS)
        got = record["forecast"][str(int(h))]["quantiles"]
        assert [got[str(q)] for q in QS] == expected.tolist()


def test_beta_binomial_forecasts_the_count_among_the_next_trials() -> None:
    """Errors out of requests: N = the newest event's trials over the typical spacing times
    the horizon; the count among them is Beta-Binomial(N, a, b)."""
    rng = np.random.default_rng(6)
    ts = np.cumsum(rng.uniform(8, 12, 300))
    trials = rng.integers(80, 120, 300)
    errors = rng.binomial(trials, 0.02)
    events = [{"ts": float(t), "value": int(e), "trials": int(n)}
              for t, e, n in zip(ts, errors, trials, strict=True)]  # fmt: skip
    engine, record = _run(_forecast_rule(family="beta_binomial"), events)
    a, b = next(engine.state_rows()).params[:2]
    gap = _gap(ts)
    for h in HORIZONS:
        n = round(trials[-1] / gap * h)
        expected = stats.betabinom(n, a, b).ppf(QS)
        got = record["forecast"][str(int(h))]["quantiles"]
        assert [got[str(q)] for q in QS] == expected.tolist()


def test_particle_local_level_forecasts_the_propagated_cloud() -> None:
    """Each particle moves by N(0, q H) over the horizon: the forecast is the mixture of
    N(x_j, r + q H) with the particles' weights (solved here with scipy's brentq)."""
    rng = np.random.default_rng(7)
    values = rng.normal(10.0, 1.0, 100)
    rule = _forecast_rule(
        family="particle",
        model="local_level",
        particles=256,
        process_noise=0.01,
        observation_noise=1.0,
        initial={"mean": 10.0, "sd": 3.0},
        forecast_horizons_seconds=[100.0],
    )
    engine, record = _run(rule, [{"ts": float(t), "value": v} for t, v in enumerate(values)])
    row = next(engine.state_rows()).params
    x, lw = row[:256], row[256:512]
    w = np.exp(lw - lw.max())
    w /= w.sum()
    sd = math.sqrt(1.0 + 0.01 * 100.0)

    def cdf(y: float) -> float:
        return float(np.sum(w * stats.norm.cdf(y, x, sd)))

    got = record["forecast"]["100"]["quantiles"]
    for q in QS:
        expected = optimize.brentq(
            lambda y, q=q: cdf(y) - q, x.min() - 20, x.max() + 20, xtol=1e-12
        )
        assert got[str(q)] == pytest.approx(expected, abs=1e-6)


def test_no_horizons_no_forecast_and_dirichlet_refuses_them() -> None:
    _, record = _run({"family": "normal_gamma"}, [{"ts": 1.0, "value": 2.0}])
    assert "forecast" not in record
    with pytest.raises(Exception, match="forecast_horizons_seconds"):
        rule = {"metric": "m", "family": "dirichlet", "prior": {"categories": ["a", "b"]}}
        parse_config({"rule": [{**rule, "forecast_horizons_seconds": [60]}]})


def test_a_stream_with_one_event_forecasts_from_what_it_has() -> None:
    """No spacing yet: Beta-Binomial over the newest event's trials; normal_gamma with
    half_life_events does not forget over the horizon."""
    _, record = _run(
        _forecast_rule(family="beta_binomial"), [{"ts": 5.0, "value": 1, "trials": 50}]
    )
    assert all(math.isfinite(v) for v in record["forecast"]["60"]["quantiles"].values())
    _, record = _run(_forecast_rule(family="normal_gamma", half_life_events=10.0),
                     [{"ts": 5.0, "value": 1.0}])  # fmt: skip
    assert record["forecast"]["60"]["quantiles"] == record["forecast"]["3600"]["quantiles"]


def test_dlm_forecasts_the_seasonal_cycle() -> None:
    """A dlm rule on a noisy daily sine sampled every 300 s: the forecast one spacing ahead is
    the record's predictive (the same evolution, exactly), and five spacings ahead its median
    follows the cycle (within 3 noise sd of the true value) and its 90% interval covers the
    true value plus the noise's spread."""
    rng = np.random.default_rng(8)
    period = 3000.0
    ts = np.arange(600) * 300.0
    truth = lambda t: 10.0 + 5.0 * np.sin(2 * np.pi * t / period)  # noqa: E731
    values = truth(ts) + rng.normal(0, 0.2, ts.size)
    rule = _forecast_rule(
        family="dlm",
        seasonal=[{"period_seconds": period, "harmonics": 2}],
        predictive_quantiles=QS,
        forecast_horizons_seconds=[300.0, 1500.0],
    )
    _, record = _run(rule, [{"ts": t, "value": v} for t, v in zip(ts, values, strict=True)])
    one = record["forecast"]["300"]["quantiles"]
    np.testing.assert_allclose(
        [one[str(q)] for q in QS], [record["predictive_quantiles"][str(q)] for q in QS], rtol=1e-12
    )
    five = record["forecast"]["1500"]
    assert five["at"] == ts[-1] + 1500.0
    assert abs(five["quantiles"]["0.5"] - truth(ts[-1] + 1500.0)) < 0.6
    assert five["quantiles"]["0.05"] < truth(ts[-1] + 1500.0) < five["quantiles"]["0.99"]
