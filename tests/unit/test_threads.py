"""Kernel calls split across threads: the same outputs, byte for byte, as on one thread."""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

import numpy as np
import pytest

from bayestream import RawBatch
from bayestream.errors import ConfigError
from bayestream.models import _threads
from bayestream.models._threads import Workers, auto_threads
from bayestream.schema import lines as lines_module
from bayestream.schema.lines import split_lines
from tests.conftest import make_engine
from tests.property.test_engine_properties import RULES


def test_ranges_cover_the_rows_in_order() -> None:
    workers = Workers(3)
    for n in (0, 1, _threads.MIN_ROWS - 1, 2 * _threads.MIN_ROWS, 10 * _threads.MIN_ROWS + 7):
        ranges = workers.ranges(n)
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        assert len(ranges) == min(3, max(1, n // _threads.MIN_ROWS))


def test_by_stream_puts_each_stream_in_one_group_in_order() -> None:
    slots = np.random.default_rng(0).integers(0, 50, 3 * _threads.MIN_ROWS)
    groups = Workers(3).by_stream(slots)
    assert len(groups) == 3
    assert sorted(np.concatenate(groups).tolist()) == list(range(slots.shape[0]))
    owner: dict[int, int] = {}
    for g, positions in enumerate(groups):
        assert np.all(np.diff(positions) > 0)  # event order kept within a group
        for s in set(slots[positions].tolist()):
            assert owner.setdefault(s, g) == g


def test_run_waits_for_every_call_before_raising() -> None:
    finished = threading.Event()

    def slow() -> int:
        time.sleep(0.2)
        finished.set()
        return 1

    def fails() -> int:
        raise ValueError("chunk failed")

    with pytest.raises(ValueError, match="chunk failed"):
        Workers(2).run([slow, fails])
    assert finished.is_set()
    assert Workers(2).run([lambda: 1, lambda: 2]) == [1, 2]


def test_auto_threads_is_the_cores_at_most_four() -> None:
    assert 1 <= auto_threads() <= _threads.AUTO_MAX


def _events(seed: int) -> list[bytes]:
    """Valid events of every family of RULES (drift, forgetting, TTLs, late events), for 60
    keys, in time order with a few late ones."""
    rng = np.random.default_rng(seed)
    out = []
    ts = 1000.0
    for i in range(6000):
        ts += float(rng.exponential(0.05))
        metric = ["lat", "logl", "err", "req", "pf", "status"][i % 6]
        doc: dict[str, Any] = {"key": f"k{rng.integers(60)}", "metric": metric, "ts": ts}
        if i % 97 == 0:
            doc["ts"] = ts - 500.0  # late
        if metric in ("lat", "pf"):
            doc["value"] = float(rng.normal(10.0, 2.0) + (25.0 if i > 4000 else 0.0))
        elif metric == "logl":
            doc["value"] = float(rng.lognormal(1.0, 0.5))
        elif metric == "err":
            doc["trials"] = 20
            doc["value"] = int(rng.binomial(20, 0.1 if i < 3000 else 0.4))
        elif metric == "req":
            doc["value"] = int(rng.poisson(4.0))
        else:
            doc["value"] = str(rng.choice(["a", "b", "c"], p=[0.7, 0.2, 0.1]))
        out.append(json.dumps(doc).encode())
    return out


def _run(threads: int, events: list[bytes], batch_size: int) -> list[Any]:
    engine = make_engine(RULES, max_lateness_seconds=100.0, threads=threads)
    out: list[Any] = []
    for j in range(0, len(events), batch_size):
        o = engine.process(RawBatch.from_messages(events[j : j + batch_size]))
        out.append(
            (
                o.posteriors.json_lines(),
                [v for batch in o.posteriors.batches for v in batch.json_values()],
                o.scores.tobytes(),
                o.anomalies,
                o.drift,
                [(d.index, d.reason) for d in o.dead_letters],
            )
        )
    out.append(sorted(engine.state_rows(), key=lambda r: (r.key, r.metric)))
    return out


@pytest.mark.parametrize("min_rows", [1, 37])
def test_engine_outputs_do_not_depend_on_threads(
    monkeypatch: pytest.MonkeyPatch, min_rows: int
) -> None:
    monkeypatch.setattr(_threads, "MIN_ROWS", min_rows)
    events = _events(1)
    serial = _run(1, events, 700)
    assert sum(len(b[3]) for b in serial[:-1]) > 0  # anomalies
    assert sum(len(b[4]) for b in serial[:-1]) > 0  # drift alarms
    assert sum(len(b[5]) for b in serial[:-1]) > 0  # late events
    for threads in (2, 3):
        assert _run(threads, events, 700) == serial


def test_a_split_by_event_instead_of_by_stream_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above can fail: splitting one stream's events across threads (as a
    wrong ``by_stream`` would) changes the outputs."""
    monkeypatch.setattr(_threads, "MIN_ROWS", 1)
    events = _events(2)
    serial = _run(1, events, 700)

    def by_event(self: Workers, slots: np.ndarray) -> list[np.ndarray]:
        return [np.arange(g, slots.shape[0], self.threads) for g in range(self.threads)]

    monkeypatch.setattr(Workers, "by_stream", by_event)
    assert _run(2, events, 700) != serial


@pytest.mark.parametrize("seed", range(6))
def test_split_lines_in_pieces_equals_one_piece(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rng = np.random.default_rng(seed)
    parts = [b"", b" ", b"\r", b"\t", b"{}", b'{"a":1}', b"x" * 40]
    lines = [b"".join(rng.choice(parts, size=rng.integers(0, 4))) for _ in range(400)]
    block = b"\n".join(lines) + (b"\n" if seed % 2 else b"")  # with and without the last \n
    buf = np.frombuffer(block, dtype=np.uint8)
    expected = split_lines(buf)
    monkeypatch.setattr(lines_module, "SPLIT_PIECE_BYTES", 16 + seed)
    for threads in (2, 3, 4):
        got = split_lines(buf, Workers(threads))
        for a, b in zip(got, expected, strict=True):
            assert a.dtype == np.int64
            np.testing.assert_array_equal(a, b)


def test_threads_setting_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"engine\.threads"):
        make_engine(threads=0)
    assert make_engine(threads=3).workers.threads == 3
    assert make_engine().workers.threads == auto_threads()
