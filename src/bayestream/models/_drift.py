r"""Drift by windowed KL divergence: per-stream tumbling windows compared with a reference.

Each stream of a rule with ``[rule.drift]`` keeps, in its row from column
``D = settings[S_EXTRA] + EXTRA`` on, a drift block:

    D+0 start of the current window (event time of its first event; NaN: empty)
    D+1 newest event time in the current window
    D+2 windows of cool-down left
    D+3 latest KL statistic, D+4 its false-alarm probability (NaN before the first)
    D+5 sum of squared weights behind the reference, sum_j w_j^2 n_j (see below)
    D+6 ...        statistics of the current window (``sw`` columns)
    D+6+sw ...     statistics of the reference (``sw`` columns)

Window statistics and the window model are in :mod:`bayestream.models._windows`; a window's
posterior is a weak *window prior* (for real values the reference prior of a normal sample, for
counts and categories the rule's prior with its pseudo-counts scaled down) updated with the
window's statistics. Sliding windows (``hop_events``) are in :mod:`bayestream.models._sliding`.
Windows
see every applied event with weight 1, not the robust weight: a regime change that the robust
posterior refuses to follow is exactly what drift detection must see. With ``robust``, a real
value enters the windows winsorised at ``WINDOW_CLIP`` predictive scales from the stream's
predictive centre (the values a shift brings still move the window's mean by up to that much,
while one wild value among 50 no longer fakes a variance change); counts and categories
enter as they are.

Windows tumble: in event time (``window_seconds``: aligned windows ``[k T, (k+1) T)``; a window
closes when an event of a later window arrives) or in events (``window_events``: a window
closes with its N-th event). A window with fewer than ``min_window_events`` events does not
close; it extends. An out-of-order event (within the lateness) joins the current window.

The statistic. With ``n_c`` and ``n_r`` the sizes (pseudo-counts: kappa, exposure, trials or
events) of the current and reference window posteriors, ``r = n_r / n_c`` and ``k`` the number
of parameters, for windows drawn from one distribution the posteriors are asymptotically normal
with covariances I^-1 / n_c and I^-1 / n_r, so

    KL(current || reference) ~ k/2 (r - 1 - ln r) + 1/2 n_r (1/n_c + 1/n*) chi2_k,

where n* is the effective size of the reference estimate: n* = n_r for the previous window; for
the baseline, an exponentially weighted sum of past windows with weights w_j = lambda^j, n* =
(sum w_j n_j)^2 / sum w_j^2 n_j (Kish). For two windows of equal size this is KL ~ chi2_k, the
remark in DESIGN.md. The false-alarm probability of an observed KL is the chi2_k survival
function of the statistic solved from this line, or, where a simulated null table is given
(real values in count windows, :mod:`bayestream.engine.null`), read from that table; for
windows of few counts it is exact given their total (:mod:`bayestream.models._conditional`),
which replaces both. An alarm is raised when it is below the configured ``false_alarm_rate``
and the stream is not cooling down.

After a window is compared it becomes (or, for the baseline, is added to) the reference. After
an alarm the reference *restarts* from the alarming window, and for ``cooldown_windows``
windows each closing window replaces the reference and cannot alarm: one shift gives one alarm,
and the mixed window that straddles a change does not linger in the baseline. With
``reset_on_alarm`` the family's posterior then restarts from the rule's prior updated with the
new regime's events: the reference and the current window (the event that closed the window
included, exactly once).
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._jit import ZERO, inline, kernel
from bayestream.models._protocol import (
    EXTRA,
    KIND_CATEGORY,
    KIND_REAL,
    N_OUT,
    OUT_EVALUATED,
    OUT_FAP,
    OUT_KL,
    OUT_WIN_END,
    OUT_WIN_START,
    S_BASELINE,
    S_COOLDOWN,
    S_DECAY,
    S_EXTRA,
    S_HOP,
    S_KIND,
    S_MIN_EVENTS,
    S_RESET,
    S_WINDOW_EVENTS,
    S_WINDOW_SECONDS,
)
from bayestream.models._sliding import reset_sliding, slide_step
from bayestream.models._windows import (
    compare,
    from_stats,
    stats_add,
    stats_merge,
    stats_size,
)

B_START = 0
B_LAST = 1
B_COOLDOWN = 2
B_KL = 3
B_FAP = 4
B_REF_SQ = 5
B_STATS = 6
WINDOW_CLIP = 4.0
"""With ``robust``, a real value enters the windows winsorised at this many predictive scales
from the predictive's centre, so one wild value cannot fake a variance change."""


@inline
def window_stats_width(settings: np.ndarray) -> int:
    """Columns of one window's statistics, from the rule's settings (categories: K + 1, the
    family's width being K)."""
    if int(settings[S_KIND]) == KIND_CATEGORY:
        return int(settings[S_EXTRA]) + 1
    return 3


def stats_width(kind: int, categories: int) -> int:
    """Columns of one window's statistics."""
    return categories + 1 if kind == KIND_CATEGORY else 3


def block_width(kind: int, categories: int) -> int:
    """Columns of the drift block."""
    return B_STATS + 2 * stats_width(kind, categories)


# --- the per-event step ---------------------------------------------------------------------


@inline
def clear(row: np.ndarray, base: int, sw: int) -> None:
    """An empty drift block: no window, no reference, no statistic."""
    row[base + B_START] = np.nan
    row[base + B_LAST] = np.nan
    row[base + B_COOLDOWN] = 0.0
    row[base + B_KL] = np.nan
    row[base + B_FAP] = np.nan
    row[base + B_REF_SQ] = 0.0
    for j in range(2 * sw):
        row[base + B_STATS + j] = 0.0


@kernel
def _close(
    row: np.ndarray,
    base: int,
    sw: int,
    settings: np.ndarray,
    out: np.ndarray,
    i: int,
    cur_post: np.ndarray,
    ref_post: np.ndarray,
) -> bool:
    """Compare the current window with the reference, roll it in; return whether it alarmed."""
    kind = int(settings[S_KIND])
    cur = base + B_STATS
    ref = cur + sw
    seconds = settings[S_WINDOW_SECONDS]
    start = row[base + B_START]
    last = row[base + B_LAST]
    if seconds > 0.0:
        start = math.floor(start / seconds) * seconds
        last = (math.floor(last / seconds) + 1.0) * seconds
    n_cur = stats_size(row, cur, kind)
    alarm = False
    if row[ref] > 0.0:
        n_ref = stats_size(row, ref, kind)
        n_star = n_ref * n_ref / row[base + B_REF_SQ] if row[base + B_REF_SQ] > 0.0 else n_ref
        quiet = row[base + B_COOLDOWN] > 0.0
        kl, fap, alarm = compare(
            settings, sw, row, cur, row, ref, n_star, quiet, cur_post, ref_post, out, i
        )
        row[base + B_KL] = kl
        row[base + B_FAP] = fap
        out[i, OUT_WIN_START] = start
        out[i, OUT_WIN_END] = last
    if alarm:
        row[base + B_COOLDOWN] = settings[S_COOLDOWN]
        replace = True
    elif row[base + B_COOLDOWN] > 0.0:
        row[base + B_COOLDOWN] -= 1.0
        replace = True
    else:
        replace = settings[S_BASELINE] == 0.0 or row[ref] == 0.0
    decay = 0.0 if replace else settings[S_DECAY]
    row[base + B_REF_SQ] = decay * decay * row[base + B_REF_SQ] + n_cur
    stats_merge(row, ref, decay, row, cur, kind, sw)
    for j in range(sw):
        row[cur + j] = 0.0
    row[base + B_START] = np.nan
    row[base + B_LAST] = np.nan
    return alarm


@kernel
def drift_step(
    row: np.ndarray,
    settings: np.ndarray,
    fresh: bool,
    t: float,
    x: float,
    size: float,
    out: np.ndarray,
    i: int,
    cur_post: np.ndarray,
    ref_post: np.ndarray,
) -> bool:
    """Feed one applied event to the stream's windows; report the latest statistic in
    ``out[i]``. Returns True when an alarm asks the family to reset its posterior
    (``reset_on_alarm``): the caller then rebuilds it with :func:`reset_posterior`."""
    base = int(settings[S_EXTRA]) + EXTRA
    kind = int(settings[S_KIND])
    sw = window_stats_width(settings)
    if settings[S_HOP] > 0.0:
        alarm = slide_step(row, settings, sw, fresh, t, x, size, out, i, cur_post, ref_post)
        out[i, OUT_KL] = row[base + B_KL]
        out[i, OUT_FAP] = row[base + B_FAP]
        return alarm and settings[S_RESET] == 1.0
    if fresh:
        clear(row, base, sw)
    cur = base + B_STATS
    seconds = settings[S_WINDOW_SECONDS]
    need = settings[S_MIN_EVENTS]
    alarm = False
    if seconds > 0.0 and row[cur] > 0.0 and row[cur] >= need:  # noqa: SIM102
        if np.floor(t / seconds) > np.floor(row[base + B_LAST] / seconds):  # a later window
            alarm = _close(row, base, sw, settings, out, i, cur_post, ref_post)
    stats_add(row, cur, kind, x, size)
    if math.isnan(row[base + B_START]):
        row[base + B_START] = t
        row[base + B_LAST] = t
    elif t > row[base + B_LAST]:
        row[base + B_LAST] = t
    events = settings[S_WINDOW_EVENTS]
    if events > 0.0 and row[cur] >= events and row[cur] >= need:
        alarm = _close(row, base, sw, settings, out, i, cur_post, ref_post) or alarm
    out[i, OUT_KL] = row[base + B_KL]
    out[i, OUT_FAP] = row[base + B_FAP]
    return alarm and settings[S_RESET] == 1.0


@kernel
def reset_posterior(
    row: np.ndarray, settings: np.ndarray, prior: np.ndarray, scratch: np.ndarray
) -> float:
    """Rebuild the family parameters ``row[:width]`` as ``prior`` updated with the reference
    and the current window (the new regime); returns the events behind it (the new n_eff)."""
    sw = window_stats_width(settings)
    if settings[S_HOP] > 0.0:
        return reset_sliding(row, settings, sw, prior, scratch)
    base = int(settings[S_EXTRA]) + EXTRA
    kind = int(settings[S_KIND])
    cur = base + B_STATS
    for j in range(sw):
        scratch[j] = row[cur + sw + j]
    stats_merge(scratch, 0, 1.0, row, cur, kind, sw)
    from_stats(kind, prior, scratch, ZERO, row)
    return scratch[0]  # type: ignore[no-any-return]


@kernel
def replay_windows(settings: np.ndarray, sw: int, draws: np.ndarray) -> np.ndarray:
    """False-alarm probabilities of the comparisons made when streams' windows have the
    statistics ``draws[s, j, :sw]`` (stream s, window j, in order), through the same closing
    step as live events; NaN where no comparison was made. Used to simulate null
    distributions quickly: a window's statistics can be drawn without its events. Comparisons
    made while cooling down (which cannot alarm) are NaN too."""
    streams, windows = draws.shape[0], draws.shape[1]
    base = int(settings[S_EXTRA]) + EXTRA
    row = np.empty(base + B_STATS + 2 * sw)
    out = np.full((1, N_OUT), np.nan)
    faps = np.full((streams, windows), np.nan)
    mw = 4 if int(settings[S_KIND]) == KIND_REAL else 2
    cur_post, ref_post = np.empty(mw + sw), np.empty(mw + sw)
    for s in range(streams):
        clear(row, base, sw)
        for j in range(windows):
            for c in range(sw):
                row[base + B_STATS + c] = draws[s, j, c]
            row[base + B_START] = float(j)
            row[base + B_LAST] = float(j)
            out[0, OUT_EVALUATED] = 0.0
            quiet = row[base + B_COOLDOWN] > 0.0
            _close(row, base, sw, settings, out, ZERO, cur_post, ref_post)
            if out[0, OUT_EVALUATED] == 1.0 and not quiet:
                faps[s, j] = row[base + B_FAP]
    return faps
