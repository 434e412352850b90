"""Pure math: one module per family, numba kernels, no I/O and no configuration.

Each family module has three tiers (see STYLE.md): readable closed-form formulas
(``posterior``, ``kl``), ``@kernel`` batch kernels that update rows of columnar state arrays in
place (``update``, ``summarize``), and this registry through which the engine reaches them.
A conjugate family's ``update`` is the per-event skeleton of :mod:`._skeleton` made with the
family's own ``forget``, ``score``, ``interval`` and ``observe``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bayestream.models import beta_binomial, dirichlet, dlm, gamma_poisson, normal_gamma
from bayestream.models._protocol import (
    N_OUT,
    N_SETTINGS,
    S_EXTRA,
    S_OUTLIER_RATE,
    S_OUTLIER_SCALE,
    Events,
    Rows,
    RuleConstants,
    extra_prior,
)
from bayestream.models._stream import APPLIED, LATE

TAIL_UPPER = 0
TAIL_LOWER = 1
TAIL_TWO_SIDED = 2
TAIL_CODES = {"upper": TAIL_UPPER, "lower": TAIL_LOWER, "two_sided": TAIL_TWO_SIDED}


@dataclass(frozen=True)
class Family:
    """What the engine needs to know about a conjugate family."""

    name: str
    code: int  # stable small integer, stored in state rows
    param_names: tuple[str, ...] | None  # None: named by the rule (dirichlet categories)
    update: Callable[..., None]
    summarize: Callable[..., None]
    kl: Callable[..., float]
    discrete: bool


FAMILIES: dict[str, Family] = {
    "normal_gamma": Family(
        "normal_gamma",
        1,
        normal_gamma.PARAM_NAMES,
        normal_gamma.update,
        normal_gamma.summarize,
        normal_gamma.kl,
        discrete=False,
    ),
    "beta_binomial": Family(
        "beta_binomial",
        2,
        beta_binomial.PARAM_NAMES,
        beta_binomial.update,
        beta_binomial.summarize,
        beta_binomial.kl,
        discrete=True,
    ),
    "gamma_poisson": Family(
        "gamma_poisson",
        3,
        gamma_poisson.PARAM_NAMES,
        gamma_poisson.update,
        gamma_poisson.summarize,
        gamma_poisson.kl,
        discrete=True,
    ),
    "dirichlet": Family(
        "dirichlet", 4, None, dirichlet.update, dirichlet.summarize, dirichlet.kl, discrete=True
    ),
    # summarize takes the rule's prior too (engine/kernels.py); parameters named by the rule
    "dlm": Family("dlm", 6, None, dlm.update, dlm.summarize, dlm.kl, discrete=False),
}


_DLM_PRIOR = {"level": 0.0, "level_var": 1.0, "trend_var": 1.0, "seasonal_var": 1.0,
              "dof": 1.0, "variance": 1.0}  # fmt: skip


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every kernel now, not on the first message."""
    import numpy as np

    prior: dict[str, Any] = {
        "normal_gamma": np.array([0.0, 1.0, 2.0, 2.0]),
        "beta_binomial": np.array([1.0, 1.0]),
        "gamma_poisson": np.array([1.0, 1.0]),
        "dirichlet": np.array([1.0, 1.0, 1.0]),
        "dlm": dlm.prior_row(_DLM_PRIOR, True, [(86400.0, 1)], (0.99,) * 4, 1.0, 4.0),
    }
    for name, family in FAMILIES.items():
        p0 = prior[name]
        params = np.tile(np.concatenate([p0, extra_prior()]), (1, 1))  # a whole row
        settings = np.zeros(N_SETTINGS)
        settings[S_OUTLIER_RATE] = 0.01
        settings[S_OUTLIER_SCALE] = 10.0
        settings[S_EXTRA] = p0.shape[0]
        obs_size = np.ones(1)
        slots = np.zeros(1, dtype=np.int64)
        one = np.ones(1)
        family.update(
            Rows(params, np.full(1, np.nan), np.zeros(1), obs_size),
            RuleConstants(p0, settings, np.inf, False, TAIL_UPPER, np.inf),
            Events(slots, one, np.zeros(1), one * 2.0, np.full(1, -np.inf)),
            np.full((1, N_OUT), np.nan),
            np.empty(1, dtype=np.int8),
        )
        width = p0.shape[0] if family.param_names is None else 1
        levels = np.array([0.9])
        if name == "dlm":
            one_by_one = np.empty((1, 1))
            family.summarize(
                params, p0, slots, levels, levels, np.empty((1, 5)), one_by_one,
                np.empty((1, 1)), np.empty((1, 1, 1)), np.empty((1, 1, 1)), one_by_one,
            )  # fmt: skip
            family.kl(np.array([0.0, 1.0, 2.0, 2.0]), np.array([0.0, 1.0, 2.0, 2.0]))
            continue
        family.summarize(
            params,
            obs_size,
            slots,
            levels,
            levels,
            np.empty((1, width)),
            np.empty((1, width)),
            np.empty((1, 1, width)),
            np.empty((1, 1, width)),
            np.empty((1, 1)),
        )
        family.kl(p0, p0)


__all__ = ["APPLIED", "FAMILIES", "LATE", "TAIL_CODES", "Family", "warm_up"]
