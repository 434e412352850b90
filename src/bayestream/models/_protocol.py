"""The numeric protocol between the engine and the family kernels.

A rule's decision settings travel to a kernel as one ``float64`` vector (``settings``, columns
``S_*`` below, then the drift window prior), and a kernel reports per event into one row of
``out[n, N_OUT]`` (columns below). Numba kernels index these with the module constants, so
the layout is written down once, here.

A family kernel takes its arguments grouped, so that a call reads as words: ``update(rows,
rule, events, out, out_status)`` with the named tuples :class:`Rows` (the rule's state arrays),
:class:`RuleConstants` (what is fixed for the rule) and :class:`Events` (the batch's events in
order).

A stream's row holds, after the family's own ``width`` parameters, ``EXTRA`` columns
(``params[s, width + X_*]``, names below), then the drift block (only when the rule has
``[rule.drift]``; see :mod:`bayestream.models._drift`) from ``params[s, width + EXTRA]`` on:

    X_PROB            the anomaly probability of the stream's newest event (NaN: none)
    X_OUTLIER_RUN     how many of its newest events in a row had P(outlier) > 1/2
    X_MON_*           Bayes-factor monitoring of the current run (:mod:`._monitor`): its
                      events, the sum of their normal scores, the sum of their log no-shift
                      evidence
    X_ALERT_*         one incident, one alert (:mod:`._alerting`): the stream's events so far and
                      the window's two largest surprises with their event numbers
    X_GAP             the exponentially weighted mean of the stream's gaps between events, in
                      event-time seconds (NaN before its second event): its typical spacing,
                      for forecasts

Rows of state-row version 1 had ``EXTRA`` = 2 (the first two); restore widens them
(:mod:`bayestream.state.restore`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# --- per-event outputs: columns of out[i, :] ---------------------------------------------------
OUT_TAIL = 0  # predictive tail probability of the event, before its update (NaN: late)
OUT_PROB = 1  # posterior probability that the event is an outlier (the anomaly probability)
OUT_PIT = 2  # probability integral transform (mid-p for counts; NaN for categories)
OUT_KL = 3  # the stream's latest drift statistic (KL) after this event, NaN before any
OUT_FAP = 4  # its false-alarm probability
OUT_EVALUATED = 5  # 1.0 when a drift window closed and was compared at this event
OUT_ALARM = 6  # 1.0 when that comparison raised a drift alarm
OUT_WIN_START = 7  # bounds of the window compared at this event
OUT_WIN_END = 8
OUT_CHANGE = 9  # change of the mean (current - reference); categories: index of the riser
OUT_WIN_N = 10  # events in the window
OUT_REF_N = 11  # effective events behind the reference
OUT_PRED_LO = 12  # the central predictive interval the event was scored against (before its
OUT_PRED_HI = 13  # update), computed only for events that may be anomalies (S_IVL_* below)
N_OUT = 14

# --- rule settings: columns of settings[:] -----------------------------------------------------
S_ROBUST = 0  # 1.0: update with weight 1 - P(outlier); 0.0: the plain conjugate update
S_OUTLIER_RATE = 1  # prior probability that an event is an outlier
S_OUTLIER_SCALE = 2  # the outlier component is the predictive widened by this factor
S_EXTRA = 3  # first column after the family's parameters (the family width)
S_DRIFT = 4  # 1.0 when the rule has drift detection
S_WINDOW_SECONDS = 5  # tumbling event-time windows of this length (0: count windows)
S_WINDOW_EVENTS = 6  # tumbling windows of this many events (0: time windows)
S_BASELINE = 7  # 1.0: reference = exponentially weighted baseline; 0.0: previous window
S_DECAY = 8  # baseline weight kept per window, 1 - 1 / baseline_windows
S_FALSE_ALARM = 9  # false-alarm probability per window compared
S_COOLDOWN = 10  # windows after an alarm that cannot alarm
S_RESET = 11  # 1.0: after an alarm the posterior restarts from the prior plus the new regime
S_MIN_EVENTS = 12  # a window closes only once it holds this many events
S_DOF = 13  # degrees of freedom of the chi-square null (parameters of the window model)
S_KIND = 14  # what a window accumulates: KIND_* below
S_NULL = 15  # points T of a simulated null table (0: the chi-square null)
S_HOP = 16  # sliding count windows: buckets per window (window_events / hop_events); 0: tumbling
S_ROBUST_MIN = 17  # robust weights apply once a stream's n_eff reaches this; before, weight 1
S_RUN_RESET = 18  # this many events in a row with P(outlier) > 1/2 restart the posterior (0: never)
S_EXACT = 19  # count windows: at most this many splits for the exact false-alarm probability
S_EXACT_COUNT = 20  # ... and only up to this expected count per window (inf: any)
S_IVL_TAIL = 21  # events with tail probability <= this get their predictive interval (-1: none)
S_IVL_PROB = 22  # ... and events with anomaly probability >= this (0: none)
S_IVL_UPPER = 23  # the interval's upper probability, (1 + level) / 2 (0: no intervals at all)
S_MONITOR = 24  # 1.0: Bayes-factor monitoring decides "outlier or new level" (:mod:`._monitor`)
S_SHIFT_LOG_ODDS = 25  # log prior odds that a level shift starts at an event
S_MONITOR_RUN = 26  # events in a run before a shift can be accepted
S_MONITOR_ACCEPT = 27  # log posterior odds of a shift that accept it
S_ALERT_WINDOW = 28  # alert_window_events (0: every anomaly is an alert)
N_SETTINGS = 29  # then the window prior (window-model parameters), then the null table:
# T statistics x_1 < ... < x_T and the log false-alarm probabilities log P(X >= x_j)

# --- what a drift window accumulates ----------------------------------------------------------
KIND_REAL = 0  # (events, mean, M2): Normal-Gamma window model
KIND_COUNT_EXPOSURE = 1  # (events, sum of counts, sum of exposures): Gamma window model
KIND_COUNT_TRIALS = 2  # (events, sum of successes, sum of failures): Beta window model
KIND_CATEGORY = 3  # (events, count per category): Dirichlet window model

# --- columns after the family parameters: params[s, width + X_*] ----------------------------
X_PROB = 0  # the anomaly probability of the newest event (NaN: none)
X_OUTLIER_RUN = 1  # newest events in a row with P(outlier) > 1/2
X_MON_K = 2  # events in the monitored run (0: none)
X_MON_SUM = 3  # sum of their normal scores u
X_MON_LOGM0 = 4  # sum of their log no-shift evidence, log((1 - r) + r q/p)
X_ALERT_COUNT = 5  # events the stream has had (numbers the events for the alert window)
X_ALERT_TOP = 6  # (event number, surprise) of the window's largest surprise, then the next
X_GAP = 10  # exponentially weighted mean gap between the stream's events (seconds; NaN: none)
GAP_WEIGHT = 0.05  # the weight of each new gap in X_GAP (after the first)
EXTRA = 11
EXTRA_V1 = 2  # EXTRA of state-row version 1 (X_PROB, X_OUTLIER_RUN)


# --- grouped kernel arguments (numba types a named tuple field by field) -----------------------
class Rows(NamedTuple):
    """A rule's state, one row per stream (slot); see :mod:`bayestream.models._stream`."""

    params: np.ndarray  # float64[n_slots, width + EXTRA (+ drift block)]
    last_ts: np.ndarray  # float64[n_slots]: event time of the newest event applied (NaN: none)
    n_eff: np.ndarray  # float64[n_slots]: the decayed number of events behind the posterior
    obs_size: np.ndarray  # float64[n_slots]: the newest event's trials or exposure


class RuleConstants(NamedTuple):
    """What stays fixed for a rule's events."""

    prior: np.ndarray  # float64[width]: the family's part of a new row
    settings: np.ndarray  # float64: columns S_* above, then the window prior and null tables
    half_life: float  # event-time seconds, or events when per_event (inf: no forgetting)
    per_event: bool
    side: int  # the tail: 0 upper, 1 lower, 2 two-sided
    max_lateness: float  # an event this far behind its stream's newest is late


class Events(NamedTuple):
    """The batch's events of one rule, in order."""

    slots: np.ndarray  # int64[m]: the row of each event's stream
    ts: np.ndarray  # float64[m]: event time
    x: np.ndarray  # float64[m]: the observation (a category's index for categories)
    size: np.ndarray  # float64[m]: trials or exposure (1 where the family has none)
    expire_before: np.ndarray  # float64[m]: a stream whose newest event is older restarts
