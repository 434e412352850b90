r"""One incident, one alert: which selected anomalies page someone.

Notation. A stream's events are numbered ``n = 1, 2, ...`` in the order they are applied (late
events are not applied and get no number). The *surprise* of event ``n`` is

    v_n = -log10(tail_n),

``tail_n`` its predictive tail probability under the stream's posterior *before* its own update
(``OUT_TAIL``, the same number for every family: mid-p for counts, per the rule's ``tail``
side). ``v_n`` is in ``[0, inf]`` (``inf``: an observation the predictive calls impossible);
an event whose tail is NaN has no surprise: it is numbered, never alerts and never raises the
window. With ``W = alert_window_events``, event ``n`` is an *alert* when

    selected_n  and  v_n > max{ v_j : n - W <= j < n }     (max of nothing = -inf),

``selected_n`` being the rule's anomaly selection (:mod:`bayestream.engine.alerts`). So the
first point of a burst alerts, the rest of the burst does not unless one of them is more
surprising than everything in the ``W`` events before it; ``W = 0`` makes every selected
anomaly an alert. Non-selected events count in the window like any other.

State (:mod:`._protocol`, after the family's ``width`` parameters): ``X_ALERT_COUNT`` (the
stream's events so far, the number of the newest) and at ``X_ALERT_TOP`` two records ``(j1,
v1), (j2, v2)`` with ``j1 < j2`` and ``v1 > v2`` (an empty record is ``(-inf, -inf)``).

The exact window maximum is kept by a monotone deque of "suffix maxima": the records ``(j,
v_j)`` of the window's events more surprising than every later one, oldest (largest) first. A
new event drops the records it ties or beats and is appended; records older than the window
leave from the front; the front is the maximum. That deque can grow to ``W`` records, a row has
room for two. So:

- while the deque holds at most two records, the two slots *are* the deque (exact);
- when a third record would be appended (``v_n < v2``), the newer two merge into ``(n, v2)``:
  the larger surprise with the later expiry. Every event of the window is then still covered by
  a record at least as late and at least as large, so the maximum is never underestimated and
  an alert is never raised where the exact rule would not raise one. What is lost: ``v2`` is
  remembered until event ``n`` leaves the window rather than its own event, so a later point
  may not alert where the exact rule would. A merge happens only while the top record is in the
  window, so the second record's surprise belongs to an event at most ``W - 1`` before its
  number, and a record's surprise is never older than ``2 W - 1`` events when it is compared.

So the window maximum lies between the exact maxima over the previous ``W`` and ``2 W - 1``
events (``W >= 1``): every alert is an alert of the exact rule, and every alert of the exact
rule with a window of ``2 W - 1`` events is an alert here. It equals the exact rule while the
deque never held a third record (since the slots were last empty, or last held one record).
Merges are common: the newest event is always a record, so the deque holds three whenever the
window has two peaks and a quieter event after them. They matter only for a point that beats
the later peak but not the earlier one, after the earlier one has left the window.

An event that beats the top record is remembered exactly ``W`` events, whatever follows (the
top is never merged into), so the peak of an incident keeps its later points quiet.
Everything is per stream, in event order, with its state in the row: the alerts do not depend
on how the input is cut into batches (when the selection does not: ``fdr`` selects per batch).
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._jit import kernel
from bayestream.models._protocol import S_ALERT_WINDOW, S_EXTRA, X_ALERT_COUNT, X_ALERT_TOP


def surprise(tail: np.ndarray) -> np.ndarray:
    """``-log10(tail)`` (``inf`` at 0, NaN for NaN): the figure the window compares."""
    with np.errstate(divide="ignore"):
        out: np.ndarray = -np.log10(tail)
    return out


@kernel
def mark_alerts(
    params: np.ndarray,
    settings: np.ndarray,
    slots: np.ndarray,
    tail: np.ndarray,
    selected: np.ndarray,
    alert: np.ndarray,
) -> None:
    """Number each event ``i`` (applied, in order) in its stream ``slots[i]``, set ``alert[i]``
    (``selected[i]`` and its surprise above the window's maximum) and advance the stream's
    window in ``params`` (rows of the rule's state; ``settings`` the rule's vector). In place,
    allocation-free; the rule and its two-record approximation are in the module docstring."""
    c = int(settings[S_EXTRA]) + X_ALERT_COUNT
    t = int(settings[S_EXTRA]) + X_ALERT_TOP  # j1 v1 j2 v2
    w = settings[S_ALERT_WINDOW]
    empty = -math.inf
    for i in range(slots.shape[0]):
        row = params[slots[i]]
        n = row[c] + 1.0
        row[c] = n
        oldest = n - w  # the window: events n - W .. n - 1
        if row[t] < oldest:  # the top record left the window: the second moves up
            row[t] = row[t + 2]
            row[t + 1] = row[t + 3]
            row[t + 2] = empty
            row[t + 3] = empty
            if row[t] < oldest:
                row[t] = empty
                row[t + 1] = empty
        p = tail[i]
        if math.isnan(p):
            alert[i] = False
            continue
        v = -math.log10(p) if p > 0.0 else math.inf
        alert[i] = selected[i] and v > row[t + 1]
        if v >= row[t + 1]:  # beats (or ties) both: the window's only record
            row[t] = n
            row[t + 1] = v
            row[t + 2] = empty
            row[t + 3] = empty
        elif v >= row[t + 3]:  # beats the second: replaces it
            row[t + 2] = n
            row[t + 3] = v
        else:  # a third record: merged into the second, which now expires with event n
            row[t + 2] = n


__all__ = ["mark_alerts", "surprise"]
