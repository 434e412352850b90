"""Engine semantics: closed-form agreement end to end, time, TTL, caps, emit policy, restore."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from bayestream import Reason
from bayestream.models import beta_binomial, dirichlet, gamma_poisson, normal_gamma
from bayestream.state import decode_row, encode_row
from tests.conftest import BASE_RULES, batch, event, make_engine

RNG_SEED = 20261124


def _final(engine, key, metric):  # type: ignore[no-untyped-def]
    """The stream's state row, its params cut to the family's (no decision columns)."""
    row = next(r for r in engine.state_rows() if (r.key, r.metric) == (key, metric))
    width = len(engine.rules[engine.rule_index(metric)].prior_vector())
    return dataclasses.replace(row, params=row.params[:width])


def test_end_to_end_matches_closed_form_posteriors() -> None:
    rng = np.random.default_rng(RNG_SEED)
    n = 500
    lat = rng.normal(3.0, 2.0, n)
    loglat = rng.lognormal(1.0, 0.5, n)
    trials = rng.integers(1, 50, n)
    err = rng.binomial(trials, 0.2)
    exposure = rng.uniform(0.5, 3.0, n)
    req = rng.poisson(4.0 * exposure)
    status = rng.choice(3, n, p=[0.7, 0.2, 0.1])
    names = ["ok", "warn", "fail"]
    messages = []
    for i in range(n):
        t = 1_000.0 + i
        messages += [
            event("s", "lat", t, float(lat[i])),
            event("s", "loglat", t, float(loglat[i])),
            event("s", "err", t, int(err[i]), trials=int(trials[i])),
            event("s", "req", t, int(req[i]), exposure=float(exposure[i])),
            event("s", "status", t, names[status[i]]),
        ]
    engine = make_engine()
    out = engine.process(batch(messages))
    assert out.applied == len(messages) and not out.dead_letters
    np.testing.assert_allclose(
        _final(engine, "s", "lat").params,
        normal_gamma.posterior(np.array([0.0, 1.0, 2.0, 2.0]), lat),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        _final(engine, "s", "loglat").params,
        normal_gamma.posterior(np.array([0.0, 1.0, 1.0, 1.0]), np.log(loglat)),
        rtol=1e-10,
    )
    np.testing.assert_array_equal(
        _final(engine, "s", "err").params,
        beta_binomial.posterior(np.array([1.0, 9.0]), err, trials),
    )
    np.testing.assert_allclose(
        _final(engine, "s", "req").params,
        gamma_poisson.posterior(np.array([2.0, 1.0]), req, exposure),
        rtol=1e-12,
    )
    np.testing.assert_array_equal(
        _final(engine, "s", "status").params, dirichlet.posterior(np.array([1.0, 1.0, 0.5]), status)
    )


def test_published_summaries_agree_with_scipy() -> None:
    engine = make_engine()
    values = [1.0, 2.5, -0.5, 4.0]
    out = engine.process(batch([event("s", "lat", 10.0 + i, v) for i, v in enumerate(values)]))
    record = next(iter(out.posteriors)).to_dict()
    mu, kappa, alpha, beta = normal_gamma.posterior(
        np.array([0.0, 1.0, 2.0, 2.0]), np.array(values)
    )
    assert record["params"] == pytest.approx(
        {"mu": mu, "kappa": kappa, "alpha": alpha, "beta": beta}, rel=1e-12
    )
    marginal = stats.t(2 * alpha, loc=mu, scale=math.sqrt(beta / (alpha * kappa)))
    assert record["mean"] == pytest.approx(mu, rel=1e-12)
    assert record["sd"] == pytest.approx(marginal.std(), rel=1e-9)
    lo, hi = record["credible_intervals"]["0.95"]
    assert (lo, hi) == pytest.approx(marginal.interval(0.95), rel=1e-9)
    predictive = stats.t(2 * alpha, loc=mu, scale=math.sqrt(beta * (kappa + 1) / (alpha * kappa)))
    for q, v in record["predictive_quantiles"].items():
        assert v == pytest.approx(predictive.ppf(float(q)), rel=1e-9)
    assert record["n_eff"] == 4 and record["last_ts"] == 13.0


def test_log_transform_publishes_predictive_quantiles_on_the_original_scale() -> None:
    engine = make_engine()
    out = engine.process(
        batch([event("s", "loglat", 10.0 + i, v) for i, v in enumerate([5.0, 7.0, 6.0])])
    )
    (posterior,) = out.posteriors
    record = posterior.to_dict()
    mu, kappa, alpha, beta = normal_gamma.posterior(
        np.array([0.0, 1.0, 1.0, 1.0]), np.log([5.0, 7.0, 6.0])
    )
    predictive = stats.t(2 * alpha, loc=mu, scale=math.sqrt(beta * (kappa + 1) / (alpha * kappa)))
    assert record["predictive_quantiles"]["0.9"] == pytest.approx(
        math.exp(predictive.ppf(0.9)), rel=1e-9
    )
    assert record["mean"] == pytest.approx(mu)  # parameters stay on the model (log) scale


def test_rfc3339_and_epoch_seconds_are_the_same_time() -> None:
    a, b = make_engine(), make_engine()
    a.process(
        batch(
            [
                event("s", "lat", "2024-03-01T12:00:00.250Z", 1.0),
                event("s", "lat", "2024-03-01T14:00:01.5+02:00", 2.0),
            ]
        )
    )
    b.process(batch([event("s", "lat", 1709294400.25, 1.0), event("s", "lat", 1709294401.5, 2.0)]))
    assert list(a.state_rows()) == list(b.state_rows())


def test_out_of_order_within_lateness_applies_without_decay() -> None:
    rules = [{"metric": "req", "family": "gamma_poisson", "half_life_seconds": 10.0}]
    engine = make_engine(rules, max_lateness_seconds=60.0)
    engine.process(batch([event("s", "req", 100.0, 4), event("s", "req", 95.0, 2)]))
    row = _final(engine, "s", "req")
    np.testing.assert_allclose(row.params, [1.0 + 4 + 2, 1.0 + 2.0])
    assert row.last_ts == 100.0
    out = engine.process(batch([event("s", "req", 39.0, 1)]))
    assert [d.reason for d in out.dead_letters] == [Reason.LATE_EVENT]
    np.testing.assert_allclose(_final(engine, "s", "req").params, [7.0, 3.0])


def test_idle_streams_expire_restart_from_the_prior_and_are_evicted() -> None:
    rules = [{"metric": "req", "family": "gamma_poisson", "idle_ttl_seconds": 100.0}]
    engine = make_engine(rules)
    engine.process(batch([event("a", "req", 0.0, 5), event("b", "req", 0.0, 5)]))
    out = engine.process(batch([event("b", "req", 50.0, 1), event("b", "req", 150.0, 1)]))
    assert [(e.key, e.reason) for e in out.evictions] == [("a", "idle_ttl")]
    assert len(engine) == 1
    out = engine.process(batch([event("a", "req", 151.0, 2)]))
    np.testing.assert_allclose(_final(engine, "a", "req").params, [1.0 + 2, 1.0 + 1])


def test_expiry_does_not_depend_on_batching() -> None:
    rules = [{"metric": "req", "family": "gamma_poisson", "idle_ttl_seconds": 100.0}]
    messages = [event("a", "req", 0.0, 5), event("b", "req", 500.0, 1), event("a", "req", 60.0, 3)]
    whole, split = (
        make_engine(rules, max_lateness_seconds=1e9),
        make_engine(rules, max_lateness_seconds=1e9),
    )
    outs = [whole.process(batch(messages))] + [split.process(batch([m])) for m in messages]
    assert list(whole.state_rows()) == list(split.state_rows())
    # a's second event comes when the watermark (500) is past its TTL: it starts from the
    # prior, and a is evicted again at the end of the batch, in both runs.
    for published in (outs[0].posteriors, [p for o in outs[1:] for p in o.posteriors]):
        last_a = [p for p in published if p.key == "a"][-1]
        assert last_a.to_dict()["params"] == {"alpha": 1.0 + 3, "beta": 1.0 + 1}
    assert [e.key for e in outs[0].evictions] == ["a"]
    assert [e.key for o in outs[1:] for e in o.evictions] == ["a", "a"]


def test_emit_interval_policy_and_flush() -> None:
    rules = [
        {
            "metric": "lat",
            "family": "normal_gamma",
            "emit": "interval",
            "emit_interval_seconds": 60.0,
        }
    ]
    engine = make_engine(rules)
    first = engine.process(batch([event("s", "lat", 0.0, 1.0)]))
    second = engine.process(batch([event("s", "lat", 30.0, 1.0)]))
    third = engine.process(batch([event("s", "lat", 61.0, 1.0)]))
    fourth = engine.process(batch([event("s", "lat", 70.0, 1.0)]))
    assert [len(o.posteriors) for o in (first, second, third, fourth)] == [1, 0, 1, 0]
    final = engine.flush()
    assert [(p.key, p.last_ts, p.n_eff) for p in final.posteriors] == [("s", 70.0, 4.0)]
    assert engine.flush().posteriors == []


def test_every_batch_policy_emits_each_touched_stream_once_per_batch() -> None:
    engine = make_engine()
    out = engine.process(
        batch(
            [event("a", "lat", 1.0, 1.0), event("b", "lat", 1.0, 1.0), event("a", "lat", 2.0, 1.0)]
        )
    )
    assert [(p.key, p.n_eff) for p in out.posteriors] == [("a", 2.0), ("b", 1.0)]


def test_anomaly_records_carry_the_event_and_its_tail_probability() -> None:
    engine = make_engine()
    warm = [event("s", "lat", float(i), 0.1 * (i % 3)) for i in range(50)]
    out = engine.process(batch([*warm, event("s", "lat", 60.0, 25.0)]))
    (anomaly,) = out.anomalies
    assert (anomaly.key, anomaly.metric, anomaly.ts, anomaly.value) == ("s", "lat", 60.0, 25.0)
    assert anomaly.tail_probability < 1e-6 and anomaly.tail == "upper"


def test_state_rows_round_trip_and_restore_continues_identically() -> None:
    rng = np.random.default_rng(RNG_SEED)
    first = [event(f"k{i % 7}", "lat", float(i), float(rng.normal())) for i in range(200)]
    later = [event(f"k{i % 7}", "lat", float(200 + i), float(rng.normal())) for i in range(50)]
    straight = make_engine()
    straight.process(batch(first))
    rows = [decode_row(encode_row(r)) for r in straight.state_rows()]
    restored = make_engine()
    assert restored.restore(rows) == 7
    a = straight.process(batch(later))
    b = restored.process(batch(later))
    assert list(straight.state_rows()) == list(restored.state_rows())
    assert a.anomalies == b.anomalies and a.posteriors == b.posteriors


def test_restore_skips_rows_whose_rule_changed_family() -> None:
    engine = make_engine()
    engine.process(batch([event("s", "lat", 1.0, 1.0)]))
    rows = list(engine.state_rows())
    other = make_engine([{"metric": "lat", "family": "gamma_poisson"}, *BASE_RULES[1:]])
    assert other.restore(rows) == 0 and len(other) == 0


def test_changelog_rows_of_a_batch_restore_the_same_state() -> None:
    from bayestream.state import decode_row

    rules = [{"metric": "req", "family": "gamma_poisson", "idle_ttl_seconds": 100.0}]
    engine = make_engine(rules)
    changelog: dict[bytes, bytes | None] = {}
    for msgs in (
        [event("a", "req", 0.0, 5), event("b", "req", 1.0, 2)],
        [event("b", "req", 50.0, 1), event("c", "req", 150.0, 4)],
    ):
        out = engine.process(batch(msgs))
        changelog.update(engine.changelog(out))
    assert changelog[b'{"key":"a","metric":"req"}'] is None  # evicted: a tombstone
    restored = make_engine(rules)
    restored.restore(decode_row(v) for v in changelog.values() if v is not None)
    assert list(restored.state_rows()) == list(engine.state_rows())
