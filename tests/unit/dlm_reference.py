"""A naive numpy forward filter for the ``dlm`` family (West & Harrison, full matrices), the
oracle of ``test_dlm_reference.py``: the same model as :mod:`bayestream.models.dlm`, written
the textbook way (G, W by discounting, F from cos/sin of each harmonic, no packing)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Model:
    trend: bool = False
    periods: list[tuple[float, int]] = field(default_factory=list)  # period < 0: events
    discounts: tuple[float, float, float, float] = (0.99, 0.995, 0.995, 0.995)
    unit: float = 1.0  # seconds per unit of time (1 with per-event times: dt = 1)
    clip: float = math.inf
    level: float = 0.0
    level_var: float = 1e6
    trend_var: float = 1e-4
    seasonal_var: float = 4.0
    dof: float = 1.0
    variance: float = 1.0

    @property
    def p(self) -> int:
        return 1 + int(self.trend) + 2 * sum(h for _, h in self.periods)

    def blocks(self) -> list[tuple[slice, float]]:
        out = [(slice(0, 1), self.discounts[0])]
        start = 1
        if self.trend:
            out.append((slice(1, 2), self.discounts[1]))
            start = 2
        for _, h in self.periods:
            out.append((slice(start, start + 2 * h), self.discounts[2]))
            start += 2 * h
        return out

    def F(self, t: float, count: float) -> np.ndarray:
        f = [1.0] + ([0.0] if self.trend else [])
        for period, h in self.periods:
            phase = (count % -period) / -period if period < 0 else (t % period) / period
            for j in range(1, h + 1):
                f += [math.cos(2 * math.pi * j * phase), math.sin(2 * math.pi * j * phase)]
        return np.array(f)


@dataclass
class State:
    m: np.ndarray
    C: np.ndarray
    n: float
    S: float
    count: float = 0.0
    t: float = math.nan


def start(model: Model) -> State:
    p = model.p
    m = np.zeros(p)
    m[0] = model.level
    diag = [model.level_var] + ([model.trend_var] if model.trend else [])
    diag += [model.seasonal_var] * (p - len(diag))
    return State(m, np.diag(diag), model.dof, model.variance)


def step(
    model: Model, st: State, dt: float, t: float, y: float, w: float
) -> tuple[float, float, float]:
    """One event: evolve by dt, forecast (returns dof, f, S Q*), update with weight w."""
    st.count += 1
    st.t = t
    delta = dt / model.unit
    if delta > 0:
        G = np.eye(model.p)
        if model.trend:
            G[0, 1] = delta
        st.m = G @ st.m
        P = G @ st.C @ G.T
        for sl, d in model.blocks():
            P[sl, sl] *= math.exp(min(-delta * math.log(d), 30.0))
        st.C = P
        dv = model.discounts[3]
        st.n = model.dof + math.exp(delta * math.log(dv)) * (st.n - model.dof)
    F = model.F(t, st.count)
    f = float(F @ st.m)
    u = st.C @ F
    Q = float(F @ u) + 1.0
    dof, scale2 = st.n, st.S * Q
    e = y - f
    if w > 0:
        Qw = Q - 1.0 + 1.0 / w
        st.m = st.m + u * e / Qw
        st.C = st.C - np.outer(u, u) / Qw
    z2 = min(e * e / (st.S * Q), model.clip**2)
    st.S = st.S * (st.n + z2) / (st.n + 1.0)
    st.n += 1.0
    return dof, f, scale2
