"""The versioned binary row of one stream's state: the value of a changelog record.

Layout, little-endian, versions 1 and 2 (the same bytes; they differ in what follows the
family's parameters inside ``params``: 2 columns in version 1, ``EXTRA`` in version 2, see
:mod:`bayestream.models._protocol`)::

    offset  size  field
    0       2     magic b"BS"
    2       1     version (2; 1 is read)
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

A Normal-Gamma row is 154 bytes plus the names (74 in version 1). Readers refuse unknown
versions; adding a field means a new version and a reader for the old one: version-1 rows are
widened on restore (:mod:`bayestream.state.restore`).
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from bayestream.errors import StateError

if TYPE_CHECKING:
    from bayestream.state.store import RuleStore

MAGIC = b"BS"
VERSION = 2
READABLE = (1, 2)
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
    version: int = VERSION  # 1: params has the two extra columns of version 1

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StateRow):
            return NotImplemented
        mine = (self.key, self.metric, self.family_code, self.version)
        theirs = (other.key, other.metric, other.family_code, other.version)
        floats = np.array([self.last_ts, self.n_eff, self.obs_size, self.last_emit_ts])
        others = np.array([other.last_ts, other.n_eff, other.obs_size, other.last_emit_ts])
        return (
            mine == theirs
            and np.array_equal(floats, others, equal_nan=True)
            and np.array_equal(self.params, other.params, equal_nan=True)
        )

    __hash__ = None  # type: ignore[assignment]


def encode_row(row: StateRow) -> bytes:
    """Serialise a row (in its ``version``)."""
    key = row.key.encode("utf-8")
    metric = row.metric.encode("utf-8")
    params = np.ascontiguousarray(row.params, dtype="<f8")
    if len(key) > MAX_NAME_BYTES or len(metric) > MAX_NAME_BYTES or params.shape[0] > 0xFFFF:
        raise StateError("key, metric or parameter vector too long for a state row")
    header = _HEADER.pack(
        MAGIC,
        row.version,
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


@functools.cache
def _fixed_dtype(width: int) -> np.dtype[np.void]:
    """The fixed-size part of a row (header, then params) as a packed record."""
    return np.dtype(
        [
            ("magic", "S2"),
            ("version", "u1"),
            ("family", "u1"),
            ("width", "<u2"),
            ("klen", "<u2"),
            ("mlen", "<u2"),
            ("last_ts", "<f8"),
            ("n_eff", "<f8"),
            ("obs_size", "<f8"),
            ("last_emit_ts", "<f8"),
            ("params", "<f8", (width,)),
        ]
    )


def encode_rows(store: RuleStore, slots: np.ndarray, family_code: int) -> list[bytes]:
    """Rows (version :data:`VERSION`) of several streams of one store, straight from its
    columns: the fixed-size parts of all rows are laid out at once in a packed record array, so the
    Python work per row is encoding its names and one slice and concatenation (this runs
    for every stream a batch changes)."""
    n = slots.shape[0]
    if n == 0:
        return []
    keys, metrics = store.names.raw(slots)  # (live slots only: their names are set)
    width = store.params.shape[1]
    if width > 0xFFFF:
        raise StateError("parameter vector too long for a state row")
    fixed = np.empty(n, dtype=_fixed_dtype(width))
    fixed["magic"] = MAGIC
    fixed["version"] = VERSION
    fixed["family"] = family_code
    fixed["width"] = width
    for field, parts in (("klen", keys), ("mlen", metrics)):
        lengths = np.fromiter(map(len, parts), dtype=np.int64, count=n)
        if int(lengths.max()) > MAX_NAME_BYTES:
            raise StateError("key or metric too long for a state row")
        fixed[field] = lengths
    fixed["last_ts"] = store.last_ts[slots]
    fixed["n_eff"] = store.n_eff[slots]
    fixed["obs_size"] = store.obs_size[slots]
    fixed["last_emit_ts"] = store.last_emit_ts[slots]
    fixed["params"] = store.params[slots]
    data = fixed.tobytes()
    size = fixed.dtype.itemsize
    return [
        data[at : at + size] + k + m
        for at, k, m in zip(range(0, n * size, size), keys, metrics, strict=True)
    ]


def stream_key(key: str, metric: str) -> bytes:
    """The Kafka message key of a stream: the JSON object ``{"key":...,"metric":...}``."""
    return (
        b'{"key":' + msgspec.json.encode(key) + b',"metric":' + msgspec.json.encode(metric) + b"}"
    )


def decode_row(data: bytes) -> StateRow:
    """Parse a row; raise :class:`StateError` when it is not a valid row of a readable
    version."""
    if len(data) < _HEADER.size:
        raise StateError(f"state row too short ({len(data)} bytes)")
    magic, version, family, width, klen, mlen, last_ts, n_eff, obs, emitted = _HEADER.unpack_from(
        data
    )
    if magic != MAGIC:
        raise StateError("not a bayestream state row (bad magic)")
    if version not in READABLE:
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
    return StateRow(key, metric, family, last_ts, n_eff, obs, emitted, params, version)


__all__ = [
    "MAGIC",
    "MAX_NAME_BYTES",
    "READABLE",
    "VERSION",
    "StateRow",
    "decode_row",
    "encode_row",
    "encode_rows",
    "stream_key",
]
