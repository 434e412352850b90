"""``bayestream generate``: the demo's services as a steady stream, stamped at send time."""

from __future__ import annotations

import itertools
import json

import pytest

from bayestream.cli.generate import CHUNK_EVENTS, label_of, stamped, telemetry
from bayestream.cli.main import _parser, main
from bayestream.cli.synthetic import HOSTILE, SERVICES, generate
from bayestream.runtime.feed import _bursts, key_of


def test_stamped_rewrites_a_numeric_ts_only() -> None:
    line = b'{"key":"svc-a","metric":"latency_ms","ts":1700000100.123,"value":12.5}'
    assert stamped(line, 1800000000.5) == (
        b'{"key":"svc-a","metric":"latency_ms","ts":1800000000.500,"value":12.5}'
    )
    bad = b'{"key":"svc-f","metric":"latency_ms","ts":"yesterday","value":12}'
    assert stamped(bad, 1800000000.0) == bad


def test_a_label_says_whether_the_event_was_injected() -> None:
    data = generate(CHUNK_EVENTS, 7)
    labels = [label_of(line, 5.0, data.injected_at) for line in data.lines]
    injected = [label for label in labels if label and json.loads(label)["is_anomaly"]]
    assert 0 < len(injected) == data.injected
    label = json.loads(label_of(data.lines[0], 5.0, data.injected_at) or b"")
    event = json.loads(data.lines[0])
    expected = {"key": event["key"], "metric": event["metric"], "ts": 5.0, "is_anomaly": False}
    assert label == expected
    assert label_of(b"\xff\xfe not even text", 5.0, data.injected_at) is None


def test_telemetry_is_the_demo_stamped_by_the_clock() -> None:
    ticks = itertools.count(1_800_000_000)
    lines = list(telemetry(500, 7, clock=lambda: float(next(ticks))))
    assert len(lines) == 500
    demo = generate(CHUNK_EVENTS, 7).lines[:500]
    for i, ((line, _), original) in enumerate(zip(lines, demo, strict=True)):
        assert line == stamped(original, 1_800_000_000 + i)
    keys = {key_of(line) for line, _ in lines}
    assert keys - {None} <= {s.encode() for s in SERVICES}


def test_without_a_count_the_stream_goes_on_past_a_chunk_with_a_new_seed() -> None:
    stream = telemetry(0, 7, clock=lambda: 1.0)
    taken = [line for line, _ in itertools.islice(stream, CHUNK_EVENTS + 10)]
    assert taken[CHUNK_EVENTS:] == [stamped(x, 1.0) for x in generate(CHUNK_EVENTS, 8).lines[:10]]
    assert sum(line in HOSTILE for line in taken) >= 2  # hostile lines keep coming


def test_the_key_of_a_line_is_its_message_key() -> None:
    assert key_of(b'{"key":"svc-b","metric":"errors","ts":1,"value":0}') == b"svc-b"
    assert key_of(b"\xff\xfe not even text") is None


def test_bursts_send_a_tenth_of_a_second_of_the_rate_at_a_time() -> None:
    items = [(b"x", None)] * 95
    assert [len(b) for b in _bursts(iter(items), 300.0)] == [30, 30, 30, 5]
    assert [len(b) for b in _bursts(iter(items), 0.0)] == [95]


def test_the_command_line() -> None:
    args = _parser().parse_args(
        ["generate", "--kafka", "k:9092", "--rate", "50", "--labels-topic", "labels"]
    )
    assert (args.kafka, args.topic, args.rate, args.events) == ("k:9092", "telemetry", 50.0, 0)
    assert args.labels_topic == "labels" and args.partitions == 6


def test_a_negative_rate_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--kafka", "127.0.0.1:1", "--rate", "-1"]) == 2
    assert "--rate must be >= 0" in capsys.readouterr().err
