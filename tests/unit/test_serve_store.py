"""The query service's store, listing, cursor and forecast lookup, against naive models."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayestream.serve import queries
from bayestream.serve.store import (
    InvalidRecord,
    PosteriorStore,
    StreamName,
    pack,
    parse_name,
)
from bayestream.state import stream_key


def record(key: str, metric: str, last_ts: float | None = 100.0, **extra: Any) -> bytes:
    return json.dumps({"key": key, "metric": metric, "last_ts": last_ts, **extra}).encode()


def put(store: PosteriorStore, key: str, metric: str, offset: int = 0, **extra: Any) -> None:
    store.put(StreamName(key, metric), pack(1, offset, record(key, metric, **extra)))


def test_latest_record_wins_and_tombstones_delete() -> None:
    store = PosteriorStore()
    put(store, "a", "lat", offset=3, mean=1.0)
    put(store, "a", "lat", offset=9, mean=2.0)
    put(store, "b", "lat", offset=4)
    assert len(store) == 2
    entry = store.get("a", "lat")
    assert entry is not None
    assert (entry.partition, entry.offset, entry.last_ts) == (1, 9, 100.0)
    assert json.loads(entry.record)["mean"] == 2.0
    assert store.delete(StreamName("a", "lat"))
    assert store.get("a", "lat") is None
    assert not store.delete(StreamName("a", "lat"))  # a tombstone of an unknown stream
    assert len(store) == 1
    assert store.page() == ([store.get("b", "lat")], None)


def test_keys_are_the_processors_message_keys() -> None:
    name = parse_name(stream_key('svc/a "x" é', "lat"))
    assert name == StreamName('svc/a "x" é', "lat")
    for bad in (None, b"", b"[1]", b'{"key": 1, "metric": "m"}', b'{"key": "k"}'):
        with pytest.raises(InvalidRecord):
            parse_name(bad)


def test_values_that_are_not_records_are_refused() -> None:
    for bad in (
        b"",
        b"not json",
        b"[]",
        b'{"key": "k"}',
        b'{"key":"k","metric":"m","last_ts":"x"}',
    ):
        with pytest.raises(InvalidRecord):
            pack(0, 0, bad)
    # null last_ts (a stream restarted from its prior) is a record
    store = PosteriorStore()
    store.put(StreamName("k", "m"), pack(0, 5, b' {"key":"k","metric":"m","last_ts":null}\n'))
    entry = store.get("k", "m")
    assert entry is not None and entry.last_ts is None
    assert entry.record == b'{"key":"k","metric":"m","last_ts":null}'


def test_stream_answer_is_the_record_plus_staleness_and_position() -> None:
    store = PosteriorStore()
    put(store, "a", "lat", offset=7, mean=1.5, last_ts=1000.0)
    entry = store.get("a", "lat")
    assert entry is not None
    body = json.loads(queries.stream(entry, now=1012.5))
    assert body == {
        "key": "a",
        "metric": "lat",
        "last_ts": 1000.0,
        "mean": 1.5,
        "staleness_seconds": 12.5,
        "kafka": {"partition": 1, "offset": 7},
    }


FORECAST = {
    "60": {"at": 1060.0, "quantiles": {"0.5": 10.0, "0.95": 20.0}},
    "300": {"at": 1300.0, "quantiles": {"0.5": 11.0, "0.95": 25.0, "0.99": 31.0}},
}


def _forecast(horizon: float, q: float, **extra: Any) -> tuple[int, dict[str, Any]]:
    store = PosteriorStore()
    put(store, "a", "lat", last_ts=1000.0, **extra)
    entry = store.get("a", "lat")
    assert entry is not None
    status, body = queries.forecast(entry, horizon, q, now=1010.0)
    return status, json.loads(body)


def test_forecast_lookup() -> None:
    assert _forecast(300, 0.95, forecast=FORECAST) == (
        200,
        {"value": 25.0, "at": 1300.0, "staleness_seconds": 10.0},
    )
    assert _forecast(60.0, 0.5, forecast=FORECAST)[1]["value"] == 10.0


def test_forecast_not_published_names_what_is() -> None:
    status, body = _forecast(600, 0.95, forecast=FORECAST)
    assert status == 400
    assert body == {
        "error": "horizon 600 not published",
        "horizons": [60, 300],
        "quantiles": [0.5, 0.95, 0.99],
    }
    status, body = _forecast(60, 0.99, forecast=FORECAST)
    assert status == 400
    assert body == {
        "error": "quantile 0.99 not published at horizon 60",
        "horizons": [60, 300],
        "quantiles": [0.5, 0.95],
    }
    for extra in ({}, {"forecast": None}, {"forecast": {}}, {"forecast": [1, 2]}):
        status, body = _forecast(300, 0.95, **extra)
        assert status == 400
        assert body["horizons"] == [] and body["quantiles"] == [], extra


@pytest.mark.parametrize(
    ("horizon", "q"),
    [
        *[(None, "0.5"), ("", "0.5"), ("-1", "0.5"), ("x", "0.5"), ("nan", "0.5"), ("0", "0.5")],
        *[("300", None), ("300", "1"), ("300", "0"), ("300", "inf"), ("300", "high")],
    ],
)
def test_forecast_parameters_are_checked(horizon: str | None, q: str | None) -> None:
    with pytest.raises(queries.BadRequest):  # exactly one of the two is bad
        queries.parse_quantile(q)
        queries.parse_horizon(horizon)


def test_limit_is_capped_and_checked() -> None:
    assert queries.parse_limit(None) == queries.DEFAULT_LIMIT
    assert queries.parse_limit("5") == 5
    assert queries.parse_limit("1000000") == queries.MAX_LIMIT
    for bad in ("0", "-3", "ten", "1.5"):
        with pytest.raises(queries.BadRequest):
            queries.parse_limit(bad)


def test_cursor_round_trip_and_garbage() -> None:
    name = ('svc/"a"é', "lat=1")
    cursor = queries.encode_cursor(name)
    assert cursor.isascii() and "=" not in cursor
    assert queries.decode_cursor(cursor) == name
    for bad in ("%%%", "AAAA", queries.encode_cursor(("a", "b"))[:-2] + "!!", "e30"):
        with pytest.raises(queries.BadRequest):
            queries.decode_cursor(bad)


def _pages(
    store: PosteriorStore, prefix: str, metric: str | None, limit: int
) -> list[tuple[str, str]]:
    """Every page through the JSON answers, following next_cursor."""
    out: list[tuple[str, str]] = []
    cursor = None
    for _ in range(10_000):
        body = json.loads(queries.listing(store, 0.0, prefix, metric, cursor, limit))
        assert len(body["streams"]) <= limit
        out += [(s["key"], s["metric"]) for s in body["streams"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("listing does not end")


TEXT = st.characters(exclude_categories=("Cs",))  # (no lone surrogates: not UTF-8)
KEYS = st.text(alphabet='ab/-é"', min_size=1, max_size=4)
METRICS = st.sampled_from(["lat", "err", "req", "lat2"])


@settings(max_examples=200, deadline=None)
@given(
    names=st.lists(st.tuples(KEYS, METRICS), max_size=40),
    deleted=st.lists(st.tuples(KEYS, METRICS), max_size=10),
    prefix=st.text(alphabet='ab/-é"', max_size=2),
    metric=st.none() | METRICS,
    limit=st.integers(1, 7),
)
def test_paging_lists_each_matching_stream_once_in_order(
    names: list[tuple[str, str]],
    deleted: list[tuple[str, str]],
    prefix: str,
    metric: str | None,
    limit: int,
) -> None:
    store = PosteriorStore()
    for i, (k, m) in enumerate(names):
        put(store, k, m, offset=i)
    for k, m in deleted:
        store.delete(StreamName(k, m))
    held = set(names) - set(deleted)
    assert len(store) == len(held)
    expected = sorted(
        (k, m) for k, m in held if k.startswith(prefix) and (metric is None or m == metric)
    )
    assert _pages(store, prefix, metric, limit) == expected


def test_paging_is_stable_while_streams_come_and_go() -> None:
    """A cursor is a position in (key, metric) order, not an index: streams added or removed
    between pages neither repeat nor hide the ones that stayed."""
    store = PosteriorStore()
    for i in range(0, 100, 2):
        put(store, f"k{i:03d}", "lat")
    entries, last = store.page(limit=10)
    assert last == ("k018", "lat")
    put(store, "k001", "lat")  # before the cursor: not seen by this walk
    store.delete(StreamName("k020", "lat"))  # the next one goes
    put(store, "k021", "lat")
    entries, last = store.page(after=last, limit=3)
    assert [e.key for e in entries] == ["k021", "k022", "k024"]


def test_records_are_kept_compressed_and_given_back_exactly() -> None:
    from bayestream.serve.store import DEFLATE, HEADER

    value = {
        "key": "svc-0000042",
        "metric": "latency_ms",
        "family": "normal_gamma",
        "params": {"mu": 4.312345678901234, "kappa": 162.9, "alpha": 83.4, "beta": 8.94},
        "mean": 4.312345678901234,
        "sd": 0.025812345678,
        "credible_intervals": {"0.9": [4.27, 4.36], "0.99": [4.25, 4.38]},
        "predictive_quantiles": {"0.5": 74.8, "0.9": 114.1, "0.95": 128.8, "0.99": 161.8},
        "n_eff": 162.8,
        "last_ts": 1700000172.591,
        "anomaly_probability": 0.00012,
        "drift_statistic": None,
        "drift_false_alarm_probability": None,
        "forecast": FORECAST,
        "note": "é\\u0000",
    }
    raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    data = pack(3, 12, raw)
    assert data[HEADER.size - 1] == DEFLATE
    assert len(data) < 0.6 * len(raw)
    store = PosteriorStore()
    store.put(StreamName("svc-0000042", "latency_ms"), data)
    entry = store.get("svc-0000042", "latency_ms")
    assert entry is not None and entry.record == raw


@settings(max_examples=200, deadline=None)
@given(
    key=st.text(TEXT, min_size=1, max_size=30),
    extra=st.dictionaries(
        st.text(TEXT, max_size=8),
        st.floats(allow_nan=False, allow_infinity=False) | st.text(TEXT, max_size=40),
        max_size=6,
    ),
)
def test_any_record_round_trips_and_is_never_kept_larger(
    key: str, extra: dict[str, float | str]
) -> None:
    from bayestream.serve.store import HEADER, RAW

    value = {**extra, "key": key, "metric": "m", "last_ts": 5.0}
    raw = json.dumps(value, ensure_ascii=False).encode()
    data = pack(0, 0, raw)
    assert len(data) <= HEADER.size + len(raw)
    assert (data[HEADER.size - 1] == RAW) == (data[HEADER.size :] == raw)
    store = PosteriorStore()
    store.put(StreamName(key, "m"), data)
    entry = store.get(key, "m")
    assert entry is not None and entry.record == raw and entry.last_ts == 5.0
