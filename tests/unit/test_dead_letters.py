"""Every dead-letter reason, table-driven: a bad event never raises and never touches state."""

from __future__ import annotations

import numpy as np
import pytest

from bayestream import Reason
from bayestream.state import decode_row, encode_row
from tests.conftest import batch, event, make_engine

GOOD = [
    event("k", "lat", 10_000.0, 1.0),
    event("k", "err", 10_000.0, 1, trials=10),
    event("k", "req", 10_000.0, 3, exposure=2.0),
    event("k", "status", 10_000.0, "ok"),
    event("k", "loglat", 10_000.0, 5.0),
]

CASES: list[tuple[bytes, Reason]] = [
    (b"not json", Reason.INVALID_JSON),
    (b"", Reason.INVALID_JSON),
    (b"[1, 2]", Reason.INVALID_JSON),
    (b'{"key": "k", "metric": "lat", "ts": 1, "value": 1', Reason.INVALID_JSON),
    (b'{"key": "k\xff", "metric": "lat", "ts": 101, "value": 1}', Reason.INVALID_JSON),
    (b'{"key": "k", "metric": "lat", "ts": 101, "value": NaN}', Reason.INVALID_JSON),
    (b'{"metric": "lat", "ts": 101, "value": 1}', Reason.INVALID_KEY),
    (b'{"key": 7, "metric": "lat", "ts": 101, "value": 1}', Reason.INVALID_KEY),
    (b'{"key": "", "metric": "lat", "ts": 101, "value": 1}', Reason.INVALID_KEY),
    (event("k" * 65_536, "lat", 101, 1.0), Reason.INVALID_KEY),  # > 65535 UTF-8 bytes
    (event("\U0001f600" * 16_384, "lat", 101, 1.0), Reason.INVALID_KEY),  # 4 bytes a char
    (b'{"key": "k", "ts": 101, "value": 1}', Reason.INVALID_METRIC),
    (event("k", "l" * 65_536, 101, 1.0), Reason.INVALID_METRIC),
    (b'{"key": "k", "metric": ["lat"], "ts": 101, "value": 1}', Reason.INVALID_METRIC),
    (event("k", "cpu", 101, 1.0), Reason.UNKNOWN_METRIC),
    (b'{"key": "k", "metric": "lat", "value": 1}', Reason.INVALID_TS),
    (event("k", "lat", "yesterday", 1.0), Reason.INVALID_TS),
    (event("k", "lat", "2024-01-01T00:00:00", 1.0), Reason.INVALID_TS),  # no offset
    (event("k", "lat", "2024-02-30T00:00:00Z", 1.0), Reason.INVALID_TS),
    (event("k", "lat", -5.0, 1.0), Reason.INVALID_TS),
    (event("k", "lat", 1e300, 1.0), Reason.INVALID_TS),
    (b'{"key": "k", "metric": "lat", "ts": 1e400, "value": 1}', Reason.INVALID_TS),
    (event("k", "lat", True, 1.0), Reason.INVALID_TS),
    (b'{"key": "k", "metric": "lat", "ts": 101}', Reason.INVALID_VALUE),
    (event("k", "lat", 101, "1.0"), Reason.INVALID_VALUE),
    (event("k", "lat", 101, None), Reason.INVALID_VALUE),
    (event("k", "lat", 101, [1.0]), Reason.INVALID_VALUE),
    (b'{"key": "k", "metric": "lat", "ts": 101, "value": 1e999}', Reason.INVALID_VALUE),
    (event("k", "status", 101, 1), Reason.INVALID_VALUE),
    (event("k", "err", 101, 1), Reason.INVALID_TRIALS),
    (event("k", "err", 101, 1, trials="10"), Reason.INVALID_TRIALS),
    (event("k", "err", 101, 0, trials=0), Reason.INVALID_TRIALS),
    (event("k", "err", 101, 5, trials=10**9), Reason.INVALID_TRIALS),  # > max_trials
    (event("k", "err", 101, -1, trials=10), Reason.NEGATIVE_COUNT),
    (event("k", "err", 101, 1, trials=-10), Reason.NEGATIVE_COUNT),
    (event("k", "req", 101, -2), Reason.NEGATIVE_COUNT),
    (event("k", "err", 101, 1.5, trials=10), Reason.NON_INTEGER_COUNT),
    (event("k", "err", 101, 1, trials=10.5), Reason.NON_INTEGER_COUNT),
    (event("k", "req", 101, 2.5), Reason.NON_INTEGER_COUNT),
    (event("k", "err", 101, 11, trials=10), Reason.SUCCESSES_EXCEED_TRIALS),
    (event("k", "req", 101, 2, exposure=0), Reason.INVALID_EXPOSURE),
    (event("k", "req", 101, 2, exposure=-1.0), Reason.INVALID_EXPOSURE),
    (event("k", "req", 101, 2, exposure="1"), Reason.INVALID_EXPOSURE),
    (event("k", "loglat", 101, 0.0), Reason.NON_POSITIVE_VALUE),
    (event("k", "loglat", 101, -3.0), Reason.NON_POSITIVE_VALUE),
    (event("k", "status", 101, "boom"), Reason.UNKNOWN_CATEGORY),
    (event("k", "lat", 10_000.0 - 3601.0, 1.0), Reason.LATE_EVENT),
]


def test_every_reason_has_a_case() -> None:
    assert {reason for _, reason in CASES} == set(Reason) - {Reason.STREAM_LIMIT}


@pytest.mark.parametrize(
    ("raw", "reason"), CASES, ids=[f"{r.value}-{i}" for i, (_, r) in enumerate(CASES)]
)
def test_bad_event_is_dead_lettered_and_touches_nothing(raw: bytes, reason: Reason) -> None:
    engine = make_engine()
    engine.process(batch(GOOD))
    before = [row for row in engine.state_rows()]
    out = engine.process(batch([raw]))
    assert [(d.index, d.reason) for d in out.dead_letters] == [(0, reason)]
    assert out.dead_letters[0].detail
    assert out.applied == 0 and not out.posteriors and not out.anomalies
    assert list(engine.state_rows()) == before


def test_bad_events_between_good_ones_do_not_change_good_results() -> None:
    mixed = [
        m for pair in zip(GOOD, [raw for raw, _ in CASES[: len(GOOD)]], strict=True) for m in pair
    ]
    clean, dirty = make_engine(), make_engine()
    clean.process(batch(GOOD))
    out = dirty.process(batch(mixed))
    assert len(out.dead_letters) == len(GOOD) and out.applied == len(GOOD)
    assert list(clean.state_rows()) == list(dirty.state_rows())


def test_longest_key_is_applied_and_its_state_row_round_trips() -> None:
    key = "\u00e9" * (65_535 // 2) + "k"  # 65535 UTF-8 bytes: the most a state row holds
    engine = make_engine()
    out = engine.process(batch([event(key, "lat", 101, 1.0)]))
    assert out.applied == 1 and not out.dead_letters
    (row,) = engine.state_rows()
    restored = make_engine()
    restored.restore([decode_row(encode_row(row))])
    assert list(restored.state_rows()) == [row]


def test_stream_limit() -> None:
    engine = make_engine(max_streams=2)
    out = engine.process(
        batch(
            [
                event("a", "lat", 1, 1.0),
                event("b", "lat", 1, 1.0),
                event("c", "lat", 1, 1.0),
                event("a", "lat", 2, 1.0),
            ]
        )
    )
    assert [(d.index, d.reason) for d in out.dead_letters] == [(2, Reason.STREAM_LIMIT)]
    assert len(engine) == 2


def test_stream_limit_per_rule() -> None:
    rules = [
        {"metric": "lat", "family": "normal_gamma", "max_streams": 1},
        {"metric": "req", "family": "gamma_poisson"},
    ]
    engine = make_engine(rules)
    out = engine.process(
        batch([event("a", "lat", 1, 1.0), event("b", "lat", 1, 1.0), event("b", "req", 1, 1)])
    )
    assert [(d.index, d.reason) for d in out.dead_letters] == [(1, Reason.STREAM_LIMIT)]


def test_every_input_ends_in_exactly_one_place() -> None:
    engine = make_engine()
    messages = GOOD + [raw for raw, _ in CASES]
    out = engine.process(batch(messages))
    dead = {d.index for d in out.dead_letters}
    assert len(dead) == len(out.dead_letters)
    assert out.applied + len(dead) == len(messages)
    assert np.isin(np.arange(len(GOOD)), sorted(dead)).sum() == 0


def test_fast_and_strict_paths_judge_alike() -> None:
    # the same events, once scanned (ASCII, simple) and once through the strict decoder
    # (a non-ASCII member elsewhere in the object forces it): same outcome, same state
    events = [
        b'{"key":"k","metric":"lat","ts":10000,"value":1.5,"trials":1e400}',
        b'{"key":"k","metric":"lat","ts":10001,"value":1e400}',
        b'{"key":"k","metric":"lat","ts":10002,"value":-0}',
        b'{"key":"k","metric":"req","ts":10003,"value":3,"exposure":2.5e-1}',
        b'{"key":"k","metric":"err","ts":10004,"value":1,"trials":12345678901234567890123}',
        b'{"key":"k","metric":"err","ts":10005,"value":1,"trials":999999}',
    ]
    strict = [e[:-1] + ',"note":"\xc3\xbc"}'.encode("latin-1") for e in events]
    fast_engine, strict_engine = make_engine(), make_engine()
    fast = fast_engine.process(batch(events))
    slow = strict_engine.process(batch(strict))
    assert [(d.index, d.reason) for d in fast.dead_letters] == [
        (d.index, d.reason) for d in slow.dead_letters
    ]
    assert [d.reason for d in fast.dead_letters] == [Reason.INVALID_VALUE, Reason.INVALID_TRIALS]
    assert list(fast_engine.state_rows()) == list(strict_engine.state_rows())


def test_deeply_nested_json_is_a_dead_letter_not_a_crash() -> None:
    engine = make_engine()
    nested = b'{"key":"k","metric":"lat","ts":1,"value":' + b"[" * 5000 + b"]" * 5000 + b"}"
    out = engine.process(batch([nested, b"[" * 100_000]))
    assert [d.reason for d in out.dead_letters] == [Reason.INVALID_JSON, Reason.INVALID_JSON]
