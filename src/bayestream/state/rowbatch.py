"""Many changelog rows at once: one kernel parses every header, so that restoring a million
streams costs array work plus two string decodes per stream (see :mod:`.rows` for the layout).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bayestream.models._jit import kernel
from bayestream.state._memory import release_free_memory
from bayestream.state.rows import MAGIC, READABLE, StateRow

_HEADER_SIZE = 42


@kernel
def _parse(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    out_ok: np.ndarray,
    out_code: np.ndarray,
    out_version: np.ndarray,
    out_width: np.ndarray,
    out_params: np.ndarray,
    out_key: np.ndarray,
    out_metric: np.ndarray,
) -> None:
    """Headers of rows ``buf[starts[i]:ends[i]]``: validity, family code, width, where the
    params start, and the key / metric spans (the four floats are gathered by numpy)."""
    for i in range(starts.shape[0]):
        s, e = starts[i], ends[i]
        out_ok[i] = False
        if e - s < 42 or buf[s] != 66 or buf[s + 1] != 83:  # "BS"
            continue
        if buf[s + 2] != 1 and buf[s + 2] != 2:  # the readable versions
            continue
        width = np.int64(buf[s + 4]) | (np.int64(buf[s + 5]) << 8)
        klen = np.int64(buf[s + 6]) | (np.int64(buf[s + 7]) << 8)
        mlen = np.int64(buf[s + 8]) | (np.int64(buf[s + 9]) << 8)
        if s + 42 + 8 * width + klen + mlen != e:
            continue
        out_ok[i] = True
        out_code[i] = buf[s + 3]
        out_version[i] = buf[s + 2]
        out_width[i] = width
        out_params[i] = s + 42
        out_key[i, 0] = s + 42 + 8 * width
        out_key[i, 1] = s + 42 + 8 * width + klen
        out_metric[i, 0] = out_key[i, 1]
        out_metric[i, 1] = e


@kernel
def _copy(
    buf: np.ndarray,
    rows: np.ndarray,
    floats_at: np.ndarray,
    params_at: np.ndarray,
    width: np.ndarray,
    floats: np.ndarray,
    params: np.ndarray,
) -> None:
    """Copy the little-endian float64 bytes of each row into byte views of the output."""
    for r in range(rows.shape[0]):
        i = rows[r]
        for b in range(32):
            floats[r, b] = buf[floats_at[i] + b]
        for b in range(8 * width[i]):
            params[r, b] = buf[params_at[i] + b]


@dataclass
class RowBatch:
    """Decoded rows as columns (rows that failed to parse are left out; see ``bad``)."""

    keys: list[str]
    metrics: list[str]
    family_code: np.ndarray  # int64[n]
    version: np.ndarray  # int64[n]: the rows' state-row versions
    width: np.ndarray  # int64[n]
    columns: np.ndarray  # float64[n, 4]: last_ts, n_eff, obs_size, last_emit_ts
    params: np.ndarray  # float64[n, max width], NaN beyond each row's width
    bad: int  # rows that were not valid rows of a readable version

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def of(cls, rows: list[StateRow]) -> RowBatch:
        """The columns of already decoded rows."""
        n = len(rows)
        width = np.fromiter((r.params.shape[0] for r in rows), dtype=np.int64, count=n)
        params = np.full((n, int(width.max()) if n else 0), np.nan)
        for i, row in enumerate(rows):
            params[i, : row.params.shape[0]] = row.params
        columns = np.array(
            [(r.last_ts, r.n_eff, r.obs_size, r.last_emit_ts) for r in rows], dtype=np.float64
        ).reshape(n, 4)
        codes = np.fromiter((r.family_code for r in rows), dtype=np.int64, count=n)
        versions = np.fromiter((r.version for r in rows), dtype=np.int64, count=n)
        return cls(
            [r.key for r in rows],
            [r.metric for r in rows],
            codes,
            versions,
            width,
            columns,
            params,
            0,
        )


def decode_rows(values: list[bytes]) -> RowBatch:
    """Decode many rows; invalid ones (wrong magic, version, length or UTF-8) are counted in
    ``bad`` and skipped, as :func:`decode_row` would refuse them."""
    assert MAGIC == b"BS" and READABLE == (1, 2) and _HEADER_SIZE == 42
    n = len(values)
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    data = b"".join(values)
    buf = np.frombuffer(data, dtype=np.uint8)
    ok = np.zeros(n, dtype=np.bool_)
    code = np.zeros(n, dtype=np.int64)
    version = np.zeros(n, dtype=np.int64)
    width = np.zeros(n, dtype=np.int64)
    params_at = np.zeros(n, dtype=np.int64)
    key = np.zeros((n, 2), dtype=np.int64)
    metric = np.zeros((n, 2), dtype=np.int64)
    _parse(buf, starts, ends, ok, code, version, width, params_at, key, metric)
    keys: list[str] = []
    metrics: list[str] = []
    good = np.flatnonzero(ok)
    spans = zip(  # flat lists of ints: no Python list per row
        good.tolist(),
        key[good, 0].tolist(),
        key[good, 1].tolist(),
        metric[good, 0].tolist(),
        metric[good, 1].tolist(),
        strict=True,
    )
    for i, ks, ke, ms, me in spans:
        try:
            k, m = data[ks:ke].decode("utf-8"), data[ms:me].decode("utf-8")
        except UnicodeDecodeError:
            ok[i] = False
            continue
        keys.append(k)
        metrics.append(m)
    rows = np.flatnonzero(ok)
    widest = int(width[rows].max()) if rows.size else 0
    floats = np.empty((rows.size, 4))
    params = np.full((rows.size, widest), np.nan)
    _copy(buf, rows, starts + 10, params_at, width, floats.view(np.uint8), params.view(np.uint8))
    return RowBatch(
        keys,
        metrics,
        code[rows],
        version[rows],
        width[rows],
        floats,
        params,
        int(n - rows.size),
    )


def drain_rows(table: dict[bytes, bytes], chunk: int = 1 << 16) -> Iterator[RowBatch]:
    """Decode the rows of ``table`` (a changelog's latest row per Kafka key, in the table's
    order) ``chunk`` rows at a time, emptying it as it goes: the keys are dropped at once and
    each chunk's rows once it is decoded, so a restore holds the undecoded rows, one decoded
    chunk and the state restored so far, never every row twice. Restoring the chunks in order
    is restoring :func:`decode_rows` of all the rows (each key has one row: chunks hold
    distinct streams). Once the last chunk is restored, the heap's free pages go back to the
    operating system."""
    values = list(table.values())
    table.clear()
    while values:
        batch = decode_rows(values[:chunk])
        del values[:chunk]
        yield batch
        del batch
    release_free_memory()


__all__ = ["RowBatch", "decode_rows", "drain_rows"]
