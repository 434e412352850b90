"""Stream state: key -> slot maps, columnar per-rule arrays, and changelog rows."""

from bayestream.state.index import StreamIndex
from bayestream.state.rows import (
    MAX_NAME_BYTES,
    StateRow,
    decode_row,
    encode_row,
    encode_rows,
    stream_key,
)
from bayestream.state.store import RuleStore

__all__ = [
    "MAX_NAME_BYTES",
    "RuleStore",
    "StateRow",
    "StreamIndex",
    "decode_row",
    "encode_row",
    "encode_rows",
    "stream_key",
]
