"""A batch of raw messages, and its decoding into per-field columns.

:func:`decode_batch` runs the fast scanner over the whole batch and the strict decoder over the
messages the scanner leaves (see :mod:`bayestream.schema.scan` and :mod:`bayestream.schema.wire`),
so each message gets the same columns, or its own dead-letter reason, whichever path it took.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bayestream.models._threads import SERIAL, Workers
from bayestream.schema.reasons import Reason
from bayestream.schema.scan import FIELDS, scan
from bayestream.schema.wire import decode_strict

REASONS: tuple[Reason | None, ...] = (None, *Reason)
"""Reason by small integer code (0: no reason, the event is good so far)."""
REASON_CODE: dict[Reason, int] = {reason: code for code, reason in enumerate(REASONS) if reason}
FIELD = {name: i for i, name in enumerate(FIELDS)}


@dataclass(frozen=True)
class RawBatch:
    """Messages as one contiguous buffer and their [start, end) offsets."""

    buf: bytes
    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def from_messages(cls, messages: Sequence[bytes]) -> RawBatch:
        lengths = np.fromiter(map(len, messages), dtype=np.int64, count=len(messages))
        ends = np.cumsum(lengths)
        return cls(b"".join(messages), ends - lengths, ends)

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def message(self, i: int) -> bytes:
        return self.buf[int(self.starts[i]) : int(self.ends[i])]


@dataclass
class DecodedBatch:
    """Per-message columns (see scan.ScanResult) plus what the strict path found."""

    reason: np.ndarray  # uint8 code per message; 0 = decoded
    kind: np.ndarray  # uint8[n, 6]
    number: np.ndarray  # float64[n, 6]
    str_start: np.ndarray  # int64[n, 6]
    str_end: np.ndarray  # int64[n, 6]
    stream_hash: np.ndarray  # uint64[n]; 0 where the scanner did not accept the message
    fast: np.ndarray  # bool[n]: strings are spans of the buffer (else in ``strings``)
    strings: dict[int, dict[str, str]] = field(default_factory=dict)
    detail: dict[int, str] = field(default_factory=dict)

    def string(self, batch: RawBatch, i: int, name: str) -> str:
        """The string value of field ``name`` of message ``i`` (its kind must be STRING)."""
        if self.fast[i]:
            f = FIELD[name]
            return batch.buf[int(self.str_start[i, f]) : int(self.str_end[i, f])].decode("ascii")
        return self.strings[i][name]


def decode_batch(batch: RawBatch, workers: Workers = SERIAL) -> DecodedBatch:
    """Decode every message of ``batch`` into columns (scanned on ``workers``); never
    raises."""
    buf = np.frombuffer(batch.buf, dtype=np.uint8)
    result = scan(buf, batch.starts, batch.ends, workers)
    n = len(batch)
    decoded = DecodedBatch(
        reason=np.zeros(n, dtype=np.uint8),
        kind=result.kind.copy(),
        number=result.number.copy(),
        str_start=result.str_start,
        str_end=result.str_end,
        stream_hash=np.where(result.fallback, np.uint64(0), result.stream_hash),
        fast=~result.fallback,
    )
    for i in np.flatnonzero(result.fallback).tolist():
        strict = decode_strict(batch.message(i))
        if strict.reason is not None:
            decoded.reason[i] = REASON_CODE[strict.reason]
            decoded.detail[i] = strict.detail
            continue
        decoded.kind[i] = strict.kinds
        decoded.number[i] = strict.numbers
        decoded.strings[i] = strict.strings
    return decoded


__all__ = ["FIELD", "REASONS", "REASON_CODE", "DecodedBatch", "RawBatch", "decode_batch"]
