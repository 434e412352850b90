"""Each slot's stream name, as bytes in one arena: no Python object per stream.

A slot's entry is laid out at ``off[slot]``: the JSON members that name the stream in output
records, ``"key":<key>,"metric":<metric>`` (``json_len`` bytes, as :func:`msgspec.json.encode`
writes the strings). The UTF-8 key (``key_len`` bytes) and metric (``metric_len`` bytes) are
read inside those JSON strings, which hold them verbatim unless a character had to be escaped
(quote, backslash, control characters; msgspec writes other characters, ASCII or not, as they
are); a slot with an escaped name (``escaped[slot]``) has its UTF-8 key and metric stored
after the JSON. A free slot has ``json_len == 0`` (a name's JSON is never empty).

Memory per stream: 21 bytes of offset, lengths and flag, plus the entry (for ``host-123456``
/ ``latency_ms``, 40 bytes), in an arena at most 1.25 times the live bytes after it grows.
Clearing a slot leaves its bytes as garbage; when the arena is full, the live entries are
copied, in slot order, into a new arena sized 1.25 times what they need, so the garbage is
dropped then (amortised O(1) per byte added).
"""

from __future__ import annotations

import msgspec
import numpy as np

from bayestream.models._jit import kernel

_INITIAL_ARENA = 1 << 16
_GROWTH = 1.25
_KEY_AT = len(b'"key":"')  # where the key's text starts in an unescaped entry
_METRIC_AFTER_KEY = len(b'","metric":"')  # and the metric's, after the key's


@kernel
def _gather(
    arena: np.ndarray,
    off: np.ndarray,
    json_len: np.ndarray,
    key_len: np.ndarray,
    metric_len: np.ndarray,
    escaped: np.ndarray,
    part: int,
    slots: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One part of each slot's name (0: the JSON, 1: the key, 2: the metric), back to back,
    and where each one ends."""
    ends = np.empty(slots.shape[0], dtype=np.int64)
    total = 0
    for i in range(slots.shape[0]):
        s = slots[i]
        total += json_len[s] if part == 0 else key_len[s] if part == 1 else metric_len[s]
        ends[i] = total
    out = np.empty(total, dtype=np.uint8)
    pos = 0
    for i in range(slots.shape[0]):
        s = slots[i]
        a = off[s]
        if part > 0:
            a += json_len[s] if escaped[s] else _KEY_AT
        if part > 1:
            a += key_len[s] if escaped[s] else key_len[s] + _METRIC_AFTER_KEY
        for j in range(a, a + ends[i] - pos):
            out[pos] = arena[j]
            pos += 1
    return out, ends


@kernel
def _compact_into(
    arena: np.ndarray, off: np.ndarray, size: np.ndarray, new_arena: np.ndarray
) -> int:
    """Copy every live entry (``size[s] > 0``), in slot order, to the front of ``new_arena``;
    return the bytes used."""
    pos = 0
    for s in range(off.shape[0]):
        n = size[s]
        if n > 0:
            a = off[s]
            for j in range(n):
                new_arena[pos + j] = arena[a + j]
            off[s] = pos
            pos += n
    return pos


class NameArena:
    """Stream names of the slots of one store (see the module docstring for the layout)."""

    __slots__ = (
        "arena",
        "compactions",
        "escaped",
        "garbage",
        "json_len",
        "key_len",
        "metric_len",
        "off",
        "used",
    )

    def __init__(self, capacity: int = 0) -> None:
        self.arena = np.empty(_INITIAL_ARENA, dtype=np.uint8)
        self.used = 0  # bytes of the arena in use, live or garbage
        self.garbage = 0
        self.compactions = 0
        self.off = np.zeros(0, dtype=np.int64)
        self.json_len = np.zeros(0, dtype=np.int32)
        self.key_len = np.zeros(0, dtype=np.int32)
        self.metric_len = np.zeros(0, dtype=np.int32)
        self.escaped = np.zeros(0, dtype=np.bool_)
        self.grow(capacity)

    def grow(self, capacity: int) -> None:
        """Room for slots ``0 .. capacity - 1`` (new ones free)."""
        extra = capacity - self.off.shape[0]
        if extra <= 0:
            return
        self.off = np.concatenate([self.off, np.zeros(extra, dtype=np.int64)])
        self.json_len = np.concatenate([self.json_len, np.zeros(extra, dtype=np.int32)])
        self.key_len = np.concatenate([self.key_len, np.zeros(extra, dtype=np.int32)])
        self.metric_len = np.concatenate([self.metric_len, np.zeros(extra, dtype=np.int32)])
        self.escaped = np.concatenate([self.escaped, np.zeros(extra, dtype=np.bool_)])

    def set_many(self, slots: np.ndarray, keys: list[str], metrics: list[str]) -> None:
        """Name free ``slots`` (keys and metrics of at most ``MAX_NAME_BYTES`` UTF-8 bytes)."""
        n = len(keys)
        if n == 0:
            return
        encode = msgspec.json.encode
        tails = {}  # metrics repeat: their bytes once per distinct metric
        for m in set(metrics):
            raw, text = m.encode("utf-8"), encode(m)
            tails[m] = (b',"metric":' + text, raw, len(text) == len(raw) + 2)
        raw_keys = [k.encode("utf-8") for k in keys]
        entries = []
        json_len = np.empty(n, dtype=np.int32)
        escaped = np.zeros(n, dtype=np.bool_)
        for i, (key, raw, metric) in enumerate(zip(keys, raw_keys, metrics, strict=True)):
            tail, raw_metric, verbatim = tails[metric]
            text = encode(key)
            head = b'"key":' + text + tail
            json_len[i] = len(head)
            if verbatim and len(text) == len(raw) + 2:  # escaping lengthens a string
                entries.append(head)
            else:
                escaped[i] = True
                entries.append(head + raw + raw_metric)
        sizes = np.fromiter(map(len, entries), dtype=np.int64, count=n)
        data = b"".join(entries)
        start = self._reserve(len(data))
        self.arena[start : start + len(data)] = np.frombuffer(data, dtype=np.uint8)
        self.used = start + len(data)
        self.off[slots] = start + np.cumsum(sizes) - sizes
        self.json_len[slots] = json_len
        self.escaped[slots] = escaped
        self.key_len[slots] = np.fromiter(map(len, raw_keys), dtype=np.int64, count=n)
        self.metric_len[slots] = [len(tails[m][1]) for m in metrics]

    def clear(self, slot: int) -> None:
        """Forget a slot's name (its bytes become garbage)."""
        self.clear_many(np.array([slot], dtype=np.int64))

    def clear_many(self, slots: np.ndarray) -> None:
        """Forget the names of distinct named slots (their bytes become garbage)."""
        raw = np.where(self.escaped[slots], self.key_len[slots] + self.metric_len[slots], 0)
        self.garbage += int(self.json_len[slots].sum()) + int(raw.sum())
        for column in (self.json_len, self.key_len, self.metric_len):
            column[slots] = 0
        self.escaped[slots] = False

    def __getitem__(self, slot: int) -> tuple[str, str]:
        """(key, metric) of a named slot (KeyError for a free one)."""
        name = self.get(slot)
        if name is None:
            raise KeyError(slot)
        return name

    def get(self, slot: int) -> tuple[str, str] | None:
        """(key, metric) of a slot, or None when it is free."""
        if self.json_len[slot] == 0:
            return None
        keys, metrics = self.raw(np.array([slot]))
        return keys[0].decode("utf-8"), metrics[0].decode("utf-8")

    def json(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The JSON members of named ``slots`` back to back (a copy), and each one's end."""
        return self._gather(0, slots)

    def json_list(self, slots: np.ndarray) -> list[bytes]:
        """The JSON members of each of named ``slots``."""
        return _split(*self.json(slots))

    def raw(self, slots: np.ndarray) -> tuple[list[bytes], list[bytes]]:
        """The UTF-8 keys and the UTF-8 metrics of named ``slots``."""
        return _split(*self._gather(1, slots)), _split(*self._gather(2, slots))

    def names(self, slots: np.ndarray) -> list[tuple[str, str]]:
        """(key, metric) of each of named ``slots``."""
        keys, metrics = self.raw(slots)
        return [(k.decode("utf-8"), m.decode("utf-8")) for k, m in zip(keys, metrics, strict=True)]

    def nbytes(self) -> int:
        columns = (self.arena, self.off, self.json_len, self.key_len, self.metric_len, self.escaped)
        return sum(int(a.nbytes) for a in columns)

    def _gather(self, part: int, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _gather(
            self.arena,
            self.off,
            self.json_len,
            self.key_len,
            self.metric_len,
            self.escaped,
            part,
            np.ascontiguousarray(slots, dtype=np.int64),
        )

    def _reserve(self, need: int) -> int:
        """Where ``need`` more bytes go, after compacting into a larger arena if they do not
        fit in this one."""
        if self.used + need <= self.arena.shape[0]:
            return self.used
        live = self.used - self.garbage
        size = max(_INITIAL_ARENA, int(_GROWTH * (live + need)))
        arena = np.empty(size, dtype=np.uint8)
        sizes = self.json_len + np.where(self.escaped, self.key_len + self.metric_len, 0)
        self.used = _compact_into(self.arena, self.off, sizes, arena)
        self.arena, self.garbage = arena, 0
        self.compactions += 1
        return self.used


def _split(data: np.ndarray, ends: np.ndarray) -> list[bytes]:
    if ends.shape[0] == 0:
        return []
    whole = data.tobytes()
    starts = [0, *ends[:-1].tolist()]
    return [whole[a:b] for a, b in zip(starts, ends.tolist(), strict=True)]


__all__ = ["NameArena"]
