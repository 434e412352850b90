"""The one place that sets numba policy for bayestream.

Every kernel in the project is compiled through :func:`kernel`; nobody else writes
``numba.njit(...)`` options. The policy:

- ``cache=True``: compiled machine code is cached beside the sources, so a second process
  starts warm;
- ``nogil=True``: kernels release the GIL, so a runtime thread can poll Kafka meanwhile;
- ``error_model="numpy"``: division by zero gives inf/nan instead of raising, as in numpy;
- ``fastmath=False``: IEEE semantics, so results are reproducible bit for bit;
- per-event helpers are inlined into the kernels that call them (:func:`inline`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])

_POLICY: dict[str, Any] = {
    "cache": True,
    "nogil": True,
    "error_model": "numpy",
    "fastmath": False,
}


def kernel(fn: F) -> F:
    """Compile ``fn`` with the project's numba policy."""
    return numba.njit(**_POLICY)(fn)  # type: ignore[no-any-return]


def inline(fn: F) -> F:
    """Compile a small helper that kernels call per event, inlined into its callers.

    A call between separately compiled functions costs a call and reference counting for each
    array argument; per event that is measurable, so per-event helpers are inlined at the
    numba IR level (``inline="always"``).
    """
    return numba.njit(inline="always", **_POLICY)(fn)  # type: ignore[no-any-return]
