"""Grouping a batch's messages by stream: hash groups, collisions and the strict path."""

from __future__ import annotations

import json

import numpy as np

from bayestream import RawBatch
from bayestream.engine.streams import group_streams, named_rows
from bayestream.schema.batch import decode_batch


def _reference(messages: list[bytes]) -> tuple[list[int], list[str], list[str]]:
    """Streams numbered by first appearance, computed from the parsed JSON."""
    number: dict[tuple[str, str], int] = {}
    out = []
    for m in messages:
        doc = json.loads(m)
        out.append(number.setdefault((doc["key"], doc["metric"]), len(number)))
    names = list(number)
    return out, [k for k, _ in names], [m for _, m in names]


def _messages() -> list[bytes]:
    rng = np.random.default_rng(3)
    out = []
    for i in range(400):
        key = f"k{rng.integers(40)}"
        metric = ["lat", "err"][i % 2]
        if i % 37 == 0:  # an escape: the strict decoder's path, often a stream seen fast
            out.append(b'{"key":"%s","metric":"l\\u0061t","value":1}' % key.encode())
            continue
        out.append(json.dumps({"key": key, "metric": metric, "value": 1}).encode())
    return out


def test_streams_are_numbered_by_first_appearance() -> None:
    messages = _messages()
    batch = RawBatch.from_messages(messages)
    decoded = decode_batch(batch)
    assert not decoded.fast.all() and decoded.fast.any()
    stream, keys, metrics = group_streams(batch, decoded, named_rows(decoded))
    expected, keys_ref, metrics_ref = _reference(messages)
    assert sorted(zip(keys, metrics, strict=True)) == sorted(
        zip(keys_ref, metrics_ref, strict=True)
    )
    # the same partition of messages into streams, whatever the numbering
    names = [(keys[u], metrics[u]) for u in stream.tolist()]
    assert names == [(keys_ref[u], metrics_ref[u]) for u in expected]


def test_colliding_hashes_are_told_apart_by_their_bytes() -> None:
    messages = _messages()
    batch = RawBatch.from_messages(messages)
    decoded = decode_batch(batch)
    decoded.stream_hash[decoded.fast] = np.uint64(12345)  # every fast message collides
    stream, keys, metrics = group_streams(batch, decoded, named_rows(decoded))
    expected, keys_ref, metrics_ref = _reference(messages)
    assert len(keys) == len(keys_ref)
    names = [(keys[u], metrics[u]) for u in stream.tolist()]
    assert names == [(keys_ref[u], metrics_ref[u]) for u in expected]
