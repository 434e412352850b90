"""The versioned binary row of one stream's state: the value of a changelog record.

Layout, little-endian, version 1::

    offset  size  field
    0       2     magic b"BS"
    2       1     version (1)
    3       1     family code (see bayestream.models.FAMILIES)
    4       2     width W (number of posterior parameters)
    6       2     len(key) in UTF-8 bytes, K
    8       2     len(metric) in UTF-8 bytes, M
    10      8     last_ts        (float64; NaN: no event yet)
    18      8     n_eff
    26      8     obs_size       (trials / exposure of the newest event)
    34      8     last_emit_ts   (NaN: never published)
    42      8*W   params
    42+8W   K     key
    ..      M     metric

A Normal-Gamma row is 74 bytes plus the names. Readers refuse unknown versions; adding a field
means a new version and a reader for the old one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from bayestream.errors import StateError

if TYPE_CHECKING:
    from bayestream.state.store import RuleStore

MAGIC = b"BS"
VERSION = 1
_HEADER = struct.Struct("<2sBBHHHdddd")
MAX_NAME_BYTES = 0xFFFF  # a key or metric longer (in UTF-8) does not fit its 16-bit length


@dataclass(frozen=True)
class StateRow:
    """One stream's state, decoded."""

    key: str
    metric: str
    family_code: int
    last_ts: float
    n_eff: float
    obs_size: float
    last_emit_ts: float
    params: np.ndarray

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StateRow):
            return NotImplemented
        mine = (self.key, self.metric, self.family_code)
        theirs = (other.key, other.metric, other.family_code)
        floats = np.array([self.last_ts, self.n_eff, self.obs_size, self.last_emit_ts])
        others = np.array([other.last_ts, other.n_eff, other.obs_size, other.last_emit_ts])
        return (
            mine == theirs
            and np.array_equal(floats, others, equal_nan=True)
            and np.array_equal(self.params, other.params, equal_nan=True)
        )

    __hash__ = None  # type: ignore[assignment]


def encode_row(row: StateRow) -> bytes:
    """Serialise a row (version 1)."""
    key = row.key.encode("utf-8")
    metric = row.metric.encode("utf-8")
    params = np.ascontiguousarray(row.params, dtype="<f8")
    if len(key) > MAX_NAME_BYTES or len(metric) > MAX_NAME_BYTES or params.shape[0] > 0xFFFF:
        raise StateError("key, metric or parameter vector too long for a state row")
    header = _HEADER.pack(
        MAGIC,
        VERSION,
        row.family_code,
        params.shape[0],
        len(key),
        len(metric),
        row.last_ts,
        row.n_eff,
        row.obs_size,
        row.last_emit_ts,
    )
    return header + params.tobytes() + key + metric


def encode_rows(store: RuleStore, slots: np.ndarray, family_code: int) -> list[bytes]:
    """Version-1 rows of several streams of one store, straight from its columns."""
    params = np.ascontiguousarray(store.params[slots], dtype="<f8")
    width = params.shape[1]
    columns = zip(
        slots.tolist(),
        store.last_ts[slots].tolist(),
        store.n_eff[slots].tolist(),
        store.obs_size[slots].tolist(),
        store.last_emit_ts[slots].tolist(),
        strict=True,
    )
    out = []
    for r, (slot, last_ts, n_eff, obs, emitted) in enumerate(columns):
        key, metric = store.names[slot]
        k, m = key.encode("utf-8"), metric.encode("utf-8")
        header = _HEADER.pack(
            MAGIC, VERSION, family_code, width, len(k), len(m), last_ts, n_eff, obs, emitted
        )
        out.append(header + params[r].tobytes() + k + m)
    return out


def stream_key(key: str, metric: str) -> bytes:
    """The Kafka message key of a stream: the JSON object ``{"key":...,"metric":...}``."""
    return (
        b'{"key":' + msgspec.json.encode(key) + b',"metric":' + msgspec.json.encode(metric) + b"}"
    )


def decode_row(data: bytes) -> StateRow:
    """Parse a row; raise :class:`StateError` when it is not a valid version-1 row."""
    if len(data) < _HEADER.size:
        raise StateError(f"state row too short ({len(data)} bytes)")
    magic, version, family, width, klen, mlen, last_ts, n_eff, obs, emitted = _HEADER.unpack_from(
        data
    )
    if magic != MAGIC:
        raise StateError("not a bayestream state row (bad magic)")
    if version != VERSION:
        raise StateError(f"unsupported state row version {version}")
    end_params = _HEADER.size + 8 * width
    if len(data) != end_params + klen + mlen:
        raise StateError("state row length does not match its header")
    params = np.frombuffer(data, dtype="<f8", count=width, offset=_HEADER.size).astype(np.float64)
    try:
        key = data[end_params : end_params + klen].decode("utf-8")
        metric = data[end_params + klen :].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StateError("state row names are not UTF-8") from exc
    return StateRow(key, metric, family, last_ts, n_eff, obs, emitted, params)


__all__ = [
    "MAGIC",
    "MAX_NAME_BYTES",
    "VERSION",
    "StateRow",
    "decode_row",
    "encode_row",
    "encode_rows",
    "stream_key",
]
