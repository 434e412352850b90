"""Labelled synthetic service telemetry for the quality benchmark (``bench_quality.py``).

Every series is drawn from a seeded :class:`numpy.random.Generator`; the same seed gives the
same series, labels and timestamps. A series is one metric of one service, with:

- ``ts``: increasing epoch seconds (1-minute or 5-minute sampling, optionally jittered and with
  missing hours), ``values``: the observations (quantised as exporters report them);
- ``anomalies``: labelled windows ``(start_ts, end_ts)``: the injected anomaly's extent plus a
  grace period (``GRACE_SECONDS``, at least ``GRACE_STEPS`` samples) in which a detection
  still counts, as in windowed (NAB-style) scoring;
- ``change_points``: labelled times of a lasting change of the generating process (level,
  variance, trend, regime), each also the start of a neutral zone for anomaly scoring
  (``NEUTRAL_SECONDS``: the first alarms of a new regime are neither rewarded nor charged);
- ``scored_from``: the end of a probation period (15 % of the series, at least one day) in
  which no label is placed and no detection is scored, as NAB's probationary period.

What real telemetry looks like, and what the archetypes take from it (see ``docs/quality.md``
for references): request rates follow a daily cycle with a night trough and a weekday/weekend
cycle, with over-dispersed counts (negative binomial, not Poisson) and zeros at night on small
services; latencies are positive, right-skewed and heavy-tailed (log-normal body with Student-t
tails on the log scale), rise with load and are reported in whole milliseconds; CPU is bounded,
follows the load, drifts with slow trends and jumps between regimes after deploys; error
counts are sparse (mostly zeros) and burst; memory grows (leaks) and drops at restarts; agents
that push their metrics report with jitter and drop out for hours. Scheduled behaviour (daily
batch windows, business-hours modes, weekends) is normal and never labelled.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

START_TS = 1_772_409_600.0  # 2026-03-02 00:00 UTC, a Monday
US_DST = 1_772_953_200.0  # 2026-03-08 07:00 UTC: clocks in the US go forward an hour
DAY = 86_400.0
HOUR = 3_600.0
MINUTE = 60.0
GRACE_SECONDS = 30 * MINUTE
GRACE_STEPS = 3
NEUTRAL_SECONDS = 2 * HOUR
PROBATION_FRACTION = 0.15
MIN_SEPARATION = 12 * HOUR  # between any two labels of a series


@dataclass(frozen=True)
class Series:
    """One labelled series (see the module docstring)."""

    name: str
    archetype: str
    ts: np.ndarray
    values: np.ndarray
    step: float
    anomalies: tuple[tuple[float, float], ...]
    change_points: tuple[float, ...]
    scored_from: float
    kind: str  # "real" or "count"
    notes: dict[str, str] = field(default_factory=dict)
    anomaly_kinds: tuple[str, ...] = ()  # what was injected in each window
    change_kinds: tuple[str, ...] = ()  # what changed at each change point


@dataclass
class _Plan:
    """Where the labels of a series go (indices into its grid), drawn before the values."""

    ts: np.ndarray
    step: float
    scored_from: float
    anomaly_idx: list[int]
    cp_idx: list[int]


# --- time grid and cycles -----------------------------------------------------------------


def grid(
    rng: np.random.Generator,
    days: float,
    step: float,
    *,
    jitter: float = 0.0,
    gaps: int = 0,
) -> np.ndarray:
    """Timestamps every ``step`` seconds over ``days`` from a random weekday midnight;
    ``jitter`` moves each by up to that fraction of ``step``, ``gaps`` removes that many
    stretches of 1 to 6 hours (an agent or scraper down)."""
    start = START_TS + float(rng.integers(0, 7)) * DAY
    n = int(days * DAY / step)
    ts = start + step * np.arange(n, dtype=np.float64)
    if jitter:
        ts = ts + rng.uniform(-jitter, jitter, n) * step
        ts = np.sort(ts)
    keep = np.ones(n, dtype=bool)
    for _ in range(gaps):
        length = rng.uniform(1, 6) * HOUR
        begin = ts[0] + rng.uniform(0.2, 0.95) * (ts[-1] - ts[0])
        keep &= ~((ts >= begin) & (ts < begin + length))
    return ts[keep]


def diurnal(
    ts: np.ndarray,
    centre_hour: float,
    night: float = 0.3,
    day_hours: float = 14.0,
    steepness: float = 8.0,
    dst: bool = False,
) -> np.ndarray:
    """A daily load shape with mean 1: a plateau of about ``day_hours`` centred on
    ``centre_hour`` (UTC), smooth morning and evening ramps (``steepness``), a night floor at
    ``night`` times the plateau, and a 10 % bump two hours after the centre (the evening
    peak of consumer traffic). Periodic and smooth across midnight. With ``dst`` the users'
    clocks go forward at ``US_DST`` and the whole cycle moves an hour earlier in UTC (normal,
    not a change point)."""

    def shape(hours: np.ndarray) -> np.ndarray:
        angle = 2 * math.pi * (hours - centre_hour) / 24
        plateau = 1 / (
            1 + np.exp(-steepness * (np.cos(angle) - math.cos(math.pi * day_hours / 24)))
        )
        bump = 1 + 0.1 * np.cos(angle - 2 * math.pi * 2 / 24)
        return night + (1 - night) * plateau * bump

    mean = float(np.mean(shape(np.linspace(0, 24, 289)[:-1])))
    hours = (ts % DAY) / HOUR
    if dst:
        hours = hours + (ts >= US_DST)
    return shape(hours) / mean


def weekly(ts: np.ndarray, weekend: float) -> np.ndarray:
    """1 on weekdays, ``weekend`` on Saturday and Sunday, with 3-hour ramps at the edges."""
    day = ((ts - START_TS) / DAY) % 7  # START_TS is a Monday: 5, 6 are the weekend
    ramp = np.clip((day - 5) * 8, 0, 1) * np.clip((7 - day) * 8, 0, 1)
    return 1 - (1 - weekend) * ramp


def student_t(rng: np.random.Generator, df: float, n: int) -> np.ndarray:
    """Student-t noise scaled to unit variance (df > 2)."""
    return rng.standard_t(df, n) * math.sqrt((df - 2) / df)


def ar1(rng: np.random.Generator, n: int, phi: float, df: float = 0.0) -> np.ndarray:
    """A stationary AR(1) path with unit marginal variance (Student-t innovations when df)."""
    eps = student_t(rng, df, n) if df else rng.standard_normal(n)
    eps = eps * math.sqrt(1 - phi * phi)
    out = np.empty(n)
    acc = rng.standard_normal()
    for i in range(n):
        acc = phi * acc + eps[i]
        out[i] = acc
    return out


def neg_binomial(rng: np.random.Generator, mean: np.ndarray, shape: float) -> np.ndarray:
    """Over-dispersed counts: Poisson(mean * Gamma(shape, 1/shape)); variance
    mean + mean^2 / shape."""
    mix = rng.gamma(shape, 1 / shape, mean.shape)
    return np.asarray(rng.poisson(np.maximum(mean, 0) * mix), dtype=np.float64)


# --- label placement ----------------------------------------------------------------------


def plan(rng: np.random.Generator, ts: np.ndarray, step: float, n_anom: int, n_cp: int) -> _Plan:
    """Random label positions after the probation period, at least ``MIN_SEPARATION`` apart
    and 6 hours before the end; fewer when the series is too short to hold them."""
    span = ts[-1] - ts[0]
    scored_from = ts[0] + max(PROBATION_FRACTION * span, DAY)
    lo, hi = scored_from + HOUR, ts[-1] - 6 * HOUR
    chosen: list[float] = []
    kinds: list[str] = []
    wanted = ["a"] * n_anom + ["c"] * n_cp
    rng.shuffle(wanted)
    for kind in wanted:
        for _ in range(200):
            t = rng.uniform(lo, hi) if hi > lo else math.nan
            if math.isnan(t):
                break
            if all(abs(t - u) >= MIN_SEPARATION for u in chosen):
                chosen.append(t)
                kinds.append(kind)
                break
    idx = np.searchsorted(ts, np.asarray(chosen, dtype=np.float64))
    anomaly_idx = sorted(int(i) for i, k in zip(idx, kinds, strict=True) if k == "a")
    cp_idx = sorted(int(i) for i, k in zip(idx, kinds, strict=True) if k == "c")
    return _Plan(ts, step, scored_from, anomaly_idx, cp_idx)


def _span(p: _Plan, i: int, seconds: float) -> slice:
    """Indices from ``i`` covering ``seconds`` of time (at least one sample)."""
    end = int(np.searchsorted(p.ts, p.ts[i] + seconds, side="left"))
    return slice(i, max(end, i + 1))


def _window(p: _Plan, sl: slice) -> tuple[float, float]:
    """The labelled window of an anomaly over ``sl``: its extent plus the grace period."""
    last = p.ts[min(sl.stop, len(p.ts)) - 1]
    grace = max(GRACE_SECONDS, GRACE_STEPS * p.step)
    return float(p.ts[sl.start]), float(last + grace)


def _finish(
    name: str,
    archetype: str,
    p: _Plan,
    values: np.ndarray,
    windows: list[tuple[float, float]],
    kind: str,
    notes: dict[str, str],
) -> Series:
    cps = tuple(float(p.ts[i]) for i in p.cp_idx)
    windows = sorted(windows)
    return Series(
        name=name,
        archetype=archetype,
        ts=p.ts,
        values=values,
        step=p.step,
        anomalies=tuple(windows),
        change_points=cps,
        anomaly_kinds=tuple(notes[f"anomaly@{int(b)}"] for b, _ in windows),
        change_kinds=tuple(notes[f"cp@{int(c)}"] for c in cps),
        scored_from=float(p.scored_from),
        kind=kind,
        notes=notes,
    )


# --- archetypes ---------------------------------------------------------------------------


def latency(rng: np.random.Generator, name: str, quick: bool) -> Series:
    """Request latency in milliseconds (p50 of a scrape interval).

    Positive, right-skewed and heavy-tailed: log-normal body (log-scale sd 0.15 - 0.3) with
    Student-t (df 4) innovations on the log scale, so single slow scrapes of 2-3x are
    *normal*; it rises with load (a daily cycle of +-15 %), reported in whole ms.
    Anomalies: spikes (1-3 scrapes x4 - x10, e.g. a GC pause or a lock), bursts (10-45 min x2 -
    x4, a slow dependency), variance bursts (30-90 min, log-scale sd x3, a noisy neighbour).
    Change points: level shifts (x1.3 - x2 or x0.6, a deploy) and variance changes (x2 / x0.5)."""
    step = float(rng.choice([MINUTE, 5 * MINUTE]))
    days = (3 if quick else 7) if step == MINUTE else (4 if quick else float(rng.integers(10, 22)))
    ts = grid(rng, days, step)
    n = len(ts)
    p = plan(rng, ts, step, n_anom=2 if quick else int(rng.integers(3, 7)), n_cp=1 if quick else 2)
    base = math.log(rng.uniform(40, 250))
    sigma = rng.uniform(0.15, 0.3)
    dst = bool(rng.uniform() < 0.5)  # users in North America
    loc = base + 0.15 * np.log(diurnal(ts, rng.uniform(13, 18), dst=dst))
    scale = np.full(n, sigma)
    notes = {"dst": str(dst)}
    for i in p.cp_idx:
        kind = rng.choice(["level", "variance"])
        if kind == "level":
            loc[i:] += math.log(rng.choice([rng.uniform(1.3, 2.0), 0.6]))
        else:
            scale[i:] *= rng.choice([2.0, 0.5])
        notes[f"cp@{int(ts[i])}"] = str(kind)
    noise = student_t(rng, 4, n)
    spikes: list[tuple[slice, float]] = []
    windows = []
    for i in p.anomaly_idx:
        kind = rng.choice(["spike", "burst", "variance"])
        if kind == "spike":
            sl = slice(i, min(i + int(rng.integers(1, 4)), n))
            spikes.append((sl, math.log(rng.uniform(4, 10))))
        elif kind == "burst":
            sl = _span(p, i, rng.uniform(10, 45) * MINUTE)
            loc[sl] += math.log(rng.uniform(2, 4))
        else:
            sl = _span(p, i, rng.uniform(30, 90) * MINUTE)
            scale[sl] *= 3
        windows.append(_window(p, sl))
        notes[f"anomaly@{int(ts[i])}"] = str(kind)
    logv = loc + scale * noise
    for sl, jump in spikes:
        logv[sl] = loc[sl] + jump
    values = np.maximum(np.round(np.exp(logv)), 1.0)
    return _finish(name, "latency", p, values, windows, "real", notes)


def requests(rng: np.random.Generator, name: str, quick: bool) -> Series:
    """Requests per scrape interval of a user-facing service.

    Daily cycle (night trough at 5 - 30 % of the peak) and weekly cycle (weekends at 50 - 85 %),
    over-dispersed counts (negative binomial, shape 20 - 60). Daily mean 200 - 3000 per 5 min;
    one series in three is a small service (0.5 - 5 per 5 min) whose nights are mostly zeros.
    Anomalies: dips (10-60 min at 0 - 20 % of the expected rate, an outage or a broken client)
    and bursts (5-30 min x2 - x4, a retry storm or a crawler).
    Change points: level shifts (x1.5 - x2 a launch or migration in, x0.5 - x0.7 one out)."""
    step = float(rng.choice([MINUTE, 5 * MINUTE]))
    days = (3 if quick else 7) if step == MINUTE else (4 if quick else float(rng.integers(14, 29)))
    ts = grid(rng, days, step)
    p = plan(rng, ts, step, n_anom=2 if quick else int(rng.integers(3, 6)), n_cp=1)
    small = rng.uniform() < 1 / 3
    level = rng.uniform(0.5, 5) if small else rng.uniform(200, 3000)
    level *= step / (5 * MINUTE)
    night, hours, dst = rng.uniform(0.05, 0.3), rng.uniform(12, 16), bool(rng.uniform() < 0.5)
    mean = level * diurnal(ts, rng.uniform(13, 18), night=night, day_hours=hours, dst=dst)
    mean *= weekly(ts, rng.uniform(0.5, 0.85))
    notes = {"size": "small" if small else "large", "dst": str(dst)}
    for i in p.cp_idx:
        up = rng.uniform() < 0.5
        mean[i:] *= rng.uniform(1.5, 2.0) if up else rng.uniform(0.5, 0.7)
        notes[f"cp@{int(ts[i])}"] = "level_up" if up else "level_down"
    windows = []
    for i in p.anomaly_idx:
        kind = rng.choice(["dip", "burst"])
        if kind == "dip":
            sl = _span(p, i, rng.uniform(10, 60) * MINUTE)
            mean[sl] *= rng.uniform(0, 0.2)
        else:
            sl = _span(p, i, rng.uniform(5, 30) * MINUTE)
            mean[sl] *= rng.uniform(2, 4)
        windows.append(_window(p, sl))
        notes[f"anomaly@{int(ts[i])}"] = str(kind)
    values = neg_binomial(rng, mean, rng.uniform(20, 60))
    return _finish(name, "requests", p, values, windows, "count", notes)


def cpu(rng: np.random.Generator, name: str, quick: bool) -> Series:
    """CPU utilisation of a host in percent, reported to 1 %.

    Follows the load (daily amplitude 5 - 15 points), a slow trend (0 - 3 points a week, more
    tenants), autocorrelated noise (AR(1), phi 0.7 - 0.9, sd 2 - 4), bounded to [0, 100].
    Anomalies: a runaway process (10-40 min at 90 - 100 %) and a crash (10-30 min near 1 %).
    Change points: regime switches (another workload lands or leaves: level +-10 - 25 points
    with noise x1.5 / x0.7) and trend changes (a slope of 1 - 3 points a day begins)."""
    step = float(rng.choice([MINUTE, 5 * MINUTE]))
    days = (3 if quick else 7) if step == MINUTE else (4 if quick else float(rng.integers(10, 22)))
    ts = grid(rng, days, step)
    n = len(ts)
    p = plan(rng, ts, step, n_anom=1 if quick else int(rng.integers(2, 5)), n_cp=1 if quick else 2)
    days_in = (ts - ts[0]) / DAY
    level = rng.uniform(15, 40) + rng.uniform(0, 3) / 7 * days_in
    level = level + rng.uniform(5, 15) * (diurnal(ts, rng.uniform(13, 19)) - 1) / 1.5
    sd = np.full(n, rng.uniform(2, 4))
    notes = {}
    for i in p.cp_idx:
        kind = rng.choice(["regime", "trend"])
        if kind == "regime":
            up = level[i] < 45
            level[i:] += rng.uniform(10, 25) * (1 if up else -1)
            sd[i:] *= 1.5 if up else 0.7
        else:
            level[i:] += rng.uniform(1, 3) * (days_in[i:] - days_in[i])
        notes[f"cp@{int(ts[i])}"] = str(kind)
    values = level + sd * ar1(rng, n, rng.uniform(0.7, 0.9))
    windows = []
    for i in p.anomaly_idx:
        kind = rng.choice(["runaway", "crash"])
        if kind == "runaway":
            sl = _span(p, i, rng.uniform(10, 40) * MINUTE)
            values[sl] = rng.uniform(90, 100, sl.stop - sl.start)
        else:
            sl = _span(p, i, rng.uniform(10, 30) * MINUTE)
            values[sl] = rng.uniform(0.5, 2, sl.stop - sl.start)
        windows.append(_window(p, sl))
        notes[f"anomaly@{int(ts[i])}"] = str(kind)
    values = np.round(np.clip(values, 0, 100))
    return _finish(name, "cpu", p, values, windows, "real", notes)


def errors(rng: np.random.Generator, name: str, quick: bool) -> Series:
    """Errors (5xx) per scrape interval: sparse counts, mostly zeros.

    The rate follows the traffic (0.02 - 0.3 per interval at the daily mean), over-dispersed
    (shape 2: errors come in small clumps). Anomalies: error bursts (5-30 min at x15 - x40 of
    the rate, at least 3 per interval). Change points: a buggy release (rate x3 - x6) or a fix
    (x0.3)."""
    step = float(rng.choice([MINUTE, 5 * MINUTE]))
    days = (3 if quick else 7) if step == MINUTE else (4 if quick else float(rng.integers(10, 22)))
    ts = grid(rng, days, step)
    p = plan(rng, ts, step, n_anom=2 if quick else int(rng.integers(2, 5)), n_cp=1)
    dst = bool(rng.uniform() < 0.5)
    rate = rng.uniform(0.02, 0.3) * diurnal(ts, rng.uniform(13, 18), night=0.2, dst=dst)
    notes = {"dst": str(dst)}
    for i in p.cp_idx:
        worse = rng.uniform() < 0.7
        rate[i:] *= rng.uniform(3, 6) if worse else 0.3
        notes[f"cp@{int(ts[i])}"] = "rate_up" if worse else "rate_down"
    windows = []
    burst = np.zeros(len(ts))
    for i in p.anomaly_idx:
        sl = _span(p, i, rng.uniform(5, 30) * MINUTE)
        burst[sl] = np.maximum(rate[sl] * rng.uniform(15, 40), 3.0)
        windows.append(_window(p, sl))
        notes[f"anomaly@{int(ts[i])}"] = "burst"
    values = neg_binomial(rng, np.maximum(rate, burst), 2.0)
    return _finish(name, "errors", p, values, windows, "count", notes)


def two_level(rng: np.random.Generator, name: str, quick: bool) -> Series:
    """A gauge that switches between two levels once a day, on schedule: NO labels.

    E.g. a nightly batch (a worker pool's busy threads, a replica count) high from a fixed
    hour for 3 - 10 hours, low the rest of the day; the levels differ by 10 - 40 noise sds.
    Every switch is normal operation; any alarm here is a false positive."""
    step = 5 * MINUTE
    days = 4 if quick else float(rng.integers(10, 22))
    ts = grid(rng, days, step)
    p = plan(rng, ts, step, 0, 0)
    low, sd = rng.uniform(5, 20), rng.uniform(0.5, 2)
    high = low + sd * rng.uniform(10, 40)
    begin, hours = rng.uniform(0, 24), rng.uniform(3, 10)
    h = ((ts % DAY) / HOUR - begin) % 24
    values = np.where(h < hours, high, low) + sd * rng.standard_normal(len(ts))
    values = np.round(values, 1)
    return _finish(name, "two_level", p, values, [], "real", {"batch_hours": f"{hours:.1f}"})


def pushed_gauge(rng: np.random.Generator, name: str, quick: bool) -> Series:
    """A gauge pushed by an agent (e.g. a consumer's queue lag or a disk's await time):
    irregular spacing (each report up to 40 % of the 1-minute or 5-minute period early or late)
    and gaps (2 - 5 stretches of 1 - 6 hours with no report: the agent or the network down).

    Smooth autocorrelated signal (AR(1), phi 0.95, Student-t df 5) around a daily cycle.
    Anomalies: spikes (1-3 reports at +6 - +12 sd) and dips (15-60 min at -5 sd).
    Change points: level shifts (+-3 - 6 sd) and variance changes (x2.5 / x0.4)."""
    step = float(rng.choice([MINUTE, 5 * MINUTE]))
    days = (3 if quick else 7) if step == MINUTE else (4 if quick else float(rng.integers(10, 22)))
    ts = grid(rng, days, step, jitter=0.4, gaps=int(rng.integers(2, 6)))
    n = len(ts)
    p = plan(rng, ts, step, n_anom=2 if quick else int(rng.integers(2, 5)), n_cp=1 if quick else 2)
    sd0 = rng.uniform(1, 5)
    loc = rng.uniform(20, 100) + sd0 * 2 * (diurnal(ts, rng.uniform(10, 18)) - 1)
    sd = np.full(n, sd0)
    notes = {}
    for i in p.cp_idx:
        kind = rng.choice(["level", "variance"])
        if kind == "level":
            loc[i:] += sd0 * rng.uniform(3, 6) * rng.choice([-1, 1])
        else:
            sd[i:] *= rng.choice([2.5, 0.4])
        notes[f"cp@{int(ts[i])}"] = str(kind)
    values = loc + sd * ar1(rng, n, 0.95, df=5)
    windows = []
    for i in p.anomaly_idx:
        kind = rng.choice(["spike", "dip"])
        if kind == "spike":
            sl = slice(i, min(i + int(rng.integers(1, 4)), n))
            values[sl] += sd[sl] * rng.uniform(6, 12)
        else:
            sl = _span(p, i, rng.uniform(15, 60) * MINUTE)
            values[sl] -= 5 * sd[sl]
        windows.append(_window(p, sl))
        notes[f"anomaly@{int(ts[i])}"] = str(kind)
    return _finish(name, "pushed_gauge", p, np.round(values, 2), windows, "real", notes)


def memory(rng: np.random.Generator, name: str, quick: bool) -> Series:
    """Resident memory of a process in MiB, reported to 1 MiB.

    Flat with small noise (sd 2 - 8 MiB) and a cache that fills with the daily load.
    Change points: a leak begins (a trend of 20 - 80 MiB a day, after a deploy) and a restart
    (the level drops back to the start; the leak, if any, stops). Anomalies: a short
    allocation spike (5-20 min, +300 - 800 MiB, a huge request)."""
    step = float(rng.choice([MINUTE, 5 * MINUTE]))
    days = (3 if quick else 7) if step == MINUTE else (4 if quick else float(rng.integers(10, 22)))
    ts = grid(rng, days, step)
    n = len(ts)
    p = plan(rng, ts, step, n_anom=1 if quick else int(rng.integers(1, 4)), n_cp=1 if quick else 2)
    days_in = (ts - ts[0]) / DAY
    start = rng.uniform(300, 2000)
    level = start + rng.uniform(20, 60) * (diurnal(ts, rng.uniform(13, 19)) - 1)
    notes = {}
    leak = np.zeros(n)
    for k, i in enumerate(p.cp_idx):
        if k % 2 == 0:  # a leak begins; it grows until the next change point (a restart)
            leak[i:] = rng.uniform(20, 80) * (days_in[i:] - days_in[i])
            notes[f"cp@{int(ts[i])}"] = "leak"
        else:
            leak[i:] = 0.0
            notes[f"cp@{int(ts[i])}"] = "restart"
    level = level + leak
    values = level + rng.uniform(2, 8) * rng.standard_normal(n)
    windows = []
    for i in p.anomaly_idx:
        sl = _span(p, i, rng.uniform(5, 20) * MINUTE)
        values[sl] += rng.uniform(300, 800)
        windows.append(_window(p, sl))
        notes[f"anomaly@{int(ts[i])}"] = "allocation_spike"
    return _finish(name, "memory", p, np.round(values), windows, "real", notes)


def weekly_control(rng: np.random.Generator, name: str, quick: bool) -> Series:
    """Requests of a business application: strong daily AND weekly cycles, NO labels.

    Office hours (a 9 - 11 hour plateau centred at 11:00 - 14:00, nights at 3 %), weekends at
    10 - 30 % of weekdays, negative-binomial counts (shape 30), heavy traffic (100 - 1000 per
    5 min on average over a weekday).
    Any alarm is a false positive: the Monday morning ramp, the quiet weekend and (for half of
    the series) the daylight-saving shift of the whole cycle are normal."""
    step = 5 * MINUTE
    days = 4 if quick else float(rng.integers(14, 29))
    ts = grid(rng, days, step)
    p = plan(rng, ts, step, 0, 0)
    centre, hours, dst = rng.uniform(11, 14), rng.uniform(9, 11), bool(rng.uniform() < 0.5)
    mean = rng.uniform(100, 1000) * diurnal(
        ts, centre, night=0.03, day_hours=hours, steepness=12, dst=dst
    )
    mean *= weekly(ts, rng.uniform(0.1, 0.3))
    values = neg_binomial(rng, mean, 30.0)
    return _finish(name, "weekly_control", p, values, [], "count", {"dst": str(dst)})


ARCHETYPES: dict[str, Callable[[np.random.Generator, str, bool], Series]] = {
    "latency": latency,
    "requests": requests,
    "cpu": cpu,
    "errors": errors,
    "two_level": two_level,
    "pushed_gauge": pushed_gauge,
    "memory": memory,
    "weekly_control": weekly_control,
}


def corpus(seed: int, per_archetype: int, quick: bool = False) -> list[Series]:
    """``per_archetype`` series of every archetype; series ``k`` of archetype ``j`` is drawn
    from its own generator (seed, j, k), so adding archetypes does not change the others."""
    out = []
    for j, (archetype, make) in enumerate(ARCHETYPES.items()):
        for k in range(per_archetype):
            rng = np.random.default_rng([seed, j, k])
            out.append(make(rng, f"{archetype}-{k}", quick))
    return out


__all__ = ["ARCHETYPES", "Series", "corpus", "diurnal", "grid", "weekly"]
