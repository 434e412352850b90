r"""Sliding count windows: every ``hop_events`` events, the last ``window_events`` events
against the ``window_events`` before them.

A window of N = B k events is B buckets of k (``hop_events``) events. The stream's drift block
(from column ``D = settings[S_EXTRA] + EXTRA``) is

    D+0 ring position of the open bucket, D+1 complete buckets held (at most 2B),
    D+2 comparisons of cool-down left, D+3 latest KL, D+4 its false-alarm probability, D+5 -
    D+6 ...  a ring of 2B + 1 buckets, each [first event time, newest event time, statistics]

When the open bucket completes and 2B complete buckets are held, the B newest (the current
window) are compared with the B before them (the previous window) exactly as tumbling windows
are (:func:`bayestream.models._windows.compare`); each comparison pits two disjoint windows of
N events, so its null distribution, and the false-alarm probability per comparison, are those
of tumbling N-event windows with the previous window as reference. Consecutive comparisons
overlap, so alarms would cluster: after an alarm, the history before the alarming window is
forgotten (comparisons resume once a full window has followed it, against the alarming window,
as with tumbling windows) and ``cooldown_windows`` windows (B comparisons each) more cannot
alarm. ``reset_on_alarm`` rebuilds the posterior from the prior and the alarming window.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._jit import ZERO, inline, kernel
from bayestream.models._protocol import (
    EXTRA,
    OUT_WIN_END,
    OUT_WIN_START,
    S_COOLDOWN,
    S_EXTRA,
    S_HOP,
    S_KIND,
    S_WINDOW_EVENTS,
)
from bayestream.models._windows import compare, from_stats, stats_add, stats_merge, stats_size

H_POS = 0
H_FILLED = 1
H_COOLDOWN = 2  # the same columns as the tumbling block's cool-down, KL and FAP
H_KL = 3
H_FAP = 4
H_RING = 6


def sliding_width(buckets: int, sw: int) -> int:
    """Columns of the sliding drift block."""
    return H_RING + (2 * buckets + 1) * (2 + sw)


@inline
def clear_sliding(row: np.ndarray, base: int, buckets: int, sw: int) -> None:
    """No bucket, no comparison, no statistic."""
    row[base + H_POS] = 0.0
    row[base + H_FILLED] = 0.0
    row[base + H_COOLDOWN] = 0.0
    row[base + H_KL] = np.nan
    row[base + H_FAP] = np.nan
    row[base + 5] = 0.0
    for b in range(2 * buckets + 1):
        at = base + H_RING + b * (2 + sw)
        row[at] = np.nan
        row[at + 1] = np.nan
        for j in range(sw):
            row[at + 2 + j] = 0.0


@inline
def _slot(base: int, ring: int, pos: int, back: int, sw: int) -> int:
    """Column of the bucket ``back`` places before ``pos`` in the ring."""
    return base + H_RING + ((pos - back) % ring) * (2 + sw)


@inline
def _sum(row: np.ndarray, base: int, ring: int, pos: int, first: int, count: int, kind: int,
         sw: int, acc: np.ndarray) -> None:  # fmt: skip
    """``acc`` = the statistics of ``count`` buckets from ``first`` places before ``pos``."""
    for j in range(sw):
        acc[j] = 0.0
    for b in range(first, first + count):
        stats_merge(acc, 0, 1.0, row, _slot(base, ring, pos, b, sw) + 2, kind, sw)


@kernel
def slide_step(
    row: np.ndarray,
    settings: np.ndarray,
    sw: int,
    fresh: bool,
    t: float,
    x: float,
    size: float,
    out: np.ndarray,
    i: int,
    cur_post: np.ndarray,
    ref_post: np.ndarray,
) -> bool:
    """Feed one applied event; returns whether an alarm fired. ``cur_post`` and
    ``ref_post`` are scratch of the window model's width plus ``sw``."""
    base = int(settings[S_EXTRA]) + EXTRA
    kind = int(settings[S_KIND])
    buckets = int(settings[S_HOP])
    ring = 2 * buckets + 1
    hop = settings[S_WINDOW_EVENTS] / buckets
    if fresh:
        clear_sliding(row, base, buckets, sw)
    pos = int(row[base + H_POS])
    open_at = _slot(base, ring, pos, 0, sw)
    if math.isnan(row[open_at]):
        row[open_at] = t
        row[open_at + 1] = t
    elif t > row[open_at + 1]:
        row[open_at + 1] = t
    stats_add(row, open_at + 2, kind, x, size)
    if row[open_at + 2] < hop:
        return False
    filled = min(row[base + H_FILLED] + 1.0, 2.0 * buckets)
    row[base + H_FILLED] = filled
    alarm = False
    if filled >= 2 * buckets:
        n = cur_post.shape[0] - sw
        cur = cur_post[n:]
        ref = ref_post[n:]
        _sum(row, base, ring, pos, 0, buckets, kind, sw, cur)
        _sum(row, base, ring, pos, buckets, buckets, kind, sw, ref)
        quiet = row[base + H_COOLDOWN] > 0.0
        kl, fap, alarm = compare(
            settings,
            sw,
            cur,
            ZERO,
            ref,
            ZERO,
            stats_size(ref, 0, kind),
            quiet,
            cur_post,
            ref_post,
            out,
            i,
        )
        row[base + H_KL] = kl
        row[base + H_FAP] = fap
        out[i, OUT_WIN_START] = row[_slot(base, ring, pos, buckets - 1, sw)]
        out[i, OUT_WIN_END] = row[open_at + 1]
        if alarm:
            row[base + H_FILLED] = float(buckets)  # forget what came before the alarming window
            row[base + H_COOLDOWN] = settings[S_COOLDOWN] * buckets
        elif quiet:
            row[base + H_COOLDOWN] -= 1.0
    pos = (pos + 1) % ring
    row[base + H_POS] = float(pos)
    fresh_at = _slot(base, ring, pos, 0, sw)
    row[fresh_at] = np.nan
    row[fresh_at + 1] = np.nan
    for j in range(sw):
        row[fresh_at + 2 + j] = 0.0
    return alarm


@kernel
def reset_sliding(
    row: np.ndarray, settings: np.ndarray, sw: int, prior: np.ndarray, scratch: np.ndarray
) -> float:
    """The family parameters ``row[:width]`` rebuilt from ``prior`` and the alarming window
    (the B buckets before the open one); returns its events (the new n_eff)."""
    base = int(settings[S_EXTRA]) + EXTRA
    kind = int(settings[S_KIND])
    buckets = int(settings[S_HOP])
    pos = int(row[base + H_POS])
    _sum(row, base, 2 * buckets + 1, pos, 1, buckets, kind, sw, scratch)
    from_stats(kind, prior, scratch, ZERO, row)
    return scratch[0]  # type: ignore[no-any-return]
