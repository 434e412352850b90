"""The materialised ``posteriors`` topic: the latest record of every stream, as raw bytes.

Memory is the constraint (at most 1 KB per stream at a million streams), so nothing parsed is
kept per stream: one ``bytes`` object holds the record's position in the topic, its ``last_ts``
and its JSON as published, raw deflate-compressed against a preset dictionary of the records'
member names (see :data:`HEADER` and :data:`ZDICT`: a 786-byte normal_gamma record with a
forecast keeps 270 bytes; about 15 - 25 us to compress, 5 - 8 us to decompress); the key
string is shared by the stream's dictionary slot and its place in a sorted index. Records are
decompressed and parsed on request.

Layout: one :class:`_Metric` per metric name (the name interned once), holding a dict
key -> entry and a :class:`~sortedcontainers.SortedList` of its keys for ordered paging.
In the service one thread (the event loop's) both writes and reads; the store is safe for
other threads too: writers take the lock for each change, a point lookup is a dict read and
takes no lock (atomic under the GIL, and entries are immutable), a listing takes the lock while
it collects its page.
"""

from __future__ import annotations

import math
import struct
import threading
import zlib
from dataclasses import dataclass
from itertools import islice

import msgspec
from sortedcontainers import SortedList

# partition (int32), offset (int64), last_ts (float64; NaN when the record has none), and how
# the JSON that follows is stored (RAW or DEFLATE)
HEADER = struct.Struct("<iqdB")
RAW, DEFLATE = 0, 1
_LAST_TS = struct.Struct("<d")
_LAST_TS_AT = 12  # after partition and offset

# What records have in common, for deflate to refer to instead of spelling it out per record
# (the member names and shapes of every family's posterior record and of forecasts). Stored
# only in memory: it may change from one version to the next.
ZDICT = (
    b'"family":"dirichlet","family":"particle","family":"beta_binomial","family":"gamma_poisson",'
    b'"params":{"latent_mean":0.,"latent_sd":0.},"ess":'
    b'{"key":"svc-","metric":"latency_ms","family":"normal_gamma",'
    b'"params":{"mu":0.,"kappa":0.,"alpha":0.,"beta":0.},"mean":0.,"sd":0.,'
    b'"credible_intervals":{"0.9":[0.,0.],"0.95":[0.,0.],"0.99":[0.,0.]},'
    b'"predictive_quantiles":{"0.5":0.,"0.9":0.,"0.95":0.,"0.99":0.},"n_eff":0.,"last_ts":1.,'
    b'"anomaly_probability":0.,"drift_statistic":null,"drift_false_alarm_probability":null,'
    b'"forecast":{"60":{"at":1.,"quantiles":{"0.5":0.,"0.9":0.,"0.95":0.,"0.99":0.}},'
    b'"300":{"at":1.,"quantiles":{"0.5":0.,"0.9":0.,"0.95":0.,"0.99":0.}},"3600":{"at":1.}}}'
)
_WBITS = -15  # raw deflate: no zlib header or checksum (the bytes never leave the process)


def _deflate(record: bytes) -> bytes:
    packer = zlib.compressobj(1, zlib.DEFLATED, _WBITS, 8, zlib.Z_DEFAULT_STRATEGY, ZDICT)
    return packer.compress(record) + packer.flush()


def _inflate(data: bytes) -> bytes:
    unpacker = zlib.decompressobj(_WBITS, ZDICT)
    return unpacker.decompress(data) + unpacker.flush()


class StreamName(msgspec.Struct, frozen=True):
    """The Kafka key of a posterior record: ``{"key": ..., "metric": ...}``."""

    key: str
    metric: str


class _Head(msgspec.Struct):
    """The members of a posterior record the store checks and indexes (others are kept as
    bytes, unparsed)."""

    key: str
    metric: str
    last_ts: float | None = None


_NAME = msgspec.json.Decoder(StreamName)
_HEAD = msgspec.json.Decoder(_Head)


class InvalidRecord(ValueError):
    """A message of the posteriors topic that is not a posterior record (named in the text)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A stream's latest record, unpacked from its stored bytes."""

    key: str
    metric: str
    partition: int
    offset: int
    last_ts: float | None
    stored: bytes  # the record's JSON as kept (see ``how``)
    how: int = RAW

    @property
    def record(self) -> bytes:
        """The record's JSON as published (leading and trailing whitespace removed)."""
        return _inflate(self.stored) if self.how == DEFLATE else self.stored


class _Metric:
    __slots__ = ("keys", "name", "streams")

    def __init__(self, name: str) -> None:
        self.name = name
        self.streams: dict[str, bytes] = {}
        self.keys: SortedList[str] = SortedList()


def parse_name(raw_key: bytes | None) -> StreamName:
    """The stream a message key names.

    Raises
    ------
    InvalidRecord
        The key is missing or not ``{"key": str, "metric": str}``.
    """
    if raw_key is None:
        raise InvalidRecord("message without a key")
    try:
        return _NAME.decode(raw_key)
    except msgspec.DecodeError as exc:
        raise InvalidRecord(f"key is not a stream name: {exc}") from None


def pack(partition: int, offset: int, value: bytes) -> bytes:
    """The stored bytes of a record read at (partition, offset).

    Raises
    ------
    InvalidRecord
        ``value`` is not a JSON object with string ``key`` and ``metric`` and a numeric or
        null ``last_ts``.
    """
    record = value.strip()
    try:
        head = _HEAD.decode(record)
    except msgspec.DecodeError as exc:
        raise InvalidRecord(f"not a posterior record: {exc}") from None
    last_ts = math.nan if head.last_ts is None else head.last_ts
    packed = _deflate(record)
    if len(packed) < len(record):
        return HEADER.pack(partition, offset, last_ts, DEFLATE) + packed
    return HEADER.pack(partition, offset, last_ts, RAW) + record


def unpack(key: str, metric: str, data: bytes) -> Entry:
    partition, offset, last_ts, how = HEADER.unpack_from(data)
    return Entry(
        key,
        metric,
        partition,
        offset,
        None if math.isnan(last_ts) else last_ts,
        data[HEADER.size :],
        how,
    )


class PosteriorStore:
    """Latest posterior record per stream (key, metric)."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def put(self, name: StreamName, data: bytes) -> None:
        """Hold ``data`` (from :func:`pack`) as the latest record of ``name``."""
        with self._lock:
            group = self._metrics.get(name.metric)
            if group is None:
                metric = name.metric
                group = self._metrics[metric] = _Metric(metric)
            streams = group.streams
            key = name.key
            if key not in streams:
                group.keys.add(key)
                self._count += 1
            streams[key] = data

    def delete(self, name: StreamName) -> bool:
        """Forget ``name`` (a tombstone); whether it was held."""
        with self._lock:
            group = self._metrics.get(name.metric)
            if group is None or group.streams.pop(name.key, None) is None:
                return False
            group.keys.remove(name.key)
            self._count -= 1
            if not group.streams:
                del self._metrics[name.metric]
            return True

    def get(self, key: str, metric: str) -> Entry | None:
        """The latest record of (key, metric), or None."""
        group = self._metrics.get(metric)
        if group is None:
            return None
        data = group.streams.get(key)
        return None if data is None else unpack(key, metric, data)

    def page(
        self,
        prefix: str = "",
        metric: str | None = None,
        after: tuple[str, str] | None = None,
        limit: int = 100,
    ) -> tuple[list[Entry], tuple[str, str] | None]:
        """Streams in (key, metric) order whose key starts with ``prefix`` (and whose metric is
        ``metric``, when given), strictly after ``after``; at most ``limit`` of them, and the
        last one's name when more may follow (None: this page is the last)."""
        found, last = self._page(prefix, metric, after, limit)
        return [unpack(key, name, data) for key, name, data in found], last

    def heads(
        self,
        prefix: str = "",
        metric: str | None = None,
        after: tuple[str, str] | None = None,
        limit: int = 100,
    ) -> tuple[list[tuple[str, str, float | None]], tuple[str, str] | None]:
        """As :meth:`page`, but (key, metric, last_ts) only: what a listing shows, without
        unpacking records (a page of 100 in about a third of the time)."""
        found, last = self._page(prefix, metric, after, limit)
        out = []
        for key, name, data in found:
            last_ts = _LAST_TS.unpack_from(data, _LAST_TS_AT)[0]
            out.append((key, name, None if last_ts != last_ts else last_ts))  # NaN: none
        return out, last

    def _page(
        self, prefix: str, metric: str | None, after: tuple[str, str] | None, limit: int
    ) -> tuple[list[tuple[str, str, bytes]], tuple[str, str] | None]:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        with self._lock:
            if metric is not None:
                group = self._metrics.get(metric)
                groups = [] if group is None else [group]
            else:
                groups = list(self._metrics.values())
            found: list[tuple[str, str]] = []
            for group in groups:  # each metric's first limit + 1, then the first of them all
                name = group.name
                found += [(key, name) for key in self._keys(group, prefix, after, limit + 1)]
            if len(groups) > 1:
                found.sort()
            del found[limit + 1 :]
            metrics = self._metrics
            out = [(key, name, metrics[name].streams[key]) for key, name in found[:limit]]
        return out, found[limit - 1][:2] if len(found) > limit else None

    @staticmethod
    def _keys(group: _Metric, prefix: str, after: tuple[str, str] | None, n: int) -> list[str]:
        """The first ``n`` keys of ``group`` that start with ``prefix`` and whose (key, metric)
        is after ``after``."""
        start, inclusive = prefix, True
        if after is not None and after[0] >= prefix:
            # (key, metric) > after: a later key, or the same key under a later metric
            start, inclusive = after[0], group.name > after[1]
        end = _prefix_end(prefix)
        keys = group.keys.irange(start, end, inclusive=(inclusive, False))
        return list(islice(keys, n))


def _prefix_end(prefix: str) -> str | None:
    """The least string after every string that starts with ``prefix`` (None: no bound)."""
    for i in range(len(prefix) - 1, -1, -1):
        if ord(prefix[i]) < 0x10FFFF:
            return prefix[:i] + chr(ord(prefix[i]) + 1)
    return None


__all__ = [
    "DEFLATE",
    "HEADER",
    "RAW",
    "ZDICT",
    "Entry",
    "InvalidRecord",
    "PosteriorStore",
    "StreamName",
    "pack",
    "parse_name",
    "unpack",
]
