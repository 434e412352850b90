r"""The per-event skeleton shared by the families: one ``update`` kernel per family.

Every family does the same things to an event, in this order; only the steps marked *family*
differ between them:

1. late events, idle streams, forgetting by elapsed time: :func:`._stream.begin_event` gives
   the decay factor ``d`` (or says the event is late), then the *family* moves its parameters
   toward the prior by ``d`` (``forget``, called only when ``d < 1``: at ``d = 1`` the formulas
   need not give back the same floats), and advances its state by the elapsed event time
   ``dt`` to the event's time ``t`` (``advance``: a dynamic linear model's evolution; nothing
   for the conjugate families);
2. on that posterior (the one at the event's time, before the event), the *family's*
   predictive scores the event (``score``): its tail probability, PIT, and the log density
   ratio ``log q(x) - log p(x)`` of the outlier component against the predictive; an event
   that may become an anomaly record also gets the *family's* central predictive interval
   (``interval``);
3. outlier or new level: with ``robust``, Bayes-factor monitoring (:mod:`._monitor`) turns
   the score into the anomaly probability and the update's weight, and may accept a shift of
   level, on which the *family* intervenes (``intervene``: it widens its level, or restarts
   from the prior) and takes the event in full; without monitoring, the anomaly probability is
   the outlier mixture's (:func:`._outlier.mixture_probability`). So many outliers in a row
   restart the posterior whatever the monitor says (:func:`._stream.outlier_run`: a change
   that is not a shift of level, e.g. of variance);
4. drift windows (:func:`._drift.drift_step`) see the event, with ``robust`` the value the
   *family* says they see (a real value winsorised; counts and categories as they are), and
   an alarm with ``reset_on_alarm`` rebuilds the posterior from the new regime;
5. otherwise the *family's* update with weight ``w`` (``observe``): with ``robust``, once the
   stream has ``robust_min_events`` events behind it, the probability that the event is regular
   under the current posterior, else 1.

A family (a new one too) supplies per-event functions, compiled with :func:`._jit.inline`,
on ``theta``, the view of its own parameters in the stream's row:

    forget(theta, prior, d)               in place: toward the prior by d (only d < 1)
    advance(theta, prior, dt, t)          in place: evolve by dt to event time t (optional)
    score(theta, x, size, side, widen)    -> (tail, pit, log_ratio, window_x)
    interval(theta, size, upper)          -> (lo, hi), the central interval to P = upper
    observe(theta, x, size, w)            in place: the update with weight w
    intervene(theta, prior, widen)        in place: let the level move (optional: restart)

and gets its kernel from :func:`make_update`. ``widen`` is the rule's ``outlier_scale``; ``size``
the event's trials or exposure (1 where the family has none); ``window_x`` the value drift
windows see under ``robust``; ``dt`` the elapsed event time (events with ``per_event``; 0 for a
stream's first event or an out-of-order one). The log ratio is the log Bayes factor of
"outlier" against "this posterior", so a decision made per event for every family belongs
here, once.

How a family's kernel is made: the template :func:`_update` calls the placeholders
``_forget``, ``_advance``, ``_score``, ``_interval``, ``_observe`` and ``_intervene``;
:func:`make_update` copies the template as a new function whose globals bind them to the
family's functions and compiles it. numba resolves globals at compile time, so the family's
functions inline as if written in place. A closure would do the same but numba cannot cache it
across processes (the cache key of a closure pickles its cells, and a pickled dispatcher
carries a per-process id): every process would compile every family again. Each family's
kernel is cached in a file of its own, named by the family and a hash of its functions' code
(``_skeleton.update_<family>_<hash>-<line>...``), as numba keys the cached code of a function on
its bytecode, which is the template's for all of them; a change in a helper those functions
call is caught by the cache folder's hash of the package's sources (:mod:`._jit`).
"""

from __future__ import annotations

import hashlib
import math
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from bayestream.models._drift import drift_step, reset_posterior, window_stats_width
from bayestream.models._jit import kernel
from bayestream.models._monitor import monitor_step
from bayestream.models._outlier import mixture_probability, wants_interval
from bayestream.models._protocol import (
    GAP_WEIGHT,
    OUT_PIT,
    OUT_PRED_HI,
    OUT_PRED_LO,
    OUT_PROB,
    OUT_TAIL,
    S_DRIFT,
    S_EXTRA,
    S_IVL_UPPER,
    S_MONITOR,
    S_OUTLIER_RATE,
    S_OUTLIER_SCALE,
    S_ROBUST,
    S_ROBUST_MIN,
    S_RUN_RESET,
    X_GAP,
    X_MON_K,
    X_MON_LOGM0,
    X_MON_SUM,
    X_PROB,
    Events,
    Rows,
    RuleConstants,
)
from bayestream.models._stream import (
    APPLIED,
    LATE,
    begin_event,
    no_advance,
    outlier_run,
    restart,
)


def _unbound(*args: Any) -> Any:
    raise NotImplementedError("a family's function: bound per family by make_update")


# the family's per-event functions (see the module docstring), bound per family
_forget: Callable[..., None] = _unbound
_advance: Callable[..., None] = _unbound
_score: Callable[..., tuple[float, float, float, float]] = _unbound
_interval: Callable[..., tuple[float, float]] = _unbound
_observe: Callable[..., None] = _unbound
_intervene: Callable[..., None] = _unbound


def _update(
    rows: Rows, rule: RuleConstants, events: Events, out: np.ndarray, out_status: np.ndarray
) -> None:
    """Apply ``events`` in order to their streams' rows. Per event ``i``: ``out[i]`` (columns
    of :mod:`._protocol`) and ``out_status[i]``, APPLIED or LATE (a late event touches
    nothing). The steps are in the module docstring."""
    params, last_ts, n_eff, obs_size = rows
    slots, ts, x, size, expire_before = events
    prior, settings = rule.prior, rule.settings
    width = prior.shape[0]
    robust = settings[S_ROBUST] == 1.0
    robust_min = settings[S_ROBUST_MIN]
    run_reset = settings[S_RUN_RESET]
    monitor = robust and settings[S_MONITOR] == 1.0
    rate = settings[S_OUTLIER_RATE]
    widen = settings[S_OUTLIER_SCALE]
    extra = int(settings[S_EXTRA])
    drift = settings[S_DRIFT] == 1.0
    sw = window_stats_width(settings)
    cur_post, ref_post, scratch = np.empty(width + sw), np.empty(width + sw), np.empty(sw)
    for i in range(slots.shape[0]):
        s = slots[i]
        newest = last_ts[s]
        fresh = not newest >= expire_before[i]  # never seen, or idle past its TTL
        d = begin_event(
            params,
            last_ts,
            n_eff,
            prior,
            s,
            ts[i],
            rule.half_life,
            rule.per_event,
            rule.max_lateness,
            expire_before[i],
        )
        if d < 0.0:
            out_status[i] = LATE
            continue
        theta = params[s, :width]
        if d != 1.0:
            _forget(theta, prior, d)
        if fresh:
            dt = 0.0
        elif rule.per_event:
            dt = 1.0
        else:
            dt = max(ts[i] - newest, 0.0)
        _advance(theta, prior, dt, ts[i])
        row = params[s]
        if not fresh and ts[i] > newest:  # the stream's typical spacing, for forecasts
            gap = row[extra + X_GAP]
            gap_now = ts[i] - newest
            row[extra + X_GAP] = gap_now if math.isnan(gap) else gap + GAP_WEIGHT * (gap_now - gap)
        tail, pit, log_ratio, window_x = _score(theta, x[i], size[i], rule.side, widen)
        accepted = False
        if monitor and n_eff[s] >= robust_min:
            prob, regular, accepted = monitor_step(
                row, extra, settings, tail, pit, rule.side, log_ratio
            )
        else:
            prob = mixture_probability(log_ratio, rate)
            regular = 1.0 - prob
        out[i, OUT_TAIL] = tail
        out[i, OUT_PIT] = pit
        out[i, OUT_PROB] = prob
        if wants_interval(settings, tail, prob):
            lo, hi = _interval(theta, size[i], settings[S_IVL_UPPER])
            out[i, OUT_PRED_LO] = lo
            out[i, OUT_PRED_HI] = hi
        params[s, extra + X_PROB] = prob
        if outlier_run(params, n_eff, prior, s, extra, prob, run_reset):  # then in full
            row[extra + X_MON_K] = 0.0
            row[extra + X_MON_SUM] = 0.0
            row[extra + X_MON_LOGM0] = 0.0
        out_status[i] = APPLIED
        obs_size[s] = size[i]
        xw = window_x if robust else x[i]
        if drift and drift_step(
            row, settings, fresh, ts[i], xw, size[i], out, i, cur_post, ref_post
        ):
            n_eff[s] = reset_posterior(row, settings, prior, scratch)
            continue
        if accepted:  # a new level: the family lets it move, the event counts in full
            _intervene(theta, prior, widen)
            n_eff[s] = 0.0
        w = regular if robust and n_eff[s] >= robust_min else 1.0
        _observe(theta, x[i], size[i], w)
        n_eff[s] += w


_MADE: set[str] = set()


def _fingerprint(*functions: Any) -> str:
    """A short hash of the family functions' own code (bytecode, names, literal constants):
    part of the cache file's name, so that an edited family function is never served a stale
    kernel (a family outside the package, as in tests, or with ``NUMBA_CACHE_DIR`` set)."""
    digest = hashlib.sha256()
    for function in functions:
        code = getattr(function, "py_func", function).__code__
        digest.update(code.co_code)
        digest.update(" ".join(code.co_names).encode())
        consts = (c for c in code.co_consts if isinstance(c, (int, float, str, bytes, type(None))))
        digest.update(repr(tuple(consts)).encode())
    return digest.hexdigest()[:8]


def make_update(
    family: str,
    forget: Callable[..., None],
    score: Callable[..., tuple[float, float, float, float]],
    interval: Callable[..., tuple[float, float]],
    observe: Callable[..., None],
    advance: Callable[..., None] = no_advance,
    intervene: Callable[..., None] = restart,
) -> Callable[[Rows, RuleConstants, Events, np.ndarray, np.ndarray], None]:
    """The ``update`` kernel of ``family`` (a name used once: it names the cache file) from its
    per-event functions (module docstring); without ``advance`` nothing evolves with time but
    forgetting, without ``intervene`` an accepted shift restarts the posterior from the prior
    (for families whose parameters are pseudo-counts: the new level's events then decide)."""
    if family in _MADE:
        raise ValueError(f"an update kernel for {family!r} exists already")
    _MADE.add(family)
    bound = dict(_update.__globals__)
    functions = dict(
        _forget=forget,
        _advance=advance,
        _score=score,
        _interval=interval,
        _observe=observe,
        _intervene=intervene,
    )
    bound.update(functions)
    fn = types.FunctionType(_update.__code__, bound, "update", _update.__defaults__)
    fn.__qualname__ = f"update_{family}_{_fingerprint(*functions.values())}"
    fn.__doc__ = _update.__doc__
    fn.__annotations__ = dict(_update.__annotations__)
    return kernel(fn)


__all__ = ["make_update"]
