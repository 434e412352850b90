"""The particle family through the engine: records, changelog rows, restore, validation."""

from __future__ import annotations

import json

import numpy as np

from bayestream import Reason
from bayestream.state import decode_row, encode_row
from tests.conftest import batch, event, make_engine

RULES = [
    {
        "metric": "lvl",
        "family": "particle",
        "model": "local_level",
        "particles": 128,
        "observation": "student_t",
        "nu": 3.0,
        "process_noise": 0.01,
        "observation_noise": 1.0,
        "initial": {"mean": 0.0, "sd": 10.0},
        "anomaly_threshold": 0.001,
        "seed": 7,
    },
    {
        "metric": "rate",
        "family": "particle",
        "model": "poisson_rate",
        "particles": 64,
        "process_noise": 0.001,
        "per": "event",
        "initial": {"mean": 0.0, "sd": 2.0},
    },
    {
        "metric": "fail",
        "family": "particle",
        "model": "binomial_rate",
        "particles": 64,
        "process_noise": 0.001,
        "initial": {"mean": -2.0, "sd": 1.0},
        "resampling": "residual",
    },
]


def _messages(seed: int = 0, start: float = 1000.0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(150):
        t = start + i
        out.append(event("a", "lvl", t, float(5 + rng.normal())))
        out.append(event("b", "rate", t, int(rng.poisson(4)), exposure=1.0))
        out.append(event("c", "fail", t, int(rng.binomial(50, 0.1)), trials=50))
    return out


def test_records_follow_the_contract() -> None:
    engine = make_engine(RULES)
    out = engine.process(batch(_messages()))
    assert out.applied == 450 and not out.dead_letters
    records = {r["metric"]: r for r in map(json.loads, out.posteriors.json_lines().splitlines())}
    assert {r["family"] for r in records.values()} == {"particle"}
    lvl, rate, fail = records["lvl"], records["rate"], records["fail"]
    assert set(lvl["params"]) == {"latent_mean", "latent_sd"} and 0 < lvl["ess"] <= 128
    assert abs(lvl["mean"] - 5.0) < 0.5  # the latent level, on its own scale
    assert abs(rate["mean"] - 4.0) < 1.0  # the rate on its natural scale (exp of the latent)
    assert abs(rate["params"]["latent_mean"] - np.log(rate["mean"])) < 0.3
    assert 0.05 < fail["mean"] < 0.2  # a probability (sigmoid of the latent)
    assert records == {r.metric: r.to_dict() for r in out.posteriors}  # both writers agree


def test_restore_mid_stream_continues_bit_identically() -> None:
    straight = make_engine(RULES)
    straight.process(batch(_messages()))
    rows = [decode_row(encode_row(r)) for r in straight.state_rows()]
    restored = make_engine(RULES)
    assert restored.restore(rows) == 3
    later = _messages(seed=1, start=2000.0)
    a, b = straight.process(batch(later)), restored.process(batch(later))
    assert list(straight.state_rows()) == list(restored.state_rows())
    assert a.posteriors == b.posteriors and a.anomalies == b.anomalies


def test_streams_get_their_own_random_numbers_and_the_seed_matters() -> None:
    msgs = [event(k, "lvl", 1000.0, 1.0) for k in ("x", "y")]
    one, same, other = (
        make_engine(RULES),
        make_engine(RULES),
        make_engine([{**RULES[0], "seed": 8}, *RULES[1:]]),
    )
    for engine in (one, same, other):
        engine.process(batch(msgs))
    rows = {e: {r.key: r.params[:128] for r in e.state_rows()} for e in (one, same, other)}
    assert np.array_equal(rows[one]["x"], rows[same]["x"])
    assert not np.array_equal(rows[one]["x"], rows[one]["y"])
    assert not np.array_equal(rows[one]["x"], rows[other]["x"])


def test_observations_are_validated_like_the_conjugate_families() -> None:
    engine = make_engine(RULES)
    out = engine.process(
        batch(
            [
                event("b", "rate", 1.0, 2.5, exposure=1.0),
                event("c", "fail", 1.0, 9, trials=5),
                event("a", "lvl", 1.0, "x"),
                event("b", "rate", 1.0, 3, exposure=0),
            ]
        )
    )
    assert [d.reason for d in out.dead_letters] == [
        Reason.NON_INTEGER_COUNT,
        Reason.SUCCESSES_EXCEED_TRIALS,
        Reason.INVALID_VALUE,
        Reason.INVALID_EXPOSURE,
    ]
