r"""Exponentially decayed weights in events, shared by the PIT histogram and the coverage checks.

Notation: with a half-life of ``h`` events, every valid observation first multiplies the
accumulated weights by ``d = 2 ** (-1 / h)`` and then adds its own weight 1 (``h = inf`` gives
``d = 1``: plain counts). After ``n`` observations the observation ``j`` steps back carries the
weight ``w_j = d ** j``, and a monitor keeps

    W = sum_j w_j        (the total weight)
    S = sum_j w_j ** 2   (the sum of squared weights)

For a weighted proportion ``p_hat = sum_j w_j y_j / W`` of iid Bernoulli(p) indicators,
``Var(p_hat) = p (1 - p) S / W ** 2 = p (1 - p) / n_eff`` with Kish's effective count
``n_eff = W ** 2 / S``. Without forgetting ``n_eff = W = n``; in the steady state
``W = 1 / (1 - d) ~ h / ln 2`` and ``n_eff = (1 + d) / (1 - d) ~ 2 h / ln 2``.

Because the decay is applied per observation, in order, inside the kernels, the state after a
sequence of observations is bit-identical whatever the batches it arrived in.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from bayestream.errors import StateError
from bayestream.models._jit import inline

STATE_VERSION = 1.0


def decay_factor(half_life: float) -> float:
    """``d = 2 ** (-1 / h)`` for a half-life ``h`` in events (``inf``: no forgetting, d = 1)."""
    h = float(half_life)
    if not h > 0.0:  # also rejects NaN
        raise ValueError(f"half_life must be positive (inf for no forgetting), got {half_life!r}")
    return math.pow(2.0, -1.0 / h)


def effective_count(total_weight: float, sum_sq_weights: float) -> float:
    """Kish's effective count ``W ** 2 / S`` (0 when nothing has been seen)."""
    if sum_sq_weights <= 0.0:
        return 0.0
    return total_weight * total_weight / sum_sq_weights


def as_pit(values: ArrayLike) -> np.ndarray:
    """PIT values as a contiguous float64 vector; NaN allowed (skipped), else within [0, 1]."""
    u = np.ascontiguousarray(values, dtype=np.float64)
    if u.ndim != 1:
        raise ValueError(f"PIT values must be one-dimensional, got shape {u.shape}")
    bad = ~np.isnan(u) & ((u < 0.0) | (u > 1.0))
    if bad.any():
        raise ValueError(f"PIT values must lie in [0, 1] (or be NaN), got {u[bad][0]!r}")
    return u


def check_state(state: list[float], minimum: int, what: str) -> None:
    """Raise :class:`StateError` unless ``state`` is a version-1 state of at least ``minimum``."""
    if len(state) < minimum or state[0] != STATE_VERSION:
        raise StateError(f"not a version-{STATE_VERSION:g} {what} state: {state[:4]!r}...")
    if not all(math.isfinite(v) or v == math.inf for v in state):
        raise StateError(f"{what} state holds NaN or -inf")


@inline
def advance(moments: np.ndarray, d: float) -> None:
    """One more observation: ``W <- d W + 1``, ``S <- d^2 S + 1`` (``moments = [W, S]``)."""
    moments[0] = moments[0] * d + 1.0
    moments[1] = moments[1] * (d * d) + 1.0
